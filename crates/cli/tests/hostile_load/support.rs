//! One way to start the service for a hostile-load test, and the budget it must hold.

use pfs_test_support::{ServiceCommand, ServiceProcess};
use std::sync::Mutex;

/// The memory the service must stay under whatever a client sends: half the 256 MiB limit the
/// Kubernetes overlays give a pod, leaving the rest for the allocator's slack and the page
/// cache the kernel charges to the pod.
pub const MEMORY_BUDGET: u64 = 128 << 20;

/// The release binary at rest, as the Deployment states it (`measured-idle-rss` in
/// deploy/k8s/base/deployment.yaml, which `CHECK=1 scripts/measure-footprint.sh` enforces).
const RELEASE_AT_REST: u64 = 40 << 20;

/// What clients may add to a process at rest. The tests run the debug binary, whose code and
/// debug data make it some 25 MiB larger at rest than the release binary before any request;
/// so the budget is asserted on what the requests added, against what the release binary may
/// add within [`MEMORY_BUDGET`].
const CLIENT_ALLOWANCE: u64 = MEMORY_BUDGET - RELEASE_AT_REST;

/// Each started process's resident memory at rest, by pid.
static AT_REST: Mutex<Vec<(u32, u64)>> = Mutex::new(Vec::new());

pub fn binary() -> &'static str {
    env!("CARGO_BIN_EXE_portfolio-service")
}

/// The service as production runs it (on its embedded SQLite database unless `env` names
/// another), with `env` on top.
pub async fn production(env: &[(&str, &str)]) -> ServiceProcess {
    let service =
        ServiceCommand::new(binary()).env("PORTFOLIO_ENV", "production").envs(env.iter().copied()).start().await;
    let rest = service.footprint().rss;
    AT_REST.lock().unwrap_or_else(|p| p.into_inner()).push((service.id(), rest));
    service
}

/// Panics, naming `what`, when the requests have raised the process's peak resident memory by
/// more than the release binary may add within the budget.
pub fn assert_within_budget(service: &ServiceProcess, what: &str) {
    let footprint = service.footprint();
    let at_rest = AT_REST
        .lock()
        .unwrap_or_else(|p| p.into_inner())
        .iter()
        .find(|(pid, _)| *pid == service.id())
        .map(|(_, rss)| *rss);
    let at_rest = at_rest.unwrap_or(RELEASE_AT_REST);
    let mib = |bytes: u64| bytes as f64 / f64::from(1 << 20);
    assert!(
        footprint.peak_rss < at_rest + CLIENT_ALLOWANCE,
        "{what}: peak RSS {:.1} MiB is {:.1} MiB over the {:.1} MiB at rest; the {} MiB budget allows {} MiB \
         over the release binary's {} MiB at rest",
        mib(footprint.peak_rss),
        mib(footprint.peak_rss.saturating_sub(at_rest)),
        mib(at_rest),
        MEMORY_BUDGET >> 20,
        CLIENT_ALLOWANCE >> 20,
        RELEASE_AT_REST >> 20
    );
}

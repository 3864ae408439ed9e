//! One way to start the service for a hostile-load test, and the budget it must hold.

use pfs_test_support::{ServiceCommand, ServiceProcess};

/// The memory the service must stay under whatever a client sends: half the 256 MiB limit the
/// Kubernetes overlays give a pod, leaving the rest for the allocator's slack and the page
/// cache the kernel charges to the pod.
pub const MEMORY_BUDGET: u64 = 128 << 20;

pub fn binary() -> &'static str {
    env!("CARGO_BIN_EXE_portfolio-service")
}

/// The service as production runs it (on its embedded SQLite database unless `env` names
/// another), with `env` on top.
pub async fn production(env: &[(&str, &str)]) -> ServiceProcess {
    ServiceCommand::new(binary()).env("PORTFOLIO_ENV", "production").envs(env.iter().copied()).start().await
}

/// Panics, naming `what`, when the process's peak resident memory has passed the budget.
pub fn assert_within_budget(service: &ServiceProcess, what: &str) {
    let footprint = service.footprint();
    assert!(
        footprint.peak_rss < MEMORY_BUDGET,
        "{what}: peak RSS {:.1} MiB passed the {} MiB budget",
        footprint.peak_rss as f64 / f64::from(1 << 20),
        MEMORY_BUDGET >> 20
    );
}

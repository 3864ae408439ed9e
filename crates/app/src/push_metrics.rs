//! The metrics kept outside the recorder until collected: connection pool gauges and read
//! cache lookups. A Prometheus scrape refreshes them itself; a push exports whatever they last
//! held, so with OTLP metrics they are refreshed on the push interval.

use pfs_api::AppState;
use pfs_platform::Config;
use std::time::Duration;
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;

/// Refreshes them every `otlp.metrics_interval` until `shutdown`, when metrics are pushed over
/// OTLP (the same condition under which `init_process` builds the exporter).
pub(crate) fn spawn(config: &Config, state: AppState, tasks: &TaskTracker, shutdown: CancellationToken) {
    let observability = &config.observability;
    let otlp = &observability.otlp;
    if !(observability.metrics_enabled && otlp.metrics && !otlp.endpoint.trim().is_empty()) {
        return;
    }
    let interval = otlp.metrics_interval.max(Duration::from_secs(1));
    tasks.spawn(async move {
        let mut ticks = tokio::time::interval(interval);
        loop {
            tokio::select! {
                () = shutdown.cancelled() => break,
                _ = ticks.tick() => state.publish_metrics(),
            }
        }
    });
}

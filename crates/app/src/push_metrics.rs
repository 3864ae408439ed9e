//! The metrics kept outside the recorder until collected: connection pool gauges and read
//! cache lookups. A Prometheus scrape refreshes them itself; a push exports whatever they last
//! held, so with OTLP metrics they are refreshed on the push interval.

use pfs_api::AppState;
use pfs_platform::Config;
use std::time::Duration;
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;

/// Refreshes them on the push interval until `shutdown`, when this process pushes metrics
/// (`init_process` built a metric exporter).
pub(crate) fn spawn(_config: &Config, state: AppState, tasks: &TaskTracker, shutdown: CancellationToken) {
    let Some(interval) = pfs_observability::pipeline::metrics_push_interval() else { return };
    let interval = interval.max(Duration::from_secs(1));
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

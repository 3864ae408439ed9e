//! Expired `Idempotency-Key` records deleted on a timer, so they go even when no keyed request
//! arrives to trigger the request-driven purge (`pfs_api::middleware::idempotency`).

use pfs_storage::IdempotencyStore;
use std::sync::Arc;
use std::time::Duration;
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;

/// How often each replica purges; several replicas doing it is harmless (one indexed delete).
pub(crate) const PURGE_EVERY: Duration = Duration::from_secs(60);

/// Purges every [`PURGE_EVERY`] until `stop`. Failures (the database not up yet, or down) are
/// logged at debug and retried at the next round: the keys are ignored once expired anyway.
pub(crate) fn spawn(store: Arc<dyn IdempotencyStore>, tasks: &TaskTracker, stop: CancellationToken) {
    tasks.spawn(async move {
        loop {
            tokio::select! {
                () = stop.cancelled() => return,
                () = tokio::time::sleep(PURGE_EVERY) => {}
            }
            match store.purge_expired(pfs_domain::Timestamp::now().millis()).await {
                Ok(0) => {}
                Ok(purged) => tracing::debug!(purged, "expired idempotency keys purged"),
                Err(err) => tracing::debug!(error = %err, "expired idempotency keys not purged; retrying later"),
            }
        }
    });
}

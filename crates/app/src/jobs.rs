//! Background jobs in the composition root: which backends have a queue, the worker pool
//! with its handlers, and the `worker` role (workers without the HTTP server).

use crate::App;
use crate::storage::Backend;
use pfs_jobs::import::ImportHandler;
use pfs_jobs::{Backoff, JobService, WorkerPool, WorkerSettings};
use pfs_platform::config::JobsConfig;
use pfs_storage::PortfolioStore;
use pfs_storage::jobs::{JobQueue, Retention};
use std::sync::Arc;
use tokio_util::sync::CancellationToken;

/// Chunks of an upload that never became a job (refused, or cut off by a crash) are purged once
/// this old: far longer than any upload can take (`reliability.body_read_timeout`).
const ORPHAN_CHUNKS: std::time::Duration = std::time::Duration::from_secs(3600);

/// The queue in the backend's own database. MongoDB has none: its imports answer 501.
pub(crate) fn queue(backend: &Backend) -> Option<Arc<dyn JobQueue>> {
    match backend {
        Backend::Sqlite(store) => Some(Arc::new(store.clone())),
        Backend::Postgres(store) => Some(Arc::new(store.clone())),
        Backend::Mongo(_) => None,
    }
}

/// The service the API enqueues through, and the pool that runs its jobs. Imports write
/// through `store` (the cached one), so they invalidate caches like any other write.
pub(crate) fn start(
    config: &JobsConfig,
    queue: Arc<dyn JobQueue>,
    store: Arc<dyn PortfolioStore>,
) -> (JobService, Arc<WorkerPool>) {
    let service = JobService::new(queue.clone(), config.max_attempts);
    let settings = WorkerSettings {
        concurrency: config.concurrency,
        poll_interval: config.poll_interval,
        lease: config.lease,
        backoff: Backoff { base: config.backoff_base, max: config.backoff_max },
        retention: Retention {
            finished: config.retention,
            dead_payload: config.dead_payload_retention,
            orphan_chunks: ORPHAN_CHUNKS,
        },
    };
    let import = ImportHandler { store, batch_size: config.import_batch_size, max_errors: 100 };
    let pool = WorkerPool::new(queue, settings, service.doorbell.clone()).with_handler(Arc::new(import));
    (service, Arc::new(pool))
}

impl App {
    /// The `worker` role: runs the job workers (no HTTP server) until `shutdown`, then lets
    /// running jobs reach their next checkpoint and hands them back, and closes the pool.
    pub async fn run_workers(self, shutdown: CancellationToken) -> anyhow::Result<()> {
        let Some(pool) = self.workers.clone() else {
            anyhow::bail!("background jobs need SQLite or PostgreSQL storage; MongoDB has no job queue");
        };
        crate::start_workers_when_ready(pool, &self.state, &self.tasks, &shutdown);
        shutdown.cancelled().await;
        tracing::info!("stopping job workers");
        self.stop_tasks.cancel();
        self.tasks.close();
        self.tasks.wait().await;
        self.state.store.usual().close().await;
        tracing::info!("stopped");
        Ok(())
    }
}

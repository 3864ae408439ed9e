//! How an idle worker pool polls the shared queue: once per interval for the whole process,
//! and still promptly for a job enqueued by another process while a worker is busy.

use async_trait::async_trait;
use pfs_domain::Timestamp;
use pfs_jobs::{Backoff, JobError, JobHandler, RunContext, WorkerPool, WorkerSettings};
use pfs_storage::StoreResult;
use pfs_storage::jobs::{
    ClaimedJob, Finish, JobId, JobProgress, JobQueue, JobRecord, JobState, LeaseToken, NewJob, Purged, QueueDepth,
    Retention,
};
use pfs_storage_postgres::testing::fresh_store;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;
use tokio::sync::{Notify, Semaphore};
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;

const POLL: Duration = Duration::from_millis(50);

/// The queue, counting the claims made on it.
struct Counting {
    inner: Arc<dyn JobQueue>,
    claims: AtomicUsize,
}

#[async_trait]
impl JobQueue for Counting {
    async fn enqueue(&self, job: &NewJob, now: Timestamp) -> StoreResult<()> {
        self.inner.enqueue(job, now).await
    }
    async fn claim(&self, now: Timestamp, lease: Duration) -> StoreResult<Option<ClaimedJob>> {
        self.claims.fetch_add(1, Ordering::SeqCst);
        self.inner.claim(now, lease).await
    }
    async fn heartbeat(
        &self,
        id: JobId,
        token: LeaseToken,
        progress: &JobProgress,
        now: Timestamp,
        lease: Duration,
    ) -> StoreResult<bool> {
        self.inner.heartbeat(id, token, progress, now, lease).await
    }
    async fn finish(
        &self,
        id: JobId,
        token: LeaseToken,
        outcome: &Finish,
        progress: &JobProgress,
        now: Timestamp,
    ) -> StoreResult<bool> {
        self.inner.finish(id, token, outcome, progress, now).await
    }
    async fn release(&self, id: JobId, token: LeaseToken, now: Timestamp) -> StoreResult<bool> {
        self.inner.release(id, token, now).await
    }
    async fn get(&self, id: JobId) -> StoreResult<Option<JobRecord>> {
        self.inner.get(id).await
    }
    async fn depth(&self) -> StoreResult<QueueDepth> {
        self.inner.depth().await
    }
    async fn stage_chunk(&self, id: JobId, seq: u32, payload: &[u8], now: Timestamp) -> StoreResult<()> {
        self.inner.stage_chunk(id, seq, payload, now).await
    }
    async fn chunk(&self, id: JobId, seq: u32) -> StoreResult<Option<Vec<u8>>> {
        self.inner.chunk(id, seq).await
    }
    async fn discard_chunks(&self, id: JobId) -> StoreResult<()> {
        self.inner.discard_chunks(id).await
    }
    async fn purge(&self, retention: &Retention, now: Timestamp) -> StoreResult<Purged> {
        self.inner.purge(retention, now).await
    }
}

/// Runs until the test lets it finish, counting the runs started.
struct Blocking {
    started: AtomicUsize,
    finish: Semaphore,
}

#[async_trait]
impl JobHandler for Blocking {
    fn kind(&self) -> &'static str {
        "test"
    }

    async fn run(&self, _: &ClaimedJob, _: &RunContext) -> Result<(), JobError> {
        self.started.fetch_add(1, Ordering::SeqCst);
        self.finish.acquire().await.expect("never closed").forget();
        Ok(())
    }
}

struct Process {
    queue: Arc<Counting>,
    handler: Arc<Blocking>,
    tracker: TaskTracker,
    stop: CancellationToken,
}

/// A worker process with `concurrency` workers on a fresh queue.
async fn start(concurrency: usize) -> (Process, pfs_storage_postgres::testing::TestSchema) {
    let (store, schema) = fresh_store().await;
    let queue = Arc::new(Counting { inner: Arc::new(store), claims: AtomicUsize::new(0) });
    let handler = Arc::new(Blocking { started: AtomicUsize::new(0), finish: Semaphore::new(0) });
    let settings = WorkerSettings {
        concurrency,
        poll_interval: POLL,
        lease: Duration::from_secs(30),
        backoff: Backoff { base: Duration::ZERO, max: Duration::ZERO },
        retention: Retention {
            finished: Duration::from_secs(3600),
            dead_payload: Duration::from_secs(3600),
            orphan_chunks: Duration::from_secs(3600),
        },
    };
    let pool = WorkerPool::new(queue.clone(), settings, Arc::new(Notify::new())).with_handler(handler.clone());
    let (tracker, stop) = (TaskTracker::new(), CancellationToken::new());
    Arc::new(pool).spawn(&tracker, stop.clone());
    (Process { queue, handler, tracker, stop }, schema)
}

impl Process {
    /// Enqueues straight into the queue, as another process would: this pool's doorbell does
    /// not ring, so only its polling finds the job.
    async fn enqueue_elsewhere(&self) -> JobId {
        let job = NewJob {
            id: JobId::generate(),
            kind: "test".into(),
            payload: b"{}".to_vec(),
            priority: 0,
            max_attempts: 1,
            total: 0,
        };
        self.queue.inner.enqueue(&job, Timestamp::now()).await.unwrap();
        job.id
    }

    async fn wait_started(&self, runs: usize) -> Duration {
        let since = tokio::time::Instant::now();
        while self.handler.started.load(Ordering::SeqCst) < runs {
            assert!(since.elapsed() < Duration::from_secs(10), "run {runs} never started");
            tokio::time::sleep(Duration::from_millis(5)).await;
        }
        since.elapsed()
    }

    async fn stop(self) {
        self.handler.finish.add_permits(100);
        self.stop.cancel();
        self.tracker.close();
        self.tracker.wait().await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_idle_pool_polls_once_per_interval_whatever_its_concurrency() {
    let (process, _schema) = start(4).await;
    // Let the start-up claims (one per worker) pass, then count a quiet second.
    tokio::time::sleep(POLL * 3).await;
    let before = process.queue.claims.load(Ordering::SeqCst);
    tokio::time::sleep(Duration::from_secs(1)).await;
    let claims = process.queue.claims.load(Ordering::SeqCst) - before;
    process.stop().await;
    // At most 20 intervals of 50 ms (fewer on a loaded machine): one poll each, where four
    // workers each polling on their own made 78.
    assert!((1..=30).contains(&claims), "{claims} claims in one idle second");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_job_from_elsewhere_is_found_while_another_worker_is_busy() {
    let (process, _schema) = start(2).await;
    process.enqueue_elsewhere().await;
    process.wait_started(1).await;
    // One worker is now busy with that job (whichever held the polling turn); the other must
    // still find the next one.
    let second = process.enqueue_elsewhere().await;
    let waited = process.wait_started(2).await;
    // A few polls at most; were the polling turn stuck with the busy worker, never.
    assert!(waited < POLL * 20, "the second job waited {waited:?} with a worker idle");
    process.handler.finish.add_permits(2);
    let deadline = tokio::time::Instant::now() + Duration::from_secs(10);
    while process.queue.get(second).await.unwrap().unwrap().state != JobState::Succeeded {
        assert!(tokio::time::Instant::now() < deadline, "the second job never finished");
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    process.stop().await;
}

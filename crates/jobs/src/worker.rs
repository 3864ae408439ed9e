//! The worker pool: `concurrency` loops that claim, run and settle jobs until shutdown.

use crate::backoff::Backoff;
use crate::job::{JobError, JobHandler, RunContext};
use pfs_domain::Timestamp;
use pfs_storage::jobs::{ClaimedJob, Finish, JobId, JobQueue, JobState, Retention};
use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;
use tokio::sync::Notify;
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;

/// How the pool runs jobs.
#[derive(Clone, Debug)]
pub struct WorkerSettings {
    /// Jobs run at once by this process.
    pub concurrency: usize,
    /// How often an idle process looks for work, once for all its workers (an enqueue in this
    /// process wakes one at once).
    pub poll_interval: Duration,
    /// How long a claim holds a job without a heartbeat; the heartbeat runs every third of it.
    /// A crashed worker's job is claimable again this long after its last heartbeat.
    pub lease: Duration,
    pub backoff: Backoff,
    /// What the periodic purge removes (every [`PURGE_EVERY`], and once at start).
    pub retention: Retention,
}

/// How often each worker process applies [`Retention`]; several processes doing it is harmless.
pub const PURGE_EVERY: Duration = Duration::from_secs(60);

/// How often each worker process refreshes `jobs_queue_depth` (or every poll interval, if
/// longer): a few times per usual Prometheus scrape interval is enough for a gauge, and every
/// idle replica asking the database each second is not.
const DEPTH_EVERY: Duration = Duration::from_secs(5);

/// The handlers by kind, the queue, and a doorbell that wakes idle workers on enqueue.
pub struct WorkerPool {
    queue: Arc<dyn JobQueue>,
    handlers: HashMap<&'static str, Arc<dyn JobHandler>>,
    settings: WorkerSettings,
    doorbell: Arc<Notify>,
    /// Held by the one idle worker whose timer polls the queue; the other idle workers wait
    /// for the doorbell or their turn, so an idle process asks the database once per poll
    /// interval however many workers it runs.
    poll_turn: tokio::sync::Mutex<()>,
}

/// What happened to one claimed job, for tests and logs.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Settled {
    pub id: JobId,
    /// The state written, or `None` when the lease had been lost and nothing was written.
    pub state: Option<JobState>,
}

impl WorkerPool {
    pub fn new(queue: Arc<dyn JobQueue>, settings: WorkerSettings, doorbell: Arc<Notify>) -> Self {
        Self { queue, handlers: HashMap::new(), settings, doorbell, poll_turn: tokio::sync::Mutex::new(()) }
    }

    pub fn with_handler(mut self, handler: Arc<dyn JobHandler>) -> Self {
        self.handlers.insert(handler.kind(), handler);
        self
    }

    /// Starts the worker loops and the queue-depth gauge on `tracker`. On `shutdown` the
    /// loops stop claiming; a running job is interrupted at its next checkpoint and handed
    /// back to the queue (or finishes first if it was about to).
    pub fn spawn(self: Arc<Self>, tracker: &TaskTracker, shutdown: CancellationToken) {
        tracing::info!(concurrency = self.settings.concurrency, kinds = ?self.handlers.keys(), "job workers starting");
        for _ in 0..self.settings.concurrency.max(1) {
            let pool = self.clone();
            let shutdown = shutdown.clone();
            tracker.spawn(async move { pool.work(shutdown).await });
        }
        let pool = self;
        tracker.spawn(async move { pool.report_depth(shutdown).await });
    }

    async fn work(&self, shutdown: CancellationToken) {
        while !shutdown.is_cancelled() {
            let wait = match self.run_next(&shutdown).await {
                Ok(Some(_)) => continue,
                Ok(None) => self.settings.poll_interval,
                Err(err) => {
                    tracing::warn!(error = %err, "job queue unavailable; retrying after the poll interval");
                    self.settings.poll_interval
                }
            };
            self.wait_for_work(wait, &shutdown).await;
        }
    }

    /// Returns when this worker should look for work again: at once when the doorbell rings,
    /// else after `wait` once it is this worker's turn to keep the poll timer.
    async fn wait_for_work(&self, wait: Duration, shutdown: &CancellationToken) {
        // One registration for both waits, so a ring between them is not missed.
        let doorbell = self.doorbell.notified();
        tokio::pin!(doorbell);
        let _turn = tokio::select! {
            () = shutdown.cancelled() => return,
            () = &mut doorbell => return,
            turn = self.poll_turn.lock() => turn,
        };
        tokio::select! {
            () = shutdown.cancelled() => {}
            () = &mut doorbell => {}
            () = tokio::time::sleep(wait) => {}
        }
    }

    /// Claims one job and runs it to its end; `None` when nothing is runnable. Tests call
    /// this to drain the queue deterministically.
    pub async fn run_next(&self, shutdown: &CancellationToken) -> Result<Option<Settled>, pfs_storage::StoreError> {
        let Some(job) = self.queue.claim(Timestamp::now(), self.settings.lease).await? else {
            return Ok(None);
        };
        // Where there was one job there may be more: an idle peer looks at once rather than
        // at the next poll.
        self.doorbell.notify_one();
        Ok(Some(self.settle(&job, shutdown).await))
    }

    async fn settle(&self, job: &ClaimedJob, shutdown: &CancellationToken) -> Settled {
        let context = Arc::new(RunContext::new(self.queue.clone(), job, self.settings.lease, shutdown.clone()));
        let outcome = if job.attempt > job.max_attempts {
            // Earlier runs all lost their lease: the worker running it died each time.
            Err(JobError::Permanent(format!(
                "abandoned: {} attempts ended without the worker reporting back (lease expired)",
                job.max_attempts
            )))
        } else {
            match self.handlers.get(job.kind.as_str()) {
                None => Err(JobError::Permanent(format!("no handler for job kind {:?}", job.kind))),
                Some(handler) => self.run_with_heartbeat(handler.clone(), job, context.clone()).await,
            }
        };
        let (finish, outcome_label) = match outcome {
            Ok(()) => (Some(Finish::Succeeded), "succeeded"),
            Err(JobError::LeaseLost) => (None, "lease_lost"),
            Err(JobError::Interrupted) => {
                return self.release(job, &context).await;
            }
            Err(JobError::Permanent(error)) if job.attempt > job.max_attempts => (Some(Finish::Dead { error }), "dead"),
            Err(JobError::Permanent(error)) => (Some(Finish::Failed { error }), "failed"),
            Err(JobError::Transient(error)) => {
                let error = format!("{error:#}");
                if job.attempt >= job.max_attempts {
                    (Some(Finish::Dead { error }), "dead")
                } else {
                    let delay = self.settings.backoff.delay(job.attempt, &mut rand::rng());
                    let run_at = Timestamp::from_millis(
                        Timestamp::now().millis().saturating_add(i64::try_from(delay.as_millis()).unwrap_or(0)),
                    )
                    .unwrap_or_else(Timestamp::now);
                    (Some(Finish::Retry { error, run_at }), "retried")
                }
            }
        };
        let Some(finish) = finish else {
            tracing::warn!(job.id = %job.id, "job lease lost to another worker; this run's result is discarded");
            return Settled { id: job.id, state: None };
        };
        let progress = context.progress();
        let recorded = self.queue.finish(job.id, job.token, &finish, &progress, Timestamp::now()).await;
        match recorded {
            Ok(true) => {
                metrics::counter!("jobs_processed", "kind" => job.kind.clone(), "outcome" => outcome_label)
                    .increment(1);
                match finish.error() {
                    None => {
                        tracing::info!(job.id = %job.id, job.kind = %job.kind, attempt = job.attempt, "job succeeded")
                    }
                    Some(error) => {
                        tracing::warn!(job.id = %job.id, job.kind = %job.kind, attempt = job.attempt, outcome = outcome_label, %error, "job did not succeed")
                    }
                }
                Settled { id: job.id, state: Some(finish.state()) }
            }
            Ok(false) => {
                tracing::warn!(job.id = %job.id, "job lease lost before its result was recorded; discarded");
                Settled { id: job.id, state: None }
            }
            Err(err) => {
                // The lease will expire and another run will redo the (idempotent) work.
                tracing::error!(job.id = %job.id, error = %err, "recording the job's result failed");
                Settled { id: job.id, state: None }
            }
        }
    }

    /// Runs the handler in its own task (a panic becomes a transient failure, not a dead
    /// worker) while a heartbeat renews the lease every third of it.
    async fn run_with_heartbeat(
        &self,
        handler: Arc<dyn JobHandler>,
        job: &ClaimedJob,
        context: Arc<RunContext>,
    ) -> Result<(), JobError> {
        let running = tokio::spawn({
            let (job, context) = (job.clone(), context.clone());
            async move { handler.run(&job, &context).await }
        });
        let heartbeat = async {
            let mut ticks = tokio::time::interval((self.settings.lease / 3).max(Duration::from_millis(10)));
            ticks.tick().await;
            loop {
                ticks.tick().await;
                match context.renew().await {
                    Err(JobError::LeaseLost) => break,
                    Err(err) => tracing::warn!(job.id = %job.id, error = %err, "job heartbeat failed"),
                    Ok(()) => {}
                }
            }
            std::future::pending::<()>().await
        };
        let result = tokio::select! {
            result = running => result,
            () = heartbeat => unreachable!("the heartbeat never completes"),
        };
        match result {
            Ok(_) if context.lease_lost() => Err(JobError::LeaseLost),
            Ok(result) => result,
            Err(join) => Err(JobError::Transient(anyhow::anyhow!("job handler panicked: {join}"))),
        }
    }

    async fn release(&self, job: &ClaimedJob, context: &RunContext) -> Settled {
        // Progress first (fenced), so the next run resumes where this one stopped.
        let _ = context.renew().await;
        match self.queue.release(job.id, job.token, Timestamp::now()).await {
            Ok(true) => {
                tracing::info!(job.id = %job.id, "job handed back to the queue on shutdown");
                Settled { id: job.id, state: Some(JobState::Queued) }
            }
            Ok(false) => Settled { id: job.id, state: None },
            Err(err) => {
                tracing::warn!(job.id = %job.id, error = %err, "releasing the job failed; it is reclaimed when its lease expires");
                Settled { id: job.id, state: None }
            }
        }
    }

    /// Keeps `jobs_queue_depth{state}` current, one cheap indexed count every [`DEPTH_EVERY`],
    /// and applies the retention rules every [`PURGE_EVERY`].
    async fn report_depth(&self, shutdown: CancellationToken) {
        let interval = self.settings.poll_interval.max(DEPTH_EVERY);
        let mut last_purge: Option<tokio::time::Instant> = None;
        loop {
            if let Ok(depth) = self.queue.depth().await {
                metrics::gauge!("jobs_queue_depth", "state" => "queued").set(depth.queued as f64);
                metrics::gauge!("jobs_queue_depth", "state" => "running").set(depth.running as f64);
            }
            if last_purge.is_none_or(|at| at.elapsed() >= PURGE_EVERY) {
                last_purge = Some(tokio::time::Instant::now());
                self.purge().await;
            }
            tokio::select! {
                () = shutdown.cancelled() => return,
                () = tokio::time::sleep(interval) => {}
            }
        }
    }

    /// Applies the retention rules once; failures are logged and retried at the next round.
    pub async fn purge(&self) {
        match self.queue.purge(&self.settings.retention, Timestamp::now()).await {
            Ok(purged) if purged == Default::default() => {}
            Ok(purged) => {
                metrics::counter!("jobs_purged").increment(purged.jobs);
                tracing::info!(
                    jobs = purged.jobs,
                    dead_payloads = purged.dead_payloads,
                    chunks = purged.chunks,
                    "job retention applied"
                );
            }
            Err(err) => tracing::warn!(error = %err, "job retention not applied; retrying later"),
        }
    }
}

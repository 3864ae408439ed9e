//! What a job is to the worker: a handler for one kind, and the context it runs in.

use async_trait::async_trait;
use pfs_domain::Timestamp;
use pfs_storage::jobs::{ClaimedJob, JobId, JobProgress, JobQueue, LeaseToken};
use std::sync::{Arc, Mutex};
use std::time::Duration;
use tokio_util::sync::CancellationToken;

/// Runs the jobs of one kind. A run may be repeated (after a crash, or a lease that expired
/// while the worker stalled), so its effect must be idempotent: re-running a finished run
/// changes nothing.
#[async_trait]
pub trait JobHandler: Send + Sync + 'static {
    /// The `kind` this handler runs (stored with each job).
    fn kind(&self) -> &'static str;

    async fn run(&self, job: &ClaimedJob, context: &RunContext) -> Result<(), JobError>;
}

/// Why a run did not succeed; decides what happens to the job.
#[derive(Debug, thiserror::Error)]
pub enum JobError {
    /// Retrying cannot help (invalid input): the job is `failed` at once.
    #[error("{0}")]
    Permanent(String),
    /// Something that may work next time (the database was unavailable, ...): retried with
    /// backoff until `max_attempts`, then `dead`.
    #[error(transparent)]
    Transient(#[from] anyhow::Error),
    /// The worker is shutting down: the job goes back to the queue, this run uncounted.
    #[error("interrupted by shutdown")]
    Interrupted,
    /// Another worker holds the job now (this run's lease expired); this run must stop and
    /// record nothing.
    #[error("lease lost")]
    LeaseLost,
}

/// A run's link to the queue: progress checkpoints (which also renew the lease) and the
/// signals to stop.
pub struct RunContext {
    queue: Arc<dyn JobQueue>,
    id: JobId,
    token: LeaseToken,
    lease: Duration,
    progress: Mutex<JobProgress>,
    shutdown: CancellationToken,
    lost: CancellationToken,
    /// Held across reading the progress and writing it, so the heartbeat can never write an
    /// older snapshot over a newer checkpoint.
    renewing: tokio::sync::Mutex<()>,
}

impl RunContext {
    pub(crate) fn new(
        queue: Arc<dyn JobQueue>,
        job: &ClaimedJob,
        lease: Duration,
        shutdown: CancellationToken,
    ) -> Self {
        Self {
            queue,
            id: job.id,
            token: job.token,
            lease,
            progress: Mutex::new(job.progress.clone()),
            shutdown,
            lost: CancellationToken::new(),
            renewing: tokio::sync::Mutex::new(()),
        }
    }

    /// Records progress durably (fenced by this run's lease) and renews the lease. Handlers
    /// call it after each unit of work has committed, so a later run can resume from there.
    /// Fails with `LeaseLost` once another worker owns the job and with `Interrupted` when the
    /// worker is shutting down (after saving the progress).
    pub async fn checkpoint(&self, progress: JobProgress) -> Result<(), JobError> {
        self.record(progress);
        self.renew().await?;
        if self.shutdown.is_cancelled() {
            return Err(JobError::Interrupted);
        }
        Ok(())
    }

    /// Sets the progress the run ends with (written with its final state) without a round trip.
    pub fn record(&self, progress: JobProgress) {
        *self.progress.lock().unwrap_or_else(|e| e.into_inner()) = progress;
    }

    /// Extends the lease with the latest progress. Storage trouble is reported as transient;
    /// a lease that is no longer ours is `LeaseLost`.
    pub(crate) async fn renew(&self) -> Result<(), JobError> {
        let _one_at_a_time = self.renewing.lock().await;
        if self.lost.is_cancelled() {
            return Err(JobError::LeaseLost);
        }
        let progress = self.progress();
        match self.queue.heartbeat(self.id, self.token, &progress, Timestamp::now(), self.lease).await {
            Ok(true) => Ok(()),
            Ok(false) => {
                self.lost.cancel();
                Err(JobError::LeaseLost)
            }
            Err(err) => Err(JobError::Transient(err.into())),
        }
    }

    /// Chunk `seq` of this job's staged input (see `JobQueue::stage_chunk`), `None` if it is
    /// not stored. Storage trouble is transient.
    pub async fn chunk(&self, seq: u32) -> Result<Option<Vec<u8>>, JobError> {
        self.queue.chunk(self.id, seq).await.map_err(|err| JobError::Transient(err.into()))
    }

    /// The progress last recorded by the handler (or by earlier runs).
    pub fn progress(&self) -> JobProgress {
        self.progress.lock().unwrap_or_else(|e| e.into_inner()).clone()
    }

    /// Whether this run should stop: shutdown, or the lease was lost.
    pub fn should_stop(&self) -> Option<JobError> {
        if self.lost.is_cancelled() {
            Some(JobError::LeaseLost)
        } else if self.shutdown.is_cancelled() {
            Some(JobError::Interrupted)
        } else {
            None
        }
    }

    pub(crate) fn lease_lost(&self) -> bool {
        self.lost.is_cancelled()
    }
}

//! The job queue port: durable background jobs kept in the service's own database.
//!
//! A worker *claims* the most urgent runnable job (highest priority, then oldest) and gets a
//! lease: a fresh random token valid until `now + lease`. Every later write about that run
//! (progress, the final state, a release) names the token, and is refused once the job has
//! been claimed again, so a worker that stalled past its lease can never overwrite the result
//! of the worker that took over. A job whose lease expired is runnable again: a crashed
//! worker's job is picked up by another.
//!
//! Time is passed in (`now`) rather than read here, so every replica's decisions use the same
//! rule and tests can move the clock without sleeping.

use crate::StoreResult;
use async_trait::async_trait;
use pfs_domain::Timestamp;
use std::fmt;
use std::time::Duration;

/// A job's public id (a random UUID in its hyphenated lowercase form).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct JobId(pub uuid::Uuid);

impl JobId {
    pub fn generate() -> Self {
        Self(uuid::Uuid::new_v4())
    }

    /// Any UUID spelling (hyphenated or not, either case).
    pub fn parse(text: &str) -> Option<Self> {
        uuid::Uuid::parse_str(text).ok().map(Self)
    }
}

impl fmt::Display for JobId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        self.0.hyphenated().fmt(f)
    }
}

/// The token that fences one run of a job: it changes on every claim.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct LeaseToken(pub uuid::Uuid);

impl LeaseToken {
    pub fn generate() -> Self {
        Self(uuid::Uuid::new_v4())
    }
}

impl fmt::Display for LeaseToken {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        self.0.hyphenated().fmt(f)
    }
}

/// Where a job is in its life.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum JobState {
    /// Waiting to run (new, or retrying after `run_at`).
    Queued,
    /// Claimed by a worker whose lease has not been given up.
    Running,
    Succeeded,
    /// Failed for a reason retrying cannot cure (e.g. invalid input); not retried.
    Failed,
    /// Failed on every one of its `max_attempts` attempts.
    Dead,
}

impl JobState {
    pub const ALL: [Self; 5] = [Self::Queued, Self::Running, Self::Succeeded, Self::Failed, Self::Dead];

    /// The stored and wire name.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Queued => "queued",
            Self::Running => "running",
            Self::Succeeded => "succeeded",
            Self::Failed => "failed",
            Self::Dead => "dead",
        }
    }

    pub fn parse(text: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|state| state.as_str() == text)
    }

    /// Whether the job will never run again.
    pub fn is_final(self) -> bool {
        matches!(self, Self::Succeeded | Self::Failed | Self::Dead)
    }
}

/// A job to enqueue.
#[derive(Clone, Debug)]
pub struct NewJob {
    pub id: JobId,
    /// Which handler runs it, e.g. `portfolio_import`.
    pub kind: String,
    /// The handler's input, in the handler's own encoding.
    pub payload: Vec<u8>,
    /// Higher runs first.
    pub priority: i32,
    /// Attempts before the job is dead (at least 1).
    pub max_attempts: u32,
    /// Units of work, when known up front (progress shows `processed / total`).
    pub total: u64,
}

/// A job handed to a worker, with the lease that fences this run.
#[derive(Clone, Debug)]
pub struct ClaimedJob {
    pub id: JobId,
    pub kind: String,
    pub payload: Vec<u8>,
    /// This run's number, from 1. Above `max_attempts` only when earlier runs lost their
    /// lease (the worker died), and then the job is dead without running again.
    pub attempt: u32,
    pub max_attempts: u32,
    pub token: LeaseToken,
    /// What the previous runs recorded (progress and report), to resume from.
    pub progress: JobProgress,
}

/// How far a job got, and its handler's report (counts, errors) as JSON text.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct JobProgress {
    pub processed: u64,
    pub total: u64,
    pub report: Option<String>,
}

/// Everything known about a job, for status queries.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct JobRecord {
    pub id: JobId,
    pub kind: String,
    pub state: JobState,
    pub priority: i32,
    /// Runs started so far.
    pub attempts: u32,
    pub max_attempts: u32,
    pub progress: JobProgress,
    /// The last run's error, if it failed.
    pub last_error: Option<String>,
    pub created_at: Timestamp,
    pub updated_at: Timestamp,
    /// When the first run started.
    pub started_at: Option<Timestamp>,
    pub finished_at: Option<Timestamp>,
    /// When a queued job becomes runnable (later than now while it waits out a backoff).
    pub run_at: Timestamp,
}

/// How a run ended.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Finish {
    Succeeded,
    /// Queue it again, runnable from `run_at` (the backoff), with this error recorded.
    Retry {
        error: String,
        run_at: Timestamp,
    },
    Failed {
        error: String,
    },
    Dead {
        error: String,
    },
}

impl Finish {
    /// The state the job is left in.
    pub fn state(&self) -> JobState {
        match self {
            Self::Succeeded => JobState::Succeeded,
            Self::Retry { .. } => JobState::Queued,
            Self::Failed { .. } => JobState::Failed,
            Self::Dead { .. } => JobState::Dead,
        }
    }

    pub fn error(&self) -> Option<&str> {
        match self {
            Self::Succeeded => None,
            Self::Retry { error, .. } | Self::Failed { error } | Self::Dead { error } => Some(error),
        }
    }
}

/// Jobs waiting and jobs running, for the `jobs_queue_depth` gauge.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct QueueDepth {
    pub queued: u64,
    pub running: u64,
}

/// A durable job queue. Each method is one atomic operation; the fenced ones return `false`
/// (and change nothing) when `token` no longer holds the job.
#[async_trait]
pub trait JobQueue: Send + Sync + 'static {
    async fn enqueue(&self, job: &NewJob, now: Timestamp) -> StoreResult<()>;

    /// Takes the most urgent runnable job, if any: queued with `run_at <= now`, or running
    /// with an expired lease. Ordered by priority (highest first), then age (oldest first).
    /// Two concurrent claims never return the same job.
    async fn claim(&self, now: Timestamp, lease: Duration) -> StoreResult<Option<ClaimedJob>>;

    /// Extends the lease to `now + lease` and records progress.
    async fn heartbeat(
        &self,
        id: JobId,
        token: LeaseToken,
        progress: &JobProgress,
        now: Timestamp,
        lease: Duration,
    ) -> StoreResult<bool>;

    /// Ends the run: records the outcome and the final progress, and gives up the lease. The
    /// payload and chunks of a succeeded or failed job are dropped: it will never run again. A
    /// dead job keeps them for [`Retention::dead_payload`], so an operator can requeue it
    /// after a fix.
    async fn finish(
        &self,
        id: JobId,
        token: LeaseToken,
        outcome: &Finish,
        progress: &JobProgress,
        now: Timestamp,
    ) -> StoreResult<bool>;

    /// Gives the job back without counting this run as an attempt (a worker shutting down).
    async fn release(&self, id: JobId, token: LeaseToken, now: Timestamp) -> StoreResult<bool>;

    async fn get(&self, id: JobId) -> StoreResult<Option<JobRecord>>;

    async fn depth(&self) -> StoreResult<QueueDepth>;

    /// Stores one chunk of a job's input (`seq` from 0) before or after the job is enqueued, so
    /// a large input is written and read back in bounded pieces instead of one payload. Chunks
    /// go with their job: dropped when it succeeds or fails, when a dead job's payload is
    /// dropped, and when it is purged; chunks with no job (an upload refused or cut off) are
    /// purged once older than [`Retention::orphan_chunks`].
    async fn stage_chunk(&self, id: JobId, seq: u32, payload: &[u8], now: Timestamp) -> StoreResult<()>;

    /// One staged chunk, if it is (still) stored.
    async fn chunk(&self, id: JobId, seq: u32) -> StoreResult<Option<Vec<u8>>>;

    /// Drops every chunk of `id` (an upload that was refused after some were staged).
    async fn discard_chunks(&self, id: JobId) -> StoreResult<()>;

    /// Applies the retention rules at `now`; see [`Retention`].
    async fn purge(&self, retention: &Retention, now: Timestamp) -> StoreResult<Purged>;
}

/// How long finished jobs and their inputs are kept, so the job tables stay bounded by the
/// rate of new jobs times these durations.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Retention {
    /// Succeeded, failed and dead jobs are deleted (with any input left) this long after they
    /// finished; their status is 404 from then on.
    pub finished: Duration,
    /// A dead job keeps its input this long (an operator may requeue it after a fix), then the
    /// input is dropped and only its status remains.
    pub dead_payload: Duration,
    /// Chunks without a job row are deleted once staged this long ago.
    pub orphan_chunks: Duration,
}

/// What one [`JobQueue::purge`] removed.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Purged {
    pub jobs: u64,
    /// Dead jobs whose input was dropped.
    pub dead_payloads: u64,
    pub chunks: u64,
}

/// `now - age` in milliseconds, saturating: the cut-off a retention rule compares with.
pub fn cutoff(now: Timestamp, age: Duration) -> i64 {
    now.millis().saturating_sub(i64::try_from(age.as_millis()).unwrap_or(i64::MAX))
}

/// `now + lease` in milliseconds, saturating (a lease of years is not an error).
pub fn lease_deadline(now: Timestamp, lease: Duration) -> i64 {
    now.millis().saturating_add(i64::try_from(lease.as_millis()).unwrap_or(i64::MAX))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn states_round_trip_through_their_names() {
        for state in JobState::ALL {
            assert_eq!(JobState::parse(state.as_str()), Some(state));
        }
        assert_eq!(JobState::parse("done"), None);
    }

    #[test]
    fn job_ids_accept_any_uuid_spelling_and_print_hyphenated() {
        let id = JobId::parse("6F9619FF8B86D011B42D00C04FC964FF").unwrap();
        assert_eq!(id.to_string(), "6f9619ff-8b86-d011-b42d-00c04fc964ff");
        assert_eq!(JobId::parse(&id.to_string()), Some(id));
        assert_eq!(JobId::parse("not-a-uuid"), None);
    }
}

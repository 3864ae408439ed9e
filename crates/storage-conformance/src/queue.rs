//! The job-queue suite: what every backend with a [`JobQueue`] must do (claim order,
//! leases and fencing, retries, dead jobs), run by the worker pool where attempts matter.
//! Backends invoke [`queue_suite!`](crate::queue_suite) like the portfolio suite.

use async_trait::async_trait;
use pfs_domain::Timestamp;
use pfs_jobs::{Backoff, JobError, JobHandler, RunContext, WorkerPool, WorkerSettings};
use pfs_storage::jobs::{ClaimedJob, Finish, JobId, JobProgress, JobQueue, JobState, NewJob, Purged, Retention};
use std::collections::HashSet;
use std::sync::Arc;
use std::sync::atomic::{AtomicU32, Ordering};
use std::time::Duration;
use tokio::sync::Notify;
use tokio_util::sync::CancellationToken;

pub type Queue = Arc<dyn JobQueue>;

/// Expands to one test per check. `$make` is an async expression yielding
/// `(Arc<dyn JobQueue>, guard)`.
#[macro_export]
macro_rules! queue_suite {
    ($make:expr) => {
        $crate::queue_suite!(@tests $make;
            claims_follow_priority_then_age, concurrent_claimers_never_share_a_job,
            an_expired_lease_is_reclaimed_and_the_stale_worker_is_fenced_off,
            a_retry_waits_for_its_backoff_and_a_release_does_not_count,
            a_failing_job_is_retried_then_dead_after_max_attempts, a_job_whose_worker_died_on_every_attempt_is_dead,
            chunks_are_read_back_in_order_and_dropped_when_their_job_succeeds,
            retention_deletes_finished_jobs_dead_inputs_and_orphan_chunks_but_never_pending_work);
    };
    (@tests $make:expr; $($name:ident),*) => {
        $(
            #[tokio::test(flavor = "multi_thread", worker_threads = 4)]
            async fn $name() {
                let (queue, _guard) = $make.await;
                $crate::queue::$name(queue).await;
            }
        )*
    };
}

const LEASE: Duration = Duration::from_secs(30);

fn at(millis: i64) -> Timestamp {
    Timestamp::from_millis(1_800_000_000_000 + millis).unwrap()
}

fn job(priority: i32, max_attempts: u32) -> NewJob {
    NewJob { id: JobId::generate(), kind: "test".into(), payload: b"{}".to_vec(), priority, max_attempts, total: 0 }
}

async fn enqueue(queue: &dyn JobQueue, job: NewJob, now: Timestamp) -> JobId {
    queue.enqueue(&job, now).await.unwrap();
    job.id
}

pub async fn claims_follow_priority_then_age(queue: Queue) {
    let q = queue.as_ref();
    let low_old = enqueue(q, job(0, 3), at(0)).await;
    let mid_old = enqueue(q, job(5, 3), at(1)).await;
    let low_new = enqueue(q, job(0, 3), at(2)).await;
    let mid_new = enqueue(q, job(5, 3), at(3)).await;
    let high = enqueue(q, job(10, 3), at(4)).await;
    let mut order = Vec::new();
    while let Some(claimed) = q.claim(at(10), LEASE).await.unwrap() {
        assert_eq!(claimed.attempt, 1);
        order.push(claimed.id);
    }
    assert_eq!(order, [high, mid_old, mid_new, low_old, low_new]);
    let depth = q.depth().await.unwrap();
    assert_eq!((depth.queued, depth.running), (0, 5));
}

pub async fn concurrent_claimers_never_share_a_job(queue: Queue) {
    let mut expected = HashSet::new();
    for i in 0..200 {
        expected.insert(enqueue(queue.as_ref(), job(i % 3, 1), at(i64::from(i))).await);
    }
    let claimers: Vec<_> = (0..8)
        .map(|_| {
            let queue = queue.clone();
            tokio::spawn(async move {
                let mut mine = Vec::new();
                while let Some(claimed) = queue.claim(at(1_000), LEASE).await.unwrap() {
                    let done =
                        queue.finish(claimed.id, claimed.token, &Finish::Succeeded, &claimed.progress, at(1_001)).await;
                    assert!(done.unwrap(), "the claimer's own lease holds");
                    mine.push(claimed.id);
                }
                mine
            })
        })
        .collect();
    let mut seen = Vec::new();
    for claimer in claimers {
        seen.extend(claimer.await.unwrap());
    }
    assert_eq!(seen.len(), 200, "every job processed exactly once");
    assert_eq!(seen.into_iter().collect::<HashSet<_>>(), expected);
    for id in expected {
        let record = queue.get(id).await.unwrap().unwrap();
        assert_eq!((record.state, record.attempts), (JobState::Succeeded, 1));
    }
}

pub async fn an_expired_lease_is_reclaimed_and_the_stale_worker_is_fenced_off(queue: Queue) {
    let q = queue.as_ref();
    let id = enqueue(q, job(0, 3), at(0)).await;
    let first = q.claim(at(0), LEASE).await.unwrap().unwrap();
    assert!(q.claim(at(29_999), LEASE).await.unwrap().is_none(), "the lease still holds");
    let second = q.claim(at(30_000), LEASE).await.unwrap().expect("reclaimed once the lease expired");
    assert_eq!((second.id, second.attempt), (id, 2));
    assert_ne!(first.token, second.token);

    let stale_progress = JobProgress { processed: 99, total: 99, report: Some("stale".into()) };
    assert!(!q.heartbeat(id, first.token, &stale_progress, at(30_001), LEASE).await.unwrap());
    assert!(!q.finish(id, first.token, &Finish::Succeeded, &stale_progress, at(30_002)).await.unwrap());
    assert!(!q.release(id, first.token, at(30_003)).await.unwrap());
    let record = q.get(id).await.unwrap().unwrap();
    assert_eq!((record.state, record.progress.processed), (JobState::Running, 0), "stale writes changed nothing");

    let progress = JobProgress { processed: 3, total: 3, report: Some("{\"ok\":true}".into()) };
    assert!(q.heartbeat(id, second.token, &progress, at(30_004), LEASE).await.unwrap());
    assert!(q.finish(id, second.token, &Finish::Succeeded, &progress, at(30_005)).await.unwrap());
    let record = q.get(id).await.unwrap().unwrap();
    assert_eq!(record.state, JobState::Succeeded);
    assert_eq!(record.progress, progress);
    assert_eq!(record.attempts, 2);
    assert_eq!(record.started_at, Some(at(0)));
    assert_eq!(record.finished_at, Some(at(30_005)));
    assert!(q.claim(at(100_000), LEASE).await.unwrap().is_none(), "finished jobs are never claimed");
}

pub async fn a_retry_waits_for_its_backoff_and_a_release_does_not_count(queue: Queue) {
    let q = queue.as_ref();
    let id = enqueue(q, job(0, 3), at(0)).await;
    let first = q.claim(at(0), LEASE).await.unwrap().unwrap();
    let retry = Finish::Retry { error: "database restarting".into(), run_at: at(5_000) };
    assert!(q.finish(id, first.token, &retry, &JobProgress::default(), at(10)).await.unwrap());
    let record = q.get(id).await.unwrap().unwrap();
    assert_eq!((record.state, record.run_at), (JobState::Queued, at(5_000)));
    assert_eq!(record.last_error.as_deref(), Some("database restarting"));
    assert!(q.claim(at(4_999), LEASE).await.unwrap().is_none(), "not before its backoff");
    let second = q.claim(at(5_000), LEASE).await.unwrap().unwrap();
    assert_eq!(second.attempt, 2);
    assert!(q.release(id, second.token, at(5_001)).await.unwrap());
    let third = q.claim(at(5_002), LEASE).await.unwrap().unwrap();
    assert_eq!(third.attempt, 2, "a released run is not counted");
    let dead = Finish::Dead { error: "gave up".into() };
    assert!(q.finish(id, third.token, &dead, &JobProgress::default(), at(5_003)).await.unwrap());
    assert_eq!(q.get(id).await.unwrap().unwrap().state, JobState::Dead);
    assert!(q.get(JobId::generate()).await.unwrap().is_none());
}

/// Fails every run with a transient error.
struct AlwaysFails(AtomicU32);

#[async_trait]
impl JobHandler for AlwaysFails {
    fn kind(&self) -> &'static str {
        "test"
    }

    async fn run(&self, _: &ClaimedJob, _: &RunContext) -> Result<(), JobError> {
        self.0.fetch_add(1, Ordering::SeqCst);
        Err(JobError::Transient(anyhow::anyhow!("boom")))
    }
}

fn settings(lease: Duration) -> WorkerSettings {
    WorkerSettings {
        concurrency: 1,
        poll_interval: Duration::from_millis(20),
        lease,
        backoff: Backoff { base: Duration::ZERO, max: Duration::ZERO },
        retention: pfs_storage::jobs::Retention {
            finished: Duration::from_secs(3600),
            dead_payload: Duration::from_secs(3600),
            orphan_chunks: Duration::from_secs(3600),
        },
    }
}

pub async fn a_failing_job_is_retried_then_dead_after_max_attempts(queue: Queue) {
    let id = enqueue(queue.as_ref(), job(0, 3), Timestamp::now()).await;
    let handler = Arc::new(AlwaysFails(AtomicU32::new(0)));
    let pool = WorkerPool::new(queue.clone(), settings(LEASE), Arc::new(Notify::new())).with_handler(handler.clone());
    let stop = CancellationToken::new();
    let mut states = Vec::new();
    while let Some(settled) = pool.run_next(&stop).await.unwrap() {
        assert_eq!(settled.id, id);
        states.push(settled.state.unwrap());
    }
    assert_eq!(states, [JobState::Queued, JobState::Queued, JobState::Dead]);
    assert_eq!(handler.0.load(Ordering::SeqCst), 3);
    let record = queue.get(id).await.unwrap().unwrap();
    assert_eq!((record.state, record.attempts), (JobState::Dead, 3));
    assert!(record.last_error.unwrap().contains("boom"));
}

pub async fn a_job_whose_worker_died_on_every_attempt_is_dead(queue: Queue) {
    let q = queue.as_ref();
    let id = enqueue(q, job(0, 2), Timestamp::now()).await;
    let short = Duration::from_millis(1);
    q.claim(Timestamp::now(), short).await.unwrap().unwrap();
    tokio::time::sleep(Duration::from_millis(5)).await;
    q.claim(Timestamp::now(), short).await.unwrap().unwrap();
    tokio::time::sleep(Duration::from_millis(5)).await;
    let handler = Arc::new(AlwaysFails(AtomicU32::new(0)));
    let pool = WorkerPool::new(queue.clone(), settings(LEASE), Arc::new(Notify::new())).with_handler(handler.clone());
    let settled = pool.run_next(&CancellationToken::new()).await.unwrap().unwrap();
    assert_eq!(settled.state, Some(JobState::Dead));
    assert_eq!(handler.0.load(Ordering::SeqCst), 0, "not run a third time");
    assert!(q.get(id).await.unwrap().unwrap().last_error.unwrap().contains("lease expired"));
}

pub async fn chunks_are_read_back_in_order_and_dropped_when_their_job_succeeds(queue: Queue) {
    let q = queue.as_ref();
    let new = job(0, 3);
    q.stage_chunk(new.id, 0, b"[first]", at(0)).await.unwrap();
    q.stage_chunk(new.id, 1, b"[second]", at(1)).await.unwrap();
    let id = enqueue(q, new, at(2)).await;
    assert_eq!(q.chunk(id, 1).await.unwrap().as_deref(), Some(&b"[second]"[..]));
    assert_eq!(q.chunk(id, 0).await.unwrap().as_deref(), Some(&b"[first]"[..]));
    assert_eq!(q.chunk(id, 2).await.unwrap(), None);
    assert_eq!(q.chunk(JobId::generate(), 0).await.unwrap(), None, "chunks belong to their job");
    let claimed = q.claim(at(3), LEASE).await.unwrap().unwrap();
    assert!(q.finish(id, claimed.token, &Finish::Succeeded, &claimed.progress, at(4)).await.unwrap());
    assert_eq!(q.chunk(id, 0).await.unwrap(), None, "a finished job's input is dropped");

    let refused = JobId::generate();
    q.stage_chunk(refused, 0, b"[x]", at(5)).await.unwrap();
    q.discard_chunks(refused).await.unwrap();
    assert_eq!(q.chunk(refused, 0).await.unwrap(), None);
}

pub async fn retention_deletes_finished_jobs_dead_inputs_and_orphan_chunks_but_never_pending_work(queue: Queue) {
    let q = queue.as_ref();
    let retention = Retention {
        finished: Duration::from_secs(100),
        dead_payload: Duration::from_secs(10),
        orphan_chunks: Duration::from_secs(5),
    };
    let succeeded = enqueue(q, job(3, 1), at(0)).await;
    let claimed = q.claim(at(0), LEASE).await.unwrap().unwrap();
    assert!(q.finish(succeeded, claimed.token, &Finish::Succeeded, &claimed.progress, at(0)).await.unwrap());
    let dead_job = job(2, 1);
    q.stage_chunk(dead_job.id, 0, b"[dead input]", at(0)).await.unwrap();
    let dead = enqueue(q, dead_job, at(0)).await;
    let claimed = q.claim(at(0), LEASE).await.unwrap().unwrap();
    let died = Finish::Dead { error: "boom".into() };
    assert!(q.finish(dead, claimed.token, &died, &claimed.progress, at(0)).await.unwrap());
    let pending_job = job(0, 1);
    q.stage_chunk(pending_job.id, 0, b"[pending input]", at(0)).await.unwrap();
    let pending = enqueue(q, pending_job, at(0)).await;
    let orphan = JobId::generate();
    q.stage_chunk(orphan, 0, b"[cut-off upload]", at(0)).await.unwrap();

    assert_eq!(q.purge(&retention, at(4_000)).await.unwrap(), Purged::default(), "nothing is old enough yet");
    let purged = q.purge(&retention, at(11_000)).await.unwrap();
    assert_eq!((purged.jobs, purged.dead_payloads, purged.chunks), (0, 1, 2));
    assert_eq!(q.chunk(dead, 0).await.unwrap(), None);
    assert_eq!(q.chunk(orphan, 0).await.unwrap(), None);
    assert_eq!(q.get(dead).await.unwrap().unwrap().state, JobState::Dead, "its status stays");
    assert_eq!(q.purge(&retention, at(12_000)).await.unwrap(), Purged::default(), "a purge is idempotent");

    let purged = q.purge(&retention, at(100_000)).await.unwrap();
    assert_eq!(purged.jobs, 2);
    assert_eq!(q.get(succeeded).await.unwrap(), None);
    assert_eq!(q.get(dead).await.unwrap(), None);
    let kept = q.get(pending).await.unwrap().expect("a queued job is never purged");
    assert_eq!(kept.state, JobState::Queued);
    assert_eq!(q.chunk(pending, 0).await.unwrap().as_deref(), Some(&b"[pending input]"[..]));
}

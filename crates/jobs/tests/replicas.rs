//! Import jobs across replicas and crashes, on one shared PostgreSQL schema.

use pfs_domain::{Portfolio, Timestamp, Version};
use pfs_jobs::import::{ImportHandler, ImportItem, ImportPayload, ImportReport, KIND};
use pfs_jobs::{Backoff, JobService, WorkerPool, WorkerSettings};
use pfs_storage::jobs::{JobId, JobState};
use pfs_storage::{ListAll, PortfolioStore};
use pfs_storage_postgres::PostgresSettings;
use pfs_storage_postgres::testing::fresh_store;
use std::sync::Arc;
use std::time::Duration;
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;

fn settings(lease: Duration) -> WorkerSettings {
    WorkerSettings {
        concurrency: 2,
        poll_interval: Duration::from_millis(20),
        lease,
        backoff: Backoff { base: Duration::from_millis(10), max: Duration::from_millis(50) },
        retention: pfs_storage::jobs::Retention {
            finished: Duration::from_secs(3600),
            dead_payload: Duration::from_secs(3600),
            orphan_chunks: Duration::from_secs(3600),
        },
    }
}

/// One replica: its own pool on the shared schema, its own workers.
fn replica(store: &Arc<pfs_storage_postgres::PostgresStore>, lease: Duration) -> (Arc<WorkerPool>, JobService) {
    let service = JobService::new(store.clone(), 3);
    let handler = ImportHandler { store: store.clone(), batch_size: 7, max_errors: 10 };
    let pool =
        WorkerPool::new(store.clone(), settings(lease), service.doorbell.clone()).with_handler(Arc::new(handler));
    (Arc::new(pool), service)
}

fn batch(n: usize, tag: &str) -> Vec<Portfolio> {
    (0..n).map(|i| Portfolio::new(format!("{tag}-{i}"), Some(Timestamp::now()), Version::INITIAL)).collect()
}

fn payload(portfolios: &[Portfolio]) -> Vec<u8> {
    ImportPayload::Portfolios { portfolios: portfolios.iter().map(ImportItem::from).collect() }.encode()
}

async fn wait_until_final(service: &JobService, ids: &[JobId]) {
    let deadline = tokio::time::Instant::now() + Duration::from_secs(30);
    for id in ids {
        loop {
            let record = service.get(*id).await.unwrap().unwrap();
            if record.state.is_final() {
                break;
            }
            assert!(tokio::time::Instant::now() < deadline, "job {id} still {:?}", record.state);
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }
}

fn report(text: Option<&str>) -> ImportReport {
    serde_json::from_str(text.expect("a report")).unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn two_replicas_share_the_queue_and_every_import_takes_effect_exactly_once() {
    let (_primary, schema) = fresh_store().await;
    let a = Arc::new(schema.connect(&PostgresSettings::default()).await);
    let b = Arc::new(schema.connect(&PostgresSettings::default()).await);
    let (pool_a, service_a) = replica(&a, Duration::from_secs(30));
    let (pool_b, _) = replica(&b, Duration::from_secs(30));

    let mut ids = Vec::new();
    for job in 0..40 {
        let portfolios = batch(25, &format!("job{job}"));
        ids.push(service_a.enqueue(KIND, payload(&portfolios), 0, 25).await.unwrap());
    }
    let (tracker, stop) = (TaskTracker::new(), CancellationToken::new());
    pool_a.spawn(&tracker, stop.clone());
    pool_b.spawn(&tracker, stop.clone());
    wait_until_final(&service_a, &ids).await;
    stop.cancel();
    tracker.close();
    tracker.wait().await;

    for id in &ids {
        let record = service_a.get(*id).await.unwrap().unwrap();
        assert_eq!((record.state, record.attempts), (JobState::Succeeded, 1), "{id}");
        assert_eq!((record.progress.processed, record.progress.total), (25, 25));
        let counts = report(record.progress.report.as_deref()).counts;
        assert_eq!((counts.created, counts.skipped_existing, counts.invalid), (25, 0, 0));
    }
    let stored = a.list_all().await.unwrap();
    assert_eq!(stored.len(), 1000, "every portfolio of every job stored once");
    let kept: i64 = sqlx::query_scalar("SELECT COALESCE(SUM(octet_length(payload)), 0)::bigint FROM job")
        .fetch_one(a.pool())
        .await
        .unwrap();
    assert_eq!(kept, 0, "finished jobs drop their payloads");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_job_claimed_by_a_worker_that_died_is_picked_up_after_its_lease() {
    let (store, _schema) = fresh_store().await;
    let store = Arc::new(store);
    let (pool, service) = replica(&store, Duration::from_secs(30));
    let portfolios = batch(20, "crash");
    let id = service.enqueue(KIND, payload(&portfolios), 0, 20).await.unwrap();

    // The dying worker: claims with a short lease, loads part of the job, never reports back.
    let claimed = service.queue.claim(Timestamp::now(), Duration::from_millis(300)).await.unwrap().unwrap();
    assert_eq!(claimed.id, id);
    store.insert_missing(&portfolios[..5]).await.unwrap();
    let (tracker, stop) = (TaskTracker::new(), CancellationToken::new());
    pool.spawn(&tracker, stop.clone());
    wait_until_final(&service, &[id]).await;
    stop.cancel();
    tracker.close();
    tracker.wait().await;

    let record = service.get(id).await.unwrap().unwrap();
    assert_eq!((record.state, record.attempts), (JobState::Succeeded, 2));
    let counts = report(record.progress.report.as_deref()).counts;
    assert_eq!((counts.created, counts.skipped_existing), (15, 5), "the dead run's rows are not inserted twice");
    assert_eq!(store.list_all().await.unwrap().len(), 20);
}

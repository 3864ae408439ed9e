//! The pool figures behind the `db_client_connections_*` metrics: occupancy as connections
//! are held, and acquire waits recorded (and still reported as transient when they time out).

use metrics_util::debugging::{DebugValue, DebuggingRecorder};
use pfs_domain::{PortfolioChanges, PortfolioId, Version};
use pfs_storage::{PoolStats, PortfolioStore};
use pfs_storage_sqlite::{SqliteSettings, SqliteStore};
use std::time::Duration;

fn named<'a>(stats: &'a [PoolStats], name: &str) -> &'a PoolStats {
    stats.iter().find(|s| s.name == name).unwrap_or_else(|| panic!("no {name} pool in {stats:?}"))
}

/// The figures once released connections are back in their pools: sqlx returns them from a
/// spawned task, so right after a call one may briefly still count as used.
async fn settled(store: &SqliteStore) -> Vec<PoolStats> {
    for _ in 0..100 {
        let stats = store.pool_stats();
        if stats.iter().all(|s| s.used == 0 && s.idle >= 1) {
            return stats;
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    panic!("connections still checked out: {:?}", store.pool_stats());
}

#[tokio::test]
async fn a_held_connection_counts_as_used_and_max_is_the_configured_size() {
    let dir = tempfile::tempdir().unwrap();
    let settings = SqliteSettings { max_read_connections: 3, ..SqliteSettings::default() };
    let store = SqliteStore::open_file(&dir.path().join("db"), &settings).await.unwrap();
    store.migrate().await.unwrap();

    let stats = settled(&store).await;
    assert_eq!(stats.len(), 2, "{stats:?}");
    assert_eq!(*named(&stats, "writer"), PoolStats { name: "writer", used: 0, idle: 1, max: 1 });
    let reader = named(&stats, "reader");
    assert_eq!((reader.used, reader.max), (0, 3), "{reader:?}");
    assert!(reader.idle >= 1, "min_connections keeps one open: {reader:?}");

    let mut held = store.pool().begin().await.unwrap();
    sqlx::query("SELECT 1").execute(&mut *held).await.unwrap();
    let writer = *named(&store.pool_stats(), "writer");
    assert_eq!(writer, PoolStats { name: "writer", used: 1, idle: 0, max: 1 });
    held.rollback().await.unwrap();
}

/// `with_local_recorder` is per thread, so the store runs on a current-thread runtime here.
#[test]
fn waits_are_recorded_per_pool_and_an_acquire_timeout_stays_transient() {
    let recorder = DebuggingRecorder::new();
    let snapshotter = recorder.snapshotter();
    let runtime = tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap();
    let dir = tempfile::tempdir().unwrap();
    metrics::with_local_recorder(&recorder, || {
        runtime.block_on(async {
            let settings = SqliteSettings { acquire_timeout: Duration::from_millis(100), ..SqliteSettings::default() };
            let store = SqliteStore::open_file(&dir.path().join("db"), &settings).await.unwrap();
            store.migrate().await.unwrap();
            assert!(store.get(PortfolioId::generate()).await.unwrap().is_none());

            let held = store.pool().acquire().await.unwrap();
            let changes = PortfolioChanges { name: "x".into(), date_created: None };
            let err = store.update(PortfolioId::generate(), Version(1), &changes).await.unwrap_err();
            assert!(err.is_transient(), "a pool timeout must stay retryable: {err:?}");
            drop(held);
        });
    });
    let waits: Vec<(String, usize, f64)> = snapshotter
        .snapshot()
        .into_vec()
        .into_iter()
        .filter(|(key, ..)| key.key().name() == pfs_storage::pool::WAIT_TIME_METRIC)
        .filter_map(|(key, _, _, value)| {
            let pool = key.key().labels().find(|l| l.key() == "pool_name")?.value().to_owned();
            let DebugValue::Histogram(samples) = value else { return None };
            Some((pool, samples.len(), samples.iter().map(|s| s.into_inner()).fold(0.0, f64::max)))
        })
        .collect();
    let pool = |name: &str| waits.iter().find(|(p, ..)| p == name).unwrap_or_else(|| panic!("{name}: {waits:?}"));
    assert_eq!(pool("reader").1, 1, "one read, one wait: {waits:?}");
    let (_, count, longest) = pool("writer");
    assert_eq!(*count, 1, "{waits:?}");
    assert!(*longest >= 0.09, "the timed-out wait is recorded at its length: {waits:?}");
}

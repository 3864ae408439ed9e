//! The pool figures behind the `db_client_connections_*` metrics, tracked from the driver's
//! connection monitoring events.

use metrics_util::debugging::{DebugValue, DebuggingRecorder};
use pfs_storage::{ListAll, PoolStats, PortfolioStore};
use pfs_storage_mongo::testing::fresh_store_with;
use pfs_storage_mongo::{MongoSettings, MongoStore};
use std::time::Duration;

fn settings() -> MongoSettings {
    MongoSettings { max_pool_size: 4, min_pool_size: 0, ..MongoSettings::default() }
}

/// Eight reads at once on a pool of four.
async fn concurrent_reads(store: &MongoStore) {
    let mut reads = tokio::task::JoinSet::new();
    for _ in 0..8 {
        let store = store.clone();
        reads.spawn(async move { store.list_all().await });
    }
    while let Some(read) = reads.join_next().await {
        read.unwrap().unwrap();
    }
}

/// The figures once check-ins are counted: the driver reports them from its pool's worker
/// task, just after the operations have returned.
async fn settled(store: &MongoStore) -> PoolStats {
    for _ in 0..200 {
        let [pool]: [PoolStats; 1] = store.pool_stats().try_into().unwrap();
        if pool.used == 0 {
            return pool;
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    panic!("connections still checked out: {:?}", store.pool_stats());
}

#[tokio::test]
async fn connections_opened_by_concurrent_reads_return_idle_under_the_configured_max() {
    let (store, _db) = fresh_store_with(&settings()).await;
    let [before]: [PoolStats; 1] = store.pool_stats().try_into().unwrap();
    assert_eq!((before.name, before.max), ("writer", 4), "{before:?}");

    concurrent_reads(&store).await;
    let after = settled(&store).await;
    assert!((1..=4).contains(&after.idle), "the reads opened connections, at most max: {after:?}");
}

/// `with_local_recorder` is per thread, so the client runs on a current-thread runtime here
/// (its pool workers, which emit the events, included).
#[test]
fn every_checkout_records_its_wait() {
    let recorder = DebuggingRecorder::new();
    let snapshotter = recorder.snapshotter();
    let runtime = tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap();
    metrics::with_local_recorder(&recorder, || {
        runtime.block_on(async {
            let (store, _db) = fresh_store_with(&settings()).await;
            concurrent_reads(&store).await;
            settled(&store).await;
        });
    });
    let waits: Vec<(String, usize)> = snapshotter
        .snapshot()
        .into_vec()
        .into_iter()
        .filter(|(key, ..)| key.key().name() == pfs_storage::pool::WAIT_TIME_METRIC)
        .filter_map(|(key, _, _, value)| {
            let pool = key.key().labels().find(|l| l.key() == "pool_name")?.value().to_owned();
            let DebugValue::Histogram(samples) = value else { return None };
            Some((pool, samples.len()))
        })
        .collect();
    assert!(matches!(waits.as_slice(), [(pool, n)] if pool == "writer" && *n >= 8), "{waits:?}");
}

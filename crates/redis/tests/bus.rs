//! The bus against real Redis servers: invalidations cross replicas quickly; when Redis dies the
//! caches are bypassed (reads stay correct), and when it returns they resume.

use pfs_cache::{CacheSettings, CachedStore, InvalidationBus, ReadCache};
use pfs_domain::{Portfolio, PortfolioChanges, PortfolioId, Timestamp, Version};
use pfs_redis::testing::RedisProcess;
use pfs_redis::{RedisBus, RedisBusSettings};
use pfs_storage::PortfolioStore;
use pfs_storage_sqlite::{SqliteSettings, SqliteStore};
use std::sync::Arc;
use std::time::{Duration, Instant};
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;

/// One replica: its own cache and bus over the shared database.
struct Replica {
    store: CachedStore,
    bus: Arc<RedisBus>,
}

fn replica(
    db: &Arc<dyn PortfolioStore>,
    redis: &RedisProcess,
    tasks: &TaskTracker,
    stop: &CancellationToken,
) -> Replica {
    let cache = Arc::new(ReadCache::new(&CacheSettings::default()));
    let client = redis::Client::open(redis.url()).unwrap();
    let bus = RedisBus::start(client, RedisBusSettings::new("test:invalidate"), cache.clone(), tasks, stop.clone());
    Replica { store: CachedStore::new(db.clone(), cache, bus.clone()), bus }
}

async fn shared_database() -> (Arc<dyn PortfolioStore>, tempfile::TempDir) {
    let dir = tempfile::tempdir().unwrap();
    let store = SqliteStore::open_file(&dir.path().join("db"), &SqliteSettings::default()).await.unwrap();
    store.migrate().await.unwrap();
    (Arc::new(store), dir)
}

/// Polls `condition` every 10 ms; returns how long it took, or panics after `limit`.
async fn within(limit: Duration, what: &str, mut condition: impl AsyncFnMut() -> bool) -> Duration {
    let start = Instant::now();
    while !condition().await {
        assert!(start.elapsed() < limit, "{what}: not within {limit:?}");
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    start.elapsed()
}

async fn name_of(replica: &Replica, id: PortfolioId) -> String {
    replica.store.get(id).await.unwrap().unwrap().name
}

fn portfolio() -> Portfolio {
    Portfolio { id: PortfolioId::generate(), name: "v1".into(), date_created: Timestamp::now(), version: Version(1) }
}

fn rename(name: &str) -> PortfolioChanges {
    PortfolioChanges { name: name.into(), date_created: None }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_write_on_one_replica_invalidates_the_others_within_milliseconds() {
    let redis = RedisProcess::start();
    let (db, _dir) = shared_database().await;
    let (tasks, stop) = (TaskTracker::new(), CancellationToken::new());
    let (a, b) = (replica(&db, &redis, &tasks, &stop), replica(&db, &redis, &tasks, &stop));
    within(Duration::from_secs(5), "both buses connect", async || a.bus.is_connected() && b.bus.is_connected()).await;

    let p = portfolio();
    a.store.insert_many(std::slice::from_ref(&p)).await.unwrap();
    assert_eq!(name_of(&b, p.id).await, "v1", "b has it cached now");
    a.store.update(p.id, Version(1), &rename("v2")).await.unwrap();
    let took = within(Duration::from_secs(1), "b sees a's write", async || name_of(&b, p.id).await == "v2").await;
    println!("cross-replica invalidation took {took:?}");
    stop.cancel();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn when_redis_dies_reads_bypass_the_cache_and_resume_after_it_returns() {
    let mut redis = RedisProcess::start();
    let (db, _dir) = shared_database().await;
    let (tasks, stop) = (TaskTracker::new(), CancellationToken::new());
    let b = replica(&db, &redis, &tasks, &stop);
    within(Duration::from_secs(5), "bus connects", async || b.bus.is_connected()).await;
    let p = portfolio();
    db.insert_many(std::slice::from_ref(&p)).await.unwrap();
    assert_eq!(name_of(&b, p.id).await, "v1");

    redis.kill();
    within(Duration::from_secs(4), "bus notices Redis is gone", async || !b.bus.is_connected()).await;
    // A write b cannot hear about: with the cache bypassed, b still reads it at once.
    db.update(p.id, Version(1), &rename("while redis was down")).await.unwrap();
    assert_eq!(name_of(&b, p.id).await, "while redis was down");

    redis.restart();
    within(Duration::from_secs(10), "bus reconnects", async || b.bus.is_connected()).await;
    db.update(p.id, Version(2), &rename("after")).await.unwrap();
    // Reconnecting flushed the cache, so nothing from before the outage is served.
    assert_eq!(name_of(&b, p.id).await, "after");
    stop.cancel();
}

#[tokio::test]
async fn an_unreachable_redis_never_blocks_or_fails_requests() {
    let mut redis = RedisProcess::start();
    let url = redis.url();
    redis.kill();
    let (db, _dir) = shared_database().await;
    let (tasks, stop) = (TaskTracker::new(), CancellationToken::new());
    let cache = Arc::new(ReadCache::new(&CacheSettings::default()));
    let bus = RedisBus::start(
        redis::Client::open(url).unwrap(),
        RedisBusSettings::new("x"),
        cache.clone(),
        &tasks,
        stop.clone(),
    );
    let store = CachedStore::new(db, cache, bus.clone());
    let start = Instant::now();
    let p = portfolio();
    store.insert_many(std::slice::from_ref(&p)).await.unwrap();
    for _ in 0..100 {
        store.update(p.id, store.get(p.id).await.unwrap().unwrap().version, &rename("x")).await.unwrap();
    }
    assert!(!bus.is_connected());
    assert!(start.elapsed() < Duration::from_secs(2), "writes are not slowed by a dead Redis: {:?}", start.elapsed());
    stop.cancel();
}

//! The races specific to caching. That the cache changes no answer of the store is the
//! conformance suite's `full_stack` run, which goes through it.

use pfs_cache::{BusStatus, CacheSettings, CachedStore, Invalidation, InvalidationBus, LocalOnly, ReadCache};
use pfs_domain::{NameFilter, PageRequest, Portfolio, PortfolioChanges, PortfolioId, Timestamp, Version};
use pfs_storage::{Layered, Op, PortfolioStore, StoreHook, StoreResult};
use pfs_storage_sqlite::{SqliteSettings, SqliteStore};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

async fn sqlite() -> (Arc<dyn PortfolioStore>, tempfile::TempDir) {
    let dir = tempfile::tempdir().expect("temp dir");
    let store = SqliteStore::open_file(&dir.path().join("test.db"), &SqliteSettings::default()).await.expect("open");
    store.migrate().await.expect("migrate");
    (Arc::new(store), dir)
}

fn portfolio(name: &str) -> Portfolio {
    Portfolio {
        id: PortfolioId::generate(),
        name: name.into(),
        date_created: Timestamp::from_millis(1_000).unwrap(),
        version: Version(1),
    }
}

fn rename(name: &str) -> PortfolioChanges {
    PortfolioChanges { name: name.into(), date_created: None }
}

/// A bus whose connection a test can cut.
#[derive(Default)]
struct SwitchableBus(AtomicBool);

impl InvalidationBus for SwitchableBus {
    fn publish(&self, _: Invalidation) {}
    fn is_connected(&self) -> bool {
        self.0.load(Ordering::SeqCst)
    }
    fn describe(&self) -> BusStatus {
        BusStatus { kind: "test", connected: self.is_connected() }
    }
}

#[tokio::test]
async fn reads_are_served_from_the_cache_until_an_invalidation_arrives() {
    let (inner, _dir) = sqlite().await;
    let cache = Arc::new(ReadCache::new(&CacheSettings::default()));
    let bus = Arc::new(SwitchableBus(AtomicBool::new(true)));
    let cached = CachedStore::new(inner.clone(), cache.clone(), bus.clone());
    let p = portfolio("before");
    cached.insert_many(std::slice::from_ref(&p)).await.unwrap();
    assert_eq!(cached.get(p.id).await.unwrap().unwrap().name, "before");

    // Another replica writes straight to the database: until its invalidation arrives, this
    // replica may serve what it cached (bounded by the bus, and by the TTL).
    inner.update(p.id, Version(1), &rename("elsewhere")).await.unwrap();
    assert_eq!(cached.get(p.id).await.unwrap().unwrap().name, "before");
    let stats = cache.stats();
    assert!(stats.hits >= 1 && stats.misses >= 1, "{stats:?}");

    cache.invalidate(Invalidation::Portfolio(p.id)).await;
    assert_eq!(cached.get(p.id).await.unwrap().unwrap().name, "elsewhere");
}

#[tokio::test]
async fn while_the_bus_is_disconnected_every_read_goes_to_the_database() {
    let (inner, _dir) = sqlite().await;
    let cache = Arc::new(ReadCache::new(&CacheSettings::default()));
    let bus = Arc::new(SwitchableBus(AtomicBool::new(true)));
    let cached = CachedStore::new(inner.clone(), cache, bus.clone());
    let p = portfolio("before");
    cached.insert_many(std::slice::from_ref(&p)).await.unwrap();
    cached.get(p.id).await.unwrap();
    cached.search(&NameFilter::All, PageRequest { limit: 10, offset: 0 }).await.unwrap();

    bus.0.store(false, Ordering::SeqCst);
    inner.update(p.id, Version(1), &rename("elsewhere")).await.unwrap();
    assert_eq!(cached.get(p.id).await.unwrap().unwrap().name, "elsewhere");
    let page = cached.search(&NameFilter::All, PageRequest { limit: 10, offset: 0 }).await.unwrap();
    assert_eq!(page.items[0].name, "elsewhere");
}

/// Slowness on purpose: `get` reads, then waits `get_delay` before answering (the window in
/// which a write can land between a cache miss's read and its fill); `search` waits
/// `search_delay` first and counts how many searches reach the database.
#[derive(Default)]
struct Instrumented {
    get_delay: Duration,
    search_delay: Duration,
    searches: std::sync::atomic::AtomicUsize,
}

impl StoreHook for Instrumented {
    async fn around<'a, T, F>(&'a self, op: Op, mut call: impl FnMut() -> F + Send + 'a) -> StoreResult<T>
    where
        T: Send + 'a,
        F: Future<Output = StoreResult<T>> + Send + 'a,
    {
        if op == Op::Search {
            self.searches.fetch_add(1, Ordering::SeqCst);
            tokio::time::sleep(self.search_delay).await;
        }
        let answer = call().await;
        if op == Op::Get {
            tokio::time::sleep(self.get_delay).await;
        }
        answer
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn concurrent_misses_on_one_page_load_it_once_and_a_write_starts_a_new_load() {
    let (inner, _dir) = sqlite().await;
    let counted =
        Arc::new(Layered::new(Instrumented { search_delay: Duration::from_millis(100), ..Default::default() }, inner));
    let cached = Arc::new(CachedStore::new(
        counted.clone(),
        Arc::new(ReadCache::new(&CacheSettings::default())),
        Arc::new(LocalOnly),
    ));
    let page = PageRequest { limit: 10, offset: 0 };
    let readers: Vec<_> = (0..16)
        .map(|_| {
            let cached = cached.clone();
            tokio::spawn(async move { cached.search(&NameFilter::All, page).await.unwrap().total })
        })
        .collect();
    for reader in readers {
        assert_eq!(reader.await.unwrap(), 0);
    }
    assert_eq!(counted.hook().searches.load(Ordering::SeqCst), 1, "sixteen readers, one database search");

    cached.insert_many(&[portfolio("new")]).await.unwrap();
    assert_eq!(cached.search(&NameFilter::All, page).await.unwrap().total, 1, "the write is visible at once");
    assert_eq!(counted.hook().searches.load(Ordering::SeqCst), 2);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_read_that_raced_a_write_does_not_leave_the_old_value_cached() {
    let (inner, _dir) = sqlite().await;
    let slow = Layered::wrap(Instrumented { get_delay: Duration::from_millis(200), ..Default::default() }, inner);
    let cache = Arc::new(ReadCache::new(&CacheSettings::default()));
    let cached = Arc::new(CachedStore::new(slow, cache, Arc::new(LocalOnly)));
    let p = portfolio("old");
    cached.insert_many(std::slice::from_ref(&p)).await.unwrap();

    let reader = {
        let cached = cached.clone();
        tokio::spawn(async move { cached.get(p.id).await.unwrap().unwrap().name })
    };
    tokio::time::sleep(Duration::from_millis(50)).await;
    cached.update(p.id, Version(1), &rename("new")).await.unwrap();
    assert_eq!(reader.await.unwrap(), "old", "the racing read saw the row before the write");
    assert_eq!(cached.get(p.id).await.unwrap().unwrap().name, "new", "but did not cache it");
}

//! The cached entries and the generation counter that keeps concurrent fills honest.

use crate::Invalidation;
use moka::future::Cache;
use pfs_domain::{Keyset, NameFilter, Portfolio, PortfolioId};
use pfs_storage::{SearchPage, StoreError, StoreResult};
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

/// Sizes and lifetimes.
#[derive(Clone, Debug)]
pub struct CacheSettings {
    /// Portfolios cached by id.
    pub max_portfolios: u64,
    /// Search pages, weighed by the number of portfolios they hold, so a few 1000-item pages
    /// cannot push out hundreds of small ones.
    pub max_page_items: u64,
    /// What all entries together may weigh ([`weight`]): a fifth for portfolios by id, the rest
    /// for pages, the same shares as the default counts. The counts above still hold; this
    /// bounds memory when names are long.
    pub max_bytes: u64,
    /// Upper bound on how long an entry lives even if no invalidation arrives.
    pub ttl: Duration,
}

impl Default for CacheSettings {
    fn default() -> Self {
        Self { max_portfolios: 10_000, max_page_items: 50_000, max_bytes: 12 << 20, ttl: Duration::from_secs(60) }
    }
}

/// What an entry costs beyond its portfolios: moka's node, the key and the `Arc`.
const ENTRY_OVERHEAD: usize = 192;

/// What a cached portfolio costs: its name and fixed fields ([`pfs_storage::listing::weight`]).
fn weight(portfolio: &Portfolio) -> u64 {
    pfs_storage::listing::weight(portfolio) as u64
}

/// A moka capacity of `bytes`, where each entry weighs at least `bytes / count` per unit
/// (a portfolio, or a page's item), so no more than `count` units fit however small they are,
/// and no more than `bytes` however large.
struct Budget {
    bytes: u64,
    unit_floor: u64,
}

impl Budget {
    fn new(bytes: u64, count: u64) -> Self {
        Self { bytes: bytes.max(1), unit_floor: (bytes / count.max(1)).max(1) }
    }

    fn weigh(&self, units: usize, bytes: u64) -> u32 {
        let floor = self.unit_floor.saturating_mul(units.max(1) as u64);
        u32::try_from(bytes.saturating_add(ENTRY_OVERHEAD as u64).max(floor)).unwrap_or(u32::MAX)
    }
}

/// Search pages are keyed by everything that decides their content.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub(crate) struct PageKey {
    filter: FilterKey,
    after: Option<Keyset>,
    limit: u32,
    offset: u64,
    /// The cache generation the page was read at: see [`ReadCache::page_or_load`].
    generation: u64,
}

#[derive(Clone, Debug, PartialEq, Eq, Hash)]
enum FilterKey {
    All,
    Exact(String),
    Contains(String),
}

impl PageKey {
    pub(crate) fn new(filter: &NameFilter, after: Option<Keyset>, limit: u32, offset: u64) -> Self {
        let filter = match filter {
            NameFilter::All => FilterKey::All,
            NameFilter::Exact(t) => FilterKey::Exact(t.as_str().to_owned()),
            NameFilter::Contains(t) => FilterKey::Contains(t.as_str().to_owned()),
        };
        Self { filter, after, limit, offset, generation: 0 }
    }
}

/// Hit and miss counts since start.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct CacheStats {
    pub hits: u64,
    pub misses: u64,
    pub portfolios: u64,
    pub pages: u64,
}

/// The entries. Every invalidation bumps `generation`; a fill records the generation before
/// it reads the database and keeps its result only if no invalidation happened meanwhile
/// (checked again after inserting), so a slow read can never re-insert what a write removed.
pub struct ReadCache {
    portfolios: Cache<PortfolioId, Portfolio>,
    pages: Cache<PageKey, Arc<SearchPage>>,
    generation: AtomicU64,
    /// Lookups by `[cache][hit]` (`cache` indexes [`CACHES`]): for `/health/detailed`, and
    /// for `cache_requests`, published when metrics are collected ([`Self::publish_metrics`])
    /// rather than counted through the `metrics` recorder on every lookup, where (with OTLP
    /// on) they were three more atomic updates of lines that every core writes.
    lookups: [[AtomicU64; 2]; 2],
}

const CACHES: [&str; 2] = ["portfolio", "page"];

impl ReadCache {
    pub fn new(settings: &CacheSettings) -> Self {
        let by_id = Budget::new(settings.max_bytes / 5, settings.max_portfolios);
        let portfolios = Cache::builder()
            .max_capacity(by_id.bytes)
            .weigher(move |_: &PortfolioId, portfolio: &Portfolio| by_id.weigh(1, weight(portfolio)))
            .time_to_live(settings.ttl)
            .build();
        let paged = Budget::new(settings.max_bytes - settings.max_bytes / 5, settings.max_page_items);
        let pages = Cache::builder()
            .max_capacity(paged.bytes)
            .weigher(move |_: &PageKey, page: &Arc<SearchPage>| {
                paged.weigh(page.items.len(), page.items.iter().map(weight).sum())
            })
            .time_to_live(settings.ttl)
            .build();
        Self { portfolios, pages, generation: AtomicU64::new(0), lookups: Default::default() }
    }

    pub async fn invalidate(&self, what: Invalidation) {
        self.generation.fetch_add(1, Ordering::SeqCst);
        match what {
            Invalidation::Portfolio(id) => {
                self.portfolios.invalidate(&id).await;
                self.pages.invalidate_all();
            }
            Invalidation::Searches => self.pages.invalidate_all(),
            Invalidation::Everything => {
                self.portfolios.invalidate_all();
                self.pages.invalidate_all();
            }
        }
    }

    /// What the entries weigh now, in bytes as [`CacheSettings::max_bytes`] counts them
    /// (after moka's pending evictions have run).
    pub async fn weighed_bytes(&self) -> u64 {
        self.portfolios.run_pending_tasks().await;
        self.pages.run_pending_tasks().await;
        self.portfolios.weighted_size() + self.pages.weighted_size()
    }

    pub fn stats(&self) -> CacheStats {
        let count = |hit: bool| self.lookups.iter().map(|cache| cache[usize::from(hit)].load(Ordering::Relaxed)).sum();
        CacheStats {
            hits: count(true),
            misses: count(false),
            portfolios: self.portfolios.entry_count(),
            pages: self.pages.entry_count(),
        }
    }

    pub(crate) fn generation(&self) -> u64 {
        self.generation.load(Ordering::SeqCst)
    }

    pub(crate) async fn portfolio(&self, id: &PortfolioId) -> Option<Portfolio> {
        let found = self.portfolios.get(id).await;
        self.record(0, found.is_some());
        found
    }

    /// The cached page, or `load`'s result. Concurrent misses on one page wait for a single
    /// load instead of all querying the database (after a write empties the cache, a burst of
    /// readers would otherwise repeat the same search). The key includes the current generation,
    /// so a reader arriving after a write never joins, or reads, a load that began before it.
    pub(crate) async fn page_or_load(
        &self,
        mut key: PageKey,
        load: impl Future<Output = StoreResult<SearchPage>>,
    ) -> StoreResult<Arc<SearchPage>> {
        key.generation = self.generation();
        let entry = self.pages.entry(key).or_try_insert_with(async { load.await.map(Arc::new) }).await;
        let entry = entry.map_err(|shared| unshare(&shared))?;
        self.record(1, !entry.is_fresh());
        Ok(entry.into_value())
    }

    pub(crate) async fn fill_portfolio(&self, seen: u64, portfolio: Portfolio) {
        let id = portfolio.id;
        if self.generation() == seen {
            self.portfolios.insert(id, portfolio).await;
            if self.generation() != seen {
                self.portfolios.invalidate(&id).await;
            }
        }
    }

    /// Counts a lookup of cache `cache` (an index into [`CACHES`]).
    fn record(&self, cache: usize, hit: bool) {
        self.lookups[cache][usize::from(hit)].fetch_add(1, Ordering::Relaxed);
    }

    /// Sets `cache_requests` (by cache and result) to the lookups counted so far.
    pub fn publish_metrics(&self) {
        for (cache, counts) in CACHES.iter().zip(&self.lookups) {
            for (result, count) in ["miss", "hit"].into_iter().zip(counts) {
                let counter = metrics::counter!("cache_requests", "cache" => *cache, "result" => result);
                counter.absolute(count.load(Ordering::Relaxed));
            }
        }
    }
}

/// A load's error, shared by every caller that waited on it, as an owned error of the same
/// kind (transient or not), so the API answers each of them alike.
fn unshare(shared: &StoreError) -> StoreError {
    match shared {
        StoreError::NotFound => StoreError::NotFound,
        StoreError::Conflict => StoreError::Conflict,
        StoreError::Unavailable(e) => StoreError::Unavailable(e.to_string().into()),
        StoreError::Backend(e) => StoreError::Backend(e.to_string().into()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use pfs_domain::{Timestamp, Version};

    fn portfolio(name_len: usize) -> Portfolio {
        Portfolio::new("n".repeat(name_len), Some(Timestamp::from_millis(0).unwrap()), Version(1))
    }

    fn settings(max_bytes: u64) -> CacheSettings {
        CacheSettings { max_bytes, ..CacheSettings::default() }
    }

    #[tokio::test]
    async fn long_names_are_held_within_the_byte_budget() {
        let cache = ReadCache::new(&settings(1 << 20));
        for _ in 0..100 {
            cache.fill_portfolio(cache.generation(), portfolio(64 * 1024)).await;
        }
        let page = SearchPage { items: (0..50).map(|_| portfolio(16 * 1024)).collect(), total: 50 };
        for offset in 0..20 {
            let key = PageKey::new(&NameFilter::All, None, 50, offset);
            cache.page_or_load(key, async { Ok(page.clone()) }).await.unwrap();
        }
        // 100 x 64 KiB of portfolios and 20 x 800 KiB of pages were offered: 22 MiB.
        let held = cache.weighed_bytes().await;
        assert!(held <= 1 << 20, "{held} bytes held");
        assert!(held > 0, "the budget holds some of them");
    }

    #[tokio::test]
    async fn the_counts_still_bound_small_entries() {
        let cache = ReadCache::new(&CacheSettings { max_portfolios: 100, ..CacheSettings::default() });
        for _ in 0..1_000 {
            cache.fill_portfolio(cache.generation(), portfolio(3)).await;
        }
        cache.weighed_bytes().await;
        let held = cache.stats().portfolios;
        assert!((1..=100).contains(&held), "{held} portfolios held");
    }
}

//! A `PortfolioStore` decorator that gives storage and cache calls their own child spans, and
//! what the API records of bulk writes.
//!
//! The app wraps the database store (`Tier::Database`, spans only while the
//! `database_tracing` flag is on) and, when the read cache is enabled, the cached store in
//! front of it (`Tier::Cache`). Neither wrapper exists when tracing is off. The cache-tier one
//! is a second way in, which handlers take only while serving a sampled request: every call
//! through a decorator allocates its future, and a cached read is cheap enough for that to
//! show, on the 99 requests in 100 that production does not trace.

use crate::flags::RuntimeFlags;
use async_trait::async_trait;
use pfs_domain::{Keyset, NameFilter, PageRequest, Portfolio, PortfolioChanges, PortfolioId, Version};
use pfs_storage::{BackendInfo, PoolStats, PortfolioStore, SearchPage, StoreResult};
use std::sync::Arc;
use std::time::Duration;
use tracing::Instrument;

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Tier {
    Database,
    Cache,
}

pub struct TracedStore {
    inner: Arc<dyn PortfolioStore>,
    tier: Tier,
    flags: Arc<RuntimeFlags>,
}

/// A bulk create was stored: its size, and a line per portfolio (kept at `log_sample_rate`:
/// one line per item is far too many at volume).
pub fn bulk_stored(portfolios: &[Portfolio]) {
    metrics::histogram!("portfolio_bulk_size").record(portfolios.len() as f64);
    for portfolio in portfolios {
        tracing::debug!(sampled = true, portfolio_id = %portfolio.id, "portfolio stored");
    }
}

impl TracedStore {
    pub fn wrap(inner: Arc<dyn PortfolioStore>, tier: Tier, flags: Arc<RuntimeFlags>) -> Arc<dyn PortfolioStore> {
        Arc::new(Self { inner, tier, flags })
    }

    async fn traced<T>(&self, operation: &'static str, call: impl Future<Output = T>) -> T {
        let on = crate::http::in_sampled_trace()
            && match self.tier {
                Tier::Cache => true,
                Tier::Database => self.flags.database_tracing(),
            };
        if !on {
            return call.await;
        }
        let span = match self.tier {
            Tier::Database => {
                tracing::info_span!("db", otel.name = operation, otel.kind = "client", db.operation.name = operation)
            }
            Tier::Cache => {
                tracing::info_span!("cache", otel.name = operation, otel.kind = "internal", cache.operation = operation)
            }
        };
        call.instrument(span).await
    }
}

#[async_trait]
impl PortfolioStore for TracedStore {
    async fn list_all(&self) -> StoreResult<Vec<Portfolio>> {
        self.traced("list_all", self.inner.list_all()).await
    }

    async fn get(&self, id: PortfolioId) -> StoreResult<Option<Portfolio>> {
        self.traced("get", self.inner.get(id)).await
    }

    async fn get_many(&self, ids: &[PortfolioId]) -> StoreResult<Vec<Portfolio>> {
        self.traced("get_many", self.inner.get_many(ids)).await
    }

    async fn insert_many(&self, portfolios: &[Portfolio]) -> StoreResult<()> {
        self.traced("insert_many", self.inner.insert_many(portfolios)).await
    }

    async fn insert_missing(&self, portfolios: &[Portfolio]) -> StoreResult<u64> {
        self.traced("insert_missing", self.inner.insert_missing(portfolios)).await
    }

    async fn update(&self, id: PortfolioId, expected: Version, changes: &PortfolioChanges) -> StoreResult<Portfolio> {
        self.traced("update", self.inner.update(id, expected, changes)).await
    }

    async fn delete(&self, id: PortfolioId, expected: Version) -> StoreResult<()> {
        self.traced("delete", self.inner.delete(id, expected)).await
    }

    async fn search(&self, filter: &NameFilter, page: PageRequest) -> StoreResult<SearchPage> {
        self.traced("search", self.inner.search(filter, page)).await
    }

    async fn search_after(&self, filter: &NameFilter, after: Option<Keyset>, limit: u32) -> StoreResult<SearchPage> {
        self.traced("search_after", self.inner.search_after(filter, after, limit)).await
    }

    async fn ping(&self, timeout: Duration) -> StoreResult<()> {
        self.inner.ping(timeout).await
    }

    async fn info(&self) -> StoreResult<BackendInfo> {
        self.inner.info().await
    }

    async fn close(&self) {
        self.inner.close().await;
    }

    fn pool_stats(&self) -> Vec<PoolStats> {
        self.inner.pool_stats()
    }
}

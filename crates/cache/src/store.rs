//! [`CachedStore`]: the caching decorator.

use crate::read_cache::PageKey;
use crate::{Invalidation, InvalidationBus, ReadCache};
use async_trait::async_trait;
use pfs_domain::{Keyset, NameFilter, PageRequest, Portfolio, PortfolioChanges, PortfolioId, Version};
use pfs_storage::{BackendInfo, PoolStats, PortfolioBatches, PortfolioStore, SearchPage, StoreResult};
use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::time::Duration;

type BoxFuture<'a, T> = Pin<Box<dyn Future<Output = T> + Send + 'a>>;

/// Gets by id and search pages come from the cache when present; every write invalidates
/// locally first (so this replica reads its own writes) and then tells the other replicas.
pub struct CachedStore {
    inner: Arc<dyn PortfolioStore>,
    cache: Arc<ReadCache>,
    bus: Arc<dyn InvalidationBus>,
}

impl CachedStore {
    pub fn new(inner: Arc<dyn PortfolioStore>, cache: Arc<ReadCache>, bus: Arc<dyn InvalidationBus>) -> Self {
        Self { inner, cache, bus }
    }

    /// Runs `write` and then the invalidation in a task of their own. A request can be dropped
    /// mid-write (a client gone, a timeout), but the statement may already be on its way to
    /// commit: the invalidation must happen whatever becomes of the caller. A failed write is
    /// invalidated for too, since it may have committed before the connection broke.
    async fn write<T: Send + 'static>(
        &self,
        what: Invalidation,
        write: impl FnOnce(Arc<dyn PortfolioStore>) -> BoxFuture<'static, StoreResult<T>> + Send + 'static,
    ) -> StoreResult<T> {
        let (inner, cache, bus) = (self.inner.clone(), self.cache.clone(), self.bus.clone());
        let task = tokio::spawn(async move {
            let result = write(inner).await;
            cache.invalidate(what).await;
            bus.publish(what);
            result
        });
        task.await.unwrap_or_else(|panicked| std::panic::resume_unwind(panicked.into_panic()))
    }

    /// A search page from the cache, or from `load` (loaded once however many ask at once).
    async fn page(&self, key: PageKey, load: impl Future<Output = StoreResult<SearchPage>>) -> StoreResult<SearchPage> {
        if !self.usable() {
            return load.await;
        }
        Ok(SearchPage::clone(&*self.cache.page_or_load(key, load).await?))
    }

    /// Serving from the cache is only safe while other replicas' invalidations arrive.
    fn usable(&self) -> bool {
        self.bus.is_connected()
    }
}

#[async_trait]
impl PortfolioStore for CachedStore {
    /// Never cached: the whole list would have to be held in memory, and its batches are
    /// read as the response is sent.
    async fn list_stream(&self) -> StoreResult<PortfolioBatches> {
        self.inner.list_stream().await
    }

    async fn get_many(&self, ids: &[PortfolioId]) -> StoreResult<Vec<Portfolio>> {
        if !self.usable() {
            return self.inner.get_many(ids).await;
        }
        let mut found = Vec::with_capacity(ids.len());
        let mut missing = Vec::new();
        for id in ids {
            match self.cache.portfolio(id).await {
                Some(hit) => found.push(hit),
                None => missing.push(*id),
            }
        }
        if !missing.is_empty() {
            let seen = self.cache.generation();
            for portfolio in self.inner.get_many(&missing).await? {
                self.cache.fill_portfolio(seen, portfolio.clone()).await;
                found.push(portfolio);
            }
        }
        Ok(found)
    }

    async fn get(&self, id: PortfolioId) -> StoreResult<Option<Portfolio>> {
        if !self.usable() {
            return self.inner.get(id).await;
        }
        if let Some(hit) = self.cache.portfolio(&id).await {
            return Ok(Some(hit));
        }
        let seen = self.cache.generation();
        let found = self.inner.get(id).await?;
        if let Some(portfolio) = &found {
            self.cache.fill_portfolio(seen, portfolio.clone()).await;
        }
        Ok(found)
    }

    async fn insert_many(&self, portfolios: &[Portfolio]) -> StoreResult<()> {
        let portfolios = portfolios.to_vec();
        self.write(Invalidation::Searches, move |inner| Box::pin(async move { inner.insert_many(&portfolios).await }))
            .await
    }

    async fn insert_missing(&self, portfolios: &[Portfolio]) -> StoreResult<u64> {
        let portfolios = portfolios.to_vec();
        self.write(Invalidation::Searches, move |inner| {
            Box::pin(async move { inner.insert_missing(&portfolios).await })
        })
        .await
    }

    async fn update(&self, id: PortfolioId, expected: Version, changes: &PortfolioChanges) -> StoreResult<Portfolio> {
        let changes = changes.clone();
        self.write(Invalidation::Portfolio(id), move |inner| {
            Box::pin(async move { inner.update(id, expected, &changes).await })
        })
        .await
    }

    async fn delete(&self, id: PortfolioId, expected: Version) -> StoreResult<()> {
        self.write(Invalidation::Portfolio(id), move |inner| Box::pin(async move { inner.delete(id, expected).await }))
            .await
    }

    async fn search(&self, filter: &NameFilter, page: PageRequest) -> StoreResult<SearchPage> {
        let key = PageKey::new(filter, None, page.limit, page.offset);
        self.page(key, self.inner.search(filter, page)).await
    }

    async fn search_after(&self, filter: &NameFilter, after: Option<Keyset>, limit: u32) -> StoreResult<SearchPage> {
        let key = PageKey::new(filter, after, limit, 0);
        self.page(key, self.inner.search_after(filter, after, limit)).await
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

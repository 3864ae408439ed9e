//! [`PublishingStore`]: every committed write becomes an event.

use crate::event::{Change, EventKind};
use crate::feed::ChangeFeed;
use async_trait::async_trait;
use pfs_domain::{Keyset, NameFilter, PageRequest, Portfolio, PortfolioChanges, PortfolioId, Version};
use pfs_storage::{BackendInfo, PoolStats, PortfolioBatches, PortfolioStore, SearchPage, StoreResult};
use std::collections::HashSet;
use std::future::Future;
use std::sync::Arc;
use std::time::Duration;

/// Publishes to the feed after each successful write; reads pass straight through. It sits
/// outside the read cache, so by the time an event is out this replica's cache no longer
/// holds the old state.
pub struct PublishingStore {
    inner: Arc<dyn PortfolioStore>,
    feed: Arc<ChangeFeed>,
}

impl PublishingStore {
    pub fn new(inner: Arc<dyn PortfolioStore>, feed: Arc<ChangeFeed>) -> Self {
        Self { inner, feed }
    }

    /// Runs the write and the publishing in a task of their own: a request dropped mid-write
    /// (client gone, timeout) may still commit, and its event must not be lost with it.
    async fn write<T: Send + 'static>(
        &self,
        write: impl Future<Output = StoreResult<(T, Vec<Change>)>> + Send + 'static,
    ) -> StoreResult<T> {
        let feed = self.feed.clone();
        let task = tokio::spawn(async move {
            let (value, changes) = write.await?;
            feed.publish(changes).await;
            Ok(value)
        });
        task.await.unwrap_or_else(|panicked| std::panic::resume_unwind(panicked.into_panic()))
    }
}

fn created(portfolios: &[Portfolio]) -> Vec<Change> {
    portfolios.iter().map(|p| Change::portfolio(EventKind::Created, p)).collect()
}

#[async_trait]
impl PortfolioStore for PublishingStore {
    async fn list_stream(&self) -> StoreResult<PortfolioBatches> {
        self.inner.list_stream().await
    }

    async fn get(&self, id: PortfolioId) -> StoreResult<Option<Portfolio>> {
        self.inner.get(id).await
    }

    async fn get_many(&self, ids: &[PortfolioId]) -> StoreResult<Vec<Portfolio>> {
        self.inner.get_many(ids).await
    }

    /// One `created` event per portfolio, in the order given.
    async fn insert_many(&self, portfolios: &[Portfolio]) -> StoreResult<()> {
        let (inner, portfolios) = (self.inner.clone(), portfolios.to_vec());
        self.write(async move {
            inner.insert_many(&portfolios).await?;
            Ok(((), created(&portfolios)))
        })
        .await
    }

    /// `created` for the portfolios that were not stored before the insert. An import running
    /// at the same time with the same ids may make both announce some of them.
    async fn insert_missing(&self, portfolios: &[Portfolio]) -> StoreResult<u64> {
        let (inner, portfolios) = (self.inner.clone(), portfolios.to_vec());
        self.write(async move {
            let ids: Vec<PortfolioId> = portfolios.iter().map(|p| p.id).collect();
            let existing: HashSet<PortfolioId> = inner.get_many(&ids).await?.into_iter().map(|p| p.id).collect();
            let inserted = inner.insert_missing(&portfolios).await?;
            let new: Vec<Portfolio> = portfolios.into_iter().filter(|p| !existing.contains(&p.id)).collect();
            if new.len() as u64 != inserted {
                tracing::warn!(announced = new.len(), inserted, "change stream: an import raced another writer");
            }
            Ok((inserted, created(&new)))
        })
        .await
    }

    async fn update(&self, id: PortfolioId, expected: Version, changes: &PortfolioChanges) -> StoreResult<Portfolio> {
        let (inner, changes) = (self.inner.clone(), changes.clone());
        self.write(async move {
            let updated = inner.update(id, expected, &changes).await?;
            let change = Change::portfolio(EventKind::Updated, &updated);
            Ok((updated, vec![change]))
        })
        .await
    }

    /// The event carries the portfolio as it was deleted, read just before: the delete only
    /// succeeds at version `expected`, so a read at that version is what was deleted.
    async fn delete(&self, id: PortfolioId, expected: Version) -> StoreResult<()> {
        let inner = self.inner.clone();
        self.write(async move {
            let before = inner.get(id).await?.filter(|p| p.version == expected);
            inner.delete(id, expected).await?;
            let change = match before {
                Some(portfolio) => Change::portfolio(EventKind::Deleted, &portfolio),
                None => Change::deleted_unread(id, expected),
            };
            Ok(((), vec![change]))
        })
        .await
    }

    async fn search(&self, filter: &NameFilter, page: PageRequest) -> StoreResult<SearchPage> {
        self.inner.search(filter, page).await
    }

    async fn search_after(&self, filter: &NameFilter, after: Option<Keyset>, limit: u32) -> StoreResult<SearchPage> {
        self.inner.search_after(filter, after, limit).await
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

//! [`StartupGate`]: the store refuses every call as `Unavailable` until the database has
//! answered once since the process started and its migrations ran (Redis is not waited for).
//!
//! A pool connected lazily would otherwise reach a database that just came up before the
//! bootstrap migrated it (a missing table is a 500, not a 503). Refusals are transient, so the
//! API answers 503 with `Retry-After`, like any other database outage. Once open, the gate
//! costs one atomic load per call.

use async_trait::async_trait;
use pfs_api::startup::Startup;
use pfs_domain::{Keyset, NameFilter, PageRequest, Portfolio, PortfolioChanges, PortfolioId, Version};
use pfs_storage::{
    BackendInfo, Begin, BeginRequest, IdempotencyStore, KeyRef, PoolStats, PortfolioStore, SearchPage, StoreError,
    StoreResult, StoredResponse,
};
use std::sync::Arc;
use std::time::Duration;

/// Wraps a store (or the idempotency record) of the database the bootstrap waits for.
pub(crate) struct StartupGate<S: ?Sized> {
    inner: Arc<S>,
    startup: Arc<Startup>,
}

impl<S: ?Sized> StartupGate<S> {
    pub(crate) fn new(inner: Arc<S>, startup: Arc<Startup>) -> Self {
        Self { inner, startup }
    }

    /// Only the database is waited for here: with Redis still missing, requests are served
    /// from the database (readiness stays 503 until Redis is there too).
    fn check(&self) -> StoreResult<()> {
        if self.startup.is_connected(DATABASE) {
            return Ok(());
        }
        let last_error = self.startup.of(DATABASE).and_then(|p| p.last_error);
        let reason = format!(
            "the database has not answered since the service started: {}",
            last_error.as_deref().unwrap_or("connecting")
        );
        Err(StoreError::Unavailable(reason.into()))
    }
}

/// The name the bootstrap and the probes give the database.
pub(crate) const DATABASE: &str = "database";

#[async_trait]
impl PortfolioStore for StartupGate<dyn PortfolioStore> {
    async fn list_all(&self) -> StoreResult<Vec<Portfolio>> {
        self.check()?;
        self.inner.list_all().await
    }

    async fn get(&self, id: PortfolioId) -> StoreResult<Option<Portfolio>> {
        self.check()?;
        self.inner.get(id).await
    }

    async fn get_many(&self, ids: &[PortfolioId]) -> StoreResult<Vec<Portfolio>> {
        self.check()?;
        self.inner.get_many(ids).await
    }

    async fn insert_many(&self, portfolios: &[Portfolio]) -> StoreResult<()> {
        self.check()?;
        self.inner.insert_many(portfolios).await
    }

    async fn insert_missing(&self, portfolios: &[Portfolio]) -> StoreResult<u64> {
        self.check()?;
        self.inner.insert_missing(portfolios).await
    }

    async fn update(&self, id: PortfolioId, expected: Version, changes: &PortfolioChanges) -> StoreResult<Portfolio> {
        self.check()?;
        self.inner.update(id, expected, changes).await
    }

    async fn delete(&self, id: PortfolioId, expected: Version) -> StoreResult<()> {
        self.check()?;
        self.inner.delete(id, expected).await
    }

    async fn search(&self, filter: &NameFilter, page: PageRequest) -> StoreResult<SearchPage> {
        self.check()?;
        self.inner.search(filter, page).await
    }

    async fn search_after(&self, filter: &NameFilter, after: Option<Keyset>, limit: u32) -> StoreResult<SearchPage> {
        self.check()?;
        self.inner.search_after(filter, after, limit).await
    }

    async fn ping(&self, timeout: Duration) -> StoreResult<()> {
        self.check()?;
        self.inner.ping(timeout).await
    }

    async fn info(&self) -> StoreResult<BackendInfo> {
        self.check()?;
        self.inner.info().await
    }

    async fn close(&self) {
        self.inner.close().await;
    }

    fn pool_stats(&self) -> Vec<PoolStats> {
        self.inner.pool_stats()
    }
}

#[async_trait]
impl IdempotencyStore for StartupGate<dyn IdempotencyStore> {
    async fn begin(&self, key: KeyRef<'_>, request: &BeginRequest) -> StoreResult<Begin> {
        self.check()?;
        self.inner.begin(key, request).await
    }

    async fn complete(&self, key: KeyRef<'_>, token: &str, response: &StoredResponse) -> StoreResult<bool> {
        self.check()?;
        self.inner.complete(key, token, response).await
    }

    async fn release(&self, key: KeyRef<'_>, token: &str) -> StoreResult<()> {
        self.check()?;
        self.inner.release(key, token).await
    }

    async fn purge_expired(&self, now_ms: i64) -> StoreResult<u64> {
        self.check()?;
        self.inner.purge_expired(now_ms).await
    }
}

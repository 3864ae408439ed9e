//! [`ResilientStore`]: the database behind a circuit breaker, with retries for reads.
//!
//! Every call asks the `database` breaker first. While it is open, calls fail at once with a
//! transient error carrying [`BreakerOpen`] (the API answers 503 with a `Retry-After` of the
//! time left), instead of each request waiting out the pool's acquire timeout against a
//! database that is down. Only transient errors count as failures: a missing row or a version
//! conflict is the database answering.
//!
//! Reads and the re-runnable `insert_missing` are retried on transient errors, with backoff
//! and jitter. Other writes are not: when a connection drops mid-commit the write may have
//! happened, and a blind retry would turn that into a conflict or a duplicate. Clients retry
//! those with an `Idempotency-Key` instead.

use async_trait::async_trait;
use backon::Retryable;
use pfs_domain::{Keyset, NameFilter, PageRequest, Portfolio, PortfolioChanges, PortfolioId, Version};
use pfs_resilience::{BreakerOpen, CircuitBreaker, RetryPolicy};
use pfs_storage::{BackendInfo, PortfolioStore, SearchPage, StoreError, StoreResult};
use std::future::Future;
use std::sync::Arc;
use std::time::Duration;

pub struct ResilientStore {
    inner: Arc<dyn PortfolioStore>,
    breaker: CircuitBreaker,
    retry: RetryPolicy,
}

impl ResilientStore {
    pub fn new(inner: Arc<dyn PortfolioStore>, breaker: CircuitBreaker, retry: RetryPolicy) -> Self {
        Self { inner, breaker, retry }
    }

    /// One call through the breaker. `call` is lazy: a refused call never starts.
    async fn guarded<T>(&self, call: impl Future<Output = StoreResult<T>>) -> StoreResult<T> {
        let Some(ticket) = self.breaker.allow() else {
            return Err(StoreError::Unavailable(Box::new(self.breaker.refusal())));
        };
        let result = call.await;
        match &result {
            Err(err) if err.is_transient() => ticket.failure(),
            _ => ticket.success(),
        }
        result
    }

    /// A call that is safe to repeat, retried while it fails transiently and the breaker lets
    /// it through.
    async fn retried<T, F: Future<Output = StoreResult<T>>>(
        &self,
        operation: &'static str,
        mut call: impl FnMut() -> F,
    ) -> StoreResult<T> {
        (|| self.guarded(call()))
            .retry(self.retry.backoff())
            .when(|err: &StoreError| err.is_transient() && !is_refusal(err))
            .notify(|err: &StoreError, delay: Duration| {
                metrics::counter!("storage_retries", "operation" => operation).increment(1);
                tracing::debug!(operation, error = %err, ?delay, "retrying a transient storage failure");
            })
            .await
    }
}

fn is_refusal(err: &StoreError) -> bool {
    matches!(err, StoreError::Unavailable(inner) if inner.is::<BreakerOpen>())
}

#[async_trait]
impl PortfolioStore for ResilientStore {
    async fn list_all(&self) -> StoreResult<Vec<Portfolio>> {
        self.retried("list_all", || self.inner.list_all()).await
    }

    async fn get(&self, id: PortfolioId) -> StoreResult<Option<Portfolio>> {
        self.retried("get", || self.inner.get(id)).await
    }

    async fn get_many(&self, ids: &[PortfolioId]) -> StoreResult<Vec<Portfolio>> {
        self.retried("get_many", || self.inner.get_many(ids)).await
    }

    async fn insert_many(&self, portfolios: &[Portfolio]) -> StoreResult<()> {
        self.guarded(self.inner.insert_many(portfolios)).await
    }

    async fn insert_missing(&self, portfolios: &[Portfolio]) -> StoreResult<u64> {
        self.retried("insert_missing", || self.inner.insert_missing(portfolios)).await
    }

    async fn update(&self, id: PortfolioId, expected: Version, changes: &PortfolioChanges) -> StoreResult<Portfolio> {
        self.guarded(self.inner.update(id, expected, changes)).await
    }

    async fn delete(&self, id: PortfolioId, expected: Version) -> StoreResult<()> {
        self.guarded(self.inner.delete(id, expected)).await
    }

    async fn search(&self, filter: &NameFilter, page: PageRequest) -> StoreResult<SearchPage> {
        self.retried("search", || self.inner.search(filter, page)).await
    }

    async fn search_after(&self, filter: &NameFilter, after: Option<Keyset>, limit: u32) -> StoreResult<SearchPage> {
        self.retried("search_after", || self.inner.search_after(filter, after, limit)).await
    }

    /// Not retried: readiness must report the database as it is. Through the breaker, so
    /// that readiness is 503 while it is open and the probes themselves drive recovery.
    async fn ping(&self, timeout: Duration) -> StoreResult<()> {
        self.guarded(self.inner.ping(timeout)).await
    }

    async fn info(&self) -> StoreResult<BackendInfo> {
        self.retried("info", || self.inner.info()).await
    }

    async fn close(&self) {
        self.inner.close().await;
    }
}

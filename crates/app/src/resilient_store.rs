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
use pfs_storage::{BackendInfo, PoolStats, PortfolioStore, SearchPage, StoreError, StoreResult};
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

    fn pool_stats(&self) -> Vec<PoolStats> {
        self.inner.pool_stats()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use pfs_resilience::{BreakerSettings, BreakerState};
    use std::sync::atomic::{AtomicU32, Ordering};

    /// Fails its first `failures` calls with `error()`, then answers; counts every call.
    struct Scripted {
        failures: u32,
        error: fn() -> StoreError,
        calls: AtomicU32,
    }

    impl Scripted {
        fn answer<T: Default>(&self) -> StoreResult<T> {
            let call = self.calls.fetch_add(1, Ordering::SeqCst);
            if call < self.failures { Err((self.error)()) } else { Ok(T::default()) }
        }
    }

    #[async_trait]
    impl PortfolioStore for Scripted {
        async fn list_all(&self) -> StoreResult<Vec<Portfolio>> {
            self.answer()
        }
        async fn get(&self, _: PortfolioId) -> StoreResult<Option<Portfolio>> {
            self.answer()
        }
        async fn insert_many(&self, _: &[Portfolio]) -> StoreResult<()> {
            self.answer()
        }
        async fn insert_missing(&self, _: &[Portfolio]) -> StoreResult<u64> {
            self.answer()
        }
        async fn update(&self, _: PortfolioId, _: Version, _: &PortfolioChanges) -> StoreResult<Portfolio> {
            Err((self.error)())
        }
        async fn delete(&self, _: PortfolioId, _: Version) -> StoreResult<()> {
            self.answer()
        }
        async fn search(&self, _: &NameFilter, _: PageRequest) -> StoreResult<SearchPage> {
            Err((self.error)())
        }
        async fn search_after(&self, _: &NameFilter, _: Option<Keyset>, _: u32) -> StoreResult<SearchPage> {
            Err((self.error)())
        }
        async fn ping(&self, _: Duration) -> StoreResult<()> {
            self.answer()
        }
        async fn info(&self) -> StoreResult<BackendInfo> {
            Err((self.error)())
        }
        async fn close(&self) {}
    }

    fn unavailable() -> StoreError {
        StoreError::Unavailable("connection refused".into())
    }

    fn backend() -> StoreError {
        StoreError::Backend("constraint violated".into())
    }

    fn resilient(failures: u32, error: fn() -> StoreError, threshold: u32) -> (Arc<Scripted>, ResilientStore) {
        let inner = Arc::new(Scripted { failures, error, calls: AtomicU32::new(0) });
        let breaker = CircuitBreaker::new(
            "database",
            BreakerSettings { failure_threshold: threshold, open_for: Duration::from_secs(3600) },
        );
        let retry =
            RetryPolicy { retries: 2, min_delay: Duration::from_millis(1), max_delay: Duration::from_millis(2) };
        (inner.clone(), ResilientStore::new(inner, breaker, retry))
    }

    fn id() -> PortfolioId {
        PortfolioId::parse("6740f1c2a1b2c3d4e5f60718").unwrap()
    }

    #[tokio::test]
    async fn a_read_is_retried_through_transient_failures() {
        let (inner, store) = resilient(2, unavailable, 10);
        assert!(store.get(id()).await.unwrap().is_none());
        assert_eq!(inner.calls.load(Ordering::SeqCst), 3);
    }

    #[tokio::test]
    async fn a_read_gives_up_after_the_configured_retries() {
        let (inner, store) = resilient(10, unavailable, 10);
        assert!(store.get(id()).await.unwrap_err().is_transient());
        assert_eq!(inner.calls.load(Ordering::SeqCst), 3);
    }

    #[tokio::test]
    async fn a_write_is_never_retried() {
        let (inner, store) = resilient(1, unavailable, 10);
        assert!(store.insert_many(&[]).await.unwrap_err().is_transient());
        assert_eq!(inner.calls.load(Ordering::SeqCst), 1);
    }

    #[tokio::test]
    async fn errors_that_are_not_transient_are_neither_retried_nor_held_against_the_database() {
        let (inner, store) = resilient(100, backend, 3);
        for _ in 0..10 {
            assert!(!store.get(id()).await.unwrap_err().is_transient());
        }
        assert_eq!(inner.calls.load(Ordering::SeqCst), 10);
        assert_eq!(store.breaker.state(), BreakerState::Closed);
    }

    #[tokio::test]
    async fn once_open_the_breaker_refuses_without_calling_the_database() {
        let (inner, store) = resilient(100, unavailable, 3);
        for _ in 0..3 {
            assert!(store.insert_many(&[]).await.is_err());
        }
        assert_eq!(store.breaker.state(), BreakerState::Open);
        let refused = store.get(id()).await.unwrap_err();
        assert_eq!(inner.calls.load(Ordering::SeqCst), 3, "a refused call must not reach the database");
        assert!(refused.is_transient() && is_refusal(&refused), "{refused}");
        let StoreError::Unavailable(inner) = refused else { unreachable!() };
        let open = inner.downcast_ref::<BreakerOpen>().unwrap();
        assert!(open.retry_after > Duration::from_secs(3000), "{open:?}");
    }
}

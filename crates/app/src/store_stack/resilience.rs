//! [`Resilience`]: the database behind a circuit breaker, with retries for what may be retried.
//!
//! Every call asks the `database` breaker first. While it is open, calls fail at once with a
//! transient error carrying [`BreakerOpen`] (the API answers 503 with a `Retry-After` of the
//! time left), instead of each request waiting out the pool's acquire timeout against a
//! database that is down. Only transient errors count as failures: a missing row or a version
//! conflict is the database answering.
//!
//! Calls that [`Op::is_retryable`] are retried on transient errors, with backoff and jitter.
//! Other writes are not: when a connection drops mid-commit the write may have happened, and a
//! blind retry would turn that into a conflict or a duplicate. Clients retry those with an
//! `Idempotency-Key` instead. `ping` is not retried either (readiness must report the database
//! as it is), but goes through the breaker: readiness is 503 while it is open, and the probes
//! themselves drive recovery.

use backon::Retryable;
use pfs_resilience::{BreakerOpen, CircuitBreaker, RetryPolicy};
use pfs_storage::{Op, StoreError, StoreHook, StoreResult};
use std::future::Future;
use std::time::Duration;

pub(crate) struct Resilience {
    pub breaker: CircuitBreaker,
    pub retry: RetryPolicy,
}

impl Resilience {
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
}

impl StoreHook for Resilience {
    async fn around<'a, T, F>(&'a self, op: Op, mut call: impl FnMut() -> F + Send + 'a) -> StoreResult<T>
    where
        T: Send + 'a,
        F: Future<Output = StoreResult<T>> + Send + 'a,
    {
        if !op.is_retryable() {
            return self.guarded(call()).await;
        }
        let operation = op.name();
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

#[cfg(test)]
mod tests {
    use super::*;
    use pfs_resilience::{BreakerSettings, BreakerState};
    use std::sync::atomic::{AtomicU32, Ordering};

    /// A call that fails its first `failures` times with `error()`, then answers; counts calls.
    struct Scripted {
        failures: u32,
        error: fn() -> StoreError,
        calls: AtomicU32,
    }

    impl Scripted {
        async fn answer(&self) -> StoreResult<()> {
            let call = self.calls.fetch_add(1, Ordering::SeqCst);
            if call < self.failures { Err((self.error)()) } else { Ok(()) }
        }

        fn calls(&self) -> u32 {
            self.calls.load(Ordering::SeqCst)
        }
    }

    fn unavailable() -> StoreError {
        StoreError::Unavailable("connection refused".into())
    }

    fn backend() -> StoreError {
        StoreError::Backend("constraint violated".into())
    }

    fn resilient(failures: u32, error: fn() -> StoreError, threshold: u32) -> (Scripted, Resilience) {
        let breaker = CircuitBreaker::new(
            "database",
            BreakerSettings { failure_threshold: threshold, open_for: Duration::from_secs(3600) },
        );
        let retry =
            RetryPolicy { retries: 2, min_delay: Duration::from_millis(1), max_delay: Duration::from_millis(2) };
        (Scripted { failures, error, calls: AtomicU32::new(0) }, Resilience { breaker, retry })
    }

    #[tokio::test]
    async fn a_read_is_retried_through_transient_failures() {
        let (store, hook) = resilient(2, unavailable, 10);
        hook.around(Op::Get, || store.answer()).await.unwrap();
        assert_eq!(store.calls(), 3);
    }

    #[tokio::test]
    async fn a_read_gives_up_after_the_configured_retries() {
        let (store, hook) = resilient(10, unavailable, 10);
        assert!(hook.around(Op::Get, || store.answer()).await.unwrap_err().is_transient());
        assert_eq!(store.calls(), 3);
    }

    #[tokio::test]
    async fn writes_other_than_insert_missing_and_the_readiness_ping_are_never_retried() {
        for op in [Op::InsertMany, Op::Update, Op::Delete, Op::Ping] {
            let (store, hook) = resilient(1, unavailable, 10);
            assert!(hook.around(op, || store.answer()).await.unwrap_err().is_transient());
            assert_eq!(store.calls(), 1, "{op:?}");
        }
        let (store, hook) = resilient(1, unavailable, 10);
        hook.around(Op::InsertMissing, || store.answer()).await.unwrap();
        assert_eq!(store.calls(), 2, "an import is re-runnable");
    }

    #[tokio::test]
    async fn errors_that_are_not_transient_are_neither_retried_nor_held_against_the_database() {
        let (store, hook) = resilient(100, backend, 3);
        for _ in 0..10 {
            assert!(!hook.around(Op::Get, || store.answer()).await.unwrap_err().is_transient());
        }
        assert_eq!(store.calls(), 10);
        assert_eq!(hook.breaker.state(), BreakerState::Closed);
    }

    #[tokio::test]
    async fn once_open_the_breaker_refuses_without_calling_the_database() {
        let (store, hook) = resilient(100, unavailable, 3);
        for _ in 0..3 {
            assert!(hook.around(Op::InsertMany, || store.answer()).await.is_err());
        }
        assert_eq!(hook.breaker.state(), BreakerState::Open);
        let refused = hook.around(Op::Get, || store.answer()).await.unwrap_err();
        assert_eq!(store.calls(), 3, "a refused call must not reach the database");
        assert!(refused.is_transient() && is_refusal(&refused), "{refused}");
        let StoreError::Unavailable(inner) = refused else { unreachable!() };
        let open = inner.downcast_ref::<BreakerOpen>().unwrap();
        assert!(open.retry_after > Duration::from_secs(3000), "{open:?}");
    }
}

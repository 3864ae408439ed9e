//! [`Gate`]: the store (and [`StartupGate`], the idempotency record) refuses every call as `Unavailable` until the database has
//! answered once since the process started and its migrations ran (Redis is not waited for).
//!
//! A pool connected lazily would otherwise reach a database that just came up before the
//! bootstrap migrated it (a missing table is a 500, not a 503). Refusals are transient, so the
//! API answers 503 with `Retry-After`, like any other database outage. Once open, the gate
//! costs one atomic load per call.

use async_trait::async_trait;
use pfs_api::startup::Startup;
use pfs_storage::{
    Begin, BeginRequest, IdempotencyStore, KeyRef, Op, StoreError, StoreHook, StoreResult, StoredResponse,
};
use std::future::Future;
use std::sync::Arc;

/// The gate itself: as a [`StoreHook`] in front of the portfolio store, and inside
/// [`StartupGate`] in front of the idempotency record.
pub(crate) struct Gate {
    startup: Arc<Startup>,
}

impl Gate {
    pub(crate) fn new(startup: Arc<Startup>) -> Self {
        Self { startup }
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

impl StoreHook for Gate {
    async fn around<'a, T, F>(&'a self, _: Op, mut call: impl FnMut() -> F + Send + 'a) -> StoreResult<T>
    where
        T: Send + 'a,
        F: Future<Output = StoreResult<T>> + Send + 'a,
    {
        self.check()?;
        call().await
    }
}

/// The idempotency record of the database the bootstrap waits for, behind the [`Gate`].
pub(crate) struct StartupGate {
    inner: Arc<dyn IdempotencyStore>,
    gate: Gate,
}

impl StartupGate {
    pub(crate) fn new(inner: Arc<dyn IdempotencyStore>, startup: Arc<Startup>) -> Self {
        Self { inner, gate: Gate::new(startup) }
    }

    fn check(&self) -> StoreResult<()> {
        self.gate.check()
    }
}

/// The name the bootstrap and the probes give the database.
pub(crate) const DATABASE: &str = "database";

#[async_trait]
impl IdempotencyStore for StartupGate {
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

    async fn forget(&self, key: KeyRef<'_>, token: &str) -> StoreResult<()> {
        self.check()?;
        self.inner.forget(key, token).await
    }

    async fn purge_expired(&self, now_ms: i64) -> StoreResult<u64> {
        self.check()?;
        self.inner.purge_expired(now_ms).await
    }
}

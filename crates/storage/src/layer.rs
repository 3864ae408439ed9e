//! One way to put a cross-cutting concern around every store call. A [`StoreHook`] sees each
//! call as an [`Op`] and decides how to run it (time it, trace it, retry it, refuse it);
//! [`Layered`] makes any hook a [`PortfolioStore`] in front of another one. The forwarding of
//! every method is written once, here, so a hook is only what it does.
//!
//! Concerns that differ per method (the read cache, the change events) are hand-written
//! decorators instead; with no default method bodies on the trait, forgetting to forward one
//! is a compile error either way.

use crate::{BackendInfo, PoolStats, PortfolioBatches, PortfolioStore, SearchPage, StoreResult};
use async_trait::async_trait;
use pfs_domain::{Keyset, NameFilter, PageRequest, Portfolio, PortfolioChanges, PortfolioId, Version};
use std::future::Future;
use std::sync::Arc;
use std::time::Duration;

/// A store call, by the method it goes to. `close` and `pool_stats` are not calls a hook sees:
/// they always pass straight through.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Op {
    ListAll,
    Get,
    GetMany,
    InsertMany,
    InsertMissing,
    Update,
    Delete,
    Search,
    SearchAfter,
    Ping,
    Info,
}

impl Op {
    /// The method's name, as spans and metrics label it.
    pub const fn name(self) -> &'static str {
        match self {
            Self::ListAll => "list_all",
            Self::Get => "get",
            Self::GetMany => "get_many",
            Self::InsertMany => "insert_many",
            Self::InsertMissing => "insert_missing",
            Self::Update => "update",
            Self::Delete => "delete",
            Self::Search => "search",
            Self::SearchAfter => "search_after",
            Self::Ping => "ping",
            Self::Info => "info",
        }
    }

    /// Whether the call changes stored portfolios.
    pub const fn is_write(self) -> bool {
        matches!(self, Self::InsertMany | Self::InsertMissing | Self::Update | Self::Delete)
    }

    /// Whether the call asks about the backend itself (readiness, version) rather than about
    /// portfolios.
    pub const fn is_probe(self) -> bool {
        matches!(self, Self::Ping | Self::Info)
    }

    /// Whether repeating the call after a transient failure is safe: the reads, and the
    /// re-runnable `insert_missing`. Not the other writes (a connection dropped mid-commit may
    /// have written, and a blind retry would turn that into a conflict or a duplicate), and
    /// not `ping` (readiness must report the database as it is).
    pub const fn is_retryable(self) -> bool {
        !matches!(self, Self::InsertMany | Self::Update | Self::Delete | Self::Ping)
    }
}

/// A concern wrapped around every store call. `call` starts the call on the store behind
/// (lazily: nothing happens until its future is polled); a hook may run it once, several
/// times (retries) or not at all (a refusal, an injected failure).
pub trait StoreHook: Send + Sync + 'static {
    fn around<'a, T, F>(
        &'a self,
        op: Op,
        call: impl FnMut() -> F + Send + 'a,
    ) -> impl Future<Output = StoreResult<T>> + Send + 'a
    where
        T: Send + 'a,
        F: Future<Output = StoreResult<T>> + Send + 'a;
}

/// `hook` around every call to `inner`. The hook's future is part of this store's own (no
/// allocation beyond the one every `PortfolioStore` call makes).
pub struct Layered<H> {
    hook: H,
    inner: Arc<dyn PortfolioStore>,
}

impl<H: StoreHook> Layered<H> {
    pub fn new(hook: H, inner: Arc<dyn PortfolioStore>) -> Self {
        Self { hook, inner }
    }

    /// `Layered::new` as the `Arc<dyn PortfolioStore>` the next layer takes.
    pub fn wrap(hook: H, inner: Arc<dyn PortfolioStore>) -> Arc<dyn PortfolioStore> {
        Arc::new(Self::new(hook, inner))
    }

    pub fn hook(&self) -> &H {
        &self.hook
    }
}

#[async_trait]
impl<H: StoreHook> PortfolioStore for Layered<H> {
    /// The hook sees opening the list (reading its first batch), not the batches after it:
    /// those are read while the response is being sent, when a refusal or a retry can no
    /// longer change the answer.
    async fn list_stream(&self) -> StoreResult<PortfolioBatches> {
        self.hook.around(Op::ListAll, || self.inner.list_stream()).await
    }

    async fn get(&self, id: PortfolioId) -> StoreResult<Option<Portfolio>> {
        self.hook.around(Op::Get, || self.inner.get(id)).await
    }

    async fn get_many(&self, ids: &[PortfolioId]) -> StoreResult<Vec<Portfolio>> {
        self.hook.around(Op::GetMany, || self.inner.get_many(ids)).await
    }

    async fn insert_many(&self, portfolios: &[Portfolio]) -> StoreResult<()> {
        self.hook.around(Op::InsertMany, || self.inner.insert_many(portfolios)).await
    }

    async fn insert_missing(&self, portfolios: &[Portfolio]) -> StoreResult<u64> {
        self.hook.around(Op::InsertMissing, || self.inner.insert_missing(portfolios)).await
    }

    async fn update(&self, id: PortfolioId, expected: Version, changes: &PortfolioChanges) -> StoreResult<Portfolio> {
        self.hook.around(Op::Update, || self.inner.update(id, expected, changes)).await
    }

    async fn delete(&self, id: PortfolioId, expected: Version) -> StoreResult<()> {
        self.hook.around(Op::Delete, || self.inner.delete(id, expected)).await
    }

    async fn search(&self, filter: &NameFilter, page: PageRequest) -> StoreResult<SearchPage> {
        self.hook.around(Op::Search, || self.inner.search(filter, page)).await
    }

    async fn search_after(&self, filter: &NameFilter, after: Option<Keyset>, limit: u32) -> StoreResult<SearchPage> {
        self.hook.around(Op::SearchAfter, || self.inner.search_after(filter, after, limit)).await
    }

    async fn ping(&self, timeout: Duration) -> StoreResult<()> {
        self.hook.around(Op::Ping, || self.inner.ping(timeout)).await
    }

    async fn info(&self) -> StoreResult<BackendInfo> {
        self.hook.around(Op::Info, || self.inner.info()).await
    }

    async fn close(&self) {
        self.inner.close().await;
    }

    fn pool_stats(&self) -> Vec<PoolStats> {
        self.inner.pool_stats()
    }
}

/// The store as callers take it: one chain, and optionally a second way into the same chain
/// through extra layers, taken by the calls made while `take_detour()` holds. For layers that
/// only a few calls need and that would cost every other call an allocation (each layer boxes
/// its future): spans on cached reads, wanted by the one request in a hundred that is traced.
#[derive(Clone)]
pub struct StoreEntry {
    usual: Arc<dyn PortfolioStore>,
    detour: Option<Detour>,
}

/// The other way in, and when to take it.
#[derive(Clone)]
struct Detour {
    store: Arc<dyn PortfolioStore>,
    take: fn() -> bool,
}

impl StoreEntry {
    /// One way in.
    pub fn single(store: Arc<dyn PortfolioStore>) -> Self {
        Self { usual: store, detour: None }
    }

    /// `usual`, or `detour` while `take_detour()` holds; `detour` must end in `usual`'s chain.
    pub fn with_detour(
        usual: Arc<dyn PortfolioStore>,
        detour: Arc<dyn PortfolioStore>,
        take_detour: fn() -> bool,
    ) -> Self {
        Self { usual, detour: Some(Detour { store: detour, take: take_detour }) }
    }

    /// The store for a call made now.
    pub fn current(&self) -> &Arc<dyn PortfolioStore> {
        match &self.detour {
            Some(detour) if (detour.take)() => &detour.store,
            _ => &self.usual,
        }
    }

    /// The usual way in, for calls that need none of the detour's layers (probes, shutdown,
    /// background work).
    pub fn usual(&self) -> &Arc<dyn PortfolioStore> {
        &self.usual
    }
}

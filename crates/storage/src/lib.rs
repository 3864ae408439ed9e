//! The storage port. Backends (`pfs-storage-sqlite`, ...) implement [`PortfolioStore`]; the
//! composition root picks one from the database URL and hands it around as
//! `Arc<dyn PortfolioStore>`, so nothing above this crate knows which database is behind it.

pub mod idempotency;
pub mod jobs;
pub mod layer;
pub mod listing;
pub mod paging;
pub mod pool;

pub use idempotency::{Begin, BeginRequest, IdempotencyStore, KeyRef, Reservation, StoredResponse};
pub use layer::{Layered, Op, StoreEntry, StoreHook};
pub use listing::PortfolioBatches;
pub use pool::PoolStats;

use async_trait::async_trait;
use pfs_domain::{Keyset, NameFilter, PageRequest, Portfolio, PortfolioChanges, PortfolioId, Version};
use std::future::Future;
use std::time::Duration;

pub type StoreResult<T> = Result<T, StoreError>;

/// Why a storage call failed, classified so the API can answer precisely.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    /// No portfolio has this id.
    #[error("portfolio not found")]
    NotFound,
    /// The portfolio exists but its version is not the expected one; nothing was written.
    #[error("version conflict")]
    Conflict,
    /// The database could not be reached in time (pool exhausted, connection refused, ...).
    /// Transient: the same call may succeed later.
    #[error("storage unavailable: {0}")]
    Unavailable(#[source] Box<dyn std::error::Error + Send + Sync>),
    /// Anything else the backend reported.
    #[error("storage failure: {0}")]
    Backend(#[source] Box<dyn std::error::Error + Send + Sync>),
}

impl StoreError {
    /// What a version-checked update or delete that matched no row means: the row exists with
    /// another version (`Conflict`), or there is no such row (`NotFound`).
    pub fn unmatched_write(exists: bool) -> Self {
        if exists { Self::Conflict } else { Self::NotFound }
    }

    /// Whether retrying the same call later could succeed.
    pub fn is_transient(&self) -> bool {
        matches!(self, Self::Unavailable(_))
    }
}

/// The `LIKE` pattern matching `term` anywhere, with `\\` as the escape character (SQL
/// backends pass `ESCAPE '\\'`). Search terms can only carry `_` of the three metacharacters,
/// but escaping all of them keeps this correct for any input.
pub fn like_contains_pattern(term: &str) -> String {
    let mut pattern = String::with_capacity(term.len() + 2);
    pattern.push('%');
    for c in term.chars() {
        if matches!(c, '%' | '_' | '\\') {
            pattern.push('\\');
        }
        pattern.push(c);
    }
    pattern.push('%');
    pattern
}

/// One page of a search, with the total count of matches for the pagination block.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SearchPage {
    pub items: Vec<Portfolio>,
    pub total: u64,
}

/// What `/health/detailed` reports about the backend.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct BackendInfo {
    /// `sqlite`, `postgres`, ...
    pub kind: &'static str,
    pub server_version: String,
}

/// The v1 list collected in memory, for tests and small stores ([`listing::collect`]); the
/// route streams it.
pub trait ListAll {
    fn list_all(&self) -> impl Future<Output = StoreResult<Vec<Portfolio>>> + Send;
}

impl<S: PortfolioStore + ?Sized> ListAll for S {
    async fn list_all(&self) -> StoreResult<Vec<Portfolio>> {
        listing::collect(self.list_stream().await?).await
    }
}

/// Persistence of portfolios. Every method is a single atomic operation.
#[async_trait]
pub trait PortfolioStore: Send + Sync + 'static {
    /// Every portfolio in creation order (ascending id), unpaged: the v1 list, as batches read
    /// while the caller consumes them ([`listing`]: bounded by bytes, one connection per batch
    /// only while it is read). Fails itself if the first batch cannot be read.
    async fn list_stream(&self) -> StoreResult<PortfolioBatches>;

    async fn get(&self, id: PortfolioId) -> StoreResult<Option<Portfolio>>;

    /// The stored portfolios among `ids`, in any order, in one round trip where the backend
    /// can.
    async fn get_many(&self, ids: &[PortfolioId]) -> StoreResult<Vec<Portfolio>>;

    /// Inserts all portfolios in one transaction: either every one is stored or none is.
    async fn insert_many(&self, portfolios: &[Portfolio]) -> StoreResult<()>;

    /// Inserts the portfolios whose ids are not stored yet, in one transaction, and returns how
    /// many were inserted; existing ids are left untouched. This makes an import re-runnable.
    async fn insert_missing(&self, portfolios: &[Portfolio]) -> StoreResult<u64>;

    /// Applies `changes` and sets the version to `expected + 1` if and only if the stored
    /// version is `expected`, atomically. `NotFound` or `Conflict` otherwise.
    async fn update(&self, id: PortfolioId, expected: Version, changes: &PortfolioChanges) -> StoreResult<Portfolio>;

    /// Deletes the portfolio if and only if its stored version is `expected`, atomically.
    async fn delete(&self, id: PortfolioId, expected: Version) -> StoreResult<()>;

    /// Matches ordered by `dateCreated` descending, ties by id descending, then paged.
    async fn search(&self, filter: &NameFilter, page: PageRequest) -> StoreResult<SearchPage>;

    /// Keyset pagination: up to `limit` matches after `after` (from the start when `None`), in
    /// search order, with the total count of all matches.
    async fn search_after(&self, filter: &NameFilter, after: Option<Keyset>, limit: u32) -> StoreResult<SearchPage>;

    /// A round trip through the pool (never a new connection), for readiness.
    async fn ping(&self, timeout: Duration) -> StoreResult<()>;

    async fn info(&self) -> StoreResult<BackendInfo>;

    /// Closes the pool after in-flight calls finish; called once on shutdown.
    async fn close(&self);

    /// Occupancy of the client-side connection pools, read when metrics are exported.
    /// Backends without a client-side pool (and test fakes) report nothing; decorators
    /// forward it, or the pools behind them would disappear from the metrics.
    fn pool_stats(&self) -> Vec<PoolStats>;
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn like_metacharacters_are_escaped() {
        assert_eq!(like_contains_pattern("a_b"), "%a\\_b%");
        assert_eq!(like_contains_pattern("50%"), "%50\\%%");
        assert_eq!(like_contains_pattern("x\\y"), "%x\\\\y%");
    }

    #[test]
    fn an_unmatched_versioned_write_is_a_conflict_only_if_the_row_exists() {
        assert!(matches!(StoreError::unmatched_write(true), StoreError::Conflict));
        assert!(matches!(StoreError::unmatched_write(false), StoreError::NotFound));
    }
}

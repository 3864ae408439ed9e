//! A read cache in front of any [`PortfolioStore`].
//!
//! # Layout
//! - [`ReadCache`]: the in-process entries (moka: TTL and size bound) and hit/miss counters.
//! - [`CachedStore`]: the decorator; reads go through the cache, writes invalidate it.
//! - [`InvalidationBus`]: how replicas tell each other what they wrote ([`LocalOnly`] when
//!   there is one replica; the Redis implementation lives in `pfs-redis`).
//!
//! Correctness comes first: a read after a write through the same replica is never stale, and
//! another replica's write reaches this cache as fast as the bus delivers it. While the bus is
//! disconnected, invalidations may be missed, so the cache is bypassed rather than trusted.

mod read_cache;
mod store;

pub use read_cache::{CacheSettings, CacheStats, ReadCache};
pub use store::CachedStore;

use pfs_domain::PortfolioId;

/// What a write made stale.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Invalidation {
    /// One portfolio changed (updated or deleted); every search page may have changed too.
    Portfolio(PortfolioId),
    /// Portfolios were added, or too much changed to say: drop every search page.
    Searches,
    /// Start over: drop everything (after missed messages, e.g. a reconnect).
    Everything,
}

/// Carries invalidations between replicas.
pub trait InvalidationBus: Send + Sync + 'static {
    /// Tells the other replicas. Never fails the caller: a failure is the bus's to log and to
    /// reflect in [`InvalidationBus::is_connected`].
    fn publish(&self, invalidation: Invalidation);

    /// Whether this replica currently hears the others. The cache only serves while it does.
    fn is_connected(&self) -> bool;

    /// A name and state for `/health/detailed`.
    fn describe(&self) -> BusStatus;
}

/// The bus's state, for health reporting.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct BusStatus {
    pub kind: &'static str,
    pub connected: bool,
}

/// A single replica: nothing to tell anyone, always "connected".
#[derive(Debug, Default)]
pub struct LocalOnly;

impl InvalidationBus for LocalOnly {
    fn publish(&self, _: Invalidation) {}

    fn is_connected(&self) -> bool {
        true
    }

    fn describe(&self) -> BusStatus {
        BusStatus { kind: "local", connected: true }
    }
}

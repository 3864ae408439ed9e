//! The store chain, built in one place. A handler's call goes down it; each layer is one
//! concern:
//!
//! ```text
//!  handler ──► Publishing ───────────────────────────────┐  change events (pfs-events), after commit
//!     │                                                   ▼
//!     └─ sampled request ─► Publishing ─► Layered<Spans>  │  cache-tier spans (tracing on, cache on)
//!                                              │          ▼
//!                                              └──► Cached           read cache + invalidation bus (pfs-cache)
//!                                                       │
//!                                                       ▼
//!                                              Layered<Resilience>   `database` breaker, retries (store_stack::resilience)
//!                                                       │
//!                                                       ▼
//!                                              Layered<Spans>        database-tier spans (tracing on)
//!                                                       │
//!                                                       ▼
//!                                              Layered<Gate>         refuses until the database answered and is migrated
//!                                                       │                (`startup_gate`; `App::build` puts it on the backend)
//!                                                       ▼
//!                                                    backend          SQLite, PostgreSQL or MongoDB (`storage::open`)
//! ```
//!
//! Layers that are off are absent, not idle: without tracing there is no `Spans` layer, without
//! the cache no `Cached`, without events no `Publishing`. The sampled way in exists so that the
//! 99 requests in 100 that are not traced skip the cache-tier spans layer altogether: each
//! layer allocates its call's future, and a cached read is cheap enough for that to show.
//! `Spans`, `Resilience` and `Gate` are [`StoreHook`](pfs_storage::StoreHook)s around one generic
//! [`Layered`]; the cache and the events differ per method and are decorators of their own.

mod resilience;
mod spans;

use crate::dependencies::Dependencies;
use pfs_cache::{CacheSettings, CachedStore, InvalidationBus, LocalOnly, ReadCache};
use pfs_events::{ChangeFeed, PublishingStore};
use pfs_observability::RuntimeFlags;
use pfs_platform::Config;
use pfs_redis::{RedisBus, RedisBusSettings};
use pfs_resilience::RetryPolicy;
use pfs_storage::{Layered, PortfolioStore, StoreEntry};
use resilience::Resilience;
use spans::{Spans, Tier};
use std::sync::Arc;
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;

/// The chain and what the API reports about its layers.
pub(crate) struct StoreStack {
    pub entry: StoreEntry,
    /// The read cache inside the chain, when enabled (for its statistics).
    pub cache: Option<Arc<ReadCache>>,
    /// How the cache hears about other replicas' writes.
    pub bus: Arc<dyn InvalidationBus>,
    /// Where committed writes are announced, when `events.enabled`.
    pub events: Option<Arc<ChangeFeed>>,
}

/// Builds the chain drawn above around `backend`, with the Redis bus and event stream when
/// `redis.url` is set (in process otherwise: then this replica must be the only one). `bus`
/// replaces the bus the configuration would choose (one-shot commands announce on close).
pub(crate) fn build(
    config: &Config,
    backend: Arc<dyn PortfolioStore>,
    dependencies: &Dependencies,
    flags: &Arc<RuntimeFlags>,
    bus: Option<Arc<dyn InvalidationBus>>,
    background: (&TaskTracker, &CancellationToken),
) -> StoreStack {
    let (tasks, shutdown) = background;
    let tracing = config.observability.tracing_enabled;
    let spans = |tier, store| {
        if tracing { Layered::wrap(Spans { tier, flags: flags.clone() }, store) } else { store }
    };
    let reliability = &config.reliability;
    let retry = RetryPolicy {
        retries: reliability.storage_retries,
        min_delay: reliability.storage_retry_min_delay,
        max_delay: reliability.storage_retry_max_delay,
    };
    let database = Resilience { breaker: dependencies.database.clone(), retry };
    let store = Layered::wrap(database, spans(Tier::Database, backend));
    let redis = dependencies.redis.as_ref();
    let events = crate::events::feed(config, redis.map(|r| r.client.clone()), tasks, shutdown);
    let publishing = |store| match &events {
        Some(feed) => Arc::new(PublishingStore::new(store, feed.clone())) as Arc<dyn PortfolioStore>,
        None => store,
    };
    if !config.cache.enabled {
        let entry = StoreEntry::single(publishing(store));
        return StoreStack { entry, cache: None, bus: bus.unwrap_or_else(|| Arc::new(LocalOnly)), events };
    }
    let settings = CacheSettings {
        max_portfolios: config.cache.max_portfolios,
        max_page_items: config.cache.max_page_items,
        max_bytes: config.cache.max_bytes,
        ttl: config.cache.ttl,
    };
    let cache = Arc::new(ReadCache::new(&settings));
    let bus = bus.unwrap_or_else(|| match redis {
        None => Arc::new(LocalOnly),
        Some(redis) => RedisBus::start(
            redis.client.clone(),
            RedisBusSettings { breaker: redis.breaker.clone(), ..RedisBusSettings::new(&config.redis.channel) },
            cache.clone(),
            tasks,
            shutdown.clone(),
        ),
    });
    let cached: Arc<dyn PortfolioStore> = Arc::new(CachedStore::new(store, cache.clone(), bus.clone()));
    let usual = publishing(cached.clone());
    let entry = if tracing {
        let sampled = publishing(spans(Tier::Cache, cached));
        StoreEntry::with_detour(usual, sampled, pfs_observability::http::in_sampled_trace)
    } else {
        StoreEntry::single(usual)
    };
    StoreStack { entry, cache: Some(cache), bus, events }
}

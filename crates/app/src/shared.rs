//! The read cache and the bus that keeps it honest across replicas.

use anyhow::Context;
use pfs_cache::{CacheSettings, CachedStore, InvalidationBus, LocalOnly, ReadCache};
use pfs_platform::Config;
use pfs_platform::config::redact_url;
use pfs_redis::{RedisBus, RedisBusSettings};
use pfs_storage::PortfolioStore;
use std::sync::Arc;
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;

pub(crate) struct Shared {
    pub store: Arc<dyn PortfolioStore>,
    pub cache: Option<Arc<ReadCache>>,
    pub bus: Arc<dyn InvalidationBus>,
}

/// Wraps `store` in the cache when enabled. With `redis.url` set, other replicas' writes
/// reach this cache through Redis; without it, this replica must be the only writer.
pub(crate) fn start(
    config: &Config,
    store: Arc<dyn PortfolioStore>,
    tasks: &TaskTracker,
    shutdown: &CancellationToken,
) -> anyhow::Result<Shared> {
    let local: Arc<dyn InvalidationBus> = Arc::new(LocalOnly);
    if !config.cache.enabled {
        return Ok(Shared { store, cache: None, bus: local });
    }
    let settings = CacheSettings {
        max_portfolios: config.cache.max_portfolios,
        max_page_items: config.cache.max_page_items,
        ttl: config.cache.ttl,
    };
    let cache = Arc::new(ReadCache::new(&settings));
    let bus: Arc<dyn InvalidationBus> = if config.redis.url.is_empty() {
        local
    } else {
        let client = redis::Client::open(config.redis.url.as_str())
            .with_context(|| format!("invalid redis.url {}", redact_url(&config.redis.url)))?;
        RedisBus::start(client, RedisBusSettings::new(&config.redis.channel), cache.clone(), tasks, shutdown.clone())
    };
    let cached = CachedStore::new(store, cache.clone(), bus.clone());
    Ok(Shared { store: Arc::new(cached), cache: Some(cache), bus })
}

//! What replicas share: the read cache's invalidations and the rate-limit buckets, through
//! Redis when configured, in process otherwise.

use crate::resilient_store::ResilientStore;
use anyhow::Context;
use async_trait::async_trait;
use pfs_api::middleware::rate_limit::{Decision, LocalLimiter, RateLimiter};
use pfs_cache::{CacheSettings, CachedStore, InvalidationBus, LocalOnly, ReadCache};
use pfs_observability::RuntimeFlags;
use pfs_observability::store::{Tier, TracedStore};
use pfs_platform::Config;
use pfs_platform::config::redact_url;
use pfs_redis::{RedisBus, RedisBusSettings, RedisRateLimiter};
use pfs_resilience::{BreakerSettings, CircuitBreaker, RetryPolicy};
use pfs_storage::PortfolioStore;
use std::num::NonZeroU32;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;

pub(crate) struct Shared {
    pub store: Arc<dyn PortfolioStore>,
    /// `store` with cache spans, for sampled requests; `None` when it would be `store` itself.
    pub traced_store: Option<Arc<dyn PortfolioStore>>,
    pub cache: Option<Arc<ReadCache>>,
    pub bus: Arc<dyn InvalidationBus>,
    pub limiter: Option<Arc<dyn RateLimiter>>,
    /// One per dependency: `database`, and `redis` when configured.
    pub breakers: Vec<CircuitBreaker>,
    pub events: Option<Arc<pfs_events::ChangeFeed>>,
}

/// Wraps `store` in the cache when enabled and builds the rate limiter when enabled. With
/// `redis.url` set, other replicas' writes reach this cache through Redis and rate-limit
/// buckets live in Redis; without it, this replica must be the only one.
pub(crate) fn start(
    config: &Config,
    store: Arc<dyn PortfolioStore>,
    tasks: &TaskTracker,
    shutdown: &CancellationToken,
    flags: &Arc<RuntimeFlags>,
) -> anyhow::Result<Shared> {
    let tracing = config.observability.tracing_enabled;
    let store = if tracing { TracedStore::wrap(store, Tier::Database, flags.clone()) } else { store };
    let redis = match config.redis.url.as_str() {
        "" => None,
        url => Some(redis::Client::open(url).with_context(|| format!("invalid redis.url {}", redact_url(url)))?),
    };
    let reliability = &config.reliability;
    let breaker_settings = BreakerSettings {
        failure_threshold: reliability.breaker_failure_threshold,
        open_for: reliability.breaker_open_for,
    };
    let database = CircuitBreaker::new("database", breaker_settings);
    let retry = RetryPolicy {
        retries: reliability.storage_retries,
        min_delay: reliability.storage_retry_min_delay,
        max_delay: reliability.storage_retry_max_delay,
    };
    let store: Arc<dyn PortfolioStore> = Arc::new(ResilientStore::new(store, database.clone(), retry));
    let redis = redis.map(|client| (client, CircuitBreaker::new("redis", breaker_settings)));
    let breakers = std::iter::once(database).chain(redis.as_ref().map(|(_, breaker)| breaker.clone())).collect();
    let limiter = config.rate_limit.enabled.then(|| limiter(config, redis.clone()));
    let events = crate::events::feed(config, redis.as_ref().map(|(client, _)| client.clone()), tasks, shutdown);
    if !config.cache.enabled {
        let store = crate::events::publishing(store, &events);
        return Ok(Shared {
            store,
            traced_store: None,
            cache: None,
            bus: Arc::new(LocalOnly),
            limiter,
            breakers,
            events,
        });
    }
    let settings = CacheSettings {
        max_portfolios: config.cache.max_portfolios,
        max_page_items: config.cache.max_page_items,
        ttl: config.cache.ttl,
    };
    let cache = Arc::new(ReadCache::new(&settings));
    let bus: Arc<dyn InvalidationBus> = match redis {
        None => Arc::new(LocalOnly),
        Some((client, breaker)) => RedisBus::start(
            client,
            RedisBusSettings { breaker, ..RedisBusSettings::new(&config.redis.channel) },
            cache.clone(),
            tasks,
            shutdown.clone(),
        ),
    };
    let cached: Arc<dyn PortfolioStore> = Arc::new(CachedStore::new(store, cache.clone(), bus.clone()));
    let traced_store = tracing
        .then(|| crate::events::publishing(TracedStore::wrap(cached.clone(), Tier::Cache, flags.clone()), &events));
    let store = crate::events::publishing(cached, &events);
    Ok(Shared { store, traced_store, cache: Some(cache), bus, limiter, breakers, events })
}

fn limiter(config: &Config, redis: Option<(redis::Client, CircuitBreaker)>) -> Arc<dyn RateLimiter> {
    let limits = &config.rate_limit;
    let nonzero = |n: u32| NonZeroU32::new(n).unwrap_or(NonZeroU32::MIN);
    let local = LocalLimiter::new(nonzero(limits.per_second), nonzero(limits.burst));
    match redis {
        None => Arc::new(local),
        Some((client, breaker)) => Arc::new(SharedLimiter {
            redis: RedisRateLimiter::new(
                client,
                limits.per_second,
                limits.burst,
                format!("{}:ratelimit:", config.redis.channel),
            ),
            local,
            breaker,
            fallbacks: AtomicU64::new(0),
        }),
    }
}

/// Buckets in Redis; while Redis cannot answer (within 50 ms), this replica's own buckets
/// decide instead: clients keep being served and limited, just per replica for a while. While
/// the `redis` breaker is open, Redis is not even asked.
struct SharedLimiter {
    redis: RedisRateLimiter,
    local: LocalLimiter,
    breaker: CircuitBreaker,
    fallbacks: AtomicU64,
}

#[async_trait]
impl RateLimiter for SharedLimiter {
    async fn check(&self, key: &str) -> Decision {
        let Some(ticket) = self.breaker.allow() else { return self.local.check(key).await };
        match self.redis.check(key).await {
            Ok(shared) => {
                ticket.success();
                Decision { allowed: shared.allowed, remaining: shared.remaining, retry_after: shared.retry_after }
            }
            Err(err) => {
                ticket.failure();
                let count = self.fallbacks.fetch_add(1, Ordering::Relaxed) + 1;
                if count == 1 || count.is_power_of_two() {
                    tracing::warn!(error = %err, fallbacks = count, "rate limit: Redis unavailable, using local buckets");
                }
                self.local.check(key).await
            }
        }
    }
}

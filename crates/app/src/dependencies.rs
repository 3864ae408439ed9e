//! What the process depends on besides its own memory, each behind its circuit breaker: the
//! database, and Redis when `redis.url` is set. The store chain, the change stream and the
//! rate limiter share the one Redis client and `redis` breaker, so one outage is noticed (and
//! waited out) once.

use anyhow::Context;
use pfs_platform::Config;
use pfs_platform::config::redact_url;
use pfs_rate_limit::{RateLimiter, SharedBuckets};
use pfs_resilience::{BreakerSettings, CircuitBreaker};
use std::sync::Arc;

pub(crate) struct Dependencies {
    pub database: CircuitBreaker,
    pub redis: Option<Redis>,
}

pub(crate) struct Redis {
    pub client: redis::Client,
    pub breaker: CircuitBreaker,
}

impl Dependencies {
    pub fn new(config: &Config) -> anyhow::Result<Self> {
        let reliability = &config.reliability;
        let settings = BreakerSettings {
            failure_threshold: reliability.breaker_failure_threshold,
            open_for: reliability.breaker_open_for,
        };
        let redis = match config.redis.url.as_str() {
            "" => None,
            url => Some(Redis {
                client: redis::Client::open(url).with_context(|| format!("invalid redis.url {}", redact_url(url)))?,
                breaker: CircuitBreaker::new("redis", settings),
            }),
        };
        Ok(Self { database: CircuitBreaker::new("database", settings), redis })
    }

    /// The rate limiter: buckets in Redis (this replica's own while Redis cannot answer) when
    /// configured, in process otherwise.
    pub fn rate_limiter(&self, config: &Config) -> Arc<dyn RateLimiter> {
        let limits = &config.rate_limit;
        let shared = self.redis.as_ref().map(|redis| SharedBuckets {
            client: redis.client.clone(),
            breaker: redis.breaker.clone(),
            prefix: format!("{}:ratelimit:", config.redis.channel),
        });
        pfs_rate_limit::limiter(limits.per_second, limits.burst, limits.max_clients, shared)
    }

    /// Every breaker, `database` first, for the health probes.
    pub fn breakers(&self) -> Vec<CircuitBreaker> {
        std::iter::once(self.database.clone()).chain(self.redis.as_ref().map(|r| r.breaker.clone())).collect()
    }
}

//! [`RedisOrLocal`]: shared buckets while Redis answers, this replica's own while it does not.

use crate::{Decision, LocalLimiter, RateLimiter, RedisRateLimiter};
use async_trait::async_trait;
use pfs_resilience::CircuitBreaker;
use std::sync::atomic::{AtomicU64, Ordering};

/// Buckets in Redis; while Redis cannot answer (within 50 ms), this replica's own buckets
/// decide instead: clients keep being served and limited, just per replica for a while. While
/// the `redis` breaker is open, Redis is not even asked.
pub struct RedisOrLocal {
    redis: RedisRateLimiter,
    local: LocalLimiter,
    breaker: CircuitBreaker,
    fallbacks: AtomicU64,
}

impl RedisOrLocal {
    pub fn new(redis: RedisRateLimiter, local: LocalLimiter, breaker: CircuitBreaker) -> Self {
        Self { redis, local, breaker, fallbacks: AtomicU64::new(0) }
    }
}

#[async_trait]
impl RateLimiter for RedisOrLocal {
    async fn check(&self, key: &str) -> Decision {
        let Some(ticket) = self.breaker.allow() else { return self.local.check(key).await };
        match self.redis.check(key).await {
            Ok(shared) => {
                ticket.success();
                shared
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

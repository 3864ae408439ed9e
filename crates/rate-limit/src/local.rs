//! [`LocalLimiter`]: buckets in this process's memory (governor), at most `max_clients` of them.
//!
//! The buckets live in a moka cache bounded by count with least-recently-used eviction, and a
//! bucket idle long enough to be full again is dropped (it carries no information). Keys are
//! short (the API builds them from a hash or an address, at most 45 bytes), so the count bound
//! is a byte bound: `tests/memory.rs` measures what one bucket costs. LRU rather than moka's
//! default admission policy: a new client must always get a bucket of its own, or a flood of
//! one-off keys could keep it from being admitted, and so from being limited. A client evicted
//! by such a flood only loses its history (a fresh bucket), never its service.

use crate::{Decision, RateLimiter};
use async_trait::async_trait;
use governor::middleware::StateInformationMiddleware;
use governor::state::{InMemoryState, NotKeyed};
use governor::{Quota, RateLimiter as Governor, clock::Clock, clock::DefaultClock};
use moka::policy::EvictionPolicy;
use std::num::NonZeroU32;
use std::sync::Arc;
use std::time::Duration;

type Bucket = Governor<NotKeyed, InMemoryState, DefaultClock, StateInformationMiddleware>;

/// Buckets in this process's memory.
pub struct LocalLimiter {
    buckets: moka::sync::Cache<String, Arc<Bucket>>,
    quota: Quota,
    clock: DefaultClock,
}

impl LocalLimiter {
    pub fn new(per_second: NonZeroU32, burst: NonZeroU32, max_clients: u64) -> Self {
        let quota = Quota::per_second(per_second).allow_burst(burst);
        // An idle bucket refills completely within burst / rate; then it is as good as new.
        let refill =
            Duration::from_secs_f64(f64::from(burst.get()) / f64::from(per_second.get())).max(Duration::from_secs(1));
        let buckets = moka::sync::Cache::builder()
            .max_capacity(max_clients)
            .eviction_policy(EvictionPolicy::lru())
            .time_to_idle(refill)
            .build();
        Self { buckets, quota, clock: DefaultClock::default() }
    }

    /// Buckets held now (after pending evictions are applied).
    pub fn tracked(&self) -> u64 {
        self.buckets.run_pending_tasks();
        self.buckets.entry_count()
    }
}

#[async_trait]
impl RateLimiter for LocalLimiter {
    async fn check(&self, key: &str) -> Decision {
        let quota = self.quota;
        let bucket = self.buckets.get_with_by_ref(key, || {
            Arc::new(
                Governor::direct_with_clock(quota, self.clock.clone()).with_middleware::<StateInformationMiddleware>(),
            )
        });
        match bucket.check() {
            Ok(state) => {
                Decision { allowed: true, remaining: state.remaining_burst_capacity(), retry_after: Duration::ZERO }
            }
            Err(denied) => {
                Decision { allowed: false, remaining: 0, retry_after: denied.wait_time_from(self.clock.now()) }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn limiter(max_clients: u64) -> LocalLimiter {
        LocalLimiter::new(NonZeroU32::new(1).unwrap(), NonZeroU32::new(2).unwrap(), max_clients)
    }

    #[tokio::test]
    async fn a_burst_is_allowed_then_requests_are_refused_with_a_wait() {
        let limiter = limiter(100);
        assert_eq!(limiter.check("a").await.remaining, 1);
        assert!(limiter.check("a").await.allowed);
        let denied = limiter.check("a").await;
        assert!(!denied.allowed && denied.retry_after > Duration::ZERO && denied.retry_after <= Duration::from_secs(1));
        assert!(limiter.check("b").await.allowed, "buckets are per client");
    }

    #[tokio::test]
    async fn the_number_of_buckets_is_bounded_and_a_new_client_is_still_limited() {
        let limiter = limiter(1_000);
        for n in 0..10_000 {
            limiter.check(&format!("ip:10.0.{}.{}", n / 256, n % 256)).await;
        }
        assert!(limiter.tracked() <= 1_000, "{} buckets", limiter.tracked());
        // After the flood, a new client gets a bucket of its own and is limited by it.
        let decisions = [limiter.check("ip:192.0.2.1").await, limiter.check("ip:192.0.2.1").await];
        assert!(decisions.iter().all(|d| d.allowed));
        assert!(!limiter.check("ip:192.0.2.1").await.allowed, "the burst of 2 is used up");
    }
}

//! [`LocalLimiter`]: buckets in this process's memory (governor).

use crate::{Decision, RateLimiter};
use async_trait::async_trait;
use governor::middleware::StateInformationMiddleware;
use governor::{Quota, RateLimiter as Governor, clock::Clock, clock::DefaultClock};
use std::num::NonZeroU32;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

type KeyedGovernor =
    Governor<String, governor::state::keyed::DefaultKeyedStateStore<String>, DefaultClock, StateInformationMiddleware>;

/// Buckets in this process's memory.
pub struct LocalLimiter {
    governor: KeyedGovernor,
    clock: DefaultClock,
    checks: AtomicU64,
}

impl LocalLimiter {
    pub fn new(per_second: NonZeroU32, burst: NonZeroU32) -> Self {
        let quota = Quota::per_second(per_second).allow_burst(burst);
        Self {
            governor: Governor::keyed(quota).with_middleware::<StateInformationMiddleware>(),
            clock: DefaultClock::default(),
            checks: AtomicU64::new(0),
        }
    }
}

#[async_trait]
impl RateLimiter for LocalLimiter {
    async fn check(&self, key: &str) -> Decision {
        // Buckets of clients gone quiet are full again and carry no information: drop them
        // now and then so memory follows the number of active clients, not of all clients.
        if self.checks.fetch_add(1, Ordering::Relaxed) % 10_000 == 9_999 {
            self.governor.retain_recent();
            self.governor.shrink_to_fit();
        }
        match self.governor.check_key(&key.to_owned()) {
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

    #[tokio::test]
    async fn a_burst_is_allowed_then_requests_are_refused_with_a_wait() {
        let limiter = LocalLimiter::new(NonZeroU32::new(1).unwrap(), NonZeroU32::new(2).unwrap());
        assert_eq!(limiter.check("a").await.remaining, 1);
        assert!(limiter.check("a").await.allowed);
        let denied = limiter.check("a").await;
        assert!(!denied.allowed && denied.retry_after > Duration::ZERO && denied.retry_after <= Duration::from_secs(1));
        assert!(limiter.check("b").await.allowed, "buckets are per client");
    }
}

//! Per-client rate limiting: a token bucket (GCRA) per client key.
//!
//! - [`RateLimiter`]: the decision the API middleware asks for, and all it knows of this crate.
//! - [`LocalLimiter`] (`local`): buckets in this process (governor), for a single replica.
//! - [`RedisRateLimiter`] (`redis`): buckets in Redis, shared by every replica.
//! - [`RedisOrLocal`] (`fallback`): Redis buckets behind the `redis` breaker, this replica's
//!   own while Redis cannot answer.
//!
//! [`limiter`] picks one from the limits and whether Redis is configured.
//!
//! - [`FailureThrottle`] (`failures`): failed authentication attempts per address, refused
//!   past a limit until they cool down.

mod failures;
mod fallback;
mod local;
mod redis;

pub use failures::{FailureThrottle, TRACKED_ADDRESSES};
pub use fallback::RedisOrLocal;
pub use local::LocalLimiter;
pub use redis::RedisRateLimiter;

use async_trait::async_trait;
use pfs_resilience::CircuitBreaker;
use std::num::NonZeroU32;
use std::sync::Arc;
use std::time::Duration;

/// The outcome for one request.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Decision {
    pub allowed: bool,
    /// Requests the client may still send at once.
    pub remaining: u32,
    /// When denied: how long until one more request would be allowed.
    pub retry_after: Duration,
}

/// Decides whether the client identified by `key` may send one more request.
#[async_trait]
pub trait RateLimiter: Send + Sync + 'static {
    async fn check(&self, key: &str) -> Decision;
}

/// Where buckets shared by the replicas live.
pub struct SharedBuckets {
    pub client: ::redis::Client,
    /// The `redis` breaker the other Redis users share.
    pub breaker: CircuitBreaker,
    /// Prefix of the bucket keys.
    pub prefix: String,
}

/// `per_second` requests a second per client with bursts of `burst` (both at least 1): in
/// Redis (falling back to this process) with `shared`, in this process otherwise, where at
/// most `max_clients` buckets are kept.
pub fn limiter(per_second: u32, burst: u32, max_clients: u64, shared: Option<SharedBuckets>) -> Arc<dyn RateLimiter> {
    let nonzero = |n: u32| NonZeroU32::new(n).unwrap_or(NonZeroU32::MIN);
    let local = LocalLimiter::new(nonzero(per_second), nonzero(burst), max_clients);
    match shared {
        None => Arc::new(local),
        Some(SharedBuckets { client, breaker, prefix }) => {
            Arc::new(RedisOrLocal::new(RedisRateLimiter::new(client, per_second, burst, prefix), local, breaker))
        }
    }
}

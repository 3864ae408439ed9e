//! Shared state across replicas, in Redis.
//!
//! # Layout
//! - [`RedisBus`] (`bus`): the cache invalidation broadcast over pub/sub.
//! - `message`: the wire format of invalidation messages.
//! - [`RedisRateLimiter`] (`rate_limit`): rate-limit buckets shared by all replicas.
//!
//! Redis is optional and never on a request's critical path: when it is down the service keeps
//! answering from the database (the cache is bypassed, see `pfs-cache`), logs it, and reports
//! it in `/health/detailed`.

mod bus;
mod message;
mod rate_limit;
#[cfg(feature = "testing")]
pub mod testing;

pub use bus::{RedisBus, RedisBusSettings, announce};
pub use rate_limit::{RedisRateLimiter, SharedDecision};

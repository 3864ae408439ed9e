//! Shared state across replicas, in Redis.
//!
//! # Layout
//! - [`RedisBus`] (`bus`): the cache invalidation broadcast over pub/sub.
//! - `message`: the wire format of invalidation messages.
//! - [`AnnounceOnClose`] (`one_shot`): the bus of a one-shot command, announcing its writes as
//!   it exits.
//!
//! Redis is optional and never on a request's critical path: when it is down the service keeps
//! answering from the database (the cache is bypassed, see `pfs-cache`), logs it, and reports
//! it in `/health/detailed`.

mod bus;
mod message;
mod one_shot;
#[cfg(feature = "testing")]
pub mod testing;

pub use bus::{RedisBus, RedisBusSettings, announce};
pub use one_shot::AnnounceOnClose;

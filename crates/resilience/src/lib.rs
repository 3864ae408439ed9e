//! Failure isolation for outbound dependencies.
//!
//! A [`CircuitBreaker`] stops calling a dependency that keeps failing, so requests fail fast
//! (a 503 with `Retry-After`) instead of each waiting for its own timeout, and the dependency
//! gets room to recover. After `open_for`, one probe call is let through: its success closes
//! the breaker, its failure opens it again.
//!
//! Written here rather than taken from a crate: the state machine is small, the hot path is a
//! single atomic load, and the tower-native crates either wrap services (our callers are trait
//! objects and background loops, not tower services) or change their API every month.

mod breaker;

pub use breaker::{BreakerSettings, BreakerState, CircuitBreaker, Ticket};

//! The error a refused call fails with.

use std::time::Duration;

/// A call was not made because the dependency's breaker is open. Carries how long until the
/// breaker lets a probe through, for `Retry-After`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, thiserror::Error)]
#[error("{dependency} unavailable: circuit breaker open, retry in {retry_after:?}")]
pub struct BreakerOpen {
    pub dependency: &'static str,
    pub retry_after: Duration,
}

impl crate::CircuitBreaker {
    /// The error for a call this breaker just refused.
    pub fn refusal(&self) -> BreakerOpen {
        BreakerOpen { dependency: self.dependency(), retry_after: self.retry_after().unwrap_or_default() }
    }
}

//! `[idempotency]`: the `Idempotency-Key` header on creating POSTs.

use serde::{Deserialize, Serialize};
use std::time::Duration;

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct IdempotencyConfig {
    /// Off: the header is ignored and every POST writes.
    pub enabled: bool,
    /// How long a key (and the response it replays) is remembered.
    #[serde(with = "humantime_serde")]
    pub ttl: Duration,
    /// Longest key accepted, in bytes; longer ones are refused with 400.
    pub max_key_length: usize,
    /// How long an attempt holds its key before another attempt may take it over (and check
    /// whether the first one's write happened). Must exceed `server.request_timeout`, or a
    /// slow attempt could be taken over while it still runs.
    #[serde(with = "humantime_serde")]
    pub lease: Duration,
    /// Largest response body kept for replay. A larger one is answered in full the first time;
    /// a replay then gets 409 saying the request succeeded (and with which status) instead.
    pub max_response_bytes: usize,
}

impl Default for IdempotencyConfig {
    fn default() -> Self {
        Self {
            enabled: true,
            ttl: Duration::from_secs(24 * 3600),
            max_key_length: 255,
            lease: Duration::from_secs(60),
            max_response_bytes: 64 * 1024,
        }
    }
}

impl IdempotencyConfig {
    /// Problems to report, given the request timeout the lease must outlast.
    pub(crate) fn problems(&self, request_timeout: Duration) -> Vec<String> {
        let mut problems = Vec::new();
        if self.ttl < Duration::from_secs(1) {
            problems.push("idempotency.ttl: must be at least 1s".into());
        }
        if !(1..=4096).contains(&self.max_key_length) {
            problems.push("idempotency.max_key_length: must be between 1 and 4096".into());
        }
        if self.lease <= request_timeout {
            problems.push("idempotency.lease: must be longer than server.request_timeout".into());
        }
        if !(256..=16 * 1024 * 1024).contains(&self.max_response_bytes) {
            problems.push("idempotency.max_response_bytes: must be between 256 and 16777216".into());
        }
        if self.lease >= self.ttl {
            problems.push("idempotency.lease: must be shorter than idempotency.ttl".into());
        }
        problems
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn defaults_are_valid_with_the_default_timeout() {
        assert!(IdempotencyConfig::default().problems(Duration::from_secs(30)).is_empty());
    }

    #[test]
    fn a_lease_not_outlasting_the_request_timeout_is_refused() {
        let config = IdempotencyConfig { lease: Duration::from_secs(30), ..Default::default() };
        assert_eq!(config.problems(Duration::from_secs(30)).len(), 1);
    }

    #[test]
    fn zero_key_length_and_tiny_ttl_are_refused() {
        let config = IdempotencyConfig { max_key_length: 0, ttl: Duration::ZERO, ..Default::default() };
        assert_eq!(config.problems(Duration::from_millis(10)).len(), 3);
    }
}

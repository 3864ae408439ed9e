//! `[reliability]`: how the service protects itself from overload, slow clients and failing
//! dependencies.

use serde::{Deserialize, Serialize};
use std::time::Duration;

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct ReliabilityConfig {
    /// Requests handled at once (health probes excepted); 0 disables the limit.
    pub max_concurrent_requests: usize,
    /// How long a request may wait for a slot before it is shed with 503.
    #[serde(with = "humantime_serde")]
    pub queue_timeout: Duration,
    /// A connection must send a request's complete headers within this long.
    #[serde(with = "humantime_serde")]
    pub header_read_timeout: Duration,
    /// The whole request body must arrive within this long, else 408.
    #[serde(with = "humantime_serde")]
    pub body_read_timeout: Duration,
    /// Extra attempts of a read (never a write) that met a transient storage error.
    pub storage_retries: u32,
    /// Backoff before the first retry; doubles per retry up to the maximum, plus jitter.
    #[serde(with = "humantime_serde")]
    pub storage_retry_min_delay: Duration,
    #[serde(with = "humantime_serde")]
    pub storage_retry_max_delay: Duration,
    /// Consecutive dependency failures that open its circuit breaker.
    pub breaker_failure_threshold: u32,
    /// How long an open breaker fails calls fast before it lets one probe through.
    #[serde(with = "humantime_serde")]
    pub breaker_open_for: Duration,
    /// While `serve` waits for a dependency that was down at start (the database, Redis), the
    /// first retry comes after the min delay, doubling up to the max, each with jitter: a
    /// restarting database is found within the max delay, without a fleet of replicas
    /// reconnecting in step.
    #[serde(with = "humantime_serde")]
    pub connect_retry_min_delay: Duration,
    #[serde(with = "humantime_serde")]
    pub connect_retry_max_delay: Duration,
}

impl Default for ReliabilityConfig {
    fn default() -> Self {
        Self {
            max_concurrent_requests: 128,
            queue_timeout: Duration::from_millis(100),
            header_read_timeout: Duration::from_secs(10),
            body_read_timeout: Duration::from_secs(10),
            storage_retries: 2,
            storage_retry_min_delay: Duration::from_millis(20),
            storage_retry_max_delay: Duration::from_millis(200),
            breaker_failure_threshold: 5,
            breaker_open_for: Duration::from_secs(2),
            connect_retry_min_delay: Duration::from_millis(500),
            connect_retry_max_delay: Duration::from_secs(15),
        }
    }
}

impl ReliabilityConfig {
    pub(crate) fn problems(&self) -> Vec<String> {
        let mut problems = Vec::new();
        for (key, value) in
            [("header_read_timeout", self.header_read_timeout), ("body_read_timeout", self.body_read_timeout)]
        {
            if value < Duration::from_millis(100) {
                problems.push(format!("reliability.{key}: must be at least 100ms"));
            }
        }
        if self.storage_retry_min_delay > self.storage_retry_max_delay {
            problems.push("reliability.storage_retry_min_delay: must not exceed storage_retry_max_delay".into());
        }
        if self.connect_retry_min_delay.is_zero() || self.connect_retry_min_delay > self.connect_retry_max_delay {
            problems.push(
                "reliability.connect_retry_min_delay: must be more than 0s and not exceed connect_retry_max_delay"
                    .into(),
            );
        }
        if self.breaker_failure_threshold == 0 {
            problems.push("reliability.breaker_failure_threshold: must be at least 1".into());
        }
        if self.breaker_open_for.is_zero() {
            problems.push("reliability.breaker_open_for: must be more than 0s".into());
        }
        problems
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::{Config, ConfigSources};

    fn load(env: &[(&str, &str)]) -> Result<Config, crate::config::ConfigError> {
        let env = env.iter().map(|(k, v)| ((*k).to_owned(), (*v).to_owned())).collect();
        Config::load(&ConfigSources { env, ..ConfigSources::default() })
    }

    #[test]
    fn the_documented_defaults_are_the_code_defaults() {
        assert_eq!(load(&[]).unwrap().reliability, ReliabilityConfig::default());
    }

    #[test]
    fn keys_are_read_from_the_environment() {
        let config = load(&[
            ("PORTFOLIO_RELIABILITY__MAX_CONCURRENT_REQUESTS", "0"),
            ("PORTFOLIO_RELIABILITY__BREAKER_OPEN_FOR", "750ms"),
        ])
        .unwrap();
        assert_eq!(config.reliability.max_concurrent_requests, 0);
        assert_eq!(config.reliability.breaker_open_for, Duration::from_millis(750));
    }

    #[test]
    fn invalid_values_are_reported_by_key() {
        let err = load(&[
            ("PORTFOLIO_RELIABILITY__HEADER_READ_TIMEOUT", "10ms"),
            ("PORTFOLIO_RELIABILITY__BREAKER_FAILURE_THRESHOLD", "0"),
            ("PORTFOLIO_RELIABILITY__STORAGE_RETRY_MIN_DELAY", "1s"),
            ("PORTFOLIO_RELIABILITY__CONNECT_RETRY_MIN_DELAY", "1m"),
        ])
        .unwrap_err()
        .to_string();
        for key in
            ["header_read_timeout", "breaker_failure_threshold", "storage_retry_min_delay", "connect_retry_min_delay"]
        {
            assert!(err.contains(&format!("reliability.{key}")), "{key} missing from: {err}");
        }
    }
}

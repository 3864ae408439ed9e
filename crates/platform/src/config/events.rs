//! `[events]`: the change stream (`GET /api/v2/portfolios/events`).

use serde::{Deserialize, Serialize};
use std::time::Duration;

#[derive(Clone, Debug, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct EventsConfig {
    /// Off: the route answers 404 and writes publish nothing.
    pub enabled: bool,
    /// Events kept for resuming with `Last-Event-ID`.
    pub history_size: usize,
    /// What the events kept in process may weigh, in bytes; older ones go first.
    pub history_max_bytes: usize,
    /// Events that may wait for one client; a client further behind is dropped.
    pub client_buffer: usize,
    /// Comment lines sent while nothing happens, so proxies keep idle streams open.
    #[serde(with = "humantime_serde")]
    pub keep_alive: Duration,
    /// Concurrent streams per replica; more are answered 503.
    pub max_subscribers: usize,
    /// Concurrent streams per client (principal when authenticated, else address) on this
    /// replica; more are answered 429.
    pub max_subscribers_per_client: usize,
}

impl Default for EventsConfig {
    fn default() -> Self {
        Self {
            enabled: true,
            history_size: 10_000,
            history_max_bytes: 8 << 20,
            client_buffer: 1_024,
            keep_alive: Duration::from_secs(15),
            max_subscribers: 1_000,
            max_subscribers_per_client: 8,
        }
    }
}

impl EventsConfig {
    /// Every problem, each naming its key.
    pub fn problems(&self) -> Vec<String> {
        let mut problems = Vec::new();
        let limits = [
            ("history_size", self.history_size, 1_000_000),
            ("client_buffer", self.client_buffer, 1_000_000),
            ("max_subscribers", self.max_subscribers, 1_000_000),
            ("max_subscribers_per_client", self.max_subscribers_per_client, 1_000_000),
        ];
        for (key, value, most) in limits {
            if !(1..=most).contains(&value) {
                problems.push(format!("events.{key}: must be between 1 and {most}"));
            }
        }
        if !(64 << 10..=1 << 30).contains(&self.history_max_bytes) {
            problems.push("events.history_max_bytes: must be between 65536 and 1073741824".into());
        }
        if self.keep_alive < Duration::from_secs(1) {
            problems.push("events.keep_alive: must be at least 1s".into());
        }
        problems
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_defaults_are_valid_and_zero_sizes_are_not() {
        assert!(EventsConfig::default().problems().is_empty());
        let zero = EventsConfig { history_size: 0, client_buffer: 0, keep_alive: Duration::ZERO, ..Default::default() };
        let problems = zero.problems();
        assert_eq!(problems.len(), 3, "{problems:?}");
        assert!(problems.iter().any(|p| p.starts_with("events.history_size")));
        assert!(problems.iter().any(|p| p.starts_with("events.keep_alive")));
    }
}

//! `[jobs]`: the background job queue, its workers and the import endpoint's limits.

use serde::{Deserialize, Serialize};
use std::time::Duration;

#[derive(Clone, Debug, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct JobsConfig {
    /// Run workers inside `serve`. Off on API-only replicas when `portfolio-service worker`
    /// processes do the work.
    pub workers_enabled: bool,
    /// Jobs one process runs at once.
    pub concurrency: usize,
    /// How often an idle process polls the queue, once for all its workers.
    #[serde(with = "humantime_serde")]
    pub poll_interval: Duration,
    /// How long a claimed job stays with its worker without a heartbeat (sent every third of
    /// it); a crashed worker's job runs again after this long.
    #[serde(with = "humantime_serde")]
    pub lease: Duration,
    /// Attempts before a failing job is dead.
    pub max_attempts: u32,
    /// Backoff before attempt n+1: between half and all of min(backoff_max, backoff_base * 2^(n-1)).
    #[serde(with = "humantime_serde")]
    pub backoff_base: Duration,
    #[serde(with = "humantime_serde")]
    pub backoff_max: Duration,
    /// Most portfolios one import may carry.
    pub import_max_portfolios: usize,
    /// Portfolios per transaction when an import loads.
    pub import_batch_size: usize,
    /// Largest import request body (JSON list or export file), counted after any
    /// `Content-Encoding` is undone, so a decompression bomb stops at this many bytes.
    pub max_upload_bytes: usize,
    /// Jobs queued or running at once (all replicas); an import past it is refused with 503
    /// and `Retry-After`, so the queue (and the disk its inputs take) stays bounded.
    pub max_pending: u64,
    /// Finished jobs (succeeded, failed, dead) are deleted this long after they finished.
    #[serde(with = "humantime_serde")]
    pub retention: Duration,
    /// A dead job's input is dropped this long after it died (it can be requeued until then).
    #[serde(with = "humantime_serde")]
    pub dead_payload_retention: Duration,
}

impl Default for JobsConfig {
    fn default() -> Self {
        Self {
            workers_enabled: true,
            concurrency: 2,
            poll_interval: Duration::from_secs(1),
            lease: Duration::from_secs(60),
            max_attempts: 5,
            backoff_base: Duration::from_secs(2),
            backoff_max: Duration::from_secs(300),
            import_max_portfolios: 100_000,
            import_batch_size: 1000,
            max_upload_bytes: 32 * 1024 * 1024,
            max_pending: 16,
            retention: Duration::from_secs(7 * 24 * 3600),
            dead_payload_retention: Duration::from_secs(24 * 3600),
        }
    }
}

impl JobsConfig {
    /// Every problem, each naming its key.
    pub fn problems(&self) -> Vec<String> {
        let checks = [
            (self.concurrency >= 1, "jobs.concurrency: must be at least 1"),
            (self.poll_interval >= Duration::from_millis(10), "jobs.poll_interval: must be at least 10ms"),
            (self.lease >= Duration::from_millis(300), "jobs.lease: must be at least 300ms"),
            (self.max_attempts >= 1, "jobs.max_attempts: must be at least 1"),
            (self.backoff_base <= self.backoff_max, "jobs.backoff_base: must not exceed jobs.backoff_max"),
            (self.import_max_portfolios >= 1, "jobs.import_max_portfolios: must be at least 1"),
            (self.import_batch_size >= 1, "jobs.import_batch_size: must be at least 1"),
            (self.max_upload_bytes >= 1024, "jobs.max_upload_bytes: must be at least 1024"),
            (self.max_pending >= 1, "jobs.max_pending: must be at least 1"),
            (
                self.dead_payload_retention <= self.retention,
                "jobs.dead_payload_retention: must not exceed jobs.retention",
            ),
        ];
        checks.iter().filter(|(ok, _)| !ok).map(|(_, message)| (*message).to_owned()).collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_defaults_are_valid_and_bad_values_are_named() {
        assert!(JobsConfig::default().problems().is_empty());
        let bad = JobsConfig {
            concurrency: 0,
            backoff_base: Duration::from_secs(10),
            backoff_max: Duration::from_secs(1),
            ..JobsConfig::default()
        };
        assert_eq!(
            bad.problems(),
            ["jobs.concurrency: must be at least 1", "jobs.backoff_base: must not exceed jobs.backoff_max"]
        );
    }
}

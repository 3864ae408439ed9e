//! How transient failures are retried: a few attempts, exponential backoff, jitter.

use backon::ExponentialBuilder;
use std::time::Duration;

/// Retries of one call. Which errors are worth retrying is the caller's classification
/// (`pfs_storage::StoreError::is_transient` for storage), and only calls that are safe to
/// repeat may be retried at all.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct RetryPolicy {
    /// Attempts after the first; 0 disables retries.
    pub retries: u32,
    /// The first backoff; each next one doubles, up to `max_delay`.
    pub min_delay: Duration,
    pub max_delay: Duration,
}

impl RetryPolicy {
    /// The backoff schedule for `backon`'s `.retry(..)`. Jitter adds up to the current delay
    /// again, so callers that failed together (a database restart) do not retry in lockstep.
    pub fn backoff(&self) -> ExponentialBuilder {
        ExponentialBuilder::default()
            .with_min_delay(self.min_delay)
            .with_max_delay(self.max_delay)
            .with_factor(2.0)
            .with_max_times(self.retries as usize)
            .with_jitter()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use backon::BackoffBuilder;

    #[test]
    fn delays_grow_stay_within_twice_the_cap_and_stop_after_the_retries() {
        let policy =
            RetryPolicy { retries: 4, min_delay: Duration::from_millis(10), max_delay: Duration::from_millis(40) };
        let delays: Vec<Duration> = policy.backoff().build().collect();
        assert_eq!(delays.len(), 4);
        for (delay, base) in delays.iter().zip([10u64, 20, 40, 40]) {
            let base = Duration::from_millis(base);
            assert!(*delay >= base && *delay <= base * 2, "{delay:?} not within [{base:?}, 2x]");
        }
    }

    #[test]
    fn zero_retries_means_a_single_attempt() {
        let policy =
            RetryPolicy { retries: 0, min_delay: Duration::from_millis(1), max_delay: Duration::from_millis(1) };
        assert_eq!(policy.backoff().build().count(), 0);
    }
}

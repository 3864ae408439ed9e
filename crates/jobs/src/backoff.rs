//! How long a failed job waits before its next attempt.

use rand::Rng;
use std::time::Duration;

/// Exponential backoff with "equal jitter": attempt `n` waits between half and all of
/// `min(max, base * 2^(n-1))`. The random half spreads out jobs that failed together (say,
/// while the database restarted) so they do not all come back at the same moment; the fixed
/// half keeps a floor under the wait.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Backoff {
    pub base: Duration,
    pub max: Duration,
}

impl Backoff {
    /// The ceiling for the wait after failed attempt `attempt` (from 1), before jitter.
    pub fn ceiling(&self, attempt: u32) -> Duration {
        let doublings = attempt.saturating_sub(1).min(32);
        self.base.saturating_mul(1_u32 << doublings.min(31)).min(self.max)
    }

    /// The wait after failed attempt `attempt`, jittered.
    pub fn delay(&self, attempt: u32, rng: &mut impl Rng) -> Duration {
        let ceiling = self.ceiling(attempt);
        let half = ceiling / 2;
        half + rng.random_range(Duration::ZERO..=ceiling - half)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use rand::SeedableRng;
    use rand::rngs::StdRng;

    const BACKOFF: Backoff = Backoff { base: Duration::from_secs(1), max: Duration::from_secs(60) };

    #[test]
    fn the_ceiling_doubles_per_attempt_up_to_the_maximum() {
        let ceilings: Vec<u64> = (1..=8).map(|n| BACKOFF.ceiling(n).as_secs()).collect();
        assert_eq!(ceilings, [1, 2, 4, 8, 16, 32, 60, 60]);
        assert_eq!(BACKOFF.ceiling(u32::MAX), Duration::from_secs(60));
    }

    #[test]
    fn the_delay_lies_between_half_and_all_of_the_ceiling_and_varies() {
        let mut rng = StdRng::seed_from_u64(7);
        let delays: Vec<Duration> = (0..200).map(|_| BACKOFF.delay(4, &mut rng)).collect();
        assert!(delays.iter().all(|d| (Duration::from_secs(4)..=Duration::from_secs(8)).contains(d)));
        let distinct: std::collections::HashSet<_> = delays.iter().collect();
        assert!(distinct.len() > 100, "jitter spreads the delays: {} distinct", distinct.len());
    }
}

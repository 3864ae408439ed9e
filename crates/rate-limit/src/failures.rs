//! [`FailureThrottle`]: failed authentication attempts counted per client address; past
//! `max_failures` within `window` (counted from the first failure), the address is refused
//! until the window ends. It runs before a credential is verified, so a client guessing keys
//! gets a few guesses a window, however fast it sends them.
//!
//! Per replica, in memory, for at most [`TRACKED_ADDRESSES`] addresses (LRU), each entry a
//! fixed size: the memory is bounded whatever the attacker sends. An attacker with more
//! addresses than that can push its own entries out, but then it already has that many
//! addresses to guess from.

use moka::policy::EvictionPolicy;
use std::net::IpAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicU32, Ordering};
use std::time::{Duration, Instant};

/// Addresses with recent failures tracked at once.
pub const TRACKED_ADDRESSES: u64 = 16_384;

pub struct FailureThrottle {
    windows: moka::sync::Cache<IpAddr, Arc<Window>>,
    max_failures: u32,
    window: Duration,
}

struct Window {
    started: Instant,
    failures: AtomicU32,
}

impl FailureThrottle {
    /// `max_failures` of 0 never throttles.
    pub fn new(max_failures: u32, window: Duration) -> Self {
        Self::with_capacity(max_failures, window, TRACKED_ADDRESSES)
    }

    fn with_capacity(max_failures: u32, window: Duration, capacity: u64) -> Self {
        let windows = moka::sync::Cache::builder()
            .max_capacity(capacity)
            .eviction_policy(EvictionPolicy::lru())
            .time_to_live(window)
            .build();
        Self { windows, max_failures, window }
    }

    /// How long `address` must still wait, if it used up its failures.
    pub fn blocked(&self, address: IpAddr) -> Option<Duration> {
        if self.max_failures == 0 {
            return None;
        }
        let window = self.windows.get(&address)?;
        (window.failures.load(Ordering::Relaxed) >= self.max_failures)
            .then(|| self.window.saturating_sub(window.started.elapsed()).max(Duration::from_secs(1)))
    }

    /// Counts one failed attempt from `address`.
    pub fn failed(&self, address: IpAddr) {
        if self.max_failures == 0 {
            return;
        }
        let window = self
            .windows
            .get_with(address, || Arc::new(Window { started: Instant::now(), failures: AtomicU32::new(0) }));
        window.failures.fetch_add(1, Ordering::Relaxed);
    }

    /// Addresses tracked now (after pending evictions are applied).
    pub fn tracked(&self) -> u64 {
        self.windows.run_pending_tasks();
        self.windows.entry_count()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_address_is_refused_after_its_failures_until_the_window_ends() {
        let throttle = FailureThrottle::new(3, Duration::from_millis(300));
        let (guesser, other) = (IpAddr::from([192, 0, 2, 1]), IpAddr::from([192, 0, 2, 2]));
        for _ in 0..2 {
            throttle.failed(guesser);
        }
        assert_eq!(throttle.blocked(guesser), None, "two failures of three allowed");
        throttle.failed(guesser);
        let wait = throttle.blocked(guesser).expect("the third failure blocks");
        assert!(wait >= Duration::from_secs(1), "Retry-After is whole seconds");
        assert_eq!(throttle.blocked(other), None, "per address");
        std::thread::sleep(Duration::from_millis(400));
        assert_eq!(throttle.blocked(guesser), None, "cooled down after the window");
    }

    #[test]
    fn zero_failures_means_off_and_the_tracked_addresses_are_bounded() {
        let off = FailureThrottle::new(0, Duration::from_secs(60));
        let address = IpAddr::from([192, 0, 2, 1]);
        (0..10).for_each(|_| off.failed(address));
        assert_eq!(off.blocked(address), None);
        let throttle = FailureThrottle::with_capacity(1, Duration::from_secs(60), 100);
        for n in 0..1_000u32 {
            throttle.failed(IpAddr::from(n.to_be_bytes()));
        }
        assert!(throttle.tracked() <= 100, "{}", throttle.tracked());
    }
}

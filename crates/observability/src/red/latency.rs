//! A request-duration histogram with fixed buckets, recorded into per-thread shards.
//!
//! Every request of a route lands on the same few series, from every worker thread at once. A
//! shared histogram makes all cores write one cache line per request (the `metrics` exporter's
//! sample buffer, the OpenTelemetry SDK's mutex): the line moves between cores on every
//! request. Here each thread writes its own shard, a bucket count and a bucket sum (two
//! uncontended atomic adds); readers add the shards up. A bucket's sum is kept, not only the
//! total, so that the OTLP export can hand the SDK each bucket's mean (see `export.rs`).

use std::sync::LazyLock;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::time::Duration;

/// Upper bounds of the buckets, in seconds: fine below 10 ms, where this service answers.
pub const BOUNDS: [f64; 15] =
    [0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0];
/// The bounds as nanoseconds, for comparing without floating point (rounded: a product such as
/// `0.005 * 1e9` may fall just short of the integer).
const BOUNDS_NANOS: [u64; 15] = {
    let mut nanos = [0; 15];
    let mut i = 0;
    while i < BOUNDS.len() {
        nanos[i] = (BOUNDS[i] * 1e9 + 0.5) as u64;
        i += 1;
    }
    nanos
};
/// The buckets: one per bound, and the last for what is above them all (`+Inf`).
pub const BUCKETS: usize = BOUNDS.len() + 1;

/// One shard per core (threads beyond that share): the tokio workers are as many as cores.
static SHARDS: LazyLock<usize> =
    LazyLock::new(|| std::thread::available_parallelism().map_or(4, |n| n.get()).clamp(1, 64));

/// Hands each thread the next shard in turn.
static NEXT_SHARD: AtomicUsize = AtomicUsize::new(0);

thread_local! {
    static SHARD: usize = NEXT_SHARD.fetch_add(1, Ordering::Relaxed) % *SHARDS;
}

/// This thread's shard.
pub(super) fn shard() -> usize {
    SHARD.with(|shard| *shard)
}

/// The number of shards, for other per-thread counters.
pub(super) fn shards() -> usize {
    *SHARDS
}

pub(super) struct Latency {
    shards: Box<[Shard]>,
}

/// Aligned so that no two threads' shards share a cache line.
#[repr(align(128))]
#[derive(Default)]
struct Shard {
    counts: [AtomicU64; BUCKETS],
    sums: [AtomicU64; BUCKETS],
}

/// The histogram added up across shards, in nanoseconds.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub(super) struct Totals {
    pub counts: [u64; BUCKETS],
    pub sums: [u64; BUCKETS],
}

impl Latency {
    pub(super) fn new() -> Self {
        Self { shards: (0..shards()).map(|_| Shard::default()).collect() }
    }

    pub(super) fn record(&self, elapsed: Duration) {
        let nanos = u64::try_from(elapsed.as_nanos()).unwrap_or(u64::MAX);
        let bucket = BOUNDS_NANOS.partition_point(|&bound| bound < nanos);
        // Shards are as many as `shards()` when this was made, and `shard()` is below that.
        let shard = &self.shards[shard() % self.shards.len()];
        shard.counts[bucket].fetch_add(1, Ordering::Relaxed);
        shard.sums[bucket].fetch_add(nanos, Ordering::Relaxed);
    }

    /// The counts and sums so far. Read while requests are recorded, a bucket's sum may lag
    /// its count by a request or two; the next read catches up.
    pub(super) fn totals(&self) -> Totals {
        let mut totals = Totals::default();
        for shard in &self.shards {
            for bucket in 0..BUCKETS {
                totals.counts[bucket] += shard.counts[bucket].load(Ordering::Relaxed);
                totals.sums[bucket] = totals.sums[bucket].wrapping_add(shard.sums[bucket].load(Ordering::Relaxed));
            }
        }
        totals
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_duration_lands_in_the_first_bucket_whose_bound_it_does_not_exceed() {
        let latency = Latency::new();
        for micros in [0, 500, 501, 1_000, 29_000_000, 31_000_000] {
            latency.record(Duration::from_micros(micros));
        }
        let totals = latency.totals();
        let mut expected = [0; BUCKETS];
        expected[0] = 2; // 0 and exactly 0.5 ms (`le` is inclusive)
        expected[1] = 2; // just above 0.5 ms, and 1 ms
        expected[14] = 1; // 29 s, under the last bound (30 s)
        expected[15] = 1; // above every bound: +Inf
        assert_eq!(totals.counts, expected);
        assert_eq!(totals.sums[1], 1_501_000);
        assert_eq!(totals.sums.iter().sum::<u64>(), 60_002_001_000);
    }

    #[test]
    fn a_duration_of_exactly_a_bound_is_counted_in_that_bounds_bucket() {
        let latency = Latency::new();
        for bound in BOUNDS {
            latency.record(Duration::from_secs_f64(bound));
        }
        assert_eq!(latency.totals().counts, std::array::from_fn(|bucket| u64::from(bucket < BOUNDS.len())));
    }

    #[test]
    fn threads_recording_at_once_lose_nothing() {
        let latency = Latency::new();
        std::thread::scope(|scope| {
            for _ in 0..8 {
                scope.spawn(|| {
                    for _ in 0..10_000 {
                        latency.record(Duration::from_millis(2));
                    }
                });
            }
        });
        let totals = latency.totals();
        assert_eq!(totals.counts[2], 80_000);
        assert_eq!(totals.sums[2], 80_000 * 2_000_000);
    }
}

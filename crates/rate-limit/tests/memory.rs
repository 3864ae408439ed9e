//! What the in-process limiter costs, as the kernel counts it: resident memory grown by
//! filling the default `rate_limit.max_clients` buckets with the longest keys the API builds
//! (45 bytes), then by sending as many more new clients again (which must evict, not grow).
//! `config/default.toml` and docs/RELIABILITY.md quote the figure.

use pfs_rate_limit::{LocalLimiter, RateLimiter};
use std::num::NonZeroU32;

const BUCKETS: u64 = 20_000;
/// What the docs state for the default 20,000 buckets, allocator slack included.
const MOST_BYTES: u64 = 12 << 20;

fn rss() -> u64 {
    let status = std::fs::read_to_string("/proc/self/status").unwrap();
    status
        .lines()
        .find_map(|l| l.strip_prefix("VmRSS:")?.trim().strip_suffix("kB")?.trim().parse::<u64>().ok())
        .unwrap()
        * 1024
}

fn key(n: u64) -> String {
    // As long as `ip:` plus the longest IPv6 address.
    format!("ip:ffff:ffff:ffff:ffff:ffff:ffff:{:04x}:{:04x}", n >> 16, n & 0xffff)
}

#[tokio::test]
async fn the_default_number_of_buckets_fits_in_twelve_mib_and_more_clients_evict_rather_than_grow() {
    let limiter = LocalLimiter::new(NonZeroU32::new(100).unwrap(), NonZeroU32::new(200).unwrap(), BUCKETS);
    let before = rss();
    for n in 0..BUCKETS {
        limiter.check(&key(n)).await;
    }
    assert!(limiter.tracked() <= BUCKETS);
    let full = rss();
    let grown = full.saturating_sub(before);
    println!("{:.1} MiB for {BUCKETS} buckets", grown as f64 / f64::from(1 << 20));
    assert!(grown <= MOST_BYTES, "{grown} bytes for {BUCKETS} buckets");
    for n in BUCKETS..2 * BUCKETS {
        limiter.check(&key(n)).await;
    }
    assert!(limiter.tracked() <= BUCKETS, "{} buckets", limiter.tracked());
    let after = rss();
    println!("after {BUCKETS} more clients: {:.1} MiB more", after.saturating_sub(full) as f64 / f64::from(1 << 20));
    assert!(after < full + grown / 2, "new clients past the cap evict rather than grow: {full} -> {after} bytes");
}

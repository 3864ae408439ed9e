//! Waiting for something that happens on its own time.

use std::time::{Duration, Instant};

/// Polls `check` every 20 ms until it holds; panics naming `what` after `limit`. Returns how
/// long it took.
pub async fn eventually(limit: Duration, what: &str, mut check: impl AsyncFnMut() -> bool) -> Duration {
    let start = Instant::now();
    while !check().await {
        assert!(start.elapsed() < limit, "{what}: not within {limit:?}");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    start.elapsed()
}

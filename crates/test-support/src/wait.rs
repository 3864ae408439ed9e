//! Waiting for something that happens on its own time, and a port to give a process.

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

/// A loopback port nothing listens on right now, for a process (or a server the test starts
/// later) to bind. Another process could take it in between; on a test machine none does.
pub fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0").and_then(|l| l.local_addr()).expect("a free loopback port").port()
}

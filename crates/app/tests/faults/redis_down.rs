//! Redis killed and restarted during a load: the service keeps answering from the database
//! (cache bypassed, rate limit on local buckets), the `redis` breaker opens so requests stop
//! waiting on it, readiness stays 200 (Redis is optional), and the bus reconnects by itself.

use crate::{HANG, Load, detailed, eventually, status, summary};
use pfs_redis::testing::RedisProcess;
use pfs_test_support::TestApp;
use std::time::Duration;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_redis_outage_keeps_serving_and_recovers() {
    let mut redis = RedisProcess::start();
    let url = redis.url();
    let app = TestApp::builder()
        .with_config(move |c| {
            c.redis.url = url;
            c.rate_limit.enabled = true;
            c.rate_limit.per_second = 100_000;
            c.rate_limit.burst = 100_000;
            c.reliability.breaker_open_for = Duration::from_secs(1);
        })
        .spawn()
        .await;
    let connected = async || detailed(&app).await["checks"]["redis"]["status"] == "connected";
    eventually(Duration::from_secs(10), "Redis connected", connected).await;

    let load = Load::creates(&app.url(""), 4, true);
    tokio::time::sleep(Duration::from_secs(1)).await;
    redis.kill();
    let opened = eventually(Duration::from_secs(10), "redis breaker open", async || {
        detailed(&app).await["checks"]["circuit_breakers"]["breakers"]["redis"] == "open"
    })
    .await;
    assert_eq!(status(&app, "/health/ready").await, 200, "Redis is optional: still ready");
    assert_eq!(status(&app, "/health/live").await, 200);
    tokio::time::sleep(Duration::from_secs(2)).await;

    tokio::task::block_in_place(|| redis.restart());
    let back = eventually(Duration::from_secs(15), "Redis connected and its breaker closed again", async || {
        let body = detailed(&app).await;
        body["checks"]["redis"]["status"] == "connected"
            && body["checks"]["circuit_breakers"]["breakers"]["redis"] == "closed"
    })
    .await;
    tokio::time::sleep(Duration::from_secs(1)).await;
    let outcomes = load.stop().await;
    eprintln!("redis breaker opened {opened:?} after the kill; reconnected {back:?} after the restart");
    eprintln!("all: {}", summary(&outcomes));
    for outcome in &outcomes {
        assert!(matches!(outcome.status, 200 | 201), "Redis being down must not fail requests: {outcome:?}");
        assert!(outcome.elapsed < HANG / 3, "a request waited on Redis: {outcome:?}");
    }
}

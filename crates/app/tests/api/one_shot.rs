//! A one-shot command (`import`) writes through the server's store chain: running replicas
//! drop what they cached and see its change events.

use crate::helpers::expect_json;
use pfs_domain::{Portfolio, PortfolioId, Timestamp, Version};
use pfs_test_support::TestApp;
use pfs_test_support::sse::Stream;
use serde_json::Value;
use std::time::{Duration, Instant};

async fn total(app: &TestApp) -> Value {
    expect_json(app.get("/api/v2/portfolios").await, 200).await["pagination"]["totalElements"].clone()
}

#[tokio::test]
async fn a_one_shot_write_invalidates_running_replicas_caches_and_is_announced() {
    let redis = pfs_redis::testing::RedisProcess::start();
    let url = redis.url();
    let app = TestApp::builder().with_config(move |c| c.redis.url = url).spawn().await;
    // The cache holds pages only once the bus has heard its own heartbeat.
    let started = Instant::now();
    while expect_json(app.get("/health/detailed").await, 200).await["checks"]["cache"]["status"] != "active" {
        assert!(started.elapsed() < Duration::from_secs(10), "the invalidation bus never connected");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    app.create_portfolio("Before").await;
    assert_eq!(total(&app).await, 1);
    assert_eq!(total(&app).await, 1, "the page is cached now");
    let mut events = Stream::open(&app, None).await;

    let one_shot = pfs_app::OneShot::open(&app.config).await.expect("one-shot chain opens");
    let imported = Portfolio {
        id: PortfolioId::generate(),
        name: "Imported".into(),
        date_created: Timestamp::from_millis(1_000).unwrap(),
        version: Version(1),
    };
    assert_eq!(one_shot.store().insert_missing(std::slice::from_ref(&imported)).await.unwrap(), 1);
    one_shot.close().await.expect("running replicas told");

    let event = events.expect().await;
    assert_eq!(event.event, "created");
    assert_eq!(event.data["portfolio"]["portfolioId"], imported.id.to_string());
    let started = Instant::now();
    while total(&app).await != 2 {
        assert!(started.elapsed() < Duration::from_secs(5), "the cached page outlived the import");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

//! Graceful shutdown: readiness turns 503 while draining, in-flight work completes, then the
//! server stops by itself.

use pfs_test_support::TestApp;
use std::time::Duration;

#[tokio::test]
async fn draining_turns_readiness_503_while_still_serving_then_stops() {
    let app =
        TestApp::builder().with_config(|c| c.server.shutdown_drain_delay = Duration::from_millis(600)).spawn().await;
    assert_eq!(app.get("/health/ready").await.status(), 200);
    app.begin_shutdown();
    tokio::time::sleep(Duration::from_millis(100)).await;
    let ready = app.get("/health/ready").await;
    assert_eq!(ready.status(), 503);
    let body: serde_json::Value = ready.json().await.unwrap();
    assert_eq!(body["status"], "not_ready");
    assert_eq!(app.get("/health/live").await.status(), 200, "still alive while draining");
    assert_eq!(app.create_portfolio("during drain").await["name"], "during drain");
    let stopped = tokio::time::timeout(Duration::from_secs(5), app.stop()).await;
    assert!(matches!(stopped, Ok(Ok(()))), "server stops within the drain delay plus timeout");
}

#[tokio::test]
async fn after_shutdown_the_port_no_longer_accepts_connections() {
    let app = TestApp::spawn().await;
    let address = app.address;
    app.stop().await.unwrap();
    assert!(tokio::net::TcpStream::connect(address).await.is_err());
}

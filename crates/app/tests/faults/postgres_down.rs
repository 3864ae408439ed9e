//! PostgreSQL stopped and restarted during a write load: requests fail fast with 503 and
//! `Retry-After`, readiness is 503 while liveness stays 200, the service recovers by itself,
//! and every acknowledged write is still there.

use crate::pg_process::PgProcess;
use crate::{HANG, Load, eventually, status, summary};
use pfs_test_support::TestApp;
use std::time::{Duration, Instant};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_database_outage_fails_fast_and_recovers_without_losing_a_write() {
    let mut pg = PgProcess::start();
    let url = pg.url();
    let database = url.clone();
    let app = TestApp::builder()
        .with_config(move |c| {
            c.database.url = database;
            c.database.acquire_timeout = Duration::from_secs(2);
            c.reliability.breaker_open_for = Duration::from_secs(1);
        })
        .spawn()
        .await;
    assert_eq!(status(&app, "/health/ready").await, 200);

    let load = Load::creates(&app.url(""), 6, false);
    tokio::time::sleep(Duration::from_secs(1)).await;

    let stopped = Instant::now();
    tokio::task::block_in_place(|| pg.stop());
    let not_ready = eventually(Duration::from_secs(10), "readiness 503 while the database is down", async || {
        status(&app, "/health/ready").await == 503
    })
    .await;
    assert_eq!(status(&app, "/health/live").await, 200, "liveness stays 200 while the database is down");
    let body = crate::detailed(&app).await;
    assert_eq!(body["checks"]["circuit_breakers"]["breakers"]["database"], "open", "{body}");
    tokio::time::sleep(Duration::from_secs(2)).await;
    assert_eq!(status(&app, "/health/live").await, 200);

    let restarted = Instant::now();
    tokio::task::block_in_place(|| pg.restart());
    let up = Instant::now();
    let recovered = eventually(Duration::from_secs(15), "writes succeed again after the restart", async || {
        app.client
            .post(app.url("/api/v1/portfolios"))
            .json(&serde_json::json!({"name": "probe"}))
            .send()
            .await
            .is_ok_and(|r| r.status() == 201)
    })
    .await;
    eventually(Duration::from_secs(10), "readiness 200 again", async || status(&app, "/health/ready").await == 200)
        .await;
    tokio::time::sleep(Duration::from_secs(1)).await;
    let outcomes = load.stop().await;

    let outage: Vec<_> = outcomes.iter().filter(|o| o.started >= stopped && o.started < up).cloned().collect();
    let after: Vec<_> = outcomes.iter().filter(|o| o.started >= up + recovered).cloned().collect();
    eprintln!("database down for {:?}; readiness 503 {not_ready:?} after the stop", restarted.duration_since(stopped));
    eprintln!("all: {}", summary(&outcomes));
    eprintln!("during the outage: {}", summary(&outage));
    eprintln!("after recovery: {}", summary(&after));
    eprintln!("restart took {:?}; first write succeeded {recovered:?} after it", up.duration_since(restarted));

    for outcome in &outcomes {
        assert!(matches!(outcome.status, 201 | 503), "only 201 or 503 expected: {outcome:?}");
        assert!(outcome.status != 503 || outcome.retry_after, "a 503 without Retry-After: {outcome:?}");
        assert!(outcome.elapsed < HANG / 2, "a request hung toward the timeout: {outcome:?}");
    }
    let fast_failures = outage.iter().filter(|o| o.status == 503 && o.elapsed < Duration::from_millis(500)).count();
    assert!(fast_failures > 0, "no request failed fast during the outage: {}", summary(&outage));
    assert!(after.iter().any(|o| o.status == 201), "no write succeeded after recovery");
    assert!(after.iter().all(|o| o.status == 201), "failures after recovery: {}", summary(&after));
    eprintln!("fast 503s (< 500 ms) during the outage: {fast_failures} of {}", outage.len());

    // Every acknowledged write, read back through a second service without a cache.
    let acknowledged: Vec<String> = outcomes.iter().filter_map(|o| o.id.clone()).collect();
    let reader = TestApp::builder()
        .with_config(move |c| {
            c.database.url = url;
            c.cache.enabled = false;
        })
        .spawn()
        .await;
    let mut lost = 0;
    for id in &acknowledged {
        if status(&reader, &format!("/api/v1/portfolio/{id}")).await != 200 {
            lost += 1;
        }
    }
    eprintln!("acknowledged writes: {}, lost: {lost}", acknowledged.len());
    assert_eq!(lost, 0, "acknowledged writes lost");
}

//! Rate limiting (opt-in): per-client buckets, 429 with Retry-After, shared across replicas
//! through Redis, and still enforced (per replica) when Redis is gone.

use pfs_redis::testing::RedisProcess;
use pfs_test_support::TestApp;

const LIMITED: &[(&str, &str)] = &[
    ("PORTFOLIO_RATE_LIMIT__ENABLED", "true"),
    ("PORTFOLIO_RATE_LIMIT__PER_SECOND", "1"),
    ("PORTFOLIO_RATE_LIMIT__BURST", "3"),
    ("PORTFOLIO_RATE_LIMIT__BY", "api_key_or_ip"),
];

/// Keys are made unique per test run: when the suite runs against a shared Redis, buckets
/// must not carry over from an earlier run.
async fn get_as(app: &TestApp, key: Option<&str>) -> reqwest::Response {
    static RUN: std::sync::OnceLock<u64> = std::sync::OnceLock::new();
    let run = RUN
        .get_or_init(|| std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap().as_nanos() as u64);
    let mut request = app.client.get(app.url("/api/v2/portfolios"));
    if let Some(key) = key {
        request = request.header("x-api-key", format!("{key}-{run}"));
    }
    request.send().await.unwrap()
}

#[tokio::test]
async fn a_client_past_its_burst_gets_429_with_retry_after_while_others_and_probes_pass() {
    let app = TestApp::spawn_with_env(LIMITED).await;
    for expected_remaining in ["2", "1", "0"] {
        let response = get_as(&app, Some("alice")).await;
        assert_eq!(response.status(), 200);
        assert_eq!(response.headers()["x-ratelimit-limit"], "3");
        assert_eq!(response.headers()["x-ratelimit-remaining"], expected_remaining);
    }
    let rejections_before = crate::helpers::metric_value(&app, "http_server_rate_limited_total").await;
    let refused = get_as(&app, Some("alice")).await;
    assert_eq!(refused.status(), 429);
    let rejections = crate::helpers::metric_value(&app, "http_server_rate_limited_total").await;
    assert!(rejections >= rejections_before + 1.0, "429s are counted for the rate-limit alert");
    let wait: u64 = refused.headers()["retry-after"].to_str().unwrap().parse().unwrap();
    assert!((1..=2).contains(&wait), "{wait}");
    assert!(refused.headers().contains_key("x-request-id"));
    let body: serde_json::Value = refused.json().await.unwrap();
    assert!(body["detail"].as_str().unwrap().starts_with("Rate limit exceeded"));

    assert_eq!(get_as(&app, Some("bob")).await.status(), 200, "another key has its own bucket");
    assert_eq!(get_as(&app, None).await.status(), 200, "keyless clients are counted by address");
    assert_eq!(app.get("/health/ready").await.status(), 200, "probes are never limited");
}

#[tokio::test]
async fn without_the_opt_in_nothing_is_limited() {
    let app = TestApp::spawn().await;
    for _ in 0..20 {
        let response = get_as(&app, Some("alice")).await;
        assert_eq!(response.status(), 200);
        assert!(!response.headers().contains_key("x-ratelimit-limit"));
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn replicas_sharing_redis_share_each_clients_bucket() {
    let redis = RedisProcess::start();
    let url = redis.url();
    let env: Vec<(&str, &str)> = LIMITED.iter().copied().chain([("PORTFOLIO_REDIS_URL", url.as_str())]).collect();
    let (a, b) = (TestApp::spawn_with_env(&env).await, TestApp::spawn_with_env(&env).await);
    let statuses = [
        get_as(&a, Some("carol")).await.status(),
        get_as(&b, Some("carol")).await.status(),
        get_as(&a, Some("carol")).await.status(),
        get_as(&b, Some("carol")).await.status(),
    ];
    assert_eq!(statuses.map(|s| s.as_u16()), [200, 200, 200, 429], "three across both replicas, then refused");
}

#[tokio::test]
async fn with_redis_down_each_replica_still_limits_on_its_own() {
    let mut redis = RedisProcess::start();
    let url = redis.url();
    redis.kill();
    let env: Vec<(&str, &str)> = LIMITED.iter().copied().chain([("PORTFOLIO_REDIS_URL", url.as_str())]).collect();
    let app = TestApp::spawn_with_env(&env).await;
    let statuses: Vec<u16> = futures::future::join_all((0..4).map(|_| get_as(&app, Some("dave"))))
        .await
        .iter()
        .map(|r| r.status().as_u16())
        .collect();
    assert_eq!(statuses.iter().filter(|s| **s == 200).count(), 3, "{statuses:?}");
    assert_eq!(statuses.iter().filter(|s| **s == 429).count(), 1, "{statuses:?}");
}

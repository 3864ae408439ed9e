//! Root banner, health probes, OpenAPI and documentation routes (contract §6, §8.3).

use crate::helpers::*;
use pfs_test_support::{TestApp, json};
use serde_json::Value;

fn assert_probe_common(body: &Value, status: &str, probe_type: &str) {
    assert_eq!(body["status"], status, "{body}");
    assert_eq!(body["probe_type"], probe_type, "{body}");
    assert_eq!(body["service"], "globeco-portfolio-service", "{body}");
    assert_recent(&body["timestamp"]);
    assert!(body["response_time_ms"].as_f64().is_some_and(|ms| ms >= 0.0), "{body}");
}

#[tokio::test]
async fn root_serves_the_service_banner_for_the_development_profile() {
    let app = TestApp::spawn().await;
    let body = expect_json(app.get("/").await, 200).await;
    // The original's keys, each value true of this process: `/metrics` is served (so
    // Prometheus is not removed) and validation is never cached.
    let expected = json!({
        "message": "GlobeCo Portfolio Service",
        "version": "2.0.0",
        "environment": "development",
        "status": "operational",
        "features": {
            "unified_monitoring": true, "prometheus_removed": false, "optimized_performance": true,
            "environment_profiles": true, "circuit_breakers": true, "validation_caching": false
        }
    });
    assert_eq!(body, expected);
    assert_eq!(app.get("/metrics").await.status(), 200, "prometheus_removed: false is true");
}

#[tokio::test]
async fn root_says_prometheus_is_removed_only_when_metrics_is_not_served() {
    let app = TestApp::spawn_with_env(&[("PORTFOLIO_OBSERVABILITY__PROMETHEUS_ENDPOINT", "false")]).await;
    let body = expect_json(app.get("/").await, 200).await;
    assert_eq!(body["features"]["prometheus_removed"], true, "{body}");
    assert_eq!(app.get("/metrics").await.status(), 404);
}

#[tokio::test]
async fn root_reports_the_configured_environment() {
    for env in ["production", "staging"] {
        let app = TestApp::spawn_with_env(&[("PORTFOLIO_ENV", env)]).await;
        let body = expect_json(app.get("/").await, 200).await;
        assert_eq!(body["environment"], env);
        assert_eq!(body["status"], "operational");
    }
}

#[tokio::test]
async fn health_is_plain_text_ok() {
    let app = TestApp::spawn().await;
    let response = app.get("/health").await;
    assert_eq!(response.status(), 200);
    let content_type = response.headers()["content-type"].to_str().unwrap().to_owned();
    assert!(content_type.starts_with("text/plain"), "{content_type}");
    assert_eq!(response.text().await.unwrap(), "OK");
}

#[tokio::test]
async fn liveness_probe_reports_alive() {
    let app = TestApp::spawn().await;
    let body = expect_json(app.get("/health/live").await, 200).await;
    assert_probe_common(&body, "alive", "liveness");
    assert!(body["cached"].is_boolean(), "{body}");
    let keys: Vec<&String> = body.as_object().unwrap().keys().collect();
    assert_eq!(keys, ["status", "timestamp", "service", "probe_type", "response_time_ms", "cached"]);
}

#[tokio::test]
async fn readiness_probe_reports_a_ready_database() {
    let app = TestApp::spawn().await;
    let body = expect_json(app.get("/health/ready").await, 200).await;
    assert_probe_common(&body, "ready", "readiness");
    assert_eq!(body["checks"]["database"]["status"], "ready", "{body}");
    assert!(body["checks"]["database"]["response_time_ms"].is_number(), "{body}");
    assert!(body["cached"].is_boolean(), "{body}");
}

#[tokio::test]
async fn startup_probe_reports_a_connected_database() {
    let app = TestApp::spawn().await;
    let body = expect_json(app.get("/health/startup").await, 200).await;
    assert_probe_common(&body, "started", "startup");
    assert_eq!(body["checks"]["database"]["status"], "connected", "{body}");
}

#[tokio::test]
async fn detailed_health_reports_a_healthy_database_with_its_version() {
    let app = TestApp::spawn().await;
    let body = expect_json(app.get("/health/detailed").await, 200).await;
    assert_probe_common(&body, "healthy", "detailed");
    let database = &body["checks"]["database"];
    assert_eq!(database["status"], "healthy", "{body}");
    assert!(database["response_time_ms"].is_number(), "{body}");
    assert!(database["server_version"].as_str().is_some_and(|v| !v.is_empty()), "{body}");
    assert_eq!(database["connection_configured"], true, "{body}");
}

#[tokio::test]
async fn health_metrics_reports_a_small_uptime_and_cache_and_breaker_sections() {
    let app = TestApp::spawn().await;
    let body = expect_json(app.get("/health/metrics").await, 200).await;
    assert_eq!(body["service"], "globeco-portfolio-service", "{body}");
    assert_recent(&body["timestamp"]);
    let uptime = body["uptime_seconds"].as_f64().expect("uptime is a number");
    assert!((0.0..600.0).contains(&uptime), "uptime {uptime}");
    assert!(body["health_checks"].is_object(), "{body}");
    assert!(body["circuit_breakers"].is_object(), "{body}");
}

/// Unlike the original (404), `/metrics` serves the Prometheus text format, with one latency
/// histogram per route template, not per concrete path.
#[tokio::test]
async fn metrics_endpoint_serves_per_route_histograms_with_templated_routes() {
    let app = TestApp::spawn().await;
    let created = expect_json(app.post_json("/api/v1/portfolios", &json!({"name": "Scraped"})).await, 201).await;
    let id = created["portfolioId"].as_str().expect("id");
    assert_eq!(app.get(&format!("/api/v1/portfolio/{id}")).await.status(), 200);
    assert_eq!(app.get("/api/v1/portfolio/000000000000000000000000").await.status(), 404);
    let bulk = json!([{"name": "Scraped A"}, {"name": "Scraped B"}, {"name": "Scraped C"}]);
    assert_eq!(app.post_json("/api/v2/portfolios", &bulk).await.status(), 201);

    let response = app.get("/metrics").await;
    assert_eq!(response.status(), 200);
    let content_type = response.headers()["content-type"].to_str().unwrap().to_owned();
    assert!(content_type.starts_with("text/plain; version=0.0.4"), "{content_type}");
    let text = response.text().await.unwrap();
    let scrape = openmetrics_parser::prometheus::parse_prometheus(&text).expect("valid exposition format");
    let route = "/api/v1/portfolio/{portfolioId}";
    let durations = &scrape.families["http_server_request_duration_seconds"];
    let mut routes = Vec::new();
    let mut count = std::collections::HashMap::<String, u64>::new();
    for sample in durations.iter_samples() {
        let labels = sample.get_labelset().expect("labels");
        let label = |name: &str| labels.get_label_value(name).unwrap_or_default().to_owned();
        routes.push(label("http_route"));
        if let openmetrics_parser::PrometheusValue::Histogram(histogram) = &sample.value
            && label("http_route") == route
            && label("http_request_method") == "GET"
        {
            *count.entry(label("http_response_status_class")).or_default() += histogram.count.unwrap_or_default();
        }
    }
    // The recorder is process-wide and other tests run alongside: at least ours are counted.
    assert!(count.get("2xx") >= Some(&1) && count.get("4xx") >= Some(&1), "GET {route}: {count:?}");
    assert!(!routes.iter().any(|r| r.contains(id)), "no concrete ids in route labels: {routes:?}");
    let bulk_sizes = scrape.families.get("portfolio_bulk_size").unwrap_or_else(|| panic!("bulk sizes:\n{text}"));
    let sizes = bulk_sizes.iter_samples().find_map(|sample| match &sample.value {
        openmetrics_parser::PrometheusValue::Histogram(histogram) => Some(histogram.clone()),
        _ => None,
    });
    let sizes = sizes.expect("a bulk size histogram");
    let at_most_two = sizes.buckets.iter().find(|b| b.upper_bound == 2.0).map(|b| b.count.as_f64());
    let at_most_five = sizes.buckets.iter().find(|b| b.upper_bound == 5.0).map(|b| b.count.as_f64());
    assert!(at_most_five > at_most_two, "our bulk of 3 is counted between 2 and 5: {text}");
    for family in ["process_resident_memory_bytes", "cache_requests_total", "http_server_active_requests"] {
        assert!(scrape.families.contains_key(family), "{family} is exported");
    }
}

/// The connection pool series the dashboard and `PortfolioDbPoolExhausted` query: usage by
/// `state` and `pool_name`, the configured max, and the acquire wait histogram, on every
/// backend (SQLite and PostgreSQL from sqlx's pools, MongoDB from the driver's CMAP events).
#[tokio::test]
async fn metrics_endpoint_exports_connection_pool_usage_and_wait_time() {
    let app = TestApp::spawn().await;
    let created = expect_json(app.post_json("/api/v1/portfolios", &json!({"name": "Pooled"})).await, 201).await;
    let id = created["portfolioId"].as_str().expect("id");
    assert_eq!(app.get(&format!("/api/v1/portfolio/{id}")).await.status(), 200);

    let text = app.get("/metrics").await.text().await.unwrap();
    let scrape = openmetrics_parser::prometheus::parse_prometheus(&text).expect("valid exposition format");
    let family = |name: &str| scrape.families.get(name).unwrap_or_else(|| panic!("{name} is not exported:\n{text}"));
    let label = |sample: &openmetrics_parser::Sample<openmetrics_parser::PrometheusValue>, name: &str| {
        sample.get_labelset().expect("labels").get_label_value(name).unwrap_or_default().to_owned()
    };

    let mut usage = std::collections::BTreeSet::new();
    for sample in family("db_client_connections_usage").iter_samples() {
        usage.insert((label(sample, "pool_name"), label(sample, "state")));
    }
    // Every backend has a writer pool (PostgreSQL without a replica reads through it too).
    for state in ["used", "idle"] {
        assert!(usage.contains(&("writer".to_owned(), state.to_owned())), "{usage:?}");
    }
    assert!(
        usage
            .iter()
            .all(|(pool, state)| ["writer", "reader"].contains(&pool.as_str())
                && ["used", "idle"].contains(&state.as_str())),
        "{usage:?}"
    );
    let max = family("db_client_connections_max").iter_samples().find(|s| label(s, "pool_name") == "writer");
    assert!(
        matches!(max.map(|s| &s.value), Some(openmetrics_parser::PrometheusValue::Gauge(v)) if v.as_f64() >= 1.0),
        "writer max: {max:?}"
    );

    // Waits are process-wide and only grow: each pool reported has been waited on, ours included.
    let mut waits = std::collections::BTreeMap::<String, u64>::new();
    for sample in family("db_client_connections_wait_time_seconds").iter_samples() {
        if let openmetrics_parser::PrometheusValue::Histogram(histogram) = &sample.value {
            *waits.entry(label(sample, "pool_name")).or_default() += histogram.count.unwrap_or_default();
        }
    }
    for (pool, _) in &usage {
        assert!(waits.get(pool).is_some_and(|&count| count > 0), "no wait recorded for {pool}: {waits:?}");
    }
}

#[tokio::test]
async fn openapi_document_describes_every_api_route() {
    let app = TestApp::spawn().await;
    let doc = expect_json(app.get("/openapi.json").await, 200).await;
    assert!(doc["openapi"].as_str().is_some_and(|v| v.starts_with("3.1")), "{}", doc["openapi"]);
    assert_eq!(doc["info"]["title"], "GlobeCo Portfolio Service");
    assert_eq!(doc["info"]["version"], "2.0.0");
    let routes: &[(&str, &[&str])] = &[
        ("/api/v1/portfolios", &["get", "post"]),
        ("/api/v1/portfolio/{portfolioId}", &["get", "put", "delete"]),
        ("/api/v2/portfolios", &["get", "post"]),
        ("/", &["get"]),
        ("/health", &["get"]),
        ("/health/live", &["get"]),
        ("/health/ready", &["get"]),
        ("/health/startup", &["get"]),
        ("/health/detailed", &["get"]),
        ("/health/metrics", &["get"]),
    ];
    for (path, methods) in routes {
        let item = &doc["paths"][path];
        assert!(item.is_object(), "missing path {path}");
        for method in *methods {
            assert!(item[method].is_object(), "missing {method} {path}");
        }
    }
}

#[tokio::test]
async fn documentation_pages_are_served_without_a_cdn() {
    let app = TestApp::spawn().await;
    for path in ["/docs", "/redoc"] {
        let response = app.get(path).await;
        assert_eq!(response.status(), 200, "{path}");
        let content_type = response.headers()["content-type"].to_str().unwrap().to_owned();
        assert!(content_type.starts_with("text/html"), "{path}: {content_type}");
    }
    let docs = app.get("/docs").await.text().await.unwrap();
    assert!(docs.to_ascii_lowercase().contains("swagger"), "{docs}");
    assert!(!docs.contains("cdn.jsdelivr.net"), "Swagger UI should be self-hosted");
    assert_eq!(app.get("/docs/oauth2-redirect").await.status(), 200);
}

#[tokio::test]
async fn the_server_shuts_down_gracefully() {
    let app = TestApp::spawn().await;
    app.create_portfolio("before shutdown").await;
    app.stop().await.expect("serve returns Ok after a graceful shutdown");
}

#[tokio::test]
async fn metrics_endpoint_is_a_404_like_the_original_when_disabled() {
    let app = TestApp::spawn_with_env(&[("PORTFOLIO_OBSERVABILITY__PROMETHEUS_ENDPOINT", "false")]).await;
    expect_detail(app.get("/metrics").await, 404, "Not Found").await;
}

#[tokio::test]
async fn detailed_health_shows_the_runtime_flags() {
    let app = TestApp::spawn().await;
    let (_, body) = status_json(app.get("/health/detailed").await).await;
    let flags = &body["runtime_flags"];
    assert!(flags["log_level"].is_string(), "{body}");
    assert_eq!(flags["trace_sample_ratio"], 1.0, "development samples everything: {body}");
    assert_eq!(flags["database_tracing"], true, "{body}");
}

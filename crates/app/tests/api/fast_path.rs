//! The original's `/api/fast/*` routes (contract §7) and the echoed `x-correlation-id`.

use crate::helpers::*;
use pfs_test_support::{TestApp, json};
use serde_json::Value;

const BULK: &str = "/api/fast/portfolios/bulk";
const SEARCH: &str = "/api/fast/portfolios/search";

/// A float header as Python's `str(round(x, 2))` prints it.
fn assert_milliseconds(value: Option<String>) {
    let value = value.expect("timing header");
    let (whole, fraction) = value.split_once('.').unwrap_or_else(|| panic!("no fraction: {value:?}"));
    assert!(whole.bytes().all(|b| b.is_ascii_digit()) && (1..=2).contains(&fraction.len()), "{value:?}");
}

#[tokio::test]
async fn fast_bulk_creates_and_answers_in_the_originals_shape() {
    let app = TestApp::spawn().await;
    let body =
        json!([{"name": "Fast One"}, {"name": "Fast Two", "version": 0}, {"name": "Fast Three", "version": null}]);
    let response = app.post_json(BULK, &body).await;
    assert_milliseconds(header(&response, "x-processing-time-ms"));
    assert_eq!(header(&response, "x-portfolio-count").as_deref(), Some("3"));
    assert_eq!(header(&response, "x-fast-path"), None, "X-Fast-Path is a production-only header");
    let created = expect_json(response, 201).await;
    assert_eq!(created["count"], 3);
    assert!(created["processingTimeMs"].is_f64(), "{created}");
    let portfolios = created["portfolios"].as_array().expect("list");
    let names: Vec<&str> = portfolios.iter().map(|p| p["name"].as_str().unwrap()).collect();
    assert_eq!(names, ["Fast One", "Fast Two", "Fast Three"]);
    let versions: Vec<i64> = portfolios.iter().map(|p| p["version"].as_i64().unwrap()).collect();
    assert_eq!(versions, [1, 0, 1]);
    for portfolio in portfolios {
        assert_portfolio(portfolio);
        let id = portfolio["portfolioId"].as_str().unwrap();
        expect_json(app.get(&format!("/api/v1/portfolio/{id}")).await, 200).await;
    }
}

#[tokio::test]
async fn fast_bulk_refuses_what_the_original_refused_with_its_messages() {
    let app = TestApp::spawn().await;
    let too_many: Vec<Value> = (0..101).map(|i| json!({"name": format!("n{i}")})).collect();
    let too_many = Value::Array(too_many).to_string();
    let cases: [(&str, u16, &str); 8] = [
        ("", 400, "Invalid JSON: Expecting value: line 1 column 1 (char 0)"),
        ("[{\"name\": }]", 400, "Invalid JSON: Expecting value: line 1 column 11 (char 10)"),
        ("{\"name\": \"x\"}", 400, "Request must be a list of portfolios"),
        ("[]", 400, "Request must contain at least 1 portfolio"),
        (&too_many, 413, "Bulk request too large: 101 portfolios exceeds 100 limit"),
        ("[{\"name\": \"a\"}, 7]", 400, "Invalid portfolio at index 1: Item 1 must be an object"),
        ("[{\"name\": \"\"}]", 400, "Invalid portfolio at index 0: Item 0 missing required field 'name'"),
        ("[{\"version\": 2}]", 400, "Invalid portfolio at index 0: Item 0 missing required field 'name'"),
    ];
    for (body, status, detail) in cases {
        let response = app.post_raw(BULK, body).await;
        assert_eq!(expect_json(response, status).await, json!({ "detail": detail }), "body {body:?}");
    }
    let response = app.post_raw(BULK, "[{\"name\": 5}]").await;
    let detail = expect_json(response, 400).await["detail"].as_str().unwrap().to_owned();
    assert!(
        detail.starts_with("Invalid portfolio at index 0: 1 validation error for PortfolioPostDTO\nname\n  Input should be a valid string [type=string_type"),
        "{detail}"
    );
    // Nothing was written by any of them.
    assert_eq!(expect_json(app.get("/api/v1/portfolios").await, 200).await, json!([]));
}

#[tokio::test]
async fn fast_bulk_answers_a_body_over_one_mebibyte_with_the_originals_413() {
    let app = TestApp::spawn().await;
    let body = format!("[{{\"name\": \"{}\"}}]", "x".repeat(1024 * 1024));
    let size = body.len();
    let response = app.post_raw(BULK, &body).await;
    let expected = format!("Request too large: {size} bytes exceeds 1048576 bytes");
    assert_eq!(expect_json(response, 413).await, json!({ "detail": expected }));
}

#[tokio::test]
async fn fast_bulk_refuses_duplicate_and_existing_names_as_client_errors() {
    let app = TestApp::spawn().await;
    let response = app.post_json(BULK, &json!([{"name": "Dup"}, {"name": " dup "}, {"name": "DUP"}])).await;
    expect_detail(response, 400, "Duplicate portfolio names found:  dup , DUP").await;
    app.create_portfolio("Stored Name").await;
    let response = app.post_json(BULK, &json!([{"name": "fresh"}, {"name": "stored NAME"}])).await;
    expect_detail(response, 400, "Portfolios already exist: Stored Name").await;
    let all = expect_json(app.get("/api/v1/portfolios").await, 200).await;
    assert_eq!(all.as_array().map(Vec::len), Some(1), "{all}");
}

#[tokio::test]
async fn fast_search_pages_like_v2_with_its_own_additions() {
    let app = TestApp::spawn().await;
    for name in ["Alpha Fund", "alpha beta", "Gamma"] {
        app.create_portfolio(name).await;
    }
    let response = app.get(&format!("{SEARCH}?name_like=ALPHA&limit=1&offset=1")).await;
    assert_eq!(header(&response, "x-total-count").as_deref(), Some("2"));
    assert_milliseconds(header(&response, "x-processing-time-ms"));
    let body = expect_json(response, 200).await;
    assert_eq!(
        body["pagination"],
        json!({"totalElements": 2, "totalPages": 2, "currentPage": 1, "pageSize": 1, "hasNext": false, "hasPrevious": true})
    );
    assert_eq!(body["portfolios"].as_array().map(Vec::len), Some(1));
    assert_portfolio(&body["portfolios"][0]);
    assert!(body["processingTimeMs"].is_f64(), "{body}");
    let exact = expect_json(app.get(&format!("{SEARCH}?name=gamma")).await, 200).await;
    assert_eq!(exact["portfolios"][0]["name"], "Gamma");
    // No name-format rule: punctuation is matched literally, an empty name means no filter.
    let literal = expect_json(app.get(&format!("{SEARCH}?name_like=%25.%2A")).await, 200).await;
    assert_eq!(literal["pagination"]["totalElements"], 0);
    let all = expect_json(app.get(&format!("{SEARCH}?name=")).await, 200).await;
    assert_eq!(all["pagination"]["totalElements"], 3);
}

#[tokio::test]
async fn fast_search_refuses_with_the_originals_messages() {
    let app = TestApp::spawn().await;
    for (query, detail) in [
        ("limit=0", "Limit must be between 1 and 1000"),
        ("limit=1001", "Limit must be between 1 and 1000"),
        ("offset=-1", "Offset must be non-negative"),
        ("name=a&name_like=b", "Only one search parameter allowed: name or name_like"),
    ] {
        expect_detail(app.get(&format!("{SEARCH}?{query}")).await, 400, detail).await;
    }
    let body = expect_json(app.get(&format!("{SEARCH}?limit=abc")).await, 422).await;
    assert_eq!(body["detail"][0]["type"], "int_parsing");
}

#[tokio::test]
async fn fast_health_and_stats_answer_the_originals_bodies() {
    let app = TestApp::spawn().await;
    let response = app.get("/api/fast/health/fast").await;
    assert_milliseconds(header(&response, "x-processing-time-ms"));
    let health = expect_json(response, 200).await;
    assert_eq!(
        (health["status"].as_str(), health["service"].as_str()),
        (Some("healthy"), Some("globeco-portfolio-service-fast"))
    );
    let stamp = health["timestamp"].as_str().unwrap();
    assert_eq!((stamp.len(), stamp.as_bytes()[10], stamp.contains('Z')), (26, b'T', false), "naive isoformat: {stamp}");
    let stats = expect_json(app.get("/api/fast/performance/stats").await, 200).await;
    assert_eq!(stats["fastPath"], json!({"enabled": true, "maxBulkSize": 100, "maxRequestSizeBytes": 1048576}));
    assert_eq!(stats["environment"]["profile"], "development");
    assert!(stats["environment"]["databaseTracing"].is_boolean());
    assert_eq!(stats["endpoints"].as_object().map(|e| e.len()), Some(3));
}

#[tokio::test]
async fn in_production_fast_answers_are_marked_and_large_declared_bodies_refused_early() {
    let app = TestApp::spawn_with_env(&[("PORTFOLIO_ENV", "production")]).await;
    let response = app.get(&format!("{SEARCH}?name=x")).await;
    assert_eq!(header(&response, "x-fast-path").as_deref(), Some("true"));
    assert_milliseconds(header(&response, "x-middleware-time-ms"));
    expect_json(response, 200).await;
    let response = app.get("/api/v2/portfolios").await;
    assert_eq!(header(&response, "x-fast-path"), None, "only /api/fast answers are marked");
    let body = "x".repeat(1024 * 1024 + 1);
    let response = app.post_raw(BULK, &body).await;
    assert_eq!(header(&response, "x-fast-path").as_deref(), Some("true"));
    let refused = expect_json(response, 413).await;
    assert_eq!(
        refused,
        json!({"error": "Request too large", "detail": "Request size 1048577 bytes exceeds 1048576 bytes", "maxSizeBytes": 1048576})
    );
}

#[tokio::test]
async fn the_openapi_document_lists_the_fast_routes_as_deprecated() {
    let app = TestApp::spawn().await;
    let doc = expect_json(app.get("/openapi.json").await, 200).await;
    for (path, method) in
        [(BULK, "post"), (SEARCH, "get"), ("/api/fast/health/fast", "get"), ("/api/fast/performance/stats", "get")]
    {
        assert_eq!(doc["paths"][path][method]["deprecated"], true, "{path}");
    }
}

#[tokio::test]
async fn an_incoming_correlation_id_is_echoed() {
    let app = TestApp::spawn().await;
    let response = app
        .client
        .get(app.url("/api/v1/portfolios"))
        .header("X-Correlation-ID", "corr-42")
        .header("X-Request-ID", "req-1")
        .send()
        .await
        .unwrap();
    assert_eq!(header(&response, "x-correlation-id").as_deref(), Some("corr-42"));
    assert_eq!(header(&response, "x-request-id").as_deref(), Some("req-1"));
    let without = app.get("/api/v1/portfolios").await;
    assert_eq!(header(&without, "x-correlation-id"), None);
}

//! Request ids, security headers and CORS (contract §2.5).

use crate::helpers::*;
use pfs_test_support::{TestApp, json, reqwest};

fn is_uuid(s: &str) -> bool {
    let groups: Vec<&str> = s.split('-').collect();
    groups.iter().map(|g| g.len()).eq([8, 4, 4, 4, 12])
        && groups.iter().all(|g| g.bytes().all(|b| b.is_ascii_hexdigit()))
}

#[tokio::test]
async fn an_incoming_request_id_is_echoed() {
    let app = TestApp::spawn().await;
    let response =
        app.client.get(app.url("/api/v1/portfolios")).header("X-Request-ID", "abc-123").send().await.unwrap();
    assert_eq!(header(&response, "x-request-id").as_deref(), Some("abc-123"));
}

#[tokio::test]
async fn a_correlation_id_is_used_when_no_request_id_is_sent() {
    let app = TestApp::spawn().await;
    let response = app.client.get(app.url("/health")).header("X-Correlation-ID", "corr-9").send().await.unwrap();
    assert_eq!(header(&response, "x-request-id").as_deref(), Some("corr-9"));
}

#[tokio::test]
async fn the_request_id_header_wins_over_the_correlation_id() {
    let app = TestApp::spawn().await;
    let response = app
        .client
        .get(app.url("/"))
        .header("X-Correlation-ID", "corr")
        .header("X-Request-ID", "req")
        .send()
        .await
        .unwrap();
    assert_eq!(header(&response, "x-request-id").as_deref(), Some("req"));
}

#[tokio::test]
async fn trace_and_bare_request_id_headers_are_later_fallbacks() {
    let app = TestApp::spawn().await;
    let cases: &[(&[(&str, &str)], &str)] = &[
        (&[("X-Trace-ID", "trace-1")], "trace-1"),
        (&[("Request-ID", "bare-1")], "bare-1"),
        (&[("Request-ID", "bare-2"), ("X-Trace-ID", "trace-2")], "trace-2"),
        (&[("X-Trace-ID", "trace-3"), ("X-Correlation-ID", "corr-3")], "corr-3"),
    ];
    for (headers, expected) in cases {
        let mut builder = app.client.get(app.url("/health"));
        for (name, value) in *headers {
            builder = builder.header(*name, *value);
        }
        let response = builder.send().await.unwrap();
        assert_eq!(header(&response, "x-request-id").as_deref(), Some(*expected), "{headers:?}");
    }
}

#[tokio::test]
async fn a_fresh_uuid_request_id_is_generated_per_request() {
    let app = TestApp::spawn().await;
    let first = header(&app.get("/").await, "x-request-id").expect("request id");
    let second = header(&app.get("/nope").await, "x-request-id").expect("request id");
    assert!(is_uuid(&first) && is_uuid(&second), "{first} {second}");
    assert_ne!(first, second);
}

/// Responses of many kinds: success, created, no content, redirects and every error class.
async fn assorted_responses(app: &TestApp) -> Vec<(String, reqwest::Response)> {
    let created = app.create_portfolio("h").await;
    let id = created["portfolioId"].as_str().unwrap().to_owned();
    vec![
        ("GET /".into(), app.get("/").await),
        ("GET /health".into(), app.get("/health").await),
        ("GET /health/live".into(), app.get("/health/live").await),
        ("POST v1".into(), app.post_json("/api/v1/portfolios", &json!({ "name": "n" })).await),
        ("GET v2".into(), app.get("/api/v2/portfolios").await),
        ("400".into(), app.get("/api/v2/portfolios?name=").await),
        ("404".into(), app.get("/nope").await),
        ("405".into(), request(app, "PATCH", "/api/v1/portfolios").await),
        ("307".into(), app.get("/api/v1/portfolios/").await),
        ("409".into(), app.delete(&format!("/api/v1/portfolio/{id}?version=9")).await),
        ("422".into(), app.post_raw("/api/v1/portfolios", "{").await),
        ("413".into(), app.post_raw("/api/v1/portfolios", &"x".repeat(1_100_000)).await),
        ("204".into(), app.delete(&format!("/api/v1/portfolio/{id}?version=1")).await),
        ("docs".into(), app.get("/docs").await),
    ]
}

#[tokio::test]
async fn every_response_carries_the_security_headers_and_a_request_id() {
    let app = TestApp::spawn().await;
    for (what, response) in assorted_responses(&app).await {
        // Data reads (and their errors) must be revalidated; everything else is not stored.
        let cache_control = if ["GET v2", "400", "docs"].contains(&what.as_str()) {
            "no-cache"
        } else {
            "no-cache, no-store, must-revalidate"
        };
        let expected = [
            ("x-content-type-options", "nosniff"),
            ("x-frame-options", "DENY"),
            ("x-xss-protection", "1; mode=block"),
            ("cache-control", cache_control),
            ("pragma", "no-cache"),
        ];
        for (name, value) in expected {
            assert_eq!(header(&response, name).as_deref(), Some(value), "{name} on {what}");
        }
        let servers: Vec<&str> = response.headers().get_all("server").iter().map(|v| v.to_str().unwrap()).collect();
        assert!(servers.contains(&"GlobeCo-Portfolio-Service"), "server on {what}: {servers:?}");
        for name in ["referrer-policy", "content-security-policy"] {
            assert!(header(&response, name).is_some_and(|v| !v.is_empty()), "{name} on {what}");
        }
        assert!(header(&response, "x-request-id").is_some_and(|v| !v.is_empty()), "x-request-id on {what}");
        assert!(header(&response, "strict-transport-security").is_none(), "HSTS outside production on {what}");
    }
}

#[tokio::test]
async fn responses_expire_immediately() {
    let app = TestApp::spawn().await;
    for (what, response) in assorted_responses(&app).await {
        assert_eq!(header(&response, "expires").as_deref(), Some("0"), "expires on {what}");
    }
}

#[tokio::test]
async fn production_adds_strict_transport_security() {
    let app = TestApp::spawn_with_env(&[("PORTFOLIO_ENV", "production")]).await;
    for (what, response) in assorted_responses(&app).await {
        assert!(
            header(&response, "strict-transport-security").is_some_and(|v| v.contains("max-age=")),
            "HSTS on {what}"
        );
        assert_eq!(header(&response, "x-frame-options").as_deref(), Some("DENY"), "{what}");
    }
}

#[tokio::test]
async fn a_cors_preflight_is_answered_200_for_any_origin_without_credentials() {
    let app = TestApp::spawn().await;
    for path in ["/api/v1/portfolios", "/api/v2/portfolios", "/api/v1/portfolio/ffffffffffffffffffffffff"] {
        let response = app
            .client
            .request(reqwest::Method::OPTIONS, app.url(path))
            .header("Origin", "https://client.example")
            .header("Access-Control-Request-Method", "PUT")
            .header("Access-Control-Request-Headers", "x-custom-header")
            .send()
            .await
            .unwrap();
        assert_eq!(response.status(), 200, "{path}");
        assert_eq!(header(&response, "access-control-allow-origin").as_deref(), Some("*"), "{path}");
        assert_eq!(header(&response, "access-control-allow-credentials"), None, "{path}");
        let methods = header(&response, "access-control-allow-methods").unwrap_or_default();
        assert!(methods.contains("PUT"), "allow-methods {methods:?}");
        let headers = header(&response, "access-control-allow-headers").unwrap_or_default().to_ascii_lowercase();
        assert!(headers.contains("x-custom-header") || headers.contains('*'), "allow-headers {headers:?}");
        assert_eq!(header(&response, "x-content-type-options").as_deref(), Some("nosniff"), "{path}");
    }
    assert_eq!(stored_count(&app).await, 0);
}

/// A listed origin gets itself back with credentials; any other origin, `null` included (a
/// sandboxed frame or a `file:` page), gets no CORS headers at all.
#[tokio::test]
async fn listed_origins_alone_are_allowed_with_credentials_and_null_never_is() {
    let app = TestApp::spawn_with_env(&[("PORTFOLIO_SERVER__CORS_ALLOWED_ORIGINS", "https://portal.example")]).await;
    let preflight = |origin: &'static str| {
        app.client
            .request(reqwest::Method::OPTIONS, app.url("/api/v1/portfolios"))
            .header("Origin", origin)
            .header("Access-Control-Request-Method", "POST")
            .send()
    };
    let listed = preflight("https://portal.example").await.unwrap();
    assert_eq!(header(&listed, "access-control-allow-origin").as_deref(), Some("https://portal.example"));
    assert_eq!(header(&listed, "access-control-allow-credentials").as_deref(), Some("true"));
    for origin in ["null", "https://evil.example"] {
        let refused = preflight(origin).await.unwrap();
        // Without an allow-origin naming it, a browser gives the page nothing, whatever else
        // the preflight says.
        assert_eq!(header(&refused, "access-control-allow-origin"), None, "{origin}");
    }
    let open = TestApp::spawn().await;
    let null_origin = open.client.get(open.url("/api/v1/portfolios")).header("Origin", "null").send().await.unwrap();
    assert_eq!(header(&null_origin, "access-control-allow-origin").as_deref(), Some("*"), "never reflected");
}

#[tokio::test]
async fn a_simple_cross_origin_request_gets_an_allow_origin_header() {
    let app = TestApp::spawn().await;
    let response =
        app.client.get(app.url("/api/v1/portfolios")).header("Origin", "https://client.example").send().await.unwrap();
    assert_eq!(response.status(), 200);
    let allowed = header(&response, "access-control-allow-origin").expect("allow-origin");
    assert!(allowed == "*" || allowed == "https://client.example", "{allowed}");
}

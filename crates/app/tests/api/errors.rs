//! Routing errors: 404, 405, trailing-slash 307, and the 413 body limit (contract §1, decisions).

use crate::helpers::*;
use pfs_test_support::{TestApp, json};

#[tokio::test]
async fn unknown_paths_are_404_not_found() {
    let app = TestApp::spawn().await;
    for path in [
        "/nope",
        "/api",
        "/api/v1",
        "/api/v1/portfolio",
        "/api/v3/portfolios",
        "/api/v1/portfolios/extra/x",
        "/metrics/nope",
        "/health/nope",
        "/nope/",
        "/API/v1/portfolios",
        "/api/v1/Portfolios",
    ] {
        let (status, body) = status_json(app.get(path).await).await;
        assert_eq!((status, body), (404, json!({ "detail": "Not Found" })), "GET {path}");
    }
    let (status, body) = status_json(request(&app, "POST", "/nope").await).await;
    assert_eq!((status, body), (404, json!({ "detail": "Not Found" })));
}

#[tokio::test]
async fn a_known_path_with_an_unsupported_method_is_405() {
    let app = TestApp::spawn().await;
    let id = "ffffffffffffffffffffffff";
    let item = format!("/api/v1/portfolio/{id}");
    let cases = [
        ("PATCH", "/api/v1/portfolios"),
        ("DELETE", "/api/v1/portfolios"),
        ("PUT", "/api/v1/portfolios"),
        ("POST", item.as_str()),
        ("PATCH", item.as_str()),
        ("PUT", "/api/v2/portfolios"),
        ("DELETE", "/api/v2/portfolios"),
        ("POST", "/health"),
        ("DELETE", "/"),
        ("POST", "/health/live"),
    ];
    for (method, path) in cases {
        let response = request(&app, method, path).await;
        assert_eq!(response.status(), 405, "{method} {path}");
        let body: serde_json::Value = response.json().await.expect("JSON body");
        assert_eq!(body, json!({ "detail": "Method Not Allowed" }), "{method} {path}");
    }
}

#[tokio::test]
async fn a_plain_options_request_without_preflight_headers_is_405() {
    let app = TestApp::spawn().await;
    for path in ["/api/v1/portfolios", "/api/v2/portfolios", "/health"] {
        let response = request(&app, "OPTIONS", path).await;
        assert_eq!(response.status(), 405, "OPTIONS {path}");
        let body: serde_json::Value = response.json().await.expect("JSON body");
        assert_eq!(body, json!({ "detail": "Method Not Allowed" }), "OPTIONS {path}");
    }
}

#[tokio::test]
async fn head_on_get_routes_is_405() {
    let app = TestApp::spawn().await;
    for path in [
        "/api/v1/portfolios",
        "/api/v2/portfolios",
        "/health",
        "/health/live",
        "/",
        "/api/v1/portfolio/ffffffffffffffffffffffff",
    ] {
        assert_eq!(request(&app, "HEAD", path).await.status(), 405, "HEAD {path}");
    }
}

#[tokio::test]
async fn a_trailing_slash_on_a_known_path_redirects_307_to_the_relative_slashless_url() {
    let app = TestApp::spawn().await;
    let id = app.create_portfolio("x").await["portfolioId"].as_str().unwrap().to_owned();
    let cases = [
        ("GET", "/api/v2/portfolios/?limit=5".to_owned(), "/api/v2/portfolios?limit=5".to_owned()),
        ("GET", "/api/v1/portfolios/".to_owned(), "/api/v1/portfolios".to_owned()),
        ("POST", "/api/v1/portfolios/".to_owned(), "/api/v1/portfolios".to_owned()),
        ("GET", format!("/api/v1/portfolio/{id}/"), format!("/api/v1/portfolio/{id}")),
        ("GET", "/health/live/".to_owned(), "/health/live".to_owned()),
        (
            "GET",
            "/api/v2/portfolios/?name=a%20b&limit=2".to_owned(),
            "/api/v2/portfolios?name=a%20b&limit=2".to_owned(),
        ),
    ];
    for (method, from, to) in cases {
        let response = request(&app, method, &from).await;
        assert_eq!(response.status(), 307, "{method} {from}");
        let location = response.headers()["location"].to_str().unwrap().to_owned();
        assert_eq!(location, to, "{method} {from}");
    }
    assert_eq!(stored_count(&app).await, 1, "the redirected POST must not create anything");
    // A client's Host header never chooses where the redirect goes.
    let spoofed = app.client.get(app.url("/api/v1/portfolios/")).header("host", "evil.example").send().await.unwrap();
    assert_eq!(spoofed.headers()["location"], "/api/v1/portfolios");
}

#[tokio::test]
async fn behind_a_trusted_proxy_redirects_name_the_forwarded_scheme_and_host() {
    let app = TestApp::builder().with_config(|c| c.server.trust_forwarded_headers = true).spawn().await;
    let behind_tls = app
        .client
        .get(app.url("/api/v2/portfolios/?limit=5"))
        .header("x-forwarded-proto", "https")
        .header("x-forwarded-host", "api.example, internal:8000")
        .send()
        .await
        .unwrap();
    assert_eq!(behind_tls.status(), 307);
    assert_eq!(behind_tls.headers()["location"], "https://api.example/api/v2/portfolios?limit=5");
    let plain = app.get("/health/live/").await;
    assert_eq!(plain.headers()["location"], format!("http://{}/health/live", app.address));
}

#[tokio::test]
async fn an_unknown_path_with_a_trailing_slash_is_404_not_a_redirect() {
    let app = TestApp::spawn().await;
    for path in ["/api/v3/portfolios/", "/nothing/", "/api/v1/portfolio/"] {
        let (status, body) = status_json(app.get(path).await).await;
        assert_eq!((status, body), (404, json!({ "detail": "Not Found" })), "GET {path}");
    }
}

/// A JSON body `{"name":"xxx…"}` of exactly `len` bytes.
fn body_of_len(len: usize) -> String {
    let overhead = r#"{"name":""}"#.len();
    format!(r#"{{"name":"{}"}}"#, "x".repeat(len - overhead))
}

#[tokio::test]
async fn a_body_over_one_mebibyte_is_413_with_a_json_detail() {
    let app = TestApp::spawn().await;
    for (path, len) in
        [("/api/v1/portfolios", 1_048_577), ("/api/v1/portfolios", 3_000_000), ("/api/v2/portfolios", 1_048_577)]
    {
        let (status, body) = status_json(app.post_raw(path, &body_of_len(len)).await).await;
        assert_eq!(status, 413, "{path} with {len} bytes");
        assert!(body["detail"].is_string(), "{body}");
    }
    let id = app.create_portfolio("x").await["portfolioId"].as_str().unwrap().to_owned();
    let path = format!("/api/v1/portfolio/{id}");
    let response = app
        .client
        .put(app.url(&path))
        .header("content-type", "application/json")
        .body(body_of_len(1_048_577))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 413);
    assert_eq!(stored_count(&app).await, 1);
}

#[tokio::test]
async fn a_body_of_exactly_one_mebibyte_is_accepted() {
    let app = TestApp::spawn().await;
    // JSON whitespace fills the body: a name that long is refused by limits.max_name_bytes.
    let start = r#"{"name":"x""#;
    let body = format!("{start}{}}}", " ".repeat(1_048_576 - start.len() - 1));
    assert_eq!(body.len(), 1_048_576);
    let created = expect_json(app.post_raw("/api/v1/portfolios", &body).await, 201).await;
    assert_eq!(created["name"], "x");
}

#[tokio::test]
async fn a_name_over_max_name_bytes_is_a_422_string_too_long_on_every_write_route() {
    let app = TestApp::builder().with_config(|c| c.limits.max_name_bytes = 100).spawn().await;
    let at_limit = "n".repeat(100);
    let over = "n".repeat(101);
    expect_json(app.post_json("/api/v1/portfolios", &json!({ "name": at_limit })).await, 201).await;
    let issue = |loc: serde_json::Value| {
        json!({"detail": [{"type": "string_too_long", "loc": loc, "msg": "String should have at most 100 bytes",
            "input": over, "ctx": {"max_length": 100}}]})
    };
    let created = expect_json(app.post_json("/api/v1/portfolios", &json!({ "name": over })).await, 422).await;
    assert_eq!(created, issue(json!(["body", "name"])));
    let bulk =
        expect_json(app.post_json("/api/v2/portfolios", &json!([{ "name": "ok" }, { "name": over }])).await, 422).await;
    assert_eq!(bulk, issue(json!(["body", 1, "name"])));
    let stored = app.create_portfolio("short").await;
    let id = stored["portfolioId"].as_str().unwrap();
    let put = json!({ "portfolioId": id, "name": over, "version": 1 });
    let updated = expect_json(app.put_json(&format!("/api/v1/portfolio/{id}"), &put).await, 422).await;
    assert_eq!(updated, issue(json!(["body", "name"])));
    let fast = app.post_json("/api/fast/portfolios/bulk", &json!([{ "name": over }])).await;
    assert_eq!(fast.status(), 400);
    let detail = expect_json(fast, 400).await["detail"].as_str().unwrap().to_owned();
    assert!(detail.starts_with("Invalid portfolio at index 0:") && detail.contains("string_too_long"), "{detail}");
    assert_eq!(stored_count(&app).await, 2, "nothing over the limit was stored");
}

#[tokio::test]
async fn an_oversized_bulk_request_inserts_nothing() {
    let app = TestApp::spawn().await;
    let wanted: Vec<String> = (0..50).map(|i| format!("{i}{}", "y".repeat(25_000))).collect();
    let response = bulk(&app, &bulk_body(&wanted)).await;
    assert_eq!(response.status(), 413);
    assert_eq!(stored_count(&app).await, 0);
}

#[tokio::test]
async fn error_bodies_are_served_as_json() {
    let app = TestApp::spawn().await;
    let responses = [
        app.get("/nope").await,
        request(&app, "PATCH", "/api/v1/portfolios").await,
        app.get("/api/v2/portfolios?limit=0").await,
        app.get("/api/v2/portfolios?name=").await,
        app.get("/api/v1/portfolio/abc").await,
        app.post_raw("/api/v1/portfolios", &"x".repeat(1_100_000)).await,
    ];
    for response in responses {
        let status = response.status();
        let content_type = response.headers()["content-type"].to_str().unwrap().to_owned();
        assert!(content_type.starts_with("application/json"), "{status}: {content_type}");
    }
}

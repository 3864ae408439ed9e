//! `GET/PATCH /admin/flags`: admin credentials only, partial updates validated as a whole,
//! changes visible in `/health/detailed` at once.

use crate::helpers::*;
use pfs_test_support::{TestApp, json};

async fn patch(app: &TestApp, key: &str, body: &serde_json::Value) -> reqwest::Response {
    app.client.patch(app.url("/admin/flags")).header("x-api-key", key).json(body).send().await.unwrap()
}

#[tokio::test]
async fn flags_are_closed_while_authentication_is_disabled() {
    let app = TestApp::spawn().await;
    assert_eq!(app.get("/admin/flags").await.status(), 403);
    assert_eq!(patch(&app, "test-admin-key", &json!({"request_logging": false})).await.status(), 403);
}

#[tokio::test]
async fn only_an_admin_key_reads_or_changes_flags() {
    let app = protected_app().await;
    assert_eq!(app.get("/admin/flags").await.status(), 401);
    assert_eq!(patch(&app, "test-write-key", &json!({"request_logging": false})).await.status(), 403);
    let response = app.client.get(app.url("/admin/flags")).header("x-api-key", "test-admin-key").send().await.unwrap();
    let flags = expect_json(response, 200).await;
    assert_eq!(flags["request_logging"], true, "{flags}");
}

#[tokio::test]
async fn a_patch_takes_effect_at_once_and_shows_in_detailed_health() {
    let app = protected_app().await;
    let response = patch(&app, "test-admin-key", &json!({"database_tracing": false, "trace_sample_ratio": 0.25})).await;
    let body = expect_json(response, 200).await;
    assert_eq!(body["changed"], json!(["trace_sample_ratio", "database_tracing"]), "{body}");
    assert_eq!(body["flags"]["database_tracing"], false);
    let health = expect_json(detailed_health_as_admin(&app).await, 200).await;
    assert_eq!(health["runtime_flags"]["database_tracing"], false, "{health}");
    assert_eq!(health["runtime_flags"]["trace_sample_ratio"], 0.25, "{health}");
    let sources = &health["runtime_flag_sources"];
    assert_eq!(sources["trace_sample_ratio"], "admin", "{health}");
    assert_eq!(sources["request_logging"], "configuration", "{health}");
}

#[tokio::test]
async fn invalid_flags_are_refused_and_nothing_changes() {
    let app = protected_app().await;
    for body in [
        json!({"trace_sample_ratio": 2.0}),
        json!({"log_level": "not[a filter"}),
        json!({"no_such_flag": true}),
        json!({"request_logging": "yes"}),
    ] {
        let response = patch(&app, "test-admin-key", &body).await;
        assert_eq!(response.status(), 400, "{body}");
    }
    let health = expect_json(detailed_health_as_admin(&app).await, 200).await;
    assert_eq!(health["runtime_flags"]["trace_sample_ratio"], 1.0, "{health}");
    assert_eq!(health["runtime_flags"]["request_logging"], true, "{health}");
}

/// With auth on, `/health/detailed` is an admin route.
async fn detailed_health_as_admin(app: &TestApp) -> reqwest::Response {
    app.client.get(app.url("/health/detailed")).header("x-api-key", "test-admin-key").send().await.unwrap()
}

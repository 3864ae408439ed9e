//! `[auth]`: off by default (the original had none); when enabled, writes need a write or
//! admin credential and reads stay open.

use crate::helpers::*;
use pfs_test_support::{TestApp, json};

fn portfolio() -> serde_json::Value {
    json!({"name": "Guarded"})
}

#[tokio::test]
async fn auth_is_off_by_default_so_existing_clients_write_without_credentials() {
    let app = TestApp::spawn().await;
    expect_json(app.post_json("/api/v1/portfolios", &portfolio()).await, 201).await;
}

#[tokio::test]
async fn writes_without_a_credential_get_401_with_a_bearer_challenge() {
    let app = protected_app().await;
    let response = app.post_json("/api/v1/portfolios", &portfolio()).await;
    assert_eq!(response.headers()["www-authenticate"], "Bearer");
    expect_detail(response, 401, "Not authenticated").await;
    let bulk_response = bulk(&app, &bulk_body(&["a"])).await;
    assert_eq!(bulk_response.status(), 401);
    assert_eq!(stored_count(&app).await, 0, "nothing was written");
}

#[tokio::test]
async fn a_wrong_key_is_reported_as_invalid() {
    let app = protected_app().await;
    let response = app.client.post(app.url("/api/v1/portfolios")).header("x-api-key", "guess").json(&portfolio());
    let response = response.send().await.unwrap();
    assert_eq!(response.headers()["www-authenticate"], r#"Bearer error="invalid_token""#);
    expect_detail(response, 401, "Invalid credentials").await;
}

#[tokio::test]
async fn refused_requests_are_counted_by_reason_for_the_auth_failure_alert() {
    let app = protected_app().await;
    let invalid = r#"http_server_auth_failures_total{reason="invalid_credentials"}"#;
    let missing = r#"http_server_auth_failures_total{reason="missing_credentials"}"#;
    let (invalid_before, missing_before) = (metric_value(&app, invalid).await, metric_value(&app, missing).await);
    let guess = app.client.post(app.url("/api/v1/portfolios")).header("x-api-key", "guess").json(&portfolio());
    assert_eq!(guess.send().await.unwrap().status(), 401);
    assert_eq!(app.post_json("/api/v1/portfolios", &portfolio()).await.status(), 401);
    assert!(metric_value(&app, invalid).await >= invalid_before + 1.0);
    assert!(metric_value(&app, missing).await >= missing_before + 1.0);
}

#[tokio::test]
async fn write_and_admin_keys_may_write_by_either_header() {
    let app = protected_app().await;
    let created = app
        .client
        .post(app.url("/api/v1/portfolios"))
        .bearer_auth("test-write-key")
        .json(&portfolio())
        .send()
        .await
        .unwrap();
    let created = expect_json(created, 201).await;
    let id = created["portfolioId"].as_str().unwrap();
    let update = json!({"portfolioId": id, "name": "Renamed", "version": 1});
    let updated = app
        .client
        .put(app.url(&format!("/api/v1/portfolio/{id}")))
        .header("x-api-key", "test-admin-key")
        .json(&update)
        .send()
        .await
        .unwrap();
    assert_eq!(expect_json(updated, 200).await["name"], "Renamed");
    let unauthenticated_delete = app.delete(&format!("/api/v1/portfolio/{id}")).await;
    assert_eq!(unauthenticated_delete.status(), 401);
}

#[tokio::test]
async fn reads_stay_open_and_ignore_credentials() {
    let app = protected_app().await;
    let listed = app.client.get(app.url("/api/v1/portfolios")).header("x-api-key", "guess").send().await.unwrap();
    assert_eq!(expect_json(listed, 200).await, json!([]));
    assert_eq!(app.get("/api/v2/portfolios").await.status(), 200);
}

#[tokio::test]
async fn enabling_auth_without_credentials_is_a_configuration_error() {
    let sources = pfs_platform::ConfigSources {
        env: [("PORTFOLIO_AUTH__ENABLED".to_owned(), "true".to_owned())].into(),
        ..Default::default()
    };
    let error = pfs_platform::Config::load(&sources).unwrap_err().to_string();
    assert!(error.contains("auth.enabled"), "{error}");
}

#[tokio::test]
async fn detailed_health_is_open_while_auth_is_off_and_admin_only_once_it_is_on() {
    let open = TestApp::spawn().await;
    assert_eq!(open.get("/health/detailed").await.status(), 200, "the original's behaviour while auth is off");
    let app = protected_app().await;
    assert_eq!(app.get("/health/detailed").await.status(), 401);
    let as_writer = app.client.get(app.url("/health/detailed")).header("x-api-key", "test-write-key").send();
    assert_eq!(as_writer.await.unwrap().status(), 403);
    let as_admin = app.client.get(app.url("/health/detailed")).header("x-api-key", "test-admin-key").send();
    assert_eq!(as_admin.await.unwrap().status(), 200);
    for probe in ["/health", "/health/live", "/health/ready", "/health/startup"] {
        assert_eq!(app.get(probe).await.status(), 200, "{probe} stays open for the orchestrator");
    }
}

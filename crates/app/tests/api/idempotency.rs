//! `Idempotency-Key` on the creating POSTs, on whichever backend the suite runs against: a
//! retry replays the first response and creates nothing, another body under the key is a 422,
//! concurrent duplicates write once, keys expire, and a write whose response was lost is found
//! again instead of being repeated.

use crate::helpers::{expect_json, status_json};
use pfs_storage::{Layered, Op, StoreError, StoreHook, StoreResult};
use pfs_test_support::{TestApp, json, reqwest};
use serde_json::Value;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

const V1: &str = "/api/v1/portfolios";
const V2: &str = "/api/v2/portfolios";

async fn post_keyed(app: &TestApp, path: &str, key: &str, body: &Value) -> reqwest::Response {
    app.client.post(app.url(path)).header("idempotency-key", key).json(body).send().await.expect("POST")
}

fn replayed(response: &reqwest::Response) -> bool {
    response.headers().get("idempotent-replayed").is_some_and(|v| v == "true")
}

async fn stored_count(app: &TestApp) -> usize {
    expect_json(app.get(V1).await, 200).await.as_array().expect("list").len()
}

#[tokio::test]
async fn a_v1_retry_replays_the_first_response_and_creates_nothing() {
    let app = TestApp::spawn().await;
    let body = json!({ "name": "Retirement" });
    let first = post_keyed(&app, V1, "key-1", &body).await;
    assert!(!replayed(&first));
    let created = expect_json(first, 201).await;
    let again = post_keyed(&app, V1, "key-1", &body).await;
    assert!(replayed(&again));
    assert_eq!(again.headers()["content-type"], "application/json");
    assert_eq!(expect_json(again, 201).await, created);
    assert_eq!(stored_count(&app).await, 1);
}

#[tokio::test]
async fn a_v2_bulk_retry_replays_every_item_and_creates_nothing() {
    let app = TestApp::spawn().await;
    let body = json!([{ "name": "A" }, { "name": "B" }, { "name": "C" }]);
    let created = expect_json(post_keyed(&app, V2, "bulk-1", &body).await, 201).await;
    let again = post_keyed(&app, V2, "bulk-1", &body).await;
    assert!(replayed(&again));
    assert_eq!(expect_json(again, 201).await, created);
    assert_eq!(stored_count(&app).await, 3);
}

#[tokio::test]
async fn the_same_key_with_another_body_is_refused_with_422_and_writes_nothing() {
    let app = TestApp::spawn().await;
    expect_json(post_keyed(&app, V1, "key-2", &json!({ "name": "First" })).await, 201).await;
    let (status, body) = status_json(post_keyed(&app, V1, "key-2", &json!({ "name": "Second" })).await).await;
    assert_eq!(status, 422);
    assert!(body["detail"].as_str().unwrap().contains("different request"), "{body}");
    assert_eq!(stored_count(&app).await, 1);
}

#[tokio::test]
async fn keys_are_separate_per_route_and_requests_without_a_key_are_unchanged() {
    let app = TestApp::spawn().await;
    expect_json(post_keyed(&app, V1, "shared", &json!({ "name": "One" })).await, 201).await;
    expect_json(post_keyed(&app, V2, "shared", &json!([{ "name": "Two" }])).await, 201).await;
    for _ in 0..2 {
        expect_json(app.post_json(V1, &json!({ "name": "Unkeyed" })).await, 201).await;
    }
    assert_eq!(stored_count(&app).await, 4);
}

#[tokio::test]
async fn malformed_keys_are_400_and_write_nothing() {
    let app = TestApp::spawn().await;
    let too_long = "k".repeat(app.config.idempotency.max_key_length + 1);
    for key in ["", "has space", too_long.as_str()] {
        let (status, body) = status_json(post_keyed(&app, V1, key, &json!({ "name": "X" })).await).await;
        assert_eq!(status, 400, "{key:?}: {body}");
        assert!(body["detail"].as_str().unwrap().contains("Idempotency-Key"));
    }
    assert_eq!(stored_count(&app).await, 0);
}

#[tokio::test]
async fn a_client_error_is_not_kept_so_a_corrected_retry_can_use_the_key() {
    let app = TestApp::spawn().await;
    let bad = json!({ "version": 1 });
    let first = expect_json(post_keyed(&app, V1, "bad-body", &bad).await, 422).await;
    let again = post_keyed(&app, V1, "bad-body", &bad).await;
    assert!(!replayed(&again), "a client error is answered afresh, not stored");
    assert_eq!(expect_json(again, 422).await, first);
    let corrected = post_keyed(&app, V1, "bad-body", &json!({ "name": "Fixed" })).await;
    assert!(!replayed(&corrected));
    expect_json(corrected, 201).await;
    assert_eq!(stored_count(&app).await, 1);
}

#[tokio::test]
async fn a_response_too_large_to_keep_is_sent_once_and_replayed_as_a_409() {
    let app = TestApp::builder().with_config(|c| c.idempotency.max_response_bytes = 256).spawn().await;
    let body = json!([{ "name": "x".repeat(200) }, { "name": "y".repeat(200) }]);
    let created = expect_json(post_keyed(&app, V2, "large", &body).await, 201).await;
    assert_eq!(created.as_array().unwrap().len(), 2, "the first answer is whole");
    let again = post_keyed(&app, V2, "large", &body).await;
    assert!(replayed(&again));
    let (status, detail) = status_json(again).await;
    assert_eq!(status, 409, "{detail}");
    assert!(detail["detail"].as_str().unwrap().contains("already succeeded (201)"), "{detail}");
    assert_eq!(stored_count(&app).await, 2, "nothing was written again");
}

#[tokio::test]
async fn a_key_belongs_to_its_caller_and_never_replays_to_another() {
    let app = crate::helpers::protected_app().await;
    let post = |api_key: &'static str, name: &'static str| {
        app.client
            .post(app.url(V1))
            .header("x-api-key", api_key)
            .header("idempotency-key", "predictable-1")
            .json(&json!({ "name": name }))
            .send()
    };
    let alice = expect_json(post("test-write-key", "Alice's").await.unwrap(), 201).await;
    let bob = post("test-admin-key", "Alice's").await.unwrap();
    assert!(!replayed(&bob), "another principal's stored response is never served");
    let bob = expect_json(bob, 201).await;
    assert_ne!(bob["portfolioId"], alice["portfolioId"]);
    let other_body = post("test-admin-key", "Bob's own").await.unwrap();
    assert_eq!(other_body.status(), 422, "bob's key is his own: another body under it is refused");
    let retried = post("test-write-key", "Alice's").await.unwrap();
    assert!(replayed(&retried), "the owner's retry still replays");
    assert_eq!(expect_json(retried, 201).await, alice);
}

#[tokio::test]
async fn concurrent_duplicates_create_exactly_once() {
    let app = Arc::new(TestApp::spawn().await);
    let body = json!([{ "name": "Race 1" }, { "name": "Race 2" }]);
    let attempts = (0..8).map(|_| {
        let (app, body) = (app.clone(), body.clone());
        tokio::spawn(async move { status_json(post_keyed(&app, V2, "race", &body).await).await })
    });
    let mut created = Vec::new();
    for attempt in attempts {
        match attempt.await.unwrap() {
            (201, body) => created.push(body),
            (409, body) => assert!(body["detail"].as_str().unwrap().contains("still being processed")),
            (status, body) => panic!("unexpected {status}: {body}"),
        }
    }
    assert!(!created.is_empty());
    assert!(created.iter().all(|c| *c == created[0]), "every 201 is the one original response");
    assert_eq!(stored_count(&app).await, 2);
}

#[tokio::test]
async fn an_expired_key_can_be_used_again() {
    let app = TestApp::builder()
        .with_config(|c| {
            c.server.request_timeout = Duration::from_millis(200);
            c.idempotency.lease = Duration::from_millis(300);
            c.idempotency.ttl = Duration::from_secs(1);
        })
        .spawn()
        .await;
    expect_json(post_keyed(&app, V1, "short-lived", &json!({ "name": "Old" })).await, 201).await;
    tokio::time::sleep(Duration::from_millis(1100)).await;
    let fresh = post_keyed(&app, V1, "short-lived", &json!({ "name": "New" })).await;
    assert!(!replayed(&fresh));
    expect_json(fresh, 201).await;
    assert_eq!(stored_count(&app).await, 2);
}

#[tokio::test]
async fn with_idempotency_disabled_the_header_is_ignored() {
    let app = TestApp::builder().with_config(|c| c.idempotency.enabled = false).spawn().await;
    for _ in 0..2 {
        expect_json(post_keyed(&app, V1, "ignored", &json!({ "name": "Twice" })).await, 201).await;
    }
    assert_eq!(stored_count(&app).await, 2);
}

/// The real store, except that the first insert commits and then reports a failure, as when
/// the process dies or the connection drops between the commit and the response.
struct LosesFirstResponse(AtomicBool);

impl StoreHook for LosesFirstResponse {
    async fn around<'a, T, F>(&'a self, op: Op, mut call: impl FnMut() -> F + Send + 'a) -> StoreResult<T>
    where
        T: Send + 'a,
        F: Future<Output = StoreResult<T>> + Send + 'a,
    {
        let answer = call().await?;
        if op == Op::InsertMany && !self.0.swap(true, Ordering::SeqCst) {
            return Err(StoreError::Unavailable("connection lost after commit".into()));
        }
        Ok(answer)
    }
}

async fn spawn_losing_first_response() -> TestApp {
    TestApp::builder().wrapping(|inner| Layered::wrap(LosesFirstResponse(AtomicBool::new(false)), inner)).spawn().await
}

#[tokio::test]
async fn a_retry_after_a_lost_response_finds_the_bulk_write_instead_of_repeating_it() {
    let app = spawn_losing_first_response().await;
    let body = json!([{ "name": "Kept 1" }, { "name": "Kept 2", "dateCreated": "2024-01-02T03:04:05Z" }]);
    let (status, _) = status_json(post_keyed(&app, V2, "lost", &body).await).await;
    assert_eq!(status, 503, "the client never saw the write succeed");
    let retry = post_keyed(&app, V2, "lost", &body).await;
    assert!(!replayed(&retry), "recovered from the stored portfolios, not replayed");
    let recovered = expect_json(retry, 201).await;
    let names: Vec<&str> = recovered.as_array().unwrap().iter().map(|p| p["name"].as_str().unwrap()).collect();
    assert_eq!(names, ["Kept 1", "Kept 2"], "in request order");
    assert_eq!(stored_count(&app).await, 2, "written once");
    let replay = post_keyed(&app, V2, "lost", &body).await;
    assert!(replayed(&replay));
    assert_eq!(expect_json(replay, 201).await, recovered);
}

#[tokio::test]
async fn a_retry_after_a_lost_response_finds_the_v1_write_instead_of_repeating_it() {
    let app = spawn_losing_first_response().await;
    let body = json!({ "name": "Once" });
    assert_eq!(post_keyed(&app, V1, "lost-v1", &body).await.status(), 503);
    let recovered = expect_json(post_keyed(&app, V1, "lost-v1", &body).await, 201).await;
    assert_eq!(recovered["name"], "Once");
    let all = expect_json(app.get(V1).await, 200).await;
    assert_eq!(all.as_array().unwrap().len(), 1);
    assert_eq!(all[0]["portfolioId"], recovered["portfolioId"]);
}

#[tokio::test]
async fn the_openapi_document_describes_the_header_on_both_creating_posts() {
    let app = TestApp::spawn().await;
    let doc = expect_json(app.get("/openapi.json").await, 200).await;
    for path in [V1, V2] {
        let params = doc["paths"][path]["post"]["parameters"].as_array().expect("parameters");
        let header = params.iter().find(|p| p["name"] == "Idempotency-Key").expect("Idempotency-Key");
        assert_eq!(header["in"], "header");
        assert_eq!(header["required"], false);
    }
}

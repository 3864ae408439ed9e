//! What clients see when storage fails: the contract's 500 strings per endpoint, 503 with
//! `Retry-After` for transient failures, and a 500 (not a dropped connection) for a panic.

use async_trait::async_trait;
use pfs_domain::{Keyset, NameFilter, PageRequest, Portfolio, PortfolioChanges, PortfolioId, Version};
use pfs_storage::{BackendInfo, PoolStats, PortfolioBatches, PortfolioStore, SearchPage, StoreError, StoreResult};
use pfs_test_support::{TestApp, json};
use std::sync::Arc;
use std::time::Duration;

#[derive(Clone, Copy)]
enum Failure {
    Backend,
    Unavailable,
    Panic,
    /// The list's first batches are read, then the database fails while the rest is sent.
    ListBreaksMidway,
}

/// A store whose every call fails the same way.
struct FailingStore(Failure);

impl FailingStore {
    fn fail<T>(&self) -> StoreResult<T> {
        match self.0 {
            Failure::Backend => Err(StoreError::Backend("disk on fire: secret internals".into())),
            Failure::Unavailable => Err(StoreError::Unavailable("connection refused".into())),
            Failure::Panic => panic!("storage exploded"),
            Failure::ListBreaksMidway => Err(StoreError::Backend("only the list works".into())),
        }
    }
}

#[async_trait]
impl PortfolioStore for FailingStore {
    async fn list_stream(&self) -> StoreResult<PortfolioBatches> {
        let Failure::ListBreaksMidway = self.0 else { return self.fail() };
        let batch = || (0..200).map(|i| Portfolio::new(format!("portfolio {i:0>400}"), None, Version(1))).collect();
        let batches = vec![Ok(batch()), Ok(batch()), Err(StoreError::Unavailable("connection reset".into()))];
        Ok(Box::pin(futures::stream::iter(batches)))
    }
    async fn get(&self, _: PortfolioId) -> StoreResult<Option<Portfolio>> {
        self.fail()
    }
    async fn get_many(&self, _: &[PortfolioId]) -> StoreResult<Vec<Portfolio>> {
        self.fail()
    }
    async fn insert_many(&self, _: &[Portfolio]) -> StoreResult<()> {
        self.fail()
    }
    async fn insert_missing(&self, _: &[Portfolio]) -> StoreResult<u64> {
        self.fail()
    }
    async fn update(&self, _: PortfolioId, _: Version, _: &PortfolioChanges) -> StoreResult<Portfolio> {
        self.fail()
    }
    async fn delete(&self, _: PortfolioId, _: Version) -> StoreResult<()> {
        self.fail()
    }
    async fn search(&self, _: &NameFilter, _: PageRequest) -> StoreResult<SearchPage> {
        self.fail()
    }
    async fn search_after(&self, _: &NameFilter, _: Option<Keyset>, _: u32) -> StoreResult<SearchPage> {
        self.fail()
    }
    async fn ping(&self, _: Duration) -> StoreResult<()> {
        self.fail()
    }
    async fn info(&self) -> StoreResult<BackendInfo> {
        self.fail()
    }
    async fn close(&self) {}
    fn pool_stats(&self) -> Vec<PoolStats> {
        Vec::new()
    }
}

const ID: &str = "6740f1c2a1b2c3d4e5f60718";

async fn detail(response: pfs_test_support::reqwest::Response, status: u16) -> String {
    assert_eq!(response.status(), status);
    let body: serde_json::Value = response.json().await.unwrap();
    body["detail"].as_str().expect("string detail").to_owned()
}

#[tokio::test]
async fn backend_failures_answer_each_endpoints_contract_message_without_internals() {
    let app = TestApp::builder().with_store(Arc::new(FailingStore(Failure::Backend))).spawn().await;
    let put = json!({"portfolioId": ID, "name": "x", "version": 1});
    let v1 = "Internal server error";
    assert_eq!(detail(app.get("/api/v1/portfolios").await, 500).await, v1);
    assert_eq!(detail(app.get(&format!("/api/v1/portfolio/{ID}")).await, 500).await, v1);
    assert_eq!(detail(app.post_json("/api/v1/portfolios", &json!({"name": "x"})).await, 500).await, v1);
    assert_eq!(detail(app.put_json(&format!("/api/v1/portfolio/{ID}"), &put).await, 500).await, v1);
    assert_eq!(detail(app.delete(&format!("/api/v1/portfolio/{ID}?version=1")).await, 500).await, v1);
    assert_eq!(
        detail(app.get("/api/v2/portfolios").await, 500).await,
        "An unexpected error occurred while searching portfolios"
    );
    assert_eq!(
        detail(app.post_json("/api/v2/portfolios", &json!([{"name": "x"}])).await, 500).await,
        "An unexpected error occurred while creating portfolios"
    );
}

#[tokio::test]
async fn client_errors_are_still_reported_before_storage_is_touched() {
    let app = TestApp::builder().with_store(Arc::new(FailingStore(Failure::Backend))).spawn().await;
    assert_eq!(app.get("/api/v1/portfolio/not-an-id").await.status(), 404);
    assert_eq!(app.get("/api/v2/portfolios?limit=0").await.status(), 422);
    assert_eq!(app.post_json("/api/v2/portfolios", &json!([])).await.status(), 400);
}

#[tokio::test]
async fn an_unreachable_database_is_a_fast_503_with_retry_after_and_not_ready() {
    let app = TestApp::builder().with_store(Arc::new(FailingStore(Failure::Unavailable))).spawn().await;
    let response = app.get("/api/v2/portfolios").await;
    assert_eq!(response.headers()["retry-after"], "1");
    assert_eq!(detail(response, 503).await, "Service temporarily unavailable");
    assert_eq!(app.get("/health/ready").await.status(), 503);
    assert_eq!(app.get("/health/detailed").await.status(), 503);
    assert_eq!(app.get("/health/live").await.status(), 200, "liveness does not depend on the database");
}

#[tokio::test]
async fn a_panicking_handler_answers_500_and_the_server_keeps_serving() {
    let app = TestApp::builder().with_store(Arc::new(FailingStore(Failure::Panic))).spawn().await;
    let response = app.get("/api/v1/portfolios").await;
    assert!(response.headers().contains_key("x-request-id"));
    assert_eq!(detail(response, 500).await, "Internal server error");
    assert_eq!(app.get("/health").await.status(), 200);
}

#[tokio::test]
async fn a_list_failing_after_its_response_started_is_cut_short_never_a_shorter_valid_array() {
    let app = TestApp::builder().with_store(Arc::new(FailingStore(Failure::ListBreaksMidway))).spawn().await;
    // The first batches were read before the status was decided, so it is a 200; whether the
    // client gets the head before the connection is aborted depends on timing. Either way the
    // transfer breaks: it must never end as a complete (shorter) array.
    match app.client.get(app.url("/api/v1/portfolios")).send().await {
        Ok(response) => {
            assert_eq!(response.status(), 200);
            let body = response.bytes().await;
            assert!(body.is_err(), "a broken transfer, not {} bytes", body.map_or(0, |b| b.len()));
        }
        Err(err) => assert!(err.is_request() || err.is_body(), "{err:?}"),
    }
    assert_eq!(app.get("/health").await.status(), 200, "the server goes on serving");
}

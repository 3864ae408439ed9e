//! `portfolio-service worker` processes next to an API-only `serve`, on one PostgreSQL schema:
//! a worker stopped by SIGTERM hands its job back, a worker killed with SIGKILL loses it until
//! its lease expires, and the job still loads every portfolio exactly once.

use pfs_storage_postgres::testing::TestSchema;
use pfs_test_support::{ServiceCommand, eventually};
use serde_json::{Value, json};
use std::time::Duration;

const BIN: &str = env!("CARGO_BIN_EXE_portfolio-service");
const PORTFOLIOS: usize = 1500;

/// `args` on the shared schema, with jobs slow enough to stop a worker in the middle of one.
fn process(args: &[&str], database_url: &str) -> ServiceCommand {
    ServiceCommand::new(BIN)
        .args(args)
        .env("PORTFOLIO_DATABASE_URL", database_url)
        .env("PORTFOLIO_DATABASE__MIGRATE_ON_START", "false")
        .env("PORTFOLIO_LOG_LEVEL", "warn")
        // One portfolio per batch: slow enough to stop the worker in the middle of the job.
        .env("PORTFOLIO_JOBS__IMPORT_BATCH_SIZE", "1")
        .env("PORTFOLIO_JOBS__LEASE", "1s")
        .env("PORTFOLIO_JOBS__POLL_INTERVAL", "50ms")
}

async fn job_until(client: &reqwest::Client, url: &str, what: &str, done: impl Fn(&Value) -> bool) -> Value {
    let mut job = Value::Null;
    eventually(Duration::from_secs(60), what, async || {
        job = match client.get(url).send().await {
            Ok(response) => response.json().await.unwrap_or_default(),
            Err(_) => Value::Null,
        };
        done(&job)
    })
    .await;
    job
}

fn processed(job: &Value) -> u64 {
    job["progress"]["processed"].as_u64().unwrap_or(0)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn worker_processes_survive_sigterm_and_sigkill_with_every_portfolio_loaded_once() {
    let schema = TestSchema::create().await;
    let url = schema.url();
    let migrated = ServiceCommand::new(BIN).args(["migrate", "up"]).env("PORTFOLIO_DATABASE_URL", &url).run().await;
    assert!(migrated.status.success(), "migrate up: {migrated:?}");

    let api = process(&["serve"], &url).env("PORTFOLIO_JOBS__WORKERS_ENABLED", "false").start().await;
    let client = reqwest::Client::new();
    let items: Vec<Value> = (0..PORTFOLIOS).map(|i| json!({"name": format!("p{i}")})).collect();
    let response = client.post(api.url("/api/v2/portfolios/imports")).json(&items).send().await.unwrap();
    assert_eq!(response.status(), 202);
    let job_url = api.url(response.headers()["location"].to_str().unwrap());

    // SIGTERM in the middle: the job goes back to the queue, its progress kept, no attempt used.
    let mut first = process(&["worker"], &url).spawn();
    job_until(&client, &job_url, "first worker started", |job| processed(job) > 0).await;
    assert!(first.terminate().await.success(), "a worker exits cleanly on SIGTERM");
    let released = job_until(&client, &job_url, "released", |job| job["state"] == "queued").await;
    assert_eq!(released["attempts"], 0, "{released}");
    let resumed_from = processed(&released);
    assert!(resumed_from > 0 && resumed_from < PORTFOLIOS as u64, "{released}");

    // SIGKILL in the middle: the job stays running (with a dead lease) until another worker
    // takes it over once the lease has expired.
    let mut second = process(&["worker"], &url).spawn();
    job_until(&client, &job_url, "second worker progressed", |job| processed(job) > resumed_from).await;
    assert!(!second.kill().await.success());
    let abandoned = expect_running(&client, &job_url).await;
    assert_eq!(abandoned["attempts"], 1);

    let _third = process(&["worker"], &url).spawn();
    let done = job_until(&client, &job_url, "job finished", |job| job["state"] == "succeeded").await;
    assert_eq!(done["attempts"], 2, "{done}");
    assert_eq!(done["progress"], json!({"processed": PORTFOLIOS, "total": PORTFOLIOS}));
    let counts = &done["counts"];
    let created = counts["created"].as_u64().unwrap();
    let skipped = counts["skippedExisting"].as_u64().unwrap();
    assert_eq!(created + skipped, PORTFOLIOS as u64, "{done}");
    assert!(skipped <= 1, "at most the batch the killed worker committed without checkpointing: {done}");
    let all: Vec<Value> = client.get(api.url("/api/v1/portfolios")).send().await.unwrap().json().await.unwrap();
    assert_eq!(all.len(), PORTFOLIOS, "every portfolio stored exactly once");
}

async fn expect_running(client: &reqwest::Client, url: &str) -> Value {
    let job: Value = client.get(url).send().await.unwrap().json().await.unwrap();
    assert_eq!(job["state"], "running", "a killed worker cannot hand its job back: {job}");
    job
}

//! `portfolio-service worker` processes next to an API-only `serve`, on one PostgreSQL schema:
//! a worker stopped by SIGTERM hands its job back, a worker killed with SIGKILL loses it until
//! its lease expires, and the job still loads every portfolio exactly once.

use pfs_storage_postgres::testing::TestSchema;
use serde_json::{Value, json};
use std::net::TcpListener;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

const BIN: &str = env!("CARGO_BIN_EXE_portfolio-service");
const PORTFOLIOS: usize = 1500;

/// A child process, killed if the test fails first.
struct Process(Child);

impl Process {
    fn start(args: &[&str], database_url: &str, env: &[(&str, &str)]) -> Self {
        let mut command = Command::new(BIN);
        command
            .args(args)
            .env("PORTFOLIO_DATABASE_URL", database_url)
            .env("PORTFOLIO_DATABASE__MIGRATE_ON_START", "false")
            .env("PORTFOLIO_LOG_LEVEL", "warn")
            // One portfolio per batch: slow enough to stop the worker in the middle of the job.
            .env("PORTFOLIO_JOBS__IMPORT_BATCH_SIZE", "1")
            .env("PORTFOLIO_JOBS__LEASE", "1s")
            .env("PORTFOLIO_JOBS__POLL_INTERVAL", "50ms")
            .stdout(Stdio::null())
            .stderr(Stdio::inherit());
        for (key, value) in env {
            command.env(key, value);
        }
        Self(command.spawn().expect("start portfolio-service"))
    }

    fn signal(&mut self, signal: &str) -> std::process::ExitStatus {
        Command::new("kill").args([signal, &self.0.id().to_string()]).status().expect("kill");
        let deadline = Instant::now() + Duration::from_secs(10);
        loop {
            if let Some(status) = self.0.try_wait().unwrap() {
                return status;
            }
            assert!(Instant::now() < deadline, "process did not stop within 10 s of {signal}");
            std::thread::sleep(Duration::from_millis(20));
        }
    }
}

impl Drop for Process {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

async fn job_until(client: &reqwest::Client, url: &str, what: &str, done: impl Fn(&Value) -> bool) -> Value {
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        if let Ok(response) = client.get(url).send().await
            && let Ok(body) = response.json::<Value>().await
            && done(&body)
        {
            return body;
        }
        assert!(Instant::now() < deadline, "{what}: not within 60 s");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

fn processed(job: &Value) -> u64 {
    job["progress"]["processed"].as_u64().unwrap_or(0)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn worker_processes_survive_sigterm_and_sigkill_with_every_portfolio_loaded_once() {
    let schema = TestSchema::create().await;
    let url = schema.url();
    let migrated = Command::new(BIN).args(["migrate", "up"]).env("PORTFOLIO_DATABASE_URL", &url).status().unwrap();
    assert!(migrated.success(), "migrate up");

    let port = TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port();
    let api_env = [
        ("PORTFOLIO_HOST", "127.0.0.1"),
        ("PORTFOLIO_PORT", &port.to_string()),
        ("PORTFOLIO_JOBS__WORKERS_ENABLED", "false"),
    ];
    let _api = Process::start(&["serve"], &url, &api_env);
    let base = format!("http://127.0.0.1:{port}");
    let client = reqwest::Client::new();
    let items: Vec<Value> = (0..PORTFOLIOS).map(|i| json!({"name": format!("p{i}")})).collect();
    let deadline = Instant::now() + Duration::from_secs(20);
    let response = loop {
        match client.post(format!("{base}/api/v2/portfolios/imports")).json(&items).send().await {
            Ok(response) => break response,
            Err(_) if Instant::now() < deadline => tokio::time::sleep(Duration::from_millis(50)).await,
            Err(err) => panic!("API not up: {err}"),
        }
    };
    assert_eq!(response.status(), 202);
    let job_url = format!("{base}{}", response.headers()["location"].to_str().unwrap());

    // SIGTERM in the middle: the job goes back to the queue, its progress kept, no attempt used.
    let mut first = Process::start(&["worker"], &url, &[]);
    job_until(&client, &job_url, "first worker started", |job| processed(job) > 0).await;
    assert!(first.signal("-TERM").success(), "a worker exits cleanly on SIGTERM");
    let released = job_until(&client, &job_url, "released", |job| job["state"] == "queued").await;
    assert_eq!(released["attempts"], 0, "{released}");
    let resumed_from = processed(&released);
    assert!(resumed_from > 0 && resumed_from < PORTFOLIOS as u64, "{released}");

    // SIGKILL in the middle: the job stays running (with a dead lease) until another worker
    // takes it over once the lease has expired.
    let mut second = Process::start(&["worker"], &url, &[]);
    job_until(&client, &job_url, "second worker progressed", |job| processed(job) > resumed_from).await;
    assert!(!second.signal("-KILL").success());
    let abandoned = expect_running(&client, &job_url).await;
    assert_eq!(abandoned["attempts"], 1);

    let _third = Process::start(&["worker"], &url, &[]);
    let done = job_until(&client, &job_url, "job finished", |job| job["state"] == "succeeded").await;
    assert_eq!(done["attempts"], 2, "{done}");
    assert_eq!(done["progress"], json!({"processed": PORTFOLIOS, "total": PORTFOLIOS}));
    let counts = &done["counts"];
    let created = counts["created"].as_u64().unwrap();
    let skipped = counts["skippedExisting"].as_u64().unwrap();
    assert_eq!(created + skipped, PORTFOLIOS as u64, "{done}");
    assert!(skipped <= 1, "at most the batch the killed worker committed without checkpointing: {done}");
    let all: Vec<Value> = client.get(format!("{base}/api/v1/portfolios")).send().await.unwrap().json().await.unwrap();
    assert_eq!(all.len(), PORTFOLIOS, "every portfolio stored exactly once");
}

async fn expect_running(client: &reqwest::Client, url: &str) -> Value {
    let job: Value = client.get(url).send().await.unwrap().json().await.unwrap();
    assert_eq!(job["state"], "running", "a killed worker cannot hand its job back: {job}");
    job
}

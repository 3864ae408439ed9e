//! `serve` started while its database (or Redis) is down: it starts anyway, answers liveness
//! and `/`, reports readiness and startup 503 naming what it waits for, logs one short line
//! per failed attempt, and becomes ready by itself once the dependency appears. One-shot
//! commands still fail fast.

#[path = "../../app/tests/faults/pg_process.rs"]
mod pg_process;

use pfs_redis::testing::RedisProcess;
use pg_process::PgProcess;
use serde_json::{Value, json};
use std::net::TcpListener;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

const BIN: &str = env!("CARGO_BIN_EXE_portfolio-service");

/// A `serve` process on a free port whose output goes to a file, stopped on drop.
struct Service {
    child: Child,
    base: String,
    log: PathBuf,
    _dir: tempfile::TempDir,
}

impl Service {
    fn start(env: &[(&str, &str)]) -> Self {
        let dir = tempfile::tempdir().expect("temp dir");
        let port = free_port();
        let log = dir.path().join("service.log");
        let output = std::fs::File::create(&log).expect("log file");
        let mut command = Command::new(BIN);
        command
            .args(["serve", "--host", "127.0.0.1", "--port", &port.to_string()])
            .env("PORTFOLIO_DATA_DIR", dir.path())
            .env("PORTFOLIO_LOG_LEVEL", "warn")
            .env("PORTFOLIO_LOG_FORMAT", "pretty")
            .env("PORTFOLIO_RELIABILITY__CONNECT_RETRY_MIN_DELAY", "100ms")
            .env("PORTFOLIO_RELIABILITY__CONNECT_RETRY_MAX_DELAY", "500ms")
            .env("PORTFOLIO_DATABASE__ACQUIRE_TIMEOUT", "1s")
            .stdout(output.try_clone().expect("log file"))
            .stderr(output);
        for (key, value) in env {
            command.env(key, value);
        }
        let child = command.spawn().expect("start portfolio-service");
        Self { child, base: format!("http://127.0.0.1:{port}"), log, _dir: dir }
    }

    fn url(&self, path: &str) -> String {
        format!("{}{path}", self.base)
    }

    fn log(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }

    /// Waits (bounded) until `path` answers `status`; returns the last body.
    async fn until(&mut self, path: &str, status: u16, within: Duration) -> Value {
        let deadline = Instant::now() + within;
        let client = reqwest::Client::new();
        loop {
            if let Some(exit) = self.child.try_wait().expect("process status") {
                panic!("serve exited ({exit}) while waiting for {path}:\n{}", self.log());
            }
            if let Ok(response) = client.get(self.url(path)).send().await
                && response.status().as_u16() == status
            {
                return response.json().await.unwrap_or(Value::Null);
            }
            assert!(Instant::now() < deadline, "{path} did not answer {status} within {within:?}:\n{}", self.log());
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }
}

impl Drop for Service {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0").and_then(|l| l.local_addr()).expect("free port").port()
}

/// Liveness and the banner answer; readiness and startup are 503 naming `dependency` and
/// its last error, on one line.
async fn assert_waiting_for(service: &mut Service, dependency: &str) -> Value {
    service.until("/health/live", 200, Duration::from_secs(20)).await;
    service.until("/", 200, Duration::from_secs(1)).await;
    // The first attempt has been counted once the probe reports it.
    let mut ready = service.until("/health/ready", 503, Duration::from_secs(5)).await;
    let deadline = Instant::now() + Duration::from_secs(10);
    while ready["checks"][dependency]["attempts"].as_u64().unwrap_or(0) == 0 {
        assert!(Instant::now() < deadline, "no failed attempt reported: {ready}");
        ready = service.until("/health/ready", 503, Duration::from_secs(5)).await;
    }
    assert_eq!(ready["status"], "not_ready");
    assert_eq!(ready["waiting_for"], json!([dependency]), "{ready}");
    let error = ready["checks"][dependency]["error"].as_str().expect("the last error");
    assert!(!error.is_empty() && !error.contains('\n') && error.len() <= 400, "{error:?}");
    let startup = service.until("/health/startup", 503, Duration::from_secs(1)).await;
    assert_eq!((startup["status"].as_str(), startup["waiting_for"].clone()), (Some("starting"), json!([dependency])));
    let detailed =
        reqwest::get(service.url("/health/detailed")).await.expect("GET").json::<Value>().await.expect("JSON");
    assert_eq!(detailed["startup"], json!({"complete": false, "waiting_for": [dependency]}), "{detailed}");
    ready
}

/// One WARN line per failed attempt, short, naming the dependency: never a driver dump.
fn assert_concise_warnings(log: &str, dependency: &str) {
    let attempts: Vec<&str> =
        log.lines().filter(|l| l.contains(&format!("{dependency} unreachable (attempt"))).collect();
    assert!(!attempts.is_empty(), "no attempt logged:\n{log}");
    for line in &attempts {
        assert!(line.contains("WARN") && line.len() < 700, "{line}");
    }
    assert!(!log.contains("Topology"), "a driver topology dump reached the log:\n{log}");
}

/// A portfolio created, read and deleted through the service.
async fn crud_round_trip(service: &Service) {
    let client = reqwest::Client::new();
    let created: Value = client
        .post(service.url("/api/v1/portfolios"))
        .json(&json!({"name": "Back Online"}))
        .send()
        .await
        .expect("POST")
        .json()
        .await
        .expect("JSON");
    let id = created["portfolioId"].as_str().unwrap_or_else(|| panic!("not created: {created}"));
    let read = client.get(service.url(&format!("/api/v1/portfolio/{id}"))).send().await.expect("GET");
    assert_eq!(read.status(), 200);
    let deleted =
        client.delete(service.url(&format!("/api/v1/portfolio/{id}?version=1"))).send().await.expect("DELETE");
    assert_eq!(deleted.status(), 204);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn serve_starts_with_postgresql_down_and_is_ready_once_it_is_up_with_the_charts_pool_size() {
    let mut postgres = PgProcess::start();
    postgres.stop();
    let url = postgres.url();
    let mut service =
        Service::start(&[("PORTFOLIO_DATABASE_URL", &url), ("MAX_POOL_SIZE", "50"), ("MIN_POOL_SIZE", "10")]);
    let ready = assert_waiting_for(&mut service, "database").await;
    assert!(ready["checks"]["database"]["error"].as_str().unwrap().contains("refused"), "{ready}");
    let refused = reqwest::get(service.url("/api/v1/portfolios")).await.expect("GET");
    assert_eq!(refused.status(), 503, "data routes answer 503 until the database is there");
    assert!(refused.headers().contains_key("retry-after"));

    postgres.restart();
    service.until("/health/ready", 200, Duration::from_secs(30)).await;
    service.until("/health/startup", 200, Duration::from_secs(1)).await;
    crud_round_trip(&service).await;
    // The original's MAX_POOL_SIZE sized the pool.
    let metrics = reqwest::get(service.url("/metrics")).await.expect("GET").text().await.expect("text");
    let max = metrics.lines().find(|l| l.starts_with("db_client_connections_max{") && l.contains("writer"));
    assert!(max.is_some_and(|l| l.ends_with(" 50")), "{max:?}");
    assert_concise_warnings(&service.log(), "database");
}

/// Forwards every connection on `listener` to `target`: the MongoDB server "appears" on a
/// port that refused connections until now.
fn forward(listener: tokio::net::TcpListener, target: String) {
    tokio::spawn(async move {
        while let Ok((mut inbound, _)) = listener.accept().await {
            let target = target.clone();
            tokio::spawn(async move {
                if let Ok(mut outbound) = tokio::net::TcpStream::connect(target).await {
                    let _ = tokio::io::copy_bidirectional(&mut inbound, &mut outbound).await;
                }
            });
        }
    });
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn serve_starts_with_mongodb_down_through_the_originals_variables_and_is_ready_once_it_is_up() {
    let database = pfs_storage_mongo::testing::TestDatabase::create().await;
    let target = database.url().trim_start_matches("mongodb://").split(['/', '?']).next().unwrap().to_owned();
    let port = free_port();
    let uri = format!("mongodb://127.0.0.1:{port}/?directConnection=true");
    let mut service = Service::start(&[("MONGODB_URI", &uri), ("MONGODB_DB", database.name())]);
    let ready = assert_waiting_for(&mut service, "database").await;
    let error = ready["checks"]["database"]["error"].as_str().unwrap();
    assert!(error.contains(&format!("127.0.0.1:{port}")) && !error.contains("Topology"), "{error}");

    forward(tokio::net::TcpListener::bind(("127.0.0.1", port)).await.expect("bind the port"), target);
    service.until("/health/ready", 200, Duration::from_secs(30)).await;
    crud_round_trip(&service).await;
    assert_concise_warnings(&service.log(), "database");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn serve_starts_with_redis_down_and_is_ready_once_it_is_up() {
    let mut redis = RedisProcess::start();
    redis.kill();
    let url = redis.url();
    let mut service = Service::start(&[("PORTFOLIO_REDIS_URL", &url)]);
    let ready = assert_waiting_for(&mut service, "redis").await;
    assert_eq!(ready["checks"]["database"]["status"], "ready", "the database itself was reached: {ready}");

    redis.restart();
    service.until("/health/ready", 200, Duration::from_secs(30)).await;
    crud_round_trip(&service).await;
    assert_concise_warnings(&service.log(), "redis");
}

/// Runs a one-shot command; returns its exit status, stderr and how long it took.
fn one_shot(args: &[&str], env: &[(&str, &str)], dir: &Path) -> (bool, String, Duration) {
    let started = Instant::now();
    let output = Command::new(BIN)
        .args(args)
        .env("PORTFOLIO_DATA_DIR", dir)
        .envs(env.iter().copied())
        .stdin(Stdio::null())
        .output()
        .expect("run portfolio-service");
    (output.status.success(), String::from_utf8_lossy(&output.stderr).into_owned(), started.elapsed())
}

#[test]
fn one_shot_commands_fail_fast_with_one_clear_line_when_the_database_is_down() {
    let dir = tempfile::tempdir().expect("temp dir");
    let closed = free_port();
    let postgres = format!("postgres://postgres@127.0.0.1:{closed}/postgres");
    let mongo = format!("mongodb://127.0.0.1:{closed}/?directConnection=true");
    let export = dir.path().join("export.json");
    std::fs::write(&export, "{\"name\": \"x\"}\n").expect("export file");
    let export = export.display().to_string();
    for (args, url) in [
        (vec!["migrate", "up"], &postgres),
        (vec!["import", export.as_str()], &postgres),
        (vec!["migrate", "up"], &mongo),
    ] {
        let env = [("PORTFOLIO_DATABASE_URL", url.as_str()), ("PORTFOLIO_LOG_LEVEL", "off")];
        let (ok, stderr, took) = one_shot(&args, &env, dir.path());
        assert!(!ok, "{args:?} against {url} succeeded");
        assert!(took < Duration::from_secs(8), "{args:?} took {took:?}");
        let lines: Vec<&str> = stderr.lines().filter(|l| !l.trim().is_empty()).collect();
        assert_eq!(lines.len(), 1, "{args:?}: expected one line, got:\n{stderr}");
        let line = lines[0];
        assert!(line.starts_with("error: connecting to ") && line.contains(&format!("127.0.0.1:{closed}")), "{line}");
        assert!(line.len() < 500 && !line.contains("Topology"), "{line}");
    }
}

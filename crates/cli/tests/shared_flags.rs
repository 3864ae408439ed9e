//! Runtime flags across replicas: two `serve` processes sharing one Redis, each with its own
//! configuration file (as a ConfigMap mounts one into every pod). A flag set through the admin
//! API on one replica is in force on the other within a second, `/health/detailed` names where
//! each value came from, a reload that changes other keys keeps the admin's value, and a
//! reload that changes the same key gives it back to the file on every replica.

use pfs_redis::testing::RedisProcess;
use pfs_test_support::{ServiceCommand, ServiceProcess, eventually};
use serde_json::{Value, json};
use std::path::{Path, PathBuf};
use std::time::Duration;

const BIN: &str = env!("CARGO_BIN_EXE_portfolio-service");
/// `config hash-key` of `test-admin-key`.
const ADMIN: &str = "admin:ops:944650a7cd0f9e14d5c4fb15edbffb7fa45fb9ed36a4fa9be3d7e5476ae51bd9";
const ADMIN_KEY: &str = "test-admin-key";

fn flags_file(trace_sample_ratio: f64, log_sample_rate: f64) -> String {
    format!(
        "[observability]\nconfig_reload_interval = \"100ms\"\n\n[observability.flags]\n\
         trace_sample_ratio = {trace_sample_ratio}\nlog_sample_rate = {log_sample_rate}\n"
    )
}

/// Replaces the file as a ConfigMap update does: a new file renamed over the old one.
fn rewrite(path: &Path, content: &str) {
    let next = path.with_extension("next");
    std::fs::write(&next, content).unwrap();
    std::fs::rename(next, path).unwrap();
}

fn replica(redis_url: &str, config: &Path) -> ServiceProcess {
    ServiceCommand::new(BIN)
        .arg("serve")
        .env("PORTFOLIO_REDIS_URL", redis_url)
        .env("PORTFOLIO_CONFIG_FILE", config)
        .env("PORTFOLIO_AUTH__ENABLED", "true")
        .env("PORTFOLIO_AUTH__API_KEYS", ADMIN)
        .env("PORTFOLIO_LOG_LEVEL", "warn")
        .spawn()
}

async fn detailed(client: &reqwest::Client, replica: &ServiceProcess) -> Value {
    let response = client.get(replica.url("/health/detailed")).header("x-api-key", ADMIN_KEY).send().await.unwrap();
    response.json().await.unwrap_or_default()
}

/// `(value, source)` of `flag` as `/health/detailed` reports it.
async fn flag(client: &reqwest::Client, replica: &ServiceProcess, flag: &str) -> (Value, Value) {
    let body = detailed(client, replica).await;
    (body["runtime_flags"][flag].clone(), body["runtime_flag_sources"][flag].clone())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_admin_change_reaches_every_replica_and_the_file_wins_only_for_keys_it_changes() {
    let redis = RedisProcess::start();
    let dir = tempfile::tempdir().unwrap();
    let files: Vec<PathBuf> = ["a.toml", "b.toml"].iter().map(|name| dir.path().join(name)).collect();
    for file in &files {
        std::fs::write(file, flags_file(1.0, 1.0)).unwrap();
    }
    let mut replicas: Vec<ServiceProcess> = files.iter().map(|file| replica(&redis.url(), file)).collect();
    let client = reqwest::Client::new();
    for replica in &mut replicas {
        replica.ready().await;
        eventually(Duration::from_secs(30), "Redis connected", async || {
            detailed(&client, replica).await["checks"]["redis"]["status"] == "connected"
        })
        .await;
    }
    let (a, b) = (&replicas[0], &replicas[1]);
    assert_eq!(flag(&client, b, "trace_sample_ratio").await, (json!(1.0), json!("configuration")));

    let patched = client
        .patch(a.url("/admin/flags"))
        .header("x-api-key", ADMIN_KEY)
        .json(&json!({"trace_sample_ratio": 0.25}))
        .send()
        .await
        .unwrap();
    assert_eq!(patched.status(), 200);
    let took = eventually(Duration::from_secs(1), "the change in force on the other replica", async || {
        flag(&client, b, "trace_sample_ratio").await == (json!(0.25), json!("admin"))
    })
    .await;
    eprintln!("an admin change reached the other replica in {took:?}");
    assert_eq!(flag(&client, a, "trace_sample_ratio").await, (json!(0.25), json!("admin")));

    // The ConfigMap changes another key: it applies, and the admin's value stays.
    for file in &files {
        rewrite(file, &flags_file(1.0, 0.5));
    }
    for replica in [a, b] {
        eventually(Duration::from_secs(5), "the file's other key reloaded", async || {
            flag(&client, replica, "log_sample_rate").await == (json!(0.5), json!("configuration"))
        })
        .await;
        assert_eq!(flag(&client, replica, "trace_sample_ratio").await, (json!(0.25), json!("admin")));
    }

    // The ConfigMap changes the same key: the file wins on every replica.
    for file in &files {
        rewrite(file, &flags_file(0.1, 0.5));
    }
    for replica in [a, b] {
        eventually(Duration::from_secs(5), "the file's value of the same key in force", async || {
            flag(&client, replica, "trace_sample_ratio").await == (json!(0.1), json!("configuration"))
        })
        .await;
    }

    // A replica started now finds no stale override in Redis.
    let mut c = replica(&redis.url(), &files[0]);
    c.ready().await;
    eventually(Duration::from_secs(30), "the new replica's Redis connected", async || {
        detailed(&client, &c).await["checks"]["redis"]["status"] == "connected"
    })
    .await;
    assert_eq!(flag(&client, &c, "trace_sample_ratio").await, (json!(0.1), json!("configuration")));
    for replica in replicas.into_iter().chain([c]) {
        replica.stop().await;
    }
}

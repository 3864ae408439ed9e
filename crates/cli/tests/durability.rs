//! SIGKILL of the real `portfolio-service` during a sustained write load (v1 creates and v2
//! bulk creates), then a restart on the same database: every write acknowledged with 2xx
//! before the kill is there, and every bulk request is applied whole or not at all. On SQLite
//! and on PostgreSQL.

use pfs_storage_postgres::testing::TestSchema;
use pfs_test_support::{ServiceCommand, ServiceProcess};
use serde_json::{Value, json};
use std::collections::{HashMap, HashSet};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

const BIN: &str = env!("CARGO_BIN_EXE_portfolio-service");
const BULK: usize = 10;
const KILLS: usize = 2;

/// The service on `database_url`, ready; errors only, so logging costs the load nothing.
async fn start(database_url: &str) -> ServiceProcess {
    let command = ServiceCommand::new(BIN).arg("serve").env("PORTFOLIO_LOG_LEVEL", "error");
    command.env("PORTFOLIO_DATABASE_URL", database_url).start().await
}

/// What the writers know: the ids the service acknowledged, and the name prefix of every bulk
/// request sent (acknowledged or not).
#[derive(Default)]
struct Ledger {
    acknowledged: Vec<String>,
    bulk_sent: Vec<String>,
    bulk_acknowledged: usize,
}

async fn write_until_stopped(base: String, worker: usize, round: usize, stop: Arc<AtomicBool>) -> Ledger {
    let client = reqwest::Client::builder().timeout(Duration::from_secs(10)).build().unwrap();
    let mut ledger = Ledger::default();
    for n in 0.. {
        if stop.load(Ordering::Relaxed) {
            break;
        }
        let response = if n % 2 == 0 {
            client.post(format!("{base}/api/v1/portfolios")).json(&json!({"name": format!("v1-{round}-{worker}-{n}")}))
        } else {
            let prefix = format!("bulk-{round}-{worker}-{n}-");
            let items: Vec<Value> = (0..BULK).map(|i| json!({"name": format!("{prefix}{i}")})).collect();
            ledger.bulk_sent.push(prefix);
            client.post(format!("{base}/api/v2/portfolios")).json(&items)
        }
        .send()
        .await;
        // Connection refused or reset: the process is gone; the writers stop on their own.
        let Ok(response) = response else { break };
        if !response.status().is_success() {
            continue;
        }
        let Ok(body) = response.json::<Value>().await else { break };
        match body {
            Value::Array(items) => {
                assert_eq!(items.len(), BULK);
                ledger.bulk_acknowledged += 1;
                ledger.acknowledged.extend(items.iter().map(|p| p["portfolioId"].as_str().unwrap().to_owned()));
            }
            one => ledger.acknowledged.push(one["portfolioId"].as_str().unwrap().to_owned()),
        }
    }
    ledger
}

async fn kill_during_writes_then_check(database_url: &str, backend: &str) {
    let mut ledger = Ledger::default();
    for round in 0..KILLS {
        let mut service = start(database_url).await;
        let stop = Arc::new(AtomicBool::new(false));
        let writers: Vec<_> =
            (0..4).map(|w| tokio::spawn(write_until_stopped(service.url(""), w, round, stop.clone()))).collect();
        tokio::time::sleep(Duration::from_millis(1500)).await;
        service.kill().await;
        stop.store(true, Ordering::Relaxed);
        for writer in writers {
            let done = writer.await.unwrap();
            ledger.acknowledged.extend(done.acknowledged);
            ledger.bulk_sent.extend(done.bulk_sent);
            ledger.bulk_acknowledged += done.bulk_acknowledged;
        }
    }

    let service = start(database_url).await;
    let stored: Vec<Value> =
        reqwest::get(service.url("/api/v1/portfolios")).await.unwrap().json().await.expect("the v1 list");
    let ids: HashSet<&str> = stored.iter().map(|p| p["portfolioId"].as_str().unwrap()).collect();
    let lost: Vec<&String> = ledger.acknowledged.iter().filter(|id| !ids.contains(id.as_str())).collect();
    let mut per_bulk: HashMap<&str, usize> = HashMap::new();
    for name in stored.iter().map(|p| p["name"].as_str().unwrap()) {
        if let Some(cut) = name.rfind('-').filter(|_| name.starts_with("bulk-")) {
            *per_bulk.entry(&name[..=cut]).or_default() += 1;
        }
    }
    let partial: Vec<_> = ledger
        .bulk_sent
        .iter()
        .filter_map(|prefix| per_bulk.get(prefix.as_str()).filter(|n| **n != BULK).map(|n| (prefix, *n)))
        .collect();
    eprintln!(
        "{backend}: {KILLS} SIGKILLs; {} writes acknowledged ({} bulk requests of {BULK}), {} bulk requests sent, \
         {} portfolios stored; lost {}, half-applied bulk requests {}",
        ledger.acknowledged.len(),
        ledger.bulk_acknowledged,
        ledger.bulk_sent.len(),
        stored.len(),
        lost.len(),
        partial.len()
    );
    assert!(ledger.acknowledged.len() > 50, "the load was too light to prove anything");
    assert!(lost.is_empty(), "acknowledged writes lost: {lost:?}");
    assert!(partial.is_empty(), "bulk requests applied in part: {partial:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sigkill_during_writes_loses_nothing_on_sqlite() {
    let dir = tempfile::tempdir().unwrap();
    let url = format!("sqlite://{}/portfolio.db", dir.path().display());
    kill_during_writes_then_check(&url, "sqlite").await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sigkill_during_writes_loses_nothing_on_postgres() {
    let schema = TestSchema::create().await;
    kill_during_writes_then_check(&schema.url(), "postgres").await;
}

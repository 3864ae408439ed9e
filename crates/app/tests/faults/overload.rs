//! Ten times the sustainable concurrency: admitted requests keep a bounded latency, the excess
//! gets 503 + `Retry-After` quickly, nothing hangs, and health probes are never shed.
//!
//! "Sustainable" is made exact by a store whose searches take 25 ms (real SQLite plus a fixed
//! delay standing in for a slow query) behind a limit of 8 requests in flight; 80 clients
//! send back to back. Counts are asserted, not timings; the timings are printed for the docs.

use crate::{HANG, percentile, send, summary};
use pfs_platform::{Config, ConfigSources};
use pfs_storage::{Layered, Op, StoreHook, StoreResult};
use pfs_storage_sqlite::{SqliteSettings, SqliteStore};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};
use tokio_util::sync::CancellationToken;

const LIMIT: usize = 8;
const CLIENTS: usize = 80;
const QUERY: Duration = Duration::from_millis(25);

/// Searches take `QUERY` longer than the database does.
struct SlowSearches;

impl StoreHook for SlowSearches {
    async fn around<'a, T, F>(&'a self, op: Op, mut call: impl FnMut() -> F + Send + 'a) -> StoreResult<T>
    where
        T: Send + 'a,
        F: Future<Output = StoreResult<T>> + Send + 'a,
    {
        if op == Op::Search {
            tokio::time::sleep(QUERY).await;
        }
        call().await
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn ten_times_the_sustainable_load_is_shed_quickly_and_admitted_requests_stay_bounded() {
    pfs_platform::telemetry::init_for_test();
    let dir = tempfile::tempdir().unwrap();
    let store = SqliteStore::connect(&format!("sqlite://{}/p.db", dir.path().display()), &SqliteSettings::default())
        .await
        .unwrap();
    store.migrate().await.unwrap();
    let env = [
        ("PORTFOLIO_HOST", "127.0.0.1".to_owned()),
        ("PORTFOLIO_PORT", "0".to_owned()),
        ("PORTFOLIO_DATA_DIR", dir.path().display().to_string()),
        ("PORTFOLIO_CACHE__ENABLED", "false".to_owned()),
        ("PORTFOLIO_RELIABILITY__MAX_CONCURRENT_REQUESTS", LIMIT.to_string()),
        ("PORTFOLIO_RELIABILITY__QUEUE_TIMEOUT", "50ms".to_owned()),
    ];
    let sources =
        ConfigSources { env: env.into_iter().map(|(k, v)| (k.to_owned(), v)).collect(), ..ConfigSources::default() };
    let config = Config::load(&sources).unwrap();
    let app = pfs_app::App::from_store(&config, Layered::wrap(SlowSearches, Arc::new(store))).unwrap();
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let base = format!("http://{}", listener.local_addr().unwrap());
    let shutdown = CancellationToken::new();
    let server = tokio::spawn(app.serve(listener, shutdown.clone()));

    let client = reqwest::Client::builder().timeout(HANG).pool_max_idle_per_host(CLIENTS).build().unwrap();
    let stop = Arc::new(AtomicBool::new(false));
    let clients: Vec<_> = (0..CLIENTS)
        .map(|_| {
            let (client, base, stop) = (client.clone(), base.clone(), stop.clone());
            tokio::spawn(async move {
                let mut outcomes = Vec::new();
                while !stop.load(Ordering::Relaxed) {
                    outcomes.push(send(client.get(format!("{base}/api/v2/portfolios?name_like=x"))).await);
                }
                outcomes
            })
        })
        .collect();
    let probes = {
        let (client, base, stop) = (client.clone(), base.clone(), stop.clone());
        tokio::spawn(async move {
            let mut statuses = Vec::new();
            while !stop.load(Ordering::Relaxed) {
                statuses.push(send(client.get(format!("{base}/health/live"))).await.status);
                tokio::time::sleep(Duration::from_millis(100)).await;
            }
            statuses
        })
    };
    let started = Instant::now();
    tokio::time::sleep(Duration::from_secs(3)).await;
    stop.store(true, Ordering::Relaxed);
    let mut outcomes = Vec::new();
    for task in clients {
        outcomes.extend(task.await.unwrap());
    }
    let elapsed = started.elapsed();
    let probes = probes.await.unwrap();
    shutdown.cancel();
    server.await.unwrap().unwrap();

    let all = outcomes;
    let mut admitted: Vec<Duration> = all.iter().filter(|o| o.status == 200).map(|o| o.elapsed).collect();
    let mut shed: Vec<Duration> = all.iter().filter(|o| o.status == 503).map(|o| o.elapsed).collect();
    eprintln!("{CLIENTS} clients against a limit of {LIMIT} for {elapsed:?}: {}", summary(&all));
    if !admitted.is_empty() && !shed.is_empty() {
        eprintln!(
            "admitted: {} ({:.0}/s), p50 {:?}, p99 {:?}; shed: {}, p50 {:?}, p99 {:?}",
            admitted.len(),
            admitted.len() as f64 / elapsed.as_secs_f64(),
            percentile(&mut admitted, 50),
            percentile(&mut admitted, 99),
            shed.len(),
            percentile(&mut shed, 50),
            percentile(&mut shed, 99)
        );
    }
    assert!(!admitted.is_empty(), "some requests must be served");
    assert!(!shed.is_empty(), "ten times the limit must shed some requests");
    for outcome in &all {
        assert!(matches!(outcome.status, 200 | 503), "only 200 or 503 expected: {outcome:?}");
        if outcome.status == 503 {
            let overloaded = outcome.detail.as_deref() == Some("Service overloaded");
            assert!(outcome.retry_after && overloaded, "a shed request says why and when: {outcome:?}");
        }
        assert!(outcome.elapsed < HANG / 3, "a request hung instead of being shed: {outcome:?}");
    }
    assert!(!probes.is_empty() && probes.iter().all(|s| *s == 200), "liveness was shed: {probes:?}");
}

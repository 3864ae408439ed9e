//! Fault injection against the real service: dependencies that go away under load, overload,
//! slow clients. One binary (`cargo test -p pfs-app --test faults`); every test is bounded in
//! time and uses only loopback and private server processes.

mod overload;
mod pg_process;
mod postgres_down;
mod redis_down;
mod slow_client;

use pfs_test_support::TestApp;
pub use pfs_test_support::eventually;
use serde_json::{Value, json};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::{Duration, Instant};

/// What one request got: status (0 when no response arrived), how long it took, whether a
/// 503 said when to retry, and the id a successful create returned.
#[derive(Clone, Debug)]
pub struct Outcome {
    pub status: u16,
    pub elapsed: Duration,
    pub started: Instant,
    pub retry_after: bool,
    pub id: Option<String>,
    /// The `detail` of an error body.
    pub detail: Option<String>,
}

/// `workers` tasks sending requests back to back until stopped.
pub struct Load {
    stop: Arc<AtomicBool>,
    workers: Vec<tokio::task::JoinHandle<Vec<Outcome>>>,
}

/// Upper bound for any one request in these tests: a request that reaches it has hung.
pub const HANG: Duration = Duration::from_secs(15);

impl Load {
    /// Each worker creates portfolios through v1, then reads each one back when `read_back`.
    pub fn creates(base: &str, workers: usize, read_back: bool) -> Self {
        let stop = Arc::new(AtomicBool::new(false));
        let counter = Arc::new(AtomicU64::new(0));
        let client = reqwest::Client::builder().timeout(HANG).build().expect("client");
        let workers = (0..workers)
            .map(|_| {
                let (stop, counter, client, base) = (stop.clone(), counter.clone(), client.clone(), base.to_owned());
                tokio::spawn(async move {
                    let mut outcomes = Vec::new();
                    while !stop.load(Ordering::Relaxed) {
                        let name = format!("load-{}", counter.fetch_add(1, Ordering::Relaxed));
                        let created =
                            send(client.post(format!("{base}/api/v1/portfolios")).json(&json!({"name": name}))).await;
                        let id = created.id.clone();
                        outcomes.push(created);
                        if let (true, Some(id)) = (read_back, id) {
                            outcomes.push(send(client.get(format!("{base}/api/v1/portfolio/{id}"))).await);
                        }
                    }
                    outcomes
                })
            })
            .collect();
        Self { stop, workers }
    }

    pub async fn stop(self) -> Vec<Outcome> {
        self.stop.store(true, Ordering::Relaxed);
        let mut all = Vec::new();
        for worker in self.workers {
            all.extend(worker.await.expect("load worker"));
        }
        all
    }
}

pub async fn send(request: reqwest::RequestBuilder) -> Outcome {
    let started = Instant::now();
    let Ok(response) = request.send().await else {
        return Outcome { status: 0, elapsed: started.elapsed(), started, retry_after: false, id: None, detail: None };
    };
    let status = response.status().as_u16();
    let retry_after = response.headers().get("retry-after").and_then(|v| v.to_str().ok()?.parse::<u64>().ok());
    let retry_after = retry_after.is_some_and(|seconds| seconds >= 1);
    let body: Value = response.json().await.unwrap_or_default();
    let text = |key: &str| body[key].as_str().map(str::to_owned);
    Outcome {
        status,
        elapsed: started.elapsed(),
        started,
        retry_after,
        id: text("portfolioId"),
        detail: text("detail"),
    }
}

pub async fn status(app: &TestApp, path: &str) -> u16 {
    app.client.get(app.url(path)).timeout(HANG).send().await.map_or(0, |r| r.status().as_u16())
}

pub async fn detailed(app: &TestApp) -> Value {
    match app.client.get(app.url("/health/detailed")).timeout(HANG).send().await {
        Ok(response) => response.json().await.unwrap_or_default(),
        Err(_) => Value::Null,
    }
}

/// The `p`-th percentile (0..=100) of `values`, which must not be empty.
pub fn percentile(values: &mut [Duration], p: usize) -> Duration {
    values.sort();
    values[(values.len() - 1) * p / 100]
}

/// A one-line summary for the figures in docs/RELIABILITY.md.
pub fn summary(outcomes: &[Outcome]) -> String {
    let mut by_status = std::collections::BTreeMap::<u16, usize>::new();
    for outcome in outcomes {
        *by_status.entry(outcome.status).or_default() += 1;
    }
    let mut latencies: Vec<Duration> = outcomes.iter().map(|o| o.elapsed).collect();
    if latencies.is_empty() {
        return "no requests".into();
    }
    let (p50, p99, max) =
        (percentile(&mut latencies, 50), percentile(&mut latencies, 99), percentile(&mut latencies, 100));
    format!("{} requests, by status {by_status:?}, p50 {p50:?}, p99 {p99:?}, max {max:?}", outcomes.len())
}

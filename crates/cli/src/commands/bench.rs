//! `portfolio-service bench`: a closed-loop load driver for a running service.
//!
//! Each of `--concurrency` workers sends its next request as soon as the previous one is
//! answered, until `--requests` have been sent in total. Latencies go into an HDR histogram
//! (microsecond resolution); the summary is printed as JSON.

use anyhow::{Context, bail};
use hdrhistogram::Histogram;
use serde_json::{Value, json};
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

#[derive(Debug, Clone, Copy, clap::ValueEnum)]
pub enum Scenario {
    /// POST /api/v2/portfolios with 10 uniquely named portfolios.
    Bulk10,
    /// GET /api/v1/portfolio/{id} of a portfolio created before the run.
    GetById,
    /// GET /api/v2/portfolios?limit=50 (the first page).
    SearchPage,
}

#[derive(Debug, clap::Args)]
pub struct Opts {
    /// Base URL of the service (loopback only: this is a load generator).
    #[arg(long, default_value = "http://127.0.0.1:8000")]
    pub url: String,
    #[arg(long, value_enum, default_value = "bulk10")]
    pub scenario: Scenario,
    /// Total requests to send (after warm-up).
    #[arg(long, default_value_t = 1000)]
    pub requests: u64,
    /// Concurrent workers; 1 sends requests strictly one after another.
    #[arg(long, default_value_t = 1)]
    pub concurrency: u64,
    /// Requests sent before measuring, to warm connections and caches.
    #[arg(long, default_value_t = 20)]
    pub warmup: u64,
}

pub async fn run(opts: Opts) -> anyhow::Result<()> {
    let host = url_host(&opts.url)?;
    if !is_loopback(&host) {
        bail!("refusing to load {host}: bench only targets loopback addresses");
    }
    if opts.concurrency == 0 || opts.requests == 0 {
        bail!("--requests and --concurrency must be at least 1");
    }
    let client = reqwest::Client::builder().pool_max_idle_per_host(opts.concurrency as usize).build()?;
    let target = Arc::new(Target::prepare(&client, &opts).await?);
    for i in 0..opts.warmup {
        target.send(&client, u64::MAX - i).await?;
    }

    let next = Arc::new(AtomicU64::new(0));
    let started = Instant::now();
    let workers: Vec<_> = (0..opts.concurrency)
        .map(|_| {
            let (client, target, next, total) = (client.clone(), target.clone(), next.clone(), opts.requests);
            tokio::spawn(async move {
                let mut histogram = Histogram::<u64>::new_with_bounds(1, 60_000_000, 3).expect("valid bounds");
                let mut errors = 0u64;
                loop {
                    let n = next.fetch_add(1, Ordering::Relaxed);
                    if n >= total {
                        break;
                    }
                    let start = Instant::now();
                    if target.send(&client, n).await.is_err() {
                        errors += 1;
                    }
                    histogram.saturating_record(start.elapsed().as_micros() as u64);
                }
                (histogram, errors)
            })
        })
        .collect();
    let mut histogram = Histogram::<u64>::new_with_bounds(1, 60_000_000, 3)?;
    let mut errors = 0;
    for worker in workers {
        let (h, e) = worker.await?;
        histogram.add(h)?;
        errors += e;
    }
    let elapsed = started.elapsed();
    println!("{}", serde_json::to_string_pretty(&summary(&opts, &histogram, errors, elapsed))?);
    Ok(())
}

fn summary(opts: &Opts, h: &Histogram<u64>, errors: u64, elapsed: Duration) -> Value {
    let ms = |micros: u64| micros as f64 / 1000.0;
    json!({
        "scenario": format!("{:?}", opts.scenario),
        "requests": h.len(),
        "concurrency": opts.concurrency,
        "errors": errors,
        "elapsed_s": elapsed.as_secs_f64(),
        "throughput_rps": h.len() as f64 / elapsed.as_secs_f64(),
        "latency_ms": {
            "p50": ms(h.value_at_quantile(0.50)),
            "p95": ms(h.value_at_quantile(0.95)),
            "p99": ms(h.value_at_quantile(0.99)),
            "max": ms(h.max()),
            "mean": h.mean() / 1000.0,
        }
    })
}

/// The request a scenario sends, with whatever it needs created up front.
struct Target {
    scenario: Scenario,
    base: String,
    existing_id: String,
    run_tag: String,
}

impl Target {
    async fn prepare(client: &reqwest::Client, opts: &Opts) -> anyhow::Result<Self> {
        let base = opts.url.trim_end_matches('/').to_owned();
        let run_tag = format!("bench-{}-{}", std::process::id(), unix_seconds());
        let created: Value = client
            .post(format!("{base}/api/v1/portfolios"))
            .json(&json!({ "name": format!("{run_tag}-seed") }))
            .send()
            .await
            .and_then(reqwest::Response::error_for_status)
            .with_context(|| format!("cannot create a seed portfolio at {base}"))?
            .json()
            .await?;
        let existing_id = created["portfolioId"].as_str().unwrap_or_default().to_owned();
        Ok(Self { scenario: opts.scenario, base, existing_id, run_tag })
    }

    async fn send(&self, client: &reqwest::Client, n: u64) -> anyhow::Result<()> {
        let request = match self.scenario {
            Scenario::Bulk10 => {
                let batch: Vec<Value> =
                    (0..10).map(|i| json!({ "name": format!("{}-{n}-{i}", self.run_tag) })).collect();
                client.post(format!("{}/api/v2/portfolios", self.base)).json(&batch)
            }
            Scenario::GetById => client.get(format!("{}/api/v1/portfolio/{}", self.base, self.existing_id)),
            Scenario::SearchPage => client.get(format!("{}/api/v2/portfolios?limit=50", self.base)),
        };
        let response = request.send().await?;
        let status = response.status();
        response.bytes().await?;
        if !status.is_success() {
            bail!("status {status}");
        }
        Ok(())
    }
}

/// Seconds since the epoch, to make names unique across runs.
fn unix_seconds() -> u64 {
    std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map_or(0, |d| d.as_secs())
}

fn url_host(url: &str) -> anyhow::Result<String> {
    let rest = url.split_once("://").map_or(url, |(_, rest)| rest);
    let authority = rest.split('/').next().unwrap_or_default();
    let host = if let Some(stripped) = authority.strip_prefix('[') {
        stripped.split(']').next().unwrap_or_default()
    } else {
        authority.rsplit_once(':').map_or(authority, |(h, _)| h)
    };
    if host.is_empty() {
        bail!("no host in {url}");
    }
    Ok(host.to_owned())
}

fn is_loopback(host: &str) -> bool {
    host == "localhost" || host.parse::<std::net::IpAddr>().is_ok_and(|ip| ip.is_loopback())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_loopback_targets_are_allowed() {
        for url in ["http://127.0.0.1:8000", "http://localhost:1", "http://[::1]:8000/", "http://127.9.9.9"] {
            assert!(is_loopback(&url_host(url).unwrap()), "{url}");
        }
        for url in ["http://10.0.0.1:8000", "http://example.com", "http://192.168.1.1"] {
            assert!(!is_loopback(&url_host(url).unwrap()), "{url}");
        }
    }
}

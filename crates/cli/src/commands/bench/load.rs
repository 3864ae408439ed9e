//! The closed-loop load driver: each of `concurrency` workers sends its next request as soon
//! as the previous one is answered. Latencies go into HDR histograms (microsecond resolution,
//! 3 significant digits), merged at the end.

use super::RunOpts;
use super::record::{self, Record};
use super::scenario::{Scenario, Target, response_ok};
use anyhow::{Context, bail};
use hdrhistogram::Histogram;
use serde::{Deserialize, Serialize};
use std::io::Write;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant, SystemTime};

/// One concurrency level's outcome; also the line format of `--out` files.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct RunResult {
    pub label: String,
    pub scenario: Scenario,
    pub concurrency: u64,
    pub requests: u64,
    pub errors: u64,
    pub elapsed_s: f64,
    pub throughput_rps: f64,
    pub error_rate: f64,
    /// Share of cache lookups that hit during the run (service-side counters).
    pub cache_hit_rate: Option<f64>,
    pub latency_ms: Latency,
    /// `(percentile, milliseconds)` from p0 to p99.99, for plots.
    pub percentiles: Vec<(f64, f64)>,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Latency {
    pub p50: f64,
    pub p90: f64,
    pub p95: f64,
    pub p99: f64,
    pub p999: f64,
    pub max: f64,
    pub mean: f64,
}

fn histogram() -> Histogram<u64> {
    Histogram::new_with_bounds(1, 60_000_000, 3).expect("static bounds are valid")
}

pub async fn run(opts: RunOpts) -> anyhow::Result<()> {
    let host = url_host(&opts.url)?;
    if !is_loopback(&host) {
        bail!("refusing to load {host}: bench only targets loopback addresses");
    }
    if opts.concurrency.contains(&0) || opts.requests == 0 {
        bail!("--requests and every --concurrency level must be at least 1");
    }
    let max_concurrency = opts.concurrency.iter().copied().max().unwrap_or(1) as usize;
    let client = reqwest::Client::builder().pool_max_idle_per_host(max_concurrency).build()?;
    let target = Arc::new(Target::prepare(&client, opts.scenario, &opts.url, opts.pool).await?);
    for &concurrency in &opts.concurrency {
        let result = level(&client, &target, &opts, concurrency).await?;
        println!("{}", serde_json::to_string_pretty(&result)?);
        if let Some(path) = &opts.out {
            let mut file = std::fs::OpenOptions::new()
                .create(true)
                .append(true)
                .open(path)
                .with_context(|| format!("opening {}", path.display()))?;
            writeln!(file, "{}", serde_json::to_string(&result)?)?;
        }
    }
    Ok(())
}

async fn level(
    client: &reqwest::Client,
    target: &Arc<Target>,
    opts: &RunOpts,
    concurrency: u64,
) -> anyhow::Result<RunResult> {
    for _ in 0..opts.warmup * concurrency {
        target.send(client).await.context("warm-up request failed")?;
    }
    let cache_before = target.cache_counters(client).await;
    let sent = Arc::new(AtomicU64::new(0));
    let recording = opts.record.is_some();
    let deadline = opts.duration.map(|d| Instant::now() + d);
    let started = Instant::now();
    let workers: Vec<_> = (0..concurrency)
        .map(|_| {
            let (client, target, sent, total) = (client.clone(), target.clone(), sent.clone(), opts.requests);
            tokio::spawn(async move {
                let (mut latencies, mut errors, mut records) = (histogram(), 0u64, Vec::new());
                loop {
                    let more = match deadline {
                        Some(deadline) => Instant::now() < deadline,
                        None => sent.fetch_add(1, Ordering::Relaxed) < total,
                    };
                    if !more {
                        break;
                    }
                    let (started, start) = (SystemTime::now(), Instant::now());
                    let answer = target.send(&client).await;
                    let latency = start.elapsed();
                    latencies.saturating_record(latency.as_micros() as u64);
                    errors += u64::from(!matches!(&answer, Ok(a) if response_ok(a.status)));
                    if recording {
                        records.push(Record::new(started, latency, &answer));
                    }
                }
                (latencies, errors, records)
            })
        })
        .collect();
    let (mut latencies, mut errors, mut records) = (histogram(), 0, Vec::new());
    for worker in workers {
        let (h, e, r) = worker.await?;
        latencies.add(h)?;
        errors += e;
        records.extend(r);
    }
    let elapsed = started.elapsed();
    if let Some(path) = &opts.record {
        record::append(path, &mut records)?;
    }
    let cache_after = target.cache_counters(client).await;
    let cache_hit_rate = match (cache_before, cache_after) {
        (Some((h0, m0)), Some((h1, m1))) if h1 + m1 > h0 + m0 => {
            Some((h1 - h0) as f64 / ((h1 + m1) - (h0 + m0)) as f64)
        }
        _ => None,
    };
    Ok(summarise(opts, concurrency, &latencies, errors, elapsed, cache_hit_rate))
}

fn summarise(
    opts: &RunOpts,
    concurrency: u64,
    h: &Histogram<u64>,
    errors: u64,
    elapsed: Duration,
    cache_hit_rate: Option<f64>,
) -> RunResult {
    let ms = |micros: u64| micros as f64 / 1000.0;
    let percentiles = [0.0, 10.0, 25.0, 50.0, 75.0, 90.0, 95.0, 99.0, 99.5, 99.9, 99.99]
        .iter()
        .map(|p| (*p, ms(h.value_at_percentile(*p))))
        .collect();
    RunResult {
        label: opts.label.clone(),
        scenario: opts.scenario,
        concurrency,
        requests: h.len(),
        errors,
        elapsed_s: elapsed.as_secs_f64(),
        throughput_rps: h.len() as f64 / elapsed.as_secs_f64(),
        error_rate: if h.is_empty() { 0.0 } else { errors as f64 / h.len() as f64 },
        cache_hit_rate,
        latency_ms: Latency {
            p50: ms(h.value_at_quantile(0.50)),
            p90: ms(h.value_at_quantile(0.90)),
            p95: ms(h.value_at_quantile(0.95)),
            p99: ms(h.value_at_quantile(0.99)),
            p999: ms(h.value_at_quantile(0.999)),
            max: ms(h.max()),
            mean: h.mean() / 1000.0,
        },
        percentiles,
    }
}

fn url_host(url: &str) -> anyhow::Result<String> {
    let rest = url.split_once("://").map_or(url, |(_, rest)| rest);
    let authority = rest.split('/').next().unwrap_or_default();
    let host = match authority.strip_prefix('[') {
        Some(bracketed) => bracketed.split(']').next().unwrap_or_default(),
        None => authority.rsplit_once(':').map_or(authority, |(h, _)| h),
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

    #[test]
    fn summaries_compute_rates_and_percentiles() {
        let mut h = histogram();
        for micros in 1..=1000 {
            h.record(micros).unwrap();
        }
        let opts = RunOpts {
            url: String::new(),
            scenario: Scenario::GetById,
            duration: None,
            requests: 1000,
            concurrency: vec![4],
            warmup: 0,
            pool: 1,
            label: "x".into(),
            out: None,
            record: None,
        };
        let result = summarise(&opts, 4, &h, 10, Duration::from_secs(2), Some(0.5));
        assert_eq!((result.requests, result.throughput_rps, result.error_rate), (1000, 500.0, 0.01));
        assert!((result.latency_ms.p50 - 0.5).abs() < 0.01 && (result.latency_ms.max - 1.0).abs() < 0.01);
        assert_eq!(result.percentiles.len(), 11);
    }
}

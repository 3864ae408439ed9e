//! The closed-loop load driver: each of `concurrency` workers sends its next request as soon
//! as the previous one is answered. Latencies go into HDR histograms (microsecond resolution,
//! 3 significant digits), merged at the end.

use super::RunOpts;
use super::check::Thresholds;
use super::record::{self, Record};
use super::scenario::{Scenario, Target, response_ok};
use anyhow::{Context, bail};
use hdrhistogram::Histogram;
use serde::{Deserialize, Serialize};
use std::io::Write;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::{Duration, Instant, SystemTime};
use tokio::sync::Barrier;

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
    /// CPU the load generator itself used while measuring, in cores (CPU seconds over wall
    /// seconds): on a machine shared with the server, what the client took from it.
    #[serde(default)]
    pub client_cpu_cores: Option<f64>,
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
    // Set-up only (the pool, the cache counters); measured requests go through `client`.
    let setup = reqwest::Client::new();
    let target = Arc::new(Target::prepare(&setup, opts.scenario, &opts.url, opts.pool).await?);
    let mut breaches = Vec::new();
    for &concurrency in &opts.concurrency {
        let result = level(&setup, &target, &opts, concurrency).await?;
        println!("{}", serde_json::to_string_pretty(&result)?);
        if let Some(path) = &opts.out {
            let mut file = std::fs::OpenOptions::new()
                .create(true)
                .append(true)
                .open(path)
                .with_context(|| format!("opening {}", path.display()))?;
            writeln!(file, "{}", serde_json::to_string(&result)?)?;
        }
        if opts.check {
            let gate = Thresholds::for_scenario(opts.scenario, opts.min_throughput, opts.min_hit_rate);
            let found = gate.breaches(&result);
            let verdict = if found.is_empty() { "pass".to_owned() } else { found.join("; ") };
            eprintln!("check {:?} c={concurrency}: {verdict}", opts.scenario);
            breaches.extend(found.into_iter().map(|b| format!("{:?} c={concurrency}: {b}", opts.scenario)));
        }
    }
    if !breaches.is_empty() {
        bail!("performance gate failed: {}", breaches.join("; "));
    }
    Ok(())
}

/// What one worker brings back.
struct Outcome {
    latencies: Histogram<u64>,
    errors: u64,
    records: Vec<Record>,
}

async fn level(
    setup: &reqwest::Client,
    target: &Arc<Target>,
    opts: &RunOpts,
    concurrency: u64,
) -> anyhow::Result<RunResult> {
    // Every worker warms its own connection, then all start together once the cache counters
    // have been read: `warmed` gathers them, `go` releases them.
    let warmed = Arc::new(Barrier::new(concurrency as usize + 1));
    let go = Arc::new(Barrier::new(concurrency as usize + 1));
    let warm_up_failed = Arc::new(AtomicBool::new(false));
    let sent = Arc::new(AtomicU64::new(0));
    let (recording, warmup, total, duration) = (opts.record.is_some(), opts.warmup, opts.requests, opts.duration);
    let workers: Vec<_> = (0..concurrency)
        .map(|_| {
            let (target, sent, warmed, go, failed) =
                (target.clone(), sent.clone(), warmed.clone(), go.clone(), warm_up_failed.clone());
            tokio::spawn(async move {
                let mut connection = target.connection();
                let mut warm_up_error = None;
                for _ in 0..warmup {
                    if let Err(err) = target.send(&mut connection).await {
                        failed.store(true, Ordering::Relaxed);
                        warm_up_error = Some(err);
                        break;
                    }
                }
                warmed.wait().await;
                go.wait().await;
                if let Some(err) = warm_up_error {
                    return Err(err.context("warm-up request failed"));
                }
                let mut outcome = Outcome { latencies: histogram(), errors: 0, records: Vec::new() };
                if failed.load(Ordering::Relaxed) {
                    return Ok(outcome);
                }
                let deadline = duration.map(|d| Instant::now() + d);
                let mut now = Instant::now();
                loop {
                    let more = match deadline {
                        Some(deadline) => now < deadline,
                        None => sent.fetch_add(1, Ordering::Relaxed) < total,
                    };
                    if !more {
                        break;
                    }
                    let started = recording.then(SystemTime::now);
                    let answer = target.send(&mut connection).await;
                    let (start, end) = (now, Instant::now());
                    now = end;
                    let latency = end - start;
                    outcome.latencies.saturating_record(latency.as_micros() as u64);
                    outcome.errors += u64::from(!matches!(&answer, Ok(a) if response_ok(a.status)));
                    if let Some(started) = started {
                        outcome.records.push(Record::new(started, latency, &answer));
                    }
                }
                Ok(outcome)
            })
        })
        .collect();
    warmed.wait().await;
    let cache_before = target.cache_counters(setup).await;
    let cpu_before = cpu_seconds();
    go.wait().await;
    let started = Instant::now();
    let (mut latencies, mut errors, mut records) = (histogram(), 0, Vec::new());
    let mut first_error = None;
    for worker in workers {
        match worker.await? {
            Ok(outcome) => {
                latencies.add(outcome.latencies)?;
                errors += outcome.errors;
                records.extend(outcome.records);
            }
            Err(err) => first_error = first_error.or(Some(err)),
        }
    }
    let elapsed = started.elapsed();
    let client_cpu_cores =
        cpu_before.zip(cpu_seconds()).map(|(before, after)| (after - before) / elapsed.as_secs_f64());
    if let Some(err) = first_error {
        return Err(err);
    }
    if let Some(path) = &opts.record {
        record::append(path, &mut records)?;
    }
    let cache_after = target.cache_counters(setup).await;
    let cache_hit_rate = match (cache_before, cache_after) {
        (Some((h0, m0)), Some((h1, m1))) if h1 + m1 > h0 + m0 => {
            Some((h1 - h0) as f64 / ((h1 + m1) - (h0 + m0)) as f64)
        }
        _ => None,
    };
    let mut result = summarise(opts, concurrency, &latencies, errors, elapsed, cache_hit_rate);
    result.client_cpu_cores = client_cpu_cores;
    Ok(result)
}

/// Clock ticks per second of `/proc/self/stat` CPU times: 100 on every Linux platform Rust
/// supports (`sysconf(_SC_CLK_TCK)` would need `unsafe` libc).
const TICKS_PER_SECOND: f64 = 100.0;

/// CPU time this process has used so far (user + system, every thread), from `/proc`.
fn cpu_seconds() -> Option<f64> {
    let stat = std::fs::read_to_string("/proc/self/stat").ok()?;
    // Fields after the parenthesised command name, which may itself contain spaces.
    let rest = &stat[stat.rfind(')')? + 2..];
    let mut fields = rest.split_whitespace().skip(11);
    let user: f64 = fields.next()?.parse().ok()?;
    let system: f64 = fields.next()?.parse().ok()?;
    Some((user + system) / TICKS_PER_SECOND)
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
        client_cpu_cores: None,
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
            check: false,
            min_throughput: None,
            min_hit_rate: None,
        };
        let result = summarise(&opts, 4, &h, 10, Duration::from_secs(2), Some(0.5));
        assert_eq!((result.requests, result.throughput_rps, result.error_rate), (1000, 500.0, 0.01));
        assert!((result.latency_ms.p50 - 0.5).abs() < 0.01 && (result.latency_ms.max - 1.0).abs() < 0.01);
        assert_eq!(result.percentiles.len(), 11);
    }

    #[test]
    fn the_client_reads_its_own_cpu_time() {
        // Spins until the reading has grown by 50 ms of CPU; a reading that does not follow
        // the work done never gets there.
        let (before, spin) = (cpu_seconds().expect("/proc/self/stat"), Instant::now());
        let mut x = 0u64;
        while cpu_seconds().unwrap() - before < 0.05 {
            for _ in 0..100_000 {
                x = std::hint::black_box(x.wrapping_add(1));
            }
            assert!(spin.elapsed() < Duration::from_secs(20), "CPU time does not grow while spinning");
        }
    }
}

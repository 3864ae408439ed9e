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
use tokio::sync::{Barrier, oneshot};
use tokio::task::JoinSet;

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

/// What one worker (and then one thread, and then the level) brings back.
struct Outcome {
    latencies: Histogram<u64>,
    errors: u64,
    records: Vec<Record>,
}

impl Outcome {
    fn new() -> Self {
        Self { latencies: histogram(), errors: 0, records: Vec::new() }
    }

    fn absorb(&mut self, other: Self) -> anyhow::Result<()> {
        self.latencies.add(other.latencies)?;
        self.errors += other.errors;
        self.records.extend(other.records);
        Ok(())
    }
}

/// What every worker of a level shares: the scenario, the plan, and the two barriers that start
/// the measured phase together (`warmed` gathers the workers once warm, `go` releases them
/// once the cache counters have been read).
struct Level {
    target: Arc<Target>,
    warmed: Barrier,
    go: Barrier,
    warm_up_failed: AtomicBool,
    /// Requests handed out so far, when the level runs for a request count.
    sent: AtomicU64,
    warmup: u64,
    total: u64,
    duration: Option<Duration>,
    recording: bool,
}

async fn level(
    setup: &reqwest::Client,
    target: &Arc<Target>,
    opts: &RunOpts,
    concurrency: u64,
) -> anyhow::Result<RunResult> {
    let shared = Arc::new(Level {
        target: target.clone(),
        warmed: Barrier::new(concurrency as usize + 1),
        go: Barrier::new(concurrency as usize + 1),
        warm_up_failed: AtomicBool::new(false),
        sent: AtomicU64::new(0),
        warmup: opts.warmup,
        total: opts.requests,
        duration: opts.duration,
        recording: opts.record.is_some(),
    });
    let threads = spawn_threads(&shared, concurrency)?;
    shared.warmed.wait().await;
    let cache_before = target.cache_counters(setup).await;
    let cpu_before = cpu_seconds();
    shared.go.wait().await;
    let started = Instant::now();
    let mut outcome = Outcome::new();
    let mut first_error = None;
    for thread in threads {
        match thread.await.context("a load thread ended without its results")? {
            Ok(theirs) => outcome.absorb(theirs)?,
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
        record::append(path, &mut outcome.records)?;
    }
    let cache_after = target.cache_counters(setup).await;
    let cache_hit_rate = match (cache_before, cache_after) {
        (Some((h0, m0)), Some((h1, m1))) if h1 + m1 > h0 + m0 => {
            Some((h1 - h0) as f64 / ((h1 + m1) - (h0 + m0)) as f64)
        }
        _ => None,
    };
    let mut result = summarise(opts, concurrency, &outcome.latencies, outcome.errors, elapsed, cache_hit_rate);
    result.client_cpu_cores = client_cpu_cores;
    Ok(result)
}

/// Starts the workers of a level on as many OS threads as there are cores (at most one per
/// worker), each thread with a single-threaded runtime of its own, like wrk's threads: a
/// worker is only ever woken on its own thread, and no work stealing moves it. The runtimes
/// are built here, before any worker starts, so a failure cannot leave the barriers waiting.
fn spawn_threads(
    shared: &Arc<Level>,
    concurrency: u64,
) -> anyhow::Result<Vec<oneshot::Receiver<anyhow::Result<Outcome>>>> {
    let cores = std::thread::available_parallelism().map_or(1, std::num::NonZero::get) as u64;
    let threads = cores.min(concurrency);
    let runtimes = (0..threads)
        .map(|_| tokio::runtime::Builder::new_current_thread().enable_all().build())
        .collect::<Result<Vec<_>, _>>()
        .context("starting the load threads' runtimes")?;
    let mut results = Vec::new();
    for (index, runtime) in (0..threads).zip(runtimes) {
        // Workers index, index + threads, ...: the connections split evenly.
        let workers = (index..concurrency).step_by(threads as usize).count();
        let (done, result) = oneshot::channel();
        let shared = shared.clone();
        std::thread::Builder::new()
            .name(format!("bench-load-{index}"))
            .spawn(move || {
                let _ = done.send(runtime.block_on(run_thread(shared, workers)));
            })
            .context("starting a load thread")?;
        results.push(result);
    }
    Ok(results)
}

/// One thread's workers, run to the end and merged.
async fn run_thread(shared: Arc<Level>, workers: usize) -> anyhow::Result<Outcome> {
    let mut tasks = JoinSet::new();
    for _ in 0..workers {
        tasks.spawn(worker(shared.clone()));
    }
    let mut outcome = Outcome::new();
    let mut first_error = None;
    while let Some(joined) = tasks.join_next().await {
        match joined.context("a load worker panicked")? {
            Ok(theirs) => outcome.absorb(theirs)?,
            Err(err) => first_error = first_error.or(Some(err)),
        }
    }
    first_error.map_or(Ok(outcome), Err)
}

/// One connection's closed loop: warm up, wait for the start, then send the next request as
/// soon as the previous one is answered.
async fn worker(shared: Arc<Level>) -> anyhow::Result<Outcome> {
    let target = &shared.target;
    let mut connection = target.connection();
    // Allocated before the start: the measured time (and CPU) does not pay for it.
    let mut outcome = Outcome::new();
    let mut warm_up_error = None;
    for _ in 0..shared.warmup {
        if let Err(err) = target.send(&mut connection).await {
            shared.warm_up_failed.store(true, Ordering::Relaxed);
            warm_up_error = Some(err);
            break;
        }
    }
    shared.warmed.wait().await;
    shared.go.wait().await;
    if let Some(err) = warm_up_error {
        return Err(err.context("warm-up request failed"));
    }
    if shared.warm_up_failed.load(Ordering::Relaxed) {
        return Ok(outcome);
    }
    let deadline = shared.duration.map(|d| Instant::now() + d);
    // One clock reading per request: the end of one request is the start of the next.
    let mut now = Instant::now();
    loop {
        let more = match deadline {
            Some(deadline) => now < deadline,
            None => shared.sent.fetch_add(1, Ordering::Relaxed) < shared.total,
        };
        if !more {
            break;
        }
        let started = shared.recording.then(SystemTime::now);
        let answer = target.send(&mut connection).await;
        let end = Instant::now();
        let latency = end - now;
        now = end;
        outcome.latencies.saturating_record(latency.as_micros() as u64);
        outcome.errors += u64::from(!matches!(&answer, Ok(a) if response_ok(a.status)));
        if let Some(started) = started {
            outcome.records.push(Record::new(started, latency, &answer));
        }
    }
    Ok(outcome)
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

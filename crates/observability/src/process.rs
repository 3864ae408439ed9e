//! Process and runtime gauges, read from `/proc` (Linux) and the tokio runtime. Refreshed on
//! every `/metrics` scrape, and periodically when metrics are pushed.
//!
//! CPU time is the exception: the `metrics` facade counts in whole numbers, which would show
//! a service this light as 0 s for minutes and make `rate()` of it useless, so it is read at
//! the moment it is rendered ([`render_cpu`]) or observed (the OTLP `process.cpu.time`).

mod cgroup;

use std::time::Duration;

/// Clock ticks per second of `/proc/self/stat` CPU times; 100 on every Linux platform Rust
/// supports (`sysconf(_SC_CLK_TCK)` would need `unsafe` libc).
const TICKS_PER_SECOND: f64 = 100.0;

/// Updates the process and runtime metrics now, and the gauges kept as plain atomics.
pub fn collect() {
    crate::red::publish_active();
    if let Some(rss) = resident_bytes() {
        metrics::gauge!("process_resident_memory_bytes").set(rss as f64);
    }
    // The container's limits, so alerts can compare usage with what the pod may have; absent
    // when unlimited.
    if let Some(limit) = cgroup::memory_limit_bytes() {
        metrics::gauge!("process_memory_limit_bytes").set(limit as f64);
    }
    if let Some(cores) = cgroup::cpu_limit_cores() {
        metrics::gauge!("process_cpu_limit_cores").set(cores);
    }
    if let Ok(fds) = std::fs::read_dir("/proc/self/fd") {
        metrics::gauge!("process_open_fds").set(fds.count() as f64);
    }
    if let Ok(runtime) = tokio::runtime::Handle::try_current() {
        metrics::gauge!("tokio_alive_tasks").set(runtime.metrics().num_alive_tasks() as f64);
    }
}

/// Collects every `interval` for the rest of the process (for OTLP push).
pub(crate) fn spawn_collector(interval: Duration) {
    tokio::spawn(async move {
        let mut ticks = tokio::time::interval(interval.max(Duration::from_secs(1)));
        loop {
            ticks.tick().await;
            collect();
        }
    });
}

fn resident_bytes() -> Option<u64> {
    let status = std::fs::read_to_string("/proc/self/status").ok()?;
    let line = status.lines().find(|l| l.starts_with("VmRSS:"))?;
    let kib: u64 = line.split_whitespace().nth(1)?.parse().ok()?;
    Some(kib * 1024)
}

/// Appends `process_cpu_seconds_total`, with its fraction, in the Prometheus text format.
pub(crate) fn render_cpu(text: &mut String) {
    if let Some(cpu) = cpu_seconds() {
        text.push_str("# HELP process_cpu_seconds_total User and system CPU time consumed.\n");
        text.push_str("# TYPE process_cpu_seconds_total counter\n");
        text.push_str(&format!("process_cpu_seconds_total {cpu}\n"));
    }
}

/// User and system CPU time of this process, in seconds (to the 10 ms the kernel counts in).
pub(crate) fn cpu_seconds() -> Option<f64> {
    let stat = std::fs::read_to_string("/proc/self/stat").ok()?;
    // Fields after the parenthesised command name, which may itself contain spaces.
    let rest = &stat[stat.rfind(')')? + 2..];
    let fields: Vec<&str> = rest.split_whitespace().collect();
    let (user, system): (f64, f64) = (fields.get(11)?.parse().ok()?, fields.get(12)?.parse().ok()?);
    Some((user + system) / TICKS_PER_SECOND)
}

#[cfg(test)]
mod tests {
    #[test]
    fn proc_readings_are_plausible() {
        let rss = super::resident_bytes().expect("VmRSS on Linux");
        assert!(rss > 1024 * 1024, "{rss}");
        assert!(super::cpu_seconds().expect("stat") >= 0.0);
    }

    #[test]
    fn cpu_time_is_rendered_with_its_fraction() {
        // Burn a little CPU so the reading is not a whole number of seconds by chance.
        let start = std::time::Instant::now();
        let mut x = 0u64;
        while start.elapsed() < std::time::Duration::from_millis(30) {
            x = std::hint::black_box(x.wrapping_mul(31).wrapping_add(7));
        }
        let mut text = String::new();
        super::render_cpu(&mut text);
        let value = text.lines().find_map(|l| l.strip_prefix("process_cpu_seconds_total ")).expect(&text);
        let seconds: f64 = value.parse().unwrap();
        let exact = super::cpu_seconds().unwrap();
        assert!(seconds > 0.0 && (exact - seconds).abs() < 0.05, "{seconds} vs {exact}");
        assert!(text.contains("# TYPE process_cpu_seconds_total counter"), "{text}");
    }
}

//! `bench report`: saved runs to `report.md` plus SVG plots in one directory.

use super::load::RunResult;
use super::svg;
use anyhow::Context;
use std::fmt::Write;
use std::path::{Path, PathBuf};

pub fn write(runs: &[PathBuf], out: &Path, title: &str) -> anyhow::Result<()> {
    let mut results = Vec::new();
    for path in runs {
        let text = std::fs::read_to_string(path).with_context(|| format!("reading {}", path.display()))?;
        for line in text.lines().filter(|l| !l.trim().is_empty()) {
            results
                .push(serde_json::from_str::<RunResult>(line).with_context(|| format!("parsing {}", path.display()))?);
        }
    }
    std::fs::create_dir_all(out)?;
    let name = |r: &RunResult| {
        let label = if r.label.is_empty() { String::new() } else { format!("{}, ", r.label) };
        format!("{label}{:?} c={}", r.scenario, r.concurrency)
    };
    let x_labels: Vec<String> =
        results.first().map(|r| r.percentiles.iter().map(|(p, _)| format!("p{p}")).collect()).unwrap_or_default();
    let series: Vec<(String, Vec<f64>)> =
        results.iter().map(|r| (name(r), r.percentiles.iter().map(|(_, ms)| *ms).collect())).collect();
    std::fs::write(
        out.join("latency-percentiles.svg"),
        svg::percentile_chart(&format!("{title}: latency"), &x_labels, &series),
    )?;
    let bars: Vec<(String, f64)> = results.iter().map(|r| (name(r), r.throughput_rps)).collect();
    std::fs::write(out.join("throughput.svg"), svg::bar_chart(&format!("{title}: throughput"), "req/s", &bars))?;

    let mut md =
        format!("# {title}\n\n![throughput](throughput.svg)\n\n![latency percentiles](latency-percentiles.svg)\n\n");
    md.push_str("| run | requests | req/s | p50 ms | p95 ms | p99 ms | max ms | errors | cache hit rate |\n|---|---|---|---|---|---|---|---|---|\n");
    for r in &results {
        let hit = r.cache_hit_rate.map_or("–".to_owned(), |h| format!("{:.1}%", h * 100.0));
        let _ = writeln!(
            md,
            "| {} | {} | {:.0} | {:.3} | {:.3} | {:.3} | {:.3} | {} | {hit} |",
            name(r),
            r.requests,
            r.throughput_rps,
            r.latency_ms.p50,
            r.latency_ms.p95,
            r.latency_ms.p99,
            r.latency_ms.max,
            r.errors
        );
    }
    std::fs::write(out.join("report.md"), md)?;
    println!("wrote {}", out.join("report.md").display());
    Ok(())
}

//! The benchmark tool end to end: `bench run` against a real server writes results, and
//! `bench report` turns them into Markdown with plots.

use pfs_test_support::TestApp;
use std::process::Command;

const BIN: &str = env!("CARGO_BIN_EXE_portfolio-service");

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bench_runs_every_scenario_and_reports_them() {
    let app = TestApp::spawn().await;
    let dir = tempfile::tempdir().unwrap();
    let results = dir.path().join("runs.jsonl");
    for scenario in ["get-by-id", "search-page", "page-random", "search-name", "bulk10", "mixed"] {
        let url = app.url("");
        let results = results.clone();
        let status = tokio::task::spawn_blocking(move || {
            Command::new(BIN)
                .args([
                    "bench",
                    "run",
                    "--url",
                    &url,
                    "--scenario",
                    scenario,
                    "--requests",
                    "60",
                    "--concurrency",
                    "1,4",
                ])
                .args(["--warmup", "2", "--pool", "20", "--label", "test", "--out"])
                .arg(&results)
                .stdout(std::process::Stdio::null())
                .status()
                .unwrap()
        })
        .await
        .unwrap();
        assert!(status.success(), "bench run {scenario}");
    }
    let lines: Vec<serde_json::Value> =
        std::fs::read_to_string(&results).unwrap().lines().map(|l| serde_json::from_str(l).unwrap()).collect();
    assert_eq!(lines.len(), 12, "two concurrency levels per scenario");
    for line in &lines {
        assert_eq!(line["requests"], 60, "{line}");
        assert_eq!(line["errors"], 0, "{line}");
        assert!(line["latency_ms"]["p50"].as_f64().unwrap() > 0.0);
    }
    let get = lines.iter().find(|l| l["scenario"] == "get-by-id" && l["concurrency"] == 4).unwrap();
    assert!(get["cache_hit_rate"].as_f64().unwrap() > 0.5, "a warm pool of 20 ids is served from the cache: {get}");

    let out = dir.path().join("report");
    let status = Command::new(BIN).args(["bench", "report", "--out"]).arg(&out).arg(&results).status().unwrap();
    assert!(status.success());
    let report = std::fs::read_to_string(out.join("report.md")).unwrap();
    assert_eq!(report.matches("| test, ").count(), 12, "{report}");
    for plot in ["latency-percentiles.svg", "throughput.svg"] {
        assert!(std::fs::read_to_string(out.join(plot)).unwrap().contains("<svg"), "{plot}");
    }
}

#[test]
fn bench_refuses_non_loopback_targets() {
    let output = Command::new(BIN).args(["bench", "run", "--url", "http://192.0.2.1:8000"]).output().unwrap();
    assert!(!output.status.success());
    assert!(String::from_utf8_lossy(&output.stderr).contains("loopback"));
}

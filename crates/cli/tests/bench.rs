//! The benchmark tool end to end: `bench run` against a real server writes results, and
//! `bench report` turns them into Markdown with plots.

use pfs_test_support::{ServiceCommand, TestApp};

const BIN: &str = env!("CARGO_BIN_EXE_portfolio-service");

/// `--record`: one line per measured request of both levels, each create's id readable.
async fn check_mixed_record(csv: &str, app: &TestApp) {
    let mut lines = csv.lines();
    assert_eq!(lines.next(), Some("start_unix_ms,latency_us,status,kind,created_id"));
    let rows: Vec<Vec<&str>> = lines.map(|l| l.split(',').collect()).collect();
    assert_eq!(rows.len(), 120, "60 requests at each of two levels");
    let creates: Vec<&str> = rows.iter().filter(|r| r[3] == "create").map(|r| r[4]).collect();
    assert!(creates.len() >= 10, "10% of the mixed scenario creates: {}", creates.len());
    assert!(rows.iter().all(|r| r[2] == "200" || r[2] == "201"), "{csv}");
    let client = reqwest::Client::new();
    for id in creates {
        assert_eq!(id.len(), 24, "{id}");
        let status = client.get(app.url(&format!("/api/v1/portfolio/{id}"))).send().await.unwrap().status();
        assert_eq!(status, 200, "recorded create {id}");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bench_runs_every_scenario_and_reports_them() {
    let app = TestApp::spawn().await;
    let dir = tempfile::tempdir().unwrap();
    let results = dir.path().join("runs.jsonl");
    let record = dir.path().join("mixed-requests.csv");
    for scenario in ["get-by-id", "search-page", "page-random", "search-name", "bulk10", "mixed"] {
        let mut command = ServiceCommand::new(BIN)
            .args(["bench", "run", "--url", &app.url(""), "--scenario", scenario, "--requests", "60"])
            .args(["--concurrency", "1,4", "--warmup", "2", "--pool", "20", "--label", "test", "--out"])
            .arg(&results);
        if scenario == "mixed" {
            command = command.arg("--record").arg(&record);
        }
        let run = command.run().await;
        assert!(run.status.success(), "bench run {scenario}: {}", String::from_utf8_lossy(&run.stderr));
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
    check_mixed_record(&std::fs::read_to_string(&record).unwrap(), &app).await;

    let out = dir.path().join("report");
    let report = ServiceCommand::new(BIN).args(["bench", "report", "--out"]).arg(&out).arg(&results).run().await;
    assert!(report.status.success(), "{}", String::from_utf8_lossy(&report.stderr));
    let report = std::fs::read_to_string(out.join("report.md")).unwrap();
    assert_eq!(report.matches("| test, ").count(), 12, "{report}");
    for plot in ["latency-percentiles.svg", "throughput.svg"] {
        assert!(std::fs::read_to_string(out.join(plot)).unwrap().contains("<svg"), "{plot}");
    }
}

#[tokio::test]
async fn bench_refuses_non_loopback_targets() {
    let output = ServiceCommand::new(BIN).args(["bench", "run", "--url", "http://192.0.2.1:8000"]).run().await;
    assert!(!output.status.success());
    assert!(String::from_utf8_lossy(&output.stderr).contains("loopback"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bench_check_fails_the_run_when_a_threshold_is_crossed() {
    let app = TestApp::spawn().await;
    let run = |floor: &'static str| {
        ServiceCommand::new(BIN)
            .args(["bench", "run", "--url", &app.url(""), "--scenario", "health", "--requests", "50"])
            .args(["--concurrency", "2", "--warmup", "1", "--check", "--min-throughput", floor])
            .run()
    };
    let within = run("1").await;
    assert!(within.status.success(), "{}", String::from_utf8_lossy(&within.stderr));
    assert!(String::from_utf8_lossy(&within.stderr).contains("check Health c=2: pass"));
    let crossed = run("1000000000").await;
    assert!(!crossed.status.success(), "a floor no server reaches must fail the run");
    let stderr = String::from_utf8_lossy(&crossed.stderr);
    assert!(stderr.contains("performance gate failed") && stderr.contains("not over the floor"), "{stderr}");
}

//! The shipped Grafana dashboard parses, and every panel queries metrics the service (or a
//! sibling crate, per the shared names table) exports under their Prometheus names.

use serde_json::Value;
use std::path::Path;

/// Prometheus names of the shared metrics; histograms also as `_bucket`, `_count`, `_sum`.
const COUNTERS_AND_GAUGES: &[&str] = &[
    "http_server_active_requests",
    "http_server_errors_total",
    "process_resident_memory_bytes",
    "process_cpu_seconds_total",
    "process_open_fds",
    "tokio_alive_tasks",
    "db_client_connections_usage",
    "db_client_connections_max",
    "cache_requests_total",
    "otlp_exporter_dropped_total",
    "circuit_breaker_state",
    "circuit_breaker_transitions_total",
    "http_server_shed_requests_total",
    "storage_retries_total",
    "idempotency_replays_total",
    "jobs_processed_total",
    "jobs_queue_depth",
    "events_subscribers",
    "events_dropped_subscribers_total",
];
const HISTOGRAMS: &[&str] =
    &["http_server_request_duration_seconds", "db_client_connections_wait_time_seconds", "portfolio_bulk_size"];

fn known(name: &str) -> bool {
    COUNTERS_AND_GAUGES.contains(&name)
        || HISTOGRAMS.iter().any(|h| ["_bucket", "_count", "_sum"].iter().any(|s| name == format!("{h}{s}")))
}

/// Metric names in `expr`: by the dashboard's convention every selector carries a matcher, so
/// a metric name is the identifier right before a `{` (a `{{legend}}` never occurs in exprs).
fn metric_names(expr: &str) -> Vec<String> {
    let mut names = Vec::new();
    for (at, _) in expr.match_indices('{') {
        let name: String = expr[..at]
            .chars()
            .rev()
            .take_while(|c| c.is_ascii_alphanumeric() || *c == '_' || *c == ':')
            .collect::<Vec<_>>()
            .into_iter()
            .rev()
            .collect();
        assert!(!name.is_empty(), "selector without a metric name in {expr}");
        names.push(name);
    }
    names
}

fn panels(value: &Value, found: &mut Vec<Value>) {
    for panel in value["panels"].as_array().into_iter().flatten() {
        found.push(panel.clone());
        panels(panel, found);
    }
}

#[test]
fn every_dashboard_panel_queries_exported_metrics() {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../deploy/grafana/dashboards");
    let mut checked = 0;
    for entry in std::fs::read_dir(&dir).expect("dashboards directory") {
        let path = entry.unwrap().path();
        let dashboard: Value = serde_json::from_str(&std::fs::read_to_string(&path).unwrap())
            .unwrap_or_else(|e| panic!("{} is not JSON: {e}", path.display()));
        assert!(dashboard["uid"].is_string() && dashboard["title"].is_string(), "{}", path.display());
        let mut all = Vec::new();
        panels(&dashboard, &mut all);
        for panel in all.iter().filter(|p| p["type"] != "row") {
            let targets =
                panel["targets"].as_array().unwrap_or_else(|| panic!("panel without targets: {}", panel["title"]));
            assert!(!targets.is_empty(), "panel {} has no query", panel["title"]);
            for target in targets {
                let expr = target["expr"].as_str().expect("a PromQL expr");
                let names = metric_names(expr);
                assert!(!names.is_empty(), "panel {}: no metric in {expr}", panel["title"]);
                for name in names {
                    assert!(known(&name), "panel {}: unknown metric {name} in {expr}", panel["title"]);
                }
                checked += 1;
            }
        }
    }
    assert!(checked >= 20, "only {checked} queries found");
}

#[test]
fn the_name_extraction_finds_each_selector() {
    assert_eq!(
        metric_names(r#"sum(rate(a_total{job="x"}[5m])) / sum(rate(b_count{job="x",le="1"}[5m]))"#),
        ["a_total", "b_count"]
    );
}

//! The benchmark suite's Helm chart, replayed: the real binary started with the container
//! environment the chart gives the original (kasbench/globeco-helm,
//! `globeco/templates/globeco-portfolio-service/globeco-portfolio-service.yaml`), with
//! `NODE_IP` as loopback and the ports remapped to in-test collectors, against the MongoDB
//! wire-protocol server the test command provisions (`PORTFOLIO_TEST_MONGO_URL`).

mod common;

use common::{BIN, Service};
use pfs_observability::testing::Receiver;
use pfs_storage_mongo::testing::TestDatabase;
use pfs_test_support::free_port;
use serde_json::{Value, json};
use std::collections::BTreeMap;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

/// The chart's container environment, in its order and shapes. `<...>` is filled by the
/// Downward API in the cluster and by [`resolve`] here; `$(NODE_IP)` is Kubernetes' own
/// dependent-variable syntax.
const CHART_ENV: &[(&str, &str)] = &[
    ("NODE_IP", "<status.hostIP>"),
    ("MONGODB_URI", "mongodb://globeco-portfolio-service-mongodb:27017"),
    ("OTEL_METRICS_LOGGING_ENABLED", "true"),
    ("ENABLE_METRICS", "true"),
    ("METRICS_DEBUG_LOGGING", "false"),
    ("ENABLE_THREAD_METRICS", "true"),
    ("THREAD_METRICS_UPDATE_INTERVAL", "1.0"),
    ("THREAD_METRICS_DEBUG_LOGGING", "false"),
    ("ENABLE_METRICS_MIDDLEWARE", "true"),
    ("SERVICE_NAMESPACE", "globeco"),
    ("OTEL_METRICS_EXPORT_INTERVAL_SECONDS", "5"),
    ("OTEL_METRICS_EXPORT_TIMEOUT_SECONDS", "10"),
    ("OTEL_SERVICE_NAME", "globeco-portfolio-service"),
    ("OTEL_SERVICE_NAMESPACE", "globeco"),
    ("OTEL_EXPORTER_OTLP_ENDPOINT", "$(NODE_IP):4317"),
    ("OTEL_EXPORTER_OTLP_TRACES_ENDPOINT", "http://$(NODE_IP):4318/v1/traces"),
    ("OTEL_EXPORTER_OTLP_METRICS_ENDPOINT", "http://$(NODE_IP):4318/v1/metrics"),
    ("OTEL_EXPORTER_OTLP_INSECURE", "true"),
    ("MY_POD_NAME", "<metadata.name>"),
    ("MY_POD_IP", "<status.podIP>"),
    ("MY_NODE_NAME", "<spec.nodeName>"),
    ("LOG_LEVEL", "INFO"),
    ("MAX_POOL_SIZE", "50"),
    ("MIN_POOL_SIZE", "10"),
];

const POD_NAME: &str = "globeco-portfolio-service-7d9f8c6b5-x2x4q";

/// Where the cluster's values are, in this test.
struct Cluster {
    grpc_port: u16,
    http_port: u16,
    mongo_url: String,
}

/// The chart's value of `var`, with the cluster's values filled in: `NODE_IP` is loopback, the
/// collector's ports 4317/4318 are the receivers', the MongoDB service is the test server.
fn resolve(var: &str, value: &str, cluster: &Cluster) -> String {
    match var {
        "NODE_IP" | "MY_POD_IP" => "127.0.0.1".into(),
        "MY_POD_NAME" => POD_NAME.into(),
        "MY_NODE_NAME" => "bench-node-1".into(),
        "MONGODB_URI" => value.replace("mongodb://globeco-portfolio-service-mongodb:27017", &cluster.mongo_url),
        _ => value
            .replace("$(NODE_IP)", "127.0.0.1")
            .replace(":4317", &format!(":{}", cluster.grpc_port))
            .replace(":4318", &format!(":{}", cluster.http_port)),
    }
}

fn has_chart_resource(resource: &BTreeMap<String, String>) -> bool {
    resource.get("service.name").map(String::as_str) == Some("globeco-portfolio-service")
        && resource.get("service.namespace").map(String::as_str) == Some("globeco")
        && resource.get("k8s.pod.name").map(String::as_str) == Some(POD_NAME)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_charts_environment_serves_from_mongodb_and_sends_every_signal_where_the_chart_points() {
    let database = TestDatabase::create().await;
    let grpc = Receiver::grpc("127.0.0.1:0".parse().unwrap()).await.unwrap();
    let http = Receiver::http("127.0.0.1:0".parse().unwrap()).await.unwrap();
    let cluster = Cluster {
        grpc_port: grpc.address.port(),
        http_port: http.address.port(),
        mongo_url: database.url().trim_end_matches('/').to_owned(),
    };
    let port = free_port();
    let mut command = Command::new(BIN);
    command.arg("serve").env_clear().stdout(Stdio::null()).stderr(Stdio::piped());
    for (var, value) in CHART_ENV {
        command.env(var, resolve(var, value, &cluster));
    }
    // The harness's own: the chart's port 8000 is taken on a shared machine, and each test
    // gets a fresh database (the original read MONGODB_DB too).
    command
        .env("PORTFOLIO_HOST", "127.0.0.1")
        .env("PORTFOLIO_PORT", port.to_string())
        .env("MONGODB_DB", database.name());
    let child = command.spawn().expect("start portfolio-service");
    let service = Service { child, base: format!("http://127.0.0.1:{port}"), data: None };
    let client = reqwest::Client::new();

    // The chart's liveness, readiness and startup probes: GET /.
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        if let Ok(response) = client.get(service.url("/")).send().await
            && response.status() == 200
        {
            break;
        }
        assert!(Instant::now() < deadline, "GET / did not answer 200");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }

    // CRUD through MongoDB.
    let created = client.post(service.url("/api/v1/portfolios")).json(&json!({"name": "Chart"})).send().await.unwrap();
    assert_eq!(created.status(), 201);
    let created: Value = created.json().await.unwrap();
    let id = created["portfolioId"].as_str().unwrap().to_owned();
    let path = format!("/api/v1/portfolio/{id}");
    let read: Value = client.get(service.url(&path)).send().await.unwrap().json().await.unwrap();
    assert_eq!(read["name"], "Chart");
    let updated = client
        .put(service.url(&path))
        .json(&json!({"portfolioId": id, "name": "Chart 2", "version": read["version"]}))
        .send()
        .await
        .unwrap();
    assert_eq!(updated.status(), 200);
    let updated: Value = updated.json().await.unwrap();
    let deleted = client.delete(service.url(&format!("{path}?version={}", updated["version"]))).send().await.unwrap();
    assert_eq!(deleted.status(), 204);
    assert_eq!(client.get(service.url(&path)).send().await.unwrap().status(), 404);

    // Spans and metrics at the chart's per-signal HTTP URLs; log records at its gRPC endpoint.
    let spans = http
        .wait_for(Duration::from_secs(15), |r| {
            let span = r.spans.iter().any(|s| s.name == "POST /api/v1/portfolios");
            let resource = r.resources.iter().any(|(signal, res)| *signal == "traces" && has_chart_resource(res));
            (span && resource).then_some(())
        })
        .await;
    assert!(spans.is_some(), "spans at /v1/traces: {}", http.snapshot(|r| format!("{:?}", r.spans)));
    let metrics = http
        .wait_for(Duration::from_secs(20), |r| {
            let named = r.metric_names.iter().any(|n| n.starts_with("http.server"));
            // CPU time as the semantic conventions name it (a float, so its fraction survives).
            let cpu = r.metric_names.iter().any(|n| n == "process.cpu.time");
            let resource = r.resources.iter().any(|(signal, res)| *signal == "metrics" && has_chart_resource(res));
            (named && cpu && resource).then_some(())
        })
        .await;
    assert!(metrics.is_some(), "metrics at /v1/metrics: {:?}", http.snapshot(|r| r.metric_names.clone()));
    let logs = grpc
        .wait_for(Duration::from_secs(15), |r| {
            let traced = r.logs.iter().any(|l| l.trace_id.len() == 32 && l.span_id.len() == 16);
            let resource = r.resources.iter().any(|(signal, res)| *signal == "logs" && has_chart_resource(res));
            (traced && resource).then_some(())
        })
        .await;
    assert!(logs.is_some(), "log records over gRPC: {}", grpc.snapshot(|r| format!("{:?}", r.logs)));
    grpc.snapshot(|r| {
        assert!(r.spans.is_empty() && r.metric_names.is_empty(), "traces and metrics go to their own URLs");
    });

    let health: Value = client.get(service.url("/health/detailed")).send().await.unwrap().json().await.unwrap();
    let telemetry = &health["telemetry"];
    let traces = &telemetry["traces"]["exporters"][0];
    assert_eq!(traces["endpoint"], format!("http://127.0.0.1:{}/v1/traces", cluster.http_port), "{telemetry}");
    assert_eq!(traces["protocol"], "http/protobuf");
    assert_eq!(traces["endpoint_from"], "OTEL_EXPORTER_OTLP_TRACES_ENDPOINT");
    assert_eq!(traces["delivering"], true);
    assert_eq!(telemetry["logs"]["exporters"][0]["protocol"], "grpc");
    assert_eq!(telemetry["warnings"], json!([]));

    let (_, logs) = service.output();
    let chart_vars: Vec<&str> = CHART_ENV.iter().map(|(var, _)| *var).collect();
    for line in logs.lines().filter(|l| l.contains("WARN") || l.contains("ERROR")) {
        assert!(
            !chart_vars.iter().any(|var| line.contains(var)),
            "the chart's variables are accepted silently: {line}"
        );
    }
}

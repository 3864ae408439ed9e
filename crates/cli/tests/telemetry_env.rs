//! The OpenTelemetry environment variables, end to end through the real binary: a telemetry
//! setting never stops the service (a schemeless endpoint read as TLS against a plaintext
//! collector, a malformed endpoint, a missing certificate), each problem is one WARN naming its
//! variable and shows in `/health/detailed` and `config print`; headers reach the collector;
//! B3 propagation; `OTEL_SDK_DISABLED`; the console exporter.

mod common;

use common::{BIN, Service};
use pfs_observability::testing::Receiver;
use pfs_test_support::free_port;
use serde_json::Value;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

impl Service {
    /// Starts `serve` with only `env` (and a port and data directory), stdout and stderr kept.
    async fn start(env: &[(&str, &str)]) -> Self {
        let port = free_port();
        let data = tempfile::tempdir().unwrap();
        let mut command = common::serve(port, data.path());
        command.envs(env.iter().copied()).stdout(Stdio::piped()).stderr(Stdio::piped());
        let service = Self {
            child: command.spawn().expect("start portfolio-service"),
            base: format!("http://127.0.0.1:{port}"),
            data: Some(data),
        };
        let client = reqwest::Client::new();
        let deadline = Instant::now() + Duration::from_secs(30);
        loop {
            if let Ok(response) = client.get(service.url("/")).send().await {
                assert_eq!(response.status(), 200, "GET / answers 200");
                break;
            }
            assert!(Instant::now() < deadline, "serve did not start (or exited)");
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        service
    }

    async fn telemetry(&self) -> Value {
        let health: Value = reqwest::get(self.url("/health/detailed")).await.unwrap().json().await.unwrap();
        health["telemetry"].clone()
    }

    /// Stops the process and returns (stdout, stderr).
    fn stop(self) -> (String, String) {
        self.output()
    }
}

fn warnings_naming<'a>(logs: &'a str, var: &str) -> Vec<&'a str> {
    logs.lines().filter(|line| line.contains("WARN") && line.contains(var)).collect()
}

/// The first finding: `OTEL_EXPORTER_OTLP_ENDPOINT=host:4317` without
/// `OTEL_EXPORTER_OTLP_INSECURE` made `serve` exit ("uses HTTPS but no TLS feature is
/// enabled"). It is read as the SDKs read it (TLS), so against a plaintext collector nothing
/// is delivered: the service serves, says so once, and shows it.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_schemeless_endpoint_without_insecure_serves_and_warns_once_naming_the_variable() {
    let collector = Receiver::grpc("127.0.0.1:0".parse().unwrap()).await.unwrap();
    let endpoint = format!("127.0.0.1:{}", collector.address.port());
    let service = Service::start(&[
        ("OTEL_EXPORTER_OTLP_ENDPOINT", endpoint.as_str()),
        ("OTEL_METRIC_EXPORT_INTERVAL", "200"),
        ("OTEL_BSP_SCHEDULE_DELAY", "50"),
        ("OTEL_EXPORTER_OTLP_TIMEOUT", "1000"),
    ])
    .await;
    let deadline = Instant::now() + Duration::from_secs(15);
    loop {
        reqwest::get(service.url("/api/v1/portfolios")).await.unwrap();
        let telemetry = service.telemetry().await;
        let traces = &telemetry["traces"]["exporters"][0];
        assert_eq!(traces["endpoint"], format!("https://{endpoint}"), "{telemetry}");
        if traces["delivering"] == false && telemetry["metrics"]["exporters"][0]["delivering"] == false {
            break;
        }
        assert!(Instant::now() < deadline, "the failures show in /health/detailed: {telemetry}");
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    assert_eq!(reqwest::get(service.url("/")).await.unwrap().status(), 200);
    let (_, logs) = service.stop();
    let warned = warnings_naming(&logs, "OTEL_EXPORTER_OTLP_ENDPOINT");
    assert_eq!(warned.len(), 1, "one WARN naming the variable:\n{logs}");
    assert!(warned[0].contains("OTEL_EXPORTER_OTLP_INSECURE=true"), "it says how to get plaintext: {}", warned[0]);
    collector.snapshot(|r| assert_eq!(r.requests, 0, "TLS against a plaintext collector delivers nothing"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_malformed_endpoint_and_a_missing_certificate_leave_out_only_their_exporters() {
    let collector = Receiver::http("127.0.0.1:0".parse().unwrap()).await.unwrap();
    let traces = format!("{}/v1/traces", collector.endpoint());
    let env = [
        ("OTEL_EXPORTER_OTLP_ENDPOINT", "http://[::1"),
        ("OTEL_EXPORTER_OTLP_TRACES_ENDPOINT", traces.as_str()),
        ("OTEL_EXPORTER_OTLP_TRACES_CERTIFICATE", "/nonexistent/collector-ca.pem"),
    ];
    let service = Service::start(&env).await;
    let telemetry = service.telemetry().await;
    for signal in ["metrics", "logs"] {
        assert_eq!(telemetry[signal]["status"], "disabled", "{telemetry}");
        assert!(telemetry[signal]["reason"].as_str().unwrap().starts_with("OTEL_EXPORTER_OTLP_ENDPOINT="));
    }
    let reason = telemetry["traces"]["reason"].as_str().unwrap();
    assert!(reason.starts_with("OTEL_EXPORTER_OTLP_TRACES_CERTIFICATE=/nonexistent/collector-ca.pem"), "{reason}");
    let (_, logs) = service.stop();
    assert_eq!(warnings_naming(&logs, "OTEL_EXPORTER_OTLP_ENDPOINT=").len(), 1, "{logs}");
    assert_eq!(warnings_naming(&logs, "OTEL_EXPORTER_OTLP_TRACES_CERTIFICATE").len(), 1, "{logs}");

    let printed = Command::new(BIN).args(["config", "print"]).env_clear().envs(env).output().unwrap();
    assert!(printed.status.success());
    let printed = String::from_utf8(printed.stdout).unwrap();
    let section = printed.split("[telemetry.traces]").nth(1).expect("a telemetry section");
    assert!(section.contains("status = \"disabled\"") && section.contains("OTEL_EXPORTER_OTLP_TRACES_CERTIFICATE"));
    assert!(printed.contains("[telemetry.metrics]\nstatus = \"disabled\"\nreason = \"OTEL_EXPORTER_OTLP_ENDPOINT="));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn headers_compression_and_b3_propagation_reach_the_collector() {
    let collector = Receiver::http("127.0.0.1:0".parse().unwrap()).await.unwrap();
    let endpoint = collector.endpoint();
    let service = Service::start(&[
        ("OTEL_EXPORTER_OTLP_ENDPOINT", endpoint.as_str()),
        ("OTEL_EXPORTER_OTLP_HEADERS", "x-tenant=bench,authorization=Bearer%20s3cret"),
        ("OTEL_EXPORTER_OTLP_TRACES_HEADERS", "x-tenant=traces-only"),
        ("OTEL_EXPORTER_OTLP_COMPRESSION", "gzip"),
        ("OTEL_PROPAGATORS", "b3multi"),
        ("OTEL_BSP_SCHEDULE_DELAY", "50"),
        ("OTEL_METRIC_EXPORT_INTERVAL", "300"),
        ("OTEL_TRACES_SAMPLER", "parentbased_always_on"),
    ])
    .await;
    let trace_id = "463ac35c9f6413ad48485a3953bb6124";
    let response = reqwest::Client::new()
        .get(service.url("/api/v1/portfolios"))
        .header("X-B3-TraceId", trace_id)
        .header("X-B3-SpanId", "a2fb4a1d1a96d312")
        .header("X-B3-Sampled", "1")
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 200);
    assert_eq!(response.headers()["x-b3-traceid"], trace_id, "the B3 context is answered");
    let span = collector
        .wait_for(Duration::from_secs(10), |r| {
            r.spans.iter().find(|s| s.trace_id == trace_id && s.name == "GET /api/v1/portfolios").cloned()
        })
        .await
        .expect("the span continues the caller's B3 trace");
    assert_eq!(span.parent_span_id, "a2fb4a1d1a96d312");
    let headers = collector
        .wait_for(Duration::from_secs(10), |r| (r.headers.len() >= 2).then(|| r.headers.clone()))
        .await
        .unwrap();
    assert!(headers.iter().any(|h| h.get("x-tenant").map(String::as_str) == Some("traces-only")), "{headers:?}");
    assert!(headers.iter().any(|h| h.get("x-tenant").map(String::as_str) == Some("bench")
        && h.get("authorization").map(String::as_str) == Some("Bearer s3cret")));
    assert!(headers.iter().all(|h| h.get("content-encoding").map(String::as_str) == Some("gzip")), "{headers:?}");
    let telemetry = service.telemetry().await;
    assert!(!telemetry.to_string().contains("s3cret"), "header values are never shown");
    service.stop();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_sdk_can_be_disabled_and_signals_sent_to_the_console() {
    let collector = Receiver::grpc("127.0.0.1:0".parse().unwrap()).await.unwrap();
    let endpoint = collector.endpoint();
    let service =
        Service::start(&[("OTEL_EXPORTER_OTLP_ENDPOINT", endpoint.as_str()), ("OTEL_SDK_DISABLED", "true")]).await;
    reqwest::get(service.url("/api/v1/portfolios")).await.unwrap();
    let telemetry = service.telemetry().await;
    for signal in ["traces", "metrics", "logs"] {
        assert_eq!(telemetry[signal]["reason"], "OTEL_SDK_DISABLED=true", "{telemetry}");
    }
    service.stop();

    let service = Service::start(&[
        ("OTEL_EXPORTER_OTLP_ENDPOINT", endpoint.as_str()),
        ("OTEL_EXPORTER_OTLP_PROTOCOL", "grpc"),
        ("OTEL_TRACES_EXPORTER", "console"),
        ("OTEL_METRICS_EXPORTER", "none"),
        ("OTEL_LOGS_EXPORTER", "otlp"),
        ("OTEL_BSP_SCHEDULE_DELAY", "50"),
        ("OTEL_BLRP_SCHEDULE_DELAY", "50"),
    ])
    .await;
    reqwest::get(service.url("/api/v1/portfolios")).await.unwrap();
    collector.wait_for(Duration::from_secs(10), |r| (!r.logs.is_empty()).then_some(())).await.expect("logs over OTLP");
    let telemetry = service.telemetry().await;
    assert_eq!(telemetry["traces"]["exporters"][0]["exporter"], "console", "{telemetry}");
    assert_eq!(telemetry["metrics"]["reason"], "OTEL_METRICS_EXPORTER=none");
    let (stdout, _) = service.stop();
    assert!(stdout.contains("GET /api/v1/portfolios"), "spans on stdout:\n{stdout}");
    collector.snapshot(|r| assert!(r.spans.is_empty() && r.metric_names.is_empty()));
}

/// `OTEL_EXPORTER_OTLP_CERTIFICATE` names the CA of collectors that speak TLS: the gRPC one
/// behind a schemeless endpoint (TLS, as `OTEL_EXPORTER_OTLP_INSECURE` is unset) and the
/// HTTPS one of the traces.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_certificate_variable_verifies_tls_collectors_over_grpc_and_https() {
    let key = rcgen::generate_simple_self_signed(vec!["localhost".into()]).unwrap();
    let (cert, private) = (key.cert.pem(), key.signing_key.serialize_pem());
    let dir = tempfile::tempdir().unwrap();
    let ca = dir.path().join("collector-ca.pem");
    std::fs::write(&ca, &cert).unwrap();
    let grpc = Receiver::grpc_tls("127.0.0.1:0".parse().unwrap(), &cert, &private).await.unwrap();
    let https = Receiver::https("127.0.0.1:0".parse().unwrap(), &cert, &private).await.unwrap();
    let endpoint = format!("localhost:{}", grpc.address.port());
    let traces = format!("https://localhost:{}/v1/traces", https.address.port());
    let service = Service::start(&[
        ("OTEL_EXPORTER_OTLP_ENDPOINT", endpoint.as_str()),
        ("OTEL_EXPORTER_OTLP_TRACES_ENDPOINT", traces.as_str()),
        ("OTEL_EXPORTER_OTLP_CERTIFICATE", ca.to_str().unwrap()),
        ("OTEL_BSP_SCHEDULE_DELAY", "50"),
        ("OTEL_METRIC_EXPORT_INTERVAL", "300"),
    ])
    .await;
    reqwest::get(service.url("/api/v1/portfolios")).await.unwrap();
    let spans = https.wait_for(Duration::from_secs(10), |r| (!r.spans.is_empty()).then_some(())).await;
    assert!(spans.is_some(), "spans over HTTPS: {}", service.telemetry().await);
    let metrics = grpc.wait_for(Duration::from_secs(10), |r| (!r.metric_names.is_empty()).then_some(())).await;
    assert!(metrics.is_some(), "metrics over gRPC with TLS: {}", service.telemetry().await);
    let telemetry = service.telemetry().await;
    assert_eq!(telemetry["metrics"]["exporters"][0]["endpoint"], format!("https://{endpoint}"));
    assert_eq!(telemetry["metrics"]["exporters"][0]["tls"], true);
    service.stop();
}

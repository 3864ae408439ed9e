//! Observability end to end: a real `portfolio-service` process exporting to an in-process OTLP
//! receiver (gRPC and HTTP/protobuf, decoded), its JSON logs captured from stderr, a dead
//! collector, and runtime flags reloaded on SIGHUP or a file change.

mod common;

use common::Service;
use pfs_observability::testing::{ReceivedSpan, Receiver};
use pfs_test_support::free_port;
use serde_json::Value;
use std::net::SocketAddr;
use std::process::Stdio;
use std::time::{Duration, Instant};
const CALLER_TRACE: &str = "4bf92f3577b34da6a3ce929d0e0e4736";

impl Service {
    fn start(env: &[(&str, &str)], capture_logs: bool) -> Self {
        let port = free_port();
        let data = tempfile::tempdir().unwrap();
        let mut command = common::serve(port, data.path());
        command
            .env("PORTFOLIO_OBSERVABILITY__OTLP__METRICS_INTERVAL", "1s")
            .stdout(Stdio::null())
            .stderr(if capture_logs { Stdio::piped() } else { Stdio::null() });
        for (key, value) in env {
            command.env(key, value);
        }
        let child = command.spawn().expect("start portfolio-service");
        Self { child, base: format!("http://127.0.0.1:{port}"), data: Some(data) }
    }

    async fn ready(&self, client: &reqwest::Client) {
        let deadline = Instant::now() + Duration::from_secs(20);
        while client.get(self.url("/health")).send().await.is_err() {
            assert!(Instant::now() < deadline, "service did not start");
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }

    fn rss_kib(&self) -> u64 {
        let status = std::fs::read_to_string(format!("/proc/{}/status", self.child.id())).unwrap();
        let line = status.lines().find(|l| l.starts_with("VmRSS:")).unwrap();
        line.split_whitespace().nth(1).unwrap().parse().unwrap()
    }

    /// Stops the process and returns what it wrote to stderr.
    fn stop(self) -> String {
        self.output().1
    }
}

/// Creates a portfolio and reads it back with a caller's `traceparent`; returns its id.
async fn create_and_get(client: &reqwest::Client, service: &Service) -> String {
    let created: Value = client
        .post(service.url("/api/v1/portfolios"))
        .json(&serde_json::json!({"name": "Traced"}))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let id = created["portfolioId"].as_str().expect("id").to_owned();
    let response = client
        .get(service.url(&format!("/api/v1/portfolio/{id}")))
        .header("traceparent", format!("00-{CALLER_TRACE}-00f067aa0ba902b7-01"))
        .header("x-request-id", "req-observability-1")
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 200);
    let traceparent = response.headers()["traceparent"].to_str().unwrap().to_owned();
    assert!(traceparent.starts_with(&format!("00-{CALLER_TRACE}-")), "{traceparent}");
    id
}

async fn assert_request_span_and_metrics_arrive(receiver: &Receiver, id: &str) {
    let route = "/api/v1/portfolio/{portfolioId}";
    let span: ReceivedSpan = receiver
        .wait_for(Duration::from_secs(10), |r| {
            r.spans.iter().find(|s| s.name == format!("GET {route}") && s.trace_id == CALLER_TRACE).cloned()
        })
        .await
        .unwrap_or_else(|| {
            panic!("the GET span arrives in the caller's trace: {:#?}", receiver.snapshot(|r| format!("{r:?}")))
        });
    let attribute = |key: &str| span.attributes.get(key).map(String::as_str);
    assert_eq!(attribute("http.request.method"), Some("GET"), "{span:?}");
    assert_eq!(attribute("http.route"), Some(route), "{span:?}");
    assert_eq!(attribute("http.response.status_code"), Some("200"), "{span:?}");
    assert_eq!(attribute("url.path"), Some(format!("/api/v1/portfolio/{id}").as_str()), "{span:?}");
    assert_eq!(span.parent_span_id, "00f067aa0ba902b7", "the caller's span is the parent");
    assert_eq!(span.service_name.as_deref(), Some("otlp-test-service"));
    // The cache's get under the request's span, and the database's get under the cache's.
    let gets = receiver
        .wait_for(Duration::from_secs(5), |r| {
            let gets: Vec<_> =
                r.spans.iter().filter(|s| s.trace_id == CALLER_TRACE && s.name == "get").cloned().collect();
            (gets.len() >= 2).then_some(gets)
        })
        .await
        .expect("cache and storage child spans");
    let cache = gets.iter().find(|s| s.parent_span_id == span.span_id).unwrap_or_else(|| panic!("{gets:#?}"));
    assert!(
        gets.iter().any(|s| s.parent_span_id == cache.span_id),
        "the database get is the cache get's child: {gets:#?}"
    );
    let metrics = receiver
        .wait_for(Duration::from_secs(10), |r| {
            r.metric_names.iter().any(|n| n == "http.server.request.duration").then(|| r.metric_names.clone())
        })
        .await
        .expect("the request duration metric arrives");
    assert!(metrics.iter().any(|n| n == "http.server.active.requests"), "{metrics:?}");
    // Nothing scrapes here: the pool gauges arrive only because the app refreshes them on the
    // push interval.
    let pools = ["db.client.connections.usage", "db.client.connections.max", "db.client.connections.wait.time"];
    receiver
        .wait_for(Duration::from_secs(10), |r| {
            pools.iter().all(|p| r.metric_names.iter().any(|n| n == p)).then_some(())
        })
        .await
        .unwrap_or_else(|| panic!("pool metrics arrive: {:?}", receiver.snapshot(|r| r.metric_names.clone())));
}

async fn exports_to(receiver: Receiver, protocol: &str) {
    let endpoint = receiver.endpoint();
    let service = Service::start(
        &[
            ("OTEL_EXPORTER_OTLP_ENDPOINT", endpoint.as_str()),
            ("OTEL_EXPORTER_OTLP_PROTOCOL", protocol),
            ("OTEL_SERVICE_NAME", "otlp-test-service"),
            ("OTEL_TRACES_SAMPLER", "parentbased_traceidratio"),
            ("OTEL_TRACES_SAMPLER_ARG", "1.0"),
        ],
        false,
    );
    let client = reqwest::Client::new();
    service.ready(&client).await;
    let id = create_and_get(&client, &service).await;
    assert_request_span_and_metrics_arrive(&receiver, &id).await;
    service.stop();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn spans_and_metrics_arrive_over_grpc() {
    exports_to(Receiver::grpc("127.0.0.1:0".parse().unwrap()).await.unwrap(), "grpc").await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn spans_and_metrics_arrive_over_http_protobuf() {
    exports_to(Receiver::http("127.0.0.1:0".parse().unwrap()).await.unwrap(), "http/protobuf").await;
}

/// Head sampling: at ratio 0 an unsampled request builds no span and answers no `traceparent`
/// (there is no trace to point at), yet its log lines carry a trace id: a fresh one, or the one
/// its caller sent; a caller's sampled trace is followed and exported.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn unsampled_requests_export_nothing_but_callers_sampled_traces_are_followed() {
    let receiver = Receiver::grpc("127.0.0.1:0".parse().unwrap()).await.unwrap();
    let endpoint = receiver.endpoint();
    let service = Service::start(
        &[
            ("PORTFOLIO_ENV", "staging"),
            ("PORTFOLIO_LOG_LEVEL", "debug"),
            ("PORTFOLIO_SERVER__SHUTDOWN_DRAIN_DELAY", "0s"),
            ("OTEL_EXPORTER_OTLP_ENDPOINT", endpoint.as_str()),
            ("OTEL_EXPORTER_OTLP_PROTOCOL", "grpc"),
            ("OTEL_TRACES_SAMPLER", "parentbased_traceidratio"),
            ("OTEL_TRACES_SAMPLER_ARG", "0"),
        ],
        true,
    );
    let client = reqwest::Client::new();
    service.ready(&client).await;
    let unsampled_caller = "0af7651916cd43dd8448eb211c80319c";
    for (request_id, traceparent) in
        [("fresh-unsampled", None), ("caller-unsampled", Some(format!("00-{unsampled_caller}-00f067aa0ba902b7-00")))]
    {
        let mut request = client.get(service.url("/api/v1/portfolios")).header("x-request-id", request_id);
        if let Some(traceparent) = traceparent {
            request = request.header("traceparent", traceparent);
        }
        let response = request.send().await.unwrap();
        assert_eq!(response.status(), 200);
        assert!(response.headers().get("traceparent").is_none(), "{request_id}: {:?}", response.headers());
        assert_eq!(response.headers()["x-request-id"], request_id);
    }

    create_and_get(&client, &service).await;
    let spans = receiver
        .wait_for(Duration::from_secs(10), |r| {
            r.spans.iter().any(|s| s.trace_id == CALLER_TRACE).then(|| r.spans.clone())
        })
        .await
        .expect("the caller's sampled trace is exported");
    assert!(spans.iter().all(|s| s.trace_id == CALLER_TRACE), "only the sampled trace: {spans:#?}");
    let logs = service.stop();
    let trace_of = |request_id: &str| {
        logs.lines()
            .filter_map(|l| serde_json::from_str::<Value>(l).ok())
            .find(|l| l["request_id"] == request_id)
            .and_then(|l| l["trace_id"].as_str().map(str::to_owned))
            .unwrap_or_else(|| panic!("a line of {request_id} with a trace id:\n{logs}"))
    };
    let fresh = trace_of("fresh-unsampled");
    assert!(fresh.len() == 32 && fresh.bytes().all(|b| b.is_ascii_hexdigit() && !b.is_ascii_uppercase()), "{fresh}");
    assert_ne!(fresh, "0".repeat(32));
    assert_eq!(trace_of("caller-unsampled"), unsampled_caller);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn json_logs_carry_the_request_id_and_the_trace_id() {
    let service =
        Service::start(&[("PORTFOLIO_ENV", "staging"), ("PORTFOLIO_SERVER__SHUTDOWN_DRAIN_DELAY", "0s")], true);
    let client = reqwest::Client::new();
    service.ready(&client).await;
    create_and_get(&client, &service).await;
    let logs = service.stop();
    let lines: Vec<Value> = logs.lines().filter_map(|l| serde_json::from_str(l).ok()).collect();
    assert!(!lines.is_empty() && lines.len() == logs.lines().count(), "every line is JSON:\n{logs}");
    let line = lines
        .iter()
        .find(|l| l["request_id"] == "req-observability-1")
        .unwrap_or_else(|| panic!("a line of the request:\n{logs}"));
    assert_eq!(line["trace_id"], CALLER_TRACE, "{line}");
    assert_eq!(line["http.route"], "/api/v1/portfolio/{portfolioId}", "{line}");
    assert_eq!(line["http.request.method"], "GET", "the request line names the method: {line}");
    let request_line = lines
        .iter()
        .find(|l| l["request_id"] == "req-observability-1" && l["message"] == "request")
        .unwrap_or_else(|| panic!("the request line:\n{logs}"));
    assert_eq!(request_line["client.address"], "127.0.0.1", "the request line names the client: {request_line}");
    assert!(lines.iter().filter(|l| l["message"] == "request").all(|l| l["trace_id"].is_string()), "{logs}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_dead_collector_costs_neither_latency_nor_memory_and_export_resumes() {
    let port = free_port();
    let address: SocketAddr = format!("127.0.0.1:{port}").parse().unwrap();
    let endpoint = format!("http://{address}");
    let service = Service::start(
        &[
            ("OTEL_EXPORTER_OTLP_ENDPOINT", endpoint.as_str()),
            ("OTEL_EXPORTER_OTLP_PROTOCOL", "grpc"),
            ("OTEL_SERVICE_NAME", "otlp-test-service"),
            ("PORTFOLIO_OBSERVABILITY__OTLP__BREAKER_OPEN_FOR", "1s"),
            ("PORTFOLIO_OBSERVABILITY__OTLP__MAX_QUEUE_SIZE", "256"),
            ("PORTFOLIO_LOG_LEVEL", "warn"),
        ],
        false,
    );
    let client = reqwest::Client::new();
    service.ready(&client).await;
    let id = create_and_get(&client, &service).await;
    let path = format!("/api/v1/portfolio/{id}");
    let mut slowest = Duration::ZERO;
    for round in 0..6 {
        if round == 1 {
            // After warm-up: allocator pools and caches are sized; from here RSS must stay flat.
            tokio::time::sleep(Duration::from_millis(200)).await;
        }
        let before = service.rss_kib();
        for _ in 0..20 {
            let requests = (0..25).map(|_| {
                let (client, url) = (client.clone(), service.url(&path));
                async move {
                    let start = Instant::now();
                    let status = client.get(url).send().await.unwrap().status();
                    (status, start.elapsed())
                }
            });
            for (status, elapsed) in futures::future::join_all(requests).await {
                assert_eq!(status, 200);
                slowest = slowest.max(elapsed);
            }
        }
        if round > 0 {
            let grown = service.rss_kib().saturating_sub(before);
            assert!(grown < 16 * 1024, "round {round}: RSS grew {grown} KiB with the collector down");
        }
    }
    // A bound no retrying exporter could meet: each request would wait on connects otherwise.
    assert!(slowest < Duration::from_secs(2), "slowest request {slowest:?}");
    let metrics = client.get(service.url("/metrics")).send().await.unwrap().text().await.unwrap();
    let dropped = metrics
        .lines()
        .find(|l| l.starts_with("otlp_exporter_dropped_total{signal=\"traces\"}"))
        .unwrap_or_else(|| panic!("dropped spans are counted:\n{metrics}"));
    let dropped: f64 = dropped.rsplit(' ').next().unwrap().parse().unwrap();
    assert!(dropped >= 1000.0, "{dropped}");
    // Failed exports (one per 500 ms batch at most) open the breaker after three.
    let opened = |metrics: &str| {
        metrics.lines().any(|l| {
            l.starts_with("circuit_breaker_transitions_total{")
                && l.contains("dependency=\"otlp_traces\"")
                && l.contains("to=\"open\"")
        })
    };
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        client.get(service.url(&path)).send().await.unwrap();
        let metrics = client.get(service.url("/metrics")).send().await.unwrap().text().await.unwrap();
        if opened(&metrics) {
            break;
        }
        assert!(Instant::now() < deadline, "the breaker did not open:\n{metrics}");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    // The health report lists the exporter's breaker and says telemetry is in fallback mode.
    let detailed: Value = client.get(service.url("/health/detailed")).send().await.unwrap().json().await.unwrap();
    let checks = &detailed["checks"];
    assert_ne!(checks["circuit_breakers"]["breakers"]["otlp_traces"], "closed", "{checks}");
    assert_eq!(checks["circuit_breakers"]["status"], "degraded", "{checks}");
    assert_eq!(checks["monitoring"]["fallback_mode"], true, "{checks}");
    assert_eq!(checks["monitoring"]["status"], "degraded", "{checks}");

    let receiver = Receiver::grpc(address).await.expect("the collector comes back on the same port");
    let deadline = Instant::now() + Duration::from_secs(15);
    loop {
        client.get(service.url(&path)).send().await.unwrap();
        if receiver.snapshot(|r| r.spans.iter().any(|s| s.name.starts_with("GET /api/v1/portfolio/"))) {
            break;
        }
        assert!(Instant::now() < deadline, "export did not resume after the collector came back");
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    let monitoring = async || {
        let detailed: Value = client.get(service.url("/health/detailed")).send().await.unwrap().json().await.unwrap();
        detailed["checks"]["monitoring"].clone()
    };
    let deadline = Instant::now() + Duration::from_secs(15);
    while monitoring().await["fallback_mode"] != false {
        client.get(service.url(&path)).send().await.unwrap();
        assert!(Instant::now() < deadline, "still in fallback mode after export resumed: {}", monitoring().await);
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    service.stop();
}

/// Reads `runtime_flags` from `/health/detailed`.
async fn flags(client: &reqwest::Client, service: &Service) -> Value {
    let body: Value = client.get(service.url("/health/detailed")).send().await.unwrap().json().await.unwrap();
    body["runtime_flags"].clone()
}

async fn request_count(client: &reqwest::Client, service: &Service) -> f64 {
    let metrics = client.get(service.url("/metrics")).send().await.unwrap().text().await.unwrap();
    metrics
        .lines()
        .filter(|l| l.starts_with("http_server_request_duration_seconds_count{") && l.contains("/health/live"))
        .map(|l| l.rsplit(' ').next().unwrap().parse::<f64>().unwrap())
        .sum()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sighup_reloads_the_flags_from_the_file_without_a_restart() {
    // File polling off: only the signal can reload.
    flags_reload_without_a_restart("0s", |service| service.signal("HUP")).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_changed_config_file_is_reloaded_without_a_signal() {
    flags_reload_without_a_restart("200ms", |_| {}).await;
}

/// Starts a service on a configuration file with the RED layer on, rewrites the file with it
/// off, calls `trigger`, and checks the flags change and the layer stops recording, in the
/// same process.
async fn flags_reload_without_a_restart(poll: &str, trigger: impl FnOnce(&Service)) {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("flags.toml");
    std::fs::write(&file, "[observability.flags]\nmetrics_middleware = true\ndatabase_tracing = true\n").unwrap();
    let service = Service::start(
        &[("PORTFOLIO_CONFIG_FILE", file.to_str().unwrap()), ("PORTFOLIO_OBSERVABILITY__CONFIG_RELOAD_INTERVAL", poll)],
        false,
    );
    let client = reqwest::Client::new();
    service.ready(&client).await;
    let pid_before = service.child.id();
    assert_eq!(flags(&client, &service).await["metrics_middleware"], true);
    client.get(service.url("/health/live")).send().await.unwrap();
    let counted = request_count(&client, &service).await;
    assert!(counted >= 1.0);

    std::fs::write(&file, "[observability.flags]\nmetrics_middleware = false\ndatabase_tracing = false\n").unwrap();
    trigger(&service);
    let deadline = Instant::now() + Duration::from_secs(10);
    while flags(&client, &service).await["metrics_middleware"] != false {
        assert!(Instant::now() < deadline, "the flags were not reloaded");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert_eq!(flags(&client, &service).await["database_tracing"], false);
    for _ in 0..5 {
        client.get(service.url("/health/live")).send().await.unwrap();
    }
    assert_eq!(request_count(&client, &service).await, counted, "the RED layer stopped recording");
    assert_eq!(service.child.id(), pid_before);
    service.stop();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_admin_endpoint_switches_metrics_off_and_on_without_a_restart() {
    // SHA-256 of "test-admin-key".
    let keys = "admin:ops:944650a7cd0f9e14d5c4fb15edbffb7fa45fb9ed36a4fa9be3d7e5476ae51bd9";
    let service = Service::start(&[("PORTFOLIO_AUTH__ENABLED", "true"), ("PORTFOLIO_AUTH__API_KEYS", keys)], false);
    let client = reqwest::Client::new();
    service.ready(&client).await;
    let set = |enabled: bool| {
        client
            .patch(service.url("/admin/flags"))
            .header("authorization", "Bearer test-admin-key")
            .json(&serde_json::json!({"metrics_middleware": enabled}))
            .send()
    };
    client.get(service.url("/health/live")).send().await.unwrap();
    let before = request_count(&client, &service).await;
    assert_eq!(set(false).await.unwrap().status(), 200);
    for _ in 0..3 {
        client.get(service.url("/health/live")).send().await.unwrap();
    }
    assert_eq!(request_count(&client, &service).await, before, "recording stopped");
    assert_eq!(set(true).await.unwrap().status(), 200);
    client.get(service.url("/health/live")).send().await.unwrap();
    assert_eq!(request_count(&client, &service).await, before + 1.0, "recording resumed");
    service.stop();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_log_level_set_at_runtime_applies_to_sampled_and_unsampled_requests() {
    // The level is the output layer's filter, not a gate for spans: the request span (INFO)
    // must still give the DEBUG lines of sampled and unsampled requests their ids.
    let keys = "admin:ops:944650a7cd0f9e14d5c4fb15edbffb7fa45fb9ed36a4fa9be3d7e5476ae51bd9";
    let service = Service::start(
        &[
            ("PORTFOLIO_ENV", "staging"),
            ("PORTFOLIO_LOG_LEVEL", "warn"),
            ("PORTFOLIO_SERVER__SHUTDOWN_DRAIN_DELAY", "0s"),
            ("PORTFOLIO_AUTH__ENABLED", "true"),
            ("PORTFOLIO_AUTH__API_KEYS", keys),
        ],
        true,
    );
    let client = reqwest::Client::new();
    service.ready(&client).await;
    let get = |request_id: &'static str, flags: &'static str| {
        client
            .get(service.url("/health/live"))
            .header("x-request-id", request_id)
            .header("traceparent", format!("00-{CALLER_TRACE}-00f067aa0ba902b7-{flags}"))
            .send()
    };
    get("before-sampled", "01").await.unwrap();
    let patched = client
        .patch(service.url("/admin/flags"))
        .header("authorization", "Bearer test-admin-key")
        .json(&serde_json::json!({"log_level": "warn,pfs_api=debug"}))
        .send()
        .await
        .unwrap();
    assert_eq!(patched.status(), 200);
    get("after-sampled", "01").await.unwrap();
    get("after-unsampled", "00").await.unwrap();
    let logs = service.stop();
    let completed = |request_id: &str| {
        logs.lines()
            .filter_map(|l| serde_json::from_str::<Value>(l).ok())
            .any(|l| l["message"] == "request completed" && l["request_id"] == request_id)
    };
    assert!(!completed("before-sampled"), "DEBUG is off before the change:\n{logs}");
    assert!(completed("after-sampled"), "a sampled request logs at the new level:\n{logs}");
    assert!(completed("after-unsampled"), "an unsampled request logs at the new level:\n{logs}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_request_traced_under_concurrent_writes_stays_healthy() {
    // Storage spans end on other threads than they began on (sqlx's SQLite worker drops the
    // caller's span there); a tracing set-up that closes spans in the wrong place panics that
    // worker, and every request after it fails.
    let service = Service::start(
        &[
            ("OTEL_TRACES_SAMPLER_ARG", "1.0"),
            ("PORTFOLIO_OBSERVABILITY__FLAGS__DATABASE_TRACING", "true"),
            ("PORTFOLIO_SERVER__SHUTDOWN_DRAIN_DELAY", "0s"),
            // Warnings and errors only: the captured output is read once the process stops.
            ("PORTFOLIO_LOG_LEVEL", "warn"),
        ],
        true,
    );
    let client = reqwest::Client::new();
    service.ready(&client).await;
    let mut clients = tokio::task::JoinSet::new();
    for worker in 0..8 {
        let (client, base) = (client.clone(), service.url(""));
        clients.spawn(async move {
            let mut statuses = Vec::new();
            for i in 0..25 {
                let created = client
                    .post(format!("{base}/api/v2/portfolios"))
                    .json(&serde_json::json!([{ "name": format!("traced-{worker}-{i}") }]))
                    .send()
                    .await
                    .unwrap();
                statuses.push(created.status().as_u16());
                let body: Value = created.json().await.unwrap_or_default();
                let id = body[0]["portfolioId"].as_str().unwrap_or("000000000000000000000000").to_owned();
                let read = client.get(format!("{base}/api/v1/portfolio/{id}")).send().await.unwrap();
                statuses.push(read.status().as_u16());
            }
            statuses
        });
    }
    let statuses: Vec<u16> = clients.join_all().await.into_iter().flatten().collect();
    let logs = service.stop();
    assert_eq!(statuses.len(), 400);
    assert!(
        statuses.iter().all(|s| (200..300).contains(s)),
        "{:?}\n{logs}",
        statuses.iter().filter(|s| **s >= 300).collect::<Vec<_>>()
    );
    assert!(!logs.contains("panic"), "{logs}");
}

//! The process's one `metrics` recorder.
//!
//! Every crate emits through the `metrics` facade, but for the request durations, which
//! [`crate::red`] keeps itself and [`render`] adds. The recorder installed here renders the
//! Prometheus text format for `/metrics`; when OTLP metric push is configured, a fan-out also
//! hands each update to [`OtelBridge`], which records it on an OpenTelemetry instrument of the
//! same meaning (so OTLP carries the same series; no second instrumentation API exists).

mod otel;

pub use otel::OtelBridge;

use metrics_exporter_prometheus::{Matcher, PrometheusBuilder, PrometheusHandle};
use metrics_util::layers::FanoutBuilder;
use std::sync::OnceLock;
use std::time::Duration;

use crate::red::LATENCY;

/// Bulk request sizes (the API accepts at most 100 portfolios).
const SIZES: &[f64] = &[1.0, 2.0, 5.0, 10.0, 25.0, 50.0, 100.0];

static HANDLE: OnceLock<PrometheusHandle> = OnceLock::new();

/// Installs the global recorder on first use and returns its Prometheus handle; later calls
/// return the same handle (the first caller decides whether OTLP gets a bridge).
pub fn install(otlp: Option<OtelBridge>) -> PrometheusHandle {
    HANDLE
        .get_or_init(|| {
            let builder = PrometheusBuilder::new()
                .with_recommended_naming(true)
                .set_buckets_for_metric(Matcher::Suffix("_seconds".into()), &LATENCY)
                .and_then(|b| b.set_buckets_for_metric(Matcher::Full("portfolio_bulk_size".into()), SIZES));
            let builder = match builder {
                Ok(builder) => builder,
                Err(err) => unreachable_buckets(err),
            };
            let prometheus = builder.build_recorder();
            let handle = prometheus.handle();
            let installed = match otlp {
                None => metrics::set_global_recorder(prometheus).is_ok(),
                Some(bridge) => metrics::set_global_recorder(
                    FanoutBuilder::default().add_recorder(prometheus).add_recorder(bridge).build(),
                )
                .is_ok(),
            };
            if !installed {
                tracing::warn!("a metrics recorder was already installed; /metrics stays empty");
            }
            describe();
            // Histograms buffer samples until drained; without a scrape they would grow forever.
            let upkeep = handle.clone();
            let _ = std::thread::Builder::new().name("metrics-upkeep".into()).spawn(move || {
                loop {
                    std::thread::sleep(Duration::from_secs(5));
                    upkeep.run_upkeep();
                }
            });
            handle
        })
        .clone()
}

/// The Prometheus text of every metric: the recorder's, and the request durations and the CPU
/// time, which are kept outside it ([`crate::red`], [`crate::process`]).
pub fn render(handle: &PrometheusHandle) -> String {
    let mut text = handle.render();
    crate::red::render_prometheus(&mut text);
    crate::process::render_cpu(&mut text);
    text
}

/// The bucket lists above are constants and non-empty; the builder only refuses empty ones.
fn unreachable_buckets(err: metrics_exporter_prometheus::BuildError) -> PrometheusBuilder {
    tracing::error!(error = %err, "histogram buckets refused; using summaries");
    PrometheusBuilder::new().with_recommended_naming(true)
}

fn describe() {
    use metrics::{describe_counter, describe_gauge, describe_histogram};
    describe_gauge!("http_server_active_requests", "HTTP requests being served.");
    describe_counter!("http_server_errors", "HTTP responses with a 4xx or 5xx status.");
    describe_gauge!("process_resident_memory_bytes", "Resident set size.");
    describe_gauge!("process_memory_limit_bytes", "Memory limit of the container (cgroup); absent when unlimited.");
    describe_gauge!(
        "process_cpu_limit_cores",
        "CPU limit of the container in cores (cgroup quota); absent when unlimited."
    );
    describe_gauge!("process_open_fds", "Open file descriptors.");
    describe_gauge!("tokio_alive_tasks", "Tasks alive in the tokio runtime.");
    describe_gauge!("db_client_connections_usage", "Database connections in use or idle, by pool.");
    describe_gauge!("db_client_connections_max", "Configured maximum database connections, by pool.");
    describe_histogram!(
        "db_client_connections_wait_time_seconds",
        "Time spent waiting to acquire a database connection from the pool."
    );
    describe_counter!("cache_requests", "Read cache lookups, by cache and result.");
    describe_counter!("http_server_rate_limited", "Requests refused by the rate limit (429).");
    describe_counter!("http_server_auth_failures", "Requests refused by authentication or authorization, by reason.");
    describe_histogram!("portfolio_bulk_size", "Portfolios per bulk create request.");
    describe_counter!("otlp_exporter_dropped", "Spans or metric batches dropped instead of exported.");
}

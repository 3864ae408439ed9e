//! The `[observability]` section: what is measured, where it is sent, and the flags that can
//! change while the process runs.

use serde::{Deserialize, Serialize};
use std::time::Duration;

#[derive(Clone, Debug, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ObservabilityConfig {
    /// Installs the metrics recorder, the RED middleware and `/metrics`. Off: none of them exist.
    pub metrics_enabled: bool,
    /// Serves the Prometheus text format at `/metrics` (needs `metrics_enabled`).
    pub prometheus_endpoint: bool,
    /// OpenTelemetry spans for requests (and storage/cache calls). Off: no tracing layer at all.
    pub tracing_enabled: bool,
    /// `parentbased_traceidratio` (default), `traceidratio`, `parentbased_always_on`,
    /// `always_on`, `parentbased_always_off`, `always_off`. Env: OTEL_TRACES_SAMPLER.
    pub trace_sampler: String,
    /// `service.name` of every span and metric. Env: OTEL_SERVICE_NAME.
    pub service_name: String,
    /// `service.namespace` (omitted when empty). Env: OTEL_SERVICE_NAMESPACE.
    pub service_namespace: String,
    /// Extra resource attributes, `key=value,key=value`. Env: OTEL_RESOURCE_ATTRIBUTES.
    pub resource_attributes: String,
    /// Log field names whose values are replaced by `[REDACTED]` (case-insensitive).
    pub redact_fields: Vec<String>,
    /// How often the configuration file (if any) is checked for changes to the runtime flags;
    /// zero checks only on SIGHUP.
    #[serde(with = "humantime_serde")]
    pub config_reload_interval: Duration,
    pub flags: RuntimeFlags,
    pub otlp: OtlpConfig,
}

/// The settings that can change without a restart (SIGHUP or a change of the configuration
/// file, or `PATCH /admin/flags`).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RuntimeFlags {
    /// Ratio of new traces that are sampled, 0.0..=1.0. Env: OTEL_TRACES_SAMPLER_ARG.
    pub trace_sample_ratio: f64,
    /// Child spans for every storage call (cache calls always get one when tracing is on).
    pub database_tracing: bool,
    /// RED metrics per route (the layer exists only with `metrics_enabled`).
    pub metrics_middleware: bool,
    /// One INFO line per request (method, route, status, latency; never bodies).
    pub request_logging: bool,
    /// Share of high-volume log events (those marked `sampled`) that are written, 0.0..=1.0.
    pub log_sample_rate: f64,
}

/// How a signal's exporter talks to its collector. `Auto`: chosen from the endpoint (see the
/// protocol rule in docs/OBSERVABILITY.md).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum OtlpProtocol {
    #[serde(rename = "auto")]
    Auto,
    #[serde(rename = "grpc")]
    Grpc,
    #[serde(rename = "http/protobuf")]
    HttpProtobuf,
}

#[derive(Clone, Debug, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct OtlpConfig {
    /// Collector base URL, e.g. http://127.0.0.1:4317 (gRPC) or http://127.0.0.1:4318 (HTTP).
    /// Empty: nothing is pushed. The `OTEL_EXPORTER_OTLP_*` variables beat every key here.
    pub endpoint: String,
    /// `auto`, `grpc` or `http/protobuf`.
    pub protocol: OtlpProtocol,
    /// `key=value,key=value` sent with every export (values are secrets: never printed).
    pub headers: String,
    /// A schemeless gRPC endpoint (`host:port`) is plaintext when true, TLS otherwise.
    pub insecure: bool,
    /// PEM file of the CA that signs the collector's certificate (empty: the system's roots).
    pub certificate: String,
    pub traces: bool,
    pub metrics: bool,
    pub logs: bool,
    #[serde(with = "humantime_serde")]
    pub metrics_interval: Duration,
    #[serde(with = "humantime_serde")]
    pub metrics_timeout: Duration,
    #[serde(with = "humantime_serde")]
    pub timeout: Duration,
    /// Spans (and log records) waiting for export; beyond this they are dropped and counted.
    pub max_queue_size: usize,
    pub max_batch_size: usize,
    /// How long a partial batch waits for more before it is sent.
    #[serde(with = "humantime_serde")]
    pub batch_delay: Duration,
    /// Consecutive failed exports that open the breaker, and how long it stays open.
    pub breaker_failures: u32,
    #[serde(with = "humantime_serde")]
    pub breaker_open_for: Duration,
}

impl ObservabilityConfig {
    pub(crate) fn problems(&self) -> Vec<String> {
        let mut problems = Vec::new();
        let ratio = |v: f64| (0.0..=1.0).contains(&v);
        if !ratio(self.flags.trace_sample_ratio) {
            problems.push("observability.flags.trace_sample_ratio must be between 0 and 1".into());
        }
        if !ratio(self.flags.log_sample_rate) {
            problems.push("observability.flags.log_sample_rate must be between 0 and 1".into());
        }
        const SAMPLERS: &[&str] = &[
            "always_on",
            "always_off",
            "traceidratio",
            "parentbased_always_on",
            "parentbased_always_off",
            "parentbased_traceidratio",
        ];
        if !SAMPLERS.contains(&self.trace_sampler.as_str()) {
            problems.push(format!("observability.trace_sampler must be one of {}", SAMPLERS.join(", ")));
        }
        if self.otlp.max_queue_size == 0 || self.otlp.max_batch_size == 0 {
            problems.push("observability.otlp.max_queue_size and max_batch_size must be positive".into());
        }
        problems
    }
}

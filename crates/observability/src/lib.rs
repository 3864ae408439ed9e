//! Observability that costs almost nothing when it is off.
//!
//! - [`recorder`]: the one `metrics` facade recorder: Prometheus text for `/metrics`, and a
//!   bridge to OpenTelemetry instruments for OTLP push (each value is recorded once per
//!   exporter; nothing is instrumented twice).
//! - [`pipeline`]: the OpenTelemetry tracer, meter and logger providers resolved from the
//!   OpenTelemetry environment variables, the OTLP exporters (gRPC or HTTP/protobuf) behind a
//!   circuit breaker and a bounded queue per signal, and the tracing bridges.
//! - [`propagation`]: the trace-context headers read and written (`OTEL_PROPAGATORS`).
//! - [`flags`]: the runtime flags (`arc-swap`), reloaded on SIGHUP or through the admin API.
//! - [`http`]: the request span, W3C `traceparent` propagation and the RED metrics the API
//!   middleware records.
//! - [`store`]: a `PortfolioStore` decorator with spans for storage and cache calls.
//! - [`process`]: process and runtime gauges (RSS, CPU, open fds, tokio tasks).
//! - [`pools`]: database connection pool gauges.

pub mod flags;
pub mod http;
pub mod pipeline;
pub mod pools;
pub mod process;
pub mod propagation;
pub mod recorder;
pub mod red;
mod sampler;
pub mod store;

#[cfg(feature = "testing")]
pub mod testing;

pub use flags::{Flags, FlagsPatch, RuntimeFlags};
pub use metrics_exporter_prometheus::PrometheusHandle;
pub use pipeline::{Telemetry, init_process};

use pfs_platform::Config;
use std::sync::Arc;

/// What the API needs: the live flags, and the Prometheus handle when `/metrics` is served.
#[derive(Clone)]
pub struct AppTelemetry {
    pub flags: Arc<RuntimeFlags>,
    pub prometheus: Option<PrometheusHandle>,
    /// Whether the RED middleware layer is part of the stack (`metrics_enabled`).
    pub metrics: bool,
}

impl AppTelemetry {
    /// Whether the request diagnostics layer belongs in the stack.
    pub fn diagnostics(&self) -> bool {
        self.metrics || pipeline::tracing_active()
    }

    /// Installs the metrics recorder (once per process) when metrics are enabled.
    pub fn for_app(config: &Config) -> Self {
        let observability = &config.observability;
        let handle = observability.metrics_enabled.then(|| recorder::install(None));
        Self {
            flags: Arc::new(RuntimeFlags::from_config(config)),
            prometheus: handle.filter(|_| observability.prometheus_endpoint),
            metrics: observability.metrics_enabled,
        }
    }
}

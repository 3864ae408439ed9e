//! The OpenTelemetry pipeline of a serving process: tracer, meter and logger providers, their
//! exporters (OTLP over gRPC or HTTP/protobuf, or the console), the tracing bridges and the
//! logging subscriber around them.
//!
//! [`plan`] resolves every setting from the OpenTelemetry variables and the configuration;
//! building never fails the process: an exporter that cannot be built is left out, with one
//! WARN naming the variable, and `/health/detailed` ([`report`]) says why.

mod build;
mod export;
mod logs;
pub mod plan;
mod queue;
mod resource;
mod sampled;
mod status;
pub(crate) mod vars;

pub use plan::{Plan, Protocol, Signal, endpoint_url, plan, protocol_for};
pub use status::{breakers, monitoring, plan_toml, report};

use crate::recorder::{self, OtelBridge};
use crate::sampler::Configured;
use export::{BreakerMetrics, Delivery, QueueProcessor};
use logs::LogQueue;
use opentelemetry::KeyValue;
use opentelemetry::metrics::ObservableCounter;
use opentelemetry::trace::TracerProvider as _;
use opentelemetry_appender_tracing::layer::OpenTelemetryTracingBridge;
use opentelemetry_sdk::Resource;
use opentelemetry_sdk::logs::SdkLoggerProvider;
use opentelemetry_sdk::metrics::SdkMeterProvider;
use opentelemetry_sdk::metrics::exporter::PushMetricExporter;
use opentelemetry_sdk::metrics::periodic_reader_with_async_runtime::PeriodicReader;
use opentelemetry_sdk::trace::SdkTracerProvider;
use pfs_platform::Config;
use pfs_platform::config::OtlpConfig;
use pfs_resilience::{BreakerSettings, CircuitBreaker};
use plan::{Exporter, SignalPlan};
use status::{ExporterStatus, Installed, SignalStatus};
use std::sync::OnceLock;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;
use tracing_subscriber::Layer;

static TRACING: AtomicBool = AtomicBool::new(false);
static METRICS_PUSH: OnceLock<Duration> = OnceLock::new();

/// Whether sampled requests' spans go to OpenTelemetry in this process (the bridge is installed).
pub fn tracing_active() -> bool {
    TRACING.load(Ordering::Relaxed)
}

/// How often metrics are pushed, when this process pushes them.
pub fn metrics_push_interval() -> Option<Duration> {
    METRICS_PUSH.get().copied()
}

/// The providers to flush and stop when the process ends.
#[derive(Default)]
pub struct Telemetry {
    tracer: Option<SdkTracerProvider>,
    spans: Vec<queue::QueueHandle>,
    meter: Option<SdkMeterProvider>,
    logger: Option<SdkLoggerProvider>,
    logs: Vec<queue::QueueHandle>,
    /// Observed at each export; held so it stays registered.
    cpu_time: Option<ObservableCounter<f64>>,
}

impl Telemetry {
    /// Exports what is still queued (bounded by the export timeout) and stops the providers.
    pub async fn shutdown(self) {
        for spans in &self.spans {
            spans.flush().await;
        }
        for logs in &self.logs {
            logs.flush().await;
        }
        let providers = tokio::task::spawn_blocking(move || {
            if let Some(meter) = self.meter {
                let _ = meter.shutdown();
            }
            if let Some(tracer) = self.tracer {
                let _ = tracer.shutdown();
            }
            if let Some(logger) = self.logger {
                let _ = logger.shutdown();
            }
        });
        let _ = tokio::time::timeout(Duration::from_secs(5), providers).await;
    }
}

/// One exporter's way out: its signal's breaker, the time budget and its status.
fn delivery_for(breaker: &CircuitBreaker, timeout: Duration, plan: &SignalPlan, exporter: &Exporter) -> Delivery {
    Delivery { breaker: breaker.clone(), timeout, status: ExporterStatus::new(plan, exporter) }
}

fn breaker(name: &'static str, otlp: &OtlpConfig) -> CircuitBreaker {
    CircuitBreaker::new(
        name,
        BreakerSettings { failure_threshold: otlp.breaker_failures.max(1), open_for: otlp.breaker_open_for },
    )
}

/// What was built for one signal, for the status report.
struct Built {
    running: Vec<Delivery>,
    failures: Vec<String>,
}

impl Built {
    fn new() -> Self {
        Self { running: Vec::new(), failures: Vec::new() }
    }

    fn status(self, plan: &SignalPlan, warnings: &mut Vec<String>) -> SignalStatus {
        warnings.extend(self.failures.iter().cloned());
        let disabled = plan.disabled.clone().or_else(|| self.failures.first().cloned());
        SignalStatus {
            name: plan.signal.name(),
            left_out: self.failures.len(),
            exporters: self.running.into_iter().map(|d| d.status).collect(),
            disabled,
        }
    }
}

/// Installs, for the whole process: the logging subscriber (with the OpenTelemetry span and
/// log bridges when their signals are on), the configured propagators, and the metrics
/// recorder (bridged to the metric exporters). Must run inside the tokio runtime. Telemetry
/// settings never make this fail.
pub fn init_process(config: &Config) -> anyhow::Result<Telemetry> {
    // reqwest's rustls (HTTPS collectors) takes the process's provider.
    let _ = rustls::crypto::ring::default_provider().install_default();
    let observability = &config.observability;
    let otlp = &observability.otlp;
    let plan = plan::plan(config);
    let mut warnings = plan.warnings.clone();
    let resource = Resource::builder_empty()
        .with_attributes(plan.resource.iter().map(|(k, v)| KeyValue::new(k.clone(), v.clone())))
        .build();
    crate::propagation::install(&plan.propagators);
    let mut telemetry = Telemetry::default();
    let mut signals = Vec::new();
    let mut breakers = Vec::new();

    let mut layer = None;
    let mut traces = Built::new();
    if observability.tracing_enabled {
        crate::sampler::install(Configured::from_name(&observability.trace_sampler));
        // Sampling is decided per request before its span exists (`http::RequestTrace`), so
        // unsampled requests never build OpenTelemetry spans; whatever reaches the SDK is kept.
        let mut builder = SdkTracerProvider::builder()
            .with_sampler(opentelemetry_sdk::trace::Sampler::AlwaysOn)
            .with_resource(resource.clone());
        let breaker = breaker("otlp_traces", otlp);
        for exporter in &plan.traces.exporters {
            let delivery = delivery_for(&breaker, plan.spans.timeout, &plan.traces, exporter);
            let (processor, handle) = match exporter {
                Exporter::Otlp(target) => match build::span_exporter(target) {
                    Ok(mut built) => {
                        opentelemetry_sdk::trace::SpanExporter::set_resource(&mut built, &resource);
                        QueueProcessor::start(built, delivery.clone(), plan.spans)
                    }
                    Err(why) => {
                        traces.failures.push(why);
                        continue;
                    }
                },
                Exporter::Console => {
                    QueueProcessor::start(opentelemetry_stdout::SpanExporter::default(), delivery.clone(), plan.spans)
                }
            };
            builder = builder.with_span_processor(processor);
            telemetry.spans.push(handle);
            traces.running.push(delivery);
        }
        if !traces.running.is_empty() {
            breakers.push(breaker);
        }
        let provider = builder.build();
        let bridge = tracing_opentelemetry::layer()
            .with_tracer(provider.tracer("portfolio-service"))
            .with_location(false)
            .with_threads(false)
            .with_tracked_inactivity(false);
        layer = Some(sampled::SampledOnly::new(bridge));
        telemetry.tracer = Some(provider);
    }
    signals.push(traces.status(&plan.traces, &mut warnings));

    let mut bridge = None;
    let mut metrics = Built::new();
    if observability.metrics_enabled && !plan.metrics.exporters.is_empty() {
        let breaker = breaker("otlp_metrics", otlp);
        let mut builder = SdkMeterProvider::builder();
        for exporter in &plan.metrics.exporters {
            let delivery = delivery_for(&breaker, plan.metric_timeout, &plan.metrics, exporter);
            builder = match exporter {
                Exporter::Otlp(target) => match build::metric_exporter(target) {
                    Ok(built) => builder.with_reader(reader(BreakerMetrics::new(built, delivery.clone()), &plan)),
                    Err(why) => {
                        metrics.failures.push(why);
                        continue;
                    }
                },
                Exporter::Console => {
                    let console = opentelemetry_stdout::MetricExporter::default();
                    builder.with_reader(reader(BreakerMetrics::new(console, delivery.clone()), &plan))
                }
            };
            metrics.running.push(delivery);
        }
        if !metrics.running.is_empty() {
            breakers.push(breaker);
            let provider = builder.with_view(crate::red::latency_view).with_resource(resource.clone()).build();
            let meter = opentelemetry::metrics::MeterProvider::meter(&provider, "portfolio-service");
            telemetry.cpu_time = Some(cpu_time(&meter));
            let otel = OtelBridge::new(meter);
            otel.spawn_sync((plan.metric_interval / 4).max(Duration::from_millis(50)));
            bridge = Some(otel);
            telemetry.meter = Some(provider);
            let _ = METRICS_PUSH.set(plan.metric_interval);
            crate::process::spawn_collector(plan.metric_interval);
        }
    }
    signals.push(metrics.status(&plan.metrics, &mut warnings));
    if observability.metrics_enabled {
        recorder::install(bridge);
    }

    let mut log_layer = None;
    let mut records = Built::new();
    if !plan.logs.exporters.is_empty() {
        let breaker = breaker("otlp_logs", otlp);
        let mut builder = SdkLoggerProvider::builder().with_resource(resource.clone());
        for exporter in &plan.logs.exporters {
            let delivery = delivery_for(&breaker, plan.log_records.timeout, &plan.logs, exporter);
            let (processor, handle) = match exporter {
                Exporter::Otlp(target) => match build::log_exporter(target) {
                    Ok(mut built) => {
                        opentelemetry_sdk::logs::LogExporter::set_resource(&mut built, &resource);
                        LogQueue::start(built, delivery.clone(), plan.log_records)
                    }
                    Err(why) => {
                        records.failures.push(why);
                        continue;
                    }
                },
                Exporter::Console => {
                    LogQueue::start(opentelemetry_stdout::LogExporter::default(), delivery.clone(), plan.log_records)
                }
            };
            builder = builder.with_log_processor(processor);
            telemetry.logs.push(handle);
            records.running.push(delivery);
        }
        if !records.running.is_empty() {
            breakers.push(breaker);
            let provider = builder.build();
            let filter = logs::filter(&config.logging.level);
            log_layer = Some(OpenTelemetryTracingBridge::new(&provider).with_filter(filter));
            telemetry.logger = Some(provider);
        }
    }
    signals.push(records.status(&plan.logs, &mut warnings));

    let mut seen = std::collections::HashSet::new();
    warnings.retain(|warning| seen.insert(warning.clone()));
    let has_layer = layer.is_some();
    let installed = pfs_platform::telemetry::init_with(config, Some(Layer::and_then(layer, log_layer)));
    if installed && has_layer {
        TRACING.store(true, Ordering::Relaxed);
    }
    for warning in &warnings {
        tracing::warn!(target: "pfs::telemetry", "{warning}");
    }
    announce(&signals);
    status::install(Installed {
        signals,
        propagators: plan.propagators.iter().map(|p| p.as_str()).collect(),
        warnings,
        breakers,
    });
    Ok(telemetry)
}

/// `process.cpu.time` (semantic conventions), observed with its fraction at each export.
fn cpu_time(meter: &opentelemetry::metrics::Meter) -> ObservableCounter<f64> {
    meter
        .f64_observable_counter("process.cpu.time")
        .with_unit("s")
        .with_description("User and system CPU time consumed.")
        .with_callback(|observer| {
            if let Some(seconds) = crate::process::cpu_seconds() {
                observer.observe(seconds, &[]);
            }
        })
        .build()
}

fn reader<E: PushMetricExporter + 'static>(exporter: E, plan: &Plan) -> PeriodicReader<E> {
    PeriodicReader::builder(exporter, opentelemetry_sdk::runtime::Tokio)
        .with_interval(plan.metric_interval)
        .with_timeout(plan.metric_timeout)
        .build()
}

/// One INFO line saying where each signal goes.
fn announce(signals: &[SignalStatus]) {
    let parts: Vec<String> = signals
        .iter()
        .map(|signal| match &signal.disabled {
            Some(reason) if signal.exporters.is_empty() => format!("{}: off ({reason})", signal.name),
            _ => {
                let to: Vec<&str> = signal.exporters.iter().map(|e| e.label.as_str()).collect();
                format!("{}: {}", signal.name, to.join(", "))
            }
        })
        .collect();
    tracing::info!(target: "pfs::telemetry", "telemetry {}", parts.join("; "));
}

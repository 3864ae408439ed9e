//! The OpenTelemetry pipeline of a serving process: tracer and meter providers, OTLP
//! exporters, the tracing bridge and the logging subscriber around it.

mod export;
mod sampled;

use crate::recorder::{self, OtelBridge};
use crate::sampler::Configured;
use opentelemetry::KeyValue;
use opentelemetry::trace::TracerProvider as _;
use opentelemetry_otlp::{MetricExporter, Protocol, SpanExporter, WithExportConfig};
use opentelemetry_sdk::Resource;
use opentelemetry_sdk::metrics::SdkMeterProvider;
use opentelemetry_sdk::metrics::periodic_reader_with_async_runtime::PeriodicReader;
use opentelemetry_sdk::propagation::TraceContextPropagator;
use opentelemetry_sdk::trace::SdkTracerProvider;
use pfs_platform::Config;
use pfs_platform::config::{ObservabilityConfig, OtlpProtocol};
use pfs_resilience::{BreakerSettings, CircuitBreaker};
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

static TRACING: AtomicBool = AtomicBool::new(false);

/// Whether sampled requests' spans go to OpenTelemetry in this process (the bridge is installed).
pub fn tracing_active() -> bool {
    TRACING.load(Ordering::Relaxed)
}

/// The providers to flush and stop when the process ends.
#[derive(Default)]
pub struct Telemetry {
    tracer: Option<SdkTracerProvider>,
    spans: Option<export::QueueHandle>,
    meter: Option<SdkMeterProvider>,
}

impl Telemetry {
    /// Exports what is still queued (bounded by the export timeout) and stops the providers.
    pub async fn shutdown(self) {
        if let Some(spans) = self.spans {
            spans.flush().await;
        }
        let providers = tokio::task::spawn_blocking(move || {
            if let Some(meter) = self.meter {
                let _ = meter.shutdown();
            }
            if let Some(tracer) = self.tracer {
                let _ = tracer.shutdown();
            }
        });
        let _ = tokio::time::timeout(Duration::from_secs(5), providers).await;
    }
}

/// Installs, for the whole process: the logging subscriber (with the OpenTelemetry layer when
/// `tracing_enabled`), the W3C trace-context propagator, and the metrics recorder (bridged to
/// OTLP when an endpoint is configured). Must run inside the tokio runtime.
pub fn init_process(config: &Config) -> anyhow::Result<Telemetry> {
    let observability = &config.observability;
    let otlp = &observability.otlp;
    let endpoint = otlp.endpoint.trim().trim_end_matches('/');
    let breaker = CircuitBreaker::new(
        "otlp",
        BreakerSettings { failure_threshold: otlp.breaker_failures.max(1), open_for: otlp.breaker_open_for },
    );
    let resource = resource(observability);
    let mut telemetry = Telemetry::default();

    let mut layer = None;
    if observability.tracing_enabled {
        crate::sampler::install(Configured::from_name(&observability.trace_sampler));
        // Sampling is decided per request before its span exists (`http::RequestTrace`), so
        // unsampled requests never build OpenTelemetry spans; whatever reaches the SDK is kept.
        let mut builder = SdkTracerProvider::builder()
            .with_sampler(opentelemetry_sdk::trace::Sampler::AlwaysOn)
            .with_resource(resource.clone());
        if !endpoint.is_empty() && otlp.traces {
            let mut exporter = span_exporter(endpoint, otlp.protocol, otlp.timeout)?;
            opentelemetry_sdk::trace::SpanExporter::set_resource(&mut exporter, &resource);
            let (processor, handle) = export::QueueProcessor::start(exporter, breaker.clone(), otlp);
            builder = builder.with_span_processor(processor);
            telemetry.spans = Some(handle);
        }
        let provider = builder.build();
        opentelemetry::global::set_text_map_propagator(TraceContextPropagator::new());
        let bridge = tracing_opentelemetry::layer()
            .with_tracer(provider.tracer("portfolio-service"))
            .with_location(false)
            .with_threads(false)
            .with_tracked_inactivity(false);
        layer = Some(sampled::SampledOnly::new(bridge));
        telemetry.tracer = Some(provider);
    }

    let mut bridge = None;
    if observability.metrics_enabled && !endpoint.is_empty() && otlp.metrics {
        let exporter = metric_exporter(endpoint, otlp.protocol, otlp.timeout)?;
        let exporter = export::BreakerMetrics::new(exporter, breaker, otlp.timeout);
        let reader = PeriodicReader::builder(exporter, opentelemetry_sdk::runtime::Tokio)
            .with_interval(otlp.metrics_interval)
            .build();
        let provider = SdkMeterProvider::builder()
            .with_reader(reader)
            .with_view(crate::red::latency_view)
            .with_resource(resource)
            .build();
        let otel = OtelBridge::new(opentelemetry::metrics::MeterProvider::meter(&provider, "portfolio-service"));
        otel.spawn_sync((otlp.metrics_interval / 4).max(Duration::from_millis(50)));
        bridge = Some(otel);
        telemetry.meter = Some(provider);
        crate::process::spawn_collector(otlp.metrics_interval);
    }
    if observability.metrics_enabled {
        recorder::install(bridge);
    }

    let has_layer = layer.is_some();
    if pfs_platform::telemetry::init_with(config, layer) && has_layer {
        TRACING.store(true, Ordering::Relaxed);
    }
    Ok(telemetry)
}

fn resource(config: &ObservabilityConfig) -> Resource {
    let attributes = config.resource_attributes.split(',').filter_map(|pair| {
        let (key, value) = pair.split_once('=')?;
        let (key, value) = (key.trim(), value.trim());
        (!key.is_empty()).then(|| KeyValue::new(key.to_owned(), value.to_owned()))
    });
    Resource::builder_empty()
        .with_attributes(attributes.collect::<Vec<_>>())
        .with_attribute(KeyValue::new("service.version", env!("CARGO_PKG_VERSION")))
        .with_service_name(config.service_name.clone())
        .build()
}

fn span_exporter(endpoint: &str, protocol: OtlpProtocol, timeout: Duration) -> anyhow::Result<SpanExporter> {
    Ok(match protocol {
        OtlpProtocol::Grpc => {
            SpanExporter::builder().with_tonic().with_endpoint(endpoint).with_timeout(timeout).build()?
        }
        OtlpProtocol::HttpProtobuf => SpanExporter::builder()
            .with_http()
            .with_protocol(Protocol::HttpBinary)
            .with_endpoint(format!("{endpoint}/v1/traces"))
            .with_timeout(timeout)
            .build()?,
    })
}

fn metric_exporter(endpoint: &str, protocol: OtlpProtocol, timeout: Duration) -> anyhow::Result<MetricExporter> {
    Ok(match protocol {
        OtlpProtocol::Grpc => {
            MetricExporter::builder().with_tonic().with_endpoint(endpoint).with_timeout(timeout).build()?
        }
        OtlpProtocol::HttpProtobuf => MetricExporter::builder()
            .with_http()
            .with_protocol(Protocol::HttpBinary)
            .with_endpoint(format!("{endpoint}/v1/metrics"))
            .with_timeout(timeout)
            .build()?,
    })
}

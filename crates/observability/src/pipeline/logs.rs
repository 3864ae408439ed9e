//! OTLP log records: every event the log level lets through (with the trace and span ids of
//! the sampled request it belongs to) goes through a bounded queue, full means dropped and
//! counted, to one background task that exports in batches through the `logs` breaker, as
//! spans do ([`super::export`]).

use super::export::Delivery;
use super::plan::Batching;
use super::queue::{Queue, QueueHandle, Sink};
use opentelemetry::InstrumentationScope;
use opentelemetry_sdk::error::OTelSdkResult;
use opentelemetry_sdk::logs::{LogBatch, LogExporter, LogProcessor, SdkLogRecord};
use std::time::Duration;

/// The libraries that carry the export itself: their events must not become log records, or
/// every export would log and every log would be exported.
const EXPORT_STACK: &[&str] = &[
    "h2",
    "hyper",
    "hyper_util",
    "tonic",
    "tower",
    "reqwest",
    "rustls",
    "opentelemetry",
    "opentelemetry_sdk",
    "opentelemetry_otlp",
    "opentelemetry_http",
];

/// The filter of the OTLP log layer: the configured level, without the export stack (whatever
/// the level says about those targets).
pub(crate) fn filter(level: &str) -> tracing_subscriber::EnvFilter {
    let target = |directive: &str| directive.split(['=', '[']).next().unwrap_or_default().trim().to_owned();
    let kept = level.split(',').filter(|d| !d.contains('=') || !EXPORT_STACK.contains(&target(d).as_str()));
    let quiet = EXPORT_STACK.iter().map(|target| format!("{target}=off"));
    let spec: Vec<String> = kept.map(str::to_owned).chain(quiet).collect();
    let spec = spec.join(",");
    pfs_platform::telemetry::parse_filter(&spec).unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info"))
}

/// The log processor: every record into the bounded queue, to the exporter in batches.
#[derive(Debug)]
pub(crate) struct LogQueue {
    queue: Queue<(SdkLogRecord, InstrumentationScope)>,
}

struct Records<E> {
    exporter: E,
    delivery: Delivery,
}

impl<E: LogExporter + 'static> Sink<(SdkLogRecord, InstrumentationScope)> for Records<E> {
    async fn send(&self, batch: Vec<(SdkLogRecord, InstrumentationScope)>) -> bool {
        let records: Vec<(&SdkLogRecord, &InstrumentationScope)> = batch.iter().map(|(r, s)| (r, s)).collect();
        self.delivery.send(self.exporter.export(LogBatch::new(&records))).await
    }
}

impl LogQueue {
    pub(crate) fn start<E: LogExporter + 'static>(
        exporter: E,
        delivery: Delivery,
        batching: Batching,
    ) -> (Self, QueueHandle) {
        let (queue, handle) = Queue::start(Records { exporter, delivery }, batching, "logs");
        (Self { queue }, handle)
    }
}

impl LogProcessor for LogQueue {
    fn emit(&self, record: &mut SdkLogRecord, scope: &InstrumentationScope) {
        self.queue.offer((record.clone(), scope.clone()));
    }

    fn force_flush(&self) -> OTelSdkResult {
        Ok(())
    }

    fn shutdown_with_timeout(&self, _timeout: Duration) -> OTelSdkResult {
        Ok(())
    }
}

//! OTLP log records: every event the log level lets through (with the trace and span ids of
//! the sampled request it belongs to) goes through a bounded queue, full means dropped and
//! counted, to one background task that exports in batches through the `logs` breaker, as
//! spans do ([`super::export`]).

use super::export::{Delivery, dropped};
use super::plan::Batching;
use opentelemetry::InstrumentationScope;
use opentelemetry_sdk::error::OTelSdkResult;
use opentelemetry_sdk::logs::{LogBatch, LogExporter, LogProcessor, SdkLogRecord};
use std::time::Duration;
use tokio::sync::{mpsc, oneshot};

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

enum Message {
    Record(Box<(SdkLogRecord, InstrumentationScope)>),
    Flush(oneshot::Sender<()>),
}

#[derive(Debug)]
pub(crate) struct LogQueue {
    queue: mpsc::Sender<Message>,
}

/// Flushes the queue at shutdown.
pub(crate) struct LogQueueHandle {
    queue: mpsc::Sender<Message>,
    timeout: Duration,
}

impl LogQueueHandle {
    pub(crate) async fn flush(&self) {
        let (done, wait) = oneshot::channel();
        if self.queue.send(Message::Flush(done)).await.is_ok() {
            let _ = tokio::time::timeout(self.timeout, wait).await;
        }
    }
}

impl LogQueue {
    pub(crate) fn start<E: LogExporter + 'static>(
        exporter: E,
        delivery: Delivery,
        batching: Batching,
    ) -> (Self, LogQueueHandle) {
        let (queue, received) = mpsc::channel(batching.max_queue);
        let timeout = batching.timeout;
        tokio::spawn(export_loop(exporter, delivery, received, batching));
        (Self { queue: queue.clone() }, LogQueueHandle { queue, timeout })
    }
}

impl LogProcessor for LogQueue {
    fn emit(&self, record: &mut SdkLogRecord, scope: &InstrumentationScope) {
        if self.queue.try_send(Message::Record(Box::new((record.clone(), scope.clone())))).is_err() {
            dropped("logs", 1);
        }
    }

    fn force_flush(&self) -> OTelSdkResult {
        Ok(())
    }

    fn shutdown_with_timeout(&self, _timeout: Duration) -> OTelSdkResult {
        Ok(())
    }
}

async fn export_loop<E: LogExporter>(
    exporter: E,
    delivery: Delivery,
    mut queue: mpsc::Receiver<Message>,
    batching: Batching,
) {
    let mut batch: Vec<(SdkLogRecord, InstrumentationScope)> = Vec::with_capacity(batching.max_batch);
    while let Some(first) = queue.recv().await {
        let mut flushed = None;
        match first {
            Message::Record(record) => batch.push(*record),
            Message::Flush(done) => flushed = Some(done),
        }
        let deadline = tokio::time::Instant::now() + batching.delay;
        while flushed.is_none() && batch.len() < batching.max_batch {
            match tokio::time::timeout_at(deadline, queue.recv()).await {
                Ok(Some(Message::Record(record))) => batch.push(*record),
                Ok(Some(Message::Flush(done))) => flushed = Some(done),
                Ok(None) | Err(_) => break,
            }
        }
        if !batch.is_empty() {
            let refs: Vec<(&SdkLogRecord, &InstrumentationScope)> = batch.iter().map(|(r, s)| (r, s)).collect();
            if !delivery.send(exporter.export(LogBatch::new(&refs))).await {
                dropped("logs", refs.len());
            }
            drop(refs);
            batch.clear();
        }
        if let Some(done) = flushed {
            let _ = done.send(());
        }
    }
}

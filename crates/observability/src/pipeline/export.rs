//! Export that can neither slow requests nor grow memory: spans go through a bounded queue
//! (full means dropped and counted, never waited for) to one background task that exports in
//! batches through the signal's circuit breaker; a dead collector opens the breaker, batches
//! are then dropped (and counted) without a connection attempt until a probe succeeds again.
//! Log records take the same way ([`super::logs`]).

use super::plan::Batching;
use super::status::ExporterStatus;
use opentelemetry::Context;
use opentelemetry_sdk::error::{OTelSdkError, OTelSdkResult};
use opentelemetry_sdk::metrics::Temporality;
use opentelemetry_sdk::metrics::data::ResourceMetrics;
use opentelemetry_sdk::metrics::exporter::PushMetricExporter;
use opentelemetry_sdk::trace::{Span, SpanData, SpanExporter, SpanProcessor};
use pfs_resilience::CircuitBreaker;
use std::sync::Arc;
use std::time::Duration;
use tokio::sync::{mpsc, oneshot};

pub(crate) fn dropped(signal: &'static str, count: usize) {
    metrics::counter!("otlp_exporter_dropped", "signal" => signal).increment(count as u64);
}

enum Message {
    Span(Box<SpanData>),
    Flush(oneshot::Sender<()>),
}

#[derive(Debug)]
pub(crate) struct QueueProcessor {
    queue: mpsc::Sender<Message>,
}

/// Flushes the queue at shutdown.
pub(crate) struct QueueHandle {
    queue: mpsc::Sender<Message>,
    timeout: Duration,
}

impl QueueHandle {
    pub(crate) async fn flush(&self) {
        let (done, wait) = oneshot::channel();
        if self.queue.send(Message::Flush(done)).await.is_ok() {
            let _ = tokio::time::timeout(self.timeout, wait).await;
        }
    }
}

impl QueueProcessor {
    pub(crate) fn start<E: SpanExporter + 'static>(
        exporter: E,
        delivery: Delivery,
        batching: Batching,
    ) -> (Self, QueueHandle) {
        let (queue, received) = mpsc::channel(batching.max_queue);
        let timeout = batching.timeout;
        tokio::spawn(export_loop(exporter, delivery, received, batching));
        (Self { queue: queue.clone() }, QueueHandle { queue, timeout })
    }
}

impl SpanProcessor for QueueProcessor {
    fn on_start(&self, _span: &mut Span, _cx: &Context) {}

    fn on_end(&self, span: SpanData) {
        if !span.span_context.is_sampled() {
            return;
        }
        if self.queue.try_send(Message::Span(Box::new(span))).is_err() {
            dropped("traces", 1);
        }
    }

    fn force_flush(&self) -> OTelSdkResult {
        Ok(())
    }

    fn shutdown_with_timeout(&self, _timeout: Duration) -> OTelSdkResult {
        Ok(())
    }
}

async fn export_loop<E: SpanExporter>(
    exporter: E,
    delivery: Delivery,
    mut queue: mpsc::Receiver<Message>,
    batching: Batching,
) {
    let max_batch = batching.max_batch;
    let mut batch = Vec::with_capacity(max_batch);
    while let Some(first) = queue.recv().await {
        let mut flushed = None;
        match first {
            Message::Span(span) => batch.push(*span),
            Message::Flush(done) => flushed = Some(done),
        }
        let deadline = tokio::time::Instant::now() + batching.delay;
        while flushed.is_none() && batch.len() < max_batch {
            match tokio::time::timeout_at(deadline, queue.recv()).await {
                Ok(Some(Message::Span(span))) => batch.push(*span),
                Ok(Some(Message::Flush(done))) => flushed = Some(done),
                Ok(None) | Err(_) => break,
            }
        }
        if !batch.is_empty() {
            let spans = std::mem::replace(&mut batch, Vec::with_capacity(max_batch));
            let count = spans.len();
            if !delivery.send(exporter.export(spans)).await {
                dropped("traces", count);
            }
        }
        if let Some(done) = flushed {
            let _ = done.send(());
        }
    }
}

/// Where one exporter's calls go through: its signal's breaker, a time budget, and the status
/// that `/health/detailed` shows (which also writes the one WARN when delivery starts failing).
#[derive(Clone, Debug)]
pub(crate) struct Delivery {
    pub(crate) breaker: CircuitBreaker,
    pub(crate) timeout: Duration,
    pub(crate) status: Arc<ExporterStatus>,
}

impl Delivery {
    /// One call through the breaker; false when nothing was delivered.
    pub(crate) async fn send(&self, call: impl Future<Output = OTelSdkResult>) -> bool {
        let Some(ticket) = self.breaker.allow() else { return false };
        match tokio::time::timeout(self.timeout, call).await {
            Ok(Ok(())) => {
                ticket.success();
                self.status.delivered();
                true
            }
            Ok(Err(err)) => {
                ticket.failure();
                self.status.failed(err.to_string());
                false
            }
            Err(_) => {
                ticket.failure();
                self.status.failed(format!("no answer within {:?}", self.timeout));
                false
            }
        }
    }
}

/// The metric exporter behind its breaker; a skipped or failed push is counted as the
/// number of metrics it carried.
#[derive(Debug)]
pub(crate) struct BreakerMetrics<E> {
    inner: E,
    delivery: Delivery,
}

impl<E> BreakerMetrics<E> {
    pub(crate) fn new(inner: E, delivery: Delivery) -> Self {
        Self { inner, delivery }
    }
}

impl<E: PushMetricExporter> PushMetricExporter for BreakerMetrics<E> {
    async fn export(&self, metrics: &ResourceMetrics) -> OTelSdkResult {
        if self.delivery.send(self.inner.export(metrics)).await {
            return Ok(());
        }
        dropped("metrics", metrics.scope_metrics().map(|scope| scope.metrics().count()).sum());
        Err(OTelSdkError::InternalFailure("OTLP metrics not delivered".into()))
    }

    fn force_flush(&self) -> OTelSdkResult {
        self.inner.force_flush()
    }

    fn shutdown_with_timeout(&self, timeout: Duration) -> OTelSdkResult {
        self.inner.shutdown_with_timeout(timeout)
    }

    fn temporality(&self) -> Temporality {
        self.inner.temporality()
    }
}

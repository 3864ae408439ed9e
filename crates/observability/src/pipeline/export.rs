//! Export that can neither slow requests nor grow memory: spans go through a bounded queue
//! ([`super::queue`]: full means dropped and counted, never waited for) to one background task
//! that exports in batches through the signal's circuit breaker; a dead collector opens the
//! breaker, batches are then dropped (and counted) without a connection attempt until a probe
//! succeeds again. Log records take the same way ([`super::logs`]), metric pushes the breaker.

use super::plan::Batching;
use super::queue::{Queue, QueueHandle, Sink};
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

pub(crate) fn dropped(signal: &'static str, count: usize) {
    metrics::counter!("otlp_exporter_dropped", "signal" => signal).increment(count as u64);
}

/// The span processor: sampled spans into the bounded queue, to the exporter in batches.
#[derive(Debug)]
pub(crate) struct QueueProcessor {
    queue: Queue<SpanData>,
}

struct Spans<E> {
    exporter: E,
    delivery: Delivery,
}

impl<E: SpanExporter + 'static> Sink<SpanData> for Spans<E> {
    fn send(&self, batch: Vec<SpanData>) -> impl Future<Output = bool> + Send {
        self.delivery.send(self.exporter.export(batch))
    }
}

impl QueueProcessor {
    pub(crate) fn start<E: SpanExporter + 'static>(
        exporter: E,
        delivery: Delivery,
        batching: Batching,
    ) -> (Self, QueueHandle) {
        let (queue, handle) = Queue::start(Spans { exporter, delivery }, batching, "traces");
        (Self { queue }, handle)
    }
}

impl SpanProcessor for QueueProcessor {
    fn on_start(&self, _span: &mut Span, _cx: &Context) {}

    fn on_end(&self, span: SpanData) {
        if span.span_context.is_sampled() {
            self.queue.offer(span);
        }
    }

    fn force_flush(&self) -> OTelSdkResult {
        Ok(())
    }

    fn shutdown_with_timeout(&self, _timeout: Duration) -> OTelSdkResult {
        Ok(())
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

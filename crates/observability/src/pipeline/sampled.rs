//! The OpenTelemetry bridge, shown only what belongs to sampled requests.
//!
//! A per-layer filter (`Filtered`) would do the choosing, but it pays a registry lookup on
//! every enter, exit and close of every span, sampled or not: at production's 1% that was the
//! largest cost tracing added to a request. This wrapper chooses spans as they are made (by
//! target, and by the thread's sampled flag for spans opened inside a request) and counts the
//! chosen ones still open; while none is, every other callback returns after one load of that
//! count, which no request writes.
//!
//! The bridge is not reachable through the subscriber by type (forwarding `downcast_raw` takes
//! `unsafe`, which this workspace forbids), so `OpenTelemetrySpanExt` finds nothing: code that
//! needs a span's OpenTelemetry context reads `opentelemetry::Context::current()` while the span
//! is entered, which the bridge makes that span's.

use crate::http::{SAMPLED, UNSAMPLED, in_sampled_trace};
use std::sync::atomic::{AtomicUsize, Ordering};
use tracing::span::{Attributes, Id, Record};
use tracing::subscriber::Interest;
use tracing::{Dispatch, Event, Level, Metadata, Subscriber};
use tracing_subscriber::Layer;
use tracing_subscriber::filter::LevelFilter;
use tracing_subscriber::layer::Context;
use tracing_subscriber::registry::LookupSpan;

/// Marks a span handed to the bridge, so its close is handed on (and counted) once.
struct Chosen;

pub(super) struct SampledOnly<L> {
    bridge: L,
    /// Spans handed to the bridge and not yet closed.
    open: AtomicUsize,
}

impl<L> SampledOnly<L> {
    pub(super) fn new(bridge: L) -> Self {
        Self { bridge, open: AtomicUsize::new(0) }
    }

    /// Whether any chosen span is open. While one is, the bridge sees every callback and skips
    /// the spans it holds no data for (it looks each up, as under a per-layer filter).
    fn any_open(&self) -> bool {
        self.open.load(Ordering::Acquire) != 0
    }
}

/// Whether a new span belongs to a sampled request: its own span, or one opened while it is
/// polled. Levels below INFO stay out of traces, as they stay out of production logs.
fn chosen(meta: &Metadata<'_>) -> bool {
    *meta.level() <= Level::INFO
        && match meta.target() {
            SAMPLED => true,
            UNSAMPLED => false,
            _ => in_sampled_trace(),
        }
}

impl<S, L> Layer<S> for SampledOnly<L>
where
    S: Subscriber + for<'a> LookupSpan<'a>,
    L: Layer<S>,
{
    fn on_register_dispatch(&self, subscriber: &Dispatch) {
        self.bridge.on_register_dispatch(subscriber);
    }

    fn on_layer(&mut self, subscriber: &mut S) {
        self.bridge.on_layer(subscriber);
    }

    // Never `never`: without a per-layer filter that would disable a callsite for the other
    // layers too (the log output, the request ids). Choosing happens in `on_new_span`.
    fn register_callsite(&self, _: &'static Metadata<'static>) -> Interest {
        Interest::always()
    }

    /// Nothing below INFO is taken (see [`chosen`]); without a hint the process's maximum level
    /// would be TRACE, and every `debug!` on the request path would be looked at.
    fn max_level_hint(&self) -> Option<LevelFilter> {
        Some(LevelFilter::INFO)
    }

    fn on_new_span(&self, attrs: &Attributes<'_>, id: &Id, ctx: Context<'_, S>) {
        if !chosen(attrs.metadata()) {
            return;
        }
        match ctx.span(id) {
            Some(span) => span.extensions_mut().insert(Chosen),
            None => return,
        }
        self.open.fetch_add(1, Ordering::AcqRel);
        self.bridge.on_new_span(attrs, id, ctx);
    }

    fn on_record(&self, id: &Id, values: &Record<'_>, ctx: Context<'_, S>) {
        if self.any_open() {
            self.bridge.on_record(id, values, ctx);
        }
    }

    fn on_follows_from(&self, id: &Id, follows: &Id, ctx: Context<'_, S>) {
        if self.any_open() {
            self.bridge.on_follows_from(id, follows, ctx);
        }
    }

    fn on_event(&self, event: &Event<'_>, ctx: Context<'_, S>) {
        if self.any_open() && *event.metadata().level() <= Level::INFO {
            self.bridge.on_event(event, ctx);
        }
    }

    fn on_enter(&self, id: &Id, ctx: Context<'_, S>) {
        if self.any_open() {
            self.bridge.on_enter(id, ctx);
        }
    }

    fn on_exit(&self, id: &Id, ctx: Context<'_, S>) {
        if self.any_open() {
            self.bridge.on_exit(id, ctx);
        }
    }

    fn on_close(&self, id: Id, ctx: Context<'_, S>) {
        if !self.any_open() {
            return;
        }
        let was_chosen = ctx.span(&id).is_some_and(|span| span.extensions().get::<Chosen>().is_some());
        if was_chosen {
            self.bridge.on_close(id, ctx);
            self.open.fetch_sub(1, Ordering::AcqRel);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::http::SampledFlag;
    use opentelemetry::trace::TracerProvider as _;
    use opentelemetry_sdk::trace::{InMemorySpanExporter, SdkTracer, SdkTracerProvider, SpanData};
    use tracing_opentelemetry::OpenTelemetryLayer;
    use tracing_subscriber::Registry;
    use tracing_subscriber::prelude::*;

    /// The spans `body` exported through the wrapped bridge, and the count of chosen spans
    /// still open afterwards.
    fn traced(body: impl FnOnce()) -> (Vec<SpanData>, usize) {
        let exporter = InMemorySpanExporter::default();
        let provider = SdkTracerProvider::builder().with_simple_exporter(exporter.clone()).build();
        let bridge = tracing_opentelemetry::layer().with_tracer(provider.tracer("test"));
        let dispatch = Dispatch::new(tracing_subscriber::registry().with(SampledOnly::new(bridge)));
        tracing::dispatcher::with_default(&dispatch, body);
        let open = dispatch
            .downcast_ref::<SampledOnly<OpenTelemetryLayer<Registry, SdkTracer>>>()
            .map(|layer| layer.open.load(Ordering::Acquire));
        let _ = provider.force_flush();
        (exporter.get_finished_spans().unwrap_or_default(), open.expect("the wrapper is reachable by type"))
    }

    #[test]
    fn only_sampled_requests_and_what_they_open_reach_the_bridge() {
        let (spans, open) = traced(|| {
            let unsampled = tracing::info_span!(target: UNSAMPLED, "request");
            unsampled.in_scope(|| tracing::info_span!("cache").in_scope(|| {}));
            tracing::info_span!("background").in_scope(|| {});

            let sampled = tracing::info_span!(target: SAMPLED, "request");
            let _flag = SampledFlag::raise();
            sampled.in_scope(|| {
                tracing::info_span!("db").in_scope(|| {});
                tracing::debug_span!("detail").in_scope(|| {});
            });
        });
        let mut names: Vec<_> = spans.iter().map(|span| span.name.to_string()).collect();
        names.sort();
        assert_eq!(names, ["db", "request"]);
        let request = spans.iter().find(|span| span.name == "request").map(|span| span.span_context.span_id());
        let db = spans.iter().find(|span| span.name == "db").map(|span| span.parent_span_id);
        assert_eq!(db, request, "the child span keeps its parent");
        assert_eq!(open, 0, "every chosen span was closed and uncounted");
    }
}

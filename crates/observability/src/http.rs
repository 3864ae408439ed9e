//! What the API middleware records per request: the server span (OpenTelemetry HTTP semantic
//! conventions, W3C `traceparent` in and out) and the RED metrics.

use crate::pipeline::tracing_active;
use http::{HeaderMap, HeaderName, HeaderValue, Method, StatusCode};
use opentelemetry::propagation::{Extractor, Injector};
use opentelemetry::trace::{TraceContextExt, TraceId};
use opentelemetry_sdk::trace::{IdGenerator, RandomIdGenerator};
use pfs_domain::hex::Hex;
use pfs_platform::telemetry::{RequestIds, request_spans_logged};
use std::cell::Cell;
use std::pin::Pin;
use std::task::{Context, Poll};
use tracing::field::Empty;
use tracing::instrument::Instrumented;
use tracing::{Instrument, Span};

/// The span target of sampled requests: only these (and spans opened while they are polled)
/// reach the OpenTelemetry bridge.
pub(crate) const SAMPLED: &str = "pfs::request::sampled";
/// The span target of every other request: logs only, no OpenTelemetry span at all.
pub(crate) const UNSAMPLED: &str = "pfs::request";

macro_rules! request_span {
    ($target:expr, $method:expr, $path:expr, $request_id:expr, $trace_id:expr) => {
        tracing::info_span!(
            target: $target,
            "request",
            otel.kind = "server",
            otel.status_code = Empty,
            request_id = $request_id,
            trace_id = $trace_id,
            http.request.method = %$method,
            url.path = $path,
            http.route = Empty,
            http.response.status_code = Empty,
        )
    };
}

/// The trace of one request: its span, whose `request_id` and `trace_id` reach every log line
/// written in it, and whether it is sampled.
///
/// With tracing on, sampling is decided here, before any span exists (continuing the caller's
/// decision when a valid `traceparent` came in): building an OpenTelemetry span costs far more
/// than the rest of a cached read, and at production's 1% it would be thrown away 99 times in
/// 100. An unsampled request still has a trace id (the caller's, or a fresh one) in its logs.
///
/// Only a sampled request answers `traceparent`: it names a trace the collector has. An
/// unsampled one has no span to name; the caller finds its log lines by `x-request-id`, which
/// every response carries and every line of the request holds, or by the trace id it sent.
/// Writing and sending that header was a fifth of what production tracing cost a request.
///
/// An unsampled request whose span no log output would record (the log level is below INFO,
/// as in production) gets no span at all: its ids are made current on the thread while its
/// future is polled instead ([`RequestIds`]), and a log line written in it still carries them.
pub struct RequestTrace {
    span: Span,
    /// The ids of a request without a span.
    ids: Option<RequestIds>,
    sampled: bool,
}

impl RequestTrace {
    pub fn start(method: &Method, path: &str, headers: &HeaderMap, request_id: &str) -> Self {
        if !tracing_active() {
            if !request_spans_logged() {
                return Self::spanless(request_id, None);
            }
            return Self { span: request_span!(UNSAMPLED, method, path, request_id, Empty), ids: None, sampled: false };
        }
        if crate::propagation::carries_context(headers) {
            return Self::continued(method, path, headers, request_id);
        }
        // The SDK's own generator (a thread-local small RNG, as for sampled spans): ids must be
        // unique, not unpredictable, and the thread-safe CSPRNG cost several times as much.
        let trace_id = RandomIdGenerator::default().new_trace_id();
        let root = opentelemetry::Context::new();
        if crate::sampler::sample_request(&root, trace_id) {
            return Self::sampled(root, method, path, request_id);
        }
        Self::unsampled(trace_id, method, path, request_id)
    }

    fn spanless(request_id: &str, trace_id: Option<TraceId>) -> Self {
        let ids = RequestIds::new(request_id, trace_id.map(TraceId::to_bytes));
        Self { span: Span::none(), ids: Some(ids), sampled: false }
    }

    /// A request whose caller sent a trace context (`traceparent`, or B3 when configured): the caller's trace, and its sampling decision
    /// where the sampler follows it. Kept out of line, like [`Self::sampled`]: the common
    /// request runs through less code, which on this path costs more in instruction-cache
    /// misses than in instructions.
    #[cold]
    fn continued(method: &Method, path: &str, headers: &HeaderMap, request_id: &str) -> Self {
        // The configured propagators directly, not the global one behind its lock.
        let parent = crate::propagation::extract(headers);
        let remote = parent.span().span_context().clone();
        let trace_id = if remote.is_valid() { remote.trace_id() } else { RandomIdGenerator::default().new_trace_id() };
        if crate::sampler::sample_request(&parent, trace_id) {
            return Self::sampled(parent, method, path, request_id);
        }
        Self::unsampled(trace_id, method, path, request_id)
    }

    #[cold]
    fn sampled(parent: opentelemetry::Context, method: &Method, path: &str, request_id: &str) -> Self {
        // The bridge takes the OpenTelemetry context current when a span is made as its
        // parent, and makes a span's own context current while it is entered.
        let span = {
            let _parent = parent.attach();
            request_span!(SAMPLED, method, path, request_id, Empty)
        };
        let trace_id = span.in_scope(|| opentelemetry::Context::current().span().span_context().trace_id());
        span.record("trace_id", Hex::<32>::of(&trace_id.to_bytes()).as_str());
        Self { span, ids: None, sampled: true }
    }

    /// The span's `trace_id` is given at creation, as hex written by hand, rather than recorded
    /// after with `display`: a JSON log layer re-serialises a span's fields on every record,
    /// and the formatting machinery cost more than the rest of the span.
    fn unsampled(trace_id: TraceId, method: &Method, path: &str, request_id: &str) -> Self {
        if !request_spans_logged() {
            return Self::spanless(request_id, Some(trace_id));
        }
        let trace_id = Hex::<32>::of(&trace_id.to_bytes());
        Self { span: request_span!(UNSAMPLED, method, path, request_id, trace_id.as_str()), ids: None, sampled: false }
    }

    /// Runs `f` in the request's span, or with its ids current when it has none.
    pub fn in_scope<R>(&self, f: impl FnOnce() -> R) -> R {
        match &self.ids {
            Some(ids) => ids.scope(f),
            None => self.span.in_scope(f),
        }
    }

    /// Runs the request's future in its span (or with its ids current). While a sampled
    /// request's future is polled, [`in_sampled_trace`] holds on that thread, so storage and
    /// cache calls open child spans.
    pub fn instrument<F: Future>(&self, future: F) -> InRequest<F> {
        let inner = match &self.ids {
            Some(ids) => Scoped::Ids { inner: future, ids: ids.clone() },
            None => Scoped::Span { inner: future.instrument(self.span.clone()) },
        };
        InRequest { inner, sampled: self.sampled }
    }

    /// A sampled request: records the status on the span, and adds `traceparent` to the
    /// response so a caller can find the trace of its request.
    pub fn finish(self, status: StatusCode, headers: &mut HeaderMap) {
        if self.sampled {
            self.span.record("http.response.status_code", status.as_u16());
            if status.is_server_error() {
                self.span.record("otel.status_code", "ERROR");
            }
            let context = self.span.in_scope(opentelemetry::Context::current);
            crate::propagation::inject(&context, headers);
        }
    }
}

thread_local! {
    /// Whether the future being polled on this thread is a sampled request's.
    static IN_SAMPLED: Cell<bool> = const { Cell::new(false) };
}

/// Whether this thread is working for a sampled request, so child spans are worth opening. A
/// thread-local flag rather than a look at the current span: that look costs two registry
/// lookups, on every storage call of every request.
pub fn in_sampled_trace() -> bool {
    IN_SAMPLED.with(Cell::get)
}

pin_project_lite::pin_project! {
    /// A request's future in its span, marking the thread as in a sampled trace while polled.
    pub struct InRequest<F> {
        #[pin]
        inner: Scoped<F>,
        sampled: bool,
    }
}

pin_project_lite::pin_project! {
    #[project = ScopedProjection]
    enum Scoped<F> {
        /// Entered into its span on every poll.
        Span { #[pin] inner: Instrumented<F> },
        /// A request without a span: its ids are current on the thread on every poll.
        Ids { #[pin] inner: F, ids: RequestIds },
    }
}

impl<F: Future> Future for Scoped<F> {
    type Output = F::Output;

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<F::Output> {
        match self.project() {
            ScopedProjection::Span { inner } => inner.poll(cx),
            ScopedProjection::Ids { inner, ids } => ids.scope(|| inner.poll(cx)),
        }
    }
}

impl<F: Future> Future for InRequest<F> {
    type Output = F::Output;

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<F::Output> {
        let this = self.project();
        if !*this.sampled {
            return this.inner.poll(cx);
        }
        let _flag = SampledFlag::raise();
        this.inner.poll(cx)
    }
}

/// Holds [`in_sampled_trace`] on this thread while it lives; restores the previous value when
/// dropped, also when a poll panics.
pub(crate) struct SampledFlag(bool);

impl SampledFlag {
    pub(crate) fn raise() -> Self {
        Self(IN_SAMPLED.with(|flag| flag.replace(true)))
    }
}

impl Drop for SampledFlag {
    fn drop(&mut self) {
        IN_SAMPLED.with(|flag| flag.set(self.0));
    }
}

/// Names the current span, the request's, after the matched route template
/// (`GET /api/v1/portfolio/{portfolioId}`) when the request is sampled.
pub fn record_route(method: &Method, route: &str) {
    if in_sampled_trace() {
        // The OpenTelemetry span started when the request span was first entered, so `otel.name`
        // could no longer rename it; the span itself, current while it is entered, can be.
        opentelemetry::Context::current().span().update_name(format!("{method} {route}"));
        Span::current().record("http.route", route);
    }
}

pub(crate) struct HeaderExtractor<'a>(pub(crate) &'a HeaderMap);

impl Extractor for HeaderExtractor<'_> {
    fn get(&self, key: &str) -> Option<&str> {
        self.0.get(key).and_then(|v| v.to_str().ok())
    }
    fn keys(&self) -> Vec<&str> {
        self.0.keys().map(HeaderName::as_str).collect()
    }
}

pub(crate) struct HeaderInjector<'a>(pub(crate) &'a mut HeaderMap);

impl Injector for HeaderInjector<'_> {
    fn set(&mut self, key: &str, value: String) {
        if value.is_empty() {
            return;
        }
        if let (Ok(name), Ok(value)) = (HeaderName::from_bytes(key.as_bytes()), HeaderValue::from_str(&value)) {
            self.0.insert(name, value);
        }
    }
}

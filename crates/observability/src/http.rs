//! What the API middleware records per request: the server span (OpenTelemetry HTTP semantic
//! conventions, W3C `traceparent` in and out) and the RED metrics.

use crate::pipeline::tracing_active;
use http::{HeaderMap, HeaderName, HeaderValue, Method, StatusCode};
use opentelemetry::propagation::{Extractor, Injector};
use opentelemetry::trace::{TraceContextExt, TraceId};
use std::time::Duration;
use tracing::Span;
use tracing::field::Empty;
use tracing_opentelemetry::OpenTelemetrySpanExt;

/// The span target of sampled requests: only these (and spans opened inside them) reach the
/// OpenTelemetry bridge.
pub(crate) const SAMPLED: &str = "pfs::request::sampled";
/// The span target of every other request: logs only, no OpenTelemetry span at all.
const UNSAMPLED: &str = "pfs::request";

macro_rules! request_span {
    ($target:expr, $method:expr, $path:expr, $request_id:expr) => {
        tracing::info_span!(
            target: $target,
            "request",
            otel.kind = "server",
            otel.status_code = Empty,
            request_id = $request_id,
            trace_id = Empty,
            http.request.method = %$method,
            url.path = $path,
            http.route = Empty,
            http.response.status_code = Empty,
        )
    };
}

/// The span of one request. Its `request_id` and `trace_id` reach every log line written in it.
///
/// With tracing on, sampling is decided here, before any span exists (continuing the caller's
/// decision when a valid `traceparent` came in): building an OpenTelemetry span costs far more
/// than the rest of a cached read, and at production's 1% it would be thrown away 99 times in
/// 100. An unsampled request still has a trace id (the caller's, or a fresh one) for its logs
/// and its `traceparent` response header: returned with the span, for [`record_response`].
pub fn request_span(method: &Method, path: &str, headers: &HeaderMap, request_id: &str) -> (Span, Option<TraceId>) {
    if !tracing_active() {
        return (request_span!(UNSAMPLED, method, path, request_id), None);
    }
    let parent = opentelemetry::global::get_text_map_propagator(|p| p.extract(&HeaderExtractor(headers)));
    let remote = parent.span().span_context().clone();
    let trace_id = if remote.is_valid() { remote.trace_id() } else { TraceId::from(rand::random::<u128>()) };
    if crate::sampler::sample_request(&parent, trace_id) {
        let span = request_span!(SAMPLED, method, path, request_id);
        let _ = span.set_parent(parent);
        let trace_id = span.context().span().span_context().trace_id();
        span.record("trace_id", tracing::field::display(trace_id));
        return (span, None);
    }
    let span = request_span!(UNSAMPLED, method, path, request_id);
    span.record("trace_id", tracing::field::display(trace_id));
    (span, Some(trace_id))
}

/// Whether `span` is a sampled request's (so has an OpenTelemetry span behind it).
fn sampled(span: &Span) -> bool {
    tracing_active() && span.metadata().is_some_and(|meta| meta.target() == SAMPLED)
}

/// Whether the current span belongs to a sampled trace, so child spans are worth opening.
pub(crate) fn in_sampled_trace() -> bool {
    tracing_active() && Span::current().metadata().is_some_and(|meta| meta.target() != UNSAMPLED)
}

/// Names the span after the matched route template (`GET /api/v1/portfolio/{portfolioId}`).
pub fn record_route(span: &Span, method: &Method, route: &str) {
    if sampled(span) {
        // The OpenTelemetry span started when the request span was first entered, so `otel.name`
        // could no longer rename it; the span itself can be.
        span.context().span().update_name(format!("{method} {route}"));
        span.record("http.route", route);
    }
}

/// Records the status on the span, and adds `traceparent` to the response so a caller can find
/// the trace of its request.
pub fn record_response(span: &Span, unsampled: Option<TraceId>, status: StatusCode, headers: &mut HeaderMap) {
    if !tracing_active() {
        return;
    }
    if !sampled(span) {
        // No span to point at: the trace id (logged with the request) and a fresh span id,
        // flagged unsampled so downstream services do not sample this trace either.
        if let Some(trace_id) = unsampled {
            let value = format!("00-{trace_id}-{:016x}-00", rand::random::<u64>().max(1));
            if let Ok(value) = HeaderValue::from_str(&value) {
                headers.insert("traceparent", value);
            }
        }
        return;
    }
    span.record("http.response.status_code", status.as_u16());
    if status.is_server_error() {
        span.record("otel.status_code", "ERROR");
    }
    let context = span.context();
    opentelemetry::global::get_text_map_propagator(|p| p.inject_context(&context, &mut HeaderInjector(headers)));
}

/// `2xx` .. `5xx`.
pub fn status_class(status: StatusCode) -> &'static str {
    match status.as_u16() {
        100..=199 => "1xx",
        200..=299 => "2xx",
        300..=399 => "3xx",
        400..=499 => "4xx",
        _ => "5xx",
    }
}

/// RED metrics of one finished request.
pub fn record_metrics(method: &Method, route: &str, status: StatusCode, elapsed: Duration) {
    let class = status_class(status);
    let labels = [
        ("http_request_method", method_label(method)),
        ("http_route", route.to_owned()),
        ("http_response_status_class", class.to_owned()),
    ];
    metrics::histogram!("http_server_request_duration_seconds", &labels).record(elapsed.as_secs_f64());
    if status.is_client_error() || status.is_server_error() {
        metrics::counter!("http_server_errors", &labels).increment(1);
    }
}

/// Known methods as themselves; anything else as `_OTHER` (bounded label values).
fn method_label(method: &Method) -> String {
    match *method {
        Method::GET | Method::POST | Method::PUT | Method::DELETE | Method::PATCH | Method::HEAD | Method::OPTIONS => {
            method.as_str().to_owned()
        }
        _ => "_OTHER".to_owned(),
    }
}

/// Counts a request in `http_server_active_requests` while alive (also when cancelled).
#[derive(Debug)]
pub struct InFlight(());

impl InFlight {
    pub fn start() -> Self {
        metrics::gauge!("http_server_active_requests").increment(1.0);
        Self(())
    }
}

impl Drop for InFlight {
    fn drop(&mut self) {
        metrics::gauge!("http_server_active_requests").decrement(1.0);
    }
}

struct HeaderExtractor<'a>(&'a HeaderMap);

impl Extractor for HeaderExtractor<'_> {
    fn get(&self, key: &str) -> Option<&str> {
        self.0.get(key).and_then(|v| v.to_str().ok())
    }
    fn keys(&self) -> Vec<&str> {
        self.0.keys().map(HeaderName::as_str).collect()
    }
}

struct HeaderInjector<'a>(&'a mut HeaderMap);

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

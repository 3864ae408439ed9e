//! What the API middleware records per request: the server span (OpenTelemetry HTTP semantic
//! conventions, W3C `traceparent` in and out) and the RED metrics.

use crate::pipeline::tracing_active;
use http::{HeaderMap, HeaderName, HeaderValue, Method, StatusCode};
use opentelemetry::propagation::{Extractor, Injector};
use opentelemetry::trace::TraceContextExt;
use std::time::Duration;
use tracing::Span;
use tracing::field::Empty;
use tracing_opentelemetry::OpenTelemetrySpanExt;

/// The span of one request. Its `request_id` and `trace_id` reach every log line written in it.
/// With tracing on, it continues the caller's trace when a valid `traceparent` came in.
pub fn request_span(method: &Method, path: &str, headers: &HeaderMap, request_id: &str) -> Span {
    let span = tracing::info_span!(
        "request",
        otel.kind = "server",
        otel.status_code = Empty,
        request_id,
        trace_id = Empty,
        http.request.method = %method,
        url.path = path,
        http.route = Empty,
        http.response.status_code = Empty,
    );
    if tracing_active() && !span.is_disabled() {
        let parent = opentelemetry::global::get_text_map_propagator(|p| p.extract(&HeaderExtractor(headers)));
        let _ = span.set_parent(parent);
        let trace_id = span.context().span().span_context().trace_id();
        span.record("trace_id", tracing::field::display(trace_id));
    }
    span
}

/// Names the span after the matched route template (`GET /api/v1/portfolio/{portfolioId}`).
pub fn record_route(span: &Span, method: &Method, route: &str) {
    if tracing_active() {
        // The OpenTelemetry span started when the request span was first entered, so `otel.name`
        // could no longer rename it; the span itself can be.
        span.context().span().update_name(format!("{method} {route}"));
        span.record("http.route", route);
    }
}

/// Records the status on the span, and adds `traceparent` to the response so a caller can find
/// the trace of its request.
pub fn record_response(span: &Span, status: StatusCode, headers: &mut HeaderMap) {
    if !tracing_active() {
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

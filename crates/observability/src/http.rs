//! What the API middleware records per request: the server span (OpenTelemetry HTTP semantic
//! conventions, W3C `traceparent` in and out) and the RED metrics.

use crate::pipeline::tracing_active;
use http::{HeaderMap, HeaderName, HeaderValue, Method, StatusCode};
use opentelemetry::propagation::{Extractor, Injector, TextMapPropagator};
use opentelemetry::trace::{TraceContextExt, TraceId};
use opentelemetry_sdk::propagation::TraceContextPropagator;
use tracing::Span;
use tracing::field::Empty;
use tracing_opentelemetry::OpenTelemetrySpanExt;

/// The span target of sampled requests: only these (and spans opened inside them) reach the
/// OpenTelemetry bridge.
pub(crate) const SAMPLED: &str = "pfs::request::sampled";
/// The span target of every other request: logs only, no OpenTelemetry span at all.
const UNSAMPLED: &str = "pfs::request";

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

/// The span of one request. Its `request_id` and `trace_id` reach every log line written in it.
///
/// With tracing on, sampling is decided here, before any span exists (continuing the caller's
/// decision when a valid `traceparent` came in): building an OpenTelemetry span costs far more
/// than the rest of a cached read, and at production's 1% it would be thrown away 99 times in
/// 100. An unsampled request still has a trace id (the caller's, or a fresh one) for its logs
/// and its `traceparent` response header: returned with the span, for [`record_response`].
pub fn request_span(method: &Method, path: &str, headers: &HeaderMap, request_id: &str) -> (Span, Option<TraceId>) {
    if !tracing_active() {
        return (request_span!(UNSAMPLED, method, path, request_id, Empty), None);
    }
    // The W3C propagator directly, not the global one behind its lock, and only when there is
    // something to extract.
    let parent = if headers.contains_key("traceparent") {
        TraceContextPropagator::new().extract(&HeaderExtractor(headers))
    } else {
        opentelemetry::Context::new()
    };
    let remote = parent.span().span_context().clone();
    let trace_id = if remote.is_valid() { remote.trace_id() } else { TraceId::from(rand::random::<u128>()) };
    if crate::sampler::sample_request(&parent, trace_id) {
        let span = request_span!(SAMPLED, method, path, request_id, Empty);
        let _ = span.set_parent(parent);
        let trace_id = span.context().span().span_context().trace_id();
        span.record("trace_id", tracing::field::display(trace_id));
        return (span, None);
    }
    // Given at creation rather than recorded after: a JSON log layer re-serialises a span's
    // fields on every record.
    (request_span!(UNSAMPLED, method, path, request_id, tracing::field::display(trace_id)), Some(trace_id))
}

/// Whether `span` is a sampled request's (so has an OpenTelemetry span behind it).
fn sampled(span: &Span) -> bool {
    tracing_active() && span.metadata().is_some_and(|meta| meta.target() == SAMPLED)
}

/// Whether the innermost span entered on this thread has a target `accept` likes. Unlike
/// `Span::current()`, this takes no reference to the span (two contended atomic updates).
fn current_target(accept: impl Fn(&str) -> bool) -> bool {
    tracing::dispatcher::get_default(|dispatch| dispatch.current_span().metadata().is_some_and(|m| accept(m.target())))
}

/// Whether the current span belongs to a sampled trace, so child spans are worth opening.
pub(crate) fn in_sampled_trace() -> bool {
    tracing_active() && current_target(|target| target != UNSAMPLED)
}

/// Names the current span, the request's, after the matched route template
/// (`GET /api/v1/portfolio/{portfolioId}`) when the request is sampled.
pub fn record_route(method: &Method, route: &str) {
    if tracing_active() && current_target(|target| target == SAMPLED) {
        let span = Span::current();
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
            headers.insert("traceparent", unsampled_traceparent(trace_id, rand::random::<u64>().max(1)));
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

/// `00-{trace id}-{span id}-00`, written by hand: `format!` of a `u128` and the copy into a
/// header value were a visible share of an unsampled request.
fn unsampled_traceparent(trace_id: TraceId, span_id: u64) -> HeaderValue {
    fn hex(out: &mut Vec<u8>, bytes: &[u8]) {
        const DIGITS: &[u8; 16] = b"0123456789abcdef";
        for byte in bytes {
            out.extend_from_slice(&[DIGITS[usize::from(byte >> 4)], DIGITS[usize::from(byte & 0xf)]]);
        }
    }
    let mut value = Vec::with_capacity(55);
    value.extend_from_slice(b"00-");
    hex(&mut value, &trace_id.to_bytes());
    value.push(b'-');
    hex(&mut value, &span_id.to_be_bytes());
    value.extend_from_slice(b"-00");
    HeaderValue::from_maybe_shared(bytes::Bytes::from(value)).unwrap_or_else(|_| HeaderValue::from_static(""))
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_unsampled_traceparent_carries_the_trace_id_and_is_flagged_unsampled() {
        let trace_id = TraceId::from(0x0af7651916cd43dd8448eb211c80319c_u128);
        let value = unsampled_traceparent(trace_id, 0x00f067aa0ba902b7);
        assert_eq!(value, "00-0af7651916cd43dd8448eb211c80319c-00f067aa0ba902b7-00");
        let mut headers = HeaderMap::new();
        headers.insert("traceparent", value);
        let context = TraceContextPropagator::new().extract(&HeaderExtractor(&headers));
        let span = context.span().span_context().clone();
        assert!(span.is_valid() && span.is_remote() && !span.is_sampled());
        assert_eq!(span.trace_id(), trace_id);
    }
}

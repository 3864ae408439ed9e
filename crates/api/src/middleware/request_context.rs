//! The request id and the span every log line of a request is written in.

use axum::extract::Request;
use axum::http::{HeaderMap, HeaderValue};
use axum::middleware::Next;
use axum::response::Response;
use pfs_observability::http::RequestTrace;
use std::time::Instant;
use tracing::Level;

/// Headers a caller may carry its id in, in the original's order of preference.
const INCOMING: &[&str] = &["x-request-id", "x-correlation-id", "x-trace-id", "request-id"];

/// Ids longer than this, or with characters outside visible ASCII, are replaced: they end up
/// in every log line, so they must not be able to forge or flood one.
const MAX_LEN: usize = 128;

/// The id of the current request, available to handlers as an extension.
#[derive(Clone, Debug)]
pub struct RequestId(pub HeaderValue);

fn incoming(headers: &HeaderMap) -> Option<HeaderValue> {
    INCOMING.iter().filter_map(|name| headers.get(*name)).find(|value| acceptable(value)).cloned()
}

fn acceptable(value: &HeaderValue) -> bool {
    !value.is_empty() && value.len() <= MAX_LEN && value.as_bytes().iter().all(|b| b.is_ascii_graphic())
}

/// The original echoes an incoming `X-Correlation-ID` as `x-correlation-id` (besides using it
/// as the request id when no `X-Request-ID` came), and so do we, under the same rule as ids.
const CORRELATION_ID: &str = "x-correlation-id";

fn fresh() -> HeaderValue {
    let mut buffer = uuid::Uuid::encode_buffer();
    let id = uuid::Uuid::new_v4().hyphenated().encode_lower(&mut buffer);
    HeaderValue::from_str(id).unwrap_or_else(|_| HeaderValue::from_static("unknown"))
}

pub async fn layer(mut req: Request, next: Next) -> Response {
    let id = incoming(req.headers()).unwrap_or_else(fresh);
    let correlation = req.headers().get(CORRELATION_ID).filter(|v| acceptable(v)).cloned();
    let trace = RequestTrace::start(req.method(), req.uri().path(), req.headers(), id.to_str().unwrap_or_default());
    req.extensions_mut().insert(RequestId(id.clone()));
    let start = Instant::now();
    let mut response = trace.instrument(next.run(req)).await;
    // Checked first: entering the span only to find the line filtered out costs a registry
    // lookup per layer, on every request of a production process.
    if tracing::enabled!(Level::DEBUG) {
        trace.span().in_scope(|| {
            tracing::debug!(
                status = response.status().as_u16(),
                latency_ms = start.elapsed().as_secs_f64() * 1000.0,
                "request completed"
            );
        });
    }
    trace.finish(response.status(), response.headers_mut());
    response.headers_mut().insert("x-request-id", id);
    if let Some(correlation) = correlation {
        response.headers_mut().insert(CORRELATION_ID, correlation);
    }
    response
}

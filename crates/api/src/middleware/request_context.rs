//! The request id and the span every log line of a request is written in; once the request is
//! answered, the service's own headers (`response_headers`, with the id among them).

use super::response_headers::{Cors, ResponseHeaders};
use axum::extract::Request;
use axum::http::{HeaderMap, HeaderName, HeaderValue};
use axum::response::Response;
use pfs_observability::http::{InRequest, RequestTrace};
use std::convert::Infallible;
use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll, ready};
use std::time::Instant;
use tower::{Layer, Service};
use tracing::Level;

/// Headers a caller may carry its id in, in the original's order of preference. Names, not
/// strings: a lookup by `&str` parses and validates the name on every request.
const INCOMING: [HeaderName; 4] =
    [REQUEST_ID, CORRELATION_ID, HeaderName::from_static("x-trace-id"), HeaderName::from_static("request-id")];

/// Ids longer than this, or with characters outside visible ASCII, are replaced: they end up
/// in every log line, so they must not be able to forge or flood one.
const MAX_LEN: usize = 128;

/// The id of the current request, available to handlers as an extension.
#[derive(Clone, Debug)]
pub struct RequestId(pub HeaderValue);

fn incoming(headers: &HeaderMap) -> Option<HeaderValue> {
    INCOMING.iter().filter_map(|name| headers.get(name)).find(|value| acceptable(value)).cloned()
}

fn acceptable(value: &HeaderValue) -> bool {
    !value.is_empty() && value.len() <= MAX_LEN && value.as_bytes().iter().all(|b| b.is_ascii_graphic())
}

/// The original echoes an incoming `X-Correlation-ID` as `x-correlation-id` (besides using it
/// as the request id when no `X-Request-ID` came), and so do we, under the same rule as ids.
const CORRELATION_ID: HeaderName = HeaderName::from_static("x-correlation-id");

const REQUEST_ID: HeaderName = HeaderName::from_static("x-request-id");

fn fresh() -> HeaderValue {
    let mut buffer = uuid::Uuid::encode_buffer();
    let id = uuid::Uuid::new_v4().hyphenated().encode_lower(&mut buffer);
    HeaderValue::from_str(id).unwrap_or_else(|_| HeaderValue::from_static("unknown"))
}

/// Gives each request its id and span, and its response the service's headers; outermost, so
/// even a 413 or a timeout carries them. A hand-written service: no clone of the stack inside
/// and no boxed future per request.
#[derive(Clone)]
pub struct RequestContextLayer {
    headers: Arc<ResponseHeaders>,
}

impl RequestContextLayer {
    pub fn new(headers: ResponseHeaders) -> Self {
        Self { headers: Arc::new(headers) }
    }
}

impl<S> Layer<S> for RequestContextLayer {
    type Service = RequestContext<S>;

    fn layer(&self, inner: S) -> RequestContext<S> {
        RequestContext { inner, headers: self.headers.clone() }
    }
}

#[derive(Clone)]
pub struct RequestContext<S> {
    inner: S,
    headers: Arc<ResponseHeaders>,
}

impl<S> Service<Request> for RequestContext<S>
where
    S: Service<Request, Response = Response, Error = Infallible>,
{
    type Response = Response;
    type Error = Infallible;
    type Future = RequestContextFuture<S::Future>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Infallible>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, mut req: Request) -> Self::Future {
        let id = incoming(req.headers()).unwrap_or_else(fresh);
        let correlation = req.headers().get(CORRELATION_ID).filter(|v| acceptable(v)).cloned();
        let trace = RequestTrace::start(req.method(), req.uri().path(), req.headers(), id.to_str().unwrap_or_default());
        let cors = self.headers.cors_of(&req);
        req.extensions_mut().insert(RequestId(id.clone()));
        // The clock is read only when the completion line can be written.
        let start = tracing::enabled!(Level::DEBUG).then(Instant::now);
        let inner = trace.instrument(self.inner.call(req));
        let headers = self.headers.clone();
        RequestContextFuture { inner, finish: Some(Finish { trace, id, correlation, start, headers, cors }) }
    }
}

/// What the response gets once it is ready.
struct Finish {
    trace: RequestTrace,
    id: HeaderValue,
    correlation: Option<HeaderValue>,
    start: Option<Instant>,
    headers: Arc<ResponseHeaders>,
    cors: Cors,
}

pin_project_lite::pin_project! {
    pub struct RequestContextFuture<F> {
        #[pin]
        inner: InRequest<F>,
        finish: Option<Finish>,
    }
}

impl<F: Future<Output = Result<Response, Infallible>>> Future for RequestContextFuture<F> {
    type Output = Result<Response, Infallible>;

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        let this = self.project();
        let Ok(mut response) = ready!(this.inner.poll(cx));
        let Some(Finish { trace, id, correlation, start, headers, cors }) = this.finish.take() else {
            return Poll::Ready(Ok(response));
        };
        // Checked first: entering the span only to find the line filtered out costs a registry
        // lookup per layer, on every request of a production process.
        if let Some(start) = start.filter(|_| tracing::enabled!(Level::DEBUG)) {
            trace.in_scope(|| {
                tracing::debug!(
                    status = response.status().as_u16(),
                    latency_ms = start.elapsed().as_secs_f64() * 1000.0,
                    "request completed"
                );
            });
        }
        headers.apply(cors, &mut response);
        trace.finish(response.status(), response.headers_mut());
        response.headers_mut().insert(REQUEST_ID, id);
        if let Some(correlation) = correlation {
            response.headers_mut().insert(CORRELATION_ID, correlation);
        }
        Poll::Ready(Ok(response))
    }
}

//! What runs once the route is known: HEAD is refused on every route, and, when metrics or
//! tracing are enabled, the request span is named after the route template and the RED
//! metrics are recorded (their runtime flags cost one atomic load per request).
//!
//! One hand-written service rather than two `from_fn` layers: axum clones each route's
//! service stack per request, and every `from_fn` clones (and boxes) the stack inside it
//! once more and boxes its future; a diagnostics layer of its own cost as much as it records.

use crate::error::ApiError;
use crate::state::AppState;
use axum::extract::{MatchedPath, Request};
use axum::http::Method;
use axum::response::{IntoResponse, Response};
use pfs_observability::http::record_route;
use pfs_observability::red::{self, InFlight, RedMetrics, RouteMetrics};
use std::convert::Infallible;
use std::future::Future;
use std::pin::Pin;
use std::task::{Context, Poll, ready};
use std::time::Instant;
use tower::{Layer, Service};

/// The route label of requests no route matched (bounded, unlike their paths).
const UNMATCHED: &str = "unmatched";

#[derive(Clone)]
pub struct PerRouteLayer {
    state: AppState,
    diagnostics: bool,
}

impl PerRouteLayer {
    pub fn new(state: &AppState) -> Self {
        Self { state: state.clone(), diagnostics: state.telemetry.diagnostics() }
    }
}

impl<S> Layer<S> for PerRouteLayer {
    type Service = PerRoute<S>;

    fn layer(&self, inner: S) -> PerRoute<S> {
        PerRoute { inner, layer: self.clone() }
    }
}

#[derive(Clone)]
pub struct PerRoute<S> {
    inner: S,
    layer: PerRouteLayer,
}

impl<S> Service<Request> for PerRoute<S>
where
    S: Service<Request, Response = Response, Error = Infallible>,
{
    type Response = Response;
    type Error = Infallible;
    type Future = PerRouteFuture<S::Future>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Infallible>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, req: Request) -> Self::Future {
        let record = if self.layer.diagnostics { self.observe(&req) } else { None };
        // FastAPI registers GET routes without HEAD, so HEAD on a route is a 405 there; clients
        // and probes written against it see the same here. An unknown path stays a 404.
        let kind = if req.method() == Method::HEAD && req.extensions().get::<MatchedPath>().is_some() {
            Kind::Refused { response: Some(ApiError::MethodNotAllowed.into_response()) }
        } else {
            Kind::Routed { future: self.inner.call(req) }
        };
        PerRouteFuture { kind, record }
    }
}

impl<S> PerRoute<S> {
    fn observe(&self, req: &Request) -> Option<Record> {
        let telemetry = &self.layer.state.telemetry;
        let (measure, log) =
            (telemetry.metrics && telemetry.flags.metrics_middleware(), telemetry.flags.request_logging());
        let route = req.extensions().get::<MatchedPath>().map_or(UNMATCHED, MatchedPath::as_str);
        record_route(req.method(), route);
        (measure || log).then(|| Record {
            route: RedMetrics::global_route(route),
            method: req.method().clone(),
            measure,
            // Resolved only for a line that will be written: no cost when logging is off.
            client: if log {
                let trust_forwarded_for = self.layer.state.config.rate_limit.trust_forwarded_for;
                crate::client::address(req.headers(), req.extensions(), trust_forwarded_for)
            } else {
                None
            },
            log,
            _in_flight: measure.then(red::in_flight),
            start: Instant::now(),
        })
    }
}

/// What is recorded once the response is ready. Nothing in it is shared with other requests
/// but the route's `'static` metrics: no reference count changes hands per request.
struct Record {
    route: &'static RouteMetrics,
    method: Method,
    client: Option<std::net::IpAddr>,
    measure: bool,
    log: bool,
    /// Counts the request as active until it finishes or is dropped.
    _in_flight: Option<InFlight>,
    start: Instant,
}

impl Record {
    fn finish(self, response: &Response) {
        let elapsed = self.start.elapsed();
        if self.measure {
            self.route.record(&self.method, response.status(), elapsed);
        }
        if self.log {
            tracing::info!(
                client.address = self.client.map(tracing::field::display),
                http.request.method = %self.method,
                http.route = self.route.route(),
                http.response.status_code = response.status().as_u16(),
                latency_ms = elapsed.as_secs_f64() * 1000.0,
                "request"
            );
        }
    }
}

pin_project_lite::pin_project! {
    pub struct PerRouteFuture<F> {
        #[pin]
        kind: Kind<F>,
        record: Option<Record>,
    }
}

pin_project_lite::pin_project! {
    #[project = KindProjection]
    enum Kind<F> {
        Routed { #[pin] future: F },
        Refused { response: Option<Response> },
    }
}

impl<F: Future<Output = Result<Response, Infallible>>> Future for PerRouteFuture<F> {
    type Output = Result<Response, Infallible>;

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        let this = self.project();
        let response = match this.kind.project() {
            KindProjection::Routed { future } => {
                let Ok(response) = ready!(future.poll(cx));
                response
            }
            KindProjection::Refused { response } => {
                response.take().unwrap_or_else(|| ApiError::MethodNotAllowed.into_response())
            }
        };
        if let Some(record) = this.record.take() {
            record.finish(&response);
        }
        Poll::Ready(Ok(response))
    }
}

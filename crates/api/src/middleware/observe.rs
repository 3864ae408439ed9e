//! The diagnostics layer: names the request span after its route template and records the RED
//! metrics. It is part of the stack only when metrics or tracing are enabled; its runtime
//! flags cost one atomic load per request.

use crate::state::AppState;
use axum::extract::{MatchedPath, Request, State};
use axum::middleware::Next;
use axum::response::Response;
use pfs_observability::http::record_route;
use std::time::Instant;

/// The route label of requests no route matched (bounded, unlike their paths).
const UNMATCHED: &str = "unmatched";

pub async fn layer(State(state): State<AppState>, req: Request, next: Next) -> Response {
    let telemetry = &state.telemetry;
    let flags = telemetry.flags.load();
    let (measure, log) = (telemetry.metrics && flags.runtime.metrics_middleware, flags.runtime.request_logging);
    drop(flags);
    let method = req.method().clone();
    let route = req.extensions().get::<MatchedPath>().cloned();
    let route = route.as_ref().map_or(UNMATCHED, MatchedPath::as_str);
    record_route(&tracing::Span::current(), &method, route);
    let in_flight = measure.then(|| telemetry.red.in_flight());
    let start = Instant::now();
    let response = next.run(req).await;
    let elapsed = start.elapsed();
    drop(in_flight);
    if measure {
        telemetry.red.record(&method, route, response.status(), elapsed);
    }
    if log {
        tracing::info!(
            http.route = route,
            http.response.status_code = response.status().as_u16(),
            latency_ms = elapsed.as_secs_f64() * 1000.0,
            "request"
        );
    }
    response
}

//! `GET /metrics`: the Prometheus text exposition format.

use crate::state::AppState;
use axum::Router;
use axum::extract::State;
use axum::http::{StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::get;

/// The route, only when the Prometheus endpoint is enabled; otherwise `/metrics` is a 404 like
/// any unknown path (the original's behaviour).
pub fn route(state: &AppState) -> Router<AppState> {
    match state.telemetry.prometheus {
        Some(_) => Router::new().route(crate::paths::METRICS, get(scrape)),
        None => Router::new(),
    }
}

async fn scrape(State(state): State<AppState>) -> Response {
    let Some(handle) = &state.telemetry.prometheus else {
        return StatusCode::NOT_FOUND.into_response();
    };
    pfs_observability::process::collect();
    state.publish_metrics();
    ([(header::CONTENT_TYPE, "text/plain; version=0.0.4; charset=utf-8")], pfs_observability::recorder::render(handle))
        .into_response()
}

//! Route handlers, one module per resource, and the router that wires them to [`paths`].

pub mod docs;
pub mod health;
pub mod v1;
pub mod v2;

use crate::middleware::{self, fallback};
use crate::paths::*;
use crate::state::AppState;
use axum::Router;
use axum::routing::get;

/// Every route, without the cross-cutting layers (see [`crate::router`]).
pub fn routes(state: AppState) -> Router {
    Router::new()
        .route(PORTFOLIOS_V1, get(v1::list).post(v1::create))
        .route(PORTFOLIO_V1, get(v1::get).put(v1::update).delete(v1::delete))
        .route(PORTFOLIOS_V2, get(v2::search).post(v2::bulk_create))
        .route(ROOT, get(health::root))
        .route(HEALTH, get(health::plain))
        .route(HEALTH_LIVE, get(health::live))
        .route(HEALTH_READY, get(health::ready))
        .route(HEALTH_STARTUP, get(health::startup))
        .route(HEALTH_DETAILED, get(health::detailed))
        .route(HEALTH_METRICS, get(health::metrics))
        .route(OPENAPI, get(docs::openapi_json))
        .route(DOCS, get(docs::index))
        .route(REDOC, get(docs::index))
        .route(DOCS_OAUTH2_REDIRECT, get(docs::oauth2_redirect))
        .route(DOCS_ASSET, get(docs::file))
        .route_layer(axum::middleware::from_fn(middleware::reject_head))
        .fallback(fallback::not_found)
        .method_not_allowed_fallback(fallback::method_not_allowed)
        .with_state(state)
}

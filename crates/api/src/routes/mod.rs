//! Route handlers, one module per resource, and the router that wires them to [`paths`].

pub mod admin;
pub mod docs;
pub mod events;
pub mod fast;
pub mod health;
pub mod jobs;
pub mod metrics;
pub mod v1;
pub mod v2;

use crate::middleware::{self, fallback, idempotency::keyed};
use crate::paths::*;
use crate::state::AppState;
use axum::Router;
use axum::http::{HeaderValue, header};
use axum::routing::{get, post};
use tower_http::set_header::SetResponseHeaderLayer;

/// Data reads may be stored but must be revalidated: with their ETags a client or proxy gets a
/// cheap 304 instead of the body. Everything else keeps the original's `no-store` (set by the
/// security headers), except the docs UI's files, which only change with the binary.
fn cache_control(value: &'static str) -> SetResponseHeaderLayer<HeaderValue> {
    SetResponseHeaderLayer::if_not_present(header::CACHE_CONTROL, HeaderValue::from_static(value))
}

/// Every route, without the cross-cutting layers (see [`crate::router`]).
pub fn routes(state: AppState) -> Router {
    let revalidate = || cache_control("no-cache");
    let router = Router::new()
        .route(PORTFOLIOS_V1, get(v1::list).layer(revalidate()).merge(keyed(&state, post(v1::create))))
        .route(PORTFOLIO_V1, get(v1::get).layer(revalidate()).put(v1::update).delete(v1::delete))
        .route(PORTFOLIOS_V2, get(v2::search).layer(revalidate()).merge(keyed(&state, post(v2::bulk_create))))
        .route(PORTFOLIO_EVENTS_V2, get(events::stream))
        .route(PORTFOLIO_IMPORTS, jobs::imports_route(&state.config.jobs))
        .route(JOB, get(jobs::get_job))
        .route(ROOT, get(health::root))
        .route(HEALTH, get(health::plain))
        .route(HEALTH_LIVE, get(health::live))
        .route(HEALTH_READY, get(health::ready))
        .route(HEALTH_STARTUP, get(health::startup))
        .route(HEALTH_METRICS, get(health::metrics))
        .route(OPENAPI, get(docs::openapi_json).layer(revalidate()))
        .route(DOCS, get(docs::index).layer(revalidate()))
        .route(REDOC, get(docs::index).layer(revalidate()))
        .route(DOCS_OAUTH2_REDIRECT, get(docs::oauth2_redirect).layer(revalidate()))
        .route(DOCS_ASSET, get(docs::file))
        .merge(fast::routes(&state))
        .merge(metrics::route(&state))
        .merge(admin::routes())
        // Open while auth is off (the original's), admin-only once it is on: it names the
        // backend and its version and costs two database round trips.
        .merge(crate::auth::admin_when_enabled(Router::new().route(HEALTH_DETAILED, get(health::detailed))))
        .fallback(fallback::not_found)
        .method_not_allowed_fallback(fallback::method_not_allowed);
    // After the fallbacks, so unknown paths and methods are measured too.
    router.layer(middleware::per_route::PerRouteLayer::new(&state)).with_state(state)
}

//! The essential layers every response passes through, always on: request id and request
//! span, security headers, CORS, panic recovery, request timeout and body limit.

pub mod fallback;
mod request_context;
mod security_headers;
mod timeout;

pub use request_context::RequestId;

use crate::error::ApiError;
use axum::Router;
use axum::extract::{DefaultBodyLimit, Request};
use axum::http::{HeaderName, HeaderValue, Method};
use axum::middleware::{Next, from_fn, from_fn_with_state, map_response_with_state};
use axum::response::{IntoResponse, Response};
use pfs_platform::Config;
use std::sync::Arc;
use tower_http::catch_panic::CatchPanicLayer;
use tower_http::cors::{AllowHeaders, AllowMethods, AllowOrigin, CorsLayer};

/// Wraps `routes` in the essential layers. Each `.layer` wraps everything above it, so the
/// last one (request context) is the outermost and even a 413 or a timeout carries an id.
pub fn essentials(routes: Router, config: &Config) -> Router {
    let security = Arc::new(security_headers::for_profile(config.environment));
    routes
        .layer(DefaultBodyLimit::max(config.server.max_body_bytes))
        .layer(from_fn_with_state(config.server.request_timeout, timeout::layer))
        .layer(CatchPanicLayer::custom(|_| {
            ApiError::Internal { detail: crate::error::V1_FAILURE, source: None }.into_response()
        }))
        .layer(cors(&config.server.cors_allowed_origins))
        .layer(map_response_with_state(security, security_headers::apply))
        .layer(from_fn(request_context::layer))
}

/// `["*"]` mirrors the caller's origin with credentials allowed (what Starlette did with
/// `allow_origins=["*"], allow_credentials=True`); otherwise only the listed origins.
fn cors(origins: &[String]) -> CorsLayer {
    let allow_origin = if origins.iter().any(|o| o == "*") {
        AllowOrigin::mirror_request()
    } else {
        AllowOrigin::list(origins.iter().filter_map(|o| HeaderValue::from_str(o).ok()))
    };
    CorsLayer::new()
        .allow_origin(allow_origin)
        .allow_credentials(true)
        .allow_methods(AllowMethods::mirror_request())
        .allow_headers(AllowHeaders::mirror_request())
        .expose_headers([HeaderName::from_static("x-request-id")])
}

/// FastAPI registers GET routes without HEAD, so HEAD is a 405 there; clients and probes
/// written against it see the same here.
pub async fn reject_head(req: Request, next: Next) -> Response {
    if req.method() == Method::HEAD {
        return ApiError::MethodNotAllowed.into_response();
    }
    next.run(req).await
}

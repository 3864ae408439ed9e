//! The layers around the routes. [`essentials`] puts on the ones every request passes through,
//! outermost first: request context (id and span, `request_context`), security headers
//! (`security_headers`), CORS (`cors`), entity tags (`etag`) and compression, load shedding
//! (`load_shed`), decompression, panic recovery, the request timeout (`timeout`) and body limits,
//! then, when configured, the rate limit (`rate_limit`) and authentication (`crate::auth`).
//! Per route: `per_route` (HEAD refusal, RED metrics), `idempotency` (`Idempotency-Key` on the
//! creating POSTs); `fallback` answers unknown paths and methods.

mod body_deadline;
mod cors;
mod etag;
pub mod fallback;
pub mod idempotency;
pub mod load_shed;
mod on_response;
pub mod per_route;
pub mod rate_limit;
mod request_context;
mod security_headers;
mod timeout;

pub use request_context::RequestId;

use crate::error::ApiError;
use axum::Router;
use axum::extract::DefaultBodyLimit;
use axum::middleware::from_fn_with_state;
use axum::response::IntoResponse;
use on_response::OnResponseLayer;
use pfs_platform::Config;
use std::sync::Arc;
use tower_http::catch_panic::CatchPanicLayer;
use tower_http::compression::predicate::{NotForContentType, Predicate, SizeAbove};
use tower_http::compression::{CompressionLayer, CompressionLevel};
use tower_http::decompression::RequestDecompressionLayer;

/// Wraps `routes` in the essential layers. Each `.layer` wraps everything above it, so the
/// last one (request context) is the outermost and even a 413 or a timeout carries an id.
pub fn essentials(routes: Router, config: &Config, limiter: Option<Arc<dyn pfs_rate_limit::RateLimiter>>) -> Router {
    let security = security_headers::SecurityHeaders::for_profile(config.environment);
    let compress_when = SizeAbove::new(config.server.compression_min_bytes)
        .and(NotForContentType::GRPC)
        .and(NotForContentType::IMAGES)
        .and(NotForContentType::SSE);
    // Inside the rate limiter, so a client guessing keys is throttled like any other.
    let routes = match crate::auth::AuthLayer::from_config(&config.auth) {
        Some(auth) => routes.layer(from_fn_with_state(auth, crate::auth::layer)),
        None => routes,
    };
    let routes = match limiter {
        Some(limiter) => {
            let state = rate_limit::RateLimit { limiter, config: Arc::new(config.rate_limit.clone()) };
            routes.layer(from_fn_with_state(state, rate_limit::layer))
        }
        None => routes,
    };
    let reliability = &config.reliability;
    let routes = routes
        .layer(DefaultBodyLimit::max(config.server.max_body_bytes))
        .layer(body_deadline::BodyDeadlineLayer::new(reliability.body_read_timeout))
        .layer(timeout::TimeoutLayer::new(config.server.request_timeout))
        .layer(CatchPanicLayer::custom(|_| {
            ApiError::Internal { detail: crate::error::V1_FAILURE, source: None }.into_response()
        }))
        .layer(RequestDecompressionLayer::new());
    // Outside decompression and the timeout: a shed request costs no work and no wait.
    let routes = match load_shed::LoadShed::new(reliability.max_concurrent_requests, reliability.queue_timeout) {
        Some(shed) => routes.layer(shed),
        None => routes,
    };
    // Every layer from here out is a hand-written service with a future of its own type: axum's
    // `from_fn` and `map_response` clone the whole stack inside them and box a future or two
    // per request, which cost more than the work these layers do (docs/BENCHMARKS.md).
    routes
        .layer(etag::EtagLayer)
        // Level 4 for every codec: most of the size reduction for a fraction of the CPU of the
        // defaults (brotli's can be 11, far too slow for responses built per request).
        .layer(CompressionLayer::new().quality(CompressionLevel::Precise(4)).compress_when(compress_when))
        .layer(OnResponseLayer::new(etag::suffix_encoding))
        .layer(cors::layer(&config.server.cors_allowed_origins))
        .layer(OnResponseLayer::new(move |response: &mut axum::response::Response| security.apply(response)))
        .layer(request_context::RequestContextLayer)
}

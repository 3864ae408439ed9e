//! The layers around the routes. [`essentials`] puts on the ones every request passes through,
//! outermost first: request context (id and span, `request_context`, which also gives every
//! response the service's headers: `response_headers`, from `security_headers` and `cors`),
//! CORS preflights (`cors`), compression and entity tags (`etag`), load shedding
//! (`load_shed`), decompression (`codings`, with compression), panic recovery and the request
//! timeout (`guard`) and body limits,
//! then, when configured, authentication (`crate::auth`) and the rate limit (`rate_limit`).
//! Per route: `per_route` (HEAD refusal, RED metrics), `idempotency` (`Idempotency-Key` on the
//! creating POSTs); `fallback` answers unknown paths and methods.

mod body_deadline;
mod codings;
mod cors;
mod etag;
pub mod fallback;
mod guard;
pub mod idempotency;
pub mod load_shed;
pub mod per_route;
pub mod rate_limit;
mod request_context;
mod response_headers;
mod security_headers;

pub use request_context::RequestId;

use axum::Router;
use axum::extract::DefaultBodyLimit;
use axum::middleware::from_fn_with_state;
use pfs_platform::Config;
use std::sync::Arc;
use tower::ServiceBuilder;
use tower_http::compression::predicate::{NotForContentType, Predicate, SizeAbove};
use tower_http::compression::{CompressionLayer, CompressionLevel};

/// Wraps `routes` in the essential layers, then, when configured, the rate limiter and
/// authentication inside them.
pub fn essentials(routes: Router, config: &Config, limiter: Option<Arc<dyn pfs_rate_limit::RateLimiter>>) -> Router {
    let (preflights, cors) = cors::configure(&config.server.cors_allowed_origins);
    let headers = response_headers::ResponseHeaders::new(config.environment, cors);
    let compress_when = SizeAbove::new(config.server.compression_min_bytes)
        .and(NotForContentType::GRPC)
        .and(NotForContentType::IMAGES)
        .and(NotForContentType::SSE);
    let routes = match limiter {
        Some(limiter) => {
            let state = rate_limit::RateLimit { limiter, config: Arc::new(config.rate_limit.clone()) };
            routes.layer(from_fn_with_state(state, rate_limit::layer))
        }
        None => routes,
    };
    // Outside the rate limiter, which then knows whether a key verified: only a verified one
    // gets a bucket of its own (`api_key_or_ip`); a guesser's requests share its address's
    // bucket, and its failures are throttled here first (`auth.max_failures`).
    let routes = match crate::auth::AuthLayer::from_config(&config.auth, config.rate_limit.trust_forwarded_for) {
        Some(auth) => routes.layer(from_fn_with_state(auth, crate::auth::layer)),
        None => routes,
    };
    let reliability = &config.reliability;
    let shed = load_shed::LoadShed::new(reliability.max_concurrent_requests, reliability.queue_timeout);
    // One tower stack applied with one `Router::layer`: axum wraps every route in a boxed,
    // cloned-per-request `Route` for each `layer` call, so twelve calls cost twelve nested
    // clones of everything inside them (and a boxed future each) on every request. Every layer
    // here is a service with a future of its own type: axum's `from_fn` and `map_response`
    // clone the stack inside them and box futures per request too (docs/BENCHMARKS.md); and the
    // response's headers are edited once, not by a layer each (`response_headers`).
    // Outermost first. Every layer answers axum's `Response`: tower-http's own body types are
    // boxed back into `Body` only on the rare paths that use them (`codings`).
    let stack = ServiceBuilder::new()
        // Outermost, so even a 413 or a timeout carries an id and the service's headers.
        .layer(request_context::RequestContextLayer::new(headers))
        .layer(preflights)
        // Level 4 for every codec: most of the size reduction for a fraction of the CPU of the
        // defaults (brotli's can be 11, far too slow for responses built per request).
        .layer(codings::NegotiatedCompressionLayer::new(
            CompressionLayer::new().quality(CompressionLevel::Precise(4)).compress_when(compress_when.clone()),
            compress_when,
        ))
        .layer(etag::EtagLayer)
        // Outside decompression and the timeout: a shed request costs no work and no wait.
        .option_layer(shed)
        .layer(codings::DecompressionLayer)
        // Panics and the request timeout.
        .layer(guard::GuardLayer::new(config.server.request_timeout))
        .layer(body_deadline::BodyDeadlineLayer::new(reliability.body_read_timeout))
        .layer(DefaultBodyLimit::max(config.server.max_body_bytes));
    routes.layer(stack)
}

//! The HTTP API, wire-compatible with the original FastAPI service.
//!
//! # Layout
//! - [`routes`]: handlers, one module per resource (`v1`, `v2`, `jobs`, `events`, `health`,
//!   `metrics`, `admin`, `docs`).
//! - [`paths`]: every route path, in one table.
//! - [`wire`]: how bodies and query strings are read and validated, FastAPI-style.
//! - [`extract`]: axum extractors built on [`wire`].
//! - [`error`]: [`ApiError`], the one place that decides status codes and error bodies.
//! - [`auth`]: who may write and administer (bearer tokens and API keys), when `[auth]` is on.
//! - [`client`]: the client address every per-client bound and log line uses.
//! - [`middleware`]: the layers every request passes (request id, security headers, CORS,
//!   load shedding, timeout, rate limit, ...) and the per-route ones (idempotency keys).
//! - [`state`]: [`AppState`], what handlers can reach, the store chain among it.
//! - [`startup`]: [`startup::Startup`], the dependencies a fresh process still waits for.

pub mod auth;
pub mod client;
pub mod error;
pub mod extract;
pub mod middleware;
pub mod paths;
pub mod routes;
pub mod startup;
pub mod state;
pub mod wire;

pub use error::ApiError;
pub use routes::docs::ApiDoc;
pub use state::{AppState, Lifecycle};

use pfs_platform::Config;

/// The complete application: every route wrapped in the essential middleware, and in the rate
/// limiter when one is given.
pub fn router(
    state: AppState,
    config: &Config,
    limiter: Option<std::sync::Arc<dyn pfs_rate_limit::RateLimiter>>,
) -> axum::Router {
    middleware::essentials(routes::routes(state), config, limiter)
}

//! The HTTP API, wire-compatible with the original FastAPI service.
//!
//! # Layout
//! - [`routes`]: handlers, one module per resource (`v1`, `v2`, `health`, `docs`).
//! - [`paths`]: every route path, in one table.
//! - [`wire`]: how bodies and query strings are read and validated, FastAPI-style.
//! - [`extract`]: axum extractors built on [`wire`].
//! - [`error`]: [`ApiError`], the one place that decides status codes and error bodies.
//! - [`middleware`]: the essential layers (request id, security headers, CORS, timeout, ...).
//! - [`state`]: [`AppState`], what handlers can reach.
//! - [`startup`]: [`startup::Startup`], the dependencies a fresh process still waits for.

pub mod auth;
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
    limiter: Option<std::sync::Arc<dyn middleware::rate_limit::RateLimiter>>,
) -> axum::Router {
    middleware::essentials(routes::routes(state), config, limiter)
}

//! A bound on how long one request may run.

use crate::error::ApiError;
use axum::extract::{Request, State};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use std::time::Duration;

/// Past `limit` the handler is dropped and the client gets a 503 with `Retry-After`, instead of
/// waiting on a proxy's own timeout. A statement already sent may still complete; writes
/// invalidate the cache from a task of their own, so that cannot leave it stale.
pub async fn layer(State(limit): State<Duration>, req: Request, next: Next) -> Response {
    match tokio::time::timeout(limit, next.run(req)).await {
        Ok(response) => response,
        Err(_) => {
            tracing::warn!(limit_ms = limit.as_millis() as u64, "request timed out");
            ApiError::Timeout.into_response()
        }
    }
}

//! The original's undocumented `/api/fast/*` routes (contract §7), kept because the suite's
//! own scripts call them. Legacy: marked deprecated in the OpenAPI document; new clients use
//! `/api/v2/portfolios`.
//!
//! Answers are the original's (status codes, `detail` strings, bodies, `X-Processing-Time-Ms`
//! and the other headers), with two decisions where the original was inconsistent:
//! `dateCreated` is RFC 3339 UTC with milliseconds like in every other response (the original
//! printed Python `isoformat()`, with or without an offset depending on where the value came
//! from), and the errors the original meant as client errors but let escape as a 500 are
//! 400s (see [`bulk`]). In the production profile, as in the original, every answer carries
//! `X-Fast-Path: true` and `X-Middleware-Time-Ms`, and a declared body over 1 MiB is refused
//! before the handler runs.

pub mod bulk;
pub mod search;

use crate::paths::{FAST_BULK, FAST_HEALTH, FAST_SEARCH, FAST_STATS};
use crate::state::AppState;
use axum::extract::{Request, State};
use axum::http::{HeaderName, HeaderValue, StatusCode, header};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Json, Router};
use pfs_domain::Timestamp;
use pfs_platform::config::Profile;
use serde_json::{Value, json};
use std::time::Instant;

/// The four routes; in the production profile behind [`production_headers`].
#[allow(deprecated)] // legacy handlers, registered on purpose
pub fn routes(state: &AppState) -> Router<AppState> {
    let router = Router::new()
        .route(FAST_BULK, post(bulk::create))
        .route(FAST_SEARCH, get(search::search))
        .route(FAST_HEALTH, get(health))
        .route(FAST_STATS, get(stats));
    if state.config.environment == Profile::Production {
        router.layer(axum::middleware::from_fn(production_headers))
    } else {
        router
    }
}

/// The original's request size limit on these routes.
pub const MAX_REQUEST_BYTES: usize = 1024 * 1024;

pub(crate) const PROCESSING_TIME: HeaderName = HeaderName::from_static("x-processing-time-ms");

/// Milliseconds since `start`, rounded to two decimals as the original reports them.
pub(crate) fn elapsed_ms(start: Instant) -> f64 {
    (start.elapsed().as_secs_f64() * 100_000.0).round() / 100.0
}

/// A float as Python's `str()` prints it (`12.0`, not `12`): the header values are strings.
pub(crate) fn python_float(value: f64) -> HeaderValue {
    let text = if value.fract() == 0.0 { format!("{value:.1}") } else { format!("{value}") };
    HeaderValue::from_str(&text).unwrap_or(HeaderValue::from_static("0.0"))
}

/// A minimal liveness answer with the original's body.
#[utoipa::path(get, path = "/api/fast/health/fast", tag = "fast", operation_id = "fast_health",
    responses((status = 200, description = "Healthy")))]
#[deprecated = "legacy route of the original service"]
pub async fn health() -> Response {
    let start = Instant::now();
    // The original printed a naive UTC `isoformat()`: microseconds, no designator.
    let now = Timestamp::now().to_rfc3339();
    let naive = format!("{}000", now.trim_end_matches('Z'));
    let body = json!({"status": "healthy", "service": "globeco-portfolio-service-fast", "timestamp": naive});
    ([(PROCESSING_TIME, python_float(elapsed_ms(start)))], Json(body)).into_response()
}

/// The fast path's limits and the profile, in the original's shape.
#[utoipa::path(get, path = "/api/fast/performance/stats", tag = "fast", operation_id = "fast_performance_stats",
    responses((status = 200, description = "Fast-path configuration")))]
#[deprecated = "legacy route of the original service"]
pub async fn stats(State(state): State<AppState>) -> Json<Value> {
    Json(json!({
        "fastPath": {
            "enabled": true,
            "maxBulkSize": pfs_domain::MAX_BULK_ITEMS,
            "maxRequestSizeBytes": MAX_REQUEST_BYTES
        },
        "environment": {
            "profile": state.config.environment.as_str(),
            "databaseTracing": state.telemetry.flags.database_tracing()
        },
        "endpoints": {
            "/api/fast/portfolios/bulk": "Fast bulk portfolio creation",
            "/api/fast/portfolios/search": "Fast portfolio search",
            "/api/fast/health/fast": "Fast health check"
        }
    }))
}

/// The original's production-only fast-path middleware: refuses a declared body over 1 MiB
/// with its own 413 body, and marks every answer.
pub async fn production_headers(request: Request, next: Next) -> Response {
    let start = Instant::now();
    let declared = request
        .headers()
        .get(header::CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.trim().parse::<u64>().ok());
    let mut response = match declared {
        Some(size) if size > MAX_REQUEST_BYTES as u64 => (
            StatusCode::PAYLOAD_TOO_LARGE,
            Json(json!({
                "error": "Request too large",
                "detail": format!("Request size {size} bytes exceeds {MAX_REQUEST_BYTES} bytes"),
                "maxSizeBytes": MAX_REQUEST_BYTES
            })),
        )
            .into_response(),
        _ => next.run(request).await,
    };
    let headers = response.headers_mut();
    headers.insert(HeaderName::from_static("x-fast-path"), HeaderValue::from_static("true"));
    headers.insert(HeaderName::from_static("x-middleware-time-ms"), python_float(elapsed_ms(start)));
    response
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn header_floats_print_like_python() {
        assert_eq!(python_float(12.0), "12.0");
        assert_eq!(python_float(0.25), "0.25");
        assert_eq!(python_float(3.1), "3.1");
    }
}

//! [`ApiError`]: every way a request can fail, and the exact response each one produces.

use crate::wire::Issue;
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use pfs_storage::StoreError;

/// The 500 `detail` of the v1 routes.
pub const V1_FAILURE: &str = "Internal server error";
/// The 500 `detail` of v2 search.
pub const SEARCH_FAILURE: &str = "An unexpected error occurred while searching portfolios";
/// The 500 `detail` of v2 bulk create.
pub const BULK_FAILURE: &str = "An unexpected error occurred while creating portfolios";

/// A failed request. Bodies are `{"detail": ...}` as FastAPI writes them.
#[derive(Debug, thiserror::Error)]
pub enum ApiError {
    /// 404 `Portfolio not found`: unknown or malformed id.
    #[error("Portfolio not found")]
    PortfolioNotFound,
    /// 409 `Version conflict`: the stored version is not the one the client sent.
    #[error("Version conflict")]
    VersionConflict,
    /// 400 with one of the contract's messages.
    #[error("{0}")]
    BadRequest(String),
    /// 422 with Pydantic's issue list.
    #[error("request validation failed")]
    Validation(Vec<Issue>),
    /// 413: the body is larger than `server.max_body_bytes`.
    #[error("Request body too large")]
    PayloadTooLarge,
    /// 404 `Not Found`: no route has this path.
    #[error("Not Found")]
    RouteNotFound,
    /// 405 `Method Not Allowed`: the path exists, the method does not.
    #[error("Method Not Allowed")]
    MethodNotAllowed,
    /// 503 with `Retry-After`: the database is unreachable or saturated. Safe to retry for
    /// reads; a create may have committed before the failure (an `Idempotency-Key` makes such
    /// retries safe).
    #[error("Service temporarily unavailable")]
    Unavailable(#[source] StoreError),
    /// 429: the client sent more than `rate_limit` allows; `Retry-After` says when to resume.
    #[error("Rate limit exceeded: retry in {retry_after_seconds} s")]
    RateLimited { retry_after_seconds: u64 },
    /// 503: the request ran past `server.request_timeout`.
    #[error("Request timed out")]
    Timeout,
    /// 503 with `Retry-After`: more requests are in flight than `reliability` admits.
    #[error("Service overloaded")]
    Overloaded,
    /// 408: the body did not arrive within `reliability.body_read_timeout`.
    #[error("Request body not received in time")]
    BodyTimeout,
    /// 401 with `WWW-Authenticate: Bearer`: the route needs a credential and the request has
    /// none, or one that does not verify.
    #[error("{}", if *.invalid { "Invalid credentials" } else { "Not authenticated" })]
    Unauthenticated { invalid: bool },
    /// 403: the credential is valid but lacks the role, or the route is disabled.
    #[error("{0}")]
    Forbidden(&'static str),
    /// 409 with `Retry-After: 1`: a request with the same `Idempotency-Key` is still running.
    #[error("A request with this Idempotency-Key is still being processed; retry later")]
    IdempotencyKeyInFlight,
    /// 422: the `Idempotency-Key` was used before with a different request.
    #[error("This Idempotency-Key was already used with a different request; use a new key")]
    IdempotencyKeyReused,
    /// 501: background jobs need a backend with a job queue.
    #[error("Background jobs are not available on this storage backend: they need SQLite or PostgreSQL")]
    JobsUnavailable,
    /// 413 with the import limit that was exceeded.
    #[error("{0}")]
    ImportTooLarge(String),
    /// 503 with `Retry-After`: `jobs.max_pending` jobs are queued or running already.
    #[error("The job queue is full ({0} jobs queued or running); retry later")]
    JobQueueFull(u64),
    /// 404 `Job not found`.
    #[error("Job not found")]
    JobNotFound,
    /// 500 with the endpoint's contract message; the cause is logged, never sent.
    #[error("{detail}")]
    Internal { detail: &'static str, source: Option<StoreError> },
}

impl ApiError {
    /// Maps a storage failure, with the 500 message of the endpoint that met it.
    pub fn from_store(err: StoreError, detail: &'static str) -> Self {
        match err {
            StoreError::NotFound => Self::PortfolioNotFound,
            StoreError::Conflict => Self::VersionConflict,
            err if err.is_transient() => Self::Unavailable(err),
            err => Self::Internal { detail, source: Some(err) },
        }
    }

    pub fn status(&self) -> StatusCode {
        match self {
            Self::PortfolioNotFound | Self::RouteNotFound | Self::JobNotFound => StatusCode::NOT_FOUND,
            Self::VersionConflict | Self::IdempotencyKeyInFlight => StatusCode::CONFLICT,
            Self::BadRequest(_) => StatusCode::BAD_REQUEST,
            Self::Validation(_) | Self::IdempotencyKeyReused => StatusCode::UNPROCESSABLE_ENTITY,
            Self::PayloadTooLarge | Self::ImportTooLarge(_) => StatusCode::PAYLOAD_TOO_LARGE,
            Self::JobsUnavailable => StatusCode::NOT_IMPLEMENTED,
            Self::MethodNotAllowed => StatusCode::METHOD_NOT_ALLOWED,
            Self::RateLimited { .. } => StatusCode::TOO_MANY_REQUESTS,
            Self::Unauthenticated { .. } => StatusCode::UNAUTHORIZED,
            Self::Forbidden(_) => StatusCode::FORBIDDEN,
            Self::Unavailable(_) | Self::Timeout | Self::Overloaded | Self::JobQueueFull(_) => {
                StatusCode::SERVICE_UNAVAILABLE
            }
            Self::BodyTimeout => StatusCode::REQUEST_TIMEOUT,
            Self::Internal { .. } => StatusCode::INTERNAL_SERVER_ERROR,
        }
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let status = self.status();
        // Serialised straight from the issues: going through `json!` would copy them all first.
        let body = match &self {
            Self::Validation(issues) => serde_json::to_vec(&Detail { detail: issues }),
            other => serde_json::to_vec(&Detail { detail: other.to_string() }),
        }
        .unwrap_or_default();
        match &self {
            Self::Internal { source, .. } => {
                tracing::error!(error = ?source, "request failed: {self}");
            }
            Self::Unavailable(source) if breaker_open(source).is_none() => {
                tracing::warn!(error = %source, "storage unavailable")
            }
            _ => {}
        }
        let mut response =
            (status, [(header::CONTENT_TYPE, HeaderValue::from_static("application/json"))], body).into_response();
        if status == StatusCode::SERVICE_UNAVAILABLE || matches!(self, Self::IdempotencyKeyInFlight) {
            response.headers_mut().insert(header::RETRY_AFTER, HeaderValue::from(self.retry_after_seconds()));
        }
        if let Self::Unauthenticated { invalid } = self {
            let challenge = if invalid { r#"Bearer error="invalid_token""# } else { "Bearer" };
            response.headers_mut().insert(header::WWW_AUTHENTICATE, HeaderValue::from_static(challenge));
        }
        response
    }
}

impl ApiError {
    /// Whole seconds, at least 1: until the database breaker probes again when it is open,
    /// [`QUEUE_FULL_RETRY_AFTER_SECONDS`] for a full job queue, otherwise a short pause.
    fn retry_after_seconds(&self) -> u64 {
        if let Self::JobQueueFull(_) = self {
            // A job takes a while: asking again within a second would only be refused again.
            return QUEUE_FULL_RETRY_AFTER_SECONDS;
        }
        let Self::Unavailable(source) = self else { return 1 };
        breaker_open(source).map_or(1, |open| {
            metrics::counter!("http_server_shed_requests", "reason" => "dependency").increment(1);
            open.retry_after.as_secs_f64().ceil().max(1.0) as u64
        })
    }
}

/// `Retry-After` of a refused import while the job queue is full.
pub const QUEUE_FULL_RETRY_AFTER_SECONDS: u64 = 30;

/// The refusal of an open circuit breaker, if that is what `err` is.
fn breaker_open(err: &StoreError) -> Option<&pfs_resilience::BreakerOpen> {
    match err {
        StoreError::Unavailable(inner) => inner.downcast_ref(),
        _ => None,
    }
}

/// FastAPI's error body: `{"detail": ...}`.
#[derive(serde::Serialize)]
struct Detail<T: serde::Serialize> {
    detail: T,
}

impl From<Vec<Issue>> for ApiError {
    fn from(issues: Vec<Issue>) -> Self {
        Self::Validation(issues)
    }
}

impl From<Issue> for ApiError {
    fn from(issue: Issue) -> Self {
        Self::Validation(vec![issue])
    }
}

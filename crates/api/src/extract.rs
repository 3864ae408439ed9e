//! Axum extractors that turn raw requests into wire values with the contract's errors.

use crate::error::ApiError;
use crate::wire::json::{self, Body};
use crate::wire::query::Query;
use axum::body::Bytes;
use axum::extract::rejection::BytesRejection;
use axum::extract::{FromRequest, FromRequestParts, Path, Request};
use axum::http::{StatusCode, request::Parts};
use pfs_domain::PortfolioId;

/// A request body read like FastAPI reads it (see [`json::read`]). Too large a body is a 413.
pub struct JsonBody(pub Body);

impl<S: Send + Sync> FromRequest<S> for JsonBody {
    type Rejection = ApiError;

    async fn from_request(req: Request, state: &S) -> Result<Self, ApiError> {
        let is_json = json::is_json_content_type(req.headers());
        let bytes = Bytes::from_request(req, state).await.map_err(body_error)?;
        Ok(Self(json::read(is_json, &bytes)?))
    }
}

/// Why a body could not be read: too large (413), too slow (408), or broken (400).
pub(crate) fn body_error(rejection: BytesRejection) -> ApiError {
    if rejection.status() == StatusCode::PAYLOAD_TOO_LARGE {
        ApiError::PayloadTooLarge
    } else if timed_out(&rejection) {
        ApiError::BodyTimeout
    } else {
        ApiError::BadRequest("There was an error parsing the body".into())
    }
}

/// Whether the body failed because `reliability.body_read_timeout` passed.
pub(crate) fn timed_out(rejection: &(dyn std::error::Error + 'static)) -> bool {
    std::iter::successors(Some(rejection), |e| e.source()).any(|e| e.is::<tower_http::timeout::TimeoutError>())
}

/// The query string, with Starlette's repeated-key rule.
pub struct QueryParams(pub Query);

impl<S: Send + Sync> FromRequestParts<S> for QueryParams {
    type Rejection = std::convert::Infallible;

    async fn from_request_parts(parts: &mut Parts, _: &S) -> Result<Self, Self::Rejection> {
        Ok(Self(Query::parse(parts.uri.query())))
    }
}

/// The `{portfolioId}` path segment. A malformed id is answered like an unknown one (404), as
/// the original does; parsing is deferred to [`PortfolioPath::id`] so that body and query
/// validation (422) still come first.
pub struct PortfolioPath(Option<PortfolioId>);

impl PortfolioPath {
    pub fn id(&self) -> Result<PortfolioId, ApiError> {
        self.0.ok_or(ApiError::PortfolioNotFound)
    }
}

impl<S: Send + Sync> FromRequestParts<S> for PortfolioPath {
    type Rejection = std::convert::Infallible;

    async fn from_request_parts(parts: &mut Parts, state: &S) -> Result<Self, Self::Rejection> {
        let raw = Path::<String>::from_request_parts(parts, state).await.ok();
        Ok(Self(raw.and_then(|Path(raw)| PortfolioId::parse(&raw))))
    }
}

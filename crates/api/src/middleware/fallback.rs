//! Unknown paths (404, or Starlette's trailing-slash redirect) and unknown methods (405).

use crate::error::ApiError;
use crate::paths;
use crate::state::AppState;
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode, Uri, header};
use axum::response::{IntoResponse, Response};

/// A path that only differs from a route by trailing slashes gets a 307 to the route, keeping
/// the query, as FastAPI's `redirect_slashes` does; anything else is 404 `Not Found`.
pub async fn not_found(State(state): State<AppState>, uri: Uri, headers: HeaderMap) -> Response {
    let path = uri.path();
    let trimmed = path.trim_end_matches('/');
    if path != "/" && trimmed.len() < path.len() && !trimmed.is_empty() && paths::is_known(trimmed) {
        let host = headers
            .get(header::HOST)
            .and_then(|h| h.to_str().ok())
            .or_else(|| uri.authority().map(|a| a.as_str()))
            .unwrap_or("localhost");
        let query = uri.query().map(|q| format!("?{q}")).unwrap_or_default();
        let scheme = if state.config.server.tls_cert_path.as_os_str().is_empty() { "http" } else { "https" };
        let location = format!("{scheme}://{host}{trimmed}{query}");
        return (StatusCode::TEMPORARY_REDIRECT, [(header::LOCATION, location)]).into_response();
    }
    ApiError::RouteNotFound.into_response()
}

pub async fn method_not_allowed() -> Response {
    ApiError::MethodNotAllowed.into_response()
}

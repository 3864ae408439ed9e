//! Unknown paths (404, or Starlette's trailing-slash redirect) and unknown methods (405).

use crate::error::ApiError;
use crate::paths;
use crate::state::AppState;
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode, Uri, header};
use axum::response::{IntoResponse, Response};

/// A path that only differs from a route by trailing slashes gets a 307 to the route, keeping
/// the query, as FastAPI's `redirect_slashes` does; anything else is 404 `Not Found`.
///
/// FastAPI wrote an absolute URL from the `Host` header and its own scheme, which behind a
/// TLS proxy sends clients to `http://`, and lets any client choose the redirect's host.
/// Here the `Location` is relative (clients resolve it against the URL they asked for),
/// unless `server.trust_forwarded_headers` says a proxy sets `X-Forwarded-Proto`/`-Host`.
pub async fn not_found(State(state): State<AppState>, uri: Uri, headers: HeaderMap) -> Response {
    let path = uri.path();
    let trimmed = path.trim_end_matches('/');
    if path != "/" && trimmed.len() < path.len() && !trimmed.is_empty() && paths::is_known(trimmed) {
        let query = uri.query().map(|q| format!("?{q}")).unwrap_or_default();
        let location = match state.config.server.trust_forwarded_headers {
            false => format!("{trimmed}{query}"),
            true => {
                let own_scheme =
                    if state.config.server.tls_cert_path.as_os_str().is_empty() { "http" } else { "https" };
                let scheme = forwarded(&headers, "x-forwarded-proto")
                    .filter(|s| matches!(*s, "http" | "https"))
                    .unwrap_or(own_scheme);
                let host = forwarded(&headers, "x-forwarded-host")
                    .or_else(|| forwarded(&headers, header::HOST.as_str()))
                    .unwrap_or("localhost");
                format!("{scheme}://{host}{trimmed}{query}")
            }
        };
        return (StatusCode::TEMPORARY_REDIRECT, [(header::LOCATION, location)]).into_response();
    }
    ApiError::RouteNotFound.into_response()
}

/// The first value of a header a proxy sets (a chain of proxies lists the client's first).
fn forwarded<'a>(headers: &'a HeaderMap, name: &str) -> Option<&'a str> {
    let value = headers.get(name)?.to_str().ok()?;
    Some(value.split(',').next()?.trim()).filter(|v| !v.is_empty())
}

pub async fn method_not_allowed() -> Response {
    ApiError::MethodNotAllowed.into_response()
}

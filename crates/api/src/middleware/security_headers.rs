//! Security headers on every response, as the original sent them.

use axum::extract::State;
use axum::http::{HeaderMap, HeaderName, HeaderValue, header};
use axum::response::Response;
use pfs_platform::Profile;
use std::sync::Arc;

/// The headers for a profile; production adds HSTS, like the original.
pub fn for_profile(profile: Profile) -> HeaderMap {
    let mut headers = HeaderMap::new();
    let mut set = |name: HeaderName, value: &'static str| {
        headers.insert(name, HeaderValue::from_static(value));
    };
    set(header::X_CONTENT_TYPE_OPTIONS, "nosniff");
    set(header::X_XSS_PROTECTION, "1; mode=block");
    set(header::X_FRAME_OPTIONS, "DENY");
    set(header::SERVER, "GlobeCo-Portfolio-Service");
    set(header::CACHE_CONTROL, "no-cache, no-store, must-revalidate");
    set(header::PRAGMA, "no-cache");
    set(header::EXPIRES, "0");
    set(header::REFERRER_POLICY, "strict-origin-when-cross-origin");
    // Allows the self-hosted docs UI (its own scripts and styles, inline SVG) and nothing else.
    set(
        header::CONTENT_SECURITY_POLICY,
        "default-src 'self'; img-src 'self' data:; style-src 'self' 'unsafe-inline'; frame-ancestors 'none'",
    );
    if profile == Profile::Production {
        set(header::STRICT_TRANSPORT_SECURITY, "max-age=31536000; includeSubDomains");
    }
    headers
}

/// Adds each header the handler did not set itself.
pub async fn apply(State(headers): State<Arc<HeaderMap>>, mut response: Response) -> Response {
    let target = response.headers_mut();
    for (name, value) in headers.iter() {
        target.entry(name).or_insert_with(|| value.clone());
    }
    response
}

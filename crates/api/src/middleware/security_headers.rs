//! Security headers on every response, as the original sent them: fixed per profile, so two
//! static tables (added to responses by `response_headers`).

use axum::http::{HeaderName, HeaderValue, header};
use pfs_platform::Profile;

/// Every profile's headers; production adds HSTS ([`PRODUCTION`]), like the original.
static COMMON: [(HeaderName, HeaderValue); 9] = [
    (header::X_CONTENT_TYPE_OPTIONS, HeaderValue::from_static("nosniff")),
    (header::X_XSS_PROTECTION, HeaderValue::from_static("1; mode=block")),
    (header::X_FRAME_OPTIONS, HeaderValue::from_static("DENY")),
    (header::SERVER, HeaderValue::from_static("GlobeCo-Portfolio-Service")),
    (header::CACHE_CONTROL, HeaderValue::from_static("no-cache, no-store, must-revalidate")),
    (header::PRAGMA, HeaderValue::from_static("no-cache")),
    (header::EXPIRES, HeaderValue::from_static("0")),
    (header::REFERRER_POLICY, HeaderValue::from_static("strict-origin-when-cross-origin")),
    // Allows the self-hosted docs UI (its own scripts and styles, inline SVG) and nothing else.
    (
        header::CONTENT_SECURITY_POLICY,
        HeaderValue::from_static(
            "default-src 'self'; img-src 'self' data:; style-src 'self' 'unsafe-inline'; frame-ancestors 'none'",
        ),
    ),
];

static HSTS: [(HeaderName, HeaderValue); 1] =
    [(header::STRICT_TRANSPORT_SECURITY, HeaderValue::from_static("max-age=31536000; includeSubDomains"))];

/// The headers `profile` adds to every response the handler did not set them on.
pub fn for_profile(profile: Profile) -> impl Iterator<Item = &'static (HeaderName, HeaderValue)> {
    let hsts: &[_] = if profile == Profile::Production { &HSTS } else { &[] };
    COMMON.iter().chain(hsts)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn production_adds_hsts() {
        let names = |profile| for_profile(profile).map(|(name, _)| name.clone()).collect::<Vec<_>>();
        let (production, development) = (names(Profile::Production), names(Profile::Development));
        assert_eq!((production.len(), development.len()), (10, 9));
        assert!(production.contains(&header::STRICT_TRANSPORT_SECURITY));
        assert!(!development.contains(&header::STRICT_TRANSPORT_SECURITY));
        assert!(development.contains(&header::X_FRAME_OPTIONS));
    }
}

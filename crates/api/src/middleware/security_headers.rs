//! Security headers on every response, as the original sent them.
//!
//! The set is fixed per profile, so it is two static tables: a response pays for its inserts
//! and nothing else (no map to clone, no reference count to touch).

use axum::http::{HeaderName, HeaderValue, header};
use axum::response::Response;
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

/// The headers a profile adds to every response.
#[derive(Clone, Copy, Debug)]
pub struct SecurityHeaders {
    production: bool,
}

impl SecurityHeaders {
    pub fn for_profile(profile: Profile) -> Self {
        Self { production: profile == Profile::Production }
    }

    fn tables(self) -> [&'static [(HeaderName, HeaderValue)]; 2] {
        [&COMMON, if self.production { &HSTS } else { &[] }]
    }

    /// Adds each header the handler did not set itself.
    pub fn apply(self, response: &mut Response) {
        let target = response.headers_mut();
        // Room for all of them at once: one growth of the map instead of several rehashes.
        target.reserve(COMMON.len() + HSTS.len());
        for (name, value) in self.tables().into_iter().flatten() {
            target.entry(name).or_insert_with(|| value.clone());
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn handlers_keep_their_own_values_and_production_adds_hsts() {
        let mut response = Response::new(axum::body::Body::empty());
        response.headers_mut().insert(header::CACHE_CONTROL, HeaderValue::from_static("no-cache"));
        SecurityHeaders::for_profile(Profile::Production).apply(&mut response);
        let headers = response.headers();
        assert_eq!(headers[header::CACHE_CONTROL], "no-cache");
        assert_eq!(headers[header::X_FRAME_OPTIONS], "DENY");
        assert_eq!(headers.len(), 10);
        assert!(headers.contains_key(header::STRICT_TRANSPORT_SECURITY));

        let mut development = Response::new(axum::body::Body::empty());
        SecurityHeaders::for_profile(Profile::Development).apply(&mut development);
        assert_eq!(development.headers().len(), 9);
        assert!(!development.headers().contains_key(header::STRICT_TRANSPORT_SECURITY));
    }
}

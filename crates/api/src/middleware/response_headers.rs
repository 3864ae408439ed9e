//! Every header the service adds to a response, in one edit at the outermost layer: the
//! security headers of the profile, CORS on requests that are not preflights, the content
//! coding on the entity tag, and the request and correlation ids.
//!
//! The headers that are the same on every response are built once, at start, into a map each
//! response starts from; the handler's own headers are then moved into it. A handler sets two
//! or three headers, so that is two or three inserts where adding the service's a dozen to the
//! handler's map, each only when the handler did not set it, would be a dozen lookups (and a
//! regrowth of the map) on every response.

use super::cors::Regular;
use super::etag;
use super::security_headers;
use axum::extract::Request;
use axum::http::{HeaderMap, HeaderName, HeaderValue, Method};
use axum::response::Response;
use pfs_platform::Profile;

/// Built once per process from the profile and the CORS configuration.
pub struct ResponseHeaders {
    /// Security headers, then the CORS headers of a regular request: what a request that is not
    /// a preflight starts from.
    regular: HeaderMap,
    /// Security headers alone: preflights (tower-http answers them with CORS headers of their
    /// own) and a plain `OPTIONS` (which CORS leaves alone).
    preflight: HeaderMap,
    cors: Regular,
}

/// What a response's headers depend on in its request, read when the request arrives.
pub enum Cors {
    /// Not a preflight: CORS headers, and the request's `Origin` when it is a listed one.
    Regular { origin: Option<HeaderValue> },
    /// An `OPTIONS`: a preflight, answered by tower-http, or a plain one, which gets none.
    Options,
}

impl ResponseHeaders {
    pub fn new(profile: Profile, cors: Regular) -> Self {
        let mut preflight = HeaderMap::new();
        for (name, value) in security_headers::for_profile(profile) {
            preflight.insert(name, value.clone());
        }
        let mut regular = preflight.clone();
        for (name, value) in cors.set() {
            regular.insert(name, value.clone());
        }
        preflight.reserve(ROOM);
        regular.reserve(ROOM);
        Self { regular, preflight, cors }
    }

    /// What `request` decides about its response's headers.
    pub fn cors_of(&self, request: &Request) -> Cors {
        if request.method() == Method::OPTIONS {
            Cors::Options
        } else {
            Cors::Regular { origin: self.cors.allowed_origin(request) }
        }
    }

    /// Gives `response` the service's headers. The handler's own win over the security
    /// headers; CORS headers win over the handler's (as tower-http inserts them).
    pub fn apply(&self, cors: Cors, response: &mut Response) {
        let (start, with_cors) = match cors {
            Cors::Regular { .. } => (&self.regular, true),
            Cors::Options => (&self.preflight, false),
        };
        let own = std::mem::replace(response.headers_mut(), start.clone());
        let headers = response.headers_mut();
        // `into_iter` names a header once, then yields its further values with no name.
        let mut current: Option<HeaderName> = None;
        for (name, value) in own {
            if let Some(name) = name {
                let overridden = with_cors && self.cors.sets(&name);
                current = (!overridden).then_some(name);
                if let Some(name) = &current {
                    headers.insert(name, value);
                }
            } else if let Some(name) = &current {
                headers.append(name, value);
            }
        }
        if let Cors::Regular { origin } = cors {
            self.cors.finish(origin, headers);
        }
        etag::suffix_encoding(headers);
    }
}

/// Headers a handler sets, at most, besides the service's: room for them in the index of each
/// response's map, so that moving them in never rehashes it. (Its entries still grow once: a
/// cloned map's entry vector has no spare room.)
const ROOM: usize = 8;

#[cfg(test)]
mod tests {
    use super::*;
    use crate::middleware::cors;
    use axum::body::Body;
    use axum::http::header;
    use std::convert::Infallible;
    use tower::{Layer, ServiceExt};

    /// A handler's answer: a `Vary`, a stale allow-origin and a `Cache-Control` of its own, two
    /// `Link`s, and a gzip-encoded body with its tag.
    fn answer() -> Response {
        let mut response = Response::new(Body::empty());
        let headers = response.headers_mut();
        for (name, value) in [
            (header::CONTENT_TYPE, "application/json"),
            (header::VARY, "accept-encoding"),
            (header::ACCESS_CONTROL_ALLOW_ORIGIN, "stale"),
            (header::CACHE_CONTROL, "max-age=5"),
            (header::LINK, "</a>; rel=next"),
            (header::LINK, "</b>; rel=prev"),
            (header::CONTENT_ENCODING, "gzip"),
            (header::ETAG, "\"0123456789abcdef\""),
        ] {
            headers.append(name, HeaderValue::from_static(value));
        }
        response
    }

    fn request(method: Method, origin: Option<&'static str>) -> Request {
        let mut request = Request::new(Body::empty());
        *request.method_mut() = method;
        if let Some(origin) = origin {
            request.headers_mut().insert(header::ORIGIN, HeaderValue::from_static(origin));
        }
        request
    }

    /// Each header's values, in order, by name (the order of the names does not matter).
    fn values(headers: &HeaderMap) -> Vec<(String, Vec<String>)> {
        let mut names: Vec<_> = headers.keys().map(|name| name.to_string()).collect();
        names.sort();
        let of = |name: &String| headers.get_all(name).iter().map(|v| v.to_str().unwrap().to_owned()).collect();
        names.into_iter().map(|name| (name.clone(), of(&name))).collect()
    }

    /// What the layers this edit replaced answered: tower-http's CORS on a request that is not
    /// an `OPTIONS`, then each security header the response lacks, then the coding suffix.
    async fn layered(profile: Profile, cors: &cors::PreflightOnlyLayer, request: Request) -> HeaderMap {
        let route = tower::service_fn(|_: Request| async { Ok::<_, Infallible>(answer()) });
        let Ok(mut response) = if request.method() == Method::OPTIONS {
            route.oneshot(request).await
        } else {
            cors.0.layer(route).oneshot(request).await
        };
        let headers = response.headers_mut();
        for (name, value) in security_headers::for_profile(profile) {
            headers.entry(name).or_insert_with(|| value.clone());
        }
        etag::suffix_encoding(headers);
        response.into_parts().0.headers
    }

    #[tokio::test]
    async fn the_one_edit_answers_what_the_layers_did() {
        let lists = [vec!["*".to_owned()], vec!["https://portal.example".to_owned(), "https://b.example".into()]];
        for (origins, profile) in lists.iter().flat_map(|o| [(o, Profile::Production), (o, Profile::Development)]) {
            let (preflights, regular) = cors::configure(origins);
            let ours = ResponseHeaders::new(profile, regular);
            for (method, origin) in [
                (Method::GET, None),
                (Method::GET, Some("https://portal.example")),
                (Method::POST, Some("https://b.example")),
                (Method::DELETE, Some("https://evil.example")),
                (Method::GET, Some("null")),
                (Method::OPTIONS, Some("https://portal.example")),
            ] {
                let mut response = answer();
                ours.apply(ours.cors_of(&request(method.clone(), origin)), &mut response);
                let theirs = layered(profile, &preflights, request(method.clone(), origin)).await;
                assert_eq!(values(response.headers()), values(&theirs), "{origins:?} {profile:?} {method} {origin:?}");
            }
        }
    }

    #[test]
    fn handlers_keep_their_own_values_and_cors_and_the_suffix_apply() {
        let (_, regular) = cors::configure(&["*".to_owned()]);
        let headers = ResponseHeaders::new(Profile::Production, regular);
        let mut response = answer();
        headers.apply(headers.cors_of(&request(Method::GET, None)), &mut response);
        let headers = response.headers();
        assert_eq!(headers[header::CACHE_CONTROL], "max-age=5", "the handler's own");
        assert_eq!(headers[header::X_FRAME_OPTIONS], "DENY");
        assert!(headers.contains_key(header::STRICT_TRANSPORT_SECURITY));
        assert_eq!(headers[header::ACCESS_CONTROL_ALLOW_ORIGIN], "*", "CORS replaces the handler's");
        assert_eq!(headers.get_all(header::LINK).iter().count(), 2);
        let vary: Vec<_> = headers.get_all(header::VARY).iter().collect();
        assert_eq!(vary.first().copied(), Some(&HeaderValue::from_static("accept-encoding")));
        assert_eq!(vary.len(), 2, "CORS's own after the handler's");
        assert_eq!(headers[header::ETAG], "\"0123456789abcdef-gzip\"");
    }
}

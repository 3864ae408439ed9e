//! CORS, answering only real preflights.
//!
//! tower-http treats every `OPTIONS` request as a preflight; Starlette (and so the original)
//! only one that carries `Access-Control-Request-Method`. A plain `OPTIONS` must reach the
//! router and get its 405 (or 404), so this service sends it past CORS untouched.
//!
//! Preflights are answered by tower-http's `Cors` ([`PreflightOnly`]). Every other request gets
//! the headers tower-http would add to its response ([`Regular`], added with the service's other
//! headers in `response_headers`), but worked out once: they depend only on the configuration
//! and, with a list of origins, on whether the request's `Origin` is in it. They are taken from
//! tower-http itself at start (its answer to a request without an `Origin`), so the two cannot
//! drift apart. tower-http builds a header map, joins its `Vary` list and clones its
//! configuration (`Vec`s included) on every request.

use axum::body::Body;
use axum::extract::Request;
use axum::http::{HeaderMap, HeaderName, HeaderValue, Method, header};
use axum::response::Response;
use futures_util::FutureExt;
use futures_util::future::Either;
use std::convert::Infallible;
use std::sync::Arc;
use std::task::{Context, Poll};
use tower::{Layer, Service, ServiceExt};
use tower_http::cors::{AllowHeaders, AllowMethods, AllowOrigin, CorsLayer, ResponseFuture};

/// `["*"]` answers `Access-Control-Allow-Origin: *` without credentials: any page may read
/// the API, and no browser attaches cookies or client certificates to such a request. (The
/// original mirrored every origin, `null` included, with credentials allowed: any page a
/// user visited could act with the user's ambient credentials.) A list of origins allows
/// exactly those, with credentials; `null` is never in it (validation takes http(s) origins).
/// Headers are mirrored in both cases, so scripts can still send `Authorization` or
/// `X-API-Key` explicitly. Returns the layer answering preflights and what every other
/// request's response gets.
pub fn configure(origins: &[String]) -> (PreflightOnlyLayer, Regular) {
    let any = origins.iter().any(|o| o == "*");
    let listed: Vec<HeaderValue> = origins.iter().filter_map(|o| HeaderValue::from_str(o).ok()).collect();
    let allow_origin = if any { AllowOrigin::any() } else { AllowOrigin::list(listed.clone()) };
    let preflight = CorsLayer::new()
        .allow_origin(allow_origin)
        .allow_credentials(!any)
        .allow_methods(AllowMethods::mirror_request())
        .allow_headers(AllowHeaders::mirror_request())
        .expose_headers([header::HeaderName::from_static("x-request-id")]);
    let regular = Regular::of(&preflight, (!any).then_some(listed));
    (PreflightOnlyLayer(Arc::new(preflight)), regular)
}

/// What a request that is not a preflight gets on its response.
pub struct Regular {
    /// Appended to any `Vary` the response has.
    vary: Option<HeaderValue>,
    /// Set, replacing the response's own values, in tower-http's order.
    set: Vec<(HeaderName, HeaderValue)>,
    /// With a list of origins, a listed `Origin` is answered as its allow-origin (last, as
    /// tower-http adds it); `None` when any origin is allowed (`*` is then in `set`).
    listed: Option<Vec<HeaderValue>>,
}

impl Regular {
    /// tower-http's headers for a GET without an `Origin`.
    fn of(layer: &CorsLayer, listed: Option<Vec<HeaderValue>>) -> Self {
        let answered = layer
            .layer(tower::service_fn(|_: Request| async { Ok::<_, Infallible>(Response::new(Body::empty())) }))
            .oneshot(Request::new(Body::empty()))
            .now_or_never();
        let headers = match answered {
            Some(Ok(response)) => response.into_parts().0.headers,
            None | Some(Err(_)) => HeaderMap::new(),
        };
        // Read, not removed: removing would move the last header into its place, out of order.
        let vary = headers.get(header::VARY).cloned();
        let set = headers
            .iter()
            .filter(|(name, _)| *name != header::VARY)
            .map(|(name, value)| (name.clone(), value.clone()))
            .collect();
        Self { vary, set, listed }
    }

    /// The headers set on every such response, whatever the response had.
    pub fn set(&self) -> impl Iterator<Item = &(HeaderName, HeaderValue)> {
        self.set.iter()
    }

    /// Whether `name` is one of [`Regular::set`]'s: a response's own value of it is replaced.
    pub fn sets(&self, name: &HeaderName) -> bool {
        self.set.iter().any(|(set, _)| set == name)
    }

    /// Once the response has every other header: appends to its `Vary` and answers a listed
    /// origin.
    pub fn finish(&self, origin: Option<HeaderValue>, headers: &mut HeaderMap) {
        if let Some(vary) = &self.vary {
            headers.append(header::VARY, vary.clone());
        }
        if let Some(origin) = origin {
            headers.insert(header::ACCESS_CONTROL_ALLOW_ORIGIN, origin);
        }
    }

    /// The request's origin, when it is one of a list of allowed ones.
    pub fn allowed_origin(&self, request: &Request) -> Option<HeaderValue> {
        let listed = self.listed.as_ref()?;
        request.headers().get(header::ORIGIN).filter(|origin| listed.contains(origin)).cloned()
    }
}

#[derive(Clone)]
pub struct PreflightOnlyLayer(pub(super) Arc<CorsLayer>);

impl<S> Layer<S> for PreflightOnlyLayer {
    type Service = PreflightOnly<S>;

    fn layer(&self, inner: S) -> Self::Service {
        PreflightOnly { inner, preflight: self.0.clone() }
    }
}

/// One inner service and the shared configuration: cloned per request by axum, so nothing in
/// it may allocate to clone.
#[derive(Clone)]
pub struct PreflightOnly<S> {
    inner: S,
    preflight: Arc<CorsLayer>,
}

impl<S> Service<Request> for PreflightOnly<S>
where
    S: Service<Request, Response = Response, Error = Infallible> + Clone + Send + 'static,
    S::Future: Send + 'static,
{
    type Response = Response;
    type Error = Infallible;
    type Future = Either<ResponseFuture<S::Future>, S::Future>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Infallible>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, req: Request) -> Self::Future {
        if req.method() == Method::OPTIONS && req.headers().contains_key(header::ACCESS_CONTROL_REQUEST_METHOD) {
            // Rare, and answered by tower-http without calling the inner service.
            return Either::Left(self.preflight.layer(self.inner.clone()).call(req));
        }
        Either::Right(self.inner.call(req))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The route behind CORS: answers with a `Vary` of its own, and a stale allow-origin.
    async fn route(_: Request) -> Result<Response, Infallible> {
        let mut response = Response::new(Body::empty());
        response.headers_mut().insert(header::VARY, HeaderValue::from_static("accept-encoding"));
        response.headers_mut().insert(header::ACCESS_CONTROL_ALLOW_ORIGIN, HeaderValue::from_static("stale"));
        Ok(response)
    }

    fn request(method: Method, origin: Option<&'static str>) -> Request {
        let mut request = Request::new(Body::empty());
        *request.method_mut() = method;
        if let Some(origin) = origin {
            request.headers_mut().insert(header::ORIGIN, HeaderValue::from_static(origin));
        }
        request
    }

    fn listed(headers: &HeaderMap) -> Vec<(String, String)> {
        headers.iter().map(|(n, v)| (n.to_string(), v.to_str().unwrap().to_owned())).collect()
    }

    #[tokio::test]
    async fn only_options_with_a_request_method_is_a_preflight() {
        let (layer, _) = configure(&["*".to_owned()]);
        let mut preflight = request(Method::OPTIONS, Some("https://client.example"));
        preflight.headers_mut().insert(header::ACCESS_CONTROL_REQUEST_METHOD, HeaderValue::from_static("PUT"));
        let Ok(answered) = layer.layer(tower::service_fn(route)).oneshot(preflight).await;
        assert_eq!(answered.headers()[header::ACCESS_CONTROL_ALLOW_METHODS], "PUT");
        assert!(answered.headers().get(header::VARY).is_some_and(|v| v != "accept-encoding"), "tower-http's own");

        let plain = request(Method::OPTIONS, Some("https://client.example"));
        let Ok(passed) = layer.layer(tower::service_fn(route)).oneshot(plain).await;
        assert_eq!(
            listed(passed.headers()),
            [("vary".into(), "accept-encoding".into()), ("access-control-allow-origin".into(), "stale".into())]
        );
    }
}

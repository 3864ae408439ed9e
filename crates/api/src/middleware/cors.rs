//! CORS, answering only real preflights.
//!
//! tower-http treats every `OPTIONS` request as a preflight; Starlette (and so the original)
//! only one that carries `Access-Control-Request-Method`. A plain `OPTIONS` must reach the
//! router and get its 405 (or 404), so this service sends it past CORS untouched.
//!
//! Preflights are answered by tower-http's `Cors`. Every other request gets the headers
//! tower-http would add to its response, but worked out once: they depend only on the
//! configuration and, with a list of origins, on whether the request's `Origin` is in it. They
//! are taken from tower-http itself at start (its answer to a request without an `Origin`), so
//! the two cannot drift apart. tower-http builds a header map, joins its `Vary` list and clones
//! its configuration (`Vec`s included) on every request.

use axum::body::Body;
use axum::extract::Request;
use axum::http::{HeaderMap, HeaderName, HeaderValue, Method, header};
use axum::response::Response;
use futures_util::FutureExt;
use futures_util::future::Either;
use std::convert::Infallible;
use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll, ready};
use tower::{Layer, Service, ServiceExt};
use tower_http::cors::{AllowHeaders, AllowMethods, AllowOrigin, CorsLayer, ResponseFuture};

/// `["*"]` answers `Access-Control-Allow-Origin: *` without credentials: any page may read
/// the API, and no browser attaches cookies or client certificates to such a request. (The
/// original mirrored every origin, `null` included, with credentials allowed: any page a
/// user visited could act with the user's ambient credentials.) A list of origins allows
/// exactly those, with credentials; `null` is never in it (validation takes http(s) origins).
/// Headers are mirrored in both cases, so scripts can still send `Authorization` or
/// `X-API-Key` explicitly.
pub fn layer(origins: &[String]) -> PreflightOnlyLayer {
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
    PreflightOnlyLayer(Arc::new(Config { preflight, regular }))
}

struct Config {
    /// Answers preflights.
    preflight: CorsLayer,
    regular: Regular,
}

/// What a request that is not a preflight gets on its response.
struct Regular {
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

    fn apply(&self, origin: Option<HeaderValue>, response: &mut Response) {
        let headers = response.headers_mut();
        if let Some(vary) = &self.vary {
            headers.append(header::VARY, vary.clone());
        }
        for (name, value) in &self.set {
            headers.insert(name, value.clone());
        }
        if let Some(origin) = origin {
            headers.insert(header::ACCESS_CONTROL_ALLOW_ORIGIN, origin);
        }
    }

    /// The request's origin, when it is one of a list of allowed ones.
    fn allowed_origin(&self, request: &Request) -> Option<HeaderValue> {
        let listed = self.listed.as_ref()?;
        request.headers().get(header::ORIGIN).filter(|origin| listed.contains(origin)).cloned()
    }
}

#[derive(Clone)]
pub struct PreflightOnlyLayer(Arc<Config>);

impl<S> Layer<S> for PreflightOnlyLayer {
    type Service = PreflightOnly<S>;

    fn layer(&self, inner: S) -> Self::Service {
        PreflightOnly { inner, config: self.0.clone() }
    }
}

/// One inner service and the shared configuration: cloned per request by axum, so nothing in
/// it may allocate to clone.
#[derive(Clone)]
pub struct PreflightOnly<S> {
    inner: S,
    config: Arc<Config>,
}

impl<S> Service<Request> for PreflightOnly<S>
where
    S: Service<Request, Response = Response, Error = Infallible> + Clone + Send + 'static,
    S::Future: Send + 'static,
{
    type Response = Response;
    type Error = Infallible;
    type Future = Either<ResponseFuture<S::Future>, CorsFuture<S::Future>>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Infallible>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, req: Request) -> Self::Future {
        if req.method() == Method::OPTIONS {
            if req.headers().contains_key(header::ACCESS_CONTROL_REQUEST_METHOD) {
                // Rare, and answered by tower-http without calling the inner service.
                return Either::Left(self.config.preflight.layer(self.inner.clone()).call(req));
            }
            return Either::Right(CorsFuture { inner: self.inner.call(req), add: None });
        }
        let origin = self.config.regular.allowed_origin(&req);
        Either::Right(CorsFuture { inner: self.inner.call(req), add: Some((self.config.clone(), origin)) })
    }
}

pin_project_lite::pin_project! {
    /// A request that is not a preflight: its response gets the CORS headers (none for a plain
    /// `OPTIONS`).
    pub struct CorsFuture<F> {
        #[pin]
        inner: F,
        add: Option<(Arc<Config>, Option<HeaderValue>)>,
    }
}

impl<F: Future<Output = Result<Response, Infallible>>> Future for CorsFuture<F> {
    type Output = Result<Response, Infallible>;

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        let this = self.project();
        let Ok(mut response) = ready!(this.inner.poll(cx));
        if let Some((config, origin)) = this.add.take() {
            config.regular.apply(origin, &mut response);
        }
        Poll::Ready(Ok(response))
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

    /// Every request that is not a preflight gets exactly the headers tower-http would give it,
    /// in the same order, for both kinds of configuration.
    #[tokio::test]
    async fn regular_requests_get_what_tower_http_answers() {
        for origins in [vec!["*".to_owned()], vec!["https://portal.example".to_owned(), "https://b.example".into()]] {
            let layer = layer(&origins);
            for (method, origin) in [
                (Method::GET, None),
                (Method::GET, Some("https://portal.example")),
                (Method::POST, Some("https://b.example")),
                (Method::DELETE, Some("https://evil.example")),
                (Method::GET, Some("null")),
            ] {
                let ours = layer.layer(tower::service_fn(route)).oneshot(request(method.clone(), origin)).await;
                let theirs = layer.0.preflight.layer(tower::service_fn(route)).oneshot(request(method, origin)).await;
                let (Ok(ours), Ok(theirs)) = (ours, theirs);
                assert_eq!(listed(ours.headers()), listed(theirs.headers()), "{origins:?} {origin:?}");
            }
        }
    }

    #[tokio::test]
    async fn only_options_with_a_request_method_is_a_preflight() {
        let layer = layer(&["*".to_owned()]);
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

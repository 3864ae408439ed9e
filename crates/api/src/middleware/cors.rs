//! CORS, answering only real preflights.
//!
//! tower-http treats every `OPTIONS` request as a preflight; Starlette (and so the original)
//! only one that carries `Access-Control-Request-Method`. A plain `OPTIONS` must reach the
//! router and get its 405 (or 404), so this service sends it past the CORS layer.

use axum::extract::Request;
use axum::http::{HeaderValue, Method, header};
use axum::response::Response;
use futures_util::future::Either;
use std::convert::Infallible;
use std::task::{Context, Poll, ready};
use tower::{Layer, Service};
use tower_http::cors::{AllowHeaders, AllowMethods, AllowOrigin, Cors, CorsLayer, ResponseFuture};

/// `["*"]` answers `Access-Control-Allow-Origin: *` without credentials: any page may read
/// the API, and no browser attaches cookies or client certificates to such a request. (The
/// original mirrored every origin, `null` included, with credentials allowed: any page a
/// user visited could act with the user's ambient credentials.) A list of origins allows
/// exactly those, with credentials; `null` is never in it (validation takes http(s) origins).
/// Headers are mirrored in both cases, so scripts can still send `Authorization` or
/// `X-API-Key` explicitly.
pub fn layer(origins: &[String]) -> PreflightOnlyLayer {
    let any = origins.iter().any(|o| o == "*");
    let allow_origin = if any {
        AllowOrigin::any()
    } else {
        AllowOrigin::list(origins.iter().filter_map(|o| HeaderValue::from_str(o).ok()))
    };
    PreflightOnlyLayer(
        CorsLayer::new()
            .allow_origin(allow_origin)
            .allow_credentials(!any)
            .allow_methods(AllowMethods::mirror_request())
            .allow_headers(AllowHeaders::mirror_request())
            .expose_headers([header::HeaderName::from_static("x-request-id")]),
    )
}

#[derive(Clone)]
pub struct PreflightOnlyLayer(CorsLayer);

impl<S: Clone> Layer<S> for PreflightOnlyLayer {
    type Service = PreflightOnly<S>;

    fn layer(&self, inner: S) -> Self::Service {
        PreflightOnly { cors: self.0.layer(inner.clone()), plain: inner }
    }
}

#[derive(Clone)]
pub struct PreflightOnly<S> {
    cors: Cors<S>,
    plain: S,
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
        // Both wrap the same router, ready together; either may take the request.
        ready!(self.plain.poll_ready(cx))?;
        self.cors.poll_ready(cx)
    }

    fn call(&mut self, req: Request) -> Self::Future {
        let plain_options =
            req.method() == Method::OPTIONS && !req.headers().contains_key(header::ACCESS_CONTROL_REQUEST_METHOD);
        // Called in place: no clone of the stack inside and no boxed future per request.
        if plain_options { Either::Right(self.plain.call(req)) } else { Either::Left(self.cors.call(req)) }
    }
}

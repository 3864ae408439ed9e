//! CORS, answering only real preflights.
//!
//! tower-http treats every `OPTIONS` request as a preflight; Starlette (and so the original)
//! only one that carries `Access-Control-Request-Method`. A plain `OPTIONS` must reach the
//! router and get its 405 (or 404), so this service sends it past the CORS layer.

use axum::extract::Request;
use axum::http::{HeaderValue, Method, header};
use axum::response::Response;
use futures_util::future::BoxFuture;
use std::convert::Infallible;
use std::task::{Context, Poll};
use tower::{Layer, Service};
use tower_http::cors::{AllowHeaders, AllowMethods, AllowOrigin, Cors, CorsLayer};

/// `["*"]` mirrors the caller's origin with credentials allowed (what Starlette did with
/// `allow_origins=["*"], allow_credentials=True`); otherwise only the listed origins.
pub fn layer(origins: &[String]) -> PreflightOnlyLayer {
    let allow_origin = if origins.iter().any(|o| o == "*") {
        AllowOrigin::mirror_request()
    } else {
        AllowOrigin::list(origins.iter().filter_map(|o| HeaderValue::from_str(o).ok()))
    };
    PreflightOnlyLayer(
        CorsLayer::new()
            .allow_origin(allow_origin)
            .allow_credentials(true)
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
    type Future = BoxFuture<'static, Result<Response, Infallible>>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Infallible>> {
        self.plain.poll_ready(cx)
    }

    fn call(&mut self, req: Request) -> Self::Future {
        let plain_options =
            req.method() == Method::OPTIONS && !req.headers().contains_key(header::ACCESS_CONTROL_REQUEST_METHOD);
        if plain_options {
            Box::pin(self.plain.call(req))
        } else {
            // `Cors` is ready whenever its inner service is; both wrap the same router.
            let mut cors = self.cors.clone();
            Box::pin(async move { cors.call(req).await })
        }
    }
}

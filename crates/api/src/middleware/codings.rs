//! Content codings: response compression and request decompression (tower-http), skipped for
//! requests that use neither.
//!
//! tower-http wraps every body in its own type whether it codes it or not, and each wrapped
//! body is boxed again into axum's `Body`: an allocation and a layer of indirection per frame,
//! per request. A request without `Accept-Encoding` gets an identity response from tower-http,
//! and one without `Content-Encoding` an identity body; those go straight through here, with the
//! one header tower-http would still add (`Vary: accept-encoding` on a response it would have
//! compressed for another client) added the same way.

use axum::body::Body;
use axum::extract::Request;
use axum::http::{HeaderValue, Response as HttpResponse, header};
use axum::response::{IntoResponse, Response};
use futures_util::future::{BoxFuture, Either};
use http_body::Body as HttpBody;
use std::convert::Infallible;
use std::future::Future;
use std::pin::Pin;
use std::task::{Context, Poll, ready};
use tower::util::MapRequest;
use tower::{Layer, Service, ServiceExt};
use tower_http::compression::predicate::Predicate;
use tower_http::compression::{Compression, CompressionLayer};
use tower_http::decompression::RequestDecompression;

/// tower-http's compression for requests that accept a coding; the rest pass untouched but for
/// the `Vary` header.
#[derive(Clone)]
pub struct NegotiatedCompressionLayer<P> {
    layer: CompressionLayer<P>,
    predicate: P,
}

impl<P: Predicate> NegotiatedCompressionLayer<P> {
    /// `layer` must compress when `predicate` says so: the same predicate it was given.
    pub fn new(layer: CompressionLayer<P>, predicate: P) -> Self {
        Self { layer, predicate }
    }
}

impl<S, P: Predicate> Layer<S> for NegotiatedCompressionLayer<P> {
    type Service = NegotiatedCompression<S, P>;

    fn layer(&self, inner: S) -> Self::Service {
        NegotiatedCompression { compression: self.layer.layer(inner), predicate: self.predicate.clone() }
    }
}

#[derive(Clone)]
pub struct NegotiatedCompression<S, P> {
    compression: Compression<S, P>,
    predicate: P,
}

impl<S, P> Service<Request> for NegotiatedCompression<S, P>
where
    S: Service<Request, Response = Response, Error = Infallible>,
    P: Predicate,
{
    type Response = Response;
    type Error = Infallible;
    type Future = CompressionFuture<S::Future, P>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Infallible>> {
        self.compression.poll_ready(cx)
    }

    fn call(&mut self, req: Request) -> Self::Future {
        // No `Accept-Encoding`: tower-http would choose identity (RFC 9110 12.5.3).
        if req.headers().contains_key(header::ACCEPT_ENCODING) {
            return CompressionFuture::Negotiated { inner: self.compression.call(req) };
        }
        let inner = self.compression.get_mut().call(req);
        CompressionFuture::Identity { inner, predicate: self.predicate.clone() }
    }
}

pin_project_lite::pin_project! {
    #[project = CompressionProjection]
    pub enum CompressionFuture<F, P> {
        Negotiated { #[pin] inner: tower_http::compression::ResponseFuture<F, P> },
        Identity { #[pin] inner: F, predicate: P },
    }
}

impl<F, P> Future for CompressionFuture<F, P>
where
    F: Future<Output = Result<Response, Infallible>>,
    P: Predicate,
{
    type Output = Result<Response, Infallible>;

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        match self.project() {
            CompressionProjection::Negotiated { inner } => {
                let Ok(response) = ready!(inner.poll(cx));
                Poll::Ready(Ok(response.into_response()))
            }
            CompressionProjection::Identity { inner, predicate } => {
                let Ok(mut response) = ready!(inner.poll(cx));
                vary_as_tower_http_would(predicate, &mut response);
                Poll::Ready(Ok(response))
            }
        }
    }
}

/// tower-http's identity answer: `Vary: accept-encoding` on a response it would compress for
/// a client that asked, unless a `Vary` already names it.
fn vary_as_tower_http_would<P: Predicate, B: HttpBody>(predicate: &P, response: &mut HttpResponse<B>) {
    let headers = response.headers();
    let compressible = !headers.contains_key(header::CONTENT_ENCODING)
        && !headers.contains_key(header::CONTENT_RANGE)
        && predicate.should_compress(response);
    let named = |value: &HeaderValue| {
        let name = header::ACCEPT_ENCODING.as_str().as_bytes();
        value.as_bytes().windows(name.len()).any(|window| window.eq_ignore_ascii_case(name))
    };
    if compressible && !response.headers().get_all(header::VARY).iter().any(named) {
        response.headers_mut().append(header::VARY, HeaderValue::from_static("accept-encoding"));
    }
}

/// tower-http's request decompression, for requests with a `Content-Encoding`; the others pass
/// untouched (tower-http would hand them on as they are, in a wrapper).
#[derive(Clone, Copy)]
pub struct DecompressionLayer;

impl<S> Layer<S> for DecompressionLayer {
    type Service = Decompression<S>;

    fn layer(&self, inner: S) -> Decompression<S> {
        Decompression { inner }
    }
}

#[derive(Clone)]
pub struct Decompression<S> {
    inner: S,
}

type Decoding<S> =
    RequestDecompression<MapRequest<S, fn(Request<tower_http::decompression::DecompressionBody<Body>>) -> Request>>;

impl<S> Service<Request> for Decompression<S>
where
    S: Service<Request, Response = Response, Error = Infallible> + Clone + Send + 'static,
    S::Future: Send + 'static,
{
    type Response = Response;
    type Error = Infallible;
    type Future = Either<S::Future, BoxFuture<'static, Result<Response, Infallible>>>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Infallible>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, req: Request) -> Self::Future {
        if !req.headers().contains_key(header::CONTENT_ENCODING) {
            return Either::Left(self.inner.call(req));
        }
        // The ready service goes with the coded request; a clone stays for the next.
        let clone = self.inner.clone();
        let inner = std::mem::replace(&mut self.inner, clone);
        let boxed: fn(Request<_>) -> Request = |req| req.map(Body::new);
        let decoding: Decoding<S> = RequestDecompression::new(inner.map_request(boxed));
        Either::Right(Box::pin(async move {
            let Ok(response) = decoding.oneshot(req).await;
            Ok(response.into_response())
        }))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use axum::http::StatusCode;
    use tower_http::compression::predicate::SizeAbove;

    async fn sized(_: Request) -> Result<Response, Infallible> {
        Ok(Response::new(Body::from(vec![b'x'; 100])))
    }

    fn request(headers: &[(header::HeaderName, &'static str)]) -> Request {
        let mut request = Request::new(Body::empty());
        for (name, value) in headers {
            request.headers_mut().insert(name, HeaderValue::from_static(value));
        }
        request
    }

    /// Without `Accept-Encoding` the response is what tower-http answers: the same headers,
    /// `Vary` included when the body is large enough to be compressed for another client.
    #[tokio::test]
    async fn identity_answers_match_tower_http() {
        for min in [10, 1000] {
            let predicate = SizeAbove::new(min);
            let tower = CompressionLayer::new().compress_when(predicate);
            let ours = NegotiatedCompressionLayer::new(tower.clone(), predicate);
            let Ok(mine) = ours.layer(tower::service_fn(sized)).oneshot(request(&[])).await;
            let Ok(theirs) = tower.layer(tower::service_fn(sized)).oneshot(request(&[])).await;
            assert_eq!(mine.headers(), theirs.headers(), "min {min}");
            assert_eq!(mine.headers().contains_key(header::VARY), min == 10);
        }
    }

    #[tokio::test]
    async fn a_client_that_accepts_gzip_gets_gzip() {
        let predicate = SizeAbove::new(10);
        let layer = NegotiatedCompressionLayer::new(CompressionLayer::new().compress_when(predicate), predicate);
        let Ok(response) =
            layer.layer(tower::service_fn(sized)).oneshot(request(&[(header::ACCEPT_ENCODING, "gzip")])).await;
        assert_eq!(response.headers()[header::CONTENT_ENCODING], "gzip");
    }

    /// Decoding itself is tower-http's (the HTTP suite sends gzip bodies); here: who gets it.
    #[tokio::test]
    async fn only_coded_requests_are_decoded_and_unknown_codings_are_refused() {
        let echo = tower::service_fn(|req: Request| async move {
            let bytes = axum::body::to_bytes(req.into_body(), 1024).await.unwrap_or_default();
            Ok::<_, Infallible>(Response::new(Body::from(bytes)))
        });
        let Ok(refused) = DecompressionLayer.layer(echo).oneshot(request(&[(header::CONTENT_ENCODING, "lzma")])).await;
        assert_eq!(refused.status(), StatusCode::UNSUPPORTED_MEDIA_TYPE);
        let mut identity = Request::new(Body::from("as is"));
        identity.headers_mut().insert(header::CONTENT_ENCODING, HeaderValue::from_static("identity"));
        let Ok(decoded) = DecompressionLayer.layer(echo).oneshot(identity).await;
        assert_eq!(axum::body::to_bytes(decoded.into_body(), 1024).await.unwrap(), "as is");
        let Ok(plain) = DecompressionLayer.layer(echo).oneshot(Request::new(Body::from("as is"))).await;
        assert_eq!(axum::body::to_bytes(plain.into_body(), 1024).await.unwrap(), "as is");
    }
}

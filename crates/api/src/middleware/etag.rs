//! Strong entity tags on successful GETs, and `304 Not Modified` for `If-None-Match`.
//!
//! The tag is a hash of the uncompressed body. Compression happens further out, and a strong
//! tag must differ between representations, so [`suffix_encoding`] (outside the compression
//! layer) appends the content coding (`"abc"` -> `"abc-gzip"`), as Apache does; a request
//! carrying either form matches the body it describes.

use axum::body::{Body, Bytes};
use axum::extract::Request;
use axum::http::response::Parts;
use axum::http::{HeaderMap, HeaderValue, Method, StatusCode, header};
use axum::response::{IntoResponse, Response};
use http_body_util::BodyExt;
use http_body_util::combinators::Collect;
use std::convert::Infallible;
use std::future::Future;
use std::pin::Pin;
use std::task::{Context, Poll, ready};
use tower::{Layer, Service};
use xxhash_rust::xxh3::xxh3_64;

const CODINGS: &[&str] = &["gzip", "br", "zstd", "deflate"];

/// Largest body worth an ETag. Streamed bodies (the v1 list past its first 64 KiB) have no
/// upper size and always pass untagged: hashing them would mean holding them.
const MAX_TAGGED_BYTES: u64 = 16 * 1024 * 1024;

/// Tags successful GETs; a hand-written service so that a request costs no clone of the
/// stack inside and no boxed future (axum's `from_fn` cost both, on every request).
#[derive(Clone, Copy)]
pub struct EtagLayer;

impl<S> Layer<S> for EtagLayer {
    type Service = Etag<S>;

    fn layer(&self, inner: S) -> Etag<S> {
        Etag { inner }
    }
}

#[derive(Clone)]
pub struct Etag<S> {
    inner: S,
}

impl<S> Service<Request> for Etag<S>
where
    S: Service<Request, Response = Response, Error = Infallible>,
{
    type Response = Response;
    type Error = Infallible;
    type Future = EtagFuture<S::Future>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Infallible>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, req: Request) -> Self::Future {
        let state = if req.method() == Method::GET {
            let if_none_match = req.headers().get(header::IF_NONE_MATCH).cloned();
            State::Answering { inner: self.inner.call(req), if_none_match }
        } else {
            State::Passing { inner: self.inner.call(req) }
        };
        EtagFuture { state }
    }
}

pin_project_lite::pin_project! {
    pub struct EtagFuture<F> {
        #[pin]
        state: State<F>,
    }
}

pin_project_lite::pin_project! {
    #[project = StateProjection]
    enum State<F> {
        /// Not a GET: the answer passes untouched.
        Passing { #[pin] inner: F },
        /// A GET, waiting for its answer.
        Answering { #[pin] inner: F, if_none_match: Option<HeaderValue> },
        /// A tagged answer's body being read, to hash it.
        Reading { parts: Option<Parts>, #[pin] body: Collect<Body>, if_none_match: Option<HeaderValue> },
    }
}

impl<F: Future<Output = Result<Response, Infallible>>> Future for EtagFuture<F> {
    type Output = Result<Response, Infallible>;

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        let mut state = self.project().state;
        loop {
            match state.as_mut().project() {
                StateProjection::Passing { inner } => return inner.poll(cx),
                StateProjection::Answering { inner, if_none_match } => {
                    let Ok(response) = ready!(inner.poll(cx));
                    // Only bodies of known, bounded size are buffered for hashing (every API
                    // response is); anything streamed or huge passes untagged rather than held
                    // in memory.
                    let bounded =
                        http_body::Body::size_hint(response.body()).upper().is_some_and(|n| n <= MAX_TAGGED_BYTES);
                    if response.status() != StatusCode::OK || response.headers().contains_key(header::ETAG) || !bounded
                    {
                        return Poll::Ready(Ok(response));
                    }
                    let if_none_match = if_none_match.take();
                    let (parts, body) = response.into_parts();
                    state.set(State::Reading { parts: Some(parts), body: body.collect(), if_none_match });
                }
                StateProjection::Reading { parts, body, if_none_match } => {
                    let read = ready!(body.poll(cx));
                    let (Some(parts), Ok(read)) = (parts.take(), read) else {
                        return Poll::Ready(Ok(StatusCode::INTERNAL_SERVER_ERROR.into_response()));
                    };
                    return Poll::Ready(Ok(tagged(parts, read.to_bytes(), if_none_match.take())));
                }
            }
        }
    }
}

/// The answer with its tag, or a 304 when the client already holds this body.
fn tagged(mut parts: Parts, bytes: Bytes, if_none_match: Option<HeaderValue>) -> Response {
    // `"` + 16 hex digits + `"`, written by hand: no formatting machinery per response.
    let (hash, hex) = (xxh3_64(&bytes), b"0123456789abcdef");
    let mut buffer = [b'"'; 18];
    for (i, digit) in buffer[1..17].iter_mut().enumerate() {
        *digit = hex[(hash >> (60 - 4 * i) & 0xf) as usize];
    }
    let tag = std::str::from_utf8(&buffer).unwrap_or_default();
    if let Some(matched) = if_none_match.as_ref().and_then(|header| matching(header, tag)) {
        let mut not_modified = StatusCode::NOT_MODIFIED.into_response();
        copy_validators(&parts.headers, not_modified.headers_mut());
        not_modified.headers_mut().insert(header::ETAG, matched);
        return not_modified;
    }
    if let Ok(value) = HeaderValue::from_str(tag) {
        parts.headers.insert(header::ETAG, value);
    }
    Response::from_parts(parts, Body::from(bytes))
}

/// The client's tag that names this body (`*`, the bare tag, or the tag with a coding
/// suffix), returned as the client sent it so the 304 confirms the representation it holds.
fn matching(header: &HeaderValue, tag: &str) -> Option<HeaderValue> {
    let bare = tag.trim_matches('"');
    header.to_str().ok()?.split(',').map(str::trim).find_map(|candidate| {
        let value = candidate.trim_start_matches("W/").trim_matches('"');
        let base = CODINGS.iter().find_map(|c| value.strip_suffix(&format!("-{c}"))).unwrap_or(value);
        (candidate == "*" || base == bare).then(|| HeaderValue::from_str(candidate).ok()).flatten()
    })
}

/// A 304 carries the headers a 200 would have had for caching (RFC 9110 15.4.5).
fn copy_validators(from: &HeaderMap, to: &mut HeaderMap) {
    for name in [header::CACHE_CONTROL, header::VARY, header::EXPIRES, header::CONTENT_LOCATION] {
        if let Some(value) = from.get(&name) {
            to.insert(name, value.clone());
        }
    }
}

/// Outside compression: `"tag"` becomes `"tag-gzip"` when the body was gzip-encoded.
pub fn suffix_encoding(headers: &mut HeaderMap) {
    let (Some(coding), Some(tag)) = (headers.get(header::CONTENT_ENCODING), headers.get(header::ETAG)) else {
        return;
    };
    let (Ok(coding), Ok(tag)) = (coding.to_str(), tag.to_str()) else { return };
    if let Ok(value) = HeaderValue::from_str(&format!("\"{}-{coding}\"", tag.trim_matches('"'))) {
        headers.insert(header::ETAG, value);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tags_match_bare_suffixed_weak_and_star() {
        let tag = "\"0123456789abcdef\"";
        for header in [
            "\"0123456789abcdef\"",
            "\"0123456789abcdef-gzip\"",
            "W/\"0123456789abcdef\"",
            "\"x\", \"0123456789abcdef-br\"",
            "*",
        ] {
            assert!(matching(&HeaderValue::from_static(header), tag).is_some(), "{header}");
        }
        for header in ["\"0123456789abcdee\"", "\"0123456789abcdef-lzma\"", ""] {
            assert!(matching(&HeaderValue::from_static(header), tag).is_none(), "{header}");
        }
    }
}

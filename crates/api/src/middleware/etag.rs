//! Strong entity tags on successful GETs, and `304 Not Modified` for `If-None-Match`.
//!
//! The tag is a hash of the uncompressed body. Compression happens further out, and a strong
//! tag must differ between representations, so [`suffix_encoding`] (outside the compression
//! layer) appends the content coding (`"abc"` -> `"abc-gzip"`), as Apache does; a request
//! carrying either form matches the body it describes.

use axum::body::{Body, to_bytes};
use axum::extract::Request;
use axum::http::{HeaderMap, HeaderValue, Method, StatusCode, header};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use xxhash_rust::xxh3::xxh3_64;

const CODINGS: &[&str] = &["gzip", "br", "zstd", "deflate"];

/// Largest body worth an ETag. Streamed bodies (the v1 list past its first 64 KiB) have no
/// upper size and always pass untagged: hashing them would mean holding them.
const MAX_TAGGED_BYTES: u64 = 16 * 1024 * 1024;

pub async fn layer(req: Request, next: Next) -> Response {
    if req.method() != Method::GET {
        return next.run(req).await;
    }
    let if_none_match = req.headers().get(header::IF_NONE_MATCH).cloned();
    let response = next.run(req).await;
    // Only bodies of known, bounded size are buffered for hashing (every API response is);
    // anything streamed or huge passes untagged rather than held in memory.
    let bounded = http_body::Body::size_hint(response.body()).upper().is_some_and(|n| n <= MAX_TAGGED_BYTES);
    if response.status() != StatusCode::OK || response.headers().contains_key(header::ETAG) || !bounded {
        return response;
    }
    let (mut parts, body) = response.into_parts();
    let Ok(bytes) = to_bytes(body, usize::MAX).await else {
        return StatusCode::INTERNAL_SERVER_ERROR.into_response();
    };
    let tag = format!("\"{:016x}\"", xxh3_64(&bytes));
    if let Some(matched) = if_none_match.as_ref().and_then(|header| matching(header, &tag)) {
        let mut not_modified = StatusCode::NOT_MODIFIED.into_response();
        copy_validators(&parts.headers, not_modified.headers_mut());
        not_modified.headers_mut().insert(header::ETAG, matched);
        return not_modified;
    }
    if let Ok(value) = HeaderValue::from_str(&tag) {
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
pub async fn suffix_encoding(mut response: Response) -> Response {
    let coding = response.headers().get(header::CONTENT_ENCODING).and_then(|v| v.to_str().ok()).map(str::to_owned);
    if let (Some(coding), Some(tag)) = (coding, response.headers().get(header::ETAG).and_then(|v| v.to_str().ok())) {
        let suffixed = format!("\"{}-{coding}\"", tag.trim_matches('"'));
        if let Ok(value) = HeaderValue::from_str(&suffixed) {
            response.headers_mut().insert(header::ETAG, value);
        }
    }
    response
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

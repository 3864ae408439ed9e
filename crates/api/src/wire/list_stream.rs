//! The unpaged v1 list written as it is read: the same bytes `Json(Vec<PortfolioDto>)` would
//! send (compact JSON, one array, the same order and field formats), produced batch by batch.
//!
//! Memory is bounded by bytes, not by the number of portfolios: one batch
//! ([`pfs_storage::listing::BATCH_BYTES`]) and its encoding at a time. hyper asks for the next
//! chunk only once the previous one is written, so a slow reader slows the database reads
//! instead of buffering the list. A list that ends within [`WHOLE_BYTES`] is sent as one body
//! with a `Content-Length` (and gets its ETag, like every bounded body); a longer one goes out
//! in chunks (`Transfer-Encoding: chunked` on HTTP/1.1), without an ETag, since the tag would
//! need the whole body first.
//!
//! Once the status line has gone out, a failure can no longer become an error response: it is
//! logged and the body ends abnormally (the connection is aborted on HTTP/1.1, the stream reset
//! on HTTP/2), so the client sees a truncated transfer, never a valid-looking short array.

use super::dto::PortfolioDto;
use axum::body::{Body, Bytes};
use axum::http::{HeaderValue, header};
use axum::response::{IntoResponse, Response};
use futures_util::StreamExt;
use futures_util::stream;
use pfs_domain::Portfolio;
use pfs_storage::{PortfolioBatches, StoreResult};

/// A list whose encoding ends within this many bytes is answered as one body.
pub const WHOLE_BYTES: usize = 64 * 1024;

/// The response for `batches`. Reads batches until the encoding passes [`WHOLE_BYTES`] or the
/// list ends; a failure until then is the caller's to answer (nothing has been sent yet).
pub async fn respond(mut batches: PortfolioBatches) -> StoreResult<Response> {
    let mut head = vec![b'['];
    let mut items = 0usize;
    while head.len() < WHOLE_BYTES {
        match batches.next().await.transpose()? {
            Some(batch) => items += encode(&mut head, &batch, items),
            None => {
                head.push(b']');
                return Ok(json(Body::from(head)));
            }
        }
    }
    let rest = stream::unfold((Some(batches), items), |(batches, items)| async move {
        let mut batches = batches?;
        match batches.next().await {
            Some(Ok(batch)) => {
                let mut chunk = Vec::new();
                let items = items + encode(&mut chunk, &batch, items);
                Some((Ok(Bytes::from(chunk)), (Some(batches), items)))
            }
            None => Some((Ok(Bytes::from_static(b"]")), (None, items))),
            Some(Err(err)) => {
                tracing::error!(error = %err, items_sent = items,
                    "the v1 list failed after its response started; aborting the response");
                Some((Err(std::io::Error::other(err)), (None, items)))
            }
        }
    });
    // Fused: the compression layer polls the body once more after its end.
    let body = stream::once(std::future::ready(Ok::<_, std::io::Error>(Bytes::from(head)))).chain(rest).fuse();
    Ok(json(Body::from_stream(body)))
}

/// Appends `batch` as array elements, each after a comma unless it is the first of the list
/// (`before` elements precede it); returns how many were written.
fn encode(out: &mut Vec<u8>, batch: &[Portfolio], before: usize) -> usize {
    for (n, portfolio) in batch.iter().enumerate() {
        if before + n > 0 {
            out.push(b',');
        }
        // A DTO of plain strings and an integer cannot fail to serialize into a Vec.
        serde_json::to_writer(&mut *out, &PortfolioDto::from(portfolio)).expect("a portfolio serializes");
    }
    batch.len()
}

fn json(body: Body) -> Response {
    ([(header::CONTENT_TYPE, HeaderValue::from_static("application/json"))], body).into_response()
}

#[cfg(test)]
mod tests {
    use super::*;
    use pfs_domain::{PortfolioId, Timestamp, Version};
    use pfs_storage::StoreError;

    fn portfolio(n: u32, name: &str) -> Portfolio {
        let mut id = [0u8; 12];
        id[8..].copy_from_slice(&n.to_be_bytes());
        Portfolio {
            id: PortfolioId::from_bytes(id),
            name: name.to_owned(),
            date_created: Timestamp::from_millis(1_700_000_000_123).unwrap(),
            version: Version(i64::from(n)),
        }
    }

    fn of(batches: Vec<StoreResult<Vec<Portfolio>>>) -> PortfolioBatches {
        stream::iter(batches).boxed()
    }

    async fn body(response: Response) -> Result<Vec<u8>, axum::Error> {
        axum::body::to_bytes(response.into_body(), usize::MAX).await.map(|b| b.to_vec())
    }

    /// What the route sent before it streamed: `Json` of every DTO.
    fn buffered(all: &[Portfolio]) -> Vec<u8> {
        serde_json::to_vec(&all.iter().map(PortfolioDto::from).collect::<Vec<_>>()).unwrap()
    }

    #[tokio::test]
    async fn small_and_empty_lists_are_one_body_with_the_same_bytes_as_before() {
        let all: Vec<_> = (0..5).map(|n| portfolio(n, "quote \" and \u{e9}")).collect();
        let response = respond(of(vec![Ok(all[..2].to_vec()), Ok(all[2..].to_vec())])).await.unwrap();
        assert_eq!(response.headers()[header::CONTENT_TYPE], "application/json");
        assert_eq!(http_body::Body::size_hint(response.body()).exact(), Some(buffered(&all).len() as u64));
        assert_eq!(body(response).await.unwrap(), buffered(&all));
        assert_eq!(body(respond(of(vec![])).await.unwrap()).await.unwrap(), b"[]");
    }

    #[tokio::test]
    async fn a_long_list_streams_in_chunks_with_the_same_bytes_as_before() {
        let name = "n".repeat(1000);
        let batches: Vec<Vec<Portfolio>> =
            (0..10).map(|b| (0..50).map(|n| portfolio(b * 50 + n, &name)).collect()).collect();
        let all: Vec<Portfolio> = batches.concat();
        let response = respond(of(batches.into_iter().map(Ok).collect())).await.unwrap();
        assert_eq!(http_body::Body::size_hint(response.body()).upper(), None, "streamed, no length");
        let mut body_stream = response.into_body().into_data_stream();
        let mut sent = Vec::new();
        while let Some(chunk) = body_stream.next().await {
            sent.extend_from_slice(&chunk.unwrap());
        }
        assert_eq!(sent, buffered(&all));
        assert!(body_stream.next().await.is_none(), "polling past the end is harmless (compression does)");
    }

    #[tokio::test]
    async fn a_failure_before_the_first_chunk_is_an_error_and_after_it_aborts_the_body() {
        let early = respond(of(vec![Ok(vec![portfolio(1, "a")]), Err(StoreError::Unavailable("down".into()))])).await;
        assert!(matches!(early, Err(StoreError::Unavailable(_))));

        let big: Vec<_> = (0..100).map(|n| portfolio(n, &"x".repeat(1000))).collect();
        let late = respond(of(vec![Ok(big), Err(StoreError::Backend("gone".into()))])).await.unwrap();
        assert!(body(late).await.is_err(), "the body ends in an error, not in a closing bracket");
    }
}

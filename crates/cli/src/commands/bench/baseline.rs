//! The baseline: bare hyper answering every request with a fixed portfolio JSON body. No
//! routing, no middleware, no storage: what this machine and this client can do at most.
//!
//! With `--answer-from URL` it answers instead what the service answered to one GET of URL:
//! the same status, headers and body, copied from a map built once. That separates what the
//! response costs on the wire (a dozen more headers to encode, write and read) from what the
//! service's stack costs to make it.

use anyhow::Context;
use bytes::Bytes;
use http_body_util::Full;
use hyper::body::Incoming;
use hyper::header::{CONTENT_LENGTH, CONTENT_TYPE, DATE, HeaderMap, HeaderValue, TRANSFER_ENCODING};
use hyper::server::conn::http1;
use hyper::service::service_fn;
use hyper::{Request, Response, StatusCode};
use hyper_util::rt::TokioIo;
use std::convert::Infallible;
use std::sync::Arc;

const BODY: &str = r#"{"portfolioId":"6740f1c2a1b2c3d4e5f60718","name":"Tech Growth","dateCreated":"2024-01-15T10:30:00.000Z","version":1}"#;

/// What every request is answered with.
struct Answer {
    status: StatusCode,
    headers: HeaderMap,
    body: Bytes,
}

impl Answer {
    fn fixed() -> Self {
        let headers = HeaderMap::from_iter([(CONTENT_TYPE, HeaderValue::from_static("application/json"))]);
        Self { status: StatusCode::OK, headers, body: Bytes::from_static(BODY.as_bytes()) }
    }

    /// The answer to one GET of `url`, less what hyper writes itself (its length and date).
    async fn copied(url: &str) -> anyhow::Result<Self> {
        let response = reqwest::get(url).await.with_context(|| format!("GET {url}"))?;
        let status = response.status();
        let mut headers = response.headers().clone();
        for hyper_writes in [CONTENT_LENGTH, DATE, TRANSFER_ENCODING] {
            headers.remove(hyper_writes);
        }
        Ok(Self { status, headers, body: response.bytes().await? })
    }

    fn response(&self) -> Response<Full<Bytes>> {
        let mut response = Response::new(Full::new(self.body.clone()));
        *response.status_mut() = self.status;
        *response.headers_mut() = self.headers.clone();
        response
    }
}

pub async fn serve(port: u16, answer_from: Option<String>) -> anyhow::Result<()> {
    let answer = Arc::new(match answer_from {
        Some(url) => Answer::copied(&url).await?,
        None => Answer::fixed(),
    });
    let listener = tokio::net::TcpListener::bind(("127.0.0.1", port)).await?;
    eprintln!("baseline: serving a fixed answer on http://127.0.0.1:{port}/");
    answer_on(listener, answer).await
}

async fn answer_on(listener: tokio::net::TcpListener, answer: Arc<Answer>) -> anyhow::Result<()> {
    loop {
        let (stream, _) = tokio::select! {
            accepted = listener.accept() => accepted?,
            () = pfs_platform::shutdown::signal() => return Ok(()),
        };
        let answer = answer.clone();
        let handle = move |_: Request<Incoming>| {
            let response = answer.response();
            async move { Ok::<_, Infallible>(response) }
        };
        tokio::spawn(async move {
            let _ = http1::Builder::new().serve_connection(TokioIo::new(stream), service_fn(handle)).await;
        });
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    async fn started(answer: Answer) -> String {
        let listener = tokio::net::TcpListener::bind(("127.0.0.1", 0)).await.unwrap();
        let url = format!("http://{}/", listener.local_addr().unwrap());
        tokio::spawn(answer_on(listener, Arc::new(answer)));
        url
    }

    #[tokio::test]
    async fn a_copied_answer_is_the_answer_it_copied_less_length_and_date() {
        let mut original = Answer::fixed();
        original.status = StatusCode::ACCEPTED;
        original.headers.append("x-frame-options", HeaderValue::from_static("DENY"));
        original.headers.append("vary", HeaderValue::from_static("a"));
        original.headers.append("vary", HeaderValue::from_static("b"));
        let copied = Answer::copied(&started(original).await).await.unwrap();
        assert_eq!(copied.status, StatusCode::ACCEPTED);
        assert_eq!(copied.body, BODY.as_bytes());
        assert_eq!(copied.headers.len(), 4, "{:?}", copied.headers);
        assert_eq!(copied.headers[CONTENT_TYPE], "application/json");
        assert_eq!(copied.headers.get_all("vary").iter().collect::<Vec<_>>(), ["a", "b"]);

        let again = reqwest::get(started(copied).await).await.unwrap();
        assert_eq!(again.status(), 202);
        assert_eq!(again.headers()["x-frame-options"], "DENY");
        assert!(again.headers().contains_key(DATE), "hyper's own date");
        assert_eq!(again.text().await.unwrap(), BODY);
    }
}

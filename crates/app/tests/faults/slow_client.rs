//! Slow clients over raw TCP: headers or a body trickled in, or nothing sent at all, are cut
//! off by the read timeouts instead of holding a connection (and a task) forever.

use pfs_test_support::TestApp;
use std::time::{Duration, Instant};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

const LIMIT: Duration = Duration::from_millis(500);

async fn app() -> TestApp {
    TestApp::builder()
        .with_config(|c| {
            c.reliability.header_read_timeout = LIMIT;
            c.reliability.body_read_timeout = LIMIT;
        })
        .spawn()
        .await
}

/// Writes `bytes` one at a time, `pause` apart, stopping when the server has closed.
async fn trickle(stream: &mut TcpStream, bytes: &[u8], pause: Duration) {
    for byte in bytes {
        if stream.write_all(&[*byte]).await.is_err() {
            return;
        }
        tokio::time::sleep(pause).await;
    }
}

/// Everything the server sends until it closes the connection, and when that happened;
/// panics if it is still open after 5 s.
async fn until_closed(stream: &mut TcpStream, since: Instant) -> (String, Duration) {
    let mut received = Vec::new();
    let read = tokio::time::timeout(Duration::from_secs(5), stream.read_to_end(&mut received)).await;
    assert!(read.is_ok(), "the connection was still open after 5 s");
    (String::from_utf8_lossy(&received).into_owned(), since.elapsed())
}

#[tokio::test]
async fn headers_trickled_in_are_cut_off() {
    let app = app().await;
    let (mut reader, mut writer) = TcpStream::connect(app.address).await.unwrap().into_split();
    let start = Instant::now();
    let request = format!("GET /health/live HTTP/1.1\r\nHost: x\r\nX-Slow: {}\r\n\r\n", "a".repeat(200));
    let writing = tokio::spawn(async move {
        for byte in request.as_bytes() {
            if writer.write_all(&[*byte]).await.is_err() {
                break;
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    });
    let mut received = Vec::new();
    let read = tokio::time::timeout(Duration::from_secs(5), reader.read_to_end(&mut received)).await;
    writing.abort();
    assert!(read.is_ok(), "a client trickling its headers over 4 s kept the connection");
    assert!(!String::from_utf8_lossy(&received).contains("200 OK"), "the slow request was served");
    assert!(start.elapsed() >= Duration::from_millis(400), "closed before the timeout: {:?}", start.elapsed());
}

#[tokio::test]
async fn a_connection_that_sends_nothing_is_closed() {
    let app = app().await;
    let mut stream = TcpStream::connect(app.address).await.unwrap();
    let (received, after) = until_closed(&mut stream, Instant::now()).await;
    assert!(received.is_empty() || received.starts_with("HTTP/1.1 408"), "{received}");
    assert!(after >= Duration::from_millis(400), "closed before the timeout: {after:?}");
}

#[tokio::test]
async fn a_body_trickled_in_gets_408() {
    let app = app().await;
    let mut stream = TcpStream::connect(app.address).await.unwrap();
    let body = br#"{"name": "slow"}"#;
    let head = format!(
        "POST /api/v1/portfolios HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\nContent-Length: {}\r\n\r\n",
        body.len()
    );
    stream.write_all(head.as_bytes()).await.unwrap();
    let start = Instant::now();
    trickle(&mut stream, &body[..4], Duration::from_millis(50)).await;
    let (received, after) = until_closed(&mut stream, start).await;
    assert!(received.starts_with("HTTP/1.1 408"), "expected 408, got {received:?}");
    assert!(after >= Duration::from_millis(400), "cut before the timeout: {after:?}");
    assert_eq!(app.get("/api/v1/portfolios").await.json::<serde_json::Value>().await.unwrap(), serde_json::json!([]));
}

#[tokio::test]
async fn a_slow_client_within_the_limits_is_served() {
    let app = app().await;
    let mut stream = TcpStream::connect(app.address).await.unwrap();
    let start = Instant::now();
    trickle(
        &mut stream,
        b"GET /health/live HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n",
        Duration::from_millis(1),
    )
    .await;
    let (received, _) = until_closed(&mut stream, start).await;
    assert!(received.starts_with("HTTP/1.1 200"), "{received:?}");
}

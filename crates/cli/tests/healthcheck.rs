//! `portfolio-service healthcheck` as the container runs it: a separate process probing the
//! service's port, judged by its exit code.

use pfs_test_support::{ServiceCommand, TestApp, free_port};
use std::process::Output;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpListener;

const BIN: &str = env!("CARGO_BIN_EXE_portfolio-service");

/// Runs the probe with `PORTFOLIO_PORT` set and little else, as a container's environment would.
async fn healthcheck(port: u16, args: &[&str]) -> Output {
    ServiceCommand::new(BIN).arg("healthcheck").args(args).port(port).run().await
}

fn stderr(output: &Output) -> String {
    String::from_utf8_lossy(&output.stderr).into_owned()
}

/// A loopback server that reads one request and answers it with `response` (or never, if empty).
async fn one_shot_server(response: &'static str) -> u16 {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let port = listener.local_addr().unwrap().port();
    tokio::spawn(async move {
        let (mut socket, _) = listener.accept().await.unwrap();
        let mut request = [0u8; 1024];
        let _ = socket.read(&mut request).await;
        if response.is_empty() {
            std::future::pending::<()>().await;
        }
        socket.write_all(response.as_bytes()).await.unwrap();
    });
    port
}

#[tokio::test]
async fn a_live_service_passes() {
    let app = TestApp::spawn().await;
    let output = healthcheck(app.address.port(), &[]).await;
    assert!(output.status.success(), "healthcheck failed: {}", stderr(&output));
    app.stop().await.unwrap();
}

#[tokio::test]
async fn nothing_listening_fails_naming_the_url() {
    let port = free_port();
    let output = healthcheck(port, &[]).await;
    assert_eq!(output.status.code(), Some(1));
    assert!(stderr(&output).contains(&format!("http://127.0.0.1:{port}/health/live")), "{}", stderr(&output));
}

#[tokio::test]
async fn an_error_status_fails() {
    let port = one_shot_server("HTTP/1.1 503 Service Unavailable\r\ncontent-length: 0\r\n\r\n").await;
    let output = healthcheck(port, &[]).await;
    assert_eq!(output.status.code(), Some(1));
    assert!(stderr(&output).contains("503"), "{}", stderr(&output));
}

#[tokio::test]
async fn a_hung_service_fails_at_the_timeout() {
    let port = one_shot_server("").await;
    let output = healthcheck(port, &["--timeout", "300ms"]).await;
    assert_eq!(output.status.code(), Some(1));
    assert!(stderr(&output).contains("did not answer within 300ms"), "{}", stderr(&output));
}

#[tokio::test]
async fn an_explicit_url_is_probed_instead() {
    let app = TestApp::spawn().await;
    let url = app.url("/health/live");
    let output = healthcheck(1, &["--url", &url]).await;
    assert!(output.status.success(), "healthcheck failed: {}", stderr(&output));
    app.stop().await.unwrap();
}

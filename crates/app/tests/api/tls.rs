//! HTTPS with a configured certificate: TLS through rustls, HTTP/2 or HTTP/1.1 by ALPN.

use http_body_util::{BodyExt, Empty};
use hyper::body::Bytes;
use hyper_util::rt::{TokioExecutor, TokioIo};
use pfs_test_support::TestApp;
use std::sync::Arc;
use tokio_rustls::TlsConnector;
use tokio_rustls::rustls::pki_types::{CertificateDer, ServerName};
use tokio_rustls::rustls::{ClientConfig, RootCertStore};

struct Tls {
    app: TestApp,
    cert: CertificateDer<'static>,
    _dir: tempfile::TempDir,
}

async fn spawn_tls() -> Tls {
    let key = rcgen::generate_simple_self_signed(vec!["localhost".into(), "127.0.0.1".into()]).unwrap();
    let dir = tempfile::tempdir().unwrap();
    let (cert_path, key_path) = (dir.path().join("cert.pem"), dir.path().join("key.pem"));
    std::fs::write(&cert_path, key.cert.pem()).unwrap();
    std::fs::write(&key_path, key.signing_key.serialize_pem()).unwrap();
    let app = TestApp::spawn_with_env(&[
        ("PORTFOLIO_SERVER__TLS_CERT_PATH", cert_path.to_str().unwrap()),
        ("PORTFOLIO_SERVER__TLS_KEY_PATH", key_path.to_str().unwrap()),
    ])
    .await;
    Tls { app, cert: key.cert.der().clone(), _dir: dir }
}

/// Connects with ALPN `protocols`; returns the negotiated protocol and the TLS stream.
async fn connect(tls: &Tls, protocols: &[&[u8]]) -> (Vec<u8>, tokio_rustls::client::TlsStream<tokio::net::TcpStream>) {
    let mut roots = RootCertStore::empty();
    roots.add(tls.cert.clone()).unwrap();
    let provider = Arc::new(tokio_rustls::rustls::crypto::ring::default_provider());
    let mut config = ClientConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .unwrap()
        .with_root_certificates(roots)
        .with_no_client_auth();
    config.alpn_protocols = protocols.iter().map(|p| p.to_vec()).collect();
    let tcp = tokio::net::TcpStream::connect(tls.app.address).await.unwrap();
    let stream =
        TlsConnector::from(Arc::new(config)).connect(ServerName::try_from("localhost").unwrap(), tcp).await.unwrap();
    let negotiated = stream.get_ref().1.alpn_protocol().unwrap_or_default().to_vec();
    (negotiated, stream)
}

fn request(path: &str) -> hyper::Request<Empty<Bytes>> {
    hyper::Request::get(format!("https://localhost{path}")).body(Empty::new()).unwrap()
}

#[tokio::test]
async fn https_negotiates_http2_and_serves_the_api() {
    let tls = spawn_tls().await;
    let (protocol, stream) = connect(&tls, &[b"h2", b"http/1.1"]).await;
    assert_eq!(protocol, b"h2");
    let (mut sender, connection) =
        hyper::client::conn::http2::handshake(TokioExecutor::new(), TokioIo::new(stream)).await.unwrap();
    tokio::spawn(connection);
    let response = sender.send_request(request("/api/v2/portfolios")).await.unwrap();
    assert_eq!(response.status(), 200);
    assert_eq!(response.version(), hyper::Version::HTTP_2);
    let body = response.into_body().collect().await.unwrap().to_bytes();
    assert!(String::from_utf8_lossy(&body).contains("\"pagination\""));
}

#[tokio::test]
async fn https_clients_without_http2_get_http1() {
    let tls = spawn_tls().await;
    let (protocol, stream) = connect(&tls, &[b"http/1.1"]).await;
    assert_eq!(protocol, b"http/1.1");
    let (mut sender, connection) = hyper::client::conn::http1::handshake(TokioIo::new(stream)).await.unwrap();
    tokio::spawn(connection);
    let response = sender.send_request(request("/health")).await.unwrap();
    assert_eq!(response.status(), 200);
    assert_eq!(response.into_body().collect().await.unwrap().to_bytes(), "OK");
}

#[tokio::test]
async fn tls_servers_also_stop_gracefully() {
    let tls = spawn_tls().await;
    assert!(tls.app.stop().await.is_ok());
}

/// The redirect is relative, so the client stays on the https URL it used.
#[tokio::test]
async fn trailing_slash_redirects_keep_the_https_scheme() {
    let tls = spawn_tls().await;
    let (_, stream) = connect(&tls, &[b"http/1.1"]).await;
    let (mut sender, connection) = hyper::client::conn::http1::handshake(TokioIo::new(stream)).await.unwrap();
    tokio::spawn(connection);
    let request =
        hyper::Request::get("/api/v2/portfolios/").header("host", "localhost").body(Empty::<Bytes>::new()).unwrap();
    let response = sender.send_request(request).await.unwrap();
    assert_eq!(response.status(), 307);
    assert_eq!(response.headers()["location"], "/api/v2/portfolios");
}

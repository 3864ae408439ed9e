//! [`TestApp`]: the real server, bound to `127.0.0.1:0`, with its own database, shut down when
//! dropped. Integration tests talk to it over HTTP.

use crate::builder::{Isolation, TestAppBuilder};
use pfs_platform::Config;
use serde_json::{Value, json};
use std::net::SocketAddr;
use tokio_util::sync::CancellationToken;

/// A running service plus an HTTP client that does not follow redirects (so 307s are visible).
pub struct TestApp {
    pub address: SocketAddr,
    pub client: reqwest::Client,
    pub config: Config,
    shutdown: CancellationToken,
    server: Option<tokio::task::JoinHandle<anyhow::Result<()>>>,
    _isolation: Isolation,
}

impl TestApp {
    /// The default (development) configuration on a fresh database.
    pub async fn spawn() -> Self {
        Self::builder().spawn().await
    }

    /// A test app configured step by step; see [`TestAppBuilder`].
    pub fn builder() -> TestAppBuilder {
        TestAppBuilder::default()
    }

    pub(crate) async fn start(app: pfs_app::App, config: Config, isolation: Isolation) -> Self {
        let listener = tokio::net::TcpListener::bind((config.server.host.as_str(), 0)).await.expect("bind port 0");
        let address = listener.local_addr().expect("local address");
        let shutdown = CancellationToken::new();
        let server = tokio::spawn(app.serve(listener, shutdown.clone()));
        let client = reqwest::Client::builder().redirect(reqwest::redirect::Policy::none()).build().expect("client");
        Self { address, client, config, shutdown, server: Some(server), _isolation: isolation }
    }

    pub fn url(&self, path: &str) -> String {
        format!("http://{}{}", self.address, path)
    }

    pub async fn get(&self, path: &str) -> reqwest::Response {
        self.client.get(self.url(path)).send().await.expect("GET")
    }

    pub async fn post_json(&self, path: &str, body: &Value) -> reqwest::Response {
        self.client.post(self.url(path)).json(body).send().await.expect("POST")
    }

    /// POSTs `body` verbatim with `Content-Type: application/json` (for malformed JSON).
    pub async fn post_raw(&self, path: &str, body: &str) -> reqwest::Response {
        self.client
            .post(self.url(path))
            .header("content-type", "application/json")
            .body(body.to_owned())
            .send()
            .await
            .expect("POST")
    }

    pub async fn put_json(&self, path: &str, body: &Value) -> reqwest::Response {
        self.client.put(self.url(path)).json(body).send().await.expect("PUT")
    }

    pub async fn delete(&self, path: &str) -> reqwest::Response {
        self.client.delete(self.url(path)).send().await.expect("DELETE")
    }

    /// Creates a portfolio through v1 and returns the response body.
    pub async fn create_portfolio(&self, name: &str) -> Value {
        let response = self.post_json("/api/v1/portfolios", &json!({ "name": name })).await;
        assert_eq!(response.status(), 201, "creating {name:?}");
        response.json().await.expect("JSON body")
    }

    /// Signals shutdown (like SIGTERM) without waiting; the server drains per its config.
    pub fn begin_shutdown(&self) {
        self.shutdown.cancel();
    }

    /// Stops the server gracefully and waits for it, returning what `serve` returned.
    pub async fn stop(mut self) -> anyhow::Result<()> {
        self.shutdown.cancel();
        match self.server.take() {
            Some(handle) => handle.await?,
            None => Ok(()),
        }
    }
}

impl Drop for TestApp {
    fn drop(&mut self) {
        self.shutdown.cancel();
    }
}

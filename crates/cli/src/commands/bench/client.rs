//! The measuring client: one HTTP/1.1 keep-alive connection per worker, driven by hyper's
//! connection API inside the worker's own task.
//!
//! Why not reqwest (used for the set-up requests): its pool, its per-request URL parsing and
//! its connection task cost several times what bare hyper serves a request for, so a run
//! against the bare baseline measured the client (57k req/s where wrk reached 120k+). Here the
//! connection future is polled in the same task as the requests (no hop between tasks), paths
//! are parsed once before the run (`Uri` clones share their bytes), and only a body that is
//! needed (a create's id) is collected; every other body is drained frame by frame.

use anyhow::{Context, bail};
use bytes::{Bytes, BytesMut};
use http_body_util::{BodyExt, Full};
use hyper::client::conn::http1::{self, SendRequest};
use hyper::header::{CONTENT_TYPE, HOST, HeaderValue};
use hyper::{Method, Request, Uri};
use hyper_util::rt::TokioIo;
use std::net::SocketAddr;
use std::pin::Pin;
use tokio::net::TcpStream;

/// Where requests go: the resolved address, the `Host` header and the path prefix of `--url`.
#[derive(Debug, Clone)]
pub struct Endpoint {
    addr: SocketAddr,
    host: HeaderValue,
    prefix: String,
}

impl Endpoint {
    /// Resolves `url` (`http://host:port[/prefix]`) once, so no request pays for a lookup.
    pub async fn resolve(url: &str) -> anyhow::Result<Self> {
        let parsed = url::Url::parse(url).with_context(|| format!("parsing {url}"))?;
        if parsed.scheme() != "http" {
            bail!("bench run speaks plain HTTP/1.1 only: {url}");
        }
        let host = parsed.host_str().context("no host in the URL")?;
        let port = parsed.port_or_known_default().unwrap_or(80);
        let addr = tokio::net::lookup_host((host.trim_matches(['[', ']']), port))
            .await
            .with_context(|| format!("resolving {host}"))?
            .next()
            .with_context(|| format!("{host} resolves to no address"))?;
        let authority = match parsed.port() {
            Some(port) => format!("{host}:{port}"),
            None => host.to_owned(),
        };
        Ok(Self {
            addr,
            host: HeaderValue::from_str(&authority)?,
            prefix: parsed.path().trim_end_matches('/').to_owned(),
        })
    }

    /// `path_and_query` under the URL's prefix, parsed once for reuse in every request.
    pub fn uri(&self, path_and_query: &str) -> Uri {
        Uri::from_maybe_shared(Bytes::from(format!("{}{path_and_query}", self.prefix)))
            .unwrap_or_else(|_| Uri::from_static("/"))
    }
}

/// A request to make: method, target, and a JSON body for writes.
#[derive(Debug)]
pub struct Call {
    pub method: Method,
    pub uri: Uri,
    pub json: Option<Bytes>,
    /// Keep the response body (to read a created id); otherwise it is only drained.
    pub keep_body: bool,
}

impl Call {
    pub fn get(uri: Uri) -> Self {
        Self { method: Method::GET, uri, json: None, keep_body: false }
    }

    pub fn post(uri: Uri, json: Vec<u8>, keep_body: bool) -> Self {
        Self { method: Method::POST, uri, json: Some(Bytes::from(json)), keep_body }
    }
}

/// The answer on the wire: status and, when asked for, the body.
#[derive(Debug)]
pub struct Reply {
    pub status: u16,
    pub body: Option<Bytes>,
}

type Driver = Pin<Box<http1::Connection<TokioIo<TcpStream>, Full<Bytes>>>>;

/// One worker's connection, opened on first use and again after the server closed it.
pub struct Connection {
    endpoint: Endpoint,
    /// The request half and the connection's own future, which this worker polls itself
    /// while it waits for an answer (see [`Connection::try_send`]); `None` once finished.
    open: Option<(SendRequest<Full<Bytes>>, Option<Driver>)>,
}

impl Connection {
    pub fn new(endpoint: Endpoint) -> Self {
        Self { endpoint, open: None }
    }

    /// Sends `call` and reads the whole answer. A request the connection refused before
    /// writing it (the server had closed the idle connection, as a draining server does) is
    /// sent once more on a fresh connection, as a pooling client would.
    pub async fn send(&mut self, call: &Call) -> anyhow::Result<Reply> {
        let result = match self.try_send(call).await {
            Err(err) if err.downcast_ref::<hyper::Error>().is_some_and(hyper::Error::is_canceled) => {
                self.open = None;
                self.try_send(call).await
            }
            other => other,
        };
        if result.is_err() {
            self.open = None;
        }
        result
    }

    async fn try_send(&mut self, call: &Call) -> anyhow::Result<Reply> {
        if self.open.as_ref().is_none_or(|(sender, driver)| driver.is_none() || sender.is_closed()) {
            self.open = Some(self.connect().await?);
        }
        let Some((sender, driver)) = &mut self.open else { unreachable!("opened above") };
        let mut request = Request::new(Full::new(call.json.clone().unwrap_or_default()));
        *request.method_mut() = call.method.clone();
        *request.uri_mut() = call.uri.clone();
        let headers = request.headers_mut();
        headers.insert(HOST, self.endpoint.host.clone());
        if call.json.is_some() {
            headers.insert(CONTENT_TYPE, HeaderValue::from_static("application/json"));
        }
        let exchange = async {
            sender.ready().await?;
            let response = sender.send_request(request).await?;
            let status = response.status().as_u16();
            let mut body = response.into_body();
            let mut kept = call.keep_body.then(BytesMut::new);
            while let Some(frame) = body.frame().await {
                if let (Some(kept), Ok(data)) = (&mut kept, frame?.into_data()) {
                    kept.extend_from_slice(&data);
                }
            }
            Ok::<_, hyper::Error>(Reply { status, body: kept.map(BytesMut::freeze) })
        };
        let mut exchange = std::pin::pin!(exchange);
        // The connection's future moves the bytes; polling it here, in the worker's own task,
        // spares a wake-up of another task (and often a hop to another thread) per request.
        if let Some(running) = driver.as_mut() {
            tokio::select! {
                biased;
                reply = &mut exchange => return Ok(reply?),
                // Closed (by the server, or on an error): the exchange now ends on its own.
                _ = running => {}
            }
        }
        let reply = exchange.await;
        *driver = None;
        Ok(reply?)
    }

    async fn connect(&self) -> anyhow::Result<(SendRequest<Full<Bytes>>, Option<Driver>)> {
        let stream = TcpStream::connect(self.endpoint.addr).await?;
        stream.set_nodelay(true)?;
        let (sender, connection) = http1::handshake(TokioIo::new(stream)).await?;
        Ok((sender, Some(Box::pin(connection))))
    }
}

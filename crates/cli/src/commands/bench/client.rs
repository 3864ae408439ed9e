//! The measuring client: one HTTP/1.1 keep-alive connection per worker, spoken directly over
//! the socket.
//!
//! Why not reqwest (used for the set-up requests): its pool, its per-request URL parsing and
//! its connection task cost several times what bare hyper serves a request for. Why not
//! hyper's client connection either: even polled in the worker's own task, every request went
//! through its dispatch channel, a oneshot for the answer, a header map each way and a body
//! channel, some 3.4 us of user CPU per request where wrk spends 0.6; on a machine whose cores
//! the client shares with the server it measures, that CPU is taken from the server, and the
//! client measured itself (79% of wrk against bare hyper). Here a request is encoded into a
//! buffer the connection keeps, written with one `write`, and the answer's head parsed in place
//! by `httparse` (hyper's own parser); a body is skipped in the read buffer unless it is needed
//! (a create's id). No allocation per request, one `write` and usually one `read`.

use super::http1::{self, Failure};
use anyhow::{Context, bail};
use bytes::{Bytes, BytesMut};
use hyper::Method;
use std::io::Write;
use std::net::SocketAddr;
use tokio::io::AsyncWriteExt;
use tokio::net::TcpStream;

/// Where requests go: the resolved address, the `Host` header and the path prefix of `--url`.
#[derive(Debug, Clone)]
pub struct Endpoint {
    addr: SocketAddr,
    /// `" HTTP/1.1\r\nhost: {authority}\r\n"`: what follows the target in every request.
    after_target: String,
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
            after_target: format!(" HTTP/1.1\r\nhost: {authority}\r\n"),
            prefix: parsed.path().trim_end_matches('/').to_owned(),
        })
    }

    /// `path_and_query` under the URL's prefix: a request target, built once for reuse.
    pub fn path(&self, path_and_query: &str) -> String {
        format!("{}{path_and_query}", self.prefix)
    }
}

/// A request to make: method, target, and a JSON body for writes.
#[derive(Debug)]
pub struct Call<'a> {
    pub method: Method,
    /// The request target, from [`Endpoint::path`].
    pub path: &'a str,
    pub json: Option<&'a [u8]>,
    /// Keep the response body (to read a created id); otherwise it is only skipped.
    pub keep_body: bool,
}

impl<'a> Call<'a> {
    pub fn get(path: &'a str) -> Self {
        Self { method: Method::GET, path, json: None, keep_body: false }
    }

    pub fn post(path: &'a str, json: &'a [u8], keep_body: bool) -> Self {
        Self { method: Method::POST, path, json: Some(json), keep_body }
    }
}

/// The answer on the wire: status and, when asked for, the body.
#[derive(Debug)]
pub struct Reply {
    pub status: u16,
    pub body: Option<Bytes>,
}

/// Room for an answer's head and the start of its body; bodies larger than this are read
/// through it piece by piece.
const READ_BUFFER: usize = 16 * 1024;

/// One worker's connection, opened on first use and again after the server closed it.
pub struct Connection {
    endpoint: Endpoint,
    stream: Option<TcpStream>,
    /// The request being sent, encoded again in place for every request.
    request: Vec<u8>,
    /// Bytes read from the socket and not yet consumed (none between requests).
    input: BytesMut,
}

impl Connection {
    pub fn new(endpoint: Endpoint) -> Self {
        Self {
            endpoint,
            stream: None,
            request: Vec::with_capacity(512),
            input: BytesMut::with_capacity(2 * READ_BUFFER),
        }
    }

    /// Sends `call` and reads the whole answer. On a reused connection the server may have
    /// closed meanwhile (an idle timeout, a draining server): a request it cannot have
    /// processed (the connection was seen closed, or refused the write) or a GET that got no
    /// byte of answer is sent once more on a fresh connection, as a pooling client would.
    pub async fn send(&mut self, call: &Call<'_>) -> anyhow::Result<Reply> {
        self.encode(call);
        if !self.stream.as_ref().is_some_and(still_open) {
            self.stream = None;
        }
        let reused = self.stream.is_some();
        let result = match self.exchange(call.keep_body).await {
            Err(Failure::Unsent(_)) if reused => self.exchange(call.keep_body).await,
            Err(Failure::Unanswered(_)) if reused && call.method == Method::GET => self.exchange(call.keep_body).await,
            other => other,
        };
        result.map_err(anyhow::Error::from)
    }

    fn encode(&mut self, call: &Call<'_>) {
        let request = &mut self.request;
        request.clear();
        request.extend_from_slice(call.method.as_str().as_bytes());
        request.push(b' ');
        request.extend_from_slice(call.path.as_bytes());
        request.extend_from_slice(self.endpoint.after_target.as_bytes());
        if let Some(json) = call.json {
            // Writing into a Vec cannot fail.
            let _ = write!(request, "content-type: application/json\r\ncontent-length: {}\r\n\r\n", json.len());
            request.extend_from_slice(json);
        } else {
            request.extend_from_slice(b"\r\n");
        }
    }

    /// One request and its answer; the connection is dropped on any failure and when the
    /// server said it closes it.
    async fn exchange(&mut self, keep_body: bool) -> Result<Reply, Failure> {
        let stream = match &mut self.stream {
            Some(stream) => stream,
            None => self.stream.insert(connect(self.endpoint.addr).await.map_err(Failure::Connect)?),
        };
        self.input.clear();
        let result = match stream.write_all(&self.request).await {
            Ok(()) => http1::read_response(stream, &mut self.input, keep_body, READ_BUFFER).await,
            Err(err) => Err(Failure::Unsent(err)),
        };
        match result {
            Ok(response) => {
                if response.close {
                    self.stream = None;
                }
                Ok(Reply { status: response.status, body: response.body.map(Bytes::from) })
            }
            Err(failure) => {
                self.stream = None;
                Err(failure)
            }
        }
    }
}

async fn connect(addr: SocketAddr) -> std::io::Result<TcpStream> {
    let stream = TcpStream::connect(addr).await?;
    stream.set_nodelay(true)?;
    Ok(stream)
}

/// Whether an idle connection is still usable: nothing to read (the server has neither closed
/// it nor sent anything unasked). Costs no system call unless the socket turned readable.
fn still_open(stream: &TcpStream) -> bool {
    let mut probe = [0_u8; 1];
    matches!(stream.try_read(&mut probe), Err(err) if err.kind() == std::io::ErrorKind::WouldBlock)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::Arc;
    use std::sync::atomic::{AtomicUsize, Ordering};
    use tokio::io::AsyncReadExt;
    use tokio::net::TcpListener;

    /// A server that reads each request whole and, per connection, answers the first `answers`
    /// of them, then closes without a word; returns its URL and the requests it read.
    async fn server(answers: usize) -> (String, Arc<AtomicUsize>) {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let url = format!("http://{}", listener.local_addr().unwrap());
        let read = Arc::new(AtomicUsize::new(0));
        let counter = read.clone();
        tokio::spawn(async move {
            loop {
                let (mut stream, _) = listener.accept().await.unwrap();
                let counter = counter.clone();
                tokio::spawn(async move {
                    for answered in 0..=answers {
                        let mut request = Vec::new();
                        while !request.ends_with(b"\r\n\r\n") && !request.ends_with(b"}") {
                            if stream.read_buf(&mut request).await.unwrap_or(0) == 0 {
                                return;
                            }
                        }
                        counter.fetch_add(1, Ordering::SeqCst);
                        if answered == answers {
                            return;
                        }
                        let _ = stream.write_all(b"HTTP/1.1 200 OK\r\ncontent-length: 2\r\n\r\nok").await;
                    }
                });
            }
        });
        (url, read)
    }

    #[tokio::test]
    async fn a_get_the_server_dropped_unanswered_is_sent_again_on_a_fresh_connection() {
        let (url, read) = server(2).await;
        let endpoint = Endpoint::resolve(&url).await.unwrap();
        let mut connection = Connection::new(endpoint.clone());
        let path = endpoint.path("/");
        for _ in 0..5 {
            let reply = connection.send(&Call::get(&path)).await.expect("every GET answered");
            assert_eq!(reply.status, 200);
        }
        // Requests 3 and 5 are each the third on their connection: dropped, then sent again.
        assert_eq!(read.load(Ordering::SeqCst), 7);
    }

    #[tokio::test]
    async fn a_post_that_may_have_been_processed_is_never_sent_twice() {
        let (url, read) = server(1).await;
        let endpoint = Endpoint::resolve(&url).await.unwrap();
        let mut connection = Connection::new(endpoint.clone());
        let path = endpoint.path("/api/v1/portfolios");
        connection.send(&Call::get(&path)).await.expect("the first request is answered");
        // The second on a reused connection: read by the server, then dropped unanswered.
        let failed = connection.send(&Call::post(&path, b"{}", true)).await;
        assert!(failed.is_err(), "{failed:?}");
        assert_eq!(read.load(Ordering::SeqCst), 2, "the POST reached the server once");
    }
}

//! Reading one HTTP/1.1 response off a keep-alive connection, for the measuring client: the
//! head parsed in place with `httparse`, the body framed by `Content-Length`, chunked
//! transfer coding, or the end of the connection (RFC 9112, section 6.3), and skipped in the
//! read buffer unless the caller keeps it.

use bytes::{Buf, BytesMut};
use std::fmt;
use std::io;
use tokio::io::{AsyncRead, AsyncReadExt};

/// Response header fields parsed at most; more is an error (the service sends some twenty).
const MAX_HEADERS: usize = 64;
/// Longest chunk-size or trailer line accepted.
const MAX_LINE: usize = 4096;

/// Why an exchange failed, in the terms that decide whether it may be sent again.
#[derive(Debug)]
pub enum Failure {
    /// No connection could be opened.
    Connect(io::Error),
    /// The request could not be written: the server had closed the connection.
    Unsent(io::Error),
    /// The connection closed or failed before any byte of the answer arrived.
    Unanswered(io::Error),
    /// The connection failed part way through the answer.
    Broken(io::Error),
    /// The answer is not HTTP/1.1 this reader understands.
    Malformed(String),
}

impl fmt::Display for Failure {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Connect(err) => write!(f, "connecting: {err}"),
            Self::Unsent(err) => write!(f, "sending the request: {err}"),
            Self::Unanswered(err) => write!(f, "no answer: {err}"),
            Self::Broken(err) => write!(f, "reading the answer: {err}"),
            Self::Malformed(what) => write!(f, "malformed answer: {what}"),
        }
    }
}

impl std::error::Error for Failure {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        match self {
            Self::Connect(err) | Self::Unsent(err) | Self::Unanswered(err) | Self::Broken(err) => Some(err),
            Self::Malformed(_) => None,
        }
    }
}

/// A whole response.
#[derive(Debug, PartialEq, Eq)]
pub struct Response {
    pub status: u16,
    /// The connection cannot carry another request: the server said so (`Connection: close`,
    /// HTTP/1.0), the body ran to the end of the connection, or bytes followed it unasked.
    pub close: bool,
    /// The body, when kept.
    pub body: Option<Vec<u8>>,
}

/// How the body of a response is delimited.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Framing {
    Empty,
    Length(u64),
    Chunked,
    UntilClose,
}

/// What the head says.
struct Head {
    len: usize,
    status: u16,
    framing: Framing,
    close: bool,
}

/// Reads one response from `io` into `input` (empty on entry, reading `chunk` bytes at a
/// time), keeping the body if `keep_body`. Leaves `input` empty when it succeeds.
pub async fn read_response<R: AsyncRead + Unpin>(
    io: &mut R,
    input: &mut BytesMut,
    keep_body: bool,
    chunk: usize,
) -> Result<Response, Failure> {
    let head = loop {
        if let Some(head) = parse_head(input)? {
            // An interim answer (100 Continue, 103 Early Hints) precedes the real one.
            if (100..200).contains(&head.status) && head.status != 101 {
                input.advance(head.len);
                continue;
            }
            break head;
        }
        let answered = !input.is_empty();
        match fill(io, input, chunk).await {
            Ok(0) if answered => return Err(Failure::Broken(io::ErrorKind::UnexpectedEof.into())),
            Ok(0) => return Err(Failure::Unanswered(io::ErrorKind::UnexpectedEof.into())),
            Ok(_) => {}
            Err(err) if answered => return Err(Failure::Broken(err)),
            Err(err) => return Err(Failure::Unanswered(err)),
        }
    };
    input.advance(head.len);
    let mut body = keep_body.then(Vec::new);
    let mut close = head.close;
    match head.framing {
        Framing::Empty => {}
        Framing::Length(len) => read_exact_body(io, input, len, body.as_mut(), chunk).await?,
        Framing::Chunked => read_chunked_body(io, input, body.as_mut(), chunk).await?,
        Framing::UntilClose => {
            close = true;
            loop {
                take(input, input.len(), body.as_mut());
                if fill(io, input, chunk).await.map_err(Failure::Broken)? == 0 {
                    break;
                }
            }
        }
    }
    // Bytes nobody asked for: the framing can no longer be trusted, so neither the connection.
    close |= !input.is_empty();
    input.clear();
    Ok(Response { status: head.status, close, body })
}

fn parse_head(input: &[u8]) -> Result<Option<Head>, Failure> {
    if input.is_empty() {
        return Ok(None);
    }
    let mut headers = [httparse::EMPTY_HEADER; MAX_HEADERS];
    let mut response = httparse::Response::new(&mut headers);
    let len = match response.parse(input) {
        Ok(httparse::Status::Complete(len)) => len,
        Ok(httparse::Status::Partial) => return Ok(None),
        Err(err) => return Err(Failure::Malformed(err.to_string())),
    };
    let status = response.code.unwrap_or_default();
    let http10 = response.version == Some(0);
    let (mut length, mut chunked, mut close, mut keep_alive) = (None, false, false, false);
    // Only the values of the fields that frame the answer are looked at.
    for header in response.headers.iter() {
        if header.name.eq_ignore_ascii_case("content-length") {
            let value = text(header.value);
            length = Some(value.parse::<u64>().map_err(|_| Failure::Malformed(format!("content-length {value:?}")))?);
        } else if header.name.eq_ignore_ascii_case("transfer-encoding") {
            let value = text(header.value);
            // The last coding frames the body (RFC 9112, section 6.3).
            chunked = value.rsplit(',').next().is_some_and(|last| last.trim().eq_ignore_ascii_case("chunked"));
        } else if header.name.eq_ignore_ascii_case("connection") {
            for option in text(header.value).split(',').map(str::trim) {
                close |= option.eq_ignore_ascii_case("close");
                keep_alive |= option.eq_ignore_ascii_case("keep-alive");
            }
        }
    }
    let framing = if (100..200).contains(&status) || status == 204 || status == 304 {
        Framing::Empty
    } else if chunked {
        Framing::Chunked
    } else if let Some(length) = length {
        Framing::Length(length)
    } else {
        Framing::UntilClose
    };
    Ok(Some(Head { len, status, framing, close: close || (http10 && !keep_alive) }))
}

/// A field value as text; one that is not UTF-8 reads as empty.
fn text(value: &[u8]) -> &str {
    std::str::from_utf8(value).unwrap_or_default().trim()
}

/// Reads more of the answer; `Ok(0)` at the end of the connection.
async fn fill<R: AsyncRead + Unpin>(io: &mut R, input: &mut BytesMut, chunk: usize) -> io::Result<usize> {
    // Reclaims the consumed front of the buffer rather than growing it, when it can.
    input.reserve(chunk);
    io.read_buf(input).await
}

/// Consumes `n` bytes of body from the front of `input`, keeping them if asked.
fn take(input: &mut BytesMut, n: usize, kept: Option<&mut Vec<u8>>) {
    if let Some(kept) = kept {
        kept.extend_from_slice(&input[..n]);
    }
    input.advance(n);
}

async fn read_exact_body<R: AsyncRead + Unpin>(
    io: &mut R,
    input: &mut BytesMut,
    mut left: u64,
    mut kept: Option<&mut Vec<u8>>,
    chunk: usize,
) -> Result<(), Failure> {
    loop {
        let n = usize::try_from(left).unwrap_or(usize::MAX).min(input.len());
        take(input, n, kept.as_deref_mut());
        left -= n as u64;
        if left == 0 {
            return Ok(());
        }
        if fill(io, input, chunk).await.map_err(Failure::Broken)? == 0 {
            return Err(Failure::Broken(io::ErrorKind::UnexpectedEof.into()));
        }
    }
}

/// A chunked body: `size[;ext] CRLF data CRLF`, until a chunk of size 0 and the trailer
/// section (ignored) ending in an empty line.
async fn read_chunked_body<R: AsyncRead + Unpin>(
    io: &mut R,
    input: &mut BytesMut,
    mut kept: Option<&mut Vec<u8>>,
    chunk: usize,
) -> Result<(), Failure> {
    loop {
        let end = line(io, input, chunk).await?;
        let size_field = std::str::from_utf8(&input[..end]).unwrap_or_default();
        let size_field = size_field.split(';').next().unwrap_or_default().trim();
        let size = u64::from_str_radix(size_field, 16)
            .map_err(|_| Failure::Malformed(format!("chunk size {size_field:?}")))?;
        input.advance(end + 2);
        if size == 0 {
            loop {
                let end = line(io, input, chunk).await?;
                input.advance(end + 2);
                if end == 0 {
                    return Ok(());
                }
            }
        }
        read_exact_body(io, input, size, kept.as_deref_mut(), chunk).await?;
        if line(io, input, chunk).await? != 0 {
            return Err(Failure::Malformed("chunk longer than its size".to_owned()));
        }
        input.advance(2);
    }
}

/// Waits for a whole line at the front of `input`; returns its length without the CRLF.
async fn line<R: AsyncRead + Unpin>(io: &mut R, input: &mut BytesMut, chunk: usize) -> Result<usize, Failure> {
    loop {
        if let Some(end) = input.windows(2).position(|pair| pair == b"\r\n") {
            return Ok(end);
        }
        if input.len() > MAX_LINE {
            return Err(Failure::Malformed("line too long in a chunked body".to_owned()));
        }
        if fill(io, input, chunk).await.map_err(Failure::Broken)? == 0 {
            return Err(Failure::Broken(io::ErrorKind::UnexpectedEof.into()));
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::pin::Pin;
    use std::task::{Context, Poll};

    /// A connection that hands out at most `step` bytes per read, then ends.
    struct Trickle<'a> {
        data: &'a [u8],
        step: usize,
    }

    impl AsyncRead for Trickle<'_> {
        fn poll_read(
            mut self: Pin<&mut Self>,
            _: &mut Context<'_>,
            buf: &mut tokio::io::ReadBuf<'_>,
        ) -> Poll<io::Result<()>> {
            let n = self.step.min(self.data.len()).min(buf.remaining());
            buf.put_slice(&self.data[..n]);
            self.data = &self.data[n..];
            Poll::Ready(Ok(()))
        }
    }

    /// Reads `wire` in pieces of every size from 1 byte to all of it; every reading must agree.
    async fn read_all(wire: &str, keep_body: bool) -> Result<Response, String> {
        let mut outcomes = Vec::new();
        for step in 1..=wire.len() {
            let mut io = Trickle { data: wire.as_bytes(), step };
            let mut input = BytesMut::new();
            let outcome = read_response(&mut io, &mut input, keep_body, 8).await.map_err(|f| f.to_string());
            // After a failure the connection (and what is left in the buffer) is dropped.
            assert!(outcome.is_err() || input.is_empty(), "step {step}: the buffer is left empty");
            outcomes.push(outcome);
        }
        outcomes.dedup();
        assert_eq!(outcomes.len(), 1, "the same answer whatever the reads: {outcomes:?}");
        outcomes.pop().unwrap()
    }

    fn kept(status: u16, close: bool, body: &str) -> Response {
        Response { status, close, body: Some(body.as_bytes().to_vec()) }
    }

    #[tokio::test]
    async fn a_content_length_body_is_kept_or_skipped_and_the_connection_stays_open() {
        let wire =
            "HTTP/1.1 201 Created\r\nContent-Type: application/json\r\nContent-Length: 13\r\n\r\n{\"id\":\"abc\"}\n";
        assert_eq!(read_all(wire, true).await.unwrap(), kept(201, false, "{\"id\":\"abc\"}\n"));
        assert_eq!(read_all(wire, false).await.unwrap(), Response { status: 201, close: false, body: None });
    }

    #[tokio::test]
    async fn a_chunked_body_is_reassembled_across_extensions_and_trailers() {
        let wire = "HTTP/1.1 200 OK\r\nTransfer-Encoding: gzip, chunked\r\n\r\n\
                    5;name=x\r\nhello\r\n7\r\n, world\r\n0\r\nx-trailer: 1\r\n\r\n";
        assert_eq!(read_all(wire, true).await.unwrap(), kept(200, false, "hello, world"));
        let bad = "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n2\r\nabc\r\n0\r\n\r\n";
        assert!(read_all(bad, true).await.unwrap_err().contains("chunk longer"));
    }

    #[tokio::test]
    async fn the_server_closing_is_seen_in_the_head_or_at_the_end_of_the_body() {
        let close = "HTTP/1.1 503 Service Unavailable\r\nconnection: keep-alive, Close\r\ncontent-length: 0\r\n\r\n";
        assert_eq!(read_all(close, true).await.unwrap(), kept(503, true, ""));
        let http10 = "HTTP/1.0 200 OK\r\nContent-Length: 2\r\n\r\nok";
        assert_eq!(read_all(http10, true).await.unwrap(), kept(200, true, "ok"));
        let until_close = "HTTP/1.1 200 OK\r\n\r\nall of it";
        assert_eq!(read_all(until_close, true).await.unwrap(), kept(200, true, "all of it"));
        // Bytes after the body, read along with it.
        let unasked = b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nokHTTP/1.1";
        let mut input = BytesMut::new();
        let read = read_response(&mut Trickle { data: unasked, step: unasked.len() }, &mut input, true, 64).await;
        assert_eq!(read.unwrap(), kept(200, true, "ok"));
    }

    #[tokio::test]
    async fn interim_and_bodiless_answers_are_framed_by_their_status() {
        let wire = "HTTP/1.1 100 Continue\r\n\r\nHTTP/1.1 304 Not Modified\r\nContent-Length: 99\r\n\r\n";
        assert_eq!(read_all(wire, true).await.unwrap(), kept(304, false, ""));
    }

    #[tokio::test]
    async fn an_answer_cut_short_tells_whether_any_of_it_arrived() {
        let mut input = BytesMut::new();
        let silent = read_response(&mut Trickle { data: b"", step: 1 }, &mut input, false, 8).await;
        assert!(matches!(silent, Err(Failure::Unanswered(_))), "{silent:?}");
        for cut in ["HTTP/1.1 200 OK\r\n", "HTTP/1.1 200 OK\r\nContent-Length: 5\r\n\r\nab"] {
            let mut input = BytesMut::new();
            let broken = read_response(&mut Trickle { data: cut.as_bytes(), step: 3 }, &mut input, false, 8).await;
            assert!(matches!(broken, Err(Failure::Broken(_))), "{cut:?}: {broken:?}");
        }
        let garbage = read_all("SSH-2.0-OpenSSH\r\n\r\n", false).await.unwrap_err();
        assert!(garbage.contains("malformed"), "{garbage}");
    }
}

//! Connection-level bounds: at most `server.max_connections` open at once, and a connection
//! with no request in progress for `server.idle_timeout` is closed.
//!
//! Both live in one [`Accept`]or that wraps every accepted TCP stream (before any TLS
//! handshake, so a refused connection costs no handshake):
//!
//! - Over the limit, the new connection is closed at once (counted in
//!   `http_server_connections_refused_total`) rather than left in the kernel's backlog: a client
//!   sees a quick reset it can retry elsewhere instead of a connect that hangs, and the process
//!   never runs out of file descriptors. Connections already open are not disturbed.
//! - hyper has no idle timeout for HTTP/2 (its pings only find peers that stopped answering; an
//!   idle but healthy client answers them forever), and HTTP/1.1's header timeout only covers
//!   keep-alive by accident. So each connection counts its requests in progress, from the
//!   request's arrival until its response body is finished or dropped (a change stream counts
//!   as busy for as long as it streams), and a watchdog asks for a graceful close (HTTP/2
//!   GOAWAY) once none has been in progress for the idle timeout.

use axum::body::HttpBody;
use axum::http::{Request, Response};
use axum_server::ConnectionShutdown;
use axum_server::accept::Accept;
use std::future::{Future, Ready, ready};
use std::io;
use std::pin::Pin;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, OnceLock};
use std::task::{Context, Poll, ready};
use std::time::{Duration, Instant};
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::sync::{OwnedSemaphorePermit, Semaphore};
use tokio_util::sync::{CancellationToken, DropGuard};

/// The acceptor: wraps an inner one (plain, or the TLS acceptor's inner).
#[derive(Clone)]
pub(crate) struct ConnectionLimits<A> {
    inner: A,
    slots: Arc<Semaphore>,
    idle_timeout: Duration,
}

impl<A> ConnectionLimits<A> {
    pub(crate) fn new(inner: A, max_connections: usize, idle_timeout: Duration) -> Self {
        Self { inner, slots: Arc::new(Semaphore::new(max_connections)), idle_timeout }
    }
}

impl<A, I, S> Accept<I, S> for ConnectionLimits<A>
where
    A: Accept<I, S, Future = Ready<io::Result<(I, S)>>>,
{
    type Stream = Counted<I>;
    type Service = Tracked<S>;
    type Future = Ready<io::Result<(Counted<I>, Tracked<S>)>>;

    fn accept(&self, stream: I, service: S) -> Self::Future {
        let Ok(slot) = self.slots.clone().try_acquire_owned() else {
            metrics::counter!("http_server_connections_refused").increment(1);
            // Dropping the stream (axum-server does, on this error) closes it.
            return ready(Err(io::Error::other("connection limit reached")));
        };
        let (stream, service) = match self.inner.accept(stream, service).into_inner() {
            Ok(accepted) => accepted,
            Err(err) => return ready(Err(err)),
        };
        let activity = Arc::new(Activity::new());
        let closed = CancellationToken::new();
        tokio::spawn(watch_idle(activity.clone(), self.idle_timeout, closed.clone()));
        ready(Ok((
            Counted { inner: stream, _slot: slot, _closed: closed.drop_guard() },
            Tracked { inner: service, activity },
        )))
    }
}

/// What the watchdog reads: requests in progress, when the last one ended, and the way to close
/// the connection (known from its first request on).
struct Activity {
    in_progress: AtomicUsize,
    /// Milliseconds after `epoch` at which the connection last became idle.
    idle_since_ms: AtomicU64,
    epoch: Instant,
    shutdown: OnceLock<ConnectionShutdown>,
}

impl Activity {
    fn new() -> Self {
        Self {
            in_progress: AtomicUsize::new(0),
            idle_since_ms: AtomicU64::new(0),
            epoch: Instant::now(),
            shutdown: OnceLock::new(),
        }
    }

    fn idle_since(&self) -> Instant {
        self.epoch + Duration::from_millis(self.idle_since_ms.load(Ordering::Acquire))
    }
}

async fn watch_idle(activity: Arc<Activity>, idle_timeout: Duration, closed: CancellationToken) {
    loop {
        let deadline = if activity.in_progress.load(Ordering::Acquire) == 0 {
            activity.idle_since() + idle_timeout
        } else {
            Instant::now() + idle_timeout
        };
        tokio::select! {
            () = closed.cancelled() => return,
            () = tokio::time::sleep_until(deadline.into()) => {}
        }
        let idle = activity.in_progress.load(Ordering::Acquire) == 0 && activity.idle_since().elapsed() >= idle_timeout;
        if idle {
            // Before its first request a connection is bounded by the first-request timeout
            // (`reliability.header_read_timeout`), which closes it without our help.
            if let Some(shutdown) = activity.shutdown.get() {
                metrics::counter!("http_server_connections_idle_closed").increment(1);
                shutdown.graceful_shutdown();
            }
            return;
        }
    }
}

/// One request in progress; dropping it (response body finished or abandoned) ends it.
struct Busy(Arc<Activity>);

impl Busy {
    fn start(activity: &Arc<Activity>) -> Self {
        activity.in_progress.fetch_add(1, Ordering::AcqRel);
        Self(activity.clone())
    }
}

impl Drop for Busy {
    fn drop(&mut self) {
        let activity = &self.0;
        let now = u64::try_from(activity.epoch.elapsed().as_millis()).unwrap_or(u64::MAX);
        activity.idle_since_ms.store(now, Ordering::Release);
        activity.in_progress.fetch_sub(1, Ordering::AcqRel);
    }
}

pin_project_lite::pin_project! {
    /// The connection's stream: holds its slot under `max_connections` and stops the watchdog
    /// when the connection goes away.
    pub(crate) struct Counted<I> {
        #[pin]
        inner: I,
        _slot: OwnedSemaphorePermit,
        _closed: DropGuard,
    }
}

impl<I: AsyncRead> AsyncRead for Counted<I> {
    fn poll_read(self: Pin<&mut Self>, cx: &mut Context<'_>, buf: &mut ReadBuf<'_>) -> Poll<io::Result<()>> {
        self.project().inner.poll_read(cx, buf)
    }
}

impl<I: AsyncWrite> AsyncWrite for Counted<I> {
    fn poll_write(self: Pin<&mut Self>, cx: &mut Context<'_>, buf: &[u8]) -> Poll<io::Result<usize>> {
        self.project().inner.poll_write(cx, buf)
    }

    fn poll_flush(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        self.project().inner.poll_flush(cx)
    }

    fn poll_shutdown(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        self.project().inner.poll_shutdown(cx)
    }

    fn poll_write_vectored(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[io::IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        self.project().inner.poll_write_vectored(cx, bufs)
    }

    fn is_write_vectored(&self) -> bool {
        self.inner.is_write_vectored()
    }
}

/// The connection's service: marks each request busy until its response body is done.
#[derive(Clone)]
pub(crate) struct Tracked<S> {
    inner: S,
    activity: Arc<Activity>,
}

impl<S, B, RB> tower::Service<Request<B>> for Tracked<S>
where
    S: tower::Service<Request<B>, Response = Response<RB>>,
{
    type Response = Response<TrackedBody<RB>>;
    type Error = S::Error;
    type Future = TrackedFuture<S::Future>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), S::Error>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, req: Request<B>) -> Self::Future {
        if self.activity.shutdown.get().is_none()
            && let Some(shutdown) = req.extensions().get::<ConnectionShutdown>()
        {
            let _ = self.activity.shutdown.set(shutdown.clone());
        }
        let busy = Busy::start(&self.activity);
        TrackedFuture { inner: self.inner.call(req), busy: Some(busy) }
    }
}

pin_project_lite::pin_project! {
    pub(crate) struct TrackedFuture<F> {
        #[pin]
        inner: F,
        busy: Option<Busy>,
    }
}

impl<F, RB, E> Future for TrackedFuture<F>
where
    F: Future<Output = Result<Response<RB>, E>>,
{
    type Output = Result<Response<TrackedBody<RB>>, E>;

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        let this = self.project();
        let response = ready!(this.inner.poll(cx))?;
        let busy = this.busy.take();
        Poll::Ready(Ok(response.map(|inner| TrackedBody { inner, _busy: busy })))
    }
}

pin_project_lite::pin_project! {
    /// A response body that keeps its request busy until it is finished or dropped.
    pub(crate) struct TrackedBody<B> {
        #[pin]
        inner: B,
        _busy: Option<Busy>,
    }
}

impl<B: HttpBody> HttpBody for TrackedBody<B> {
    type Data = B::Data;
    type Error = B::Error;

    fn poll_frame(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<http_body::Frame<Self::Data>, Self::Error>>> {
        self.project().inner.poll_frame(cx)
    }

    fn is_end_stream(&self) -> bool {
        self.inner.is_end_stream()
    }

    fn size_hint(&self) -> http_body::SizeHint {
        self.inner.size_hint()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use axum_server::accept::DefaultAcceptor;

    #[tokio::test]
    async fn connections_past_the_limit_are_refused_and_a_closed_one_frees_its_slot() {
        let limits = ConnectionLimits::new(DefaultAcceptor, 2, Duration::from_secs(60));
        let first = limits.accept((), ()).into_inner().expect("first");
        let second = limits.accept((), ()).into_inner().expect("second");
        assert!(limits.accept((), ()).into_inner().is_err(), "the third is over the limit");
        drop(first);
        let third = limits.accept((), ()).into_inner();
        assert!(third.is_ok(), "a closed connection gives its slot back");
        drop((second, third));
    }
}

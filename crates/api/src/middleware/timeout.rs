//! A bound on how long one request may run.

use crate::error::ApiError;
use axum::extract::Request;
use axum::response::{IntoResponse, Response};
use std::convert::Infallible;
use std::future::Future;
use std::pin::Pin;
use std::task::{Context, Poll};
use std::time::Duration;
use tokio::time::Sleep;
use tower::{Layer, Service};

/// Past `limit` the handler is dropped and the client gets a 503 with `Retry-After`, instead of
/// waiting on a proxy's own timeout. A statement already sent may still complete; writes
/// invalidate the cache from a task of their own, so that cannot leave it stale.
///
/// The timer starts only when the request first has to wait (its first poll is pending, which
/// is at once: the future is polled as soon as it is made). A request answered in one poll, a
/// cached read, never reads the clock nor touches the timer wheel.
#[derive(Clone, Copy)]
pub struct TimeoutLayer {
    limit: Duration,
}

impl TimeoutLayer {
    pub fn new(limit: Duration) -> Self {
        Self { limit }
    }
}

impl<S> Layer<S> for TimeoutLayer {
    type Service = Timeout<S>;

    fn layer(&self, inner: S) -> Timeout<S> {
        Timeout { inner, limit: self.limit }
    }
}

#[derive(Clone)]
pub struct Timeout<S> {
    inner: S,
    limit: Duration,
}

impl<S> Service<Request> for Timeout<S>
where
    S: Service<Request, Response = Response, Error = Infallible>,
{
    type Response = Response;
    type Error = Infallible;
    type Future = TimeoutFuture<S::Future>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Infallible>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, req: Request) -> Self::Future {
        TimeoutFuture { inner: self.inner.call(req), sleep: None, limit: self.limit }
    }
}

pin_project_lite::pin_project! {
    pub struct TimeoutFuture<F> {
        #[pin]
        inner: F,
        #[pin]
        sleep: Option<Sleep>,
        limit: Duration,
    }
}

impl<F: Future<Output = Result<Response, Infallible>>> Future for TimeoutFuture<F> {
    type Output = Result<Response, Infallible>;

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        let mut this = self.project();
        if let Poll::Ready(response) = this.inner.poll(cx) {
            return Poll::Ready(response);
        }
        if this.sleep.is_none() {
            this.sleep.set(Some(tokio::time::sleep(*this.limit)));
        }
        match this.sleep.as_pin_mut().map(|sleep| sleep.poll(cx)) {
            Some(Poll::Ready(())) => {
                tracing::warn!(limit_ms = this.limit.as_millis() as u64, "request timed out");
                Poll::Ready(Ok(ApiError::Timeout.into_response()))
            }
            _ => Poll::Pending,
        }
    }
}

//! The innermost layer around the routes, two duties in one future:
//!
//! - a panicking handler answers 500 instead of taking its connection down (as tower-http's
//!   `CatchPanic` did, without its boxed response body, re-boxed into axum's `Body` each time);
//! - a request that runs past `server.request_timeout` answers 503 with `Retry-After`.

use crate::error::ApiError;
use axum::extract::Request;
use axum::response::{IntoResponse, Response};
use std::any::Any;
use std::convert::Infallible;
use std::future::Future;
use std::panic::{AssertUnwindSafe, catch_unwind};
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
pub struct GuardLayer {
    limit: Duration,
}

impl GuardLayer {
    pub fn new(limit: Duration) -> Self {
        Self { limit }
    }
}

impl<S> Layer<S> for GuardLayer {
    type Service = Guard<S>;

    fn layer(&self, inner: S) -> Guard<S> {
        Guard { inner, limit: self.limit }
    }
}

#[derive(Clone)]
pub struct Guard<S> {
    inner: S,
    limit: Duration,
}

impl<S> Service<Request> for Guard<S>
where
    S: Service<Request, Response = Response, Error = Infallible>,
{
    type Response = Response;
    type Error = Infallible;
    type Future = GuardFuture<S::Future>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Infallible>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, req: Request) -> Self::Future {
        // A handler's `call` runs code of its own before its future exists.
        match catch_unwind(AssertUnwindSafe(|| self.inner.call(req))) {
            Ok(inner) => GuardFuture::Running { inner, sleep: None, limit: self.limit },
            Err(panic) => GuardFuture::Panicked { panic: Some(panic) },
        }
    }
}

pin_project_lite::pin_project! {
    #[project = GuardProjection]
    pub enum GuardFuture<F> {
        Running {
            #[pin]
            inner: F,
            #[pin]
            sleep: Option<Sleep>,
            limit: Duration,
        },
        Panicked { panic: Option<Box<dyn Any + Send>> },
    }
}

impl<F: Future<Output = Result<Response, Infallible>>> Future for GuardFuture<F> {
    type Output = Result<Response, Infallible>;

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        let (mut sleep, limit) = match self.project() {
            GuardProjection::Running { inner, sleep, limit } => match catch_unwind(AssertUnwindSafe(|| inner.poll(cx)))
            {
                Ok(Poll::Ready(response)) => return Poll::Ready(response),
                Ok(Poll::Pending) => (sleep, *limit),
                Err(panic) => return Poll::Ready(Ok(panicked(panic))),
            },
            GuardProjection::Panicked { panic } => {
                return Poll::Ready(Ok(panicked(panic.take().unwrap_or_else(|| Box::new(())))));
            }
        };
        if sleep.is_none() {
            sleep.set(Some(tokio::time::sleep(limit)));
        }
        match sleep.as_pin_mut().map(|sleep| sleep.poll(cx)) {
            Some(Poll::Ready(())) => {
                tracing::warn!(limit_ms = limit.as_millis() as u64, "request timed out");
                Poll::Ready(Ok(ApiError::Timeout.into_response()))
            }
            _ => Poll::Pending,
        }
    }
}

/// The 500 of a panicked request. The panic itself was reported by the panic hook.
fn panicked(_panic: Box<dyn Any + Send>) -> Response {
    ApiError::Internal { detail: crate::error::V1_FAILURE, source: None }.into_response()
}

#[cfg(test)]
mod tests {
    use super::*;
    use axum::body::Body;
    use axum::http::StatusCode;
    use tower::ServiceExt;

    fn request() -> Request {
        Request::new(Body::empty())
    }

    #[tokio::test]
    async fn a_panic_in_call_or_in_the_future_answers_500() {
        let guard = GuardLayer::new(Duration::from_secs(5));
        let in_call =
            tower::service_fn(|_: Request| -> std::future::Ready<Result<Response, Infallible>> { panic!("in call") });
        let Ok(response) = guard.layer(in_call).oneshot(request()).await;
        assert_eq!(response.status(), StatusCode::INTERNAL_SERVER_ERROR);
        let in_future = tower::service_fn(|_: Request| async {
            tokio::task::yield_now().await;
            panic!("in the future");
            #[allow(unreachable_code)]
            Ok::<Response, Infallible>(Response::new(Body::empty()))
        });
        let Ok(response) = guard.layer(in_future).oneshot(request()).await;
        assert_eq!(response.status(), StatusCode::INTERNAL_SERVER_ERROR);
    }

    #[tokio::test]
    async fn a_request_past_the_limit_answers_503_and_a_quick_one_passes() {
        let guard = GuardLayer::new(Duration::from_millis(50));
        let slow = tower::service_fn(|_: Request| async {
            tokio::time::sleep(Duration::from_secs(30)).await;
            Ok::<_, Infallible>(Response::new(Body::empty()))
        });
        let Ok(response) = guard.layer(slow).oneshot(request()).await;
        assert_eq!(response.status(), StatusCode::SERVICE_UNAVAILABLE);
        assert!(response.headers().contains_key(axum::http::header::RETRY_AFTER));

        let quick = tower::service_fn(|_: Request| async { Ok::<_, Infallible>(Response::new(Body::empty())) });
        let Ok(response) = guard.layer(quick).oneshot(request()).await;
        assert_eq!(response.status(), StatusCode::OK);
    }
}

//! Load shedding: a bound on the requests handled at once, so that excess load is refused
//! quickly with 503 + `Retry-After` instead of queueing into timeouts.
//!
//! A tokio semaphore rather than tower's `ConcurrencyLimitLayer` + `LoadShedLayer`: that pair
//! refuses the instant every slot is busy, so a burst of a few milliseconds turns into errors.
//! Here a request may wait `queue_timeout` for a slot (the semaphore is fair, first come first
//! served); only sustained overload outlasts that. The probes and `/metrics` bypass the limit
//! (`paths::is_exempt`): a replica that is busy is not dead, readiness must keep answering, and
//! an overload is exactly when its metrics are needed. `/health/detailed` is shed like any
//! request: it costs database round trips.
//!
//! A hand-written service: a request that gets a slot at once (the common case) costs one
//! atomic operation and no allocation; only one that has to queue boxes its wait.

use crate::error::ApiError;
use axum::extract::Request;
use axum::response::{IntoResponse, Response};
use futures_util::future::BoxFuture;
use std::convert::Infallible;
use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll, ready};
use std::time::Duration;
use tokio::sync::{OwnedSemaphorePermit, Semaphore};
use tower::{Layer, Service};

#[derive(Clone)]
pub struct LoadShed {
    slots: Arc<Semaphore>,
    queue_timeout: Duration,
}

impl LoadShed {
    /// `None` when `max_concurrent` is 0 (no limit).
    pub fn new(max_concurrent: usize, queue_timeout: Duration) -> Option<Self> {
        (max_concurrent > 0).then(|| Self { slots: Arc::new(Semaphore::new(max_concurrent)), queue_timeout })
    }
}

impl<S> Layer<S> for LoadShed {
    type Service = Shedding<S>;

    fn layer(&self, inner: S) -> Shedding<S> {
        Shedding { inner, shed: self.clone() }
    }
}

#[derive(Clone)]
pub struct Shedding<S> {
    inner: S,
    shed: LoadShed,
}

impl<S> Service<Request> for Shedding<S>
where
    S: Service<Request, Response = Response, Error = Infallible> + Clone + Send + 'static,
    S::Future: Send + 'static,
{
    type Response = Response;
    type Error = Infallible;
    type Future = ShedFuture<S::Future>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Infallible>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, req: Request) -> Self::Future {
        if crate::paths::is_exempt(req.uri().path()) {
            return ShedFuture::Admitted { inner: self.inner.call(req), slot: None };
        }
        match self.shed.slots.clone().try_acquire_owned() {
            Ok(slot) => ShedFuture::Admitted { inner: self.inner.call(req), slot: Some(slot) },
            Err(_) => {
                // The ready service goes with the waiting request; a clone stays for the next.
                let clone = self.inner.clone();
                let mut inner = std::mem::replace(&mut self.inner, clone);
                let shed = self.shed.clone();
                ShedFuture::Queued {
                    wait: Box::pin(async move {
                        match tokio::time::timeout(shed.queue_timeout, shed.slots.acquire_owned()).await {
                            Ok(Ok(slot)) => {
                                let Ok(response) = inner.call(req).await;
                                drop(slot);
                                response
                            }
                            _ => {
                                metrics::counter!("http_server_shed_requests", "reason" => "overload").increment(1);
                                ApiError::Overloaded.into_response()
                            }
                        }
                    }),
                }
            }
        }
    }
}

pin_project_lite::pin_project! {
    #[project = ShedProjection]
    pub enum ShedFuture<F> {
        /// Running, holding its slot (none for health probes) until it finishes or is dropped.
        Admitted { #[pin] inner: F, slot: Option<OwnedSemaphorePermit> },
        /// Waiting up to `queue_timeout` for a slot, then running.
        Queued { wait: BoxFuture<'static, Response> },
    }
}

impl<F: Future<Output = Result<Response, Infallible>>> Future for ShedFuture<F> {
    type Output = Result<Response, Infallible>;

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        match self.project() {
            ShedProjection::Admitted { inner, slot } => {
                let response = ready!(inner.poll(cx));
                // Freed with the answer, not whenever the outer layers drop this future.
                drop(slot.take());
                Poll::Ready(response)
            }
            ShedProjection::Queued { wait } => Poll::Ready(Ok(ready!(wait.as_mut().poll(cx)))),
        }
    }
}

//! A layer that edits each response in place once the inner service has answered.
//!
//! axum's `map_response` clones the whole stack inside it and boxes a future per request; the
//! edits here are synchronous, so a plain future wrapper does them for nothing extra.

use axum::extract::Request;
use axum::response::Response;
use std::convert::Infallible;
use std::future::Future;
use std::pin::Pin;
use std::task::{Context, Poll, ready};
use tower::{Layer, Service};

/// Calls `edit` on every response of the services it wraps.
#[derive(Clone, Copy)]
pub struct OnResponseLayer<E> {
    edit: E,
}

impl<E: Fn(&mut Response) + Copy> OnResponseLayer<E> {
    pub fn new(edit: E) -> Self {
        Self { edit }
    }
}

impl<S, E: Copy> Layer<S> for OnResponseLayer<E> {
    type Service = OnResponse<S, E>;

    fn layer(&self, inner: S) -> Self::Service {
        OnResponse { inner, edit: self.edit }
    }
}

#[derive(Clone)]
pub struct OnResponse<S, E> {
    inner: S,
    edit: E,
}

impl<S, E> Service<Request> for OnResponse<S, E>
where
    S: Service<Request, Response = Response, Error = Infallible>,
    E: Fn(&mut Response) + Copy,
{
    type Response = Response;
    type Error = Infallible;
    type Future = OnResponseFuture<S::Future, E>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Infallible>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, req: Request) -> Self::Future {
        OnResponseFuture { inner: self.inner.call(req), edit: self.edit }
    }
}

pin_project_lite::pin_project! {
    pub struct OnResponseFuture<F, E> {
        #[pin]
        inner: F,
        edit: E,
    }
}

impl<F, E> Future for OnResponseFuture<F, E>
where
    F: Future<Output = Result<Response, Infallible>>,
    E: Fn(&mut Response) + Copy,
{
    type Output = Result<Response, Infallible>;

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        let this = self.project();
        let Ok(mut response) = ready!(this.inner.poll(cx));
        (this.edit)(&mut response);
        Poll::Ready(Ok(response))
    }
}

//! A deadline on reading the request body (`reliability.body_read_timeout`), so a client that
//! trickles its body cannot hold a request open: past it, reading fails with tower-http's
//! `TimeoutError` and the request gets a 408 (`crate::extract`).
//!
//! tower-http's `RequestBodyDeadlineLayer` starts a timer for every request (a clock read and
//! a reference to the runtime's timer) and boxes the wrapped body again. A request that has no
//! body (every GET) has nothing to time out: it passes untouched.

use axum::body::Body;
use axum::extract::Request;
use http_body::Body as _;
use std::task::{Context, Poll};
use std::time::Duration;
use tower::{Layer, Service};
use tower_http::timeout::DeadlineBody;

#[derive(Clone, Copy)]
pub struct BodyDeadlineLayer {
    limit: Duration,
}

impl BodyDeadlineLayer {
    pub fn new(limit: Duration) -> Self {
        Self { limit }
    }
}

impl<S> Layer<S> for BodyDeadlineLayer {
    type Service = BodyDeadline<S>;

    fn layer(&self, inner: S) -> BodyDeadline<S> {
        BodyDeadline { inner, limit: self.limit }
    }
}

#[derive(Clone)]
pub struct BodyDeadline<S> {
    inner: S,
    limit: Duration,
}

impl<S: Service<Request>> Service<Request> for BodyDeadline<S> {
    type Response = S::Response;
    type Error = S::Error;
    type Future = S::Future;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), S::Error>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, req: Request) -> S::Future {
        if req.body().is_end_stream() {
            return self.inner.call(req);
        }
        let limit = self.limit;
        self.inner.call(req.map(|body| Body::new(DeadlineBody::new(limit, body))))
    }
}

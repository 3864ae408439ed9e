//! Slow-client protection at the connection level: a client must send each request's headers
//! within `reliability.header_read_timeout`, or its connection is closed. (The body's deadline
//! is a middleware, so that it can answer 408.)

use axum_server::Server;
use axum_server::accept::Accept;
use pfs_platform::config::ReliabilityConfig;

/// Applies the header deadline to `server`, for HTTP/1.1 and for the protocol detection that
/// precedes a connection's first request (which hyper itself does not time).
pub(crate) fn limit<A: axum_server::Address, Acc: Accept<A::Stream, ()>>(
    mut server: Server<A, Acc>,
    reliability: &ReliabilityConfig,
) -> Server<A, Acc> {
    server.http_builder().http1().header_read_timeout(reliability.header_read_timeout);
    server.first_request_timeout(reliability.header_read_timeout)
}

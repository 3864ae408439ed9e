//! The HTTP settings of every connection: a client must send each request's headers within
//! `reliability.header_read_timeout`, or its connection is closed (the body's deadline is a
//! middleware, so that it can answer 408); HTTP/2 connections carry at most
//! `server.http2_max_concurrent_streams` requests at once and are pinged, so a peer that
//! stopped answering is dropped. Connection counts and idle time: `connections`.

use axum_server::Server;
use axum_server::accept::Accept;
use pfs_platform::config::{ReliabilityConfig, ServerConfig};

/// Applies the header deadline to `server`, for HTTP/1.1 and for the protocol detection that
/// precedes a connection's first request (which hyper itself does not time).
pub(crate) fn limit<A: axum_server::Address, Acc: Accept<A::Stream, ()>>(
    mut server: Server<A, Acc>,
    reliability: &ReliabilityConfig,
    config: &ServerConfig,
) -> Server<A, Acc> {
    let builder = server.http_builder();
    builder.http1().header_read_timeout(reliability.header_read_timeout);
    builder
        .http2()
        .max_concurrent_streams(config.http2_max_concurrent_streams)
        .keep_alive_interval(config.http2_keep_alive_interval)
        .keep_alive_timeout(config.http2_keep_alive_timeout);
    server.first_request_timeout(reliability.header_read_timeout)
}

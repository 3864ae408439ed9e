//! Who a request comes from: the one client address the rate limit, the failed-auth throttle,
//! the change stream's per-client cap (`slots`), the audit lines and the request lines all use.
//!
//! The peer's address, unless `rate_limit.trust_forwarded_for` says a proxy stands in front:
//! then the right-most `X-Forwarded-For` entry, the one that proxy appended, read across every
//! header line (several lines are one comma-separated list, in order). The entry must parse as
//! an IP address (optionally with a port); anything else (junk, a 60 KB string) is ignored and
//! the peer's address used instead, so a client can neither pick arbitrary keys nor make them
//! large. Entries left of the right-most one were written by the client and are never read.

mod slots;

pub use slots::{ClientId, ClientSlots, Slot};

use axum::extract::ConnectInfo;
use axum::http::{Extensions, HeaderMap};
use std::net::{IpAddr, SocketAddr};

const X_FORWARDED_FOR: &str = "x-forwarded-for";

/// The client's address, or `None` when the request came from no socket (in-process tests).
pub fn address(headers: &HeaderMap, extensions: &Extensions, trust_forwarded_for: bool) -> Option<IpAddr> {
    let peer = extensions.get::<ConnectInfo<SocketAddr>>().map(|ConnectInfo(peer)| peer.ip());
    if trust_forwarded_for && let Some(forwarded) = forwarded_for(headers) {
        return Some(forwarded);
    }
    peer
}

/// The right-most `X-Forwarded-For` entry over all the header's lines, if it is an address.
fn forwarded_for(headers: &HeaderMap) -> Option<IpAddr> {
    let last_line = headers.get_all(X_FORWARDED_FOR).iter().next_back()?;
    let entry = last_line.to_str().ok()?.rsplit(',').next()?.trim();
    parse_entry(entry)
}

/// `203.0.113.9`, `2001:db8::1`, `203.0.113.9:4711` or `[2001:db8::1]:4711`; IPv4-mapped IPv6
/// addresses count as the IPv4 address they carry, so one client has one key.
fn parse_entry(entry: &str) -> Option<IpAddr> {
    // The longest textual address with a port, `[ffff:...:255.255.255.255%scope]:65535`, is
    // well under this; longer entries are refused before any parsing.
    if entry.len() > 64 {
        return None;
    }
    let ip = entry.parse::<IpAddr>().ok().or_else(|| entry.parse::<SocketAddr>().ok().map(|s| s.ip()))?;
    Some(ip.to_canonical())
}

#[cfg(test)]
mod tests {
    use super::*;
    use axum::http::HeaderValue;

    fn request(peer: [u8; 4], forwarded: &[&str]) -> (HeaderMap, Extensions) {
        let mut headers = HeaderMap::new();
        for line in forwarded {
            headers.append(X_FORWARDED_FOR, HeaderValue::from_str(line).unwrap());
        }
        let mut extensions = Extensions::new();
        extensions.insert(ConnectInfo(SocketAddr::from((peer, 5000))));
        (headers, extensions)
    }

    fn ip(text: &str) -> Option<IpAddr> {
        Some(text.parse().unwrap())
    }

    #[test]
    fn the_peer_counts_unless_a_proxy_is_trusted() {
        let (headers, extensions) = request([10, 1, 2, 3], &["203.0.113.9, 10.0.0.1"]);
        assert_eq!(address(&headers, &extensions, false), ip("10.1.2.3"), "spoofable unless trusted");
        assert_eq!(address(&headers, &extensions, true), ip("10.0.0.1"), "the entry the proxy appended");
    }

    #[test]
    fn the_right_most_entry_of_the_last_header_line_counts() {
        let (headers, extensions) = request([10, 1, 2, 3], &["198.51.100.1", "203.0.113.9, 192.0.2.7"]);
        assert_eq!(address(&headers, &extensions, true), ip("192.0.2.7"));
        let (headers, extensions) = request([10, 1, 2, 3], &["198.51.100.1", "[2001:db8::1]:4711"]);
        assert_eq!(address(&headers, &extensions, true), ip("2001:db8::1"));
        let (headers, extensions) = request([10, 1, 2, 3], &["::ffff:192.0.2.7"]);
        assert_eq!(address(&headers, &extensions, true), ip("192.0.2.7"), "one client, one key");
    }

    #[test]
    fn an_entry_that_is_not_an_address_falls_back_to_the_peer() {
        let junk = "x".repeat(60_000);
        for entry in [junk.as_str(), "unknown", "", "203.0.113.9 junk", "1.2.3.4.5"] {
            let (headers, extensions) = request([10, 1, 2, 3], &[entry]);
            assert_eq!(address(&headers, &extensions, true), ip("10.1.2.3"), "{:.20}", entry);
        }
    }
}

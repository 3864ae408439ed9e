//! Loopback ports for the servers tests start as processes (the service, `redis-server`, a
//! database that is down and comes back).
//!
//! A port learnt by binding port 0 comes from the kernel's ephemeral range, and goes back to it
//! as soon as the probe closes: until the process bound to it, and again whenever a test stops
//! that process on purpose, the next `bind(…:0)` or outgoing connection anywhere on the machine
//! may be handed the same port. A Redis that a test killed to see the service wait for it then
//! comes back to find another test's HTTP server on its port. So the ports here come from below
//! the ephemeral range, which the kernel never hands out by itself, and each process walks its
//! own sequence of them, never handing out one twice.

use std::net::TcpListener;
use std::sync::OnceLock;
use std::sync::atomic::{AtomicU32, Ordering};

/// The lowest port handed out: above the registered services a test machine runs (PostgreSQL,
/// Redis, …), and a wide enough range for every test of a run.
const LOWEST: u32 = 20_000;
/// Where the kernel's ephemeral range starts when `/proc` does not say (Linux's default).
const EPHEMERAL_START: u32 = 32_768;

/// A loopback port nothing listens on, that no other call in this process returns and that the
/// kernel does not give to a socket binding port 0. Processes running side by side start their
/// walks at different places (by process id), so two test binaries rarely meet; a port something
/// already listens on is skipped.
pub fn free_port() -> u16 {
    let walk = walk();
    for _ in 0..walk.span {
        let port = walk.port(CALLS.fetch_add(1, Ordering::Relaxed));
        if TcpListener::bind(("127.0.0.1", port)).is_ok() {
            return port;
        }
    }
    panic!("no free loopback port between {} and {}", walk.start, walk.start + walk.span)
}

/// How many ports this process has tried.
static CALLS: AtomicU32 = AtomicU32::new(0);

/// This process's way through the ports: `span` of them from `start`, beginning at `offset`.
struct Walk {
    start: u32,
    span: u32,
    offset: u32,
}

impl Walk {
    /// The port tried on the `call`th try.
    fn port(&self, call: u32) -> u16 {
        u16::try_from(self.start + (self.offset + call) % self.span).expect("ports are below 65536")
    }
}

/// The walk, worked out once: from [`LOWEST`] up to where the ephemeral range starts.
fn walk() -> &'static Walk {
    static WALK: OnceLock<Walk> = OnceLock::new();
    WALK.get_or_init(|| {
        let ephemeral = std::fs::read_to_string("/proc/sys/net/ipv4/ip_local_port_range")
            .ok()
            .and_then(|range| range.split_whitespace().next()?.parse::<u32>().ok())
            .unwrap_or(EPHEMERAL_START);
        let span = ephemeral.max(LOWEST + 1_000) - LOWEST;
        Walk { start: LOWEST, span, offset: std::process::id().wrapping_mul(7_919) % span }
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    // One test, as the walk is shared by the whole process.
    #[test]
    fn ports_are_below_the_ephemeral_range_never_handed_out_twice_and_skip_those_in_use() {
        let (start, span) = (walk().start, walk().span);
        let ports: Vec<u16> = (0..200).map(|_| free_port()).collect();
        for &port in &ports {
            assert!((start..start + span).contains(&u32::from(port)), "{port} outside {start}..{}", start + span);
        }
        let mut unique = ports.clone();
        unique.sort_unstable();
        unique.dedup();
        assert_eq!(unique.len(), ports.len(), "a port was handed out twice: {ports:?}");

        // Occupy the next two ports of the walk (unless something else already does).
        let next = CALLS.load(Ordering::Relaxed);
        let _held: Vec<_> =
            (next..next + 2).filter_map(|call| TcpListener::bind(("127.0.0.1", walk().port(call))).ok()).collect();
        let expected =
            (next + 2..).map(|call| walk().port(call)).find(|&port| TcpListener::bind(("127.0.0.1", port)).is_ok());
        assert_eq!(Some(free_port()), expected, "the ports in use are stepped over");
    }
}

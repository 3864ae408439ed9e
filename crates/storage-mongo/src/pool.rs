//! Pool occupancy from the driver's connection monitoring (CMAP) events: the driver keeps its
//! pool counts private, so they are tracked here from the events it emits for every change.
//!
//! The driver keeps one pool per server of the deployment. Every operation of this service
//! goes to the primary (the read preference stays `primary` unless the URL says otherwise),
//! while the other servers' pools only hold their `min_pool_size` idle connections, so the
//! pool reported (as `writer`) is the one with the most connections in use, else the one
//! used most: summing them would hide an exhausted primary behind idle secondaries.

use mongodb::event::EventHandler;
use mongodb::event::cmap::CmapEvent;
use mongodb::options::ServerAddress;
use pfs_storage::PoolStats;
use pfs_storage::pool::record_wait;
use std::collections::HashMap;
use std::sync::{Arc, Mutex, PoisonError};

const POOL_NAME: &str = "writer";

#[derive(Clone, Copy, Debug, Default)]
struct Counts {
    /// Created and not yet closed, checked out or not (including ones still handshaking).
    open: u32,
    used: u32,
    checkouts: u64,
}

/// Connection counts per server, fed by the client's CMAP event handler.
#[derive(Debug)]
pub(crate) struct PoolMonitor {
    servers: Mutex<HashMap<ServerAddress, Counts>>,
    /// `max_pool_size`, which the driver applies per server.
    max: u32,
}

impl PoolMonitor {
    pub(crate) fn new(max: u32) -> Arc<Self> {
        Arc::new(Self { servers: Mutex::new(HashMap::new()), max })
    }

    /// The handler to install in the client options before the client is built, so that no
    /// connection is created unseen.
    pub(crate) fn handler(self: &Arc<Self>) -> EventHandler<CmapEvent> {
        let monitor = Arc::clone(self);
        EventHandler::callback(move |event| monitor.observe(event))
    }

    fn observe(&self, event: CmapEvent) {
        let (address, change): (_, fn(&mut Counts)) = match event {
            CmapEvent::ConnectionCreated(e) => (e.address, |c| c.open += 1),
            CmapEvent::ConnectionClosed(e) => (e.address, |c| c.open = c.open.saturating_sub(1)),
            CmapEvent::ConnectionCheckedOut(e) => {
                record_wait(POOL_NAME, e.duration);
                (e.address, |c| {
                    c.used += 1;
                    c.checkouts += 1;
                })
            }
            CmapEvent::ConnectionCheckedIn(e) => (e.address, |c| c.used = c.used.saturating_sub(1)),
            CmapEvent::ConnectionCheckoutFailed(e) => {
                record_wait(POOL_NAME, e.duration);
                return;
            }
            _ => return,
        };
        change(self.servers.lock().unwrap_or_else(PoisonError::into_inner).entry(address).or_default());
    }

    pub(crate) fn stats(&self) -> Vec<PoolStats> {
        let servers = self.servers.lock().unwrap_or_else(PoisonError::into_inner);
        let busiest = servers.values().max_by_key(|c| (c.used, c.checkouts)).copied().unwrap_or_default();
        let idle = busiest.open.saturating_sub(busiest.used);
        vec![PoolStats { name: POOL_NAME, used: busiest.used, idle, max: self.max }]
    }
}

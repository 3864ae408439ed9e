//! [`ClientSlots`]: how many of a scarce, long-held thing (change-stream subscriptions) each
//! client holds, so that one client cannot take every slot of the replica-wide limit.
//!
//! A client is its principal when it authenticated, else its address. The table holds only
//! clients with at least one slot, so it never has more entries than slots are held (at most
//! `events.max_subscribers`), each of a fixed size (a principal is kept as a hash of its name).

use crate::auth::Authentication;
use axum::http::{Extensions, HeaderMap};
use std::collections::HashMap;
use std::net::IpAddr;
use std::sync::{Arc, Mutex, PoisonError};
use xxhash_rust::xxh3::xxh3_64;

/// One client, as far as per-client limits go.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum ClientId {
    /// An authenticated principal, by a hash of its name.
    Principal(u64),
    Address(IpAddr),
    /// Neither (a request that came from no socket: in-process tests).
    Unknown,
}

impl ClientId {
    /// The principal when the request authenticated, else the client address.
    pub fn of(headers: &HeaderMap, extensions: &Extensions, trust_forwarded_for: bool) -> Self {
        if let Some(principal) = extensions.get::<Authentication>().and_then(|a| a.principal.as_ref()) {
            return Self::Principal(xxh3_64(principal.name.as_bytes()));
        }
        super::address(headers, extensions, trust_forwarded_for).map_or(Self::Unknown, Self::Address)
    }
}

pub struct ClientSlots {
    held: Mutex<HashMap<ClientId, usize>>,
    max_per_client: usize,
}

impl ClientSlots {
    pub fn new(max_per_client: usize) -> Arc<Self> {
        Arc::new(Self { held: Mutex::new(HashMap::new()), max_per_client })
    }

    /// A slot for `client`, or `None` when it already holds `max_per_client`.
    pub fn take(self: &Arc<Self>, client: ClientId) -> Option<Slot> {
        let mut held = self.held.lock().unwrap_or_else(PoisonError::into_inner);
        let count = held.entry(client).or_insert(0);
        if *count >= self.max_per_client {
            return None;
        }
        *count += 1;
        Some(Slot { slots: self.clone(), client })
    }

    /// Clients holding at least one slot.
    pub fn clients(&self) -> usize {
        self.held.lock().unwrap_or_else(PoisonError::into_inner).len()
    }
}

/// A held slot; dropping it gives it back.
pub struct Slot {
    slots: Arc<ClientSlots>,
    client: ClientId,
}

impl Drop for Slot {
    fn drop(&mut self) {
        let mut held = self.slots.held.lock().unwrap_or_else(PoisonError::into_inner);
        if let Some(count) = held.get_mut(&self.client) {
            *count -= 1;
            if *count == 0 {
                held.remove(&self.client);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn each_client_holds_at_most_its_share_and_gets_slots_back() {
        let slots = ClientSlots::new(2);
        let (a, b) = (ClientId::Address(IpAddr::from([192, 0, 2, 1])), ClientId::Principal(7));
        let first = slots.take(a).expect("first");
        let _second = slots.take(a).expect("second");
        assert!(slots.take(a).is_none(), "a third is refused");
        assert!(slots.take(b).is_some(), "other clients are not affected");
        drop(first);
        assert!(slots.take(a).is_some(), "a released slot can be taken again");
    }

    #[test]
    fn the_table_only_holds_clients_with_slots() {
        let slots = ClientSlots::new(1);
        let held: Vec<_> =
            (0..100u32).filter_map(|n| slots.take(ClientId::Address(IpAddr::from(n.to_be_bytes())))).collect();
        assert_eq!(slots.clients(), 100);
        assert!(slots.take(ClientId::Address(IpAddr::from(0u32.to_be_bytes()))).is_none());
        assert_eq!(slots.clients(), 100, "a refusal adds no entry");
        drop(held);
        assert_eq!(slots.clients(), 0);
    }
}

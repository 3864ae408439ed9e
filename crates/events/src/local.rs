//! One replica: events are numbered and kept (a ring of at most `history_size` events and
//! `history_max_bytes` of their data) in this process.

use crate::event::{Change, Event, EventId};
use crate::feed::{HistoryError, Log, Page};
use crate::hub::Hub;
use async_trait::async_trait;
use std::collections::VecDeque;
use std::sync::{Arc, Mutex};
use std::time::{SystemTime, UNIX_EPOCH};

pub(crate) struct LocalLog {
    ring: Mutex<Ring>,
    hub: Arc<Hub>,
}

struct Ring {
    events: VecDeque<Arc<Event>>,
    capacity: usize,
    /// The most the held events may weigh ([`weight`]), and what they weigh now.
    max_bytes: usize,
    bytes: usize,
    /// Every event after this one is in `events` (it is the last evicted one, or the start).
    floor: EventId,
    next: EventId,
}

impl LocalLog {
    pub fn new(capacity: usize, max_bytes: usize, hub: Arc<Hub>) -> Arc<Self> {
        // Ids start at this process's start time, so one handed out by an earlier process is
        // below the floor and resuming from it reports a gap instead of a wrong replay.
        let ms = SystemTime::now().duration_since(UNIX_EPOCH).map_or(0, |d| d.as_millis() as u64);
        let floor = EventId { ms, seq: 0 };
        let ring = Ring {
            events: VecDeque::new(),
            capacity: capacity.max(1),
            max_bytes,
            bytes: 0,
            floor,
            next: EventId { ms, seq: 1 },
        };
        Arc::new(Self { ring: Mutex::new(ring), hub })
    }
}

#[async_trait]
impl Log for LocalLog {
    async fn publish(&self, changes: Vec<Change>) {
        // Numbering and sending under one lock: the broadcast order is the id order.
        let mut ring = self.ring.lock().unwrap_or_else(|poisoned| poisoned.into_inner());
        for change in changes {
            let event = Arc::new(Event { id: ring.next, kind: change.kind, data: change.data });
            ring.next.seq += 1;
            // The oldest go until the new one fits both bounds (the newest is always kept).
            while ring.events.len() == ring.capacity || ring.bytes + weight(&event) > ring.max_bytes {
                let Some(evicted) = ring.events.pop_front() else { break };
                ring.bytes -= weight(&evicted);
                ring.floor = evicted.id;
            }
            ring.bytes += weight(&event);
            ring.events.push_back(event.clone());
            self.hub.send(event);
        }
    }

    async fn after(&self, after: EventId, limit: usize) -> Result<Page, HistoryError> {
        let ring = self.ring.lock().unwrap_or_else(|poisoned| poisoned.into_inner());
        let head = ring.events.back().map_or(ring.floor, |e| e.id);
        if after < ring.floor || after > head {
            return Ok(Page::Gap { head: Some(head) });
        }
        let start = ring.events.partition_point(|e| e.id <= after);
        Ok(Page::Events(ring.events.iter().skip(start).take(limit).cloned().collect()))
    }

    fn kind(&self) -> &'static str {
        "local"
    }
}

/// What a held event costs: the buffer of its data (not just the text in it) and the `Arc`'d
/// struct around it.
fn weight(event: &Event) -> usize {
    event.data.capacity() + std::mem::size_of::<Event>() + 16
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::event::EventKind;

    fn change(n: usize) -> Change {
        Change { kind: EventKind::Created, data: n.to_string() }
    }

    fn events(page: Page) -> Vec<String> {
        match page {
            Page::Events(events) => events.iter().map(|e| e.data.clone()).collect(),
            Page::Gap { head } => panic!("unexpected gap at {head:?}"),
        }
    }

    #[tokio::test]
    async fn resuming_replays_what_followed_the_position() {
        let log = LocalLog::new(10, usize::MAX, Hub::new(16, 16, 1));
        log.publish((0..5).map(change).collect()).await;
        let start = log.ring.lock().unwrap().floor;
        let second = log.after(start, 100).await.unwrap();
        let second = match second {
            Page::Events(events) => events[1].id,
            Page::Gap { .. } => panic!("the start is in the history"),
        };
        assert_eq!(events(log.after(second, 100).await.unwrap()), ["2", "3", "4"]);
        assert_eq!(events(log.after(second, 2).await.unwrap()), ["2", "3"]);
    }

    #[tokio::test]
    async fn a_position_evicted_from_the_ring_is_a_gap_at_the_head() {
        let log = LocalLog::new(3, usize::MAX, Hub::new(16, 16, 1));
        let start = log.ring.lock().unwrap().floor;
        log.publish((0..5).map(change).collect()).await;
        let head = log.ring.lock().unwrap().events.back().unwrap().id;
        assert!(matches!(log.after(start, 100).await.unwrap(), Page::Gap { head: Some(h) } if h == head));
        // The oldest event still held is a valid position: the two after it follow.
        let oldest = log.ring.lock().unwrap().events[0].id;
        assert_eq!(events(log.after(oldest, 100).await.unwrap()), ["3", "4"]);
    }

    #[tokio::test]
    async fn ids_from_an_earlier_process_or_the_future_are_gaps() {
        let log = LocalLog::new(3, usize::MAX, Hub::new(16, 16, 1));
        log.publish(vec![change(0)]).await;
        let floor = log.ring.lock().unwrap().floor;
        let earlier = EventId { ms: floor.ms - 1, seq: 7 };
        let future = EventId { ms: floor.ms + 86_400_000, seq: 0 };
        assert!(matches!(log.after(earlier, 10).await.unwrap(), Page::Gap { .. }));
        assert!(matches!(log.after(future, 10).await.unwrap(), Page::Gap { .. }));
    }

    #[tokio::test]
    async fn the_history_is_bounded_by_bytes_as_well_as_by_count() {
        let big = |n: usize| Change { kind: EventKind::Created, data: format!("{n}{}", "x".repeat(10_000)) };
        let log = LocalLog::new(1_000, 50_000, Hub::new(16, 16, 1));
        log.publish((0..100).map(big).collect()).await;
        let (oldest, floor) = {
            let ring = log.ring.lock().unwrap();
            assert!(ring.bytes <= 50_000 && ring.bytes == ring.events.iter().map(|e| weight(e)).sum::<usize>());
            assert_eq!(ring.events.len(), 4, "four 10 KB events fit in 50 KB");
            assert!(ring.events.back().unwrap().data.starts_with("99"), "the newest are kept");
            (ring.events[0].id, ring.floor)
        };
        // What was evicted for its bytes is a gap, like what was evicted for the count.
        assert!(matches!(log.after(EventId { seq: floor.seq - 1, ..floor }, 10).await.unwrap(), Page::Gap { .. }));
        assert_eq!(events(log.after(oldest, 10).await.unwrap()).len(), 3);
    }

    #[tokio::test]
    async fn the_history_is_weighed_by_the_memory_its_events_hold() {
        let roomy = |n: usize| {
            let mut data = String::with_capacity(10_000);
            data.push_str(&n.to_string());
            Change { kind: EventKind::Created, data }
        };
        let log = LocalLog::new(1_000, 50_000, Hub::new(16, 16, 1));
        log.publish((0..100).map(roomy).collect()).await;
        let ring = log.ring.lock().unwrap();
        let held: usize = ring.events.iter().map(|e| e.data.capacity()).sum();
        assert!(held <= 50_000, "{} events hold {held} bytes", ring.events.len());
    }

    #[tokio::test]
    async fn an_event_larger_than_the_budget_is_still_kept_alone() {
        let log = LocalLog::new(10, 100, Hub::new(16, 16, 1));
        log.publish(vec![change(1), Change { kind: EventKind::Created, data: "y".repeat(1_000) }]).await;
        assert_eq!(log.ring.lock().unwrap().events.len(), 1);
    }
}

//! The local fan-out and each subscriber's bounded buffer.
//!
//! Events reach this replica's subscribers through one tokio broadcast channel: its ring is
//! shared, so memory does not grow with the number of subscribers. Each subscriber has a small
//! task that moves events from the broadcast into the subscriber's own bounded queue, which the
//! HTTP response drains. When that queue is full (the client reads slower than events arrive)
//! the subscriber is dropped on the spot: nothing more is queued for it, it is counted, and its
//! stream ends with a `dropped` item once the client has read what was already queued.

use crate::event::{Event, EventId};
use crate::feed::{FeedStats, Log, Page};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};
use tokio::sync::{broadcast, mpsc};
use tokio_util::sync::CancellationToken;

/// Replay reads the history this many events at a time, as the client consumes them.
pub(crate) const REPLAY_PAGE: usize = 256;

/// What a subscriber receives.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Item {
    Event(Arc<Event>),
    /// The position the client resumed from is no longer in the history (or never was):
    /// events were missed. `head` is the newest event at that moment, the client's new
    /// position; `None` when nothing has been published.
    Gap {
        head: Option<EventId>,
    },
    /// The client fell too far behind and was dropped; the stream ends after this.
    Dropped,
}

pub(crate) struct Hub {
    live: broadcast::Sender<Arc<Event>>,
    client_buffer: usize,
    max_subscribers: usize,
    subscribers: AtomicUsize,
    dropped: AtomicU64,
}

impl Hub {
    pub fn new(broadcast_capacity: usize, client_buffer: usize, max_subscribers: usize) -> Arc<Self> {
        Arc::new(Self {
            live: broadcast::channel(broadcast_capacity.max(1)).0,
            client_buffer: client_buffer.max(1),
            max_subscribers,
            subscribers: AtomicUsize::new(0),
            dropped: AtomicU64::new(0),
        })
    }

    /// Hands `event` to every current subscriber. Callers send in the global order.
    pub fn send(&self, event: Arc<Event>) {
        // An error only means nobody is subscribed right now.
        let _ = self.live.send(event);
    }

    pub fn stats(&self) -> FeedStats {
        FeedStats {
            subscribers: self.subscribers.load(Ordering::Relaxed),
            dropped: self.dropped.load(Ordering::Relaxed),
        }
    }

    /// Takes a subscriber slot, or `None` when all `max_subscribers` are taken.
    pub fn admit(self: &Arc<Self>) -> Option<Slot> {
        self.subscribers
            .fetch_update(Ordering::AcqRel, Ordering::Acquire, |n| (n < self.max_subscribers).then_some(n + 1))
            .ok()?;
        metrics::gauge!("events_subscribers").increment(1.0);
        Some(Slot { hub: self.clone(), live: Some(self.live.subscribe()) })
    }

    /// Starts the subscriber's forwarding task: first the replay (from `first`, then further
    /// pages of `log`), then live events newer than the last one replayed.
    pub fn start(
        &self,
        mut slot: Slot,
        log: Arc<dyn Log>,
        first: Option<Page>,
        stop: CancellationToken,
    ) -> Subscription {
        let (out, queue) = mpsc::channel(self.client_buffer);
        let dropped = Arc::new(AtomicBool::new(false));
        let live = slot.live.take().expect("a slot is started once");
        let forward = Forward { log, live, out, stop: stop.clone(), dropped: dropped.clone(), slot };
        tokio::spawn(forward.run(first));
        Subscription { queue, dropped, stop, finished: false }
    }
}

/// A subscriber's place, released (and the gauge lowered) when dropped.
pub(crate) struct Slot {
    hub: Arc<Hub>,
    live: Option<broadcast::Receiver<Arc<Event>>>,
}

impl Drop for Slot {
    fn drop(&mut self) {
        self.hub.subscribers.fetch_sub(1, Ordering::AcqRel);
        metrics::gauge!("events_subscribers").decrement(1.0);
    }
}

struct Forward {
    log: Arc<dyn Log>,
    live: broadcast::Receiver<Arc<Event>>,
    out: mpsc::Sender<Item>,
    stop: CancellationToken,
    dropped: Arc<AtomicBool>,
    /// Held for the task's life: a subscriber counts while events are forwarded to it.
    slot: Slot,
}

impl Forward {
    async fn run(mut self, first: Option<Page>) {
        let Some(mut cursor) = self.replay(first).await else { return };
        loop {
            let received = tokio::select! {
                biased;
                () = self.stop.cancelled() => return,
                () = self.out.closed() => return,
                received = self.live.recv() => received,
            };
            let event = match received {
                Ok(event) => event,
                Err(broadcast::error::RecvError::Lagged(_)) => return self.drop_slow(),
                Err(broadcast::error::RecvError::Closed) => return,
            };
            // Replay may already have delivered it (history and live overlap at the seam).
            if cursor.is_some_and(|seen| event.id <= seen) {
                continue;
            }
            cursor = Some(event.id);
            match self.out.try_send(Item::Event(event)) {
                Ok(()) => {}
                Err(mpsc::error::TrySendError::Full(_)) => return self.drop_slow(),
                Err(mpsc::error::TrySendError::Closed(_)) => return,
            }
        }
    }

    /// Sends the history after the resume position, waiting for the client (the broadcast
    /// keeps collecting meanwhile; if it overflows, the live phase drops the client). Returns
    /// the last position delivered, or `None` when the stream should end.
    async fn replay(&mut self, first: Option<Page>) -> Option<Option<EventId>> {
        let mut cursor = None;
        let mut page = first;
        while let Some(current) = page.take() {
            match current {
                Page::Gap { head } => {
                    self.send(Item::Gap { head }).await?;
                    return Some(head);
                }
                Page::Events(events) => {
                    let more = events.len() >= REPLAY_PAGE;
                    for event in events {
                        cursor = Some(event.id);
                        self.send(Item::Event(event)).await?;
                    }
                    if let (true, Some(after)) = (more, cursor) {
                        match self.log.after(after, REPLAY_PAGE).await {
                            Ok(next) => page = Some(next),
                            Err(err) => {
                                tracing::warn!(error = %err, "change stream: replay interrupted");
                                return None;
                            }
                        }
                    }
                }
            }
        }
        Some(cursor)
    }

    async fn send(&self, item: Item) -> Option<()> {
        tokio::select! {
            biased;
            () = self.stop.cancelled() => None,
            sent = self.out.send(item) => sent.ok(),
        }
    }

    fn drop_slow(self) {
        self.dropped.store(true, Ordering::Release);
        self.slot.hub.dropped.fetch_add(1, Ordering::Relaxed);
        metrics::counter!("events_dropped_subscribers").increment(1);
        tracing::info!("change stream: dropped a subscriber that fell behind");
    }
}

/// One subscriber's stream of [`Item`]s. Ends when the stop token fires (shutdown), after
/// [`Item::Dropped`] when the subscriber fell behind, or when the feed stops.
pub struct Subscription {
    queue: mpsc::Receiver<Item>,
    dropped: Arc<AtomicBool>,
    stop: CancellationToken,
    finished: bool,
}

impl Subscription {
    pub async fn next(&mut self) -> Option<Item> {
        if self.finished {
            return None;
        }
        let item = tokio::select! {
            biased;
            () = self.stop.cancelled() => None,
            item = self.queue.recv() => item,
        };
        if item.is_none() {
            self.finished = true;
            return self.dropped.load(Ordering::Acquire).then_some(Item::Dropped);
        }
        item
    }

    /// The next item if one is already waiting (never the final `Dropped`: [`Self::next`]
    /// reports the end). Lets the writer put a burst into one chunk.
    pub fn try_next(&mut self) -> Option<Item> {
        if self.finished || self.stop.is_cancelled() {
            return None;
        }
        self.queue.try_recv().ok()
    }

    /// Events waiting for the client right now (at most the per-client buffer).
    pub fn queued(&self) -> usize {
        self.queue.len()
    }
}

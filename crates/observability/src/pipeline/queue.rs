//! The bounded queue in front of a span or log exporter: `offer` never waits (a full queue
//! drops the item and counts it), and one background task sends batches (up to
//! `max_batch`, or whatever arrived within `delay`) to its [`Sink`].
//!
//! After a batch was not delivered, an idle queue sends an empty batch every `delay` (the
//! breaker decides whether it reaches the network) until one is delivered: otherwise a
//! signal with nothing to send, such as WARN-level logs on a quiet service, would report the
//! outage it had seen for as long as the process runs.

use super::export::dropped;
use super::plan::Batching;
use std::pin::Pin;
use std::time::Duration;
use tokio::sync::{mpsc, oneshot};

/// Where batches go; false when a batch was not delivered (its items are counted as dropped).
pub(crate) trait Sink<T>: Send + Sync + 'static {
    fn send(&self, batch: Vec<T>) -> impl Future<Output = bool> + Send;
}

enum Message<T> {
    Item(Box<T>),
    Flush(oneshot::Sender<()>),
}

pub(crate) struct Queue<T> {
    sender: mpsc::Sender<Message<T>>,
    signal: &'static str,
}

impl<T> std::fmt::Debug for Queue<T> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Queue").field("signal", &self.signal).finish_non_exhaustive()
    }
}

type Flush = Box<dyn Fn(oneshot::Sender<()>) -> Pin<Box<dyn Future<Output = bool> + Send>> + Send + Sync>;

/// Flushes the queue at shutdown.
pub(crate) struct QueueHandle {
    flush: Flush,
    timeout: Duration,
}

impl QueueHandle {
    /// Waits, at most the export timeout, for what is queued now to be sent.
    pub(crate) async fn flush(&self) {
        let (done, wait) = oneshot::channel();
        let flushed = async {
            if (self.flush)(done).await {
                let _ = wait.await;
            }
        };
        let _ = tokio::time::timeout(self.timeout, flushed).await;
    }
}

impl<T: Send + 'static> Queue<T> {
    /// The queue, and its flush handle; the sending task runs until the queue is dropped.
    pub(crate) fn start(sink: impl Sink<T>, batching: Batching, signal: &'static str) -> (Self, QueueHandle) {
        let (sender, received) = mpsc::channel(batching.max_queue);
        tokio::spawn(run(sink, received, batching, signal));
        let flusher = sender.clone();
        let flush: Flush = Box::new(move |done| {
            let flusher = flusher.clone();
            Box::pin(async move { flusher.send(Message::Flush(done)).await.is_ok() })
        });
        (Self { sender, signal }, QueueHandle { flush, timeout: batching.timeout })
    }

    pub(crate) fn offer(&self, item: T) {
        if self.sender.try_send(Message::Item(Box::new(item))).is_err() {
            dropped(self.signal, 1);
        }
    }
}

async fn run<T, S: Sink<T>>(sink: S, mut queue: mpsc::Receiver<Message<T>>, batching: Batching, signal: &'static str) {
    let mut batch = Vec::with_capacity(batching.max_batch);
    let mut delivering = true;
    loop {
        let first = if delivering {
            queue.recv().await
        } else {
            match tokio::time::timeout(batching.delay, queue.recv()).await {
                Ok(first) => first,
                Err(_) => {
                    delivering = sink.send(Vec::new()).await;
                    continue;
                }
            }
        };
        let Some(first) = first else { break };
        let mut flushed = None;
        match first {
            Message::Item(item) => batch.push(*item),
            Message::Flush(done) => flushed = Some(done),
        }
        let deadline = tokio::time::Instant::now() + batching.delay;
        while flushed.is_none() && batch.len() < batching.max_batch {
            match tokio::time::timeout_at(deadline, queue.recv()).await {
                Ok(Some(Message::Item(item))) => batch.push(*item),
                Ok(Some(Message::Flush(done))) => flushed = Some(done),
                Ok(None) | Err(_) => break,
            }
        }
        if !batch.is_empty() {
            let items = std::mem::replace(&mut batch, Vec::with_capacity(batching.max_batch));
            let count = items.len();
            delivering = sink.send(items).await;
            if !delivering {
                dropped(signal, count);
            }
        }
        if let Some(done) = flushed {
            let _ = done.send(());
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::{Arc, Mutex};
    use std::time::Instant;

    /// Keeps batch sizes; fails the first `failures` sends; blocks forever once `block` is set.
    #[derive(Clone, Default)]
    struct Recorder {
        batches: Arc<Mutex<Vec<usize>>>,
        failures: usize,
        block: bool,
    }

    impl Sink<u32> for Recorder {
        async fn send(&self, batch: Vec<u32>) -> bool {
            let sent = {
                let mut batches = self.batches.lock().unwrap();
                batches.push(batch.len());
                batches.len()
            };
            if self.block {
                std::future::pending::<()>().await;
            }
            sent > self.failures
        }
    }

    fn batching(max_queue: usize, max_batch: usize) -> Batching {
        Batching { max_queue, max_batch, delay: Duration::from_secs(60), timeout: Duration::from_millis(300) }
    }

    #[tokio::test]
    async fn batches_are_bounded_and_a_flush_sends_what_is_queued() {
        let sink = Recorder::default();
        let (queue, handle) = Queue::start(sink.clone(), batching(16, 3), "traces");
        for item in 0..7 {
            queue.offer(item);
        }
        handle.flush().await;
        assert_eq!(*sink.batches.lock().unwrap(), [3, 3, 1]);
    }

    /// Waits until the sink saw `count` batches (at most 10 s), then ten more `delay`s.
    async fn settle(sink: &Recorder, count: usize) {
        let deadline = Instant::now() + Duration::from_secs(10);
        while sink.batches.lock().unwrap().len() < count && Instant::now() < deadline {
            tokio::time::sleep(Duration::from_millis(5)).await;
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    }

    #[tokio::test]
    async fn after_a_failed_batch_an_idle_queue_probes_until_one_is_delivered() {
        let sink = Recorder { failures: 3, ..Recorder::default() };
        let batching = Batching { delay: Duration::from_millis(20), ..batching(16, 8) };
        let (queue, _handle) = Queue::start(sink.clone(), batching, "logs");
        queue.offer(1);
        settle(&sink, 4).await;
        // The batch fails, two empty probes fail, the third is delivered, then silence.
        assert_eq!(*sink.batches.lock().unwrap(), [1, 0, 0, 0]);
    }

    #[tokio::test]
    async fn a_queue_that_delivers_sends_nothing_while_idle() {
        let sink = Recorder::default();
        let batching = Batching { delay: Duration::from_millis(20), ..batching(16, 8) };
        let (queue, _handle) = Queue::start(sink.clone(), batching, "logs");
        queue.offer(1);
        settle(&sink, 1).await;
        assert_eq!(*sink.batches.lock().unwrap(), [1]);
    }

    #[tokio::test]
    async fn a_stuck_exporter_never_makes_offer_or_flush_wait() {
        let sink = Recorder { block: true, ..Recorder::default() };
        let (queue, handle) = Queue::start(sink.clone(), batching(4, 2), "traces");
        let start = Instant::now();
        for item in 0..10_000 {
            queue.offer(item);
        }
        handle.flush().await;
        assert!(start.elapsed() < Duration::from_secs(2), "{:?}", start.elapsed());
        assert!(sink.batches.lock().unwrap().len() <= 1, "one batch is stuck, the rest waits or is dropped");
    }
}

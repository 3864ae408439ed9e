//! Keeping one in N of the high-volume events: those with a field named `sampled`, at INFO or
//! below. Warnings and errors are always kept.

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use tracing::subscriber::Interest;
use tracing::{Level, Metadata};
use tracing_subscriber::filter::{DynFilterFn, LevelFilter};
use tracing_subscriber::layer::Context;

/// The field that marks an event as one of many alike.
pub const MARKER: &str = "sampled";

#[derive(Debug)]
pub struct Sampling {
    /// Keep every Nth marked event; 0 keeps none.
    every: AtomicU64,
    seen: AtomicU64,
}

impl Sampling {
    pub fn new(rate: f64) -> Self {
        let sampling = Self { every: AtomicU64::new(1), seen: AtomicU64::new(0) };
        sampling.set_rate(rate);
        sampling
    }

    /// `rate` is the share kept, 0..=1 (clamped).
    pub fn set_rate(&self, rate: f64) {
        let rate = if rate.is_nan() { 1.0 } else { rate.clamp(0.0, 1.0) };
        let every = if rate == 0.0 { 0 } else { (1.0 / rate).round() as u64 };
        self.every.store(every, Ordering::Relaxed);
    }

    pub fn keep(&self, meta: &Metadata<'_>) -> bool {
        if !meta.is_event() || *meta.level() <= Level::WARN || meta.fields().field(MARKER).is_none() {
            return true;
        }
        match self.every.load(Ordering::Relaxed) {
            0 => false,
            1 => true,
            every => self.seen.fetch_add(1, Ordering::Relaxed).is_multiple_of(every),
        }
    }

    /// Decided per event for marked callsites (a plain `filter_fn` would cache its first answer
    /// per callsite, keeping all or none); every other callsite is always let through. Its level
    /// hint says it lets every level through, so the level filter beside it decides the
    /// process's maximum level (without a hint, every `debug!` would be looked at).
    pub(crate) fn filter<S>(self: Arc<Self>) -> impl tracing_subscriber::layer::Filter<S> {
        DynFilterFn::new(move |meta: &Metadata<'_>, _: &Context<'_, S>| self.keep(meta))
            .with_callsite_filter(|meta| {
                if meta.is_event() && *meta.level() > Level::WARN && meta.fields().field(MARKER).is_some() {
                    Interest::sometimes()
                } else {
                    Interest::always()
                }
            })
            .with_max_level_hint(LevelFilter::TRACE)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use tracing_subscriber::layer::SubscriberExt;

    /// Counts the marked events that reach the output through the sampling filter.
    fn written(rate: f64, events: usize) -> (usize, usize) {
        use std::sync::Mutex;
        let out = Arc::new(Mutex::new(Vec::<u8>::new()));
        let sink = out.clone();
        let sampling = Arc::new(Sampling::new(rate));
        let layer =
            tracing_subscriber::fmt::layer().with_writer(move || WriteTo(sink.clone())).with_filter(sampling.filter());
        let subscriber = tracing_subscriber::registry().with(layer);
        tracing::subscriber::with_default(subscriber, || {
            for i in 0..events {
                tracing::info!(sampled = true, item = i, "bulk item");
            }
            tracing::warn!(sampled = true, "always kept");
        });
        let text = String::from_utf8(out.lock().unwrap().clone()).unwrap();
        (text.matches("bulk item").count(), text.matches("always kept").count())
    }

    use tracing_subscriber::Layer;

    struct WriteTo(Arc<std::sync::Mutex<Vec<u8>>>);
    impl std::io::Write for WriteTo {
        fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
            self.0.lock().unwrap().extend_from_slice(buf);
            Ok(buf.len())
        }
        fn flush(&mut self) -> std::io::Result<()> {
            Ok(())
        }
    }

    #[test]
    fn marked_events_are_kept_at_the_configured_rate_and_warnings_always() {
        assert_eq!(written(1.0, 100), (100, 1));
        assert_eq!(written(0.1, 100), (10, 1));
        assert_eq!(written(0.0, 100), (0, 1));
    }
}

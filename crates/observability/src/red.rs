//! The RED metrics of requests, through handles kept per route.
//!
//! `metrics::histogram!(name, &labels)` builds and hashes a key (three label strings) and
//! looks it up in the recorder on every call; with a handful of route templates the handles
//! are built once and reused. The map of routes is read without a lock (it only grows, by
//! copy, the first time a route answers with a new status class), so a request costs one
//! hash of its route template and the recording itself.

use arc_swap::ArcSwap;
use foldhash::fast::FixedState;
use metrics::{Counter, Histogram};
use std::collections::HashMap;
use std::sync::atomic::{AtomicI64, Ordering};
use std::time::Duration;

const METHODS: [&str; 8] = ["GET", "POST", "PUT", "DELETE", "PATCH", "HEAD", "OPTIONS", "_OTHER"];
const CLASSES: [&str; 5] = ["1xx", "2xx", "3xx", "4xx", "5xx"];

/// The handles of one (method, route, status class).
#[derive(Clone)]
struct Handles {
    duration: Histogram,
    /// Only for 4xx and 5xx.
    errors: Option<Counter>,
}

/// Every route's handles, indexed by method and status class.
type RouteHandles = [Option<Handles>; METHODS.len() * CLASSES.len()];
type Routes = HashMap<Box<str>, RouteHandles, FixedState>;

/// Requests being served by this process. A gauge handle updated per request would be two
/// contended compare-and-swap loops (one per recorder behind the fan-out); this is one atomic
/// add, published to `http_server_active_requests` when metrics are collected.
static ACTIVE: AtomicI64 = AtomicI64::new(0);

/// Sets `http_server_active_requests` to the current count (at scrape and export time).
pub fn publish_active() {
    metrics::gauge!("http_server_active_requests").set(ACTIVE.load(Ordering::Relaxed) as f64);
}

/// The RED instruments of one app, built lazily (after the recorder is installed).
#[derive(Default)]
pub struct RedMetrics {
    routes: ArcSwap<Routes>,
}

impl RedMetrics {
    pub fn new() -> Self {
        Self::default()
    }

    /// Counts a request in `http_server_active_requests` while the guard lives (also when the
    /// request is cancelled).
    pub fn in_flight(&self) -> InFlight {
        ACTIVE.fetch_add(1, Ordering::Relaxed);
        InFlight(())
    }

    /// Records one finished request: its duration, and an error for 4xx and 5xx.
    pub fn record(&self, method: &http::Method, route: &str, status: http::StatusCode, elapsed: Duration) {
        let class = usize::from(status.as_u16() / 100).clamp(1, 5) - 1;
        let method = method_index(method);
        let slot = method * CLASSES.len() + class;
        let routes = self.routes.load();
        match routes.get(route).and_then(|handles| handles[slot].as_ref()) {
            Some(handles) => handles.record(elapsed),
            None => {
                drop(routes);
                self.register(route, method, class, slot).record(elapsed);
            }
        }
    }

    fn register(&self, route: &str, method: usize, class: usize, slot: usize) -> Handles {
        let labels = [
            ("http_request_method", METHODS[method].to_owned()),
            ("http_route", route.to_owned()),
            ("http_response_status_class", CLASSES[class].to_owned()),
        ];
        let handles = Handles {
            duration: metrics::histogram!("http_server_request_duration_seconds", &labels),
            errors: (class >= 3).then(|| metrics::counter!("http_server_errors", &labels)),
        };
        self.routes.rcu(|routes| {
            let mut routes = Routes::clone(routes);
            routes.entry(route.into()).or_insert_with(|| std::array::from_fn(|_| None))[slot] = Some(handles.clone());
            routes
        });
        handles
    }
}

impl Handles {
    fn record(&self, elapsed: Duration) {
        self.duration.record(elapsed.as_secs_f64());
        if let Some(errors) = &self.errors {
            errors.increment(1);
        }
    }
}

/// Known methods as themselves; anything else as `_OTHER` (bounded label values).
fn method_index(method: &http::Method) -> usize {
    METHODS.iter().position(|known| *known == method.as_str()).filter(|&i| i < 7).unwrap_or(7)
}

/// Takes the request out of the active count when dropped.
pub struct InFlight(());

impl Drop for InFlight {
    fn drop(&mut self) {
        ACTIVE.fetch_sub(1, Ordering::Relaxed);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use metrics_util::debugging::{DebugValue, DebuggingRecorder};

    #[test]
    fn requests_are_recorded_per_method_route_and_class_with_errors_counted() {
        let recorder = DebuggingRecorder::new();
        let snapshotter = recorder.snapshotter();
        metrics::with_local_recorder(&recorder, || {
            let red = RedMetrics::new();
            let route = "/api/v1/portfolio/{portfolioId}";
            for status in [200, 200, 404] {
                let _guard = red.in_flight();
                red.record(&http::Method::GET, route, http::StatusCode::from_u16(status).unwrap(), Duration::ZERO);
            }
            red.record(&http::Method::from_bytes(b"BREW").unwrap(), route, http::StatusCode::OK, Duration::ZERO);
            publish_active();
        });
        let snapshot = snapshotter.snapshot().into_vec();
        let find = |name: &str, method: &str, class: &str| {
            snapshot.iter().find(|(key, ..)| {
                let key = key.key();
                let label = |k: &str| key.labels().find(|l| l.key() == k).map(|l| l.value().to_owned());
                key.name() == name
                    && label("http_request_method").as_deref() == Some(method)
                    && label("http_response_status_class").as_deref() == Some(class)
            })
        };
        let samples = |entry: Option<&(_, _, _, DebugValue)>| match entry.map(|e| &e.3) {
            Some(DebugValue::Histogram(values)) => values.len(),
            other => panic!("not a histogram: {other:?}"),
        };
        assert_eq!(samples(find("http_server_request_duration_seconds", "GET", "2xx")), 2);
        assert_eq!(samples(find("http_server_request_duration_seconds", "GET", "4xx")), 1);
        assert_eq!(samples(find("http_server_request_duration_seconds", "_OTHER", "2xx")), 1);
        assert!(matches!(find("http_server_errors", "GET", "4xx").map(|e| &e.3), Some(DebugValue::Counter(1))));
        assert!(find("http_server_errors", "GET", "2xx").is_none(), "successes are no errors");
        let active = snapshot.iter().find(|(key, ..)| key.key().name() == "http_server_active_requests");
        assert!(matches!(active.map(|e| &e.3), Some(DebugValue::Gauge(v)) if v.into_inner() == 0.0));
    }
}

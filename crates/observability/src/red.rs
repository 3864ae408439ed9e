//! The RED metrics of requests, kept per route without the `metrics` facade on the hot path.
//!
//! Route templates are a small, fixed set, so each gets a [`RouteMetrics`] once, kept for the
//! life of the process: a request finds its route's in a per-thread slot
//! ([`RedMetrics::global_route`]), else with one hash of the template (read without a lock), and
//! holds a plain reference to it, with no reference count to update on a line every core
//! writes. Durations go into per-thread shards ([`latency`]); `/metrics` renders them and the
//! OTLP export hands them to the SDK ([`export`]). Errors are rare and go through `metrics`.

mod export;
mod latency;

pub use export::{hand_to_otel, latency_view, render_prometheus};
pub(crate) use latency::BOUNDS as LATENCY;

use arc_swap::ArcSwap;
use foldhash::fast::FixedState;
use latency::Latency;
use metrics::Counter;
use std::cell::Cell;
use std::collections::HashMap;
use std::sync::atomic::{AtomicI64, Ordering};
use std::sync::{LazyLock, Mutex, OnceLock};
use std::time::Duration;

const METHODS: [&str; 8] = ["GET", "POST", "PUT", "DELETE", "PATCH", "HEAD", "OPTIONS", "_OTHER"];
const CLASSES: [&str; 5] = ["1xx", "2xx", "3xx", "4xx", "5xx"];

/// Requests being served, counted per thread shard like the durations (a request may end on
/// another thread than it began on: only the sum means anything).
static ACTIVE: LazyLock<Box<[PaddedCount]>> =
    LazyLock::new(|| (0..latency::shards()).map(|_| PaddedCount::default()).collect());

#[repr(align(128))]
#[derive(Default)]
struct PaddedCount(AtomicI64);

fn active(change: i64) {
    ACTIVE[latency::shard() % ACTIVE.len()].0.fetch_add(change, Ordering::Relaxed);
}

/// Sets `http_server_active_requests` to the current count (at scrape and export time).
pub fn publish_active() {
    let count: i64 = ACTIVE.iter().map(|shard| shard.0.load(Ordering::Relaxed)).sum();
    metrics::gauge!("http_server_active_requests").set(count as f64);
}

/// Counts a request in `http_server_active_requests` while the guard lives (also when the
/// request is cancelled).
pub fn in_flight() -> InFlight {
    active(1);
    InFlight(())
}

/// The RED series of one route template, by method and status class, each made the first
/// time it is used.
pub struct RouteMetrics {
    route: &'static str,
    series: [OnceLock<Series>; METHODS.len() * CLASSES.len()],
}

/// One (method, route, status class).
struct Series {
    method: usize,
    class: usize,
    latency: Latency,
    /// Only for 4xx and 5xx.
    errors: Option<Counter>,
    /// What the OTLP export has handed the SDK so far.
    handed: Mutex<Option<export::Handed>>,
}

impl RouteMetrics {
    pub fn route(&self) -> &'static str {
        self.route
    }

    /// Records one finished request: its duration, and an error for 4xx and 5xx.
    pub fn record(&self, method: &http::Method, status: http::StatusCode, elapsed: Duration) {
        let class = usize::from(status.as_u16() / 100).clamp(1, 5) - 1;
        let method = method_index(method);
        let series = self.series[method * CLASSES.len() + class].get_or_init(|| Series {
            method,
            class,
            latency: Latency::new(),
            errors: (class >= 3).then(|| {
                let labels = [
                    ("http_request_method", METHODS[method].to_owned()),
                    ("http_route", self.route.to_owned()),
                    ("http_response_status_class", CLASSES[class].to_owned()),
                ];
                metrics::counter!("http_server_errors", &labels)
            }),
            handed: Mutex::new(None),
        });
        series.latency.record(elapsed);
        if let Some(errors) = &series.errors {
            errors.increment(1);
        }
    }

    /// The series recorded so far.
    fn recorded(&self) -> impl Iterator<Item = &Series> {
        self.series.iter().filter_map(OnceLock::get)
    }
}

/// Every route template's [`RouteMetrics`] (one set per process, like the recorder).
pub struct RedMetrics {
    routes: ArcSwap<HashMap<Box<str>, &'static RouteMetrics, FixedState>>,
    /// Held while a route is added, so each is made (and kept) once.
    adding: Mutex<()>,
}

static RED: LazyLock<RedMetrics> = LazyLock::new(RedMetrics::new);

const RECENT_SLOTS: usize = 16;

thread_local! {
    static RECENT: [Cell<Option<&'static RouteMetrics>>; RECENT_SLOTS] = const { [const { Cell::new(None) }; RECENT_SLOTS] };
}

impl RedMetrics {
    pub fn global() -> &'static RedMetrics {
        &RED
    }

    /// [`Self::route`] of the global set, remembered per thread by where the template lives: a
    /// router keeps each template in one place, so a request usually finds its route's entry
    /// without hashing the template or loading the shared map (which fences).
    pub fn global_route(route: &str) -> &'static RouteMetrics {
        let slot = (route.as_ptr() as usize >> 4) % RECENT_SLOTS;
        let recent = RECENT.with(|recent| recent[slot].get());
        // Compared by content: the place of a dropped router's template may be reused.
        if let Some(found) = recent.filter(|found| found.route == route) {
            return found;
        }
        let found = RED.route(route);
        RECENT.with(|recent| recent[slot].set(Some(found)));
        found
    }

    fn new() -> Self {
        Self { routes: ArcSwap::default(), adding: Mutex::new(()) }
    }

    /// Every route's metrics, in the order of their templates.
    fn routes(&self) -> Vec<&'static RouteMetrics> {
        let mut routes: Vec<_> = self.routes.load().values().copied().collect();
        routes.sort_unstable_by_key(|route| route.route);
        routes
    }

    /// The metrics of `route`, a route template (or another label from a small, fixed set).
    pub fn route(&self, route: &str) -> &'static RouteMetrics {
        if let Some(found) = self.routes.load().get(route) {
            return found;
        }
        let _adding = self.adding.lock().unwrap_or_else(|p| p.into_inner());
        if let Some(found) = self.routes.load().get(route) {
            return found;
        }
        let added: &'static RouteMetrics = Box::leak(Box::new(RouteMetrics {
            route: Box::leak(route.into()),
            series: std::array::from_fn(|_| OnceLock::new()),
        }));
        let mut routes = HashMap::clone(&self.routes.load());
        routes.insert(route.into(), added);
        self.routes.store(routes.into());
        added
    }
}

/// Known methods as themselves; anything else as `_OTHER` (bounded label values). Compared as
/// methods, not as text: a standard method is one discriminant.
fn method_index(method: &http::Method) -> usize {
    use http::Method;
    const KNOWN: [Method; 7] =
        [Method::GET, Method::POST, Method::PUT, Method::DELETE, Method::PATCH, Method::HEAD, Method::OPTIONS];
    KNOWN.iter().position(|known| known == method).unwrap_or(KNOWN.len())
}

/// Takes the request out of the active count when dropped.
pub struct InFlight(());

impl Drop for InFlight {
    fn drop(&mut self) {
        active(-1);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use metrics_util::debugging::{DebugValue, DebuggingRecorder};

    #[test]
    fn the_global_route_is_found_by_content_wherever_its_template_lives() {
        let first = String::from("/test/global/{a}");
        let found = RedMetrics::global_route(&first);
        assert!(std::ptr::eq(found, RedMetrics::global().route(&first)));
        assert!(std::ptr::eq(found, RedMetrics::global_route(&String::from("/test/global/{a}"))));
        // The same place holding another template (as when a router is dropped and another
        // allocates where it was): found by content, not by place.
        let mut reused = first;
        reused.replace_range(.., "/test/global/{b}");
        assert_eq!(RedMetrics::global_route(&reused).route(), "/test/global/{b}");
        assert_eq!(RedMetrics::global_route("/test/global/{a}").route(), "/test/global/{a}");
    }

    #[test]
    fn methods_are_labelled_by_name_and_the_rest_as_other() {
        for name in ["GET", "POST", "PUT", "DELETE", "PATCH", "HEAD", "OPTIONS"] {
            assert_eq!(METHODS[method_index(&http::Method::from_bytes(name.as_bytes()).unwrap())], name);
        }
        for other in [http::Method::CONNECT, http::Method::TRACE, http::Method::from_bytes(b"BREW").unwrap()] {
            assert_eq!(METHODS[method_index(&other)], "_OTHER");
        }
    }

    #[test]
    fn requests_are_recorded_per_method_route_and_class_with_errors_counted() {
        let recorder = DebuggingRecorder::new();
        let snapshotter = recorder.snapshotter();
        let red = metrics::with_local_recorder(&recorder, || {
            // An instance of its own: the global one's counters belong to the global recorder.
            let red = RedMetrics::new();
            let route = "/api/v1/portfolio/{portfolioId}";
            assert!(std::ptr::eq(red.route(route), red.route(route)), "one entry per route");
            for status in [200, 200, 404] {
                let _guard = in_flight();
                red.route(route).record(
                    &http::Method::GET,
                    http::StatusCode::from_u16(status).unwrap(),
                    Duration::ZERO,
                );
            }
            red.route(route).record(&http::Method::from_bytes(b"BREW").unwrap(), http::StatusCode::OK, Duration::ZERO);
            publish_active();
            red
        });
        let counted: Vec<_> = red.routes()[0]
            .recorded()
            .map(|s| (METHODS[s.method], CLASSES[s.class], s.latency.totals().counts.iter().sum::<u64>()))
            .collect();
        assert_eq!(counted, [("GET", "2xx", 2), ("GET", "4xx", 1), ("_OTHER", "2xx", 1)]);
        let snapshot = snapshotter.snapshot().into_vec();
        let errors = |class: &str| {
            snapshot.iter().find(|(key, ..)| {
                let key = key.key();
                key.name() == "http_server_errors"
                    && key.labels().any(|l| l.key() == "http_response_status_class" && l.value() == class)
            })
        };
        assert!(matches!(errors("4xx").map(|e| &e.3), Some(DebugValue::Counter(1))));
        assert!(errors("2xx").is_none(), "successes are no errors");
        let active = snapshot.iter().find(|(key, ..)| key.key().name() == "http_server_active_requests");
        assert!(matches!(active.map(|e| &e.3), Some(DebugValue::Gauge(v)) if v.into_inner() == 0.0));
    }
}

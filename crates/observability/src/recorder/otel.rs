//! A `metrics` recorder that writes to OpenTelemetry instruments, for OTLP push.
//!
//! Names follow the OpenTelemetry conventions the Prometheus names were derived from:
//! `http_server_request_duration_seconds` becomes `http.server.request.duration` with unit `s`
//! (Prometheus's own OTLP ingestion maps it back), and the `http_*` label names become their
//! semantic-convention attributes (`http.request.method`, `http.route`).

use metrics::{
    Counter, CounterFn, Gauge, GaugeFn, Histogram, HistogramFn, Key, KeyName, Metadata, Recorder, SharedString, Unit,
};
use opentelemetry::KeyValue;
use opentelemetry::metrics::Meter;
use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, RwLock};

/// Counters and gauges only update an atomic per call; [`OtelBridge::spawn_sync`] hands their
/// values to the SDK a few times per export interval. Recording into an SDK instrument hashes
/// its attributes on every call, which for the in-flight gauge (twice per request) and the
/// cache counters was a measurable share of a cached read. Histograms need every value: each
/// is bound to its attribute set once (the SDK's bound instruments), so a value costs the
/// bucket update alone; unbound, the SDK's attribute lookup was ~1,700 instructions of every
/// request (callgrind).
#[derive(Debug)]
pub struct OtelBridge {
    meter: Meter,
    counters: Arc<RwLock<HashMap<Key, Arc<OtelCounter>>>>,
    gauges: Arc<RwLock<HashMap<Key, Arc<OtelGauge>>>>,
    histograms: RwLock<HashMap<Key, Arc<OtelHistogram>>>,
}

impl OtelBridge {
    pub fn new(meter: Meter) -> Self {
        Self { meter, counters: Arc::default(), gauges: Arc::default(), histograms: RwLock::default() }
    }

    /// Hands counter increments, gauge values and request durations to the SDK every `every`,
    /// until the runtime stops. Must run inside the tokio runtime.
    pub fn spawn_sync(&self, every: std::time::Duration) {
        let (counters, gauges, meter) = (self.counters.clone(), self.gauges.clone(), self.meter.clone());
        tokio::spawn(async move {
            let mut tick = tokio::time::interval(every);
            tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
            loop {
                tick.tick().await;
                sync(&counters, &gauges);
                // A value per request since the last turn: off the workers that serve requests.
                let meter = meter.clone();
                let _ = tokio::task::spawn_blocking(move || crate::red::hand_to_otel(&meter)).await;
            }
        });
    }
}

fn sync(counters: &RwLock<HashMap<Key, Arc<OtelCounter>>>, gauges: &RwLock<HashMap<Key, Arc<OtelGauge>>>) {
    for counter in counters.read().unwrap_or_else(|p| p.into_inner()).values() {
        let total = counter.total.load(Ordering::Relaxed);
        let synced = counter.synced.swap(total, Ordering::Relaxed);
        if total > synced {
            counter.instrument.add(total - synced, &counter.attributes);
        }
    }
    for gauge in gauges.read().unwrap_or_else(|p| p.into_inner()).values() {
        gauge.instrument.record(f64::from_bits(gauge.value.load(Ordering::Relaxed)), &gauge.attributes);
    }
}

/// `(name, unit)` in OpenTelemetry style.
fn otel_name(name: &str) -> (String, Option<&'static str>) {
    let (base, unit) = if let Some(base) = name.strip_suffix("_seconds") {
        (base, Some("s"))
    } else if let Some(base) = name.strip_suffix("_bytes") {
        (base, Some("By"))
    } else {
        (name, None)
    };
    (base.replace('_', "."), unit)
}

fn attributes(key: &Key) -> Vec<KeyValue> {
    key.labels()
        .map(|label| {
            let name = match label.key() {
                "http_request_method" => "http.request.method",
                "http_route" => "http.route",
                "http_response_status_class" => "http.response.status_class",
                "pool_name" => "pool.name",
                other => other,
            };
            KeyValue::new(name.to_owned(), label.value().to_owned())
        })
        .collect()
}

/// The handle for `key`, created once: gauges keep their value across macro calls.
fn cached<T>(map: &RwLock<HashMap<Key, Arc<T>>>, key: &Key, make: impl FnOnce() -> T) -> Arc<T> {
    if let Some(found) = map.read().unwrap_or_else(|p| p.into_inner()).get(key) {
        return found.clone();
    }
    map.write().unwrap_or_else(|p| p.into_inner()).entry(key.clone()).or_insert_with(|| Arc::new(make())).clone()
}

#[derive(Debug)]
struct OtelCounter {
    instrument: opentelemetry::metrics::Counter<u64>,
    attributes: Vec<KeyValue>,
    total: AtomicU64,
    /// How much of `total` the SDK has been given.
    synced: AtomicU64,
}

impl CounterFn for OtelCounter {
    fn increment(&self, value: u64) {
        self.total.fetch_add(value, Ordering::Relaxed);
    }

    fn absolute(&self, value: u64) {
        self.total.fetch_max(value, Ordering::Relaxed);
    }
}

#[derive(Debug)]
struct OtelGauge {
    instrument: opentelemetry::metrics::Gauge<f64>,
    attributes: Vec<KeyValue>,
    value: AtomicU64,
}

impl OtelGauge {
    fn update(&self, change: impl Fn(f64) -> f64) {
        let mut current = self.value.load(Ordering::Relaxed);
        loop {
            let next = change(f64::from_bits(current));
            match self.value.compare_exchange_weak(current, next.to_bits(), Ordering::Relaxed, Ordering::Relaxed) {
                Ok(_) => return,
                Err(actual) => current = actual,
            }
        }
    }
}

impl GaugeFn for OtelGauge {
    fn increment(&self, value: f64) {
        self.update(|v| v + value);
    }
    fn decrement(&self, value: f64) {
        self.update(|v| v - value);
    }
    fn set(&self, value: f64) {
        self.update(|_| value);
    }
}

#[derive(Debug)]
struct OtelHistogram(opentelemetry::metrics::BoundHistogram<f64>);

impl HistogramFn for OtelHistogram {
    fn record(&self, value: f64) {
        self.0.record(value);
    }
}

impl Recorder for OtelBridge {
    fn describe_counter(&self, _: KeyName, _: Option<Unit>, _: SharedString) {}
    fn describe_gauge(&self, _: KeyName, _: Option<Unit>, _: SharedString) {}
    fn describe_histogram(&self, _: KeyName, _: Option<Unit>, _: SharedString) {}

    fn register_counter(&self, key: &Key, _: &Metadata<'_>) -> Counter {
        Counter::from_arc(cached(&self.counters, key, || {
            let (name, unit) = otel_name(key.name());
            let mut builder = self.meter.u64_counter(name);
            if let Some(unit) = unit {
                builder = builder.with_unit(unit);
            }
            OtelCounter {
                instrument: builder.build(),
                attributes: attributes(key),
                total: AtomicU64::new(0),
                synced: AtomicU64::new(0),
            }
        }))
    }

    fn register_gauge(&self, key: &Key, _: &Metadata<'_>) -> Gauge {
        Gauge::from_arc(cached(&self.gauges, key, || {
            let (name, unit) = otel_name(key.name());
            let mut builder = self.meter.f64_gauge(name);
            if let Some(unit) = unit {
                builder = builder.with_unit(unit);
            }
            OtelGauge { instrument: builder.build(), attributes: attributes(key), value: AtomicU64::new(0) }
        }))
    }

    fn register_histogram(&self, key: &Key, _: &Metadata<'_>) -> Histogram {
        Histogram::from_arc(cached(&self.histograms, key, || {
            let (name, unit) = otel_name(key.name());
            let mut builder = self.meter.f64_histogram(name);
            if let Some(unit) = unit {
                builder = builder.with_unit(unit);
            }
            if unit == Some("s") {
                builder = builder.with_boundaries(crate::red::LATENCY.to_vec());
            }
            OtelHistogram(builder.build().bind(&attributes(key)))
        }))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn prometheus_style_names_become_otel_names_with_units() {
        assert_eq!(
            otel_name("http_server_request_duration_seconds"),
            ("http.server.request.duration".into(), Some("s"))
        );
        assert_eq!(otel_name("process_resident_memory_bytes"), ("process.resident.memory".into(), Some("By")));
        assert_eq!(otel_name("cache_requests"), ("cache.requests".into(), None));
    }
}

//! The request durations out of the process: as Prometheus text beside the recorder's, and into
//! the OpenTelemetry SDK for OTLP push.
//!
//! The SDK cannot take a histogram built elsewhere (its data points cannot be made outside
//! it, and it has no producer hook in 0.33), so the OTLP export replays what was recorded
//! since the last export into an SDK histogram, a few times per export interval, from one task:
//! each bucket's new requests as that many values at their mean. Bucket counts and sums are
//! exact, as on `/metrics`; single values were never kept, so the instrument reports no
//! min and max ([`latency_view`]) rather than made-up ones.

use super::latency::{BOUNDS, BUCKETS, Totals};
use super::{CLASSES, METHODS, RedMetrics, Series};
use opentelemetry::KeyValue;
use opentelemetry::metrics::{BoundHistogram, Meter};
use opentelemetry_sdk::metrics::{Aggregation, Instrument, Stream};
use std::fmt::Write;

const NAME: &str = "http_server_request_duration_seconds";
const OTEL_NAME: &str = "http.server.request.duration";

/// Appends the duration histograms of every route to a Prometheus text exposition.
pub fn render_prometheus(out: &mut String) {
    RedMetrics::global().render(out);
}

/// Hands the SDK what was recorded since the last call (see the module comment).
pub fn hand_to_otel(meter: &Meter) {
    RedMetrics::global().hand_to(meter);
}

/// The SDK stream of the request duration: this service's buckets, no min and max.
pub fn latency_view(instrument: &Instrument) -> Option<Stream> {
    if instrument.name() != OTEL_NAME {
        return None;
    }
    let aggregation = Aggregation::ExplicitBucketHistogram { boundaries: BOUNDS.to_vec(), record_min_max: false };
    Stream::builder().with_aggregation(aggregation).build().ok()
}

/// What one series has handed the SDK.
pub(super) struct Handed {
    instrument: BoundHistogram<f64>,
    totals: Totals,
}

impl RedMetrics {
    fn render(&self, out: &mut String) {
        let routes = self.routes();
        if routes.iter().all(|route| route.recorded().next().is_none()) {
            return;
        }
        let _ = writeln!(out, "# HELP {NAME} Duration of HTTP requests, by route template, method and status class.");
        let _ = writeln!(out, "# TYPE {NAME} histogram");
        for route in routes {
            for series in route.recorded() {
                let labels = format!(
                    "http_request_method=\"{}\",http_route=\"{}\",http_response_status_class=\"{}\"",
                    METHODS[series.method],
                    escape(route.route),
                    CLASSES[series.class]
                );
                let totals = series.latency.totals();
                let mut count = 0;
                for (bucket, bucket_count) in totals.counts.iter().enumerate() {
                    count += bucket_count;
                    let _ = match BOUNDS.get(bucket) {
                        Some(bound) => writeln!(out, "{NAME}_bucket{{{labels},le=\"{bound}\"}} {count}"),
                        None => writeln!(out, "{NAME}_bucket{{{labels},le=\"+Inf\"}} {count}"),
                    };
                }
                let seconds = totals.sums.iter().fold(0u64, |sum, s| sum.wrapping_add(*s)) as f64 / 1e9;
                let _ = writeln!(out, "{NAME}_sum{{{labels}}} {seconds}");
                let _ = writeln!(out, "{NAME}_count{{{labels}}} {count}");
            }
        }
    }

    fn hand_to(&self, meter: &Meter) {
        for route in self.routes() {
            for series in route.recorded() {
                let mut handed = series.handed.lock().unwrap_or_else(|p| p.into_inner());
                let handed = handed.get_or_insert_with(|| Handed {
                    instrument: instrument(meter).bind(&attributes(route.route, series)),
                    totals: Totals::default(),
                });
                let totals = series.latency.totals();
                for bucket in 0..BUCKETS {
                    let count = totals.counts[bucket] - handed.totals.counts[bucket];
                    if count == 0 {
                        continue;
                    }
                    let nanos = totals.sums[bucket].wrapping_sub(handed.totals.sums[bucket]);
                    let mean = in_bucket(bucket, nanos as f64 / count as f64 / 1e9);
                    for _ in 0..count {
                        handed.instrument.record(mean);
                    }
                }
                handed.totals = totals;
            }
        }
    }
}

fn instrument(meter: &Meter) -> opentelemetry::metrics::Histogram<f64> {
    meter.f64_histogram(OTEL_NAME).with_unit("s").with_boundaries(BOUNDS.to_vec()).build()
}

fn attributes(route: &'static str, series: &Series) -> [KeyValue; 3] {
    [
        KeyValue::new("http.request.method", METHODS[series.method]),
        KeyValue::new("http.route", route),
        KeyValue::new("http.response.status_class", CLASSES[series.class]),
    ]
}

/// `value` moved inside the bucket, bounds included as the SDK counts them (`le`): a sum read
/// a moment before its count (see `Latency::totals`) can put a mean just outside.
fn in_bucket(bucket: usize, value: f64) -> f64 {
    let lowest = bucket.checked_sub(1).map_or(0.0, |below| BOUNDS[below].next_up());
    let highest = BOUNDS.get(bucket).copied().unwrap_or(f64::MAX);
    value.clamp(lowest, highest)
}

/// A label value in the text format: backslash, double quote and line feed escaped.
fn escape(value: &str) -> std::borrow::Cow<'_, str> {
    if !value.contains(['\\', '"', '\n']) {
        return value.into();
    }
    value.replace('\\', r"\\").replace('"', "\\\"").replace('\n', r"\n").into()
}

#[cfg(test)]
mod tests {
    use super::*;
    use opentelemetry::metrics::MeterProvider;
    use opentelemetry_sdk::metrics::data::{AggregatedMetrics, MetricData};
    use opentelemetry_sdk::metrics::{InMemoryMetricExporter, PeriodicReader, SdkMeterProvider};
    use std::time::Duration;

    fn requests(red: &RedMetrics) {
        let route = red.route("/api/v1/portfolio/{portfolioId}");
        for (status, millis) in [(200, 1), (200, 3), (200, 4), (404, 40)] {
            route.record(
                &http::Method::GET,
                http::StatusCode::from_u16(status).unwrap(),
                Duration::from_millis(millis),
            );
        }
        red.route("/odd \"route\"\\").record(&http::Method::POST, http::StatusCode::OK, Duration::from_secs(60));
    }

    #[test]
    fn durations_render_as_cumulative_prometheus_histograms_that_a_parser_reads() {
        let red = RedMetrics::new();
        let mut text = String::new();
        red.render(&mut text);
        assert!(text.is_empty(), "nothing recorded, nothing rendered: {text}");
        requests(&red);
        red.render(&mut text);
        let scrape = openmetrics_parser::prometheus::parse_prometheus(&text).expect("valid exposition format");
        let family = &scrape.families[NAME];
        let mut found = Vec::new();
        for sample in family.iter_samples() {
            let labels = sample.get_labelset().unwrap();
            let label = |name: &str| labels.get_label_value(name).unwrap_or_default().to_owned();
            let openmetrics_parser::PrometheusValue::Histogram(histogram) = &sample.value else {
                panic!("not a histogram: {sample:?}")
            };
            let buckets: Vec<_> = histogram.buckets.iter().map(|b| (b.upper_bound, b.count.as_f64())).collect();
            let sum = histogram.sum.as_ref().map(|s| s.as_f64());
            found.push((label("http_route"), label("http_response_status_class"), histogram.count, sum, buckets));
        }
        let route = "/api/v1/portfolio/{portfolioId}".to_owned();
        let (_, _, count, sum, buckets) = found.iter().find(|f| f.0 == route && f.1 == "2xx").expect("GET 2xx");
        assert_eq!(*count, Some(3));
        assert!((sum.unwrap() - 0.008).abs() < 1e-9, "{sum:?}");
        assert!(buckets.contains(&(0.001, 1.0)) && buckets.contains(&(0.0025, 1.0)) && buckets.contains(&(0.005, 3.0)));
        assert!(buckets.contains(&(f64::INFINITY, 3.0)), "{buckets:?}");
        assert_eq!(found.iter().find(|f| f.0 == route && f.1 == "4xx").map(|f| f.2), Some(Some(1)));
        let odd = found.iter().find(|f| f.0 == "/odd \"route\"\\").expect("an escaped label reads back as it was");
        assert_eq!(odd.4.iter().find(|b| b.0 == 30.0).map(|b| b.1), Some(0.0), "60 s is above every bound");
    }

    #[test]
    fn the_sdk_receives_exact_bucket_counts_and_sums_once_each_without_min_and_max() {
        let exporter = InMemoryMetricExporter::default();
        let provider = SdkMeterProvider::builder()
            .with_reader(PeriodicReader::builder(exporter.clone()).build())
            .with_view(latency_view)
            .build();
        let meter = provider.meter("test");
        let red = RedMetrics::new();
        requests(&red);
        red.hand_to(&meter);
        red.hand_to(&meter); // nothing new: nothing handed twice
        provider.force_flush().unwrap();
        let exported = exporter.get_finished_metrics().unwrap();
        let metric = exported
            .iter()
            .flat_map(|r| r.scope_metrics())
            .flat_map(|s| s.metrics())
            .find(|m| m.name() == OTEL_NAME)
            .expect("the duration histogram is exported");
        assert_eq!(metric.unit(), "s");
        let AggregatedMetrics::F64(MetricData::Histogram(histogram)) = metric.data() else {
            panic!("not an f64 histogram: {metric:?}")
        };
        let get_2xx = histogram
            .data_points()
            .find(|p| {
                p.attributes().any(|a| a.key.as_str() == "http.response.status_class" && a.value.as_str() == "2xx")
                    && p.attributes().any(|a| a.key.as_str() == "http.request.method" && a.value.as_str() == "GET")
            })
            .expect("GET 2xx");
        assert_eq!(get_2xx.count(), 3);
        assert!((get_2xx.sum() - 0.008).abs() < 1e-9, "{}", get_2xx.sum());
        assert_eq!(get_2xx.bounds().collect::<Vec<_>>(), BOUNDS.to_vec());
        let counts: Vec<u64> = get_2xx.bucket_counts().collect();
        assert_eq!((counts[1], counts[2], counts[3]), (1, 0, 2), "1 ms, then 3 and 4 ms: {counts:?}");
        assert_eq!((get_2xx.min(), get_2xx.max()), (None, None));
        assert_eq!(histogram.data_points().count(), 3, "GET 2xx, GET 4xx, POST 2xx");
    }

    #[test]
    fn a_mean_is_kept_inside_its_bucket() {
        assert_eq!(in_bucket(1, 0.0004), 0.0005f64.next_up(), "above the bucket below");
        assert_eq!(in_bucket(1, 0.002), 0.001);
        assert_eq!(in_bucket(0, 0.0003), 0.0003);
        assert_eq!(in_bucket(BUCKETS - 1, 60.0), 60.0);
    }
}

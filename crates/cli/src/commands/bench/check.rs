//! `bench run --check`: the performance gate. A run passes when every level stays within the
//! thresholds; the test command (`scripts/perf-gate.sh`) runs it against the release binary,
//! so a real regression fails the build.
//!
//! The latency, error and cache figures are the original service's stated targets. The
//! throughput floors are an order of magnitude below what this service measured
//! (docs/BENCHMARKS.md), low enough that a busy CI machine does not trip them and high enough
//! that losing the cache, a connection pool or an index does.

use super::Scenario;
use super::load::RunResult;

/// The limits one run is held to.
#[derive(Debug, Clone, PartialEq)]
pub struct Thresholds {
    /// p95 latency must stay below this.
    pub max_p95_ms: f64,
    /// Errors (non-2xx/3xx or no answer) over requests must stay below this.
    pub max_error_rate: f64,
    /// The mixed scenario's cache hit rate must stay above this (it must be measured).
    pub min_mixed_hit_rate: f64,
    /// Requests per second must stay above this.
    pub min_throughput_rps: f64,
}

impl Thresholds {
    /// The gate for `scenario`; `min_throughput_rps` overrides the scenario's own floor and
    /// `min_mixed_hit_rate` the original's 80%.
    pub fn for_scenario(scenario: Scenario, min_throughput_rps: Option<f64>, min_mixed_hit_rate: Option<f64>) -> Self {
        Self {
            max_p95_ms: 200.0,
            max_error_rate: 0.01,
            min_mixed_hit_rate: min_mixed_hit_rate.unwrap_or(0.80),
            min_throughput_rps: min_throughput_rps.unwrap_or_else(|| floor(scenario)),
        }
    }

    /// Every threshold `result` crosses, one line each; empty when it passes.
    pub fn breaches(&self, result: &RunResult) -> Vec<String> {
        let mut breaches = Vec::new();
        let p95 = result.latency_ms.p95;
        if p95.is_nan() || p95 >= self.max_p95_ms {
            breaches.push(format!("p95 {p95:.2} ms is not under {} ms", self.max_p95_ms));
        }
        if result.requests == 0 {
            breaches.push("no request was measured".to_owned());
        } else if result.error_rate >= self.max_error_rate {
            breaches.push(format!(
                "error rate {:.2}% ({} of {}) is not under {:.2}%",
                result.error_rate * 100.0,
                result.errors,
                result.requests,
                self.max_error_rate * 100.0
            ));
        }
        if result.scenario == Scenario::Mixed {
            match result.cache_hit_rate {
                Some(rate) if rate > self.min_mixed_hit_rate => {}
                Some(rate) => breaches.push(format!(
                    "cache hit rate {:.1}% is not over {:.0}%",
                    rate * 100.0,
                    self.min_mixed_hit_rate * 100.0
                )),
                None => breaches.push("cache hit rate not measured (is the cache on?)".to_owned()),
            }
        }
        if result.throughput_rps.is_nan() || result.throughput_rps <= self.min_throughput_rps {
            breaches.push(format!(
                "throughput {:.0} req/s is not over the floor of {:.0} req/s",
                result.throughput_rps, self.min_throughput_rps
            ));
        }
        breaches
    }
}

/// Requests per second a scenario must exceed: a tenth of the lowest figure measured for it
/// (SQLite with the cache off, 100,000 portfolios, 16 connections, on a shared 2-core machine;
/// docs/BENCHMARKS.md), so only a regression of an order of magnitude fails.
fn floor(scenario: Scenario) -> f64 {
    match scenario {
        Scenario::Baseline | Scenario::Health => 5_000.0,
        Scenario::GetById => 1_500.0,
        Scenario::SearchPage => 300.0,
        Scenario::PageRandom => 150.0,
        Scenario::SearchName => 800.0,
        Scenario::Bulk10 => 150.0,
        Scenario::Mixed => 800.0,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::commands::bench::load::{Latency, RunResult};

    fn passing(scenario: Scenario) -> RunResult {
        RunResult {
            label: String::new(),
            scenario,
            concurrency: 4,
            requests: 10_000,
            errors: 0,
            elapsed_s: 2.0,
            throughput_rps: 5_000.0,
            error_rate: 0.0,
            cache_hit_rate: Some(0.95),
            latency_ms: Latency { p50: 0.5, p90: 1.0, p95: 2.0, p99: 5.0, p999: 9.0, max: 20.0, mean: 0.6 },
            percentiles: Vec::new(),
            client_cpu_cores: None,
        }
    }

    fn gate(scenario: Scenario) -> Thresholds {
        Thresholds::for_scenario(scenario, Some(1_000.0), None)
    }

    #[test]
    fn a_run_within_every_threshold_passes() {
        for scenario in [Scenario::GetById, Scenario::Mixed, Scenario::Bulk10] {
            assert_eq!(gate(scenario).breaches(&passing(scenario)), Vec::<String>::new());
        }
    }

    #[test]
    fn each_breached_threshold_fails_the_run() {
        let mut slow = passing(Scenario::GetById);
        slow.latency_ms.p95 = 200.0;
        let mut failing = passing(Scenario::GetById);
        (failing.errors, failing.error_rate) = (100, 0.01);
        let mut cold = passing(Scenario::Mixed);
        cold.cache_hit_rate = Some(0.80);
        let mut uncounted = passing(Scenario::Mixed);
        uncounted.cache_hit_rate = None;
        let mut crawling = passing(Scenario::GetById);
        crawling.throughput_rps = 999.0;
        let mut empty = passing(Scenario::GetById);
        empty.requests = 0;
        for (run, expected) in [
            (slow, "p95 200.00 ms"),
            (failing, "error rate 1.00%"),
            (cold, "cache hit rate 80.0%"),
            (uncounted, "cache hit rate not measured"),
            (crawling, "throughput 999 req/s"),
            (empty, "no request was measured"),
        ] {
            let breaches = gate(run.scenario).breaches(&run);
            assert_eq!(breaches.len(), 1, "{breaches:?}");
            assert!(breaches[0].starts_with(expected), "{breaches:?}");
        }
    }

    #[test]
    fn the_hit_rate_applies_to_the_mixed_scenario_only() {
        let mut run = passing(Scenario::GetById);
        run.cache_hit_rate = None;
        assert!(gate(Scenario::GetById).breaches(&run).is_empty());
    }

    #[test]
    fn floors_are_per_scenario_unless_overridden() {
        assert_eq!(Thresholds::for_scenario(Scenario::GetById, None, None).min_throughput_rps, 1_500.0);
        assert_eq!(Thresholds::for_scenario(Scenario::Bulk10, None, None).min_throughput_rps, 150.0);
        assert_eq!(Thresholds::for_scenario(Scenario::Bulk10, Some(7.0), None).min_throughput_rps, 7.0);
        assert_eq!(Thresholds::for_scenario(Scenario::Mixed, None, None).min_mixed_hit_rate, 0.80);
        assert_eq!(Thresholds::for_scenario(Scenario::Mixed, None, Some(0.7)).min_mixed_hit_rate, 0.7);
    }
}

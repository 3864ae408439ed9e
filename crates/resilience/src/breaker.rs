//! The breaker's state machine, on atomics so that checking it costs one load when closed.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU8, AtomicU32, AtomicU64, Ordering};
use std::time::{Duration, Instant};

/// When a breaker opens and for how long.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct BreakerSettings {
    /// Consecutive failures that open the breaker. Consecutive rather than a rate over a
    /// window: a dependency that is down fails every call, and a healthy one under load that
    /// fails now and then should not be cut off.
    pub failure_threshold: u32,
    /// How long the breaker stays open before it lets one probe through.
    pub open_for: Duration,
}

impl Default for BreakerSettings {
    fn default() -> Self {
        Self { failure_threshold: 5, open_for: Duration::from_secs(2) }
    }
}

/// Where a breaker is. The discriminants are the values of the `circuit_breaker_state` gauge.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[repr(u8)]
pub enum BreakerState {
    /// Calls go through; failures are counted.
    Closed = 0,
    /// Calls are refused until `open_for` has passed.
    Open = 1,
    /// One probe call is in flight or allowed; everything else is refused.
    HalfOpen = 2,
}

impl BreakerState {
    fn from_u8(value: u8) -> Self {
        match value {
            0 => Self::Closed,
            1 => Self::Open,
            _ => Self::HalfOpen,
        }
    }

    /// The label value used in logs and metrics.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Closed => "closed",
            Self::Open => "open",
            Self::HalfOpen => "half_open",
        }
    }
}

/// A circuit breaker for one dependency. Cheap to clone; clones share the state.
#[derive(Clone, Debug)]
pub struct CircuitBreaker {
    inner: Arc<Inner>,
}

#[derive(Debug)]
struct Inner {
    dependency: &'static str,
    settings: BreakerSettings,
    state: AtomicU8,
    consecutive_failures: AtomicU32,
    /// When the breaker last opened, in milliseconds since `epoch`.
    opened_at_ms: AtomicU64,
    probe_in_flight: AtomicBool,
    epoch: Instant,
}

/// Permission to make one call. Report its outcome with [`Ticket::success`] or
/// [`Ticket::failure`]; dropping it reports nothing (a cancelled call says nothing about the
/// dependency), but frees the probe slot if it held it.
#[derive(Debug)]
#[must_use = "report the call's outcome, or the breaker learns nothing from it"]
pub struct Ticket {
    breaker: CircuitBreaker,
    probe: bool,
    reported: bool,
}

impl CircuitBreaker {
    /// A closed breaker for `dependency` (`database`, `redis`, `otlp`: the metric label).
    pub fn new(dependency: &'static str, settings: BreakerSettings) -> Self {
        let breaker = Self {
            inner: Arc::new(Inner {
                dependency,
                settings,
                state: AtomicU8::new(BreakerState::Closed as u8),
                consecutive_failures: AtomicU32::new(0),
                opened_at_ms: AtomicU64::new(0),
                probe_in_flight: AtomicBool::new(false),
                epoch: Instant::now(),
            }),
        };
        breaker.export_state(BreakerState::Closed);
        breaker
    }

    pub fn dependency(&self) -> &'static str {
        self.inner.dependency
    }

    pub fn state(&self) -> BreakerState {
        BreakerState::from_u8(self.inner.state.load(Ordering::Acquire))
    }

    /// Asks to make a call: `None` means fail fast, the dependency is presumed down.
    pub fn allow(&self) -> Option<Ticket> {
        match self.state() {
            BreakerState::Closed => Some(self.ticket(false)),
            BreakerState::Open => {
                if self.open_remaining().is_some() {
                    return None;
                }
                // Whoever moves Open -> HalfOpen makes the probe; the others stay refused.
                self.transition(BreakerState::Open, BreakerState::HalfOpen).then(|| {
                    self.inner.probe_in_flight.store(true, Ordering::Release);
                    self.ticket(true)
                })
            }
            BreakerState::HalfOpen => self
                .inner
                .probe_in_flight
                .compare_exchange(false, true, Ordering::AcqRel, Ordering::Acquire)
                .is_ok()
                .then(|| self.ticket(true)),
        }
    }

    /// How long a refused caller should wait before trying again (for `Retry-After`):
    /// `None` while closed.
    pub fn retry_after(&self) -> Option<Duration> {
        match self.state() {
            BreakerState::Closed => None,
            BreakerState::Open => Some(self.open_remaining().unwrap_or(Duration::ZERO)),
            BreakerState::HalfOpen => Some(self.inner.settings.open_for),
        }
    }

    fn ticket(&self, probe: bool) -> Ticket {
        Ticket { breaker: self.clone(), probe, reported: false }
    }

    fn now_ms(&self) -> u64 {
        u64::try_from(self.inner.epoch.elapsed().as_millis()).unwrap_or(u64::MAX)
    }

    /// Time left before an open breaker may probe; `None` once it may.
    fn open_remaining(&self) -> Option<Duration> {
        let open_for = u64::try_from(self.inner.settings.open_for.as_millis()).unwrap_or(u64::MAX);
        let elapsed = self.now_ms().saturating_sub(self.inner.opened_at_ms.load(Ordering::Acquire));
        (elapsed < open_for).then(|| Duration::from_millis(open_for - elapsed))
    }

    fn on_success(&self, probe: bool) {
        self.inner.consecutive_failures.store(0, Ordering::Release);
        if probe {
            self.transition(BreakerState::HalfOpen, BreakerState::Closed);
            self.inner.probe_in_flight.store(false, Ordering::Release);
        }
    }

    fn on_failure(&self, probe: bool) {
        if probe {
            self.open_from(BreakerState::HalfOpen);
            self.inner.probe_in_flight.store(false, Ordering::Release);
            return;
        }
        let failures = self.inner.consecutive_failures.fetch_add(1, Ordering::AcqRel).saturating_add(1);
        if failures >= self.inner.settings.failure_threshold {
            self.open_from(BreakerState::Closed);
        }
    }

    fn open_from(&self, from: BreakerState) {
        // The timestamp goes first so that no caller sees Open with a stale opening time.
        self.inner.opened_at_ms.store(self.now_ms(), Ordering::Release);
        if self.transition(from, BreakerState::Open) {
            self.inner.consecutive_failures.store(0, Ordering::Release);
        }
    }

    /// Moves `from` -> `to` if the breaker is still in `from`; true if this call moved it.
    fn transition(&self, from: BreakerState, to: BreakerState) -> bool {
        let moved =
            self.inner.state.compare_exchange(from as u8, to as u8, Ordering::AcqRel, Ordering::Acquire).is_ok();
        if moved {
            let dependency = self.inner.dependency;
            match to {
                BreakerState::Open => {
                    tracing::warn!(dependency, open_for = ?self.inner.settings.open_for, "circuit breaker opened")
                }
                BreakerState::HalfOpen => tracing::info!(dependency, "circuit breaker half-open: probing"),
                BreakerState::Closed => tracing::info!(dependency, "circuit breaker closed: dependency recovered"),
            }
            metrics::counter!("circuit_breaker_transitions", "dependency" => dependency, "to" => to.as_str())
                .increment(1);
            self.export_state(to);
        }
        moved
    }

    fn export_state(&self, state: BreakerState) {
        metrics::gauge!("circuit_breaker_state", "dependency" => self.inner.dependency).set(f64::from(state as u8));
    }
}

impl Ticket {
    /// The call succeeded: the dependency answered (even with an error of the caller's making).
    pub fn success(mut self) {
        self.reported = true;
        self.breaker.on_success(self.probe);
    }

    /// The call failed because of the dependency (unreachable, timed out, overloaded).
    pub fn failure(mut self) {
        self.reported = true;
        self.breaker.on_failure(self.probe);
    }
}

impl Drop for Ticket {
    fn drop(&mut self) {
        if self.probe && !self.reported {
            self.breaker.inner.probe_in_flight.store(false, Ordering::Release);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn breaker(failure_threshold: u32, open_for: Duration) -> CircuitBreaker {
        CircuitBreaker::new("test", BreakerSettings { failure_threshold, open_for })
    }

    const LONG: Duration = Duration::from_secs(3600);

    fn fail(breaker: &CircuitBreaker, times: u32) {
        for _ in 0..times {
            breaker.allow().expect("admitted").failure();
        }
    }

    #[test]
    fn opens_after_consecutive_failures_and_refuses() {
        let breaker = breaker(3, LONG);
        fail(&breaker, 2);
        assert_eq!(breaker.state(), BreakerState::Closed);
        fail(&breaker, 1);
        assert_eq!(breaker.state(), BreakerState::Open);
        assert!(breaker.allow().is_none());
        let wait = breaker.retry_after().expect("open breakers say how long");
        assert!(wait > Duration::from_secs(3500) && wait <= LONG, "{wait:?}");
    }

    #[test]
    fn a_success_resets_the_failure_count() {
        let breaker = breaker(3, LONG);
        fail(&breaker, 2);
        breaker.allow().unwrap().success();
        fail(&breaker, 2);
        assert_eq!(breaker.state(), BreakerState::Closed);
        assert_eq!(breaker.retry_after(), None);
    }

    #[test]
    fn after_open_for_exactly_one_probe_is_admitted() {
        let breaker = breaker(1, Duration::ZERO);
        fail(&breaker, 1);
        assert_eq!(breaker.state(), BreakerState::Open);
        let probe = breaker.allow().expect("the probe");
        assert_eq!(breaker.state(), BreakerState::HalfOpen);
        assert!(breaker.allow().is_none(), "a second caller must wait for the probe");
        probe.success();
        assert_eq!(breaker.state(), BreakerState::Closed);
        assert!(breaker.allow().is_some());
    }

    #[test]
    fn a_failed_probe_opens_again() {
        let breaker = breaker(1, Duration::ZERO);
        fail(&breaker, 1);
        breaker.allow().expect("the probe").failure();
        assert_eq!(breaker.state(), BreakerState::Open);
    }

    #[test]
    fn a_dropped_probe_frees_the_slot() {
        let breaker = breaker(1, Duration::ZERO);
        fail(&breaker, 1);
        drop(breaker.allow().expect("the probe"));
        assert_eq!(breaker.state(), BreakerState::HalfOpen);
        assert!(breaker.allow().is_some(), "the next caller probes instead");
    }

    #[test]
    fn late_successes_of_calls_admitted_while_closed_do_not_close_an_open_breaker() {
        let breaker = breaker(1, LONG);
        let slow = breaker.allow().unwrap();
        fail(&breaker, 1);
        slow.success();
        assert_eq!(breaker.state(), BreakerState::Open);
    }

    #[test]
    fn state_and_transitions_are_exported_as_metrics() {
        use metrics_util::debugging::{DebugValue, DebuggingRecorder};
        let recorder = DebuggingRecorder::new();
        let snapshotter = recorder.snapshotter();
        metrics::with_local_recorder(&recorder, || {
            let breaker = breaker(1, LONG);
            fail(&breaker, 1);
        });
        let metrics = snapshotter.snapshot().into_vec();
        let value = |name: &str| {
            metrics
                .iter()
                .find(|(key, ..)| key.key().name() == name)
                .map(|(.., value)| value)
                .unwrap_or_else(|| panic!("{name} not recorded"))
        };
        assert_eq!(value("circuit_breaker_state"), &DebugValue::Gauge(1.0.into()));
        assert_eq!(value("circuit_breaker_transitions"), &DebugValue::Counter(1));
    }
}

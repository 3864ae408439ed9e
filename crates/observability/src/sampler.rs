//! The head sampler of requests, whose trace-id ratio is a runtime flag.
//!
//! Consulted once per request before any span exists (see [`crate::http::RequestTrace`]); the
//! SDK itself samples everything that reaches it. The ratio samplers decide here, by the
//! SDK's own rule (the low 63 bits of the trace id against the ratio): through the SDK's
//! `ShouldSample` the decision took a context filter, a boxed delegate and a result with
//! vectors, for every request.

use opentelemetry::Context;
use opentelemetry::trace::{SpanKind, TraceContextExt, TraceId};
use opentelemetry_sdk::trace::{Sampler, SamplingDecision, ShouldSample};
use std::sync::OnceLock;
use std::sync::atomic::{AtomicU64, Ordering};

/// The ratio in force, as `f64` bits; one per process, like the tracer provider.
static RATIO: AtomicU64 = AtomicU64::new(0x3FF0_0000_0000_0000); // 1.0

pub(crate) fn set_ratio(ratio: f64) {
    RATIO.store(ratio.clamp(0.0, 1.0).to_bits(), Ordering::Relaxed);
}

fn ratio() -> f64 {
    f64::from_bits(RATIO.load(Ordering::Relaxed))
}

static HEAD: OnceLock<Configured> = OnceLock::new();

pub(crate) fn install(sampler: Configured) {
    let _ = HEAD.set(sampler);
}

/// Whether a request with this parent context (possibly a remote one) starts a sampled trace.
pub(crate) fn sample_request(parent: &Context, trace_id: TraceId) -> bool {
    HEAD.get().is_some_and(|sampler| sampler.samples(parent, trace_id, ratio()))
}

/// The sampler `OTEL_TRACES_SAMPLER` (or `observability.trace_sampler`) names.
#[derive(Clone, Debug)]
pub(crate) enum Configured {
    /// `always_on`, `always_off` and their parent-based forms.
    Sdk(Sampler),
    /// `traceidratio`: the ratio, whatever the parent decided.
    Ratio,
    /// `parentbased_traceidratio`, the default: the parent's decision, else the ratio.
    ParentRatio,
}

impl Configured {
    pub(crate) fn from_name(name: &str) -> Self {
        match name {
            "always_on" => Self::Sdk(Sampler::AlwaysOn),
            "always_off" => Self::Sdk(Sampler::AlwaysOff),
            "traceidratio" => Self::Ratio,
            "parentbased_always_on" => Self::Sdk(Sampler::ParentBased(Box::new(Sampler::AlwaysOn))),
            "parentbased_always_off" => Self::Sdk(Sampler::ParentBased(Box::new(Sampler::AlwaysOff))),
            _ => Self::ParentRatio,
        }
    }

    fn samples(&self, parent: &Context, trace_id: TraceId, ratio: f64) -> bool {
        match self {
            Self::Sdk(sampler) => {
                let result = sampler.should_sample(Some(parent), trace_id, "request", &SpanKind::Server, &[], &[]);
                matches!(result.decision, SamplingDecision::RecordAndSample)
            }
            Self::Ratio => ratio_keeps(trace_id, ratio),
            Self::ParentRatio if parent.has_active_span() => parent.span().span_context().is_sampled(),
            Self::ParentRatio => ratio_keeps(trace_id, ratio),
        }
    }
}

/// The SDK's `TraceIdRatioBased` rule, so that every service sampling by trace id at the same
/// ratio keeps the same traces.
fn ratio_keeps(trace_id: TraceId, ratio: f64) -> bool {
    if ratio >= 1.0 {
        return true;
    }
    let bound = (ratio.max(0.0) * (1u64 << 63) as f64) as u64;
    (u128::from_be_bytes(trace_id.to_bytes()) as u64 >> 1) < bound
}

#[cfg(test)]
mod tests {
    use super::*;
    use opentelemetry::trace::{SpanContext, TraceFlags, TraceState};
    use opentelemetry_sdk::trace::{IdGenerator, RandomIdGenerator};

    fn sdk_samples(sampler: &Sampler, parent: &Context, trace_id: TraceId) -> bool {
        let result = sampler.should_sample(Some(parent), trace_id, "request", &SpanKind::Server, &[], &[]);
        matches!(result.decision, SamplingDecision::RecordAndSample)
    }

    fn remote_parent(sampled: bool) -> Context {
        let flags = if sampled { TraceFlags::SAMPLED } else { TraceFlags::default() };
        let ids = RandomIdGenerator::default();
        let span = SpanContext::new(ids.new_trace_id(), ids.new_span_id(), flags, true, TraceState::default());
        Context::new().with_remote_span_context(span)
    }

    #[test]
    fn the_ratio_samplers_decide_as_the_sdks_do() {
        let ids = RandomIdGenerator::default();
        let parents = [Context::new(), remote_parent(true), remote_parent(false)];
        let mut kept = 0;
        for ratio in [0.0, 0.01, 0.3, 0.5, 1.0] {
            let ratio_sdk = Sampler::TraceIdRatioBased(ratio);
            let parent_sdk = Sampler::ParentBased(Box::new(Sampler::TraceIdRatioBased(ratio)));
            for _ in 0..2_000 {
                let trace_id = ids.new_trace_id();
                for parent in &parents {
                    let ours = Configured::Ratio.samples(parent, trace_id, ratio);
                    assert_eq!(ours, sdk_samples(&ratio_sdk, parent, trace_id), "ratio {ratio}");
                    let ours = Configured::ParentRatio.samples(parent, trace_id, ratio);
                    assert_eq!(ours, sdk_samples(&parent_sdk, parent, trace_id), "parent-based {ratio}");
                    kept += usize::from(ours);
                }
            }
        }
        // Neither everything nor nothing: the comparison covered both decisions.
        assert!(kept > 0 && kept < 5 * 2_000 * 3);
    }

    #[test]
    fn a_callers_decision_is_followed_whatever_the_ratio() {
        let trace_id = RandomIdGenerator::default().new_trace_id();
        assert!(Configured::ParentRatio.samples(&remote_parent(true), trace_id, 0.0));
        assert!(!Configured::ParentRatio.samples(&remote_parent(false), trace_id, 1.0));
        assert!(Configured::Ratio.samples(&remote_parent(false), trace_id, 1.0));
    }
}

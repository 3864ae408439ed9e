//! A trace-id ratio sampler whose ratio is a runtime flag.

use opentelemetry::trace::{Link, SpanKind, TraceId};
use opentelemetry::{Context, KeyValue};
use opentelemetry_sdk::trace::{Sampler, SamplingResult, ShouldSample};
use std::sync::OnceLock;
use std::sync::atomic::{AtomicU64, Ordering};

/// The ratio in force, as `f64` bits; one per process, like the tracer provider.
static RATIO: AtomicU64 = AtomicU64::new(0x3FF0_0000_0000_0000); // 1.0

pub(crate) fn set_ratio(ratio: f64) {
    RATIO.store(ratio.clamp(0.0, 1.0).to_bits(), Ordering::Relaxed);
}

pub(crate) fn ratio() -> f64 {
    f64::from_bits(RATIO.load(Ordering::Relaxed))
}

#[derive(Clone, Debug)]
pub(crate) struct DynamicRatio;

impl ShouldSample for DynamicRatio {
    fn should_sample(
        &self,
        parent: Option<&Context>,
        trace_id: TraceId,
        name: &str,
        kind: &SpanKind,
        attributes: &[KeyValue],
        links: &[Link],
    ) -> SamplingResult {
        Sampler::TraceIdRatioBased(ratio()).should_sample(parent, trace_id, name, kind, attributes, links)
    }
}

/// The configured sampler, consulted once per request before any span exists (see
/// [`crate::http::request_span`]); the SDK itself samples everything that reaches it.
static HEAD: OnceLock<Configured> = OnceLock::new();

pub(crate) fn install(sampler: Configured) {
    let _ = HEAD.set(sampler);
}

/// Whether a request with this parent context (possibly a remote one) starts a sampled trace.
pub(crate) fn sample_request(parent: &Context, trace_id: TraceId) -> bool {
    let Some(sampler) = HEAD.get() else { return false };
    let result = sampler.should_sample(Some(parent), trace_id, "request", &SpanKind::Server, &[], &[]);
    matches!(result.decision, opentelemetry_sdk::trace::SamplingDecision::RecordAndSample)
}

/// The sampler `OTEL_TRACES_SAMPLER` (or `observability.trace_sampler`) names.
#[derive(Clone, Debug)]
pub(crate) enum Configured {
    Sdk(Sampler),
    Ratio(DynamicRatio),
}

impl Configured {
    pub(crate) fn from_name(name: &str) -> Self {
        let parent_based = |root: Box<dyn ShouldSample>| Self::Sdk(Sampler::ParentBased(root));
        match name {
            "always_on" => Self::Sdk(Sampler::AlwaysOn),
            "always_off" => Self::Sdk(Sampler::AlwaysOff),
            "traceidratio" => Self::Ratio(DynamicRatio),
            "parentbased_always_on" => parent_based(Box::new(Sampler::AlwaysOn)),
            "parentbased_always_off" => parent_based(Box::new(Sampler::AlwaysOff)),
            _ => parent_based(Box::new(DynamicRatio)),
        }
    }
}

impl ShouldSample for Configured {
    fn should_sample(
        &self,
        parent: Option<&Context>,
        trace_id: TraceId,
        name: &str,
        kind: &SpanKind,
        attributes: &[KeyValue],
        links: &[Link],
    ) -> SamplingResult {
        match self {
            Self::Sdk(sampler) => sampler.should_sample(parent, trace_id, name, kind, attributes, links),
            Self::Ratio(sampler) => sampler.should_sample(parent, trace_id, name, kind, attributes, links),
        }
    }
}

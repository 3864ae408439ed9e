//! Which trace-context headers are read from requests and written to responses
//! (`OTEL_PROPAGATORS`): W3C `traceparent` (`tracecontext`), W3C `baggage`, and Zipkin's B3
//! (`b3`: the single `b3` header; `b3multi`: the `X-B3-*` headers), through the propagators
//! the OpenTelemetry project maintains (B3 is `opentelemetry-propagator-b3`).

use crate::pipeline::vars::{Vars, list};
use http::HeaderMap;
use opentelemetry::Context;
use opentelemetry::propagation::{TextMapCompositePropagator, TextMapPropagator};
use opentelemetry_propagator_b3::{B3Encoding, Propagator as B3};
use opentelemetry_sdk::propagation::{BaggagePropagator, TraceContextPropagator};
use std::sync::OnceLock;

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Kind {
    TraceContext,
    Baggage,
    B3,
    B3Multi,
}

impl Kind {
    pub fn as_str(self) -> &'static str {
        match self {
            Kind::TraceContext => "tracecontext",
            Kind::Baggage => "baggage",
            Kind::B3 => "b3",
            Kind::B3Multi => "b3multi",
        }
    }

    /// `OTEL_PROPAGATORS`, by default `tracecontext,baggage`; `none` for none.
    pub(crate) fn resolve(vars: &Vars<'_>, warnings: &mut Vec<String>) -> Vec<Kind> {
        let Some(value) = vars.get("OTEL_PROPAGATORS") else { return vec![Kind::TraceContext, Kind::Baggage] };
        let mut kinds = Vec::new();
        for name in list(value) {
            let kind = match name.as_str() {
                "tracecontext" => Kind::TraceContext,
                "baggage" => Kind::Baggage,
                "b3" => Kind::B3,
                "b3multi" => Kind::B3Multi,
                "none" => return Vec::new(),
                other => {
                    warnings.push(format!(
                        "OTEL_PROPAGATORS: unknown propagator {other:?} ignored (tracecontext, baggage, b3, b3multi, none)"
                    ));
                    continue;
                }
            };
            if !kinds.contains(&kind) {
                kinds.push(kind);
            }
        }
        kinds
    }

    fn propagator(self) -> Box<dyn TextMapPropagator + Send + Sync> {
        match self {
            Kind::TraceContext => Box::new(TraceContextPropagator::new()),
            Kind::Baggage => Box::new(BaggagePropagator::new()),
            Kind::B3 => Box::new(B3::with_encoding(B3Encoding::SingleHeader)),
            Kind::B3Multi => Box::new(B3::with_encoding(B3Encoding::MultipleHeader)),
        }
    }
}

struct Configured {
    propagator: TextMapCompositePropagator,
    /// The lower-case header names that can carry a context in.
    fields: Vec<http::HeaderName>,
}

static CONFIGURED: OnceLock<Configured> = OnceLock::new();

/// Sets the process's propagators (once; later calls are ignored), also as the global
/// OpenTelemetry propagator for libraries that read that.
pub(crate) fn install(kinds: &[Kind]) {
    let propagator = TextMapCompositePropagator::new(kinds.iter().map(|k| k.propagator()).collect());
    let fields = propagator.fields().filter_map(|f| http::HeaderName::from_bytes(f.as_bytes()).ok()).collect();
    let global = TextMapCompositePropagator::new(kinds.iter().map(|k| k.propagator()).collect());
    if CONFIGURED.set(Configured { propagator, fields }).is_ok() {
        opentelemetry::global::set_text_map_propagator(global);
    }
}

/// Whether the request may carry a caller's context: `traceparent` alone unless other
/// propagators were configured (the check every request pays).
pub(crate) fn carries_context(headers: &HeaderMap) -> bool {
    match CONFIGURED.get() {
        None => headers.contains_key("traceparent"),
        Some(configured) => configured.fields.iter().any(|field| headers.contains_key(field)),
    }
}

pub(crate) fn extract(headers: &HeaderMap) -> Context {
    let extractor = crate::http::HeaderExtractor(headers);
    match CONFIGURED.get() {
        None => TraceContextPropagator::new().extract(&extractor),
        Some(configured) => configured.propagator.extract(&extractor),
    }
}

pub(crate) fn inject(context: &Context, headers: &mut HeaderMap) {
    let mut injector = crate::http::HeaderInjector(headers);
    match CONFIGURED.get() {
        None => TraceContextPropagator::new().inject_context(context, &mut injector),
        Some(configured) => configured.propagator.inject_context(context, &mut injector),
    }
}

//! Every route path, in one place: the router registers these, the trailing-slash redirect
//! matches against them, and a test checks the OpenAPI document lists the API ones.

pub const ROOT: &str = "/";
pub const PORTFOLIOS_V1: &str = "/api/v1/portfolios";
pub const PORTFOLIO_V1: &str = "/api/v1/portfolio/{portfolioId}";
pub const PORTFOLIOS_V2: &str = "/api/v2/portfolios";
pub const PORTFOLIO_EVENTS_V2: &str = "/api/v2/portfolios/events";
pub const PORTFOLIO_IMPORTS: &str = "/api/v2/portfolios/imports";
pub const JOB: &str = "/api/v2/jobs/{jobId}";
pub const HEALTH: &str = "/health";
pub const HEALTH_LIVE: &str = "/health/live";
pub const HEALTH_READY: &str = "/health/ready";
pub const HEALTH_STARTUP: &str = "/health/startup";
pub const HEALTH_DETAILED: &str = "/health/detailed";
pub const HEALTH_METRICS: &str = "/health/metrics";
pub const OPENAPI: &str = "/openapi.json";
pub const DOCS: &str = "/docs";
pub const DOCS_OAUTH2_REDIRECT: &str = "/docs/oauth2-redirect";
pub const DOCS_ASSET: &str = "/docs/{file}";
pub const REDOC: &str = "/redoc";
pub const METRICS: &str = "/metrics";
pub const ADMIN_FLAGS: &str = "/admin/flags";
pub const FAST_BULK: &str = "/api/fast/portfolios/bulk";
pub const FAST_SEARCH: &str = "/api/fast/portfolios/search";
pub const FAST_HEALTH: &str = "/api/fast/health/fast";
pub const FAST_STATS: &str = "/api/fast/performance/stats";

/// Every registered path template.
pub const ALL: &[&str] = &[
    ROOT,
    PORTFOLIOS_V1,
    PORTFOLIO_V1,
    PORTFOLIOS_V2,
    PORTFOLIO_EVENTS_V2,
    PORTFOLIO_IMPORTS,
    JOB,
    HEALTH,
    HEALTH_LIVE,
    HEALTH_READY,
    HEALTH_STARTUP,
    HEALTH_DETAILED,
    HEALTH_METRICS,
    OPENAPI,
    DOCS,
    DOCS_OAUTH2_REDIRECT,
    DOCS_ASSET,
    REDOC,
    METRICS,
    ADMIN_FLAGS,
    FAST_BULK,
    FAST_SEARCH,
    FAST_HEALTH,
    FAST_STATS,
];

/// Paths neither rate limited nor shed under load (docs/OPERATIONS.md, "Exempt paths"): the
/// four probes, which an orchestrator must always reach and which touch at most one database
/// round trip within `health.probe_timeout`, and `/metrics`, read once a scrape interval, whose
/// gaps would hide exactly the overload being limited. Exact matches only.
pub fn is_exempt(path: &str) -> bool {
    matches!(path, HEALTH | HEALTH_LIVE | HEALTH_READY | HEALTH_STARTUP | METRICS)
}

/// Whether `path` matches a template (`{param}` matches one non-empty segment).
pub fn is_known(path: &str) -> bool {
    ALL.iter().any(|template| matches(template, path))
}

fn matches(template: &str, path: &str) -> bool {
    let (mut t, mut p) = (template.split('/'), path.split('/'));
    loop {
        match (t.next(), p.next()) {
            (None, None) => return true,
            (Some(ts), Some(ps)) if ts.starts_with('{') => {
                if ps.is_empty() {
                    return false;
                }
            }
            (Some(ts), Some(ps)) if ts == ps => {}
            _ => return false,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_the_probes_and_metrics_are_exempt() {
        for path in [HEALTH, HEALTH_LIVE, HEALTH_READY, HEALTH_STARTUP, METRICS] {
            assert!(is_exempt(path), "{path}");
        }
        for path in
            [HEALTH_DETAILED, HEALTH_METRICS, DOCS, OPENAPI, "/docs/x.js", "/healthz", "/health/", PORTFOLIOS_V1]
        {
            assert!(!is_exempt(path), "{path}");
        }
    }

    #[test]
    fn templates_match_one_segment_per_parameter() {
        assert!(is_known("/api/v1/portfolio/abc"));
        assert!(!is_known("/api/v1/portfolio/"));
        assert!(!is_known("/api/v1/portfolio/a/b"));
        assert!(is_known("/api/v2/portfolios"));
        assert!(!is_known("/api/v2/portfolio"));
        assert!(is_known("/"));
    }
}

//! Logging set-up: pretty text for people, JSON lines for machines.

use crate::config::{LogFormat, LoggingConfig};
use tracing_subscriber::EnvFilter;
use tracing_subscriber::filter::ParseError;

/// Parses a level (`warn`) or a full filter (`info,sqlx=warn`).
pub fn parse_filter(spec: &str) -> Result<EnvFilter, ParseError> {
    EnvFilter::builder().parse(spec)
}

/// Installs the global subscriber. `RUST_LOG`, when set, replaces the configured level.
/// Idempotent: a second call (tests) leaves the first subscriber in place.
pub fn init(config: &LoggingConfig) {
    let filter = std::env::var("RUST_LOG")
        .ok()
        .and_then(|spec| parse_filter(&spec).ok())
        .or_else(|| parse_filter(&config.level).ok())
        .unwrap_or_else(|| EnvFilter::new("info"));
    let builder = tracing_subscriber::fmt().with_env_filter(filter).with_writer(std::io::stderr);
    let _ = match config.format {
        LogFormat::Pretty => builder.compact().try_init(),
        LogFormat::Json => builder.json().flatten_event(true).with_current_span(true).with_span_list(false).try_init(),
    };
}

/// For tests: logs only when `TEST_LOG` is set, so passing runs stay quiet.
pub fn init_for_test() {
    if std::env::var_os("TEST_LOG").is_some() {
        init(&LoggingConfig { level: "debug,sqlx=warn".into(), format: LogFormat::Pretty });
    }
}

//! Logging set-up: pretty text for people, JSON lines for machines, with the request and trace
//! ids on every line of a request, redaction of sensitive fields, sampling of high-volume
//! events, and a level that can change while the process runs.
//!
//! The level filter applies to the log output only (a per-layer filter), so a WARN production
//! log level does not hide the INFO request spans from the tracing layer.

mod json;
mod request_scope;
mod sampling;

use crate::config::{Config, LogFormat, LoggingConfig};
use std::sync::{Arc, OnceLock};
use tracing::Dispatch;
use tracing::dispatcher::WeakDispatch;
use tracing_subscriber::filter::{FilterExt, ParseError};
use tracing_subscriber::fmt::format::{Writer, debug_fn};
use tracing_subscriber::layer::{Identity, Layered};
use tracing_subscriber::prelude::*;
use tracing_subscriber::{EnvFilter, Layer, Registry, reload};

pub use json::{Ids, IdsLayer};
pub use request_scope::{RequestIds, request_spans_logged};
pub use sampling::Sampling;

/// One of the logging layers.
type LogLayer = Box<dyn Layer<Registry> + Send + Sync>;

/// The subscriber the logging layers make. Another crate's layer (the OpenTelemetry bridge)
/// goes on top of it, by type rather than boxed among them: its callbacks, which return at once
/// for nearly every span, are then inlined instead of called through a pointer.
pub type Logging = Layered<Vec<LogLayer>, Registry>;

/// The value written in place of a redacted field.
pub const REDACTED: &str = "[REDACTED]";

/// Parses a level (`warn`) or a full filter (`info,sqlx=warn`).
pub fn parse_filter(spec: &str) -> Result<EnvFilter, ParseError> {
    EnvFilter::builder().parse(spec)
}

/// Handles that change logging while it runs.
pub struct LogControl {
    filter: reload::Handle<EnvFilter, Registry>,
    sampling: Arc<Sampling>,
    /// Whether this is the process's subscriber, whose level decides whether requests get
    /// spans ([`request_spans_logged`]).
    installed: bool,
}

impl LogControl {
    /// Replaces the level filter; the old one stays if `spec` does not parse.
    pub fn set_level(&self, spec: &str) -> Result<(), String> {
        let filter = parse_filter(spec).map_err(|e| format!("invalid log level {spec:?}: {e}"))?;
        self.filter.reload(filter).map_err(|e| e.to_string())?;
        if self.installed {
            self.announce_level();
        }
        Ok(())
    }

    fn announce_level(&self) {
        if let Ok(hint) = self.filter.with_current(|filter| filter.max_level_hint()) {
            request_scope::set_log_level(hint);
        }
    }

    pub fn set_sample_rate(&self, rate: f64) {
        self.sampling.set_rate(rate);
    }
}

static CONTROL: OnceLock<LogControl> = OnceLock::new();

/// The running process's log control, when [`init_with`] installed the subscriber.
pub fn control() -> Option<&'static LogControl> {
    CONTROL.get()
}

/// Installs the global subscriber from `logging` alone (tools and tests).
pub fn init(config: &LoggingConfig) {
    init_layers(config, Vec::new(), 1.0, None::<Identity>);
}

/// Installs the global subscriber for a serving process: the configured format, level,
/// redaction and sampling, plus `extra` (the tracing bridge). Idempotent: a second call
/// leaves the first subscriber in place and returns false.
///
/// One subscriber for everything. A second one carrying the bridge, for sampled requests
/// only, was tried: `tracing-subscriber`'s registry closes a span's parent through the
/// thread's current dispatcher, so a child span dropped on another thread (sqlx's SQLite
/// worker drops the caller's span there) closed its parent in the wrong registry and panicked.
pub fn init_with<L>(config: &Config, extra: Option<L>) -> bool
where
    L: Layer<Logging> + Send + Sync + 'static,
{
    let redact = config.observability.redact_fields.iter().map(|f| f.to_ascii_lowercase()).collect();
    init_layers(&config.logging, redact, config.observability.flags.log_sample_rate, extra)
}

fn init_layers<L>(config: &LoggingConfig, redact: Vec<String>, sample_rate: f64, extra: Option<L>) -> bool
where
    L: Layer<Logging> + Send + Sync + 'static,
{
    let spec = std::env::var("RUST_LOG").ok().filter(|spec| parse_filter(spec).is_ok());
    let (dispatch, mut control) = subscriber(config, spec.as_deref(), redact, sample_rate, extra);
    if dispatch.try_init().is_err() {
        return false;
    }
    control.installed = true;
    control.announce_level();
    let _ = CONTROL.set(control);
    true
}

/// The subscriber, not yet installed, and the handles that change it while it runs.
fn subscriber<L>(
    config: &LoggingConfig,
    rust_log: Option<&str>,
    redact: Vec<String>,
    sample_rate: f64,
    extra: Option<L>,
) -> (Dispatch, LogControl)
where
    L: Layer<Logging> + Send + Sync + 'static,
{
    let filter = parse_filter(rust_log.unwrap_or(&config.level)).unwrap_or_else(|_| EnvFilter::new("info"));
    let (filter, handle) = reload::Layer::new(filter);
    let sampling = Arc::new(Sampling::new(sample_rate));
    let keep = filter.and(sampling.clone().filter());
    let redact: Arc<[String]> = redact.into();
    // The JSON formatter reads request ids from its subscriber's registry, known once built.
    let owner = Arc::<OnceLock<WeakDispatch>>::default();
    let output: LogLayer = match config.format {
        LogFormat::Pretty => {
            let fields = debug_fn(move |writer: &mut Writer<'_>, field, value| {
                if field.name() == "message" {
                    write!(writer, "{value:?}")
                } else if redact.iter().any(|r| r.eq_ignore_ascii_case(field.name())) {
                    write!(writer, "{field}={REDACTED}")
                } else {
                    write!(writer, "{field}={value:?}")
                }
            })
            .delimited(" ");
            tracing_subscriber::fmt::layer()
                .compact()
                .fmt_fields(fields)
                .with_writer(std::io::stderr)
                .with_filter(keep)
                .boxed()
        }
        LogFormat::Json => tracing_subscriber::fmt::layer()
            .event_format(json::JsonLines { redact, owner: owner.clone() })
            .with_writer(std::io::stderr)
            .with_filter(keep)
            .boxed(),
    };
    let layers: Vec<LogLayer> = vec![IdsLayer.boxed(), output];
    let dispatch = Dispatch::new(tracing_subscriber::registry().with(layers).with(extra));
    let _ = owner.set(dispatch.downgrade());
    (dispatch, LogControl { filter: handle, sampling, installed: false })
}

/// For tests: logs only when `TEST_LOG` is set, so passing runs stay quiet.
pub fn init_for_test() {
    if std::env::var_os("TEST_LOG").is_some() {
        init(&LoggingConfig { level: "debug,sqlx=warn".into(), format: LogFormat::Pretty });
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use tracing::Subscriber;
    use tracing_subscriber::filter::LevelFilter;

    fn hint(dispatch: &Dispatch) -> Option<LevelFilter> {
        dispatch.downcast_ref::<Layered<Option<Identity>, Logging>>().and_then(Subscriber::max_level_hint)
    }

    fn max_level(level: &str, format: LogFormat) -> Option<LevelFilter> {
        let config = LoggingConfig { level: level.into(), format };
        hint(&subscriber(&config, None, Vec::new(), 1.0, None::<Identity>).0)
    }

    /// Every layer gives a level hint, so `debug!` and `trace!` on the request path are skipped
    /// by one comparison when nothing would write them; request spans (INFO) are still made.
    #[test]
    fn the_process_level_is_the_log_level_but_never_below_the_request_spans() {
        assert_eq!(max_level("warn", LogFormat::Json), Some(LevelFilter::INFO));
        assert_eq!(max_level("debug", LogFormat::Pretty), Some(LevelFilter::DEBUG));
        assert_eq!(max_level("info,sqlx=trace", LogFormat::Json), Some(LevelFilter::TRACE));
    }

    #[test]
    fn a_level_set_at_runtime_moves_the_process_level() {
        let config = LoggingConfig { level: "warn".into(), format: LogFormat::Json };
        let (dispatch, control) = subscriber(&config, None, Vec::new(), 1.0, None::<Identity>);
        control.set_level("debug").unwrap();
        assert_eq!(hint(&dispatch), Some(LevelFilter::DEBUG));
        assert!(control.set_level("loud[").is_err());
        assert_eq!(hint(&dispatch), Some(LevelFilter::DEBUG), "a bad level changes nothing");
    }
}

//! Cross-cutting infrastructure shared by every process role.
//!
//! # Layout
//! - [`config`]: typed, layered, validated configuration and the deployment [`Profile`].
//! - [`telemetry`]: tracing subscriber set-up (pretty or JSON logs).
//! - [`shutdown`]: the one shutdown signal (SIGTERM or Ctrl-C) every role listens to.

pub mod config;
pub mod shutdown;
pub mod telemetry;

pub use config::{Config, ConfigError, ConfigSources, IdempotencyConfig, Profile};

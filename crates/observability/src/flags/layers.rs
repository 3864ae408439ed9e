//! The precedence rule between the configuration and the admin API.
//!
//! A flag's value in force is the configuration's (defaults, file, environment) unless it was
//! set through the admin API: that value stays until it is set again, or until a reload of the
//! configuration changes that same key (the newer, deliberate edit of the file wins). A reload
//! that changes other keys, or none, leaves the override alone. With Redis, overrides are
//! shared: a replica adopts the set every replica agrees on (`SharedFlags`).

use super::Flags;
use serde::Serialize;
use serde_json::{Map, Value};

/// Where the value in force of one flag came from.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Source {
    /// The defaults, the configuration file or the environment.
    Configuration,
    /// `PATCH /admin/flags`, on this replica or (through Redis) another.
    Admin,
}

/// The configured flags, and the admin API's overrides on top of them.
#[derive(Clone, Debug)]
pub(crate) struct Layers {
    pub(crate) configured: Flags,
    /// Values set through the admin API, by flag name.
    pub(crate) overrides: Map<String, Value>,
}

impl Layers {
    pub(crate) fn new(configured: Flags) -> Self {
        Self { configured, overrides: Map::new() }
    }

    /// The flags in force: the configured ones with the overrides on top.
    pub(crate) fn effective(&self) -> Result<Flags, String> {
        let mut merged = as_map(&self.configured);
        merged.extend(self.overrides.clone());
        serde_json::from_value(Value::Object(merged)).map_err(|e| format!("invalid flag value: {e}"))
    }

    /// Takes a newly loaded configuration. Each override of a key whose configured value
    /// changed is dropped (the file wins); the names of those keys are returned.
    pub(crate) fn reconfigure(&mut self, configured: Flags) -> Vec<String> {
        let (before, after) = (as_map(&self.configured), as_map(&configured));
        let dropped: Vec<String> =
            self.overrides.keys().filter(|key| before.get(*key) != after.get(*key)).cloned().collect();
        for key in &dropped {
            self.overrides.remove(key);
        }
        self.configured = configured;
        dropped
    }

    /// Where each flag's value in force came from, by flag name, for `/health/detailed`.
    pub(crate) fn sources(&self) -> Value {
        let sources = as_map(&self.configured).into_iter().map(|(name, _)| {
            let source = if self.overrides.contains_key(&name) { Source::Admin } else { Source::Configuration };
            (name, serde_json::json!(source))
        });
        Value::Object(sources.collect())
    }
}

/// `flags` as a JSON object, one key per flag.
pub(crate) fn as_map(flags: &Flags) -> Map<String, Value> {
    match serde_json::to_value(flags) {
        Ok(Value::Object(map)) => map,
        // A struct of plain fields always serializes to an object.
        _ => Map::new(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use pfs_platform::config::RuntimeFlags as ConfiguredFlags;
    use serde_json::json;

    fn configured(ratio: f64, request_logging: bool) -> Flags {
        Flags {
            log_level: "info".into(),
            runtime: ConfiguredFlags {
                trace_sample_ratio: ratio,
                database_tracing: true,
                metrics_middleware: true,
                request_logging,
                log_sample_rate: 1.0,
            },
        }
    }

    fn overridden(layers: &mut Layers, key: &str, value: Value) {
        layers.overrides.insert(key.into(), value);
    }

    #[test]
    fn an_override_beats_the_configuration_and_is_reported_as_admin() {
        let mut layers = Layers::new(configured(1.0, true));
        overridden(&mut layers, "request_logging", json!(false));
        assert!(!layers.effective().unwrap().runtime.request_logging);
        let sources = layers.sources();
        assert_eq!(sources["request_logging"], "admin");
        assert_eq!(sources["trace_sample_ratio"], "configuration");
        assert_eq!(sources.as_object().unwrap().len(), 6, "every flag has a source: {sources}");
    }

    #[test]
    fn a_reload_that_changes_the_same_key_drops_the_override() {
        let mut layers = Layers::new(configured(1.0, true));
        overridden(&mut layers, "trace_sample_ratio", json!(0.5));
        assert_eq!(layers.reconfigure(configured(0.1, true)), ["trace_sample_ratio"]);
        assert_eq!(layers.effective().unwrap().runtime.trace_sample_ratio, 0.1);
        assert_eq!(layers.sources()["trace_sample_ratio"], "configuration");
    }

    #[test]
    fn a_reload_that_changes_other_keys_or_none_keeps_the_override() {
        let mut layers = Layers::new(configured(1.0, true));
        overridden(&mut layers, "trace_sample_ratio", json!(0.5));
        assert!(layers.reconfigure(configured(1.0, true)).is_empty());
        assert!(layers.reconfigure(configured(1.0, false)).is_empty());
        let effective = layers.effective().unwrap();
        assert_eq!(effective.runtime.trace_sample_ratio, 0.5);
        assert!(!effective.runtime.request_logging, "the file's change of another key applies");
    }

    #[test]
    fn a_value_of_the_wrong_type_is_refused() {
        let mut layers = Layers::new(configured(1.0, true));
        overridden(&mut layers, "request_logging", json!("yes"));
        assert!(layers.effective().is_err());
    }
}

//! When the layered configuration does not deserialize, serde stops at the first problem. To
//! report every problem at once, each key set by the operator is tried on its own over the
//! defaults, and keys the defaults do not have are named as unknown. This runs only on the
//! error path, so its cost (one deserialization per set key) never reaches a healthy start.

use super::{Config, DEFAULT_TOML};
use ::config::{File, FileFormat, Value, ValueKind};
use serde_json::Value as Json;
use std::collections::BTreeMap;

/// Every problem in `merged`, the whole stack of layers, against `base`, the defaults and the
/// profile overlay (which are known to deserialize). Never empty: `first` is kept if nothing
/// narrower is found.
pub(super) fn problems(
    merged: &::config::Config,
    base: impl Fn() -> ::config::ConfigBuilder<::config::builder::DefaultState>,
    first: ::config::ConfigError,
) -> Vec<String> {
    let (Some(known), Some(set)) = (leaves_of_defaults(), leaves(merged)) else { return vec![first.to_string()] };
    let mut problems = Vec::new();
    for (key, value) in &set {
        if !known.contains_key(key) && !known.keys().any(|k| key.starts_with(&format!("{k}."))) {
            problems.push(format!("{key}: unknown key"));
            continue;
        }
        let alone = base().set_override(key.as_str(), to_config(value)).and_then(|b| b.build());
        if let Err(err) = alone.and_then(|c| c.try_deserialize::<Config>()) {
            problems.push(format!("{key}: {}", plain(&err.to_string(), key)));
        }
    }
    if problems.is_empty() { vec![first.to_string()] } else { problems }
}

/// `config`'s messages end with "for key `a.b`" (or name the key first); the key is already at
/// the start of our line.
fn plain(message: &str, key: &str) -> String {
    message.replace(&format!(" for key `{key}`"), "").replace(&format!("{key}: "), "")
}

fn leaves_of_defaults() -> Option<BTreeMap<String, Json>> {
    let defaults =
        ::config::Config::builder().add_source(File::from_str(DEFAULT_TOML, FileFormat::Toml)).build().ok()?;
    leaves(&defaults)
}

/// Dotted keys of every non-table value.
fn leaves(config: &::config::Config) -> Option<BTreeMap<String, Json>> {
    fn walk(prefix: &str, value: Json, out: &mut BTreeMap<String, Json>) {
        match value {
            Json::Object(table) => {
                for (key, value) in table {
                    let path = if prefix.is_empty() { key } else { format!("{prefix}.{key}") };
                    walk(&path, value, out);
                }
            }
            leaf => {
                out.insert(prefix.to_owned(), leaf);
            }
        }
    }
    let mut out = BTreeMap::new();
    walk("", config.clone().try_deserialize::<Json>().ok()?, &mut out);
    Some(out)
}

fn to_config(value: &Json) -> Value {
    let kind = match value {
        Json::Null => ValueKind::Nil,
        Json::Bool(b) => ValueKind::Boolean(*b),
        Json::Number(n) => match (n.as_i64(), n.as_u64()) {
            (Some(i), _) => ValueKind::I64(i),
            (None, Some(u)) => ValueKind::U64(u),
            _ => ValueKind::Float(n.as_f64().unwrap_or_default()),
        },
        Json::String(s) => ValueKind::String(s.clone()),
        Json::Array(items) => ValueKind::Array(items.iter().map(to_config).collect()),
        Json::Object(table) => ValueKind::Table(table.iter().map(|(k, v)| (k.clone(), to_config(v))).collect()),
    };
    Value::new(None, kind)
}

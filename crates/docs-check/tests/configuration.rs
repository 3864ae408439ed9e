//! The one configuration table, `docs/CONFIGURATION.md`, against the code: every key of
//! `config/default.toml` has a documented variable, every variable the loader reads by name
//! (aliases, profile and file selectors) is documented, and every documented variable exists,
//! with the config key it really sets.

use pfs_docs_check::{code_spans, read, root, table_rows};
use pfs_platform::config::{DEFAULT_TOML, named_variables};
use std::collections::{BTreeMap, BTreeSet};
use std::path::Path;

/// Every key of the embedded defaults, dotted (`observability.otlp.endpoint`).
fn config_keys() -> BTreeSet<String> {
    fn walk(prefix: &str, table: &toml::Table, keys: &mut BTreeSet<String>) {
        for (name, value) in table {
            let key = if prefix.is_empty() { name.clone() } else { format!("{prefix}.{name}") };
            match value.as_table() {
                Some(inner) => walk(&key, inner, keys),
                None => {
                    keys.insert(key);
                }
            }
        }
    }
    let mut keys = BTreeSet::new();
    walk("", &DEFAULT_TOML.parse().expect("config/default.toml parses"), &mut keys);
    keys
}

/// The key `PORTFOLIO_<SECTION>__<KEY>` sets, for variables of that form.
fn nested_key(variable: &str) -> Option<String> {
    let rest = variable.strip_prefix("PORTFOLIO_")?;
    rest.contains("__").then(|| rest.to_ascii_lowercase().replace("__", "."))
}

/// A row of the table: its variables and config keys, with shorthand expanded (`__TLS_KEY_PATH`
/// after `PORTFOLIO_SERVER__TLS_CERT_PATH`, `tls_key_path` after `server.tls_cert_path`).
struct Row {
    variables: Vec<String>,
    keys: Vec<String>,
    text: String,
}

fn expand(spans: Vec<&str>, separator: &str) -> Vec<String> {
    let mut prefix = String::new();
    spans
        .into_iter()
        .map(|span| {
            let full = if span.starts_with(separator) || !span.contains(separator.trim_start_matches('_')) {
                format!("{prefix}{}", span.trim_start_matches(separator))
            } else {
                span.to_owned()
            };
            prefix = full.rfind(separator).map_or(String::new(), |at| full[..at + separator.len()].to_owned());
            full
        })
        .collect()
}

fn rows() -> Vec<Row> {
    let table = read("docs/CONFIGURATION.md");
    let rows = table_rows(&table);
    assert!(rows.len() > 50, "the configuration table has {} rows", rows.len());
    rows.into_iter()
        .map(|cells| {
            assert_eq!(cells.len(), 4, "variable | config key | default | meaning: {cells:?}");
            let is_variable = |s: &&str| s.chars().all(|c| c.is_ascii_uppercase() || c.is_ascii_digit() || c == '_');
            let variables = code_spans(&cells[0]).into_iter().filter(is_variable).collect();
            let keys = code_spans(&cells[1]).into_iter().filter(|s| !s.contains(' ')).collect();
            Row { variables: expand(variables, "__"), keys: expand(keys, "."), text: cells.join(" | ") }
        })
        .collect()
}

/// Whether a Rust source file under `crates/*/src` names `"variable"`.
fn read_in_source(variable: &str) -> bool {
    fn walk(dir: &Path, needle: &str) -> bool {
        std::fs::read_dir(dir).into_iter().flatten().flatten().any(|entry| {
            let path = entry.path();
            if path.is_dir() {
                walk(&path, needle)
            } else {
                path.extension().is_some_and(|e| e == "rs")
                    && std::fs::read_to_string(&path).is_ok_and(|s| s.contains(needle))
            }
        })
    }
    let needle = format!("\"{variable}\"");
    std::fs::read_dir(root().join("crates")).expect("crates/").flatten().any(|c| walk(&c.path().join("src"), &needle))
}

#[test]
fn every_configuration_key_has_a_documented_variable() {
    let aliases: BTreeMap<&str, &str> = named_variables().into_iter().filter_map(|(v, k)| Some((v, k?))).collect();
    let documented: BTreeSet<String> = rows()
        .iter()
        .flat_map(|row| &row.variables)
        .filter_map(|var| nested_key(var).or_else(|| aliases.get(var.as_str()).map(|k| (*k).to_owned())))
        .collect();
    let missing: Vec<String> = config_keys().difference(&documented).cloned().collect();
    assert!(missing.is_empty(), "config keys without a documented variable: {missing:?}");
}

#[test]
fn every_variable_read_by_name_is_documented() {
    let rows = rows();
    let missing: Vec<&str> = named_variables()
        .into_iter()
        .map(|(var, _)| var)
        .filter(|var| !rows.iter().any(|row| code_spans(&row.text).contains(var)))
        .collect();
    assert!(missing.is_empty(), "variables the loader reads but the table does not name: {missing:?}");
}

#[test]
fn every_documented_variable_exists_and_sets_the_key_its_row_names() {
    let keys = config_keys();
    let named: BTreeMap<&str, Option<&str>> = named_variables().into_iter().collect();
    for row in rows() {
        assert!(!row.variables.is_empty(), "a row without a variable: {}", row.text);
        for key in &row.keys {
            assert!(keys.contains(key), "{key} is no key of config/default.toml: {}", row.text);
        }
        for var in &row.variables {
            let sets = match (nested_key(var), named.get(var.as_str())) {
                (Some(key), _) => {
                    assert!(keys.contains(&key), "{var} would set {key}, no key of config/default.toml: {}", row.text);
                    Some(key)
                }
                (None, Some(key)) => key.map(str::to_owned),
                (None, None) => {
                    assert!(read_in_source(var), "{var} is neither configuration nor read by the code: {}", row.text);
                    None
                }
            };
            if let Some(key) = sets {
                assert!(row.keys.contains(&key), "{var} sets {key}, which its row does not name: {}", row.text);
            }
        }
    }
}

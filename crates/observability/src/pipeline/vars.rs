//! Reading OpenTelemetry variables from a map the way the SDKs read them: empty means unset,
//! booleans are `true`/`false` in any case, durations are milliseconds, lists are
//! comma-separated. A value that does not parse is a warning naming the variable, and counts
//! as unset.

use std::collections::BTreeMap;
use std::time::Duration;

pub(crate) struct Vars<'a> {
    env: &'a BTreeMap<String, String>,
}

/// `a, B ,,c` as `["a", "b", "c"]`.
pub(crate) fn list(value: &str) -> Vec<String> {
    value.split(',').map(|item| item.trim().to_ascii_lowercase()).filter(|item| !item.is_empty()).collect()
}

impl<'a> Vars<'a> {
    pub(crate) fn new(env: &'a BTreeMap<String, String>) -> Self {
        Self { env }
    }

    pub(crate) fn get(&self, var: &str) -> Option<&'a str> {
        self.env.get(var).map(|v| v.trim()).filter(|v| !v.is_empty())
    }

    /// The first of `vars` that is set, with its name.
    pub(crate) fn first(&self, vars: &[String]) -> Option<(String, &'a str)> {
        vars.iter().find_map(|var| Some((var.clone(), self.get(var)?)))
    }

    pub(crate) fn flag(&self, var: &str, warnings: &mut Vec<String>) -> Option<bool> {
        self.first_flag(&[var.to_owned()], warnings)
    }

    pub(crate) fn first_flag(&self, vars: &[String], warnings: &mut Vec<String>) -> Option<bool> {
        for var in vars {
            let Some(value) = self.get(var) else { continue };
            match value.to_ascii_lowercase().as_str() {
                "true" => return Some(true),
                "false" => return Some(false),
                other => warnings.push(format!("{var}: {other:?} is not a boolean (true or false); ignored")),
            }
        }
        None
    }

    /// The first of `vars` holding a whole number of milliseconds.
    pub(crate) fn millis<S: AsRef<str>>(&self, vars: &[S], warnings: &mut Vec<String>) -> Option<Duration> {
        for var in vars {
            let var = var.as_ref();
            let Some(value) = self.get(var) else { continue };
            match value.parse::<u64>() {
                Ok(ms) if ms > 0 => return Some(Duration::from_millis(ms)),
                _ => warnings.push(format!("{var}: {value:?} is not a positive number of milliseconds; ignored")),
            }
        }
        None
    }

    pub(crate) fn count(&self, var: &str, warnings: &mut Vec<String>) -> Option<usize> {
        let value = self.get(var)?;
        match value.parse::<usize>() {
            Ok(n) if n > 0 => Some(n),
            _ => {
                warnings.push(format!("{var}: {value:?} is not a positive whole number; ignored"));
                None
            }
        }
    }
}

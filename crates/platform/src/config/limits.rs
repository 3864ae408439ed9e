//! `[limits]`: bounds on what one stored value may weigh, so memory is bounded by bytes.

use serde::{Deserialize, Serialize};

/// The most a name may be configured to: well under MongoDB's 16 MiB document limit, and a
/// name this long already weighs as much as a thousand ordinary portfolios.
const MOST_NAME_BYTES: usize = 1 << 20;

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct LimitsConfig {
    /// Longest portfolio name accepted by a create or update, in UTF-8 bytes; longer is a 422
    /// (`string_too_long`). Bounds every cached portfolio, change event and list batch.
    pub max_name_bytes: usize,
}

impl Default for LimitsConfig {
    fn default() -> Self {
        Self { max_name_bytes: 4096 }
    }
}

impl LimitsConfig {
    /// Every problem, each naming its key.
    pub fn problems(&self) -> Vec<String> {
        if (1..=MOST_NAME_BYTES).contains(&self.max_name_bytes) {
            Vec::new()
        } else {
            vec![format!("limits.max_name_bytes: must be between 1 and {MOST_NAME_BYTES}")]
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_default_is_valid_and_zero_or_huge_are_not() {
        assert!(LimitsConfig::default().problems().is_empty());
        assert_eq!(LimitsConfig { max_name_bytes: 0 }.problems().len(), 1);
        assert_eq!(LimitsConfig { max_name_bytes: MOST_NAME_BYTES + 1 }.problems().len(), 1);
    }
}

//! Deployment profiles.

use serde::{Deserialize, Serialize};
use std::fmt;
use std::str::FromStr;

/// Development, staging or production: picks the embedded overlay of defaults.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Profile {
    #[default]
    Development,
    Staging,
    Production,
}

impl Profile {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Development => "development",
            Self::Staging => "staging",
            Self::Production => "production",
        }
    }

    /// The embedded overlay for this profile.
    pub(crate) fn overlay(self) -> &'static str {
        match self {
            Self::Development => include_str!("../../../../config/development.toml"),
            Self::Staging => include_str!("../../../../config/staging.toml"),
            Self::Production => include_str!("../../../../config/production.toml"),
        }
    }
}

impl FromStr for Profile {
    type Err = ();

    /// Case-insensitive, like the original's profile detection.
    fn from_str(s: &str) -> Result<Self, ()> {
        match s.trim().to_ascii_lowercase().as_str() {
            "development" => Ok(Self::Development),
            "staging" => Ok(Self::Staging),
            "production" => Ok(Self::Production),
            _ => Err(()),
        }
    }
}

impl fmt::Display for Profile {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

//! The v2 search rules: which names may be searched for, and how `name`/`name_like` combine.

use crate::text::{is_python_space, python_strip};
use std::fmt;

/// A search term that passed the contract's format rule: 1..=200 code points of ASCII letters,
/// digits, `-`, `_` and (Unicode) whitespace. It is used untrimmed: `" Foo "` matches only a
/// name that is literally `" Foo "`. Only space-like characters, `-` and `_` can appear, so a
/// backend never has to escape regex or `LIKE` metacharacters beyond `_`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SearchTerm(String);

impl SearchTerm {
    pub const MAX_CHARS: usize = 200;

    pub fn parse(raw: &str) -> Result<Self, SearchError> {
        if python_strip(raw).is_empty() {
            return Err(SearchError::Empty);
        }
        let chars = raw.chars().count();
        let allowed = |c: char| c.is_ascii_alphanumeric() || c == '-' || c == '_' || is_python_space(c);
        if chars > Self::MAX_CHARS || !raw.chars().all(allowed) {
            return Err(SearchError::InvalidFormat);
        }
        Ok(Self(raw.to_owned()))
    }

    /// Any non-empty text, without the format rule: the original's `/api/fast` routes search
    /// for whatever they are given. Every backend matches the term literally (escaping regex
    /// and `LIKE` metacharacters), so this is safe; `None` for an empty string.
    pub fn literal(raw: &str) -> Option<Self> {
        (!raw.is_empty()).then(|| Self(raw.to_owned()))
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

/// How a v2 search filters by name. Both matches are case-insensitive.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum NameFilter {
    All,
    /// Whole-name match (`name=`).
    Exact(SearchTerm),
    /// Substring match anywhere in the name (`name_like=`).
    Contains(SearchTerm),
}

impl NameFilter {
    /// Applies the contract's checks in its order (§4.1 steps 2 to 5). "Present" means the
    /// parameter was sent, even empty; "given" means non-empty, as in Python's truthiness.
    pub fn from_params(name: Option<&str>, name_like: Option<&str>) -> Result<Self, SearchError> {
        let given = |v: Option<&str>| v.is_some_and(|s| !s.is_empty());
        if given(name) && given(name_like) {
            return Err(SearchError::BothGiven);
        }
        let name = name.map(SearchTerm::parse).transpose()?;
        let name_like = name_like.map(SearchTerm::parse).transpose()?;
        Ok(match (name, name_like) {
            (Some(term), _) => Self::Exact(term),
            (None, Some(term)) => Self::Contains(term),
            (None, None) => Self::All,
        })
    }
}

/// A rejected search; the `Display` text is the contract's exact `detail` string (400).
#[derive(Clone, Copy, Debug, PartialEq, Eq, thiserror::Error)]
pub enum SearchError {
    BothGiven,
    Empty,
    InvalidFormat,
}

impl fmt::Display for SearchError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Self::BothGiven => "Only one search parameter allowed: name or name_like",
            Self::Empty => "Search parameter cannot be empty",
            Self::InvalidFormat => {
                "Invalid portfolio name format. Name must be 1-200 characters, alphanumeric, spaces, hyphens, and underscores only"
            }
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn filter(name: Option<&str>, like: Option<&str>) -> Result<NameFilter, SearchError> {
        NameFilter::from_params(name, like)
    }

    #[test]
    fn letters_digits_spaces_hyphens_and_underscores_are_allowed_untrimmed() {
        let term = SearchTerm::parse(" Tech-Growth_2024 ").expect("valid");
        assert_eq!(term.as_str(), " Tech-Growth_2024 ");
        assert!(SearchTerm::parse("a\u{a0}b\u{3000}c\u{1f}d").is_ok(), "Python \\s is Unicode");
    }

    #[test]
    fn punctuation_and_non_ascii_letters_are_rejected() {
        for bad in ["Test@Portfolio!", "a.b", "a*", "(x)", "a/b", "a\\b", "café", "™", "😀", "a\u{200b}b"] {
            assert_eq!(SearchTerm::parse(bad), Err(SearchError::InvalidFormat), "{bad:?}");
        }
    }

    #[test]
    fn length_is_counted_in_code_points_up_to_200() {
        assert!(SearchTerm::parse(&"a".repeat(200)).is_ok());
        assert_eq!(SearchTerm::parse(&"a".repeat(201)), Err(SearchError::InvalidFormat));
    }

    #[test]
    fn blank_terms_are_empty_errors() {
        assert_eq!(SearchTerm::parse(""), Err(SearchError::Empty));
        assert_eq!(SearchTerm::parse(" \t\u{a0}"), Err(SearchError::Empty));
    }

    #[test]
    fn both_parameters_non_empty_is_rejected_first() {
        assert_eq!(filter(Some("a"), Some("b")), Err(SearchError::BothGiven));
        assert_eq!(filter(Some("@"), Some("@")), Err(SearchError::BothGiven));
    }

    #[test]
    fn an_empty_name_beside_a_name_like_fails_as_empty() {
        assert_eq!(filter(Some(""), Some("x")), Err(SearchError::Empty));
        assert_eq!(filter(Some("x"), Some("")), Err(SearchError::Empty));
    }

    #[test]
    fn name_is_checked_before_name_like() {
        assert_eq!(filter(Some("@"), Some("")), Err(SearchError::InvalidFormat));
    }

    #[test]
    fn filters_are_built_from_whichever_parameter_is_present() {
        assert_eq!(filter(None, None), Ok(NameFilter::All));
        assert!(matches!(filter(Some("a"), None), Ok(NameFilter::Exact(t)) if t.as_str() == "a"));
        assert!(matches!(filter(None, Some("b")), Ok(NameFilter::Contains(t)) if t.as_str() == "b"));
    }
}

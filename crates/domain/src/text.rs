//! Python's whitespace, because the contract's rules (`str.strip()`, the `\s` of `re`) use it.

/// True for the characters Python's `str.isspace()` and `re`'s `\s` accept.
///
/// Rust's `char::is_whitespace` is the Unicode `White_Space` property; Python also counts the
/// four information separators U+001C..=U+001F, so a port has to add them back.
pub fn is_python_space(c: char) -> bool {
    c.is_whitespace() || ('\u{1c}'..='\u{1f}').contains(&c)
}

/// `str.strip()` with no arguments.
pub fn python_strip(s: &str) -> &str {
    s.trim_matches(is_python_space)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn information_separators_count_as_space_like_in_python() {
        assert!(is_python_space('\u{1c}'));
        assert!(is_python_space('\u{1f}'));
        assert!(!is_python_space('\u{1b}'));
    }

    #[test]
    fn unicode_spaces_are_stripped_from_both_ends() {
        assert_eq!(python_strip("\u{a0}\u{3000} a b\t\u{2009}"), "a b");
        assert_eq!(python_strip("\u{200b}x"), "\u{200b}x", "zero-width space is not whitespace");
    }
}

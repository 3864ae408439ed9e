//! Property tests of the domain's parsers and rules on arbitrary input: none panics, and each
//! accepts exactly what the contract accepts. `PROPTEST_CASES` scales the run (default 256).

use chrono::DateTime;
use pfs_domain::text::{is_python_space, python_strip};
use pfs_domain::{
    BulkError, MAX_BULK_ITEMS, NameFilter, PageRequest, Pagination, PortfolioId, SearchError, SearchTerm, Timestamp,
    check_bulk_names,
};
use proptest::prelude::*;
use std::collections::HashSet;

/// Strings biased towards the interesting: hex digits, search-term characters, Unicode
/// whitespace (Python's included), combining marks, RTL, emoji and NUL.
fn tricky_string(max: usize) -> impl Strategy<Value = String> {
    let chars = prop_oneof![
        4 => proptest::char::range('0', 'z'),
        2 => prop::sample::select(vec![' ', '-', '_', '\t', '\n', '\u{1c}', '\u{a0}', '\u{3000}', '\u{2028}']),
        1 => prop::sample::select(vec!['\0', '\u{301}', '\u{202e}', '\u{5d0}', '😀', '\u{fffd}', 'é', 'İ', 'ß']),
        1 => any::<char>(),
    ];
    prop::collection::vec(chars, 0..max).prop_map(|v| v.into_iter().collect())
}

proptest! {
    #[test]
    fn ids_parse_exactly_24_hex_characters(raw in tricky_string(30)) {
        let valid = raw.len() == 24 && raw.bytes().all(|b| b.is_ascii_hexdigit());
        let parsed = PortfolioId::parse(&raw);
        prop_assert_eq!(parsed.is_some(), valid);
        if let Some(id) = parsed {
            prop_assert_eq!(id.to_hex(), raw.to_ascii_lowercase());
        }
    }

    #[test]
    fn ids_round_trip_in_either_case(bytes in any::<[u8; 12]>()) {
        let id = PortfolioId::from_bytes(bytes);
        let hex = id.to_hex();
        prop_assert_eq!(hex.len(), 24);
        prop_assert_eq!(PortfolioId::parse(&hex), Some(id));
        prop_assert_eq!(PortfolioId::parse(&hex.to_ascii_uppercase()), Some(id));
    }

    #[test]
    fn timestamps_exist_for_years_1_to_9999_and_render_back_to_themselves(millis in any::<i64>()) {
        let in_range = (-62_135_596_800_000..=253_402_300_799_999).contains(&millis);
        let stamp = Timestamp::from_millis(millis);
        prop_assert_eq!(stamp.is_some(), in_range);
        if let Some(stamp) = stamp {
            let text = stamp.to_rfc3339();
            prop_assert!(text.ends_with('Z'));
            let back = DateTime::parse_from_rfc3339(&text).expect("RFC 3339");
            prop_assert_eq!(back.timestamp_millis(), millis);
        }
    }

    #[test]
    fn timestamps_near_the_edges(offset in -2_000i64..2_000) {
        for edge in [-62_135_596_800_000i64, 253_402_300_799_999] {
            let millis = edge + offset;
            let expected = (-62_135_596_800_000..=253_402_300_799_999).contains(&millis);
            prop_assert_eq!(Timestamp::from_millis(millis).is_some(), expected);
        }
    }

    #[test]
    fn search_terms_follow_the_format_rule(raw in tricky_string(220)) {
        let allowed = |c: char| c.is_ascii_alphanumeric() || c == '-' || c == '_' || is_python_space(c);
        let expected = if python_strip(&raw).is_empty() {
            Err(SearchError::Empty)
        } else if raw.chars().count() > SearchTerm::MAX_CHARS || !raw.chars().all(allowed) {
            Err(SearchError::InvalidFormat)
        } else {
            Ok(raw.clone())
        };
        prop_assert_eq!(SearchTerm::parse(&raw).map(|t| t.as_str().to_owned()), expected);
    }

    #[test]
    fn long_valid_terms_are_refused_past_200_characters(len in 190usize..210) {
        let raw = "a".repeat(len);
        prop_assert_eq!(SearchTerm::parse(&raw).is_ok(), len <= SearchTerm::MAX_CHARS);
    }

    #[test]
    fn name_and_name_like_never_combine(
        name in proptest::option::of(tricky_string(12)),
        like in proptest::option::of(tricky_string(12)),
    ) {
        let given = |v: &Option<String>| v.as_deref().is_some_and(|s| !s.is_empty());
        let result = NameFilter::from_params(name.as_deref(), like.as_deref());
        if given(&name) && given(&like) {
            prop_assert_eq!(result, Err(SearchError::BothGiven));
        } else if let Ok(filter) = result {
            match filter {
                NameFilter::All => prop_assert!(name.is_none() && like.is_none()),
                NameFilter::Exact(term) => prop_assert_eq!(Some(term.as_str()), name.as_deref()),
                NameFilter::Contains(term) => prop_assert_eq!(Some(term.as_str()), like.as_deref()),
            }
        }
    }

    #[test]
    fn pagination_never_overflows_and_keeps_its_invariants(
        total in any::<u64>(),
        limit in 1u32..=PageRequest::MAX_LIMIT,
        offset in any::<u64>(),
    ) {
        let p = Pagination::compute(total, PageRequest { limit, offset });
        let limit64 = u64::from(limit);
        prop_assert_eq!(p.total_pages, total.div_ceil(limit64));
        prop_assert_eq!(p.current_page, offset / limit64);
        prop_assert_eq!(p.has_previous, offset >= limit64);
        prop_assert!(!p.has_next || p.current_page + 1 < p.total_pages);
        prop_assert_eq!(p.page_size, limit);
    }

    #[test]
    fn bulk_names_are_refused_exactly_when_empty_too_many_or_repeated(
        names in prop::collection::vec(prop_oneof![tricky_string(6), Just(" A ".to_owned()), Just("a".to_owned())], 0..110),
    ) {
        let result = check_bulk_names(names.iter().map(String::as_str));
        let distinct: HashSet<String> = names.iter().map(|n| python_strip(n).to_lowercase()).collect();
        match result {
            Err(BulkError::Empty) => prop_assert!(names.is_empty()),
            Err(BulkError::TooMany) => prop_assert!(names.len() > MAX_BULK_ITEMS),
            Err(BulkError::DuplicateNames(repeats)) => {
                prop_assert!(distinct.len() < names.len());
                prop_assert!(!repeats.is_empty() && repeats.iter().all(|r| names.contains(r)));
            }
            Ok(()) => prop_assert!(!names.is_empty() && names.len() <= MAX_BULK_ITEMS && distinct.len() == names.len()),
        }
    }
}

//! Property tests of the wire parsers on arbitrary input: dates, integers, JSON bodies, query
//! strings, cursors and `fields=` never panic, and accepted dates are in the contract's range.

use pfs_api::wire::{cursor, dto, json, lax, projection::Projection, query::Query};
use proptest::prelude::*;
use serde_json::Value;

/// Date-like strings: digits and the separators of ISO 8601 in any order, plus noise.
fn date_like() -> impl Strategy<Value = String> {
    let chars = prop_oneof![
        6 => proptest::char::range('0', '9'),
        3 => prop::sample::select(vec!['-', ':', 'T', 't', ' ', 'Z', 'z', '+', '.', ',', 'e', 'E']),
        1 => any::<char>(),
    ];
    prop::collection::vec(chars, 0..40).prop_map(|v| v.into_iter().collect())
}

proptest! {
    #[test]
    fn datetimes_never_panic_and_stay_in_years_1_to_9999(raw in date_like()) {
        if let Ok(stamp) = lax::datetime(&Value::String(raw)) {
            prop_assert!((-62_135_596_800_000..=253_402_300_799_999).contains(&stamp.millis()));
        }
    }

    #[test]
    fn numeric_datetimes_never_panic(seconds in any::<f64>()) {
        if let Some(number) = serde_json::Number::from_f64(seconds) {
            let _ = lax::datetime(&Value::Number(number));
        }
        let _ = lax::datetime(&Value::String(seconds.to_string()));
    }

    #[test]
    fn integers_from_strings_never_panic(raw in "[ +\\-0-9_.eE]{0,30}|\\PC{0,30}") {
        let _ = lax::int_from_str(&raw);
    }

    #[test]
    fn json_bodies_never_panic(bytes in prop::collection::vec(any::<u8>(), 0..200), is_json in any::<bool>()) {
        if let Ok(body) = json::read(is_json, &bytes) {
            let _ = dto::parse_bulk_body(body, dto::NameLimit(usize::MAX));
        }
    }

    #[test]
    fn json_shaped_bodies_never_panic_in_any_parser(raw in "[\\[\\]{}\",:0-9a-zA-Z \\\\ntrufalse.-]{0,80}") {
        for parse in [
            |b| dto::parse_new_body(b, dto::NameLimit(usize::MAX)).map(drop),
            |b| dto::parse_bulk_body(b, dto::NameLimit(usize::MAX)).map(drop),
            |b| dto::parse_update_body(b, dto::NameLimit(usize::MAX)).map(drop),
        ] {
            if let Ok(body) = json::read(true, raw.as_bytes()) {
                let _ = parse(body);
            }
        }
    }

    #[test]
    fn query_strings_cursors_and_projections_never_panic(raw in "\\PC{0,60}|[a-z=&%0-9A-F,_-]{0,60}") {
        let query = Query::parse(Some(&raw));
        let _ = query.int("limit", 50, 1, Some(1000));
        let _ = cursor::decode(&raw);
        let _ = Projection::parse(Some(&raw));
    }
}

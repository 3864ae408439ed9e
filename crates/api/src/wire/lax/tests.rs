use super::*;

fn ts(value: Value) -> String {
    datetime(&value).expect("valid datetime").to_rfc3339()
}

#[test]
fn integers_accept_what_pydantic_lax_mode_accepts() {
    assert_eq!(int(&json!(5)), Ok(5));
    assert_eq!(int(&json!(5.0)), Ok(5));
    assert_eq!(int(&json!(true)), Ok(1));
    assert_eq!(int(&json!("+3")), Ok(3));
    assert_eq!(int(&json!(" 7 ")), Ok(7));
    assert_eq!(int(&json!("1.0")), Ok(1));
    assert_eq!(int(&json!("-2")), Ok(-2));
}

#[test]
fn integers_reject_fractions_words_and_other_types() {
    assert_eq!(int(&json!(1.5)).unwrap_err().kind, "int_from_float");
    assert_eq!(int(&json!("10.5")).unwrap_err().kind, "int_parsing");
    assert_eq!(int(&json!("abc")).unwrap_err().kind, "int_parsing");
    assert_eq!(int(&json!("")).unwrap_err().kind, "int_parsing");
    assert_eq!(int(&json!([1])).unwrap_err().kind, "int_type");
    assert_eq!(int(&json!("99999999999999999999")).unwrap_err().kind, "int_parsing_size");
    assert_eq!(int(&json!(1e30)).unwrap_err().kind, "int_parsing_size");
}

#[test]
fn strings_are_not_coerced_from_numbers() {
    let issue = string(&json!(123)).unwrap_err();
    assert_eq!((issue.kind, issue.msg.as_str()), ("string_type", "Input should be a valid string"));
}

#[test]
fn datetimes_with_offsets_are_converted_to_utc() {
    assert_eq!(ts(json!("2024-01-15T10:30:00Z")), "2024-01-15T10:30:00.000Z");
    assert_eq!(ts(json!("2024-01-15T10:30:00+05:00")), "2024-01-15T05:30:00.000Z");
    assert_eq!(ts(json!("2024-01-15T10:30:00.123456+02:00")), "2024-01-15T08:30:00.123Z");
    assert_eq!(ts(json!("2024-01-15T10:30:00-0130")), "2024-01-15T12:00:00.000Z");
}

#[test]
fn naive_and_date_only_values_are_taken_as_utc() {
    assert_eq!(ts(json!("2024-01-15T10:30:00")), "2024-01-15T10:30:00.000Z");
    assert_eq!(ts(json!("2024-01-15 10:30")), "2024-01-15T10:30:00.000Z");
    assert_eq!(ts(json!("2024-01-15")), "2024-01-15T00:00:00.000Z");
    assert_eq!(ts(json!("2024-01-15T10:30:00.5Z")), "2024-01-15T10:30:00.500Z");
}

#[test]
fn unix_timestamps_work_as_numbers_and_strings() {
    assert_eq!(ts(json!(1_705_314_600)), "2024-01-15T10:30:00.000Z");
    assert_eq!(ts(json!("1705314600")), "2024-01-15T10:30:00.000Z");
    assert_eq!(ts(json!(1_705_314_600.25)), "2024-01-15T10:30:00.250Z");
    assert_eq!(ts(json!(1_705_314_600_000_i64)), "2024-01-15T10:30:00.000Z", "milliseconds above 2e10");
}

#[test]
fn malformed_datetimes_are_rejected_with_a_reason() {
    for (input, kind) in [
        ("not-a-date", "datetime_from_date_parsing"),
        ("2024-13-01", "datetime_from_date_parsing"),
        ("2024-02-30", "datetime_from_date_parsing"),
        ("2024/01/15", "datetime_from_date_parsing"),
        ("2024-01-15T25:00:00", "datetime_parsing"),
        ("2024-01-15T10:30:00+25:00", "datetime_parsing"),
        ("2024-01-15T10:30:00.1234567", "datetime_parsing"),
    ] {
        let issue = datetime(&json!(input)).unwrap_err();
        assert_eq!(issue.kind, kind, "{input}");
        assert!(issue.msg.starts_with("Input should be a valid datetime"), "{input}: {}", issue.msg);
        assert!(issue.ctx.is_some());
    }
    assert_eq!(datetime(&json!(true)).unwrap_err().kind, "datetime_type");
    assert_eq!(datetime(&json!({})).unwrap_err().kind, "datetime_type");
}

#[test]
fn years_beyond_9999_are_rejected() {
    assert!(datetime(&json!(1e15)).is_err());
    assert!(datetime(&json!("10000-01-01")).is_err());
}

#[test]
fn malformed_input_never_panics_the_parser() {
    for input in [
        "2024-01-0é",
        "é024-01-01",
        "2024-01-01T10:00+::",
        "2024-01-01T10:00+1:",
        "2024-01-01T10:00-:5",
        "2024-0é-01T00:00",
    ] {
        let issue = datetime(&json!(input)).unwrap_err();
        assert!(issue.kind.starts_with("datetime"), "{input}: {issue:?}");
    }
}

/// Every single-character substitution or deletion of a full timestamp: whatever the result,
/// parsing answers (a value or an issue) and never panics.
#[test]
fn no_single_character_mutation_panics() {
    let template: Vec<char> = "2024-01-15T10:30:00.123456+05:30".chars().collect();
    for i in 0..template.len() {
        for replacement in [Some('é'), Some('+'), Some('-'), Some(':'), Some('.'), Some('9'), Some('Z'), None] {
            let mut mutated = template.clone();
            match replacement {
                Some(c) => mutated[i] = c,
                None => {
                    mutated.remove(i);
                }
            }
            let input: String = mutated.into_iter().collect();
            let _ = datetime(&json!(input));
        }
    }
}

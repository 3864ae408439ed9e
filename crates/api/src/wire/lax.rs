//! Pydantic v2 lax-mode coercions for the three field types the API has.
//!
//! The original accepts e.g. `"5"` and `5.0` for an integer and Unix timestamps for a
//! datetime; clients rely on that, so the port accepts exactly the same inputs and rejects the
//! rest with Pydantic's error types and messages.

use super::Issue;
use chrono::{DateTime, FixedOffset, NaiveDate, NaiveDateTime, NaiveTime, TimeZone, Utc};
use pfs_domain::Timestamp;
use serde_json::{Value, json};

const INT_PARSING: &str = "Input should be a valid integer, unable to parse string as an integer";

/// `str`: only JSON strings (lax mode does not stringify numbers).
pub fn string(value: &Value) -> Result<String, Issue> {
    match value {
        Value::String(s) => Ok(s.clone()),
        other => Err(Issue::new("string_type", "Input should be a valid string", other.clone())),
    }
}

/// `int`: integers, floats without a fractional part, booleans, and numeric strings.
pub fn int(value: &Value) -> Result<i64, Issue> {
    match value {
        Value::Number(n) => {
            if let Some(i) = n.as_i64() {
                return Ok(i);
            }
            let f = n.as_f64().unwrap_or(f64::NAN);
            if n.is_u64() {
                Err(too_big(value))
            } else if !f.is_finite() {
                Err(Issue::new("finite_number", "Input should be a finite number", value.clone()))
            } else if f.fract() != 0.0 {
                Err(Issue::new(
                    "int_from_float",
                    "Input should be a valid integer, got a number with a fractional part",
                    value.clone(),
                ))
            } else if (-9.2e18..9.2e18).contains(&f) {
                Ok(f as i64)
            } else {
                Err(too_big(value))
            }
        }
        Value::Bool(b) => Ok(i64::from(*b)),
        Value::String(s) => int_from_str(s).map_err(|kind| match kind {
            IntError::Size => too_big(value),
            IntError::Parse => Issue::new("int_parsing", INT_PARSING, value.clone()),
        }),
        other => Err(Issue::new("int_type", "Input should be a valid integer", other.clone())),
    }
}

/// Python's `int` is unbounded but every store here keeps 64 bits, so larger values are a
/// clear 422 rather than an overflow later.
fn too_big(value: &Value) -> Issue {
    Issue::new("int_parsing_size", "Unable to parse input string as an integer, exceeded maximum size", value.clone())
}

#[derive(Debug, PartialEq)]
pub enum IntError {
    Parse,
    Size,
}

/// Pydantic's string-to-int rule: surrounding whitespace, an optional sign, digits, and an
/// optional fraction of zeros only (`"+3"` -> 3, `"1.0"` -> 1, `"10.5"` fails).
pub fn int_from_str(raw: &str) -> Result<i64, IntError> {
    let s = raw.trim();
    let s = match s.split_once('.') {
        Some((whole, fraction)) if fraction.bytes().all(|b| b == b'0') => whole,
        Some(_) => return Err(IntError::Parse),
        None => s,
    };
    let digits = s.strip_prefix(['+', '-']).unwrap_or(s);
    if digits.is_empty() || !digits.bytes().all(|b| b.is_ascii_digit()) {
        return Err(IntError::Parse);
    }
    s.parse::<i64>().map_err(|_| IntError::Size)
}

/// `datetime`: ISO 8601 / RFC 3339 strings (with `Z`, an offset, or naive = UTC), date-only
/// strings (midnight UTC), and Unix timestamps as numbers or numeric strings.
pub fn datetime(value: &Value) -> Result<Timestamp, Issue> {
    let out_of_range = || {
        Issue::new(
            "datetime_parsing",
            "Input should be a valid datetime, dates before 0001 or after 9999 are not supported",
            value.clone(),
        )
    };
    match value {
        Value::Number(n) => {
            let seconds = n.as_f64().ok_or_else(out_of_range)?;
            from_unix(seconds).ok_or_else(out_of_range)
        }
        Value::String(s) => {
            if let Some(seconds) = s.trim().parse::<f64>().ok().filter(|f| f.is_finite()) {
                return from_unix(seconds).ok_or_else(out_of_range);
            }
            parse_iso(s).map_err(|(kind, reason)| {
                let prefix = if kind == "datetime_from_date_parsing" {
                    "Input should be a valid datetime or date"
                } else {
                    "Input should be a valid datetime"
                };
                Issue::new(kind, format!("{prefix}, {reason}"), value.clone()).with_ctx(json!({ "error": reason }))
            })
        }
        other => Err(Issue::new("datetime_type", "Input should be a valid datetime", other.clone())),
    }
}

/// Seconds since the epoch, or milliseconds when larger than 2e10 (Pydantic's rule, so that
/// JavaScript `Date.now()` values work too).
fn from_unix(value: f64) -> Option<Timestamp> {
    let millis = if value.abs() > 2e10 { value } else { value * 1000.0 };
    if !millis.is_finite() || millis.abs() > 1e16 {
        return None;
    }
    Timestamp::from_millis(millis.floor() as i64)
}

type ParseError = (&'static str, &'static str);

fn parse_iso(s: &str) -> Result<Timestamp, ParseError> {
    let date_err = |reason| ("datetime_from_date_parsing", reason);
    let time_err = |reason| ("datetime_parsing", reason);
    let b = s.as_bytes();
    if b.len() < 10 {
        return Err(date_err("input is too short"));
    }
    // Checks bytes before slicing: a multi-byte character must never split a `str` slice.
    let num = |range: std::ops::Range<usize>, what| -> Result<u32, ParseError> {
        let digits = &b[range];
        if digits.iter().all(u8::is_ascii_digit) {
            Ok(digits.iter().fold(0, |n, d| n * 10 + u32::from(d - b'0')))
        } else {
            Err(date_err(what))
        }
    };
    if !b[..4].iter().all(u8::is_ascii_digit) {
        return Err(date_err("invalid character in year"));
    }
    if b[4] != b'-' || b[7] != b'-' {
        return Err(date_err("invalid date separator, expected `-`"));
    }
    let year = num(0..4, "invalid character in year")? as i32;
    let month = num(5..7, "invalid character in month")?;
    let day = num(8..10, "invalid character in day")?;
    if !(1..=12).contains(&month) {
        return Err(date_err("month value is outside expected range of 1-12"));
    }
    let date = NaiveDate::from_ymd_opt(year, month, day).ok_or(date_err("day value is outside expected range"))?;
    if b.len() == 10 {
        return to_timestamp(Utc.from_utc_datetime(&date.and_time(NaiveTime::MIN)));
    }
    if !matches!(b[10], b'T' | b't' | b' ' | b'_') {
        return Err(date_err("invalid datetime separator, expected `T`, `t`, `_` or space"));
    }
    let (time_part, offset) = split_offset(&s[11..]).map_err(time_err)?;
    let time = parse_time(time_part).map_err(time_err)?;
    let naive = NaiveDateTime::new(date, time);
    let instant: DateTime<Utc> = match offset {
        None => Utc.from_utc_datetime(&naive),
        Some(offset) => {
            offset.from_local_datetime(&naive).single().ok_or(time_err("invalid timezone offset"))?.with_timezone(&Utc)
        }
    };
    to_timestamp(instant)
}

fn to_timestamp(dt: DateTime<Utc>) -> Result<Timestamp, ParseError> {
    Timestamp::from_datetime(&dt).ok_or(("datetime_parsing", "dates before 0001 or after 9999 are not supported"))
}

/// Splits `HH:MM[:SS[.ffffff]]` from a trailing `Z`, `±HH:MM`, `±HHMM` or `±HH`.
fn split_offset(s: &str) -> Result<(&str, Option<FixedOffset>), &'static str> {
    if let Some(time) = s.strip_suffix(['Z', 'z']) {
        return Ok((time, FixedOffset::east_opt(0)));
    }
    let Some(pos) = s.rfind(['+', '-']) else {
        return Ok((s, None));
    };
    let (time, tz) = (&s[..pos], &s[pos + 1..]);
    let digits: String = tz.chars().filter(|c| *c != ':').collect();
    let valid_shape = matches!(tz.len(), 2 | 4 | 5) && (tz.len() != 5 || tz.as_bytes()[2] == b':');
    if !valid_shape || !matches!(digits.len(), 2 | 4) || !digits.bytes().all(|c| c.is_ascii_digit()) {
        return Err("invalid timezone sign");
    }
    let hours: i32 = digits[..2].parse().unwrap_or(99);
    let minutes: i32 = if digits.len() == 4 { digits[2..].parse().unwrap_or(99) } else { 0 };
    if hours > 23 || minutes > 59 {
        return Err("timezone offset must be less than 24 hours");
    }
    let seconds = (hours * 60 + minutes) * 60 * if s.as_bytes()[pos] == b'-' { -1 } else { 1 };
    Ok((time, FixedOffset::east_opt(seconds)))
}

fn parse_time(s: &str) -> Result<NaiveTime, &'static str> {
    let (hms, fraction) = match s.split_once(['.', ',']) {
        Some((hms, f)) => (hms, Some(f)),
        None => (s, None),
    };
    let parts: Vec<&str> = hms.split(':').collect();
    if !(2..=3).contains(&parts.len()) || parts.iter().any(|p| p.len() != 2 || !p.bytes().all(|c| c.is_ascii_digit())) {
        return Err(if s.len() < 5 { "input is too short" } else { "invalid character in hour" });
    }
    let field = |i: usize| parts.get(i).map_or(0, |p| p.parse::<u32>().unwrap_or(99));
    let (hour, minute, second) = (field(0), field(1), field(2));
    if hour > 23 {
        return Err("hour value is outside expected range of 0-23");
    }
    if minute > 59 {
        return Err("minute value is outside expected range of 0-59");
    }
    if second > 59 {
        return Err("second value is outside expected range of 0-59");
    }
    let micros = match fraction {
        None => 0,
        Some(f) if f.is_empty() || !f.bytes().all(|c| c.is_ascii_digit()) => {
            return Err("invalid character in second fraction");
        }
        Some(f) if f.len() > 6 => return Err("second fraction value is more than 6 digits long"),
        Some(f) => format!("{f:0<6}").parse::<u32>().unwrap_or(0),
    };
    NaiveTime::from_hms_micro_opt(hour, minute, second, micros).ok_or("invalid time")
}

#[cfg(test)]
mod tests;

//! One exported document: `{_id, name, dateCreated, version}` in MongoDB extended JSON.
//!
//! `mongoexport` writes relaxed extended JSON by default (`{"$oid": ...}`, `{"$date": "ISO"}`
//! and plain numbers) and canonical with `--jsonFormat=canonical` (`{"$date": {"$numberLong":
//! ...}}`, `{"$numberInt": ...}`); both are read. Other fields are ignored.

use chrono::DateTime;
use pfs_domain::{Portfolio, PortfolioId, Timestamp, Version};
use serde_json::{Map, Value};

/// A document read from the export, and whether its date had to come from its id.
#[derive(Debug, PartialEq)]
pub struct Parsed {
    pub portfolio: Portfolio,
    /// The original always wrote `dateCreated`; a document without one is dated by its
    /// ObjectId, whose first four bytes are its creation second.
    pub dated_from_id: bool,
}

/// Why a document cannot be imported, in words for the operator.
pub type Reason = String;

pub fn parse(value: &Value) -> Result<Parsed, Reason> {
    let doc = value.as_object().ok_or("not a JSON object")?;
    let id = object_id(doc.get("_id").ok_or("missing _id")?)?;
    let name = match doc.get("name") {
        Some(Value::String(name)) if !name.contains('\0') => name.clone(),
        Some(Value::String(_)) => return Err("name contains a NUL character".into()),
        Some(_) => return Err("name is not a string".into()),
        None => return Err("missing name".into()),
    };
    let (date_created, dated_from_id) = match doc.get("dateCreated") {
        None | Some(Value::Null) => (id_time(&id)?, true),
        Some(date) => (self::date(date)?, false),
    };
    let version = match doc.get("version") {
        None | Some(Value::Null) => Version::INITIAL,
        Some(v) => Version(int(v).ok_or("version is not a 64-bit integer")?),
    };
    Ok(Parsed { portfolio: Portfolio { id, name, date_created, version }, dated_from_id })
}

fn wrapped<'a>(value: &'a Value, key: &str) -> Option<&'a Value> {
    value.as_object().filter(|o| o.len() == 1).and_then(|o: &Map<String, Value>| o.get(key))
}

fn object_id(value: &Value) -> Result<PortfolioId, Reason> {
    let hex = wrapped(value, "$oid").unwrap_or(value).as_str().ok_or("_id is not an ObjectId")?;
    PortfolioId::parse(hex).ok_or_else(|| format!("_id {hex:?} is not 24 hex characters"))
}

fn date(value: &Value) -> Result<Timestamp, Reason> {
    let inner = wrapped(value, "$date").unwrap_or(value);
    let millis = match inner {
        Value::String(iso) => DateTime::parse_from_rfc3339(iso)
            .map_err(|e| format!("dateCreated {iso:?} is not an ISO 8601 date: {e}"))?
            .timestamp_millis(),
        other => int(other).ok_or("dateCreated is not a date")?,
    };
    Timestamp::from_millis(millis).ok_or_else(|| "dateCreated is outside years 1-9999".into())
}

fn id_time(id: &PortfolioId) -> Result<Timestamp, Reason> {
    let seconds = u32::from_be_bytes([id.as_bytes()[0], id.as_bytes()[1], id.as_bytes()[2], id.as_bytes()[3]]);
    Timestamp::from_millis(i64::from(seconds) * 1000).ok_or_else(|| "no dateCreated and no usable id time".into())
}

/// A plain JSON integer (or integral float), or `$numberInt`/`$numberLong`/`$numberDouble`.
fn int(value: &Value) -> Option<i64> {
    for key in ["$numberInt", "$numberLong", "$numberDouble"] {
        if let Some(text) = wrapped(value, key).and_then(Value::as_str) {
            return text.parse::<i64>().ok().or_else(|| integral(text.parse::<f64>().ok()?));
        }
    }
    value.as_i64().or_else(|| integral(value.as_f64()?))
}

fn integral(f: f64) -> Option<i64> {
    (f.fract() == 0.0 && (-9.2e18..9.2e18).contains(&f)).then_some(f as i64)
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    const ID: &str = "6740f1c2a1b2c3d4e5f60718";

    #[test]
    fn relaxed_extended_json_is_read() {
        let doc = json!({"_id": {"$oid": ID}, "name": "Tech Growth", "dateCreated": {"$date": "2024-01-15T10:30:00.123Z"}, "version": 3});
        let parsed = parse(&doc).unwrap();
        assert_eq!(parsed.portfolio.id.to_hex(), ID);
        assert_eq!(parsed.portfolio.date_created.to_rfc3339(), "2024-01-15T10:30:00.123Z");
        assert_eq!((parsed.portfolio.version, parsed.dated_from_id), (Version(3), false));
    }

    #[test]
    fn canonical_extended_json_is_read() {
        let doc = json!({"_id": {"$oid": ID}, "name": "x", "dateCreated": {"$date": {"$numberLong": "-1000"}}, "version": {"$numberInt": "7"}});
        let parsed = parse(&doc).unwrap();
        assert_eq!(parsed.portfolio.date_created.millis(), -1000);
        assert_eq!(parsed.portfolio.version, Version(7));
        let doc = json!({"_id": ID, "name": "x", "dateCreated": {"$date": 1_705_314_600_000_i64}, "version": {"$numberLong": "9007199254740993"}});
        assert_eq!(parse(&doc).unwrap().portfolio.version, Version(9_007_199_254_740_993));
    }

    #[test]
    fn a_missing_date_comes_from_the_object_id_and_a_missing_version_is_one() {
        let parsed = parse(&json!({"_id": {"$oid": ID}, "name": "x"})).unwrap();
        assert!(parsed.dated_from_id);
        assert_eq!(parsed.portfolio.date_created.millis(), 0x6740_f1c2 * 1000);
        assert_eq!(parsed.portfolio.version, Version(1));
    }

    #[test]
    fn malformed_documents_say_what_is_wrong() {
        for (doc, reason) in [
            (json!([1]), "not a JSON object"),
            (json!({"name": "x"}), "missing _id"),
            (json!({"_id": {"$oid": "xyz"}, "name": "x"}), "not 24 hex"),
            (json!({"_id": ID}), "missing name"),
            (json!({"_id": ID, "name": 5}), "not a string"),
            (json!({"_id": ID, "name": "x", "dateCreated": {"$date": "yesterday"}}), "not an ISO 8601"),
            (json!({"_id": ID, "name": "x", "version": 1.5}), "version"),
        ] {
            let err = parse(&doc).unwrap_err();
            assert!(err.contains(reason), "{doc}: {err}");
        }
    }
}

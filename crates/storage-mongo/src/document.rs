//! The original's document shape and its search filters, with nothing driver-specific leaking
//! past this file.
//!
//! A portfolio is `{_id: ObjectId, name: string, dateCreated: date, version: int}`, fields in
//! that order, exactly what the original (Beanie on PyMongo/Motor) writes. PyMongo encodes a
//! Python `int` as int32 when it fits and int64 otherwise, so `version` is written the same
//! way and either width is read.

use crate::errors::corrupt;
use mongodb::bson::{Bson, DateTime, Document, doc, oid::ObjectId};
use pfs_domain::{NameFilter, Portfolio, PortfolioId, Timestamp, Version};
use pfs_storage::StoreResult;

pub(crate) const ID: &str = "_id";
pub(crate) const NAME: &str = "name";
pub(crate) const DATE_CREATED: &str = "dateCreated";
pub(crate) const VERSION: &str = "version";

pub(crate) fn object_id(id: PortfolioId) -> ObjectId {
    ObjectId::from_bytes(*id.as_bytes())
}

pub(crate) fn date(at: Timestamp) -> DateTime {
    DateTime::from_millis(at.millis())
}

/// int32 when it fits, int64 otherwise: the width PyMongo would pick for the same number.
pub(crate) fn version(v: Version) -> Bson {
    i32::try_from(v.0).map_or(Bson::Int64(v.0), Bson::Int32)
}

pub(crate) fn to_document(p: &Portfolio) -> Document {
    doc! {
        ID: object_id(p.id),
        NAME: p.name.as_str(),
        DATE_CREATED: date(p.date_created),
        VERSION: version(p.version),
    }
}

/// Reads a stored document. Fields other than the four are ignored, so a document the
/// original writes with an extra field in a later release still reads.
pub(crate) fn from_document(doc: &Document) -> StoreResult<Portfolio> {
    let id = match doc.get(ID) {
        Some(Bson::ObjectId(oid)) => PortfolioId::from_bytes(oid.bytes()),
        _ => return Err(corrupt("_id is not an ObjectId")),
    };
    let name = match doc.get(NAME) {
        Some(Bson::String(name)) => name.clone(),
        _ => return Err(corrupt("name is not a string")),
    };
    let date_created = match doc.get(DATE_CREATED) {
        Some(Bson::DateTime(at)) => Timestamp::from_millis(at.timestamp_millis()),
        _ => None,
    }
    .ok_or_else(|| corrupt("dateCreated is not a date in years 1..=9999"))?;
    let version = match doc.get(VERSION) {
        Some(Bson::Int32(v)) => Version(i64::from(*v)),
        Some(Bson::Int64(v)) => Version(*v),
        _ => return Err(corrupt("version is not an integer")),
    };
    Ok(Portfolio { id, name, date_created, version })
}

/// The search filter, built exactly as the original builds it (contract §4.1): an anchored
/// (`Exact`) or unanchored (`Contains`) case-insensitive regex over the escaped term.
pub(crate) fn name_filter(filter: &NameFilter) -> Document {
    match filter {
        NameFilter::All => Document::new(),
        NameFilter::Exact(term) => name_regex(format!("^{}$", escape_regex(term.as_str()))),
        NameFilter::Contains(term) => name_regex(escape_regex(term.as_str())),
    }
}

fn name_regex(pattern: String) -> Document {
    doc! { NAME: { "$regex": pattern, "$options": "i" } }
}

/// Python's `re.escape` (3.7+): a backslash before each of ``()[]{}?*+-|^$\.&~#``, space and
/// `\t\n\r\v\f`. That set holds every PCRE metacharacter, and PCRE reads a backslash before
/// any other non-alphanumeric character as that literal character, so the pattern matches the
/// term literally; being Python's set, the pattern is byte-for-byte the one the original sends.
pub(crate) fn escape_regex(term: &str) -> String {
    let mut escaped = String::with_capacity(term.len() * 2);
    for c in term.chars() {
        if "()[]{}?*+-|^$\\.&~# \t\n\r\u{b}\u{c}".contains(c) {
            escaped.push('\\');
        }
        escaped.push(c);
    }
    escaped
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_regex_metacharacter_is_escaped() {
        assert_eq!(escape_regex(r"a.b*c+d?e^f$g|h\i"), r"a\.b\*c\+d\?e\^f\$g\|h\\i");
        assert_eq!(escape_regex("(x)[y]{z}"), r"\(x\)\[y\]\{z\}");
        assert_eq!(escape_regex("a-b c#d&e~f"), r"a\-b\ c\#d\&e\~f");
        assert_eq!(escape_regex("t\tn\n"), "t\\\tn\\\n");
    }

    #[test]
    fn letters_digits_underscores_and_non_ascii_stay_as_they_are() {
        assert_eq!(escape_regex("Tech_Growth_2024"), "Tech_Growth_2024");
        assert_eq!(escape_regex("café\u{a0}™"), "café\u{a0}™");
        assert_eq!(escape_regex(""), "");
    }

    #[test]
    fn filters_match_the_original_byte_for_byte() {
        let term = pfs_domain::SearchTerm::parse("Tech Growth-1").unwrap();
        let exact = name_filter(&NameFilter::Exact(term.clone()));
        assert_eq!(exact, doc! { "name": { "$regex": r"^Tech\ Growth\-1$", "$options": "i" } });
        let contains = name_filter(&NameFilter::Contains(term));
        assert_eq!(contains, doc! { "name": { "$regex": r"Tech\ Growth\-1", "$options": "i" } });
        assert!(name_filter(&NameFilter::All).is_empty());
    }

    #[test]
    fn versions_are_int32_when_they_fit_like_pymongo() {
        assert_eq!(version(Version(1)), Bson::Int32(1));
        assert_eq!(version(Version(-2_147_483_648)), Bson::Int32(i32::MIN));
        assert_eq!(version(Version(2_147_483_648)), Bson::Int64(2_147_483_648));
        assert_eq!(version(Version(i64::MIN)), Bson::Int64(i64::MIN));
    }

    #[test]
    fn documents_round_trip_with_either_integer_width() {
        let p = Portfolio {
            id: PortfolioId::generate(),
            name: "x".into(),
            date_created: Timestamp::from_millis(-86_400_123).unwrap(),
            version: Version(3_000_000_000),
        };
        let doc = to_document(&p);
        assert_eq!(doc.keys().collect::<Vec<_>>(), [ID, NAME, DATE_CREATED, VERSION]);
        assert_eq!(from_document(&doc).unwrap(), p);
        let mut narrow = doc.clone();
        narrow.insert(VERSION, Bson::Int64(7));
        assert_eq!(from_document(&narrow).unwrap().version, Version(7));
    }

    #[test]
    fn malformed_documents_are_backend_errors() {
        let p = Portfolio::new("x".into(), None, Version(1));
        for (field, value) in [
            (ID, Bson::String(p.id.to_hex())),
            (NAME, Bson::Null),
            (DATE_CREATED, Bson::String("2024-01-01".into())),
            (VERSION, Bson::Double(1.0)),
        ] {
            let mut doc = to_document(&p);
            doc.insert(field, value);
            assert!(matches!(from_document(&doc), Err(pfs_storage::StoreError::Backend(_))), "{field}");
        }
    }
}

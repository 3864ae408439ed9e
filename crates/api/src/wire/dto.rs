//! Request and response bodies.
//!
//! Requests are validated field by field from a [`serde_json::Value`] rather than through
//! serde derives, because clients see Pydantic's error list: every failing field, in field
//! order, with Pydantic's types and messages, and serde stops at the first error.

use super::json::Body;
use super::{Issue, lax};
use crate::loc;
use pfs_domain::{Pagination, Portfolio, Timestamp};
use serde::Serialize;
use serde_json::{Map, Value};
use utoipa::ToSchema;

/// A portfolio as every endpoint returns it: exactly these four keys, in this order.
#[derive(Debug, Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct PortfolioDto {
    /// 24 lowercase hex characters (a MongoDB ObjectId).
    #[schema(example = "6740f1c2a1b2c3d4e5f60718")]
    pub portfolio_id: String,
    pub name: String,
    /// RFC 3339, UTC, millisecond precision.
    #[schema(example = "2024-01-15T10:30:00.000Z", format = DateTime)]
    pub date_created: String,
    pub version: i64,
}

impl From<&Portfolio> for PortfolioDto {
    fn from(p: &Portfolio) -> Self {
        Self {
            portfolio_id: p.id.to_hex(),
            name: p.name.clone(),
            date_created: p.date_created.to_rfc3339(),
            version: p.version.0,
        }
    }
}

/// The v2 search response.
#[derive(Debug, Serialize, ToSchema)]
pub struct SearchResponse {
    #[schema(value_type = Vec<PortfolioDto>)]
    pub portfolios: super::projection::Portfolios,
    pub pagination: PaginationDto,
    /// Only with `cursor=`: the token for the next page, `null` on the last one.
    #[serde(rename = "nextCursor", skip_serializing_if = "Option::is_none")]
    #[schema(value_type = Option<String>)]
    pub next_cursor: Option<Option<String>>,
}

#[derive(Debug, Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct PaginationDto {
    pub total_elements: u64,
    pub total_pages: u64,
    /// `offset / limit`, 0-based, independent of the total; `null` when paging by cursor.
    pub current_page: Option<u64>,
    /// The requested `limit`, not the number of items returned.
    pub page_size: u32,
    pub has_next: bool,
    pub has_previous: bool,
}

impl From<Pagination> for PaginationDto {
    fn from(p: Pagination) -> Self {
        Self {
            total_elements: p.total_elements,
            total_pages: p.total_pages,
            current_page: Some(p.current_page),
            page_size: p.page_size,
            has_next: p.has_next,
            has_previous: p.has_previous,
        }
    }
}

/// Body of a v1 create and of each bulk item (documentation schema; parsing is [`parse_new`]).
#[derive(Debug, ToSchema)]
#[allow(dead_code)]
#[schema(as = PortfolioPostDTO)]
pub struct PortfolioPostSchema {
    /// Any string of at most `limits.max_name_bytes` UTF-8 bytes (4096 by default; longer is a
    /// 422 `string_too_long`), without U+0000; stored verbatim.
    name: String,
    /// Optional; defaults to now. ISO 8601 (offset, `Z` or naive = UTC), a date, or a Unix timestamp.
    #[schema(rename = "dateCreated", format = DateTime, nullable)]
    date_created: Option<String>,
    /// Optional; v1 turns missing/null/0 into 1, bulk only missing/null.
    #[schema(nullable)]
    version: Option<i64>,
}

/// Body of a v1 update (documentation schema; parsing is [`parse_update`]).
#[derive(Debug, ToSchema)]
#[allow(dead_code)]
#[schema(as = PortfolioPutDTO)]
pub struct PortfolioPutSchema {
    /// Required but not compared with the id in the path.
    #[schema(rename = "portfolioId")]
    portfolio_id: String,
    name: String,
    /// Optional; missing keeps the stored date.
    #[schema(rename = "dateCreated", format = DateTime, nullable)]
    date_created: Option<String>,
    /// Must equal the stored version (optimistic locking).
    version: i64,
}

/// A validated create request (v1 body or one bulk item), before version defaults.
#[derive(Debug, PartialEq)]
pub struct NewPortfolio {
    pub name: String,
    pub date_created: Option<Timestamp>,
    pub version: Option<i64>,
}

/// A validated update request.
#[derive(Debug, PartialEq)]
pub struct Update {
    pub name: String,
    pub date_created: Option<Timestamp>,
    pub version: i64,
}

type Parsed<T> = Result<T, Vec<Issue>>;

/// The longest name a create or update accepts, in UTF-8 bytes (`limits.max_name_bytes`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct NameLimit(pub usize);

/// The v1 create body: one object.
pub fn parse_new_body(body: Body, limit: NameLimit) -> Parsed<NewPortfolio> {
    parse_new(&require(body)?, limit).map_err(|issues| prefix(issues, &loc!["body"]))
}

/// The bulk body: a list of create objects. Every item is validated before any size check.
pub fn parse_bulk_body(body: Body, limit: NameLimit) -> Parsed<Vec<NewPortfolio>> {
    let items = match require(body)? {
        Value::Array(items) => items,
        other => {
            return Err(vec![Issue::new("list_type", "Input should be a valid list", other).at(&loc!["body"])]);
        }
    };
    let mut parsed = Vec::with_capacity(items.len());
    let mut issues = Vec::new();
    for (index, item) in items.iter().enumerate() {
        match parse_new(item, limit) {
            Ok(p) => parsed.push(p),
            Err(errs) => issues.extend(prefix(errs, &loc!["body", index])),
        }
    }
    if issues.is_empty() { Ok(parsed) } else { Err(issues) }
}

/// The v1 update body.
pub fn parse_update_body(body: Body, limit: NameLimit) -> Parsed<Update> {
    let value = require(body)?;
    let mut fields = Fields::of(&value).map_err(|issue| vec![issue.at(&loc!["body"])])?;
    let portfolio_id = fields.required("portfolioId", lax::string);
    let name = fields.required("name", |value| name(value, limit));
    let date_created = fields.optional("dateCreated", lax::datetime);
    let version = fields.required("version", lax::int);
    match (fields.finish(), portfolio_id, name, date_created, version) {
        (Ok(()), Some(_), Some(name), Some(date_created), Some(version)) => Ok(Update { name, date_created, version }),
        (result, ..) => Err(prefix(result.err().unwrap_or_default(), &loc!["body"])),
    }
}

/// One create object (a v1 body or a bulk item), with issue locations relative to it.
pub fn parse_new(value: &Value, limit: NameLimit) -> Parsed<NewPortfolio> {
    let mut fields = Fields::of(value).map_err(|issue| vec![issue])?;
    let name = fields.required("name", |value| name(value, limit));
    let date_created = fields.optional("dateCreated", lax::datetime);
    let version = fields.optional("version", lax::int);
    match (fields.finish(), name, date_created, version) {
        (Ok(()), Some(name), Some(date_created), Some(version)) => Ok(NewPortfolio { name, date_created, version }),
        (result, ..) => Err(result.err().unwrap_or_default()),
    }
}

/// Any string up to `limit` bytes, except one holding U+0000: PostgreSQL cannot store it, so
/// no backend accepts it. Both are deliberate narrowings of what the original took (see the
/// README): the length bounds every cached portfolio, event and list batch by bytes. A longer
/// name is Pydantic's `string_too_long` (its `max_length` counts bytes here, not characters).
fn name(value: &Value, limit: NameLimit) -> Result<String, Issue> {
    let name = lax::string(value)?;
    if name.len() > limit.0 {
        return Err(Issue::new(
            "string_too_long",
            format!("String should have at most {} bytes", limit.0),
            value.clone(),
        )
        .with_ctx(serde_json::json!({ "max_length": limit.0 })));
    }
    if name.contains('\0') {
        return Err(Issue::new(
            "value_error",
            "Value error, name must not contain NUL (U+0000) characters",
            value.clone(),
        ));
    }
    Ok(name)
}

/// A missing body (or JSON `null`) is one `missing` issue at `["body"]`; raw text is kept as a
/// string so that the model or list check rejects it with the text as `input`.
fn require(body: Body) -> Parsed<Value> {
    match body {
        Body::Missing => Err(vec![Issue::missing(Value::Null).at(&loc!["body"])]),
        Body::Json(value) => Ok(value),
        Body::Text(text) => Ok(Value::String(text)),
    }
}

fn prefix(issues: Vec<Issue>, at: &[Value]) -> Vec<Issue> {
    issues.into_iter().map(|issue| issue.at(at)).collect()
}

/// Field-by-field validation of one object, collecting every issue.
struct Fields<'a> {
    object: &'a Map<String, Value>,
    whole: &'a Value,
    issues: Vec<Issue>,
}

impl<'a> Fields<'a> {
    fn of(value: &'a Value) -> Result<Self, Issue> {
        match value {
            Value::Object(object) => Ok(Self { object, whole: value, issues: Vec::new() }),
            other => Err(Issue::new(
                "model_attributes_type",
                "Input should be a valid dictionary or object to extract fields from",
                other.clone(),
            )),
        }
    }

    fn required<T>(&mut self, key: &'static str, parse: impl FnOnce(&Value) -> Result<T, Issue>) -> Option<T> {
        let result = match self.object.get(key) {
            None => Err(Issue::missing(self.whole.clone())),
            Some(value) => parse(value),
        };
        self.record(key, result)
    }

    /// Missing and `null` both mean "not supplied".
    fn optional<T>(&mut self, key: &'static str, parse: fn(&Value) -> Result<T, Issue>) -> Option<Option<T>> {
        match self.object.get(key) {
            None | Some(Value::Null) => Some(None),
            Some(value) => {
                let result = parse(value);
                self.record(key, result).map(Some)
            }
        }
    }

    fn record<T>(&mut self, key: &'static str, result: Result<T, Issue>) -> Option<T> {
        result.map_err(|issue| self.issues.push(issue.at(&loc![key]))).ok()
    }

    fn finish(self) -> Result<(), Vec<Issue>> {
        if self.issues.is_empty() { Ok(()) } else { Err(self.issues) }
    }
}

#[cfg(test)]
mod tests;

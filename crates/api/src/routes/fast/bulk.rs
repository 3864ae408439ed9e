//! `POST /api/fast/portfolios/bulk`: the original's fast-path bulk create.
//!
//! Its checks, in its order: body size (413), JSON syntax (400 `Invalid JSON: <Python's
//! message>`), a list (400), 1 to 100 items (400 / 413), each item an object with a non-empty
//! `name` that validates as a create body (400 `Invalid portfolio at index i: ...`, the rest
//! in Pydantic's text format). Then the original's service refused duplicate names within the
//! batch and names already stored (case-insensitive), but its handler turned those refusals
//! into a bare 500 `Internal server error during fast bulk creation` (contract §7 calls it a
//! bug). Decision: they are answered 400 with the service's own messages (`Duplicate
//! portfolio names found: ...`, `Portfolios already exist: ...`), so a client learns what to
//! fix instead of retrying a 500. The stored-names check and the insert are separate steps,
//! as in the original: two racing requests can both pass it. Infrastructure failures keep the
//! 500 (503 with `Retry-After` when the database is unreachable, like every route).

use super::{MAX_REQUEST_BYTES, PROCESSING_TIME, elapsed_ms, python_float};
use crate::error::ApiError;
use crate::extract::body_error;
use crate::state::AppState;
use crate::wire::dto::{self, PortfolioDto};
use crate::wire::{Issue, json::python_error};
use axum::Json;
use axum::body::Bytes;
use axum::extract::{FromRequest, Request, State};
use axum::http::{HeaderName, StatusCode, header};
use axum::response::{IntoResponse, Response};
use pfs_domain::text::python_strip;
use pfs_domain::{MAX_BULK_ITEMS, NameFilter, PageRequest, Portfolio, SearchTerm, Version};
use serde_json::{Value, json};
use std::collections::HashSet;
use std::time::Instant;

/// The original's 500 for any other failure.
pub const FAST_BULK_FAILURE: &str = "Internal server error during fast bulk creation";

/// Create 1 to 100 portfolios (legacy fast path; use `POST /api/v2/portfolios`).
#[utoipa::path(post, path = "/api/fast/portfolios/bulk", tag = "fast", operation_id = "fast_bulk_create",
    request_body = Vec<dto::PortfolioPostSchema>,
    responses(
        (status = 201, description = "{portfolios, count, processingTimeMs}; headers X-Processing-Time-Ms, X-Portfolio-Count"),
        (status = 400, description = "Invalid JSON, not a list, empty, invalid item, duplicate or existing names"),
        (status = 413, description = "Body over 1 MiB, or more than 100 portfolios")))]
#[deprecated = "legacy route of the original service"]
pub async fn create(State(state): State<AppState>, request: Request) -> Result<Response, Response> {
    let start = Instant::now();
    let declared =
        request.headers().get(header::CONTENT_LENGTH).and_then(|v| v.to_str().ok()?.trim().parse::<usize>().ok());
    // Checked before reading, so the original's 413 is given even above `server.max_body_bytes`.
    if let Some(size) = declared.filter(|size| *size > MAX_REQUEST_BYTES) {
        let detail = format!("Request too large: {size} bytes exceeds {MAX_REQUEST_BYTES} bytes");
        return Err(with_status(StatusCode::PAYLOAD_TOO_LARGE, detail));
    }
    let body = Bytes::from_request(request, &()).await.map_err(|e| body_error(e).into_response())?;
    if body.len() > MAX_REQUEST_BYTES {
        let size = body.len();
        let detail = format!("Request too large: {size} bytes exceeds {MAX_REQUEST_BYTES} bytes");
        return Err(with_status(StatusCode::PAYLOAD_TOO_LARGE, detail));
    }
    let items = parse(&body)?;
    let mut portfolios = Vec::with_capacity(items.len());
    for (index, item) in items.iter().enumerate() {
        let invalid = |why: String| bad_request(format!("Invalid portfolio at index {index}: {why}"));
        if !item.is_object() {
            return Err(invalid(format!("Item {index} must be an object")));
        }
        if !item.get("name").is_some_and(truthy) {
            return Err(invalid(format!("Item {index} missing required field 'name'")));
        }
        let new = dto::parse_new(item, state.name_limit()).map_err(|issues| invalid(pydantic_text(&issues)))?;
        portfolios.push(Portfolio::new(new.name, new.date_created, Version::for_bulk_create(new.version)));
    }
    refuse_duplicates(&portfolios)?;
    refuse_existing(&state, &portfolios).await?;
    let store_err = |e| ApiError::from_store(e, FAST_BULK_FAILURE).into_response();
    state.portfolios().insert_many(&portfolios).await.map_err(store_err)?;
    crate::routes::v2::bulk_stored(&portfolios);
    let took = elapsed_ms(start);
    let body = json!({
        "portfolios": portfolios.iter().map(PortfolioDto::from).collect::<Vec<_>>(),
        "count": portfolios.len(),
        "processingTimeMs": took
    });
    let count = HeaderName::from_static("x-portfolio-count");
    Ok((StatusCode::CREATED, [(PROCESSING_TIME, python_float(took)), (count, portfolios.len().into())], Json(body))
        .into_response())
}

/// The body as a list of 1 to 100 items, with the original's messages.
fn parse(body: &[u8]) -> Result<Vec<Value>, Response> {
    let body = body.strip_prefix(b"\xef\xbb\xbf").unwrap_or(body);
    let value: Value = serde_json::from_slice(body).map_err(|_| {
        let text = String::from_utf8_lossy(body);
        let (position, message) = python_error(&text).unwrap_or((0, "Expecting value".into()));
        let (line, column) = line_and_column(&text, position);
        bad_request(format!("Invalid JSON: {message}: line {line} column {column} (char {position})"))
    })?;
    let Value::Array(items) = value else {
        return Err(bad_request("Request must be a list of portfolios".into()));
    };
    match items.len() {
        0 => Err(bad_request("Request must contain at least 1 portfolio".into())),
        n if n > MAX_BULK_ITEMS => {
            let detail = format!("Bulk request too large: {n} portfolios exceeds {MAX_BULK_ITEMS} limit");
            Err(with_status(StatusCode::PAYLOAD_TOO_LARGE, detail))
        }
        _ => Ok(items),
    }
}

/// Python's `json` position: 1-based line, and column counted from the last newline.
fn line_and_column(text: &str, position: usize) -> (usize, usize) {
    let before: Vec<char> = text.chars().take(position).collect();
    let line = before.iter().filter(|c| **c == '\n').count() + 1;
    let column = position - before.iter().rposition(|c| *c == '\n').map_or(0, |i| i + 1) + 1;
    (line, column)
}

/// Python's truthiness of a JSON value.
fn truthy(value: &Value) -> bool {
    match value {
        Value::Null => false,
        Value::Bool(b) => *b,
        Value::Number(n) => n.as_f64().is_some_and(|f| f != 0.0),
        Value::String(s) => !s.is_empty(),
        Value::Array(a) => !a.is_empty(),
        Value::Object(o) => !o.is_empty(),
    }
}

/// Every repeated occurrence (after `strip().lower()`), raw, in order.
fn refuse_duplicates(portfolios: &[Portfolio]) -> Result<(), Response> {
    let mut seen = HashSet::new();
    let repeats: Vec<&str> = portfolios
        .iter()
        .map(|p| p.name.as_str())
        .filter(|name| !seen.insert(python_strip(name).to_lowercase()))
        .collect();
    if repeats.is_empty() {
        return Ok(());
    }
    Err(bad_request(format!("Duplicate portfolio names found: {}", repeats.join(", "))))
}

/// Names already stored, matched whole and case-insensitively, as stored.
async fn refuse_existing(state: &AppState, portfolios: &[Portfolio]) -> Result<(), Response> {
    let store = state.portfolios();
    let mut existing = Vec::new();
    for portfolio in portfolios {
        let Some(term) = SearchTerm::literal(&portfolio.name) else { continue };
        let page = PageRequest { limit: 1, offset: 0 };
        let found = store
            .search(&NameFilter::Exact(term), page)
            .await
            .map_err(|e| ApiError::from_store(e, FAST_BULK_FAILURE).into_response())?;
        existing.extend(found.items.into_iter().map(|p| p.name));
    }
    if existing.is_empty() {
        return Ok(());
    }
    Err(bad_request(format!("Portfolios already exist: {}", existing.join(", "))))
}

fn bad_request(detail: String) -> Response {
    ApiError::BadRequest(detail).into_response()
}

/// `{"detail": ...}` with a status `ApiError` has no variant for.
fn with_status(status: StatusCode, detail: String) -> Response {
    (status, Json(json!({ "detail": detail }))).into_response()
}

/// Pydantic's text for a failed model, as the original's message carried it.
fn pydantic_text(issues: &[Issue]) -> String {
    let plural = if issues.len() == 1 { "" } else { "s" };
    let mut text = format!("{} validation error{plural} for PortfolioPostDTO", issues.len());
    for issue in issues {
        let loc: Vec<String> =
            issue.loc.iter().map(|part| part.as_str().map_or_else(|| part.to_string(), str::to_owned)).collect();
        text.push_str(&format!(
            "\n{}\n  {} [type={}, input_value={}, input_type={}]\n    For further information visit https://errors.pydantic.dev/2.11/v/{}",
            loc.join("."),
            issue.msg,
            issue.kind,
            python_repr(&issue.input),
            python_type(&issue.input),
            issue.kind
        ));
    }
    text
}

fn python_repr(value: &Value) -> String {
    match value {
        Value::Null => "None".into(),
        Value::Bool(true) => "True".into(),
        Value::Bool(false) => "False".into(),
        Value::Number(n) => n.to_string(),
        Value::String(s) => format!("'{}'", s.replace('\\', "\\\\").replace('\'', "\\'").replace('\n', "\\n")),
        Value::Array(items) => format!("[{}]", items.iter().map(python_repr).collect::<Vec<_>>().join(", ")),
        Value::Object(map) => format!(
            "{{{}}}",
            map.iter()
                .map(|(k, v)| format!("{}: {}", python_repr(&Value::String(k.clone())), python_repr(v)))
                .collect::<Vec<_>>()
                .join(", ")
        ),
    }
}

fn python_type(value: &Value) -> &'static str {
    match value {
        Value::Null => "NoneType",
        Value::Bool(_) => "bool",
        Value::Number(n) if n.is_f64() => "float",
        Value::Number(_) => "int",
        Value::String(_) => "str",
        Value::Array(_) => "list",
        Value::Object(_) => "dict",
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn json_positions_are_pythons_line_and_column() {
        assert_eq!(line_and_column("", 0), (1, 1));
        assert_eq!(line_and_column("[1,\n 2,]", 7), (2, 4));
    }

    #[test]
    fn a_bad_item_reads_like_pydantics_message() {
        let issue = Issue::new("string_type", "Input should be a valid string", json!(5)).at(&crate::loc!["name"]);
        assert_eq!(
            pydantic_text(&[issue]),
            "1 validation error for PortfolioPostDTO\nname\n  Input should be a valid string \
             [type=string_type, input_value=5, input_type=int]\n    For further information visit \
             https://errors.pydantic.dev/2.11/v/string_type"
        );
    }
}

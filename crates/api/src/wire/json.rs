//! Request bodies, read the way FastAPI reads them.
//!
//! FastAPI parses a body as JSON when the `Content-Type` is missing or JSON-ish, and otherwise
//! hands the raw text to validation (which then fails with a type error). Syntax errors are
//! reported with the character offset and message of Python's `json` module; [`python_error`]
//! reproduces them, because the offset is part of the 422 `loc`.

use super::Issue;
use crate::loc;
use http::HeaderMap;
use serde_json::{Value, json};

/// A request body before validation.
#[derive(Debug, PartialEq)]
pub enum Body {
    /// Empty, or the JSON literal `null`: Pydantic reports the body as missing.
    Missing,
    Json(Value),
    /// A non-JSON content type: validated as a string, so it fails with a type error.
    Text(String),
}

/// Reads `bytes` as JSON when `is_json` (see [`is_json_content_type`]); a JSON syntax error
/// becomes a `json_invalid` issue.
pub fn read(is_json: bool, bytes: &[u8]) -> Result<Body, Issue> {
    if bytes.is_empty() {
        return Ok(Body::Missing);
    }
    if !is_json {
        return Ok(Body::Text(String::from_utf8_lossy(bytes).into_owned()));
    }
    let bytes = bytes.strip_prefix(b"\xef\xbb\xbf").unwrap_or(bytes);
    match serde_json::from_slice::<Value>(bytes) {
        Ok(Value::Null) => Ok(Body::Missing),
        Ok(value) => Ok(Body::Json(value)),
        Err(_) => {
            let text = String::from_utf8_lossy(bytes);
            let (position, message) = python_error(&text).unwrap_or((0, "Expecting value".into()));
            Err(Issue::new("json_invalid", "JSON decode error", json!({}))
                .at(&loc!["body", position])
                .with_ctx(json!({ "error": message })))
        }
    }
}

/// FastAPI's rule: no content type, `application/json`, or any `application/*+json`.
pub fn is_json_content_type(headers: &HeaderMap) -> bool {
    let Some(value) = headers.get(http::header::CONTENT_TYPE) else {
        return true;
    };
    let Ok(value) = value.to_str() else {
        return false;
    };
    let essence = value.split(';').next().unwrap_or("").trim().to_ascii_lowercase();
    match essence.split_once('/') {
        Some(("application", subtype)) => subtype == "json" || subtype.ends_with("+json"),
        _ => false,
    }
}

/// Where and why Python's `json.loads` rejects `text`: `(character offset, message)`, or
/// `None` if Python would accept it (e.g. `NaN`, which serde_json refuses).
pub fn python_error(text: &str) -> Option<(usize, String)> {
    let chars: Vec<char> = text.chars().collect();
    let mut scanner = Scanner { s: &chars, depth: 0 };
    let start = scanner.skip_ws(0);
    let end = match scanner.value(start) {
        Ok(end) => end,
        Err(err) => return Some(err),
    };
    let end = scanner.skip_ws(end);
    (end != chars.len()).then(|| (end, "Extra data".to_owned()))
}

/// A port of CPython's `json.scanner`/`json.decoder` error paths, over characters.
struct Scanner<'a> {
    s: &'a [char],
    depth: usize,
}

type Scan = Result<usize, (usize, String)>;

/// Deeper nesting than this is reported instead of risking the stack; CPython would fail
/// with a `RecursionError` long before a body limit is reached.
const MAX_DEPTH: usize = 512;

impl Scanner<'_> {
    fn at(&self, i: usize) -> Option<char> {
        self.s.get(i).copied()
    }

    fn skip_ws(&self, mut i: usize) -> usize {
        while matches!(self.at(i), Some(' ' | '\t' | '\n' | '\r')) {
            i += 1;
        }
        i
    }

    fn fail(i: usize, msg: &str) -> Scan {
        Err((i, msg.to_owned()))
    }

    fn literal(&self, i: usize, word: &str) -> bool {
        word.chars().enumerate().all(|(k, c)| self.at(i + k) == Some(c))
    }

    fn value(&mut self, i: usize) -> Scan {
        match self.at(i) {
            Some('"') => self.string(i + 1),
            Some('{') => self.nested(i, Self::object),
            Some('[') => self.nested(i, Self::array),
            _ => {
                for word in ["null", "true", "false", "NaN", "Infinity", "-Infinity"] {
                    if self.literal(i, word) {
                        return Ok(i + word.chars().count());
                    }
                }
                self.number(i).map_or_else(|| Self::fail(i, "Expecting value"), Ok)
            }
        }
    }

    fn nested(&mut self, i: usize, parse: fn(&mut Self, usize) -> Scan) -> Scan {
        if self.depth >= MAX_DEPTH {
            return Self::fail(i, "Maximum nesting depth exceeded");
        }
        self.depth += 1;
        let result = parse(self, i + 1);
        self.depth -= 1;
        result
    }

    /// `-?(0|[1-9][0-9]*)(\.[0-9]+)?([eE][-+]?[0-9]+)?`, or `None` if nothing matches.
    fn number(&self, start: usize) -> Option<usize> {
        let digits = |mut i: usize| {
            let from = i;
            while self.at(i).is_some_and(|c| c.is_ascii_digit()) {
                i += 1;
            }
            (i > from).then_some(i)
        };
        let mut i = start + usize::from(self.at(start) == Some('-'));
        i = match self.at(i)? {
            '0' => i + 1,
            '1'..='9' => digits(i)?,
            _ => return None,
        };
        if self.at(i) == Some('.')
            && let Some(end) = digits(i + 1)
        {
            i = end;
        }
        if matches!(self.at(i), Some('e' | 'E')) {
            let sign = usize::from(matches!(self.at(i + 1), Some('+' | '-')));
            if let Some(end) = digits(i + 1 + sign) {
                i = end;
            }
        }
        Some(i)
    }

    /// After the opening quote at `begin - 1`.
    fn string(&self, begin: usize) -> Scan {
        let mut i = begin;
        loop {
            match self.at(i) {
                None => return Self::fail(begin - 1, "Unterminated string starting at"),
                Some('"') => return Ok(i + 1),
                Some('\\') => match self.at(i + 1) {
                    None => return Self::fail(begin - 1, "Unterminated string starting at"),
                    Some('"' | '\\' | '/' | 'b' | 'f' | 'n' | 'r' | 't') => i += 2,
                    Some('u') => {
                        let hex = (2..6).all(|k| self.at(i + k).is_some_and(|c| c.is_ascii_hexdigit()));
                        if !hex {
                            return Self::fail(i, "Invalid \\uXXXX escape");
                        }
                        i += 6;
                    }
                    Some(_) => return Self::fail(i, "Invalid \\escape"),
                },
                Some(c) if (c as u32) < 0x20 => {
                    return Self::fail(i, "Invalid control character at");
                }
                Some(_) => i += 1,
            }
        }
    }

    fn object(&mut self, start: usize) -> Scan {
        let mut i = self.skip_ws(start);
        if self.at(i) == Some('}') {
            return Ok(i + 1);
        }
        loop {
            if self.at(i) != Some('"') {
                return Self::fail(i, "Expecting property name enclosed in double quotes");
            }
            let end = self.string(i + 1)?;
            i = self.skip_ws(end);
            if self.at(i) != Some(':') {
                return Self::fail(i, "Expecting ':' delimiter");
            }
            i = self.skip_ws(i + 1);
            let end = self.value(i)?;
            i = self.skip_ws(end);
            match self.at(i) {
                Some('}') => return Ok(i + 1),
                Some(',') => i = self.skip_ws(i + 1),
                _ => return Self::fail(i, "Expecting ',' delimiter"),
            }
        }
    }

    fn array(&mut self, start: usize) -> Scan {
        let mut i = self.skip_ws(start);
        if self.at(i) == Some(']') {
            return Ok(i + 1);
        }
        loop {
            let end = self.value(i)?;
            i = self.skip_ws(end);
            match self.at(i) {
                Some(']') => return Ok(i + 1),
                Some(',') => i = self.skip_ws(i + 1),
                _ => return Self::fail(i, "Expecting ',' delimiter"),
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn err(text: &str) -> (usize, String) {
        python_error(text).expect("invalid JSON")
    }

    #[test]
    fn positions_and_messages_match_cpython() {
        assert_eq!(err(""), (0, "Expecting value".into()));
        assert_eq!(err("{\"name\": }"), (9, "Expecting value".into()));
        assert_eq!(err("{\"name\": \"x\""), (12, "Expecting ',' delimiter".into()));
        assert_eq!(err("{name: 1}"), (1, "Expecting property name enclosed in double quotes".into()));
        assert_eq!(err("{\"a\" 1}"), (5, "Expecting ':' delimiter".into()));
        assert_eq!(err("{\"a\": 1,}"), (8, "Expecting property name enclosed in double quotes".into()));
        assert_eq!(err("[1, 2,]"), (6, "Expecting value".into()));
        assert_eq!(err("{} x"), (3, "Extra data".into()));
        assert_eq!(err("{\"a\": \"abc"), (6, "Unterminated string starting at".into()));
        assert_eq!(err("01"), (1, "Extra data".into()));
        assert_eq!(err("[\"a\tb\"]"), (3, "Invalid control character at".into()));
    }

    #[test]
    fn offsets_count_characters_not_bytes() {
        assert_eq!(err("{\"é\": }"), (6, "Expecting value".into()));
    }

    #[test]
    fn valid_json_and_python_extensions_are_accepted() {
        assert_eq!(python_error("{\"a\": [1, -2.5e3, true, null, \"\\u00e9\"]}"), None);
        assert_eq!(python_error(" NaN "), None);
    }

    #[test]
    fn deep_nesting_is_reported_without_exhausting_the_stack() {
        let deep = "[".repeat(100_000);
        assert_eq!(err(&deep).1, "Maximum nesting depth exceeded");
    }

    #[test]
    fn bodies_are_read_per_content_type() {
        let mut headers = HeaderMap::new();
        assert!(is_json_content_type(&headers), "no content type means JSON");
        headers.insert("content-type", "application/vnd.api+json; charset=utf-8".parse().unwrap());
        assert!(is_json_content_type(&headers));
        headers.insert("content-type", "text/plain".parse().unwrap());
        assert!(!is_json_content_type(&headers));
        assert_eq!(read(true, b""), Ok(Body::Missing));
        assert_eq!(read(true, b"null"), Ok(Body::Missing));
        assert_eq!(read(true, b"[1]"), Ok(Body::Json(json!([1]))));
        assert_eq!(read(false, b"{}"), Ok(Body::Text("{}".into())));
    }

    #[test]
    fn syntax_errors_become_json_invalid_issues() {
        let issue = read(true, b"{\"name\": }").unwrap_err();
        assert_eq!(issue.kind, "json_invalid");
        assert_eq!(issue.loc, loc!["body", 9]);
        assert_eq!(issue.ctx, Some(json!({"error": "Expecting value"})));
    }
}

//! Query strings, parsed like Starlette: `+` is a space, and a repeated parameter keeps its
//! last value.

use super::{Issue, lax};
use crate::loc;
use serde_json::{Value, json};
use std::collections::HashMap;

/// The decoded parameters of one request.
#[derive(Debug, Default)]
pub struct Query(HashMap<String, String>);

impl Query {
    pub fn parse(raw: Option<&str>) -> Self {
        Self(url::form_urlencoded::parse(raw.unwrap_or("").as_bytes()).into_owned().collect())
    }

    pub fn get(&self, name: &str) -> Option<&str> {
        self.0.get(name).map(String::as_str)
    }

    /// An optional integer with bounds, reported in Pydantic's words (the input stays the
    /// raw string, as FastAPI shows it).
    pub fn int(&self, name: &'static str, default: i64, min: i64, max: Option<i64>) -> Result<i64, Issue> {
        match self.get(name) {
            None => Ok(default),
            Some(raw) => bounded(name, raw, min, max),
        }
    }

    /// A required integer parameter.
    pub fn required_int(&self, name: &'static str) -> Result<i64, Issue> {
        match self.get(name) {
            None => Err(Issue::missing(Value::Null).at(&loc!["query", name])),
            Some(raw) => bounded(name, raw, i64::MIN, None),
        }
    }
}

fn bounded(name: &'static str, raw: &str, min: i64, max: Option<i64>) -> Result<i64, Issue> {
    let value = lax::int(&Value::from(raw)).map_err(|issue| issue.at(&loc!["query", name]))?;
    if value < min {
        return Err(Issue::new(
            "greater_than_equal",
            format!("Input should be greater than or equal to {min}"),
            raw.into(),
        )
        .at(&loc!["query", name])
        .with_ctx(json!({ "ge": min })));
    }
    if let Some(max) = max.filter(|max| value > *max) {
        return Err(Issue::new("less_than_equal", format!("Input should be less than or equal to {max}"), raw.into())
            .at(&loc!["query", name])
            .with_ctx(json!({ "le": max })));
    }
    Ok(value)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_last_repeated_value_wins_and_plus_is_a_space() {
        let q = Query::parse(Some("limit=5&limit=7&name=a+b%20c"));
        assert_eq!(q.get("limit"), Some("7"));
        assert_eq!(q.get("name"), Some("a b c"));
    }

    #[test]
    fn bounds_are_reported_with_the_raw_input_and_ctx() {
        let q = Query::parse(Some("limit=0&offset=-1&big=1001"));
        let issue = q.int("limit", 50, 1, Some(1000)).unwrap_err();
        assert_eq!(
            serde_json::to_value(&issue).unwrap(),
            json!({
                "type": "greater_than_equal", "loc": ["query", "limit"],
                "msg": "Input should be greater than or equal to 1", "input": "0", "ctx": {"ge": 1}
            })
        );
        let issue = q.int("big", 50, 1, Some(1000)).unwrap_err();
        assert_eq!(issue.ctx, Some(json!({"le": 1000})));
        assert_eq!(q.int("absent", 50, 1, Some(1000)), Ok(50));
    }

    #[test]
    fn unparseable_and_missing_values_are_reported() {
        let q = Query::parse(Some("limit=abc"));
        let issue = q.int("limit", 50, 1, Some(1000)).unwrap_err();
        assert_eq!((issue.kind, issue.input.clone()), ("int_parsing", json!("abc")));
        let issue = q.required_int("version").unwrap_err();
        assert_eq!(
            serde_json::to_value(&issue).unwrap(),
            json!({
                "type": "missing", "loc": ["query", "version"], "msg": "Field required", "input": null
            })
        );
    }
}

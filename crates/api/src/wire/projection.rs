//! `fields=`: which of a portfolio's four keys a response carries, in their usual order.

use super::dto::PortfolioDto;
use serde::Serialize;
use serde_json::{Map, Value};

const ALLOWED: [&str; 4] = ["portfolioId", "name", "dateCreated", "version"];

/// A subset of the portfolio keys; `None` from [`Projection::parse`] means all of them.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Projection([bool; 4]);

impl Projection {
    /// Parses a comma-separated list. The error is the 400 `detail`, naming what is allowed.
    pub fn parse(raw: Option<&str>) -> Result<Option<Self>, String> {
        let Some(raw) = raw else { return Ok(None) };
        let mut keep = [false; 4];
        let mut unknown = Vec::new();
        for field in raw.split(',').map(str::trim).filter(|f| !f.is_empty()) {
            match ALLOWED.iter().position(|allowed| *allowed == field) {
                Some(index) => keep[index] = true,
                None => unknown.push(field),
            }
        }
        let allowed = ALLOWED.join(", ");
        if !unknown.is_empty() {
            return Err(format!("Unknown field(s) in fields: {}. Allowed fields: {allowed}", unknown.join(", ")));
        }
        if !keep.contains(&true) {
            return Err(format!("fields must name at least one of: {allowed}"));
        }
        Ok(Some(Self(keep)))
    }

    pub fn apply(&self, portfolio: &PortfolioDto) -> Value {
        let Ok(Value::Object(full)) = serde_json::to_value(portfolio) else { return Value::Null };
        let kept: Map<String, Value> =
            full.into_iter().zip(self.0).filter_map(|(entry, keep)| keep.then_some(entry)).collect();
        Value::Object(kept)
    }
}

/// Portfolios as a response carries them: whole (the common, allocation-light case) or projected.
#[derive(Debug, Serialize)]
#[serde(untagged)]
pub enum Portfolios {
    Whole(Vec<PortfolioDto>),
    Projected(Vec<Value>),
}

impl Portfolios {
    pub fn new(items: Vec<PortfolioDto>, projection: Option<Projection>) -> Self {
        match projection {
            None => Self::Whole(items),
            Some(projection) => Self::Projected(items.iter().map(|p| projection.apply(p)).collect()),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn dto() -> PortfolioDto {
        PortfolioDto { portfolio_id: "a".repeat(24), name: "n".into(), date_created: "d".into(), version: 2 }
    }

    #[test]
    fn projection_keeps_the_canonical_order_whatever_the_request_order() {
        let projection = Projection::parse(Some("version, portfolioId")).unwrap().unwrap();
        let projected = projection.apply(&dto());
        assert_eq!(
            serde_json::to_string(&projected).unwrap(),
            format!("{{\"portfolioId\":\"{}\",\"version\":2}}", "a".repeat(24))
        );
    }

    #[test]
    fn unknown_and_empty_field_lists_are_rejected_with_the_allowed_names() {
        let err = Projection::parse(Some("name,colour,id")).unwrap_err();
        assert_eq!(
            err,
            "Unknown field(s) in fields: colour, id. Allowed fields: portfolioId, name, dateCreated, version"
        );
        assert!(Projection::parse(Some(" , ")).unwrap_err().starts_with("fields must name"));
        assert_eq!(Projection::parse(None), Ok(None));
        assert_eq!(Projection::parse(Some("name")).unwrap().unwrap().apply(&dto()), json!({"name": "n"}));
    }
}

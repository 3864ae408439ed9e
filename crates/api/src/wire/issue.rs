//! One validation problem, serialised exactly as FastAPI/Pydantic v2 does.

use serde::Serialize;
use serde_json::Value;

/// An item of a 422 `detail` list: `type`, `loc`, `msg`, `input`, and `ctx` when the rule has
/// parameters. No `url` key, as FastAPI strips it.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct Issue {
    #[serde(rename = "type")]
    pub kind: &'static str,
    pub loc: Vec<Value>,
    pub msg: String,
    pub input: Value,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub ctx: Option<Value>,
}

impl Issue {
    pub fn new(kind: &'static str, msg: impl Into<String>, input: Value) -> Self {
        Self { kind, loc: Vec::new(), msg: msg.into(), input, ctx: None }
    }

    pub fn with_ctx(mut self, ctx: Value) -> Self {
        self.ctx = Some(ctx);
        self
    }

    /// Prefixes the location, e.g. `["body", 3]` in front of `["name"]`.
    pub fn at(mut self, prefix: &[Value]) -> Self {
        let mut loc = prefix.to_vec();
        loc.append(&mut self.loc);
        self.loc = loc;
        self
    }

    pub fn missing(input: Value) -> Self {
        Self::new("missing", "Field required", input)
    }
}

/// Builds a location from string keys and list indices.
#[macro_export]
macro_rules! loc {
    ($($part:expr),* $(,)?) => { [$(::serde_json::Value::from($part)),*] };
}

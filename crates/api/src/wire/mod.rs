//! The wire format: how requests are read and responses written, byte-compatible with the
//! original FastAPI service.
//!
//! - [`issue`]: one entry of a 422 `detail` list, in Pydantic's shape.
//! - [`lax`]: Pydantic's lax-mode coercions (strings, integers, datetimes).
//! - [`json`]: request bodies, including Python-`json`-compatible syntax error positions.
//! - [`dto`]: request and response bodies.
//! - [`list_stream`]: the unpaged v1 list, encoded batch by batch as it is read.
//! - [`query`]: query strings (last repeated value wins, as in Starlette).
//! - [`projection`], [`cursor`]: the opt-in additions `fields=` and `cursor=`.

pub mod cursor;
pub mod dto;
pub mod issue;
pub mod json;
pub mod lax;
pub mod list_stream;
pub mod projection;
pub mod query;

pub use issue::Issue;

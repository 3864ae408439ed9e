//! Importing the original service's data: a `mongoexport` of its `portfolio` collection.
//!
//! # Layout
//! - [`document`]: one exported document (extended JSON, relaxed or canonical) to a [`Portfolio`].
//! - [`scan`]: reading a file of JSON lines or one JSON array, streaming, with locations.
//! - [`load`]: the two passes: validate everything, then load in atomic batches.
//!
//! Ids, names, dates and versions are preserved. Loading inserts only ids not stored yet, so a
//! re-run (or a run after a partial failure) converges on the same state without overwriting
//! what the service has changed since.
//!
//! [`Portfolio`]: pfs_domain::Portfolio

pub mod document;
pub mod load;
pub mod scan;

pub use load::{ImportOptions, ImportReport, Rejection, import_file};
pub use scan::Location;

//! The collection's indexes: the original's two, created when missing, and ours.
//!
//! MongoDB has no schema to migrate, so "migrations" map onto indexes (docs/MONGODB.md):
//! `migrate` creates them, `migrate_down(0)` drops [`ORDER_INDEX`] (the only one this service
//! alone creates) and `applied_migrations` reports [`INDEXES_VERSION`] while it exists.

use crate::MongoStore;
use crate::document::{DATE_CREATED, ID, NAME};
use crate::errors::classify;
use mongodb::IndexModel;
use mongodb::bson::{Bson, Document, doc};
use mongodb::error::ErrorKind;
use mongodb::options::IndexOptions;
use pfs_storage::StoreResult;

/// The pseudo-migration version reported while our indexes exist; the same number as the SQL
/// backends' first migration, which creates their equivalent indexes.
pub const INDEXES_VERSION: i64 = 20261125000001;

/// The index serving the search order `{dateCreated: -1, _id: -1}` (sort, skip and limit walk
/// it instead of sorting in memory). Named with a prefix so it is recognisably ours.
pub const ORDER_INDEX: &str = "pfs_dateCreated_-1__id_-1";

/// Server codes meaning "an equivalent or conflicting index is already there": another name
/// for the same keys, other options under the same name (IndexOptionsConflict, 85), other keys
/// under the same name (IndexKeySpecsConflict, 86), or an existing one (IndexAlreadyExists, 68).
const ALREADY_THERE: [i32; 3] = [85, 86, 68];
/// NamespaceNotFound (no collection yet) and IndexNotFound.
const NOTHING_THERE: [i32; 2] = [26, 27];
/// CannotCreateIndex: what a server without text search (such as the secantus test server)
/// answers for a text index.
const UNSUPPORTED: [i32; 1] = [67];

/// The indexes `ensure_indexes` wants, each with the name the original's driver gave it, and
/// whether it may be skipped when the server cannot build that kind of index.
fn wanted() -> [(Document, &'static str, bool); 3] {
    [
        // The original's text index on `name`. No query uses it (searches are regexes), so
        // a server without text indexes does without it.
        (doc! { NAME: "text" }, "name_text", true),
        // The original's compound index.
        (doc! { NAME: 1, DATE_CREATED: -1 }, "name_1_dateCreated_-1", false),
        (doc! { DATE_CREATED: -1, ID: -1 }, ORDER_INDEX, false),
    ]
}

impl MongoStore {
    /// Creates each wanted index unless an equivalent one exists under any name. Idempotent
    /// and safe beside the original, which may have created its indexes with other names or
    /// options, or be creating them right now: a conflict with an existing index means one
    /// serving the same purpose is there, so it is accepted. A collection may have only one
    /// text index, so any text index satisfies the text entry; a server that cannot build
    /// text indexes at all is accepted without one.
    pub async fn ensure_indexes(&self) -> StoreResult<()> {
        let existing = self.index_keys().await?;
        for (keys, name, optional) in wanted() {
            if existing.iter().any(|have| equivalent(have, &keys)) {
                continue;
            }
            let model =
                IndexModel::builder().keys(keys).options(IndexOptions::builder().name(name.to_owned()).build()).build();
            if let Err(e) = self.collection.create_index(model).await
                && !has_code(&e, &ALREADY_THERE)
                && !(optional && has_code(&e, &UNSUPPORTED))
            {
                return Err(classify(e));
            }
        }
        Ok(())
    }

    pub(crate) async fn has_order_index(&self) -> StoreResult<bool> {
        let order = &wanted()[2].0;
        Ok(self.index_keys().await?.iter().any(|have| equivalent(have, order)))
    }

    pub(crate) async fn drop_order_index(&self) -> StoreResult<()> {
        match self.collection.drop_index(ORDER_INDEX).await {
            Err(e) if !has_code(&e, &NOTHING_THERE) => Err(classify(e)),
            _ => Ok(()),
        }
    }

    /// The key pattern of every index; none when the collection does not exist yet.
    async fn index_keys(&self) -> StoreResult<Vec<Document>> {
        let mut cursor = match self.collection.list_indexes().await {
            Ok(cursor) => cursor,
            Err(e) if has_code(&e, &NOTHING_THERE) => return Ok(Vec::new()),
            Err(e) => return Err(classify(e)),
        };
        let mut keys = Vec::new();
        while cursor.advance().await.map_err(classify)? {
            keys.push(cursor.deserialize_current().map_err(classify)?.keys);
        }
        Ok(keys)
    }
}

fn has_code(err: &mongodb::error::Error, codes: &[i32]) -> bool {
    matches!(err.kind.as_ref(), ErrorKind::Command(e) if codes.contains(&e.code))
}

/// Same fields in the same order with the same directions, whatever the numeric type the
/// creator used (`1`, `1L`, `1.0`). A text index is stored as `{_fts: "text", _ftsx: 1}`.
fn equivalent(have: &Document, want: &Document) -> bool {
    let is_text = |keys: &Document| keys.values().any(|v| v.as_str() == Some("text"));
    if is_text(want) {
        return is_text(have) || have.contains_key("_fts");
    }
    have.len() == want.len()
        && have.iter().zip(want).all(|((hk, hv), (wk, wv))| hk == wk && direction(hv) == direction(wv))
}

fn direction(value: &Bson) -> Option<i64> {
    match value {
        Bson::Int32(v) => Some(i64::from(*v)),
        Bson::Int64(v) => Some(*v),
        Bson::Double(v) if v.fract() == 0.0 => Some(*v as i64),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn key_patterns_compare_by_order_and_direction_not_number_type() {
        let want = doc! { "name": 1, "dateCreated": -1 };
        assert!(equivalent(&doc! { "name": 1_i64, "dateCreated": -1.0 }, &want));
        assert!(!equivalent(&doc! { "dateCreated": -1, "name": 1 }, &want), "order matters");
        assert!(!equivalent(&doc! { "name": 1, "dateCreated": 1 }, &want), "direction matters");
        assert!(!equivalent(&doc! { "name": 1 }, &want), "prefix is not enough");
    }

    #[test]
    fn any_text_index_satisfies_the_text_entry() {
        let want = doc! { "name": "text" };
        assert!(equivalent(&doc! { "_fts": "text", "_ftsx": 1 }, &want));
        assert!(equivalent(&doc! { "name": "text" }, &want));
        assert!(!equivalent(&doc! { "name": 1 }, &want));
    }
}

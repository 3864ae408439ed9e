//! Multi-document inserts, all or nothing.
//!
//! With transactions (a replica set or `mongos`, see [`crate::TransactionMode`]) a batch is
//! inserted in one transaction. Without (a standalone `mongod`), it is one ordered
//! `insertMany` and, when that fails, a compensating delete of what it inserted. Compensation
//! is weaker than a transaction: readers can see the batch for the moment between the insert
//! and the delete, and if the delete itself fails (the server went away), part of the batch
//! stays and the error says so.

use crate::MongoStore;
use crate::document::{ID, to_document};
use crate::errors::{DUPLICATE_KEY, classify};
use mongodb::ClientSession;
use mongodb::bson::{Bson, Document, doc, oid::ObjectId};
use mongodb::error::{Error, ErrorKind, TRANSIENT_TRANSACTION_ERROR};
use pfs_domain::Portfolio;
use pfs_storage::{StoreError, StoreResult};
use std::collections::HashSet;

/// Attempts of `insert_missing` when a concurrent writer inserts one of its ids between the
/// existence check and the insert; each retry sees that id as existing.
const MISSING_ATTEMPTS: usize = 3;

impl MongoStore {
    pub(crate) async fn insert_all(&self, portfolios: &[Portfolio]) -> StoreResult<()> {
        let docs: Vec<Document> = portfolios.iter().map(to_document).collect();
        if docs.is_empty() {
            return Ok(());
        }
        if self.uses_transactions() {
            let mut session = self.begin().await.map_err(classify)?;
            let inserted = self.collection.insert_many(&docs).session(&mut session).await;
            finish(&mut session, inserted.map(drop)).await.map_err(classify)
        } else {
            self.insert_compensated(&docs).await
        }
    }

    /// Inserts the documents whose ids are not stored yet: a look-up of which ids exist, then
    /// an insert of the rest, together in a transaction or compensated like `insert_all`.
    pub(crate) async fn insert_new(&self, portfolios: &[Portfolio]) -> StoreResult<u64> {
        let docs: Vec<Document> = portfolios.iter().map(to_document).collect();
        let mut attempt = 1;
        loop {
            let result = if self.uses_transactions() {
                self.insert_new_in_transaction(&docs).await.map_err(classify)
            } else {
                match self.stored_ids(&docs, None).await {
                    Ok(stored) => {
                        let missing = missing(&docs, &stored);
                        self.insert_compensated(&missing).await.map(|()| missing.len() as u64)
                    }
                    Err(e) => Err(classify(e)),
                }
            };
            match result {
                Err(e) if attempt < MISSING_ATTEMPTS && lost_a_race(&e) => attempt += 1,
                done => return done,
            }
        }
    }

    async fn insert_new_in_transaction(&self, docs: &[Document]) -> Result<u64, Error> {
        let mut session = self.begin().await?;
        let inserted = async {
            let stored = self.stored_ids(docs, Some(&mut session)).await?;
            let missing = missing(docs, &stored);
            if !missing.is_empty() {
                self.collection.insert_many(&missing).session(&mut session).await?;
            }
            Ok(missing.len() as u64)
        }
        .await;
        finish(&mut session, inserted).await
    }

    async fn begin(&self) -> Result<ClientSession, Error> {
        let mut session = self.client.start_session().await?;
        session.start_transaction().await?;
        Ok(session)
    }

    /// The ids among `docs` already in the collection, read in `session` when given.
    async fn stored_ids(
        &self,
        docs: &[Document],
        session: Option<&mut ClientSession>,
    ) -> Result<HashSet<ObjectId>, Error> {
        let ids: Vec<&Bson> = docs.iter().filter_map(|d| d.get(ID)).collect();
        let find = self.collection.find(doc! { ID: { "$in": ids } }).projection(doc! { ID: 1 });
        let mut stored = HashSet::new();
        match session {
            Some(session) => {
                let mut cursor = find.session(&mut *session).await?;
                while cursor.advance(session).await? {
                    stored.extend(cursor.deserialize_current()?.get_object_id(ID).ok());
                }
            }
            None => {
                let mut cursor = find.await?;
                while cursor.advance().await? {
                    stored.extend(cursor.deserialize_current()?.get_object_id(ID).ok());
                }
            }
        }
        Ok(stored)
    }

    /// One ordered `insertMany`; on failure, deletes exact copies of what it may have inserted.
    /// An ordered insert stops at its first failing document, so when the server names that
    /// document, only the ones before it went in. Otherwise (a lost connection, say) any of
    /// them may have, and each is deleted only where the stored document is identical to
    /// ours, which leaves alone a document another writer stored or changed meanwhile.
    async fn insert_compensated(&self, docs: &[Document]) -> StoreResult<()> {
        if docs.is_empty() {
            return Ok(());
        }
        let Err(err) = self.collection.insert_many(docs).ordered(true).await else { return Ok(()) };
        let attempted = match err.kind.as_ref() {
            ErrorKind::InsertMany(e) => match e.write_errors.iter().flatten().map(|w| w.index).min() {
                Some(first_failed) => &docs[..first_failed.min(docs.len())],
                None => docs,
            },
            _ => docs,
        };
        if attempted.is_empty() {
            return Err(classify(err));
        }
        match self.collection.delete_many(doc! { "$or": attempted }).await {
            Ok(_) => Err(classify(err)),
            Err(cleanup) => Err(StoreError::Backend(
                format!("{err}; the compensating delete also failed, so part of the batch may remain: {cleanup}")
                    .into(),
            )),
        }
    }
}

/// Commits when `outcome` is a success, aborts otherwise; the first error wins.
async fn finish<T>(session: &mut ClientSession, outcome: Result<T, Error>) -> Result<T, Error> {
    match outcome {
        Ok(value) => session.commit_transaction().await.map(|()| value),
        Err(e) => {
            // Best effort: the server aborts an abandoned transaction on its own.
            let _ = session.abort_transaction().await;
            Err(e)
        }
    }
}

fn missing(docs: &[Document], stored: &HashSet<ObjectId>) -> Vec<Document> {
    docs.iter().filter(|d| d.get_object_id(ID).map_or(true, |id| !stored.contains(&id))).cloned().collect()
}

/// A concurrent writer inserted one of our ids first (a duplicate key outside a transaction,
/// a write conflict or duplicate key inside one).
fn lost_a_race(err: &StoreError) -> bool {
    let (StoreError::Backend(source) | StoreError::Unavailable(source)) = err else { return false };
    source.downcast_ref::<Error>().is_some_and(|e| {
        e.contains_label(TRANSIENT_TRANSACTION_ERROR)
            || match e.kind.as_ref() {
                ErrorKind::InsertMany(m) => m.write_errors.iter().flatten().any(|w| w.code == DUPLICATE_KEY),
                ErrorKind::Write(mongodb::error::WriteFailure::WriteError(w)) => w.code == DUPLICATE_KEY,
                ErrorKind::Command(c) => c.code == DUPLICATE_KEY,
                _ => false,
            }
    })
}

//! One place that decides which sqlx failures are transient.

use pfs_storage::StoreError;

/// Pool exhaustion, I/O and lock contention are transient (`Unavailable`); the rest are not.
pub(crate) fn classify(err: sqlx::Error) -> StoreError {
    let transient = match &err {
        sqlx::Error::PoolTimedOut | sqlx::Error::PoolClosed | sqlx::Error::Io(_) => true,
        // SQLITE_BUSY (5) and SQLITE_LOCKED (6), also as extended codes (low byte).
        sqlx::Error::Database(db) => {
            db.code().and_then(|c| c.parse::<i32>().ok()).is_some_and(|c| matches!(c & 0xff, 5 | 6))
        }
        _ => false,
    };
    if transient { StoreError::Unavailable(Box::new(err)) } else { StoreError::Backend(Box::new(err)) }
}

pub(crate) fn migrate(err: sqlx::migrate::MigrateError) -> StoreError {
    StoreError::Backend(Box::new(err))
}

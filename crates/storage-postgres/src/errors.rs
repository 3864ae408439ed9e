//! One place that decides which sqlx failures are transient.

use pfs_storage::StoreError;
use sqlx::migrate::MigrateError;

/// Connection trouble, resource exhaustion, server shutdown and lost serialization races are
/// transient (`Unavailable`): the same call may succeed on another connection or a moment
/// later. Constraint violations, bad data and protocol errors are not (`Backend`).
pub(crate) fn classify(err: sqlx::Error) -> StoreError {
    if is_transient(&err) { StoreError::Unavailable(Box::new(err)) } else { StoreError::Backend(Box::new(err)) }
}

fn is_transient(err: &sqlx::Error) -> bool {
    match err {
        sqlx::Error::PoolTimedOut | sqlx::Error::PoolClosed | sqlx::Error::Io(_) | sqlx::Error::Tls(_) => true,
        sqlx::Error::Database(db) => db.code().is_some_and(|code| is_transient_sqlstate(&code)),
        _ => false,
    }
}

/// The same decision for the pipelined reads' driver: a closed connection, a failed connect
/// (refused, reset, TLS) or a timeout is transient; a server error goes by its SQLSTATE as
/// above; anything else (a type mismatch, a protocol error) is not.
pub(crate) fn classify_pg(err: tokio_postgres::Error) -> StoreError {
    let transient = match err.code() {
        Some(code) => is_transient_sqlstate(code.code()),
        None => err.is_closed() || has_io_source(&err),
    };
    if transient { StoreError::Unavailable(Box::new(err)) } else { StoreError::Backend(Box::new(err)) }
}

/// tokio-postgres keeps the network error (connect, TLS handshake, read, write) as the source.
fn has_io_source(err: &tokio_postgres::Error) -> bool {
    let mut source = std::error::Error::source(err);
    while let Some(cause) = source {
        if cause.is::<std::io::Error>() || cause.is::<rustls::Error>() {
            return true;
        }
        source = cause.source();
    }
    false
}

/// SQLSTATEs a retry can cure: class 08 (connection exception), class 53 (insufficient
/// resources: too many connections, out of memory or disk), 57P01..57P03 (the server is
/// shutting down, crashed or still starting), 40001 and 40P01 (serialization failure and
/// deadlock: the transaction lost a race and was rolled back whole).
fn is_transient_sqlstate(code: &str) -> bool {
    code.starts_with("08") || code.starts_with("53") || matches!(code, "57P01" | "57P02" | "57P03" | "40001" | "40P01")
}

/// Keeps the migration context in the error; only an unreachable database is transient.
pub(crate) fn migrate(err: MigrateError) -> StoreError {
    let transient = match &err {
        MigrateError::Execute(e) | MigrateError::ExecuteMigration(e, _) => is_transient(e),
        _ => false,
    };
    if transient { StoreError::Unavailable(Box::new(err)) } else { StoreError::Backend(Box::new(err)) }
}

#[cfg(test)]
mod tests {
    use super::*;
    use sqlx::error::{DatabaseError, ErrorKind};
    use std::borrow::Cow;

    /// A server error with a chosen SQLSTATE, as the driver would report it.
    #[derive(Debug)]
    struct Sqlstate(&'static str);

    impl std::fmt::Display for Sqlstate {
        fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
            write!(f, "sqlstate {}", self.0)
        }
    }

    impl std::error::Error for Sqlstate {}

    impl DatabaseError for Sqlstate {
        fn message(&self) -> &str {
            self.0
        }
        fn code(&self) -> Option<Cow<'_, str>> {
            Some(Cow::Borrowed(self.0))
        }
        fn as_error(&self) -> &(dyn std::error::Error + Send + Sync + 'static) {
            self
        }
        fn as_error_mut(&mut self) -> &mut (dyn std::error::Error + Send + Sync + 'static) {
            self
        }
        fn into_error(self: Box<Self>) -> Box<dyn std::error::Error + Send + Sync + 'static> {
            self
        }
        fn kind(&self) -> ErrorKind {
            ErrorKind::Other
        }
    }

    fn transient(err: sqlx::Error) -> bool {
        classify(err).is_transient()
    }

    fn database(code: &'static str) -> sqlx::Error {
        sqlx::Error::Database(Box::new(Sqlstate(code)))
    }

    #[test]
    fn pool_and_network_failures_are_transient() {
        assert!(transient(sqlx::Error::PoolTimedOut));
        assert!(transient(sqlx::Error::PoolClosed));
        assert!(transient(sqlx::Error::Io(std::io::ErrorKind::ConnectionRefused.into())));
        assert!(transient(sqlx::Error::Tls("handshake failed".into())));
    }

    #[test]
    fn connection_resource_shutdown_and_race_sqlstates_are_transient() {
        for code in ["08000", "08006", "08P01", "53000", "53300", "57P01", "57P02", "57P03", "40001", "40P01"] {
            assert!(transient(database(code)), "{code}");
        }
    }

    #[test]
    fn data_and_constraint_errors_are_not_transient() {
        for code in ["23505", "23514", "22021", "42P01", "57014", "40002", "25006"] {
            assert!(!transient(database(code)), "{code}");
        }
        assert!(!transient(sqlx::Error::RowNotFound));
        assert!(!transient(sqlx::Error::Protocol("unexpected message".into())));
    }
}

//! One place that decides which driver failures are transient.

use mongodb::error::{
    Error, ErrorKind, RETRYABLE_WRITE_ERROR, SYSTEM_OVERLOADED_ERROR, TRANSIENT_TRANSACTION_ERROR, WriteFailure,
};
use pfs_storage::StoreError;

/// The server's code for a duplicate `_id` (or any unique-index violation).
pub(crate) const DUPLICATE_KEY: i32 = 11000;

/// Server codes a retry can cure: the node is shutting down, stepping down or not (yet) the
/// primary (the driver's "NotWritablePrimary" and "node is recovering" families), the network
/// failed between nodes, a transaction lost a write race, or the server shed load.
const TRANSIENT_CODES: [i32; 18] = [
    6,     // HostUnreachable
    7,     // HostNotFound
    89,    // NetworkTimeout
    91,    // ShutdownInProgress
    112,   // WriteConflict
    134,   // ReadConcernMajorityNotAvailableYet
    189,   // PrimarySteppedDown
    262,   // ExceededTimeLimit
    462,   // IngressRequestRateLimitExceeded
    9001,  // SocketException
    10058, // LegacyNotPrimary
    10107, // NotWritablePrimary
    11600, // InterruptedAtShutdown
    11602, // InterruptedDueToReplStateChange
    13435, // NotPrimaryNoSecondaryOk
    13436, // NotPrimaryOrSecondary
    64,    // WriteConcernFailed (wtimeout: the write may still replicate)
    251,   // NoSuchTransaction (the server aborted it, e.g. after a failover)
];

/// Unreachable servers, broken connections and the codes above are transient (`Unavailable`):
/// the same call may succeed a moment later or on the next primary. Duplicate keys, bad
/// documents, unsupported commands and everything else are not (`Backend`).
/// A server-selection failure is condensed to one line (see [`condensed_selection`]).
pub(crate) fn classify(err: Error) -> StoreError {
    if let ErrorKind::ServerSelection { message, .. } = err.kind.as_ref() {
        return StoreError::Unavailable(condensed_selection(message).into());
    }
    if is_transient(&err) { StoreError::Unavailable(Box::new(err)) } else { StoreError::Backend(Box::new(err)) }
}

/// The driver's server-selection error embeds the whole topology (each server's type, last
/// error, labels, round-trip times): several lines per log line, twice over in an error
/// chain. What an operator needs is which servers failed and why.
fn condensed_selection(message: &str) -> String {
    let mut servers: Vec<String> = Vec::new();
    for block in message.split("{ Address: ").skip(1) {
        let address = block.split([',', ' ']).next().unwrap_or_default();
        let error = block.split_once("Error: ").map(|(_, rest)| {
            let end = rest.find(", labels:").or_else(|| rest.find(" }")).unwrap_or(rest.len());
            rest[..end].trim_start_matches("Kind: ").trim()
        });
        let server = match error {
            Some(error) => format!("{address}: {error}"),
            None => address.to_owned(),
        };
        if !servers.contains(&server) {
            servers.push(server);
        }
    }
    let summary = if servers.is_empty() {
        message.split(" Topology:").next().unwrap_or(message).trim().to_owned()
    } else {
        format!("no MongoDB server reachable ({})", servers.join("; "))
    };
    let mut line: String = summary.split_whitespace().collect::<Vec<_>>().join(" ");
    if line.len() > 400 {
        let cut = (0..=400).rev().find(|&i| line.is_char_boundary(i)).unwrap_or(0);
        line.truncate(cut);
        line.push('…');
    }
    line
}

pub(crate) fn is_transient(err: &Error) -> bool {
    // The driver labels what it may retry itself; past its one retry, the caller may.
    let labelled = [RETRYABLE_WRITE_ERROR, TRANSIENT_TRANSACTION_ERROR, SYSTEM_OVERLOADED_ERROR]
        .iter()
        .any(|label| err.contains_label(label));
    labelled
        || match err.kind.as_ref() {
            ErrorKind::Io(_) | ErrorKind::ServerSelection { .. } | ErrorKind::ConnectionPoolCleared { .. } => true,
            ErrorKind::Command(e) => TRANSIENT_CODES.contains(&e.code),
            ErrorKind::Write(WriteFailure::WriteConcernError(e)) => TRANSIENT_CODES.contains(&e.code),
            ErrorKind::Write(WriteFailure::WriteError(e)) => TRANSIENT_CODES.contains(&e.code),
            ErrorKind::InsertMany(e) => {
                e.write_concern_error.as_ref().is_some_and(|w| TRANSIENT_CODES.contains(&w.code))
                    || e.write_errors.as_ref().is_some_and(|all| all.iter().all(|w| TRANSIENT_CODES.contains(&w.code)))
            }
            _ => false,
        }
}

/// A document the store cannot map onto a portfolio: never transient.
pub(crate) fn corrupt(what: &str) -> StoreError {
    StoreError::Backend(format!("corrupt portfolio document: {what}").into())
}

#[cfg(test)]
mod tests {
    use super::*;
    use mongodb::bson::{Document, doc};
    use mongodb::error::CommandError;

    fn command(code: i32) -> Error {
        let reply: Document = doc! { "code": code, "codeName": "X", "errmsg": "from the server" };
        let err: CommandError = mongodb::bson::deserialize_from_document(reply).expect("command error");
        Error::from(ErrorKind::Command(err))
    }

    fn transient(err: Error) -> bool {
        classify(err).is_transient()
    }

    #[test]
    fn network_failures_are_transient() {
        for kind in
            [std::io::ErrorKind::ConnectionRefused, std::io::ErrorKind::TimedOut, std::io::ErrorKind::BrokenPipe]
        {
            assert!(transient(Error::from(ErrorKind::Io(std::sync::Arc::new(kind.into())))), "{kind:?}");
        }
    }

    #[test]
    fn failover_shutdown_and_race_codes_are_transient() {
        for code in [91, 189, 10107, 13435, 13436, 11600, 11602, 6, 7, 89, 9001, 112, 262] {
            assert!(transient(command(code)), "{code}");
        }
    }

    #[test]
    fn duplicate_keys_bad_commands_and_conflicting_indexes_are_not_transient() {
        for code in [DUPLICATE_KEY, 2, 59, 85, 86, 26, 50] {
            assert!(!transient(command(code)), "{code}");
        }
    }

    #[test]
    fn a_topology_dump_is_condensed_to_the_servers_and_their_errors() {
        let dump = "Server selection timeout: No available servers. Topology: { Type: Unknown, Servers: [ \
            { Address: 127.0.0.1:1, Type: Unknown, Error: Kind: I/O error: Connection refused (os error 111), \
            labels: {} }, { Address: db:27017, Type: Unknown, Error: Kind: I/O error: timed out, labels: {} } ] }";
        assert_eq!(
            condensed_selection(dump),
            "no MongoDB server reachable (127.0.0.1:1: I/O error: Connection refused (os error 111); \
             db:27017: I/O error: timed out)"
        );
        assert_eq!(condensed_selection("Server selection timeout: nothing"), "Server selection timeout: nothing");
    }

    #[tokio::test]
    async fn an_unreachable_server_is_a_transient_server_selection_failure() {
        use mongodb::options::ClientOptions;
        // Port 9 (discard) on loopback: nothing listens there, so selection times out fast.
        let mut options = ClientOptions::parse("mongodb://127.0.0.1:9").await.unwrap();
        options.server_selection_timeout = Some(std::time::Duration::from_millis(200));
        let client = mongodb::Client::with_options(options).unwrap();
        let err = client.database("x").run_command(doc! { "ping": 1 }).await.unwrap_err();
        assert!(matches!(err.kind.as_ref(), ErrorKind::ServerSelection { .. }), "{err:?}");
        let classified = classify(err);
        assert!(classified.is_transient());
        let line = classified.to_string();
        assert!(line.contains("127.0.0.1:9") && !line.contains('\n') && !line.contains("Topology"), "{line}");
    }
}

//! What flows through the stream: [`EventId`], [`EventKind`], [`Event`], and the [`Change`] a
//! write produces before it has an id.

use pfs_domain::Portfolio;
use serde_json::json;
use std::fmt;
use std::str::FromStr;

/// A position in the one global order. Written `<ms>-<seq>`, the format of Redis stream ids, so
/// both feeds share it: Redis assigns them, the in-process feed uses its start time as `ms` (an
/// id from an earlier process is then older than anything it has, and resuming reports a gap).
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct EventId {
    pub ms: u64,
    pub seq: u64,
}

impl fmt::Display for EventId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}-{}", self.ms, self.seq)
    }
}

/// A `Last-Event-ID` that is not `<ms>-<seq>`.
#[derive(Debug, thiserror::Error)]
#[error("event id must look like <milliseconds>-<sequence>")]
pub struct BadEventId;

impl FromStr for EventId {
    type Err = BadEventId;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let (ms, seq) = s.trim().split_once('-').ok_or(BadEventId)?;
        let number = |n: &str| {
            if n.is_empty() || !n.bytes().all(|b| b.is_ascii_digit()) {
                return Err(BadEventId);
            }
            n.parse::<u64>().map_err(|_| BadEventId)
        };
        Ok(Self { ms: number(ms)?, seq: number(seq)? })
    }
}

/// The SSE `event:` name.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum EventKind {
    Created,
    Updated,
    Deleted,
    /// Events were lost (history trimmed past the client's position, or a publisher could not
    /// keep up): the client must reload the portfolios it tracks.
    Reset,
}

impl EventKind {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Created => "created",
            Self::Updated => "updated",
            Self::Deleted => "deleted",
            Self::Reset => "reset",
        }
    }

    pub fn parse(name: &str) -> Option<Self> {
        [Self::Created, Self::Updated, Self::Deleted, Self::Reset].into_iter().find(|k| k.as_str() == name)
    }
}

/// One event as subscribers receive it. `data` is the JSON text, encoded once by the writer.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Event {
    pub id: EventId,
    pub kind: EventKind,
    pub data: String,
}

/// A committed write, not yet ordered.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Change {
    pub kind: EventKind,
    pub data: String,
}

impl Change {
    /// `{"portfolio": <as the API returns it>, "version": <its version after the write>}`. For
    /// a delete, the portfolio as it was when deleted.
    pub fn portfolio(kind: EventKind, portfolio: &Portfolio) -> Self {
        Self::new(kind, &json!({ "portfolio": portfolio_json(portfolio), "version": portfolio.version.0 }))
    }

    /// A delete whose last state could not be read (it changed between the read and the
    /// delete): the id and the deleted version, with `portfolio: null`.
    pub fn deleted_unread(id: pfs_domain::PortfolioId, version: pfs_domain::Version) -> Self {
        Self::new(EventKind::Deleted, &json!({ "portfolio": null, "portfolioId": id.to_hex(), "version": version.0 }))
    }

    pub fn reset(reason: &str) -> Self {
        Self::new(EventKind::Reset, &json!({ "reason": reason }))
    }

    /// `data` as JSON text in a buffer of its own size: serializing grows the buffer by
    /// doubling, so an event of a long name would hold up to twice its text for as long as the
    /// history keeps it. Copied rather than shrunk: mimalloc shrinks a block that stays at least
    /// half used in place, and a 2 KB event's 4 KiB buffer would stay whole.
    fn new(kind: EventKind, data: &serde_json::Value) -> Self {
        Self { kind, data: data.to_string().as_str().to_owned() }
    }
}

/// A portfolio exactly as every endpoint returns it (the API's `PortfolioDto`; a test there
/// checks the two agree).
pub fn portfolio_json(p: &Portfolio) -> serde_json::Value {
    json!({
        "portfolioId": p.id.to_hex(),
        "name": p.name,
        "dateCreated": p.date_created.to_rfc3339(),
        "version": p.version.0,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ids_round_trip_and_order_numerically() {
        let id: EventId = "1700000000000-12".parse().unwrap();
        assert_eq!(id, EventId { ms: 1_700_000_000_000, seq: 12 });
        assert_eq!(id.to_string(), "1700000000000-12");
        assert!(EventId { ms: 5, seq: 10 } > EventId { ms: 5, seq: 9 });
        assert!(EventId { ms: 6, seq: 0 } > EventId { ms: 5, seq: 99 });
    }

    #[test]
    fn malformed_ids_are_rejected() {
        for bad in ["", "12", "-1", "1-", "a-1", "1-2-3", "+1-2", "99999999999999999999-0"] {
            assert!(bad.parse::<EventId>().is_err(), "{bad:?}");
        }
    }

    #[test]
    fn kinds_parse_their_own_names_only() {
        for kind in [EventKind::Created, EventKind::Updated, EventKind::Deleted, EventKind::Reset] {
            assert_eq!(EventKind::parse(kind.as_str()), Some(kind));
        }
        assert_eq!(EventKind::parse("Created"), None);
    }

    #[test]
    fn a_change_holds_no_more_than_its_text() {
        let long = Portfolio::new("n".repeat(2_000), None, pfs_domain::Version(1));
        let change = Change::portfolio(EventKind::Created, &long);
        assert!(change.data.len() > 2_000);
        assert_eq!(change.data.capacity(), change.data.len());
    }
}

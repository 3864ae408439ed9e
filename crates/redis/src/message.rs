//! Invalidation messages: `<replica>|<kind>[|<id>]`, small and human-readable with
//! `redis-cli subscribe`.

use pfs_cache::Invalidation;
use pfs_domain::PortfolioId;

/// What travels on the channel.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) enum Message {
    Invalidate(Invalidation),
    /// A replica proving to itself that its round trip through Redis works.
    Heartbeat,
}

pub(crate) fn encode(replica: &str, message: &Message) -> String {
    match message {
        Message::Invalidate(Invalidation::Portfolio(id)) => format!("{replica}|p|{id}"),
        Message::Invalidate(Invalidation::Searches) => format!("{replica}|s"),
        Message::Invalidate(Invalidation::Everything) => format!("{replica}|e"),
        Message::Heartbeat => format!("{replica}|h"),
    }
}

/// `(sender, message)`, or `None` for anything malformed (ignored: the channel may be shared
/// with a newer version that sends more kinds).
pub(crate) fn decode(payload: &str) -> Option<(&str, Message)> {
    let mut parts = payload.split('|');
    let sender = parts.next()?;
    let message = match (parts.next()?, parts.next()) {
        ("p", Some(id)) => Message::Invalidate(Invalidation::Portfolio(PortfolioId::parse(id)?)),
        ("s", None) => Message::Invalidate(Invalidation::Searches),
        ("e", None) => Message::Invalidate(Invalidation::Everything),
        ("h", None) => Message::Heartbeat,
        _ => return None,
    };
    Some((sender, message))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_message_round_trips() {
        let id = PortfolioId::generate();
        for message in [
            Message::Invalidate(Invalidation::Portfolio(id)),
            Message::Invalidate(Invalidation::Searches),
            Message::Invalidate(Invalidation::Everything),
            Message::Heartbeat,
        ] {
            let encoded = encode("r1", &message);
            assert_eq!(decode(&encoded), Some(("r1", message)));
        }
    }

    #[test]
    fn malformed_payloads_are_ignored() {
        for bad in ["", "r1", "r1|p", "r1|p|zz", "r1|x", "r1|s|extra"] {
            assert_eq!(decode(bad), None, "{bad:?}");
        }
    }
}

//! Keyset cursors: an opaque token naming the last portfolio of a page.
//!
//! `v1.<dateCreated millis>.<id>`; the version prefix leaves room to change the format
//! without misreading old tokens. Clients must treat the token as opaque.

use pfs_domain::{Keyset, PortfolioId, Timestamp};

pub fn encode(keyset: Keyset) -> String {
    format!("v1.{}.{}", keyset.date_created.millis(), keyset.id)
}

/// `None` for anything this service did not produce.
pub fn decode(token: &str) -> Option<Keyset> {
    let rest = token.strip_prefix("v1.")?;
    let (millis, id) = rest.rsplit_once('.')?;
    Some(Keyset { date_created: Timestamp::from_millis(millis.parse().ok()?)?, id: PortfolioId::parse(id)? })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cursors_round_trip_and_garbage_is_refused() {
        let keyset = Keyset { date_created: Timestamp::from_millis(-5).unwrap(), id: PortfolioId::generate() };
        assert_eq!(decode(&encode(keyset)), Some(keyset));
        for bad in ["", "v1.", "v1.12", "v2.1.6740f1c2a1b2c3d4e5f60718", "v1.x.6740f1c2a1b2c3d4e5f60718", "v1.1.zz"] {
            assert_eq!(decode(bad), None, "{bad:?}");
        }
    }
}

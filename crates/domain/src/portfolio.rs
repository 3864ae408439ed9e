//! The portfolio entity and its version rules.

use crate::{PortfolioId, Timestamp};

/// A stored portfolio. Names are kept verbatim: the contract neither trims nor folds them.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Portfolio {
    pub id: PortfolioId,
    pub name: String,
    pub date_created: Timestamp,
    pub version: Version,
}

impl Portfolio {
    /// A new portfolio with a fresh id; a missing `dateCreated` means "now".
    pub fn new(name: String, date_created: Option<Timestamp>, version: Version) -> Self {
        Self { id: PortfolioId::generate(), name, date_created: date_created.unwrap_or_else(Timestamp::now), version }
    }
}

/// What a v1 PUT may change. The version is not here: it always becomes the expected one + 1.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct PortfolioChanges {
    pub name: String,
    /// `None` keeps the stored date; a PUT can move `dateCreated` (contract §3.4 step 4).
    pub date_created: Option<Timestamp>,
}

/// The optimistic-locking counter. Any 64-bit integer is accepted, negatives included,
/// because the original stores whatever a client sends.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Version(pub i64);

impl Version {
    pub const INITIAL: Version = Version(1);

    /// v1 create uses `dto.version or 1`: missing, `null` and `0` all become 1.
    pub fn for_v1_create(requested: Option<i64>) -> Self {
        match requested {
            None | Some(0) => Self::INITIAL,
            Some(v) => Self(v),
        }
    }

    /// Bulk create uses `is not None`: only a missing or `null` version becomes 1; `0` stays 0.
    pub fn for_bulk_create(requested: Option<i64>) -> Self {
        requested.map_or(Self::INITIAL, Self)
    }

    /// The version after a successful update, or `None` when it cannot be incremented.
    pub fn next(self) -> Option<Self> {
        self.0.checked_add(1).map(Self)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn v1_treats_zero_and_missing_as_one() {
        assert_eq!(Version::for_v1_create(None), Version(1));
        assert_eq!(Version::for_v1_create(Some(0)), Version(1));
        assert_eq!(Version::for_v1_create(Some(-3)), Version(-3));
        assert_eq!(Version::for_v1_create(Some(7)), Version(7));
    }

    #[test]
    fn bulk_keeps_zero() {
        assert_eq!(Version::for_bulk_create(None), Version(1));
        assert_eq!(Version::for_bulk_create(Some(0)), Version(0));
    }

    #[test]
    fn the_largest_version_cannot_be_incremented() {
        assert_eq!(Version(i64::MAX).next(), None);
        assert_eq!(Version(1).next(), Some(Version(2)));
    }

    #[test]
    fn a_new_portfolio_without_a_date_is_dated_now() {
        let before = Timestamp::now();
        let p = Portfolio::new("x".into(), None, Version::INITIAL);
        assert!(p.date_created >= before && p.date_created <= Timestamp::now());
    }
}

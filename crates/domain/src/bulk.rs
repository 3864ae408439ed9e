//! Bulk-create checks that run after every item has been validated (contract §4.2 steps 2-4).

use crate::text::python_strip;
use std::collections::HashSet;
use std::fmt;
use std::hash::BuildHasher;

/// The most portfolios one bulk request may create.
pub const MAX_BULK_ITEMS: usize = 100;

/// A rejected batch; `Display` is the contract's exact `detail` string (400).
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum BulkError {
    Empty,
    TooMany,
    /// Raw names of the first repeat of each duplicated group, in the order the repeats appear.
    DuplicateNames(Vec<String>),
}

impl fmt::Display for BulkError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Empty => f.write_str("Request must contain at least 1 portfolio"),
            Self::TooMany => f.write_str("Request cannot contain more than 100 portfolios"),
            Self::DuplicateNames(names) => {
                write!(f, "Duplicate portfolio names found in request: {}", names.join(", "))
            }
        }
    }
}

/// Checks the batch size and that no two names are equal after `strip().lower()`.
/// Names already stored are not compared: the original inserts them again, and so do we.
pub fn check_bulk_names<'a>(names: impl ExactSizeIterator<Item = &'a str>) -> Result<(), BulkError> {
    match names.len() {
        0 => return Err(BulkError::Empty),
        n if n > MAX_BULK_ITEMS => return Err(BulkError::TooMany),
        _ => {}
    }
    check_unique_names(names)
}

/// The duplicate-name rule alone, for batches without the size cap (background imports).
pub fn check_unique_names<'a>(names: impl Iterator<Item = &'a str>) -> Result<(), BulkError> {
    let mut unique = UniqueNames::default();
    names.for_each(|name| unique.add(name));
    unique.finish()
}

/// The duplicate-name rule one name at a time, for a list too large to hold: it keeps a 64-bit
/// digest per name (keyed per process, so no one can craft colliding names), not the names,
/// and lists at most [`UniqueNames::MAX_LISTED`] repeats.
#[derive(Default)]
pub struct UniqueNames {
    hasher: std::hash::RandomState,
    seen: HashSet<u64>,
    reported: HashSet<u64>,
    repeats: Vec<String>,
}

impl UniqueNames {
    /// Repeats named in the error; a bulk request (at most 100 items) never reaches it.
    pub const MAX_LISTED: usize = 100;

    pub fn add(&mut self, name: &str) {
        let digest = self.hasher.hash_one(python_strip(name).to_lowercase());
        if !self.seen.insert(digest) && self.reported.insert(digest) && self.repeats.len() < Self::MAX_LISTED {
            self.repeats.push(name.to_owned());
        }
    }

    pub fn finish(self) -> Result<(), BulkError> {
        if self.repeats.is_empty() { Ok(()) } else { Err(BulkError::DuplicateNames(self.repeats)) }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn check(names: &[&str]) -> Result<(), BulkError> {
        check_bulk_names(names.iter().copied())
    }

    #[test]
    fn a_long_list_names_at_most_the_first_hundred_repeats() {
        let names: Vec<String> = (0..300).map(|i| format!("name {}", i % 150)).collect();
        let Err(BulkError::DuplicateNames(repeats)) = check_unique_names(names.iter().map(String::as_str)) else {
            panic!("duplicates")
        };
        assert_eq!(repeats.len(), UniqueNames::MAX_LISTED);
        assert_eq!(repeats[0], "name 0");
    }

    #[test]
    fn reports_the_first_repeat_of_each_group_in_order_of_appearance() {
        let err = check(&["A x", "a x", "B", "b", "A X"]).unwrap_err();
        assert_eq!(err.to_string(), "Duplicate portfolio names found in request: a x, b");
    }

    #[test]
    fn comparison_ignores_surrounding_whitespace_and_case_but_reports_raw_names() {
        let err = check(&["Growth", "  growth\t"]).unwrap_err();
        assert_eq!(err, BulkError::DuplicateNames(vec!["  growth\t".into()]));
    }

    #[test]
    fn inner_whitespace_still_distinguishes_names() {
        assert_eq!(check(&["a b", "a  b"]), Ok(()));
    }

    #[test]
    fn sizes_outside_one_to_one_hundred_are_rejected() {
        assert_eq!(check(&[]), Err(BulkError::Empty));
        let names: Vec<String> = (0..101).map(|i| format!("p{i}")).collect();
        assert_eq!(check_bulk_names(names.iter().map(String::as_str)), Err(BulkError::TooMany));
        assert_eq!(check_bulk_names(names[..100].iter().map(String::as_str)), Ok(()));
    }
}

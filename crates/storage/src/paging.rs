//! Which end of the search order an offset page is cheapest to read from.
//!
//! An offset page costs one index step per skipped entry, so the page at offset 9,950 of
//! 10,000 costs 200 times the first. When the total is known in the same snapshot as the page
//! (the SQL backends count and page in one transaction or statement), the rows at offsets
//! `o..o+l` counted from the newest are the rows at offsets `n-o-l..n-o` counted from the
//! oldest: reading the index backwards from whichever end is nearer skips at most half the
//! matches, and the last page costs what the first does.

/// The slice of the search order to read, counted from the end [`Window::backwards`] names.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Window {
    /// Read in ascending order (oldest first) instead of the search order; the rows are the
    /// same, and are sorted back into the search order after the read.
    pub backwards: bool,
    pub offset: u64,
    pub limit: u64,
}

impl Window {
    /// The window holding the page `offset`/`limit` of `total` matches in search order.
    /// Reads forwards unless backwards skips fewer entries; a page past the end stays a
    /// forward read (it returns nothing either way).
    pub fn of(offset: u64, limit: u64, total: u64) -> Self {
        let forward = Self { backwards: false, offset, limit };
        if offset >= total {
            return forward;
        }
        let end = offset.saturating_add(limit).min(total);
        let from_oldest = total - end;
        if from_oldest < offset { Self { backwards: true, offset: from_oldest, limit: end - offset } } else { forward }
    }
}

#[cfg(test)]
mod tests {
    use super::Window;

    /// The rows a window selects from `total` rows numbered by search position.
    fn rows(window: Window, total: u64) -> Vec<u64> {
        let positions: Vec<u64> = if window.backwards { (0..total).rev().collect() } else { (0..total).collect() };
        let mut picked: Vec<u64> =
            positions.into_iter().skip(window.offset as usize).take(window.limit as usize).collect();
        picked.sort_unstable();
        picked
    }

    #[test]
    fn every_window_selects_the_page_it_stands_for() {
        for total in 0..30 {
            for offset in 0..35 {
                for limit in 1..8 {
                    let expected: Vec<u64> = (offset..total).take(limit as usize).collect();
                    let window = Window::of(offset, limit, total);
                    assert_eq!(rows(window, total), expected, "offset {offset} limit {limit} total {total}");
                    assert!(window.offset <= total / 2 + limit || offset >= total, "{window:?} of {total}");
                }
            }
        }
    }

    #[test]
    fn the_last_page_is_read_from_the_oldest_end_and_the_first_from_the_newest() {
        assert_eq!(Window::of(9950, 50, 10_000), Window { backwards: true, offset: 0, limit: 50 });
        assert_eq!(Window::of(9990, 50, 10_000), Window { backwards: true, offset: 0, limit: 10 });
        assert_eq!(Window::of(0, 50, 10_000), Window { backwards: false, offset: 0, limit: 50 });
        assert_eq!(Window::of(20_000, 50, 10_000), Window { backwards: false, offset: 20_000, limit: 50 });
    }
}

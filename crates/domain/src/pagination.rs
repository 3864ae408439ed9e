//! Offset pagination exactly as the original computes it (contract §4.1), quirks included.

/// A validated page request: `1 <= limit <= 1000`, `offset >= 0` (checked at the edge).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct PageRequest {
    pub limit: u32,
    pub offset: u64,
}

impl PageRequest {
    pub const DEFAULT_LIMIT: u32 = 50;
    pub const MAX_LIMIT: u32 = 1000;
}

/// A position in the search order (`dateCreated` descending, then id descending): a keyset
/// page starts right after the portfolio it names. Unlike an offset, it does not shift when
/// newer portfolios are inserted.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct Keyset {
    pub date_created: crate::Timestamp,
    pub id: crate::PortfolioId,
}

impl Keyset {
    pub fn of(portfolio: &crate::Portfolio) -> Self {
        Self { date_created: portfolio.date_created, id: portfolio.id }
    }
}

/// The `pagination` object of a search response.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Pagination {
    pub total_elements: u64,
    pub total_pages: u64,
    pub current_page: u64,
    pub page_size: u32,
    pub has_next: bool,
    pub has_previous: bool,
}

impl Pagination {
    /// `currentPage` is `offset // limit` whatever the total, so an offset past the end still
    /// reports `hasPrevious`, and an offset between page boundaries can report `hasNext` with
    /// nothing left. Clients were built against this, so it is kept.
    pub fn compute(total_elements: u64, page: PageRequest) -> Self {
        let limit = u64::from(page.limit);
        let total_pages = total_elements.div_ceil(limit);
        let current_page = page.offset / limit;
        Self {
            total_elements,
            total_pages,
            current_page,
            page_size: page.limit,
            has_next: total_pages > 0 && current_page < total_pages - 1,
            has_previous: current_page > 0,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The worked table of contract §4.1: (total, limit, offset) -> (pages, current, next, previous).
    #[test]
    fn matches_every_worked_edge_case_of_the_contract() {
        let cases = [
            (0, 50, 0, 0, 0, false, false),
            (0, 10, 30, 0, 3, false, true),
            (5, 2, 0, 3, 0, true, false),
            (5, 2, 2, 3, 1, true, true),
            (5, 2, 4, 3, 2, false, true),
            (5, 2, 3, 3, 1, true, true),
            (5, 2, 10, 3, 5, false, true),
            (10, 50, 3, 1, 0, false, false),
        ];
        for (total, limit, offset, pages, current, next, previous) in cases {
            let p = Pagination::compute(total, PageRequest { limit, offset });
            assert_eq!(
                (p.total_pages, p.current_page, p.has_next, p.has_previous, p.page_size),
                (pages, current, next, previous, limit),
                "total={total} limit={limit} offset={offset}"
            );
        }
    }
}

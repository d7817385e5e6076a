//! Pagination as Lago lists do it: 1-based pages of bounded size.

/// The default page size, as Lago's.
pub const DEFAULT_PER_PAGE: u32 = 100;
/// The largest page size tally serves.
pub const MAX_PER_PAGE: u32 = 1_000;

/// A requested page.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Page {
    /// 1-based page number.
    pub number: u32,
    /// Items per page, 1 to [`MAX_PER_PAGE`].
    pub per_page: u32,
}

impl Default for Page {
    fn default() -> Self {
        Page {
            number: 1,
            per_page: DEFAULT_PER_PAGE,
        }
    }
}

impl Page {
    /// Builds a page from optional query values, clamping the size to the accepted range.
    pub fn new(number: Option<u32>, per_page: Option<u32>) -> Self {
        Page {
            number: number.unwrap_or(1).max(1),
            per_page: per_page.unwrap_or(DEFAULT_PER_PAGE).clamp(1, MAX_PER_PAGE),
        }
    }

    /// Returns how many items to skip.
    pub fn offset(self) -> u64 {
        u64::from(self.number - 1) * u64::from(self.per_page)
    }
}

/// Lago's `meta` block for a page of a list of `total` items.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PageMeta {
    /// The page served, or 0 when the list is empty.
    pub current_page: u64,
    /// The next page, if any.
    pub next_page: Option<u64>,
    /// The previous page, if any.
    pub prev_page: Option<u64>,
    /// Number of pages.
    pub total_pages: u64,
    /// Number of items in the whole list.
    pub total_count: u64,
}

impl PageMeta {
    /// Computes the meta block.
    pub fn new(page: Page, total: u64) -> Self {
        if total == 0 {
            return PageMeta {
                current_page: 0,
                next_page: None,
                prev_page: None,
                total_pages: 0,
                total_count: 0,
            };
        }
        let per_page = u64::from(page.per_page);
        let total_pages = total.div_ceil(per_page);
        let current = u64::from(page.number);
        PageMeta {
            current_page: current,
            next_page: (current < total_pages).then_some(current + 1),
            prev_page: (current > 1).then(|| (current - 1).min(total_pages)),
            total_pages,
            total_count: total,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn meta_matches_lago() {
        let meta = PageMeta::new(Page::new(Some(2), Some(20)), 70);
        assert_eq!(
            meta,
            PageMeta {
                current_page: 2,
                next_page: Some(3),
                prev_page: Some(1),
                total_pages: 4,
                total_count: 70
            }
        );
        let last = PageMeta::new(Page::new(Some(4), Some(20)), 70);
        assert_eq!(last.next_page, None);
        assert_eq!(PageMeta::new(Page::default(), 0).current_page, 0);
        assert_eq!(
            Page::new(Some(0), Some(5000)),
            Page {
                number: 1,
                per_page: 1000
            }
        );
    }
}

//! Query strings with repeated keys (`subject=a&subject=b`, Rails' `currencies[]=USD`) and pages.

use tally_core::page::Page;

use crate::error::ApiError;

/// A query string's pairs, in order, with repeats.
#[derive(Debug, Clone, Default)]
pub struct QueryPairs(Vec<(String, String)>);

impl QueryPairs {
    /// Parses a raw query string.
    pub fn parse(raw: Option<&str>) -> Result<Self, ApiError> {
        let pairs = serde_urlencoded::from_str::<Vec<(String, String)>>(raw.unwrap_or(""))
            .map_err(|e| ApiError::BadRequest(format!("the query string cannot be read: {e}")))?;
        Ok(QueryPairs(pairs))
    }

    /// The last value of a key.
    pub fn get(&self, key: &str) -> Option<&str> {
        self.0
            .iter()
            .rev()
            .find(|(k, _)| k == key)
            .map(|(_, v)| v.as_str())
    }

    /// Every value of a key, also accepting the Rails form `key[]`.
    pub fn all(&self, key: &str) -> Vec<String> {
        let rails = format!("{key}[]");
        self.0
            .iter()
            .filter(|(k, _)| k == key || *k == rails)
            .map(|(_, v)| v.clone())
            .collect()
    }

    /// Entries of a map-shaped parameter: `prefix[name]=value` → (name, value).
    pub fn map(&self, prefix: &str) -> Vec<(String, String)> {
        let open = format!("{prefix}[");
        self.0
            .iter()
            .filter_map(|(k, v)| {
                let name = k.strip_prefix(&open)?.strip_suffix(']')?;
                (!name.is_empty()).then(|| (name.to_owned(), v.clone()))
            })
            .collect()
    }

    /// Tells whether a key is present.
    pub fn has(&self, key: &str) -> bool {
        self.0.iter().any(|(k, _)| k == key)
    }

    /// Reads an unsigned integer parameter, answering 400 when it is not one.
    pub fn number(&self, key: &str) -> Result<Option<u32>, ApiError> {
        self.get(key)
            .map(|v| {
                v.trim()
                    .parse::<u32>()
                    .map_err(|_| ApiError::BadRequest(format!("{key} must be a positive integer")))
            })
            .transpose()
    }

    /// Reads Lago's `page` and `per_page`.
    pub fn page(&self) -> Result<Page, ApiError> {
        Ok(Page::new(self.number("page")?, self.number("per_page")?))
    }
}

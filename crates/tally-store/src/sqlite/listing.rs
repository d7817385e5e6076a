//! Paged listing: a filtered count and one page of rows, as Lago lists need.

use rusqlite::types::Value as SqlValue;
use rusqlite::{Connection, Row, params_from_iter};
use tally_core::page::Page;

use crate::error::StoreResult;
use crate::types::Listed;

/// A `SELECT columns FROM table WHERE …` built from filter clauses and their arguments.
pub(super) struct Filtered {
    clauses: Vec<String>,
    args: Vec<SqlValue>,
}

impl Filtered {
    /// Starts with one clause (usually the organization).
    pub(super) fn new(clause: &str, arg: SqlValue) -> Self {
        Filtered {
            clauses: vec![clause.to_owned()],
            args: vec![arg],
        }
    }

    /// Adds a clause with its arguments.
    pub(super) fn and(
        &mut self,
        clause: impl Into<String>,
        args: impl IntoIterator<Item = SqlValue>,
    ) {
        self.clauses.push(clause.into());
        self.args.extend(args);
    }

    /// Counts the matching rows and reads one page of them in `order`.
    pub(super) fn page<T>(
        mut self,
        conn: &Connection,
        from: &str,
        columns: &str,
        order: &str,
        page: Page,
        read: impl FnMut(&Row<'_>) -> rusqlite::Result<T>,
    ) -> StoreResult<Listed<T>> {
        let condition = self.clauses.join(" AND ");
        let total: i64 = conn.query_row(
            &format!("SELECT COUNT(*) FROM {from} WHERE {condition}"),
            params_from_iter(self.args.iter()),
            |row| row.get(0),
        )?;
        self.args.push(SqlValue::Integer(i64::from(page.per_page)));
        self.args.push(SqlValue::Integer(page.offset() as i64));
        let mut stmt = conn.prepare(&format!(
            "SELECT {columns} FROM {from} WHERE {condition} ORDER BY {order} LIMIT ? OFFSET ?"
        ))?;
        let items = stmt
            .query_map(params_from_iter(self.args.iter()), read)?
            .collect::<rusqlite::Result<Vec<_>>>()?;
        Ok(Listed {
            items,
            total: total as u64,
        })
    }
}

//! Customers, keyed by (organization, external id) among live rows.

use rusqlite::types::Value as SqlValue;
use rusqlite::{Connection, OptionalExtension, Row, params};
use tally_core::customer::{Customer, CustomerProfile};
use tally_core::id::{CustomerId, ExternalId};
use tally_core::page::Page;
use tally_core::time::Timestamp;

use super::listing::Filtered;
use super::now;
use super::orgs::parse_uuid;
use crate::error::{StoreError, StoreResult};
use crate::types::Listed;
use crate::{CustomerChange, CustomerFilter};

const COLUMNS: &str = "id, sequential_id, external_id, profile, created_at, updated_at";

fn from_row(row: &Row<'_>) -> rusqlite::Result<Customer> {
    let id: String = row.get(0)?;
    let external_id: String = row.get(2)?;
    let profile: String = row.get(3)?;
    Ok(Customer {
        id: CustomerId(parse_uuid(&id)?),
        sequential_id: row.get(1)?,
        external_id: ExternalId::parse("external_id", &external_id).map_err(|e| {
            rusqlite::Error::FromSqlConversionFailure(
                2,
                rusqlite::types::Type::Text,
                Box::new(tally_core::ValidationErrors::from(e)),
            )
        })?,
        profile: serde_json::from_str::<CustomerProfile>(&profile).map_err(|e| {
            rusqlite::Error::FromSqlConversionFailure(3, rusqlite::types::Type::Text, Box::new(e))
        })?,
        created_at: Timestamp::from_micros(row.get(4)?),
        updated_at: Timestamp::from_micros(row.get(5)?),
    })
}

fn find(conn: &Connection, org: i64, external_id: &ExternalId) -> StoreResult<Option<Customer>> {
    Ok(conn
        .query_row(
            &format!("SELECT {COLUMNS} FROM customers WHERE org = ?1 AND external_id = ?2 AND deleted_at IS NULL"),
            params![org, external_id.as_str()],
            from_row,
        )
        .optional()?)
}

/// Reads a customer by id, deleted or not.
pub(super) fn by_id(conn: &Connection, org: i64, id: CustomerId) -> StoreResult<Customer> {
    conn.query_row(
        &format!("SELECT {COLUMNS} FROM customers WHERE org = ?1 AND id = ?2"),
        params![org, id.0.to_string()],
        from_row,
    )
    .optional()?
    .ok_or(StoreError::NotFound("customer"))
}

pub(super) fn get(conn: &Connection, org: i64, external_id: &ExternalId) -> StoreResult<Customer> {
    find(conn, org, external_id)?.ok_or(StoreError::NotFound("customer"))
}

pub(super) fn upsert(
    conn: &Connection,
    org: i64,
    external_id: &ExternalId,
    change: &CustomerChange,
) -> StoreResult<Customer> {
    change.profile.validate()?;
    let profile = &change.profile;
    let json = serde_json::to_string(profile).map_err(|e| StoreError::Database(e.to_string()))?;
    let at = now().micros();
    let currency = profile.currency.map(|c| c.code().to_owned());
    match find(conn, org, external_id)? {
        Some(existing) => {
            conn.execute(
                "UPDATE customers SET name = ?2, email = ?3, country = ?4, currency = ?5, profile = ?6, updated_at = ?7 WHERE id = ?1",
                params![
                    existing.id.0.to_string(),
                    profile.name,
                    profile.email,
                    profile.address.country,
                    currency,
                    json,
                    at
                ],
            )?;
        }
        None => {
            let id = CustomerId::generate();
            let next: i64 = conn.query_row(
                "SELECT COALESCE(MAX(sequential_id), 0) + 1 FROM customers WHERE org = ?1",
                [org],
                |row| row.get(0),
            )?;
            conn.execute(
                "INSERT INTO customers (id, org, sequential_id, external_id, name, email, country, currency, profile, created_at, updated_at)
                 VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?10)",
                params![
                    id.0.to_string(),
                    org,
                    next,
                    external_id.as_str(),
                    profile.name,
                    profile.email,
                    profile.address.country,
                    currency,
                    json,
                    at
                ],
            )?;
            // Events that waited for this customer become billable.
            conn.execute(
                "UPDATE events SET issue = NULL, issue_detail = NULL
                 WHERE org = ?1 AND issue = 'customer_not_found' AND subject = ?2",
                params![org, external_id.as_str()],
            )?;
        }
    }
    let customer = get(conn, org, external_id)?;
    if let Some(codes) = &change.tax_codes {
        super::taxes::set_links(conn, org, "customer", &customer.id.0.to_string(), codes)?;
    }
    Ok(customer)
}

pub(super) fn delete(
    conn: &Connection,
    org: i64,
    external_id: &ExternalId,
) -> StoreResult<Customer> {
    let customer = get(conn, org, external_id)?;
    conn.execute(
        "UPDATE customers SET deleted_at = ?2 WHERE id = ?1",
        params![customer.id.0.to_string(), now().micros()],
    )?;
    Ok(customer)
}

/// Returns the id of the live customer with this external id, if any.
pub(super) fn id_of(
    conn: &Connection,
    org: i64,
    external_id: &str,
) -> StoreResult<Option<CustomerId>> {
    let mut stmt = conn.prepare_cached(
        "SELECT id FROM customers WHERE org = ?1 AND external_id = ?2 AND deleted_at IS NULL",
    )?;
    let id: Option<String> = stmt
        .query_row(params![org, external_id], |row| row.get(0))
        .optional()?;
    Ok(id.map(|id| parse_uuid(&id).map(CustomerId)).transpose()?)
}

pub(super) fn list(
    conn: &Connection,
    org: i64,
    filter: &CustomerFilter,
    page: Page,
) -> StoreResult<Listed<Customer>> {
    let mut query = Filtered::new("org = ?", SqlValue::Integer(org));
    query.and("deleted_at IS NULL", []);
    if let Some(term) = filter.search_term.as_ref().filter(|t| !t.is_empty()) {
        let pattern = format!(
            "%{}%",
            term.replace('\\', "\\\\")
                .replace('%', "\\%")
                .replace('_', "\\_")
        );
        query.and(
            "(name LIKE ? ESCAPE '\\' OR email LIKE ? ESCAPE '\\' OR external_id LIKE ? ESCAPE '\\')",
            std::iter::repeat_n(SqlValue::Text(pattern), 3),
        );
    }
    for (column, values) in [
        ("currency", &filter.currencies),
        ("country", &filter.countries),
    ] {
        if !values.is_empty() {
            query.and(
                format!("{column} IN ({})", vec!["?"; values.len()].join(", ")),
                values.iter().cloned().map(SqlValue::Text),
            );
        }
    }
    query.page(conn, "customers", COLUMNS, "sequential_id", page, from_row)
}

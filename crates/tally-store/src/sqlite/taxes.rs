//! Taxes, and which taxes customers, plans and add-ons carry.

use std::str::FromStr;

use rusqlite::types::Value as SqlValue;
use rusqlite::{Connection, OptionalExtension, Row, params};
use rust_decimal::Decimal;
use tally_core::error::{Reason, ValidationErrors};
use tally_core::id::Code;
use tally_core::page::Page;
use tally_core::tax::{Tax, TaxTerms};
use tally_core::time::Timestamp;

use super::listing::Filtered;
use super::now;
use super::orgs::parse_uuid;
use crate::error::{StoreError, StoreResult};
use crate::types::Listed;

const COLUMNS: &str = "seq, id, code, name, rate, description, applied_to_organization, created_at";

fn from_row(row: &Row<'_>) -> rusqlite::Result<(i64, Tax)> {
    let corrupt = |i: usize, m: String| {
        rusqlite::Error::FromSqlConversionFailure(i, rusqlite::types::Type::Text, m.into())
    };
    let code: String = row.get(2)?;
    let rate: String = row.get(4)?;
    Ok((
        row.get(0)?,
        Tax {
            id: parse_uuid(&row.get::<_, String>(1)?)?,
            terms: TaxTerms {
                code: Code::parse("code", &code).map_err(|e| corrupt(2, e.field))?,
                name: row.get(3)?,
                rate: Decimal::from_str(&rate).map_err(|e| corrupt(4, e.to_string()))?,
                description: row.get(5)?,
                applied_to_organization: row.get(6)?,
            },
            created_at: Timestamp::from_micros(row.get(7)?),
        },
    ))
}

fn find(conn: &Connection, org: i64, code: &str) -> StoreResult<Option<(i64, Tax)>> {
    Ok(conn
        .query_row(
            &format!(
                "SELECT {COLUMNS} FROM taxes WHERE org = ?1 AND code = ?2 AND deleted_at IS NULL"
            ),
            params![org, code],
            from_row,
        )
        .optional()?)
}

/// Reads a live tax by code.
pub(super) fn get(conn: &Connection, org: i64, code: &str) -> StoreResult<Tax> {
    find(conn, org, code)?
        .map(|(_, t)| t)
        .ok_or(StoreError::NotFound("tax"))
}

/// Lists live taxes, oldest first.
pub(super) fn list(conn: &Connection, org: i64, page: Page) -> StoreResult<Listed<Tax>> {
    let mut query = Filtered::new("org = ?", SqlValue::Integer(org));
    query.and("deleted_at IS NULL", []);
    let listed = query.page(conn, "taxes", COLUMNS, "seq", page, from_row)?;
    Ok(Listed {
        items: listed.items.into_iter().map(|(_, t)| t).collect(),
        total: listed.total,
    })
}

fn code_taken() -> StoreError {
    let mut errors = ValidationErrors::new();
    errors.push("code", Reason::ValueAlreadyExist);
    StoreError::Invalid(errors)
}

/// Creates a tax.
pub(super) fn create(conn: &Connection, org: i64, terms: &TaxTerms) -> StoreResult<Tax> {
    terms.validate()?;
    if find(conn, org, terms.code.as_str())?.is_some() {
        return Err(code_taken());
    }
    let at = now().micros();
    conn.execute(
        "INSERT INTO taxes (id, org, code, name, rate, description, applied_to_organization, created_at, updated_at)
         VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?8)",
        params![
            uuid::Uuid::now_v7().to_string(),
            org,
            terms.code.as_str(),
            terms.name,
            terms.rate.normalize().to_string(),
            terms.description,
            terms.applied_to_organization,
            at
        ],
    )?;
    get(conn, org, terms.code.as_str())
}

/// Changes a tax; invoices already finalized keep the rate they were computed with.
pub(super) fn update(
    conn: &Connection,
    org: i64,
    code: &str,
    terms: &TaxTerms,
) -> StoreResult<Tax> {
    terms.validate()?;
    let (seq, _) = find(conn, org, code)?.ok_or(StoreError::NotFound("tax"))?;
    if terms.code.as_str() != code && find(conn, org, terms.code.as_str())?.is_some() {
        return Err(code_taken());
    }
    conn.execute(
        "UPDATE taxes SET code = ?2, name = ?3, rate = ?4, description = ?5, applied_to_organization = ?6, updated_at = ?7
         WHERE seq = ?1",
        params![
            seq,
            terms.code.as_str(),
            terms.name,
            terms.rate.normalize().to_string(),
            terms.description,
            terms.applied_to_organization,
            now().micros()
        ],
    )?;
    get(conn, org, terms.code.as_str())
}

/// Deletes a tax and its links.
pub(super) fn delete(conn: &Connection, org: i64, code: &str) -> StoreResult<Tax> {
    let (seq, tax) = find(conn, org, code)?.ok_or(StoreError::NotFound("tax"))?;
    conn.execute(
        "UPDATE taxes SET deleted_at = ?2 WHERE seq = ?1",
        params![seq, now().micros()],
    )?;
    conn.execute("DELETE FROM tax_links WHERE tax = ?1", [seq])?;
    Ok(tax)
}

/// Replaces the taxes an owner (`customer`, `plan` or `add_on`, by id) carries.
pub(super) fn set_links(
    conn: &Connection,
    org: i64,
    kind: &str,
    owner: &str,
    codes: &[String],
) -> StoreResult<()> {
    let mut seqs = Vec::with_capacity(codes.len());
    for code in codes {
        let (seq, _) = find(conn, org, code)?.ok_or(StoreError::NotFound("tax"))?;
        seqs.push(seq);
    }
    conn.execute(
        "DELETE FROM tax_links WHERE owner_kind = ?1 AND owner = ?2",
        params![kind, owner],
    )?;
    for seq in seqs {
        conn.execute(
            "INSERT OR IGNORE INTO tax_links (owner_kind, owner, tax) VALUES (?1, ?2, ?3)",
            params![kind, owner, seq],
        )?;
    }
    Ok(())
}

/// Returns the live taxes an owner carries, with their compact ids.
pub(super) fn of(conn: &Connection, kind: &str, owner: &str) -> StoreResult<Vec<(i64, Tax)>> {
    let mut stmt = conn.prepare_cached(&format!(
        "SELECT {} FROM taxes t JOIN tax_links l ON l.tax = t.seq
         WHERE l.owner_kind = ?1 AND l.owner = ?2 AND t.deleted_at IS NULL ORDER BY t.seq",
        COLUMNS
            .split(", ")
            .map(|c| format!("t.{c}"))
            .collect::<Vec<_>>()
            .join(", ")
    ))?;
    let taxes = stmt
        .query_map(params![kind, owner], from_row)?
        .collect::<rusqlite::Result<_>>()?;
    Ok(taxes)
}

/// The taxes of a subscription's fees: the plan's, else the customer's, else the organization's.
pub(super) fn for_fees(
    conn: &Connection,
    org: i64,
    plan: &str,
    customer: &str,
) -> StoreResult<Vec<(i64, Tax)>> {
    let plan_taxes = of(conn, "plan", plan)?;
    if !plan_taxes.is_empty() {
        return Ok(plan_taxes);
    }
    for_customer(conn, org, customer)
}

/// The taxes a customer's fees take when nothing closer names any: the customer's, else the
/// organization's.
pub(super) fn for_customer(
    conn: &Connection,
    org: i64,
    customer: &str,
) -> StoreResult<Vec<(i64, Tax)>> {
    let customer_taxes = of(conn, "customer", customer)?;
    if !customer_taxes.is_empty() {
        return Ok(customer_taxes);
    }
    let mut stmt = conn.prepare_cached(&format!(
        "SELECT {COLUMNS} FROM taxes WHERE org = ?1 AND applied_to_organization = 1 AND deleted_at IS NULL ORDER BY seq"
    ))?;
    let taxes = stmt
        .query_map([org], from_row)?
        .collect::<rusqlite::Result<_>>()?;
    Ok(taxes)
}

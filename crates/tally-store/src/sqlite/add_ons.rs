//! Add-ons, keyed by (organization, code) among live rows, with the taxes they carry.

use rusqlite::types::Value as SqlValue;
use rusqlite::{Connection, OptionalExtension, Row, params};
use tally_core::add_on::{AddOn, AddOnDraft, AddOnTerms};
use tally_core::currency::Currency;
use tally_core::error::{Reason, ValidationErrors};
use tally_core::id::Code;
use tally_core::page::Page;
use tally_core::time::Timestamp;

use super::listing::Filtered;
use super::now;
use super::orgs::parse_uuid;
use super::taxes;
use crate::error::{StoreError, StoreResult};
use crate::types::Listed;

/// The owner kind of an add-on's rows in `tax_links`.
const TAX_OWNER: &str = "add_on";

const COLUMNS: &str =
    "seq, id, code, name, invoice_display_name, description, amount_cents, amount_currency,
    created_at, updated_at";

fn from_row(row: &Row<'_>) -> rusqlite::Result<(i64, AddOn)> {
    let corrupt = |i: usize, m: String| {
        rusqlite::Error::FromSqlConversionFailure(i, rusqlite::types::Type::Text, m.into())
    };
    let code: String = row.get(2)?;
    let currency: String = row.get(7)?;
    Ok((
        row.get(0)?,
        AddOn {
            id: parse_uuid(&row.get::<_, String>(1)?)?,
            terms: AddOnTerms {
                code: Code::parse("code", &code).map_err(|e| corrupt(2, e.field))?,
                name: row.get(3)?,
                invoice_display_name: row.get(4)?,
                description: row.get(5)?,
                amount_cents: row.get(6)?,
                currency: Currency::parse(&currency).ok_or_else(|| corrupt(7, currency.clone()))?,
            },
            taxes: Vec::new(),
            created_at: Timestamp::from_micros(row.get(8)?),
            updated_at: Timestamp::from_micros(row.get(9)?),
        },
    ))
}

/// Attaches the live taxes an add-on carries.
fn with_taxes(conn: &Connection, mut add_on: AddOn) -> StoreResult<AddOn> {
    add_on.taxes = taxes::of(conn, TAX_OWNER, &add_on.id.to_string())?
        .into_iter()
        .map(|(_, tax)| tax)
        .collect();
    Ok(add_on)
}

fn find(conn: &Connection, org: i64, code: &str) -> StoreResult<Option<(i64, AddOn)>> {
    Ok(conn
        .query_row(
            &format!(
                "SELECT {COLUMNS} FROM add_ons WHERE org = ?1 AND code = ?2 AND deleted_at IS NULL"
            ),
            params![org, code],
            from_row,
        )
        .optional()?)
}

/// Reads a live add-on by code, with its taxes.
pub(super) fn get(conn: &Connection, org: i64, code: &str) -> StoreResult<AddOn> {
    let (_, add_on) = find(conn, org, code)?.ok_or(StoreError::NotFound("add_on"))?;
    with_taxes(conn, add_on)
}

/// Lists live add-ons, oldest first.
pub(super) fn list(conn: &Connection, org: i64, page: Page) -> StoreResult<Listed<AddOn>> {
    let mut query = Filtered::new("org = ?", SqlValue::Integer(org));
    query.and("deleted_at IS NULL", []);
    let listed = query.page(conn, "add_ons", COLUMNS, "seq", page, from_row)?;
    let mut items = Vec::with_capacity(listed.items.len());
    for (_, add_on) in listed.items {
        items.push(with_taxes(conn, add_on)?);
    }
    Ok(Listed {
        items,
        total: listed.total,
    })
}

fn code_taken() -> StoreError {
    let mut errors = ValidationErrors::new();
    errors.push("code", Reason::ValueAlreadyExist);
    StoreError::Invalid(errors)
}

/// Creates an add-on and links its taxes; an unknown tax code stores nothing.
pub(super) fn create(conn: &Connection, org: i64, draft: &AddOnDraft) -> StoreResult<AddOn> {
    let terms = &draft.terms;
    terms.validate()?;
    if find(conn, org, terms.code.as_str())?.is_some() {
        return Err(code_taken());
    }
    let id = uuid::Uuid::now_v7();
    let at = now().micros();
    conn.execute(
        "INSERT INTO add_ons (id, org, code, name, invoice_display_name, description, amount_cents,
            amount_currency, created_at, updated_at)
         VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?9)",
        params![
            id.to_string(),
            org,
            terms.code.as_str(),
            terms.name,
            terms.invoice_display_name,
            terms.description,
            terms.amount_cents,
            terms.currency.code(),
            at
        ],
    )?;
    if let Some(codes) = &draft.tax_codes {
        taxes::set_links(conn, org, TAX_OWNER, &id.to_string(), codes)?;
    }
    get(conn, org, terms.code.as_str())
}

/// Replaces an add-on's fields (and its taxes, when the draft names them). Invoices already issued
/// keep the name, price and taxes they were made with.
pub(super) fn update(
    conn: &Connection,
    org: i64,
    code: &str,
    draft: &AddOnDraft,
) -> StoreResult<AddOn> {
    let terms = &draft.terms;
    let (seq, existing) = find(conn, org, code)?.ok_or(StoreError::NotFound("add_on"))?;
    terms.validate()?;
    if terms.code.as_str() != code && find(conn, org, terms.code.as_str())?.is_some() {
        return Err(code_taken());
    }
    conn.execute(
        "UPDATE add_ons SET code = ?2, name = ?3, invoice_display_name = ?4, description = ?5,
            amount_cents = ?6, amount_currency = ?7, updated_at = ?8
         WHERE seq = ?1",
        params![
            seq,
            terms.code.as_str(),
            terms.name,
            terms.invoice_display_name,
            terms.description,
            terms.amount_cents,
            terms.currency.code(),
            now().micros()
        ],
    )?;
    if let Some(codes) = &draft.tax_codes {
        taxes::set_links(conn, org, TAX_OWNER, &existing.id.to_string(), codes)?;
    }
    get(conn, org, terms.code.as_str())
}

/// Deletes an add-on: its code becomes free; invoices that billed it keep their fees. Answers the
/// add-on as it was.
pub(super) fn delete(conn: &Connection, org: i64, code: &str) -> StoreResult<AddOn> {
    let (seq, add_on) = find(conn, org, code)?.ok_or(StoreError::NotFound("add_on"))?;
    let add_on = with_taxes(conn, add_on)?;
    conn.execute(
        "UPDATE add_ons SET deleted_at = ?2 WHERE seq = ?1",
        params![seq, now().micros()],
    )?;
    conn.execute(
        "DELETE FROM tax_links WHERE owner_kind = ?1 AND owner = ?2",
        params![TAX_OWNER, add_on.id.to_string()],
    )?;
    Ok(add_on)
}

//! Credit notes: part of a finalized invoice credited (kept for later invoices) or refunded.
//!
//! Items credit fees by an amount before taxes, at most what is left of each fee after coupons and
//! earlier credit notes; each item's taxes follow the fee's rates, rounded once. Credit is spent by
//! the customer's next finalized invoices, before wallets.

use rusqlite::types::Value as SqlValue;
use rusqlite::{Connection, OptionalExtension, Row, params};
use rust_decimal::prelude::ToPrimitive;
use rust_decimal::{Decimal, RoundingStrategy};
use tally_core::currency::Currency;
use tally_core::error::{Reason, ValidationErrors};
use tally_core::invoice::{InvoiceStatus, PaymentStatus};
use tally_core::page::Page;
use tally_core::time::Timestamp;

use super::billing;
use super::listing::Filtered;
use super::now;
use super::orgs::parse_uuid;
use crate::error::{StoreError, StoreResult};
use crate::types::{CreditNote, CreditNoteEstimate, Listed, NewCreditNote};

/// The reasons Lago accepts.
pub const REASONS: [&str; 6] = [
    "duplicated_charge",
    "product_unsatisfactory",
    "order_change",
    "order_cancellation",
    "fraudulent_charge",
    "other",
];

fn invalid(field: &str, reason: Reason) -> StoreError {
    let mut errors = ValidationErrors::new();
    errors.push(field, reason);
    StoreError::Invalid(errors)
}

/// Checks a credit note request against its invoice and works out its amounts, writing nothing.
pub(super) fn estimate(
    conn: &Connection,
    org: i64,
    request: &NewCreditNote,
) -> StoreResult<CreditNoteEstimate> {
    if !REASONS.contains(&request.reason.as_str()) {
        return Err(invalid("reason", Reason::ValueIsInvalid));
    }
    if request.items.is_empty() {
        return Err(invalid("items", Reason::ValueIsMandatory));
    }
    let invoice = billing::get(conn, org, request.invoice_id)?;
    if invoice.status != InvoiceStatus::Finalized {
        return Err(StoreError::NotAllowed("invoice_not_finalized"));
    }
    let mut sub_total = 0i64;
    let mut taxes = 0i64;
    let mut items = Vec::with_capacity(request.items.len());
    for (index, (fee_id, amount)) in request.items.iter().enumerate() {
        let fee = invoice
            .fees
            .iter()
            .find(|f| f.id.0 == *fee_id)
            .ok_or(StoreError::NotFound("fee"))?;
        if request.items[..index]
            .iter()
            .any(|(earlier, _)| earlier == fee_id)
        {
            return Err(invalid(
                &format!("items.{index}.fee_id"),
                Reason::ValueAlreadyExist,
            ));
        }
        let creditable = fee.fee.amount_cents - fee.coupons_amount_cents - credited(conn, *fee_id)?;
        if *amount <= 0 || *amount > creditable {
            return Err(invalid(
                &format!("items.{index}.amount_cents"),
                Reason::ValueIsOutOfRange,
            ));
        }
        let rate: Decimal = fee.taxes.iter().map(|t| t.rate).sum();
        taxes += (Decimal::from(*amount) * rate / Decimal::ONE_HUNDRED)
            .round_dp_with_strategy(0, RoundingStrategy::MidpointNearestEven)
            .to_i64()
            .unwrap_or(0);
        sub_total += amount;
        items.push((*fee_id, *amount));
    }
    let total = sub_total + taxes;
    let paid = invoice.payment_status == PaymentStatus::Succeeded;
    Ok(CreditNoteEstimate {
        invoice_id: invoice.id.0,
        invoice_number: invoice.number.clone().unwrap_or_default(),
        currency: invoice.currency,
        sub_total_excluding_taxes_amount_cents: sub_total,
        taxes_amount_cents: taxes,
        total_amount_cents: total,
        max_creditable_amount_cents: total,
        max_refundable_amount_cents: if paid { total } else { 0 },
        items,
    })
}

/// Returns how much of a fee credit notes not voided already credit (minor units, before taxes).
pub(super) fn credited(conn: &Connection, fee: uuid::Uuid) -> StoreResult<i64> {
    let credited = conn.query_row(
        "SELECT COALESCE(SUM(i.amount_cents), 0) FROM credit_note_items i JOIN credit_notes n ON n.seq = i.credit_note
         WHERE i.fee = ?1 AND n.voided_at IS NULL",
        [fee.to_string()],
        |r| r.get(0),
    )?;
    Ok(credited)
}

/// Issues a credit note on a finalized invoice. Without amounts, the whole total is kept as credit;
/// a refund needs the invoice paid.
pub(super) fn create(
    conn: &Connection,
    org: i64,
    request: &NewCreditNote,
    at: Timestamp,
) -> StoreResult<CreditNote> {
    issue(conn, org, request, at, None)
}

/// Issues a credit note, recording the subscription whose termination it credits, if any (at most one
/// note per terminated subscription: a unique index holds it).
pub(super) fn issue(
    conn: &Connection,
    org: i64,
    request: &NewCreditNote,
    at: Timestamp,
    termination_of: Option<i64>,
) -> StoreResult<CreditNote> {
    let estimate = estimate(conn, org, request)?;
    let total = estimate.total_amount_cents;
    let (credit, refund) = match (request.credit_amount_cents, request.refund_amount_cents) {
        (None, None) => (total, 0),
        (credit, refund) => (credit.unwrap_or(0), refund.unwrap_or(0)),
    };
    if refund < 0 || refund > estimate.max_refundable_amount_cents {
        return Err(invalid("refund_amount_cents", Reason::ValueIsOutOfRange));
    }
    if credit < 0 || credit + refund != total {
        return Err(invalid("credit_amount_cents", Reason::InvalidAmount));
    }
    let invoice_seq: i64 = conn.query_row(
        "SELECT seq FROM invoices WHERE id = ?1",
        [estimate.invoice_id.to_string()],
        |r| r.get(0),
    )?;
    let customer: String = conn.query_row(
        "SELECT customer FROM invoices WHERE seq = ?1",
        [invoice_seq],
        |r| r.get(0),
    )?;
    let n: i64 = conn.query_row(
        "SELECT COALESCE(MAX(sequential_id), 0) + 1 FROM credit_notes WHERE invoice = ?1",
        [invoice_seq],
        |r| r.get(0),
    )?;
    let id = uuid::Uuid::now_v7();
    conn.execute(
        "INSERT INTO credit_notes (id, org, invoice, customer, number, sequential_id, reason, description, currency,
            sub_total_excluding_taxes_amount_cents, taxes_amount_cents, total_amount_cents, credit_amount_cents,
            refund_amount_cents, balance_amount_cents, credit_status, refund_status, created_at, updated_at,
            termination_of)
         VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12, ?13, ?14, ?13, ?15, ?16, ?17, ?17, ?18)",
        params![
            id.to_string(),
            org,
            invoice_seq,
            customer,
            format!("{}-CN{n:03}", estimate.invoice_number),
            n,
            request.reason,
            request.description,
            estimate.currency.code(),
            estimate.sub_total_excluding_taxes_amount_cents,
            estimate.taxes_amount_cents,
            total,
            credit,
            refund,
            (credit > 0).then_some("available"),
            (refund > 0).then_some("pending"),
            at.micros(),
            termination_of
        ],
    )?;
    let seq = conn.last_insert_rowid();
    for (fee, amount) in &request.items {
        conn.execute(
            "INSERT INTO credit_note_items (credit_note, fee, amount_cents) VALUES (?1, ?2, ?3)",
            params![seq, fee.to_string(), amount],
        )?;
    }
    get(conn, org, id)
}

const COLUMNS: &str = "n.seq, n.id, n.number, n.sequential_id, i.id, i.number, c.id, c.external_id, n.reason, n.description,
    n.currency, n.sub_total_excluding_taxes_amount_cents, n.taxes_amount_cents, n.total_amount_cents,
    n.credit_amount_cents, n.refund_amount_cents, n.balance_amount_cents, n.credit_status, n.refund_status,
    n.created_at, n.updated_at, n.voided_at";
const FROM: &str =
    "credit_notes n JOIN invoices i ON i.seq = n.invoice JOIN customers c ON c.id = n.customer";

fn from_row(row: &Row<'_>) -> rusqlite::Result<(i64, CreditNote)> {
    let currency: String = row.get(10)?;
    Ok((
        row.get(0)?,
        CreditNote {
            id: parse_uuid(&row.get::<_, String>(1)?)?,
            number: row.get(2)?,
            sequential_id: row.get(3)?,
            invoice_id: parse_uuid(&row.get::<_, String>(4)?)?,
            invoice_number: row.get::<_, Option<String>>(5)?.unwrap_or_default(),
            customer_id: parse_uuid(&row.get::<_, String>(6)?)?,
            external_customer_id: row.get(7)?,
            reason: row.get(8)?,
            description: row.get(9)?,
            currency: Currency::parse(&currency).ok_or_else(|| {
                rusqlite::Error::FromSqlConversionFailure(
                    10,
                    rusqlite::types::Type::Text,
                    currency.clone().into(),
                )
            })?,
            sub_total_excluding_taxes_amount_cents: row.get(11)?,
            taxes_amount_cents: row.get(12)?,
            total_amount_cents: row.get(13)?,
            credit_amount_cents: row.get(14)?,
            refund_amount_cents: row.get(15)?,
            balance_amount_cents: row.get(16)?,
            credit_status: row.get(17)?,
            refund_status: row.get(18)?,
            items: Vec::new(),
            created_at: Timestamp::from_micros(row.get(19)?),
            updated_at: Timestamp::from_micros(row.get(20)?),
            voided_at: row.get::<_, Option<i64>>(21)?.map(Timestamp::from_micros),
        },
    ))
}

fn with_items(conn: &Connection, (seq, mut note): (i64, CreditNote)) -> StoreResult<CreditNote> {
    let mut stmt = conn.prepare_cached(
        "SELECT fee, amount_cents FROM credit_note_items WHERE credit_note = ?1 ORDER BY rowid",
    )?;
    note.items = stmt
        .query_map([seq], |row| {
            Ok((parse_uuid(&row.get::<_, String>(0)?)?, row.get(1)?))
        })?
        .collect::<rusqlite::Result<_>>()?;
    Ok(note)
}

/// Reads a credit note.
pub(super) fn get(conn: &Connection, org: i64, id: uuid::Uuid) -> StoreResult<CreditNote> {
    let found = conn
        .query_row(
            &format!("SELECT {COLUMNS} FROM {FROM} WHERE n.org = ?1 AND n.id = ?2"),
            params![org, id.to_string()],
            from_row,
        )
        .optional()?
        .ok_or(StoreError::NotFound("credit_note"))?;
    with_items(conn, found)
}

/// Lists credit notes, newest first.
pub(super) fn list(
    conn: &Connection,
    org: i64,
    customer: Option<&str>,
    page: Page,
) -> StoreResult<Listed<CreditNote>> {
    let mut query = Filtered::new("n.org = ?", SqlValue::Integer(org));
    if let Some(customer) = customer {
        query.and("c.external_id = ?", [SqlValue::Text(customer.to_owned())]);
    }
    let listed = query.page(conn, FROM, COLUMNS, "n.seq DESC", page, from_row)?;
    let mut items = Vec::with_capacity(listed.items.len());
    for found in listed.items {
        items.push(with_items(conn, found)?);
    }
    Ok(Listed {
        items,
        total: listed.total,
    })
}

/// Voids a credit note's remaining credit.
pub(super) fn void(
    conn: &Connection,
    org: i64,
    id: uuid::Uuid,
    at: Timestamp,
) -> StoreResult<CreditNote> {
    let note = get(conn, org, id)?;
    if note.voided_at.is_some() || note.credit_status.as_deref() != Some("available") {
        return Err(StoreError::NotAllowed("credit_note_not_voidable"));
    }
    conn.execute(
        "UPDATE credit_notes SET credit_status = 'voided', balance_amount_cents = 0, voided_at = ?3, updated_at = ?4
         WHERE org = ?1 AND id = ?2",
        params![org, id.to_string(), at.micros(), now().micros()],
    )?;
    get(conn, org, id)
}

/// The credit notes of a customer with credit left in a currency, oldest first: (seq, balance).
pub(super) fn available_for(
    conn: &Connection,
    customer: &str,
    currency: Currency,
) -> StoreResult<Vec<(i64, i64)>> {
    let mut stmt = conn.prepare_cached(
        "SELECT seq, balance_amount_cents FROM credit_notes
         WHERE customer = ?1 AND currency = ?2 AND credit_status = 'available' AND balance_amount_cents > 0
         ORDER BY seq",
    )?;
    let notes = stmt
        .query_map(params![customer, currency.code()], |row| {
            Ok((row.get(0)?, row.get(1)?))
        })?
        .collect::<rusqlite::Result<_>>()?;
    Ok(notes)
}

/// Spends `amount` of a credit note's credit on a finalized invoice.
pub(super) fn spend(conn: &Connection, note: i64, invoice: i64, amount: i64) -> StoreResult<()> {
    conn.execute(
        "UPDATE credit_notes SET balance_amount_cents = balance_amount_cents - ?2,
            credit_status = CASE WHEN balance_amount_cents - ?2 <= 0 THEN 'consumed' ELSE credit_status END,
            updated_at = ?3
         WHERE seq = ?1",
        params![note, amount, now().micros()],
    )?;
    conn.execute(
        "INSERT INTO invoice_credit_notes (invoice, credit_note, amount_cents) VALUES (?1, ?2, ?3)",
        params![invoice, note, amount],
    )?;
    Ok(())
}

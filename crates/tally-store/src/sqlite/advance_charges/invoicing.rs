//! The invoice of a pay-in-advance fee, the taxes of a fee on no invoice, and the `advance_fees` row
//! that claims (charge, event).

use rusqlite::{Connection, params};
use serde_json::{Value, json};
use tally_core::billing::adjustments::{TaxRate, adjust};
use tally_core::billing::{Run, RunReason};
use tally_core::id::InvoiceId;
use tally_core::period::Period;
use tally_core::plan::Charge;
use tally_core::time::Timestamp;

use super::super::billing::{self, Billed, DAY_MICROS};
use super::super::taxes;
use super::Event;
use crate::error::StoreResult;
use crate::types::{FeeTax, StoredFee};

/// Makes the invoice of one pay-in-advance fee, finalized and numbered at once unless the customer
/// (or organization) has a grace period; its coupons, taxes and credits follow the chain of every
/// subscription invoice. Returns the invoice's sequence and id.
pub(super) fn invoice_fee(
    conn: &Connection,
    billed: &Billed,
    stored: &StoredFee,
    period: Period,
    event_at: Timestamp,
    now_at: Timestamp,
) -> StoreResult<(i64, InvoiceId)> {
    let grace_days = billed.grace_days(conn)?;
    let subscription_period = billed
        .schedule()
        .map_or(period, |s| s.period_containing(event_at));
    let run = Run {
        boundary: now_at,
        reason: RunReason::InAdvanceCharge,
        arrears: None,
        advance: None,
        charges: Some(period),
        subscription_period,
    };
    let (invoice, id) = billing::insert_invoice(
        conn,
        billed,
        "subscription",
        &run,
        now_at,
        Some(Timestamp::from_micros(
            now_at.micros() + grace_days * DAY_MICROS,
        )),
    )?;
    billing::write_fees(conn, invoice, std::slice::from_ref(stored))?;
    if grace_days == 0 {
        billing::recompute(conn, invoice, Some(now_at))?;
        billing::number(conn, invoice, now_at)?;
    } else {
        billing::recompute(conn, invoice, None)?;
    }
    Ok((invoice, id))
}

/// Taxes a fee that is on no invoice, as an invoice would tax it (the plan's taxes, else the
/// customer's, else the organization's), each rounded once.
pub(super) fn fee_taxes(
    conn: &Connection,
    billed: &Billed,
    stored: &StoredFee,
) -> StoreResult<Vec<FeeTax>> {
    let found = taxes::for_fees(
        conn,
        billed.org,
        &billed.plan.id.0.to_string(),
        &billed.customer.id.0.to_string(),
    )?;
    let rates: Vec<TaxRate> = found
        .iter()
        .enumerate()
        .map(|(index, (_, tax))| TaxRate {
            tax: index,
            rate: tax.terms.rate,
        })
        .collect();
    let adjusted = adjust(std::slice::from_ref(&stored.fee), &[], &[rates]);
    Ok(adjusted
        .fee_taxes
        .first()
        .map(|list| {
            list.iter()
                .map(|(index, amount)| {
                    let tax = &found[*index].1;
                    FeeTax {
                        tax_id: tax.id,
                        code: tax.terms.code.to_string(),
                        name: tax.terms.name.clone(),
                        rate: tax.terms.rate,
                        amount_cents: *amount,
                    }
                })
                .collect()
        })
        .unwrap_or_default())
}

/// Records the fee of (charge, event): the primary key is the exactly-once claim.
pub(super) fn insert_fee(
    conn: &Connection,
    billed: &Billed,
    seq: i64,
    event: &Event,
    charge: &Charge,
    stored: &StoredFee,
    invoice: Option<i64>,
) -> StoreResult<()> {
    let f = &stored.fee;
    let taxes: Vec<Value> = stored
        .taxes
        .iter()
        .map(|t| json!({"tax": t.tax_id, "code": t.code, "name": t.name, "rate": t.rate.to_string(), "amount_cents": t.amount_cents}))
        .collect();
    conn.prepare_cached(
        "INSERT INTO advance_fees (charge, event, id, org, customer, subscription, charge_filter, invoiceable,
            invoice, event_transaction_id, currency, item_code, item_name, invoice_display_name, filter_name,
            filter_values, units, precise_amount, amount_cents, taxes, taxes_amount_cents, period_from,
            period_to, details, created_at)
         VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12, ?13, ?14, ?15, ?16, ?17, ?18, ?19, ?20,
            ?21, ?22, ?23, ?24, ?25)",
    )?
    .execute(params![
        charge.id.0.to_string(),
        event.id,
        stored.id.0.to_string(),
        billed.org,
        billed.customer.id.0.to_string(),
        seq,
        f.filter_id.map(|id| id.0.to_string()),
        charge.terms.invoiceable,
        invoice,
        event.transaction_id,
        billed.plan.terms.currency.code(),
        stored.item_code,
        stored.item_name,
        stored.invoice_display_name,
        stored.filter_name,
        stored.filter_values.as_ref().map(Value::to_string),
        f.units.to_string(),
        f.precise_amount.to_string(),
        f.amount_cents,
        Value::Array(taxes).to_string(),
        stored.taxes.iter().map(|t| t.amount_cents).sum::<i64>(),
        f.period.from.micros(),
        f.period.to.micros(),
        f.details.to_string(),
        stored.created_at.micros(),
    ])?;
    Ok(())
}

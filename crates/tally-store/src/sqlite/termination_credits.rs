//! The credit a subscription paid in advance earns when it ends before its period does: a termination
//! or an upgrade credits back the unused share of the fee paid in advance (docs/billing.md,
//! "Termination, upgrades and downgrades").
//!
//! The credit note is issued once the run through `terminated_at` is billed, in that run's transaction,
//! before its invoice is finalized, so the final invoice already spends it. If the invoice that paid in
//! advance is still a draft (its grace period), nothing is credited until that draft is finalized: the
//! note is issued then, in the finalization's transaction (docs/decisions.md). A unique index keeps it
//! to one note per subscription.

use rusqlite::{Connection, OptionalExtension, params};
use tally_core::billing::unused_advance_share;
use tally_core::id::InvoiceId;
use tally_core::money::round_fee;
use tally_core::time::Timestamp;

use super::billing::{self, Billed};
use super::credit_notes;
use super::orgs::parse_uuid;
use crate::error::StoreResult;
use crate::types::NewCreditNote;

/// Credits the unused part of the period a terminated subscription paid in advance, once: from
/// `terminated_at` to the end of the period its advance fee covered, at most what is still creditable
/// on that fee. Does nothing until the run through `terminated_at` is billed, while the invoice that
/// paid in advance is a draft, when that invoice was voided, or when nothing is left to credit.
pub(super) fn issue(conn: &Connection, seq: i64, at: Timestamp) -> StoreResult<()> {
    let state: Option<(Option<i64>, Option<i64>, bool)> = conn
        .query_row(
            "SELECT s.terminated_at, (SELECT MAX(boundary) FROM billing_runs r WHERE r.subscription = s.seq),
                EXISTS (SELECT 1 FROM credit_notes n WHERE n.termination_of = s.seq)
             FROM subscriptions s WHERE s.seq = ?1",
            [seq],
            |row| Ok((row.get(0)?, row.get(1)?, row.get(2)?)),
        )
        .optional()?;
    let Some((Some(end), Some(last), false)) = state else {
        return Ok(());
    };
    if last < end {
        return Ok(());
    }
    let end = Timestamp::from_micros(end);
    let paid: Option<(String, String, String)> = conn
        .query_row(
            "SELECT f.id, i.id, i.status FROM billing_runs r JOIN invoices i ON i.seq = r.invoice
                JOIN fees f ON f.invoice = i.seq
             WHERE r.subscription = ?1 AND f.kind = 'subscription' AND f.pay_in_advance = 1
                AND f.period_from <= ?2 AND ?2 < f.period_to AND i.status <> 'voided'
             ORDER BY i.seq DESC LIMIT 1",
            params![seq, end.micros()],
            |row| Ok((row.get(0)?, row.get(1)?, row.get(2)?)),
        )
        .optional()?;
    let Some((fee_id, invoice_id, status)) = paid else {
        return Ok(());
    };
    if status != "finalized" {
        return Ok(());
    }
    let billed = Billed::load(conn, seq)?;
    let (Some(schedule), Some(life)) = (billed.schedule(), billed.life()) else {
        return Ok(());
    };
    let invoice = billing::get(conn, billed.org, InvoiceId(parse_uuid(&invoice_id)?))?;
    let fee_id = parse_uuid(&fee_id)?;
    let Some(fee) = invoice.fees.iter().find(|f| f.id.0 == fee_id) else {
        return Ok(());
    };
    // The fee's price for a whole period is its exact amount over its share; the unused share is
    // measured like the share it charged, so the two parts of the period add up to it exactly.
    let unused = unused_advance_share(&schedule, &life, fee.fee.period, end);
    let amount = round_fee(fee.fee.precise_unit_amount() * unused, invoice.currency);
    let creditable =
        fee.fee.amount_cents - fee.coupons_amount_cents - credit_notes::credited(conn, fee_id)?;
    let amount = amount.min(creditable);
    if amount <= 0 {
        return Ok(());
    }
    let upgraded: bool = conn.query_row(
        "SELECT EXISTS (SELECT 1 FROM subscriptions WHERE previous = ?1 AND started_at = ?2
            AND status IN ('active', 'terminated'))",
        params![seq, end.micros()],
        |row| row.get(0),
    )?;
    let (reason, why) = if upgraded {
        ("order_change", "changed plan")
    } else {
        ("order_cancellation", "was terminated")
    };
    let request = NewCreditNote {
        invoice_id: invoice.id,
        reason: reason.to_owned(),
        description: Some(format!(
            "Unused part of the period paid in advance: subscription {} {why} at {}",
            billed.subscription.external_id.as_str(),
            end.to_rfc3339_seconds()
        )),
        items: vec![(fee_id, amount)],
        credit_amount_cents: None,
        refund_amount_cents: None,
    };
    credit_notes::issue(conn, billed.org, &request, at, Some(seq))?;
    Ok(())
}

/// Issues the termination credit that waited for `invoice` to be finalized, if it is the draft that
/// paid a terminated subscription's period in advance.
pub(super) fn after_finalizing(conn: &Connection, invoice: i64, at: Timestamp) -> StoreResult<()> {
    let terminated: Option<i64> = conn
        .query_row(
            "SELECT s.seq FROM invoices i JOIN subscriptions s ON s.seq = i.subscription
             WHERE i.seq = ?1 AND s.terminated_at IS NOT NULL",
            [invoice],
            |row| row.get(0),
        )
        .optional()?;
    match terminated {
        Some(seq) => issue(conn, seq, at),
        None => Ok(()),
    }
}

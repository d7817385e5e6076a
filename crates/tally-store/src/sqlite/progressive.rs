//! Progressive billing: a subscription whose plan has usage thresholds gets a `progressive_billing`
//! invoice, finalized at once, as soon as the billing clock sees that its lifetime usage passed one
//! (the rules are in `tally_core::billing::progressive`). The invoice bills the charges period's usage
//! to date less what the period's earlier progressive invoices billed; the invoice that closes the
//! period takes the same credit, so every unit is billed once in all.
//!
//! Exactly once: the n-th progressive invoice of a (subscription, charges period) claims the
//! `progressive_runs` primary key in the transaction that writes it.

use rusqlite::{Connection, params};
use rust_decimal::Decimal;
use tally_core::billing::{Run, RunReason, passed_thresholds, progress as progress_of};
use tally_core::error::{Reason, ValidationErrors};
use tally_core::id::{InvoiceId, UsageThresholdId};
use tally_core::period::Period;
use tally_core::plan::UsageThreshold;
use tally_core::subscription::SubscriptionStatus;
use tally_core::time::Timestamp;

use super::billing::{self, Billed};
use super::now;
use super::orgs::parse_uuid;
use crate::error::{StoreError, StoreResult};
use crate::types::{AppliedUsageThreshold, LifetimeUsage, StoredFee};

/// Usage (charge fees in arrears, before coupons and taxes) billed on the subscription invoices of a
/// subscription, never on a voided one: its lifetime usage of the periods already closed.
fn invoiced_usage(conn: &Connection, subscription: i64) -> StoreResult<i64> {
    Ok(conn.query_row(
        "SELECT COALESCE(SUM(f.amount_cents), 0) FROM invoices i JOIN fees f ON f.invoice = i.seq
         WHERE i.subscription = ?1 AND i.invoice_type = 'subscription' AND i.status <> 'voided'
           AND f.kind = 'charge' AND f.pay_in_advance = 0",
        [subscription],
        |row| row.get(0),
    )?)
}

/// What the progressive invoices of a subscription that fall in `charges` billed, net of their own
/// progressive credit, never counting a voided one; `before` keeps only invoices older than it.
fn progressive_billed(
    conn: &Connection,
    subscription: i64,
    charges: Period,
    before: Option<i64>,
) -> StoreResult<i64> {
    Ok(conn.query_row(
        "SELECT COALESCE(SUM(i.fees_amount_cents - i.progressive_billing_credit_amount_cents), 0)
         FROM progressive_runs r JOIN invoices i ON i.seq = r.invoice
         WHERE r.subscription = ?1 AND r.period_from >= ?2 AND r.period_from < ?3
           AND i.status <> 'voided' AND r.invoice < ?4",
        params![
            subscription,
            charges.from.micros(),
            charges.to.micros().max(charges.from.micros() + 1),
            before.unwrap_or(i64::MAX)
        ],
        |row| row.get(0),
    )?)
}

/// The progressive billing credit of an invoice of `subscription` billing `run`: for a progressive
/// invoice, what the period's earlier ones billed; for the invoice closing a charges period (at its
/// end or at a termination), what all of the period's progressive invoices billed; otherwise nothing.
pub(super) fn credit_for(
    conn: &Connection,
    invoice: i64,
    subscription: i64,
    run: &Run,
) -> StoreResult<i64> {
    let Some(charges) = run.charges else {
        return Ok(0);
    };
    match run.reason {
        RunReason::ProgressiveBilling => {
            progressive_billed(conn, subscription, charges, Some(invoice))
        }
        RunReason::Periodic | RunReason::Terminating => {
            progressive_billed(conn, subscription, charges, None)
        }
        RunReason::Starting | RunReason::InAdvanceCharge => Ok(0),
    }
}

/// The open charges period of a subscription at `now_at`, and its usage fees from its start up to
/// `now_at` (no charge minimum: a minimum is a floor for the whole period, trued up when it closes).
fn usage_to_date(
    conn: &Connection,
    billed: &Billed,
    now_at: Timestamp,
) -> StoreResult<Option<(Period, Vec<StoredFee>)>> {
    let (Some(schedule), Some(life)) = (billed.schedule(), billed.life()) else {
        return Ok(None);
    };
    let at = now_at.max(life.started_at);
    let whole = schedule.charges_period_containing(at, life.bill_charges_monthly);
    let span = Period {
        from: whole.from,
        to: now_at.max(whole.from),
    };
    let fees = billing::price_usage(
        conn,
        billed,
        life.billed_part(span),
        life.events_in(span),
        Decimal::ZERO,
    )?;
    Ok(Some((whole, fees)))
}

/// Usage a subscription had before tally (`PUT /subscriptions/{id}/lifetime_usage`).
fn historical_usage(conn: &Connection, subscription: i64) -> StoreResult<i64> {
    Ok(conn.query_row(
        "SELECT historical_usage_amount_cents FROM subscriptions WHERE seq = ?1",
        [subscription],
        |row| row.get(0),
    )?)
}

/// What passing a threshold would invoice: the open charges period, its usage fees so far, lifetime
/// usage and the thresholds passed.
struct Passing {
    whole: Period,
    fees: Vec<StoredFee>,
    lifetime: i64,
    passed: Vec<usize>,
}

/// Works out, reading only, whether a subscription's lifetime usage has passed one of its plan's
/// thresholds since it was last invoiced at `now_at`.
fn passing(
    conn: &Connection,
    seq: i64,
    billed: &Billed,
    now_at: Timestamp,
) -> StoreResult<Option<Passing>> {
    let thresholds = billed.plan.thresholds();
    if thresholds.is_empty()
        || billed.subscription.status != SubscriptionStatus::Active
        || billed.subscription.terminated_at.is_some()
        || billed
            .subscription
            .started_at
            .is_none_or(|start| now_at <= start)
    {
        return Ok(None);
    }
    let Some((whole, fees)) = usage_to_date(conn, billed, now_at)? else {
        return Ok(None);
    };
    let usage: i64 = fees.iter().map(|f| f.fee.amount_cents).sum();
    let closed = historical_usage(conn, seq)? + invoiced_usage(conn, seq)?;
    let progressive = progressive_billed(conn, seq, whole, None)?;
    let passed = passed_thresholds(&thresholds, closed + progressive, closed + usage);
    Ok((!passed.is_empty()).then_some(Passing {
        whole,
        fees,
        lifetime: closed + usage,
        passed,
    }))
}

/// Whether billing the subscription `seq` at `now_at` would make a progressive invoice. Read-only:
/// the billing clock asks it on reader connections, so the writer (which commits ingest) prices
/// only the subscriptions that pass a threshold.
pub(super) fn passes_threshold(
    conn: &Connection,
    seq: i64,
    now_at: Timestamp,
) -> StoreResult<bool> {
    let billed = Billed::load(conn, seq)?;
    Ok(passing(conn, seq, &billed, now_at)?.is_some())
}

/// Invoices a subscription's usage to date when its lifetime usage has passed one of its plan's
/// thresholds since it was last invoiced; returns the invoice, finalized and numbered.
pub(super) fn bill_thresholds(
    conn: &Connection,
    seq: i64,
    billed: &Billed,
    now_at: Timestamp,
) -> StoreResult<Option<InvoiceId>> {
    let Some(Passing {
        whole,
        fees,
        lifetime,
        passed,
    }) = passing(conn, seq, billed, now_at)?
    else {
        return Ok(None);
    };
    let Some(schedule) = billed.schedule() else {
        return Ok(None);
    };
    let span = Period {
        from: whole.from,
        to: now_at,
    };
    let run = Run {
        boundary: now_at,
        reason: RunReason::ProgressiveBilling,
        arrears: None,
        advance: None,
        charges: Some(span),
        subscription_period: schedule.period_containing(now_at),
    };
    let (invoice, id) =
        billing::insert_invoice(conn, billed, "progressive_billing", &run, now_at, None)?;
    // The claim: a second process deciding the same invoice fails here and its transaction rolls back.
    conn.execute(
        "INSERT INTO progressive_runs (subscription, period_from, sequence, invoice,
            lifetime_usage_amount_cents, created_at)
         VALUES (?1, ?2, (SELECT COALESCE(MAX(sequence), 0) + 1 FROM progressive_runs
                          WHERE subscription = ?1 AND period_from = ?2), ?3, ?4, ?5)",
        params![seq, whole.from.micros(), invoice, lifetime, now_at.micros()],
    )?;
    for index in passed {
        let (threshold, _) = &billed.plan.usage_thresholds[index];
        conn.execute(
            "INSERT INTO applied_usage_thresholds (invoice, threshold)
             SELECT ?1, seq FROM usage_thresholds WHERE id = ?2",
            params![invoice, threshold.0.to_string()],
        )?;
    }
    billing::write_fees(conn, invoice, &fees)?;
    billing::finalize_now(conn, invoice, now_at)?;
    Ok(Some(id))
}

/// The usage thresholds an invoice passed, by amount.
pub(super) fn applied_thresholds(
    conn: &Connection,
    invoice: i64,
) -> StoreResult<Vec<AppliedUsageThreshold>> {
    let mut stmt = conn.prepare_cached(
        "SELECT t.id, t.amount_cents, t.display_name, t.recurring, t.created_at, t.updated_at,
            r.lifetime_usage_amount_cents
         FROM applied_usage_thresholds a JOIN usage_thresholds t ON t.seq = a.threshold
         JOIN progressive_runs r ON r.invoice = a.invoice
         WHERE a.invoice = ?1 ORDER BY t.amount_cents, t.recurring",
    )?;
    let applied = stmt
        .query_map([invoice], |row| {
            Ok(AppliedUsageThreshold {
                id: UsageThresholdId(parse_uuid(&row.get::<_, String>(0)?)?),
                threshold: UsageThreshold {
                    amount_cents: row.get(1)?,
                    display_name: row.get(2)?,
                    recurring: row.get(3)?,
                },
                created_at: Timestamp::from_micros(row.get(4)?),
                updated_at: Timestamp::from_micros(row.get(5)?),
                lifetime_usage_amount_cents: row.get(6)?,
            })
        })?
        .collect::<rusqlite::Result<_>>()?;
    Ok(applied)
}

/// Reads the lifetime usage of the active subscription `seq` at `now_at`.
pub(super) fn lifetime_usage(
    conn: &Connection,
    seq: i64,
    now_at: Timestamp,
) -> StoreResult<LifetimeUsage> {
    let billed = Billed::load(conn, seq)?;
    let (period, current) = match usage_to_date(conn, &billed, now_at)? {
        Some((whole, fees)) => (whole, fees.iter().map(|f| f.fee.amount_cents).sum()),
        None => (
            Period {
                from: now_at,
                to: now_at,
            },
            0,
        ),
    };
    let historical = historical_usage(conn, seq)?;
    let invoiced = invoiced_usage(conn, seq)?;
    let thresholds = billed.plan.thresholds();
    let mut reached = conn.prepare_cached(
        "SELECT MIN(r.created_at) FROM applied_usage_thresholds a
         JOIN usage_thresholds t ON t.seq = a.threshold
         JOIN progressive_runs r ON r.invoice = a.invoice JOIN invoices i ON i.seq = a.invoice
         WHERE r.subscription = ?1 AND t.id = ?2 AND t.recurring = 0 AND i.status <> 'voided'",
    )?;
    let mut progress = Vec::with_capacity(thresholds.len());
    for step in progress_of(&thresholds, historical + invoiced + current) {
        let (id, _) = &billed.plan.usage_thresholds[step.index];
        let at: Option<i64> =
            reached.query_row(params![seq, id.0.to_string()], |row| row.get(0))?;
        progress.push((step, at.map(Timestamp::from_micros)));
    }
    Ok(LifetimeUsage {
        subscription: billed.subscription,
        historical_usage_amount_cents: historical,
        invoiced_usage_amount_cents: invoiced,
        current_usage_amount_cents: current,
        period,
        thresholds: progress,
    })
}

/// Sets the usage the active subscription `seq` had before tally.
pub(super) fn set_historical_usage(
    conn: &Connection,
    seq: i64,
    amount_cents: i64,
) -> StoreResult<()> {
    if amount_cents < 0 {
        let mut errors = ValidationErrors::new();
        errors.push(
            "external_historical_usage_amount_cents",
            Reason::InvalidAmount,
        );
        return Err(StoreError::Invalid(errors));
    }
    conn.execute(
        "UPDATE subscriptions SET historical_usage_amount_cents = ?2, updated_at = ?3 WHERE seq = ?1",
        params![seq, amount_cents, now().micros()],
    )?;
    Ok(())
}

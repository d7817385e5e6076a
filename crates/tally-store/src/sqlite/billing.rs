//! The billing clock's work: subscriptions start and end on time, every (subscription, boundary) is
//! invoiced exactly once — the `billing_runs` primary key decides, in the same transaction as the
//! invoice — drafts are recomputed until their grace period ends, then finalized and numbered without
//! gaps.

use std::collections::BTreeMap;

use chrono::NaiveDate;
use chrono_tz::Tz;
use rusqlite::types::Value as SqlValue;
use rusqlite::{Connection, OptionalExtension, Row, params};
use rust_decimal::Decimal;
use serde_json::{Value, json};
use tally_core::billing::adjustments::{
    CouponValue, TaxRate, adjust_after_progressive, apply_credits,
};
use tally_core::billing::{
    BucketUsage, Fee, FeeKind, InvoiceTotals, Life, Run, RunReason, SubscriptionCharge,
    charge_buckets, charge_fees, charges_share, commitment_fee, due_runs, next_due,
    subscription_fee,
};
use tally_core::currency::Currency;
use tally_core::customer::Customer;
use tally_core::id::{ChargeFilterId, ChargeId, FeeId, InvoiceId};
use tally_core::invoice::{
    InvoiceStatus, PaymentStatus, invoice_number, number_prefix, organization_invoice_number,
};
use tally_core::organization::DocumentNumbering;
use tally_core::page::Page;
use tally_core::period::{Period, Schedule, proration};
use tally_core::plan::{Charge, Plan};
use tally_core::subscription::{Subscription, SubscriptionStatus};
use tally_core::time::Timestamp;

use super::listing::Filtered;
use super::now;
use super::orgs::parse_uuid;
use super::usage::{self, Scope};
use super::{
    advance_charges, billable_metrics, coupons, credit_notes, customers, orgs, plans, progressive,
    subscriptions, taxes, termination_credits, wallets,
};
use crate::error::{StoreError, StoreResult};
use crate::types::{
    ChargeUsageLine, CurrentUsage, FeeTax, Invoice, InvoiceCoupon, InvoiceFilter, Listed, Metric,
    StoredFee,
};

pub(super) const DAY_MICROS: i64 = 86_400_000_000;

/// Starts pending subscriptions whose time has come (ending the one a downgrade replaces) and ends
/// subscriptions whose `ending_at` has passed, in time order.
pub(super) fn apply_lifecycle(conn: &Connection, now_at: Timestamp) -> StoreResult<()> {
    let pending: Vec<(i64, i64, Option<i64>)> = {
        let mut stmt = conn.prepare(
            "SELECT seq, subscription_at, previous FROM subscriptions
             WHERE status = 'pending' AND subscription_at <= ?1 ORDER BY subscription_at, seq",
        )?;
        stmt.query_map([now_at.micros()], |row| {
            Ok((row.get(0)?, row.get(1)?, row.get(2)?))
        })?
        .collect::<rusqlite::Result<_>>()?
    };
    let stamp = now().micros();
    for (seq, start, previous) in pending {
        if let Some(previous) = previous {
            conn.execute(
                "UPDATE subscriptions SET status = 'terminated', terminated_at = ?2, updated_at = ?3
                 WHERE seq = ?1 AND status = 'active'",
                params![previous, start, stamp],
            )?;
        }
        conn.execute(
            "UPDATE subscriptions SET status = 'active', started_at = ?2, updated_at = ?3 WHERE seq = ?1",
            params![seq, start, stamp],
        )?;
    }
    conn.execute(
        "UPDATE subscriptions SET status = 'terminated', terminated_at = ending_at, updated_at = ?2
         WHERE status = 'active' AND ending_at IS NOT NULL AND ending_at <= ?1",
        params![now_at.micros(), stamp],
    )?;
    Ok(())
}

/// Subscriptions whose next run is due at `now_at` (or unknown, after a change).
pub(super) fn candidates(conn: &Connection, now_at: Timestamp) -> StoreResult<Vec<i64>> {
    // Sorted here, not in SQL: an ORDER BY seq makes SQLite scan the table instead of the index.
    let mut stmt = conn.prepare_cached(
        "SELECT seq FROM subscriptions WHERE status IN ('active', 'terminated') AND next_due_at <= ?1",
    )?;
    let mut seqs: Vec<i64> = stmt
        .query_map([now_at.micros()], |row| row.get(0))?
        .collect::<rusqlite::Result<_>>()?;
    seqs.sort_unstable();
    Ok(seqs)
}

/// Active subscriptions on plans with usage thresholds whose next run is not due at `now_at`: their
/// usage is checked at every tick (progressive billing), on readers first.
pub(super) fn threshold_candidates(conn: &Connection, now_at: Timestamp) -> StoreResult<Vec<i64>> {
    let mut stmt = conn.prepare_cached(
        "SELECT seq FROM subscriptions
         WHERE status = 'active' AND next_due_at > ?1
           AND plan IN (SELECT DISTINCT plan FROM usage_thresholds WHERE deleted_at IS NULL)
         ORDER BY seq",
    )?;
    let seqs = stmt
        .query_map([now_at.micros()], |row| row.get(0))?
        .collect::<rusqlite::Result<_>>()?;
    Ok(seqs)
}

/// How far ahead a subscription's next run is looked for: past the longest period and trial that
/// matter; a subscription with no run by then is visited again then.
const NEXT_DUE_HORIZON_DAYS: i64 = 800;

/// What pricing a subscription needs.
pub(super) struct Billed {
    /// The subscription's compact id.
    pub(super) seq: i64,
    pub(super) org: i64,
    pub(super) subscription: Subscription,
    pub(super) plan: Plan,
    pub(super) customer: Customer,
    tz: Tz,
    /// Whether events naming only the customer belong to this subscription.
    pub(super) takes_customer_events: bool,
    /// Whether the events at `started_at` are billed here ([`Life::bills_start_instant`]).
    bills_start_instant: bool,
    /// Whether the events at `terminated_at` are billed here ([`Life::bills_end_instant`]).
    bills_end_instant: bool,
}

impl Billed {
    pub(super) fn load(conn: &Connection, seq: i64) -> StoreResult<Billed> {
        let org: i64 = conn.query_row(
            "SELECT org FROM subscriptions WHERE seq = ?1",
            [seq],
            |row| row.get(0),
        )?;
        let subscription = subscriptions::by_seq(conn, seq)?;
        let plan = plans::by_id(conn, org, subscription.plan_id)?;
        let customer = customers::by_id(conn, org, subscription.customer_id)?;
        let tz = subscriptions::billing_zone(conn, org, &customer.profile)?;
        let external_ids: i64 = conn.query_row(
            "SELECT COUNT(DISTINCT external_id) FROM subscriptions
             WHERE customer = ?1 AND status IN ('active', 'terminated')",
            [subscription.customer_id.0.to_string()],
            |row| row.get(0),
        )?;
        // The instant a subscription ends is its own, unless a plan change starts the next one there.
        let hands_over_end = match subscription.terminated_at {
            Some(end) => conn.query_row(
                "SELECT EXISTS (SELECT 1 FROM subscriptions WHERE previous = ?1 AND started_at = ?2
                    AND status IN ('active', 'terminated'))",
                params![seq, end.micros()],
                |row| row.get(0),
            )?,
            None => false,
        };
        // So a subscription starting when another with its external id ended (other than the one its
        // plan change replaced) leaves that instant to it.
        let start_taken = match subscription.started_at {
            Some(start) => conn.query_row(
                "SELECT EXISTS (SELECT 1 FROM subscriptions p
                    WHERE p.org = ?1 AND p.external_id = ?2 AND p.terminated_at = ?3 AND p.seq <> ?4
                        AND p.seq IS NOT (SELECT previous FROM subscriptions WHERE seq = ?4))",
                params![org, subscription.external_id.as_str(), start.micros(), seq],
                |row| row.get(0),
            )?,
            None => false,
        };
        Ok(Billed {
            seq,
            org,
            subscription,
            plan,
            customer,
            tz,
            takes_customer_events: external_ids <= 1,
            bills_start_instant: !start_taken,
            bills_end_instant: !hands_over_end,
        })
    }

    pub(super) fn schedule(&self) -> Option<Schedule> {
        Some(Schedule {
            interval: self.plan.terms.interval,
            billing_time: self.subscription.billing_time,
            anchor: self.subscription.started_at?,
            tz: self.tz,
        })
    }

    pub(super) fn life(&self) -> Option<Life> {
        let started_at = self.subscription.started_at?;
        let trial = i64::from(self.plan.terms.trial_period_days);
        Some(Life {
            started_at,
            terminated_at: self.subscription.terminated_at,
            pay_in_advance: self.plan.terms.pay_in_advance,
            trial_end: (trial > 0)
                .then(|| Timestamp::from_micros(started_at.micros() + trial * DAY_MICROS)),
            bill_charges_monthly: self.plan.terms.bill_charges_monthly,
            bills_start_instant: self.bills_start_instant,
            bills_end_instant: self.bills_end_instant,
        })
    }

    /// Returns the first instant whose events are this subscription's ([`Life::events_start`]).
    fn events_start(&self) -> Option<Timestamp> {
        self.life().map(|life| life.events_start())
    }

    pub(super) fn scope(&self) -> Scope<'_> {
        Scope::Subscription {
            external_id: self.subscription.external_id.as_str(),
            customer: self.customer.external_id.as_str(),
            takes_customer_events: self.takes_customer_events,
        }
    }

    /// Days a new invoice stays a draft: the customer's grace period, else the organization's.
    pub(super) fn grace_days(&self, conn: &Connection) -> StoreResult<i64> {
        let grace = match self.customer.profile.invoice_grace_period {
            Some(days) => days,
            None => orgs::by_seq(conn, self.org)?.billing.invoice_grace_period,
        };
        Ok(grace.max(0))
    }

    pub(super) fn local_date(&self, at: Timestamp) -> NaiveDate {
        at.to_datetime().with_timezone(&self.tz).date_naive()
    }
}

fn overflow(error: tally_core::aggregation::Overflow) -> StoreError {
    StoreError::Database(error.to_string())
}

/// Prices one charge for a subscription: the fees cover `period`, count the events in `events` (see
/// [`Life::events_in`]), and the charge minimum is prorated by `coverage`.
fn price_charge(
    conn: &Connection,
    billed: &Billed,
    charge: &Charge,
    period: Period,
    events: Period,
    coverage: Decimal,
) -> StoreResult<Vec<StoredFee>> {
    let Some((metric_seq, metric)) =
        billable_metrics::by_id_with_seq(conn, billed.org, charge.metric_id.0)?
    else {
        return Ok(Vec::new());
    };
    let definition = &metric.definition;
    let started = billed.events_start().unwrap_or(events.from);
    let recurring_from = if definition.recurring {
        started.min(events.from)
    } else {
        events.from
    };
    let mut initial = Decimal::ZERO;
    let groups = if definition.recurring
        && definition.aggregation == tally_core::metric::AggregationType::WeightedSum
    {
        for group in usage::groups(
            conn,
            billed.org,
            metric_seq,
            definition,
            billed.scope(),
            (started, events.from),
        )? {
            if let tally_core::billing::GroupAggregate::State(state) = group.aggregate {
                initial += state.sum;
            }
        }
        usage::groups(
            conn,
            billed.org,
            metric_seq,
            definition,
            billed.scope(),
            (events.from, events.to),
        )?
    } else {
        usage::groups(
            conn,
            billed.org,
            metric_seq,
            definition,
            billed.scope(),
            (recurring_from, events.to),
        )?
    };
    // A weighted sum is averaged over the time billed; an event at its very end weighs nothing.
    let buckets = charge_buckets(
        charge,
        definition,
        &groups,
        (period.from, period.to),
        initial,
    )
    .map_err(overflow)?;
    let values = if charge.needs_event_values() {
        bucket_event_values(
            conn, billed, metric_seq, charge, definition, &buckets, events,
        )?
    } else {
        vec![None; buckets.len()]
    };
    let fees = charge_fees(
        charge,
        &buckets,
        &values,
        billed.plan.terms.currency,
        period,
        coverage,
    );
    Ok(fees
        .into_iter()
        .filter(|fee| fee.amount_cents != 0 || !fee.units.is_zero() || fee.events_count > 0)
        .map(|fee| label_charge_fee(charge, &metric, fee))
        .collect())
}

fn bucket_event_values(
    conn: &Connection,
    billed: &Billed,
    metric_seq: i64,
    charge: &Charge,
    definition: &tally_core::metric::MetricDefinition,
    buckets: &[BucketUsage],
    span: Period,
) -> StoreResult<Vec<Option<Vec<Decimal>>>> {
    let events = usage::event_values(
        conn,
        billed.org,
        metric_seq,
        definition,
        billed.scope(),
        (span.from, span.to),
    )?;
    let mut per_bucket: BTreeMap<Option<ChargeFilterId>, Vec<Decimal>> = BTreeMap::new();
    for (dims, _, _, value) in events {
        per_bucket
            .entry(tally_core::billing::usage::filter_for(charge, &dims))
            .or_default()
            .push(value);
    }
    Ok(buckets
        .iter()
        .map(|b| Some(per_bucket.remove(&b.filter).unwrap_or_default()))
        .collect())
}

pub(super) fn label_charge_fee(charge: &Charge, metric: &Metric, fee: Fee) -> StoredFee {
    let filter = fee
        .filter_id
        .and_then(|id| charge.filters.iter().find(|(f, _)| *f == id))
        .map(|(_, f)| f);
    StoredFee {
        id: FeeId::generate(),
        item_code: metric.definition.code.to_string(),
        item_name: metric.definition.name.clone(),
        invoice_display_name: charge.terms.invoice_display_name.clone(),
        filter_name: filter.and_then(|f| f.invoice_display_name.clone()),
        filter_values: filter.map(|f| json!(f.values)),
        pay_in_advance: charge.terms.pay_in_advance,
        add_on_id: None,
        description: None,
        coupons_amount_cents: 0,
        taxes: Vec::new(),
        event_transaction_id: None,
        created_at: now(),
        fee,
    }
}

fn subscription_line(
    billed: &Billed,
    part: SubscriptionCharge,
    in_advance: bool,
) -> Option<StoredFee> {
    (billed.plan.terms.amount_cents > 0).then(|| StoredFee {
        id: FeeId::generate(),
        item_code: billed.plan.terms.code.to_string(),
        item_name: billed.plan.terms.name.clone(),
        invoice_display_name: billed.plan.terms.invoice_display_name.clone(),
        filter_name: None,
        filter_values: None,
        pay_in_advance: in_advance,
        add_on_id: None,
        description: None,
        coupons_amount_cents: 0,
        taxes: Vec::new(),
        event_transaction_id: None,
        created_at: now(),
        fee: subscription_fee(&billed.plan.terms, part.share, part.period),
    })
}

/// Prices every charge billed in arrears for `period`, counting the events in `events` (none when
/// that span is empty), with charge minimums prorated by `coverage`.
pub(super) fn price_usage(
    conn: &Connection,
    billed: &Billed,
    period: Period,
    events: Period,
    coverage: Decimal,
) -> StoreResult<Vec<StoredFee>> {
    let mut fees = Vec::new();
    if events.from < events.to {
        for charge in billed
            .plan
            .charges
            .iter()
            .filter(|c| !c.terms.pay_in_advance)
        {
            fees.extend(price_charge(
                conn, billed, charge, period, events, coverage,
            )?);
        }
    }
    Ok(fees)
}

/// Computes every fee of a run from current data.
fn run_fees(conn: &Connection, billed: &Billed, run: &Run) -> StoreResult<Vec<StoredFee>> {
    let mut fees = Vec::new();
    if let Some(part) = run.arrears {
        fees.extend(subscription_line(billed, part, false));
    }
    if let (Some(charges), Some(schedule), Some(life)) =
        (run.charges, billed.schedule(), billed.life())
    {
        let period = life.billed_part(charges);
        let events = life.events_in(charges);
        let coverage = charges_share(&schedule, &life, charges);
        fees.extend(price_usage(conn, billed, period, events, coverage)?);
    }
    fees.extend(advance_charges::carried_fees(conn, billed, run)?);
    if let Some(part) = run.advance {
        fees.extend(subscription_line(billed, part, true));
    }
    Ok(fees)
}

pub(super) fn run_json(run: &Run) -> String {
    let part = |p: &Option<SubscriptionCharge>| {
        p.map(|p| json!({"from": p.period.from.micros(), "to": p.period.to.micros(), "share": p.share.to_string()}))
    };
    let period = |p: Period| json!({"from": p.from.micros(), "to": p.to.micros()});
    json!({
        "boundary": run.boundary.micros(),
        "reason": run.reason.name(),
        "arrears": part(&run.arrears),
        "advance": part(&run.advance),
        "charges": run.charges.map(period),
        "subscription_period": period(run.subscription_period),
    })
    .to_string()
}

fn run_from_json(text: &str) -> Option<Run> {
    let value: Value = serde_json::from_str(text).ok()?;
    let period = |v: &Value| -> Option<Period> {
        Some(Period {
            from: Timestamp::from_micros(v.get("from")?.as_i64()?),
            to: Timestamp::from_micros(v.get("to")?.as_i64()?),
        })
    };
    let part = |v: &Value| -> Option<SubscriptionCharge> {
        Some(SubscriptionCharge {
            period: period(v)?,
            share: v.get("share")?.as_str()?.parse().ok()?,
        })
    };
    Some(Run {
        boundary: Timestamp::from_micros(value.get("boundary")?.as_i64()?),
        reason: RunReason::parse(value.get("reason")?.as_str()?)?,
        arrears: value.get("arrears").and_then(part),
        advance: value.get("advance").and_then(part),
        charges: value.get("charges").and_then(period),
        subscription_period: period(value.get("subscription_period")?)?,
    })
}

/// Writes an invoice's fees and their taxes.
pub(super) fn write_fees(conn: &Connection, invoice: i64, fees: &[StoredFee]) -> StoreResult<()> {
    let mut insert = conn.prepare_cached(
        "INSERT INTO fees (id, invoice, kind, charge, charge_filter, item_code, item_name, filter_name, filter_values,
            units, total_aggregated_units, events_count, precise_amount, amount_cents, period_from, period_to,
            details, pay_in_advance, created_at, coupons_amount_cents, taxes_amount_cents, add_on, description)
         VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12, ?13, ?14, ?15, ?16, ?17, ?18, ?19, ?20, ?21, ?22, ?23)",
    )?;
    let mut insert_tax = conn.prepare_cached(
        "INSERT INTO fee_taxes (fee, tax, rate, amount_cents) SELECT ?1, seq, ?3, ?4 FROM taxes WHERE id = ?2",
    )?;
    for stored in fees {
        let f = &stored.fee;
        let display =
            json!({"invoice_display_name": stored.invoice_display_name, "details": f.details});
        insert.execute(params![
            stored.id.0.to_string(),
            invoice,
            f.kind.name(),
            f.charge_id.map(|c| c.0.to_string()),
            f.filter_id.map(|c| c.0.to_string()),
            stored.item_code,
            stored.item_name,
            stored.filter_name,
            stored.filter_values.as_ref().map(Value::to_string),
            f.units.to_string(),
            f.total_aggregated_units.to_string(),
            i64::try_from(f.events_count).unwrap_or(i64::MAX),
            f.precise_amount.to_string(),
            f.amount_cents,
            f.period.from.micros(),
            f.period.to.micros(),
            display.to_string(),
            stored.pay_in_advance,
            stored.created_at.micros(),
            stored.coupons_amount_cents,
            stored.taxes.iter().map(|t| t.amount_cents).sum::<i64>(),
            stored.add_on_id.map(|id| id.to_string()),
            stored.description,
        ])?;
        for tax in &stored.taxes {
            insert_tax.execute(params![
                stored.id.0.to_string(),
                tax.tax_id.to_string(),
                tax.rate.to_string(),
                tax.amount_cents
            ])?;
        }
    }
    Ok(())
}

/// Prices an invoice from current data: its run's fees, the customer's coupons and the fees' taxes.
/// With `consume`, the invoice is being finalized: the coupons it uses are spent and recorded.
pub(super) fn recompute(
    conn: &Connection,
    invoice: i64,
    consume: Option<Timestamp>,
) -> StoreResult<()> {
    let (subscription, run): (Option<i64>, String) = conn.query_row(
        "SELECT subscription, run FROM invoices WHERE seq = ?1",
        [invoice],
        |row| Ok((row.get(0)?, row.get(1)?)),
    )?;
    let (Some(subscription), Some(run)) = (subscription, run_from_json(&run)) else {
        return Ok(());
    };
    let billed = Billed::load(conn, subscription)?;
    // A pay-in-advance charge invoice bills the fee its event was priced at, and a progressive invoice
    // the usage its threshold was passed with, never usage again.
    let mut fees = if matches!(
        run.reason,
        RunReason::InAdvanceCharge | RunReason::ProgressiveBilling
    ) {
        fees_of(conn, invoice)?
    } else {
        let fees = run_fees(conn, &billed, &run)?;
        let commitment = commitment_line(conn, &billed, &run, invoice, &fees)?;
        fees.into_iter().chain(commitment).collect()
    };
    let currency = billed.plan.terms.currency;
    let customer = billed.customer.id.0.to_string();
    let coupons: Vec<(i64, tally_core::coupon::AppliedCoupon, CouponValue)> =
        coupons::active_for(conn, &customer)?
            .into_iter()
            .filter_map(|(seq, applied)| applied.value(currency).map(|value| (seq, applied, value)))
            .collect();
    // A charge's own taxes win; other fees take the plan's, else the customer's, else the
    // organization's.
    let mut taxes: Vec<tally_core::tax::Tax> =
        taxes::for_fees(conn, billed.org, &billed.plan.id.0.to_string(), &customer)?
            .into_iter()
            .map(|(_, tax)| tax)
            .collect();
    let defaults: Vec<TaxRate> = taxes
        .iter()
        .enumerate()
        .map(|(index, tax)| TaxRate {
            tax: index,
            rate: tax.terms.rate,
        })
        .collect();
    let mut fee_rates = Vec::with_capacity(fees.len());
    for stored in &fees {
        let own = stored
            .fee
            .charge_id
            .and_then(|id| billed.plan.charges.iter().find(|c| c.id == id))
            .filter(|charge| !charge.taxes.is_empty());
        fee_rates.push(match own {
            Some(charge) => charge
                .taxes
                .iter()
                .map(|tax| {
                    taxes.push(tax.clone());
                    TaxRate {
                        tax: taxes.len() - 1,
                        rate: tax.terms.rate,
                    }
                })
                .collect(),
            None => defaults.clone(),
        });
    }
    let lines: Vec<Fee> = fees.iter().map(|f| f.fee.clone()).collect();
    let values: Vec<CouponValue> = coupons.iter().map(|(_, _, v)| v.clone()).collect();
    let progressive = progressive::credit_for(conn, invoice, subscription, &run)?;
    let adjusted = adjust_after_progressive(&lines, progressive, &values, &fee_rates);
    for (index, stored) in fees.iter_mut().enumerate() {
        // A fee's share of the progressive credit comes off it before taxes, as coupons do.
        stored.coupons_amount_cents = adjusted.fee_coupons.get(index).copied().unwrap_or(0)
            + adjusted.fee_progressive.get(index).copied().unwrap_or(0);
        stored.taxes = adjusted
            .fee_taxes
            .get(index)
            .map(|list| {
                list.iter()
                    .map(|(tax, amount)| {
                        let t = &taxes[*tax];
                        FeeTax {
                            tax_id: t.id,
                            code: t.terms.code.to_string(),
                            name: t.terms.name.clone(),
                            rate: t.terms.rate,
                            amount_cents: *amount,
                        }
                    })
                    .collect()
            })
            .unwrap_or_default();
    }
    let mut totals = adjusted.totals;
    if let Some(at) = consume {
        for ((seq, applied, _), used) in coupons.iter().zip(&adjusted.coupon_amounts) {
            if *used > 0 {
                coupons::consume(conn, invoice, *seq, applied, *used, at)?;
            }
        }
        let notes = credit_notes::available_for(conn, &customer, currency)?;
        let note_balances: Vec<i64> = notes.iter().map(|(_, balance)| *balance).collect();
        let wallets = wallets::active_for(conn, &customer, currency, at)?;
        let balances: Vec<i64> = wallets.iter().map(|(_, w)| w.balance_cents()).collect();
        let (from_notes, spent) = apply_credits(&mut totals, &note_balances, &balances);
        for ((note, _), amount) in notes.iter().zip(from_notes) {
            if amount > 0 {
                credit_notes::spend(conn, *note, invoice, amount)?;
            }
        }
        for ((seq, wallet), cents) in wallets.iter().zip(spent) {
            if cents > 0 {
                wallets::spend(conn, *seq, wallet, cents, invoice, at)?;
            }
        }
    }
    conn.execute(
        "DELETE FROM fee_taxes WHERE fee IN (SELECT id FROM fees WHERE invoice = ?1)",
        [invoice],
    )?;
    conn.execute("DELETE FROM fees WHERE invoice = ?1", [invoice])?;
    write_fees(conn, invoice, &fees)?;
    conn.execute(
        "UPDATE invoices SET fees_amount_cents = ?2, coupons_amount_cents = ?3, taxes_amount_cents = ?4,
            credit_notes_amount_cents = ?5, prepaid_credit_amount_cents = ?6, total_amount_cents = ?7,
            needs_refresh = 0, updated_at = ?8, progressive_billing_credit_amount_cents = ?9
         WHERE seq = ?1",
        params![
            invoice,
            totals.fees_amount_cents,
            totals.coupons_amount_cents,
            totals.taxes_amount_cents,
            totals.credit_notes_amount_cents,
            totals.prepaid_credit_amount_cents,
            totals.total_amount_cents,
            now().micros(),
            totals.progressive_billing_credit_amount_cents
        ],
    )?;
    Ok(())
}

/// Writes the row of a subscription's invoice billing `run`: a draft with zero totals (its fees and
/// totals come next), issued on the local date of `issued_at`, with the customer's (else the
/// organization's) payment term; the billing clock finalizes it at `grace_until`, or never by itself
/// when `None`. Returns its sequence and id.
pub(super) fn insert_invoice(
    conn: &Connection,
    billed: &Billed,
    invoice_type: &str,
    run: &Run,
    issued_at: Timestamp,
    grace_until: Option<Timestamp>,
) -> StoreResult<(i64, InvoiceId)> {
    let organization = orgs::by_seq(conn, billed.org)?;
    let id = InvoiceId::generate();
    let stamp = now().micros();
    conn.execute(
        "INSERT INTO invoices (id, org, customer, subscription, invoice_type, status, payment_status, currency,
            issuing_date, net_payment_term, fees_amount_cents, total_amount_cents, run, grace_until,
            created_at, updated_at)
         VALUES (?1, ?2, ?3, ?4, ?5, 'draft', 'pending', ?6, ?7, ?8, 0, 0, ?9, ?10, ?11, ?11)",
        params![
            id.0.to_string(),
            billed.org,
            billed.customer.id.0.to_string(),
            billed.seq,
            invoice_type,
            billed.plan.terms.currency.code(),
            billed.local_date(issued_at).to_string(),
            billed
                .customer
                .profile
                .net_payment_term
                .unwrap_or(organization.billing.net_payment_term),
            run_json(run),
            grace_until.map(Timestamp::micros),
            stamp
        ],
    )?;
    Ok((conn.last_insert_rowid(), id))
}

/// Bills every run a subscription owes up to `now`; returns the invoices created.
pub(super) fn bill(conn: &Connection, seq: i64, now_at: Timestamp) -> StoreResult<Vec<InvoiceId>> {
    let billed = Billed::load(conn, seq)?;
    let (Some(schedule), Some(life)) = (billed.schedule(), billed.life()) else {
        return Ok(Vec::new());
    };
    let last: Option<i64> = conn.query_row(
        "SELECT MAX(boundary) FROM billing_runs WHERE subscription = ?1",
        [seq],
        |row| row.get(0),
    )?;
    let mut created = Vec::new();
    let due = due_runs(&schedule, &life, last.map(Timestamp::from_micros), now_at);
    // Every run due now has its row after this (claimed here or before): the latest boundary billed.
    let billed_to = due
        .iter()
        .map(|run| run.boundary)
        .max()
        .or(last.map(Timestamp::from_micros));
    for run in due {
        // The primary key makes the run exactly once; a run already there is skipped, not redone.
        let claimed = conn.execute(
            "INSERT OR IGNORE INTO billing_runs (subscription, boundary, reason, created_at) VALUES (?1, ?2, ?3, ?4)",
            params![seq, run.boundary.micros(), run.reason.name(), now().micros()],
        )?;
        if claimed == 0 {
            continue;
        }
        let grace_days = billed.grace_days(conn)?;
        let (invoice, id) = insert_invoice(
            conn,
            &billed,
            "subscription",
            &run,
            run.boundary,
            Some(Timestamp::from_micros(
                run.boundary.micros() + grace_days * DAY_MICROS,
            )),
        )?;
        conn.execute(
            "UPDATE billing_runs SET invoice = ?3 WHERE subscription = ?1 AND boundary = ?2",
            params![seq, run.boundary.micros(), invoice],
        )?;
        if life.terminated_at.is_some_and(|end| run.boundary >= end) {
            // The last run: credit what was paid in advance past the end, before the final invoice
            // is finalized, so that invoice spends it first.
            termination_credits::issue(conn, seq, now_at)?;
        }
        if grace_days == 0 {
            finalize_now(conn, invoice, now_at)?;
        } else {
            recompute(conn, invoice, None)?;
        }
        created.push(id);
    }
    created.extend(progressive::bill_thresholds(conn, seq, &billed, now_at)?);
    // Until then, the billing clock passes this subscription by (the triggers of migration 16 reset
    // the date when anything it depends on changes). Most periods end within a month or so; look
    // that far first.
    let after = |days: i64| Timestamp::from_micros(now_at.micros() + days * DAY_MICROS);
    let horizon = after(NEXT_DUE_HORIZON_DAYS);
    let next = match next_due(&schedule, &life, billed_to, after(35))
        .or_else(|| next_due(&schedule, &life, billed_to, horizon))
    {
        Some(at) => at.micros(),
        None if life.terminated_at.is_some() => i64::MAX,
        None => horizon.micros(),
    };
    conn.execute(
        "UPDATE subscriptions SET next_due_at = ?2 WHERE seq = ?1",
        params![seq, next],
    )?;
    Ok(created)
}

/// Finalizes a draft at `at`: prices it from current data spending coupons and credit, numbers it,
/// and issues the termination credit note that waited for it, if any.
pub(super) fn finalize_now(conn: &Connection, invoice: i64, at: Timestamp) -> StoreResult<()> {
    recompute(conn, invoice, Some(at))?;
    number(conn, invoice, at)?;
    termination_credits::after_finalizing(conn, invoice, at)
}

/// Finalizes an invoice: gives it the customer's next number and the organization's next number
/// (numbers are given only here, in the same transaction, so they have no gaps), and writes the
/// number the organization's numbering asks for.
pub(super) fn number(conn: &Connection, invoice: i64, at: Timestamp) -> StoreResult<()> {
    let (org, customer, issuing): (i64, String, String) = conn.query_row(
        "SELECT org, customer, issuing_date FROM invoices WHERE seq = ?1",
        [invoice],
        |row| Ok((row.get(0)?, row.get(1)?, row.get(2)?)),
    )?;
    let organization = orgs::by_seq(conn, org)?;
    let customer_sequence: i64 = conn.query_row(
        "SELECT sequential_id FROM customers WHERE id = ?1",
        [&customer],
        |row| row.get(0),
    )?;
    let next: i64 = conn.query_row(
        "SELECT COALESCE(MAX(customer_number), 0) + 1 FROM invoices
         WHERE customer = ?1 AND customer_number IS NOT NULL",
        [&customer],
        |row| row.get(0),
    )?;
    let next_in_org: i64 = conn.query_row(
        "SELECT COALESCE(MAX(organization_number), 0) + 1 FROM invoices
         WHERE org = ?1 AND organization_number IS NOT NULL",
        [org],
        |row| row.get(0),
    )?;
    let prefix = organization
        .billing
        .document_number_prefix
        .clone()
        .unwrap_or_else(|| number_prefix(&organization.name, organization.id.0));
    let text = match organization.billing.document_numbering {
        DocumentNumbering::PerCustomer => invoice_number(&prefix, customer_sequence, next),
        DocumentNumbering::PerOrganization => {
            let issuing = issuing.parse::<NaiveDate>().map_err(|e| {
                StoreError::Database(format!("invoice {invoice} issuing date: {e}"))
            })?;
            organization_invoice_number(&prefix, issuing, next_in_org)
        }
    };
    conn.execute(
        "UPDATE invoices SET status = 'finalized', number = ?2, customer_number = ?3, organization_number = ?4,
            finalized_at = ?5, updated_at = ?6, grace_until = NULL, needs_refresh = 0
         WHERE seq = ?1",
        params![invoice, text, next, next_in_org, at.micros(), now().micros()],
    )?;
    Ok(())
}

/// Recomputes the drafts that late events marked (see `events::mark_drafts`), so a draft in its grace
/// period follows usage without anyone calling refresh; returns how many.
pub(super) fn refresh_marked(conn: &Connection) -> StoreResult<usize> {
    let marked: Vec<i64> = {
        let mut stmt = conn.prepare(
            "SELECT seq FROM invoices WHERE status = 'draft' AND needs_refresh = 1 ORDER BY seq",
        )?;
        stmt.query_map([], |row| row.get(0))?
            .collect::<rusqlite::Result<_>>()?
    };
    for seq in &marked {
        recompute(conn, *seq, None)?;
    }
    Ok(marked.len())
}

/// Finalizes every draft whose grace period has ended, with fees recomputed first.
pub(super) fn finalize_due(conn: &Connection, now_at: Timestamp) -> StoreResult<Vec<InvoiceId>> {
    let due: Vec<(i64, String)> = {
        let mut stmt = conn.prepare(
            "SELECT seq, id FROM invoices WHERE status = 'draft' AND grace_until <= ?1 ORDER BY grace_until, seq",
        )?;
        stmt.query_map([now_at.micros()], |row| Ok((row.get(0)?, row.get(1)?)))?
            .collect::<rusqlite::Result<_>>()?
    };
    let mut done = Vec::with_capacity(due.len());
    for (seq, id) in due {
        finalize_now(conn, seq, now_at)?;
        done.push(InvoiceId(parse_uuid(&id)?));
    }
    Ok(done)
}

fn seq_of(conn: &Connection, org: i64, id: InvoiceId) -> StoreResult<(i64, InvoiceStatus)> {
    let found: Option<(i64, String)> = conn
        .query_row(
            "SELECT seq, status FROM invoices WHERE org = ?1 AND id = ?2",
            params![org, id.0.to_string()],
            |row| Ok((row.get(0)?, row.get(1)?)),
        )
        .optional()?;
    let (seq, status) = found.ok_or(StoreError::NotFound("invoice"))?;
    Ok((
        seq,
        InvoiceStatus::parse(&status).unwrap_or(InvoiceStatus::Draft),
    ))
}

fn not_allowed(code: &'static str) -> StoreError {
    StoreError::NotAllowed(code)
}

/// Refreshes a draft from current usage.
pub(super) fn refresh(conn: &Connection, org: i64, id: InvoiceId) -> StoreResult<Invoice> {
    let (seq, status) = seq_of(conn, org, id)?;
    if status != InvoiceStatus::Draft {
        return Err(not_allowed("invoice_not_draft"));
    }
    recompute(conn, seq, None)?;
    get(conn, org, id)
}

/// Finalizes a draft now.
pub(super) fn finalize(
    conn: &Connection,
    org: i64,
    id: InvoiceId,
    now_at: Timestamp,
) -> StoreResult<Invoice> {
    let (seq, status) = seq_of(conn, org, id)?;
    if status != InvoiceStatus::Draft {
        return Err(not_allowed("invoice_not_draft"));
    }
    finalize_now(conn, seq, now_at)?;
    get(conn, org, id)
}

/// Voids a finalized invoice; it keeps its number.
pub(super) fn void(
    conn: &Connection,
    org: i64,
    id: InvoiceId,
    now_at: Timestamp,
) -> StoreResult<Invoice> {
    let (seq, status) = seq_of(conn, org, id)?;
    if status != InvoiceStatus::Finalized {
        return Err(not_allowed("not_voidable"));
    }
    conn.execute(
        "UPDATE invoices SET status = 'voided', voided_at = ?2, updated_at = ?3 WHERE seq = ?1",
        params![seq, now_at.micros(), now().micros()],
    )?;
    get(conn, org, id)
}

/// Records whether an invoice was paid.
pub(super) fn set_payment_status(
    conn: &Connection,
    org: i64,
    id: InvoiceId,
    status: PaymentStatus,
) -> StoreResult<Invoice> {
    let (seq, _) = seq_of(conn, org, id)?;
    conn.execute(
        "UPDATE invoices SET payment_status = ?2, updated_at = ?3 WHERE seq = ?1",
        params![seq, status.name(), now().micros()],
    )?;
    get(conn, org, id)
}

const COLUMNS: &str = "seq, id, org, customer, subscription, invoice_type, status, payment_status, currency, number,
    customer_number, issuing_date, net_payment_term, fees_amount_cents, coupons_amount_cents, taxes_amount_cents,
    credit_notes_amount_cents, prepaid_credit_amount_cents, total_amount_cents, run, grace_until, created_at,
    updated_at, finalized_at, voided_at, progressive_billing_credit_amount_cents";

fn corrupt(index: usize, message: impl Into<String>) -> rusqlite::Error {
    rusqlite::Error::FromSqlConversionFailure(
        index,
        rusqlite::types::Type::Text,
        message.into().into(),
    )
}

/// An invoice row before its customer, subscription and fees are attached.
struct InvoiceRow {
    seq: i64,
    org: i64,
    customer: String,
    subscription: Option<i64>,
    id: InvoiceId,
    number: Option<String>,
    sequential_id: Option<i64>,
    invoice_type: String,
    status: InvoiceStatus,
    payment_status: PaymentStatus,
    currency: Currency,
    issuing_date: NaiveDate,
    net_payment_term: i64,
    totals: InvoiceTotals,
    run: Option<Run>,
    grace_until: Option<Timestamp>,
    created_at: Timestamp,
    updated_at: Timestamp,
    finalized_at: Option<Timestamp>,
    voided_at: Option<Timestamp>,
}

fn from_row(row: &Row<'_>) -> rusqlite::Result<InvoiceRow> {
    let text = |i: usize| -> rusqlite::Result<String> { row.get(i) };
    let time = |i: usize| -> rusqlite::Result<Option<Timestamp>> {
        Ok(row.get::<_, Option<i64>>(i)?.map(Timestamp::from_micros))
    };
    let status = text(6)?;
    let payment = text(7)?;
    let currency = text(8)?;
    let issuing = text(11)?;
    let fees_amount_cents: i64 = row.get(13)?;
    let coupons: i64 = row.get(14)?;
    let taxes: i64 = row.get(15)?;
    let progressive: i64 = row.get(25)?;
    let run = text(19)?;
    Ok(InvoiceRow {
        seq: row.get(0)?,
        id: InvoiceId(parse_uuid(&text(1)?)?),
        org: row.get(2)?,
        customer: text(3)?,
        subscription: row.get(4)?,
        invoice_type: text(5)?,
        status: InvoiceStatus::parse(&status).ok_or_else(|| corrupt(6, status.clone()))?,
        payment_status: PaymentStatus::parse(&payment)
            .ok_or_else(|| corrupt(7, payment.clone()))?,
        currency: Currency::parse(&currency).ok_or_else(|| corrupt(8, currency.clone()))?,
        number: row.get(9)?,
        sequential_id: row.get(10)?,
        issuing_date: issuing.parse().map_err(|_| corrupt(11, issuing.clone()))?,
        net_payment_term: row.get(12)?,
        totals: InvoiceTotals {
            fees_amount_cents,
            progressive_billing_credit_amount_cents: progressive,
            coupons_amount_cents: coupons,
            sub_total_excluding_taxes_amount_cents: fees_amount_cents - progressive - coupons,
            taxes_amount_cents: taxes,
            sub_total_including_taxes_amount_cents: fees_amount_cents - progressive - coupons
                + taxes,
            credit_notes_amount_cents: row.get(16)?,
            prepaid_credit_amount_cents: row.get(17)?,
            total_amount_cents: row.get(18)?,
        },
        run: run_from_json(&run),
        grace_until: time(20)?,
        created_at: Timestamp::from_micros(row.get(21)?),
        updated_at: Timestamp::from_micros(row.get(22)?),
        finalized_at: time(23)?,
        voided_at: time(24)?,
    })
}

pub(super) fn fees_of(conn: &Connection, invoice: i64) -> StoreResult<Vec<StoredFee>> {
    let mut stmt = conn.prepare_cached(
        "SELECT id, kind, charge, charge_filter, item_code, item_name, filter_name, filter_values, units,
            total_aggregated_units, events_count, precise_amount, amount_cents, period_from, period_to, details,
            pay_in_advance, created_at, coupons_amount_cents, add_on, description,
            (SELECT a.event_transaction_id FROM advance_fees a WHERE a.id = fees.id)
         FROM fees WHERE invoice = ?1 ORDER BY seq",
    )?;
    let fees = stmt
        .query_map([invoice], |row| {
            let decimal = |i: usize| -> rusqlite::Result<Decimal> {
                let text: String = row.get(i)?;
                text.parse().map_err(|_| corrupt(i, text))
            };
            let uuid = |i: usize| -> rusqlite::Result<Option<uuid::Uuid>> {
                row.get::<_, Option<String>>(i)?
                    .map(|t| parse_uuid(&t))
                    .transpose()
            };
            let kind: String = row.get(1)?;
            let display: Value =
                serde_json::from_str(&row.get::<_, Option<String>>(15)?.unwrap_or_default())
                    .unwrap_or(Value::Null);
            let filter_values: Option<String> = row.get(7)?;
            Ok(StoredFee {
                id: FeeId(parse_uuid(&row.get::<_, String>(0)?)?),
                item_code: row.get(4)?,
                item_name: row.get(5)?,
                invoice_display_name: display
                    .get("invoice_display_name")
                    .and_then(Value::as_str)
                    .map(str::to_owned),
                filter_name: row.get(6)?,
                filter_values: filter_values.and_then(|v| serde_json::from_str(&v).ok()),
                pay_in_advance: row.get(16)?,
                add_on_id: uuid(19)?,
                description: row.get(20)?,
                created_at: Timestamp::from_micros(row.get(17)?),
                coupons_amount_cents: row.get(18)?,
                taxes: Vec::new(),
                event_transaction_id: row.get(21)?,
                fee: Fee {
                    kind: FeeKind::parse(&kind).ok_or_else(|| corrupt(1, kind.clone()))?,
                    charge_id: uuid(2)?.map(ChargeId),
                    filter_id: uuid(3)?.map(ChargeFilterId),
                    units: decimal(8)?,
                    total_aggregated_units: decimal(9)?,
                    events_count: u64::try_from(row.get::<_, i64>(10)?).unwrap_or(0),
                    precise_amount: decimal(11)?,
                    amount_cents: row.get(12)?,
                    period: Period {
                        from: Timestamp::from_micros(row.get(13)?),
                        to: Timestamp::from_micros(row.get(14)?),
                    },
                    details: display.get("details").cloned().unwrap_or(Value::Null),
                },
            })
        })?
        .collect::<rusqlite::Result<Vec<_>>>()?;
    let mut taxes = conn.prepare_cached(
        "SELECT t.id, t.code, t.name, ft.rate, ft.amount_cents FROM fee_taxes ft JOIN taxes t ON t.seq = ft.tax
         WHERE ft.fee = ?1 ORDER BY t.seq",
    )?;
    let mut fees = fees;
    for fee in &mut fees {
        fee.taxes = taxes
            .query_map([fee.id.0.to_string()], |row| {
                let rate: String = row.get(3)?;
                Ok(FeeTax {
                    tax_id: parse_uuid(&row.get::<_, String>(0)?)?,
                    code: row.get(1)?,
                    name: row.get(2)?,
                    rate: rate.parse().map_err(|_| corrupt(3, rate.clone()))?,
                    amount_cents: row.get(4)?,
                })
            })?
            .collect::<rusqlite::Result<_>>()?;
    }
    Ok(fees)
}

/// Sums fee taxes per tax, in the order taxes first appear.
fn applied_taxes(fees: &[StoredFee]) -> Vec<FeeTax> {
    let mut out: Vec<FeeTax> = Vec::new();
    for tax in fees.iter().flat_map(|f| &f.taxes) {
        match out.iter_mut().find(|t| t.tax_id == tax.tax_id) {
            Some(sum) => sum.amount_cents += tax.amount_cents,
            None => out.push(tax.clone()),
        }
    }
    out
}

fn credit_notes_of(conn: &Connection, invoice: i64) -> StoreResult<Vec<InvoiceCoupon>> {
    let mut stmt = conn.prepare_cached(
        "SELECT n.id, n.number, ic.amount_cents FROM invoice_credit_notes ic JOIN credit_notes n ON n.seq = ic.credit_note
         WHERE ic.invoice = ?1 ORDER BY n.seq",
    )?;
    let notes = stmt
        .query_map([invoice], |row| {
            Ok(InvoiceCoupon {
                applied_coupon_id: parse_uuid(&row.get::<_, String>(0)?)?,
                code: row.get(1)?,
                name: "Credit note".to_owned(),
                amount_cents: row.get(2)?,
            })
        })?
        .collect::<rusqlite::Result<_>>()?;
    Ok(notes)
}

fn coupons_of(conn: &Connection, invoice: i64) -> StoreResult<Vec<InvoiceCoupon>> {
    let mut stmt = conn.prepare_cached(
        "SELECT a.id, c.code, c.name, ic.amount_cents FROM invoice_coupons ic
         JOIN applied_coupons a ON a.seq = ic.applied_coupon JOIN coupons c ON c.seq = a.coupon
         WHERE ic.invoice = ?1 ORDER BY a.seq",
    )?;
    let coupons = stmt
        .query_map([invoice], |row| {
            Ok(InvoiceCoupon {
                applied_coupon_id: parse_uuid(&row.get::<_, String>(0)?)?,
                code: row.get(1)?,
                name: row.get(2)?,
                amount_cents: row.get(3)?,
            })
        })?
        .collect::<rusqlite::Result<_>>()?;
    Ok(coupons)
}

fn complete(conn: &Connection, row: InvoiceRow) -> StoreResult<Invoice> {
    let fees = fees_of(conn, row.seq)?;
    let customer = customers::by_id(
        conn,
        row.org,
        tally_core::id::CustomerId(parse_uuid(&row.customer)?),
    )?;
    let mut invoice = Invoice {
        id: row.id,
        number: row.number,
        sequential_id: row.sequential_id,
        timezone: subscriptions::billing_zone(conn, row.org, &customer.profile)?,
        customer,
        subscription: row
            .subscription
            .map(|s| subscriptions::by_seq(conn, s))
            .transpose()?,
        invoice_type: row.invoice_type,
        status: row.status,
        payment_status: row.payment_status,
        currency: row.currency,
        issuing_date: row.issuing_date,
        net_payment_term: row.net_payment_term,
        totals: row.totals,
        run: row.run,
        fees: Vec::new(),
        applied_taxes: Vec::new(),
        coupons: coupons_of(conn, row.seq)?,
        credit_notes: credit_notes_of(conn, row.seq)?,
        applied_usage_thresholds: progressive::applied_thresholds(conn, row.seq)?,
        grace_until: row.grace_until,
        created_at: row.created_at,
        updated_at: row.updated_at,
        finalized_at: row.finalized_at,
        voided_at: row.voided_at,
    };
    invoice.applied_taxes = applied_taxes(&fees);
    invoice.fees = fees;
    Ok(invoice)
}

/// Reads an invoice with its customer, subscription and fees.
pub(super) fn get(conn: &Connection, org: i64, id: InvoiceId) -> StoreResult<Invoice> {
    let partial = conn
        .query_row(
            &format!("SELECT {COLUMNS} FROM invoices WHERE org = ?1 AND id = ?2"),
            params![org, id.0.to_string()],
            from_row,
        )
        .optional()?
        .ok_or(StoreError::NotFound("invoice"))?;
    complete(conn, partial)
}

/// Lists invoices, newest first.
pub(super) fn list(
    conn: &Connection,
    org: i64,
    filter: &InvoiceFilter,
    page: Page,
) -> StoreResult<Listed<Invoice>> {
    let mut query = Filtered::new("org = ?", SqlValue::Integer(org));
    if let Some(customer) = &filter.external_customer_id {
        query.and(
            "customer IN (SELECT id FROM customers WHERE org = ? AND external_id = ?)",
            [SqlValue::Integer(org), SqlValue::Text(customer.clone())],
        );
    }
    if !filter.statuses.is_empty() {
        query.and(
            format!(
                "status IN ({})",
                vec!["?"; filter.statuses.len()].join(", ")
            ),
            filter
                .statuses
                .iter()
                .map(|s| SqlValue::Text(s.name().to_owned())),
        );
    }
    if !filter.payment_statuses.is_empty() {
        query.and(
            format!(
                "payment_status IN ({})",
                vec!["?"; filter.payment_statuses.len()].join(", ")
            ),
            filter
                .payment_statuses
                .iter()
                .map(|s| SqlValue::Text(s.name().to_owned())),
        );
    }
    let listed = query.page(conn, "invoices", COLUMNS, "seq DESC", page, from_row)?;
    let mut items = Vec::with_capacity(listed.items.len());
    for partial in listed.items {
        items.push(complete(conn, partial)?);
    }
    Ok(Listed {
        items,
        total: listed.total,
    })
}

/// Prices the open charges period of a customer's subscription, without storing anything.
pub(super) fn current_usage(
    conn: &Connection,
    org: i64,
    customer: &str,
    subscription: &str,
    now_at: Timestamp,
) -> StoreResult<CurrentUsage> {
    let customer_id = customers::get(
        conn,
        org,
        &tally_core::id::ExternalId::parse("external_customer_id", customer)
            .map_err(|_| StoreError::NotFound("customer"))?,
    )?
    .id;
    let active = subscriptions::get(conn, org, subscription, SubscriptionStatus::Active)
        .ok()
        .filter(|s| s.customer_id == customer_id)
        .ok_or(StoreError::NotAllowed("no_active_subscription"))?;
    let seq: i64 = conn.query_row(
        "SELECT seq FROM subscriptions WHERE id = ?1",
        [active.id.0.to_string()],
        |row| row.get(0),
    )?;
    let billed = Billed::load(conn, seq)?;
    let schedule = billed
        .schedule()
        .ok_or(StoreError::NotAllowed("no_active_subscription"))?;
    let at = now_at.max(schedule.anchor);
    let whole = schedule.charges_period_containing(at, billed.plan.terms.bill_charges_monthly);
    let span = Period {
        from: whole.from,
        to: now_at.max(whole.from).min(whole.to),
    };
    let mut charges = Vec::with_capacity(billed.plan.charges.len());
    for charge in &billed.plan.charges {
        let Some((_, metric)) = billable_metrics::by_id_with_seq(conn, org, charge.metric_id.0)?
        else {
            continue;
        };
        let fees = if span.from < span.to {
            price_all(conn, &billed, charge, &metric, span, whole)?
        } else {
            Vec::new()
        };
        charges.push(ChargeUsageLine {
            charge: charge.clone(),
            metric,
            fees,
        });
    }
    Ok(CurrentUsage {
        issuing_date: billed.local_date(whole.to),
        currency: billed.plan.terms.currency,
        subscription: billed.subscription.clone(),
        period: whole,
        charges,
    })
}

/// Like [`price_charge`], keeping zero lines (current usage lists every filter).
fn price_all(
    conn: &Connection,
    billed: &Billed,
    charge: &Charge,
    metric: &Metric,
    span: Period,
    whole: Period,
) -> StoreResult<Vec<StoredFee>> {
    let Some((metric_seq, _)) =
        billable_metrics::by_id_with_seq(conn, billed.org, charge.metric_id.0)?
    else {
        return Ok(Vec::new());
    };
    let definition = &metric.definition;
    let events = billed.life().map_or(span, |life| life.events_in(span));
    let from = if definition.recurring {
        billed
            .events_start()
            .unwrap_or(events.from)
            .min(events.from)
    } else {
        events.from
    };
    let groups = usage::groups(
        conn,
        billed.org,
        metric_seq,
        definition,
        billed.scope(),
        (from, events.to),
    )?;
    let buckets = charge_buckets(
        charge,
        definition,
        &groups,
        (span.from, span.to),
        Decimal::ZERO,
    )
    .map_err(overflow)?;
    let values = if charge.needs_event_values() {
        bucket_event_values(
            conn, billed, metric_seq, charge, definition, &buckets, events,
        )?
    } else {
        vec![None; buckets.len()]
    };
    let fees = charge_fees(
        charge,
        &buckets,
        &values,
        billed.plan.terms.currency,
        span,
        proration(span, whole),
    );
    Ok(fees
        .into_iter()
        .map(|fee| label_charge_fee(charge, metric, fee))
        .collect())
}

/// Bills credits bought for a wallet on a `credit` invoice, finalized at once; returns the invoice.
pub(super) fn credit_invoice(
    conn: &Connection,
    org: i64,
    customer: &Customer,
    wallet: &tally_core::wallet::Wallet,
    credits: Decimal,
    at: Timestamp,
) -> StoreResult<i64> {
    let tz = subscriptions::billing_zone(conn, org, &customer.profile)?;
    let net_payment_term = match customer.profile.net_payment_term {
        Some(days) => days,
        None => orgs::by_seq(conn, org)?.billing.net_payment_term,
    };
    let precise = credits * wallet.rate_amount;
    let amount = tally_core::money::round_fee(precise, wallet.currency);
    let stamp = now().micros();
    conn.execute(
        "INSERT INTO invoices (id, org, customer, subscription, invoice_type, status, payment_status, currency,
            issuing_date, net_payment_term, fees_amount_cents, total_amount_cents, run, created_at, updated_at)
         VALUES (?1, ?2, ?3, NULL, 'credit', 'draft', 'pending', ?4, ?5, ?6, ?7, ?7, '{}', ?8, ?8)",
        params![
            InvoiceId::generate().0.to_string(),
            org,
            customer.id.0.to_string(),
            wallet.currency.code(),
            at.to_datetime().with_timezone(&tz).date_naive().to_string(),
            net_payment_term,
            amount,
            stamp
        ],
    )?;
    let invoice = conn.last_insert_rowid();
    let fee = StoredFee {
        id: FeeId::generate(),
        item_code: wallet
            .code
            .clone()
            .unwrap_or_else(|| "prepaid_credits".to_owned()),
        item_name: wallet
            .name
            .clone()
            .unwrap_or_else(|| "Prepaid credits".to_owned()),
        invoice_display_name: None,
        filter_name: None,
        filter_values: None,
        pay_in_advance: true,
        add_on_id: None,
        description: None,
        coupons_amount_cents: 0,
        taxes: Vec::new(),
        event_transaction_id: None,
        created_at: now(),
        fee: Fee {
            kind: FeeKind::Credit,
            charge_id: None,
            filter_id: None,
            units: credits.normalize(),
            total_aggregated_units: credits.normalize(),
            events_count: 0,
            precise_amount: precise.normalize(),
            amount_cents: amount,
            period: Period { from: at, to: at },
            details: Value::Null,
        },
    };
    write_fees(conn, invoice, &[fee])?;
    number(conn, invoice, at)?;
    Ok(invoice)
}

/// The plan's minimum commitment true-up, on the run that closes a subscription period (at its end or
/// at a termination): the commitment prorated by the share of the full period the subscription
/// covered, minus every fee billed for that period on this and earlier invoices of the subscription
/// (subscription fee, in advance or in arrears, and charges), never on a voided invoice.
fn commitment_line(
    conn: &Connection,
    billed: &Billed,
    run: &Run,
    invoice: i64,
    fees: &[StoredFee],
) -> StoreResult<Option<StoredFee>> {
    let Some(commitment) = &billed.plan.terms.minimum_commitment else {
        return Ok(None);
    };
    let period = run.subscription_period;
    let closes = match run.reason {
        RunReason::Periodic => run.boundary == period.to,
        RunReason::Terminating => true,
        RunReason::Starting | RunReason::InAdvanceCharge | RunReason::ProgressiveBilling => false,
    };
    let Some(schedule) = billed.schedule() else {
        return Ok(None);
    };
    let started = billed.subscription.started_at.unwrap_or(period.from);
    let covered = Period {
        from: period.from.max(started),
        to: billed
            .subscription
            .terminated_at
            .map_or(period.to, |t| t.min(period.to)),
    };
    if !closes || covered.from >= covered.to {
        return Ok(None);
    }
    let mut whole = schedule.full_period_containing(covered.from);
    if schedule.billing_time == tally_core::period::BillingTime::Anniversary
        && covered.from == started
    {
        whole.from = covered.from;
    }
    let within = |p: Period| p.from >= period.from && p.to <= period.to;
    let here: i64 = fees
        .iter()
        .filter(|f| f.fee.kind != FeeKind::Commitment && within(f.fee.period))
        .map(|f| f.fee.amount_cents)
        .sum();
    let earlier: i64 = conn.query_row(
        "SELECT COALESCE(SUM(f.amount_cents), 0) FROM fees f JOIN invoices i ON i.seq = f.invoice
         WHERE i.subscription = (SELECT subscription FROM invoices WHERE seq = ?1) AND i.seq <> ?1
           AND i.status <> 'voided' AND i.invoice_type <> 'progressive_billing' AND f.kind <> 'commitment' AND f.period_from >= ?2 AND f.period_to <= ?3",
        params![invoice, period.from.micros(), period.to.micros()],
        |row| row.get(0),
    )?;
    let Some(fee) = commitment_fee(
        commitment,
        billed.plan.terms.currency,
        proration(covered, whole),
        here + earlier,
        covered,
    ) else {
        return Ok(None);
    };
    Ok(Some(StoredFee {
        id: FeeId::generate(),
        item_code: billed.plan.terms.code.to_string(),
        item_name: billed.plan.terms.name.clone(),
        invoice_display_name: commitment.invoice_display_name.clone(),
        filter_name: None,
        filter_values: None,
        add_on_id: None,
        description: None,
        event_transaction_id: None,
        pay_in_advance: false,
        coupons_amount_cents: 0,
        taxes: Vec::new(),
        created_at: now(),
        fee,
    }))
}

//! The running usage of each bucket of a pay-in-advance charge in a charges period (a charge filter,
//! or the charge's own terms), and the unique values it has seen: the "before" of the next event,
//! kept in tables so no event needs the period's raw events again.

use rusqlite::{Connection, OptionalExtension, params};
use rust_decimal::Decimal;
use tally_core::billing::usage::filter_for;
use tally_core::billing::{Fee, Running, advance_fee};
use tally_core::id::{ChargeFilterId, ChargeId};
use tally_core::metric::{AggregationType, Operation, Reading};
use tally_core::period::Period;
use tally_core::plan::Charge;
use tally_core::time::Timestamp;

use super::super::billing::Billed;
use crate::error::StoreResult;
use crate::types::Metric;

/// Identifies a bucket's running usage: (subscription, charge, filter, charges period).
pub(super) struct BucketKey {
    subscription: i64,
    charge: ChargeId,
    filter: Option<ChargeFilterId>,
    period_from: Timestamp,
}

impl BucketKey {
    fn filter_text(&self) -> String {
        self.filter.map(|f| f.0.to_string()).unwrap_or_default()
    }
}

/// One event priced against its bucket, not yet written.
pub(super) struct Priced {
    key: BucketKey,
    /// The charges period the event falls in.
    pub(super) period: Period,
    /// The event's fee.
    pub(super) fee: Fee,
    after: Running,
    /// The unique value the event adds to its bucket, if it is new there.
    new_value: Option<String>,
}

/// Prices an event for one charge against what its bucket billed so far; reads only.
pub(super) fn price(
    conn: &Connection,
    billed: &Billed,
    seq: i64,
    charge: &Charge,
    metric: &Metric,
    reading: &Reading,
    at: Timestamp,
) -> StoreResult<Option<Priced>> {
    let Some(schedule) = billed.schedule() else {
        return Ok(None);
    };
    let period = schedule.charges_period_containing(at, billed.plan.terms.bill_charges_monthly);
    let filter = filter_for(charge, &reading.group.values());
    let key = BucketKey {
        subscription: seq,
        charge: charge.id,
        filter,
        period_from: period.from,
    };
    let before = running(conn, &key)?;
    let definition = &metric.definition;
    let (added, new_value) = match definition.aggregation {
        AggregationType::UniqueCount => match &reading.distinct {
            Some((value, Operation::Add)) if !seen(conn, &key, value)? => {
                (Decimal::ONE, Some(value.clone()))
            }
            _ => (Decimal::ZERO, None),
        },
        AggregationType::Count => (Decimal::ONE, None),
        _ => (reading.value.unwrap_or(Decimal::ONE), None),
    };
    let (fee, after) = advance_fee(
        charge,
        filter,
        definition.rounding,
        &before,
        added,
        billed.plan.terms.currency,
        period,
    );
    Ok(Some(Priced {
        key,
        period,
        fee,
        after,
        new_value,
    }))
}

fn running(conn: &Connection, key: &BucketKey) -> StoreResult<Running> {
    let mut stmt = conn.prepare_cached(
        "SELECT units, events_count, billed, billed_cents, free_value_used FROM advance_usage
         WHERE subscription = ?1 AND charge = ?2 AND charge_filter = ?3 AND period_from = ?4",
    )?;
    let found = stmt
        .query_row(
            params![
                key.subscription,
                key.charge.0.to_string(),
                key.filter_text(),
                key.period_from.micros()
            ],
            |row| {
                let decimal = |i: usize| -> rusqlite::Result<Decimal> {
                    let text: String = row.get(i)?;
                    text.parse().map_err(|_| {
                        rusqlite::Error::FromSqlConversionFailure(
                            i,
                            rusqlite::types::Type::Text,
                            format!("not a decimal: {text}").into(),
                        )
                    })
                };
                Ok(Running {
                    units: decimal(0)?,
                    events_count: u64::try_from(row.get::<_, i64>(1)?).unwrap_or(0),
                    billed: decimal(2)?,
                    billed_cents: row.get(3)?,
                    free_value_used: decimal(4)?,
                })
            },
        )
        .optional()?;
    Ok(found.unwrap_or_default())
}

fn seen(conn: &Connection, key: &BucketKey, value: &str) -> StoreResult<bool> {
    let mut stmt = conn.prepare_cached(
        "SELECT 1 FROM advance_unique_values
         WHERE subscription = ?1 AND charge = ?2 AND charge_filter = ?3 AND period_from = ?4 AND value = ?5",
    )?;
    Ok(stmt.exists(params![
        key.subscription,
        key.charge.0.to_string(),
        key.filter_text(),
        key.period_from.micros(),
        value
    ])?)
}

/// Writes a bucket's running usage after a priced event, and the unique value it added.
pub(super) fn keep_running(conn: &Connection, priced: &Priced) -> StoreResult<()> {
    let key = &priced.key;
    let after = &priced.after;
    conn.prepare_cached(
        "INSERT INTO advance_usage (subscription, charge, charge_filter, period_from, units, events_count,
            billed, billed_cents, free_value_used)
         VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9)
         ON CONFLICT (subscription, charge, charge_filter, period_from) DO UPDATE SET
            units = excluded.units, events_count = excluded.events_count, billed = excluded.billed,
            billed_cents = excluded.billed_cents, free_value_used = excluded.free_value_used",
    )?
    .execute(params![
        key.subscription,
        key.charge.0.to_string(),
        key.filter_text(),
        key.period_from.micros(),
        after.units.to_string(),
        i64::try_from(after.events_count).unwrap_or(i64::MAX),
        after.billed.to_string(),
        after.billed_cents,
        after.free_value_used.to_string(),
    ])?;
    if let Some(value) = &priced.new_value {
        conn.prepare_cached(
            "INSERT INTO advance_unique_values (subscription, charge, charge_filter, period_from, value)
             VALUES (?1, ?2, ?3, ?4, ?5)",
        )?
        .execute(params![
            key.subscription,
            key.charge.0.to_string(),
            key.filter_text(),
            key.period_from.micros(),
            value
        ])?;
    }
    Ok(())
}

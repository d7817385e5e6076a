//! The running usage of each bucket of a pay-in-advance charge in a charges period (a charge filter,
//! or the charge's own terms), and the unique values it has seen: the "before" of the next event,
//! kept in tables so no event needs the period's raw events again.

use rusqlite::{Connection, OptionalExtension, params};
use rust_decimal::Decimal;
use tally_core::aggregation::{DistinctEvent, active_values};
use tally_core::billing::usage::filter_for;
use tally_core::billing::{
    Fee, GroupAggregate, Running, advance_fee, charge_buckets, charges_share, prorated_advance_fee,
};
use tally_core::charge::ChargeUsage;
use tally_core::id::{ChargeFilterId, ChargeId};
use tally_core::metric::{AggregationType, MetricDefinition, Operation, Reading};
use tally_core::money::round_fee;
use tally_core::period::Period;
use tally_core::plan::Charge;
use tally_core::time::Timestamp;

use super::super::billing::Billed;
use super::super::usage;
use crate::error::{StoreError, StoreResult};
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
    /// The bucket's starting point in the period, when this event is its first and units carry.
    carried: Option<Carried>,
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
    let definition = &metric.definition;
    let (before, carried) = match running(conn, &key)? {
        Some(found) => (found, None),
        None => {
            let start = carried_into(conn, billed, charge, definition, filter, period)?;
            (start.running.clone(), Some(start))
        }
    };
    let (added, new_value) = match definition.aggregation {
        AggregationType::UniqueCount => match &reading.distinct {
            Some((value, Operation::Add))
                if !carried.as_ref().is_some_and(|c| c.values.contains(value))
                    && !seen(conn, &key, value)? =>
            {
                (Decimal::ONE, Some(value.clone()))
            }
            _ => (Decimal::ZERO, None),
        },
        AggregationType::Count => (Decimal::ONE, None),
        _ => (reading.value.unwrap_or(Decimal::ONE), None),
    };
    let (fee, after) = match (charge.terms.prorated, billed.schedule(), billed.life()) {
        (true, Some(schedule), Some(life)) => {
            // The part of the full charges period left from the event to its end.
            let rest = Period {
                from: at,
                to: period.to,
            };
            prorated_advance_fee(
                charge,
                filter,
                &before,
                added,
                charges_share(&schedule, &life, rest),
                billed.plan.terms.currency,
                period,
            )
        }
        _ => advance_fee(
            charge,
            filter,
            definition.rounding,
            &before,
            added,
            billed.plan.terms.currency,
            period,
        ),
    };
    Ok(Some(Priced {
        key,
        carried,
        period,
        fee,
        after,
        new_value,
    }))
}

/// Whether a pay-in-advance charge bills the units of its metric carried into each charges period
/// again, at the period's start: a recurring sum (seats, licences) or unique count (seats as
/// distinct users), whose units persist.
pub(in super::super) fn carries_units(charge: &Charge, metric: &MetricDefinition) -> bool {
    charge.terms.pay_in_advance
        && metric.recurring
        && matches!(
            metric.aggregation,
            AggregationType::Sum | AggregationType::UniqueCount
        )
}

/// What a bucket starts a charges period with: the carried units priced as the period's first fee,
/// and for a unique count the values they are (already seen in the period).
#[derive(Debug, Clone, Default)]
pub(in super::super) struct Carried {
    pub(in super::super) running: Running,
    values: Vec<String>,
}

/// What a bucket starts `period` with: the units carried from the subscription's start up to the
/// period's, priced as the period's first fee (nothing when the charge carries nothing).
pub(in super::super) fn carried_into(
    conn: &Connection,
    billed: &Billed,
    charge: &Charge,
    definition: &MetricDefinition,
    filter: Option<ChargeFilterId>,
    period: Period,
) -> StoreResult<Carried> {
    let Some(life) = billed.life() else {
        return Ok(Carried::default());
    };
    let from = life.events_start();
    if !carries_units(charge, definition) || from >= period.from {
        return Ok(Carried::default());
    }
    let metric_seq: i64 = conn.query_row(
        "SELECT seq FROM billable_metrics WHERE id = ?1",
        [charge.metric_id.0.to_string()],
        |row| row.get(0),
    )?;
    let groups = usage::groups(
        conn,
        billed.org,
        metric_seq,
        definition,
        billed.scope(),
        (from, period.from),
    )?;
    let (units, rounded, values) = if definition.aggregation == AggregationType::UniqueCount {
        let events: Vec<&DistinctEvent> = groups
            .iter()
            .filter(|g| filter_for(charge, &g.dims) == filter)
            .filter_map(|g| match &g.aggregate {
                GroupAggregate::Distinct(events) => Some(events),
                GroupAggregate::State(_) => None,
            })
            .flatten()
            .collect();
        let values = active_values(events);
        let units = Decimal::from(values.len());
        (units, units, values)
    } else {
        let buckets = charge_buckets(
            charge,
            definition,
            &groups,
            (from, period.from),
            Decimal::ZERO,
        )
        .map_err(|e| StoreError::Database(e.to_string()))?;
        match buckets.iter().find(|b| b.filter == filter) {
            Some(bucket) => (
                bucket.total_aggregated_units.max(Decimal::ZERO),
                bucket.units.max(Decimal::ZERO),
                Vec::new(),
            ),
            None => (Decimal::ZERO, Decimal::ZERO, Vec::new()),
        }
    };
    if units.is_zero() {
        return Ok(Carried::default());
    }
    let model = filter
        .and_then(|id| charge.filters.iter().find(|(f, _)| *f == id))
        .map_or(&charge.terms.model, |(_, f)| &f.model);
    let billed_amount = model.price(&ChargeUsage::new(rounded, 0)).amount;
    Ok(Carried {
        running: Running {
            units,
            events_count: 0,
            billed: billed_amount,
            billed_cents: round_fee(billed_amount, billed.plan.terms.currency),
            free_value_used: Decimal::ZERO,
            peak_units: units,
        },
        values,
    })
}

/// Where a bucket started a period (the carried units and their price), if the bucket has a row.
pub(in super::super) fn carried_start(
    conn: &Connection,
    subscription: i64,
    charge: ChargeId,
    filter: Option<ChargeFilterId>,
    period_from: Timestamp,
) -> StoreResult<Option<Running>> {
    let key = BucketKey {
        subscription,
        charge,
        filter,
        period_from,
    };
    Ok(stored(conn, &key)?.map(|(_, start)| start))
}

/// Writes the row a bucket starts a period with (the carried units), unless it has one.
pub(in super::super) fn start_period(
    conn: &Connection,
    subscription: i64,
    charge: ChargeId,
    filter: Option<ChargeFilterId>,
    period_from: Timestamp,
    carried: &Carried,
) -> StoreResult<()> {
    let key = BucketKey {
        subscription,
        charge,
        filter,
        period_from,
    };
    write_running(conn, &key, &carried.running, Some(&carried.running))?;
    keep_values(conn, &key, &carried.values)
}

/// Records unique values a bucket has seen in a period (carried ones at its start).
fn keep_values(conn: &Connection, key: &BucketKey, values: &[String]) -> StoreResult<()> {
    let mut insert = conn.prepare_cached(
        "INSERT OR IGNORE INTO advance_unique_values (subscription, charge, charge_filter, period_from, value)
         VALUES (?1, ?2, ?3, ?4, ?5)",
    )?;
    for value in values {
        insert.execute(params![
            key.subscription,
            key.charge.0.to_string(),
            key.filter_text(),
            key.period_from.micros(),
            value
        ])?;
    }
    Ok(())
}

fn running(conn: &Connection, key: &BucketKey) -> StoreResult<Option<Running>> {
    Ok(stored(conn, key)?.map(|(now, _)| now))
}

/// A bucket's row: its running usage, and where it started the period (the carried units).
fn stored(conn: &Connection, key: &BucketKey) -> StoreResult<Option<(Running, Running)>> {
    let mut stmt = conn.prepare_cached(
        "SELECT units, events_count, billed, billed_cents, free_value_used, peak_units,
            carried_units, carried_billed, carried_cents
         FROM advance_usage
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
                let now = Running {
                    units: decimal(0)?,
                    events_count: u64::try_from(row.get::<_, i64>(1)?).unwrap_or(0),
                    billed: decimal(2)?,
                    billed_cents: row.get(3)?,
                    free_value_used: decimal(4)?,
                    peak_units: decimal(5)?,
                };
                let carried = decimal(6)?;
                let start = Running {
                    units: carried,
                    events_count: 0,
                    billed: decimal(7)?,
                    billed_cents: row.get(8)?,
                    free_value_used: Decimal::ZERO,
                    peak_units: carried,
                };
                Ok((now, start))
            },
        )
        .optional()?;
    Ok(found)
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

/// Writes a bucket's running usage (and, on its first row in the period, where it started).
fn write_running(
    conn: &Connection,
    key: &BucketKey,
    after: &Running,
    carried: Option<&Running>,
) -> StoreResult<()> {
    let start = carried.cloned().unwrap_or_default();
    conn.prepare_cached(
        "INSERT INTO advance_usage (subscription, charge, charge_filter, period_from, units, events_count,
            billed, billed_cents, free_value_used, carried_units, carried_billed, carried_cents, peak_units)
         VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12, ?13)
         ON CONFLICT (subscription, charge, charge_filter, period_from) DO UPDATE SET
            units = excluded.units, events_count = excluded.events_count, billed = excluded.billed,
            billed_cents = excluded.billed_cents, free_value_used = excluded.free_value_used,
            peak_units = excluded.peak_units",
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
        start.units.to_string(),
        start.billed.to_string(),
        start.billed_cents,
        after.peak_units.to_string(),
    ])?;
    Ok(())
}

/// Writes a bucket's running usage after a priced event, and the unique value it added.
pub(super) fn keep_running(conn: &Connection, priced: &Priced) -> StoreResult<()> {
    let key = &priced.key;
    write_running(
        conn,
        key,
        &priced.after,
        priced.carried.as_ref().map(|c| &c.running),
    )?;
    if let Some(carried) = &priced.carried {
        keep_values(conn, key, &carried.values)?;
    }
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

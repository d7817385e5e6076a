//! The units of a recurring sum that a pay-in-advance charge carries into each charges period (seats,
//! licences), billed again in advance at the period's start, on the invoice of the run at that
//! boundary. The bucket's running usage in the new period starts from them, so the period's events
//! bill only what they add above it; whichever the clock makes first, the run's fee and the running
//! usage read the same starting point (`advance_usage.carried_*`).

use rusqlite::Connection;
use serde_json::Value;
use tally_core::billing::{Fee, FeeKind, Run, RunReason};

use super::super::billable_metrics;
use super::super::billing::{self, Billed};
use super::buckets::{carried_into, carried_start, carries_units, start_period};
use crate::error::StoreResult;
use crate::types::StoredFee;

/// The carried-units fees of the run opening a charges period (none for other runs).
pub(in super::super) fn carried_fees(
    conn: &Connection,
    billed: &Billed,
    run: &Run,
) -> StoreResult<Vec<StoredFee>> {
    let (Some(schedule), Some(life)) = (billed.schedule(), billed.life()) else {
        return Ok(Vec::new());
    };
    if run.reason != RunReason::Periodic
        || life.terminated_at.is_some_and(|end| end <= run.boundary)
    {
        return Ok(Vec::new());
    }
    let next = schedule.charges_period_containing(run.boundary, life.bill_charges_monthly);
    if next.from != run.boundary {
        return Ok(Vec::new());
    }
    let mut fees = Vec::new();
    for charge in billed
        .plan
        .charges
        .iter()
        .filter(|c| c.terms.pay_in_advance && c.terms.invoiceable)
    {
        let Some((_, metric)) =
            billable_metrics::by_id_with_seq(conn, billed.org, charge.metric_id.0)?
        else {
            continue;
        };
        if !carries_units(charge, &metric.definition) {
            continue;
        }
        let buckets = charge.filters.iter().map(|(id, _)| Some(*id)).chain([None]);
        for filter in buckets {
            let start = match carried_start(conn, billed.seq, charge.id, filter, next.from)? {
                Some(start) => start,
                None => {
                    let start =
                        carried_into(conn, billed, charge, &metric.definition, filter, next)?;
                    start_period(conn, billed.seq, charge.id, filter, next.from, &start)?;
                    start.running
                }
            };
            if start.units.is_zero() && start.billed_cents == 0 {
                continue;
            }
            let units = metric
                .definition
                .rounding
                .map_or(start.units, |r| r.apply(start.units));
            let fee = Fee {
                kind: FeeKind::Charge,
                charge_id: Some(charge.id),
                filter_id: filter,
                units,
                total_aggregated_units: start.units,
                events_count: 0,
                precise_amount: start.billed.normalize(),
                amount_cents: start.billed_cents,
                period: next,
                details: Value::Null,
            };
            fees.push(billing::label_charge_fee(charge, &metric, fee));
        }
    }
    Ok(fees)
}

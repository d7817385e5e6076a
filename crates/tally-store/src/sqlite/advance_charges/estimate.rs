//! Fee estimates (`POST /events/estimate_fees`): what one event would bill now on the
//! pay-in-advance charges of its subscription, priced like the billing clock prices it, writing nothing.

use rusqlite::Connection;
use tally_core::event::NewEvent;
use tally_core::invoice::PaymentStatus;
use tally_core::metric::Unbillable;
use tally_core::subscription::SubscriptionStatus;
use tally_core::time::Timestamp;
use tally_core::{Reason, ValidationErrors};

use super::super::billing::{self, Billed};
use super::super::{billable_metrics, customers, subscriptions};
use super::buckets::price;
use super::invoicing::fee_taxes;
use crate::error::{StoreError, StoreResult};
use crate::types::FeeRecord;

/// Works out what an event would bill on the pay-in-advance charges of its subscription now, against
/// what the billing clock has billed so far, writing nothing.
pub(in crate::sqlite) fn estimate(
    conn: &Connection,
    org: i64,
    event: &NewEvent,
    now_at: Timestamp,
) -> StoreResult<Vec<FeeRecord>> {
    let customer = match &event.subject {
        Some(external_id) => Some(customers::get(conn, org, external_id)?),
        None => None,
    };
    let subscription = match (&event.external_subscription_id, &customer) {
        (Some(external_id), _) => {
            subscriptions::get(conn, org, external_id.as_str(), SubscriptionStatus::Active)?
        }
        (None, Some(customer)) => {
            let mut stmt = conn.prepare_cached(
                "SELECT external_id FROM subscriptions WHERE customer = ?1 AND status = 'active'",
            )?;
            let active: Vec<String> = stmt
                .query_map([customer.id.0.to_string()], |row| row.get(0))?
                .collect::<rusqlite::Result<_>>()?;
            match active.as_slice() {
                [only] => subscriptions::get(conn, org, only, SubscriptionStatus::Active)?,
                _ => return Err(StoreError::NotFound("subscription")),
            }
        }
        (None, None) => return Err(StoreError::NotFound("subscription")),
    };
    if customer
        .as_ref()
        .is_some_and(|c| c.id != subscription.customer_id)
    {
        return Err(StoreError::NotFound("subscription"));
    }
    if billable_metrics::reading(conn, org, event.code.as_str())?.is_empty() {
        return Err(StoreError::NotFound("billable_metric"));
    }
    let seq: i64 = conn.query_row(
        "SELECT seq FROM subscriptions WHERE id = ?1",
        [subscription.id.0.to_string()],
        |row| row.get(0),
    )?;
    let billed = Billed::load(conn, seq)?;
    let mut matching = Vec::new();
    for charge in billed
        .plan
        .charges
        .iter()
        .filter(|c| c.terms.pay_in_advance)
    {
        if let Some((_, metric)) = billable_metrics::by_id_with_seq(conn, org, charge.metric_id.0)?
            && metric.definition.event_type.as_str() == event.code.as_str()
        {
            matching.push((charge, metric));
        }
    }
    if matching.is_empty() {
        return Err(invalid("code", Reason::DoesNotMatchAnInstantCharge));
    }
    let at = event
        .timestamp
        .max(subscription.started_at.unwrap_or(now_at));
    let mut records = Vec::new();
    for (charge, metric) in matching {
        let reading = match metric.definition.read(&event.properties, at) {
            Ok(Some(reading)) => reading,
            Ok(None) => continue,
            Err(Unbillable::MissingProperty(_)) => {
                return Err(invalid("properties", Reason::ValueIsMandatory));
            }
            Err(Unbillable::NotANumber(_) | Unbillable::OutOfRange(_)) => {
                return Err(invalid("properties", Reason::ValueIsNotValidNumber));
            }
        };
        let Some(priced) = price(conn, &billed, seq, charge, &metric, &reading, at)? else {
            continue;
        };
        let mut stored = billing::label_charge_fee(charge, &metric, priced.fee);
        stored.event_transaction_id = Some(event.transaction_id.as_str().to_owned());
        stored.taxes = fee_taxes(conn, &billed, &stored)?;
        records.push(FeeRecord {
            fee: stored,
            invoice_id: None,
            invoiceable: charge.terms.invoiceable,
            customer: billed.customer.clone(),
            subscription: Some(billed.subscription.clone()),
            currency: billed.plan.terms.currency,
            payment_status: PaymentStatus::Pending,
        });
    }
    Ok(records)
}

fn invalid(field: &str, reason: Reason) -> StoreError {
    let mut errors = ValidationErrors::new();
    errors.push(field, reason);
    StoreError::Invalid(errors)
}

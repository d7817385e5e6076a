//! Usage of closed periods (Lago `past_usage`), read back from finalized invoices: what was billed is
//! what is shown, so past usage never disagrees with an invoice.

use rusqlite::{Connection, params};
use tally_core::billing::FeeKind;
use tally_core::id::{ExternalId, InvoiceId};

use super::billing;
use super::orgs::parse_uuid;
use super::{billable_metrics, customers, plans};
use crate::error::{StoreError, StoreResult};
use crate::types::{ChargeUsageLine, CurrentUsage, PastUsage};

/// The charges periods of a customer's subscription (by external id, across plan changes) that
/// finalized invoices billed, newest first, at most `periods`; `metric` keeps one metric's charges.
pub(super) fn past_usage(
    conn: &Connection,
    org: i64,
    customer: &str,
    subscription: &str,
    metric: Option<&str>,
    periods: usize,
) -> StoreResult<Vec<PastUsage>> {
    let customer_id = customers::get(
        conn,
        org,
        &ExternalId::parse("external_customer_id", customer)
            .map_err(|_| StoreError::NotFound("customer"))?,
    )?
    .id;
    let invoices: Vec<String> = {
        let mut stmt = conn.prepare_cached(
            "SELECT i.id FROM invoices i JOIN subscriptions s ON s.seq = i.subscription
             WHERE i.org = ?1 AND s.external_id = ?2 AND s.customer = ?3 AND i.status = 'finalized'
             ORDER BY i.seq DESC",
        )?;
        stmt.query_map(
            params![org, subscription, customer_id.0.to_string()],
            |row| row.get(0),
        )?
        .collect::<rusqlite::Result<_>>()?
    };
    if invoices.is_empty() {
        let known: i64 = conn.query_row(
            "SELECT COUNT(*) FROM subscriptions WHERE org = ?1 AND external_id = ?2 AND customer = ?3",
            params![org, subscription, customer_id.0.to_string()],
            |row| row.get(0),
        )?;
        if known == 0 {
            return Err(StoreError::NotFound("subscription"));
        }
    }
    let mut out = Vec::new();
    for id in invoices {
        if out.len() >= periods {
            break;
        }
        let invoice = billing::get(conn, org, InvoiceId(parse_uuid(&id)?))?;
        let (Some(run), Some(sub)) = (invoice.run, invoice.subscription.clone()) else {
            continue;
        };
        // Pay-in-advance charge invoices bill one event each, and progressive invoices part of a
        // period: only the invoice that closes a period tells its usage.
        let Some(period) = run.charges.filter(|_| {
            !matches!(
                run.reason,
                tally_core::billing::RunReason::InAdvanceCharge
                    | tally_core::billing::RunReason::ProgressiveBilling
            )
        }) else {
            continue;
        };
        let plan = plans::by_id(conn, org, sub.plan_id)?;
        let mut charges = Vec::new();
        for charge in &plan.charges {
            let Some((_, found)) = billable_metrics::by_id_with_seq(conn, org, charge.metric_id.0)?
            else {
                continue;
            };
            if metric.is_some_and(|code| found.definition.code.as_str() != code) {
                continue;
            }
            let fees = invoice
                .fees
                .iter()
                // Units a recurring pay-in-advance charge carries into the next period are billed on
                // this invoice but belong to that period.
                .filter(|f| {
                    f.fee.kind == FeeKind::Charge
                        && f.fee.charge_id == Some(charge.id)
                        && f.fee.period.from < period.to
                })
                .cloned()
                .collect();
            charges.push(ChargeUsageLine {
                charge: charge.clone(),
                metric: found,
                fees,
            });
        }
        out.push(PastUsage {
            invoice_id: invoice.id,
            usage: CurrentUsage {
                subscription: sub,
                period,
                issuing_date: invoice.issuing_date,
                currency: invoice.currency,
                charges,
            },
        });
    }
    Ok(out)
}

//! Fees on their own (Lago `GET /fees`): the lines of every invoice, and the pay-in-advance fees that
//! are on no invoice (charges that are not invoiceable, or fees of zero).

use rusqlite::types::Value as SqlValue;
use rusqlite::{Connection, OptionalExtension, params};
use rust_decimal::Decimal;
use serde_json::Value;
use tally_core::billing::{Fee, FeeKind};
use tally_core::currency::Currency;
use tally_core::id::{ChargeFilterId, ChargeId, CustomerId, FeeId};
use tally_core::invoice::PaymentStatus;
use tally_core::page::Page;
use tally_core::period::Period;
use tally_core::time::Timestamp;

use super::billing;
use super::listing::Filtered;
use super::orgs::parse_uuid;
use super::{customers, subscriptions};
use crate::error::{StoreError, StoreResult};
use crate::types::{FeeFilter, FeeRecord, FeeTax, Listed, StoredFee};

/// Every fee of every organization: invoice lines, then pay-in-advance fees on no invoice.
const ALL_FEES: &str = "(SELECT i.org AS org, f.created_at AS created_at, f.seq AS ord, f.id AS id,
        f.invoice AS invoice, i.customer AS customer, i.subscription AS subscription, f.kind AS kind,
        f.item_code AS item_code
    FROM fees f JOIN invoices i ON i.seq = f.invoice
  UNION ALL
  SELECT a.org, a.created_at, 0, a.id, NULL, a.customer, a.subscription, 'charge', a.item_code
    FROM advance_fees a WHERE a.invoice IS NULL) AS listed";

fn corrupt(index: usize, message: impl Into<String>) -> rusqlite::Error {
    rusqlite::Error::FromSqlConversionFailure(
        index,
        rusqlite::types::Type::Text,
        message.into().into(),
    )
}

/// Reads one fee by its `lago_id`.
pub(super) fn get(conn: &Connection, org: i64, id: FeeId) -> StoreResult<FeeRecord> {
    let text = id.0.to_string();
    let invoiced: Option<i64> = conn
        .query_row(
            "SELECT f.invoice FROM fees f JOIN invoices i ON i.seq = f.invoice WHERE f.id = ?1 AND i.org = ?2",
            params![text, org],
            |row| row.get(0),
        )
        .optional()?;
    match invoiced {
        Some(invoice) => on_invoice(conn, org, invoice, id),
        None => on_no_invoice(conn, org, id),
    }
}

/// Lists fees, newest first.
pub(super) fn list(
    conn: &Connection,
    org: i64,
    filter: &FeeFilter,
    page: Page,
) -> StoreResult<Listed<FeeRecord>> {
    let mut query = Filtered::new("org = ?", SqlValue::Integer(org));
    if let Some(customer) = &filter.external_customer_id {
        query.and(
            "customer IN (SELECT id FROM customers WHERE org = ? AND external_id = ?)",
            [SqlValue::Integer(org), SqlValue::Text(customer.clone())],
        );
    }
    if let Some(subscription) = &filter.external_subscription_id {
        query.and(
            "subscription IN (SELECT seq FROM subscriptions WHERE org = ? AND external_id = ?)",
            [SqlValue::Integer(org), SqlValue::Text(subscription.clone())],
        );
    }
    if let Some(kind) = filter.fee_type {
        query.and("kind = ?", [SqlValue::Text(kind.name().to_owned())]);
    }
    if let Some(code) = &filter.billable_metric_code {
        query.and(
            "kind IN ('charge', 'commitment') AND item_code = ?",
            [SqlValue::Text(code.clone())],
        );
    }
    let listed = query.page(
        conn,
        ALL_FEES,
        "id, invoice",
        "created_at DESC, ord DESC, id",
        page,
        |row| Ok((row.get::<_, String>(0)?, row.get::<_, Option<i64>>(1)?)),
    )?;
    let mut items = Vec::with_capacity(listed.items.len());
    for (id, invoice) in listed.items {
        let id = FeeId(parse_uuid(&id)?);
        items.push(match invoice {
            Some(invoice) => on_invoice(conn, org, invoice, id)?,
            None => on_no_invoice(conn, org, id)?,
        });
    }
    Ok(Listed {
        items,
        total: listed.total,
    })
}

/// A line of an invoice, with the invoice's customer, subscription and payment status.
fn on_invoice(conn: &Connection, org: i64, invoice: i64, id: FeeId) -> StoreResult<FeeRecord> {
    let (invoice_id, customer, subscription, currency, payment): (
        String,
        String,
        Option<i64>,
        String,
        String,
    ) = conn.query_row(
        "SELECT id, customer, subscription, currency, payment_status FROM invoices WHERE seq = ?1",
        [invoice],
        |row| {
            Ok((
                row.get(0)?,
                row.get(1)?,
                row.get(2)?,
                row.get(3)?,
                row.get(4)?,
            ))
        },
    )?;
    let fee = billing::fees_of(conn, invoice)?
        .into_iter()
        .find(|f| f.id == id)
        .ok_or(StoreError::NotFound("fee"))?;
    Ok(FeeRecord {
        fee,
        invoice_id: Some(tally_core::id::InvoiceId(parse_uuid(&invoice_id)?)),
        invoiceable: true,
        customer: customers::by_id(conn, org, CustomerId(parse_uuid(&customer)?))?,
        subscription: subscription
            .map(|s| subscriptions::by_seq(conn, s))
            .transpose()?,
        currency: Currency::parse(&currency).ok_or_else(|| corrupt(3, currency.clone()))?,
        payment_status: PaymentStatus::parse(&payment).unwrap_or(PaymentStatus::Pending),
    })
}

/// A pay-in-advance fee on no invoice.
fn on_no_invoice(conn: &Connection, org: i64, id: FeeId) -> StoreResult<FeeRecord> {
    let found = conn
        .query_row(
            "SELECT charge, charge_filter, customer, subscription, invoiceable, event_transaction_id, currency,
                item_code, item_name, invoice_display_name, filter_name, filter_values, units, precise_amount,
                amount_cents, taxes, period_from, period_to, details, created_at
             FROM advance_fees WHERE id = ?1 AND org = ?2 AND invoice IS NULL",
            params![id.0.to_string(), org],
            |row| {
                let decimal = |i: usize| -> rusqlite::Result<Decimal> {
                    let text: String = row.get(i)?;
                    text.parse().map_err(|_| corrupt(i, text))
                };
                let json = |i: usize| -> rusqlite::Result<Value> {
                    let text: Option<String> = row.get(i)?;
                    Ok(text
                        .and_then(|t| serde_json::from_str(&t).ok())
                        .unwrap_or(Value::Null))
                };
                let units = decimal(12)?;
                let taxes = json(15)?
                    .as_array()
                    .map(|list| list.iter().filter_map(tax_from_json).collect())
                    .unwrap_or_default();
                let stored = StoredFee {
                    id,
                    item_code: row.get(7)?,
                    item_name: row.get(8)?,
                    invoice_display_name: row.get(9)?,
                    filter_name: row.get(10)?,
                    filter_values: Some(json(11)?).filter(|v| !v.is_null()),
                    pay_in_advance: true,
                    add_on_id: None,
                    description: None,
                    coupons_amount_cents: 0,
                    taxes,
                    event_transaction_id: row.get(5)?,
                    created_at: Timestamp::from_micros(row.get(19)?),
                    fee: Fee {
                        kind: FeeKind::Charge,
                        charge_id: Some(ChargeId(parse_uuid(&row.get::<_, String>(0)?)?)),
                        filter_id: row
                            .get::<_, Option<String>>(1)?
                            .map(|t| parse_uuid(&t).map(ChargeFilterId))
                            .transpose()?,
                        units,
                        total_aggregated_units: units,
                        events_count: 1,
                        precise_amount: decimal(13)?,
                        amount_cents: row.get(14)?,
                        period: Period {
                            from: Timestamp::from_micros(row.get(16)?),
                            to: Timestamp::from_micros(row.get(17)?),
                        },
                        details: json(18)?,
                    },
                };
                let currency: String = row.get(6)?;
                Ok((
                    stored,
                    row.get::<_, String>(2)?,
                    row.get::<_, i64>(3)?,
                    row.get::<_, bool>(4)?,
                    Currency::parse(&currency).ok_or_else(|| corrupt(6, currency.clone()))?,
                ))
            },
        )
        .optional()?;
    let (fee, customer, subscription, invoiceable, currency) =
        found.ok_or(StoreError::NotFound("fee"))?;
    Ok(FeeRecord {
        fee,
        invoice_id: None,
        invoiceable,
        customer: customers::by_id(conn, org, CustomerId(parse_uuid(&customer)?))?,
        subscription: Some(subscriptions::by_seq(conn, subscription)?),
        currency,
        payment_status: PaymentStatus::Pending,
    })
}

fn tax_from_json(value: &Value) -> Option<FeeTax> {
    Some(FeeTax {
        tax_id: value.get("tax")?.as_str()?.parse().ok()?,
        code: value.get("code")?.as_str()?.to_owned(),
        name: value.get("name")?.as_str()?.to_owned(),
        rate: value.get("rate")?.as_str()?.parse().ok()?,
        amount_cents: value.get("amount_cents")?.as_i64()?,
    })
}

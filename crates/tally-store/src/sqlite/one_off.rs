//! One-off invoices: add-ons billed to a customer at once, outside any subscription (Lago
//! `POST /invoices`).
//!
//! The invoice is priced, taxed, finalized and numbered in the transaction that makes it, from the
//! customer's one gapless sequence shared with subscription invoices, and it is never recomputed. As
//! in Lago, no coupon, credit note or prepaid credit is taken off it: its total is its fees plus
//! their taxes (docs/decisions.md).

use rusqlite::{Connection, params};
use rust_decimal::Decimal;
use tally_core::add_on::AddOn;
use tally_core::billing::adjustments::{TaxRate, adjust};
use tally_core::billing::{Fee, InvoiceTotals, add_on_fee};
use tally_core::currency::Currency;
use tally_core::customer::Customer;
use tally_core::error::{Reason, ValidationErrors};
use tally_core::id::{FeeId, InvoiceId};
use tally_core::period::Period;
use tally_core::tax::Tax;
use tally_core::time::{MICROS_PER_SECOND, Timestamp};

use super::now;
use super::{add_ons, billing, customers, subscriptions, taxes};
use crate::CustomerChange;
use crate::error::{StoreError, StoreResult};
use crate::types::{FeeTax, Invoice, NewOneOffInvoice, OneOffFee, StoredFee};

fn invalid(field: impl Into<String>, reason: Reason) -> StoreError {
    let mut errors = ValidationErrors::new();
    errors.push(field, reason);
    StoreError::Invalid(errors)
}

/// Works out the invoice's currency: the one asked for, else the customer's. A customer without a
/// currency takes the invoice's; one with another currency refuses it (Lago's
/// `currencies_does_not_match`).
fn settle_currency(
    conn: &Connection,
    org: i64,
    customer: &Customer,
    asked: Option<Currency>,
) -> StoreResult<Currency> {
    let currency = asked
        .or(customer.profile.currency)
        .ok_or_else(|| invalid("currency", Reason::ValueIsMandatory))?;
    match customer.profile.currency {
        Some(own) if own != currency => Err(invalid("currency", Reason::CurrenciesDoesNotMatch)),
        Some(_) => Ok(currency),
        None => {
            let mut profile = customer.profile.clone();
            profile.currency = Some(currency);
            customers::upsert(
                conn,
                org,
                &customer.external_id,
                &CustomerChange::new(profile),
            )?;
            Ok(currency)
        }
    }
}

/// The taxes of one fee: the codes it names, else its add-on's, else the customer's (or the
/// organization's), as Lago chooses them.
fn fee_taxes(
    conn: &Connection,
    org: i64,
    request: &OneOffFee,
    add_on: &AddOn,
    customer_taxes: &[Tax],
) -> StoreResult<Vec<Tax>> {
    match request.tax_codes.as_deref() {
        Some(codes) if !codes.is_empty() => {
            let mut found: Vec<Tax> = Vec::with_capacity(codes.len());
            for code in codes {
                let tax = taxes::get(conn, org, code)?;
                if !found.iter().any(|t| t.id == tax.id) {
                    found.push(tax);
                }
            }
            Ok(found)
        }
        _ if !add_on.taxes.is_empty() => Ok(add_on.taxes.clone()),
        _ => Ok(customer_taxes.to_vec()),
    }
}

/// The period a fee covers, from the ends the client gave (both included), else the invoice's
/// instant; stored half-open, one second past the last.
fn fee_period(request: &OneOffFee, at: Timestamp) -> Option<Period> {
    let (from, last) = request.period.unwrap_or((at, at));
    (from <= last).then(|| Period {
        from,
        to: Timestamp::from_micros(last.micros().saturating_add(MICROS_PER_SECOND)),
    })
}

/// One requested fee, priced, with the taxes it takes.
struct Priced<'a> {
    request: &'a OneOffFee,
    add_on: &'a AddOn,
    fee: Fee,
    taxes: Vec<Tax>,
}

/// Prices every fee in `currency`, collecting the refusals of all of them.
fn price_fees<'a>(
    conn: &Connection,
    org: i64,
    requests: &'a [OneOffFee],
    add_ons: &'a [AddOn],
    currency: Currency,
    customer_taxes: &[Tax],
    at: Timestamp,
) -> StoreResult<Vec<Priced<'a>>> {
    let mut errors = ValidationErrors::new();
    let mut priced = Vec::with_capacity(requests.len());
    for (index, (request, add_on)) in requests.iter().zip(add_ons).enumerate() {
        let field = |name: &str| format!("fees.{index}.{name}");
        let unit_amount_cents = match request.unit_amount_cents {
            Some(cents) => cents,
            // The add-on's price is in its own currency; Lago would bill the same number of minor
            // units of another currency, so tally asks for a price instead.
            None if add_on.terms.currency != currency => {
                errors.push(field("add_on_code"), Reason::CurrenciesDoesNotMatch);
                continue;
            }
            None => add_on.terms.amount_cents,
        };
        let Some(period) = fee_period(request, at) else {
            errors.push(field("to_datetime"), Reason::InvalidDate);
            continue;
        };
        let units = request.units.unwrap_or(Decimal::ONE);
        let Some(fee) = add_on_fee(unit_amount_cents, units, currency, period) else {
            // A negative price, or units negative or so many the amount does not fit.
            let name = if unit_amount_cents < 0 {
                "unit_amount_cents"
            } else {
                "units"
            };
            errors.push(field(name), Reason::ValueIsOutOfRange);
            continue;
        };
        let taxes = fee_taxes(conn, org, request, add_on, customer_taxes)?;
        priced.push(Priced {
            request,
            add_on,
            fee,
            taxes,
        });
    }
    // Every tax is at most 100 % of its fee, so the total stays below fees × (1 + taxes per fee).
    let most_taxes = priced.iter().map(|p| p.taxes.len()).max().unwrap_or(0);
    let fits = priced
        .iter()
        .try_fold(0_i64, |sum, p| sum.checked_add(p.fee.amount_cents))
        .and_then(|sum| sum.checked_mul(i64::try_from(most_taxes).ok()? + 1));
    if fits.is_none() {
        errors.push("fees", Reason::ValueIsOutOfRange);
    }
    errors.into_result(priced).map_err(StoreError::Invalid)
}

/// Computes each fee's taxes (rounded once each) and the invoice's totals; no coupon or credit
/// applies.
fn taxed(priced: Vec<Priced<'_>>, created: Timestamp) -> (Vec<StoredFee>, InvoiceTotals) {
    let mut invoice_taxes: Vec<Tax> = Vec::new();
    let rates: Vec<Vec<TaxRate>> = priced
        .iter()
        .map(|p| {
            p.taxes
                .iter()
                .map(|tax| {
                    let index = match invoice_taxes.iter().position(|t| t.id == tax.id) {
                        Some(index) => index,
                        None => {
                            invoice_taxes.push(tax.clone());
                            invoice_taxes.len() - 1
                        }
                    };
                    TaxRate {
                        tax: index,
                        rate: tax.terms.rate,
                    }
                })
                .collect()
        })
        .collect();
    let lines: Vec<Fee> = priced.iter().map(|p| p.fee.clone()).collect();
    let adjusted = adjust(&lines, &[], &rates);
    let fees = priced
        .into_iter()
        .zip(adjusted.fee_taxes)
        .map(|(p, fee_taxes)| StoredFee {
            id: FeeId::generate(),
            item_code: p.add_on.terms.code.to_string(),
            item_name: p.add_on.terms.name.clone(),
            invoice_display_name: p
                .request
                .invoice_display_name
                .clone()
                .filter(|n| !n.trim().is_empty())
                .or_else(|| p.add_on.terms.invoice_display_name.clone()),
            filter_name: None,
            filter_values: None,
            pay_in_advance: false,
            add_on_id: Some(p.add_on.id),
            description: p
                .request
                .description
                .clone()
                .or_else(|| p.add_on.terms.description.clone()),
            event_transaction_id: None,
            coupons_amount_cents: 0,
            taxes: fee_taxes
                .into_iter()
                .map(|(tax, amount_cents)| {
                    let t = &invoice_taxes[tax];
                    FeeTax {
                        tax_id: t.id,
                        code: t.terms.code.to_string(),
                        name: t.terms.name.clone(),
                        rate: t.terms.rate,
                        amount_cents,
                    }
                })
                .collect(),
            created_at: created,
            fee: p.fee,
        })
        .collect();
    (fees, adjusted.totals)
}

/// Creates, prices, taxes and finalizes a one-off invoice; returns it.
pub(super) fn create(
    conn: &Connection,
    org: i64,
    request: &NewOneOffInvoice,
    at: Timestamp,
) -> StoreResult<Invoice> {
    if request.fees.is_empty() {
        return Err(invalid("fees", Reason::ValueIsMandatory));
    }
    let customer = customers::get(conn, org, &request.external_customer_id)?;
    let mut add_ons = Vec::with_capacity(request.fees.len());
    for fee in &request.fees {
        add_ons.push(add_ons::get(conn, org, &fee.add_on_code)?);
    }
    let currency = settle_currency(conn, org, &customer, request.currency)?;
    let customer_taxes: Vec<Tax> = taxes::for_customer(conn, org, &customer.id.0.to_string())?
        .into_iter()
        .map(|(_, tax)| tax)
        .collect();
    let priced = price_fees(
        conn,
        org,
        &request.fees,
        &add_ons,
        currency,
        &customer_taxes,
        at,
    )?;
    let created = now();
    let (fees, totals) = taxed(priced, created);

    let tz = subscriptions::billing_zone(conn, org, &customer.profile)?;
    let id = InvoiceId::generate();
    // A one-off invoice with nothing to pay is settled at once, as in Lago.
    let payment_status = if totals.total_amount_cents > 0 {
        "pending"
    } else {
        "succeeded"
    };
    conn.execute(
        "INSERT INTO invoices (id, org, customer, subscription, invoice_type, status, payment_status, currency,
            issuing_date, net_payment_term, fees_amount_cents, coupons_amount_cents, taxes_amount_cents,
            total_amount_cents, run, created_at, updated_at)
         VALUES (?1, ?2, ?3, NULL, 'one_off', 'draft', ?4, ?5, ?6, ?7, ?8, 0, ?9, ?10, '{}', ?11, ?11)",
        params![
            id.0.to_string(),
            org,
            customer.id.0.to_string(),
            payment_status,
            currency.code(),
            at.to_datetime().with_timezone(&tz).date_naive().to_string(),
            customer.profile.net_payment_term.unwrap_or(0),
            totals.fees_amount_cents,
            totals.taxes_amount_cents,
            totals.total_amount_cents,
            created.micros()
        ],
    )?;
    let invoice = conn.last_insert_rowid();
    billing::write_fees(conn, invoice, &fees)?;
    billing::number(conn, invoice, at)?;
    billing::get(conn, org, id)
}

//! Invoice documents: what a printed invoice shows, worked out once from a stored invoice and its
//! issuer, then rendered as a PDF ([`pdf`]) or an HTML page ([`html`]).
//!
//! Both renderings show the same [`InvoiceDocument`]: the issuer, the invoice number and dates, the
//! customer, the billing period, one line per fee (units, unit price, amount), the totals chain of
//! COMPAT §2.7 (subtotal, coupons, taxes, credit notes, prepaid credits) and the total. Amounts carry
//! exactly as many decimals as the currency has (JPY 0, USD 2, KWD 3).

pub mod html;
pub mod pdf;

mod helvetica;

use chrono::{Days, NaiveDate};
use chrono_tz::Tz;
use rust_decimal::Decimal;
use serde_json::Value;
use tally_core::billing::FeeKind;
use tally_core::currency::Currency;
use tally_core::invoice::{InvoiceStatus, PaymentStatus};
use tally_core::money::from_minor;
use tally_core::period::Period;
use tally_core::time::Timestamp;
use tally_store::{Invoice, StoredFee};

/// Decimal places a unit price shows at most, unless the currency has more.
const PRICE_DECIMALS: u32 = 6;
/// Decimal places a unit count shows at most.
const UNIT_DECIMALS: u32 = 4;

/// A mark that changes how the document must be read.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Badge {
    /// The invoice was voided: nothing is owed.
    Voided,
    /// The invoice was paid.
    Paid,
}

impl Badge {
    /// Returns the word printed on the document.
    pub fn label(self) -> &'static str {
        match self {
            Badge::Voided => "VOIDED",
            Badge::Paid => "PAID",
        }
    }
}

/// One fee line, every value already formatted.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DocumentLine {
    /// What is billed: the item's display name, with the filter when the line bills one.
    pub item: String,
    /// The kind of line and the period it covers (`Usage · 2026-03-01 – 2026-03-31`), then the fee's
    /// description when it has one.
    pub detail: String,
    /// Units billed.
    pub units: String,
    /// The exact price of one unit (the average over tiers for graduated charges).
    pub unit_price: String,
    /// The line's amount.
    pub amount: String,
}

/// One row of the totals chain.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TotalRow {
    /// What the row is (`Subtotal`, `VAT (20%)`, `Coupon Spring`…).
    pub label: String,
    /// The amount, with a leading `-` for deductions.
    pub amount: String,
    /// Whether the row is the total.
    pub total: bool,
}

/// Everything an invoice document shows, formatted and ready to lay out.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct InvoiceDocument {
    /// The organization that issues the invoice.
    pub issuer: String,
    /// The invoice number (`DRAFT` before finalization).
    pub number: String,
    /// Voided or paid, when either applies.
    pub badge: Option<Badge>,
    /// Label and value pairs about the invoice (number, dates, currency).
    pub facts: Vec<(&'static str, String)>,
    /// The customer: name first, then its id, legal details, address and contact.
    pub customer: Vec<String>,
    /// Label and value pairs about the billing period(s).
    pub periods: Vec<(&'static str, String)>,
    /// The ISO code of every amount.
    pub currency: String,
    /// One line per fee.
    pub lines: Vec<DocumentLine>,
    /// Subtotal down to total.
    pub totals: Vec<TotalRow>,
    /// The invoice's `lago_id`, printed small for support.
    pub reference: String,
}

impl InvoiceDocument {
    /// Works out the document of `invoice`, issued by the organization named `issuer`.
    pub fn new(invoice: &Invoice, issuer: &str) -> Self {
        let currency = invoice.currency;
        let tz = invoice.timezone;
        let number = invoice.number.clone().unwrap_or_else(|| "DRAFT".to_owned());
        let due = invoice
            .issuing_date
            .checked_add_days(Days::new(
                u64::try_from(invoice.net_payment_term).unwrap_or(0),
            ))
            .unwrap_or(invoice.issuing_date);
        let badge = if invoice.status == InvoiceStatus::Voided {
            Some(Badge::Voided)
        } else if invoice.payment_status == PaymentStatus::Succeeded {
            Some(Badge::Paid)
        } else {
            None
        };
        let facts = vec![
            ("Invoice number", number.clone()),
            ("Issuing date", date(invoice.issuing_date)),
            ("Payment due date", date(due)),
            ("Currency", currency.code().to_owned()),
        ];
        InvoiceDocument {
            issuer: issuer.to_owned(),
            number,
            badge,
            facts,
            customer: customer_lines(invoice),
            periods: period_rows(invoice),
            currency: currency.code().to_owned(),
            lines: invoice
                .fees
                .iter()
                .map(|f| fee_line(f, currency, tz))
                .collect(),
            totals: total_rows(invoice),
            reference: invoice.id.0.to_string(),
        }
    }

    /// Returns the total row's amount (what the customer owes, before payment).
    pub fn total(&self) -> &str {
        self.totals
            .iter()
            .find(|r| r.total)
            .map_or("", |r| r.amount.as_str())
    }

    /// Returns the file name the document is offered under, without extension (`DEF-…-001-001`).
    pub fn file_stem(&self) -> String {
        let stem: String = self
            .number
            .chars()
            .map(|c| {
                if c.is_ascii_alphanumeric() || c == '-' || c == '_' {
                    c
                } else {
                    '_'
                }
            })
            .collect();
        format!("invoice-{stem}")
    }
}

fn row(label: impl Into<String>, amount: String) -> TotalRow {
    TotalRow {
        label: label.into(),
        amount,
        total: false,
    }
}

/// The totals chain of COMPAT §2.7, with one row per coupon and per tax when the invoice itemizes
/// them (and the items add up to the total), else one row each.
fn total_rows(invoice: &Invoice) -> Vec<TotalRow> {
    let currency = invoice.currency;
    let t = &invoice.totals;
    let amount = |minor: i64| format_amount(minor, currency);
    let minus = |minor: i64| format_amount(minor.saturating_neg(), currency);
    let mut rows = vec![row("Subtotal", amount(t.fees_amount_cents))];
    if t.progressive_billing_credit_amount_cents != 0 {
        rows.push(row(
            "Usage already invoiced (progressive billing)",
            minus(t.progressive_billing_credit_amount_cents),
        ));
    }
    let coupons: i64 = invoice.coupons.iter().map(|c| c.amount_cents).sum();
    if !invoice.coupons.is_empty() && coupons == t.coupons_amount_cents {
        rows.extend(
            invoice
                .coupons
                .iter()
                .map(|c| row(format!("Coupon {}", c.name), minus(c.amount_cents))),
        );
    } else {
        rows.push(row("Coupons", minus(t.coupons_amount_cents)));
    }
    rows.push(row(
        "Subtotal excluding taxes",
        amount(t.sub_total_excluding_taxes_amount_cents),
    ));
    let taxes: i64 = invoice.applied_taxes.iter().map(|t| t.amount_cents).sum();
    if !invoice.applied_taxes.is_empty() && taxes == t.taxes_amount_cents {
        rows.extend(invoice.applied_taxes.iter().map(|tax| {
            row(
                format!("{} ({}%)", tax.name, tax.rate.normalize()),
                amount(tax.amount_cents),
            )
        }));
    } else {
        rows.push(row("Taxes", amount(t.taxes_amount_cents)));
    }
    rows.push(row(
        "Subtotal including taxes",
        amount(t.sub_total_including_taxes_amount_cents),
    ));
    rows.push(row("Credit notes", minus(t.credit_notes_amount_cents)));
    rows.push(row("Prepaid credits", minus(t.prepaid_credit_amount_cents)));
    rows.push(TotalRow {
        label: "Total".into(),
        amount: amount(t.total_amount_cents),
        total: true,
    });
    rows
}

fn date(day: NaiveDate) -> String {
    day.format("%Y-%m-%d").to_string()
}

fn day_in(at: Timestamp, tz: Tz) -> String {
    date(at.to_datetime().with_timezone(&tz).date_naive())
}

/// Writes a period as its first and last day in the invoice's zone (`2026-03-01 – 2026-03-31`).
fn period_text(period: Period, tz: Tz) -> String {
    format!(
        "{} \u{2013} {}",
        day_in(period.from, tz),
        day_in(period.to_inclusive(), tz)
    )
}

fn present(value: &Option<String>) -> Option<&str> {
    value.as_deref().map(str::trim).filter(|v| !v.is_empty())
}

fn customer_lines(invoice: &Invoice) -> Vec<String> {
    let customer = &invoice.customer;
    let p = &customer.profile;
    let person = [present(&p.firstname), present(&p.lastname)]
        .into_iter()
        .flatten()
        .collect::<Vec<_>>()
        .join(" ");
    let name = present(&p.name)
        .or(present(&p.legal_name))
        .map(str::to_owned)
        .or_else(|| (!person.is_empty()).then_some(person))
        .unwrap_or_else(|| customer.external_id.as_str().to_owned());
    let mut lines = vec![name.clone()];
    lines.push(format!("Customer ID: {}", customer.external_id.as_str()));
    if let Some(legal) = present(&p.legal_name).filter(|l| *l != name) {
        lines.push(legal.to_owned());
    }
    if let Some(number) = present(&p.legal_number) {
        lines.push(format!("Registration number: {number}"));
    }
    if let Some(tax) = present(&p.tax_identification_number) {
        lines.push(format!("Tax ID: {tax}"));
    }
    let a = &p.address;
    lines.extend(present(&a.address_line1).map(str::to_owned));
    lines.extend(present(&a.address_line2).map(str::to_owned));
    let city = [present(&a.zipcode), present(&a.city)]
        .into_iter()
        .flatten()
        .collect::<Vec<_>>()
        .join(" ");
    if !city.is_empty() {
        lines.push(city);
    }
    let region = [present(&a.state), present(&a.country)]
        .into_iter()
        .flatten()
        .collect::<Vec<_>>()
        .join(", ");
    if !region.is_empty() {
        lines.push(region);
    }
    lines.extend(present(&p.email).map(str::to_owned));
    lines.extend(
        p.metadata
            .iter()
            .filter(|m| m.display_in_invoice)
            .map(|m| format!("{}: {}", m.key, m.value)),
    );
    lines
}

fn period_rows(invoice: &Invoice) -> Vec<(&'static str, String)> {
    let tz = invoice.timezone;
    let run = &invoice.run;
    let mut rows = Vec::new();
    if let Some(s) = &invoice.subscription {
        let name = s
            .name
            .as_deref()
            .filter(|n| !n.trim().is_empty())
            .map_or_else(String::new, |n| format!("{n} \u{b7} "));
        rows.push((
            "Subscription",
            format!(
                "{name}{} (plan {})",
                s.external_id.as_str(),
                s.plan_code.as_str()
            ),
        ));
    }
    // A one-off invoice has no billing run: it shows the span its fees cover.
    if invoice.invoice_type == "one_off"
        && let Some(span) = invoice
            .fees
            .iter()
            .map(|f| f.fee.period)
            .reduce(|a, b| Period {
                from: a.from.min(b.from),
                to: a.to.max(b.to),
            })
    {
        rows.push(("Service period", period_text(span, tz)));
    }
    if let Some(run) = run {
        rows.push((
            "Subscription period",
            period_text(run.subscription_period, tz),
        ));
        if let Some(charges) = run.charges {
            rows.push(("Usage period", period_text(charges, tz)));
        }
    }
    rows
}

fn kind_label(stored: &StoredFee) -> &'static str {
    match (stored.fee.kind, stored.pay_in_advance) {
        (FeeKind::Subscription, true) => "Subscription fee, in advance",
        (FeeKind::Subscription, false) => "Subscription fee",
        (FeeKind::Charge, true) => "Usage, in advance",
        (FeeKind::Charge, false) => "Usage",
        (FeeKind::Commitment, _) => "Minimum commitment",
        (FeeKind::Credit, _) => "Prepaid credits purchase",
        (FeeKind::AddOn, _) => "Add-on",
    }
}

/// Writes a filter's values as `key: v1, v2; key2: v3`.
fn filter_text(values: &Value) -> Option<String> {
    let map = values.as_object()?;
    let parts: Vec<String> = map
        .iter()
        .map(|(key, value)| {
            let values = match value {
                Value::Array(items) => items
                    .iter()
                    .map(|v| v.as_str().map_or_else(|| v.to_string(), str::to_owned))
                    .collect::<Vec<_>>()
                    .join(", "),
                Value::String(s) => s.clone(),
                other => other.to_string(),
            };
            format!("{key}: {values}")
        })
        .collect();
    (!parts.is_empty()).then(|| parts.join("; "))
}

fn fee_line(stored: &StoredFee, currency: Currency, tz: Tz) -> DocumentLine {
    let f = &stored.fee;
    let mut item = stored
        .invoice_display_name
        .clone()
        .filter(|n| !n.trim().is_empty())
        .unwrap_or_else(|| stored.item_name.clone());
    let filter = stored
        .filter_name
        .clone()
        .filter(|n| !n.trim().is_empty())
        .or_else(|| stored.filter_values.as_ref().and_then(filter_text));
    if let Some(filter) = filter {
        item = format!("{item} \u{b7} {filter}");
    }
    let mut detail = format!(
        "{} \u{b7} {}",
        kind_label(stored),
        period_text(f.period, tz)
    );
    if let Some(description) = present(&stored.description) {
        detail = format!("{detail} \u{b7} {description}");
    }
    DocumentLine {
        item,
        detail,
        units: format_units(f.units),
        unit_price: format_price(f.precise_unit_amount(), currency),
        amount: format_amount(f.amount_cents, currency),
    }
}

/// Groups the integer part of a plain decimal string by thousands: `1234567.5` → `1,234,567.5`.
fn group_thousands(text: &str) -> String {
    let (sign, digits) = match text.strip_prefix('-') {
        Some(rest) => ("-", rest),
        None => ("", text),
    };
    let (int, frac) = match digits.split_once('.') {
        Some((int, frac)) => (int, Some(frac)),
        None => (digits, None),
    };
    let mut grouped = String::with_capacity(text.len() + int.len() / 3);
    for (i, c) in int.chars().enumerate() {
        if i > 0 && (int.len() - i).is_multiple_of(3) {
            grouped.push(',');
        }
        grouped.push(c);
    }
    match frac {
        Some(frac) => format!("{sign}{grouped}.{frac}"),
        None => format!("{sign}{grouped}"),
    }
}

/// Writes an amount in minor units with exactly the currency's decimals and thousands separators:
/// `4475` USD → `44.75`, `1234` JPY → `1,234`, `1005` KWD → `1.005`.
pub fn format_amount(minor: i64, currency: Currency) -> String {
    group_thousands(&from_minor(minor, currency).to_string())
}

/// Writes a unit price with at least the currency's decimals and at most six (or the currency's, when
/// it has more): `0.05` USD → `0.05`, `31` USD → `31.00`, `0.0001234` USD → `0.000123`.
pub fn format_price(price: Decimal, currency: Currency) -> String {
    let exponent = currency.exponent();
    let mut rounded = price.round_dp(exponent.max(PRICE_DECIMALS)).normalize();
    if rounded.scale() < exponent {
        rounded.rescale(exponent);
    }
    group_thousands(&rounded.to_string())
}

/// Writes a unit count with at most four decimals: `250`, `10.5`, `0.7097`.
pub fn format_units(units: Decimal) -> String {
    group_thousands(&units.round_dp(UNIT_DECIMALS).normalize().to_string())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn currency(code: &str) -> Currency {
        Currency::parse(code).expect("currency")
    }

    #[test]
    fn amounts_carry_the_currencys_decimals() {
        assert_eq!(format_amount(4475, currency("USD")), "44.75");
        assert_eq!(format_amount(500, currency("USD")), "5.00");
        assert_eq!(format_amount(0, currency("USD")), "0.00");
        assert_eq!(format_amount(-200, currency("USD")), "-2.00");
        assert_eq!(format_amount(123_456_789, currency("USD")), "1,234,567.89");
        assert_eq!(format_amount(1234, currency("JPY")), "1,234");
        assert_eq!(format_amount(1005, currency("KWD")), "1.005");
        assert_eq!(format_amount(-1_000_000, currency("JPY")), "-1,000,000");
    }

    #[test]
    fn prices_and_units_stay_readable() {
        let usd = currency("USD");
        let dec = |s: &str| s.parse::<Decimal>().expect("decimal");
        assert_eq!(format_price(dec("0.05"), usd), "0.05");
        assert_eq!(format_price(dec("31"), usd), "31.00");
        assert_eq!(format_price(dec("0.0001234"), usd), "0.000123");
        assert_eq!(format_price(dec("1500"), currency("JPY")), "1,500");
        assert_eq!(format_price(dec("0.5"), currency("KWD")), "0.500");
        assert_eq!(format_units(dec("250")), "250");
        assert_eq!(format_units(dec("10.50")), "10.5");
        assert_eq!(format_units(dec("0.70967741935")), "0.7097");
        assert_eq!(format_units(dec("1234567")), "1,234,567");
    }

    #[test]
    fn filters_read_as_key_and_values() {
        let values = serde_json::json!({"region": ["eu", "us"], "tier": "gold"});
        assert_eq!(
            filter_text(&values).as_deref(),
            Some("region: eu, us; tier: gold")
        );
        assert_eq!(filter_text(&serde_json::json!({})), None);
    }
}

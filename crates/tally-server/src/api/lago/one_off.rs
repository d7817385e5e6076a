//! Reading a Lago one-off invoice request (`POST /invoices`): `{"invoice": {external_customer_id,
//! currency, fees: [{add_on_code, units, unit_amount_cents, description, invoice_display_name,
//! tax_codes, from_datetime, to_datetime}]}}`. Errors in a fee are named `fees.<index>.<field>`.

use rust_decimal::Decimal;
use serde_json::Value;
use tally_core::currency::Currency;
use tally_core::error::Reason;
use tally_core::id::ExternalId;
use tally_core::time::Timestamp;
use tally_store::{NewOneOffInvoice, OneOffFee};

use super::taxes::tax_codes;
use crate::api::fields::{Field, Fields};

/// Reads the request under the `invoice` root key, reporting every refused field at once.
pub fn read_request(fields: &mut Fields<'_>) -> Option<NewOneOffInvoice> {
    let customer = fields
        .required_string("external_customer_id")
        .and_then(|c| {
            fields
                .errors
                .take(ExternalId::parse("external_customer_id", &c))
        });
    let currency = match fields.string("currency") {
        Field::Value(code) => match Currency::parse(&code) {
            Some(currency) => Some(currency),
            None => {
                fields.fail("currency", Reason::ValueIsInvalid);
                None
            }
        },
        Field::Null | Field::Absent => None,
    };
    let sent = fields.raw("fees").is_some();
    let mut fees = Vec::new();
    let mut complete = true;
    match fields.array("fees") {
        Field::Value(items) if !items.is_empty() => {
            for (index, item) in items.iter().enumerate() {
                match read_fee(fields, index, item) {
                    Some(fee) => fees.push(fee),
                    None => complete = false,
                }
            }
        }
        // Not an array: already refused as `invalid_format`.
        Field::Absent if sent => complete = false,
        _ => {
            fields.fail("fees", Reason::ValueIsMandatory);
            complete = false;
        }
    }
    match (customer, complete) {
        (Some(external_customer_id), true) => Some(NewOneOffInvoice {
            external_customer_id,
            currency,
            fees,
        }),
        _ => None,
    }
}

/// Reads one fee; `None` when it has errors (recorded in `fields`).
fn read_fee(fields: &mut Fields<'_>, index: usize, item: &Value) -> Option<OneOffFee> {
    let prefix = format!("fees.{index}");
    let Some(object) = item.as_object() else {
        fields.errors.push(prefix, Reason::InvalidFormat);
        return None;
    };
    let mut fee = Fields::nested(object, &prefix);
    let add_on_code = fee.required_string("add_on_code");
    let units = fee.decimal("units").value();
    if units.is_some_and(|u| u < Decimal::ZERO) {
        fee.fail("units", Reason::ValueIsOutOfRange);
    }
    let unit_amount_cents = fee.integer("unit_amount_cents").value();
    if unit_amount_cents.is_some_and(|c| c < 0) {
        fee.fail("unit_amount_cents", Reason::ValueIsOutOfRange);
    }
    let description = fee.string("description").value();
    let invoice_display_name = fee.string("invoice_display_name").value();
    let tax_codes = tax_codes(&mut fee);
    let period = read_period(&mut fee);
    let ok = fee.errors.is_empty();
    fields.absorb(fee);
    ok.then_some(OneOffFee {
        add_on_code: add_on_code?,
        units,
        unit_amount_cents,
        description,
        invoice_display_name,
        tax_codes,
        period: period?,
    })
}

/// Reads `from_datetime` and `to_datetime` (ISO 8601): both or neither, the first not after the
/// second. `Some(None)` when neither is sent.
fn read_period(fee: &mut Fields<'_>) -> Option<Option<(Timestamp, Timestamp)>> {
    let from = instant(fee, "from_datetime");
    let to = instant(fee, "to_datetime");
    match (from?, to?) {
        (None, None) => Some(None),
        (Some(from), Some(to)) if from <= to => Some(Some((from, to))),
        (Some(_), Some(_)) => {
            fee.fail("to_datetime", Reason::InvalidDate);
            None
        }
        (Some(_), None) => {
            fee.fail("to_datetime", Reason::ValueIsMandatory);
            None
        }
        (None, Some(_)) => {
            fee.fail("from_datetime", Reason::ValueIsMandatory);
            None
        }
    }
}

/// Reads one optional instant; `None` when it is refused (recorded in `fee`).
fn instant(fee: &mut Fields<'_>, field: &str) -> Option<Option<Timestamp>> {
    match fee.string(field) {
        Field::Value(text) => match Timestamp::parse_rfc3339(&text) {
            Some(at) => Some(Some(at)),
            None => {
                fee.fail(field, Reason::InvalidDate);
                None
            }
        },
        Field::Null => Some(None),
        // Absent, or refused as `invalid_format` when not a string.
        Field::Absent => fee.raw(field).is_none().then_some(None),
    }
}

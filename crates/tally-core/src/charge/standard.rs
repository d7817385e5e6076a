//! The `standard` model: every unit at one price.

use rust_decimal::Decimal;
use serde_json::{Map, Value, json};

use super::properties::{field, price_json, required_price};
use super::{ChargeModel, Priced};
use crate::error::{Reason, ValidationErrors};

/// Reads `{"amount": "0.05"}`; `amount` must be a decimal ≥ 0.
pub(super) fn from_properties(map: &Map<String, Value>) -> Result<ChargeModel, ValidationErrors> {
    let mut errors = ValidationErrors::new();
    let amount = required_price(
        map,
        "amount",
        &field("amount"),
        Reason::InvalidAmount,
        &mut errors,
    );
    errors.into_result(ChargeModel::Standard { amount })
}

/// Writes `{"amount": "…"}`.
pub(super) fn to_properties(amount: Decimal) -> Value {
    json!({ "amount": price_json(amount) })
}

/// Prices `units × amount`; Lago sends no details for this model.
pub(super) fn price(amount: Decimal, units: Decimal) -> Priced {
    Priced {
        amount: units.saturating_mul(amount),
        units,
        details: json!({}),
    }
}

//! The `graduated_percentage` model: each tier applies its rate to the value that falls in it, plus
//! its flat amount once reached.

use rust_decimal::Decimal;
use serde_json::{Map, Value, json};

use super::percentage::percent_of;
use super::properties::{number_json, optional_number_json, price_json, required_price};
use super::ranges::{RangeKeys, read_ranges, units_per_tier};
use super::{ChargeModel, PercentageTier, Priced};
use crate::error::{Reason, ValidationErrors};
use crate::money::dec_string;

const KEYS: RangeKeys = RangeKeys {
    key: "graduated_percentage_ranges",
    missing: Reason::MissingGraduatedPercentageRanges,
    invalid: Reason::InvalidGraduatedPercentageRanges,
};

/// Reads `{"graduated_percentage_ranges": [{from_value, to_value, rate, flat_amount}, …]}`: bounds as
/// graduated ranges, `rate` ≥ 0 (`invalid_rate`), `flat_amount` ≥ 0 (`invalid_amount`).
pub(super) fn from_properties(map: &Map<String, Value>) -> Result<ChargeModel, ValidationErrors> {
    let mut errors = ValidationErrors::new();
    let ranges = read_ranges(
        map,
        &KEYS,
        &mut errors,
        |from_value, to_value, range, prefix, errors| PercentageTier {
            from_value,
            to_value,
            rate: required_price(
                range,
                "rate",
                &format!("{prefix}.rate"),
                Reason::InvalidRate,
                errors,
            ),
            flat_amount: required_price(
                range,
                "flat_amount",
                &format!("{prefix}.flat_amount"),
                Reason::InvalidAmount,
                errors,
            ),
        },
    );
    errors.into_result(ChargeModel::GraduatedPercentage { ranges })
}

/// Writes `{"graduated_percentage_ranges": […]}`.
pub(super) fn to_properties(ranges: &[PercentageTier]) -> Value {
    let list: Vec<Value> = ranges
        .iter()
        .map(|tier| {
            json!({
                "from_value": number_json(tier.from_value),
                "to_value": optional_number_json(tier.to_value),
                "rate": price_json(tier.rate),
                "flat_amount": price_json(tier.flat_amount),
            })
        })
        .collect();
    json!({ "graduated_percentage_ranges": list })
}

/// Prices each reached tier's units × its rate / 100, plus its flat amount; the first tier's flat
/// amount is billed at zero usage, as in graduated.
pub(super) fn price(ranges: &[PercentageTier], units: Decimal) -> Priced {
    let mut amount = Decimal::ZERO;
    let mut details = Vec::new();
    for (tier, tier_units) in ranges.iter().zip(units_per_tier(ranges, units)) {
        let per_unit_total = percent_of(tier_units, tier.rate);
        let total = per_unit_total.saturating_add(tier.flat_amount);
        amount = amount.saturating_add(total);
        details.push(json!({
            "from_value": number_json(tier.from_value),
            "to_value": optional_number_json(tier.to_value),
            "units": dec_string(tier_units),
            "rate": dec_string(tier.rate),
            "per_unit_total_amount": dec_string(per_unit_total),
            "flat_unit_amount": dec_string(tier.flat_amount),
            "total_with_flat_amount": dec_string(total),
        }));
    }
    Priced {
        amount,
        units,
        details: json!({ "graduated_percentage_ranges": details }),
    }
}

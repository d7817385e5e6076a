//! The `graduated` model: each tier prices the units that fall in it, plus its flat amount once
//! reached.

use rust_decimal::Decimal;
use serde_json::{Map, Value, json};

use super::properties::{number_json, optional_number_json};
use super::ranges::{RangeKeys, read_tiers, units_per_tier};
use super::{ChargeModel, Priced, Tier};
use crate::error::{Reason, ValidationErrors};
use crate::money::dec_string;

const KEYS: RangeKeys = RangeKeys {
    key: "graduated_ranges",
    missing: Reason::MissingGraduatedRanges,
    invalid: Reason::InvalidGraduatedRanges,
};

/// Reads `{"graduated_ranges": [{from_value, to_value, per_unit_amount, flat_amount}, …]}`.
pub(super) fn from_properties(map: &Map<String, Value>) -> Result<ChargeModel, ValidationErrors> {
    let mut errors = ValidationErrors::new();
    let ranges = read_tiers(map, &KEYS, &mut errors);
    errors.into_result(ChargeModel::Graduated { ranges })
}

/// Prices each reached tier's units × its price, plus its flat amount. The first tier is always
/// reached, so its flat amount is billed at zero usage (as Lago does).
pub(super) fn price(ranges: &[Tier], units: Decimal) -> Priced {
    let mut amount = Decimal::ZERO;
    let mut details = Vec::new();
    for (tier, tier_units) in ranges.iter().zip(units_per_tier(ranges, units)) {
        let per_unit_total = tier_units.saturating_mul(tier.per_unit_amount);
        let total = per_unit_total.saturating_add(tier.flat_amount);
        amount = amount.saturating_add(total);
        details.push(json!({
            "from_value": number_json(tier.from_value),
            "to_value": optional_number_json(tier.to_value),
            "units": dec_string(tier_units),
            "per_unit_amount": dec_string(tier.per_unit_amount),
            "per_unit_total_amount": dec_string(per_unit_total),
            "flat_unit_amount": dec_string(tier.flat_amount),
            "total_with_flat_amount": dec_string(total),
        }));
    }
    Priced {
        amount,
        units,
        details: json!({ "graduated_ranges": details }),
    }
}

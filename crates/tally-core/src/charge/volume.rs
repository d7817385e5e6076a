//! The `volume` model: the tier the total falls in prices every unit, plus its flat amount.

use rust_decimal::Decimal;
use serde_json::{Map, Value, json};

use super::ranges::{RangeKeys, read_tiers, units_per_tier};
use super::{ChargeModel, Priced, Tier};
use crate::error::{Reason, ValidationErrors};
use crate::money::dec_string;

const KEYS: RangeKeys = RangeKeys {
    key: "volume_ranges",
    missing: Reason::MissingVolumeRanges,
    invalid: Reason::InvalidVolumeRanges,
};

/// Reads `{"volume_ranges": [{from_value, to_value, per_unit_amount, flat_amount}, …]}`, with the
/// bounds rules of graduated ranges.
pub(super) fn from_properties(map: &Map<String, Value>) -> Result<ChargeModel, ValidationErrors> {
    let mut errors = ValidationErrors::new();
    let ranges = read_tiers(map, &KEYS, &mut errors);
    errors.into_result(ChargeModel::Volume { ranges })
}

/// Returns the index of the tier holding `units`: the last tier reached. Zero units fall in the first
/// tier, so its flat amount is billed at zero usage (as Lago does).
pub(super) fn tier_index(ranges: &[Tier], units: Decimal) -> Option<usize> {
    units_per_tier(ranges, units).len().checked_sub(1)
}

/// Prices every unit at the price of the tier holding the total, plus that tier's flat amount.
pub(super) fn price(ranges: &[Tier], units: Decimal) -> Priced {
    let Some(tier) = tier_index(ranges, units).and_then(|index| ranges.get(index)) else {
        return Priced {
            amount: Decimal::ZERO,
            units,
            details: json!({}),
        };
    };
    let per_unit_total = units.saturating_mul(tier.per_unit_amount);
    Priced {
        amount: per_unit_total.saturating_add(tier.flat_amount),
        units,
        details: json!({
            "flat_unit_amount": dec_string(tier.flat_amount),
            "per_unit_amount": dec_string(tier.per_unit_amount),
            "per_unit_total_amount": dec_string(per_unit_total),
        }),
    }
}

//! Tier bounds shared by the graduated, volume and graduated percentage models: Lago's validation of
//! `from_value`/`to_value`, and which units fall in which tier.
//!
//! Lago lets each tier start either at the previous tier's `to_value` (adjacent bounds, `[0,10],
//! [10,20]`) or one above it (integer bounds, `[0,10],[11,20]`). tally reads both the same way: a tier
//! holds the units above the previous tier's `to_value` up to and including its own, so 10 units stay
//! in the first tier and 10.5 units put 0.5 in the second, whichever way the bounds are written.

use rust_decimal::Decimal;
use serde_json::{Map, Value, json};

use super::PercentageTier;
use super::Tier;
use super::properties::{
    bound, field, number_json, optional_number_json, price_json, required_price,
};
use crate::error::{Reason, ValidationErrors};

/// A tier's bounds as the client wrote them.
pub(crate) trait Bounds {
    /// The tier's `from_value`.
    fn start(&self) -> Decimal;
    /// The tier's `to_value`; `None` for the open last tier.
    fn end(&self) -> Option<Decimal>;
}

impl Bounds for Tier {
    fn start(&self) -> Decimal {
        self.from_value
    }
    fn end(&self) -> Option<Decimal> {
        self.to_value
    }
}

impl Bounds for PercentageTier {
    fn start(&self) -> Decimal {
        self.from_value
    }
    fn end(&self) -> Option<Decimal> {
        self.to_value
    }
}

/// Returns the one open tier of Lago's default properties, priced 0.
pub(crate) fn open_tier() -> Tier {
    Tier {
        from_value: Decimal::ZERO,
        to_value: None,
        per_unit_amount: Decimal::ZERO,
        flat_amount: Decimal::ZERO,
    }
}

/// Tells whether bounds follow Lago's rules: the first tier starts at 0 (or 1, in the integer
/// convention), each next `from_value` equals the previous `to_value` or `to_value + 1`, every tier
/// but the last has `to_value > from_value`, and only the last is open.
pub(crate) fn valid_bounds<T: Bounds>(tiers: &[T]) -> bool {
    let mut next = Decimal::ZERO;
    for (index, tier) in tiers.iter().enumerate() {
        let from = tier.start();
        if from != next && from != next + Decimal::ONE {
            return false;
        }
        let last = index + 1 == tiers.len();
        match (tier.end(), last) {
            (None, true) => {}
            (Some(to), false) if to > from => next = to,
            _ => return false,
        }
    }
    !tiers.is_empty()
}

/// Returns the units each reached tier holds, in tier order, for `units ≥ 0`: the first tier is
/// always reached (with 0 units at zero usage); a later tier is reached when the units exceed the
/// previous tier's `to_value`.
pub(crate) fn units_per_tier<T: Bounds>(tiers: &[T], units: Decimal) -> Vec<Decimal> {
    let mut reached = Vec::new();
    let mut floor = Decimal::ZERO;
    for (index, tier) in tiers.iter().enumerate() {
        if index > 0 && units <= floor {
            break;
        }
        let top = match tier.end() {
            Some(to) if units > to => to,
            _ => units,
        };
        reached.push((top - floor).max(Decimal::ZERO));
        match tier.end() {
            Some(to) => floor = to,
            None => break,
        }
    }
    reached
}

/// What a ranged model reads from each range besides its bounds: two prices and their errors.
pub(crate) struct RangeKeys {
    /// The properties key (`graduated_ranges`).
    pub key: &'static str,
    /// The reason when the list is absent or empty.
    pub missing: Reason,
    /// The reason when the bounds break the rules.
    pub invalid: Reason,
}

/// Reads a list of ranges from `properties`: bounds are checked as a whole (one `invalid` reason on
/// `properties.<key>`), prices by `read_prices` on `properties.<key>.<index>.<price key>`.
pub(crate) fn read_ranges<T: Bounds>(
    map: &Map<String, Value>,
    keys: &RangeKeys,
    errors: &mut ValidationErrors,
    mut build: impl FnMut(
        Decimal,
        Option<Decimal>,
        &Map<String, Value>,
        &str,
        &mut ValidationErrors,
    ) -> T,
) -> Vec<T> {
    let items = match map.get(keys.key) {
        None | Some(Value::Null) => {
            errors.push(field(keys.key), keys.missing);
            return Vec::new();
        }
        Some(Value::Array(items)) if items.is_empty() => {
            errors.push(field(keys.key), keys.missing);
            return Vec::new();
        }
        Some(Value::Array(items)) => items,
        Some(_) => {
            errors.push(field(keys.key), keys.invalid);
            return Vec::new();
        }
    };
    let mut tiers = Vec::with_capacity(items.len());
    let mut bounds_ok = true;
    for (index, item) in items.iter().enumerate() {
        let Some(object) = item.as_object() else {
            bounds_ok = false;
            continue;
        };
        let from = object.get("from_value").and_then(bound);
        let to = match object.get("to_value") {
            None | Some(Value::Null) => None,
            Some(value) => {
                let to = bound(value);
                bounds_ok &= to.is_some();
                to
            }
        };
        bounds_ok &= from.is_some();
        let prefix = format!("{}.{index}", field(keys.key));
        tiers.push(build(from.unwrap_or_default(), to, object, &prefix, errors));
    }
    if !bounds_ok || !valid_bounds(&tiers) {
        errors.push(field(keys.key), keys.invalid);
    }
    tiers
}

/// Reads graduated or volume tiers: bounds as in [`read_ranges`], `per_unit_amount` and
/// `flat_amount` as required prices ≥ 0 (`invalid_amount` on `properties.<key>.<index>.<price key>`).
pub(crate) fn read_tiers(
    map: &Map<String, Value>,
    keys: &RangeKeys,
    errors: &mut ValidationErrors,
) -> Vec<Tier> {
    read_ranges(
        map,
        keys,
        errors,
        |from_value, to_value, range, prefix, errors| {
            let mut price = |key: &str| {
                required_price(
                    range,
                    key,
                    &format!("{prefix}.{key}"),
                    Reason::InvalidAmount,
                    errors,
                )
            };
            Tier {
                from_value,
                to_value,
                per_unit_amount: price("per_unit_amount"),
                flat_amount: price("flat_amount"),
            }
        },
    )
}

/// Writes graduated or volume tiers as Lago's `properties`.
pub(crate) fn tiers_to_properties(key: &str, tiers: &[Tier]) -> Value {
    let list: Vec<Value> = tiers
        .iter()
        .map(|tier| {
            json!({
                "from_value": number_json(tier.from_value),
                "to_value": optional_number_json(tier.to_value),
                "per_unit_amount": price_json(tier.per_unit_amount),
                "flat_amount": price_json(tier.flat_amount),
            })
        })
        .collect();
    let mut map = Map::new();
    map.insert(key.to_owned(), Value::Array(list));
    Value::Object(map)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn tier(from: i64, to: Option<i64>) -> Tier {
        Tier {
            from_value: Decimal::from(from),
            to_value: to.map(Decimal::from),
            ..open_tier()
        }
    }

    #[test]
    fn bounds_follow_lago_rules() {
        assert!(valid_bounds(&[tier(0, None)]));
        assert!(valid_bounds(&[
            tier(0, Some(10)),
            tier(10, Some(20)),
            tier(21, None)
        ]));
        assert!(valid_bounds(&[tier(1, Some(10)), tier(11, None)]));
        assert!(!valid_bounds::<Tier>(&[]));
        assert!(!valid_bounds(&[tier(2, None)]));
        assert!(!valid_bounds(&[tier(0, Some(10))]));
        assert!(!valid_bounds(&[tier(0, None), tier(0, None)]));
        assert!(!valid_bounds(&[tier(0, Some(10)), tier(12, None)]));
        assert!(!valid_bounds(&[tier(0, Some(10)), tier(9, None)]));
        assert!(!valid_bounds(&[
            tier(0, Some(10)),
            tier(11, Some(11)),
            tier(12, None)
        ]));
    }

    #[test]
    fn units_split_at_inclusive_upper_bounds() {
        let integer = [tier(0, Some(10)), tier(11, Some(20)), tier(21, None)];
        let adjacent = [tier(0, Some(10)), tier(10, Some(20)), tier(20, None)];
        let d = |s: &str| s.parse::<Decimal>().expect("decimal");
        for tiers in [&integer, &adjacent] {
            assert_eq!(units_per_tier(tiers, d("0")), vec![d("0")]);
            assert_eq!(units_per_tier(tiers, d("10")), vec![d("10")]);
            assert_eq!(units_per_tier(tiers, d("10.5")), vec![d("10"), d("0.5")]);
            assert_eq!(units_per_tier(tiers, d("20")), vec![d("10"), d("10")]);
            assert_eq!(
                units_per_tier(tiers, d("25")),
                vec![d("10"), d("10"), d("5")]
            );
        }
    }
}

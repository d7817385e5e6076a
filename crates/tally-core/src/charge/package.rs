//! The `package` model: a price per started package of units, after some free units.

use rust_decimal::Decimal;
use serde_json::{Map, Value, json};

use super::properties::{field, present, price_json, required_price, whole};
use super::{ChargeModel, Priced};
use crate::error::{Reason, ValidationErrors};
use crate::money::dec_string;

/// Reads `{"amount": "5", "package_size": 100, "free_units": 0}`: a price ≥ 0, a size > 0 and free
/// units ≥ 0, all three required as in Lago.
pub(super) fn from_properties(map: &Map<String, Value>) -> Result<ChargeModel, ValidationErrors> {
    let mut errors = ValidationErrors::new();
    let amount = required_price(
        map,
        "amount",
        &field("amount"),
        Reason::InvalidAmount,
        &mut errors,
    );
    let package_size = present(map, "package_size")
        .and_then(whole)
        .filter(|size| *size > 0);
    if package_size.is_none() {
        errors.push(field("package_size"), Reason::InvalidPackageSize);
    }
    let free_units = present(map, "free_units").and_then(whole);
    if free_units.is_none() {
        errors.push(field("free_units"), Reason::InvalidFreeUnits);
    }
    errors.into_result(ChargeModel::Package {
        amount,
        package_size: package_size.unwrap_or(1),
        free_units: free_units.unwrap_or(0),
    })
}

/// Writes `{"amount": "…", "package_size": n, "free_units": n}`.
pub(super) fn to_properties(amount: Decimal, package_size: u64, free_units: u64) -> Value {
    json!({
        "amount": price_json(amount),
        "package_size": package_size,
        "free_units": free_units,
    })
}

/// Returns how many packages `paid` units start: a package counts from its first unit.
pub(super) fn packages(paid: Decimal, package_size: u64) -> Decimal {
    if paid <= Decimal::ZERO {
        return Decimal::ZERO;
    }
    let size = Decimal::from(package_size.max(1));
    let remainder = paid.checked_rem(size).unwrap_or_default();
    let full = (paid - remainder) / size;
    if remainder.is_zero() {
        full
    } else {
        full + Decimal::ONE
    }
}

/// Prices `ceil(max(units − free, 0) / size) × amount`.
pub(super) fn price(amount: Decimal, package_size: u64, free_units: u64, units: Decimal) -> Priced {
    let free = units.min(Decimal::from(free_units));
    let paid = units - free;
    Priced {
        amount: packages(paid, package_size).saturating_mul(amount),
        units,
        details: json!({
            "free_units": dec_string(free),
            "paid_units": dec_string(paid),
            "per_package_size": package_size,
            "per_package_unit_amount": dec_string(amount),
        }),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_started_package_is_billed_whole() {
        let d = |s: &str| s.parse::<Decimal>().expect("decimal");
        assert_eq!(packages(d("0"), 10), d("0"));
        assert_eq!(packages(d("10"), 10), d("1"));
        assert_eq!(packages(d("10.0001"), 10), d("2"));
        assert_eq!(packages(d("0.5"), 10), d("1"));
        assert_eq!(packages(d("10.00000000000000001"), 10), d("2"));
    }
}

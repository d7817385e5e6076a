//! Reading and writing the values inside Lago charge `properties`: prices (dec-strings), integers
//! (sizes, counts) and range bounds, with errors named `properties.<key>`.

use std::str::FromStr;

use rust_decimal::Decimal;
use rust_decimal::prelude::ToPrimitive;
use serde_json::{Map, Number, Value};

use crate::error::{Reason, ValidationErrors};
use crate::money::{dec_string, parse_amount};
use crate::quantity::parse_decimal;

/// Returns the field name reported for a key: `properties.<key>`.
pub(crate) fn field(key: &str) -> String {
    format!("properties.{key}")
}

/// Looks a key up, treating `null` and blank strings as absent (Lago's `present?`).
pub(crate) fn present<'a>(map: &'a Map<String, Value>, key: &str) -> Option<&'a Value> {
    map.get(key).filter(|value| match value {
        Value::Null => false,
        Value::String(text) => !text.trim().is_empty(),
        _ => true,
    })
}

/// Reads a non-negative price or rate: a dec-string or a JSON number.
pub(crate) fn non_negative(value: &Value) -> Option<Decimal> {
    match parse_amount(value)? {
        zero if zero.is_zero() => Some(Decimal::ZERO),
        negative if negative.is_sign_negative() => None,
        positive => Some(positive),
    }
}

/// Reads a required non-negative price at `key`; records `reason` on `field` when it is absent or
/// not a decimal ≥ 0.
pub(crate) fn required_price(
    map: &Map<String, Value>,
    key: &str,
    field_name: &str,
    reason: Reason,
    errors: &mut ValidationErrors,
) -> Decimal {
    match present(map, key).and_then(non_negative) {
        Some(value) => value,
        None => {
            errors.push(field_name, reason);
            Decimal::ZERO
        }
    }
}

/// Reads an optional non-negative price at `key`; records `reason` when it is present but invalid.
pub(crate) fn optional_price(
    map: &Map<String, Value>,
    key: &str,
    reason: Reason,
    errors: &mut ValidationErrors,
) -> Option<Decimal> {
    let value = present(map, key)?;
    let parsed = non_negative(value);
    if parsed.is_none() {
        errors.push(field(key), reason);
    }
    parsed
}

/// Reads a whole number ≥ 0 that fits a `u64`: a JSON integer, or (more leniently than Lago) a
/// whole JSON number or numeric string.
pub(crate) fn whole(value: &Value) -> Option<u64> {
    if let Some(n) = value.as_u64() {
        return Some(n);
    }
    let parsed = parse_decimal(value).ok()?;
    if !parsed.fract().is_zero() {
        return None;
    }
    parsed.to_u64()
}

/// Reads a range bound: a number ≥ 0 (JSON number or numeric string).
pub(crate) fn bound(value: &Value) -> Option<Decimal> {
    non_negative(value)
}

/// Writes a price as a dec-string.
pub(crate) fn price_json(value: Decimal) -> Value {
    Value::String(dec_string(value))
}

/// Writes a bound or count as a JSON number: an integer when whole, else its exact decimal text.
pub(crate) fn number_json(value: Decimal) -> Value {
    let value = value.normalize();
    if value.fract().is_zero()
        && let Some(n) = value.to_i64()
    {
        return Value::from(n);
    }
    Number::from_str(&value.to_string())
        .map(Value::Number)
        .unwrap_or_else(|_| price_json(value))
}

/// Writes an optional bound as a JSON number or `null`.
pub(crate) fn optional_number_json(value: Option<Decimal>) -> Value {
    value.map_or(Value::Null, number_json)
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn reads_lenient_integers_and_writes_numbers() {
        assert_eq!(whole(&json!(10)), Some(10));
        assert_eq!(whole(&json!("10")), Some(10));
        assert_eq!(
            whole(&serde_json::from_str("10.0").expect("json")),
            Some(10)
        );
        assert_eq!(whole(&json!("10.5")), None);
        assert_eq!(whole(&json!(-1)), None);
        assert_eq!(whole(&json!(true)), None);
        assert_eq!(number_json(Decimal::new(1000, 1)), json!(100));
        let fraction = number_json(Decimal::new(5, 1));
        assert_eq!(fraction.to_string(), "0.5");
        assert!(fraction.is_number());
        assert_eq!(non_negative(&json!("-0")), Some(Decimal::ZERO));
        assert_eq!(non_negative(&json!("-0.01")), None);
    }
}

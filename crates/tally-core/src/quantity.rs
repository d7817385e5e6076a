//! Exact numbers read from event properties and request fields.
//!
//! JSON numbers reach tally as their original text (serde_json's `arbitrary_precision`), so `0.1` is
//! exactly one tenth: no value that feeds usage or money ever passes through a binary float.

use std::str::FromStr;

use rust_decimal::Decimal;
use serde_json::Value;

/// The largest magnitude accepted for a metered value: 10^15. Sums of a billion such values still fit
/// in a [`Decimal`] with room for time weighting.
pub fn max_value() -> Decimal {
    Decimal::from(1_000_000_000_000_000_i64)
}

/// Why a property could not be read as a number.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum NumberError {
    /// The value is not a number or a numeric string.
    NotANumber,
    /// The number's magnitude exceeds [`max_value`].
    OutOfRange,
}

/// Reads a JSON number or numeric string as an exact decimal, normalized (no trailing zeros).
pub fn parse_decimal(value: &Value) -> Result<Decimal, NumberError> {
    let parsed = match value {
        Value::Number(number) => parse_text(&number.to_string()),
        Value::String(text) => parse_text(text.trim()),
        _ => None,
    }
    .ok_or(NumberError::NotANumber)?;
    if parsed.abs() > max_value() {
        return Err(NumberError::OutOfRange);
    }
    Ok(parsed.normalize())
}

fn parse_text(text: &str) -> Option<Decimal> {
    if text.is_empty() {
        return None;
    }
    Decimal::from_str(text)
        .or_else(|_| Decimal::from_scientific(text))
        .ok()
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn parse(text: &str) -> Result<Decimal, NumberError> {
        parse_decimal(&serde_json::from_str(text).expect("valid json"))
    }

    #[test]
    fn reads_numbers_exactly() {
        assert_eq!(parse("0.1"), Ok(Decimal::new(1, 1)));
        assert_eq!(parse("\"12.50\""), Ok(Decimal::new(125, 1)));
        assert_eq!(parse("1e3"), Ok(Decimal::from(1000)));
        assert_eq!(parse("-4"), Ok(Decimal::from(-4)));
        assert_eq!(
            parse("123456789.123456789"),
            Ok(Decimal::from_str("123456789.123456789").expect("decimal"))
        );
    }

    #[test]
    fn refuses_non_numbers() {
        assert_eq!(parse_decimal(&json!("abc")), Err(NumberError::NotANumber));
        assert_eq!(parse_decimal(&json!("")), Err(NumberError::NotANumber));
        assert_eq!(parse_decimal(&json!(null)), Err(NumberError::NotANumber));
        assert_eq!(parse_decimal(&json!([1])), Err(NumberError::NotANumber));
        assert_eq!(parse("1e16"), Err(NumberError::OutOfRange));
    }
}

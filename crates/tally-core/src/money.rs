//! Exact money: amounts in integer minor units, prices in exact decimals, and the one rounding step
//! that turns a priced fee into minor units.
//!
//! Prices (charge `properties`, unit amounts) are [`Decimal`]s in major units, as Lago's dec-strings are
//! (`"0.05"` is five cents). Priced amounts stay exact until a fee is made; the fee is then rounded once,
//! to the currency's minor unit, by [`round_fee`]. Invoice totals add rounded fees and are never rounded
//! themselves. The rules, with examples, are in `docs/billing.md` ("Money and rounding").

use std::fmt;

use rust_decimal::prelude::ToPrimitive;
use rust_decimal::{Decimal, RoundingStrategy};
use serde_json::Value;

use crate::currency::Currency;
use crate::quantity::parse_decimal;

/// An amount of money: an integer count of the currency's minor unit (cents for USD, yen for JPY, fils
/// for KWD), as Lago's `_cents` fields carry it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct Money {
    /// The amount in minor units (`amount_cents`).
    pub minor: i64,
    /// The currency the minor units belong to.
    pub currency: Currency,
}

impl Money {
    /// Returns nothing of the currency.
    pub fn zero(currency: Currency) -> Self {
        Money { minor: 0, currency }
    }

    /// Builds an amount from minor units.
    pub fn from_minor(minor: i64, currency: Currency) -> Self {
        Money { minor, currency }
    }

    /// Adds two amounts of the same currency; `None` when the currencies differ or the sum overflows.
    pub fn checked_add(self, other: Money) -> Option<Money> {
        if self.currency != other.currency {
            return None;
        }
        Some(Money {
            minor: self.minor.checked_add(other.minor)?,
            currency: self.currency,
        })
    }

    /// Subtracts an amount of the same currency; `None` when the currencies differ or on overflow.
    pub fn checked_sub(self, other: Money) -> Option<Money> {
        if self.currency != other.currency {
            return None;
        }
        Some(Money {
            minor: self.minor.checked_sub(other.minor)?,
            currency: self.currency,
        })
    }

    /// Returns the amount in major units, exactly (`1234` USD cents → `12.34`).
    pub fn to_major(self) -> Decimal {
        from_minor(self.minor, self.currency)
    }
}

impl fmt::Display for Money {
    /// Writes the amount in major units with every minor digit, then the code: `12.34 USD`,
    /// `1234 JPY`, `1.005 KWD`.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} {}", self.to_major(), self.currency)
    }
}

/// How a fee's exact amount is rounded to minor units when it is the midpoint between two of them.
/// Amounts that are not midpoints round to the nearest minor unit either way.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
pub enum RoundingMode {
    /// Ties go to the even neighbour (banker's rounding): 0.125 USD → 0.12, 0.135 USD → 0.14. Over many
    /// fees the ties cancel instead of all leaning one way; tally's default.
    #[default]
    HalfEven,
    /// Ties go away from zero: 0.125 USD → 0.13, −0.125 → −0.13. This is what Lago does.
    HalfUp,
}

impl RoundingMode {
    /// Returns the matching `rust_decimal` strategy.
    pub fn strategy(self) -> RoundingStrategy {
        match self {
            RoundingMode::HalfEven => RoundingStrategy::MidpointNearestEven,
            RoundingMode::HalfUp => RoundingStrategy::MidpointAwayFromZero,
        }
    }
}

/// Converts an exact amount in major units (`12.345` USD) to minor units of the currency, rounding once
/// with `mode`; `None` when the result does not fit in an `i64`.
pub fn to_minor(amount: Decimal, currency: Currency, mode: RoundingMode) -> Option<i64> {
    let exponent = currency.exponent();
    let rounded = amount.round_dp_with_strategy(exponent, mode.strategy());
    let scale = Decimal::from(10_i64.checked_pow(exponent)?);
    rounded.checked_mul(scale)?.to_i64()
}

/// Converts minor units to the exact amount in major units (`1234` USD → `12.34`, `1234` JPY →
/// `1234`), keeping as many decimal places as the currency has.
pub fn from_minor(minor: i64, currency: Currency) -> Decimal {
    Decimal::new(minor, currency.exponent())
}

/// Rounds a fee's exact amount (major units) to the currency's minor unit, half to even: the one
/// rounding step a fee goes through. Amounts beyond the range of `i64` minor units (about 9.2 × 10^18)
/// saturate; callers that can meet such amounts use [`to_minor`] and treat `None` as an error.
pub fn round_fee(amount: Decimal, currency: Currency) -> i64 {
    to_minor(amount, currency, RoundingMode::HalfEven).unwrap_or(if amount.is_sign_negative() {
        i64::MIN
    } else {
        i64::MAX
    })
}

/// Reads a price in major units as Lago sends it in charge `properties`: a dec-string (`"0.05"`), or,
/// unlike Lago, a JSON number. Returns `None` for anything else (text, `null`, arrays, magnitudes above
/// 10^15). Negative values are returned as read: the caller decides whether they are allowed.
pub fn parse_amount(value: &Value) -> Option<Decimal> {
    parse_decimal(value).ok()
}

/// Writes a decimal as Lago's dec-string: no exponent, no trailing zeros (`"0.05"`, `"5"`, `"0"`).
pub fn dec_string(value: Decimal) -> String {
    value.normalize().to_string()
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;
    use std::str::FromStr;

    fn dec(text: &str) -> Decimal {
        Decimal::from_str(text).expect("decimal")
    }

    fn currency(code: &str) -> Currency {
        Currency::parse(code).expect("currency")
    }

    #[test]
    fn rounds_to_each_currencys_minor_unit() {
        let usd = currency("USD");
        let jpy = currency("JPY");
        let kwd = currency("KWD");
        let even = RoundingMode::HalfEven;
        let up = RoundingMode::HalfUp;
        assert_eq!(to_minor(dec("12.345"), usd, even), Some(1234));
        assert_eq!(to_minor(dec("12.345"), usd, up), Some(1235));
        assert_eq!(to_minor(dec("12.355"), usd, even), Some(1236));
        assert_eq!(to_minor(dec("12.3449999"), usd, up), Some(1234));
        assert_eq!(to_minor(dec("2.5"), jpy, even), Some(2));
        assert_eq!(to_minor(dec("2.5"), jpy, up), Some(3));
        assert_eq!(to_minor(dec("3.5"), jpy, even), Some(4));
        assert_eq!(to_minor(dec("1.0005"), kwd, even), Some(1000));
        assert_eq!(to_minor(dec("1.0005"), kwd, up), Some(1001));
        assert_eq!(to_minor(dec("-0.125"), usd, even), Some(-12));
        assert_eq!(to_minor(dec("-0.125"), usd, up), Some(-13));
        assert_eq!(to_minor(dec("1e20"), usd, even), None);
        assert_eq!(round_fee(dec("1e20"), usd), i64::MAX);
        assert_eq!(round_fee(dec("0.005"), usd), 0);
        assert_eq!(round_fee(dec("0.015"), usd), 2);
    }

    #[test]
    fn converts_back_exactly_and_displays() {
        let usd = currency("USD");
        assert_eq!(from_minor(1234, usd), dec("12.34"));
        assert_eq!(from_minor(1234, currency("JPY")), dec("1234"));
        assert_eq!(Money::from_minor(1234, usd).to_string(), "12.34 USD");
        assert_eq!(Money::from_minor(5, usd).to_string(), "0.05 USD");
        assert_eq!(Money::from_minor(-5, usd).to_string(), "-0.05 USD");
        assert_eq!(
            Money::from_minor(1234, currency("JPY")).to_string(),
            "1234 JPY"
        );
        assert_eq!(
            Money::from_minor(1005, currency("KWD")).to_string(),
            "1.005 KWD"
        );
        assert_eq!(Money::zero(usd).to_string(), "0.00 USD");
    }

    #[test]
    fn adds_only_within_a_currency() {
        let usd = currency("USD");
        let a = Money::from_minor(150, usd);
        assert_eq!(
            a.checked_add(Money::from_minor(50, usd)),
            Some(Money::from_minor(200, usd))
        );
        assert_eq!(
            a.checked_sub(Money::from_minor(200, usd)),
            Some(Money::from_minor(-50, usd))
        );
        assert_eq!(a.checked_add(Money::from_minor(1, currency("EUR"))), None);
        assert_eq!(Money::from_minor(i64::MAX, usd).checked_add(a), None);
    }

    #[test]
    fn reads_dec_strings_and_numbers() {
        assert_eq!(parse_amount(&json!("0.05")), Some(dec("0.05")));
        assert_eq!(parse_amount(&json!(" 5 ")), Some(dec("5")));
        assert_eq!(
            parse_amount(&serde_json::from_str("0.1").expect("json")),
            Some(dec("0.1"))
        );
        assert_eq!(parse_amount(&json!("-1")), Some(dec("-1")));
        assert_eq!(parse_amount(&json!("abc")), None);
        assert_eq!(parse_amount(&json!(null)), None);
        assert_eq!(dec_string(dec("0.0500")), "0.05");
        assert_eq!(dec_string(dec("100.00")), "100");
    }
}

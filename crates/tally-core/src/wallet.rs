//! Wallets: prepaid credits a customer spends on invoices.
//!
//! A wallet holds credits; one credit is worth `rate_amount` of the wallet's currency. Granted credits
//! are added at once; paid credits are added at once and billed on a `credit` invoice. When a
//! subscription invoice is finalized, the wallet pays what it can of the amount due (after credit
//! notes); its balance never goes below zero.

use rust_decimal::prelude::ToPrimitive;
use rust_decimal::{Decimal, RoundingStrategy};

use crate::currency::Currency;
use crate::time::Timestamp;

/// Places kept when converting money back to credits.
pub const CREDIT_SCALE: u32 = 12;

/// A wallet as stored.
#[derive(Debug, Clone, PartialEq)]
pub struct Wallet {
    /// Its id (`lago_id`).
    pub id: uuid::Uuid,
    /// The customer's id.
    pub customer_id: uuid::Uuid,
    /// The customer's external id.
    pub external_customer_id: String,
    /// Active or terminated.
    pub active: bool,
    /// The currency credits are worth.
    pub currency: Currency,
    /// Display name.
    pub name: Option<String>,
    /// The client's code for it.
    pub code: Option<String>,
    /// What one credit is worth, in major units.
    pub rate_amount: Decimal,
    /// Credits left.
    pub credits_balance: Decimal,
    /// Credits spent on invoices.
    pub consumed_credits: Decimal,
    /// When it expires, if it does.
    pub expiration_at: Option<Timestamp>,
    /// When it was created.
    pub created_at: Timestamp,
    /// When it was terminated.
    pub terminated_at: Option<Timestamp>,
}

impl Wallet {
    /// The balance in minor units (credits × rate, rounded half to even).
    pub fn balance_cents(&self) -> i64 {
        credits_to_cents(self.credits_balance, self.rate_amount, self.currency)
    }
}

/// Converts credits to minor units of `currency` at `rate` (major units per credit).
pub fn credits_to_cents(credits: Decimal, rate: Decimal, currency: Currency) -> i64 {
    let scale = Decimal::from(10_i64.pow(currency.exponent()));
    (credits * rate * scale)
        .round_dp_with_strategy(0, RoundingStrategy::MidpointNearestEven)
        .to_i64()
        .unwrap_or(0)
}

/// Converts minor units back to credits at `rate`, to [`CREDIT_SCALE`] places.
pub fn cents_to_credits(cents: i64, rate: Decimal, currency: Currency) -> Decimal {
    let scale = Decimal::from(10_i64.pow(currency.exponent()));
    if rate.is_zero() {
        return Decimal::ZERO;
    }
    (Decimal::from(cents) / scale / rate)
        .round_dp(CREDIT_SCALE)
        .normalize()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn credits_convert_both_ways() {
        let usd = Currency::parse("USD").expect("usd");
        let d = |t: &str| t.parse::<Decimal>().expect("decimal");
        // 50 credits at 1.5 USD = 75.00 USD.
        assert_eq!(credits_to_cents(d("50"), d("1.5"), usd), 7500);
        assert_eq!(cents_to_credits(3000, d("1.5"), usd), d("20"));
        // A third of a credit's worth.
        assert_eq!(cents_to_credits(100, d("3"), usd), d("0.333333333333"));
        let jpy = Currency::parse("JPY").expect("jpy");
        assert_eq!(credits_to_cents(d("10"), d("100"), jpy), 1000);
    }
}

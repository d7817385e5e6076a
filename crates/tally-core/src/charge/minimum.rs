//! The charge minimum (`min_amount_cents`): a true-up fee that lifts a charge to its floor.

use rust_decimal::prelude::ToPrimitive;
use rust_decimal::{Decimal, RoundingStrategy};

use crate::currency::Currency;

/// Returns the true-up fee, in minor units, that lifts a charge billed `charge_amount_minor` (the sum
/// of the charge's rounded fees in the period, all filters and groups together) to its minimum
/// `min_amount_cents` prorated by `proration` (the share of the period the charge covered, clamped to
/// 0..=1). Returns 0 when the charge already reaches its prorated minimum. The prorated minimum is
/// exact; the difference is rounded once, half to even, to a whole minor unit. The amounts are already
/// minor units of `currency`, so the currency does not change the result.
pub fn min_amount_true_up(
    charge_amount_minor: i64,
    min_amount_cents: i64,
    proration: Decimal,
    _currency: Currency,
) -> i64 {
    let share = proration.clamp(Decimal::ZERO, Decimal::ONE);
    let floor = Decimal::from(min_amount_cents.max(0)).saturating_mul(share);
    let gap = floor.saturating_sub(Decimal::from(charge_amount_minor));
    if gap <= Decimal::ZERO {
        return 0;
    }
    gap.round_dp_with_strategy(0, RoundingStrategy::MidpointNearestEven)
        .to_i64()
        .unwrap_or(i64::MAX)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tops_up_to_the_prorated_minimum() {
        let usd = Currency::parse("USD").expect("usd");
        let d = |s: &str| s.parse::<Decimal>().expect("decimal");
        assert_eq!(min_amount_true_up(700, 1000, Decimal::ONE, usd), 300);
        assert_eq!(min_amount_true_up(1200, 1000, Decimal::ONE, usd), 0);
        assert_eq!(min_amount_true_up(1000, 1000, Decimal::ONE, usd), 0);
        // 15 of 30 days: the floor is 500.
        assert_eq!(min_amount_true_up(100, 1000, d("0.5"), usd), 400);
        // 10 of 31 days: 322.58… → 323, less 0.
        assert_eq!(min_amount_true_up(0, 1000, d("10") / d("31"), usd), 323);
        // 1 of 8 days of 1004: 125.5 → 126 (even); of 1012: 126.5 → 126 (even).
        assert_eq!(min_amount_true_up(0, 1004, d("0.125"), usd), 126);
        assert_eq!(min_amount_true_up(0, 1012, d("0.125"), usd), 126);
        assert_eq!(min_amount_true_up(0, 1000, d("1.5"), usd), 1000);
        assert_eq!(min_amount_true_up(0, 1000, d("-1"), usd), 0);
        assert_eq!(min_amount_true_up(0, -5, Decimal::ONE, usd), 0);
    }
}

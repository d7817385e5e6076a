//! Progressive billing: a subscription whose plan has usage thresholds is invoiced as soon as its
//! lifetime usage passes one, instead of waiting for its period to end.
//!
//! *Lifetime usage* is the amount (minor units, before coupons and taxes) of every usage charge billed
//! in arrears since the subscription started: the charge fees of its closed periods plus the priced
//! usage of the open one. The thresholds are points on that line: each fixed threshold once, and a
//! recurring threshold every `amount_cents` past the largest fixed one (from zero when there is none).
//!
//! A threshold is *passed* when it lies above what has been invoiced already (closed periods plus
//! what progressive invoices of the open period billed) and at or below lifetime usage. One
//! progressive invoice then bills the open period's usage to date, less a progressive billing credit
//! for what the period's earlier progressive invoices billed; the invoice that closes the period bills
//! the whole period's usage less the same credit, so every unit is billed once in total.

use rust_decimal::Decimal;

use crate::plan::UsageThreshold;

/// The largest fixed threshold, where the recurring one starts repeating from (0 without one).
fn largest_fixed(thresholds: &[UsageThreshold]) -> i64 {
    thresholds
        .iter()
        .filter(|t| !t.recurring)
        .map(|t| t.amount_cents)
        .max()
        .unwrap_or(0)
}

/// How many repetitions of the recurring threshold lie at or below `amount` (none without one).
fn repetitions_up_to(thresholds: &[UsageThreshold], amount: i64) -> i64 {
    let largest_fixed = largest_fixed(thresholds);
    match thresholds.iter().find(|t| t.recurring) {
        Some(step) if step.amount_cents > 0 && amount >= largest_fixed => {
            (amount - largest_fixed) / step.amount_cents
        }
        _ => 0,
    }
}

/// Returns the indices (into `thresholds`, in order) of the thresholds passed when lifetime usage
/// reaches `lifetime` and `invoiced` of it has been invoiced: fixed thresholds in (invoiced, lifetime],
/// and the recurring one if one of its repetitions lies there. Empty when nothing is passed.
pub fn passed_thresholds(
    thresholds: &[UsageThreshold],
    invoiced: i64,
    lifetime: i64,
) -> Vec<usize> {
    if lifetime <= invoiced {
        return Vec::new();
    }
    let recurring_passed =
        repetitions_up_to(thresholds, lifetime) > repetitions_up_to(thresholds, invoiced);
    thresholds
        .iter()
        .enumerate()
        .filter(|(_, t)| {
            if t.recurring {
                recurring_passed
            } else {
                t.amount_cents > invoiced && t.amount_cents <= lifetime
            }
        })
        .map(|(index, _)| index)
        .collect()
}

/// How far lifetime usage is toward a threshold.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Progress {
    /// The threshold's index in the plan's list.
    pub index: usize,
    /// The point: a fixed threshold's amount, or the next repetition of the recurring one above
    /// `lifetime` (minor units).
    pub amount_cents: i64,
    /// From 0 to 1: lifetime usage over a fixed amount; for the recurring threshold, the part of
    /// the step from the previous point (or from the largest fixed threshold) already used.
    pub completion_ratio: Decimal,
}

/// Returns how far `lifetime` usage is toward each threshold, in the thresholds' order; ratios are
/// rounded half-even to four decimals (and stay below 1 until the point is reached).
pub fn progress(thresholds: &[UsageThreshold], lifetime: i64) -> Vec<Progress> {
    let ratio = |done: i64, whole: i64| -> Decimal {
        if whole <= 0 {
            return Decimal::ONE;
        }
        let exact = Decimal::from(done.clamp(0, whole)) / Decimal::from(whole);
        let rounded = exact.round_dp(4).normalize();
        if rounded == Decimal::ONE && done < whole {
            Decimal::new(9_999, 4)
        } else {
            rounded
        }
    };
    let largest_fixed = largest_fixed(thresholds);
    thresholds
        .iter()
        .enumerate()
        .map(|(index, t)| {
            if t.recurring && t.amount_cents > 0 {
                let next =
                    largest_fixed + (repetitions_up_to(thresholds, lifetime) + 1) * t.amount_cents;
                Progress {
                    index,
                    amount_cents: next,
                    completion_ratio: ratio(lifetime - (next - t.amount_cents), t.amount_cents),
                }
            } else {
                Progress {
                    index,
                    amount_cents: t.amount_cents,
                    completion_ratio: ratio(lifetime, t.amount_cents),
                }
            }
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn fixed(amount_cents: i64) -> UsageThreshold {
        UsageThreshold {
            amount_cents,
            display_name: None,
            recurring: false,
        }
    }

    fn recurring(amount_cents: i64) -> UsageThreshold {
        UsageThreshold {
            amount_cents,
            display_name: None,
            recurring: true,
        }
    }

    #[test]
    fn fixed_thresholds_pass_once_each() {
        let t = [fixed(1_000), fixed(5_000)];
        assert_eq!(passed_thresholds(&t, 0, 999), Vec::<usize>::new());
        assert_eq!(passed_thresholds(&t, 0, 1_000), vec![0]);
        assert_eq!(passed_thresholds(&t, 1_000, 4_999), Vec::<usize>::new());
        assert_eq!(passed_thresholds(&t, 0, 6_000), vec![0, 1]);
        assert_eq!(passed_thresholds(&t, 5_000, 1_000_000), Vec::<usize>::new());
    }

    #[test]
    fn recurring_threshold_repeats_past_the_largest_fixed_one() {
        // Points: 1,000, then 3,000, 5,000, 7,000…
        let t = [fixed(1_000), recurring(2_000)];
        assert_eq!(passed_thresholds(&t, 0, 2_999), vec![0]);
        assert_eq!(passed_thresholds(&t, 0, 3_000), vec![0, 1]);
        assert_eq!(passed_thresholds(&t, 1_500, 4_999), vec![1]);
        assert_eq!(passed_thresholds(&t, 3_000, 4_999), Vec::<usize>::new());
        assert_eq!(passed_thresholds(&t, 4_999, 5_000), vec![1]);
    }

    #[test]
    fn a_recurring_threshold_alone_starts_from_zero() {
        let t = [recurring(500)];
        assert_eq!(passed_thresholds(&t, 0, 499), Vec::<usize>::new());
        assert_eq!(passed_thresholds(&t, 0, 500), vec![0]);
        assert_eq!(passed_thresholds(&t, 500, 999), Vec::<usize>::new());
        assert_eq!(passed_thresholds(&t, 999, 1_000), vec![0]);
    }

    #[test]
    fn progress_toward_fixed_and_recurring_points() {
        // Points: 1,000, then 3,000, 5,000…
        let t = [fixed(1_000), recurring(2_000)];
        let at = |lifetime| {
            progress(&t, lifetime)
                .iter()
                .map(|p| (p.amount_cents, p.completion_ratio.to_string()))
                .collect::<Vec<_>>()
        };
        assert_eq!(at(500), vec![(1_000, "0.5".into()), (3_000, "0".into())]);
        assert_eq!(at(2_000), vec![(1_000, "1".into()), (3_000, "0.5".into())]);
        assert_eq!(at(3_000), vec![(1_000, "1".into()), (5_000, "0".into())]);
        assert_eq!(at(2_999)[1], (3_000, "0.9995".into()));
        // Almost there is not there: 999,999 of 1,000,000 would round to 1.
        assert_eq!(
            progress(&[fixed(1_000_000)], 999_999)[0].completion_ratio,
            Decimal::new(9_999, 4)
        );
    }

    #[test]
    fn usage_that_went_down_passes_nothing() {
        let t = [fixed(100)];
        assert_eq!(passed_thresholds(&t, 500, 200), Vec::<usize>::new());
    }
}

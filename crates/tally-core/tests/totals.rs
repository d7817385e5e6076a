//! Invoice totals: from rounded fees to the amount due, against a naive reference.
//!
//! `tally_core::billing::adjustments` follows Lago's chain (COMPAT §2.7, docs/billing.md): fees −
//! progressive billing credit (off usage fees only) − coupons = subtotal excluding taxes; + taxes = subtotal including taxes; − credit notes − prepaid
//! credits = total. The reference below walks the same chain with integer arithmetic only: each
//! coupon takes what it may of what is left, each tax of each fee is the fee's base after coupons ×
//! rate, rounded once half to even by integer division, and credits are taken in order until
//! nothing is due.

use proptest::prelude::*;
use rust_decimal::Decimal;
use serde_json::Value;
use tally_core::billing::adjustments::{
    CouponValue, TaxRate, adjust, adjust_after_progressive, apply_credits, spread,
};
use tally_core::billing::{Fee, FeeKind, InvoiceTotals};
use tally_core::period::Period;
use tally_core::time::Timestamp;

/// Divides, rounding the quotient half to even.
fn div_half_even(num: i128, den: i128) -> i128 {
    let (q, r) = (num.div_euclid(den), num.rem_euclid(den));
    match (2 * r).cmp(&den) {
        std::cmp::Ordering::Less => q,
        std::cmp::Ordering::Greater => q + 1,
        std::cmp::Ordering::Equal => q + q.rem_euclid(2),
    }
}

/// Returns `base × percent / 100` rounded half to even, `percent` being an exact decimal.
fn percent_of(base: i64, percent: Decimal) -> i64 {
    let den = 100 * 10i128.pow(percent.scale());
    i64::try_from(div_half_even(i128::from(base) * percent.mantissa(), den)).expect("fits")
}

fn fee(cents: i64) -> Fee {
    fee_of(FeeKind::Charge, cents)
}

fn fee_of(kind: FeeKind, cents: i64) -> Fee {
    Fee {
        kind,
        charge_id: None,
        filter_id: None,
        units: Decimal::ONE,
        total_aggregated_units: Decimal::ONE,
        events_count: 1,
        precise_amount: Decimal::new(cents, 2),
        amount_cents: cents,
        period: Period {
            from: Timestamp::EPOCH,
            to: Timestamp::from_seconds(1),
        },
        details: Value::Null,
    }
}

/// A percentage with up to three decimals, from 0 to 100, often a round one.
fn percent() -> impl Strategy<Value = Decimal> {
    prop_oneof![
        prop::sample::select(vec![0i64, 5_500, 8_875, 10_000, 12_500, 20_000, 100_000])
            .prop_map(|m| Decimal::new(m, 3)),
        (0..=100_000i64).prop_map(|m| Decimal::new(m, 3)),
    ]
}

fn coupon() -> impl Strategy<Value = CouponValue> {
    prop_oneof![
        (0..=60_000i64).prop_map(CouponValue::Fixed),
        percent().prop_map(CouponValue::Percentage),
    ]
}

/// Fees (cents, with zeros and ties), for each its tax rates and whether it is a usage charge fee.
fn fees() -> impl Strategy<Value = Vec<(i64, Vec<Decimal>, bool)>> {
    prop::collection::vec(
        (
            prop_oneof![Just(0i64), 1..=100i64, 1..=250_000i64],
            prop::collection::vec(percent(), 0..=2),
            prop::bool::weighted(0.7),
        ),
        0..=8,
    )
}

fn balances() -> impl Strategy<Value = Vec<i64>> {
    prop::collection::vec(prop_oneof![Just(0i64), 1..=200_000i64], 0..=3)
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(2_000))]

    #[test]
    fn totals_follow_the_chain(
        lines in fees(),
        progressive in prop_oneof![Just(0i64), 0..=400_000i64],
        coupons in prop::collection::vec(coupon(), 0..=3),
        notes in balances(),
        prepaid in balances(),
    ) {
        let fees: Vec<Fee> = lines
            .iter()
            .map(|(cents, _, usage)| {
                fee_of(if *usage { FeeKind::Charge } else { FeeKind::Subscription }, *cents)
            })
            .collect();
        let rates: Vec<Vec<TaxRate>> = lines
            .iter()
            .map(|(_, rates, _)| {
                rates
                    .iter()
                    .enumerate()
                    .map(|(tax, rate)| TaxRate { tax, rate: *rate })
                    .collect()
            })
            .collect();
        let mut adjusted = adjust_after_progressive(&fees, progressive, &coupons, &rates);

        // The progressive credit comes off the usage fees, as much as they hold, never off others.
        let fees_amount: i64 = lines.iter().map(|(cents, _, _)| cents).sum();
        let usage_amount: i64 = lines.iter().filter(|l| l.2).map(|(cents, _, _)| cents).sum();
        let progressive_amount = progressive.min(usage_amount);
        prop_assert_eq!(adjusted.fee_progressive.iter().sum::<i64>(), progressive_amount);
        for ((cents, _, usage), share) in lines.iter().zip(&adjusted.fee_progressive) {
            prop_assert!(*share >= 0 && share <= cents);
            prop_assert!(*usage || *share == 0, "credit on a fee that is not usage");
        }

        // Coupons, in order, each taking what it may of what is left and never more.
        let mut left = fees_amount - progressive_amount;
        let mut want_coupons = Vec::new();
        for coupon in &coupons {
            let amount = match coupon {
                CouponValue::Fixed(cents) => (*cents).min(left),
                CouponValue::Percentage(rate) => percent_of(left, *rate).min(left),
            };
            prop_assert!(amount >= 0 && amount <= left);
            want_coupons.push(amount);
            left -= amount;
        }
        prop_assert_eq!(&adjusted.coupon_amounts, &want_coupons);
        let coupons_amount: i64 = want_coupons.iter().sum();

        // Coupons are spread over what is left of the fees: all of them, never more than a fee's
        // rest, never below zero.
        prop_assert_eq!(adjusted.fee_coupons.len(), fees.len());
        prop_assert_eq!(adjusted.fee_coupons.iter().sum::<i64>(), coupons_amount);
        for (((cents, _, _), share), credit) in
            lines.iter().zip(&adjusted.fee_coupons).zip(&adjusted.fee_progressive)
        {
            prop_assert!(*share >= 0 && share + credit <= *cents, "{} of a {} fee", share, cents);
        }

        // Each tax of each fee is its base after coupons × rate, rounded once.
        let mut taxes_amount = 0;
        let mut exact_taxes = Decimal::ZERO;
        for ((((cents, fee_rates, _), share), credit), got) in lines
            .iter()
            .zip(&adjusted.fee_coupons)
            .zip(&adjusted.fee_progressive)
            .zip(&adjusted.fee_taxes)
        {
            let base = cents - share - credit;
            let want: Vec<(usize, i64)> = fee_rates
                .iter()
                .enumerate()
                .map(|(tax, rate)| (tax, percent_of(base, *rate)))
                .collect();
            prop_assert_eq!(got, &want);
            taxes_amount += want.iter().map(|(_, t)| t).sum::<i64>();
            exact_taxes += fee_rates
                .iter()
                .map(|rate| Decimal::from(base) * rate / Decimal::ONE_HUNDRED)
                .sum::<Decimal>();
        }
        // Rounding each tax line once keeps the invoice within half a cent per line of the exact sum.
        let tax_lines: usize = lines.iter().map(|(_, r, _)| r.len()).sum();
        prop_assert!(
            (Decimal::from(taxes_amount) - exact_taxes).abs()
                <= Decimal::new(5, 1) * Decimal::from(tax_lines as u64)
        );

        let excluding = fees_amount - progressive_amount - coupons_amount;
        let including = excluding + taxes_amount;
        prop_assert_eq!(
            adjusted.totals,
            InvoiceTotals {
                fees_amount_cents: fees_amount,
                progressive_billing_credit_amount_cents: progressive_amount,
                coupons_amount_cents: coupons_amount,
                sub_total_excluding_taxes_amount_cents: excluding,
                taxes_amount_cents: taxes_amount,
                sub_total_including_taxes_amount_cents: including,
                credit_notes_amount_cents: 0,
                prepaid_credit_amount_cents: 0,
                total_amount_cents: including,
            }
        );
        prop_assert!(excluding >= 0);

        // Credits: credit notes first, then prepaid credits, each in order, until nothing is due.
        let (from_notes, from_prepaid) = apply_credits(&mut adjusted.totals, &notes, &prepaid);
        let mut due = including;
        let mut take = |balances: &[i64]| -> Vec<i64> {
            balances
                .iter()
                .map(|balance| {
                    let used = (*balance).min(due);
                    due -= used;
                    used
                })
                .collect()
        };
        let want_notes = take(&notes);
        let want_prepaid = take(&prepaid);
        prop_assert_eq!(&from_notes, &want_notes);
        prop_assert_eq!(&from_prepaid, &want_prepaid);
        let t = adjusted.totals;
        prop_assert_eq!(t.credit_notes_amount_cents, want_notes.iter().sum::<i64>());
        prop_assert_eq!(t.prepaid_credit_amount_cents, want_prepaid.iter().sum::<i64>());
        prop_assert_eq!(t.total_amount_cents, due);
        prop_assert_eq!(
            t.total_amount_cents,
            t.sub_total_including_taxes_amount_cents
                - t.credit_notes_amount_cents
                - t.prepaid_credit_amount_cents
        );
        prop_assert!(t.total_amount_cents >= 0);
    }

    #[test]
    fn without_coupons_or_taxes_the_totals_are_the_sum_of_the_fees(
        cents in prop::collection::vec(0..=250_000i64, 0..=8),
    ) {
        let fees: Vec<Fee> = cents.iter().map(|c| fee(*c)).collect();
        let sum: i64 = cents.iter().sum();
        let adjusted = adjust(&fees, &[], &[]);
        prop_assert_eq!(adjusted.totals, InvoiceTotals::of(&fees));
        prop_assert_eq!(adjusted.totals.sub_total_excluding_taxes_amount_cents, sum);
        prop_assert_eq!(adjusted.totals.total_amount_cents, sum);
    }

    #[test]
    fn spread_shares_are_proportional_and_exact(
        amount in prop_oneof![Just(0i64), 1..=500_000i64],
        weights in prop::collection::vec(prop_oneof![Just(0i64), 1..=250_000i64], 0..=8),
    ) {
        let shares = spread(amount, &weights);
        prop_assert_eq!(shares.len(), weights.len());
        let total: i64 = weights.iter().sum();
        let spent = if total == 0 { 0 } else { amount.min(total) };
        prop_assert_eq!(shares.iter().sum::<i64>(), spent);
        for (share, weight) in shares.iter().zip(&weights) {
            // Each share is its exact proportional part rounded down or up, and never above its weight.
            prop_assert!(*share >= 0 && share <= weight);
            if total > 0 {
                let exact_floor = i128::from(spent) * i128::from(*weight) / i128::from(total);
                let share = i128::from(*share);
                prop_assert!(share == exact_floor || share == exact_floor + 1);
            }
        }
    }
}

#[test]
fn tax_ties_round_to_even() {
    // Fees are whole cents, so ties come from rates with a fraction: 5.5 % of 1.00 is 5.5 cents → 6,
    // and of 3.00 it is 16.5 cents → 16.
    let rates = |rate: i64| {
        vec![TaxRate {
            tax: 0,
            rate: Decimal::new(rate, 1),
        }]
    };
    let adjusted = adjust(&[fee(100), fee(300)], &[], &[rates(55), rates(55)]);
    assert_eq!(adjusted.fee_taxes, vec![vec![(0, 6)], vec![(0, 16)]]);
    assert_eq!(adjusted.totals.taxes_amount_cents, 22);
}

//! What comes between fees and the amount due: the progressive billing credit, coupons, taxes, credit
//! notes and prepaid credits, in Lago's order. Fees − progressive billing credit − coupons = subtotal
//! excluding taxes; + taxes (per fee, on the fee's share after the credit and coupons) = subtotal
//! including taxes; − credit notes − prepaid credits = total due.
//!
//! Every amount is in minor units. A coupon is spread over the fees in proportion to their amounts,
//! the remainders going to the largest fees so the shares add up exactly; each tax of each fee is
//! rounded once, half to even; credits never take the total below zero.

use rust_decimal::prelude::ToPrimitive;
use rust_decimal::{Decimal, RoundingStrategy};

use super::fees::{Fee, FeeKind};
use super::totals::InvoiceTotals;

/// A coupon applied to a customer, as one invoice can use it.
#[derive(Debug, Clone, PartialEq)]
pub enum CouponValue {
    /// Up to this many minor units off.
    Fixed(i64),
    /// This percentage off what is left of the fees.
    Percentage(Decimal),
}

/// A tax rate in percent (`20` = 20 %), with an index the caller uses to name it.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct TaxRate {
    /// The caller's index of the tax.
    pub tax: usize,
    /// Percent.
    pub rate: Decimal,
}

/// The result of adjusting an invoice.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct Adjusted {
    /// For each fee, the minor units of the progressive billing credit spread onto it.
    pub fee_progressive: Vec<i64>,
    /// For each coupon, in order, the minor units it took off.
    pub coupon_amounts: Vec<i64>,
    /// For each fee, the minor units of coupons spread onto it.
    pub fee_coupons: Vec<i64>,
    /// For each fee, its taxes: (tax index, minor units), in the order of its rates.
    pub fee_taxes: Vec<Vec<(usize, i64)>>,
    /// The invoice's totals.
    pub totals: InvoiceTotals,
}

fn round_half_even(value: Decimal) -> i64 {
    value
        .round_dp_with_strategy(0, RoundingStrategy::MidpointNearestEven)
        .to_i64()
        .unwrap_or(0)
}

/// Spreads `amount` over `weights` in proportion, exactly: floors first, then one unit each to the
/// largest remainders (ties to the earlier fee).
pub fn spread(amount: i64, weights: &[i64]) -> Vec<i64> {
    let total: i128 = weights.iter().map(|w| i128::from((*w).max(0))).sum();
    if amount <= 0 || total == 0 {
        return vec![0; weights.len()];
    }
    let amount = i128::from(amount).min(total);
    let mut shares: Vec<(i128, i128, usize)> = weights
        .iter()
        .enumerate()
        .map(|(i, w)| {
            let exact = amount * i128::from((*w).max(0));
            (exact / total, exact % total, i)
        })
        .collect();
    let mut left = amount - shares.iter().map(|s| s.0).sum::<i128>();
    let mut order: Vec<usize> = (0..shares.len()).collect();
    order.sort_by(|a, b| shares[*b].1.cmp(&shares[*a].1).then(a.cmp(b)));
    for i in order {
        if left == 0 {
            break;
        }
        shares[i].0 += 1;
        left -= 1;
    }
    shares
        .into_iter()
        .map(|s| i64::try_from(s.0).unwrap_or(0))
        .collect()
}

/// Applies coupons (in order) and taxes to fees. `fee_rates[i]` are the tax rates of fee `i`.
pub fn adjust(fees: &[Fee], coupons: &[CouponValue], fee_rates: &[Vec<TaxRate>]) -> Adjusted {
    adjust_after_progressive(fees, 0, coupons, fee_rates)
}

/// Like [`adjust`], first taking `progressive_credit` (what earlier progressive invoices of the period
/// billed) off the usage charge fees, spread in proportion to them and never more than they come to.
pub fn adjust_after_progressive(
    fees: &[Fee],
    progressive_credit: i64,
    coupons: &[CouponValue],
    fee_rates: &[Vec<TaxRate>],
) -> Adjusted {
    let fees_amount: i64 = fees.iter().map(|f| f.amount_cents).sum();
    let mut left: Vec<i64> = fees.iter().map(|f| f.amount_cents.max(0)).collect();
    let usage: Vec<i64> = fees
        .iter()
        .zip(&left)
        .map(|(f, amount)| {
            if f.kind == FeeKind::Charge {
                *amount
            } else {
                0
            }
        })
        .collect();
    let fee_progressive = spread(progressive_credit, &usage);
    for (amount, share) in left.iter_mut().zip(&fee_progressive) {
        *amount -= share;
    }
    let progressive_amount: i64 = fee_progressive.iter().sum();
    let mut fee_coupons = vec![0i64; fees.len()];
    let mut coupon_amounts = Vec::with_capacity(coupons.len());
    for coupon in coupons {
        let available: i64 = left.iter().sum();
        let amount = match coupon {
            CouponValue::Fixed(cents) => (*cents).clamp(0, available),
            CouponValue::Percentage(rate) => {
                round_half_even(Decimal::from(available) * *rate / Decimal::ONE_HUNDRED)
                    .clamp(0, available)
            }
        };
        let shares = spread(amount, &left);
        for (i, share) in shares.iter().enumerate() {
            left[i] -= share;
            fee_coupons[i] += share;
        }
        coupon_amounts.push(amount);
    }
    let fee_taxes: Vec<Vec<(usize, i64)>> = left
        .iter()
        .enumerate()
        .map(|(i, base)| {
            fee_rates
                .get(i)
                .map(|rates| {
                    rates
                        .iter()
                        .map(|r| {
                            (
                                r.tax,
                                round_half_even(
                                    Decimal::from(*base) * r.rate / Decimal::ONE_HUNDRED,
                                ),
                            )
                        })
                        .collect()
                })
                .unwrap_or_default()
        })
        .collect();
    let coupons_amount: i64 = coupon_amounts.iter().sum();
    let taxes: i64 = fee_taxes.iter().flatten().map(|(_, t)| t).sum();
    let excluding = fees_amount - progressive_amount - coupons_amount;
    Adjusted {
        fee_progressive,
        coupon_amounts,
        fee_coupons,
        fee_taxes,
        totals: InvoiceTotals {
            fees_amount_cents: fees_amount,
            progressive_billing_credit_amount_cents: progressive_amount,
            coupons_amount_cents: coupons_amount,
            sub_total_excluding_taxes_amount_cents: excluding,
            taxes_amount_cents: taxes,
            sub_total_including_taxes_amount_cents: excluding + taxes,
            credit_notes_amount_cents: 0,
            prepaid_credit_amount_cents: 0,
            total_amount_cents: excluding + taxes,
        },
    }
}

/// Takes credits off a total, in order (credit notes first, then prepaid credits), never below zero;
/// returns what each credit source gave.
pub fn apply_credits(
    totals: &mut InvoiceTotals,
    credit_notes: &[i64],
    prepaid: &[i64],
) -> (Vec<i64>, Vec<i64>) {
    let mut due = totals.sub_total_including_taxes_amount_cents.max(0);
    let mut take = |available: &[i64]| -> Vec<i64> {
        available
            .iter()
            .map(|a| {
                let used = (*a).clamp(0, due);
                due -= used;
                used
            })
            .collect()
    };
    let from_notes = take(credit_notes);
    let from_prepaid = take(prepaid);
    totals.credit_notes_amount_cents = from_notes.iter().sum();
    totals.prepaid_credit_amount_cents = from_prepaid.iter().sum();
    totals.total_amount_cents = due;
    (from_notes, from_prepaid)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::period::Period;
    use crate::time::Timestamp;

    fn fee(cents: i64) -> Fee {
        Fee {
            kind: FeeKind::Charge,
            charge_id: None,
            filter_id: None,
            units: Decimal::ONE,
            total_aggregated_units: Decimal::ONE,
            events_count: 0,
            precise_amount: Decimal::from(cents),
            amount_cents: cents,
            period: Period {
                from: Timestamp::EPOCH,
                to: Timestamp::from_seconds(1),
            },
            details: serde_json::Value::Null,
        }
    }

    #[test]
    fn spreads_exactly() {
        assert_eq!(spread(100, &[100, 100, 100]), vec![34, 33, 33]);
        assert_eq!(spread(10, &[700, 300]), vec![7, 3]);
        assert_eq!(spread(5, &[0, 0]), vec![0, 0]);
        assert_eq!(
            spread(1_000, &[100, 200]),
            vec![100, 200],
            "never more than the fees"
        );
    }

    #[test]
    fn coupons_then_taxes_then_credits() {
        // Fees 70.00 and 30.00; a 10.00 coupon (7.00 + 3.00); 20 % tax on 63.00 and 27.00: 12.60 + 5.40.
        let fees = [fee(7000), fee(3000)];
        let rates = vec![
            vec![TaxRate {
                tax: 0,
                rate: Decimal::from(20)
            }];
            2
        ];
        let mut adjusted = adjust(&fees, &[CouponValue::Fixed(1000)], &rates);
        assert_eq!(adjusted.fee_coupons, vec![700, 300]);
        assert_eq!(adjusted.fee_taxes, vec![vec![(0, 1260)], vec![(0, 540)]]);
        let t = adjusted.totals;
        assert_eq!(
            (
                t.fees_amount_cents,
                t.coupons_amount_cents,
                t.sub_total_excluding_taxes_amount_cents,
                t.taxes_amount_cents,
                t.sub_total_including_taxes_amount_cents
            ),
            (10_000, 1000, 9000, 1800, 10_800)
        );
        // 50.00 of credit notes, then a wallet of 100.00 of which 58.00 is used.
        let (notes, prepaid) = apply_credits(&mut adjusted.totals, &[5000], &[10_000]);
        assert_eq!((notes, prepaid), (vec![5000], vec![5800]));
        assert_eq!(adjusted.totals.total_amount_cents, 0);
    }

    #[test]
    fn percentage_coupons_round_half_even() {
        // 12.5 % of 1.00 = 12.5 cents → 12.
        let adjusted = adjust(
            &[fee(100)],
            &[CouponValue::Percentage(Decimal::new(125, 1))],
            &[vec![]],
        );
        assert_eq!(adjusted.coupon_amounts, vec![12]);
        // Two coupons: 50 % of 10.00 = 5.00, then 5.00 fixed of what is left: nothing more.
        let adjusted = adjust(
            &[fee(1000)],
            &[
                CouponValue::Percentage(Decimal::from(50)),
                CouponValue::Fixed(800),
            ],
            &[vec![]],
        );
        assert_eq!(adjusted.coupon_amounts, vec![500, 500]);
        assert_eq!(adjusted.totals.sub_total_excluding_taxes_amount_cents, 0);
    }
}

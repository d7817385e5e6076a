//! Pay-in-advance charges: every event is billed on its own, for what it adds to its charge's usage
//! in the charges period it falls in.
//!
//! A charge's usage in one charges period is kept per bucket (the charge filter the event matches, or
//! the charge's own terms for events matching none) as a [`Running`] total of the events billed so far,
//! in the order they were billed. The fee of an event is the price of the bucket's usage including it,
//! minus what the bucket's earlier fees billed (never below zero). A graduated charge therefore bills
//! each event at the tiers it reaches, an event that adds no unit (a unique value seen before) bills
//! nothing, and over a period the fees add up to the price of the period's usage, as if it had been
//! billed in arrears. Percentage charges are walked event by event, as [`ChargeModel::price`] walks
//! them with per-event values: free events, free value and per-transaction bounds apply to each event.
//!
//! Rounding is cumulative: a fee's `amount_cents` is what the bucket has billed so far, rounded once,
//! minus the minor units its earlier fees billed. Many small events thus bill what the period would
//! bill in arrears, instead of each rounding down to nothing.

use rust_decimal::Decimal;
use serde_json::json;

use crate::charge::{ChargeModel, ChargeUsage};
use crate::currency::Currency;
use crate::id::ChargeFilterId;
use crate::metric::Rounding;
use crate::money::round_fee;
use crate::period::Period;
use crate::plan::Charge;

use super::fees::{Fee, FeeKind};

/// What one bucket of a pay-in-advance charge has billed in one charges period so far.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Running {
    /// Units aggregated so far, before the metric's rounding.
    pub units: Decimal,
    /// Events billed so far.
    pub events_count: u64,
    /// The exact amount billed so far, in major units (the sum of the fees' precise amounts).
    pub billed: Decimal,
    /// The amount billed so far, in minor units (the sum of the fees' `amount_cents`).
    pub billed_cents: i64,
    /// The value a percentage charge's free allowance has covered so far.
    pub free_value_used: Decimal,
    /// The most units the bucket has held in the period (a prorated charge bills only units above
    /// it; carried units start it).
    pub peak_units: Decimal,
}

/// Returns the model that prices a bucket: the filter's, or the charge's own.
fn model_of(charge: &Charge, filter: Option<ChargeFilterId>) -> &ChargeModel {
    filter
        .and_then(|id| charge.filters.iter().find(|(f, _)| *f == id))
        .map_or(&charge.terms.model, |(_, f)| &f.model)
}

/// Prices one event of a pay-in-advance charge: `added` is what it adds to the bucket's units (its
/// value for a sum, 1 for a count, 1 for a unique value not seen in the period and 0 for one seen
/// before), `rounding` the metric's rounding of aggregated units, `period` the charges period it falls
/// in. Returns the fee (one event, `added` units) and the bucket's running total after it.
pub fn advance_fee(
    charge: &Charge,
    filter: Option<ChargeFilterId>,
    rounding: Option<Rounding>,
    before: &Running,
    added: Decimal,
    currency: Currency,
    period: Period,
) -> (Fee, Running) {
    let model = model_of(charge, filter);
    let mut after = before.clone();
    after.units = before.units.saturating_add(added);
    after.events_count = before.events_count.saturating_add(1);
    let (precise, details) =
        match model.price_next_event(before.events_count, before.free_value_used, added) {
            Some(next) => {
                after.free_value_used = before.free_value_used.saturating_add(next.free_value);
                (next.amount, next.details)
            }
            None => {
                let units = rounding.map_or(after.units, |r| r.apply(after.units));
                let price = model
                    .price(&ChargeUsage::new(units, after.events_count))
                    .amount;
                (
                    price.saturating_sub(before.billed).max(Decimal::ZERO),
                    json!({}),
                )
            }
        };
    let details = if details.is_null() {
        json!({})
    } else {
        details
    };
    let fee = bill(
        charge, filter, before, &mut after, precise, added, currency, period,
    );
    (Fee { details, ..fee }, after)
}

/// Adds an event's exact amount to its bucket, rounded cumulatively: the fee's minor units are what
/// the bucket has billed so far, rounded once, minus what its earlier fees billed (never below zero).
#[allow(clippy::too_many_arguments)]
fn bill(
    charge: &Charge,
    filter: Option<ChargeFilterId>,
    before: &Running,
    after: &mut Running,
    precise: Decimal,
    added: Decimal,
    currency: Currency,
    period: Period,
) -> Fee {
    after.billed = before.billed.saturating_add(precise);
    let amount_cents = round_fee(after.billed, currency)
        .saturating_sub(before.billed_cents)
        .max(0);
    after.billed_cents = before.billed_cents.saturating_add(amount_cents);
    let units = added.normalize();
    Fee {
        kind: FeeKind::Charge,
        charge_id: Some(charge.id),
        filter_id: filter,
        units,
        total_aggregated_units: units,
        events_count: 1,
        precise_amount: precise.normalize(),
        amount_cents,
        period,
        details: json!({}),
    }
}

/// Prices one event of a prorated pay-in-advance standard charge (a recurring metric): the units it
/// takes above the most the bucket held in the period, at the unit price, times `share`, the part of
/// the full charges period left from the event to the period's end. A removal, or units below the
/// peak, bill nothing. Rounding is cumulative, as for [`advance_fee`].
#[allow(clippy::too_many_arguments)]
pub fn prorated_advance_fee(
    charge: &Charge,
    filter: Option<ChargeFilterId>,
    before: &Running,
    added: Decimal,
    share: Decimal,
    currency: Currency,
    period: Period,
) -> (Fee, Running) {
    let unit_price = match model_of(charge, filter) {
        ChargeModel::Standard { amount } => *amount,
        _ => Decimal::ZERO,
    };
    let mut after = before.clone();
    after.units = before.units.saturating_add(added);
    after.events_count = before.events_count.saturating_add(1);
    let above = (after.units - before.peak_units).max(Decimal::ZERO);
    after.peak_units = before.peak_units.max(after.units);
    let precise = above.saturating_mul(unit_price).saturating_mul(share);
    let fee = bill(
        charge, filter, before, &mut after, precise, added, currency, period,
    );
    let details = json!({"prorated_units": above.normalize().to_string(),
        "proration": share.normalize().to_string()});
    (Fee { details, ..fee }, after)
}

#[cfg(test)]
mod tests {
    use std::str::FromStr;

    use super::*;
    use crate::charge::{ChargeModel, ChargeModelKind, Tier};
    use crate::id::{ChargeId, Code, MetricId};
    use crate::plan::ChargeTerms;
    use crate::time::Timestamp;

    fn dec(text: &str) -> Decimal {
        Decimal::from_str(text).expect("decimal")
    }

    fn charge(model: ChargeModel) -> Charge {
        Charge {
            id: ChargeId(uuid::Uuid::nil()),
            metric_id: MetricId(uuid::Uuid::nil()),
            metric_code: Code::parse("code", "calls").expect("code"),
            terms: ChargeTerms {
                code: "calls".into(),
                invoice_display_name: None,
                model,
                pay_in_advance: true,
                invoiceable: true,
                prorated: false,
                min_amount_cents: 0,
            },
            filters: Vec::new(),
            taxes: Vec::new(),
        }
    }

    fn period() -> Period {
        Period {
            from: Timestamp::from_seconds(0),
            to: Timestamp::from_seconds(86_400),
        }
    }

    /// Bills the events in order and returns each fee's (precise amount, amount in cents).
    fn bill(charge: &Charge, added: &[&str]) -> Vec<(Decimal, i64)> {
        let mut running = Running::default();
        added
            .iter()
            .map(|a| {
                let (fee, after) = advance_fee(
                    charge,
                    None,
                    None,
                    &running,
                    dec(a),
                    Currency::parse("USD").expect("USD"),
                    period(),
                );
                running = after;
                (fee.precise_amount, fee.amount_cents)
            })
            .collect()
    }

    #[test]
    fn a_prorated_fee_bills_units_above_the_peak_for_the_rest_of_the_period() {
        let seats = charge(ChargeModel::Standard { amount: dec("30") });
        let usd = Currency::parse("USD").expect("USD");
        let april = Period {
            from: Timestamp::from_seconds(0),
            to: Timestamp::from_seconds(30 * 86_400),
        };
        // 5 seats carried into the period (billed in full by the run that opened it).
        let start = Running {
            units: dec("5"),
            billed: dec("150"),
            billed_cents: 15_000,
            peak_units: dec("5"),
            ..Running::default()
        };
        // One seat removed: nothing.
        let (fee, after) =
            prorated_advance_fee(&seats, None, &start, dec("-1"), dec("0.8"), usd, april);
        assert_eq!(fee.amount_cents, 0);
        // Three added with half the period left: 4 + 3 = 7, 2 above the peak of 5: 2 × 30 × 0.5 = 30.
        let (fee, after) =
            prorated_advance_fee(&seats, None, &after, dec("3"), dec("0.5"), usd, april);
        assert_eq!(fee.amount_cents, 3_000);
        assert_eq!(after.peak_units, dec("7"));
        // A third of the period left, one more: 1 × 30 × 1/3 = 10.
        let third = Decimal::ONE / Decimal::from(3);
        let (fee, after) = prorated_advance_fee(&seats, None, &after, dec("1"), third, usd, april);
        assert_eq!(fee.amount_cents, 1_000);
        assert_eq!(after.billed_cents, 15_000 + 3_000 + 1_000);
    }

    #[test]
    fn standard_bills_each_event_its_units() {
        let c = charge(ChargeModel::Standard { amount: dec("0.1") });
        // 3 × 0.10 = 0.30; 5 × 0.10 = 0.50; 2 × 0.10 = 0.20.
        assert_eq!(
            bill(&c, &["3", "5", "2"]),
            vec![(dec("0.3"), 30), (dec("0.5"), 50), (dec("0.2"), 20)]
        );
    }

    #[test]
    fn graduated_bills_the_tiers_an_event_reaches() {
        let c = charge(ChargeModel::Graduated {
            ranges: vec![
                Tier {
                    from_value: dec("0"),
                    to_value: Some(dec("10")),
                    per_unit_amount: dec("0.1"),
                    flat_amount: dec("1"),
                },
                Tier {
                    from_value: dec("11"),
                    to_value: None,
                    per_unit_amount: dec("0.05"),
                    flat_amount: dec("0"),
                },
            ],
        });
        // 4 units: 4 × 0.10 + 1 (tier 1's flat amount) = 1.40.
        // 12 units: 10 × 0.10 + 1 + 2 × 0.05 = 2.10, of which 1.40 is billed: 0.70.
        // 13 units: 2.15, of which 2.10 is billed: 0.05.
        assert_eq!(
            bill(&c, &["4", "8", "1"]),
            vec![(dec("1.4"), 140), (dec("0.7"), 70), (dec("0.05"), 5)]
        );
    }

    #[test]
    fn rounding_is_cumulative() {
        let c = charge(ChargeModel::Standard {
            amount: dec("0.002"),
        });
        // Billed so far: 0.002 (0 cents), 0.004 (0 cents), 0.006 (0.6 → 1 cent), 0.008 (0.8 → 1 cent),
        // 0.010 (1 cent).
        let fees = bill(&c, &["1", "1", "1", "1", "1"]);
        let cents: Vec<i64> = fees.iter().map(|f| f.1).collect();
        assert_eq!(cents, vec![0, 0, 1, 0, 0]);
        assert!(fees.iter().all(|f| f.0 == dec("0.002")));
    }

    #[test]
    fn a_unique_value_seen_before_bills_nothing() {
        let c = charge(ChargeModel::Standard { amount: dec("2") });
        // A new value (1 unit): 2.00; the same value again (0 units): 0; another new one: 2.00.
        assert_eq!(
            bill(&c, &["1", "0", "1"]),
            vec![(dec("2"), 200), (dec("0"), 0), (dec("2"), 200)]
        );
    }

    #[test]
    fn a_negative_event_bills_nothing_and_is_caught_up() {
        let c = charge(ChargeModel::Standard { amount: dec("1") });
        // 10 units: 10.00; then 5 units (price 5.00, 10.00 billed): 0; then 10 again: 0 (still 10.00
        // billed); then 12: 2.00.
        assert_eq!(
            bill(&c, &["10", "-5", "5", "2"]),
            vec![
                (dec("10"), 1000),
                (dec("0"), 0),
                (dec("0"), 0),
                (dec("2"), 200)
            ]
        );
    }

    #[test]
    fn percentage_follows_the_per_event_rules() {
        let c = charge(ChargeModel::Percentage {
            rate: dec("1.5"),
            fixed_amount: dec("0.1"),
            free_units_per_events: Some(1),
            free_units_per_total_aggregation: None,
            per_transaction_min_amount: None,
            per_transaction_max_amount: None,
        });
        // docs/billing.md: events of 100, 200 and 50 with one free event: 0; 200 × 1.5 % + 0.1 = 3.1;
        // 50 × 1.5 % + 0.1 = 0.85; together 3.95, the period's amount.
        assert_eq!(
            bill(&c, &["100", "200", "50"]),
            vec![(dec("0"), 0), (dec("3.1"), 310), (dec("0.85"), 85)]
        );
        let bounded = charge(ChargeModel::Percentage {
            rate: dec("1.5"),
            fixed_amount: dec("0.1"),
            free_units_per_events: None,
            free_units_per_total_aggregation: Some(dec("150")),
            per_transaction_min_amount: Some(dec("0.5")),
            per_transaction_max_amount: Some(dec("2")),
        });
        // 100 fits the 150 free: 0. 200 has 50 covered: 150 × 1.5 % + 0.1 = 2.35, lowered to 2.
        // 50: nothing left free: 0.75 + 0.1 = 0.85.
        assert_eq!(
            bill(&bounded, &["100", "200", "50"]),
            vec![(dec("0"), 0), (dec("2"), 200), (dec("0.85"), 85)]
        );
    }

    #[test]
    fn details_name_the_model() {
        let c = charge(ChargeModel::zero(ChargeModelKind::Standard));
        let (fee, _) = advance_fee(
            &c,
            None,
            None,
            &Running::default(),
            Decimal::ONE,
            Currency::parse("USD").expect("USD"),
            period(),
        );
        assert_eq!(fee.details, json!({}));
        assert_eq!(fee.events_count, 1);
        assert_eq!(fee.units, Decimal::ONE);
    }
}

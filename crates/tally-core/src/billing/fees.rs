//! Fees: the priced lines of an invoice, each rounded once to the currency's minor unit.

use rust_decimal::Decimal;
use serde_json::Value;

use crate::charge::{ChargeModel, ChargeUsage};
use crate::currency::Currency;
use crate::id::{ChargeFilterId, ChargeId};
use crate::money::{RoundingMode, from_minor, round_fee, to_minor};
use crate::period::Period;
use crate::plan::{Charge, MinimumCommitment, PlanTerms};

use super::usage::BucketUsage;

/// What a fee bills.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FeeKind {
    /// The plan's recurring subscription fee.
    Subscription,
    /// Usage of a charge (or one of its filters).
    Charge,
    /// The true-up that lifts a charge to its minimum spend.
    Commitment,
    /// Prepaid credits bought for a wallet.
    Credit,
    /// An add-on billed on a one-off invoice.
    AddOn,
}

impl FeeKind {
    /// Returns the Lago item type (`subscription`, `charge`, `commitment`, `credit`, `add_on`).
    pub fn name(self) -> &'static str {
        match self {
            FeeKind::Subscription => "subscription",
            FeeKind::Charge => "charge",
            FeeKind::Commitment => "commitment",
            FeeKind::Credit => "credit",
            FeeKind::AddOn => "add_on",
        }
    }

    /// Parses a name written by [`FeeKind::name`].
    pub fn parse(name: &str) -> Option<Self> {
        match name {
            "subscription" => Some(FeeKind::Subscription),
            "charge" => Some(FeeKind::Charge),
            "commitment" => Some(FeeKind::Commitment),
            "credit" => Some(FeeKind::Credit),
            "add_on" => Some(FeeKind::AddOn),
            _ => None,
        }
    }
}

/// One priced line.
#[derive(Debug, Clone, PartialEq)]
pub struct Fee {
    /// What it bills.
    pub kind: FeeKind,
    /// The charge, for charge and true-up fees.
    pub charge_id: Option<ChargeId>,
    /// The charge filter, when the line bills one.
    pub filter_id: Option<ChargeFilterId>,
    /// Units billed (after the metric's rounding; 1 for a whole subscription fee, the share when
    /// prorated).
    pub units: Decimal,
    /// Units before the metric's rounding.
    pub total_aggregated_units: Decimal,
    /// Events behind the line.
    pub events_count: u64,
    /// The exact amount, in major units, before rounding.
    pub precise_amount: Decimal,
    /// The amount, rounded once, half to even, in minor units.
    pub amount_cents: i64,
    /// The period the line covers.
    pub period: Period,
    /// How the amount was computed (per tier, per package…).
    pub details: Value,
}

impl Fee {
    /// The exact price of one unit (`precise_amount / units`), or the amount when no units.
    pub fn precise_unit_amount(&self) -> Decimal {
        if self.units.is_zero() {
            self.precise_amount
        } else {
            crate::aggregation::divide(self.precise_amount, self.units)
                .unwrap_or(self.precise_amount)
        }
    }
}

/// The subscription fee for `period`, of which `share` (0 to 1: proration and trial) is due.
pub fn subscription_fee(terms: &PlanTerms, share: Decimal, period: Period) -> Fee {
    let share = share.clamp(Decimal::ZERO, Decimal::ONE);
    let precise = from_minor(terms.amount_cents, terms.currency) * share;
    Fee {
        kind: FeeKind::Subscription,
        charge_id: None,
        filter_id: None,
        units: share.normalize(),
        total_aggregated_units: share.normalize(),
        events_count: 0,
        precise_amount: precise.normalize(),
        amount_cents: round_fee(precise, terms.currency),
        period,
        details: Value::Null,
    }
}

/// The plan's minimum commitment true-up for a subscription period of which `coverage` (0 to 1) was
/// covered, when the period's fees came to `billed` minor units: the prorated commitment minus what
/// was billed, rounded once (the same rule as a charge's minimum), or nothing when the period reached it.
pub fn commitment_fee(
    commitment: &MinimumCommitment,
    currency: Currency,
    coverage: Decimal,
    billed: i64,
    period: Period,
) -> Option<Fee> {
    let true_up =
        crate::charge::min_amount_true_up(billed, commitment.amount_cents, coverage, currency);
    (true_up > 0).then(|| Fee {
        kind: FeeKind::Commitment,
        charge_id: None,
        filter_id: None,
        units: Decimal::ONE,
        total_aggregated_units: Decimal::ONE,
        events_count: 0,
        precise_amount: from_minor(true_up, currency),
        amount_cents: true_up,
        period,
        details: Value::Null,
    })
}

/// A one-off fee for an add-on: `units` at `unit_amount_cents` (minor units of `currency`) each, rounded
/// once, half to even, to a whole minor unit. Returns `None` when the units or the price are negative
/// or the amount does not fit in minor units; callers refuse such input.
pub fn add_on_fee(
    unit_amount_cents: i64,
    units: Decimal,
    currency: Currency,
    period: Period,
) -> Option<Fee> {
    if unit_amount_cents < 0 || units.is_sign_negative() {
        return None;
    }
    let precise = from_minor(unit_amount_cents, currency).checked_mul(units)?;
    let amount_cents = to_minor(precise, currency, RoundingMode::HalfEven)?;
    Some(Fee {
        kind: FeeKind::AddOn,
        charge_id: None,
        filter_id: None,
        units: units.normalize(),
        total_aggregated_units: units.normalize(),
        events_count: 0,
        precise_amount: precise.normalize(),
        amount_cents,
        period,
        details: Value::Null,
    })
}

/// The fees of one charge for a period: one per bucket (filters, then the charge's own terms), plus a
/// true-up fee when the charge's total is below its minimum prorated by `coverage` (the share of the
/// period the subscription covered). `event_values` gives, per bucket, the values percentage charges
/// need event by event.
pub fn charge_fees(
    charge: &Charge,
    buckets: &[BucketUsage],
    event_values: &[Option<Vec<Decimal>>],
    currency: Currency,
    period: Period,
    coverage: Decimal,
) -> Vec<Fee> {
    let mut fees = Vec::with_capacity(buckets.len() + 1);
    for (index, bucket) in buckets.iter().enumerate() {
        let model: &ChargeModel = match bucket.filter {
            Some(id) => charge
                .filters
                .iter()
                .find(|(f, _)| *f == id)
                .map_or(&charge.terms.model, |(_, f)| &f.model),
            None => &charge.terms.model,
        };
        let usage = ChargeUsage {
            units: bucket.units,
            events_count: bucket.events_count,
            event_values: event_values.get(index).cloned().flatten(),
        };
        let priced = model.price(&usage);
        fees.push(Fee {
            kind: FeeKind::Charge,
            charge_id: Some(charge.id),
            filter_id: bucket.filter,
            units: bucket.units,
            total_aggregated_units: bucket.total_aggregated_units,
            events_count: bucket.events_count,
            precise_amount: priced.amount.normalize(),
            amount_cents: round_fee(priced.amount, currency),
            period,
            details: priced.details,
        });
    }
    if charge.terms.min_amount_cents > 0 {
        let billed: i64 = fees.iter().map(|f| f.amount_cents).sum();
        let true_up = crate::charge::min_amount_true_up(
            billed,
            charge.terms.min_amount_cents,
            coverage,
            currency,
        );
        if true_up > 0 {
            fees.push(Fee {
                kind: FeeKind::Commitment,
                charge_id: Some(charge.id),
                filter_id: None,
                units: Decimal::ONE,
                total_aggregated_units: Decimal::ONE,
                events_count: 0,
                precise_amount: from_minor(true_up, currency),
                amount_cents: true_up,
                period,
                details: Value::Null,
            });
        }
    }
    fees
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::time::Timestamp;

    fn currency(code: &str) -> Currency {
        Currency::parse(code).expect("currency")
    }

    fn day() -> Period {
        Period {
            from: Timestamp::from_seconds(1_773_532_800),
            to: Timestamp::from_seconds(1_773_532_801),
        }
    }

    fn amount(unit_amount_cents: i64, units: &str, code: &str) -> Option<(i64, Decimal)> {
        add_on_fee(
            unit_amount_cents,
            units.parse().expect("units"),
            currency(code),
            day(),
        )
        .map(|f| (f.amount_cents, f.precise_amount))
    }

    #[test]
    fn add_on_fees_round_once_half_to_even() {
        // 10.01 USD × 2.5 = 25.025 USD: a tie between 2502 and 2503 cents, to the even 2502.
        assert_eq!(
            amount(1001, "2.5", "USD"),
            Some((2502, Decimal::new(25025, 3)))
        );
        // 10.03 USD × 2.5 = 25.075 USD: a tie, to the even 2508.
        assert_eq!(
            amount(1003, "2.5", "USD"),
            Some((2508, Decimal::new(25075, 3)))
        );
        // 12.34 USD × 3 = 37.02 USD exactly.
        assert_eq!(
            amount(1234, "3", "USD"),
            Some((3702, Decimal::new(3702, 2)))
        );
        // ¥333 × 0.5 = ¥166.5, to the even ¥166.
        assert_eq!(
            amount(333, "0.5", "JPY"),
            Some((166, Decimal::new(1665, 1)))
        );
        // 1.001 KWD × 1.5 = 1.5015 KWD, to the even 1.502 (1502 fils).
        assert_eq!(
            amount(1001, "1.5", "KWD"),
            Some((1502, Decimal::new(15015, 4)))
        );
        // A price of 0 bills 0.
        assert_eq!(amount(0, "4", "USD"), Some((0, Decimal::ZERO)));
    }

    #[test]
    fn add_on_fees_refuse_negative_or_oversized_input() {
        assert_eq!(amount(-1, "1", "USD"), None);
        assert_eq!(amount(100, "-0.5", "USD"), None);
        assert_eq!(amount(i64::MAX, "2", "USD"), None);
        let fee = add_on_fee(500, Decimal::new(25, 1), currency("USD"), day()).expect("fee");
        assert_eq!(fee.kind, FeeKind::AddOn);
        assert_eq!(fee.units, Decimal::new(25, 1));
        // 12.50 / 2.5 = 5.00 per unit.
        assert_eq!(fee.precise_unit_amount(), Decimal::from(5));
    }
}

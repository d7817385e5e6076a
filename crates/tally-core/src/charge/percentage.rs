//! The `percentage` model: a rate on the summed value of the period's events, a fixed fee per paid
//! event, free allowances (the first N events, the first X of value) and optional per-transaction
//! bounds.
//!
//! The events are walked oldest first. An event is free while the allowance lasts: it must be among
//! the first `free_units_per_events` events (when set) and its whole value must fit in what is left of
//! `free_units_per_total_aggregation` (when set). The event that exhausts the value allowance has its
//! covered part free and pays the rate on the rest and the fixed fee. Without per-transaction bounds
//! the amount is `(units − free value) × rate / 100 + fixed_amount × paid events`; with them, each paid
//! event's fee (`value × rate / 100 + fixed_amount`) is clamped on its own and the fees are summed.

use rust_decimal::Decimal;
use serde_json::{Map, Value, json};

use super::properties::{field, optional_price, present, price_json, required_price, whole};
use super::{ChargeModel, ChargeUsage, Priced};
use crate::error::{Reason, ValidationErrors};
use crate::money::dec_string;

/// Returns `rate` percent of `value`.
pub(super) fn percent_of(value: Decimal, rate: Decimal) -> Decimal {
    value.saturating_mul(rate) / Decimal::ONE_HUNDRED
}

/// Reads `{"rate": "1.5", "fixed_amount": "0.1", "free_units_per_events": 3,
/// "free_units_per_total_aggregation": "100", "per_transaction_min_amount": "0.5",
/// "per_transaction_max_amount": "10"}`; only `rate` is required.
pub(super) fn from_properties(map: &Map<String, Value>) -> Result<ChargeModel, ValidationErrors> {
    let mut errors = ValidationErrors::new();
    let rate = required_price(
        map,
        "rate",
        &field("rate"),
        Reason::InvalidRate,
        &mut errors,
    );
    let fixed_amount = optional_price(map, "fixed_amount", Reason::InvalidFixedAmount, &mut errors);
    let free_units_per_events = present(map, "free_units_per_events").and_then(|value| {
        let count = whole(value).filter(|n| *n > 0);
        if count.is_none() {
            errors.push(
                field("free_units_per_events"),
                Reason::InvalidFreeUnitsPerEvents,
            );
        }
        count
    });
    let free_units_per_total_aggregation = optional_price(
        map,
        "free_units_per_total_aggregation",
        Reason::InvalidFreeUnitsPerTotalAggregation,
        &mut errors,
    );
    let per_transaction_min_amount = optional_price(
        map,
        "per_transaction_min_amount",
        Reason::InvalidAmount,
        &mut errors,
    );
    let per_transaction_max_amount = optional_price(
        map,
        "per_transaction_max_amount",
        Reason::InvalidAmount,
        &mut errors,
    );
    if let (Some(min), Some(max)) = (per_transaction_min_amount, per_transaction_max_amount)
        && min > max
    {
        errors.push(
            field("per_transaction_max_amount"),
            Reason::PerTransactionMaxLowerThanPerTransactionMin,
        );
    }
    errors.into_result(ChargeModel::Percentage {
        rate,
        fixed_amount: fixed_amount.unwrap_or_default(),
        free_units_per_events,
        free_units_per_total_aggregation,
        per_transaction_min_amount,
        per_transaction_max_amount,
    })
}

/// Writes the properties: `rate` and `fixed_amount` always, the optional keys when set.
pub(super) fn to_properties(model: &ChargeModel) -> Value {
    let mut map = Map::new();
    if let ChargeModel::Percentage {
        rate,
        fixed_amount,
        free_units_per_events,
        free_units_per_total_aggregation,
        per_transaction_min_amount,
        per_transaction_max_amount,
    } = model
    {
        map.insert("rate".into(), price_json(*rate));
        map.insert("fixed_amount".into(), price_json(*fixed_amount));
        if let Some(count) = free_units_per_events {
            map.insert("free_units_per_events".into(), Value::from(*count));
        }
        let optional = [
            (
                "free_units_per_total_aggregation",
                free_units_per_total_aggregation,
            ),
            ("per_transaction_min_amount", per_transaction_min_amount),
            ("per_transaction_max_amount", per_transaction_max_amount),
        ];
        for (key, value) in optional {
            if let Some(value) = value {
                map.insert(key.into(), price_json(*value));
            }
        }
    }
    Value::Object(map)
}

/// The percentage terms, copied out of the model.
struct Terms {
    rate: Decimal,
    fixed_amount: Decimal,
    free_events: Option<u64>,
    free_value: Option<Decimal>,
    min: Option<Decimal>,
    max: Option<Decimal>,
}

impl Terms {
    /// Returns one paid event's fee on its paid value, clamped to the per-transaction bounds.
    fn event_fee(&self, paid_value: Decimal) -> Decimal {
        let fee = percent_of(paid_value, self.rate).saturating_add(self.fixed_amount);
        match (self.min, self.max) {
            (Some(min), _) if fee < min => min,
            (_, Some(max)) if fee > max => max,
            _ => fee,
        }
    }
}

/// What the walk over the events found.
struct Walk {
    /// Value covered by the free allowance.
    free_value: Decimal,
    /// Events entirely free (no rate, no fixed fee).
    free_events: u64,
    /// Events that pay the fixed fee.
    paid_events: u64,
    /// Σ of the paid events' clamped fees, when per-event values were walked.
    per_transaction_total: Option<Decimal>,
}

/// What one event of the walk is: the part of its value the free allowance covers, whether it is
/// entirely free, and its fee (0 when free; clamped to the per-transaction bounds otherwise).
struct Step {
    covered: Decimal,
    free: bool,
    fee: Decimal,
}

/// Takes the event at `index` (0 for the period's first) with `value_left` of the value allowance
/// (`None` when there is none), and uses up its share of the allowance. Negative values count as 0.
fn step(terms: &Terms, index: u64, value_left: &mut Option<Decimal>, raw: Decimal) -> Step {
    let has_allowance = terms.free_events.is_some() || terms.free_value.is_some();
    let value = raw.max(Decimal::ZERO);
    let in_window = has_allowance && terms.free_events.is_none_or(|n| index < n);
    let (covered, free) = match (in_window, value_left.as_mut()) {
        (false, _) => (Decimal::ZERO, false),
        (true, None) => (value, true),
        (true, Some(left)) if *left > Decimal::ZERO && value <= *left => {
            *left -= value;
            (value, true)
        }
        (true, Some(left)) => {
            let covered = value.min(*left);
            *left -= covered;
            (covered, false)
        }
    };
    let fee = if free {
        Decimal::ZERO
    } else {
        terms.event_fee(value - covered)
    };
    Step { covered, free, fee }
}

/// Walks the events oldest first, applying the free allowances (see the module documentation).
/// Negative event values count as 0.
fn walk(terms: &Terms, values: &[Decimal]) -> Walk {
    let mut value_left = terms.free_value;
    let mut result = Walk {
        free_value: Decimal::ZERO,
        free_events: 0,
        paid_events: 0,
        per_transaction_total: None,
    };
    let mut total = Decimal::ZERO;
    for (index, raw) in values.iter().enumerate() {
        let taken = step(terms, index as u64, &mut value_left, *raw);
        result.free_value = result.free_value.saturating_add(taken.covered);
        if taken.free {
            result.free_events += 1;
        } else {
            result.paid_events += 1;
            total = total.saturating_add(taken.fee);
        }
    }
    result.per_transaction_total = Some(total);
    result
}

/// One more event of a percentage charge, priced on its own (pay-in-advance charges).
#[derive(Debug, Clone, PartialEq)]
pub struct NextEvent {
    /// The event's fee, exact: 0 when the allowance makes it free, else its paid value × rate / 100
    /// plus the fixed fee, clamped to the per-transaction bounds.
    pub amount: Decimal,
    /// The part of its value the free allowance covers.
    pub free_value: Decimal,
    /// Lago's `amount_details` for the one event.
    pub details: Value,
}

fn terms_of(model: &ChargeModel) -> Option<Terms> {
    match model {
        ChargeModel::Percentage {
            rate,
            fixed_amount,
            free_units_per_events,
            free_units_per_total_aggregation,
            per_transaction_min_amount,
            per_transaction_max_amount,
        } => Some(Terms {
            rate: *rate,
            fixed_amount: *fixed_amount,
            free_events: *free_units_per_events,
            free_value: *free_units_per_total_aggregation,
            min: *per_transaction_min_amount,
            max: *per_transaction_max_amount,
        }),
        _ => None,
    }
}

/// Prices the event that follows `events_before` events of the period whose free allowance already
/// covered `free_value_used`, exactly as [`price`] would walk it: the sum of these amounts over the
/// period's events, oldest first, is the period's amount with per-event values.
pub(super) fn next_event(
    model: &ChargeModel,
    events_before: u64,
    free_value_used: Decimal,
    value: Decimal,
) -> Option<NextEvent> {
    let terms = terms_of(model)?;
    let mut value_left = terms
        .free_value
        .map(|a| (a - free_value_used).max(Decimal::ZERO));
    let taken = step(&terms, events_before, &mut value_left, value);
    let value = value.max(Decimal::ZERO);
    let paid_units = value - taken.covered;
    let (free_events, paid_events) = if taken.free { (1, 0) } else { (0, 1) };
    let percentage_amount = if taken.free {
        Decimal::ZERO
    } else {
        percent_of(paid_units, terms.rate)
    };
    let fixed = if taken.free {
        Decimal::ZERO
    } else {
        terms.fixed_amount
    };
    let plain = percentage_amount.saturating_add(fixed);
    Some(NextEvent {
        amount: taken.fee,
        free_value: taken.covered,
        details: json!({
            "units": dec_string(value),
            "free_units": dec_string(taken.covered),
            "paid_units": dec_string(paid_units),
            "free_events": free_events,
            "paid_events": paid_events,
            "rate": dec_string(terms.rate),
            "per_unit_total_amount": dec_string(percentage_amount),
            "fixed_fee_unit_amount": dec_string(fixed),
            "fixed_fee_total_amount": dec_string(fixed),
            "min_max_adjustment_total_amount": dec_string(taken.fee.saturating_sub(plain)),
        }),
    })
}

/// Prices a percentage charge. Without the event values it needs (see
/// [`ChargeModel::needs_event_values`]) it falls back to what the sum and count tell: the first
/// `free_units_per_events` events are free of the fixed fee but their value is not known (so not
/// free), the value allowance is `min(units, free_units_per_total_aggregation)`, and per-transaction
/// bounds are not applied.
pub(super) fn price(model: &ChargeModel, units: Decimal, usage: &ChargeUsage) -> Priced {
    let Some(terms) = terms_of(model) else {
        return Priced {
            amount: Decimal::ZERO,
            units,
            details: json!({}),
        };
    };
    let found = match &usage.event_values {
        Some(values) => walk(&terms, values),
        None => {
            let free_events = terms.free_events.map_or(0, |n| n.min(usage.events_count));
            Walk {
                free_value: terms.free_value.map_or(Decimal::ZERO, |a| a.min(units)),
                free_events,
                paid_events: usage.events_count - free_events,
                per_transaction_total: None,
            }
        }
    };
    let free_units = found.free_value.min(units);
    let paid_units = units - free_units;
    let percentage_amount = percent_of(paid_units, terms.rate);
    let fixed_total = terms
        .fixed_amount
        .saturating_mul(Decimal::from(found.paid_events));
    let plain = percentage_amount.saturating_add(fixed_total);
    let bounded = terms.min.is_some() || terms.max.is_some();
    let amount = match found.per_transaction_total {
        Some(total) if bounded => total,
        _ => plain,
    };
    Priced {
        amount,
        units,
        details: json!({
            "units": dec_string(units),
            "free_units": dec_string(free_units),
            "paid_units": dec_string(paid_units),
            "free_events": found.free_events,
            "paid_events": found.paid_events,
            "rate": dec_string(terms.rate),
            "per_unit_total_amount": dec_string(percentage_amount),
            "fixed_fee_unit_amount": dec_string(if found.paid_events > 0 {
                terms.fixed_amount
            } else {
                Decimal::ZERO
            }),
            "fixed_fee_total_amount": dec_string(fixed_total),
            "min_max_adjustment_total_amount": dec_string(amount.saturating_sub(plain)),
        }),
    }
}

//! Charge models: how the units of one charge in one period become an exact amount of money.
//!
//! A charge prices its metric's units with one of Lago's models (`standard`, `package`, `graduated`,
//! `volume`, `percentage`, `graduated_percentage`), configured by Lago's `properties` object.
//! [`ChargeModel::from_properties`] validates that object with Lago's keys and reason codes,
//! [`ChargeModel::to_properties`] writes it back, and [`ChargeModel::price`] returns the exact amount in
//! major units with a Lago-like `amount_details` breakdown. Nothing here rounds: a fee is rounded once,
//! by [`round_fee`], when it is made. The rules, with worked examples, are in `docs/billing.md`
//! ("Charge models").

mod graduated;
mod graduated_percentage;
mod minimum;
mod package;
mod percentage;
mod properties;
mod ranges;
mod standard;
mod volume;

use std::fmt;

use rust_decimal::Decimal;
use serde_json::{Map, Value};

use crate::error::ValidationErrors;

pub use crate::money::round_fee;
pub use minimum::min_amount_true_up;
pub use percentage::NextEvent;

/// The name of a charge model, as Lago's `charge_model` field spells it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum ChargeModelKind {
    /// `standard`: one price per unit.
    Standard,
    /// `package`: a price per started package of units, after free units.
    Package,
    /// `graduated`: each tier prices the units that fall in it.
    Graduated,
    /// `volume`: the tier the total falls in prices every unit.
    Volume,
    /// `percentage`: a rate on the summed value, plus a fixed fee per event.
    Percentage,
    /// `graduated_percentage`: each tier applies its rate to the value that falls in it.
    GraduatedPercentage,
}

const KIND_NAMES: [(ChargeModelKind, &str); 6] = [
    (ChargeModelKind::Standard, "standard"),
    (ChargeModelKind::Package, "package"),
    (ChargeModelKind::Graduated, "graduated"),
    (ChargeModelKind::Volume, "volume"),
    (ChargeModelKind::Percentage, "percentage"),
    (ChargeModelKind::GraduatedPercentage, "graduated_percentage"),
];

impl ChargeModelKind {
    /// Parses a Lago `charge_model` name; `None` for names tally does not price (`dynamic`, `custom`,
    /// anything unknown).
    pub fn parse(name: &str) -> Option<Self> {
        KIND_NAMES
            .iter()
            .find(|(_, n)| *n == name)
            .map(|(kind, _)| *kind)
    }

    /// Returns the Lago name.
    pub fn name(self) -> &'static str {
        KIND_NAMES
            .iter()
            .find(|(kind, _)| *kind == self)
            .map_or("standard", |(_, n)| n)
    }
}

impl fmt::Display for ChargeModelKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// One tier of a graduated or volume charge (Lago `graduated_ranges` / `volume_ranges` item).
///
/// A tier holds the units above the previous tier's `to_value` up to and including its own
/// `to_value` (the first tier starts at 0; the last has no `to_value`). `from_value` is kept as the
/// client wrote it: Lago accepts both `from = previous to` and `from = previous to + 1`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Tier {
    /// The tier's first unit as written (`from_value`).
    pub from_value: Decimal,
    /// The tier's last unit, inclusive (`to_value`); `None` for the open last tier.
    pub to_value: Option<Decimal>,
    /// Price of each unit priced by this tier, in major units (`per_unit_amount`).
    pub per_unit_amount: Decimal,
    /// Price charged once when the tier is reached, in major units (`flat_amount`).
    pub flat_amount: Decimal,
}

/// One tier of a graduated percentage charge (Lago `graduated_percentage_ranges` item); bounds as
/// in [`Tier`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PercentageTier {
    /// The tier's first unit as written (`from_value`).
    pub from_value: Decimal,
    /// The tier's last unit, inclusive (`to_value`); `None` for the open last tier.
    pub to_value: Option<Decimal>,
    /// Percentage applied to the value in this tier (`"1.5"` is 1.5 %).
    pub rate: Decimal,
    /// Price charged once when the tier is reached, in major units (`flat_amount`).
    pub flat_amount: Decimal,
}

/// A validated charge model with its parameters. Prices are exact decimals in major units.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ChargeModel {
    /// Units × `amount`.
    Standard {
        /// Price per unit.
        amount: Decimal,
    },
    /// Started packages of `package_size` units after `free_units`, × `amount`.
    Package {
        /// Price per package.
        amount: Decimal,
        /// Units per package, > 0.
        package_size: u64,
        /// Units given free before the first package.
        free_units: u64,
    },
    /// Each tier prices its own units, plus its flat amount once reached.
    Graduated {
        /// The tiers, in order, the last one open.
        ranges: Vec<Tier>,
    },
    /// The tier holding the total prices every unit, plus its flat amount.
    Volume {
        /// The tiers, in order, the last one open.
        ranges: Vec<Tier>,
    },
    /// `rate` % of the summed value beyond the free allowance, plus `fixed_amount` per paid event.
    Percentage {
        /// Percentage of the value (`"1.5"` is 1.5 %).
        rate: Decimal,
        /// Fee per paid event, in major units.
        fixed_amount: Decimal,
        /// The first this-many events of the period are free.
        free_units_per_events: Option<u64>,
        /// The first this-much value of the period is free.
        free_units_per_total_aggregation: Option<Decimal>,
        /// Each paid event's fee is raised to at least this.
        per_transaction_min_amount: Option<Decimal>,
        /// Each paid event's fee is lowered to at most this.
        per_transaction_max_amount: Option<Decimal>,
    },
    /// Each tier applies its rate to its own units, plus its flat amount once reached.
    GraduatedPercentage {
        /// The tiers, in order, the last one open.
        ranges: Vec<PercentageTier>,
    },
}

/// What a charge is priced on for one period (or one charge filter, or one group).
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct ChargeUsage {
    /// The aggregated units (after the metric's rounding, if any). Negative units price as zero.
    pub units: Decimal,
    /// The number of events aggregated.
    pub events_count: u64,
    /// The events' values in time order, oldest first. Read only when
    /// [`ChargeModel::needs_event_values`] says so; `None` otherwise.
    pub event_values: Option<Vec<Decimal>>,
}

impl ChargeUsage {
    /// Builds usage from aggregated units and an event count, without per-event values.
    pub fn new(units: Decimal, events_count: u64) -> Self {
        ChargeUsage {
            units,
            events_count,
            event_values: None,
        }
    }

    /// Builds usage from the events' values in time order: units are their sum, the count their
    /// number.
    pub fn from_event_values(values: Vec<Decimal>) -> Self {
        ChargeUsage {
            units: values
                .iter()
                .fold(Decimal::ZERO, |sum, v| sum.saturating_add(*v)),
            events_count: values.len() as u64,
            event_values: Some(values),
        }
    }
}

/// The result of pricing one charge: an exact amount, never rounded, and how it was reached.
#[derive(Debug, Clone, PartialEq)]
pub struct Priced {
    /// The amount in major units, exact; [`round_fee`] turns it into the fee's minor units.
    pub amount: Decimal,
    /// The units priced (negative usage is priced, and reported, as 0).
    pub units: Decimal,
    /// A Lago-like `amount_details` object: per tier for graduated models, packages for package,
    /// free and paid units and events for percentage, `{}` for standard.
    pub details: Value,
}

impl ChargeModel {
    /// Returns the model Lago stores when a charge is created without `properties`: every price 0,
    /// one open tier, packages of 1.
    pub fn zero(kind: ChargeModelKind) -> Self {
        match kind {
            ChargeModelKind::Standard => ChargeModel::Standard {
                amount: Decimal::ZERO,
            },
            ChargeModelKind::Package => ChargeModel::Package {
                amount: Decimal::ZERO,
                package_size: 1,
                free_units: 0,
            },
            ChargeModelKind::Graduated => ChargeModel::Graduated {
                ranges: vec![ranges::open_tier()],
            },
            ChargeModelKind::Volume => ChargeModel::Volume {
                ranges: vec![ranges::open_tier()],
            },
            ChargeModelKind::Percentage => ChargeModel::Percentage {
                rate: Decimal::ZERO,
                fixed_amount: Decimal::ZERO,
                free_units_per_events: None,
                free_units_per_total_aggregation: None,
                per_transaction_min_amount: None,
                per_transaction_max_amount: None,
            },
            ChargeModelKind::GraduatedPercentage => ChargeModel::GraduatedPercentage {
                ranges: vec![PercentageTier {
                    from_value: Decimal::ZERO,
                    to_value: None,
                    rate: Decimal::ZERO,
                    flat_amount: Decimal::ZERO,
                }],
            },
        }
    }

    /// Reads and validates a charge's Lago `properties` for a model. Keys the model does not use are
    /// ignored; absent (or empty) properties give Lago's zero default ([`ChargeModel::zero`]).
    /// Errors name the field under `properties.` (`properties.amount`,
    /// `properties.graduated_ranges`, `properties.graduated_ranges.1.flat_amount`) with Lago's reason
    /// codes (`invalid_amount`, `invalid_graduated_ranges`, …).
    pub fn from_properties(
        kind: ChargeModelKind,
        properties: Option<&Map<String, Value>>,
    ) -> Result<ChargeModel, ValidationErrors> {
        let Some(map) = properties.filter(|map| !map.is_empty()) else {
            return Ok(ChargeModel::zero(kind));
        };
        match kind {
            ChargeModelKind::Standard => standard::from_properties(map),
            ChargeModelKind::Package => package::from_properties(map),
            ChargeModelKind::Graduated => graduated::from_properties(map),
            ChargeModelKind::Volume => volume::from_properties(map),
            ChargeModelKind::Percentage => percentage::from_properties(map),
            ChargeModelKind::GraduatedPercentage => graduated_percentage::from_properties(map),
        }
    }

    /// Writes the model as Lago's `properties` object: prices as dec-strings (`"0.05"`), sizes and
    /// counts as integers, range bounds as JSON numbers; optional percentage keys only when set.
    pub fn to_properties(&self) -> Value {
        match self {
            ChargeModel::Standard { amount } => standard::to_properties(*amount),
            ChargeModel::Package {
                amount,
                package_size,
                free_units,
            } => package::to_properties(*amount, *package_size, *free_units),
            ChargeModel::Graduated { ranges } => {
                ranges::tiers_to_properties("graduated_ranges", ranges)
            }
            ChargeModel::Volume { ranges } => ranges::tiers_to_properties("volume_ranges", ranges),
            ChargeModel::Percentage { .. } => percentage::to_properties(self),
            ChargeModel::GraduatedPercentage { ranges } => {
                graduated_percentage::to_properties(ranges)
            }
        }
    }

    /// Returns the model's name.
    pub fn kind(&self) -> ChargeModelKind {
        match self {
            ChargeModel::Standard { .. } => ChargeModelKind::Standard,
            ChargeModel::Package { .. } => ChargeModelKind::Package,
            ChargeModel::Graduated { .. } => ChargeModelKind::Graduated,
            ChargeModel::Volume { .. } => ChargeModelKind::Volume,
            ChargeModel::Percentage { .. } => ChargeModelKind::Percentage,
            ChargeModel::GraduatedPercentage { .. } => ChargeModelKind::GraduatedPercentage,
        }
    }

    /// Tells whether pricing needs the events' values in time order ([`ChargeUsage::event_values`]),
    /// not only their sum and count: a percentage charge with free events, per-transaction bounds, or
    /// a free value allowance together with a fixed fee per event.
    pub fn needs_event_values(&self) -> bool {
        match self {
            ChargeModel::Percentage {
                fixed_amount,
                free_units_per_events,
                free_units_per_total_aggregation,
                per_transaction_min_amount,
                per_transaction_max_amount,
                ..
            } => {
                free_units_per_events.is_some()
                    || per_transaction_min_amount.is_some()
                    || per_transaction_max_amount.is_some()
                    || (free_units_per_total_aggregation.is_some() && !fixed_amount.is_zero())
            }
            _ => false,
        }
    }

    /// Prices one more event of a `percentage` charge on its own, after `events_before` events of the
    /// period whose free allowance covered `free_value_used` (pay-in-advance charges bill event by
    /// event); `None` for the other models, which are priced on their units.
    pub fn price_next_event(
        &self,
        events_before: u64,
        free_value_used: Decimal,
        value: Decimal,
    ) -> Option<NextEvent> {
        percentage::next_event(self, events_before, free_value_used, value)
    }

    /// Prices one period's usage: the exact amount in major units, never rounded, never negative.
    pub fn price(&self, usage: &ChargeUsage) -> Priced {
        let units = usage.units.max(Decimal::ZERO);
        match self {
            ChargeModel::Standard { amount } => standard::price(*amount, units),
            ChargeModel::Package {
                amount,
                package_size,
                free_units,
            } => package::price(*amount, *package_size, *free_units, units),
            ChargeModel::Graduated { ranges } => graduated::price(ranges, units),
            ChargeModel::Volume { ranges } => volume::price(ranges, units),
            ChargeModel::Percentage { .. } => percentage::price(self, units, usage),
            ChargeModel::GraduatedPercentage { ranges } => {
                graduated_percentage::price(ranges, units)
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn kinds_use_lago_names() {
        for (kind, name) in KIND_NAMES {
            assert_eq!(ChargeModelKind::parse(name), Some(kind));
            assert_eq!(kind.name(), name);
            assert_eq!(ChargeModel::zero(kind).kind(), kind);
        }
        assert_eq!(ChargeModelKind::parse("dynamic"), None);
        assert_eq!(ChargeModelKind::parse("Standard"), None);
    }

    #[test]
    fn absent_or_empty_properties_give_the_zero_default() {
        let empty = Map::new();
        for (kind, _) in KIND_NAMES {
            assert_eq!(
                ChargeModel::from_properties(kind, None),
                Ok(ChargeModel::zero(kind))
            );
            assert_eq!(
                ChargeModel::from_properties(kind, Some(&empty)),
                Ok(ChargeModel::zero(kind))
            );
            let priced = ChargeModel::zero(kind).price(&ChargeUsage::new(Decimal::TEN, 3));
            assert_eq!(priced.amount, Decimal::ZERO);
        }
    }
}

//! Usage of one charge over a period, sorted into the charge's filters.

use std::collections::BTreeMap;

use rust_decimal::Decimal;

use crate::aggregation::{AggState, DistinctEvent, Overflow, unique_count};
use crate::id::ChargeFilterId;
use crate::metric::{AggregationType, MetricDefinition};
use crate::plan::Charge;
use crate::time::Timestamp;

/// The aggregate of one dimension group over the period.
#[derive(Debug, Clone, PartialEq)]
pub enum GroupAggregate {
    /// A mergeable state (every aggregation but unique counts).
    State(AggState),
    /// The values seen, for unique counts.
    Distinct(Vec<DistinctEvent>),
}

/// Usage of one combination of dimension values.
#[derive(Debug, Clone, PartialEq)]
pub struct GroupUsage {
    /// The metric's dimension values for this group.
    pub dims: BTreeMap<String, Option<String>>,
    /// What the group's events add up to.
    pub aggregate: GroupAggregate,
}

/// Usage billed by one part of a charge: one of its filters, or its own terms (`filter: None`) for
/// events that match no filter.
#[derive(Debug, Clone, PartialEq)]
pub struct BucketUsage {
    /// The filter, or `None` for the charge's own terms.
    pub filter: Option<ChargeFilterId>,
    /// Units after the metric's rounding.
    pub units: Decimal,
    /// Units before the metric's rounding.
    pub total_aggregated_units: Decimal,
    /// Events counted.
    pub events_count: u64,
}

enum Merged {
    State(AggState),
    Distinct(Vec<DistinctEvent>),
}

/// Returns the filter an event group belongs to: the most specific matching filter (most keys), the
/// first listed on a tie; `None` when no filter matches.
pub fn filter_for(
    charge: &Charge,
    dims: &BTreeMap<String, Option<String>>,
) -> Option<ChargeFilterId> {
    let mut best: Option<(usize, ChargeFilterId)> = None;
    for (id, filter) in &charge.filters {
        if filter.matches(dims)
            && best.is_none_or(|(specificity, _)| filter.specificity() > specificity)
        {
            best = Some((filter.specificity(), *id));
        }
    }
    best.map(|(_, id)| id)
}

/// Aggregates a charge's usage over `span` per bucket: one per filter (in order) and the charge's own,
/// always all present, at zero when nothing matched. `initial` is the running total at the start of the
/// span, for recurring weighted sums.
pub fn charge_buckets(
    charge: &Charge,
    metric: &MetricDefinition,
    groups: &[GroupUsage],
    span: (Timestamp, Timestamp),
    initial: Decimal,
) -> Result<Vec<BucketUsage>, Overflow> {
    let mut merged: BTreeMap<Option<usize>, Merged> = BTreeMap::new();
    let position = |id: ChargeFilterId| charge.filters.iter().position(|(f, _)| *f == id);
    for group in groups {
        let key = filter_for(charge, &group.dims).and_then(position);
        match (&group.aggregate, merged.get_mut(&key)) {
            (GroupAggregate::State(state), Some(Merged::State(into))) => into.merge(state)?,
            (GroupAggregate::Distinct(events), Some(Merged::Distinct(into))) => {
                into.extend(events.iter().cloned())
            }
            (GroupAggregate::State(state), None) => {
                let mut fresh = AggState::new(span.0);
                fresh.merge(state)?;
                merged.insert(key, Merged::State(fresh));
            }
            (GroupAggregate::Distinct(events), None) => {
                merged.insert(key, Merged::Distinct(events.clone()));
            }
            // A metric is either a unique count or not; mixed groups cannot happen.
            (_, Some(_)) => {}
        }
    }
    let keys: Vec<Option<usize>> = (0..charge.filters.len())
        .map(Some)
        .chain(std::iter::once(None))
        .collect();
    Ok(keys
        .into_iter()
        .map(|key| {
            let (total, events) = match merged.get(&key) {
                Some(Merged::State(state)) => {
                    let units = match metric.aggregation {
                        AggregationType::WeightedSum => {
                            state.units(metric.aggregation, span, initial)
                        }
                        _ => state.units(metric.aggregation, span, Decimal::ZERO),
                    };
                    (
                        units.unwrap_or(Decimal::ZERO),
                        u64::try_from(state.count).unwrap_or(0),
                    )
                }
                Some(Merged::Distinct(events)) => (
                    Decimal::from(unique_count(events, metric.recurring)),
                    events.len() as u64,
                ),
                None => (
                    if metric.aggregation == AggregationType::WeightedSum {
                        AggState::new(span.0)
                            .units(metric.aggregation, span, initial)
                            .unwrap_or(Decimal::ZERO)
                    } else {
                        Decimal::ZERO
                    },
                    0,
                ),
            };
            let units = metric.rounding.map_or(total, |r| r.apply(total));
            BucketUsage {
                filter: key.map(|index| charge.filters[index].0),
                units: units.normalize(),
                total_aggregated_units: total.normalize(),
                events_count: events,
            }
        })
        .collect())
}

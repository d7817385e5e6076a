//! Plans and their charges: what a subscription pays for, in Lago's terms.
//!
//! A plan has a recurring subscription fee (`amount_cents` per interval, in advance or in arrears) and
//! charges, each pricing one billable metric with a charge model. A charge may price subsets of events
//! separately through filters on the metric's filter keys.

use std::collections::BTreeMap;

use crate::charge::{ChargeModel, ChargeModelKind};
use crate::currency::Currency;
use crate::error::{Reason, ValidationErrors};
use crate::id::{ChargeFilterId, ChargeId, Code, MetricId, PlanId, UsageThresholdId};
use crate::metric::{AggregationType, MetricDefinition};
use crate::period::Interval;
use crate::time::Timestamp;

/// The filter value that matches any value of its key.
pub const ALL_FILTER_VALUES: &str = "__ALL_FILTER_VALUES__";

/// A plan as stored.
#[derive(Debug, Clone, PartialEq)]
pub struct Plan {
    /// Its id (`lago_id`).
    pub id: PlanId,
    /// What the plan says.
    pub terms: PlanTerms,
    /// Its charges, in order.
    pub charges: Vec<Charge>,
    /// Its usage thresholds (progressive billing), by amount.
    pub usage_thresholds: Vec<(UsageThresholdId, UsageThreshold)>,
    /// When it was created.
    pub created_at: Timestamp,
    /// When it last changed.
    pub updated_at: Timestamp,
}

impl Plan {
    /// Its usage thresholds without their ids, in order.
    pub fn thresholds(&self) -> Vec<UsageThreshold> {
        self.usage_thresholds
            .iter()
            .map(|(_, t)| t.clone())
            .collect()
    }
}

/// The plan's own fields (everything but charges and ids).
#[derive(Debug, Clone, PartialEq)]
pub struct PlanTerms {
    /// Unique among live plans of the organization.
    pub code: Code,
    /// Display name.
    pub name: String,
    /// Free text.
    pub description: Option<String>,
    /// Name on invoices.
    pub invoice_display_name: Option<String>,
    /// Billing interval.
    pub interval: Interval,
    /// The subscription fee per interval, in the currency's minor unit.
    pub amount_cents: i64,
    /// The plan's currency.
    pub currency: Currency,
    /// Whether the subscription fee is billed at the start of each period.
    pub pay_in_advance: bool,
    /// Days of free trial at the start of a subscription.
    pub trial_period_days: u32,
    /// Bill usage monthly on semiannual and yearly plans.
    pub bill_charges_monthly: bool,
    /// The least a subscription pays per period, all fees together.
    pub minimum_commitment: Option<MinimumCommitment>,
}

/// A plan's minimum spend per subscription period: when the period's fees (subscription fee and
/// charges together) come to less, a commitment fee bills the difference when the period closes.
/// Prorated like the subscription fee when the subscription covers part of the period.
#[derive(Debug, Clone, PartialEq)]
pub struct MinimumCommitment {
    /// Per full period, in minor units.
    pub amount_cents: i64,
    /// Name on invoices.
    pub invoice_display_name: Option<String>,
}

/// An amount of lifetime usage at which a subscription is invoiced at once, before its period ends
/// (progressive billing; see `billing::progressive`).
#[derive(Debug, Clone, PartialEq)]
pub struct UsageThreshold {
    /// The lifetime usage amount, in minor units (a fixed threshold), or the step after the largest
    /// fixed threshold (a recurring one).
    pub amount_cents: i64,
    /// Name on invoices.
    pub display_name: Option<String>,
    /// Whether it repeats every `amount_cents` past the largest fixed threshold.
    pub recurring: bool,
}

/// Checks a plan's usage thresholds: amounts above zero, fixed amounts distinct, one recurring
/// threshold at most; fields are named `usage_thresholds.<index>.<field>`.
pub fn validate_usage_thresholds(thresholds: &[UsageThreshold], errors: &mut ValidationErrors) {
    for (index, threshold) in thresholds.iter().enumerate() {
        if threshold.amount_cents <= 0 {
            errors.push(
                format!("usage_thresholds.{index}.amount_cents"),
                Reason::InvalidAmount,
            );
        }
        let earlier = &thresholds[..index];
        if threshold.recurring && earlier.iter().any(|t| t.recurring) {
            errors.push(
                format!("usage_thresholds.{index}.recurring"),
                Reason::ValueAlreadyExist,
            );
        }
        if !threshold.recurring
            && earlier
                .iter()
                .any(|t| !t.recurring && t.amount_cents == threshold.amount_cents)
        {
            errors.push(
                format!("usage_thresholds.{index}.amount_cents"),
                Reason::ValueAlreadyExist,
            );
        }
    }
}

/// A charge of a plan as stored.
#[derive(Debug, Clone, PartialEq)]
pub struct Charge {
    /// Its id (`lago_id`).
    pub id: ChargeId,
    /// The metric it prices.
    pub metric_id: MetricId,
    /// The metric's code, for display.
    pub metric_code: Code,
    /// What it says.
    pub terms: ChargeTerms,
    /// Its filters, each with its own id.
    pub filters: Vec<(ChargeFilterId, ChargeFilter)>,
    /// Taxes of its fees, ahead of the plan's, the customer's and the organization's.
    pub taxes: Vec<crate::tax::Tax>,
}

impl Charge {
    /// Whether pricing it needs each event's value (a percentage charge with per-event terms, on the
    /// charge or one of its filters), not only the period's aggregate.
    pub fn needs_event_values(&self) -> bool {
        self.terms.model.needs_event_values()
            || self
                .filters
                .iter()
                .any(|(_, filter)| filter.model.needs_event_values())
    }
}

/// A charge's own fields.
#[derive(Debug, Clone, PartialEq)]
pub struct ChargeTerms {
    /// Unique within the plan.
    pub code: String,
    /// Name on invoices.
    pub invoice_display_name: Option<String>,
    /// How units become money.
    pub model: ChargeModel,
    /// Billed event by event as usage arrives, instead of at period end.
    pub pay_in_advance: bool,
    /// Whether it appears on invoices (false only with pay in advance).
    pub invoiceable: bool,
    /// Prorated by the share of the period a recurring unit was in force.
    pub prorated: bool,
    /// Minimum spend per period, in minor units (a true-up fee makes up the difference).
    pub min_amount_cents: i64,
}

/// A subset of a charge's events priced on its own terms.
#[derive(Debug, Clone, PartialEq)]
pub struct ChargeFilter {
    /// Metric filter key → values this filter matches.
    pub values: BTreeMap<String, Vec<String>>,
    /// The price for matching events.
    pub model: ChargeModel,
    /// Name on invoices.
    pub invoice_display_name: Option<String>,
}

impl ChargeFilter {
    /// Tells whether an event with these dimension values belongs to this filter: every key listed
    /// must hold one of its values (or any value, for `__ALL_FILTER_VALUES__`).
    pub fn matches(&self, dims: &BTreeMap<String, Option<String>>) -> bool {
        self.values.iter().all(
            |(key, allowed)| match dims.get(key).and_then(|v| v.as_deref()) {
                Some(value) => allowed.iter().any(|a| a == ALL_FILTER_VALUES || a == value),
                None => false,
            },
        )
    }

    /// How specific the filter is: more keys first, so the most specific matching filter wins.
    pub fn specificity(&self) -> usize {
        self.values.len()
    }
}

/// A charge as a client sends it: an existing charge's id when updating it.
#[derive(Debug, Clone, PartialEq)]
pub struct ChargeDraft {
    /// The charge to update, if any.
    pub id: Option<ChargeId>,
    /// The metric it prices.
    pub metric_id: MetricId,
    /// What it says.
    pub terms: ChargeTerms,
    /// Its filters.
    pub filters: Vec<ChargeFilter>,
    /// Codes of the taxes of its fees; `None` keeps them as they are.
    pub tax_codes: Option<Vec<String>>,
}

impl ChargeDraft {
    /// Checks the rules between a charge and its metric, naming fields `charges.<index>.<field>`.
    pub fn validate(&self, metric: &MetricDefinition, index: usize, errors: &mut ValidationErrors) {
        let field = |name: &str| format!("charges.{index}.{name}");
        let t = &self.terms;
        let aggregation = metric.aggregation;
        if t.pay_in_advance {
            let model_allows = t.model.kind() != ChargeModelKind::Volume;
            let metric_allows = matches!(
                aggregation,
                AggregationType::Count | AggregationType::Sum | AggregationType::UniqueCount
            );
            if !model_allows || !metric_allows {
                errors.push(
                    field("pay_in_advance"),
                    Reason::InvalidAggregationTypeOrChargeModel,
                );
            }
            if t.min_amount_cents > 0 {
                errors.push(
                    field("min_amount_cents"),
                    Reason::NotCompatibleWithPayInAdvance,
                );
            }
        } else if !t.invoiceable {
            errors.push(field("invoiceable"), Reason::MustBeTrueUnlessPayInAdvance);
        }
        if t.prorated {
            let model_allows = if t.pay_in_advance {
                t.model.kind() == ChargeModelKind::Standard
            } else {
                matches!(
                    t.model.kind(),
                    ChargeModelKind::Standard
                        | ChargeModelKind::Volume
                        | ChargeModelKind::Graduated
                )
            };
            if !metric.recurring || aggregation == AggregationType::WeightedSum || !model_allows {
                errors.push(field("prorated"), Reason::ValueIsInvalid);
            }
        }
        if t.min_amount_cents < 0 {
            errors.push(field("min_amount_cents"), Reason::InvalidAmount);
        }
        if aggregation.lago_name().is_none() {
            errors.push(
                field("billable_metric_id"),
                Reason::NotCompatibleWithAggregationType,
            );
        }
        if t.model.kind() == ChargeModelKind::Percentage && aggregation == AggregationType::Latest {
            errors.push(
                field("charge_model"),
                Reason::NotCompatibleWithAggregationType,
            );
        }
        for (position, filter) in self.filters.iter().enumerate() {
            for key in filter.values.keys() {
                let declared = metric.filters.iter().find(|f| &f.key == key);
                let known_values = filter.values[key].iter().all(|v| {
                    v == ALL_FILTER_VALUES || declared.is_some_and(|d| d.values.contains(v))
                });
                if declared.is_none() || !known_values {
                    errors.push(
                        field(&format!("filters.{position}.values")),
                        Reason::ValueIsInvalid,
                    );
                }
            }
            if filter.values.is_empty() {
                errors.push(
                    field(&format!("filters.{position}.values")),
                    Reason::ValueIsMandatory,
                );
            }
        }
    }
}

/// Checks a plan's own fields.
pub fn validate_terms(terms: &PlanTerms, errors: &mut ValidationErrors) {
    if terms.name.trim().is_empty() {
        errors.push("name", Reason::ValueIsMandatory);
    }
    if terms.amount_cents < 0 {
        errors.push("amount_cents", Reason::InvalidAmount);
    }
    if terms.bill_charges_monthly
        && !matches!(terms.interval, Interval::Yearly | Interval::Semiannual)
    {
        errors.push("bill_charges_monthly", Reason::ValueIsInvalid);
    }
    if terms
        .minimum_commitment
        .as_ref()
        .is_some_and(|c| c.amount_cents < 0)
    {
        errors.push("minimum_commitment.amount_cents", Reason::InvalidAmount);
    }
}

/// Checks that charge codes are unique within a plan.
pub fn validate_charge_codes(charges: &[ChargeDraft], errors: &mut ValidationErrors) {
    for (index, charge) in charges.iter().enumerate() {
        if charges[..index]
            .iter()
            .any(|c| c.terms.code == charge.terms.code)
        {
            errors.push(format!("charges.{index}.code"), Reason::ValueAlreadyExist);
        }
    }
}

/// A plan as a client sends it, for creation or replacement.
#[derive(Debug, Clone, PartialEq)]
pub struct PlanDraft {
    /// The plan's own fields.
    pub terms: PlanTerms,
    /// The complete list of charges: drafts with an id update that charge, others are new, and
    /// existing charges left out are removed.
    pub charges: Vec<ChargeDraft>,
    /// The taxes the plan carries, by code, when they change.
    pub tax_codes: Option<Vec<String>>,
    /// The complete list of usage thresholds: those with an id update that threshold, others are new,
    /// and existing thresholds left out are removed.
    pub usage_thresholds: Vec<(Option<UsageThresholdId>, UsageThreshold)>,
}

#[cfg(test)]
mod tests {
    use super::*;

    fn filter(values: &[(&str, &[&str])]) -> ChargeFilter {
        ChargeFilter {
            values: values
                .iter()
                .map(|(k, vs)| {
                    (
                        (*k).to_owned(),
                        vs.iter().map(|v| (*v).to_owned()).collect(),
                    )
                })
                .collect(),
            model: ChargeModel::Standard {
                amount: rust_decimal::Decimal::ONE,
            },
            invoice_display_name: None,
        }
    }

    fn dims(values: &[(&str, Option<&str>)]) -> BTreeMap<String, Option<String>> {
        values
            .iter()
            .map(|(k, v)| ((*k).to_owned(), v.map(str::to_owned)))
            .collect()
    }

    #[test]
    fn filters_match_listed_values_and_wildcards() {
        let eu = filter(&[("region", &["eu"])]);
        assert!(eu.matches(&dims(&[("region", Some("eu")), ("model", Some("m"))])));
        assert!(!eu.matches(&dims(&[("region", Some("us"))])));
        assert!(!eu.matches(&dims(&[("region", None)])));
        let any = filter(&[("region", &[ALL_FILTER_VALUES]), ("model", &["m1", "m2"])]);
        assert!(any.matches(&dims(&[("region", Some("us")), ("model", Some("m2"))])));
        assert!(!any.matches(&dims(&[("region", Some("us")), ("model", Some("m3"))])));
        assert_eq!(any.specificity(), 2);
    }
}

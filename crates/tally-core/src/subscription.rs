//! Subscriptions: a customer on a plan, with a life (pending → active → terminated or canceled) and
//! the rules for changing plans.

use std::fmt;

use crate::id::{Code, CustomerId, ExternalId, PlanId, SubscriptionId};
use crate::period::{BillingTime, Interval};
use crate::plan::PlanTerms;
use crate::time::Timestamp;

/// Where a subscription is in its life.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum SubscriptionStatus {
    /// Starts later (future `subscription_at`, or a downgrade waiting for the period end).
    Pending,
    /// Running and billed.
    Active,
    /// Ended after it started.
    Terminated,
    /// Ended before it started.
    Canceled,
}

impl SubscriptionStatus {
    /// Returns the Lago name.
    pub fn name(self) -> &'static str {
        match self {
            SubscriptionStatus::Pending => "pending",
            SubscriptionStatus::Active => "active",
            SubscriptionStatus::Terminated => "terminated",
            SubscriptionStatus::Canceled => "canceled",
        }
    }

    /// Parses a Lago name.
    pub fn parse(name: &str) -> Option<Self> {
        match name {
            "pending" => Some(SubscriptionStatus::Pending),
            "active" => Some(SubscriptionStatus::Active),
            "terminated" => Some(SubscriptionStatus::Terminated),
            "canceled" => Some(SubscriptionStatus::Canceled),
            _ => None,
        }
    }
}

impl fmt::Display for SubscriptionStatus {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// A subscription as stored.
#[derive(Debug, Clone, PartialEq)]
pub struct Subscription {
    /// Its id (`lago_id`).
    pub id: SubscriptionId,
    /// The client's id; unique among active subscriptions of the organization.
    pub external_id: ExternalId,
    /// The customer's id.
    pub customer_id: CustomerId,
    /// The customer's external id.
    pub external_customer_id: ExternalId,
    /// The plan.
    pub plan_id: PlanId,
    /// The plan's code.
    pub plan_code: Code,
    /// Display name.
    pub name: Option<String>,
    /// Life stage.
    pub status: SubscriptionStatus,
    /// Calendar or anniversary periods.
    pub billing_time: BillingTime,
    /// When the client asked it to start.
    pub subscription_at: Timestamp,
    /// When it became active.
    pub started_at: Option<Timestamp>,
    /// When it is to end by itself.
    pub ending_at: Option<Timestamp>,
    /// When it ended.
    pub terminated_at: Option<Timestamp>,
    /// When it was canceled before starting.
    pub canceled_at: Option<Timestamp>,
    /// The plan of the subscription it replaced (upgrade or downgrade).
    pub previous_plan_code: Option<Code>,
    /// The plan it will move to at period end (a pending downgrade).
    pub next_plan_code: Option<Code>,
    /// When that pending downgrade starts.
    pub next_plan_at: Option<Timestamp>,
    /// When it was created.
    pub created_at: Timestamp,
    /// When it last changed.
    pub updated_at: Timestamp,
}

/// How a new plan compares with the current one for the same subscription.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PlanChange {
    /// The same plan: nothing to do.
    Same,
    /// At least as expensive per year: switch now, prorating.
    Upgrade,
    /// Cheaper per year: switch at the end of the current period.
    Downgrade,
}

/// Returns the yearly price of a plan's subscription fee in minor units, the measure Lago compares.
pub fn yearly_amount(terms: &PlanTerms) -> i128 {
    let per_year: i128 = match terms.interval {
        Interval::Weekly => 52,
        Interval::Monthly => 12,
        Interval::Quarterly => 4,
        Interval::Semiannual => 2,
        Interval::Yearly => 1,
    };
    i128::from(terms.amount_cents) * per_year
}

/// Decides between upgrade and downgrade when a subscription is re-created on another plan.
pub fn plan_change(
    current: PlanId,
    current_terms: &PlanTerms,
    new: PlanId,
    new_terms: &PlanTerms,
) -> PlanChange {
    if current == new {
        PlanChange::Same
    } else if yearly_amount(new_terms) >= yearly_amount(current_terms) {
        PlanChange::Upgrade
    } else {
        PlanChange::Downgrade
    }
}

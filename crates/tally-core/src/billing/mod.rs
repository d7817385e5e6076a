//! Billing: turning a period's usage and a plan into fees, and fees into invoice totals.
//!
//! The store gathers usage per dimension group (from rollups, or distinct values for unique counts);
//! [`usage::charge_buckets`] sorts the groups into the charge's filters and aggregates each bucket;
//! [`fees`] prices the buckets and the subscription fee, each fee rounded once to the currency's minor
//! unit; [`totals`] adds rounded fees, never rounding a sum. [`advance`] prices the events of
//! pay-in-advance charges one by one.

pub mod adjustments;
pub mod advance;
pub mod fees;
pub mod progressive;
pub mod runs;
pub mod totals;
pub mod usage;

pub use advance::{Running, advance_fee, prorated_advance_fee};
pub use fees::{Fee, FeeKind, add_on_fee, charge_fees, commitment_fee, subscription_fee};
pub use progressive::{Progress, passed_thresholds, progress};
pub use runs::{
    Life, Run, RunReason, SubscriptionCharge, charges_share, due_runs, next_due,
    unused_advance_share,
};
pub use totals::InvoiceTotals;
pub use usage::{BucketUsage, GroupAggregate, GroupUsage, charge_buckets};

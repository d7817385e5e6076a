//! Aggregation of metered values: mergeable partial states and the units they yield.
//!
//! Every aggregation but unique counts folds events into an [`AggState`]: count, exact sum, min, max,
//! latest value and a time-weighted sum. States of disjoint sets of events merge exactly and in any
//! order, which is what lets rollups pre-aggregate events per minute and per hour and still answer any
//! range. Unique counts need the values themselves and are computed by [`unique_count`] from events.

mod state;
mod unique_count;

pub use state::{AggState, Latest, Overflow};
pub use unique_count::{DistinctEvent, unique_count};

use rust_decimal::Decimal;

/// Decimal places kept in divided results (averages and time-weighted sums).
pub const DIVISION_SCALE: u32 = 12;

/// Divides and rounds to [`DIVISION_SCALE`] places, half to even; `None` when dividing by zero.
pub fn divide(numerator: Decimal, denominator: Decimal) -> Option<Decimal> {
    if denominator.is_zero() {
        return None;
    }
    numerator
        .checked_div(denominator)
        .map(|q| q.round_dp(DIVISION_SCALE).normalize())
}

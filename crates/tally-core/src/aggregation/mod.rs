//! Aggregation of metered values: mergeable partial states and the units they yield.
//!
//! Every aggregation but unique counts folds events into an [`AggState`]: count, exact sum, min, max,
//! latest value and a time-weighted sum. States of disjoint sets of events merge exactly and in any
//! order, which is what lets rollups pre-aggregate events per minute and per hour and still answer any
//! range. Unique counts need the values themselves and are computed by [`unique_count`] from events.

mod state;
mod unique_count;

pub use state::{AggState, Latest, Overflow};
pub use unique_count::{DistinctEvent, active_values, unique_count};

use rust_decimal::Decimal;

/// Decimal places kept in divided results (averages and time-weighted sums).
pub const DIVISION_SCALE: u32 = 12;

/// Divides and rounds to [`DIVISION_SCALE`] places, half to even; `None` when dividing by zero.
pub fn divide(numerator: Decimal, denominator: Decimal) -> Option<Decimal> {
    if denominator.is_zero() {
        return None;
    }
    // A quotient keeps 28 digits, so rounding it again to 12 places could round twice (…4999996 →
    // …5000000 → up). The whole part and the remainder are divided apart: the fraction then keeps
    // its digits and the rounding to 12 places is the only one that matters.
    let remainder = numerator.checked_rem(denominator)?;
    let whole = numerator.checked_sub(remainder)?.checked_div(denominator)?;
    let fraction = remainder.checked_div(denominator)?.round_dp(DIVISION_SCALE);
    whole.checked_add(fraction).map(|q| q.normalize())
}

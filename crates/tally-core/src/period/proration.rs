//! Shares of a period: proration by seconds, trials and terminations.
//!
//! A share is the part of a period's duration that is billed, measured to the microsecond (seconds
//! with their fractions), never in days: a March in Paris lasts 743 hours, and half of it is 371.5
//! hours. Shares are exact when they fit in 12 decimal places and otherwise within 10⁻¹² of the true
//! fraction, rounded so that the shares of contiguous parts of one period always add up to exactly 1:
//! what a termination bills and what it credits back never lose or create a fraction of a cent.

use rust_decimal::Decimal;

use super::Period;
use crate::time::{MICROS_PER_SECOND, Timestamp};

/// Decimal places of a share.
const SCALE: u32 = 12;

/// 10¹², one whole period in units of the last decimal place.
const ONE: i128 = 1_000_000_000_000;

/// Microseconds in a day of 24 hours.
const MICROS_PER_DAY: i64 = 86_400 * MICROS_PER_SECOND;

/// Returns the share of `whole` covered by `part`, between 0 and 1.
///
/// Only the part of `part` inside `whole` counts; an empty `whole` gives 0. The share is
/// `(part.to − whole.from) / |whole| − (part.from − whole.from) / |whole|` with each term rounded to
/// 12 places (half up), so it is exact whenever the true share fits in 12 places, and the shares of
/// parts that tile `whole` sum to exactly 1. Example: 15 days of a 30-day month is `0.5`.
pub fn proration(part: Period, whole: Period) -> Decimal {
    let length = i128::from(whole.to.micros()) - i128::from(whole.from.micros());
    if length <= 0 {
        return Decimal::ZERO;
    }
    let offset = |at: Timestamp| {
        let at = at.max(whole.from).min(whole.to);
        i128::from(at.micros()) - i128::from(whole.from.micros())
    };
    let (start, end) = (offset(part.from), offset(part.to));
    if end <= start {
        return Decimal::ZERO;
    }
    let units = position(end, length) - position(start, length);
    Decimal::try_from_i128_with_scale(units, SCALE)
        .map(|share| share.normalize())
        .unwrap_or(Decimal::ZERO)
}

/// Returns `offset / length` in units of 10⁻¹², rounded half up; `0 ≤ offset ≤ length`, so no
/// overflow: a year in microseconds times 10¹² is below 10²⁶.
fn position(offset: i128, length: i128) -> i128 {
    let scaled = offset * ONE;
    let (quotient, remainder) = (scaled / length, scaled % length);
    if remainder * 2 >= length {
        quotient + 1
    } else {
        quotient
    }
}

/// A plan's free trial (Lago `trial_period`): the subscription fee is not billed during it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Trial {
    /// Length in days; 0 means no trial.
    pub days: u32,
}

/// Returns when a trial that began at `anchor` (the subscription's `started_at`) ends.
///
/// Trial days are counted from the start instant as whole 24-hour days, `anchor + days × 24 h`, as
/// Lago counts them: a 30-day trial started at 15:00 local time ends exactly 720 hours later, at 14:00
/// or 16:00 local time if a daylight-saving change falls in between. `tz` does not change the result:
/// the end is one instant for every zone, so the day a trial ends on cannot depend on which zone the
/// biller runs in (the getlago/lago-api#2244 bug). It is taken so callers pass the schedule's zone
/// unchanged if the rule ever moves to local calendar days.
pub fn trial_end(anchor: Timestamp, trial: Trial, tz: chrono_tz::Tz) -> Timestamp {
    let _ = tz;
    let length = i64::from(trial.days).saturating_mul(MICROS_PER_DAY);
    Timestamp::from_micros(anchor.micros().saturating_add(length))
}

/// Returns the share of `period`'s subscription fee still due once the trial ends at `trial_end`:
/// the part of the period after the trial; 0 if the trial covers the whole period, 1 if it ended
/// by the period's start.
///
/// Pass the whole period (from [`super::Schedule::full_period_containing`]) to get the share of the
/// full fee; a trial ending inside a partial first period is then prorated against the full period,
/// the same as the partial period itself would be.
pub fn billable_share_after_trial(period: Period, trial_end: Timestamp) -> Decimal {
    unused_share(period, trial_end)
}

/// Returns the share of `period` used up to `terminated_at`: what a subscription terminated then
/// owes for the period. 0 if it ends by the period's start, 1 if it ends at or after the period's end.
///
/// Pass the whole period the fee was priced for. `termination_share(p, t) + unused_share(p, t)` is
/// exactly 1.
pub fn termination_share(period: Period, terminated_at: Timestamp) -> Decimal {
    let end = terminated_at.max(period.from).min(period.to);
    proration(
        Period {
            from: period.from,
            to: end,
        },
        period,
    )
}

/// Returns the share of `period` left after `at`: what a fee paid in advance credits back when the
/// subscription ends (or is upgraded) at `at`.
pub fn unused_share(period: Period, at: Timestamp) -> Decimal {
    let start = at.max(period.from).min(period.to);
    proration(
        Period {
            from: start,
            to: period.to,
        },
        period,
    )
}

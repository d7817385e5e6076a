//! Period boundaries: the sequence of first days a schedule cuts, and the instant each day starts.
//!
//! Every schedule is a sequence of boundary dates indexed by an integer `k`; period `k` runs from the
//! local start of date `k` to the local start of date `k + 1`. Dates are computed from `k` alone (the
//! calendar, or the anchor plus `k` intervals), never from the previous boundary, so anniversary
//! clamping cannot drift. Finding the period around an instant is a guess of `k` from the instant's
//! local date, corrected by comparing instants, so daylight-saving edges cannot put an instant in two
//! periods or in none.

use chrono::{DateTime, Datelike, Duration, LocalResult, NaiveDate, Offset, TimeZone, Utc};
use chrono_tz::Tz;

use super::{BillingTime, Period, Schedule};
use crate::time::{MICROS_PER_SECOND, Timestamp};

/// Returns the period of `schedule`'s sequence containing `at`, or `None` outside chrono's dates.
pub(super) fn period_around(schedule: &Schedule, at: Timestamp) -> Option<Period> {
    let local = at.to_datetime().with_timezone(&schedule.tz).date_naive();
    let mut k = index_guess(schedule, local)?;
    // The guess is off by at most one; a few more steps cover days lost to a zone's date-line move.
    for _ in 0..8 {
        let from = boundary(schedule, k)?;
        if from > at {
            k = k.checked_sub(1)?;
            continue;
        }
        let to = boundary(schedule, k.checked_add(1)?)?;
        if to <= at {
            k = k.checked_add(1)?;
            continue;
        }
        return Some(Period { from, to });
    }
    None
}

/// Returns the instant period `k` starts.
fn boundary(schedule: &Schedule, k: i64) -> Option<Timestamp> {
    day_start(boundary_date(schedule, k)?, schedule.tz)
}

/// Returns the first day of period `k`.
fn boundary_date(schedule: &Schedule, k: i64) -> Option<NaiveDate> {
    match (schedule.billing_time, schedule.interval.months()) {
        (billing_time, None) => {
            let base = match billing_time {
                BillingTime::Calendar => first_monday(),
                BillingTime::Anniversary => anchor_date(schedule),
            };
            base.checked_add_signed(Duration::try_days(k.checked_mul(7)?)?)
        }
        (BillingTime::Calendar, Some(step)) => month_date(k.checked_mul(step)?, 1),
        (BillingTime::Anniversary, Some(step)) => {
            let anchor = anchor_date(schedule);
            let month = month_index(anchor).checked_add(k.checked_mul(step)?)?;
            month_date(month, anchor.day())
        }
    }
}

/// Guesses the index of the period containing local date `date`.
fn index_guess(schedule: &Schedule, date: NaiveDate) -> Option<i64> {
    Some(match (schedule.billing_time, schedule.interval.months()) {
        (billing_time, None) => {
            let base = match billing_time {
                BillingTime::Calendar => first_monday(),
                BillingTime::Anniversary => anchor_date(schedule),
            };
            (date - base).num_days().div_euclid(7)
        }
        (BillingTime::Calendar, Some(step)) => month_index(date).div_euclid(step),
        (BillingTime::Anniversary, Some(step)) => {
            (month_index(date) - month_index(anchor_date(schedule))).div_euclid(step)
        }
    })
}

/// Monday 5 January 1970, the reference for calendar weeks.
fn first_monday() -> NaiveDate {
    NaiveDate::from_ymd_opt(1970, 1, 5).unwrap_or(NaiveDate::MIN)
}

fn anchor_date(schedule: &Schedule) -> NaiveDate {
    schedule
        .anchor
        .to_datetime()
        .with_timezone(&schedule.tz)
        .date_naive()
}

/// Counts months from January of year 0.
fn month_index(date: NaiveDate) -> i64 {
    i64::from(date.year()) * 12 + i64::from(date.month0())
}

/// Returns day `day` of month `index` (counted as [`month_index`]), clamped to the month's last day.
fn month_date(index: i64, day: u32) -> Option<NaiveDate> {
    let year = i32::try_from(index.div_euclid(12)).ok()?;
    let month = u32::try_from(index.rem_euclid(12)).ok()? + 1;
    let first_of_next = match month {
        12 => NaiveDate::from_ymd_opt(year.checked_add(1)?, 1, 1)?,
        _ => NaiveDate::from_ymd_opt(year, month + 1, 1)?,
    };
    let last = first_of_next.pred_opt()?.day();
    NaiveDate::from_ymd_opt(year, month, day.min(last))
}

/// Returns the first instant whose local date in `tz` is `date`: local midnight, the earlier one
/// when midnight happens twice, or the moment the clock resumes when a jump skips midnight (or, as
/// in Samoa at the end of 2011, the whole day).
fn day_start(date: NaiveDate, tz: Tz) -> Option<Timestamp> {
    let midnight = date.and_hms_opt(0, 0, 0)?;
    match tz.from_local_datetime(&midnight) {
        LocalResult::Single(at) => Some(Timestamp::from_datetime(at.with_timezone(&Utc))),
        LocalResult::Ambiguous(first, _) => {
            Some(Timestamp::from_datetime(first.with_timezone(&Utc)))
        }
        LocalResult::None => {
            // Inside a gap: the transition lies between midnight read with the offset in force
            // after it and midnight read with the offset before it. Search it to the second.
            let day = Duration::try_days(1)?;
            let before = tz
                .offset_from_utc_datetime(&(midnight.checked_sub_signed(day)?))
                .fix();
            let after = tz
                .offset_from_utc_datetime(&(midnight.checked_add_signed(day)?))
                .fix();
            let seconds = |offset: i32| {
                midnight.and_utc().timestamp() - i64::from(offset) // instant of `midnight` at `offset`
            };
            let mut lo = seconds(after.local_minus_utc()); // still before the jump
            let mut hi = seconds(before.local_minus_utc()); // already after it
            while hi - lo > 1 {
                let mid = lo + (hi - lo) / 2;
                let local = DateTime::<Utc>::from_timestamp(mid, 0)?
                    .with_timezone(&tz)
                    .date_naive();
                if local >= date {
                    hi = mid;
                } else {
                    lo = mid;
                }
            }
            Some(Timestamp::from_micros(hi.checked_mul(MICROS_PER_SECOND)?))
        }
    }
}

//! A naive reference for which periods a subscription is billed for, written from docs/billing.md
//! ("Calendar and anniversary periods", "Charges billed monthly on long plans") without tally's
//! period code: boundary dates come from stepping the calendar with chrono, and the instant a local
//! day starts is found by scanning time forward until the customer's local date reaches that day.

use chrono::{DateTime, Datelike, Duration, Months, NaiveDate};
use chrono_tz::Tz;
use tally_core::period::{BillingTime, Interval};

const MICROS: i64 = 1_000_000;
/// Every zone used here changes its offset, and has midnights, on a quarter-hour of UTC.
const QUARTER_HOUR: i64 = 900;

/// The customer's local date at `seconds` since the epoch.
fn local_date(tz: Tz, seconds: i64) -> NaiveDate {
    DateTime::from_timestamp(seconds, 0)
        .expect("instant in range")
        .with_timezone(&tz)
        .date_naive()
}

/// Returns the first instant (µs) whose local date in `tz` is `date` or later: local midnight, the
/// earlier one when midnight happens twice, or the moment the clocks resume when they jump over it.
pub fn day_start(date: NaiveDate, tz: Tz) -> i64 {
    let utc_midnight = date
        .and_hms_opt(0, 0, 0)
        .expect("midnight")
        .and_utc()
        .timestamp();
    // No zone is more than 15 hours ahead of UTC, so this is still the day before everywhere.
    let mut after = utc_midnight - 15 * 3600;
    while local_date(tz, after) < date {
        after += QUARTER_HOUR;
    }
    let mut before = after - QUARTER_HOUR;
    while after - before > 1 {
        let mid = before + (after - before) / 2;
        if local_date(tz, mid) < date {
            before = mid;
        } else {
            after = mid;
        }
    }
    after * MICROS
}

/// How a subscription's periods are cut.
#[derive(Debug, Clone, Copy)]
pub struct Cut {
    /// The plan's interval.
    pub interval: Interval,
    /// Calendar or anniversary.
    pub billing_time: BillingTime,
    /// Whether usage is billed monthly (only changes yearly and semiannual plans).
    pub bill_charges_monthly: bool,
    /// The customer's zone.
    pub tz: Tz,
    /// When the subscription started (µs).
    pub start: i64,
}

/// Returns, in order, the instants (µs) after `cut.start` and up to `until` (included) at which a
/// charges period ends: the boundaries that each get one `subscription_periodic` invoice.
pub fn charge_boundaries(cut: &Cut, until: i64) -> Vec<i64> {
    let months = match cut.interval {
        Interval::Weekly => None,
        Interval::Monthly => Some(1),
        Interval::Quarterly => Some(3),
        Interval::Semiannual | Interval::Yearly if cut.bill_charges_monthly => Some(1),
        Interval::Semiannual => Some(6),
        Interval::Yearly => Some(12),
    };
    let anchor = local_date(cut.tz, cut.start.div_euclid(MICROS));
    let date = |k: u32| -> NaiveDate {
        match (cut.billing_time, months) {
            (BillingTime::Calendar, None) => {
                let monday =
                    anchor - Duration::days(i64::from(anchor.weekday().num_days_from_monday()));
                monday + Duration::days(7 * i64::from(k))
            }
            (BillingTime::Anniversary, None) => anchor + Duration::days(7 * i64::from(k)),
            (BillingTime::Calendar, Some(step)) => {
                // The k-th month from the anchor's that starts a calendar period: quarters start in
                // January, April, July and October, halves in January and July, years in January.
                let first = anchor.with_day(1).expect("first of the month");
                let mut found = 0;
                let mut month = first;
                loop {
                    if month.month0().is_multiple_of(step) {
                        if found == k {
                            return month;
                        }
                        found += 1;
                    }
                    month = month + Months::new(1);
                }
            }
            // chrono clamps to the month's last day, and every date is counted from the anchor.
            (BillingTime::Anniversary, Some(step)) => anchor + Months::new(step * k),
        }
    };
    let mut out = Vec::new();
    for k in 0.. {
        let at = day_start(date(k), cut.tz);
        if at > until {
            break;
        }
        if at > cut.start && out.last().is_none_or(|last| *last < at) {
            out.push(at);
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn at(text: &str) -> i64 {
        DateTime::parse_from_rfc3339(text)
            .expect("time")
            .timestamp_micros()
    }

    fn shown(instants: &[i64]) -> Vec<String> {
        instants
            .iter()
            .map(|m| {
                DateTime::from_timestamp_micros(*m)
                    .expect("instant")
                    .format("%Y-%m-%dT%H:%M:%SZ")
                    .to_string()
            })
            .collect()
    }

    #[test]
    fn local_days_start_as_documented() {
        // docs/billing.md, "Which time zone cuts the periods".
        let day = |y, m, d| NaiveDate::from_ymd_opt(y, m, d).expect("date");
        let cases: [(Tz, NaiveDate, &str); 4] = [
            (
                chrono_tz::Europe::Paris,
                day(2026, 3, 1),
                "2026-02-28T23:00:00Z",
            ),
            (
                chrono_tz::America::New_York,
                day(2026, 3, 1),
                "2026-03-01T05:00:00Z",
            ),
            (
                chrono_tz::Asia::Kolkata,
                day(2026, 1, 1),
                "2025-12-31T18:30:00Z",
            ),
            (
                chrono_tz::Pacific::Chatham,
                day(2026, 4, 1),
                "2026-03-31T10:15:00Z",
            ),
        ];
        for (tz, date, want) in cases {
            assert_eq!(day_start(date, tz), at(want), "{tz} {date}");
        }
        // Santiago skips midnight on 6 September 2026: the day starts at 01:00 (04:00 UTC).
        assert_eq!(
            day_start(day(2026, 9, 6), chrono_tz::America::Santiago),
            at("2026-09-06T04:00:00Z")
        );
    }

    #[test]
    fn anniversary_months_clamp_without_drifting() {
        // docs/billing.md: started 2028-01-31 → Feb 29, Mar 31, Apr 30.
        let cut = Cut {
            interval: Interval::Monthly,
            billing_time: BillingTime::Anniversary,
            bill_charges_monthly: false,
            tz: chrono_tz::UTC,
            start: at("2028-01-31T15:00:00Z"),
        };
        assert_eq!(
            shown(&charge_boundaries(&cut, at("2028-04-30T00:00:00Z"))),
            [
                "2028-02-29T00:00:00Z",
                "2028-03-31T00:00:00Z",
                "2028-04-30T00:00:00Z"
            ]
        );
    }

    #[test]
    fn calendar_quarters_and_monthly_charges() {
        let quarterly = Cut {
            interval: Interval::Quarterly,
            billing_time: BillingTime::Calendar,
            bill_charges_monthly: false,
            tz: chrono_tz::UTC,
            start: at("2026-02-10T00:00:00Z"),
        };
        assert_eq!(
            shown(&charge_boundaries(&quarterly, at("2026-10-01T00:00:00Z"))),
            [
                "2026-04-01T00:00:00Z",
                "2026-07-01T00:00:00Z",
                "2026-10-01T00:00:00Z"
            ]
        );
        let yearly = Cut {
            interval: Interval::Yearly,
            bill_charges_monthly: true,
            ..quarterly
        };
        assert_eq!(
            charge_boundaries(&yearly, at("2027-02-01T00:00:00Z")).len(),
            12
        );
        let weekly = Cut {
            interval: Interval::Weekly,
            ..quarterly
        };
        // 2026-02-10 is a Tuesday: the next Mondays.
        assert_eq!(
            shown(&charge_boundaries(&weekly, at("2026-02-23T00:00:00Z"))),
            ["2026-02-16T00:00:00Z", "2026-02-23T00:00:00Z"]
        );
    }
}

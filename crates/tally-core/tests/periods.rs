//! Billing periods and proration: hand-written tables, then properties against naive references.
//!
//! Every expected value in the tables is written out by hand as a local time with its offset (checked
//! against the IANA database with an independent tool when the table was written), never computed by
//! the code under test. The properties compare against references written here: calendar units and
//! clamped anniversary dates from the local date alone, a period edge as "the first instant whose local
//! date is that day", shares as exact integer fractions.

use std::collections::BTreeMap;
use std::str::FromStr;

use chrono::{Datelike, NaiveDate, TimeZone, Utc};
use chrono_tz::Tz;
use proptest::prelude::*;
use rust_decimal::Decimal;

use tally_core::Timestamp;
use tally_core::period::{
    BillingTime, Interval, Period, Schedule, Trial, billable_share_after_trial, proration,
    termination_share, trial_end, unused_share,
};

const SECOND: i64 = 1_000_000;
const HOUR: i64 = 3600 * SECOND;
const DAY: i64 = 24 * HOUR;

fn at(text: &str) -> Timestamp {
    Timestamp::parse_rfc3339(text).expect("time")
}

fn period(from: &str, to: &str) -> Period {
    Period {
        from: at(from),
        to: at(to),
    }
}

fn zone(name: &str) -> Tz {
    name.parse().expect("zone")
}

fn dec(text: &str) -> Decimal {
    Decimal::from_str(text).expect("decimal")
}

fn schedule(interval: Interval, billing_time: BillingTime, anchor: &str, tz: &str) -> Schedule {
    Schedule {
        interval,
        billing_time,
        anchor: at(anchor),
        tz: zone(tz),
    }
}

/// A calendar schedule that started long ago, so periods are never clipped.
fn calendar(interval: Interval, tz: &str) -> Schedule {
    schedule(interval, BillingTime::Calendar, "2000-01-01T00:00:00Z", tz)
}

fn hours(p: Period) -> i64 {
    (p.to.micros() - p.from.micros()) / HOUR
}

/// Lists the first `n` billing periods.
fn first_periods(s: &Schedule, n: usize) -> Vec<Period> {
    let mut out = vec![s.first_period()];
    while out.len() < n {
        let last = *out.last().expect("one period");
        out.push(s.next_period(last));
    }
    out
}

/// Checks each `(instant, from, to)` row against `full_period_containing`.
fn check_full(s: &Schedule, rows: &[(&str, &str, &str)]) {
    for (instant, from, to) in rows {
        assert_eq!(
            s.full_period_containing(at(instant)),
            period(from, to),
            "{} {:?} at {instant}",
            s.tz,
            s.interval
        );
    }
}

// ---------------------------------------------------------------------------------------------
// Names and the period type
// ---------------------------------------------------------------------------------------------

#[test]
fn intervals_and_billing_times_use_lago_names() {
    for (name, interval) in [
        ("weekly", Interval::Weekly),
        ("monthly", Interval::Monthly),
        ("quarterly", Interval::Quarterly),
        ("semiannual", Interval::Semiannual),
        ("yearly", Interval::Yearly),
    ] {
        assert_eq!(Interval::parse(name), Some(interval));
        assert_eq!(interval.name(), name);
    }
    for (name, time) in [
        ("calendar", BillingTime::Calendar),
        ("anniversary", BillingTime::Anniversary),
    ] {
        assert_eq!(BillingTime::parse(name), Some(time));
        assert_eq!(time.name(), name);
    }
    assert_eq!(Interval::parse("Monthly"), None);
    assert_eq!(Interval::parse("daily"), None);
    assert_eq!(BillingTime::parse(""), None);
}

#[test]
fn a_period_is_half_open_and_lago_shows_its_last_second() {
    let april = period("2026-04-01T00:00:00Z", "2026-05-01T00:00:00Z");
    assert_eq!(april.duration_seconds(), 30 * 86_400);
    assert!(april.contains(at("2026-04-01T00:00:00Z")));
    assert!(april.contains(at("2026-04-30T23:59:59.999999Z")));
    assert!(!april.contains(at("2026-05-01T00:00:00Z")));
    assert!(!april.contains(at("2026-03-31T23:59:59.999999Z")));
    assert_eq!(april.to_inclusive(), at("2026-04-30T23:59:59Z"));
    let partial = period("2026-04-16T09:30:00.250Z", "2026-05-01T00:00:00Z");
    assert_eq!(
        partial.duration_seconds(),
        14 * 86_400 + 14 * 3600 + 29 * 60 + 59
    );
}

// ---------------------------------------------------------------------------------------------
// Calendar periods
// ---------------------------------------------------------------------------------------------

#[test]
fn calendar_periods_in_utc() {
    check_full(
        &calendar(Interval::Monthly, "UTC"),
        &[
            (
                "2026-02-14T12:00:00Z",
                "2026-02-01T00:00:00Z",
                "2026-03-01T00:00:00Z",
            ),
            (
                "2028-02-29T23:59:59.999999Z",
                "2028-02-01T00:00:00Z",
                "2028-03-01T00:00:00Z",
            ),
            (
                "2026-03-01T00:00:00Z",
                "2026-03-01T00:00:00Z",
                "2026-04-01T00:00:00Z",
            ),
            (
                "2026-12-31T23:59:59Z",
                "2026-12-01T00:00:00Z",
                "2027-01-01T00:00:00Z",
            ),
        ],
    );
    check_full(
        &calendar(Interval::Quarterly, "UTC"),
        &[
            (
                "2026-05-20T08:00:00Z",
                "2026-04-01T00:00:00Z",
                "2026-07-01T00:00:00Z",
            ),
            (
                "2026-12-31T23:59:59Z",
                "2026-10-01T00:00:00Z",
                "2027-01-01T00:00:00Z",
            ),
            (
                "2026-01-01T00:00:00Z",
                "2026-01-01T00:00:00Z",
                "2026-04-01T00:00:00Z",
            ),
        ],
    );
    check_full(
        &calendar(Interval::Semiannual, "UTC"),
        &[
            (
                "2026-06-30T23:59:59Z",
                "2026-01-01T00:00:00Z",
                "2026-07-01T00:00:00Z",
            ),
            (
                "2026-07-01T00:00:00Z",
                "2026-07-01T00:00:00Z",
                "2027-01-01T00:00:00Z",
            ),
        ],
    );
    check_full(
        &calendar(Interval::Yearly, "UTC"),
        &[(
            "2026-08-08T08:08:08Z",
            "2026-01-01T00:00:00Z",
            "2027-01-01T00:00:00Z",
        )],
    );
    // 2026-01-01 is a Thursday; 2026-03-08 a Sunday; 2026-03-09 a Monday.
    check_full(
        &calendar(Interval::Weekly, "UTC"),
        &[
            (
                "2026-01-01T12:00:00Z",
                "2025-12-29T00:00:00Z",
                "2026-01-05T00:00:00Z",
            ),
            (
                "2026-03-08T23:59:59Z",
                "2026-03-02T00:00:00Z",
                "2026-03-09T00:00:00Z",
            ),
            (
                "2026-03-09T00:00:00Z",
                "2026-03-09T00:00:00Z",
                "2026-03-16T00:00:00Z",
            ),
        ],
    );
}

#[test]
fn calendar_periods_in_paris_follow_daylight_saving() {
    let monthly = calendar(Interval::Monthly, "Europe/Paris");
    check_full(
        &monthly,
        &[
            // 00:30 on March 1st in Paris is still February 28th in UTC.
            (
                "2026-02-28T23:30:00Z",
                "2026-03-01T00:00:00+01:00",
                "2026-04-01T00:00:00+02:00",
            ),
            (
                "2026-03-31T21:59:59Z",
                "2026-03-01T00:00:00+01:00",
                "2026-04-01T00:00:00+02:00",
            ),
            (
                "2026-03-31T22:00:00Z",
                "2026-04-01T00:00:00+02:00",
                "2026-05-01T00:00:00+02:00",
            ),
            (
                "2026-10-15T12:00:00Z",
                "2026-10-01T00:00:00+02:00",
                "2026-11-01T00:00:00+01:00",
            ),
        ],
    );
    // March 29th lasts 23 hours, October 25th 25.
    assert_eq!(
        hours(monthly.full_period_containing(at("2026-03-15T12:00:00Z"))),
        743
    );
    assert_eq!(
        hours(monthly.full_period_containing(at("2026-10-15T12:00:00Z"))),
        745
    );
    check_full(
        &calendar(Interval::Quarterly, "Europe/Paris"),
        &[(
            "2026-05-01T00:00:00Z",
            "2026-04-01T00:00:00+02:00",
            "2026-07-01T00:00:00+02:00",
        )],
    );
    let yearly = calendar(Interval::Yearly, "Europe/Paris");
    check_full(
        &yearly,
        &[(
            "2026-12-31T23:30:00Z",
            "2027-01-01T00:00:00+01:00",
            "2028-01-01T00:00:00+01:00",
        )],
    );
    assert_eq!(
        hours(yearly.full_period_containing(at("2026-06-01T00:00:00Z"))),
        8760
    );
    let weekly = calendar(Interval::Weekly, "Europe/Paris");
    check_full(
        &weekly,
        &[(
            "2026-03-29T12:00:00Z",
            "2026-03-23T00:00:00+01:00",
            "2026-03-30T00:00:00+02:00",
        )],
    );
    assert_eq!(
        hours(weekly.full_period_containing(at("2026-03-29T12:00:00Z"))),
        167
    );
}

#[test]
fn calendar_periods_in_new_york() {
    let monthly = calendar(Interval::Monthly, "America/New_York");
    check_full(
        &monthly,
        &[
            (
                "2026-03-20T12:00:00Z",
                "2026-03-01T00:00:00-05:00",
                "2026-04-01T00:00:00-04:00",
            ),
            // 23:30 on March 31st in New York is already April 1st in UTC.
            (
                "2026-04-01T03:30:00Z",
                "2026-03-01T00:00:00-05:00",
                "2026-04-01T00:00:00-04:00",
            ),
            (
                "2026-11-20T12:00:00Z",
                "2026-11-01T00:00:00-04:00",
                "2026-12-01T00:00:00-05:00",
            ),
        ],
    );
    assert_eq!(
        hours(monthly.full_period_containing(at("2026-03-20T12:00:00Z"))),
        743
    );
    assert_eq!(
        hours(monthly.full_period_containing(at("2026-11-20T12:00:00Z"))),
        721
    );
    check_full(
        &calendar(Interval::Semiannual, "America/New_York"),
        &[(
            "2026-12-31T23:59:59-05:00",
            "2026-07-01T00:00:00-04:00",
            "2027-01-01T00:00:00-05:00",
        )],
    );
}

#[test]
fn one_instant_falls_in_the_period_of_the_customers_zone() {
    let instant = "2026-03-31T22:30:00Z";
    check_full(
        &calendar(Interval::Monthly, "Europe/Paris"),
        &[(
            instant,
            "2026-04-01T00:00:00+02:00",
            "2026-05-01T00:00:00+02:00",
        )],
    );
    check_full(
        &calendar(Interval::Monthly, "America/New_York"),
        &[(
            instant,
            "2026-03-01T00:00:00-05:00",
            "2026-04-01T00:00:00-04:00",
        )],
    );
    check_full(
        &calendar(Interval::Monthly, "UTC"),
        &[(instant, "2026-03-01T00:00:00Z", "2026-04-01T00:00:00Z")],
    );
}

#[test]
fn calendar_periods_in_kolkata() {
    check_full(
        &calendar(Interval::Monthly, "Asia/Kolkata"),
        &[
            (
                "2026-01-31T18:29:59Z",
                "2026-01-01T00:00:00+05:30",
                "2026-02-01T00:00:00+05:30",
            ),
            (
                "2026-01-31T18:30:00Z",
                "2026-02-01T00:00:00+05:30",
                "2026-03-01T00:00:00+05:30",
            ),
        ],
    );
    check_full(
        &calendar(Interval::Yearly, "Asia/Kolkata"),
        &[(
            "2025-12-31T18:30:00Z",
            "2026-01-01T00:00:00+05:30",
            "2027-01-01T00:00:00+05:30",
        )],
    );
}

#[test]
fn calendar_periods_in_chatham() {
    // Chatham is UTC+12:45, +13:45 in summer; summer time ends on 2026-04-05 and starts on 2026-09-27.
    let monthly = calendar(Interval::Monthly, "Pacific/Chatham");
    check_full(
        &monthly,
        &[
            (
                "2026-04-10T00:00:00Z",
                "2026-04-01T00:00:00+13:45",
                "2026-05-01T00:00:00+12:45",
            ),
            (
                "2026-08-31T11:15:00Z",
                "2026-09-01T00:00:00+12:45",
                "2026-10-01T00:00:00+13:45",
            ),
        ],
    );
    assert_eq!(
        hours(monthly.full_period_containing(at("2026-04-10T00:00:00Z"))),
        721
    );
    assert_eq!(
        hours(monthly.full_period_containing(at("2026-09-10T00:00:00Z"))),
        719
    );
    // 01:45 on Sunday April 5th local time, two hours before the clocks go back.
    let weekly = calendar(Interval::Weekly, "Pacific/Chatham");
    check_full(
        &weekly,
        &[(
            "2026-04-04T12:00:00Z",
            "2026-03-30T00:00:00+13:45",
            "2026-04-06T00:00:00+12:45",
        )],
    );
    assert_eq!(
        hours(weekly.full_period_containing(at("2026-04-04T12:00:00Z"))),
        169
    );
}

#[test]
fn a_period_starts_when_the_clock_resumes_if_midnight_is_skipped() {
    // Santiago skips from 00:00 to 01:00 on Sunday 2026-09-06.
    let weekly = schedule(
        Interval::Weekly,
        BillingTime::Anniversary,
        "2026-08-30T09:00:00-04:00",
        "America/Santiago",
    );
    assert_eq!(
        first_periods(&weekly, 2),
        vec![
            period("2026-08-30T09:00:00-04:00", "2026-09-06T01:00:00-03:00"),
            period("2026-09-06T01:00:00-03:00", "2026-09-13T00:00:00-03:00"),
        ]
    );
    // Samoa skipped Friday 2011-12-30 altogether: that week has six days.
    let samoa = schedule(
        Interval::Weekly,
        BillingTime::Anniversary,
        "2011-12-23T00:00:00-10:00",
        "Pacific/Apia",
    );
    assert_eq!(
        first_periods(&samoa, 2),
        vec![
            period("2011-12-23T00:00:00-10:00", "2011-12-31T00:00:00+14:00"),
            period("2011-12-31T00:00:00+14:00", "2012-01-06T00:00:00+14:00"),
        ]
    );
    check_full(
        &calendar(Interval::Monthly, "Pacific/Apia"),
        &[(
            "2011-12-30T12:00:00Z",
            "2011-12-01T00:00:00-10:00",
            "2012-01-01T00:00:00+14:00",
        )],
    );
}

#[test]
fn the_first_calendar_period_starts_at_the_subscription() {
    // Subscribed on March 15th at 15:00 in Paris: the first period ends with March.
    let s = schedule(
        Interval::Monthly,
        BillingTime::Calendar,
        "2026-03-15T15:00:00+01:00",
        "Europe/Paris",
    );
    assert_eq!(
        first_periods(&s, 3),
        vec![
            period("2026-03-15T15:00:00+01:00", "2026-04-01T00:00:00+02:00"),
            period("2026-04-01T00:00:00+02:00", "2026-05-01T00:00:00+02:00"),
            period("2026-05-01T00:00:00+02:00", "2026-06-01T00:00:00+02:00"),
        ]
    );
    assert_eq!(
        s.full_period_containing(at("2026-03-15T15:00:00+01:00")),
        period("2026-03-01T00:00:00+01:00", "2026-04-01T00:00:00+02:00")
    );
    // Lago renders the first period as 2026-03-15T14:00:00Z .. 2026-03-31T21:59:59Z.
    assert_eq!(s.first_period().to_inclusive(), at("2026-03-31T21:59:59Z"));
    // Before the subscription there is nothing to bill: the answer is the first period.
    assert_eq!(
        s.period_containing(at("2026-03-02T00:00:00Z")),
        s.first_period()
    );
    // 392 of March's 743 hours.
    assert_eq!(
        proration(s.first_period(), s.full_period_containing(s.anchor)),
        dec("0.527590847914")
    );
    assert_eq!(
        s.periods_between(at("2026-01-01T00:00:00Z"), at("2026-04-10T00:00:00Z")),
        vec![
            period("2026-03-15T15:00:00+01:00", "2026-04-01T00:00:00+02:00"),
            period("2026-04-01T00:00:00+02:00", "2026-05-01T00:00:00+02:00"),
        ]
    );
    assert_eq!(
        s.periods_between(
            at("2026-04-01T00:00:00+02:00"),
            at("2026-05-01T00:00:00+02:00")
        ),
        vec![period(
            "2026-04-01T00:00:00+02:00",
            "2026-05-01T00:00:00+02:00"
        )]
    );
    assert!(
        s.periods_between(at("2026-01-01T00:00:00Z"), at("2026-03-15T14:00:00Z"))
            .is_empty()
    );
}

// ---------------------------------------------------------------------------------------------
// Anniversary periods
// ---------------------------------------------------------------------------------------------

#[test]
fn monthly_anniversaries_from_january_31st_clamp_without_drifting() {
    let leap = schedule(
        Interval::Monthly,
        BillingTime::Anniversary,
        "2028-01-31T15:00:00Z",
        "UTC",
    );
    assert_eq!(
        first_periods(&leap, 6),
        vec![
            period("2028-01-31T15:00:00Z", "2028-02-29T00:00:00Z"),
            period("2028-02-29T00:00:00Z", "2028-03-31T00:00:00Z"),
            period("2028-03-31T00:00:00Z", "2028-04-30T00:00:00Z"),
            period("2028-04-30T00:00:00Z", "2028-05-31T00:00:00Z"),
            period("2028-05-31T00:00:00Z", "2028-06-30T00:00:00Z"),
            period("2028-06-30T00:00:00Z", "2028-07-31T00:00:00Z"),
        ]
    );
    assert_eq!(
        leap.full_period_containing(leap.anchor),
        period("2028-01-31T00:00:00Z", "2028-02-29T00:00:00Z")
    );
    assert_eq!(
        leap.period_containing(at("2029-02-28T00:00:00Z")),
        period("2029-02-28T00:00:00Z", "2029-03-31T00:00:00Z")
    );
    let common = schedule(
        Interval::Monthly,
        BillingTime::Anniversary,
        "2027-01-31T00:00:00Z",
        "UTC",
    );
    assert_eq!(
        first_periods(&common, 3),
        vec![
            period("2027-01-31T00:00:00Z", "2027-02-28T00:00:00Z"),
            period("2027-02-28T00:00:00Z", "2027-03-31T00:00:00Z"),
            period("2027-03-31T00:00:00Z", "2027-04-30T00:00:00Z"),
        ]
    );
}

#[test]
fn monthly_anniversaries_from_january_30th() {
    let leap = schedule(
        Interval::Monthly,
        BillingTime::Anniversary,
        "2028-01-30T08:00:00Z",
        "UTC",
    );
    assert_eq!(
        first_periods(&leap, 4),
        vec![
            period("2028-01-30T08:00:00Z", "2028-02-29T00:00:00Z"),
            period("2028-02-29T00:00:00Z", "2028-03-30T00:00:00Z"),
            period("2028-03-30T00:00:00Z", "2028-04-30T00:00:00Z"),
            period("2028-04-30T00:00:00Z", "2028-05-30T00:00:00Z"),
        ]
    );
    let common = schedule(
        Interval::Monthly,
        BillingTime::Anniversary,
        "2027-01-30T08:00:00Z",
        "UTC",
    );
    assert_eq!(
        first_periods(&common, 3),
        vec![
            period("2027-01-30T08:00:00Z", "2027-02-28T00:00:00Z"),
            period("2027-02-28T00:00:00Z", "2027-03-30T00:00:00Z"),
            period("2027-03-30T00:00:00Z", "2027-04-30T00:00:00Z"),
        ]
    );
}

#[test]
fn anniversaries_follow_the_local_date_of_the_start() {
    // 00:30 on January 31st in Paris is January 30th in UTC: the anniversary day is the 31st.
    let s = schedule(
        Interval::Monthly,
        BillingTime::Anniversary,
        "2028-01-31T00:30:00+01:00",
        "Europe/Paris",
    );
    assert_eq!(
        first_periods(&s, 3),
        vec![
            period("2028-01-31T00:30:00+01:00", "2028-02-29T00:00:00+01:00"),
            period("2028-02-29T00:00:00+01:00", "2028-03-31T00:00:00+02:00"),
            period("2028-03-31T00:00:00+02:00", "2028-04-30T00:00:00+02:00"),
        ]
    );
}

#[test]
fn yearly_anniversaries_from_february_29th() {
    let s = schedule(
        Interval::Yearly,
        BillingTime::Anniversary,
        "2028-02-29T10:00:00Z",
        "UTC",
    );
    assert_eq!(
        first_periods(&s, 5),
        vec![
            period("2028-02-29T10:00:00Z", "2029-02-28T00:00:00Z"),
            period("2029-02-28T00:00:00Z", "2030-02-28T00:00:00Z"),
            period("2030-02-28T00:00:00Z", "2031-02-28T00:00:00Z"),
            period("2031-02-28T00:00:00Z", "2032-02-29T00:00:00Z"),
            period("2032-02-29T00:00:00Z", "2033-02-28T00:00:00Z"),
        ]
    );
}

#[test]
fn quarterly_and_semiannual_anniversaries_clamp() {
    let quarterly = schedule(
        Interval::Quarterly,
        BillingTime::Anniversary,
        "2026-11-30T12:00:00Z",
        "UTC",
    );
    assert_eq!(
        first_periods(&quarterly, 4),
        vec![
            period("2026-11-30T12:00:00Z", "2027-02-28T00:00:00Z"),
            period("2027-02-28T00:00:00Z", "2027-05-30T00:00:00Z"),
            period("2027-05-30T00:00:00Z", "2027-08-30T00:00:00Z"),
            period("2027-08-30T00:00:00Z", "2027-11-30T00:00:00Z"),
        ]
    );
    let semiannual = schedule(
        Interval::Semiannual,
        BillingTime::Anniversary,
        "2026-08-31T12:00:00Z",
        "UTC",
    );
    assert_eq!(
        first_periods(&semiannual, 3),
        vec![
            period("2026-08-31T12:00:00Z", "2027-02-28T00:00:00Z"),
            period("2027-02-28T00:00:00Z", "2027-08-31T00:00:00Z"),
            period("2027-08-31T00:00:00Z", "2028-02-29T00:00:00Z"),
        ]
    );
}

#[test]
fn weekly_anniversaries_keep_the_weekday() {
    // Wednesday 2026-03-25 at 10:00 in Paris; summer time starts on Sunday the 29th.
    let s = schedule(
        Interval::Weekly,
        BillingTime::Anniversary,
        "2026-03-25T10:00:00+01:00",
        "Europe/Paris",
    );
    assert_eq!(
        first_periods(&s, 3),
        vec![
            period("2026-03-25T10:00:00+01:00", "2026-04-01T00:00:00+02:00"),
            period("2026-04-01T00:00:00+02:00", "2026-04-08T00:00:00+02:00"),
            period("2026-04-08T00:00:00+02:00", "2026-04-15T00:00:00+02:00"),
        ]
    );
    assert_eq!(hours(s.full_period_containing(s.anchor)), 167);
}

// ---------------------------------------------------------------------------------------------
// Charges billed monthly
// ---------------------------------------------------------------------------------------------

#[test]
fn bill_charges_monthly_on_a_calendar_yearly_plan() {
    let s = schedule(
        Interval::Yearly,
        BillingTime::Calendar,
        "2026-03-15T15:00:00Z",
        "UTC",
    );
    let rows = [
        (
            "2026-03-20T00:00:00Z",
            "2026-03-15T15:00:00Z",
            "2026-04-01T00:00:00Z",
        ),
        (
            "2026-07-04T12:00:00Z",
            "2026-07-01T00:00:00Z",
            "2026-08-01T00:00:00Z",
        ),
        (
            "2026-12-31T23:59:59Z",
            "2026-12-01T00:00:00Z",
            "2027-01-01T00:00:00Z",
        ),
        (
            "2027-02-10T00:00:00Z",
            "2027-02-01T00:00:00Z",
            "2027-03-01T00:00:00Z",
        ),
    ];
    for (instant, from, to) in rows {
        assert_eq!(
            s.charges_period_containing(at(instant), true),
            period(from, to),
            "{instant}"
        );
    }
    assert_eq!(
        s.charges_period_containing(at("2027-02-10T00:00:00Z"), false),
        period("2027-01-01T00:00:00Z", "2028-01-01T00:00:00Z")
    );
    assert_eq!(
        s.charges_period_containing(at("2026-07-04T12:00:00Z"), false),
        period("2026-03-15T15:00:00Z", "2027-01-01T00:00:00Z")
    );
    // 6,993 of 2026's 8,760 hours.
    assert_eq!(
        proration(s.first_period(), s.full_period_containing(s.anchor)),
        dec("0.798287671233")
    );
}

#[test]
fn bill_charges_monthly_on_an_anniversary_yearly_plan() {
    let s = schedule(
        Interval::Yearly,
        BillingTime::Anniversary,
        "2028-01-31T15:00:00Z",
        "UTC",
    );
    let rows = [
        (
            "2028-02-10T00:00:00Z",
            "2028-01-31T15:00:00Z",
            "2028-02-29T00:00:00Z",
        ),
        (
            "2028-03-01T00:00:00Z",
            "2028-02-29T00:00:00Z",
            "2028-03-31T00:00:00Z",
        ),
        (
            "2029-01-30T00:00:00Z",
            "2028-12-31T00:00:00Z",
            "2029-01-31T00:00:00Z",
        ),
        (
            "2029-02-01T00:00:00Z",
            "2029-01-31T00:00:00Z",
            "2029-02-28T00:00:00Z",
        ),
    ];
    for (instant, from, to) in rows {
        assert_eq!(
            s.charges_period_containing(at(instant), true),
            period(from, to),
            "{instant}"
        );
    }
    assert_eq!(
        s.period_containing(at("2029-02-01T00:00:00Z")),
        period("2029-01-31T00:00:00Z", "2030-01-31T00:00:00Z")
    );
    assert_eq!(
        s.charges_period_containing(at("2029-02-01T00:00:00Z"), false),
        period("2029-01-31T00:00:00Z", "2030-01-31T00:00:00Z")
    );
}

#[test]
fn bill_charges_monthly_applies_to_semiannual_plans_only_beside_yearly() {
    let semiannual = schedule(
        Interval::Semiannual,
        BillingTime::Calendar,
        "2026-01-01T00:00:00+01:00",
        "Europe/Paris",
    );
    assert_eq!(
        semiannual.charges_period_containing(at("2026-03-15T00:00:00Z"), true),
        period("2026-03-01T00:00:00+01:00", "2026-04-01T00:00:00+02:00")
    );
    let quarterly = schedule(
        Interval::Quarterly,
        BillingTime::Calendar,
        "2026-01-01T00:00:00Z",
        "UTC",
    );
    assert_eq!(
        quarterly.charges_period_containing(at("2026-02-15T00:00:00Z"), true),
        period("2026-01-01T00:00:00Z", "2026-04-01T00:00:00Z")
    );
}

// ---------------------------------------------------------------------------------------------
// Proration, trials, termination
// ---------------------------------------------------------------------------------------------

#[test]
fn proration_is_by_seconds() {
    let april = period("2026-04-01T00:00:00Z", "2026-05-01T00:00:00Z");
    // 15 days of a 30-day month.
    assert_eq!(
        proration(
            period("2026-04-16T00:00:00Z", "2026-05-01T00:00:00Z"),
            april
        ),
        dec("0.5")
    );
    assert_eq!(proration(april, april), Decimal::ONE);
    assert_eq!(
        proration(
            period("2026-05-01T00:00:00Z", "2026-05-02T00:00:00Z"),
            april
        ),
        Decimal::ZERO
    );
    // Only the part inside the whole counts.
    assert_eq!(
        proration(
            period("2026-03-01T00:00:00Z", "2026-04-16T00:00:00Z"),
            april
        ),
        dec("0.5")
    );
    // March in Paris lasts 743 hours; its last three days, with the 23-hour one, 71 of them.
    let march = period("2026-03-01T00:00:00+01:00", "2026-04-01T00:00:00+02:00");
    assert_eq!(
        proration(
            period("2026-03-29T00:00:00+01:00", "2026-04-01T00:00:00+02:00"),
            march
        ),
        dec("0.095558546433")
    );
    // Half of 743 hours is 371.5: March 16th at 11:30.
    assert_eq!(
        proration(
            period("2026-03-01T00:00:00+01:00", "2026-03-16T11:30:00+01:00"),
            march
        ),
        dec("0.5")
    );
    // Thirds add up to exactly one.
    let whole = period("2026-01-01T00:00:00Z", "2026-01-01T00:00:03Z");
    let thirds = [
        proration(
            period("2026-01-01T00:00:00Z", "2026-01-01T00:00:01Z"),
            whole,
        ),
        proration(
            period("2026-01-01T00:00:01Z", "2026-01-01T00:00:02Z"),
            whole,
        ),
        proration(
            period("2026-01-01T00:00:02Z", "2026-01-01T00:00:03Z"),
            whole,
        ),
    ];
    assert_eq!(
        thirds,
        [
            dec("0.333333333333"),
            dec("0.333333333334"),
            dec("0.333333333333")
        ]
    );
    assert_eq!(thirds.iter().sum::<Decimal>(), Decimal::ONE);
    // An empty whole prorates to nothing.
    let empty = period("2026-01-01T00:00:00Z", "2026-01-01T00:00:00Z");
    assert_eq!(proration(april, empty), Decimal::ZERO);
}

#[test]
fn trials_last_whole_days_from_the_start_instant() {
    assert_eq!(
        trial_end(at("2026-03-10T15:00:00Z"), Trial { days: 14 }, zone("UTC")),
        at("2026-03-24T15:00:00Z")
    );
    // Ten 24-hour days across the switch to summer time end at 16:00 local time.
    assert_eq!(
        trial_end(
            at("2026-03-20T15:00:00+01:00"),
            Trial { days: 10 },
            zone("Europe/Paris")
        ),
        at("2026-03-30T16:00:00+02:00")
    );
    assert_eq!(
        trial_end(at("2026-03-10T15:00:00Z"), Trial { days: 0 }, zone("UTC")),
        at("2026-03-10T15:00:00Z")
    );
}

#[test]
fn a_trial_ending_mid_period_bills_the_rest() {
    let march = period("2026-03-01T00:00:00Z", "2026-04-01T00:00:00Z");
    // March 24th 15:00 to April 1st: 177 of 744 hours.
    assert_eq!(
        billable_share_after_trial(march, at("2026-03-24T15:00:00Z")),
        dec("0.237903225806")
    );
    let april = period("2026-04-01T00:00:00Z", "2026-05-01T00:00:00Z");
    assert_eq!(
        billable_share_after_trial(april, at("2026-04-16T00:00:00Z")),
        dec("0.5")
    );
    assert_eq!(
        billable_share_after_trial(april, at("2026-05-01T00:00:00Z")),
        Decimal::ZERO
    );
    assert_eq!(
        billable_share_after_trial(april, at("2026-06-01T00:00:00Z")),
        Decimal::ZERO
    );
    assert_eq!(
        billable_share_after_trial(april, at("2026-04-01T00:00:00Z")),
        Decimal::ONE
    );
    assert_eq!(
        billable_share_after_trial(april, at("2026-03-01T00:00:00Z")),
        Decimal::ONE
    );
}

#[test]
fn termination_splits_a_period_into_used_and_unused() {
    let april = period("2026-04-01T00:00:00Z", "2026-05-01T00:00:00Z");
    assert_eq!(
        termination_share(april, at("2026-04-16T00:00:00Z")),
        dec("0.5")
    );
    assert_eq!(unused_share(april, at("2026-04-16T00:00:00Z")), dec("0.5"));
    assert_eq!(
        termination_share(april, at("2026-04-11T00:00:00Z")),
        dec("0.333333333333")
    );
    assert_eq!(
        unused_share(april, at("2026-04-11T00:00:00Z")),
        dec("0.666666666667")
    );
    assert_eq!(
        termination_share(april, at("2026-03-01T00:00:00Z")),
        Decimal::ZERO
    );
    assert_eq!(
        unused_share(april, at("2026-03-01T00:00:00Z")),
        Decimal::ONE
    );
    assert_eq!(
        termination_share(april, at("2026-05-01T00:00:00Z")),
        Decimal::ONE
    );
    assert_eq!(
        unused_share(april, at("2026-05-09T00:00:00Z")),
        Decimal::ZERO
    );
    // Upgraded at that instant: the new plan's first calendar period is the rest of April.
    let upgraded = schedule(
        Interval::Monthly,
        BillingTime::Calendar,
        "2026-04-11T00:00:00Z",
        "UTC",
    );
    assert_eq!(
        upgraded.first_period(),
        period("2026-04-11T00:00:00Z", "2026-05-01T00:00:00Z")
    );
    assert_eq!(
        proration(upgraded.first_period(), april),
        dec("0.666666666667")
    );
    // Downgraded: the next plan starts with the next period.
    assert_eq!(
        upgraded.next_period(upgraded.first_period()).from,
        at("2026-05-01T00:00:00Z")
    );
}

// ---------------------------------------------------------------------------------------------
// Properties
// ---------------------------------------------------------------------------------------------

/// Zones on both sides of UTC, with half-hour and 45-minute offsets, 30-minute daylight saving
/// (Lord Howe) and a daylight-saving jump over midnight (Santiago).
const ZONES: &[&str] = &[
    "UTC",
    "Europe/Paris",
    "America/New_York",
    "America/Los_Angeles",
    "America/St_Johns",
    "America/Santiago",
    "Pacific/Pago_Pago",
    "Asia/Kolkata",
    "Asia/Tokyo",
    "Australia/Lord_Howe",
    "Pacific/Chatham",
    "Pacific/Kiritimati",
];

const INTERVALS: &[Interval] = &[
    Interval::Weekly,
    Interval::Monthly,
    Interval::Quarterly,
    Interval::Semiannual,
    Interval::Yearly,
];

/// Anchors between 2000 and 2040, with sub-second parts.
const EARLIEST: i64 = 946_684_800 * SECOND;
const LATEST: i64 = 2_208_988_800 * SECOND;

fn schedules() -> impl Strategy<Value = Schedule> {
    (
        0..ZONES.len(),
        0..INTERVALS.len(),
        any::<bool>(),
        EARLIEST..LATEST,
    )
        .prop_map(|(z, i, anniversary, anchor)| Schedule {
            interval: INTERVALS[i],
            billing_time: if anniversary {
                BillingTime::Anniversary
            } else {
                BillingTime::Calendar
            },
            anchor: Timestamp::from_micros(anchor),
            tz: zone(ZONES[z]),
        })
}

fn local_date(at: Timestamp, tz: Tz) -> NaiveDate {
    Utc.timestamp_micros(at.micros())
        .single()
        .expect("instant")
        .with_timezone(&tz)
        .date_naive()
}

/// Tells whether `edge` is the first instant of local date `date`.
fn starts_day(edge: Timestamp, date: NaiveDate, tz: Tz) -> bool {
    local_date(edge, tz) == date && local_date(Timestamp::from_micros(edge.micros() - 1), tz) < date
}

fn is_leap(year: i32) -> bool {
    (year % 4 == 0 && year % 100 != 0) || year % 400 == 0
}

fn days_in_month(year: i32, month: u32) -> u32 {
    match month {
        2 if is_leap(year) => 29,
        2 => 28,
        4 | 6 | 9 | 11 => 30,
        _ => 31,
    }
}

fn months_of(interval: Interval) -> i32 {
    match interval {
        Interval::Weekly => 0,
        Interval::Monthly => 1,
        Interval::Quarterly => 3,
        Interval::Semiannual => 6,
        Interval::Yearly => 12,
    }
}

/// The anchor's day of the month in month `anchor + k × months`, clamped to that month's last day.
fn anniversary_date(anchor: NaiveDate, months: i32, k: i32) -> NaiveDate {
    let index = anchor.year() * 12 + anchor.month0() as i32 + months * k;
    let (year, month) = (index.div_euclid(12), index.rem_euclid(12) as u32 + 1);
    let day = anchor.day().min(days_in_month(year, month));
    NaiveDate::from_ymd_opt(year, month, day).expect("date")
}

/// The first day of the calendar unit containing `date`.
fn calendar_start(date: NaiveDate, interval: Interval) -> NaiveDate {
    if interval == Interval::Weekly {
        return date - chrono::Days::new(u64::from(date.weekday().num_days_from_monday()));
    }
    let months = months_of(interval) as u32;
    let month = date.month0() / months * months + 1;
    NaiveDate::from_ymd_opt(date.year(), month, 1).expect("date")
}

/// The first day of the calendar unit after the one starting on `start`.
fn calendar_next(start: NaiveDate, interval: Interval) -> NaiveDate {
    if interval == Interval::Weekly {
        return start + chrono::Days::new(7);
    }
    start + chrono::Months::new(months_of(interval) as u32)
}

/// Horizons kept to a few dozen periods, so the file stays fast.
fn horizon(interval: Interval) -> i64 {
    match interval {
        Interval::Weekly => 200 * DAY,
        Interval::Monthly => 800 * DAY,
        _ => 3000 * DAY,
    }
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(160))]

    /// Periods tile time after the anchor: contiguous, never empty, each instant in exactly one,
    /// the one `period_containing` names; every edge is the first instant of its local day.
    #[test]
    fn periods_tile_time_after_the_anchor(s in schedules(), permille in 0..1000i64) {
        let step = horizon(s.interval) / 1000;
        let probe = Timestamp::from_micros(s.anchor.micros() + step * permille);
        let mut periods = vec![s.first_period()];
        prop_assert_eq!(periods[0].from, s.anchor);
        while periods.last().expect("period").to <= probe {
            let last = *periods.last().expect("period");
            let next = s.next_period(last);
            prop_assert_eq!(next.from, last.to);
            periods.push(next);
        }
        for p in &periods {
            prop_assert!(p.from < p.to);
            let full = s.full_period_containing(p.from);
            prop_assert_eq!(full.to, p.to);
            prop_assert!(full.from <= p.from);
            let end_date = local_date(p.to, s.tz);
            prop_assert!(starts_day(p.to, end_date, s.tz), "{:?} does not start a day", p);
            prop_assert!(starts_day(full.from, local_date(full.from, s.tz), s.tz));
        }
        let holding: Vec<&Period> = periods.iter().filter(|p| p.contains(probe)).collect();
        prop_assert_eq!(holding.len(), 1);
        prop_assert_eq!(*holding[0], s.period_containing(probe));
        let between = s.periods_between(s.anchor, Timestamp::from_micros(probe.micros() + 1));
        prop_assert_eq!(between, periods);
    }

    /// Calendar periods are the calendar week, month, quarter, half or year of the local date.
    #[test]
    fn calendar_periods_follow_the_local_calendar(s in schedules(), offset in 0..(3000 * DAY)) {
        let s = Schedule { billing_time: BillingTime::Calendar, ..s };
        let probe = Timestamp::from_micros(s.anchor.micros() + offset);
        let full = s.full_period_containing(probe);
        let start = calendar_start(local_date(probe, s.tz), s.interval);
        prop_assert!(starts_day(full.from, start, s.tz));
        prop_assert!(starts_day(full.to, calendar_next(start, s.interval), s.tz));
        let billed = s.period_containing(probe);
        prop_assert_eq!(billed.to, full.to);
        prop_assert_eq!(billed.from, full.from.max(s.anchor));
    }

    /// The k-th anniversary period starts on the anchor's day clamped in month anchor + k (or the
    /// anchor's date plus k weeks), whatever came before.
    #[test]
    fn anniversaries_never_drift(s in schedules(), k in 1..40i32) {
        let s = Schedule { billing_time: BillingTime::Anniversary, ..s };
        let anchor = local_date(s.anchor, s.tz);
        let mut p = s.first_period();
        for _ in 1..k {
            p = s.next_period(p);
        }
        let months = months_of(s.interval);
        let expected = if months == 0 {
            anchor + chrono::Days::new(7 * k as u64)
        } else {
            anniversary_date(anchor, months, k)
        };
        prop_assert!(
            starts_day(p.to, expected, s.tz),
            "period {} ends {:?}, expected {}", k, p, expected
        );
        prop_assert!(starts_day(s.full_period_containing(s.anchor).from, anchor, s.tz));
        let before = Timestamp::from_micros(s.anchor.micros() - 1);
        prop_assert_eq!(s.period_containing(before), s.first_period());
    }

    /// A period split at any points prorates to shares that add up to exactly one, each within
    /// 10⁻¹² of its exact fraction.
    #[test]
    fn split_prorations_add_up_to_one(
        s in schedules(),
        offset in 0..(400 * DAY),
        cuts in prop::collection::vec(any::<u64>(), 0..8),
    ) {
        let whole = s.full_period_containing(Timestamp::from_micros(s.anchor.micros() + offset));
        let length = whole.to.micros() - whole.from.micros();
        // Any microsecond of the period, so most shares do not fit in 12 places.
        let mut points: Vec<i64> = cuts
            .iter()
            .map(|c| whole.from.micros() + (c % (length as u64 + 1)) as i64)
            .collect();
        points.push(whole.from.micros());
        points.push(whole.to.micros());
        points.sort_unstable();
        let mut total = Decimal::ZERO;
        for pair in points.windows(2) {
            let part = Period {
                from: Timestamp::from_micros(pair[0]),
                to: Timestamp::from_micros(pair[1]),
            };
            let share = proration(part, whole);
            prop_assert!(share >= Decimal::ZERO && share <= Decimal::ONE);
            prop_assert!(share.scale() <= 12);
            // |share × length − part| < length × 10⁻¹², in units of 10⁻¹² microseconds.
            let units = (share * Decimal::from(1_000_000_000_000_i64)).trunc();
            let units = i128::from_str(&units.to_string()).expect("integer");
            let exact = i128::from(pair[1] - pair[0]) * 1_000_000_000_000;
            let error = units * i128::from(length) - exact;
            prop_assert!(error.abs() < i128::from(length), "share {} of {:?}", share, part);
            total += share;
        }
        prop_assert_eq!(total, Decimal::ONE);
        let cut = Timestamp::from_micros(points[points.len() / 2]);
        prop_assert_eq!(termination_share(whole, cut) + unused_share(whole, cut), Decimal::ONE);
    }

    /// Billing-day safety (getlago/lago-api#879, #1074): billers ticking every hour at different
    /// minutes, in zones east and west of UTC, each bill a finished period once, within the hour
    /// after it ends, and agree on what they billed. A biller remembers only its last invoice, so a
    /// period that came back due later would be billed twice.
    #[test]
    fn hourly_billers_bill_each_period_once(
        s in schedules(),
        start in 0..(400 * DAY),
        minutes in (0..60i64, 0..60i64),
    ) {
        // Forty days of ticks see weekly and monthly period ends; longer intervals are tiled above.
        let interval = match s.interval {
            Interval::Weekly => Interval::Weekly,
            _ => Interval::Monthly,
        };
        let s = Schedule { interval, ..s };
        let first_hour = {
            let first = s.anchor.micros() + start;
            first - first.rem_euclid(HOUR)
        };
        // Periods ending in this window are seen by both billers from start to end.
        let window = (first_hour + HOUR, first_hour + 40 * DAY);
        let mut invoices = Vec::new();
        for minute in [minutes.0, minutes.1] {
            let mut billed: BTreeMap<(Timestamp, Timestamp), Vec<Timestamp>> = BTreeMap::new();
            let mut last: Option<Period> = None;
            let mut tick = first_hour + minute * 60 * SECOND;
            while tick < window.1 + HOUR {
                let now = Timestamp::from_micros(tick);
                let current = s.period_containing(now);
                if current.from > s.anchor {
                    let before = Timestamp::from_micros(current.from.micros() - 1);
                    let ended = s.period_containing(before);
                    prop_assert_eq!(ended.to, current.from);
                    if last != Some(ended) {
                        billed.entry((ended.from, ended.to)).or_default().push(now);
                        last = Some(ended);
                    }
                }
                tick += HOUR;
            }
            billed.retain(|(_, to), _| window.0 < to.micros() && to.micros() <= window.1);
            for ((_, to), when) in &billed {
                prop_assert_eq!(when.len(), 1, "billed {:?} at {:?}", to, when);
                prop_assert!(*to <= when[0] && when[0].micros() - to.micros() < HOUR);
            }
            let keys: Vec<(Timestamp, Timestamp)> = billed.into_keys().collect();
            for pair in keys.windows(2) {
                prop_assert_eq!(pair[0].1, pair[1].0);
            }
            invoices.push(keys);
        }
        prop_assert_eq!(&invoices[0], &invoices[1]);
    }
}

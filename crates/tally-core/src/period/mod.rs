//! Billing periods: where a subscription's periods start and end, and what share of one is billed.
//!
//! A plan bills every week, month, quarter, half-year or year ([`Interval`]). A subscription cuts
//! those periods either on the calendar (weeks from Monday, months from the 1st, quarters from January,
//! April, July and October, halves from January and July, years from January 1st) or on the
//! anniversary of its start ([`BillingTime`]). Either way a period runs from local midnight of its first
//! day in the customer's time zone to local midnight of the next period's first day: it is half-open,
//! `[from, to)`, and Lago shows its end as the last second, `to − 1 s` ([`Period::to_inclusive`]).
//!
//! Anniversary periods are always counted from the subscription's start, never from the previous
//! period, so month-end clamping does not drift: a subscription started on January 31st renews on
//! February 28th (29th in a leap year), then March 31st, April 30th.
//!
//! The first period is clipped to the subscription's start, so a calendar subscription taken out on
//! the 15th has a first period from that instant to the 1st of the next month. [`proration`] and the
//! functions around it give the share of a fee such partial periods, trials and terminations owe,
//! measured in seconds of the period.

mod boundary;
mod proration;

use chrono_tz::Tz;

use crate::time::{MICROS_PER_SECOND, Timestamp};

pub use proration::{
    Trial, billable_share_after_trial, proration, termination_share, trial_end, unused_share,
};

/// How often a plan bills (Lago `interval`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Interval {
    /// Every week; calendar weeks start on Monday.
    Weekly,
    /// Every month.
    Monthly,
    /// Every three months; calendar quarters start in January, April, July and October.
    Quarterly,
    /// Every six months; calendar halves start in January and July.
    Semiannual,
    /// Every year.
    Yearly,
}

impl Interval {
    /// Parses a Lago interval name: `weekly`, `monthly`, `quarterly`, `semiannual` or `yearly`.
    pub fn parse(text: &str) -> Option<Self> {
        match text {
            "weekly" => Some(Interval::Weekly),
            "monthly" => Some(Interval::Monthly),
            "quarterly" => Some(Interval::Quarterly),
            "semiannual" => Some(Interval::Semiannual),
            "yearly" => Some(Interval::Yearly),
            _ => None,
        }
    }

    /// Returns the Lago name.
    pub fn name(self) -> &'static str {
        match self {
            Interval::Weekly => "weekly",
            Interval::Monthly => "monthly",
            Interval::Quarterly => "quarterly",
            Interval::Semiannual => "semiannual",
            Interval::Yearly => "yearly",
        }
    }

    /// Returns the length in months, or `None` for weeks.
    fn months(self) -> Option<i64> {
        match self {
            Interval::Weekly => None,
            Interval::Monthly => Some(1),
            Interval::Quarterly => Some(3),
            Interval::Semiannual => Some(6),
            Interval::Yearly => Some(12),
        }
    }
}

/// Where a subscription's periods are cut (Lago `billing_time`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum BillingTime {
    /// On the calendar: the first period runs from the start to the end of the calendar period.
    Calendar,
    /// On the anniversary of the subscription's start day.
    Anniversary,
}

impl BillingTime {
    /// Parses a Lago billing time: `calendar` or `anniversary`.
    pub fn parse(text: &str) -> Option<Self> {
        match text {
            "calendar" => Some(BillingTime::Calendar),
            "anniversary" => Some(BillingTime::Anniversary),
            _ => None,
        }
    }

    /// Returns the Lago name.
    pub fn name(self) -> &'static str {
        match self {
            BillingTime::Calendar => "calendar",
            BillingTime::Anniversary => "anniversary",
        }
    }
}

/// A span of time `[from, to)`: it includes `from` and ends just before `to`.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub struct Period {
    /// The first instant of the period.
    pub from: Timestamp,
    /// The first instant after the period (the next period's `from`).
    pub to: Timestamp,
}

impl Period {
    /// Returns the length in whole seconds, rounded down ([`proration`] uses the exact length).
    pub fn duration_seconds(&self) -> i64 {
        (self.to.micros().saturating_sub(self.from.micros())).div_euclid(MICROS_PER_SECOND)
    }

    /// Tells whether `at` lies in the period (`from` included, `to` excluded).
    pub fn contains(&self, at: Timestamp) -> bool {
        self.from <= at && at < self.to
    }

    /// Returns the last second of the period, `to − 1 s`: the inclusive end Lago renders
    /// (`…T23:59:59Z` in UTC).
    pub fn to_inclusive(&self) -> Timestamp {
        Timestamp::from_micros(self.to.micros().saturating_sub(MICROS_PER_SECOND))
    }
}

/// How one subscription's periods are cut: a plan interval, a billing time, a start and a time zone.
///
/// The zone is the customer's, else the organization's, else UTC (COMPAT §1.7); the caller resolves it.
/// Every method is a pure function of the schedule and its arguments. Results are meant for instants
/// between 1970 and 9999, the range a [`Timestamp`] accepts.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub struct Schedule {
    /// The plan's billing interval.
    pub interval: Interval,
    /// Calendar or anniversary periods.
    pub billing_time: BillingTime,
    /// When the subscription started (`started_at`); anniversary periods start on its local day.
    pub anchor: Timestamp,
    /// The zone whose local midnights cut the periods.
    pub tz: Tz,
}

impl Schedule {
    /// Returns the whole period containing `at`, not clipped to the subscription's start.
    ///
    /// Calendar schedules return the calendar week (from Monday), month, quarter, half-year or year in
    /// the schedule's zone. Anniversary schedules return the period starting at local midnight of the
    /// anchor's day of the month (clamped to the month's last day) in month `anchor + k × interval`, or
    /// of the anchor's weekday for weekly plans. Instants before the anchor get the period that
    /// contains them in the same sequence.
    pub fn full_period_containing(&self, at: Timestamp) -> Period {
        boundary::period_around(self, at).unwrap_or(Period {
            // Only reachable outside the dates chrono can represent: a one-second period keeps
            // callers moving forward without panicking.
            from: at,
            to: Timestamp::from_micros(at.micros().saturating_add(MICROS_PER_SECOND)),
        })
    }

    /// Returns the billing period containing `at`: the whole period, clipped to start no earlier
    /// than the anchor, so the first period may be partial.
    ///
    /// An instant before the anchor gets the first period (nothing is billed before a subscription
    /// starts).
    pub fn period_containing(&self, at: Timestamp) -> Period {
        let at = at.max(self.anchor);
        let full = self.full_period_containing(at);
        Period {
            from: full.from.max(self.anchor),
            to: full.to,
        }
    }

    /// Returns the subscription's first billing period, which starts at the anchor.
    ///
    /// For the subscription fee, a calendar first period is prorated against
    /// [`Schedule::full_period_containing`]; an anniversary first period is billed whole, as Lago
    /// does, since it starts on the anniversary day itself.
    pub fn first_period(&self) -> Period {
        self.period_containing(self.anchor)
    }

    /// Returns the billing period that follows `p`, starting at `p.to`.
    pub fn next_period(&self, p: Period) -> Period {
        self.period_containing(p.to)
    }

    /// Returns, in order, the billing periods that overlap `[from, to)`, each whole (not clipped to
    /// the range); empty when the range ends before the anchor or is empty.
    pub fn periods_between(&self, from: Timestamp, to: Timestamp) -> Vec<Period> {
        let mut out = Vec::new();
        let start = from.max(self.anchor);
        if start >= to {
            return out;
        }
        let mut period = self.period_containing(start);
        while period.from < to {
            out.push(period);
            let next = self.next_period(period);
            if next.from <= period.from {
                break;
            }
            period = next;
        }
        out
    }

    /// Returns the period whose usage charges are billed together with `at`.
    ///
    /// With `bill_charges_monthly` on a yearly or semiannual plan this is the month containing `at`
    /// (a calendar month for calendar billing, an anniversary month counted from the anchor for
    /// anniversary billing), clipped to the billing period; otherwise, and for every other interval,
    /// it is [`Schedule::period_containing`].
    pub fn charges_period_containing(&self, at: Timestamp, bill_charges_monthly: bool) -> Period {
        let period = self.period_containing(at);
        if !splits_charges_monthly(self.interval, bill_charges_monthly) {
            return period;
        }
        let month = self
            .month_schedule()
            .full_period_containing(at.max(self.anchor));
        Period {
            from: month.from.max(period.from),
            to: month.to.min(period.to),
        }
    }

    /// Returns the whole charges period containing `at`, not clipped to the subscription's start: the
    /// whole month with `bill_charges_monthly` on a yearly or semiannual plan, else
    /// [`Schedule::full_period_containing`]. A charge minimum is prorated against it.
    pub fn full_charges_period_containing(
        &self,
        at: Timestamp,
        bill_charges_monthly: bool,
    ) -> Period {
        if splits_charges_monthly(self.interval, bill_charges_monthly) {
            self.month_schedule().full_period_containing(at)
        } else {
            self.full_period_containing(at)
        }
    }

    /// The same schedule, monthly: the months a yearly or semiannual plan bills its charges in.
    fn month_schedule(&self) -> Schedule {
        Schedule {
            interval: Interval::Monthly,
            ..*self
        }
    }
}

/// Tells whether charges are billed monthly, apart from the subscription fee.
fn splits_charges_monthly(interval: Interval, bill_charges_monthly: bool) -> bool {
    bill_charges_monthly && matches!(interval, Interval::Yearly | Interval::Semiannual)
}

//! Which invoices a subscription owes up to a given instant: the billing runs, each keyed by its
//! boundary so that the store can make every (subscription, boundary) exactly once.
//!
//! A run at a boundary bills what ended there and what starts there:
//! - the subscription fee in arrears for the period that ended (plans paid in arrears), prorated by
//!   seconds for a partial calendar period, after a trial, or up to a termination;
//! - usage of every charge for the charges period that ended (monthly on yearly or semiannual plans
//!   with `bill_charges_monthly`);
//! - the subscription fee in advance for the period that starts (plans paid in advance), unless the
//!   subscription ends there.
//!
//! A subscription paid in advance also gets an opening run at its start. A termination between
//! boundaries gets its own run, billing the part of the period used.

use rust_decimal::Decimal;

use crate::billing::fees::FeeKind;
use crate::period::{BillingTime, Period, Schedule, proration};
use crate::time::Timestamp;

/// Why a run happens (Lago `invoicing_reason`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RunReason {
    /// The opening invoice of a subscription paid in advance.
    Starting,
    /// A period boundary.
    Periodic,
    /// A termination between boundaries.
    Terminating,
    /// One pay-in-advance charge fee, invoiced as its event is billed (never a run of `due_runs`).
    InAdvanceCharge,
    /// Usage to date, invoiced because lifetime usage passed a usage threshold (never a run of
    /// `due_runs`; see `billing::progressive`).
    ProgressiveBilling,
}

impl RunReason {
    /// Returns Lago's `invoicing_reason`.
    pub fn name(self) -> &'static str {
        match self {
            RunReason::Starting => "subscription_starting",
            RunReason::Periodic => "subscription_periodic",
            RunReason::Terminating => "subscription_terminating",
            RunReason::InAdvanceCharge => "in_advance_charge",
            RunReason::ProgressiveBilling => "progressive_billing",
        }
    }

    /// Parses a name written by [`RunReason::name`].
    pub fn parse(name: &str) -> Option<Self> {
        match name {
            "subscription_starting" => Some(RunReason::Starting),
            "subscription_periodic" => Some(RunReason::Periodic),
            "subscription_terminating" => Some(RunReason::Terminating),
            "in_advance_charge" => Some(RunReason::InAdvanceCharge),
            "progressive_billing" => Some(RunReason::ProgressiveBilling),
            _ => None,
        }
    }
}

/// A subscription fee to bill in a run: the part of a period billed and the share of the fee due.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct SubscriptionCharge {
    /// The part of the period the fee covers.
    pub period: Period,
    /// The share of the plan's fee due (0 to 1).
    pub share: Decimal,
}

/// One invoice a subscription owes.
#[derive(Debug, Clone, PartialEq)]
pub struct Run {
    /// The instant the run bills up to (its unique key with the subscription).
    pub boundary: Timestamp,
    /// Why.
    pub reason: RunReason,
    /// The subscription fee in arrears, if any.
    pub arrears: Option<SubscriptionCharge>,
    /// The subscription fee in advance, if any.
    pub advance: Option<SubscriptionCharge>,
    /// The charges period billed, if any.
    pub charges: Option<Period>,
    /// The subscription period the run closes or opens (for the invoice's `billing_periods`).
    pub subscription_period: Period,
}

impl Run {
    /// The fee kinds this run bills, for display.
    pub fn kinds(&self) -> Vec<FeeKind> {
        let mut kinds = Vec::new();
        if self.arrears.is_some() || self.advance.is_some() {
            kinds.push(FeeKind::Subscription);
        }
        if self.charges.is_some() {
            kinds.push(FeeKind::Charge);
        }
        kinds
    }
}

/// A subscription's life, as billing sees it.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Life {
    /// When it started.
    pub started_at: Timestamp,
    /// When it ended, if it did.
    pub terminated_at: Option<Timestamp>,
    /// Subscription fee at the start of each period.
    pub pay_in_advance: bool,
    /// End of the free trial, if any.
    pub trial_end: Option<Timestamp>,
    /// Charges billed monthly on yearly and semiannual plans.
    pub bill_charges_monthly: bool,
    /// Whether the events at exactly `started_at` are billed here. False when another subscription
    /// with the same external id ended at that instant without handing it over (a termination, not a
    /// plan change): the instant a subscription ends belongs to it.
    pub bills_start_instant: bool,
    /// Whether the events at exactly `terminated_at` are billed here. True (COMPAT §2.5: events count
    /// up to and including `terminated_at`) unless a plan change, an upgrade or a downgrade, starts the
    /// next subscription at that instant: its first period then starts there, as periods do.
    pub bills_end_instant: bool,
}

impl Life {
    /// Returns the part of `charges` the subscription lived through, `[from, to)`: the time a charge
    /// bills and its minimum is prorated by.
    pub fn billed_part(&self, charges: Period) -> Period {
        Period {
            from: charges.from.max(self.started_at),
            to: self
                .terminated_at
                .map_or(charges.to, |end| charges.to.min(end)),
        }
    }

    /// Returns the events a run billing `charges` counts, `[from, to)` to the microsecond: those in
    /// [`Life::billed_part`], plus those at `terminated_at` when the subscription keeps that instant
    /// (its last run), minus those at `started_at` when an earlier subscription kept it. Every event of
    /// an external id is so billed by exactly one run, across terminations and plan changes.
    pub fn events_in(&self, charges: Period) -> Period {
        let part = self.billed_part(charges);
        let from = if part.from == self.started_at && !self.bills_start_instant {
            just_after(part.from)
        } else {
            part.from
        };
        let to = match self.terminated_at {
            Some(end) if charges.to >= end && self.bills_end_instant => just_after(end),
            _ => part.to,
        };
        Period { from, to }
    }

    /// Returns the first instant whose events are this subscription's (what recurring metrics count
    /// from).
    pub fn events_start(&self) -> Timestamp {
        if self.bills_start_instant {
            self.started_at
        } else {
            just_after(self.started_at)
        }
    }
}

/// The instant one microsecond after `at`: the exclusive end of a span that includes `at`.
fn just_after(at: Timestamp) -> Timestamp {
    Timestamp::from_micros(at.micros().saturating_add(1))
}

/// Returns the whole period a fee or a charge minimum starting at `from` is prorated against: `full`,
/// except for an anniversary first period, which is whole from `started_at` (it is a full period that
/// happens to start at the anchor).
fn whole(schedule: &Schedule, life: &Life, full: Period, from: Timestamp) -> Period {
    if schedule.billing_time == BillingTime::Anniversary && from == life.started_at {
        Period { from, to: full.to }
    } else {
        full
    }
}

/// The share of the plan's fee due for the billed part of a period: by seconds against the full
/// period for a calendar period cut by the start or a termination, the whole fee for an anniversary
/// first period (it is a full period that happens to start at the anchor), and nothing for the part
/// before the trial ends.
fn fee_share(schedule: &Schedule, life: &Life, billed: Period) -> Decimal {
    fee_share_from(schedule, life, billed, billed.from)
}

/// The share of the fee for `billed` that falls at or after `at` (and after the trial), against the
/// same whole period as [`fee_share`] of `billed`, so the shares before and after `at` add up to it
/// exactly.
fn fee_share_from(schedule: &Schedule, life: &Life, billed: Period, at: Timestamp) -> Decimal {
    let full = whole(
        schedule,
        life,
        schedule.full_period_containing(billed.from),
        billed.from,
    );
    let paid_from = life
        .trial_end
        .map_or(billed.from, |end| end.max(billed.from))
        .max(at);
    if paid_from >= billed.to {
        return Decimal::ZERO;
    }
    proration(
        Period {
            from: paid_from,
            to: billed.to,
        },
        full,
    )
}

/// Returns the share of the plan's fee, paid in advance for `billed`, that a subscription ending at
/// `at` did not use: from `at` (or the end of the trial, if later) to the end of `billed`. It is what a
/// termination or an upgrade credits back. With the share used before `at` it adds up to exactly the
/// share the advance fee charged, so a trial that ended after the start of `billed` makes it smaller,
/// and an `at` before the end of the trial credits the whole fee.
pub fn unused_advance_share(
    schedule: &Schedule,
    life: &Life,
    billed: Period,
    at: Timestamp,
) -> Decimal {
    fee_share_from(schedule, life, billed, at)
}

/// Returns the share of its full charges period that a run billing `charges` covers: what a charge's
/// `min_amount_cents` is prorated by. The full period is the whole calendar or anniversary period (the
/// month with `bill_charges_monthly`), not the one cut at `started_at` or `terminated_at`: a month
/// started on April 16th covers 15/30 of it. An anniversary first period is whole, as for the fee.
pub fn charges_share(schedule: &Schedule, life: &Life, charges: Period) -> Decimal {
    let part = life.billed_part(charges);
    let full = whole(
        schedule,
        life,
        schedule.full_charges_period_containing(part.from, life.bill_charges_monthly),
        part.from,
    );
    proration(part, full)
}

/// Returns the run that bills a period's fee in advance at `at`: the subscription's start, or the end
/// of its trial when that falls inside a period.
fn advance_run(schedule: &Schedule, life: &Life, at: Timestamp) -> Run {
    let period = schedule.period_containing(at);
    let billed = Period {
        from: period.from,
        to: period.to.min(life.terminated_at.unwrap_or(period.to)),
    };
    Run {
        boundary: at,
        reason: RunReason::Starting,
        arrears: None,
        advance: Some(SubscriptionCharge {
            period: billed,
            share: fee_share(schedule, life, billed),
        }),
        charges: None,
        subscription_period: period,
    }
}

/// Returns when the first run after `last` falls due, if one does by `horizon`: the earliest boundary
/// of the runs [`due_runs`] would return at `horizon`. Before it, billing the subscription does
/// nothing (as long as nothing it depends on changes).
pub fn next_due(
    schedule: &Schedule,
    life: &Life,
    last: Option<Timestamp>,
    horizon: Timestamp,
) -> Option<Timestamp> {
    due_runs(schedule, life, last, horizon)
        .iter()
        .map(|run| run.boundary)
        .min()
}

/// Returns the runs due after `last` (the latest boundary already billed, if any) up to `now`, in
/// order.
///
/// A plan paid in advance with a trial owes the fee of the period in which the trial ends when it
/// ends (docs/billing.md, "Trials"): on a run keyed at the end of the trial when that falls inside a
/// period, so there is no opening run at the start, and the boundary that opens that period bills no
/// fee in advance. A trial ending on a boundary is billed by that boundary's run.
pub fn due_runs(
    schedule: &Schedule,
    life: &Life,
    last: Option<Timestamp>,
    now: Timestamp,
) -> Vec<Run> {
    let mut runs = Vec::new();
    let start = life.started_at;
    if start > now {
        return runs;
    }
    let ends = life.terminated_at;
    let trial = life.trial_end.filter(|&end| end > start);
    let trial_run = trial.filter(|&end| {
        life.pay_in_advance
            && schedule.period_containing(end).from != end
            && ends.is_none_or(|t| t > end)
    });
    if last.is_none() && life.pay_in_advance && trial.is_none() && ends.is_none_or(|t| t > start) {
        runs.push(advance_run(schedule, life, start));
    }
    let after = last.unwrap_or(start);
    // A trial ending exactly where a charges period ends (monthly charges on a long plan) is billed by
    // that boundary's run, which carries its advance fee: one run per boundary, as `billing_runs` keys
    // them.
    let trial_on_charges_boundary = trial_run.is_some_and(|at| {
        schedule
            .charges_period_containing(at, life.bill_charges_monthly)
            .from
            == at
    });
    if let Some(at) = trial_run
        && at > after
        && at <= now
        && !trial_on_charges_boundary
    {
        runs.push(advance_run(schedule, life, at));
    }
    let mut cursor = after.max(start);
    // Walk the charges periods (they subdivide subscription periods) from the one holding `cursor`.
    loop {
        let charges = schedule.charges_period_containing(cursor, life.bill_charges_monthly);
        let period = schedule.period_containing(cursor);
        let boundary = charges.to;
        if boundary > now || ends.is_some_and(|t| t < boundary) {
            break;
        }
        if boundary > after {
            let closes_period = boundary == period.to;
            let continues = ends.is_none_or(|t| t > boundary);
            let opens_next = closes_period && life.pay_in_advance && continues;
            let next = schedule.next_period(period);
            let arrears = (closes_period && !life.pay_in_advance).then(|| {
                let billed = period;
                SubscriptionCharge {
                    period: billed,
                    share: fee_share(schedule, life, billed),
                }
            });
            let deferred = trial_run.is_some_and(|at| next.contains(at));
            let advance = (opens_next && !deferred).then(|| {
                let billed = Period {
                    from: next.from,
                    to: next.to.min(ends.unwrap_or(next.to)),
                };
                SubscriptionCharge {
                    period: billed,
                    share: fee_share(schedule, life, billed),
                }
            });
            // The trial's advance fee, when the trial ends on this charges boundary.
            let trial_advance = trial_run
                .filter(|at| trial_on_charges_boundary && *at == boundary)
                .map(|at| advance_run(schedule, life, at));
            let subscription_period = match &trial_advance {
                Some(trial) => trial.subscription_period,
                // Paid in advance, the invoice is for the period it opens, as in Lago; the charges
                // period stays the one that ended.
                None if opens_next => next,
                None => period,
            };
            runs.push(Run {
                boundary,
                reason: RunReason::Periodic,
                arrears,
                advance: advance.or(trial_advance.and_then(|trial| trial.advance)),
                charges: Some(charges),
                subscription_period,
            });
        }
        if boundary <= cursor {
            break;
        }
        cursor = boundary;
    }
    runs.sort_by_key(|run| run.boundary);
    if let Some(end) = ends
        && end <= now
        && end > after
        && runs.last().is_none_or(|r| r.boundary < end)
    {
        let period = schedule.period_containing(end.max(start));
        let charges = schedule.charges_period_containing(
            Timestamp::from_micros(end.micros() - 1).max(start),
            life.bill_charges_monthly,
        );
        let arrears = (!life.pay_in_advance).then(|| {
            let billed = Period {
                from: period.from.max(start),
                to: end,
            };
            SubscriptionCharge {
                period: billed,
                share: fee_share(schedule, life, billed),
            }
        });
        runs.push(Run {
            boundary: end,
            reason: RunReason::Terminating,
            arrears,
            advance: None,
            charges: Some(Period {
                from: charges.from,
                to: end,
            }),
            // The subscription's part of the period: Lago shows terminated_at as its end.
            subscription_period: Period {
                from: period.from.max(start),
                to: end,
            },
        });
    }
    runs
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::period::Interval;

    fn ts(text: &str) -> Timestamp {
        Timestamp::parse_rfc3339(text).expect("time")
    }

    fn dec(text: &str) -> Decimal {
        text.parse().expect("decimal")
    }

    fn schedule(interval: Interval, billing_time: BillingTime, anchor: &str) -> Schedule {
        Schedule {
            interval,
            billing_time,
            anchor: ts(anchor),
            tz: chrono_tz::UTC,
        }
    }

    fn life(started: &str, pay_in_advance: bool) -> Life {
        Life {
            started_at: ts(started),
            terminated_at: None,
            pay_in_advance,
            trial_end: None,
            bill_charges_monthly: false,
            bills_start_instant: true,
            bills_end_instant: true,
        }
    }

    type Line = (
        String,
        &'static str,
        Option<Decimal>,
        Option<Decimal>,
        Option<(String, String)>,
    );

    fn summary(runs: &[Run]) -> Vec<Line> {
        runs.iter()
            .map(|r| {
                (
                    r.boundary.to_rfc3339_seconds(),
                    r.reason.name(),
                    r.arrears.map(|a| a.share),
                    r.advance.map(|a| a.share),
                    r.charges
                        .map(|c| (c.from.to_rfc3339_seconds(), c.to.to_rfc3339_seconds())),
                )
            })
            .collect()
    }

    fn span(a: &str, b: &str) -> Option<(String, String)> {
        Some((a.to_owned(), b.to_owned()))
    }

    #[test]
    fn a_trial_ending_on_a_monthly_charges_boundary_shares_its_run() {
        // Semiannual, anniversary from November 30th, usage billed monthly, paid in advance, with a
        // 30-day trial ending on December 30th: the first charges boundary. One run there bills the
        // month's usage and the fee for the rest of the half-year: Dec 30 → May 30 of Nov 30 → May 30,
        // 151 of 181 days = 0.834254143646…
        let s = schedule(
            Interval::Semiannual,
            BillingTime::Anniversary,
            "2025-11-30T00:00:00Z",
        );
        let mut l = life("2025-11-30T00:00:00Z", true);
        l.trial_end = Some(ts("2025-12-30T00:00:00Z"));
        l.bill_charges_monthly = true;
        let runs = due_runs(&s, &l, None, ts("2026-01-31T00:00:00Z"));
        assert_eq!(
            summary(&runs),
            vec![
                (
                    "2025-12-30T00:00:00Z".to_owned(),
                    "subscription_periodic",
                    None,
                    Some(dec("0.834254143646")),
                    span("2025-11-30T00:00:00Z", "2025-12-30T00:00:00Z"),
                ),
                (
                    "2026-01-30T00:00:00Z".to_owned(),
                    "subscription_periodic",
                    None,
                    None,
                    span("2025-12-30T00:00:00Z", "2026-01-30T00:00:00Z"),
                ),
            ]
        );
        assert_eq!(
            runs[0].subscription_period,
            Period {
                from: ts("2025-11-30T00:00:00Z"),
                to: ts("2026-05-30T00:00:00Z"),
            }
        );
    }

    #[test]
    fn calendar_arrears_prorates_the_first_month() {
        let s = schedule(
            Interval::Monthly,
            BillingTime::Calendar,
            "2026-01-15T00:00:00Z",
        );
        let runs = due_runs(
            &s,
            &life("2026-01-15T00:00:00Z", false),
            None,
            ts("2026-03-02T00:00:00Z"),
        );
        // 17 of January's 31 days, then all of February.
        assert_eq!(
            summary(&runs),
            vec![
                (
                    "2026-02-01T00:00:00Z".into(),
                    "subscription_periodic",
                    Some(dec("0.548387096774")),
                    None,
                    span("2026-01-15T00:00:00Z", "2026-02-01T00:00:00Z")
                ),
                (
                    "2026-03-01T00:00:00Z".into(),
                    "subscription_periodic",
                    Some(dec("1")),
                    None,
                    span("2026-02-01T00:00:00Z", "2026-03-01T00:00:00Z")
                ),
            ]
        );
        // Billed up to March 1: nothing more is due on March 2.
        assert!(
            due_runs(
                &s,
                &life("2026-01-15T00:00:00Z", false),
                Some(ts("2026-03-01T00:00:00Z")),
                ts("2026-03-02T00:00:00Z")
            )
            .is_empty()
        );
    }

    #[test]
    fn pay_in_advance_opens_with_an_invoice_and_bills_ahead() {
        let s = schedule(
            Interval::Monthly,
            BillingTime::Calendar,
            "2026-01-15T00:00:00Z",
        );
        let runs = due_runs(
            &s,
            &life("2026-01-15T00:00:00Z", true),
            None,
            ts("2026-02-01T00:00:00Z"),
        );
        assert_eq!(
            summary(&runs),
            vec![
                (
                    "2026-01-15T00:00:00Z".into(),
                    "subscription_starting",
                    None,
                    Some(dec("0.548387096774")),
                    None
                ),
                (
                    "2026-02-01T00:00:00Z".into(),
                    "subscription_periodic",
                    None,
                    Some(dec("1")),
                    span("2026-01-15T00:00:00Z", "2026-02-01T00:00:00Z")
                ),
            ]
        );
    }

    #[test]
    fn a_termination_bills_the_used_part_once() {
        let s = schedule(
            Interval::Monthly,
            BillingTime::Calendar,
            "2026-01-01T00:00:00Z",
        );
        let mut l = life("2026-01-01T00:00:00Z", false);
        l.terminated_at = Some(ts("2026-02-10T12:00:00Z"));
        let runs = due_runs(&s, &l, None, ts("2026-06-01T00:00:00Z"));
        // 9.5 of February's 28 days = 0.339285714286 (0.33928571428571…).
        assert_eq!(
            summary(&runs),
            vec![
                (
                    "2026-02-01T00:00:00Z".into(),
                    "subscription_periodic",
                    Some(dec("1")),
                    None,
                    span("2026-01-01T00:00:00Z", "2026-02-01T00:00:00Z")
                ),
                (
                    "2026-02-10T12:00:00Z".into(),
                    "subscription_terminating",
                    Some(dec("0.339285714286")),
                    None,
                    span("2026-02-01T00:00:00Z", "2026-02-10T12:00:00Z")
                ),
            ]
        );
        // Once billed, the termination is never billed again.
        assert!(
            due_runs(
                &s,
                &l,
                Some(ts("2026-02-10T12:00:00Z")),
                ts("2026-07-01T00:00:00Z")
            )
            .is_empty()
        );
    }

    #[test]
    fn a_termination_on_a_boundary_is_the_periodic_run_without_advance() {
        let s = schedule(
            Interval::Monthly,
            BillingTime::Calendar,
            "2026-01-01T00:00:00Z",
        );
        let mut l = life("2026-01-01T00:00:00Z", true);
        l.terminated_at = Some(ts("2026-02-01T00:00:00Z"));
        let runs = due_runs(
            &s,
            &l,
            Some(ts("2026-01-01T00:00:00Z")),
            ts("2026-03-01T00:00:00Z"),
        );
        assert_eq!(
            summary(&runs),
            vec![(
                "2026-02-01T00:00:00Z".into(),
                "subscription_periodic",
                None,
                None,
                span("2026-01-01T00:00:00Z", "2026-02-01T00:00:00Z")
            )]
        );
    }

    #[test]
    fn a_trial_delays_the_fee() {
        let s = schedule(
            Interval::Monthly,
            BillingTime::Calendar,
            "2026-01-01T00:00:00Z",
        );
        let mut l = life("2026-01-01T00:00:00Z", false);
        l.trial_end = Some(ts("2026-01-15T00:00:00Z"));
        let runs = due_runs(&s, &l, None, ts("2026-02-01T00:00:00Z"));
        // 17 of 31 days paid.
        assert_eq!(
            runs[0].arrears.map(|a| a.share),
            Some(dec("0.548387096774"))
        );
    }

    #[test]
    fn anniversary_first_period_is_a_whole_period() {
        let s = schedule(
            Interval::Monthly,
            BillingTime::Anniversary,
            "2028-01-31T10:00:00Z",
        );
        let runs = due_runs(
            &s,
            &life("2028-01-31T10:00:00Z", true),
            None,
            ts("2028-03-01T00:00:00Z"),
        );
        assert_eq!(
            summary(&runs),
            vec![
                (
                    "2028-01-31T10:00:00Z".into(),
                    "subscription_starting",
                    None,
                    Some(dec("1")),
                    None
                ),
                (
                    "2028-02-29T00:00:00Z".into(),
                    "subscription_periodic",
                    None,
                    Some(dec("1")),
                    span("2028-01-31T10:00:00Z", "2028-02-29T00:00:00Z")
                ),
            ]
        );
    }

    #[test]
    fn yearly_plans_can_bill_charges_monthly() {
        let s = schedule(
            Interval::Yearly,
            BillingTime::Calendar,
            "2026-01-01T00:00:00Z",
        );
        let mut l = life("2026-01-01T00:00:00Z", false);
        l.bill_charges_monthly = true;
        let runs = due_runs(&s, &l, None, ts("2026-03-15T00:00:00Z"));
        assert_eq!(
            summary(&runs),
            vec![
                (
                    "2026-02-01T00:00:00Z".into(),
                    "subscription_periodic",
                    None,
                    None,
                    span("2026-01-01T00:00:00Z", "2026-02-01T00:00:00Z")
                ),
                (
                    "2026-03-01T00:00:00Z".into(),
                    "subscription_periodic",
                    None,
                    None,
                    span("2026-02-01T00:00:00Z", "2026-03-01T00:00:00Z")
                ),
            ]
        );
    }

    fn trial_life(started: &str, days: i64) -> Life {
        let mut l = life(started, true);
        l.trial_end = Some(Timestamp::from_micros(
            l.started_at.micros() + days * 86_400_000_000,
        ));
        l
    }

    fn april() -> Schedule {
        schedule(
            Interval::Monthly,
            BillingTime::Calendar,
            "2026-04-01T00:00:00Z",
        )
    }

    #[test]
    fn a_trial_ending_inside_the_first_period_bills_the_advance_when_it_ends() {
        let s = april();
        let l = trial_life("2026-04-01T00:00:00Z", 10);
        // Nothing is due while the trial runs: no opening invoice at the start.
        assert!(due_runs(&s, &l, None, ts("2026-04-10T23:59:59Z")).is_empty());
        // The trial ends on Apr 11 00:00 (240 h after the start). 10 of April's 30 days were free:
        // 1 − 0.333333333333 = 0.666666666667 of the fee is due then, on a run keyed at that instant.
        let runs = due_runs(&s, &l, None, ts("2026-04-11T00:00:00Z"));
        assert_eq!(
            summary(&runs),
            vec![(
                "2026-04-11T00:00:00Z".into(),
                "subscription_starting",
                None,
                Some(dec("0.666666666667")),
                None
            )]
        );
        let advance = runs[0].advance.expect("advance");
        assert_eq!(advance.period.from, ts("2026-04-01T00:00:00Z"));
        assert_eq!(advance.period.to, ts("2026-05-01T00:00:00Z"));
        // May is paid in advance in full on May 1, with April's usage.
        assert_eq!(
            summary(&due_runs(
                &s,
                &l,
                Some(ts("2026-04-11T00:00:00Z")),
                ts("2026-05-01T00:00:00Z")
            )),
            vec![(
                "2026-05-01T00:00:00Z".into(),
                "subscription_periodic",
                None,
                Some(dec("1")),
                span("2026-04-01T00:00:00Z", "2026-05-01T00:00:00Z")
            )]
        );
    }

    #[test]
    fn a_trial_covering_the_first_period_has_no_opening_run() {
        let s = schedule(
            Interval::Monthly,
            BillingTime::Calendar,
            "2026-04-16T00:00:00Z",
        );
        // Started Apr 16, 30 days of trial: it ends May 16 00:00, inside May.
        let l = trial_life("2026-04-16T00:00:00Z", 30);
        let runs = due_runs(&s, &l, None, ts("2026-06-01T00:00:00Z"));
        // May 1 bills April's usage but no fee: May's is due when the trial ends. On May 16, May 16
        // → Jun 1 is due: 16 of May's 31 days; the trial end sits at 15/31 = 0.48387096774193… →
        // 0.483870967742, so the share is 1 − 0.483870967742 = 0.516129032258. June is whole.
        assert_eq!(
            summary(&runs),
            vec![
                (
                    "2026-05-01T00:00:00Z".into(),
                    "subscription_periodic",
                    None,
                    None,
                    span("2026-04-16T00:00:00Z", "2026-05-01T00:00:00Z")
                ),
                (
                    "2026-05-16T00:00:00Z".into(),
                    "subscription_starting",
                    None,
                    Some(dec("0.516129032258")),
                    None
                ),
                (
                    "2026-06-01T00:00:00Z".into(),
                    "subscription_periodic",
                    None,
                    Some(dec("1")),
                    span("2026-05-01T00:00:00Z", "2026-06-01T00:00:00Z")
                ),
            ]
        );
        // Billed one at a time, the same runs come out.
        let first = due_runs(&s, &l, None, ts("2026-05-01T00:00:00Z"));
        let second = due_runs(
            &s,
            &l,
            Some(ts("2026-05-01T00:00:00Z")),
            ts("2026-05-16T00:00:00Z"),
        );
        let third = due_runs(
            &s,
            &l,
            Some(ts("2026-05-16T00:00:00Z")),
            ts("2026-06-01T00:00:00Z"),
        );
        assert_eq!([first, second, third].concat(), runs);
    }

    #[test]
    fn a_trial_ending_on_a_boundary_is_billed_by_that_boundary() {
        let s = april();
        // 30 days from Apr 1 is May 1 00:00: the May 1 run bills May in advance, in full.
        let l = trial_life("2026-04-01T00:00:00Z", 30);
        assert_eq!(
            summary(&due_runs(&s, &l, None, ts("2026-05-01T00:00:00Z"))),
            vec![(
                "2026-05-01T00:00:00Z".into(),
                "subscription_periodic",
                None,
                Some(dec("1")),
                span("2026-04-01T00:00:00Z", "2026-05-01T00:00:00Z")
            )]
        );
    }

    #[test]
    fn a_termination_during_the_trial_bills_no_fee() {
        let s = april();
        let mut l = trial_life("2026-04-01T00:00:00Z", 10);
        l.terminated_at = Some(ts("2026-04-05T00:00:00Z"));
        assert_eq!(
            summary(&due_runs(&s, &l, None, ts("2026-05-01T00:00:00Z"))),
            vec![(
                "2026-04-05T00:00:00Z".into(),
                "subscription_terminating",
                None,
                None,
                span("2026-04-01T00:00:00Z", "2026-04-05T00:00:00Z")
            )]
        );
    }

    #[test]
    fn invoices_name_the_subscription_period_they_bill() {
        let s = april();
        // Paid in advance: the May 1 invoice pays for May, so its subscription period is May (its
        // charges period is still April).
        let runs = due_runs(
            &s,
            &life("2026-04-01T00:00:00Z", true),
            Some(ts("2026-04-01T00:00:00Z")),
            ts("2026-05-01T00:00:00Z"),
        );
        assert_eq!(runs[0].subscription_period.from, ts("2026-05-01T00:00:00Z"));
        assert_eq!(runs[0].subscription_period.to, ts("2026-06-01T00:00:00Z"));
        // Paid in arrears: the period that ended.
        let runs = due_runs(
            &s,
            &life("2026-04-01T00:00:00Z", false),
            None,
            ts("2026-05-01T00:00:00Z"),
        );
        assert_eq!(runs[0].subscription_period.from, ts("2026-04-01T00:00:00Z"));
        assert_eq!(runs[0].subscription_period.to, ts("2026-05-01T00:00:00Z"));
        // A termination ends the subscription period at terminated_at.
        let mut l = life("2026-04-01T00:00:00Z", true);
        l.terminated_at = Some(ts("2026-04-11T00:00:00Z"));
        let runs = due_runs(
            &s,
            &l,
            Some(ts("2026-04-01T00:00:00Z")),
            ts("2026-04-11T00:00:00Z"),
        );
        assert_eq!(runs[0].reason, RunReason::Terminating);
        assert_eq!(runs[0].subscription_period.from, ts("2026-04-01T00:00:00Z"));
        assert_eq!(runs[0].subscription_period.to, ts("2026-04-11T00:00:00Z"));
    }

    #[test]
    fn the_unused_share_completes_the_share_charged() {
        let s = april();
        let whole_april = Period {
            from: ts("2026-04-01T00:00:00Z"),
            to: ts("2026-05-01T00:00:00Z"),
        };
        let l = life("2026-04-01T00:00:00Z", true);
        // docs/billing.md: terminated Apr 11 00:00, 20 of 30 days unused: 1 − 0.333333333333.
        assert_eq!(
            unused_advance_share(&s, &l, whole_april, ts("2026-04-11T00:00:00Z")),
            dec("0.666666666667")
        );
        // A 10-day trial charged 0.666666666667 (Apr 11 → May 1). Terminated Apr 21 00:00: 10 days
        // unused, from the position 20/30 = 0.666666666667 to 1: 0.333333333333. Before the trial
        // ended, everything charged is unused.
        let trial = trial_life("2026-04-01T00:00:00Z", 10);
        assert_eq!(
            unused_advance_share(&s, &trial, whole_april, ts("2026-04-21T00:00:00Z")),
            dec("0.333333333333")
        );
        assert_eq!(
            unused_advance_share(&s, &trial, whole_april, ts("2026-04-05T00:00:00Z")),
            dec("0.666666666667")
        );
        // Used (as a termination bills it) and unused add up to what was charged, exactly, at any
        // instant of the period, with or without the trial.
        for l in [l, trial] {
            let charged = fee_share(&s, &l, whole_april);
            for hour in 0..=720 {
                let at = Timestamp::from_micros(
                    whole_april.from.micros() + hour * 3_600_000_000 + 1_234,
                );
                let used = fee_share(
                    &s,
                    &l,
                    Period {
                        from: whole_april.from,
                        to: at.min(whole_april.to),
                    },
                );
                assert_eq!(
                    used + unused_advance_share(&s, &l, whole_april, at),
                    charged,
                    "at {at:?}"
                );
            }
        }
        // An anniversary first period is whole from the start: Jan 15 10:00 → Feb 15 00:00 is
        // 734 h. Terminated Jan 30 22:00, 372 h in: 372/734 = 0.50681198910081… → 0.506811989101,
        // so 1 − 0.506811989101 = 0.493188010899 is unused.
        let anniversary = schedule(
            Interval::Monthly,
            BillingTime::Anniversary,
            "2026-01-15T10:00:00Z",
        );
        let first = anniversary.first_period();
        assert_eq!(first.to, ts("2026-02-15T00:00:00Z"));
        assert_eq!(
            unused_advance_share(
                &anniversary,
                &life("2026-01-15T10:00:00Z", true),
                first,
                ts("2026-01-30T22:00:00Z")
            ),
            dec("0.493188010899")
        );
    }

    #[test]
    fn a_charge_minimum_is_prorated_over_the_full_charges_period() {
        let s = april();
        // Started Apr 16: 15 of April's 30 days.
        let l = life("2026-04-16T00:00:00Z", false);
        let first = Period {
            from: ts("2026-04-16T00:00:00Z"),
            to: ts("2026-05-01T00:00:00Z"),
        };
        assert_eq!(charges_share(&s, &l, first), dec("0.5"));
        // Terminated May 11: 10 of May's 31 days, 0.32258064516129… → 0.322580645161.
        let mut ended = l;
        ended.terminated_at = Some(ts("2026-05-11T00:00:00Z"));
        let last = Period {
            from: ts("2026-05-01T00:00:00Z"),
            to: ts("2026-05-11T00:00:00Z"),
        };
        assert_eq!(charges_share(&s, &ended, last), dec("0.322580645161"));
        // A whole month.
        let may = Period {
            from: ts("2026-05-01T00:00:00Z"),
            to: ts("2026-06-01T00:00:00Z"),
        };
        assert_eq!(charges_share(&s, &l, may), dec("1"));
        // An anniversary first period is whole.
        let anniversary = schedule(
            Interval::Monthly,
            BillingTime::Anniversary,
            "2026-01-15T10:00:00Z",
        );
        assert_eq!(
            charges_share(
                &anniversary,
                &life("2026-01-15T10:00:00Z", false),
                anniversary.first_period()
            ),
            dec("1")
        );
        // Yearly, charges billed monthly, started Mar 15 15:00: the first charges period is prorated
        // over March (744 h), not over the year. The start sits 351 h in: 351/744 =
        // 0.47177419354838… → 0.471774193548, so 1 − 0.471774193548 = 0.528225806452.
        let yearly = schedule(
            Interval::Yearly,
            BillingTime::Calendar,
            "2026-03-15T15:00:00Z",
        );
        let mut monthly = life("2026-03-15T15:00:00Z", false);
        monthly.bill_charges_monthly = true;
        let march = yearly.charges_period_containing(ts("2026-03-15T15:00:00Z"), true);
        assert_eq!(march.to, ts("2026-04-01T00:00:00Z"));
        assert_eq!(
            charges_share(&yearly, &monthly, march),
            dec("0.528225806452")
        );
    }

    #[test]
    fn every_event_is_billed_by_exactly_one_run() {
        let april = Period {
            from: ts("2026-04-01T00:00:00Z"),
            to: ts("2026-04-11T00:00:00Z"),
        };
        let micros = |text: &str| ts(text).micros();
        let mut ended = life("2026-04-01T00:00:00Z", false);
        ended.terminated_at = Some(ts("2026-04-11T00:00:00Z"));
        // A terminated subscription keeps the instant it ends (events up to and including it).
        let kept = ended.events_in(april);
        assert_eq!(kept.from, april.from);
        assert_eq!(kept.to.micros(), micros("2026-04-11T00:00:00Z") + 1);
        // A subscription with the same external id starting then leaves that instant to it.
        let mut next = life("2026-04-11T00:00:00Z", false);
        next.bills_start_instant = false;
        let rest = Period {
            from: ts("2026-04-11T00:00:00Z"),
            to: ts("2026-05-01T00:00:00Z"),
        };
        assert_eq!(next.events_in(rest).from, kept.to);
        assert_eq!(next.events_start(), kept.to);
        // A plan change hands the instant over to the new plan, whose period starts there.
        let mut changed = ended;
        changed.bills_end_instant = false;
        let upgraded = life("2026-04-11T00:00:00Z", false);
        assert_eq!(changed.events_in(april).to, upgraded.events_in(rest).from);
        // Ending on a boundary, the periodic run there keeps the instant too.
        let mut at_boundary = life("2026-04-01T00:00:00Z", false);
        at_boundary.terminated_at = Some(ts("2026-05-01T00:00:00Z"));
        let whole = Period {
            from: ts("2026-04-01T00:00:00Z"),
            to: ts("2026-05-01T00:00:00Z"),
        };
        assert_eq!(
            at_boundary.events_in(whole).to.micros(),
            micros("2026-05-01T00:00:00Z") + 1
        );
        // Between boundaries of a live subscription, periods are half-open: each instant once.
        let live = life("2026-04-01T00:00:00Z", false);
        assert_eq!(live.events_in(whole), whole);
        // The time billed never includes the extra instant.
        assert_eq!(ended.billed_part(april), april);
    }
}

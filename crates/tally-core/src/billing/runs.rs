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
}

impl RunReason {
    /// Returns Lago's `invoicing_reason`.
    pub fn name(self) -> &'static str {
        match self {
            RunReason::Starting => "subscription_starting",
            RunReason::Periodic => "subscription_periodic",
            RunReason::Terminating => "subscription_terminating",
            RunReason::InAdvanceCharge => "in_advance_charge",
        }
    }

    /// Parses a name written by [`RunReason::name`].
    pub fn parse(name: &str) -> Option<Self> {
        match name {
            "subscription_starting" => Some(RunReason::Starting),
            "subscription_periodic" => Some(RunReason::Periodic),
            "subscription_terminating" => Some(RunReason::Terminating),
            "in_advance_charge" => Some(RunReason::InAdvanceCharge),
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
}

/// The share of the plan's fee due for the billed part of a period: by seconds against the full
/// period for a calendar period cut by the start or a termination, the whole fee for an anniversary
/// first period (it is a full period that happens to start at the anchor), and nothing for the part
/// before the trial ends.
fn fee_share(schedule: &Schedule, life: &Life, billed: Period) -> Decimal {
    let full = schedule.full_period_containing(billed.from);
    let full =
        if schedule.billing_time == BillingTime::Anniversary && billed.from == life.started_at {
            Period {
                from: billed.from,
                to: full.to,
            }
        } else {
            full
        };
    let paid_from = life
        .trial_end
        .map_or(billed.from, |end| end.max(billed.from));
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

/// Returns the runs due after `last` (the latest boundary already billed, if any) up to `now`, in
/// order.
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
    if last.is_none() && life.pay_in_advance && ends.is_none_or(|t| t > start) {
        let first = schedule.period_containing(start);
        let billed = Period {
            from: start,
            to: first.to.min(ends.unwrap_or(first.to)),
        };
        runs.push(Run {
            boundary: start,
            reason: RunReason::Starting,
            arrears: None,
            advance: Some(SubscriptionCharge {
                period: billed,
                share: fee_share(schedule, life, billed),
            }),
            charges: None,
            subscription_period: first,
        });
    }
    let after = last.unwrap_or(start);
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
            let arrears = (closes_period && !life.pay_in_advance).then(|| {
                let billed = period;
                SubscriptionCharge {
                    period: billed,
                    share: fee_share(schedule, life, billed),
                }
            });
            let advance = (closes_period && life.pay_in_advance && continues).then(|| {
                let next = schedule.next_period(period);
                let billed = Period {
                    from: next.from,
                    to: next.to.min(ends.unwrap_or(next.to)),
                };
                SubscriptionCharge {
                    period: billed,
                    share: fee_share(schedule, life, billed),
                }
            });
            runs.push(Run {
                boundary,
                reason: RunReason::Periodic,
                arrears,
                advance,
                charges: Some(charges),
                subscription_period: period,
            });
        }
        if boundary <= cursor {
            break;
        }
        cursor = boundary;
    }
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
            subscription_period: period,
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
}

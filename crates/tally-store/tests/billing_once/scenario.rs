//! What a case draws, and the instants it resolves to.
//!
//! A [`Scenario`] holds raw choices only (day offsets, picks among boundaries, fractions), so that
//! proptest shrinks each one on its own; [`World::resolve`] turns them into instants, using the
//! naive reference to land on period boundaries, exactly or one microsecond off.

use chrono::DateTime;
use chrono_tz::Tz;
use proptest::prelude::*;
use rust_decimal::Decimal;
use tally_core::period::{BillingTime, Interval};
use tally_core::time::Timestamp;

use crate::reference::{Cut, charge_boundaries, day_start};

pub const DAY: i64 = 86_400_000_000;
pub const SECOND: i64 = 1_000_000;
/// The billing clock's time when the data is set up; every run starts from here.
pub const SETUP: &str = "2026-01-20T00:00:00Z";
/// The organization's tax, which customers without taxes of their own pay, and a reduced one.
pub const VAT: (&str, i64) = ("vat", 2_000);
pub const REDUCED: (&str, i64) = ("reduced", 550);

pub const ZONES: [Tz; 8] = [
    chrono_tz::UTC,
    chrono_tz::Europe::Paris,
    chrono_tz::America::New_York,
    chrono_tz::Asia::Tokyo,
    chrono_tz::Asia::Kolkata,
    chrono_tz::Pacific::Chatham,
    chrono_tz::America::Santiago,
    chrono_tz::Australia::Lord_Howe,
];
pub const INTERVALS: [Interval; 5] = [
    Interval::Weekly,
    Interval::Monthly,
    Interval::Quarterly,
    Interval::Semiannual,
    Interval::Yearly,
];
pub const FEES: [i64; 4] = [0, 1_000, 2_999, 120_000];
pub const UNIT_PRICES: [&str; 4] = ["0.01", "0.37", "2.5", "0.0003"];

/// An instant: a random time, a local midnight, or one of the subscription's boundaries.
#[derive(Debug, Clone)]
pub enum When {
    /// `day` days after set-up, at `second` of that (UTC) day.
    Random { day: i64, second: i64 },
    /// The start of the customer's local day `day` days after set-up.
    LocalMidnight { day: i64 },
    /// A boundary of the subscription (picked modulo their number), moved by `nudge` µs.
    Boundary { pick: usize, nudge: i64 },
}

#[derive(Debug, Clone)]
pub struct CustomerSpec {
    pub zone: usize,
    pub grace_days: i64,
    /// 0: none of its own (the organization's VAT); 1: the reduced tax; 2: both.
    pub taxes: u8,
}

#[derive(Debug, Clone)]
pub enum Ending {
    Never,
    /// `ending_at` set when the data is set up; the billing clock ends it.
    Scheduled(When),
    /// Terminated through the API when the clock reaches that instant (subscriptions active at
    /// set-up only).
    Terminated(When),
}

#[derive(Debug, Clone)]
pub struct SubscriptionSpec {
    pub customer: usize,
    pub anniversary: bool,
    pub start: When,
    pub ending: Ending,
}

#[derive(Debug, Clone)]
pub struct EventSpec {
    pub subscription: usize,
    pub at: When,
    /// The value, in hundredths.
    pub hundredths: i64,
    /// How late it is recorded, in thousandths of its customer's grace period.
    pub lateness: i64,
}

#[derive(Debug, Clone)]
pub struct Stop {
    pub at: When,
    pub repeat: bool,
    /// In run C: a first call dropped after this many µs.
    pub interrupt: Option<u64>,
    /// In run C: the second handle bills at the same time, this many thousandths of the way from
    /// the previous stop.
    pub lagging: Option<i64>,
}

#[derive(Debug, Clone)]
pub struct Scenario {
    pub interval: Interval,
    pub pay_in_advance: bool,
    pub trial_days: u32,
    pub bill_charges_monthly: bool,
    pub fee_cents: i64,
    pub unit_price: &'static str,
    pub customers: Vec<CustomerSpec>,
    pub subscriptions: Vec<SubscriptionSpec>,
    pub events: Vec<EventSpec>,
    pub end: When,
    pub clock_a: Vec<Stop>,
    pub clock_c: Vec<Stop>,
}

fn when(max_day: i64) -> impl Strategy<Value = When> {
    prop_oneof![
        2 => (-60..max_day, 0..86_400i64).prop_map(|(day, second)| When::Random { day, second }),
        1 => (-60..max_day).prop_map(|day| When::LocalMidnight { day }),
        2 => (0..64usize, prop::sample::select(vec![-1i64, 0, 0, 1]))
            .prop_map(|(pick, nudge)| When::Boundary { pick, nudge }),
    ]
}

fn stop() -> impl Strategy<Value = Stop> {
    (
        when(900),
        prop::bool::weighted(0.2),
        prop::option::weighted(0.4, prop_oneof![Just(0u64), 0..2_000u64]),
        prop::option::weighted(0.4, 0..=1_000i64),
    )
        .prop_map(|(at, repeat, interrupt, lagging)| Stop {
            at,
            repeat,
            interrupt,
            lagging,
        })
}

pub fn scenario() -> impl Strategy<Value = Scenario> {
    let plan = (
        prop::sample::select(INTERVALS.to_vec()),
        any::<bool>(),
        prop_oneof![2 => Just(0u32), 1 => 1..45u32],
        any::<bool>(),
        prop::sample::select(FEES.to_vec()),
        prop::sample::select(UNIT_PRICES.to_vec()),
    );
    let customers = prop::collection::vec(
        (0..ZONES.len(), prop_oneof![Just(0i64), 1..4i64], 0..3u8).prop_map(
            |(zone, grace_days, taxes)| CustomerSpec {
                zone,
                grace_days,
                taxes,
            },
        ),
        1..=2,
    );
    let ending = prop_oneof![
        1 => Just(Ending::Never),
        1 => when(900).prop_map(Ending::Scheduled),
        2 => when(900).prop_map(Ending::Terminated),
    ];
    let subscriptions = prop::collection::vec(
        (0..2usize, any::<bool>(), when(200), ending).prop_map(
            |(customer, anniversary, start, ending)| SubscriptionSpec {
                customer,
                anniversary,
                start,
                ending,
            },
        ),
        1..=4,
    );
    let events = prop::collection::vec(
        (0..4usize, when(900), 1..50_000i64, 0..1_000i64).prop_map(
            |(subscription, at, hundredths, lateness)| EventSpec {
                subscription,
                at,
                hundredths,
                lateness,
            },
        ),
        0..=24,
    );
    (
        plan,
        customers,
        subscriptions,
        events,
        when(900),
        prop::collection::vec(stop(), 0..=24),
        prop::collection::vec(stop(), 0..=12),
    )
        .prop_map(
            |(
                (interval, pay_in_advance, trial_days, monthly, fee_cents, unit_price),
                customers,
                subscriptions,
                events,
                end,
                clock_a,
                clock_c,
            )| Scenario {
                interval,
                pay_in_advance,
                trial_days,
                // The API takes the flag on yearly and semiannual plans only.
                bill_charges_monthly: monthly
                    && matches!(interval, Interval::Semiannual | Interval::Yearly),
                fee_cents,
                unit_price,
                customers,
                subscriptions,
                events,
                end,
                clock_a,
                clock_c,
            },
        )
}

// ---------------------------------------------------------------------------------------------
// The scenario resolved into instants (µs since the epoch).

#[derive(Debug)]
pub struct Customer {
    pub external_id: String,
    pub tz: Tz,
    pub grace_days: i64,
    pub taxes: Vec<(&'static str, i64)>,
}

#[derive(Debug)]
pub struct Sub {
    pub external_id: String,
    pub customer: usize,
    pub billing_time: BillingTime,
    pub start: i64,
    pub ending_at: Option<i64>,
    pub terminate_at: Option<i64>,
    /// Every boundary after the start, up to the horizon.
    pub boundaries: Vec<i64>,
}

impl Sub {
    pub fn ends(&self) -> Option<i64> {
        self.ending_at.or(self.terminate_at)
    }
}

#[derive(Debug)]
pub struct Event {
    pub subscription: usize,
    pub at: i64,
    pub value: Decimal,
    /// Recorded before the first billing run at or after this instant.
    pub recorded: i64,
}

#[derive(Debug)]
pub struct World {
    pub setup: i64,
    pub end: i64,
    pub customers: Vec<Customer>,
    pub subs: Vec<Sub>,
    /// Events recorded before the end, in the order they are recorded.
    pub events: Vec<Event>,
    /// API terminations, in time order: (subscription, instant).
    pub terminations: Vec<(usize, i64)>,
    pub clock_a: Vec<i64>,
    /// (stop, interrupted call's budget in µs, lagging instant of the second handle).
    pub clock_c: Vec<(i64, Option<u64>, Option<i64>)>,
}

fn horizon_days(interval: Interval) -> i64 {
    match interval {
        Interval::Weekly => 120,
        Interval::Monthly => 420,
        Interval::Quarterly => 730,
        Interval::Semiannual | Interval::Yearly => 800,
    }
}

impl World {
    pub fn resolve(s: &Scenario) -> World {
        let setup = Timestamp::parse_rfc3339(SETUP)
            .expect("set-up time")
            .micros();
        let horizon = horizon_days(s.interval);
        let setup_date = DateTime::from_timestamp_micros(setup)
            .expect("set-up")
            .date_naive();
        let customers: Vec<Customer> = s
            .customers
            .iter()
            .enumerate()
            .map(|(i, c)| Customer {
                external_id: format!("customer_{i}"),
                tz: ZONES[c.zone],
                grace_days: c.grace_days,
                taxes: match c.taxes {
                    0 => Vec::new(),
                    1 => vec![REDUCED],
                    _ => vec![VAT, REDUCED],
                },
            })
            .collect();
        // Instants are scaled into the horizon so that every interval sees a few periods.
        let scale = |day: i64| day * horizon / 900;
        let at = |w: &When, tz: Tz, boundaries: &[i64], fallback: i64| -> i64 {
            match *w {
                When::Random { day, second } => setup + scale(day) * DAY + second * SECOND,
                When::LocalMidnight { day } => {
                    day_start(setup_date + chrono::Duration::days(scale(day)), tz)
                }
                When::Boundary { pick, nudge } => {
                    if boundaries.is_empty() {
                        fallback
                    } else {
                        boundaries[pick % boundaries.len()] + nudge
                    }
                }
            }
        };
        let horizon_end = setup + (horizon + 2) * DAY;
        let mut subs = Vec::new();
        for (i, spec) in s.subscriptions.iter().enumerate() {
            let customer = spec.customer % customers.len();
            let tz = customers[customer].tz;
            let billing_time = if spec.anniversary {
                BillingTime::Anniversary
            } else {
                BillingTime::Calendar
            };
            // A start "on a boundary" is a boundary of a subscription started at set-up.
            let around_setup = charge_boundaries(
                &Cut {
                    interval: s.interval,
                    billing_time,
                    bill_charges_monthly: s.bill_charges_monthly,
                    tz,
                    start: setup - 60 * DAY,
                },
                setup + 200 * DAY,
            );
            let start = at(&spec.start, tz, &around_setup, setup);
            let cut = Cut {
                interval: s.interval,
                billing_time,
                bill_charges_monthly: s.bill_charges_monthly,
                tz,
                start,
            };
            let boundaries = charge_boundaries(&cut, horizon_end);
            let fallback = start.max(setup) + 10 * DAY + 7 * SECOND;
            let (ending_at, terminate_at) = match &spec.ending {
                Ending::Never => (None, None),
                Ending::Scheduled(w) => {
                    let t = at(w, tz, &boundaries, fallback);
                    // The API refuses an end before the start or in the past.
                    ((t > start && t > setup).then_some(t), None)
                }
                Ending::Terminated(w) => {
                    let t = at(w, tz, &boundaries, fallback);
                    (None, (start <= setup && t > setup).then_some(t))
                }
            };
            subs.push(Sub {
                external_id: format!("subscription_{i}"),
                customer,
                billing_time,
                start,
                ending_at,
                terminate_at,
                boundaries,
            });
        }
        let end = at(
            &s.end,
            customers[0].tz,
            &subs[0].boundaries,
            setup + 30 * DAY,
        )
        .max(setup + SECOND);
        let mut events: Vec<Event> = s
            .events
            .iter()
            .map(|e| {
                let subscription = e.subscription % subs.len();
                let sub = &subs[subscription];
                let customer = &customers[sub.customer];
                let at = at(&e.at, customer.tz, &sub.boundaries, sub.start);
                Event {
                    subscription,
                    at,
                    value: Decimal::new(e.hundredths, 2),
                    recorded: at + customer.grace_days * DAY * e.lateness / 1_000,
                }
            })
            .filter(|e| e.recorded <= end)
            .collect();
        events.sort_by_key(|e| e.recorded);
        let mut terminations: Vec<(usize, i64)> = subs
            .iter()
            .enumerate()
            .filter_map(|(i, sub)| sub.terminate_at.filter(|t| *t <= end).map(|t| (i, t)))
            .collect();
        terminations.sort_by_key(|(_, t)| *t);
        let all_boundaries: Vec<i64> = subs
            .iter()
            .flat_map(|sub| sub.boundaries.iter().copied())
            .collect();
        let stop_at =
            |w: &When| -> i64 { at(w, chrono_tz::UTC, &all_boundaries, end).clamp(setup, end) };
        let mut clock_a = Vec::new();
        for stop in &s.clock_a {
            let t = stop_at(&stop.at);
            clock_a.push(t);
            if stop.repeat {
                clock_a.push(t);
            }
        }
        clock_a.push(end);
        clock_a.sort_unstable();
        let mut stops_c: Vec<&Stop> = s.clock_c.iter().collect();
        stops_c.sort_by_key(|stop| stop_at(&stop.at));
        let mut clock_c = Vec::new();
        let mut previous = setup;
        for stop in stops_c {
            let t = stop_at(&stop.at);
            let lagging = stop.lagging.map(|k| previous + (t - previous) * k / 1_000);
            clock_c.push((t, stop.interrupt, lagging));
            previous = t;
        }
        World {
            setup,
            end,
            customers,
            subs,
            events,
            terminations,
            clock_a,
            clock_c,
        }
    }
}

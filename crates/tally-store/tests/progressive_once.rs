//! Progressive billing bills every unit once, however the billing clock moves.
//!
//! Each case draws usage thresholds (fixed ones, a recurring one, or both), a monthly plan with a
//! subscription fee and a metered charge, events over three months, and the instants the clock
//! stops at, some repeated and some billed by two store handles on the same file at once. A naive
//! reference walks the same instants: it enumerates the threshold points one by one, closes each
//! month with its fee and usage less what the month's progressive invoices billed, and makes a
//! progressive invoice whenever a point lies above what was invoiced and at or below lifetime usage.
//! Usage from before tally counts toward the thresholds and is never billed. The store's invoices
//! must be the reference's, in order, and every month's invoices must add up to
//! its fee and usage exactly: nothing lost, nothing billed twice.

use std::path::Path;

use proptest::prelude::*;
use rust_decimal::Decimal;
use serde_json::{Map, Value, json};
use tally_core::charge::{ChargeModel, ChargeModelKind};
use tally_core::currency::Currency;
use tally_core::customer::CustomerProfile;
use tally_core::event::EventDraft;
use tally_core::id::{Code, ExternalId};
use tally_core::metric::{AggregationType, MetricDefinition};
use tally_core::organization::Organization;
use tally_core::page::Page;
use tally_core::period::{BillingTime, Interval};
use tally_core::plan::{ChargeDraft, ChargeTerms, PlanDraft, PlanTerms, UsageThreshold};
use tally_core::property::PropertyPath;
use tally_core::time::Timestamp;
use tally_store::sqlite::{Durability, SqliteOptions, SqliteStore};
use tally_store::{Atomicity, CustomerChange, InvoiceFilter, NewSubscription, Store};

const MINUTE: i64 = 60_000_000;
/// 2026-01-01T00:00:00Z.
const START: i64 = 1_767_225_600_000_000;
/// Month starts: January, February, March 2026 and April 1st, in days from `START`.
const MONTHS: [i64; 4] = [0, 31, 59, 90];

#[derive(Debug, Clone)]
struct Case {
    fixed: Vec<i64>,
    recurring: Option<i64>,
    fee_cents: i64,
    price_cents: i64,
    /// Usage from before tally (`external_historical_usage_amount_cents`).
    historical: i64,
    /// (minute from `START`, units), sorted.
    events: Vec<(i64, i64)>,
    /// (minute from `START`, bill twice in a row, bill with two handles at once), sorted.
    ticks: Vec<(i64, bool, bool)>,
}

fn case() -> impl Strategy<Value = Case> {
    let minutes = 90 * 1_440i64;
    (
        prop::collection::btree_set(100..=6_000i64, 0..=3),
        prop_oneof![Just(None), (100..=4_000i64).prop_map(Some)],
        prop_oneof![Just(0i64), 1..=3_000i64],
        (1..=40i64, prop_oneof![Just(0i64), 1..=8_000i64]),
        prop::collection::vec((0..minutes, 1..=200i64), 1..=60),
        prop::collection::vec(
            (0..=minutes, any::<bool>(), prop::bool::weighted(0.2)),
            1..=25,
        ),
    )
        .prop_map(
            move |(
                fixed,
                recurring,
                fee_cents,
                (price_cents, historical),
                mut events,
                mut ticks,
            )| {
                let fixed: Vec<i64> = fixed.into_iter().collect();
                let recurring = if fixed.is_empty() && recurring.is_none() {
                    Some(1_000)
                } else {
                    recurring
                };
                events.sort_unstable();
                ticks.sort_unstable();
                ticks.push((minutes, false, false));
                Case {
                    fixed,
                    recurring,
                    fee_cents,
                    price_cents,
                    historical,
                    events,
                    ticks,
                }
            },
        )
}

/// An invoice as the test compares it: (progressive or not, fees, progressive credit, total).
type Line = (bool, i64, i64, i64);

/// The threshold points up to `limit`, one by one.
fn points(c: &Case, limit: i64) -> Vec<i64> {
    let mut points = c.fixed.clone();
    if let Some(step) = c.recurring {
        let mut at = c.fixed.iter().copied().max().unwrap_or(0) + step;
        while at <= limit {
            points.push(at);
            at += step;
        }
    }
    points
}

/// The invoices the clock must make, in order.
fn reference(c: &Case) -> Vec<Line> {
    let usage = |from: i64, to: i64| -> i64 {
        c.events
            .iter()
            .filter(|(at, _)| *at >= from && *at < to)
            .map(|(_, units)| units * c.price_cents)
            .sum()
    };
    let all: i64 = usage(0, i64::MAX);
    let points = points(c, c.historical + all);
    let mut lines = Vec::new();
    let mut month = 0;
    let mut closed = c.historical;
    let mut progressive = 0;
    for &(tick, _, _) in &c.ticks {
        while month < 3 && tick >= MONTHS[month + 1] * 1_440 {
            let used = usage(MONTHS[month] * 1_440, MONTHS[month + 1] * 1_440);
            let fees = c.fee_cents + used;
            lines.push((false, fees, progressive, fees - progressive));
            closed += used;
            progressive = 0;
            month += 1;
        }
        if month == 3 {
            continue;
        }
        let to_date = usage(MONTHS[month] * 1_440, tick);
        let (invoiced, lifetime) = (closed + progressive, closed + to_date);
        if points.iter().any(|p| *p > invoiced && *p <= lifetime) {
            lines.push((true, to_date, progressive, to_date - progressive));
            progressive = to_date;
        }
    }
    lines
}

fn external(id: &str) -> ExternalId {
    ExternalId::parse("external_id", id).expect("external id")
}

fn open(path: &Path, ingest: bool) -> SqliteStore {
    let mut options = SqliteOptions::new(path);
    options.durability = Durability::Normal;
    options.readers = 2;
    options.ingest = ingest;
    SqliteStore::open(&options).expect("open the store")
}

async fn set_up(store: &SqliteStore, c: &Case) -> Organization {
    let org = store.default_organization().await.expect("organization");
    let code = Code::parse("code", "calls").expect("code");
    let metric = store
        .create_metric(
            org.id,
            MetricDefinition {
                code: code.clone(),
                name: "Calls".into(),
                description: None,
                aggregation: AggregationType::Sum,
                event_type: code,
                field: Some(PropertyPath::key("value")),
                recurring: false,
                rounding: None,
                filters: Vec::new(),
                group_by: Default::default(),
                event_from: None,
            },
        )
        .await
        .expect("metric");
    let amount = Decimal::new(c.price_cents, 2).to_string();
    let model = ChargeModel::from_properties(
        ChargeModelKind::Standard,
        json!({ "amount": amount }).as_object(),
    )
    .expect("standard charge");
    let mut thresholds: Vec<(Option<_>, UsageThreshold)> = c
        .fixed
        .iter()
        .map(|amount_cents| {
            (
                None,
                UsageThreshold {
                    amount_cents: *amount_cents,
                    display_name: None,
                    recurring: false,
                },
            )
        })
        .collect();
    if let Some(amount_cents) = c.recurring {
        thresholds.push((
            None,
            UsageThreshold {
                amount_cents,
                display_name: None,
                recurring: true,
            },
        ));
    }
    store
        .create_plan(
            org.id,
            PlanDraft {
                terms: PlanTerms {
                    code: Code::parse("code", "metered").expect("code"),
                    name: "Metered".into(),
                    description: None,
                    invoice_display_name: None,
                    interval: Interval::Monthly,
                    amount_cents: c.fee_cents,
                    currency: Currency::parse("USD").expect("USD"),
                    pay_in_advance: false,
                    trial_period_days: 0,
                    bill_charges_monthly: false,
                    minimum_commitment: None,
                },
                charges: vec![ChargeDraft {
                    id: None,
                    metric_id: metric.id,
                    terms: ChargeTerms {
                        code: "calls".into(),
                        invoice_display_name: None,
                        model,
                        pay_in_advance: false,
                        invoiceable: true,
                        prorated: false,
                        min_amount_cents: 0,
                    },
                    filters: Vec::new(),
                    tax_codes: None,
                }],
                tax_codes: None,
                usage_thresholds: thresholds,
            },
        )
        .await
        .expect("plan");
    store
        .upsert_customer(
            org.id,
            external("acme"),
            CustomerChange {
                profile: CustomerProfile {
                    timezone: Some(chrono_tz::UTC),
                    invoice_grace_period: Some(0),
                    ..CustomerProfile::default()
                },
                tax_codes: None,
            },
        )
        .await
        .expect("customer");
    store
        .create_subscription(
            org.id,
            NewSubscription {
                external_customer_id: external("acme"),
                plan_code: "metered".into(),
                external_id: external("sub"),
                name: None,
                billing_time: BillingTime::Calendar,
                subscription_at: Some(Timestamp::from_micros(START)),
                ending_at: None,
            },
            Timestamp::from_micros(START),
        )
        .await
        .expect("subscription");
    store
        .set_historical_usage(org.id, "sub", c.historical, Timestamp::from_micros(START))
        .await
        .expect("history");
    org
}

async fn run(dir: &Path, c: &Case) -> Vec<Line> {
    let path = dir.join("progressive.db");
    let store = open(&path, true);
    let org = set_up(&store, c).await;
    let other = open(&path, false);
    let mut sent = 0;
    for &(tick, twice, together) in &c.ticks {
        let t = Timestamp::from_micros(START + tick * MINUTE);
        let mut batch = Vec::new();
        while let Some(&(at, units)) = c.events.get(sent).filter(|(at, _)| *at < tick) {
            let mut properties = Map::new();
            properties.insert("value".into(), Value::from(units));
            let draft = EventDraft {
                source: None,
                transaction_id: external(&format!("e{sent}")),
                code: Code::parse("code", "calls").expect("code"),
                subject: Some(external("acme")),
                external_subscription_id: Some(external("sub")),
                timestamp: Some(Timestamp::from_micros(START + at * MINUTE)),
                properties,
                precise_total_amount_cents: None,
            };
            batch.push(draft.prepare(org.id, org.identifier_case, t));
            sent += 1;
        }
        if !batch.is_empty() {
            store
                .record_events(org.id, batch, Atomicity::AllOrNothing)
                .await
                .expect("events");
        }
        if together {
            let (first, second) = tokio::join!(store.run_billing(t), other.run_billing(t));
            first.expect("billing run");
            second.expect("billing run of the second handle");
        } else {
            store.run_billing(t).await.expect("billing run");
        }
        if twice {
            store.run_billing(t).await.expect("billing run again");
        }
    }
    other.close().await;
    let listed = store
        .list_invoices(
            org.id,
            &InvoiceFilter::default(),
            Page {
                number: 1,
                per_page: 1_000,
            },
        )
        .await
        .expect("invoices");
    store.close().await;
    listed
        .items
        .iter()
        .rev()
        .map(|i| {
            let t = &i.totals;
            (
                i.invoice_type == "progressive_billing",
                t.fees_amount_cents,
                t.progressive_billing_credit_amount_cents,
                t.total_amount_cents,
            )
        })
        .collect()
}

proptest! {
    #![proptest_config(ProptestConfig {
        cases: 48,
        max_shrink_iters: 256,
        ..ProptestConfig::default()
    })]

    #[test]
    fn progressive_invoices_bill_every_unit_once(c in case()) {
        let runtime = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .expect("runtime");
        let dir = tempfile::tempdir().expect("temp dir");
        let got = runtime.block_on(run(dir.path(), &c));
        let want = reference(&c);
        prop_assert_eq!(&got, &want);
        // Every month adds up to its fee and its usage, however many invoices it took.
        let billed: i64 = got.iter().map(|(_, fees, credit, _)| fees - credit).sum();
        let used: i64 = c.events.iter().map(|(_, units)| units * c.price_cents).sum();
        prop_assert_eq!(billed, 3 * c.fee_cents + used);
    }
}

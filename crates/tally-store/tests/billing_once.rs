//! Every (subscription, boundary) is invoiced exactly once, however the billing clock gets there.
//!
//! Each case draws a plan (any interval, in advance or in arrears, with or without a trial, usage
//! billed monthly or not), customers in zones with daylight-saving edges, grace periods and taxes,
//! subscriptions starting, ending and terminated at random instants (often exactly on a period
//! boundary), and events for a metered charge, some arriving late within the grace period. Three
//! databases get the same data and are billed up to the same end through the `Store` trait:
//!
//! - A moves the clock forward in random steps, repeating instants and stopping on, just before and
//!   just after boundaries;
//! - B jumps to the end at once;
//! - C moves in steps, drops `run_billing` calls part-way and calls again, while a second store
//!   handle on the same file bills at the same time with a lagging clock.
//!
//! The three must hold the same invoices, keyed by (subscription, boundary, invoicing reason), with
//! the same fees and totals; each key once; every invoice adding up; and the periodic invoices, the
//! terminations and the usage billed must match a naive reference computed from the plan's calendar.

#[path = "billing_once/check.rs"]
mod check;
#[path = "billing_once/reference.rs"]
mod reference;
#[path = "billing_once/scenario.rs"]
mod scenario;

use std::path::Path;
use std::time::Duration;

use proptest::prelude::*;
use rust_decimal::Decimal;
use serde_json::{Map, Value, json};
use tally_core::charge::{ChargeModel, ChargeModelKind};
use tally_core::currency::Currency;
use tally_core::customer::CustomerProfile;
use tally_core::event::EventDraft;
use tally_core::id::{Code, ExternalId, InvoiceId};
use tally_core::metric::{AggregationType, MetricDefinition};
use tally_core::organization::Organization;
use tally_core::page::Page;
use tally_core::period::{BillingTime, Interval};
use tally_core::plan::{ChargeDraft, ChargeTerms, PlanDraft, PlanTerms};
use tally_core::property::PropertyPath;
use tally_core::subscription::SubscriptionStatus;
use tally_core::tax::TaxTerms;
use tally_core::time::Timestamp;
use tally_store::sqlite::{Durability, SqliteOptions, SqliteStore};
use tally_store::{
    Atomicity, CustomerChange, Invoice, InvoiceFilter, NewSubscription, Store, SubscriptionUpdate,
};

use check::{check, reported_once, same};
use scenario::{Customer, REDUCED, SETUP, Scenario, Sub, VAT, When, World, scenario};

const PLAN: &str = "metered";
const METRIC: &str = "api_calls";

fn ts(micros: i64) -> Timestamp {
    Timestamp::from_micros(micros)
}

fn open(path: &std::path::Path, ingest: bool) -> SqliteStore {
    let mut options = SqliteOptions::new(path);
    options.durability = Durability::Normal;
    options.readers = 2;
    options.ingest = ingest;
    SqliteStore::open(&options).expect("open the store")
}

/// Creates the taxes, the metric, the plan, the customers and the subscriptions, at `world.setup`.
async fn set_up(store: &SqliteStore, s: &Scenario, world: &World) -> Organization {
    let org = store.default_organization().await.expect("organization");
    for ((code, basis_points), applied_to_organization) in [(VAT, true), (REDUCED, false)] {
        store
            .create_tax(
                org.id,
                TaxTerms {
                    code: Code::parse("code", code).expect("code"),
                    name: code.to_owned(),
                    rate: Decimal::new(basis_points, 2),
                    description: None,
                    applied_to_organization,
                },
            )
            .await
            .expect("tax");
    }
    let code = Code::parse("code", METRIC).expect("code");
    let metric = store
        .create_metric(
            org.id,
            MetricDefinition {
                code: code.clone(),
                name: "API calls".into(),
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
    let properties = json!({ "amount": s.unit_price });
    let model = ChargeModel::from_properties(ChargeModelKind::Standard, properties.as_object())
        .expect("standard charge");
    store
        .create_plan(
            org.id,
            PlanDraft {
                terms: PlanTerms {
                    code: Code::parse("code", PLAN).expect("code"),
                    name: "Metered".into(),
                    description: None,
                    invoice_display_name: None,
                    interval: s.interval,
                    amount_cents: s.fee_cents,
                    currency: Currency::parse("USD").expect("USD"),
                    pay_in_advance: s.pay_in_advance,
                    trial_period_days: s.trial_days,
                    bill_charges_monthly: s.bill_charges_monthly,
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
                usage_thresholds: Vec::new(),
            },
        )
        .await
        .expect("plan");
    for customer in &world.customers {
        let profile = CustomerProfile {
            name: Some(customer.external_id.clone()),
            timezone: Some(customer.tz),
            invoice_grace_period: Some(customer.grace_days),
            ..CustomerProfile::default()
        };
        let taxes = customer
            .taxes
            .iter()
            .map(|(c, _)| (*c).to_owned())
            .collect();
        store
            .upsert_customer(
                org.id,
                external(&customer.external_id),
                CustomerChange {
                    profile,
                    tax_codes: Some(taxes),
                },
            )
            .await
            .expect("customer");
    }
    for sub in &world.subs {
        store
            .create_subscription(
                org.id,
                NewSubscription {
                    external_customer_id: external(&world.customers[sub.customer].external_id),
                    plan_code: PLAN.into(),
                    external_id: external(&sub.external_id),
                    name: None,
                    billing_time: sub.billing_time,
                    subscription_at: Some(ts(sub.start)),
                    ending_at: None,
                },
                ts(world.setup),
            )
            .await
            .expect("subscription");
        if let Some(ending) = sub.ending_at {
            // Set after creation, as a client changing its mind would.
            let status = if sub.start <= world.setup {
                SubscriptionStatus::Active
            } else {
                SubscriptionStatus::Pending
            };
            store
                .update_subscription(
                    org.id,
                    &sub.external_id,
                    status,
                    SubscriptionUpdate {
                        ending_at: Some(Some(ts(ending))),
                        ..SubscriptionUpdate::default()
                    },
                    ts(world.setup),
                )
                .await
                .expect("ending_at");
        }
    }
    org
}

fn external(id: &str) -> ExternalId {
    ExternalId::parse("external_id", id).expect("external id")
}

/// Feeds a store the events and terminations due by `t`, as they would have reached it by then.
struct Feed<'a> {
    world: &'a World,
    org: &'a Organization,
    events: usize,
    terminations: usize,
}

impl<'a> Feed<'a> {
    fn new(world: &'a World, org: &'a Organization) -> Self {
        Feed {
            world,
            org,
            events: 0,
            terminations: 0,
        }
    }

    async fn until(&mut self, store: &SqliteStore, t: i64) {
        let mut batch = Vec::new();
        while let Some(event) = self.world.events.get(self.events) {
            if event.recorded > t {
                break;
            }
            let sub = &self.world.subs[event.subscription];
            let mut properties = Map::new();
            properties.insert("value".into(), Value::String(event.value.to_string()));
            let draft = EventDraft {
                source: None,
                transaction_id: external(&format!("event_{}", self.events)),
                code: Code::parse("code", METRIC).expect("code"),
                subject: Some(external(&self.world.customers[sub.customer].external_id)),
                external_subscription_id: Some(external(&sub.external_id)),
                timestamp: Some(ts(event.at)),
                properties,
                precise_total_amount_cents: None,
            };
            batch.push(draft.prepare(self.org.id, self.org.identifier_case, ts(event.recorded)));
            self.events += 1;
        }
        if !batch.is_empty() {
            store
                .record_events(self.org.id, batch, Atomicity::AllOrNothing)
                .await
                .expect("events");
        }
        while let Some(&(sub, at)) = self.world.terminations.get(self.terminations) {
            if at > t {
                break;
            }
            store
                .terminate_subscription(
                    self.org.id,
                    &self.world.subs[sub].external_id,
                    SubscriptionStatus::Active,
                    ts(at),
                )
                .await
                .expect("terminate");
            self.terminations += 1;
        }
    }
}

/// Runs the billing clock and returns the invoices it reports as made.
async fn bill(store: &SqliteStore, t: i64) -> Vec<InvoiceId> {
    store.run_billing(ts(t)).await.expect("billing run")
}

/// What a run leaves behind.
struct Outcome {
    invoices: Vec<Invoice>,
    /// The invoices `run_billing` reported as made (only when no call was dropped).
    created: Vec<InvoiceId>,
    /// The credit notes, before taxes, summed.
    credited_cents: i64,
}

/// Reads every invoice and credit note, then closes the store.
async fn finish(store: SqliteStore, org: &Organization, created: Vec<InvoiceId>) -> Outcome {
    let page = |number| Page {
        number,
        per_page: 1_000,
    };
    let mut invoices = Vec::new();
    for number in 1.. {
        let listed = store
            .list_invoices(org.id, &InvoiceFilter::default(), page(number))
            .await
            .expect("invoices");
        let done = listed.items.len() < 1_000;
        invoices.extend(listed.items);
        if done {
            break;
        }
    }
    let notes = store
        .list_credit_notes(org.id, None, page(1))
        .await
        .expect("credit notes");
    store.close().await;
    Outcome {
        invoices,
        created,
        credited_cents: notes
            .items
            .iter()
            .map(|n| n.sub_total_excluding_taxes_amount_cents)
            .sum(),
    }
}

/// Run A: the clock stops at every instant of `clock_a`, some repeated.
async fn run_stepping(dir: &Path, s: &Scenario, world: &World) -> Outcome {
    let store = open(&dir.join("a.db"), true);
    let org = set_up(&store, s, world).await;
    let mut feed = Feed::new(world, &org);
    let mut created = Vec::new();
    for &t in &world.clock_a {
        feed.until(&store, t).await;
        created.extend(bill(&store, t).await);
    }
    finish(store, &org, created).await
}

/// Run B: everything is known, then one jump to the end.
async fn run_jumping(dir: &Path, s: &Scenario, world: &World) -> Outcome {
    let store = open(&dir.join("b.db"), true);
    let org = set_up(&store, s, world).await;
    let mut feed = Feed::new(world, &org);
    feed.until(&store, world.end).await;
    let created = bill(&store, world.end).await;
    finish(store, &org, created).await
}

/// Run C: calls dropped part-way and retried, and a second handle billing at the same time.
async fn run_interrupted(dir: &Path, s: &Scenario, world: &World) -> Outcome {
    let path = dir.join("c.db");
    let store = open(&path, true);
    let org = set_up(&store, s, world).await;
    // A second process on the same file (the ingest lock is the first one's).
    let other = open(&path, false);
    let mut feed = Feed::new(world, &org);
    for &(t, interrupt, lagging) in &world.clock_c {
        feed.until(&store, t).await;
        if let Some(budget) = interrupt {
            // Whatever the dropped call had queued still commits; the rest never starts.
            let dropped =
                tokio::time::timeout(Duration::from_micros(budget), store.run_billing(ts(t)));
            if let Ok(result) = dropped.await {
                result.expect("billing run");
            }
        }
        match lagging {
            Some(lag) => {
                let (first, second) =
                    tokio::join!(store.run_billing(ts(t)), other.run_billing(ts(lag)));
                first.expect("billing run");
                second.expect("billing run of the second handle");
            }
            None => {
                bill(&store, t).await;
            }
        }
    }
    other.close().await;
    feed.until(&store, world.end).await;
    bill(&store, world.end).await;
    finish(store, &org, Vec::new()).await
}

proptest! {
    #![proptest_config(ProptestConfig {
        cases: 32,
        max_shrink_iters: 512,
        ..ProptestConfig::default()
    })]

    #[test]
    fn every_run_is_invoiced_once_however_the_clock_moves(s in scenario()) {
        let world = World::resolve(&s);
        let runtime = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .expect("runtime");
        let dir = tempfile::tempdir().expect("temp dir");
        runtime.block_on(async {
            let a = run_stepping(dir.path(), &s, &world).await;
            let b = run_jumping(dir.path(), &s, &world).await;
            let c = run_interrupted(dir.path(), &s, &world).await;
            reported_once("A", &a.invoices, &a.created)?;
            reported_once("B", &b.invoices, &b.created)?;
            let a = check(&s, &world, "A", &a.invoices)?;
            let b = check(&s, &world, "B", &b.invoices)?;
            let c = check(&s, &world, "C", &c.invoices)?;
            same(&s, &world, ("A", &a), ("B", &b))?;
            same(&s, &world, ("A", &a), ("C", &c))?;
            Ok::<(), TestCaseError>(())
        })?;
    }
}

/// What a customer owes for a period billed in advance and cut short by a termination does not
/// depend on whether the billing clock ran before the termination (docs/billing.md, "Termination,
/// upgrades and downgrades": the unused share of a period paid in advance is credited back).
///
/// A monthly $30.00 plan paid in advance, calendar, UTC, started on 1 January 2026 and terminated
/// at 00:00 on 21 January:
/// - the clock runs on 20 January, before the termination: the opening invoice bills all of January,
///   3,000 cents, and the termination credits back the 11 unused days (0.354838709677 × 3,000 =
///   1,064.52, so 1,065 cents): 1,935 owed;
/// - the clock first runs after the termination: the opening invoice bills 1 to 21 January,
///   0.645161290323 × 3,000 = 1,935.48, so 1,935 cents.
#[tokio::test]
async fn an_advance_fee_does_not_depend_on_when_the_end_is_known() {
    let at = |text: &str| Timestamp::parse_rfc3339(text).expect("time").micros();
    let (setup, end) = (at(SETUP), at("2026-01-21T00:00:00Z"));
    let s = Scenario {
        interval: Interval::Monthly,
        pay_in_advance: true,
        trial_days: 0,
        bill_charges_monthly: false,
        fee_cents: 3_000,
        unit_price: "0.01",
        customers: Vec::new(),
        subscriptions: Vec::new(),
        events: Vec::new(),
        end: When::Random { day: 0, second: 0 },
        clock_a: Vec::new(),
        clock_c: Vec::new(),
    };
    let world = World {
        setup,
        end,
        customers: vec![Customer {
            external_id: "customer_0".into(),
            tz: chrono_tz::UTC,
            grace_days: 0,
            taxes: Vec::new(),
        }],
        subs: vec![Sub {
            external_id: "subscription_0".into(),
            customer: 0,
            billing_time: BillingTime::Calendar,
            start: at("2026-01-01T00:00:00Z"),
            ending_at: None,
            terminate_at: Some(end),
            boundaries: Vec::new(),
        }],
        events: Vec::new(),
        terminations: vec![(0, end)],
        clock_a: vec![setup, end],
        clock_c: Vec::new(),
    };
    let dir = tempfile::tempdir().expect("temp dir");
    let owed = |outcome: &Outcome| {
        let invoiced: i64 = outcome
            .invoices
            .iter()
            .map(|i| i.totals.sub_total_excluding_taxes_amount_cents)
            .sum();
        invoiced - outcome.credited_cents
    };
    let ahead = run_stepping(dir.path(), &s, &world).await;
    let behind = run_jumping(dir.path(), &s, &world).await;
    assert_eq!(owed(&behind), 1_935);
    assert_eq!(owed(&ahead), owed(&behind));
}

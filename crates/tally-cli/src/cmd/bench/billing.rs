//! `tally bench billing`: a benchmark, not a test. Many customers, each with one subscription to the
//! metered plan (see [`super::metered`]) from 1 January 2026 and a month of events preloaded through
//! the store; then one `Store::run_billing` call at 1 February, timed directly on the store (no
//! HTTP), invoices every subscription. The run fails loudly unless that call made exactly one
//! invoice per subscription, a second call made none, and every invoice is finalized with the total
//! computed from the generated events.
//!
//! The billing clock is simulated: subscriptions are created with `now` at the period start, and the
//! run is given the next period's start, so each run prices the same month whatever the date.

use std::path::PathBuf;
use std::sync::Arc;
use std::time::Instant;

use anyhow::{Context, Result, bail, ensure};
use clap::Args;
use futures::future::join_all;
use tally_core::ValidationErrors;
use tally_core::customer::CustomerProfile;
use tally_core::id::ExternalId;
use tally_core::invoice::InvoiceStatus;
use tally_core::organization::Organization;
use tally_core::period::BillingTime;
use tally_core::plan::UsageThreshold;
use tally_core::time::Timestamp;
use tally_store::sqlite::{SqliteOptions, SqliteStore};
use tally_store::{CustomerChange, NewSubscription, Store, StoreError};

use super::machine::{Machine, cpu_time};
use super::metered::{PLAN, SUBSCRIPTION_FEE_CENTS, Totals, Usage, ensure_plan};
use super::{database_path, preload_with, progress_bar, thousands};

/// The prefix of the customers' external ids (`bench_billing_customer_0`, …).
const CUSTOMER: &str = "bench_billing_customer";
/// The prefix of the subscriptions' external ids.
const SUBSCRIPTION: &str = "bench_billing_subscription";
/// When every subscription starts: the billed period's start.
const PERIOD_START: &str = "2026-01-01T00:00:00Z";
/// The billed period's end, and the time the billing run is given.
const PERIOD_END: &str = "2026-02-01T00:00:00Z";
/// Set-up calls and invoice reads in flight at once (the writer group-commits them).
const IN_FLIGHT: usize = 256;

/// Arguments of `tally bench billing`.
#[derive(Debug, Args)]
pub struct BillingBenchArgs {
    /// Customers, each with one subscription to the benchmark plan.
    #[arg(long, default_value_t = 10_000)]
    pub subscriptions: u64,

    /// Events per subscription in the billed month (at least 1), preloaded through the store.
    #[arg(long, default_value_t = 30)]
    pub events_per_subscription: u64,

    /// SQLite file to create and keep for inspection; it must not hold a benchmark plan yet, since
    /// a month is billed only once [default: a temporary file].
    #[arg(long)]
    pub database: Option<PathBuf>,

    /// Give the plan a recurring usage threshold of this many cents (progressive billing), and
    /// time a tick in the middle of the month, when every subscription's usage so far is priced
    /// against it. Set it above any subscription's usage to time the check alone.
    #[arg(long)]
    pub usage_threshold_cents: Option<i64>,
}

/// Runs `tally bench billing`.
pub async fn run(args: &BillingBenchArgs) -> Result<()> {
    ensure!(
        (1..=10_000_000).contains(&args.subscriptions),
        "--subscriptions must be between 1 and 10,000,000"
    );
    ensure!(
        args.events_per_subscription > 0,
        "--events-per-subscription must be at least 1"
    );
    crate::telemetry::init("warn", crate::config::LogFormat::Auto);
    let start = Timestamp::parse_rfc3339(PERIOD_START).context("bad period start")?;
    let end = Timestamp::parse_rfc3339(PERIOD_END).context("bad period end")?;

    let (path, temporary) = database_path(args.database.as_ref())?;
    let store: Arc<dyn Store> = Arc::new(
        SqliteStore::open(&SqliteOptions::new(&path))
            .with_context(|| format!("cannot open {}", path.display()))?,
    );
    let org = store.default_organization().await?;
    match store.plan(org.id, PLAN).await {
        Ok(_) => bail!(
            "{} already holds the benchmark plan; a month is billed once, so pass a new --database",
            path.display()
        ),
        Err(StoreError::NotFound(_)) => {}
        Err(error) => return Err(error.into()),
    }
    let thresholds = args
        .usage_threshold_cents
        .map(|amount_cents| UsageThreshold {
            amount_cents,
            display_name: None,
            recurring: true,
        })
        .into_iter()
        .collect();
    ensure_plan(store.as_ref(), &org, thresholds).await?;

    let setting_up = Instant::now();
    subscribe(store.as_ref(), &org, args.subscriptions, start).await?;
    let set_up = setting_up.elapsed();
    println!(
        "created {} customers and subscriptions in {:.1} s",
        thousands(args.subscriptions),
        set_up.as_secs_f64()
    );
    let per = args.events_per_subscription;
    let events = args.subscriptions * per;
    preload_with(store.as_ref(), &org, events, |seq, received_at| {
        Usage::of(seq, start, end).new_event(
            &org,
            &format!("billing-{seq}"),
            &customer_id(seq / per),
            received_at,
        )
    })
    .await?;
    let mut expected = vec![Totals::default(); usize::try_from(args.subscriptions)?];
    for seq in 0..events {
        if let Some(totals) = expected.get_mut(usize::try_from(seq / per)?) {
            totals.add(&Usage::of(seq, start, end));
        }
    }

    // A tick in the middle of the month: with thresholds, every subscription's usage so far is
    // priced; without, the clock passes every subscription by.
    let middle = Timestamp::from_micros(start.micros() + (end.micros() - start.micros()) / 2);
    let ticking = Instant::now();
    let early = store.run_billing(middle).await?;
    let mid_tick = ticking.elapsed();

    let (billing, cpu_before) = (Instant::now(), cpu_time());
    let created = store.run_billing(end).await?;
    let (first, cpu_after) = (billing.elapsed(), cpu_time());
    let again = Instant::now();
    let repeated = store.run_billing(end).await?;
    let second = again.elapsed();

    let checking = Instant::now();
    let checked = check_invoices(store.as_ref(), &org, &created, &expected).await;
    let check_time = checking.elapsed();

    let rate = created.len() as f64 / first.as_secs_f64().max(f64::EPSILON);
    println!("tally bench billing");
    Machine::current().print();
    println!(
        "  database             {}{}",
        path.display(),
        if temporary.is_some() {
            ", temporary"
        } else {
            ", kept"
        }
    );
    println!(
        "  subscriptions        {} customers, one each on {PLAN} (monthly fee, 3 metered charges), from {PERIOD_START}",
        thousands(args.subscriptions)
    );
    println!(
        "  events               {} in the month ({per} per subscription), through Store::record_events",
        thousands(events)
    );
    let cpu = match (cpu_before, cpu_after) {
        (Some(before), Some(after)) => format!(
            " ({:.3} s of CPU in this process)",
            after.saturating_sub(before).as_secs_f64()
        ),
        _ => String::new(),
    };
    println!(
        "  mid-month tick       Store::run_billing at {}: {} invoices in {:.3} s ({})",
        middle.to_rfc3339_seconds(),
        thousands(early.len() as u64),
        mid_tick.as_secs_f64(),
        match args.usage_threshold_cents {
            Some(cents) => format!(
                "recurring usage threshold of {} cents",
                thousands(u64::try_from(cents).unwrap_or(0))
            ),
            None => "no usage threshold".to_owned(),
        }
    );
    println!(
        "  billing run          Store::run_billing({PERIOD_END}): {} invoices in {:.3} s{cpu}",
        thousands(created.len() as u64),
        first.as_secs_f64()
    );
    println!(
        "  throughput           {} invoices/s",
        thousands(rate as u64)
    );
    println!(
        "  second run           {} invoices in {:.3} s (same instant)",
        thousands(repeated.len() as u64),
        second.as_secs_f64()
    );
    match &checked {
        Ok(sum) => println!(
            "  checked              {} of {} invoices finalized with the reference total (sum {} cents, read in {:.1} s)",
            thousands(created.len() as u64),
            thousands(args.subscriptions),
            thousands(u64::try_from(*sum).unwrap_or(0)),
            check_time.as_secs_f64()
        ),
        Err(error) => println!("  checked              FAILED: {error:#}"),
    }
    ensure!(
        created.len() as u64 == args.subscriptions,
        "the billing run made {} invoices for {} subscriptions",
        created.len(),
        args.subscriptions
    );
    ensure!(
        repeated.is_empty(),
        "the second billing run made {} invoices; expected none",
        repeated.len()
    );
    checked.map(|_| ())
}

/// Returns the external id of customer `index`.
fn customer_id(index: u64) -> String {
    format!("{CUSTOMER}_{index}")
}

/// Creates `count` customers (billed in UTC), each with one subscription from `start`, many at a
/// time so the writer group-commits them.
async fn subscribe(
    store: &dyn Store,
    org: &Organization,
    count: u64,
    start: Timestamp,
) -> Result<()> {
    let progress = progress_bar(count, "subscriptions");
    let mut next = 0;
    while next < count {
        let last = (next + IN_FLIGHT as u64).min(count);
        let calls = (next..last).map(|index| async move {
            let customer = ExternalId::parse("external_id", &customer_id(index))
                .map_err(ValidationErrors::from)?;
            let profile = CustomerProfile {
                name: Some(format!("Benchmark billing customer {index}")),
                timezone: Some(chrono_tz::UTC),
                ..CustomerProfile::default()
            };
            store
                .upsert_customer(org.id, customer.clone(), CustomerChange::new(profile))
                .await?;
            let request = NewSubscription {
                external_customer_id: customer,
                plan_code: PLAN.to_owned(),
                external_id: ExternalId::parse("external_id", &format!("{SUBSCRIPTION}_{index}"))
                    .map_err(ValidationErrors::from)?,
                name: None,
                billing_time: BillingTime::Calendar,
                subscription_at: Some(start),
                ending_at: None,
            };
            store.create_subscription(org.id, request, start).await?;
            anyhow::Ok(())
        });
        for result in join_all(calls).await {
            result?;
        }
        progress.inc(last - next);
        next = last;
    }
    progress.finish_and_clear();
    Ok(())
}

/// Reads every invoice made and checks it is finalized with the subscription fee plus the reference
/// price of its customer's events; returns the sum of the totals.
async fn check_invoices(
    store: &dyn Store,
    org: &Organization,
    created: &[tally_core::id::InvoiceId],
    expected: &[Totals],
) -> Result<i64> {
    let mut sum = 0;
    let mut seen = vec![false; expected.len()];
    for chunk in created.chunks(IN_FLIGHT) {
        let reads = chunk.iter().map(|id| store.invoice(org.id, *id));
        for invoice in join_all(reads).await {
            let invoice = invoice?;
            let customer = invoice.customer.external_id.as_str();
            let index = customer
                .strip_prefix(CUSTOMER)
                .and_then(|rest| rest.strip_prefix('_'))
                .and_then(|n| n.parse::<usize>().ok())
                .filter(|i| *i < expected.len())
                .with_context(|| format!("an invoice for an unknown customer {customer}"))?;
            ensure!(
                !std::mem::replace(&mut seen[index], true),
                "{customer} has two invoices"
            );
            let want = SUBSCRIPTION_FEE_CENTS + expected[index].charge_cents().total();
            let got = invoice.totals.total_amount_cents;
            ensure!(
                invoice.status == InvoiceStatus::Finalized && got == want,
                "the invoice of {customer} is {:?} at {got} cents; expected finalized at {want} (fees: {:?})",
                invoice.status,
                invoice
                    .fees
                    .iter()
                    .map(|f| (f.item_code.as_str(), f.fee.amount_cents))
                    .collect::<Vec<_>>()
            );
            sum += got;
        }
    }
    Ok(sum)
}

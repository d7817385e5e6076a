//! `tally bench usage`: a benchmark, not a test. One customer on the metered plan (see
//! [`super::metered`]) with a large number of events in its open period, preloaded through the
//! store; then a server started in this process answers `GET /customers/{id}/current_usage` over
//! loopback, and the benchmark prints exact latency percentiles. Every answer is checked against the
//! amount computed from the generated events, and the run fails loudly on a mismatch.
//!
//! The server bills by a simulated clock stopped at [`NOW`], three weeks into January 2026, so every
//! run prices the same span whatever the date, a kept database stays valid, and no billing worker
//! runs beside the requests. `NOW` is not on a minute boundary: like a live request, each answer reads
//! hourly rollups, minute rollups for the current hour and raw events for the current minute.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use anyhow::{Context, Result, bail, ensure};
use clap::Args;
use serde_json::Value;
use tally_core::ValidationErrors;
use tally_core::apikey::{Scope, secret_from_bytes, visible_prefix};
use tally_core::customer::CustomerProfile;
use tally_core::id::ExternalId;
use tally_core::organization::Organization;
use tally_core::page::Page;
use tally_core::period::BillingTime;
use tally_core::time::Timestamp;
use tally_server::auth::digest;
use tally_server::{Application, ClockMode, ServerConfig};
use tally_store::sqlite::{SqliteOptions, SqliteStore};
use tally_store::{CustomerChange, CustomerFilter, EventFilter, NewSubscription, Store};

use super::machine::Machine;
use super::metered::{ChargeCents, PLAN, Totals, Usage, ensure_plan};
use super::workload::percentile;
use super::{database_path, preload_with, thousands};

/// The customer whose usage is asked for.
const CUSTOMER: &str = "bench_usage_customer";
/// Its subscription.
const SUBSCRIPTION: &str = "bench_usage_subscription";
/// The start of the subscription and of the open period.
const PERIOD_START: &str = "2026-01-01T00:00:00Z";
/// The simulated clock's time: events are spread from the period start up to here.
const NOW: &str = "2026-01-21T15:27:43.512Z";
/// Requests sent before timing starts, so the figures show a warm server.
const WARM_UP: u64 = 10;

/// Arguments of `tally bench usage`.
#[derive(Debug, Args)]
pub struct UsageBenchArgs {
    /// Events of the customer in the open period, preloaded through the store.
    #[arg(long, default_value_t = 1_000_000)]
    pub events: u64,

    /// SQLite file to use and keep (reused when it holds this benchmark's events) [default: a
    /// temporary file].
    #[arg(long)]
    pub database: Option<PathBuf>,

    /// Requests to time (after 10 warm-up requests that are not counted).
    #[arg(long, default_value_t = 2_000)]
    pub requests: u64,

    /// Clients asking at once, each waiting for its answer before asking again.
    #[arg(long, default_value_t = 1)]
    pub concurrency: u64,
}

/// What every answer must say.
#[derive(Debug, Clone, PartialEq, Eq)]
struct Expected {
    from_datetime: String,
    events: u64,
    charges: ChargeCents,
}

/// What every client shares.
struct Asker {
    http: reqwest::Client,
    url: reqwest::Url,
    key: String,
    expected: Expected,
    next: AtomicU64,
    total: u64,
}

/// What one client measured.
#[derive(Debug, Default)]
struct ClientStats {
    latencies: Vec<Duration>,
    failures: u64,
    first_failure: Option<String>,
}

/// Runs `tally bench usage`.
pub async fn run(args: &UsageBenchArgs) -> Result<()> {
    ensure!(args.events > 0, "--events must be at least 1");
    ensure!(args.requests > 0, "--requests must be at least 1");
    ensure!(
        (1..=1_024).contains(&args.concurrency),
        "--concurrency must be between 1 and 1024"
    );
    crate::telemetry::init("warn", crate::config::LogFormat::Auto);
    let start = Timestamp::parse_rfc3339(PERIOD_START).context("bad period start")?;
    let now = Timestamp::parse_rfc3339(NOW).context("bad clock time")?;

    let (path, temporary) = database_path(args.database.as_ref())?;
    let store: Arc<dyn Store> = Arc::new(
        SqliteStore::open(&SqliteOptions::new(&path))
            .with_context(|| format!("cannot open {}", path.display()))?,
    );
    let org = store.default_organization().await?;
    let stored = customer_events(store.as_ref(), &org).await?;
    let reused = stored > 0;
    if reused {
        ensure!(
            stored == args.events,
            "{} holds {} events of {CUSTOMER}, not {}: pass --events {stored} or another --database",
            path.display(),
            thousands(stored),
            thousands(args.events)
        );
        println!(
            "preload skipped: {} already holds {} events of {CUSTOMER}",
            path.display(),
            thousands(stored)
        );
    } else {
        prepare(store.as_ref(), &org, start).await?;
        preload_with(store.as_ref(), &org, args.events, |seq, received_at| {
            Usage::of(seq, start, now).new_event(
                &org,
                &format!("usage-{seq}"),
                CUSTOMER,
                received_at,
            )
        })
        .await?;
    }
    let all_events = store
        .list_events(org.id, &EventFilter::default(), Page::new(Some(1), Some(1)))
        .await?
        .total;
    let customers = store
        .list_customers(
            org.id,
            &CustomerFilter::default(),
            Page::new(Some(1), Some(1)),
        )
        .await?
        .total;
    let mut totals = Totals::default();
    for seq in 0..args.events {
        totals.add(&Usage::of(seq, start, now));
    }
    let expected = Expected {
        from_datetime: start.to_rfc3339_seconds(),
        events: totals.events,
        charges: totals.charge_cents(),
    };

    let secret = secret_from_bytes(&rand::random::<[u8; 32]>());
    store
        .create_api_key(
            org.id,
            "bench usage",
            Scope::Read,
            &visible_prefix(&secret),
            digest(&secret),
        )
        .await?;
    let server = ServerConfig {
        listen: SocketAddr::from(([127, 0, 0, 1], 0)),
        clock: ClockMode::Simulated(now),
        ..ServerConfig::default()
    };
    let app = Application::build(&server, store.clone())
        .await
        .context("cannot start the server")?;
    let addr = app.local_addr()?;
    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    let serving = tokio::spawn(app.run(async move {
        let _ = stopped.await;
    }));

    let concurrency = usize::try_from(args.concurrency)?;
    let route = format!(
        "/api/v1/customers/{CUSTOMER}/current_usage?external_subscription_id={SUBSCRIPTION}"
    );
    let asker = Arc::new(Asker {
        http: reqwest::Client::builder()
            .pool_max_idle_per_host(concurrency)
            .timeout(Duration::from_secs(60))
            .build()?,
        url: reqwest::Url::parse(&format!("http://{addr}{route}"))?,
        key: secret,
        expected,
        next: AtomicU64::new(0),
        total: args.requests,
    });
    let mut warm_up = Vec::new();
    for _ in 0..WARM_UP {
        let (took, checked) = ask(&asker).await;
        checked.map_err(|e| anyhow::anyhow!("warm-up request: {e}"))?;
        warm_up.push(took);
    }
    let started = Instant::now();
    let clients: Vec<_> = (0..concurrency)
        .map(|_| tokio::spawn(client(asker.clone())))
        .collect();
    let mut stats = ClientStats::default();
    for handle in clients {
        let one = handle.await?;
        stats.latencies.extend(one.latencies);
        stats.failures += one.failures;
        stats.first_failure = stats.first_failure.or(one.first_failure);
    }
    let wall = started.elapsed();
    let _ = stop.send(());
    serving.await?.context("the server failed")?;

    stats.latencies.sort_unstable();
    let ms = |d: Option<Duration>| d.map_or(0.0, |d| d.as_secs_f64() * 1_000.0);
    let charges = asker.expected.charges;
    println!("tally bench usage");
    Machine::current().print();
    println!(
        "  database             {}{}",
        path.display(),
        if temporary.is_some() {
            ", temporary"
        } else if reused {
            ", kept (reused)"
        } else {
            ", kept"
        }
    );
    println!(
        "  customer             {CUSTOMER}: {} events from {PERIOD_START} to {NOW} (simulated clock)",
        thousands(args.events)
    );
    println!(
        "  database holds       {} events in all; customers: {}",
        thousands(all_events),
        thousands(customers)
    );
    println!(
        "  plan                 {PLAN}: monthly; standard, graduated and package (with a filter) charges"
    );
    println!("  route                GET {route}");
    println!(
        "  concurrency          {} client{}",
        args.concurrency,
        if args.concurrency == 1 { "" } else { "s" }
    );
    println!(
        "  requests             {} timed, after {WARM_UP} warm-up (first {:.1} ms)",
        thousands(args.requests),
        ms(warm_up.first().copied())
    );
    println!("  wall time            {:.3} s", wall.as_secs_f64());
    println!(
        "  throughput           {:.0} requests/s",
        args.requests as f64 / wall.as_secs_f64().max(f64::EPSILON)
    );
    println!(
        "  latency p50          {:.2} ms",
        ms(percentile(&stats.latencies, 50))
    );
    println!(
        "  latency p99          {:.2} ms",
        ms(percentile(&stats.latencies, 99))
    );
    println!(
        "  latency max          {:.2} ms",
        ms(stats.latencies.last().copied())
    );
    println!(
        "  answer               amount_cents {} = tokens {} + requests {} + storage {}, {} events",
        charges.total(),
        charges.tokens,
        charges.requests,
        charges.storage,
        thousands(asker.expected.events)
    );
    println!(
        "  checked              {} of {} answers matched the reference",
        thousands(stats.latencies.len() as u64 - stats.failures),
        thousands(stats.latencies.len() as u64)
    );
    if stats.failures > 0 {
        bail!(
            "{} of {} answers were wrong; first: {}",
            stats.failures,
            stats.latencies.len(),
            stats.first_failure.unwrap_or_default()
        );
    }
    Ok(())
}

/// Creates the plan, the customer (billed in UTC) and its subscription from the period start.
async fn prepare(store: &dyn Store, org: &Organization, start: Timestamp) -> Result<()> {
    ensure_plan(store, org, Vec::new()).await?;
    let customer = ExternalId::parse("external_id", CUSTOMER).map_err(ValidationErrors::from)?;
    let profile = CustomerProfile {
        name: Some("Benchmark usage customer".into()),
        timezone: Some(chrono_tz::UTC),
        ..CustomerProfile::default()
    };
    store
        .upsert_customer(org.id, customer.clone(), CustomerChange::new(profile))
        .await?;
    store
        .create_subscription(
            org.id,
            NewSubscription {
                external_customer_id: customer,
                plan_code: PLAN.to_owned(),
                external_id: ExternalId::parse("external_id", SUBSCRIPTION)
                    .map_err(ValidationErrors::from)?,
                name: None,
                billing_time: BillingTime::Calendar,
                subscription_at: Some(start),
                ending_at: None,
            },
            start,
        )
        .await?;
    Ok(())
}

/// Counts the benchmark customer's stored events.
async fn customer_events(store: &dyn Store, org: &Organization) -> Result<u64> {
    let filter = EventFilter {
        subject: Some(CUSTOMER.to_owned()),
        ..EventFilter::default()
    };
    Ok(store
        .list_events(org.id, &filter, Page::new(Some(1), Some(1)))
        .await?
        .total)
}

/// One client: asks, checks the answer, and repeats until every request is claimed.
async fn client(asker: Arc<Asker>) -> ClientStats {
    let mut stats = ClientStats::default();
    while asker.next.fetch_add(1, Ordering::Relaxed) < asker.total {
        let (took, checked) = ask(&asker).await;
        stats.latencies.push(took);
        if let Err(message) = checked {
            stats.failures += 1;
            stats.first_failure.get_or_insert(message);
        }
    }
    stats
}

/// Sends one request; returns how long the whole answer took to arrive (checking it is not timed)
/// and whether it was right.
async fn ask(asker: &Asker) -> (Duration, Result<(), String>) {
    let sent = Instant::now();
    let answer = async {
        let response = asker
            .http
            .get(asker.url.clone())
            .bearer_auth(&asker.key)
            .send()
            .await?;
        let status = response.status();
        Ok::<_, reqwest::Error>((status, response.bytes().await?))
    }
    .await;
    let took = sent.elapsed();
    let checked = match answer {
        Ok((status, body)) if status.is_success() => check_answer(&body, &asker.expected),
        Ok((status, body)) => Err(crate::client::describe_refusal(status, &body)),
        Err(error) => Err(format!("request failed: {error}")),
    };
    (took, checked)
}

/// Compares a `current_usage` answer with the reference: the period start, the amount, each charge's
/// amount and the events counted.
fn check_answer(body: &[u8], expected: &Expected) -> Result<(), String> {
    let value: Value = serde_json::from_slice(body).map_err(|e| format!("answer not JSON: {e}"))?;
    let usage = &value["customer_usage"];
    if usage["from_datetime"].as_str() != Some(expected.from_datetime.as_str()) {
        return Err(format!(
            "period starts at {}, expected {}",
            usage["from_datetime"], expected.from_datetime
        ));
    }
    let lines = usage["charges_usage"]
        .as_array()
        .ok_or_else(|| format!("no charges_usage in {value}"))?;
    let mut events = 0;
    for line in lines {
        let code = line["billable_metric"]["code"].as_str().unwrap_or_default();
        let want = expected
            .charges
            .of_metric(code)
            .ok_or_else(|| format!("unexpected charge on {code}"))?;
        let got = line["amount_cents"].as_i64();
        if got != Some(want) {
            return Err(format!(
                "charge on {code}: amount_cents {got:?}, expected {want}"
            ));
        }
        events += line["events_count"].as_u64().unwrap_or(0);
    }
    let amount = usage["amount_cents"].as_i64();
    if amount != Some(expected.charges.total()) || lines.len() != 3 {
        return Err(format!(
            "amount_cents {amount:?} over {} charges, expected {} over 3",
            lines.len(),
            expected.charges.total()
        ));
    }
    if events != expected.events {
        return Err(format!(
            "{events} events counted, expected {}",
            expected.events
        ));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn expected() -> Expected {
        Expected {
            from_datetime: "2026-01-01T00:00:00Z".into(),
            events: 6,
            charges: ChargeCents {
                tokens: 10,
                requests: 20,
                storage: 30,
            },
        }
    }

    fn answer(storage_cents: i64) -> Vec<u8> {
        let line = |code: &str, cents: i64| json!({"billable_metric": {"code": code}, "amount_cents": cents, "events_count": 2});
        json!({"customer_usage": {
            "from_datetime": "2026-01-01T00:00:00Z",
            "amount_cents": 30 + storage_cents,
            "charges_usage": [line(super::super::metered::TOKENS, 10),
                line(super::super::metered::REQUESTS, 20),
                line(super::super::metered::STORAGE, storage_cents)],
        }})
        .to_string()
        .into_bytes()
    }

    #[test]
    fn answers_are_checked_charge_by_charge() {
        assert_eq!(check_answer(&answer(30), &expected()), Ok(()));
        let wrong = check_answer(&answer(31), &expected()).expect_err("mismatch");
        assert!(wrong.contains("bench_storage_gb"), "{wrong}");
        assert!(check_answer(b"{}", &expected()).is_err());
    }
}

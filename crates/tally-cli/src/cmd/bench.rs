//! `tally bench`: benchmarks, not tests. `tally bench ingest` starts a tally server in this process
//! over an SQLite database, drives it over loopback HTTP with many concurrent clients until a given
//! number of fresh events is sent, and prints throughput and exact request latency percentiles. It
//! fails loudly when the server did not accept every event it was sent. `tally bench usage` times
//! current usage of a customer with many events ([`usage`]); `tally bench billing` times one billing
//! run over many subscriptions ([`billing`]).
//!
//! Clients and server share this process's CPUs, as they would share a small machine; the numbers are
//! for comparing builds and settings on one machine, not for capacity planning elsewhere.

mod billing;
mod machine;
mod metered;
mod usage;
mod workload;

pub use billing::BillingBenchArgs;
pub use usage::UsageBenchArgs;

use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use anyhow::{Context, Result, bail, ensure};
use clap::{Args, Subcommand, ValueEnum};
use indicatif::{ProgressBar, ProgressStyle};
use serde_json::Value;
use tally_core::ValidationErrors;
use tally_core::apikey::{Scope, secret_from_bytes, visible_prefix};
use tally_core::customer::CustomerProfile;
use tally_core::event::NewEvent;
use tally_core::id::{Code, ExternalId};
use tally_core::metric::{AggregationType, MetricDefinition};
use tally_core::organization::Organization;
use tally_core::page::Page;
use tally_core::property::PropertyPath;
use tally_core::time::Timestamp;
use tally_server::api::lago::events::{MAX_BATCH, MAX_BULK_LINES};
use tally_server::auth::digest;
use tally_server::{Application, ServerConfig};
use tally_store::sqlite::{Durability, SqliteOptions, SqliteStore};
use tally_store::{Atomicity, CustomerChange, EventFilter, EventOutcome, Store, StoreError};

use crate::config::parse_durability;
use workload::{CODE, FIELD, GROUP, Timing, Workload, customer_id, percentile};

/// Events per `Store::record_events` call when preloading.
const PRELOAD_CHUNK: u64 = 50_000;

/// Benchmarks.
#[derive(Debug, Subcommand)]
pub enum BenchCommand {
    /// Measure event ingest over loopback HTTP against a server started in this process.
    Ingest(IngestBenchArgs),
    /// Measure `current_usage` latency over loopback HTTP for a customer with many events.
    Usage(UsageBenchArgs),
    /// Measure one billing run over many subscriptions, directly on the store.
    Billing(BillingBenchArgs),
}

/// Which ingest route the benchmark drives.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum Endpoint {
    /// `POST /api/v1/events/bulk`, NDJSON, each event stands alone.
    Bulk,
    /// `POST /api/v1/events/batch`, a Lago batch of at most 100, all or nothing.
    Batch,
}

/// Arguments of `tally bench ingest`.
#[derive(Debug, Args)]
pub struct IngestBenchArgs {
    /// Events to send over HTTP, each with a fresh transaction id.
    #[arg(long, default_value_t = 1_000_000)]
    pub events: u64,

    /// The route to drive.
    #[arg(long, value_enum, default_value_t = Endpoint::Bulk)]
    pub endpoint: Endpoint,

    /// Clients sending at once, each waiting for its answer before sending again.
    #[arg(long, default_value_t = 32)]
    pub concurrency: u64,

    /// Events per request [default: 1000 for bulk, 100 for batch].
    #[arg(long)]
    pub batch: Option<u64>,

    /// SQLite file to use and keep (reused when it exists) [default: a temporary file].
    #[arg(long)]
    pub database: Option<PathBuf>,

    /// Commit durability: full (fsync every commit) or normal (fsync at checkpoints).
    #[arg(long, default_value = "full", value_parser = parse_durability)]
    pub durability: Durability,

    /// Events to store directly through the store before the run, so it measures a database that
    /// already holds data (skipped when --database already holds events).
    #[arg(long, default_value_t = 0)]
    pub preload: u64,

    /// Customers the events are spread over.
    #[arg(long, default_value_t = 100)]
    pub customers: u64,

    /// Time events at random over this many days before the run (a historical backfill) instead of
    /// as live traffic (timed when sent, within a second).
    #[arg(long)]
    pub backfill_days: Option<u64>,
}

/// Runs a benchmark.
pub async fn run(command: &BenchCommand) -> Result<()> {
    match command {
        BenchCommand::Ingest(args) => ingest(args).await,
        BenchCommand::Usage(args) => usage::run(args).await,
        BenchCommand::Billing(args) => billing::run(args).await,
    }
}

/// What one client measured.
#[derive(Debug, Default)]
struct ClientStats {
    latencies: Vec<Duration>,
    accepted: u64,
    duplicates: u64,
    rejected: u64,
    failed_requests: u64,
    first_failure: Option<String>,
}

/// What every client shares.
struct Drive {
    http: reqwest::Client,
    url: reqwest::Url,
    key: String,
    workload: Workload,
    endpoint: Endpoint,
    next: AtomicU64,
    total: u64,
    batch: u64,
    progress: ProgressBar,
}

async fn ingest(args: &IngestBenchArgs) -> Result<()> {
    let batch = args.batch.unwrap_or(match args.endpoint {
        Endpoint::Bulk => 1_000,
        Endpoint::Batch => 100,
    });
    let most = match args.endpoint {
        Endpoint::Bulk => MAX_BULK_LINES as u64,
        Endpoint::Batch => MAX_BATCH as u64,
    };
    ensure!(
        (1..=most).contains(&batch),
        "--batch must be between 1 and {most} for this endpoint"
    );
    ensure!(args.events > 0, "--events must be at least 1");
    ensure!(
        (1..=4_096).contains(&args.concurrency),
        "--concurrency must be between 1 and 4096"
    );
    crate::telemetry::init("warn", crate::config::LogFormat::Auto);

    let (path, temporary) = database_path(args.database.as_ref())?;
    let mut options = SqliteOptions::new(&path);
    options.durability = args.durability;
    let store: Arc<dyn Store> = Arc::new(
        SqliteStore::open(&options).with_context(|| format!("cannot open {}", path.display()))?,
    );
    let org = store.default_organization().await?;
    let secret = prepare(store.as_ref(), &org, args.customers).await?;
    let timing = args.backfill_days.map_or(Timing::Live, Timing::Backfill);
    let workload = Workload::new(
        Timestamp::from_datetime(chrono::Utc::now()),
        args.customers,
        timing,
    );

    let mut before = stored_events(store.as_ref(), &org).await?;
    if args.preload > 0 {
        if before > 0 {
            println!(
                "preload skipped: {} already holds {} events",
                path.display(),
                thousands(before)
            );
        } else {
            preload(store.as_ref(), &org, &workload, args.preload).await?;
            before = stored_events(store.as_ref(), &org).await?;
        }
    }

    let server = ServerConfig {
        listen: SocketAddr::from(([127, 0, 0, 1], 0)),
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

    let path_name = match args.endpoint {
        Endpoint::Bulk => "bulk",
        Endpoint::Batch => "batch",
    };
    let concurrency = usize::try_from(args.concurrency)?;
    let drive = Arc::new(Drive {
        http: reqwest::Client::builder()
            .pool_max_idle_per_host(concurrency)
            .timeout(Duration::from_secs(600))
            .build()?,
        url: reqwest::Url::parse(&format!("http://{addr}/api/v1/events/{path_name}"))?,
        key: secret,
        workload,
        endpoint: args.endpoint,
        next: AtomicU64::new(0),
        total: args.events,
        batch,
        progress: progress_bar(args.events, "events"),
    });
    let started = Instant::now();
    let clients: Vec<_> = (0..concurrency)
        .map(|_| tokio::spawn(client(drive.clone())))
        .collect();
    let mut stats = ClientStats::default();
    for handle in clients {
        let one = handle.await?;
        stats.latencies.extend(one.latencies);
        stats.accepted += one.accepted;
        stats.duplicates += one.duplicates;
        stats.rejected += one.rejected;
        stats.failed_requests += one.failed_requests;
        stats.first_failure = stats.first_failure.or(one.first_failure);
    }
    let wall = started.elapsed();
    drive.progress.finish_and_clear();
    let after = stored_events(store.as_ref(), &org).await?;
    let _ = stop.send(());
    serving.await?.context("the server failed")?;

    stats.latencies.sort_unstable();
    let ms = |d: Option<Duration>| d.map_or(0.0, |d| d.as_secs_f64() * 1_000.0);
    let (route, content) = match args.endpoint {
        Endpoint::Bulk => ("POST /api/v1/events/bulk", "application/x-ndjson"),
        Endpoint::Batch => ("POST /api/v1/events/batch", "application/json"),
    };
    let rate = args.events as f64 / wall.as_secs_f64().max(f64::EPSILON);
    println!("tally bench ingest");
    machine::Machine::current().print();
    println!("  endpoint             {path_name} ({route}, {content})");
    println!("  concurrency          {} clients", args.concurrency);
    println!("  batch size           {batch} events per request");
    let timing = match args.backfill_days {
        Some(days) => format!("backfill, spread over the last {days} days"),
        None => "live traffic, timed when sent".to_owned(),
    };
    println!(
        "  events               {} customers, {timing}",
        args.customers
    );
    println!(
        "  database             {}{} (durability {})",
        path.display(),
        if temporary.is_some() {
            ", temporary"
        } else {
            ""
        },
        match args.durability {
            Durability::Full => "full",
            Durability::Normal => "normal",
        }
    );
    println!("  stored before run    {} events", thousands(before));
    println!(
        "  events sent          {} in {} requests",
        thousands(args.events),
        thousands(stats.latencies.len() as u64)
    );
    println!("  wall time            {:.3} s", wall.as_secs_f64());
    println!("  throughput           {} events/s", thousands(rate as u64));
    println!(
        "  latency p50          {:.1} ms",
        ms(percentile(&stats.latencies, 50))
    );
    println!(
        "  latency p99          {:.1} ms",
        ms(percentile(&stats.latencies, 99))
    );
    println!(
        "  latency max          {:.1} ms",
        ms(stats.latencies.last().copied())
    );
    println!(
        "  accepted             {} of {} (duplicates {}, rejected {}, failed requests {})",
        thousands(stats.accepted),
        thousands(args.events),
        stats.duplicates,
        stats.rejected,
        stats.failed_requests
    );
    println!("  stored after run     {} events", thousands(after));
    if stats.accepted != args.events || after != before + args.events {
        bail!(
            "the server did not accept every event: {} accepted of {} sent, {} stored after the run (expected {}){}",
            stats.accepted,
            args.events,
            after,
            before + args.events,
            stats
                .first_failure
                .map(|f| format!("; first failure: {f}"))
                .unwrap_or_default()
        );
    }
    Ok(())
}

/// Creates the benchmark's admin key, customer and sum metric (the latter two only once per
/// database); returns the key's secret.
async fn prepare(store: &dyn Store, org: &Organization, customers: u64) -> Result<String> {
    let secret = secret_from_bytes(&rand::random::<[u8; 32]>());
    store
        .create_api_key(
            org.id,
            "bench",
            Scope::Admin,
            &visible_prefix(&secret),
            digest(&secret),
        )
        .await?;
    for index in 0..customers.max(1) {
        let customer = ExternalId::parse("external_id", &customer_id(index))
            .map_err(ValidationErrors::from)?;
        let profile = CustomerProfile {
            name: Some(format!("Benchmark customer {index}")),
            ..CustomerProfile::default()
        };
        store
            .upsert_customer(org.id, customer, CustomerChange::new(profile))
            .await?;
    }
    match store.metric(org.id, CODE).await {
        Ok(_) => {}
        Err(StoreError::NotFound(_)) => {
            let code = Code::parse("code", CODE).map_err(ValidationErrors::from)?;
            let definition = MetricDefinition {
                code: code.clone(),
                name: "Benchmark tokens".into(),
                description: Some("Created by tally bench ingest".into()),
                aggregation: AggregationType::Sum,
                event_type: code,
                field: Some(PropertyPath::key(FIELD)),
                recurring: false,
                rounding: None,
                filters: Vec::new(),
                group_by: [(GROUP.to_owned(), PropertyPath::key(GROUP))]
                    .into_iter()
                    .collect(),
                event_from: None,
            };
            store
                .create_metric(org.id, definition.normalized(org.identifier_case))
                .await?;
        }
        Err(error) => return Err(error.into()),
    }
    Ok(secret)
}

async fn stored_events(store: &dyn Store, org: &Organization) -> Result<u64> {
    let listed = store
        .list_events(org.id, &EventFilter::default(), Page::new(Some(1), Some(1)))
        .await?;
    Ok(listed.total)
}

/// Stores `count` events of the ingest workload through the store; see [`preload_with`].
async fn preload(
    store: &dyn Store,
    org: &Organization,
    workload: &Workload,
    count: u64,
) -> Result<()> {
    preload_with(store, org, count, |seq, received_at| {
        workload.new_event(seq, org, received_at)
    })
    .await
}

/// Stores `count` events, built by `event(seq, received_at)`, through `Store::record_events` in
/// chunks of 50,000, each event on its own, and prints the rate the store sustained. Fails unless
/// every event was stored.
async fn preload_with(
    store: &dyn Store,
    org: &Organization,
    count: u64,
    event: impl Fn(u64, Timestamp) -> Result<NewEvent>,
) -> Result<()> {
    let progress = progress_bar(count, "events");
    let mut in_store = Duration::ZERO;
    let started = Instant::now();
    let mut done = 0;
    while done < count {
        let size = PRELOAD_CHUNK.min(count - done);
        let received_at = Timestamp::from_datetime(chrono::Utc::now());
        let events = (done..done + size)
            .map(|seq| event(seq, received_at))
            .collect::<Result<Vec<_>>>()?;
        let call = Instant::now();
        let outcomes = store
            .record_events(org.id, events, Atomicity::EachEvent)
            .await?;
        in_store += call.elapsed();
        let stored = outcomes
            .iter()
            .filter(|o| matches!(o, EventOutcome::Stored(_)))
            .count() as u64;
        ensure!(
            stored == size,
            "preloading stored {stored} of {size} events in a chunk"
        );
        done += size;
        progress.inc(size);
    }
    progress.finish_and_clear();
    let rate = |d: Duration| thousands((count as f64 / d.as_secs_f64().max(f64::EPSILON)) as u64);
    println!(
        "preloaded {} events in {:.1} s: {} events/s in Store::record_events ({} events/s counting event generation)",
        thousands(count),
        started.elapsed().as_secs_f64(),
        rate(in_store),
        rate(started.elapsed())
    );
    Ok(())
}

/// One client: claims the next `batch` events, sends them, waits for the answer, and repeats until
/// every event is claimed.
async fn client(drive: Arc<Drive>) -> ClientStats {
    let mut stats = ClientStats::default();
    let content_type = match drive.endpoint {
        Endpoint::Bulk => "application/x-ndjson",
        Endpoint::Batch => "application/json",
    };
    loop {
        let start = drive.next.fetch_add(drive.batch, Ordering::Relaxed);
        if start >= drive.total {
            break;
        }
        let end = (start + drive.batch).min(drive.total);
        let mut body = Vec::with_capacity((end - start) as usize * 256);
        let written = match drive.endpoint {
            Endpoint::Bulk => drive.workload.write_ndjson(start..end, &mut body),
            Endpoint::Batch => drive.workload.write_batch(start..end, &mut body),
        };
        if let Err(error) = written {
            fail(&mut stats, format!("cannot build a request body: {error}"));
            continue;
        }
        let sent = Instant::now();
        let result = async {
            let response = drive
                .http
                .post(drive.url.clone())
                .bearer_auth(&drive.key)
                .header(reqwest::header::CONTENT_TYPE, content_type)
                .body(body)
                .send()
                .await?;
            let status = response.status();
            let body = response.bytes().await?;
            Ok::<_, reqwest::Error>((status, body))
        }
        .await;
        stats.latencies.push(sent.elapsed());
        drive.progress.inc(end - start);
        match result {
            Ok((status, body)) if status.is_success() => {
                match count_answer(drive.endpoint, &body) {
                    Ok((accepted, duplicates, rejected)) => {
                        stats.accepted += accepted;
                        stats.duplicates += duplicates;
                        stats.rejected += rejected;
                    }
                    Err(error) => fail(&mut stats, error),
                }
            }
            Ok((status, body)) => fail(&mut stats, crate::client::describe_refusal(status, &body)),
            Err(error) => fail(&mut stats, format!("request failed: {error}")),
        }
    }
    stats
}

fn fail(stats: &mut ClientStats, message: String) {
    stats.failed_requests += 1;
    stats.first_failure.get_or_insert(message);
}

/// Reads (accepted, duplicates, rejected) from an answer: the bulk route counts them; a batch answer
/// lists the stored events (all or nothing).
fn count_answer(endpoint: Endpoint, body: &[u8]) -> Result<(u64, u64, u64), String> {
    let value: Value = serde_json::from_slice(body).map_err(|e| format!("answer not JSON: {e}"))?;
    let number = |name: &str| value.get(name).and_then(Value::as_u64);
    match endpoint {
        Endpoint::Bulk => match (number("accepted"), number("duplicates"), number("rejected")) {
            (Some(a), Some(d), Some(r)) => Ok((a, d, r)),
            _ => Err(format!("unexpected bulk answer: {value}")),
        },
        Endpoint::Batch => value
            .get("events")
            .and_then(Value::as_array)
            .map(|events| (events.len() as u64, 0, 0))
            .ok_or_else(|| format!("unexpected batch answer: {value}")),
    }
}

fn progress_bar(total: u64, unit: &str) -> ProgressBar {
    let bar = ProgressBar::new(total);
    if let Ok(style) = ProgressStyle::with_template(&format!(
        "{{spinner}} [{{elapsed_precise}}] {{wide_bar}} {{human_pos}}/{{human_len}} {unit} ({{per_sec}}, ETA {{eta}})"
    )) {
        bar.set_style(style);
    }
    bar.enable_steady_tick(Duration::from_millis(200));
    bar
}

/// Returns the database file to use: the one given, or `bench.db` in a new temporary folder, which
/// is removed when the returned guard drops.
fn database_path(given: Option<&PathBuf>) -> Result<(PathBuf, Option<tempfile::TempDir>)> {
    match given {
        Some(path) => Ok((path.clone(), None)),
        None => {
            let dir = tempfile::tempdir().context("cannot create a temporary folder")?;
            let path = dir.path().join("bench.db");
            Ok((path, Some(dir)))
        }
    }
}

/// Writes a count with thousands separators (`1,000,000`).
fn thousands(n: u64) -> String {
    let digits = n.to_string();
    let mut out = String::with_capacity(digits.len() + digits.len() / 3);
    for (i, c) in digits.chars().enumerate() {
        if i > 0 && (digits.len() - i).is_multiple_of(3) {
            out.push(',');
        }
        out.push(c);
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn thousands_are_separated() {
        assert_eq!(thousands(0), "0");
        assert_eq!(thousands(999), "999");
        assert_eq!(thousands(1_000), "1,000");
        assert_eq!(thousands(1_234_567), "1,234,567");
    }

    #[test]
    fn answers_are_counted_per_endpoint() {
        assert_eq!(
            count_answer(
                Endpoint::Bulk,
                br#"{"accepted":3,"duplicates":1,"rejected":0,"rejected_lines":[]}"#
            ),
            Ok((3, 1, 0))
        );
        assert_eq!(
            count_answer(Endpoint::Batch, br#"{"events":[{},{}]}"#),
            Ok((2, 0, 0))
        );
        assert!(count_answer(Endpoint::Batch, br#"{"status":422}"#).is_err());
    }
}

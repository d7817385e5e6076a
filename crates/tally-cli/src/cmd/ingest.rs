//! `tally ingest FILE`: sends a file of events (NDJSON or CSV, or standard input) to a running server's
//! bulk endpoint, in chunks, several at a time, and reports each refused line as `FILE:LINE: reason`.
//!
//! The server is idempotent on transaction ids, so an ingest that stopped half-way (a crash, a network
//! outage, Ctrl-C) is finished by running the same command again: events already stored come back as
//! duplicates and are not counted twice. Transient failures (network errors, 408, 429, 5xx) are retried
//! with exponential backoff and full jitter; any other refusal stops the ingest with the server's message.

mod source;

use std::fs::File;
use std::io::{BufRead, BufReader};
use std::time::{Duration, Instant};

use anyhow::{Context, Result, bail};
use bytes::Bytes;
use clap::Args;
use futures::StreamExt;
use indicatif::{ProgressBar, ProgressStyle};
use reqwest::Method;
use serde::Deserialize;
use tally_server::api::lago::events::MAX_BULK_LINES;

use crate::client::{ApiClient, Backoff, RetryNotice};
use crate::config::{ClientArgs, ClientConfig, DatabaseArgs};
use source::{Chunk, ChunkReader, Format, Refusal, count_records};

/// Bytes read from the input at a time.
const READ_BUFFER: usize = 1 << 20;

/// Arguments of `tally ingest`.
#[derive(Debug, Args)]
pub struct IngestArgs {
    /// The file to send, or `-` for standard input.
    pub file: String,

    /// Input format [default: csv for a .csv file, ndjson otherwise and for standard input].
    #[arg(long, value_enum)]
    pub format: Option<Format>,

    /// Events per request (at most 100,000).
    #[arg(long, default_value_t = 5_000, value_parser = clap::value_parser!(u64).range(1..=MAX_BULK_LINES as u64))]
    pub chunk: u64,

    /// Requests in flight at once.
    #[arg(long, default_value_t = 4, value_parser = clap::value_parser!(u64).range(1..=256))]
    pub concurrency: u64,

    /// How many times a request that failed for a transient reason is retried.
    #[arg(long, default_value_t = 8)]
    pub retries: u32,

    /// The server and the API key.
    #[command(flatten)]
    pub client: ClientArgs,
}

/// The server's answer to one bulk request.
#[derive(Debug, Deserialize)]
struct BulkAnswer {
    accepted: u64,
    duplicates: u64,
    #[serde(default)]
    rejected_lines: Vec<RejectedLine>,
}

/// One refused line of a bulk request, numbered from 1 within the request.
#[derive(Debug, Deserialize)]
struct RejectedLine {
    line: u64,
    reason: String,
}

/// What became of one chunk.
#[derive(Debug, Default)]
struct ChunkOutcome {
    records: u64,
    /// Whether a request was made (a chunk of only locally refused rows sends none).
    sent: bool,
    accepted: u64,
    duplicates: u64,
    /// Every refused line of the chunk (by the server or before sending), in input order.
    refused: Vec<Refusal>,
}

/// Totals over the whole input.
#[derive(Debug, Default)]
struct Totals {
    records: u64,
    accepted: u64,
    duplicates: u64,
    rejected: u64,
    requests: u64,
}

/// Sends the file and prints the report; fails when any line was refused.
pub async fn run(args: &IngestArgs, db: &DatabaseArgs) -> Result<()> {
    let config = ClientConfig::resolve(&args.client, db)?;
    let concurrency = usize::try_from(args.concurrency)?;
    let client = ApiClient::new(&config, Backoff::standard(args.retries), concurrency)?;
    let url = client.url(&["api", "v1", "events", "bulk"])?;
    let stdin = args.file == "-";
    let label = if stdin { "<stdin>" } else { args.file.as_str() };
    let format = args.format.unwrap_or(if stdin {
        Format::Ndjson
    } else {
        Format::from_path(&args.file)
    });
    let total = if stdin {
        None
    } else {
        let input = open(&args.file)?;
        let path = args.file.clone();
        Some(
            tokio::task::spawn_blocking(move || count_records(input, format))
                .await?
                .with_context(|| format!("cannot read {path}"))?,
        )
    };
    let input = if stdin {
        Box::new(BufReader::with_capacity(READ_BUFFER, std::io::stdin())) as Box<dyn BufRead + Send>
    } else {
        open(&args.file)?
    };
    let records = usize::try_from(args.chunk)?;
    let mut reader = tokio::task::spawn_blocking(move || ChunkReader::new(input, format, records))
        .await?
        .with_context(|| format!("cannot read {label}"))?;

    // The reader runs on its own thread and hands over one chunk at a time, so at most the chunks in
    // flight plus one are held in memory.
    let (sender, receiver) = tokio::sync::mpsc::channel::<Result<Chunk>>(1);
    let reading = tokio::task::spawn_blocking(move || {
        loop {
            let next = reader.next_chunk().transpose();
            let Some(next) = next else { break };
            let failed = next.is_err();
            if sender.blocking_send(next).is_err() || failed {
                break;
            }
        }
    });

    let progress = progress_bar(total);
    let started = Instant::now();
    let chunks = futures::stream::unfold(receiver, |mut receiver| async move {
        receiver.recv().await.map(|chunk| (chunk, receiver))
    });
    // `buffered` keeps `concurrency` requests in flight and yields their outcomes in input order, so
    // refused lines are printed in file order as they come.
    let mut outcomes = Box::pin(
        chunks
            .map(|chunk| {
                let client = &client;
                let url = url.clone();
                let progress = progress.clone();
                async move { send_chunk(client, url, chunk?, &progress, label).await }
            })
            .buffered(concurrency),
    );
    let mut totals = Totals::default();
    let mut failure = None;
    while let Some(outcome) = outcomes.next().await {
        match outcome {
            Ok(outcome) => {
                totals.records += outcome.records;
                totals.accepted += outcome.accepted;
                totals.duplicates += outcome.duplicates;
                totals.rejected += outcome.refused.len() as u64;
                totals.requests += u64::from(outcome.sent);
                if !outcome.refused.is_empty() {
                    progress.suspend(|| {
                        for refusal in &outcome.refused {
                            println!("{label}:{}: {}", refusal.line, refusal.reason);
                        }
                    });
                }
                progress.inc(outcome.records);
            }
            Err(error) => {
                failure = Some(error);
                break;
            }
        }
    }
    // Dropping the stream drops the receiver, so a reader still going stops at its next send.
    drop(outcomes);
    progress.finish_and_clear();
    reading.await?;
    let elapsed = started.elapsed();
    if let Some(error) = failure {
        if totals.records > 0 {
            eprintln!(
                "stopped after {} line(s): {}",
                totals.records,
                summary(&totals, elapsed)
            );
        }
        return Err(error.context(format!(
            "ingest of {label} stopped (running the same command again is safe: events already stored come back as duplicates)"
        )));
    }
    println!("{}", summary(&totals, elapsed));
    if totals.rejected > 0 {
        bail!(
            "{} line(s) of {label} were rejected (listed above); fix them and run the same command again",
            totals.rejected
        );
    }
    Ok(())
}

fn open(path: &str) -> Result<Box<dyn BufRead + Send>> {
    let file = File::open(path).with_context(|| format!("cannot open {path}"))?;
    Ok(Box::new(BufReader::with_capacity(READ_BUFFER, file)))
}

fn progress_bar(total: Option<u64>) -> ProgressBar {
    let (bar, template) = match total {
        Some(total) => (
            ProgressBar::new(total),
            "{spinner} [{elapsed_precise}] {wide_bar} {human_pos}/{human_len} events ({per_sec}, ETA {eta})",
        ),
        None => (
            ProgressBar::new_spinner(),
            "{spinner} [{elapsed_precise}] {human_pos} events ({per_sec})",
        ),
    };
    if let Ok(style) = ProgressStyle::with_template(template) {
        bar.set_style(style);
    }
    bar.enable_steady_tick(Duration::from_millis(200));
    bar
}

fn summary(totals: &Totals, elapsed: Duration) -> String {
    let seconds = elapsed.as_secs_f64();
    let rate = if seconds > 0.0 {
        totals.records as f64 / seconds
    } else {
        0.0
    };
    format!(
        "accepted {}, duplicates {}, rejected {} ({} line(s) in {} request(s), {seconds:.1} s, {rate:.0} events/s)",
        totals.accepted, totals.duplicates, totals.rejected, totals.records, totals.requests
    )
}

/// Sends one chunk (with retries) and maps the server's request-relative line numbers back to input
/// lines.
async fn send_chunk(
    client: &ApiClient,
    url: reqwest::Url,
    chunk: Chunk,
    progress: &ProgressBar,
    label: &str,
) -> Result<ChunkOutcome> {
    let records = chunk.records();
    let first = chunk.first_line().unwrap_or(0);
    let mut outcome = ChunkOutcome {
        records,
        ..ChunkOutcome::default()
    };
    if chunk.lines.is_empty() {
        outcome.refused = chunk.refused;
        return Ok(outcome);
    }
    let notify = |notice: &RetryNotice| {
        let message = format!(
            "{label}:{first}: retrying the request starting here ({}; retry {} of {} in {:.1} s)",
            notice.cause,
            notice.attempt,
            notice.retries,
            notice.wait.as_secs_f64()
        );
        // A hidden bar (stderr is not a terminal) swallows `println`, and retries must be seen.
        progress.suspend(|| eprintln!("{message}"));
    };
    let answer = client
        .send(
            Method::POST,
            url,
            Some("application/x-ndjson"),
            Some(Bytes::from(chunk.body)),
            notify,
        )
        .await
        .with_context(|| {
            format!(
                "the {} event(s) from line {first} of {label} could not be sent",
                chunk.lines.len()
            )
        })?;
    let answer: BulkAnswer = serde_json::from_slice(&answer)
        .context("the server's answer to a bulk request is not the expected JSON")?;
    outcome.sent = true;
    outcome.accepted = answer.accepted;
    outcome.duplicates = answer.duplicates;
    let mut refused = chunk.refused;
    refused.extend(answer.rejected_lines.into_iter().map(|rejected| {
        let line = usize::try_from(rejected.line)
            .ok()
            .and_then(|n| n.checked_sub(1))
            .and_then(|index| chunk.lines.get(index).copied());
        match line {
            Some(line) => Refusal {
                line,
                reason: rejected.reason,
            },
            None => Refusal {
                line: first,
                reason: format!(
                    "{} (the server named line {} of a request of {} line(s) starting here)",
                    rejected.reason,
                    rejected.line,
                    chunk.lines.len()
                ),
            },
        }
    }));
    refused.sort_by_key(|r| r.line);
    outcome.refused = refused;
    Ok(outcome)
}

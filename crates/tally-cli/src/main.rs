//! The `tally` binary: the server and the commands people run around it.

mod client;
mod cmd;
mod config;
mod telemetry;

use anyhow::Result;
use clap::{Parser, Subcommand};

use crate::config::{DatabaseArgs, ServeArgs};

/// tally: usage metering and billing in one binary.
#[derive(Debug, Parser)]
#[command(name = "tally", version, about, long_about = None)]
struct Cli {
    #[command(flatten)]
    db: DatabaseArgs,

    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Start the HTTP server (migrations are applied on start).
    Serve(ServeArgs),
    /// Apply pending database migrations and exit.
    Migrate,
    /// Manage API keys.
    #[command(subcommand)]
    Keys(cmd::keys::KeysCommand),
    /// Convert identifiers to a case style: snake_case, camelCase, kebab-case, lower, upper or none.
    Case(cmd::case::CaseArgs),
    /// Maintain rollups.
    #[command(subcommand)]
    Rollups(cmd::rollups::RollupsCommand),
    /// Print the OpenAPI document.
    Openapi,
    /// Send a file of events (NDJSON or CSV) to a running server; safe to re-run.
    Ingest(cmd::ingest::IngestArgs),
    /// Show a customer's usage of a metric, from a running server.
    Usage(cmd::usage::UsageArgs),
    /// Run a benchmark against a server started in this process.
    #[command(subcommand)]
    Bench(cmd::bench::BenchCommand),
}

fn main() -> Result<()> {
    let cli = Cli::parse();
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()?;
    runtime.block_on(async move {
        match cli.command {
            Command::Serve(args) => cmd::serve::run(&args, &cli.db).await,
            Command::Migrate => cmd::migrate::run(&cli.db),
            Command::Keys(command) => cmd::keys::run(command, &cli.db).await,
            Command::Case(args) => cmd::case::run(&args),
            Command::Rollups(command) => cmd::rollups::run(command, &cli.db).await,
            Command::Ingest(args) => cmd::ingest::run(&args, &cli.db).await,
            Command::Usage(args) => cmd::usage::run(&args, &cli.db).await,
            Command::Bench(command) => cmd::bench::run(&command).await,
            Command::Openapi => {
                println!("{}", tally_server::api::openapi().to_pretty_json()?);
                Ok(())
            }
        }
    })
}

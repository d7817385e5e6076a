//! `tally rollups rebuild`: recompute rollups and billing issues from raw events.

use anyhow::Result;
use clap::Subcommand;

use super::open_store;
use crate::config::{DatabaseArgs, FileConfig, database_url};

/// Rollup commands.
#[derive(Debug, Subcommand)]
pub enum RollupsCommand {
    /// Recompute every rollup of the default organization from raw events and report differences.
    Rebuild,
}

/// Runs a rollup command.
pub async fn run(command: RollupsCommand, db: &DatabaseArgs) -> Result<()> {
    let file = FileConfig::load(db.config.as_ref())?;
    let store = open_store(
        &database_url(db, &file),
        tally_store::sqlite::Durability::Full,
        false,
    )?;
    match command {
        RollupsCommand::Rebuild => {
            let org = store.default_organization().await?;
            let report = store.rebuild_rollups(org.id).await?;
            println!(
                "rebuilt {} metric(s) from {} event(s): {} rollup row(s), {} differed from the live rollups",
                report.metrics, report.events, report.rows, report.rows_changed
            );
        }
    }
    store.close().await;
    Ok(())
}

//! `tally rollups rebuild`: recompute rollups and billing issues from raw events.

use anyhow::Result;
use clap::Subcommand;

use super::open_for_management;
use crate::config::DatabaseArgs;

/// Rollup commands.
#[derive(Debug, Subcommand)]
pub enum RollupsCommand {
    /// Recompute every rollup of the default organization from raw events and report differences.
    Rebuild,
}

/// Runs a rollup command.
pub async fn run(command: RollupsCommand, db: &DatabaseArgs) -> Result<()> {
    let store = open_for_management(db)?;
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

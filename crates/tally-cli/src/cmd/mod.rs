//! One module per command.

pub mod bench;
pub mod case;
pub mod ingest;
pub mod keys;
pub mod migrate;
pub mod rollups;
pub mod serve;
pub mod usage;

use std::sync::Arc;

use anyhow::{Result, bail};
use tally_store::Store;
use tally_store::sqlite::{DatabaseUrl, Durability, SqliteOptions, SqliteStore};

/// Opens the store a database URL names; `ingest` is for the one process that records events.
pub fn open_store(url: &str, durability: Durability, ingest: bool) -> Result<Arc<dyn Store>> {
    match DatabaseUrl::parse(url)? {
        DatabaseUrl::Sqlite(path) => {
            let mut options = SqliteOptions::new(path);
            options.durability = durability;
            options.ingest = ingest;
            Ok(Arc::new(SqliteStore::open(&options)?))
        }
        DatabaseUrl::Postgres(_) => {
            bail!("the PostgreSQL backend is not built yet; use sqlite://PATH (see README)")
        }
    }
}

/// Opens the configured database for management commands (keys, rollups): without the ingest lock,
/// so they run beside the server.
pub fn open_for_management(db: &crate::config::DatabaseArgs) -> Result<Arc<dyn Store>> {
    let file = crate::config::FileConfig::load(db.config.as_ref())?;
    open_store(
        &crate::config::database_url(db, &file),
        Durability::Full,
        false,
    )
}

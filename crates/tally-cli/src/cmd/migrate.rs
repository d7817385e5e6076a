//! `tally migrate`: apply pending migrations explicitly.

use anyhow::{Result, bail};
use tally_store::sqlite::{DatabaseUrl, SqliteStore, latest_version};

use crate::config::{DatabaseArgs, FileConfig, database_url};

/// Applies pending migrations and reports what ran.
pub fn run(db: &DatabaseArgs) -> Result<()> {
    let file = FileConfig::load(db.config.as_ref())?;
    let url = database_url(db, &file);
    match DatabaseUrl::parse(&url)? {
        DatabaseUrl::Sqlite(path) => {
            let applied = SqliteStore::migrate(&path)?;
            println!(
                "{applied} migration(s) applied; {} is at schema version {}",
                path.display(),
                latest_version()
            );
            Ok(())
        }
        DatabaseUrl::Postgres(_) => {
            bail!("the PostgreSQL backend is not built yet; use sqlite://PATH")
        }
    }
}

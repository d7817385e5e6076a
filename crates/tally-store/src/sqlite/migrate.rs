//! Versioned, forward-only schema migrations, embedded in the binary.
//!
//! Each file in `migrations/sqlite/` is applied once, in order, in its own transaction, and recorded in
//! `schema_migrations`. Applied files are never edited; a change is a new file. A database migrated by
//! a newer tally is refused rather than misread.
//!
//! Versions need not be contiguous: every known migration missing from `schema_migrations` is applied,
//! so a version left free by one line of work and filled later is still applied to databases that
//! already have higher versions.

use rusqlite::{Connection, OptionalExtension};

use crate::error::{StoreError, StoreResult};
use tally_core::time::Timestamp;

/// Every migration this build knows: version, name, SQL.
const MIGRATIONS: &[(i64, &str, &str)] = &[
    (
        1,
        "init",
        include_str!("../../migrations/sqlite/0001_init.sql"),
    ),
    (
        2,
        "plans_subscriptions",
        include_str!("../../migrations/sqlite/0002_plans_subscriptions.sql"),
    ),
    (
        3,
        "invoices",
        include_str!("../../migrations/sqlite/0003_invoices.sql"),
    ),
    (
        4,
        "taxes_coupons",
        include_str!("../../migrations/sqlite/0004_taxes_coupons.sql"),
    ),
    (
        5,
        "wallets",
        include_str!("../../migrations/sqlite/0005_wallets.sql"),
    ),
    (
        6,
        "credit_notes",
        include_str!("../../migrations/sqlite/0006_credit_notes.sql"),
    ),
    (
        7,
        "draft_refresh",
        include_str!("../../migrations/sqlite/0007_draft_refresh.sql"),
    ),
    (
        8,
        "organization_billing",
        include_str!("../../migrations/sqlite/0008_organization_billing.sql"),
    ),
    (
        9,
        "minimum_commitment",
        include_str!("../../migrations/sqlite/0009_minimum_commitment.sql"),
    ),
    (
        10,
        "terminations",
        include_str!("../../migrations/sqlite/0010_terminations.sql"),
    ),
    (
        11,
        "add_ons",
        include_str!("../../migrations/sqlite/0011_add_ons.sql"),
    ),
    (
        12,
        "advance_charges",
        include_str!("../../migrations/sqlite/0012_advance_charges.sql"),
    ),
    (
        13,
        "lookup_indexes",
        include_str!("../../migrations/sqlite/0013_lookup_indexes.sql"),
    ),
    (
        14,
        "progressive_billing",
        include_str!("../../migrations/sqlite/0014_progressive_billing.sql"),
    ),
    (
        15,
        "lifetime_usage",
        include_str!("../../migrations/sqlite/0015_lifetime_usage.sql"),
    ),
    (
        16,
        "next_due",
        include_str!("../../migrations/sqlite/0016_next_due.sql"),
    ),
    (
        17,
        "distinct_events",
        include_str!("../../migrations/sqlite/0017_distinct_events.sql"),
    ),
    (
        18,
        "event_values",
        include_str!("../../migrations/sqlite/0018_event_values.sql"),
    ),
    (
        19,
        "advance_carry",
        include_str!("../../migrations/sqlite/0019_advance_carry.sql"),
    ),
    (
        20,
        "advance_peak",
        include_str!("../../migrations/sqlite/0020_advance_peak.sql"),
    ),
    (
        21,
        "lifecycle_indexes",
        include_str!("../../migrations/sqlite/0021_lifecycle_indexes.sql"),
    ),
];

/// Work a migration needs beyond its SQL, run in the same transaction right after it: data only
/// tally's Rust code can compute.
fn data_step(version: i64, conn: &Connection) -> StoreResult<()> {
    match version {
        // Version 18 renames the table and fills it, for unique counts and percentage charges alike.
        18 => super::plans::backfill_event_values(conn),
        _ => Ok(()),
    }
}

/// The latest schema version this build knows.
pub fn latest_version() -> i64 {
    MIGRATIONS
        .iter()
        .map(|(version, _, _)| *version)
        .max()
        .unwrap_or(0)
}

/// How many migrations this build knows.
pub fn migration_count() -> usize {
    MIGRATIONS.len()
}

fn ensure_table(conn: &Connection) -> StoreResult<()> {
    conn.execute_batch(
        "CREATE TABLE IF NOT EXISTS schema_migrations (
            version INTEGER PRIMARY KEY,
            name TEXT NOT NULL,
            applied_at INTEGER NOT NULL
        )",
    )?;
    Ok(())
}

/// Returns the schema version of the database (0 when empty).
pub fn current_version(conn: &Connection) -> StoreResult<i64> {
    let exists: Option<String> = conn
        .query_row(
            "SELECT name FROM sqlite_master WHERE type = 'table' AND name = 'schema_migrations'",
            [],
            |row| row.get(0),
        )
        .optional()?;
    if exists.is_none() {
        return Ok(0);
    }
    Ok(conn.query_row(
        "SELECT COALESCE(MAX(version), 0) FROM schema_migrations",
        [],
        |row| row.get(0),
    )?)
}

/// Returns the versions recorded in `schema_migrations` (none when the table does not exist).
fn applied_versions(conn: &Connection) -> StoreResult<std::collections::BTreeSet<i64>> {
    if current_version(conn)? == 0 {
        return Ok(std::collections::BTreeSet::new());
    }
    let mut stmt = conn.prepare("SELECT version FROM schema_migrations")?;
    let versions = stmt
        .query_map([], |row| row.get(0))?
        .collect::<rusqlite::Result<_>>()?;
    Ok(versions)
}

/// Applies every pending migration and returns how many were applied.
pub fn migrate(conn: &mut Connection) -> StoreResult<usize> {
    ensure_table(conn)?;
    let current = current_version(conn)?;
    check_not_newer(current)?;
    let done = applied_versions(conn)?;
    let mut pending: Vec<_> = MIGRATIONS
        .iter()
        .filter(|(v, _, _)| !done.contains(v))
        .collect();
    pending.sort_by_key(|(v, _, _)| *v);
    let mut applied = 0;
    for (version, name, sql) in pending {
        let tx = conn.transaction()?;
        tx.execute_batch(sql).map_err(|e| {
            StoreError::Database(format!("migration {version} ({name}) failed: {e}"))
        })?;
        data_step(*version, &tx).map_err(|e| {
            StoreError::Database(format!("migration {version} ({name}) failed: {e}"))
        })?;
        tx.execute(
            "INSERT INTO schema_migrations (version, name, applied_at) VALUES (?1, ?2, ?3)",
            rusqlite::params![
                version,
                name,
                Timestamp::from_datetime(chrono::Utc::now()).micros()
            ],
        )?;
        tx.commit()?;
        tracing::info!(version, name, "applied migration");
        applied += 1;
    }
    Ok(applied)
}

/// Fails unless every known migration is applied and none is unknown.
pub fn check(conn: &Connection) -> StoreResult<()> {
    let current = current_version(conn)?;
    check_not_newer(current)?;
    let done = applied_versions(conn)?;
    if MIGRATIONS.iter().any(|(v, _, _)| !done.contains(v)) {
        return Err(StoreError::Config(format!(
            "the database is at schema version {current} and needs {}; run `tally migrate`",
            latest_version()
        )));
    }
    Ok(())
}

fn check_not_newer(current: i64) -> StoreResult<()> {
    if current > latest_version() {
        return Err(StoreError::SchemaTooNew {
            found: current,
            known: latest_version(),
        });
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Version 11 rebuilds `tax_links` to let add-ons carry taxes; the links customers and plans
    /// already had must come through unchanged.
    #[test]
    fn the_add_on_migration_keeps_existing_tax_links() {
        let conn = Connection::open_in_memory().expect("open");
        conn.execute_batch("PRAGMA foreign_keys = ON")
            .expect("foreign keys");
        for (version, _, sql) in MIGRATIONS.iter().filter(|(v, _, _)| *v < 11) {
            conn.execute_batch(sql)
                .unwrap_or_else(|e| panic!("migration {version}: {e}"));
        }
        conn.execute_batch(
            "INSERT INTO organizations (seq, id, name, created_at) VALUES (1, 'org', 'Org', 0);
             INSERT INTO taxes (seq, id, org, code, name, rate, created_at, updated_at)
                 VALUES (1, 't1', 1, 'vat', 'VAT', '20', 0, 0), (2, 't2', 1, 'gst', 'GST', '5', 0, 0);
             INSERT INTO tax_links (owner_kind, owner, tax)
                 VALUES ('customer', 'c1', 1), ('plan', 'p1', 1), ('plan', 'p1', 2);",
        )
        .expect("version 10 rows");
        let (_, _, v11) = MIGRATIONS
            .iter()
            .find(|(v, _, _)| *v == 11)
            .expect("version 11");
        conn.execute_batch(v11).expect("migration 11");

        let mut stmt = conn
            .prepare("SELECT owner_kind, owner, tax FROM tax_links ORDER BY owner_kind, owner, tax")
            .expect("select");
        let links: Vec<(String, String, i64)> = stmt
            .query_map([], |row| Ok((row.get(0)?, row.get(1)?, row.get(2)?)))
            .expect("query")
            .collect::<rusqlite::Result<_>>()
            .expect("rows");
        let expected = [("customer", "c1", 1), ("plan", "p1", 1), ("plan", "p1", 2)]
            .map(|(k, o, t)| (k.to_owned(), o.to_owned(), t));
        assert_eq!(links, expected);
        conn.execute(
            "INSERT INTO tax_links (owner_kind, owner, tax) VALUES ('add_on', 'a1', 2)",
            [],
        )
        .expect("add-ons carry taxes");
        assert!(
            conn.execute(
                "INSERT INTO tax_links (owner_kind, owner, tax) VALUES ('wallet', 'w1', 2)",
                [],
            )
            .is_err(),
            "other owners are still refused"
        );
        assert!(
            conn.execute(
                "INSERT INTO tax_links (owner_kind, owner, tax) VALUES ('add_on', 'a2', 99)",
                [],
            )
            .is_err(),
            "the tax must exist"
        );
    }
}

//! Migrations are forward-only, idempotent, and a newer database is refused.

use tally_store::StoreError;
use tally_store::sqlite::{SqliteOptions, SqliteStore, latest_version, migration_count};

#[test]
fn migrating_twice_applies_nothing_the_second_time() {
    let dir = tempfile::tempdir().expect("temp dir");
    let path = dir.path().join("nested").join("tally.db");
    assert_eq!(
        SqliteStore::migrate(&path).expect("first"),
        migration_count()
    );
    assert_eq!(SqliteStore::migrate(&path).expect("second"), 0);
}

#[test]
fn a_database_from_a_newer_tally_is_refused() {
    let dir = tempfile::tempdir().expect("temp dir");
    let path = dir.path().join("tally.db");
    SqliteStore::migrate(&path).expect("migrate");
    let conn = rusqlite::Connection::open(&path).expect("open");
    conn.execute(
        "INSERT INTO schema_migrations (version, name, applied_at) VALUES (?1, 'from the future', 0)",
        [latest_version() + 1],
    )
    .expect("insert");
    drop(conn);
    match SqliteStore::open(&SqliteOptions::new(&path)) {
        Err(StoreError::SchemaTooNew { found, known }) => {
            assert_eq!(found, latest_version() + 1);
            assert_eq!(known, latest_version());
        }
        Err(other) => panic!("unexpected error {other}"),
        Ok(_) => panic!("a newer database was opened"),
    }
}

#[test]
fn a_pending_migration_is_refused_without_migrate() {
    let dir = tempfile::tempdir().expect("temp dir");
    let mut options = SqliteOptions::new(dir.path().join("tally.db"));
    options.migrate = false;
    let error = SqliteStore::open(&options).err().expect("refused");
    assert!(error.to_string().contains("tally migrate"), "{error}");
}

#[test]
fn a_version_missing_below_the_newest_is_still_applied() {
    // Lines of work number migrations apart, so a database may hold a higher version before a lower
    // one exists; the lower one is applied when it arrives, not skipped. Version 7 only adds an
    // index, so forgetting it and dropping the index stands for a version that arrived late.
    let dir = tempfile::tempdir().expect("temp dir");
    let path = dir.path().join("tally.db");
    SqliteStore::migrate(&path).expect("migrate");
    let conn = rusqlite::Connection::open(&path).expect("open");
    conn.execute_batch(
        "DELETE FROM schema_migrations WHERE version = 7; DROP INDEX invoices_customer_drafts;",
    )
    .expect("forget version 7");
    drop(conn);
    let mut options = SqliteOptions::new(&path);
    options.migrate = false;
    let error = SqliteStore::open(&options).err().expect("refused");
    assert!(error.to_string().contains("tally migrate"), "{error}");
    assert_eq!(SqliteStore::migrate(&path).expect("migrate again"), 1);
    let conn = rusqlite::Connection::open(&path).expect("open");
    let index: i64 = conn
        .query_row(
            "SELECT COUNT(*) FROM sqlite_master WHERE name = 'invoices_customer_drafts'",
            [],
            |row| row.get(0),
        )
        .expect("count");
    assert_eq!(index, 1);
}

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

/// Migrations 17 and 18 fill `event_values` from the events already stored, as ingest would have.
#[test]
fn migrations_17_and_18_keep_the_values_of_stored_unique_count_events() {
    use serde_json::{Map, Value};
    use tally_core::event::EventDraft;
    use tally_core::id::{Code, ExternalId};
    use tally_core::metric::{AggregationType, MetricDefinition};
    use tally_core::property::PropertyPath;
    use tally_core::time::Timestamp;
    use tally_store::{Atomicity, Store};

    let dir = tempfile::tempdir().expect("temp dir");
    let path = dir.path().join("tally.db");
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("runtime");
    let rows = |path: &std::path::Path| -> Vec<(String, i64, i64, String, String)> {
        let conn = rusqlite::Connection::open(path).expect("open");
        let mut stmt = conn
            .prepare(
                "SELECT subject, at, seq, value, operation FROM event_values
                 ORDER BY org, metric, subject, at, seq",
            )
            .expect("prepare");
        stmt.query_map([], |row| {
            Ok((
                row.get(0)?,
                row.get(1)?,
                row.get(2)?,
                row.get(3)?,
                row.get(4)?,
            ))
        })
        .expect("query")
        .collect::<Result<_, _>>()
        .expect("rows")
    };
    runtime.block_on(async {
        let store = SqliteStore::open(&SqliteOptions::new(&path)).expect("open");
        let org = store.default_organization().await.expect("organization");
        let code = Code::parse("code", "users").expect("code");
        store
            .create_metric(
                org.id,
                MetricDefinition {
                    code: code.clone(),
                    name: "Users".into(),
                    description: None,
                    aggregation: AggregationType::UniqueCount,
                    event_type: code.clone(),
                    field: Some(PropertyPath::key("user")),
                    recurring: false,
                    rounding: None,
                    filters: Vec::new(),
                    group_by: Default::default(),
                    event_from: None,
                },
            )
            .await
            .expect("metric");
        let events = (0..50)
            .map(|i| {
                let mut properties = Map::new();
                properties.insert("user".into(), Value::from(format!("u{}", i % 7)));
                EventDraft {
                    source: None,
                    transaction_id: ExternalId::parse("id", &format!("e{i}")).expect("id"),
                    code: code.clone(),
                    subject: Some(
                        ExternalId::parse("subject", &format!("c{}", i % 3)).expect("subject"),
                    ),
                    external_subscription_id: None,
                    timestamp: Some(Timestamp::from_seconds(1_767_225_600 + i * 60)),
                    properties,
                    precise_total_amount_cents: None,
                }
                .prepare(
                    org.id,
                    org.identifier_case,
                    Timestamp::from_seconds(1_767_225_600),
                )
            })
            .collect();
        store
            .record_events(org.id, events, Atomicity::AllOrNothing)
            .await
            .expect("events");
        store.close().await;
    });
    let live = rows(&path);
    assert_eq!(live.len(), 50);
    // The same database as it was before version 17.
    let conn = rusqlite::Connection::open(&path).expect("open");
    conn.execute_batch(
        "DELETE FROM schema_migrations WHERE version IN (17, 18); DROP TABLE event_values;
         ALTER TABLE billable_metrics DROP COLUMN keeps_event_values;",
    )
    .expect("go back to version 16");
    drop(conn);
    assert_eq!(SqliteStore::migrate(&path).expect("migrate"), 2);
    assert_eq!(rows(&path), live);
}

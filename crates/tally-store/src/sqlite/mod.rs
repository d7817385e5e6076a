//! The embedded SQLite store: one file, WAL, one writer thread that group-commits, a pool of readers.
//!
//! `synchronous=FULL` (the default) syncs the WAL at every commit, so an acknowledged event survives a
//! power cut; `NORMAL` trades the last commits before an OS crash for fewer syncs (see
//! docs/performance.md for the measured difference).

mod add_ons;
mod advance_charges;
mod billable_metrics;
mod billing;
mod checkpoint;
mod coupons;
mod credit_notes;
mod customers;
mod events;
mod fees;
mod keys;
mod listing;
mod migrate;
mod one_off;
mod orgs;
mod past_usage;
mod plans;
mod pool;
mod progressive;
mod rollups;
mod subscriptions;
mod taxes;
mod termination_credits;
mod usage;
mod wallets;
mod writer;

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::{Arc, RwLock};

use async_trait::async_trait;
use rusqlite::{Connection, OpenFlags};
use tally_core::add_on::{AddOn, AddOnDraft};
use tally_core::apikey::{ApiKey, Scope};
use tally_core::coupon::{AppliedCoupon, Coupon, CouponTerms};
use tally_core::customer::Customer;
use tally_core::event::NewEvent;
use tally_core::id::{ApiKeyId, CustomerId, ExternalId, FeeId, InvoiceId, OrganizationId, PlanId};
use tally_core::invoice::PaymentStatus;
use tally_core::metric::MetricDefinition;
use tally_core::organization::{Organization, OrganizationPatch};
use tally_core::page::Page;
use tally_core::plan::{Plan, PlanDraft};
use tally_core::subscription::{Subscription, SubscriptionStatus};
use tally_core::tax::{Tax, TaxTerms};
use tally_core::time::Timestamp;
use tally_core::wallet::Wallet;

use crate::error::{StoreError, StoreResult};
use crate::types::*;
use crate::{CustomerChange, CustomerFilter, Store};
use pool::ReadPool;
use writer::Writer;

pub use migrate::{latest_version, migration_count};

/// How hard a commit pushes data to disk.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Durability {
    /// Sync the WAL at every commit: an acknowledged write survives power loss.
    #[default]
    Full,
    /// Sync only at checkpoints: survives a crash of tally, not of the machine.
    Normal,
}

/// Settings of the SQLite store.
#[derive(Debug, Clone)]
pub struct SqliteOptions {
    /// Database file; its folder is created when missing.
    pub path: PathBuf,
    /// Sync policy.
    pub durability: Durability,
    /// Number of read connections.
    pub readers: usize,
    /// Apply pending migrations on open (otherwise a pending migration is an error).
    pub migrate: bool,
    /// Record events. The process that does holds an exclusive lock on `<database>.ingest.lock`,
    /// because the writer's in-memory key filters must see every key written; tools that only manage
    /// keys, customers or rollups open the store without it and may run beside the server.
    pub ingest: bool,
}

impl SqliteOptions {
    /// Defaults for a database file: full durability, four readers, migrations applied.
    pub fn new(path: impl Into<PathBuf>) -> Self {
        SqliteOptions {
            path: path.into(),
            durability: Durability::Full,
            readers: 4,
            migrate: true,
            ingest: true,
        }
    }
}

/// Where a database URL points.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum DatabaseUrl {
    /// `sqlite://PATH` or a bare path.
    Sqlite(PathBuf),
    /// `postgres://…` or `postgresql://…`.
    Postgres(String),
}

impl DatabaseUrl {
    /// Parses `sqlite://PATH`, `sqlite:PATH`, a bare path, or a PostgreSQL URL.
    pub fn parse(url: &str) -> StoreResult<Self> {
        if url.starts_with("postgres://") || url.starts_with("postgresql://") {
            return Ok(DatabaseUrl::Postgres(url.to_owned()));
        }
        let path = url
            .strip_prefix("sqlite://")
            .or_else(|| url.strip_prefix("sqlite:"))
            .unwrap_or(url);
        if path.is_empty() {
            return Err(StoreError::Config("the database URL names no file".into()));
        }
        if path.contains("://") {
            return Err(StoreError::Config(format!(
                "unsupported database URL {url:?}: use sqlite://PATH or postgres://…"
            )));
        }
        Ok(DatabaseUrl::Sqlite(PathBuf::from(path)))
    }
}

/// The SQLite implementation of [`Store`].
pub struct SqliteStore {
    /// Held while the store records events; released by `close`.
    ingest_lock: std::sync::Mutex<Option<std::fs::File>>,
    writer: Writer,
    checkpointer: std::sync::Mutex<checkpoint::Checkpointer>,
    reads: Arc<ReadPool>,
    orgs: RwLock<HashMap<OrganizationId, i64>>,
}

fn connect(path: &Path, durability: Durability) -> StoreResult<Connection> {
    let flags = OpenFlags::SQLITE_OPEN_READ_WRITE
        | OpenFlags::SQLITE_OPEN_CREATE
        | OpenFlags::SQLITE_OPEN_NO_MUTEX
        | OpenFlags::SQLITE_OPEN_URI;
    let conn = Connection::open_with_flags(path, flags)?;
    let sync = match durability {
        Durability::Full => "FULL",
        Durability::Normal => "NORMAL",
    };
    conn.execute_batch(&format!(
        "PRAGMA journal_mode = WAL;
         PRAGMA synchronous = {sync};
         PRAGMA foreign_keys = ON;
         PRAGMA busy_timeout = 10000;
         PRAGMA cache_size = -131072;
         PRAGMA temp_store = MEMORY;"
    ))?;
    conn.set_prepared_statement_cache_capacity(64);
    rollups::register_functions(&conn)?;
    Ok(conn)
}

/// Takes the exclusive ingest lock of a database, failing at once if another process holds it.
fn lock_ingest(path: &Path) -> StoreResult<std::fs::File> {
    let mut lock_path = path.as_os_str().to_owned();
    lock_path.push(".ingest.lock");
    let file = std::fs::OpenOptions::new()
        .create(true)
        .truncate(false)
        .write(true)
        .open(&lock_path)
        .map_err(|e| {
            StoreError::Config(format!(
                "cannot open {}: {e}",
                Path::new(&lock_path).display()
            ))
        })?;
    file.try_lock().map_err(|_| {
        StoreError::Config(format!(
            "another tally process is already recording events into {} (lock {} is held)",
            path.display(),
            Path::new(&lock_path).display()
        ))
    })?;
    Ok(file)
}

impl SqliteStore {
    /// Opens (and by default migrates) the database, starting the writer thread and the readers.
    pub fn open(options: &SqliteOptions) -> StoreResult<SqliteStore> {
        if let Some(dir) = options.path.parent().filter(|d| !d.as_os_str().is_empty()) {
            std::fs::create_dir_all(dir).map_err(|e| {
                StoreError::Config(format!(
                    "cannot create the database folder {}: {e}",
                    dir.display()
                ))
            })?;
        }
        let ingest_lock = if options.ingest {
            Some(lock_ingest(&options.path)?)
        } else {
            None
        };
        let mut conn = connect(&options.path, options.durability)?;
        if options.migrate {
            migrate::migrate(&mut conn)?;
        } else {
            migrate::check(&conn)?;
        }
        let readers = (0..options.readers.max(1))
            .map(|_| {
                let reader = connect(&options.path, options.durability)?;
                reader.execute_batch("PRAGMA query_only = ON")?;
                Ok(reader)
            })
            .collect::<StoreResult<Vec<_>>>()?;
        conn.execute_batch("PRAGMA wal_autocheckpoint = 0")?;
        let checkpointer =
            checkpoint::Checkpointer::spawn(connect(&options.path, options.durability)?)?;
        Ok(SqliteStore {
            ingest_lock: std::sync::Mutex::new(ingest_lock),
            writer: Writer::spawn(conn)?,
            checkpointer: std::sync::Mutex::new(checkpointer),
            reads: ReadPool::new(readers),
            orgs: RwLock::new(HashMap::new()),
        })
    }

    /// Applies pending migrations to a database file and returns how many ran (`tally migrate`).
    pub fn migrate(path: &Path) -> StoreResult<usize> {
        if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
            std::fs::create_dir_all(dir)
                .map_err(|e| StoreError::Config(format!("cannot create {}: {e}", dir.display())))?;
        }
        let mut conn = connect(path, Durability::Full)?;
        migrate::migrate(&mut conn)
    }

    /// Bills the events stored since the last tick to their pay-in-advance charges, one bounded
    /// chunk per transaction, up to the newest event stored when the tick began; returns the invoices
    /// made. A failed chunk is logged and stops this work (the watermark stays before it) until the
    /// next tick; the rest of the tick goes on.
    async fn bill_advance_charges(&self, now: Timestamp) -> Vec<InvoiceId> {
        let mut created = Vec::new();
        let until = match self.reads.read(advance_charges::newest_event).await {
            Ok(until) => until,
            Err(error) => {
                tracing::error!(%error, "reading the event log for pay-in-advance charges failed");
                return created;
            }
        };
        loop {
            let chunk = self
                .writer
                .write(1, move |ctx| {
                    advance_charges::bill_chunk(ctx.conn, until, now)
                })
                .await;
            match chunk {
                Ok(chunk) => {
                    created.extend(chunk.invoices);
                    if chunk.done {
                        return created;
                    }
                }
                Err(error) => {
                    metrics::counter!("tally_billing_failures_total").increment(1);
                    tracing::error!(%error, "billing pay-in-advance charges failed; retried at the next tick");
                    return created;
                }
            }
        }
    }

    /// Resolves an organization to its compact sequence number, cached after the first lookup.
    async fn org_seq(&self, org: OrganizationId) -> StoreResult<i64> {
        if let Some(seq) = self.orgs.read().ok().and_then(|m| m.get(&org).copied()) {
            return Ok(seq);
        }
        let seq = self.reads.read(move |conn| orgs::seq_of(conn, org)).await?;
        if let Ok(mut map) = self.orgs.write() {
            map.insert(org, seq);
        }
        Ok(seq)
    }
}

#[async_trait]
impl Store for SqliteStore {
    async fn ping(&self) -> StoreResult<()> {
        self.reads.read(migrate::check).await
    }

    async fn default_organization(&self) -> StoreResult<Organization> {
        if let Some(org) = self.reads.read(orgs::first_organization).await? {
            return Ok(org);
        }
        self.writer
            .write(1, |ctx| orgs::ensure_default(ctx.conn))
            .await
    }

    async fn organization(&self, org: OrganizationId) -> StoreResult<Organization> {
        self.reads
            .read(move |conn| orgs::organization(conn, org))
            .await
    }

    async fn update_organization(
        &self,
        org: OrganizationId,
        patch: OrganizationPatch,
    ) -> StoreResult<Organization> {
        self.writer
            .write(1, move |ctx| orgs::update(ctx.conn, org, &patch))
            .await
    }

    async fn create_api_key(
        &self,
        org: OrganizationId,
        name: &str,
        scope: Scope,
        prefix: &str,
        secret_hash: [u8; 32],
    ) -> StoreResult<ApiKey> {
        let seq = self.org_seq(org).await?;
        let (name, prefix) = (name.to_owned(), prefix.to_owned());
        self.writer
            .write(1, move |ctx| {
                orgs::create_key(ctx.conn, seq, &name, scope, &prefix, &secret_hash)
            })
            .await
    }

    async fn api_key_by_hash(&self, secret_hash: [u8; 32]) -> StoreResult<Option<ApiKey>> {
        self.reads
            .read(move |conn| orgs::key_by_hash(conn, &secret_hash))
            .await
    }

    async fn list_api_keys(&self) -> StoreResult<Vec<ApiKey>> {
        self.reads.read(orgs::list_keys).await
    }

    async fn revoke_api_key(&self, id: ApiKeyId) -> StoreResult<ApiKey> {
        self.writer
            .write(1, move |ctx| orgs::revoke_key(ctx.conn, id))
            .await
    }

    async fn upsert_customer(
        &self,
        org: OrganizationId,
        external_id: ExternalId,
        change: CustomerChange,
    ) -> StoreResult<Customer> {
        let seq = self.org_seq(org).await?;
        self.writer
            .write(1, move |ctx| {
                customers::upsert(ctx.conn, seq, &external_id, &change)
            })
            .await
    }

    async fn customer(
        &self,
        org: OrganizationId,
        external_id: &ExternalId,
    ) -> StoreResult<Customer> {
        let seq = self.org_seq(org).await?;
        let external_id = external_id.clone();
        self.reads
            .read(move |conn| customers::get(conn, seq, &external_id))
            .await
    }

    async fn list_customers(
        &self,
        org: OrganizationId,
        filter: &CustomerFilter,
        page: Page,
    ) -> StoreResult<Listed<Customer>> {
        let seq = self.org_seq(org).await?;
        let filter = filter.clone();
        self.reads
            .read(move |conn| customers::list(conn, seq, &filter, page))
            .await
    }

    async fn delete_customer(
        &self,
        org: OrganizationId,
        external_id: &ExternalId,
    ) -> StoreResult<Customer> {
        let seq = self.org_seq(org).await?;
        let external_id = external_id.clone();
        self.writer
            .write(1, move |ctx| customers::delete(ctx.conn, seq, &external_id))
            .await
    }

    async fn create_metric(
        &self,
        org: OrganizationId,
        definition: MetricDefinition,
    ) -> StoreResult<Metric> {
        let seq = self.org_seq(org).await?;
        self.writer
            .write_rebuilding(move |ctx| billable_metrics::create(ctx.conn, seq, definition))
            .await
    }

    async fn update_metric(
        &self,
        org: OrganizationId,
        code: &str,
        definition: MetricDefinition,
    ) -> StoreResult<Metric> {
        let seq = self.org_seq(org).await?;
        let code = code.to_owned();
        self.writer
            .write_rebuilding(move |ctx| billable_metrics::update(ctx.conn, seq, &code, definition))
            .await
    }

    async fn metric(&self, org: OrganizationId, code: &str) -> StoreResult<Metric> {
        let seq = self.org_seq(org).await?;
        let code = code.to_owned();
        self.reads
            .read(move |conn| {
                billable_metrics::by_code(conn, seq, &code)?
                    .map(|(_, m)| m)
                    .ok_or(StoreError::NotFound("billable_metric"))
            })
            .await
    }

    async fn metric_by_id(&self, org: OrganizationId, id: uuid::Uuid) -> StoreResult<Metric> {
        let seq = self.org_seq(org).await?;
        self.reads
            .read(move |conn| billable_metrics::by_id(conn, seq, id))
            .await
    }

    async fn list_metrics(&self, org: OrganizationId, page: Page) -> StoreResult<Listed<Metric>> {
        let seq = self.org_seq(org).await?;
        self.reads
            .read(move |conn| billable_metrics::list(conn, seq, page))
            .await
    }

    async fn delete_metric(&self, org: OrganizationId, code: &str) -> StoreResult<Metric> {
        let seq = self.org_seq(org).await?;
        let code = code.to_owned();
        self.writer
            .write_rebuilding(move |ctx| billable_metrics::delete(ctx.conn, seq, &code))
            .await
    }

    async fn create_plan(&self, org: OrganizationId, draft: PlanDraft) -> StoreResult<Plan> {
        let seq = self.org_seq(org).await?;
        self.writer
            .write(1, move |ctx| plans::create(ctx.conn, seq, &draft))
            .await
    }

    async fn update_plan(
        &self,
        org: OrganizationId,
        code: &str,
        draft: PlanDraft,
    ) -> StoreResult<Plan> {
        let seq = self.org_seq(org).await?;
        let code = code.to_owned();
        self.writer
            .write(1, move |ctx| plans::update(ctx.conn, seq, &code, &draft))
            .await
    }

    async fn plan(&self, org: OrganizationId, code: &str) -> StoreResult<Plan> {
        let seq = self.org_seq(org).await?;
        let code = code.to_owned();
        self.reads
            .read(move |conn| plans::by_code(conn, seq, &code))
            .await
    }

    async fn plan_by_id(&self, org: OrganizationId, id: PlanId) -> StoreResult<Plan> {
        let seq = self.org_seq(org).await?;
        self.reads
            .read(move |conn| plans::by_id(conn, seq, id))
            .await
    }

    async fn customer_timezone(
        &self,
        org: OrganizationId,
        customer: CustomerId,
    ) -> StoreResult<chrono_tz::Tz> {
        let seq = self.org_seq(org).await?;
        self.reads
            .read(move |conn| {
                let profile = customers::by_id(conn, seq, customer)?.profile;
                subscriptions::billing_zone(conn, seq, &profile)
            })
            .await
    }

    async fn list_plans(&self, org: OrganizationId, page: Page) -> StoreResult<Listed<Plan>> {
        let seq = self.org_seq(org).await?;
        self.reads
            .read(move |conn| plans::list(conn, seq, page))
            .await
    }

    async fn delete_plan(&self, org: OrganizationId, code: &str) -> StoreResult<Plan> {
        let seq = self.org_seq(org).await?;
        let code = code.to_owned();
        self.writer
            .write(1, move |ctx| plans::delete(ctx.conn, seq, &code))
            .await
    }

    async fn create_subscription(
        &self,
        org: OrganizationId,
        request: NewSubscription,
        now: Timestamp,
    ) -> StoreResult<Subscription> {
        let seq = self.org_seq(org).await?;
        self.writer
            .write(1, move |ctx| {
                subscriptions::create(ctx.conn, seq, &request, now)
            })
            .await
    }

    async fn subscription(
        &self,
        org: OrganizationId,
        external_id: &str,
        status: SubscriptionStatus,
    ) -> StoreResult<Subscription> {
        let seq = self.org_seq(org).await?;
        let external_id = external_id.to_owned();
        self.reads
            .read(move |conn| subscriptions::get(conn, seq, &external_id, status))
            .await
    }

    async fn list_subscriptions(
        &self,
        org: OrganizationId,
        filter: &SubscriptionFilter,
        page: Page,
    ) -> StoreResult<Listed<Subscription>> {
        let seq = self.org_seq(org).await?;
        let filter = filter.clone();
        self.reads
            .read(move |conn| subscriptions::list(conn, seq, &filter, page))
            .await
    }

    async fn update_subscription(
        &self,
        org: OrganizationId,
        external_id: &str,
        status: SubscriptionStatus,
        change: SubscriptionUpdate,
        now: Timestamp,
    ) -> StoreResult<Subscription> {
        let seq = self.org_seq(org).await?;
        let external_id = external_id.to_owned();
        self.writer
            .write(1, move |ctx| {
                subscriptions::update(ctx.conn, seq, &external_id, status, &change, now)
            })
            .await
    }

    async fn lifetime_usage(
        &self,
        org: OrganizationId,
        external_id: &str,
        now: Timestamp,
    ) -> StoreResult<LifetimeUsage> {
        let seq = self.org_seq(org).await?;
        let external_id = external_id.to_owned();
        self.reads
            .read(move |conn| {
                let sub = subscriptions::seq_of_active(conn, seq, &external_id)?;
                progressive::lifetime_usage(conn, sub, now)
            })
            .await
    }

    async fn set_historical_usage(
        &self,
        org: OrganizationId,
        external_id: &str,
        amount_cents: i64,
        now: Timestamp,
    ) -> StoreResult<LifetimeUsage> {
        let seq = self.org_seq(org).await?;
        let external_id = external_id.to_owned();
        self.writer
            .write(1, move |ctx| {
                let sub = subscriptions::seq_of_active(ctx.conn, seq, &external_id)?;
                progressive::set_historical_usage(ctx.conn, sub, amount_cents)?;
                progressive::lifetime_usage(ctx.conn, sub, now)
            })
            .await
    }

    async fn terminate_subscription(
        &self,
        org: OrganizationId,
        external_id: &str,
        status: SubscriptionStatus,
        now: Timestamp,
    ) -> StoreResult<Subscription> {
        let seq = self.org_seq(org).await?;
        let external_id = external_id.to_owned();
        self.writer
            .write(1, move |ctx| {
                subscriptions::terminate(ctx.conn, seq, &external_id, status, now)
            })
            .await
    }

    async fn run_billing(&self, now: Timestamp) -> StoreResult<Vec<InvoiceId>> {
        self.writer
            .write(1, move |ctx| billing::apply_lifecycle(ctx.conn, now))
            .await?;
        let mut created = self.bill_advance_charges(now).await;
        let mut candidates = self
            .reads
            .read(move |conn| billing::candidates(conn, now))
            .await?;
        // Subscriptions with usage thresholds and nothing due are priced on readers, in parallel;
        // only those passing a threshold take the writer, which re-checks in its transaction.
        let watched = self
            .reads
            .read(move |conn| billing::threshold_candidates(conn, now))
            .await?;
        let checks = watched.chunks(64).map(|chunk| {
            let chunk = chunk.to_vec();
            self.reads.read(move |conn| {
                let mut passing = Vec::new();
                for seq in chunk {
                    if progressive::passes_threshold(conn, seq, now)? {
                        passing.push(seq);
                    }
                }
                Ok(passing)
            })
        });
        for result in futures::future::join_all(checks).await {
            match result {
                Ok(passing) => candidates.extend(passing),
                Err(error) => {
                    tracing::error!(%error, "checking usage thresholds failed; retried at the next tick")
                }
            }
        }
        // Submitted together, the runs are group-committed; each stays its own savepoint, so one
        // failing subscription does not hold back the others.
        for chunk in candidates.chunks(256) {
            let jobs = chunk.iter().map(|&seq| {
                self.writer
                    .write(1, move |ctx| billing::bill(ctx.conn, seq, now))
            });
            for result in futures::future::join_all(jobs).await {
                match result {
                    Ok(ids) => created.extend(ids),
                    Err(error) => {
                        tracing::error!(%error, "billing a subscription failed; retried at the next tick")
                    }
                }
            }
        }
        self.writer
            .write(1, move |ctx| {
                billing::refresh_marked(ctx.conn)?;
                billing::finalize_due(ctx.conn, now)
            })
            .await?;
        Ok(created)
    }

    async fn invoice(&self, org: OrganizationId, id: InvoiceId) -> StoreResult<Invoice> {
        let seq = self.org_seq(org).await?;
        self.reads
            .read(move |conn| billing::get(conn, seq, id))
            .await
    }

    async fn list_invoices(
        &self,
        org: OrganizationId,
        filter: &InvoiceFilter,
        page: Page,
    ) -> StoreResult<Listed<Invoice>> {
        let seq = self.org_seq(org).await?;
        let filter = filter.clone();
        self.reads
            .read(move |conn| billing::list(conn, seq, &filter, page))
            .await
    }

    async fn refresh_invoice(&self, org: OrganizationId, id: InvoiceId) -> StoreResult<Invoice> {
        let seq = self.org_seq(org).await?;
        self.writer
            .write(1, move |ctx| billing::refresh(ctx.conn, seq, id))
            .await
    }

    async fn finalize_invoice(
        &self,
        org: OrganizationId,
        id: InvoiceId,
        now: Timestamp,
    ) -> StoreResult<Invoice> {
        let seq = self.org_seq(org).await?;
        self.writer
            .write(1, move |ctx| billing::finalize(ctx.conn, seq, id, now))
            .await
    }

    async fn void_invoice(
        &self,
        org: OrganizationId,
        id: InvoiceId,
        now: Timestamp,
    ) -> StoreResult<Invoice> {
        let seq = self.org_seq(org).await?;
        self.writer
            .write(1, move |ctx| billing::void(ctx.conn, seq, id, now))
            .await
    }

    async fn set_invoice_payment_status(
        &self,
        org: OrganizationId,
        id: InvoiceId,
        status: PaymentStatus,
    ) -> StoreResult<Invoice> {
        let seq = self.org_seq(org).await?;
        self.writer
            .write(1, move |ctx| {
                billing::set_payment_status(ctx.conn, seq, id, status)
            })
            .await
    }

    async fn estimate_fees(
        &self,
        org: OrganizationId,
        event: NewEvent,
        now: Timestamp,
    ) -> StoreResult<Vec<FeeRecord>> {
        let seq = self.org_seq(org).await?;
        self.reads
            .read(move |conn| advance_charges::estimate(conn, seq, &event, now))
            .await
    }

    async fn fee(&self, org: OrganizationId, id: FeeId) -> StoreResult<FeeRecord> {
        let seq = self.org_seq(org).await?;
        self.reads.read(move |conn| fees::get(conn, seq, id)).await
    }

    async fn list_fees(
        &self,
        org: OrganizationId,
        filter: &FeeFilter,
        page: Page,
    ) -> StoreResult<Listed<FeeRecord>> {
        let seq = self.org_seq(org).await?;
        let filter = filter.clone();
        self.reads
            .read(move |conn| fees::list(conn, seq, &filter, page))
            .await
    }

    async fn current_usage(
        &self,
        org: OrganizationId,
        customer: &str,
        subscription: &str,
        now: Timestamp,
    ) -> StoreResult<CurrentUsage> {
        let seq = self.org_seq(org).await?;
        let (customer, subscription) = (customer.to_owned(), subscription.to_owned());
        self.reads
            .read(move |conn| billing::current_usage(conn, seq, &customer, &subscription, now))
            .await
    }

    async fn create_tax(&self, org: OrganizationId, terms: TaxTerms) -> StoreResult<Tax> {
        let seq = self.org_seq(org).await?;
        self.writer
            .write(1, move |ctx| taxes::create(ctx.conn, seq, &terms))
            .await
    }

    async fn update_tax(
        &self,
        org: OrganizationId,
        code: &str,
        terms: TaxTerms,
    ) -> StoreResult<Tax> {
        let seq = self.org_seq(org).await?;
        let code = code.to_owned();
        self.writer
            .write(1, move |ctx| taxes::update(ctx.conn, seq, &code, &terms))
            .await
    }

    async fn tax(&self, org: OrganizationId, code: &str) -> StoreResult<Tax> {
        let seq = self.org_seq(org).await?;
        let code = code.to_owned();
        self.reads
            .read(move |conn| taxes::get(conn, seq, &code))
            .await
    }

    async fn list_taxes(&self, org: OrganizationId, page: Page) -> StoreResult<Listed<Tax>> {
        let seq = self.org_seq(org).await?;
        self.reads
            .read(move |conn| taxes::list(conn, seq, page))
            .await
    }

    async fn delete_tax(&self, org: OrganizationId, code: &str) -> StoreResult<Tax> {
        let seq = self.org_seq(org).await?;
        let code = code.to_owned();
        self.writer
            .write(1, move |ctx| taxes::delete(ctx.conn, seq, &code))
            .await
    }

    async fn set_taxes(
        &self,
        org: OrganizationId,
        owner_kind: &'static str,
        owner: uuid::Uuid,
        codes: Vec<String>,
    ) -> StoreResult<()> {
        let seq = self.org_seq(org).await?;
        self.writer
            .write(1, move |ctx| {
                taxes::set_links(ctx.conn, seq, owner_kind, &owner.to_string(), &codes)
            })
            .await
    }

    async fn taxes_of(
        &self,
        _org: OrganizationId,
        owner_kind: &'static str,
        owner: uuid::Uuid,
    ) -> StoreResult<Vec<Tax>> {
        self.reads
            .read(move |conn| {
                Ok(taxes::of(conn, owner_kind, &owner.to_string())?
                    .into_iter()
                    .map(|(_, t)| t)
                    .collect())
            })
            .await
    }

    async fn create_add_on(&self, org: OrganizationId, draft: AddOnDraft) -> StoreResult<AddOn> {
        let seq = self.org_seq(org).await?;
        self.writer
            .write(1, move |ctx| add_ons::create(ctx.conn, seq, &draft))
            .await
    }

    async fn update_add_on(
        &self,
        org: OrganizationId,
        code: &str,
        draft: AddOnDraft,
    ) -> StoreResult<AddOn> {
        let seq = self.org_seq(org).await?;
        let code = code.to_owned();
        self.writer
            .write(1, move |ctx| add_ons::update(ctx.conn, seq, &code, &draft))
            .await
    }

    async fn add_on(&self, org: OrganizationId, code: &str) -> StoreResult<AddOn> {
        let seq = self.org_seq(org).await?;
        let code = code.to_owned();
        self.reads
            .read(move |conn| add_ons::get(conn, seq, &code))
            .await
    }

    async fn list_add_ons(&self, org: OrganizationId, page: Page) -> StoreResult<Listed<AddOn>> {
        let seq = self.org_seq(org).await?;
        self.reads
            .read(move |conn| add_ons::list(conn, seq, page))
            .await
    }

    async fn delete_add_on(&self, org: OrganizationId, code: &str) -> StoreResult<AddOn> {
        let seq = self.org_seq(org).await?;
        let code = code.to_owned();
        self.writer
            .write(1, move |ctx| add_ons::delete(ctx.conn, seq, &code))
            .await
    }

    async fn create_one_off_invoice(
        &self,
        org: OrganizationId,
        request: NewOneOffInvoice,
        at: Timestamp,
    ) -> StoreResult<Invoice> {
        let seq = self.org_seq(org).await?;
        self.writer
            .write(1, move |ctx| one_off::create(ctx.conn, seq, &request, at))
            .await
    }

    async fn create_coupon(&self, org: OrganizationId, terms: CouponTerms) -> StoreResult<Coupon> {
        let seq = self.org_seq(org).await?;
        self.writer
            .write(1, move |ctx| coupons::create(ctx.conn, seq, &terms))
            .await
    }

    async fn coupon(&self, org: OrganizationId, code: &str) -> StoreResult<Coupon> {
        let seq = self.org_seq(org).await?;
        let code = code.to_owned();
        self.reads
            .read(move |conn| coupons::get(conn, seq, &code))
            .await
    }

    async fn list_coupons(&self, org: OrganizationId, page: Page) -> StoreResult<Listed<Coupon>> {
        let seq = self.org_seq(org).await?;
        self.reads
            .read(move |conn| coupons::list(conn, seq, page))
            .await
    }

    async fn terminate_coupon(
        &self,
        org: OrganizationId,
        code: &str,
        at: Timestamp,
    ) -> StoreResult<Coupon> {
        let seq = self.org_seq(org).await?;
        let code = code.to_owned();
        self.writer
            .write(1, move |ctx| coupons::terminate(ctx.conn, seq, &code, at))
            .await
    }

    async fn apply_coupon(
        &self,
        org: OrganizationId,
        code: &str,
        customer: &ExternalId,
        overrides: CouponOverrides,
        at: Timestamp,
    ) -> StoreResult<AppliedCoupon> {
        let seq = self.org_seq(org).await?;
        let (code, customer) = (code.to_owned(), customer.clone());
        self.writer
            .write(1, move |ctx| {
                coupons::apply(ctx.conn, seq, &code, &customer, &overrides, at)
            })
            .await
    }

    async fn list_applied_coupons(
        &self,
        org: OrganizationId,
        filter: &AppliedCouponFilter,
        page: Page,
    ) -> StoreResult<Listed<AppliedCoupon>> {
        let seq = self.org_seq(org).await?;
        let filter = filter.clone();
        self.reads
            .read(move |conn| coupons::list_applied(conn, seq, &filter, page))
            .await
    }

    async fn remove_applied_coupon(
        &self,
        org: OrganizationId,
        customer: &str,
        id: uuid::Uuid,
        at: Timestamp,
    ) -> StoreResult<AppliedCoupon> {
        let seq = self.org_seq(org).await?;
        let customer = customer.to_owned();
        self.writer
            .write(1, move |ctx| {
                coupons::remove(ctx.conn, seq, &customer, id, at)
            })
            .await
    }

    async fn create_wallet(
        &self,
        org: OrganizationId,
        request: NewWallet,
        at: Timestamp,
    ) -> StoreResult<(Wallet, Vec<WalletTransaction>)> {
        let seq = self.org_seq(org).await?;
        self.writer
            .write(1, move |ctx| wallets::create(ctx.conn, seq, &request, at))
            .await
    }

    async fn wallet(&self, org: OrganizationId, id: uuid::Uuid) -> StoreResult<Wallet> {
        let seq = self.org_seq(org).await?;
        self.reads
            .read(move |conn| wallets::get(conn, seq, id))
            .await
    }

    async fn list_wallets(
        &self,
        org: OrganizationId,
        customer: &str,
        page: Page,
    ) -> StoreResult<Listed<Wallet>> {
        let seq = self.org_seq(org).await?;
        let customer = customer.to_owned();
        self.reads
            .read(move |conn| wallets::list(conn, seq, &customer, page))
            .await
    }

    async fn terminate_wallet(
        &self,
        org: OrganizationId,
        id: uuid::Uuid,
        at: Timestamp,
    ) -> StoreResult<Wallet> {
        let seq = self.org_seq(org).await?;
        self.writer
            .write(1, move |ctx| wallets::terminate(ctx.conn, seq, id, at))
            .await
    }

    async fn top_up_wallet(
        &self,
        org: OrganizationId,
        id: uuid::Uuid,
        top_up: TopUp,
        at: Timestamp,
    ) -> StoreResult<Vec<WalletTransaction>> {
        let seq = self.org_seq(org).await?;
        self.writer
            .write(1, move |ctx| {
                wallets::top_up(ctx.conn, seq, id, &top_up, at)
            })
            .await
    }

    async fn wallet_transactions(
        &self,
        org: OrganizationId,
        wallet: uuid::Uuid,
        page: Page,
    ) -> StoreResult<Listed<WalletTransaction>> {
        let seq = self.org_seq(org).await?;
        self.reads
            .read(move |conn| wallets::transactions(conn, seq, wallet, page))
            .await
    }

    async fn wallet_transaction(
        &self,
        org: OrganizationId,
        id: uuid::Uuid,
    ) -> StoreResult<WalletTransaction> {
        let seq = self.org_seq(org).await?;
        self.reads
            .read(move |conn| wallets::transaction_by_id(conn, seq, id))
            .await
    }

    async fn past_usage(
        &self,
        org: OrganizationId,
        customer: &str,
        subscription: &str,
        metric: Option<&str>,
        periods: usize,
    ) -> StoreResult<Vec<PastUsage>> {
        let seq = self.org_seq(org).await?;
        let (customer, subscription) = (customer.to_owned(), subscription.to_owned());
        let metric = metric.map(str::to_owned);
        self.reads
            .read(move |conn| {
                past_usage::past_usage(
                    conn,
                    seq,
                    &customer,
                    &subscription,
                    metric.as_deref(),
                    periods,
                )
            })
            .await
    }

    async fn create_credit_note(
        &self,
        org: OrganizationId,
        request: NewCreditNote,
        at: Timestamp,
    ) -> StoreResult<CreditNote> {
        let seq = self.org_seq(org).await?;
        self.writer
            .write(1, move |ctx| {
                credit_notes::create(ctx.conn, seq, &request, at)
            })
            .await
    }

    async fn estimate_credit_note(
        &self,
        org: OrganizationId,
        request: NewCreditNote,
    ) -> StoreResult<CreditNoteEstimate> {
        let seq = self.org_seq(org).await?;
        self.reads
            .read(move |conn| credit_notes::estimate(conn, seq, &request))
            .await
    }

    async fn credit_note(&self, org: OrganizationId, id: uuid::Uuid) -> StoreResult<CreditNote> {
        let seq = self.org_seq(org).await?;
        self.reads
            .read(move |conn| credit_notes::get(conn, seq, id))
            .await
    }

    async fn list_credit_notes(
        &self,
        org: OrganizationId,
        customer: Option<&str>,
        page: Page,
    ) -> StoreResult<Listed<CreditNote>> {
        let seq = self.org_seq(org).await?;
        let customer = customer.map(str::to_owned);
        self.reads
            .read(move |conn| credit_notes::list(conn, seq, customer.as_deref(), page))
            .await
    }

    async fn void_credit_note(
        &self,
        org: OrganizationId,
        id: uuid::Uuid,
        at: Timestamp,
    ) -> StoreResult<CreditNote> {
        let seq = self.org_seq(org).await?;
        self.writer
            .write(1, move |ctx| credit_notes::void(ctx.conn, seq, id, at))
            .await
    }

    async fn record_events(
        &self,
        org: OrganizationId,
        events: Vec<NewEvent>,
        atomicity: Atomicity,
    ) -> StoreResult<Vec<EventOutcome>> {
        if self.ingest_lock.lock().map_or(true, |lock| lock.is_none()) {
            return Err(StoreError::Config(
                "this store was opened without ingest; events are recorded by the server".into(),
            ));
        }
        let seq = self.org_seq(org).await?;
        let weight = events.len();
        self.writer
            .write(weight, move |ctx| {
                let outcomes = events::record(ctx.conn, ctx.keys, &mut ctx.rollups, seq, events)?;
                let refused = outcomes
                    .iter()
                    .any(|o| matches!(o, EventOutcome::Conflict(_)));
                if refused && atomicity == Atomicity::AllOrNothing {
                    ctx.discard = true;
                }
                Ok(outcomes)
            })
            .await
    }

    async fn event(
        &self,
        org: OrganizationId,
        source: Option<&str>,
        transaction_id: &str,
    ) -> StoreResult<StoredEvent> {
        let seq = self.org_seq(org).await?;
        let key = tally_core::event::key_hash(org, source, transaction_id);
        let (source, transaction_id) = (source.map(str::to_owned), transaction_id.to_owned());
        self.reads
            .read(move |conn| {
                events::by_key(conn, seq, key, source.as_deref(), &transaction_id)?
                    .ok_or(StoreError::NotFound("event"))
            })
            .await
    }

    async fn list_events(
        &self,
        org: OrganizationId,
        filter: &EventFilter,
        page: Page,
    ) -> StoreResult<Listed<StoredEvent>> {
        let seq = self.org_seq(org).await?;
        let filter = filter.clone();
        self.reads
            .read(move |conn| events::list(conn, seq, &filter, page))
            .await
    }

    async fn query_usage(
        &self,
        org: OrganizationId,
        query: &UsageQuery,
    ) -> StoreResult<Vec<UsageRow>> {
        let seq = self.org_seq(org).await?;
        let query = query.clone();
        self.reads
            .read(move |conn| usage::query(conn, seq, &query))
            .await
    }

    async fn rebuild_rollups(&self, org: OrganizationId) -> StoreResult<RebuildReport> {
        let seq = self.org_seq(org).await?;
        self.writer
            .write_rebuilding(move |ctx| rollups::rebuild_all(ctx.conn, seq))
            .await
    }

    async fn rollup_rows(&self, org: OrganizationId) -> StoreResult<Vec<RollupRow>> {
        let seq = self.org_seq(org).await?;
        self.reads
            .read(move |conn| rollups::all_rows(conn, seq))
            .await
    }

    async fn close(&self) {
        self.writer.close().await;
        if let Ok(mut checkpointer) = self.checkpointer.lock() {
            checkpointer.stop();
        }
        if let Ok(mut lock) = self.ingest_lock.lock() {
            lock.take();
        }
    }
}

/// The wall clock, for bookkeeping columns (`created_at`); billing time never comes from here.
pub(crate) fn now() -> tally_core::Timestamp {
    tally_core::Timestamp::from_datetime(chrono::Utc::now())
}

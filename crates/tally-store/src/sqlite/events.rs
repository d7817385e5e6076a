//! Events: idempotent recording, billing assessment, lookups and listing.

use std::collections::{HashMap, HashSet};
use std::str::FromStr;

use rusqlite::types::Value as SqlValue;
use rusqlite::{Connection, OptionalExtension, Row, params};
use rust_decimal::Decimal;
use serde_json::{Map, Value};
use tally_core::event::{BillingIssue, NewEvent};
use tally_core::id::CustomerId;
use tally_core::metric::{MetricDefinition, Reading};
use tally_core::page::Page;
use tally_core::time::Timestamp;

use super::billable_metrics;
use super::customers;
use super::keys::{KeyIndex, find_unfiltered, generation_of};
use super::listing::Filtered;
use super::orgs::parse_uuid;
use super::rollups::RollupBuffer;
use crate::error::StoreResult;
use crate::types::{EventFilter, EventOutcome, Listed, StoredEvent, StoredIssue};

/// What the metrics of an event code take from one event, and why it cannot be billed, if so.
pub(super) struct Assessment {
    pub(super) readings: Vec<(i64, Reading)>,
    pub(super) issue: Option<BillingIssue>,
    /// The subject: as sent, or the customer of the subscription the event names.
    pub(super) subject: Option<String>,
}

/// Remembers which subjects are customers and which subscriptions exist, within one write.
pub(super) struct CustomerCheck {
    org: i64,
    known: HashMap<String, Option<CustomerId>>,
    subscriptions: HashMap<String, Option<String>>,
}

impl CustomerCheck {
    pub(super) fn new(org: i64) -> Self {
        CustomerCheck {
            org,
            known: HashMap::new(),
            subscriptions: HashMap::new(),
        }
    }

    /// Returns the external id of the customer of the latest subscription with this external id.
    fn subscription_customer(
        &mut self,
        conn: &Connection,
        external_id: &str,
    ) -> StoreResult<Option<String>> {
        if let Some(known) = self.subscriptions.get(external_id) {
            return Ok(known.clone());
        }
        let mut stmt = conn.prepare_cached(
            "SELECT c.external_id FROM subscriptions s JOIN customers c ON c.id = s.customer
             WHERE s.org = ?1 AND s.external_id = ?2 ORDER BY s.seq DESC LIMIT 1",
        )?;
        let customer: Option<String> = stmt
            .query_row(rusqlite::params![self.org, external_id], |row| row.get(0))
            .optional()?;
        self.subscriptions
            .insert(external_id.to_owned(), customer.clone());
        Ok(customer)
    }

    fn id(&mut self, conn: &Connection, subject: &str) -> StoreResult<Option<CustomerId>> {
        if let Some(known) = self.known.get(subject) {
            return Ok(*known);
        }
        let id = customers::id_of(conn, self.org, subject)?;
        self.known.insert(subject.to_owned(), id);
        Ok(id)
    }
}

/// Reads an event with every metric of its code. Metering does not depend on billing: every reading
/// counts in rollups even when the event has an issue (an unknown customer, or another metric that
/// cannot read it). The issue reported is the first found: unknown code, then a metric's, then the
/// subject's.
pub(super) fn assess(
    conn: &Connection,
    metrics: &[(i64, MetricDefinition)],
    properties: &Map<String, Value>,
    at: Timestamp,
    subject: Option<&str>,
    subscription: Option<&str>,
    customers: &mut CustomerCheck,
) -> StoreResult<Assessment> {
    let mut readings = Vec::with_capacity(metrics.len());
    let mut issue = metrics.is_empty().then_some(BillingIssue::UnknownCode);
    for (seq, metric) in metrics {
        match metric.read(properties, at) {
            Ok(Some(reading)) => readings.push((*seq, reading)),
            Ok(None) => {}
            Err(problem) => {
                issue.get_or_insert(BillingIssue::InvalidProperty {
                    metric: metric.code.clone(),
                    problem,
                });
            }
        }
    }
    // An event naming a subscription belongs to that subscription's customer, whatever customer it
    // names (the payload keeps what was sent); one naming only a customer needs that customer to
    // exist.
    let (resolved, party_issue) = match subscription {
        Some(subscription) => match customers.subscription_customer(conn, subscription)? {
            Some(customer) => (Some(customer), None),
            None => (
                subject.map(str::to_owned),
                Some(BillingIssue::SubscriptionNotFound),
            ),
        },
        None => match subject {
            Some(subject) if customers.id(conn, subject)?.is_none() => (
                Some(subject.to_owned()),
                Some(BillingIssue::CustomerNotFound),
            ),
            Some(subject) => (Some(subject.to_owned()), None),
            None => (None, Some(BillingIssue::CustomerNotFound)),
        },
    };
    if issue.is_none() {
        issue = party_issue;
    }
    Ok(Assessment {
        readings,
        issue,
        subject: resolved,
    })
}

/// The `lago_id` of an event: a UUID (version 8) derived from the organization and the ingest
/// sequence by a 128-bit hash, so it is stable without being stored and says nothing about volumes.
pub(super) fn event_uuid(org: i64, seq: i64) -> uuid::Uuid {
    let mut bytes = [0u8; 16];
    bytes[..8].copy_from_slice(&org.to_be_bytes());
    bytes[8..].copy_from_slice(&seq.to_be_bytes());
    let digest = xxhash_rust::xxh3::xxh3_128(&bytes).to_be_bytes();
    uuid::Builder::from_custom_bytes(digest).into_uuid()
}

/// Records events in order; see [`crate::Store::record_events`].
pub(super) fn record(
    conn: &Connection,
    keys: &mut KeyIndex,
    rollups: &mut RollupBuffer,
    org: i64,
    events: Vec<NewEvent>,
) -> StoreResult<Vec<EventOutcome>> {
    let mut metrics: HashMap<String, Vec<(i64, MetricDefinition)>> = HashMap::new();
    let mut keeping: HashMap<String, Vec<i64>> = HashMap::new();
    let mut customers = CustomerCheck::new(org);
    let mut insert_key = conn.prepare_cached(
        "INSERT INTO event_keys (generation, key_hash, payload_hash, event_id) VALUES (?1, ?2, ?3, ?4)",
    )?;
    let mut insert_event = conn.prepare_cached(
        "INSERT INTO events (org, key_hash, source, transaction_id, code, subject, external_subscription_id,
            timestamp, received_at, properties, original, precise_total_amount_cents, issue, issue_detail)
         VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12, ?13, ?14)",
    )?;
    let mut outcomes = Vec::with_capacity(events.len());
    // Customers whose billable usage changed: their drafts are marked for a refresh.
    let mut touched: HashSet<uuid::Uuid> = HashSet::new();
    for event in events {
        if let Some((payload_hash, id)) = keys.find(conn, event.key_hash)? {
            let stored = by_seq(conn, id)?;
            let same_key = stored.source == event.source
                && stored.transaction_id == event.transaction_id.as_str();
            if !same_key {
                tracing::warn!(
                    key_hash = event.key_hash,
                    "idempotency fingerprint collision; event refused"
                );
            }
            outcomes.push(if same_key && payload_hash == event.payload_hash {
                EventOutcome::Duplicate(stored)
            } else {
                EventOutcome::Conflict(stored)
            });
            continue;
        }
        let code = event.code.as_str();
        if !metrics.contains_key(code) {
            let (reading, keeps) = billable_metrics::reading_and_keeping(conn, org, code)?;
            metrics.insert(code.to_owned(), reading);
            keeping.insert(code.to_owned(), keeps);
        }
        let subscription = event.external_subscription_id.as_ref().map(|s| s.as_str());
        let Assessment {
            readings,
            issue,
            subject,
        } = assess(
            conn,
            metrics.get(code).map_or(&[][..], Vec::as_slice),
            &event.properties,
            event.timestamp,
            event.subject.as_ref().map(|s| s.as_str()),
            subscription,
            &mut customers,
        )?;
        let subject = subject.as_deref();
        let properties = serde_json::to_string(&event.properties).unwrap_or_else(|_| "{}".into());
        let stored_issue = issue.as_ref().map(StoredIssue::from);
        insert_event.execute(params![
            org,
            event.key_hash,
            event.source,
            event.transaction_id.as_str(),
            code,
            subject,
            subscription,
            event.timestamp.micros(),
            event.received_at.micros(),
            properties,
            event.original,
            event.precise_total_amount_cents.map(|d| d.to_string()),
            stored_issue.as_ref().map(|i| i.code.as_str()),
            stored_issue.as_ref().map(|i| i.detail.as_str()),
        ])?;
        let seq = conn.last_insert_rowid();
        let generation = generation_of(seq);
        insert_key.execute(params![generation, event.key_hash, event.payload_hash, seq])?;
        keys.insert(event.key_hash, generation);
        let keeps = keeping.get(code).map_or(&[][..], Vec::as_slice);
        for (metric, reading) in &readings {
            rollups.add(
                org,
                *metric,
                subject.unwrap_or(""),
                subscription.unwrap_or(""),
                reading,
                event.timestamp,
                seq,
                keeps.contains(metric),
            )?;
        }
        let (code, subject, subscription) = (
            code.to_owned(),
            subject.map(str::to_owned),
            subscription.map(str::to_owned),
        );
        let customer_id = match &subject {
            Some(subject) => customers.id(conn, subject)?.map(|c| c.0),
            None => None,
        };
        if let Some(customer) = customer_id
            && !readings.is_empty()
        {
            touched.insert(customer);
        }
        outcomes.push(EventOutcome::Stored(StoredEvent {
            seq,
            id: event_uuid(org, seq),
            customer_id,
            source: event.source,
            transaction_id: event.transaction_id.as_str().to_owned(),
            code,
            subject,
            external_subscription_id: subscription,
            timestamp: event.timestamp,
            received_at: event.received_at,
            properties: event.properties,
            original: event
                .original
                .as_deref()
                .and_then(|o| serde_json::from_str(o).ok()),
            precise_total_amount_cents: event.precise_total_amount_cents,
            issue: stored_issue,
        }));
    }
    mark_drafts(conn, &touched)?;
    Ok(outcomes)
}

/// Marks the drafts of customers whose usage changed, so the billing clock recomputes them (a late
/// event lands on the invoice still in its grace period). Recomputing an unchanged draft is harmless,
/// so the mark is per customer, not per period.
fn mark_drafts(conn: &Connection, customers: &HashSet<uuid::Uuid>) -> StoreResult<()> {
    if customers.is_empty() {
        return Ok(());
    }
    let mut mark = conn.prepare_cached(
        "UPDATE invoices SET needs_refresh = 1 WHERE customer = ?1 AND status = 'draft' AND needs_refresh = 0",
    )?;
    for customer in customers {
        mark.execute([customer.to_string()])?;
    }
    Ok(())
}

const COLUMNS: &str =
    "id, org, source, transaction_id, code, subject, external_subscription_id, timestamp,
    received_at, properties, original, precise_total_amount_cents, issue, issue_detail,
    (SELECT c.id FROM customers c WHERE c.org = events.org AND c.external_id = events.subject AND c.deleted_at IS NULL)";

fn from_row(row: &Row<'_>) -> rusqlite::Result<StoredEvent> {
    let seq: i64 = row.get(0)?;
    let org: i64 = row.get(1)?;
    let properties: String = row.get(9)?;
    let original: Option<String> = row.get(10)?;
    let precise: Option<String> = row.get(11)?;
    let issue: Option<String> = row.get(12)?;
    let customer: Option<String> = row.get(14)?;
    Ok(StoredEvent {
        seq,
        id: event_uuid(org, seq),
        customer_id: customer.map(|c| parse_uuid(&c)).transpose()?,
        source: row.get(2)?,
        transaction_id: row.get(3)?,
        code: row.get(4)?,
        subject: row.get(5)?,
        external_subscription_id: row.get(6)?,
        timestamp: Timestamp::from_micros(row.get(7)?),
        received_at: Timestamp::from_micros(row.get(8)?),
        properties: serde_json::from_str(&properties).unwrap_or_default(),
        original: original.and_then(|o| serde_json::from_str(&o).ok()),
        precise_total_amount_cents: precise.and_then(|p| Decimal::from_str(&p).ok()),
        issue: issue.map(|code| StoredIssue {
            code,
            detail: row
                .get::<_, Option<String>>(13)
                .ok()
                .flatten()
                .unwrap_or_default(),
        }),
    })
}

fn by_seq(conn: &Connection, seq: i64) -> StoreResult<StoredEvent> {
    let mut stmt = conn.prepare_cached(&format!("SELECT {COLUMNS} FROM events WHERE id = ?1"))?;
    Ok(stmt.query_row([seq], from_row)?)
}

/// Finds an event by its idempotency key.
pub(super) fn by_key(
    conn: &Connection,
    org: i64,
    key_hash: i64,
    source: Option<&str>,
    transaction_id: &str,
) -> StoreResult<Option<StoredEvent>> {
    let Some(id) = find_unfiltered(conn, key_hash)? else {
        return Ok(None);
    };
    let mut stmt = conn.prepare_cached(&format!(
        "SELECT {COLUMNS} FROM events WHERE id = ?1 AND org = ?2"
    ))?;
    let event = stmt.query_row(params![id, org], from_row).optional()?;
    Ok(event.filter(|e| e.source.as_deref() == source && e.transaction_id == transaction_id))
}

/// Lists events newest first.
pub(super) fn list(
    conn: &Connection,
    org: i64,
    filter: &EventFilter,
    page: Page,
) -> StoreResult<Listed<StoredEvent>> {
    let mut query = Filtered::new("org = ?", SqlValue::Integer(org));
    for (column, value) in [
        ("code", &filter.code),
        ("subject", &filter.subject),
        ("external_subscription_id", &filter.external_subscription_id),
    ] {
        if let Some(value) = value {
            query.and(format!("{column} = ?"), [SqlValue::Text(value.clone())]);
        }
    }
    if let Some(from) = filter.from {
        query.and("timestamp >= ?", [SqlValue::Integer(from.micros())]);
    }
    if let Some(to) = filter.to {
        query.and("timestamp <= ?", [SqlValue::Integer(to.micros())]);
    }
    match filter.billable {
        Some(false) => query.and("issue IS NOT NULL", []),
        Some(true) => query.and("issue IS NULL", []),
        None => {}
    }
    query.page(conn, "events", COLUMNS, "id DESC", page, from_row)
}

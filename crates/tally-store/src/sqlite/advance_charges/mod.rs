//! Pay-in-advance charges: the billing clock reads the event log after a durable watermark, in bounded
//! chunks, and bills every event to the pay-in-advance charges of the subscription it belongs to: one
//! fee per (charge, event), priced by `tally_core::billing::advance` against the running usage of its
//! bucket in its charges period, and, for invoiceable charges, an invoice of its own.
//!
//! Exactly once: the `advance_fees` primary key (charge, event), the fee, its invoice, the running
//! usage and the watermark are written in one transaction, so a crash leaves all or nothing and a
//! retry or a second process finds the work done. Nothing here runs on the ingest path.

mod buckets;
mod carried;
mod estimate;
mod invoicing;

use std::collections::hash_map::Entry;
use std::collections::{HashMap, HashSet};

use rusqlite::{Connection, OptionalExtension, params};
use serde_json::{Map, Value};
use tally_core::id::InvoiceId;
use tally_core::plan::Charge;
use tally_core::time::Timestamp;

use super::billable_metrics;
use super::billing::{self, Billed};
use crate::error::StoreResult;
use crate::types::Metric;
use buckets::{keep_running, price};
use invoicing::{fee_taxes, insert_fee, invoice_fee};

pub(super) use carried::carried_fees;
pub(super) use estimate::estimate;

/// Event ids looked at per chunk, at most.
const SCAN: i64 = 50_000;
/// Events billed per chunk, at most (each may make an invoice).
const EVENTS_PER_CHUNK: usize = 500;

/// What one chunk did.
pub(super) struct Chunk {
    /// The invoices it made, in the order of their events.
    pub(super) invoices: Vec<InvoiceId>,
    /// Whether the watermark reached the id the caller asked for.
    pub(super) done: bool,
}

/// Returns the id of the newest event stored (0 when there is none).
pub(super) fn newest_event(conn: &Connection) -> StoreResult<i64> {
    Ok(
        conn.query_row("SELECT COALESCE(MAX(id), 0) FROM events", [], |row| {
            row.get(0)
        })?,
    )
}

/// Bills the next chunk of events after the watermark, up to the event `until` at most, and moves
/// the watermark past them, in the caller's transaction.
pub(super) fn bill_chunk(conn: &Connection, until: i64, now_at: Timestamp) -> StoreResult<Chunk> {
    let last: i64 = conn.query_row(
        "SELECT last_event FROM advance_progress WHERE id = 1",
        [],
        |row| row.get(0),
    )?;
    if last >= until {
        return Ok(Chunk {
            invoices: Vec::new(),
            done: true,
        });
    }
    let codes = advance_codes(conn)?;
    // Without any pay-in-advance charge there is nothing to look at: the watermark jumps.
    let mut reached = if codes.is_empty() {
        until
    } else {
        (last + SCAN).min(until)
    };
    let mut matched = Vec::new();
    if !codes.is_empty() {
        let mut stmt = conn.prepare_cached(
            "SELECT id, org, code FROM events WHERE id > ?1 AND id <= ?2 ORDER BY id",
        )?;
        let mut rows = stmt.query(params![last, reached])?;
        while let Some(row) = rows.next()? {
            let (id, org, code): (i64, i64, String) = (row.get(0)?, row.get(1)?, row.get(2)?);
            if codes.contains(&(org, code)) {
                matched.push(id);
                if matched.len() == EVENTS_PER_CHUNK {
                    reached = id;
                    break;
                }
            }
        }
    }
    let mut cache = Cache::default();
    let mut invoices = Vec::new();
    for id in matched {
        let event = event_by_id(conn, id)?;
        invoices.extend(bill_event(conn, &mut cache, &event, now_at)?);
    }
    conn.execute(
        "UPDATE advance_progress SET last_event = ?1 WHERE id = 1",
        [reached],
    )?;
    Ok(Chunk {
        invoices,
        done: reached >= until,
    })
}

/// The (organization, event code) pairs some live pay-in-advance charge bills.
fn advance_codes(conn: &Connection) -> StoreResult<HashSet<(i64, String)>> {
    let mut stmt = conn.prepare_cached(
        "SELECT DISTINCT p.org, m.event_type FROM charges c
         JOIN plans p ON p.seq = c.plan JOIN billable_metrics m ON m.seq = c.metric
         WHERE c.pay_in_advance = 1 AND c.deleted_at IS NULL AND m.deleted_at IS NULL",
    )?;
    let codes = stmt
        .query_map([], |row| Ok((row.get(0)?, row.get(1)?)))?
        .collect::<rusqlite::Result<_>>()?;
    Ok(codes)
}

/// An event as pay-in-advance billing reads it.
struct Event {
    id: i64,
    org: i64,
    code: String,
    subject: Option<String>,
    external_subscription_id: Option<String>,
    at: Timestamp,
    properties: Map<String, Value>,
    transaction_id: String,
}

fn event_by_id(conn: &Connection, id: i64) -> StoreResult<Event> {
    let mut stmt = conn.prepare_cached(
        "SELECT org, code, subject, external_subscription_id, timestamp, properties, transaction_id
         FROM events WHERE id = ?1",
    )?;
    Ok(stmt.query_row([id], |row| {
        let properties: String = row.get(5)?;
        Ok(Event {
            id,
            org: row.get(0)?,
            code: row.get(1)?,
            subject: row.get(2)?,
            external_subscription_id: row.get(3)?,
            at: Timestamp::from_micros(row.get(4)?),
            properties: serde_json::from_str(&properties).unwrap_or_default(),
            transaction_id: row.get(6)?,
        })
    })?)
}

/// Subscriptions and metrics read once per chunk.
#[derive(Default)]
struct Cache {
    billed: HashMap<i64, Billed>,
    metrics: HashMap<uuid::Uuid, Option<Metric>>,
}

impl Cache {
    fn billed(&mut self, conn: &Connection, seq: i64) -> StoreResult<&Billed> {
        Ok(match self.billed.entry(seq) {
            Entry::Occupied(found) => found.into_mut(),
            Entry::Vacant(slot) => slot.insert(Billed::load(conn, seq)?),
        })
    }

    fn metric(
        &mut self,
        conn: &Connection,
        org: i64,
        id: uuid::Uuid,
    ) -> StoreResult<Option<Metric>> {
        let found = match self.metrics.entry(id) {
            Entry::Occupied(found) => found.into_mut(),
            Entry::Vacant(slot) => {
                slot.insert(billable_metrics::by_id_with_seq(conn, org, id)?.map(|(_, m)| m))
            }
        };
        Ok(found.clone())
    }
}

/// Finds the subscription an event belongs to: the one it names, or the customer's only one, whose
/// life (from `started_at`, up to `terminated_at` excluded) holds the event's time.
fn subscription_of(conn: &Connection, event: &Event) -> StoreResult<Option<i64>> {
    const LIFE: &str = "status IN ('active', 'terminated') AND started_at <= ?3
        AND (terminated_at IS NULL OR terminated_at > ?3) ORDER BY seq DESC LIMIT 1";
    let at = event.at.micros();
    if let Some(external_id) = &event.external_subscription_id {
        let mut stmt = conn.prepare_cached(&format!(
            "SELECT seq FROM subscriptions WHERE org = ?1 AND external_id = ?2 AND {LIFE}"
        ))?;
        return Ok(stmt
            .query_row(params![event.org, external_id, at], |row| row.get(0))
            .optional()?);
    }
    let Some(subject) = &event.subject else {
        return Ok(None);
    };
    let mut stmt = conn.prepare_cached(&format!(
        "SELECT seq FROM subscriptions WHERE org = ?1 AND customer =
            (SELECT id FROM customers WHERE org = ?1 AND external_id = ?2 AND deleted_at IS NULL)
         AND {LIFE}"
    ))?;
    Ok(stmt
        .query_row(params![event.org, subject, at], |row| row.get(0))
        .optional()?)
}

/// Bills one event to every pay-in-advance charge of its subscription that reads it; returns the
/// invoices made.
fn bill_event(
    conn: &Connection,
    cache: &mut Cache,
    event: &Event,
    now_at: Timestamp,
) -> StoreResult<Vec<InvoiceId>> {
    let Some(seq) = subscription_of(conn, event)? else {
        return Ok(Vec::new());
    };
    let charges: Vec<Charge> = {
        let billed = cache.billed(conn, seq)?;
        // Events naming only a customer belong to it only while it has a single subscription.
        if event.external_subscription_id.is_none() && !billed.takes_customer_events {
            return Ok(Vec::new());
        }
        billed
            .plan
            .charges
            .iter()
            .filter(|c| c.terms.pay_in_advance)
            .cloned()
            .collect()
    };
    let mut invoices = Vec::new();
    for charge in &charges {
        let org = cache.billed(conn, seq)?.org;
        let Some(metric) = cache.metric(conn, org, charge.metric_id.0)? else {
            continue;
        };
        if metric.definition.event_type.as_str() != event.code {
            continue;
        }
        let Ok(Some(reading)) = metric.definition.read(&event.properties, event.at) else {
            continue;
        };
        let claimed: bool = conn
            .prepare_cached("SELECT 1 FROM advance_fees WHERE charge = ?1 AND event = ?2")?
            .exists(params![charge.id.0.to_string(), event.id])?;
        if claimed {
            continue;
        }
        let billed = cache.billed(conn, seq)?;
        let Some(priced) = price(conn, billed, seq, charge, &metric, &reading, event.at)? else {
            continue;
        };
        keep_running(conn, &priced)?;
        let mut stored = billing::label_charge_fee(charge, &metric, priced.fee);
        stored.event_transaction_id = Some(event.transaction_id.clone());
        let invoice = if charge.terms.invoiceable && stored.fee.amount_cents > 0 {
            Some(invoice_fee(
                conn,
                billed,
                &stored,
                priced.period,
                event.at,
                now_at,
            )?)
        } else {
            stored.taxes = fee_taxes(conn, billed, &stored)?;
            None
        };
        insert_fee(
            conn,
            billed,
            seq,
            event,
            charge,
            &stored,
            invoice.map(|(s, _)| s),
        )?;
        invoices.extend(invoice.map(|(_, id)| id));
    }
    Ok(invoices)
}

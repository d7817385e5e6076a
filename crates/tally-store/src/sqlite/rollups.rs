//! Rollups: per-minute and per-hour aggregate states, kept in the same transaction as events.
//!
//! Each write job folds its events into a [`RollupBuffer`] in memory. The writer merges the buffer of
//! every job that succeeded into one buffer per commit group and writes it into the stored rows just
//! before the group commits, so a rolled-back job leaves no rollup behind, many requests for the same
//! customer and minute cost one row write, and an acknowledged event is visible to the next query.
//! Rebuilding recomputes the same rows from raw events.
//!
//! Unique counts, and percentage charges with per-event terms, cannot use a merged state: each event's
//! value is kept instead, in `event_values`, written with the rollups and keyed by subject so that a
//! customer's period is one range of rows (migrations 17 and 18).

use std::collections::HashMap;
use std::str::FromStr;

use rusqlite::{Connection, Row, params};
use rust_decimal::Decimal;
use serde_json::{Map, Value};
use tally_core::aggregation::{AggState, Latest};
use tally_core::metric::{Operation, Reading};
use tally_core::time::Timestamp;

use super::billable_metrics;
use super::events::{Assessment, CustomerCheck, assess};
use crate::error::{StoreError, StoreResult};
use crate::types::{RebuildReport, RollupRow};

/// Width of minute buckets, in seconds.
const MINUTE: i64 = 60;
/// Width of hour buckets, in seconds.
const HOUR: i64 = 3600;

#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub(super) struct RollupKey {
    org: i64,
    metric: i64,
    width: i64,
    subject: String,
    bucket: i64,
    subscription: String,
    group_key: String,
}

/// One event's value for one metric that keeps them.
struct ValueRow {
    org: i64,
    metric: i64,
    subject: String,
    at: Timestamp,
    seq: i64,
    subscription: String,
    group_key: String,
    value: String,
    operation: Operation,
}

/// Aggregates (and unique-count values) not yet written to stored rows.
#[derive(Default)]
pub(super) struct RollupBuffer {
    states: HashMap<RollupKey, AggState>,
    values: Vec<ValueRow>,
}

/// The stored name of a unique-count operation.
pub(super) fn operation_name(operation: Operation) -> &'static str {
    match operation {
        Operation::Add => "add",
        Operation::Remove => "remove",
    }
}

impl RollupBuffer {
    /// Adds one reading of one metric to its minute bucket (hour buckets are derived at flush), and
    /// keeps the event's value when the metric is a unique count or `keeps` its values.
    #[allow(clippy::too_many_arguments)]
    pub(super) fn add(
        &mut self,
        org: i64,
        metric: i64,
        subject: &str,
        subscription: &str,
        reading: &Reading,
        at: Timestamp,
        seq: i64,
        keeps: bool,
    ) -> StoreResult<()> {
        let kept = match &reading.distinct {
            Some((value, operation)) => Some((value.clone(), *operation)),
            None if keeps => Some((
                reading.value.unwrap_or(Decimal::ONE).to_string(),
                Operation::Add,
            )),
            None => None,
        };
        if let Some((value, operation)) = kept {
            self.values.push(ValueRow {
                org,
                metric,
                subject: subject.to_owned(),
                at,
                seq,
                subscription: subscription.to_owned(),
                group_key: reading.group.as_str().to_owned(),
                value,
                operation,
            });
        }
        let bucket = at.seconds().div_euclid(MINUTE) * MINUTE;
        let key = RollupKey {
            org,
            metric,
            width: MINUTE,
            subject: subject.to_owned(),
            bucket,
            subscription: subscription.to_owned(),
            group_key: reading.group.as_str().to_owned(),
        };
        self.states
            .entry(key)
            .or_insert_with(|| AggState::new(Timestamp::from_seconds(bucket)))
            .add(at, seq, reading.value)
            .map_err(overflow)
    }

    /// Tells whether nothing is buffered.
    pub(crate) fn is_empty(&self) -> bool {
        self.states.is_empty() && self.values.is_empty()
    }

    /// Moves every state of `other` into this buffer.
    pub(crate) fn absorb(&mut self, other: RollupBuffer) -> StoreResult<()> {
        for (key, state) in other.states {
            merge_into(&mut self.states, key, &state)?;
        }
        self.values.extend(other.values);
        Ok(())
    }

    /// Merges every buffered state into the stored minute and hour rows and empties the buffer. The
    /// merge happens in SQL (one upsert per row, with tally's exact decimal functions), so a row is
    /// never read back into Rust.
    pub(crate) fn flush(&mut self, conn: &Connection) -> StoreResult<usize> {
        let mut hours: HashMap<RollupKey, AggState> = HashMap::new();
        for (key, state) in &self.states {
            let hour = RollupKey {
                width: HOUR,
                bucket: key.bucket.div_euclid(HOUR) * HOUR,
                ..key.clone()
            };
            merge_into(&mut hours, hour, state)?;
        }
        let mut upsert = conn.prepare_cached(
            "INSERT INTO rollups (org, metric, width, subject, bucket, subscription, group_key,
                count, sum, min, max, latest_at, latest_seq, latest_value, weighted)
             VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12, ?13, ?14, ?15)
             ON CONFLICT (org, metric, width, subject, bucket, subscription, group_key) DO UPDATE SET
                count = count + excluded.count,
                sum = tally_decimal_add(sum, excluded.sum),
                min = tally_decimal_min(min, excluded.min),
                max = tally_decimal_max(max, excluded.max),
                latest_value = CASE WHEN latest_at IS NULL OR (excluded.latest_at, excluded.latest_seq) > (latest_at, latest_seq)
                    THEN excluded.latest_value ELSE latest_value END,
                latest_seq = CASE WHEN latest_at IS NULL OR (excluded.latest_at, excluded.latest_seq) > (latest_at, latest_seq)
                    THEN excluded.latest_seq ELSE latest_seq END,
                latest_at = CASE WHEN latest_at IS NULL OR (excluded.latest_at, excluded.latest_seq) > (latest_at, latest_seq)
                    THEN excluded.latest_at ELSE latest_at END,
                weighted = tally_decimal_add(weighted, excluded.weighted)",
        )?;
        let mut insert_value = conn.prepare_cached(
            "INSERT OR IGNORE INTO event_values (org, metric, subject, at, seq, subscription,
                group_key, value, operation)
             VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9)",
        )?;
        for row in self.values.drain(..) {
            insert_value.execute(params![
                row.org,
                row.metric,
                row.subject,
                row.at.micros(),
                row.seq,
                row.subscription,
                row.group_key,
                row.value,
                operation_name(row.operation),
            ])?;
        }
        let written = self.states.len() + hours.len();
        for (key, state) in self.states.drain().chain(hours) {
            let latest = state.latest;
            upsert.execute(params![
                key.org,
                key.metric,
                key.width,
                key.subject,
                key.bucket,
                key.subscription,
                key.group_key,
                state.count,
                state.sum.normalize().to_string(),
                state.min.map(|d| d.normalize().to_string()),
                state.max.map(|d| d.normalize().to_string()),
                latest.map(|l| l.at.micros()),
                latest.map(|l| l.seq),
                latest.map(|l| l.value.normalize().to_string()),
                state.weighted.normalize().to_string(),
            ])?;
        }
        Ok(written)
    }
}

/// Registers the exact decimal functions rollup merges use: `tally_decimal_add(a, b)`, and
/// `tally_decimal_min(a, b)` / `tally_decimal_max(a, b)`, which ignore a NULL side. Values are decimal
/// text; results are normalized decimal text.
pub(super) fn register_functions(conn: &Connection) -> rusqlite::Result<()> {
    use rusqlite::functions::{Context, FunctionFlags};
    let flags = FunctionFlags::SQLITE_UTF8 | FunctionFlags::SQLITE_DETERMINISTIC;
    fn arg(ctx: &Context<'_>, index: usize) -> rusqlite::Result<Option<Decimal>> {
        ctx.get::<Option<String>>(index)?
            .map(|t| {
                Decimal::from_str(&t).map_err(|e| rusqlite::Error::UserFunctionError(Box::new(e)))
            })
            .transpose()
    }
    conn.create_scalar_function("tally_decimal_add", 2, flags, |ctx| {
        match (arg(ctx, 0)?, arg(ctx, 1)?) {
            (Some(a), Some(b)) => a
                .checked_add(b)
                .map(|sum| Some(sum.normalize().to_string()))
                .ok_or_else(|| rusqlite::Error::UserFunctionError(overflow_message().into())),
            (a, b) => Ok(a.or(b).map(|d| d.normalize().to_string())),
        }
    })?;
    conn.create_scalar_function("tally_decimal_min", 2, flags, |ctx| {
        Ok(merge_option(arg(ctx, 0)?, arg(ctx, 1)?, Decimal::min))
    })?;
    conn.create_scalar_function("tally_decimal_max", 2, flags, |ctx| {
        Ok(merge_option(arg(ctx, 0)?, arg(ctx, 1)?, Decimal::max))
    })?;
    Ok(())
}

fn merge_option(
    a: Option<Decimal>,
    b: Option<Decimal>,
    pick: fn(Decimal, Decimal) -> Decimal,
) -> Option<String> {
    match (a, b) {
        (Some(a), Some(b)) => Some(pick(a, b)),
        (a, b) => a.or(b),
    }
    .map(|d| d.normalize().to_string())
}

fn overflow_message() -> String {
    tally_core::aggregation::Overflow.to_string()
}

fn overflow(error: tally_core::aggregation::Overflow) -> StoreError {
    StoreError::Database(error.to_string())
}

fn merge_into(
    map: &mut HashMap<RollupKey, AggState>,
    key: RollupKey,
    state: &AggState,
) -> StoreResult<()> {
    match map.entry(key) {
        std::collections::hash_map::Entry::Occupied(mut slot) => {
            slot.get_mut().merge(state).map_err(overflow)
        }
        std::collections::hash_map::Entry::Vacant(slot) => {
            // Measure from the bucket start, as stored rows do.
            let mut fresh = AggState::new(Timestamp::from_seconds(slot.key().bucket));
            fresh.merge(state).map_err(overflow)?;
            slot.insert(fresh);
            Ok(())
        }
    }
}

fn decimal(text: &str, index: usize) -> rusqlite::Result<Decimal> {
    Decimal::from_str(text).map_err(|e| {
        rusqlite::Error::FromSqlConversionFailure(index, rusqlite::types::Type::Text, Box::new(e))
    })
}

/// Reads an aggregate state from 8 columns starting at `first`: count, sum, min, max, latest_at,
/// latest_seq, latest_value, weighted.
pub(super) fn state_from_row(
    row: &Row<'_>,
    first: usize,
    origin: Timestamp,
) -> rusqlite::Result<AggState> {
    let opt = |index: usize| -> rusqlite::Result<Option<Decimal>> {
        row.get::<_, Option<String>>(index)?
            .map(|t| decimal(&t, index))
            .transpose()
    };
    let latest = match (
        row.get::<_, Option<i64>>(first + 4)?,
        row.get::<_, Option<i64>>(first + 5)?,
        opt(first + 6)?,
    ) {
        (Some(at), Some(seq), Some(value)) => Some(Latest {
            at: Timestamp::from_micros(at),
            seq,
            value,
        }),
        _ => None,
    };
    Ok(AggState {
        count: row.get(first)?,
        sum: decimal(&row.get::<_, String>(first + 1)?, first + 1)?,
        min: opt(first + 2)?,
        max: opt(first + 3)?,
        latest,
        weighted: decimal(&row.get::<_, String>(first + 7)?, first + 7)?,
        origin,
    })
}

/// Recomputes the rollups of every live metric reading `event_type`, and the billing issue of every
/// event with that code, from raw events.
pub(super) fn rebuild_event_type(
    conn: &Connection,
    org: i64,
    event_type: &str,
) -> StoreResult<u64> {
    let (metrics, keeping) = billable_metrics::reading_and_keeping(conn, org, event_type)?;
    for (seq, _) in &metrics {
        conn.execute(
            "DELETE FROM rollups WHERE org = ?1 AND metric = ?2",
            params![org, seq],
        )?;
        conn.execute(
            "DELETE FROM event_values WHERE org = ?1 AND metric = ?2",
            params![org, seq],
        )?;
    }
    let mut buffer = RollupBuffer::default();
    let mut customers = CustomerCheck::new(org);
    let mut read = conn.prepare(
        "SELECT id, subject, external_subscription_id, timestamp, properties, issue, issue_detail
         FROM events WHERE org = ?1 AND code = ?2",
    )?;
    let mut set_issue =
        conn.prepare("UPDATE events SET issue = ?2, issue_detail = ?3 WHERE id = ?1")?;
    let mut set_subject = conn.prepare("UPDATE events SET subject = ?2 WHERE id = ?1")?;
    let mut rows = read.query(params![org, event_type])?;
    let mut events = 0;
    while let Some(row) = rows.next()? {
        events += 1;
        let seq: i64 = row.get(0)?;
        let subject: Option<String> = row.get(1)?;
        let subscription: Option<String> = row.get(2)?;
        let at = Timestamp::from_micros(row.get(3)?);
        let properties: Map<String, Value> =
            serde_json::from_str(&row.get::<_, String>(4)?).unwrap_or_default();
        let stored_issue: Option<String> = row.get(5)?;
        let stored_detail: Option<String> = row.get(6)?;
        let Assessment {
            readings,
            issue,
            subject: resolved,
        } = assess(
            conn,
            &metrics,
            &properties,
            at,
            subject.as_deref(),
            subscription.as_deref(),
            &mut customers,
        )?;
        if resolved != subject {
            set_subject.execute(params![seq, resolved])?;
        }
        for (metric, reading) in &readings {
            buffer.add(
                org,
                *metric,
                resolved.as_deref().unwrap_or(""),
                subscription.as_deref().unwrap_or(""),
                reading,
                at,
                seq,
                keeping.contains(metric),
            )?;
        }
        let code = issue.as_ref().map(|i| i.code().to_owned());
        let detail = issue.as_ref().map(ToString::to_string);
        if code != stored_issue || detail != stored_detail {
            set_issue.execute(params![seq, code, detail])?;
        }
    }
    buffer.flush(conn)?;
    Ok(events)
}

/// Recomputes every rollup and billing issue of an organization and reports how many rows changed.
pub(super) fn rebuild_all(conn: &Connection, org: i64) -> StoreResult<RebuildReport> {
    let before = all_rows(conn, org)?;
    let live = billable_metrics::all(conn, org)?;
    // Rows of deleted metrics have no place in a rebuilt table.
    conn.execute(
        "DELETE FROM rollups WHERE org = ?1 AND metric NOT IN (SELECT seq FROM billable_metrics WHERE org = ?1 AND deleted_at IS NULL)",
        [org],
    )?;
    conn.execute(
        "DELETE FROM event_values WHERE org = ?1 AND metric NOT IN (SELECT seq FROM billable_metrics WHERE org = ?1 AND deleted_at IS NULL)",
        [org],
    )?;
    let mut codes: Vec<String> = {
        let mut stmt = conn.prepare("SELECT DISTINCT code FROM events WHERE org = ?1")?;
        stmt.query_map([org], |row| row.get(0))?
            .collect::<rusqlite::Result<_>>()?
    };
    for (_, metric) in &live {
        codes.push(metric.definition.event_type.as_str().to_owned());
    }
    codes.sort();
    codes.dedup();
    let mut events = 0;
    for code in &codes {
        events += rebuild_event_type(conn, org, code)?;
    }
    let after = all_rows(conn, org)?;
    let changed = before.iter().filter(|row| !after.contains(row)).count()
        + after.iter().filter(|row| !before.contains(row)).count();
    Ok(RebuildReport {
        metrics: live.len() as u64,
        events,
        rows: after.len() as u64,
        rows_changed: changed as u64,
    })
}

/// Every rollup row of an organization, in key order.
pub(super) fn all_rows(conn: &Connection, org: i64) -> StoreResult<Vec<RollupRow>> {
    let mut stmt = conn.prepare(
        "SELECT m.code, r.width, r.subject, r.bucket, r.subscription, r.group_key,
                r.count, r.sum, r.min, r.max, r.latest_at, r.latest_seq, r.latest_value, r.weighted
         FROM rollups r JOIN billable_metrics m ON m.seq = r.metric
         WHERE r.org = ?1 ORDER BY r.metric, r.width, r.subject, r.bucket, r.subscription, r.group_key",
    )?;
    let rows = stmt
        .query_map([org], |row| {
            let bucket: i64 = row.get(3)?;
            Ok(RollupRow {
                metric: row.get(0)?,
                width: row.get(1)?,
                subject: row.get(2)?,
                bucket,
                subscription: row.get(4)?,
                group_key: row.get(5)?,
                state: state_from_row(row, 6, Timestamp::from_seconds(bucket))?,
            })
        })?
        .collect::<rusqlite::Result<Vec<_>>>()?;
    Ok(rows)
}

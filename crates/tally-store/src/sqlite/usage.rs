//! Usage queries: a metric aggregated over a range, by window, subject and group.
//!
//! The range is cut into windows, each window into spans answered by hourly rollups, minute rollups or
//! raw events (see `tally_core::window::decompose`), and the partial states are merged per window,
//! subject and group. Unique counts need the values themselves and read raw events.

use std::collections::{BTreeMap, HashMap};

use rusqlite::types::Value as SqlValue;
use rusqlite::{Connection, params_from_iter};
use rust_decimal::Decimal;
use serde_json::{Map, Value};
use tally_core::aggregation::{AggState, DistinctEvent, unique_count};
use tally_core::billing::{GroupAggregate, GroupUsage};
use tally_core::error::{Reason, ValidationErrors};
use tally_core::metric::{AggregationType, GroupKey, MetricDefinition, Operation};
use tally_core::time::Timestamp;
use tally_core::window::{Source, decompose_windows, window_index, window_start, windows};

use super::billable_metrics;
use super::rollups::state_from_row;
use crate::error::{StoreError, StoreResult};
use crate::types::{MAX_WINDOWS, UsageQuery, UsageRow};

type RowKey = (usize, Option<String>, BTreeMap<String, Option<String>>);

fn invalid(field: &str, reason: Reason) -> StoreError {
    let mut errors = ValidationErrors::new();
    errors.push(field, reason);
    StoreError::Invalid(errors)
}

/// Decides which rows a stored subject and group land in, or whether they are filtered out.
struct Projection<'q> {
    query: &'q UsageQuery,
    by_subject: bool,
}

impl Projection<'_> {
    fn key(&self, window: usize, subject: &str, group_key: &str) -> Option<RowKey> {
        let values = GroupKey::from_stored(group_key.to_owned()).values();
        for (name, wanted) in &self.query.filter_group {
            if values.get(name).and_then(|v| v.as_deref()) != Some(wanted.as_str()) {
                return None;
            }
        }
        let group = self
            .query
            .group_by
            .iter()
            .map(|name| (name.clone(), values.get(name).cloned().flatten()))
            .collect();
        let subject = self
            .by_subject
            .then(|| subject.to_owned())
            .filter(|s| !s.is_empty());
        Some((window, subject, group))
    }
}

/// Answers a usage query; see [`crate::Store::query_usage`].
pub(super) fn query(conn: &Connection, org: i64, q: &UsageQuery) -> StoreResult<Vec<UsageRow>> {
    let (metric_seq, metric) = billable_metrics::by_code(conn, org, &q.metric)?
        .ok_or(StoreError::NotFound("billable_metric"))?;
    let definition = metric.definition;
    let dims = definition.dimensions();
    for name in q.group_by.iter().chain(q.filter_group.keys()) {
        if !dims.contains_key(name) {
            return Err(invalid("groupBy", Reason::ValueIsInvalid));
        }
    }
    let from = match q.from {
        Some(from) => from,
        None => match first_event(conn, org, definition.event_type.as_str())? {
            // Windows still start on a window boundary: the one holding the first event.
            Some(first) => q
                .window
                .map_or(first, |(size, tz)| window_start(first, size, tz)),
            None => return Ok(Vec::new()),
        },
    };
    if from >= q.to {
        return Ok(Vec::new());
    }
    let cuts = match q.window {
        Some((size, tz)) => {
            let cuts = windows(from, q.to, size, tz);
            if cuts.len() > MAX_WINDOWS {
                return Err(invalid("windowSize", Reason::ValueIsOutOfRange));
            }
            cuts
        }
        None => vec![(from, q.to)],
    };
    let projection = Projection {
        query: q,
        by_subject: q.group_by_subject || !q.subjects.is_empty(),
    };
    let rows = if definition.aggregation == AggregationType::UniqueCount {
        unique_rows(conn, org, metric_seq, &definition, q, &cuts, &projection)?
    } else {
        state_rows(conn, org, metric_seq, &definition, q, &cuts, &projection)?
    };
    let mut rows: Vec<UsageRow> = rows
        .into_iter()
        .map(|((window, subject, group), value)| UsageRow {
            window_start: cuts[window].0,
            window_end: cuts[window].1,
            subject,
            group,
            value,
        })
        .collect();
    rows.sort_by(|a, b| {
        (a.window_start, &a.subject, &a.group).cmp(&(b.window_start, &b.subject, &b.group))
    });
    Ok(rows)
}

fn first_event(conn: &Connection, org: i64, code: &str) -> StoreResult<Option<Timestamp>> {
    let first: Option<i64> = conn.query_row(
        "SELECT MIN(timestamp) FROM events WHERE org = ?1 AND code = ?2",
        rusqlite::params![org, code],
        |row| row.get(0),
    )?;
    Ok(first.map(Timestamp::from_micros))
}

/// Which events of a metric a query reads.
#[derive(Debug, Clone, Copy)]
pub(super) enum Scope<'a> {
    /// Events of these subjects (all when empty).
    Subjects(&'a [String]),
    /// Events billed to a subscription: those naming it, and, with `takes_customer_events`, those
    /// that name only its customer (the customer's one subscription takes them).
    Subscription {
        /// The subscription's external id.
        external_id: &'a str,
        /// Its customer's external id. An event naming a known subscription is stored with that
        /// subscription's customer as subject (or none, when the subscription was not known yet),
        /// so the subject narrows the rows read to this customer's.
        customer: &'a str,
        /// Whether events naming only the customer belong here.
        takes_customer_events: bool,
    },
}

/// Which kind of table a scope is rendered for: rollups write "no value" as `''`, events as NULL.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Table {
    Rollups,
    Events,
}

impl Scope<'_> {
    /// Renders the scope as SQL for a table whose subject and subscription columns are named. On
    /// rollups the bare subject column is compared, so the primary key (org, metric, width, subject,
    /// bucket, …) narrows the rows to the subjects asked for.
    fn clause(
        &self,
        args: &mut Vec<SqlValue>,
        table: Table,
        subject: &str,
        subscription: &str,
    ) -> String {
        let none = |column: &str| match table {
            Table::Rollups => format!("{column} = ''"),
            Table::Events => format!("{column} IS NULL"),
        };
        match *self {
            Scope::Subjects([]) => String::new(),
            Scope::Subjects(subjects) => {
                args.extend(subjects.iter().cloned().map(SqlValue::Text));
                let marks = vec!["?"; subjects.len()].join(", ");
                match table {
                    Table::Rollups => format!(" AND {subject} IN ({marks})"),
                    Table::Events => format!(" AND COALESCE({subject}, '') IN ({marks})"),
                }
            }
            Scope::Subscription {
                external_id,
                customer,
                takes_customer_events,
            } => {
                args.push(SqlValue::Text(customer.to_owned()));
                let subjects = match table {
                    Table::Rollups => format!("{subject} IN (?, '')"),
                    Table::Events => format!("({subject} = ? OR {})", none(subject)),
                };
                args.push(SqlValue::Text(external_id.to_owned()));
                if takes_customer_events {
                    args.push(SqlValue::Text(customer.to_owned()));
                    format!(
                        " AND {subjects} AND ({subscription} = ? OR ({} AND {subject} = ?))",
                        none(subscription)
                    )
                } else {
                    format!(" AND {subjects} AND {subscription} = ?")
                }
            }
        }
    }
}

/// Visits raw events of the metric's code in `[from, to)`: (seq, subject, time, properties).
fn raw_events(
    conn: &Connection,
    org: i64,
    code: &str,
    (from, to): (Timestamp, Timestamp),
    scope: Scope<'_>,
    mut visit: impl FnMut(i64, &str, Timestamp, &Map<String, Value>) -> StoreResult<()>,
) -> StoreResult<()> {
    let mut args = vec![
        SqlValue::Integer(org),
        SqlValue::Text(code.to_owned()),
        SqlValue::Integer(from.micros()),
        SqlValue::Integer(to.micros()),
    ];
    let filter = scope.clause(
        &mut args,
        Table::Events,
        "subject",
        "external_subscription_id",
    );
    let mut stmt = conn.prepare_cached(&format!(
        "SELECT id, COALESCE(subject, ''), timestamp, properties FROM events
         WHERE org = ? AND code = ? AND timestamp >= ? AND timestamp < ?{filter}"
    ))?;
    let mut rows = stmt.query(params_from_iter(args.iter()))?;
    while let Some(row) = rows.next()? {
        let subject: String = row.get(1)?;
        let properties: Map<String, Value> =
            serde_json::from_str(&row.get::<_, String>(3)?).unwrap_or_default();
        visit(
            row.get(0)?,
            &subject,
            Timestamp::from_micros(row.get(2)?),
            &properties,
        )?;
    }
    Ok(())
}

/// Visits the kept values of a metric's events (unique counts, and metrics flagged
/// `keeps_event_values`) in `[from, to)` within `scope`, as `raw_events` would read them from events,
/// from `event_values`: one range of its key per subject. `visit(subject, at, seq, group_key, value,
/// operation)`.
fn kept_values(
    conn: &Connection,
    org: i64,
    metric_seq: i64,
    (from, to): (Timestamp, Timestamp),
    scope: Scope<'_>,
    mut visit: impl FnMut(&str, Timestamp, i64, &str, String, Operation) -> StoreResult<()>,
) -> StoreResult<()> {
    let mut args = vec![
        SqlValue::Integer(org),
        SqlValue::Integer(metric_seq),
        SqlValue::Integer(from.micros()),
        SqlValue::Integer(to.micros()),
    ];
    let filter = scope.clause(&mut args, Table::Rollups, "subject", "subscription");
    let mut stmt = conn.prepare_cached(&format!(
        "SELECT subject, at, seq, group_key, value, operation FROM event_values
         WHERE org = ? AND metric = ? AND at >= ? AND at < ?{filter}"
    ))?;
    let mut rows = stmt.query(params_from_iter(args.iter()))?;
    while let Some(row) = rows.next()? {
        let subject: String = row.get(0)?;
        let group_key: String = row.get(3)?;
        let operation = match row.get::<_, String>(5)?.as_str() {
            "remove" => Operation::Remove,
            _ => Operation::Add,
        };
        visit(
            &subject,
            Timestamp::from_micros(row.get(1)?),
            row.get(2)?,
            &group_key,
            row.get(4)?,
            operation,
        )?;
    }
    Ok(())
}

fn state_rows(
    conn: &Connection,
    org: i64,
    metric_seq: i64,
    definition: &MetricDefinition,
    q: &UsageQuery,
    cuts: &[(Timestamp, Timestamp)],
    projection: &Projection<'_>,
) -> StoreResult<HashMap<RowKey, Decimal>> {
    let mut states: HashMap<RowKey, AggState> = HashMap::new();
    let overflow = |e: tally_core::aggregation::Overflow| StoreError::Database(e.to_string());
    for span in decompose_windows(cuts) {
        match span.source {
            Source::Raw => {
                raw_events(
                    conn,
                    org,
                    definition.event_type.as_str(),
                    (span.from, span.to),
                    Scope::Subjects(&q.subjects),
                    |seq, subject, at, props| {
                        let Ok(Some(reading)) = definition.read(props, at) else {
                            return Ok(());
                        };
                        let Some(window) = window_index(cuts, at) else {
                            return Ok(());
                        };
                        if let Some(key) = projection.key(window, subject, reading.group.as_str()) {
                            states
                                .entry(key)
                                .or_insert_with(|| AggState::new(cuts[window].0))
                                .add(at, seq, reading.value)
                                .map_err(overflow)?;
                        }
                        Ok(())
                    },
                )?;
            }
            Source::Hour | Source::Minute => {
                let width = span.source.bucket_seconds();
                let mut args = vec![
                    SqlValue::Integer(org),
                    SqlValue::Integer(metric_seq),
                    SqlValue::Integer(width),
                    SqlValue::Integer(span.from.seconds()),
                    SqlValue::Integer(span.to.seconds()),
                ];
                let filter = Scope::Subjects(&q.subjects).clause(
                    &mut args,
                    Table::Rollups,
                    "subject",
                    "subscription",
                );
                let mut stmt = conn.prepare_cached(&format!(
                    "SELECT subject, group_key, bucket, count, sum, min, max, latest_at, latest_seq, latest_value, weighted
                     FROM rollups WHERE org = ? AND metric = ? AND width = ? AND bucket >= ? AND bucket < ?{filter}"
                ))?;
                let mut rows = stmt.query(params_from_iter(args.iter()))?;
                while let Some(row) = rows.next()? {
                    let subject: String = row.get(0)?;
                    let group_key: String = row.get(1)?;
                    let bucket = Timestamp::from_seconds(row.get(2)?);
                    let state = state_from_row(row, 3, bucket)?;
                    let Some(window) = window_index(cuts, bucket) else {
                        continue;
                    };
                    if let Some(key) = projection.key(window, &subject, &group_key) {
                        states
                            .entry(key)
                            .or_insert_with(|| AggState::new(cuts[window].0))
                            .merge(&state)
                            .map_err(overflow)?;
                    }
                }
            }
        }
    }
    Ok(states
        .into_iter()
        .filter_map(|(key, state)| {
            let span = cuts[key.0];
            state
                .units(definition.aggregation, span, Decimal::ZERO)
                .map(|value| (key, value))
        })
        .collect())
}

#[allow(clippy::too_many_arguments)]
fn unique_rows(
    conn: &Connection,
    org: i64,
    metric_seq: i64,
    definition: &MetricDefinition,
    q: &UsageQuery,
    cuts: &[(Timestamp, Timestamp)],
    projection: &Projection<'_>,
) -> StoreResult<HashMap<RowKey, Decimal>> {
    let mut values: HashMap<RowKey, Vec<DistinctEvent>> = HashMap::new();
    let range = (cuts[0].0, cuts[cuts.len() - 1].1);
    let mut add = |subject: &str, at: Timestamp, seq: i64, group: &str, value, operation| {
        if let Some(window) = window_index(cuts, at)
            && let Some(key) = projection.key(window, subject, group)
        {
            values.entry(key).or_default().push(DistinctEvent {
                at,
                seq,
                value,
                operation,
            });
        }
        Ok(())
    };
    if q.subjects.is_empty() {
        // Every subject: the events' (code, time) index reads the range once.
        raw_events(
            conn,
            org,
            definition.event_type.as_str(),
            range,
            Scope::Subjects(&q.subjects),
            |seq, subject, at, props| match definition.read(props, at) {
                Ok(Some(reading)) => match reading.distinct {
                    Some((value, operation)) => {
                        add(subject, at, seq, reading.group.as_str(), value, operation)
                    }
                    None => Ok(()),
                },
                _ => Ok(()),
            },
        )?;
    } else {
        // Some subjects: their own ranges of the kept values.
        kept_values(
            conn,
            org,
            metric_seq,
            range,
            Scope::Subjects(&q.subjects),
            |subject, at, seq, group, value, operation| {
                add(subject, at, seq, group, value, operation)
            },
        )?;
    }
    Ok(values
        .into_iter()
        .map(|(key, events)| (key, Decimal::from(unique_count(&events, false))))
        .collect())
}

/// Reads a metric's usage in `scope` over `[from, to)`, one aggregate per dimension group: mergeable
/// states from rollups (raw events at sub-minute edges), or the distinct values for unique counts.
pub(super) fn groups(
    conn: &Connection,
    org: i64,
    metric_seq: i64,
    definition: &MetricDefinition,
    scope: Scope<'_>,
    (from, to): (Timestamp, Timestamp),
) -> StoreResult<Vec<GroupUsage>> {
    if from >= to {
        return Ok(Vec::new());
    }
    let overflow = |e: tally_core::aggregation::Overflow| StoreError::Database(e.to_string());
    let code = definition.event_type.as_str();
    if definition.aggregation == AggregationType::UniqueCount {
        let mut values: HashMap<String, Vec<DistinctEvent>> = HashMap::new();
        kept_values(
            conn,
            org,
            metric_seq,
            (from, to),
            scope,
            |_, at, seq, group, value, operation| {
                values
                    .entry(group.to_owned())
                    .or_default()
                    .push(DistinctEvent {
                        at,
                        seq,
                        value,
                        operation,
                    });
                Ok(())
            },
        )?;
        return Ok(values
            .into_iter()
            .map(|(key, events)| GroupUsage {
                dims: GroupKey::from_stored(key).values(),
                aggregate: GroupAggregate::Distinct(events),
            })
            .collect());
    }
    let mut states: HashMap<String, AggState> = HashMap::new();
    for span in tally_core::window::decompose(from, to) {
        match span.source {
            Source::Raw => {
                raw_events(
                    conn,
                    org,
                    code,
                    (span.from, span.to),
                    scope,
                    |seq, _, at, props| {
                        if let Ok(Some(reading)) = definition.read(props, at) {
                            states
                                .entry(reading.group.as_str().to_owned())
                                .or_insert_with(|| AggState::new(from))
                                .add(at, seq, reading.value)
                                .map_err(overflow)?;
                        }
                        Ok(())
                    },
                )?;
            }
            Source::Hour | Source::Minute => {
                let mut args = vec![
                    SqlValue::Integer(org),
                    SqlValue::Integer(metric_seq),
                    SqlValue::Integer(span.source.bucket_seconds()),
                    SqlValue::Integer(span.from.seconds()),
                    SqlValue::Integer(span.to.seconds()),
                ];
                let filter = scope.clause(&mut args, Table::Rollups, "subject", "subscription");
                let mut stmt = conn.prepare_cached(&format!(
                    "SELECT group_key, bucket, count, sum, min, max, latest_at, latest_seq, latest_value, weighted
                     FROM rollups WHERE org = ? AND metric = ? AND width = ? AND bucket >= ? AND bucket < ?{filter}"
                ))?;
                let mut rows = stmt.query(params_from_iter(args.iter()))?;
                while let Some(row) = rows.next()? {
                    let group_key: String = row.get(0)?;
                    let bucket = Timestamp::from_seconds(row.get(1)?);
                    let state = state_from_row(row, 2, bucket)?;
                    states
                        .entry(group_key)
                        .or_insert_with(|| AggState::new(from))
                        .merge(&state)
                        .map_err(overflow)?;
                }
            }
        }
    }
    Ok(states
        .into_iter()
        .map(|(key, state)| GroupUsage {
            dims: GroupKey::from_stored(key).values(),
            aggregate: GroupAggregate::State(state),
        })
        .collect())
}

/// One event's dimension values, time, ingest sequence and value.
pub(super) type EventValue = (BTreeMap<String, Option<String>>, Timestamp, i64, Decimal);

/// Reads the values of each event of a metric in `scope` over `[from, to)`, in time order, per
/// dimension group (for percentage charges priced event by event): from `event_values` when the metric
/// keeps them (one range per subject), else from raw events of its code.
pub(super) fn event_values(
    conn: &Connection,
    org: i64,
    metric_seq: i64,
    definition: &MetricDefinition,
    scope: Scope<'_>,
    span: (Timestamp, Timestamp),
) -> StoreResult<Vec<EventValue>> {
    let mut out = Vec::new();
    if billable_metrics::keeps_values(conn, metric_seq)? {
        kept_values(
            conn,
            org,
            metric_seq,
            span,
            scope,
            |_, at, seq, group, value, _| {
                let value = value.parse::<Decimal>().map_err(|e| {
                    StoreError::Database(format!("kept value {value} of event {seq}: {e}"))
                })?;
                out.push((
                    GroupKey::from_stored(group.to_owned()).values(),
                    at,
                    seq,
                    value,
                ));
                Ok(())
            },
        )?;
    } else {
        raw_events(
            conn,
            org,
            definition.event_type.as_str(),
            span,
            scope,
            |seq, _, at, props| {
                if let Ok(Some(reading)) = definition.read(props, at) {
                    out.push((
                        reading.group.values(),
                        at,
                        seq,
                        reading.value.unwrap_or(Decimal::ONE),
                    ));
                }
                Ok(())
            },
        )?;
    }
    out.sort_by_key(|(_, at, seq, _)| (*at, *seq));
    Ok(out)
}

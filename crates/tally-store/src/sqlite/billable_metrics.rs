//! Billable metrics (and meters, the same rows). Creating, changing or deleting one recomputes the
//! rollups and billing issues of the events it reads, in the same transaction.

use std::collections::BTreeMap;

use rusqlite::{Connection, OptionalExtension, Row, params};
use tally_core::error::{Reason, ValidationErrors};
use tally_core::id::{Code, MetricId};
use tally_core::metric::{
    AggregationType, MetricDefinition, MetricFilter, Rounding, RoundingFunction,
};
use tally_core::page::Page;
use tally_core::property::PropertyPath;
use tally_core::time::Timestamp;

use super::now;
use super::orgs::parse_uuid;
use super::rollups;
use crate::error::{StoreError, StoreResult};
use crate::types::{Listed, Metric};

const COLUMNS: &str = "seq, id, code, name, description, aggregation, event_type, field, recurring,
    rounding_function, rounding_precision, filters, group_by, event_from, created_at, updated_at";

fn conversion(index: usize, message: String) -> rusqlite::Error {
    rusqlite::Error::FromSqlConversionFailure(index, rusqlite::types::Type::Text, message.into())
}

fn from_row(row: &Row<'_>) -> rusqlite::Result<(i64, Metric)> {
    let id: String = row.get(1)?;
    let code: String = row.get(2)?;
    let aggregation: String = row.get(5)?;
    let event_type: String = row.get(6)?;
    let field: Option<String> = row.get(7)?;
    let rounding_function: Option<String> = row.get(9)?;
    let rounding_precision: Option<i32> = row.get(10)?;
    let filters: String = row.get(11)?;
    let group_by: String = row.get(12)?;
    let filters: Vec<(String, Vec<String>)> =
        serde_json::from_str(&filters).map_err(|e| conversion(11, e.to_string()))?;
    let group_by: BTreeMap<String, String> =
        serde_json::from_str(&group_by).map_err(|e| conversion(12, e.to_string()))?;
    let path = |text: &str, index| {
        PropertyPath::parse_json_path(text)
            .ok_or_else(|| conversion(index, format!("bad path {text}")))
    };
    let definition = MetricDefinition {
        code: Code::parse("code", &code).map_err(|e| conversion(2, e.field))?,
        name: row.get(3)?,
        description: row.get(4)?,
        aggregation: AggregationType::from_storage(&aggregation)
            .ok_or_else(|| conversion(5, format!("unknown aggregation {aggregation}")))?,
        event_type: Code::parse("event_type", &event_type).map_err(|e| conversion(6, e.field))?,
        field: field.as_deref().map(|f| path(f, 7)).transpose()?,
        recurring: row.get(8)?,
        rounding: rounding_function
            .as_deref()
            .and_then(RoundingFunction::parse)
            .map(|function| Rounding {
                function,
                precision: rounding_precision.unwrap_or(0),
            }),
        filters: filters
            .into_iter()
            .map(|(key, values)| MetricFilter { key, values })
            .collect(),
        group_by: group_by
            .into_iter()
            .map(|(name, p)| Ok((name, path(&p, 12)?)))
            .collect::<rusqlite::Result<_>>()?,
        event_from: row.get::<_, Option<i64>>(13)?.map(Timestamp::from_micros),
    };
    Ok((
        row.get(0)?,
        Metric {
            id: MetricId(parse_uuid(&id)?),
            definition,
            created_at: Timestamp::from_micros(row.get(14)?),
            updated_at: Timestamp::from_micros(row.get(15)?),
        },
    ))
}

/// The columns a definition is stored in, in [`COLUMNS`] order from `code` to `event_from`.
fn definition_params(d: &MetricDefinition) -> StoreResult<[rusqlite::types::Value; 12]> {
    use rusqlite::types::Value as V;
    let text = |s: Option<String>| s.map_or(V::Null, V::Text);
    let filters: Vec<(&str, &[String])> = d
        .filters
        .iter()
        .map(|f| (f.key.as_str(), f.values.as_slice()))
        .collect();
    let group_by: BTreeMap<&str, String> = d
        .group_by
        .iter()
        .map(|(k, p)| (k.as_str(), p.to_json_path()))
        .collect();
    let json = |v: serde_json::Result<String>| v.map_err(|e| StoreError::Database(e.to_string()));
    Ok([
        V::Text(d.code.as_str().to_owned()),
        V::Text(d.name.clone()),
        text(d.description.clone()),
        V::Text(d.aggregation.storage_name().to_owned()),
        V::Text(d.event_type.as_str().to_owned()),
        text(d.field.as_ref().map(PropertyPath::to_json_path)),
        V::Integer(i64::from(d.recurring)),
        text(d.rounding.map(|r| r.function.name().to_owned())),
        d.rounding
            .map_or(V::Null, |r| V::Integer(i64::from(r.precision))),
        V::Text(json(serde_json::to_string(&filters))?),
        V::Text(json(serde_json::to_string(&group_by))?),
        d.event_from.map_or(V::Null, |t| V::Integer(t.micros())),
    ])
}

pub(super) fn by_code(
    conn: &Connection,
    org: i64,
    code: &str,
) -> StoreResult<Option<(i64, Metric)>> {
    Ok(conn
        .query_row(
            &format!("SELECT {COLUMNS} FROM billable_metrics WHERE org = ?1 AND code = ?2 AND deleted_at IS NULL"),
            params![org, code],
            from_row,
        )
        .optional()?)
}

pub(super) fn by_id(conn: &Connection, org: i64, id: uuid::Uuid) -> StoreResult<Metric> {
    by_id_with_seq(conn, org, id)?
        .map(|(_, m)| m)
        .ok_or(StoreError::NotFound("billable_metric"))
}

/// Reads a live metric by id with its compact id.
pub(super) fn by_id_with_seq(
    conn: &Connection,
    org: i64,
    id: uuid::Uuid,
) -> StoreResult<Option<(i64, Metric)>> {
    Ok(conn
        .query_row(
            &format!("SELECT {COLUMNS} FROM billable_metrics WHERE org = ?1 AND id = ?2 AND deleted_at IS NULL"),
            params![org, id.to_string()],
            from_row,
        )
        .optional()?)
}

/// Every live metric reading an event type, with its compact id.
pub(super) fn reading(
    conn: &Connection,
    org: i64,
    event_type: &str,
) -> StoreResult<Vec<(i64, MetricDefinition)>> {
    let mut stmt = conn.prepare_cached(&format!(
        "SELECT {COLUMNS} FROM billable_metrics WHERE org = ?1 AND event_type = ?2 AND deleted_at IS NULL ORDER BY seq"
    ))?;
    let rows = stmt
        .query_map(params![org, event_type], from_row)?
        .map(|r| r.map(|(seq, m)| (seq, m.definition)))
        .collect::<rusqlite::Result<Vec<_>>>()?;
    Ok(rows)
}

/// Metrics by compact id with their definitions, as ingest reads them.
pub(super) type Readers = Vec<(i64, MetricDefinition)>;

/// The live metrics reading `event_type` (as [`reading`]) and, of them, those that keep their
/// events' values for percentage charges (`keeps_event_values`; unique counts keep theirs
/// regardless), in one query: what ingest and rollup rebuilds need per event code.
pub(super) fn reading_and_keeping(
    conn: &Connection,
    org: i64,
    event_type: &str,
) -> StoreResult<(Readers, Vec<i64>)> {
    let mut stmt = conn.prepare_cached(&format!(
        "SELECT {COLUMNS}, keeps_event_values FROM billable_metrics
         WHERE org = ?1 AND event_type = ?2 AND deleted_at IS NULL ORDER BY seq"
    ))?;
    let rows = stmt
        .query_map(params![org, event_type], |row| {
            let (seq, metric) = from_row(row)?;
            Ok((seq, metric.definition, row.get::<_, bool>(16)?))
        })?
        .collect::<rusqlite::Result<Vec<_>>>()?;
    let keeping = rows.iter().filter(|r| r.2).map(|r| r.0).collect();
    Ok((
        rows.into_iter().map(|(seq, d, _)| (seq, d)).collect(),
        keeping,
    ))
}

/// Whether a metric's events' values are kept (`event_values`): unique counts always, others once a
/// charge needs them.
pub(super) fn keeps_values(conn: &Connection, metric: i64) -> StoreResult<bool> {
    Ok(conn.query_row(
        "SELECT keeps_event_values = 1 OR aggregation = ?2 FROM billable_metrics WHERE seq = ?1",
        params![metric, AggregationType::UniqueCount.storage_name()],
        |row| row.get(0),
    )?)
}

/// Every live metric of the organization with its compact id.
pub(super) fn all(conn: &Connection, org: i64) -> StoreResult<Vec<(i64, Metric)>> {
    let mut stmt = conn.prepare(&format!(
        "SELECT {COLUMNS} FROM billable_metrics WHERE org = ?1 AND deleted_at IS NULL ORDER BY seq"
    ))?;
    let rows = stmt
        .query_map([org], from_row)?
        .collect::<rusqlite::Result<Vec<_>>>()?;
    Ok(rows)
}

pub(super) fn list(conn: &Connection, org: i64, page: Page) -> StoreResult<Listed<Metric>> {
    let total: i64 = conn.query_row(
        "SELECT COUNT(*) FROM billable_metrics WHERE org = ?1 AND deleted_at IS NULL",
        [org],
        |row| row.get(0),
    )?;
    let mut stmt = conn.prepare(&format!(
        "SELECT {COLUMNS} FROM billable_metrics WHERE org = ?1 AND deleted_at IS NULL ORDER BY seq LIMIT ?2 OFFSET ?3"
    ))?;
    let items = stmt
        .query_map(params![org, page.per_page, page.offset() as i64], from_row)?
        .map(|r| r.map(|(_, m)| m))
        .collect::<rusqlite::Result<Vec<_>>>()?;
    Ok(Listed {
        items,
        total: total as u64,
    })
}

fn code_taken() -> StoreError {
    let mut errors = ValidationErrors::new();
    errors.push("code", Reason::ValueAlreadyExist);
    StoreError::Invalid(errors)
}

pub(super) fn create(
    conn: &Connection,
    org: i64,
    definition: MetricDefinition,
) -> StoreResult<Metric> {
    definition.validate()?;
    if by_code(conn, org, definition.code.as_str())?.is_some() {
        return Err(code_taken());
    }
    let id = MetricId::generate();
    let at = now().micros();
    let p = definition_params(&definition)?;
    conn.execute(
        "INSERT INTO billable_metrics (id, org, code, name, description, aggregation, event_type, field, recurring,
            rounding_function, rounding_precision, filters, group_by, event_from, created_at, updated_at)
         VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12, ?13, ?14, ?15, ?15)",
        params![id.0.to_string(), org, p[0], p[1], p[2], p[3], p[4], p[5], p[6], p[7], p[8], p[9], p[10], p[11], at],
    )?;
    rollups::rebuild_event_type(conn, org, definition.event_type.as_str())?;
    by_code(conn, org, definition.code.as_str())?
        .map(|(_, m)| m)
        .ok_or(StoreError::NotFound("billable_metric"))
}

pub(super) fn update(
    conn: &Connection,
    org: i64,
    code: &str,
    definition: MetricDefinition,
) -> StoreResult<Metric> {
    definition.validate()?;
    let (seq, existing) =
        by_code(conn, org, code)?.ok_or(StoreError::NotFound("billable_metric"))?;
    if definition.code.as_str() != code && by_code(conn, org, definition.code.as_str())?.is_some() {
        return Err(code_taken());
    }
    let p = definition_params(&definition)?;
    conn.execute(
        "UPDATE billable_metrics SET code = ?2, name = ?3, description = ?4, aggregation = ?5, event_type = ?6, field = ?7,
            recurring = ?8, rounding_function = ?9, rounding_precision = ?10, filters = ?11, group_by = ?12,
            event_from = ?13, updated_at = ?14
         WHERE seq = ?1",
        params![seq, p[0], p[1], p[2], p[3], p[4], p[5], p[6], p[7], p[8], p[9], p[10], p[11], now().micros()],
    )?;
    if counts_differently(&existing.definition, &definition) {
        rollups::rebuild_event_type(conn, org, existing.definition.event_type.as_str())?;
        if existing.definition.event_type != definition.event_type {
            rollups::rebuild_event_type(conn, org, definition.event_type.as_str())?;
        }
    }
    by_code(conn, org, definition.code.as_str())?
        .map(|(_, m)| m)
        .ok_or(StoreError::NotFound("billable_metric"))
}

/// Tells whether a change alters which events a metric reads or what it takes from them.
fn counts_differently(a: &MetricDefinition, b: &MetricDefinition) -> bool {
    a.event_type != b.event_type
        || a.aggregation != b.aggregation
        || a.field != b.field
        || a.dimensions() != b.dimensions()
        || a.event_from != b.event_from
}

pub(super) fn delete(conn: &Connection, org: i64, code: &str) -> StoreResult<Metric> {
    let (seq, metric) = by_code(conn, org, code)?.ok_or(StoreError::NotFound("billable_metric"))?;
    conn.execute(
        "UPDATE billable_metrics SET deleted_at = ?2 WHERE seq = ?1",
        params![seq, now().micros()],
    )?;
    conn.execute(
        "DELETE FROM rollups WHERE org = ?1 AND metric = ?2",
        params![org, seq],
    )?;
    // Charges pricing the metric go with it, as in Lago.
    conn.execute(
        "UPDATE charges SET deleted_at = ?2 WHERE metric = ?1 AND deleted_at IS NULL",
        params![seq, now().micros()],
    )?;
    rollups::rebuild_event_type(conn, org, metric.definition.event_type.as_str())?;
    Ok(metric)
}

//! OpenMeter meters: `GET|POST /api/v1/meters`, `GET|DELETE /api/v1/meters/{meterIdOrSlug}` and
//! `GET /api/v1/meters/{meterIdOrSlug}/query`. A meter is a billable metric seen through OpenMeter's
//! contract: slug ↔ code, eventType ↔ event type, valueProperty ↔ field, groupBy ↔ dimensions.

use std::collections::BTreeMap;

use axum::Json;
use axum::body::Bytes;
use axum::extract::{Path, RawQuery, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use chrono::SecondsFormat;
use chrono_tz::Tz;
use serde_json::{Map, Number, Value, json};
use tally_core::error::Reason;
use tally_core::id::{Code, parse_ulid, ulid_string};
use tally_core::metric::{AggregationType, MetricDefinition};
use tally_core::page::Page;
use tally_core::property::PropertyPath;
use tally_core::time::Timestamp;
use tally_core::window::WindowSize;
use tally_store::{Metric, StoreError, UsageQuery};
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use crate::api::query::QueryPairs;
use crate::auth::Principal;
use crate::error::{ApiError, Problem};
use crate::state::AppState;

/// The meter routes.
pub fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(list_meters, create_meter))
        .routes(routes!(get_meter, update_meter, delete_meter))
        .routes(routes!(query_meter))
}

fn bad(message: impl Into<String>) -> Problem {
    Problem(ApiError::BadRequest(message.into()))
}

/// Renders a metric as an OpenMeter meter.
pub fn meter_json(metric: &Metric) -> Value {
    let d = &metric.definition;
    let group_by: BTreeMap<String, String> = d
        .dimensions()
        .into_iter()
        .map(|(k, p)| (k, p.to_json_path()))
        .collect();
    json!({
        "id": ulid_string(metric.id.0),
        "slug": d.code.as_str(),
        "name": d.name,
        "description": d.description,
        "aggregation": d.aggregation.openmeter_name(),
        "eventType": d.event_type.as_str(),
        "valueProperty": d.field.as_ref().map(PropertyPath::to_json_path),
        "groupBy": group_by,
        "eventFrom": d.event_from.map(Timestamp::to_rfc3339_seconds),
        "createdAt": metric.created_at.to_rfc3339_seconds(),
        "updatedAt": metric.updated_at.to_rfc3339_seconds(),
        "deletedAt": null,
        "metadata": {},
        "annotations": {},
    })
}

async fn find(state: &AppState, principal: Principal, id_or_slug: &str) -> Result<Metric, Problem> {
    if let Some(id) = parse_ulid(id_or_slug) {
        match state.store.metric_by_id(principal.org, id).await {
            Ok(metric) => return Ok(metric),
            Err(StoreError::NotFound(_)) => {}
            Err(error) => return Err(error.into()),
        }
    }
    let org = state.organization(principal.org).await?;
    Ok(state
        .store
        .metric(principal.org, &org.identifier_case.apply(id_or_slug))
        .await?)
}

/// Lists meters (billable metrics whose aggregation OpenMeter knows).
#[utoipa::path(get, path = "/api/v1/meters", tag = "meters",
    params(("page" = Option<u32>, Query), ("pageSize" = Option<u32>, Query, description = "1 to 1000, default 100")),
    responses((status = 200, description = "a JSON array of meters")))]
async fn list_meters(
    State(state): State<AppState>,
    principal: Principal,
    RawQuery(raw): RawQuery,
) -> Result<Json<Value>, Problem> {
    let query = QueryPairs::parse(raw.as_deref())?;
    let page = Page::new(query.number("page")?, query.number("pageSize")?);
    let listed = state.store.list_metrics(principal.org, page).await?;
    let meters: Vec<Value> = listed
        .items
        .iter()
        .filter(|m| m.definition.aggregation.openmeter_name().is_some())
        .map(meter_json)
        .collect();
    Ok(Json(Value::Array(meters)))
}

/// Creates a meter; events already stored for its event type are counted at once.
#[utoipa::path(post, path = "/api/v1/meters", tag = "meters",
    request_body(content = Object, description = "`{slug, aggregation, eventType, valueProperty, groupBy, eventFrom, name, description}`"),
    responses((status = 201, description = "the meter"), (status = 400, description = "invalid meter"), (status = 409, description = "the slug exists")))]
async fn create_meter(
    State(state): State<AppState>,
    principal: Principal,
    body: Bytes,
) -> Result<Response, Problem> {
    let value: Value = serde_json::from_slice(&body)
        .map_err(|e| bad(format!("the body is not valid JSON: {e}")))?;
    let object = value
        .as_object()
        .ok_or_else(|| bad("a meter must be a JSON object"))?;
    let definition = read_meter(object)?;
    let org = state.organization(principal.org).await?;
    match state
        .store
        .create_metric(principal.org, definition.normalized(org.identifier_case))
        .await
    {
        Ok(metric) => Ok((StatusCode::CREATED, Json(meter_json(&metric))).into_response()),
        Err(StoreError::Invalid(errors))
            if errors
                .errors()
                .iter()
                .any(|e| e.reason == Reason::ValueAlreadyExist) =>
        {
            Err(Problem(ApiError::Conflict(
                "a meter with this slug already exists".into(),
            )))
        }
        Err(StoreError::Invalid(errors)) => Err(bad(format!("invalid meter: {errors}"))),
        Err(error) => Err(error.into()),
    }
}

fn read_meter(object: &Map<String, Value>) -> Result<MetricDefinition, Problem> {
    let text = |name: &str| -> Result<Option<String>, Problem> {
        match object.get(name) {
            None | Some(Value::Null) => Ok(None),
            Some(Value::String(s)) => Ok(Some(s.clone())),
            Some(_) => Err(bad(format!("{name} must be a string"))),
        }
    };
    let slug = text("slug")?.ok_or_else(|| bad("slug is required"))?;
    let valid_slug = slug.len() <= 64
        && !slug.is_empty()
        && slug.split('_').all(|part| {
            !part.is_empty()
                && part
                    .chars()
                    .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit())
        });
    if !valid_slug {
        return Err(bad(
            "slug must match ^[a-z0-9]+(?:_[a-z0-9]+)*$ and be at most 64 characters",
        ));
    }
    let aggregation_name = text("aggregation")?.ok_or_else(|| bad("aggregation is required"))?;
    let aggregation = AggregationType::from_openmeter(&aggregation_name)
        .ok_or_else(|| bad(format!("aggregation {aggregation_name:?} is not one of SUM, COUNT, UNIQUE_COUNT, AVG, MIN, MAX, LATEST")))?;
    let event_type = text("eventType")?.ok_or_else(|| bad("eventType is required"))?;
    let field = match text("valueProperty")? {
        Some(_) if aggregation == AggregationType::Count => {
            return Err(bad("valueProperty must not be set for COUNT"));
        }
        Some(path) => Some(PropertyPath::parse_json_path(&path).ok_or_else(|| {
            bad(format!(
                "valueProperty {path:?} is not a JSONPath such as $.tokens"
            ))
        })?),
        None if aggregation == AggregationType::Count => None,
        None => {
            return Err(bad(format!(
                "valueProperty is required for {aggregation_name}"
            )));
        }
    };
    let mut group_by = BTreeMap::new();
    match object.get("groupBy") {
        None | Some(Value::Null) => {}
        Some(Value::Object(map)) => {
            for (name, path) in map {
                let path = path
                    .as_str()
                    .ok_or_else(|| bad(format!("groupBy.{name} must be a JSONPath string")))?;
                let path = PropertyPath::parse_json_path(path).ok_or_else(|| {
                    bad(format!(
                        "groupBy.{name}: {path:?} is not a JSONPath such as $.model"
                    ))
                })?;
                group_by.insert(name.clone(), path);
            }
        }
        Some(_) => return Err(bad("groupBy must be an object of name → JSONPath")),
    }
    let event_from = match text("eventFrom")? {
        Some(t) => Some(
            Timestamp::parse_rfc3339(&t)
                .ok_or_else(|| bad("eventFrom must be an RFC 3339 time"))?,
        ),
        None => None,
    };
    let definition = MetricDefinition {
        code: Code::parse("slug", &slug).map_err(|e| bad(format!("slug: {}", e.reason)))?,
        name: text("name")?.unwrap_or_else(|| slug.clone()),
        description: text("description")?,
        aggregation,
        event_type: Code::parse("eventType", &event_type)
            .map_err(|e| bad(format!("eventType: {}", e.reason)))?,
        field,
        recurring: false,
        rounding: None,
        filters: Vec::new(),
        group_by,
        event_from,
    };
    definition
        .validate()
        .map_err(|errors| bad(format!("invalid meter: {errors}")))?;
    Ok(definition)
}

/// Reads a meter by slug or id.
#[utoipa::path(get, path = "/api/v1/meters/{meterIdOrSlug}", tag = "meters",
    params(("meterIdOrSlug" = String, Path)),
    responses((status = 200, description = "the meter"), (status = 404, description = "no such meter")))]
async fn get_meter(
    State(state): State<AppState>,
    principal: Principal,
    Path(id): Path<String>,
) -> Result<Json<Value>, Problem> {
    Ok(Json(meter_json(&find(&state, principal, &id).await?)))
}

/// Not built yet: meters are changed through `PUT /api/v1/billable_metrics/{code}`.
#[utoipa::path(put, path = "/api/v1/meters/{meterIdOrSlug}", tag = "meters",
    params(("meterIdOrSlug" = String, Path)),
    responses((status = 501, description = "not built yet")))]
async fn update_meter(Path(_id): Path<String>) -> Problem {
    Problem(ApiError::NotImplemented(
        "updating meters is not supported yet; change the billable metric with PUT /api/v1/billable_metrics/{code}".into(),
    ))
}

/// Deletes a meter (and the billable metric it is).
#[utoipa::path(delete, path = "/api/v1/meters/{meterIdOrSlug}", tag = "meters",
    params(("meterIdOrSlug" = String, Path)),
    responses((status = 204, description = "deleted"), (status = 404, description = "no such meter")))]
async fn delete_meter(
    State(state): State<AppState>,
    principal: Principal,
    Path(id): Path<String>,
) -> Result<StatusCode, Problem> {
    let metric = find(&state, principal, &id).await?;
    state
        .store
        .delete_metric(principal.org, metric.definition.code.as_str())
        .await?;
    Ok(StatusCode::NO_CONTENT)
}

/// Aggregates a meter over a range, by window, subject and group, from rollups.
#[utoipa::path(get, path = "/api/v1/meters/{meterIdOrSlug}/query", tag = "meters",
    params(("meterIdOrSlug" = String, Path), ("from" = Option<String>, Query, description = "RFC 3339, inclusive"),
        ("to" = Option<String>, Query, description = "RFC 3339, exclusive; default now"),
        ("windowSize" = Option<String>, Query, description = "MINUTE, HOUR or DAY"),
        ("windowTimeZone" = Option<String>, Query, description = "IANA zone, default UTC"),
        ("subject" = Option<Vec<String>>, Query, description = "repeatable; filters and groups by subject"),
        ("groupBy" = Option<Vec<String>>, Query, description = "repeatable; a groupBy key of the meter, or subject"),
        ("filterGroupBy[key]" = Option<String>, Query, description = "exact match on a groupBy value")),
    responses((status = 200, description = "`{from, to, windowSize, data: [{value, windowStart, windowEnd, subject, groupBy}]}`"),
        (status = 400, description = "invalid query")))]
async fn query_meter(
    State(state): State<AppState>,
    principal: Principal,
    Path(id): Path<String>,
    RawQuery(raw): RawQuery,
) -> Result<Json<Value>, Problem> {
    let metric = find(&state, principal, &id).await?;
    let query = QueryPairs::parse(raw.as_deref())?;
    let time = |name: &str| -> Result<Option<Timestamp>, Problem> {
        query
            .get(name)
            .map(|v| {
                Timestamp::parse_rfc3339(v)
                    .ok_or_else(|| bad(format!("{name} must be an RFC 3339 time")))
            })
            .transpose()
    };
    let from = time("from")?;
    let to = time("to")?;
    let end = to.unwrap_or_else(|| state.clock.now());
    if from.is_some_and(|f| f >= end) {
        return Err(bad("from must be before to"));
    }
    let window = query
        .get("windowSize")
        .map(|w| {
            WindowSize::parse(w)
                .ok_or_else(|| bad(format!("windowSize {w:?} is not MINUTE, HOUR or DAY")))
        })
        .transpose()?;
    let tz: Tz = match query.get("windowTimeZone") {
        Some(name) => name
            .parse()
            .map_err(|_| bad(format!("windowTimeZone {name:?} is not an IANA time zone")))?,
        None => chrono_tz::UTC,
    };
    let mut group_by_subject = false;
    let mut group_by = Vec::new();
    for key in query.all("groupBy") {
        if key == "subject" {
            group_by_subject = true;
        } else if !group_by.contains(&key) {
            group_by.push(key);
        }
    }
    let dims = metric.definition.dimensions();
    if let Some(unknown) = group_by.iter().find(|k| !dims.contains_key(*k)) {
        return Err(bad(format!(
            "groupBy {unknown:?} is not a groupBy key of this meter"
        )));
    }
    let filter_group: BTreeMap<String, String> = query.map("filterGroupBy").into_iter().collect();
    if let Some(unknown) = filter_group.keys().find(|k| !dims.contains_key(*k)) {
        return Err(bad(format!(
            "filterGroupBy {unknown:?} is not a groupBy key of this meter"
        )));
    }
    let usage = UsageQuery {
        metric: metric.definition.code.to_string(),
        from,
        to: end,
        window: window.map(|w| (w, tz)),
        subjects: query.all("subject"),
        group_by_subject,
        group_by: group_by.clone(),
        filter_group,
    };
    let rows = match state.store.query_usage(principal.org, &usage).await {
        Ok(rows) => rows,
        Err(StoreError::Invalid(errors)) => return Err(bad(format!("invalid query: {errors}"))),
        Err(error) => return Err(error.into()),
    };
    let render = |at: Timestamp| {
        at.to_datetime()
            .with_timezone(&tz)
            .to_rfc3339_opts(SecondsFormat::AutoSi, true)
    };
    let data: Vec<Value> = rows
        .iter()
        .map(|row| {
            let value = row
                .value
                .normalize()
                .to_string()
                .parse::<Number>()
                .map_or(Value::Null, Value::Number);
            json!({
                "value": value,
                "windowStart": render(row.window_start),
                "windowEnd": render(row.window_end),
                "subject": row.subject,
                "groupBy": row.group,
            })
        })
        .collect();
    let mut answer = Map::new();
    if let Some(from) = query.get("from") {
        answer.insert("from".into(), json!(from));
    }
    if let Some(to) = query.get("to") {
        answer.insert("to".into(), json!(to));
    }
    if let Some(window) = window {
        answer.insert("windowSize".into(), json!(window.name()));
    }
    answer.insert("data".into(), Value::Array(data));
    Ok(Json(Value::Object(answer)))
}

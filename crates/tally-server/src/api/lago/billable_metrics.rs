//! Lago billable metrics: `POST /billable_metrics`, `GET /billable_metrics`,
//! `GET|PUT|DELETE /billable_metrics/{code}`. A billable metric is also an OpenMeter meter.

use std::collections::BTreeMap;

use axum::Json;
use axum::body::Bytes;
use axum::extract::{Path, RawQuery, State};
use serde_json::{Value, json};
use tally_core::error::Reason;
use tally_core::id::Code;
use tally_core::metric::{
    AggregationType, MetricDefinition, MetricFilter, Rounding, RoundingFunction,
};
use tally_core::page::PageMeta;
use tally_core::property::PropertyPath;
use tally_store::Metric;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use super::customers::meta_json;
use crate::api::fields::{Field, Fields, parse_body, root};
use crate::api::query::QueryPairs;
use crate::auth::Principal;
use crate::error::ApiError;
use crate::state::AppState;

/// The billable metric routes.
pub fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(create_metric, list_metrics))
        .routes(routes!(get_metric, update_metric, delete_metric))
}

/// Creates a billable metric; events already stored for its code are counted at once.
#[utoipa::path(post, path = "/api/v1/billable_metrics", tag = "billable_metrics",
    request_body(content = Object, description = "`{\"billable_metric\": {name, code, aggregation_type, field_name, …}}`"),
    responses((status = 200, description = "`{\"billable_metric\": {…}}`"), (status = 422, description = "a field is refused")))]
async fn create_metric(
    State(state): State<AppState>,
    principal: Principal,
    body: Bytes,
) -> Result<Json<Value>, ApiError> {
    let value = parse_body(&body)?;
    let mut fields = Fields::new(root(&value, "billable_metric")?);
    let definition = read_definition(&mut fields, None)?;
    let definition = fields
        .finish(definition)?
        .ok_or_else(|| ApiError::BadRequest("the billable metric is incomplete".into()))?;
    let org = state.organization(principal.org).await?;
    let metric = state
        .store
        .create_metric(principal.org, definition.normalized(org.identifier_case))
        .await?;
    Ok(Json(json!({"billable_metric": metric_json(&metric)})))
}

/// Lists billable metrics, oldest first.
#[utoipa::path(get, path = "/api/v1/billable_metrics", tag = "billable_metrics",
    params(("page" = Option<u32>, Query), ("per_page" = Option<u32>, Query)),
    responses((status = 200, description = "`{\"billable_metrics\": […], \"meta\": {…}}`")))]
async fn list_metrics(
    State(state): State<AppState>,
    principal: Principal,
    RawQuery(raw): RawQuery,
) -> Result<Json<Value>, ApiError> {
    let page = QueryPairs::parse(raw.as_deref())?.page()?;
    let listed = state.store.list_metrics(principal.org, page).await?;
    let metrics: Vec<Value> = listed.items.iter().map(metric_json).collect();
    Ok(Json(
        json!({"billable_metrics": metrics, "meta": meta_json(PageMeta::new(page, listed.total))}),
    ))
}

/// Reads one billable metric.
#[utoipa::path(get, path = "/api/v1/billable_metrics/{code}", tag = "billable_metrics",
    params(("code" = String, Path)),
    responses((status = 200, description = "`{\"billable_metric\": {…}}`"), (status = 404, description = "`billable_metric_not_found`")))]
async fn get_metric(
    State(state): State<AppState>,
    principal: Principal,
    Path(code): Path<String>,
) -> Result<Json<Value>, ApiError> {
    let code = normalized_code(&state, principal, &code).await?;
    let metric = state.store.metric(principal.org, &code).await?;
    Ok(Json(json!({"billable_metric": metric_json(&metric)})))
}

/// Changes a billable metric; only the keys sent change. Rollups are recomputed when what it counts
/// changes.
#[utoipa::path(put, path = "/api/v1/billable_metrics/{code}", tag = "billable_metrics",
    params(("code" = String, Path)),
    request_body(content = Object, description = "`{\"billable_metric\": {…}}`, partial"),
    responses((status = 200, description = "`{\"billable_metric\": {…}}`"), (status = 404, description = "`billable_metric_not_found`")))]
async fn update_metric(
    State(state): State<AppState>,
    principal: Principal,
    Path(code): Path<String>,
    body: Bytes,
) -> Result<Json<Value>, ApiError> {
    let code = normalized_code(&state, principal, &code).await?;
    let existing = state.store.metric(principal.org, &code).await?;
    let value = parse_body(&body)?;
    let mut fields = Fields::new(root(&value, "billable_metric")?);
    let definition = read_definition(&mut fields, Some(&existing.definition))?;
    let definition = fields
        .finish(definition)?
        .ok_or_else(|| ApiError::BadRequest("the billable metric is incomplete".into()))?;
    let org = state.organization(principal.org).await?;
    let metric = state
        .store
        .update_metric(
            principal.org,
            &code,
            definition.normalized(org.identifier_case),
        )
        .await?;
    Ok(Json(json!({"billable_metric": metric_json(&metric)})))
}

/// Deletes a billable metric and its rollups; its events stay stored.
#[utoipa::path(delete, path = "/api/v1/billable_metrics/{code}", tag = "billable_metrics",
    params(("code" = String, Path)),
    responses((status = 200, description = "`{\"billable_metric\": {…}}`"), (status = 404, description = "`billable_metric_not_found`")))]
async fn delete_metric(
    State(state): State<AppState>,
    principal: Principal,
    Path(code): Path<String>,
) -> Result<Json<Value>, ApiError> {
    let code = normalized_code(&state, principal, &code).await?;
    let metric = state.store.delete_metric(principal.org, &code).await?;
    Ok(Json(json!({"billable_metric": metric_json(&metric)})))
}

/// Applies the organization's case policy to a code from a path, so any spelling finds the metric.
pub async fn normalized_code(
    state: &AppState,
    principal: Principal,
    code: &str,
) -> Result<String, ApiError> {
    let org = state.organization(principal.org).await?;
    Ok(org.identifier_case.apply(code).into_owned())
}

/// Reads a Lago billable metric object, on top of an existing definition for updates.
fn read_definition(
    fields: &mut Fields<'_>,
    base: Option<&MetricDefinition>,
) -> Result<Option<MetricDefinition>, ApiError> {
    let name = match base {
        None => fields.required_string("name"),
        Some(b) => fields
            .string("name")
            .value()
            .or_else(|| Some(b.name.clone())),
    };
    let code_text = match base {
        None => fields.required_string("code"),
        Some(b) => fields
            .string("code")
            .value()
            .or_else(|| Some(b.code.to_string())),
    };
    let code = code_text.and_then(|c| fields.errors.take(Code::parse("code", &c)));
    let description = match fields.string("description").patch() {
        Some(value) => value,
        None => base.and_then(|b| b.description.clone()),
    };
    let aggregation = match fields.string("aggregation_type") {
        Field::Value(name) => match AggregationType::from_lago(&name) {
            Some(t) => Some(t),
            None => {
                fields.fail("aggregation_type", Reason::ValueIsInvalid);
                None
            }
        },
        Field::Null | Field::Absent if base.is_none() => {
            fields.fail("aggregation_type", Reason::ValueIsMandatory);
            None
        }
        _ => base.map(|b| b.aggregation),
    };
    let field = match fields.string("field_name").patch() {
        Some(Some(name)) if !name.trim().is_empty() => Some(PropertyPath::key(name)),
        Some(_) => None,
        None => base.and_then(|b| b.field.clone()),
    };
    let recurring = fields
        .boolean("recurring")
        .value()
        .or(base.map(|b| b.recurring))
        .unwrap_or(false);
    let rounding_function = match fields.string("rounding_function").patch() {
        Some(Some(name)) => match RoundingFunction::parse(&name) {
            Some(f) => Some(f),
            None => {
                fields.fail("rounding_function", Reason::ValueIsInvalid);
                None
            }
        },
        Some(None) => None,
        None => base.and_then(|b| b.rounding.map(|r| r.function)),
    };
    let precision = match fields.integer("rounding_precision").patch() {
        Some(p) => p,
        None => base.and_then(|b| b.rounding.map(|r| i64::from(r.precision))),
    };
    let rounding = rounding_function.map(|function| Rounding {
        function,
        precision: precision
            .unwrap_or(0)
            .clamp(i64::from(i32::MIN), i64::from(i32::MAX)) as i32,
    });
    if let Field::Value(expression) = fields.string("expression")
        && !expression.trim().is_empty()
    {
        return Err(ApiError::NotImplemented(
            "billable metric expressions are not supported yet; use field_name".into(),
        ));
    }
    let interval = fields.string("weighted_interval").value();
    if aggregation == Some(AggregationType::WeightedSum) {
        match interval.as_deref() {
            Some("seconds") => {}
            None if base.is_some() => {}
            None => fields.fail("weighted_interval", Reason::ValueIsMandatory),
            Some(_) => fields.fail("weighted_interval", Reason::ValueIsInvalid),
        }
    }
    let filters = match fields.array("filters").patch() {
        Some(list) => read_filters(fields, list.map_or(&[][..], Vec::as_slice)),
        None => base.map(|b| b.filters.clone()).unwrap_or_default(),
    };
    let event_type = match fields.string("event_type").value() {
        Some(t) => fields.errors.take(Code::parse("event_type", &t)),
        // A Lago metric reads events of its own code unless told otherwise.
        None => match base {
            Some(b) if b.event_type != b.code => Some(b.event_type.clone()),
            _ => code.clone(),
        },
    };
    let (Some(name), Some(code), Some(aggregation), Some(event_type)) =
        (name, code, aggregation, event_type)
    else {
        return Ok(None);
    };
    let definition = MetricDefinition {
        code,
        name,
        description,
        aggregation,
        event_type,
        field: if aggregation.needs_field() {
            field
        } else {
            None
        },
        recurring,
        rounding,
        filters,
        group_by: base.map(|b| b.group_by.clone()).unwrap_or_default(),
        event_from: base.and_then(|b| b.event_from),
    };
    if let Err(errors) = definition.validate() {
        for error in errors.errors() {
            fields.errors.push(error.field.clone(), error.reason);
        }
    }
    Ok(Some(definition))
}

fn read_filters(fields: &mut Fields<'_>, list: &[Value]) -> Vec<MetricFilter> {
    let mut filters = Vec::new();
    for (index, item) in list.iter().enumerate() {
        let Some(object) = item.as_object() else {
            fields.fail(&format!("filters.{index}"), Reason::InvalidFormat);
            continue;
        };
        let mut nested = Fields::nested(object, &format!("filters.{index}"));
        let key = nested.required_string("key");
        let values: Option<Vec<String>> = match nested.array("values").value() {
            Some(values) => values
                .iter()
                .map(|v| v.as_str().map(str::to_owned))
                .collect(),
            None => None,
        };
        if values.is_none() {
            nested.fail("values", Reason::ValueIsMandatory);
        }
        fields.absorb(nested);
        if let (Some(key), Some(values)) = (key, values) {
            filters.push(MetricFilter { key, values });
        }
    }
    filters
}

/// Renders a metric in Lago's shape (plus tally's `event_type`).
pub fn metric_json(metric: &Metric) -> Value {
    let d = &metric.definition;
    let field_name = d.field.as_ref().map(|p| {
        p.top_level_key()
            .map_or_else(|| p.to_json_path(), str::to_owned)
    });
    let filters: Vec<Value> = d
        .filters
        .iter()
        .map(|f| json!({"key": f.key, "values": f.values}))
        .collect();
    let group_by: BTreeMap<&str, String> = d
        .group_by
        .iter()
        .map(|(k, p)| (k.as_str(), p.to_json_path()))
        .collect();
    json!({
        "lago_id": metric.id.0,
        "name": d.name,
        "code": d.code.as_str(),
        "description": d.description,
        "aggregation_type": d.aggregation.lago_name().or(d.aggregation.openmeter_name()),
        "weighted_interval": (d.aggregation == AggregationType::WeightedSum).then_some("seconds"),
        "recurring": d.recurring,
        "rounding_function": d.rounding.map(|r| r.function.name()),
        "rounding_precision": d.rounding.map(|r| r.precision),
        "field_name": field_name,
        "expression": null,
        "filters": filters,
        "event_type": d.event_type.as_str(),
        "group_by": group_by,
        "active_subscriptions_count": 0,
        "draft_invoices_count": 0,
        "plans_count": 0,
        "created_at": metric.created_at.to_rfc3339_seconds(),
        "updated_at": metric.updated_at.to_rfc3339_seconds(),
    })
}

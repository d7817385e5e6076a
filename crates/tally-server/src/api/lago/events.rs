//! Lago events: `POST /events` (one, or CloudEvents by content type), `POST /events/batch` (≤ 100,
//! all or nothing), `POST /events/bulk` (NDJSON, ≤ 100,000 lines), `GET /events/{transaction_id}` and
//! `GET /events`.
//!
//! An answer is sent only after the events are durably committed. Re-sending an identical event
//! succeeds and changes nothing; reusing a transaction id with another payload is refused with
//! `value_already_exist` and the stored event is untouched.

use std::collections::BTreeMap;

use axum::Json;
use axum::body::{Body, Bytes};
use axum::extract::{Path, RawQuery, State};
use axum::http::{HeaderMap, header};
use axum::response::{IntoResponse, Response};
use futures::StreamExt;
use serde_json::{Map, Value, json};
use tally_core::error::{Reason, ValidationErrors};
use tally_core::event::{EventDraft, NewEvent};
use tally_core::id::{Code, ExternalId};
use tally_core::page::PageMeta;
use tally_core::time::Timestamp;
use tally_store::{Atomicity, EventFilter, EventOutcome, StoredEvent};
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use super::customers::meta_json;
use crate::api::fields::{Fields, parse_body, root};
use crate::api::openmeter;
use crate::api::query::QueryPairs;
use crate::auth::Principal;
use crate::error::ApiError;
use crate::state::AppState;

/// Events in one Lago batch, at most.
pub const MAX_BATCH: usize = 100;
/// Lines in one bulk request, at most.
pub const MAX_BULK_LINES: usize = 100_000;
/// Events per store call when a bulk request is committed.
const BULK_CHUNK: usize = 5_000;

/// The event routes.
pub fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(create_event, list_events))
        .routes(routes!(create_batch))
        .routes(routes!(estimate_fees))
        .routes(routes!(get_event))
}

/// The bulk NDJSON route, kept apart for its larger body limit.
pub fn bulk_router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new().routes(routes!(create_bulk))
}

/// Reads one Lago event object.
pub fn parse_lago_event(object: &Map<String, Value>) -> Result<EventDraft, ValidationErrors> {
    parse_owned_event(object.clone())
}

/// Reads one Lago event object it owns, moving the properties instead of copying them (bulk ingest).
fn parse_owned_event(mut object: Map<String, Value>) -> Result<EventDraft, ValidationErrors> {
    let raw_properties = object.remove("properties");
    let mut fields = Fields::new(&object);
    let transaction_id = fields
        .required_string("transaction_id")
        .and_then(|t| fields.errors.take(ExternalId::parse("transaction_id", &t)));
    let code = fields
        .required_string("code")
        .and_then(|c| fields.errors.take(Code::parse("code", &c)));
    let id = |fields: &mut Fields<'_>, name: &str| {
        fields
            .string(name)
            .value()
            .and_then(|v| fields.errors.take(ExternalId::parse(name, &v)))
    };
    let subscription = id(&mut fields, "external_subscription_id");
    let customer = id(&mut fields, "external_customer_id");
    if subscription.is_none() && customer.is_none() && fields.errors.is_empty() {
        fields.fail("external_subscription_id", Reason::ValueIsMandatory);
    }
    let timestamp = match fields.raw("timestamp") {
        None | Some(Value::Null) => None,
        Some(value) => match Timestamp::parse_lago(value) {
            Some(at) => Some(at),
            None => {
                fields.fail("timestamp", Reason::InvalidFormat);
                None
            }
        },
    };
    let properties = match raw_properties {
        None | Some(Value::Null) => Map::new(),
        Some(Value::Object(map)) => map,
        Some(_) => {
            fields.fail("properties", Reason::InvalidFormat);
            Map::new()
        }
    };
    let precise = match fields.raw("precise_total_amount_cents") {
        None | Some(Value::Null) => None,
        Some(value) => match tally_core::quantity::parse_decimal(value) {
            Ok(d) => Some(d),
            Err(_) => {
                fields.fail("precise_total_amount_cents", Reason::InvalidFormat);
                None
            }
        },
    };
    let errors = fields.errors;
    match (transaction_id, code) {
        (Some(transaction_id), Some(code)) if errors.is_empty() => Ok(EventDraft {
            source: None,
            transaction_id,
            code,
            subject: customer,
            external_subscription_id: subscription,
            timestamp,
            properties,
            precise_total_amount_cents: precise,
        }),
        _ => Err(errors),
    }
}

/// Renders a stored event in Lago's shape, with tally's `billable` and `billing_issue`.
pub fn event_json(event: &StoredEvent) -> Value {
    json!({
        "lago_id": event.id,
        "transaction_id": event.transaction_id,
        "source": event.source,
        "lago_customer_id": event.customer_id,
        "external_customer_id": event.subject,
        "code": event.code,
        "timestamp": event.timestamp.to_rfc3339_millis(),
        "precise_total_amount_cents": event.precise_total_amount_cents.map(|d| d.to_string()),
        "properties": event.properties,
        "lago_subscription_id": null,
        "external_subscription_id": event.external_subscription_id,
        "created_at": event.received_at.to_rfc3339_seconds(),
        "billable": event.issue.is_none(),
        "billing_issue": event.issue.as_ref().map(|i| json!({"code": i.code, "detail": i.detail})),
        "original": event.original,
    })
}

/// Counts outcomes in `/metrics`.
pub fn count_outcomes(outcomes: &[EventOutcome], rejected: usize) {
    let mut accepted = 0u64;
    let mut duplicates = 0u64;
    let mut conflicts = 0u64;
    for outcome in outcomes {
        match outcome {
            EventOutcome::Stored(event) => {
                accepted += 1;
                if let Some(issue) = &event.issue {
                    metrics::counter!("tally_events_unbillable_total", "reason" => issue.code.clone()).increment(1);
                }
            }
            EventOutcome::Duplicate(_) => duplicates += 1,
            EventOutcome::Conflict(_) => conflicts += 1,
        }
    }
    for (outcome, count) in [
        ("accepted", accepted),
        ("duplicate", duplicates),
        ("conflict", conflicts),
        ("rejected", rejected as u64),
    ] {
        if count > 0 {
            metrics::counter!("tally_events_total", "outcome" => outcome).increment(count);
        }
    }
}

/// Fingerprints and normalizes drafts for the caller's organization.
pub async fn prepare(
    state: &AppState,
    principal: Principal,
    drafts: Vec<EventDraft>,
) -> Result<Vec<NewEvent>, ApiError> {
    let org = state.organization(principal.org).await?;
    let received_at = state.clock.now();
    Ok(drafts
        .into_iter()
        .map(|d| d.prepare(principal.org, org.identifier_case, received_at))
        .collect())
}

fn media_type(headers: &HeaderMap) -> String {
    headers
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.split(';').next())
        .map(|v| v.trim().to_ascii_lowercase())
        .unwrap_or_default()
}

/// Sends one event (Lago `{"event": {...}}`), or CloudEvents when the content type or body says so.
#[utoipa::path(post, path = "/api/v1/events", tag = "events",
    request_body(content = Object, description = "Lago: `{\"event\": {transaction_id, external_subscription_id | external_customer_id, code, timestamp, properties}}` (application/json). OpenMeter: a CloudEvent (application/cloudevents+json) or an array (application/cloudevents-batch+json)"),
    responses((status = 200, description = "Lago: `{\"event\": {…}}`"), (status = 204, description = "CloudEvents stored"),
        (status = 422, description = "Lago: refused, e.g. `{\"transaction_id\": [\"value_already_exist\"]}`"),
        (status = 409, description = "CloudEvents: an id is stored with another payload")))]
async fn create_event(
    State(state): State<AppState>,
    principal: Principal,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let media = media_type(&headers);
    if media.starts_with("application/cloudevents") {
        return openmeter::events::ingest(&state, principal, &media, &body).await;
    }
    let value = match parse_body(&body) {
        Ok(value) => value,
        Err(error) => return error.into_response(),
    };
    let cloud = value.is_array() || value.get("specversion").is_some();
    if cloud {
        return openmeter::events::ingest_value(&state, principal, value).await;
    }
    if value.get("events").is_some() && value.get("event").is_none() {
        return batch(&state, principal, &value).await.into_response();
    }
    single(&state, principal, &value).await.into_response()
}

async fn single(
    state: &AppState,
    principal: Principal,
    value: &Value,
) -> Result<Json<Value>, ApiError> {
    let object = root(value, "event")?;
    let draft = match parse_lago_event(object) {
        Ok(draft) => draft,
        Err(errors) => {
            count_outcomes(&[], 1);
            return Err(ApiError::Validation(errors));
        }
    };
    let events = prepare(state, principal, vec![draft]).await?;
    let outcomes = state
        .store
        .record_events(principal.org, events, Atomicity::AllOrNothing)
        .await?;
    count_outcomes(&outcomes, 0);
    match outcomes.into_iter().next() {
        Some(EventOutcome::Stored(event) | EventOutcome::Duplicate(event)) => {
            Ok(Json(json!({"event": event_json(&event)})))
        }
        Some(EventOutcome::Conflict(_)) => {
            Err(ApiError::field("transaction_id", Reason::ValueAlreadyExist))
        }
        None => Err(ApiError::Internal("no outcome for a recorded event".into())),
    }
}

/// Sends up to 100 events as one transaction: if any is refused, none is stored.
#[utoipa::path(post, path = "/api/v1/events/batch", tag = "events",
    request_body(content = Object, description = "`{\"events\": [ ≤ 100 Lago events ]}`"),
    responses((status = 200, description = "`{\"events\": […]}` in input order"),
        (status = 422, description = "refused, `error_details` keyed by event index; nothing stored")))]
async fn create_batch(
    State(state): State<AppState>,
    principal: Principal,
    body: Bytes,
) -> Result<Json<Value>, ApiError> {
    let value = parse_body(&body)?;
    batch(&state, principal, &value).await
}

async fn batch(
    state: &AppState,
    principal: Principal,
    value: &Value,
) -> Result<Json<Value>, ApiError> {
    let list = value
        .get("events")
        .ok_or_else(|| {
            ApiError::BadRequest("param is missing or the value is empty: events".into())
        })?
        .as_array()
        .ok_or_else(|| ApiError::field("events", Reason::InvalidFormat))?;
    if list.is_empty() {
        return Err(ApiError::field("events", Reason::NoEvents));
    }
    if list.len() > MAX_BATCH {
        return Err(ApiError::field("events", Reason::TooManyEvents));
    }
    let mut drafts = Vec::with_capacity(list.len());
    let mut refused: BTreeMap<usize, ValidationErrors> = BTreeMap::new();
    for (index, item) in list.iter().enumerate() {
        let parsed = item
            .as_object()
            .ok_or_else(|| {
                ValidationErrors::from(tally_core::FieldError::new("event", Reason::InvalidFormat))
            })
            .and_then(parse_lago_event);
        match parsed {
            Ok(draft) => drafts.push(draft),
            Err(errors) => {
                refused.insert(index, errors);
            }
        }
    }
    if !refused.is_empty() {
        count_outcomes(&[], list.len());
        return Err(ApiError::BatchValidation(refused));
    }
    let events = prepare(state, principal, drafts).await?;
    let outcomes = state
        .store
        .record_events(principal.org, events, Atomicity::AllOrNothing)
        .await?;
    let conflicts: BTreeMap<usize, ValidationErrors> = outcomes
        .iter()
        .enumerate()
        .filter(|(_, o)| matches!(o, EventOutcome::Conflict(_)))
        .map(|(index, _)| {
            (
                index,
                ValidationErrors::from(tally_core::FieldError::new(
                    "transaction_id",
                    Reason::ValueAlreadyExist,
                )),
            )
        })
        .collect();
    if !conflicts.is_empty() {
        count_outcomes(&[], outcomes.len());
        return Err(ApiError::BatchValidation(conflicts));
    }
    count_outcomes(&outcomes, 0);
    let events: Vec<Value> = outcomes
        .iter()
        .filter_map(|o| match o {
            EventOutcome::Stored(e) | EventOutcome::Duplicate(e) => Some(event_json(e)),
            EventOutcome::Conflict(_) => None,
        })
        .collect();
    Ok(Json(json!({"events": events})))
}

/// Estimates what one event would bill now on the pay-in-advance charges of its subscription,
/// storing nothing. A missing `transaction_id` is made up; `timestamp` defaults to now.
#[utoipa::path(post, path = "/api/v1/events/estimate_fees", tag = "events",
    request_body(content = Object, description = "`{\"event\": {code, external_subscription_id | external_customer_id, properties, transaction_id?, timestamp?}}`"),
    responses((status = 200, description = "`{\"fees\": [fee…]}`, without `lago_id` or invoice"),
        (status = 404, description = "`customer_not_found`, `subscription_not_found` or `billable_metric_not_found`"),
        (status = 422, description = "`{\"code\": [\"does_not_match_an_instant_charge\"]}`, or a property that is not a number")))]
async fn estimate_fees(
    State(state): State<AppState>,
    principal: Principal,
    body: Bytes,
) -> Result<Json<Value>, ApiError> {
    let value = parse_body(&body)?;
    let mut object = root(&value, "event")?.clone();
    if object.get("transaction_id").is_none_or(Value::is_null) {
        object.insert(
            "transaction_id".into(),
            Value::String(uuid::Uuid::new_v4().to_string()),
        );
    }
    let draft = parse_lago_event(&object).map_err(ApiError::Validation)?;
    let event = prepare(&state, principal, vec![draft])
        .await?
        .into_iter()
        .next()
        .ok_or_else(|| ApiError::Internal("no event prepared".into()))?;
    let fees = state
        .store
        .estimate_fees(principal.org, event, state.clock.now())
        .await?;
    let fees: Vec<Value> = fees
        .iter()
        .map(|record| {
            let mut fee = super::fees::fee_record_json(record);
            if let Some(map) = fee.as_object_mut() {
                // Nothing is stored: the estimate has no id of its own.
                map.insert("lago_id".into(), Value::Null);
            }
            fee
        })
        .collect();
    Ok(Json(json!({ "fees": fees })))
}

/// A refused line of a bulk request.
struct RefusedLine {
    line: usize,
    reason: String,
}

/// Sends up to 100,000 events as NDJSON (one Lago event per line, bare or under `"event"`). Each line
/// stands alone: good lines are stored even when others are refused. Answers counts and the refused
/// line numbers with their reasons.
#[utoipa::path(post, path = "/api/v1/events/bulk", tag = "events",
    request_body(content = String, content_type = "application/x-ndjson", description = "one Lago event per line"),
    responses((status = 200, description = "`{\"accepted\", \"duplicates\", \"rejected\", \"rejected_lines\": [{\"line\", \"reason\"}]}`"),
        (status = 413, description = "more than 100,000 lines; nothing stored")))]
async fn create_bulk(
    State(state): State<AppState>,
    principal: Principal,
    body: Body,
) -> Result<Json<Value>, ApiError> {
    let mut stream = body.into_data_stream();
    let mut pending: Vec<u8> = Vec::new();
    let mut line_no = 0usize;
    let mut received = 0usize;
    let mut drafts: Vec<(usize, EventDraft)> = Vec::new();
    let mut refused: Vec<RefusedLine> = Vec::new();
    let handle = |line: &[u8],
                  line_no: usize,
                  drafts: &mut Vec<(usize, EventDraft)>,
                  refused: &mut Vec<RefusedLine>| {
        let text = line.strip_suffix(b"\r").unwrap_or(line);
        if text.iter().all(u8::is_ascii_whitespace) {
            return;
        }
        match parse_line(text) {
            Ok(draft) => drafts.push((line_no, draft)),
            Err(reason) => refused.push(RefusedLine {
                line: line_no,
                reason,
            }),
        }
    };
    while let Some(chunk) = stream.next().await {
        let chunk =
            chunk.map_err(|e| ApiError::BadRequest(format!("the body could not be read: {e}")))?;
        received += chunk.len();
        if received > crate::api::BULK_BODY_LIMIT {
            return Err(ApiError::PayloadTooLarge(format!(
                "a bulk request body holds at most {} bytes",
                crate::api::BULK_BODY_LIMIT
            )));
        }
        pending.extend_from_slice(&chunk);
        let mut start = 0;
        while let Some(offset) = pending[start..].iter().position(|&b| b == b'\n') {
            line_no += 1;
            if line_no > MAX_BULK_LINES {
                return Err(ApiError::PayloadTooLarge(format!(
                    "a bulk request holds at most {MAX_BULK_LINES} lines"
                )));
            }
            handle(
                &pending[start..start + offset],
                line_no,
                &mut drafts,
                &mut refused,
            );
            start += offset + 1;
        }
        pending.drain(..start);
    }
    if !pending.is_empty() {
        line_no += 1;
        if line_no > MAX_BULK_LINES {
            return Err(ApiError::PayloadTooLarge(format!(
                "a bulk request holds at most {MAX_BULK_LINES} lines"
            )));
        }
        handle(&pending, line_no, &mut drafts, &mut refused);
    }
    let (lines, drafts): (Vec<usize>, Vec<EventDraft>) = drafts.into_iter().unzip();
    let events = prepare(&state, principal, drafts).await?;
    let mut chunks = Vec::new();
    let mut events = events.into_iter().peekable();
    while events.peek().is_some() {
        let chunk: Vec<NewEvent> = events.by_ref().take(BULK_CHUNK).collect();
        let store = state.store.clone();
        chunks.push(async move {
            store
                .record_events(principal.org, chunk, Atomicity::EachEvent)
                .await
        });
    }
    let mut outcomes = Vec::with_capacity(lines.len());
    for result in futures::future::join_all(chunks).await {
        outcomes.extend(result?);
    }
    let (mut accepted, mut duplicates) = (0usize, 0usize);
    for (line, outcome) in lines.iter().zip(&outcomes) {
        match outcome {
            EventOutcome::Stored(_) => accepted += 1,
            EventOutcome::Duplicate(_) => duplicates += 1,
            EventOutcome::Conflict(_) => refused.push(RefusedLine {
                line: *line,
                reason: "transaction_id: value_already_exist (another event is stored under this transaction_id)".into(),
            }),
        }
    }
    let structural = refused.len()
        - outcomes
            .iter()
            .filter(|o| matches!(o, EventOutcome::Conflict(_)))
            .count();
    count_outcomes(&outcomes, structural);
    refused.sort_by_key(|r| r.line);
    let rejected: Vec<Value> = refused
        .iter()
        .map(|r| json!({"line": r.line, "reason": r.reason}))
        .collect();
    Ok(Json(json!({
        "accepted": accepted,
        "duplicates": duplicates,
        "rejected": rejected.len(),
        "rejected_lines": rejected,
    })))
}

fn parse_line(text: &[u8]) -> Result<EventDraft, String> {
    let value: Value = serde_json::from_slice(text).map_err(|e| format!("not valid JSON: {e}"))?;
    let Value::Object(mut object) = value else {
        return Err("a line must be a JSON object".to_owned());
    };
    let object = match object.remove("event") {
        Some(Value::Object(inner)) => inner,
        Some(other) => {
            object.insert("event".into(), other);
            object
        }
        None => object,
    };
    parse_owned_event(object).map_err(|errors| errors.to_string())
}

/// Reads one event by transaction id (add `?source=` for a CloudEvent).
#[utoipa::path(get, path = "/api/v1/events/{transaction_id}", tag = "events",
    params(("transaction_id" = String, Path), ("source" = Option<String>, Query, description = "the CloudEvent source, to find a CloudEvent")),
    responses((status = 200, description = "`{\"event\": {…}}`"), (status = 404, description = "`event_not_found`")))]
async fn get_event(
    State(state): State<AppState>,
    principal: Principal,
    Path(transaction_id): Path<String>,
    RawQuery(raw): RawQuery,
) -> Result<Json<Value>, ApiError> {
    let query = QueryPairs::parse(raw.as_deref())?;
    let event = state
        .store
        .event(principal.org, query.get("source"), &transaction_id)
        .await?;
    Ok(Json(json!({"event": event_json(&event)})))
}

/// Lists events, newest first; `billable=false` lists the events that cannot be billed, with why.
#[utoipa::path(get, path = "/api/v1/events", tag = "events",
    params(("page" = Option<u32>, Query), ("per_page" = Option<u32>, Query), ("code" = Option<String>, Query),
        ("external_customer_id" = Option<String>, Query), ("external_subscription_id" = Option<String>, Query),
        ("timestamp_from" = Option<String>, Query), ("timestamp_to" = Option<String>, Query),
        ("billable" = Option<bool>, Query, description = "false: only events that cannot be billed")),
    responses((status = 200, description = "`{\"events\": […], \"meta\": {…}}`")))]
async fn list_events(
    State(state): State<AppState>,
    principal: Principal,
    RawQuery(raw): RawQuery,
) -> Result<Json<Value>, ApiError> {
    let query = QueryPairs::parse(raw.as_deref())?;
    const OPENMETER_ONLY: [&str; 8] = [
        "limit",
        "from",
        "to",
        "subject",
        "id",
        "ingestedAtFrom",
        "ingestedAtTo",
        "customerId",
    ];
    if let Some(name) = OPENMETER_ONLY.iter().find(|name| query.has(name)) {
        return Err(ApiError::NotImplemented(format!(
            "OpenMeter's event listing (parameter {name}) is not supported yet; use page, per_page, code, external_customer_id, timestamp_from, timestamp_to and billable"
        )));
    }
    let page = query.page()?;
    let time = |name: &str| -> Result<Option<Timestamp>, ApiError> {
        query
            .get(name)
            .map(|v| {
                Timestamp::parse_rfc3339(v)
                    .or_else(|| Timestamp::parse_lago(&Value::String(v.to_owned())))
                    .ok_or_else(|| ApiError::BadRequest(format!("{name} must be an RFC 3339 time")))
            })
            .transpose()
    };
    let billable = match query.get("billable") {
        None => None,
        Some("true") => Some(true),
        Some("false") => Some(false),
        Some(_) => {
            return Err(ApiError::BadRequest(
                "billable must be true or false".into(),
            ));
        }
    };
    let org = state.organization(principal.org).await?;
    let filter = EventFilter {
        code: query
            .get("code")
            .map(|c| org.identifier_case.apply(c).into_owned()),
        subject: query.get("external_customer_id").map(str::to_owned),
        external_subscription_id: query.get("external_subscription_id").map(str::to_owned),
        from: time("timestamp_from")?,
        to: time("timestamp_to")?,
        billable,
    };
    let listed = state
        .store
        .list_events(principal.org, &filter, page)
        .await?;
    let events: Vec<Value> = listed.items.iter().map(event_json).collect();
    Ok(Json(
        json!({"events": events, "meta": meta_json(PageMeta::new(page, listed.total))}),
    ))
}

//! CloudEvents ingest on `POST /api/v1/events` (`application/cloudevents+json` for one event,
//! `application/cloudevents-batch+json` for an array, or `application/json` carrying either).
//!
//! A request is one transaction: every event is stored, or — when one is malformed or reuses an
//! (`source`, `id`) pair with another payload — none is. Identical re-sends succeed and change nothing.

use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use serde_json::{Map, Value};
use tally_core::event::EventDraft;
use tally_core::id::{Code, ExternalId};
use tally_core::time::Timestamp;
use tally_store::{Atomicity, EventOutcome};

use crate::api::lago::events::{count_outcomes, prepare};
use crate::auth::Principal;
use crate::error::{ApiError, Problem};
use crate::state::AppState;

/// CloudEvents in one request, at most.
pub const MAX_CLOUD_BATCH: usize = 1_000;

/// Ingests a body sent with a CloudEvents content type.
pub async fn ingest(state: &AppState, principal: Principal, _media: &str, body: &[u8]) -> Response {
    let value: Value = match serde_json::from_slice(body) {
        Ok(value) => value,
        Err(e) => {
            return Problem(ApiError::BadRequest(format!(
                "the body is not valid JSON: {e}"
            )))
            .into_response();
        }
    };
    ingest_value(state, principal, value).await
}

/// Ingests one CloudEvent or an array of them; answers 204 once committed.
pub async fn ingest_value(state: &AppState, principal: Principal, value: Value) -> Response {
    match store(state, principal, value).await {
        Ok(()) => StatusCode::NO_CONTENT.into_response(),
        Err(problem) => problem.into_response(),
    }
}

async fn store(state: &AppState, principal: Principal, value: Value) -> Result<(), Problem> {
    let items = match value {
        Value::Array(items) => items,
        single => vec![single],
    };
    if items.is_empty() {
        return Err(Problem(ApiError::BadRequest("no events".into())));
    }
    if items.len() > MAX_CLOUD_BATCH {
        return Err(Problem(ApiError::PayloadTooLarge(format!(
            "at most {MAX_CLOUD_BATCH} events per request"
        ))));
    }
    let mut drafts = Vec::with_capacity(items.len());
    for (index, item) in items.iter().enumerate() {
        match parse_cloud_event(item) {
            Ok(draft) => drafts.push(draft),
            Err(reason) => {
                count_outcomes(&[], items.len());
                let prefix = if items.len() > 1 {
                    format!("event {index}: ")
                } else {
                    String::new()
                };
                return Err(Problem(ApiError::BadRequest(format!(
                    "invalid event: {prefix}{reason}"
                ))));
            }
        }
    }
    let events = prepare(state, principal, drafts).await?;
    let outcomes = state
        .store
        .record_events(principal.org, events, Atomicity::AllOrNothing)
        .await?;
    let conflicts: Vec<String> = outcomes
        .iter()
        .filter_map(|o| match o {
            EventOutcome::Conflict(e) => Some(format!(
                "{}/{}",
                e.source.as_deref().unwrap_or(""),
                e.transaction_id
            )),
            _ => None,
        })
        .collect();
    if !conflicts.is_empty() {
        count_outcomes(&[], outcomes.len());
        return Err(Problem(ApiError::Conflict(format!(
            "another event is stored under the same source and id: {}; nothing was stored",
            conflicts.join(", ")
        ))));
    }
    count_outcomes(&outcomes, 0);
    Ok(())
}

fn required<'a>(object: &'a Map<String, Value>, name: &str) -> Result<&'a str, String> {
    match object.get(name) {
        Some(Value::String(s)) if !s.trim().is_empty() => Ok(s),
        Some(Value::String(_)) | None | Some(Value::Null) => Err(format!("{name} is required")),
        Some(_) => Err(format!("{name} must be a string")),
    }
}

/// Reads one CloudEvent 1.0.
pub fn parse_cloud_event(value: &Value) -> Result<EventDraft, String> {
    let object = value
        .as_object()
        .ok_or("a CloudEvent must be a JSON object")?;
    let version = required(object, "specversion")?;
    if version != "1.0" {
        return Err(format!("specversion must be \"1.0\", not {version:?}"));
    }
    let id = ExternalId::parse("id", required(object, "id")?)
        .map_err(|e| format!("id: {}", e.reason))?;
    let source = required(object, "source")?.to_owned();
    let code = Code::parse("type", required(object, "type")?)
        .map_err(|e| format!("type: {}", e.reason))?;
    let subject = ExternalId::parse("subject", required(object, "subject")?)
        .map_err(|e| format!("subject: {}", e.reason))?;
    let timestamp = match object.get("time") {
        None | Some(Value::Null) => None,
        Some(Value::String(text)) => Some(
            Timestamp::parse_rfc3339(text)
                .ok_or_else(|| format!("time {text:?} is not an RFC 3339 time"))?,
        ),
        Some(_) => return Err("time must be an RFC 3339 string".into()),
    };
    let properties = match object.get("data") {
        None | Some(Value::Null) => Map::new(),
        Some(Value::Object(data)) => data.clone(),
        Some(_) => return Err("data must be a JSON object".into()),
    };
    Ok(EventDraft {
        source: Some(source),
        transaction_id: id,
        code,
        subject: Some(subject),
        external_subscription_id: None,
        timestamp,
        properties,
        precise_total_amount_cents: None,
    })
}

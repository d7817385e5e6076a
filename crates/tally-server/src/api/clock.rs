//! The simulated billing clock: `GET /api/v1/clock` and `POST /api/v1/clock {"now": RFC 3339}`.
//! They exist only when the server runs with `--clock simulated`; elsewhere they answer 404 like any
//! unknown route. Moving the clock runs all billing due up to the new time before answering.

use axum::Json;
use axum::body::Bytes;
use axum::extract::State;
use serde_json::{Value, json};
use tally_core::Timestamp;
use tally_core::error::Reason;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use crate::api::fields::{Fields, parse_body};
use crate::auth::Principal;
use crate::error::ApiError;
use crate::state::AppState;

/// The clock routes.
pub fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new().routes(routes!(get_clock, set_clock))
}

fn simulated(state: &AppState) -> Result<&crate::clock::SimulatedClock, ApiError> {
    state
        .simulated
        .as_deref()
        .ok_or(ApiError::NotFound("resource"))
}

/// Reads the simulated clock (only with `tally serve --clock simulated`).
#[utoipa::path(get, path = "/api/v1/clock", tag = "clock",
    responses((status = 200, description = "`{\"clock\": {\"now\": RFC 3339}}`"), (status = 404, description = "not running on a simulated clock")))]
async fn get_clock(
    State(state): State<AppState>,
    _principal: Principal,
) -> Result<Json<Value>, ApiError> {
    let clock = simulated(&state)?;
    use crate::clock::Clock;
    Ok(Json(
        json!({"clock": {"now": clock.now().to_rfc3339_micros()}}),
    ))
}

/// Moves the simulated clock forward and runs all billing due up to the new time; answers the ids of
/// the invoices created (admin scope; only with `tally serve --clock simulated`).
#[utoipa::path(post, path = "/api/v1/clock", tag = "clock",
    request_body(content = Object, description = "`{\"now\": \"2026-02-01T00:00:00Z\"}` (not before the current time)"),
    responses((status = 200, description = "`{\"clock\": {\"now\"}, \"invoices\": [lago_id, …]}`"), (status = 422, description = "`now` is missing, invalid or in the past")))]
async fn set_clock(
    State(state): State<AppState>,
    _principal: Principal,
    body: Bytes,
) -> Result<Json<Value>, ApiError> {
    let clock = simulated(&state)?;
    let value = parse_body(&body)?;
    let object = value
        .as_object()
        .ok_or_else(|| ApiError::BadRequest("the body must be a JSON object".into()))?;
    let mut fields = Fields::new(object);
    let target = match fields.required_string("now") {
        Some(text) => Timestamp::parse_rfc3339(&text).or_else(|| {
            fields.fail("now", Reason::InvalidDate);
            None
        }),
        None => None,
    };
    let target = fields
        .finish(target)?
        .ok_or(ApiError::field("now", Reason::ValueIsMandatory))?;
    if !clock.advance(target) {
        return Err(ApiError::field("now", Reason::InvalidDate));
    }
    let created = state.store.run_billing(target).await?;
    let ids: Vec<Value> = created.iter().map(|id| json!(id.0)).collect();
    Ok(Json(
        json!({"clock": {"now": target.to_rfc3339_micros()}, "invoices": ids}),
    ))
}

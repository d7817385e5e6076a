//! The caller's organization: `GET /organizations` and `PUT /organizations`, where tally adds the
//! `identifier_case` setting (the case converter, see docs/case.md).

use axum::Json;
use axum::body::Bytes;
use axum::extract::State;
use serde_json::{Value, json};
use tally_core::case::IdentifierCase;
use tally_core::error::Reason;
use tally_core::organization::{Organization, OrganizationPatch};
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use crate::api::fields::{Fields, parse_body, root};
use crate::auth::Principal;
use crate::error::ApiError;
use crate::state::AppState;

/// The organization routes.
pub fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new().routes(routes!(get_organization, update_organization))
}

fn organization_json(org: &Organization) -> Value {
    json!({
        "lago_id": org.id.0,
        "name": org.name,
        "timezone": org.timezone.name(),
        "identifier_case": org.identifier_case.name(),
        "created_at": org.created_at.to_rfc3339_seconds(),
        "taxes": [],
    })
}

/// Reads the caller's organization.
#[utoipa::path(get, path = "/api/v1/organizations", tag = "organizations",
    responses((status = 200, description = "`{\"organization\": {lago_id, name, timezone, identifier_case, …}}`")))]
async fn get_organization(
    State(state): State<AppState>,
    principal: Principal,
) -> Result<Json<Value>, ApiError> {
    let org = state.store.organization(principal.org).await?;
    Ok(Json(json!({"organization": organization_json(&org)})))
}

/// Changes the caller's organization: `name`, `timezone` and `identifier_case` (none, snake_case,
/// camelCase, kebab-case, lower, upper). Other Lago settings are accepted and ignored for now.
#[utoipa::path(put, path = "/api/v1/organizations", tag = "organizations",
    request_body(content = Object, description = "`{\"organization\": {name, timezone, identifier_case}}`"),
    responses((status = 200, description = "`{\"organization\": {…}}`"), (status = 422, description = "a field is refused")))]
async fn update_organization(
    State(state): State<AppState>,
    principal: Principal,
    body: Bytes,
) -> Result<Json<Value>, ApiError> {
    let value = parse_body(&body)?;
    let mut fields = Fields::new(root(&value, "organization")?);
    let mut patch = OrganizationPatch {
        name: fields.string("name").value(),
        ..Default::default()
    };
    if let Some(tz) = fields.string("timezone").value() {
        match tz.parse() {
            Ok(tz) => patch.timezone = Some(tz),
            Err(_) => fields.fail("timezone", Reason::InvalidTimezone),
        }
    }
    if let Some(case) = fields.string("identifier_case").value() {
        match case.parse::<IdentifierCase>() {
            Ok(case) => patch.identifier_case = Some(case),
            Err(_) => fields.fail("identifier_case", Reason::ValueIsInvalid),
        }
    }
    let patch = fields.finish(patch)?;
    let org = state
        .store
        .update_organization(principal.org, patch)
        .await?;
    state.remember_organization(org.clone());
    Ok(Json(json!({"organization": organization_json(&org)})))
}

//! The caller's organization: `GET /organizations` and `PUT /organizations`, where tally adds the
//! `identifier_case` setting (the case converter, see docs/case.md).

use axum::Json;
use axum::body::Bytes;
use axum::extract::State;
use serde_json::{Value, json};
use tally_core::case::IdentifierCase;
use tally_core::error::Reason;
use tally_core::invoice::number_prefix;
use tally_core::organization::{DocumentNumbering, Organization, OrganizationPatch};
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
        "net_payment_term": org.billing.net_payment_term,
        "document_numbering": org.billing.document_numbering.name(),
        "document_number_prefix": prefix(org),
        "billing_configuration": {
            "invoice_grace_period": org.billing.invoice_grace_period,
            "invoice_footer": null,
            "document_locale": "en",
        },
        "created_at": org.created_at.to_rfc3339_seconds(),
        "taxes": [],
    })
}

/// The prefix of invoice numbers: the configured one, else derived from the name and id.
fn prefix(org: &Organization) -> String {
    org.billing
        .document_number_prefix
        .clone()
        .unwrap_or_else(|| number_prefix(&org.name, org.id.0))
}

/// Reads a number of days ≥ 0 (at most ten years).
fn days(fields: &mut Fields<'_>, name: &str) -> Option<i64> {
    let value = fields.integer(name).value()?;
    if !(0..=3650).contains(&value) {
        fields.fail(name, Reason::ValueIsOutOfRange);
        return None;
    }
    Some(value)
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

/// Changes the caller's organization: `name`, `timezone`, `identifier_case` (none, snake_case,
/// camelCase, kebab-case, lower, upper), `net_payment_term`, `billing_configuration.invoice_grace_period`
/// (the defaults for customers without their own), `document_numbering` (`per_customer` or
/// `per_organization`) and `document_number_prefix` (1 to 10 letters, digits, `-` or `_`, upper-cased).
/// Other Lago settings are accepted and ignored.
#[utoipa::path(put, path = "/api/v1/organizations", tag = "organizations",
    request_body(content = Object, description = "`{\"organization\": {name, timezone, identifier_case, net_payment_term, document_numbering, document_number_prefix, billing_configuration: {invoice_grace_period}}}`"),
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
    patch.net_payment_term = days(&mut fields, "net_payment_term");
    if let Some(config) = fields.object("billing_configuration").value() {
        let mut nested = Fields::nested(config, "billing_configuration");
        patch.invoice_grace_period = days(&mut nested, "invoice_grace_period");
        fields.absorb(nested);
    }
    if let Some(numbering) = fields.string("document_numbering").value() {
        match DocumentNumbering::parse(&numbering) {
            Some(numbering) => patch.document_numbering = Some(numbering),
            None => fields.fail("document_numbering", Reason::ValueIsInvalid),
        }
    }
    if let Some(prefix) = fields.string("document_number_prefix").value() {
        let prefix = prefix.trim().to_uppercase();
        let valid = (1..=10).contains(&prefix.chars().count())
            && prefix
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_');
        if valid {
            patch.document_number_prefix = Some(prefix);
        } else {
            fields.fail("document_number_prefix", Reason::InvalidFormat);
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

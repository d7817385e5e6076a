//! Lago taxes: `POST /taxes`, `GET /taxes`, `GET|PUT|DELETE /taxes/{code}`. Customers and plans carry
//! taxes through their `tax_codes`.

use axum::Json;
use axum::body::Bytes;
use axum::extract::{Path, RawQuery, State};
use serde_json::{Value, json};
use tally_core::error::Reason;
use tally_core::id::Code;
use tally_core::page::PageMeta;
use tally_core::tax::{Tax, TaxTerms};
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use super::customers::meta_json;
use crate::api::fields::{Fields, parse_body, root};
use crate::api::query::QueryPairs;
use crate::auth::Principal;
use crate::error::ApiError;
use crate::state::AppState;

/// The tax routes.
pub fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(create_tax, list_taxes))
        .routes(routes!(get_tax, update_tax, delete_tax))
}

/// Renders a tax in Lago's shape (the rate as a number).
pub fn tax_json(tax: &Tax) -> Value {
    let rate = tax
        .terms
        .rate
        .normalize()
        .to_string()
        .parse::<serde_json::Number>()
        .map_or(Value::Null, Value::Number);
    json!({
        "lago_id": tax.id,
        "name": tax.terms.name,
        "code": tax.terms.code.as_str(),
        "rate": rate,
        "description": tax.terms.description,
        "applied_to_organization": tax.terms.applied_to_organization,
        "add_ons_count": 0, "customers_count": 0, "plans_count": 0, "charges_count": 0,
        "created_at": tax.created_at.to_rfc3339_seconds(),
    })
}

fn read_terms(fields: &mut Fields<'_>, base: Option<&TaxTerms>) -> Option<TaxTerms> {
    let name = match base {
        None => fields.required_string("name"),
        Some(b) => fields
            .string("name")
            .value()
            .or_else(|| Some(b.name.clone())),
    };
    let code = match base {
        None => fields.required_string("code"),
        Some(b) => fields
            .string("code")
            .value()
            .or_else(|| Some(b.code.to_string())),
    }
    .and_then(|c| fields.errors.take(Code::parse("code", &c)));
    let rate = match fields.decimal("rate").value() {
        Some(rate) => Some(rate),
        None => match base {
            Some(b) => Some(b.rate),
            None => {
                fields.fail("rate", Reason::ValueIsMandatory);
                None
            }
        },
    };
    let description = match fields.string("description").patch() {
        Some(d) => d,
        None => base.and_then(|b| b.description.clone()),
    };
    let applied = fields
        .boolean("applied_to_organization")
        .value()
        .or(base.map(|b| b.applied_to_organization))
        .unwrap_or(false);
    Some(TaxTerms {
        code: code?,
        name: name?,
        rate: rate?,
        description,
        applied_to_organization: applied,
    })
}

/// Creates a tax.
#[utoipa::path(post, path = "/api/v1/taxes", tag = "taxes",
    request_body(content = Object, description = "`{\"tax\": {name, code, rate (percent, dec-string), description, applied_to_organization}}`"),
    responses((status = 200, description = "`{\"tax\": {…}}`"), (status = 422, description = "a field is refused")))]
async fn create_tax(
    State(state): State<AppState>,
    principal: Principal,
    body: Bytes,
) -> Result<Json<Value>, ApiError> {
    let value = parse_body(&body)?;
    let mut fields = Fields::new(root(&value, "tax")?);
    let terms = read_terms(&mut fields, None);
    let terms = fields
        .finish(terms)?
        .ok_or_else(|| ApiError::BadRequest("the tax is incomplete".into()))?;
    let tax = state.store.create_tax(principal.org, terms).await?;
    Ok(Json(json!({"tax": tax_json(&tax)})))
}

/// Lists taxes.
#[utoipa::path(get, path = "/api/v1/taxes", tag = "taxes",
    params(("page" = Option<u32>, Query), ("per_page" = Option<u32>, Query)),
    responses((status = 200, description = "`{\"taxes\": […], \"meta\": {…}}`")))]
async fn list_taxes(
    State(state): State<AppState>,
    principal: Principal,
    RawQuery(raw): RawQuery,
) -> Result<Json<Value>, ApiError> {
    let page = QueryPairs::parse(raw.as_deref())?.page()?;
    let listed = state.store.list_taxes(principal.org, page).await?;
    let taxes: Vec<Value> = listed.items.iter().map(tax_json).collect();
    Ok(Json(
        json!({"taxes": taxes, "meta": meta_json(PageMeta::new(page, listed.total))}),
    ))
}

/// Reads a tax.
#[utoipa::path(get, path = "/api/v1/taxes/{code}", tag = "taxes",
    params(("code" = String, Path)),
    responses((status = 200, description = "`{\"tax\": {…}}`"), (status = 404, description = "`tax_not_found`")))]
async fn get_tax(
    State(state): State<AppState>,
    principal: Principal,
    Path(code): Path<String>,
) -> Result<Json<Value>, ApiError> {
    Ok(Json(
        json!({"tax": tax_json(&state.store.tax(principal.org, &code).await?)}),
    ))
}

/// Changes a tax; finalized invoices keep their amounts.
#[utoipa::path(put, path = "/api/v1/taxes/{code}", tag = "taxes",
    params(("code" = String, Path)),
    request_body(content = Object, description = "`{\"tax\": {…}}`, partial"),
    responses((status = 200, description = "`{\"tax\": {…}}`"), (status = 404, description = "`tax_not_found`")))]
async fn update_tax(
    State(state): State<AppState>,
    principal: Principal,
    Path(code): Path<String>,
    body: Bytes,
) -> Result<Json<Value>, ApiError> {
    let existing = state.store.tax(principal.org, &code).await?;
    let value = parse_body(&body)?;
    let mut fields = Fields::new(root(&value, "tax")?);
    let terms = read_terms(&mut fields, Some(&existing.terms));
    let terms = fields
        .finish(terms)?
        .ok_or_else(|| ApiError::BadRequest("the tax is incomplete".into()))?;
    let tax = state.store.update_tax(principal.org, &code, terms).await?;
    Ok(Json(json!({"tax": tax_json(&tax)})))
}

/// Deletes a tax.
#[utoipa::path(delete, path = "/api/v1/taxes/{code}", tag = "taxes",
    params(("code" = String, Path)),
    responses((status = 200, description = "`{\"tax\": {…}}`"), (status = 404, description = "`tax_not_found`")))]
async fn delete_tax(
    State(state): State<AppState>,
    principal: Principal,
    Path(code): Path<String>,
) -> Result<Json<Value>, ApiError> {
    Ok(Json(
        json!({"tax": tax_json(&state.store.delete_tax(principal.org, &code).await?)}),
    ))
}

/// Reads `tax_codes` (an array of strings) when present.
pub fn tax_codes(fields: &mut Fields<'_>) -> Option<Vec<String>> {
    let list = fields.array("tax_codes").patch()?;
    let codes: Option<Vec<String>> = list
        .map(|items| {
            items
                .iter()
                .map(|v| v.as_str().map(str::to_owned))
                .collect()
        })
        .unwrap_or(Some(Vec::new()));
    if codes.is_none() {
        fields.fail("tax_codes", Reason::InvalidFormat);
    }
    codes
}

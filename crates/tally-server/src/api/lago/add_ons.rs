//! Lago add-ons: `POST /add_ons`, `GET /add_ons`, `GET|PUT|DELETE /add_ons/{code}`. An add-on is an
//! item with a default price that one-off invoices bill (`POST /invoices`, in [`super::invoices`]).

use axum::Json;
use axum::body::Bytes;
use axum::extract::{Path, RawQuery, State};
use serde_json::{Value, json};
use tally_core::add_on::{AddOn, AddOnDraft, AddOnTerms};
use tally_core::currency::Currency;
use tally_core::error::Reason;
use tally_core::id::Code;
use tally_core::page::PageMeta;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use super::customers::meta_json;
use super::taxes::{tax_codes, tax_json};
use crate::api::fields::{Field, Fields, parse_body, root};
use crate::api::query::QueryPairs;
use crate::auth::Principal;
use crate::error::ApiError;
use crate::state::AppState;

/// The add-on routes.
pub fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(create_add_on, list_add_ons))
        .routes(routes!(get_add_on, update_add_on, delete_add_on))
}

/// Renders an add-on in Lago's shape, with its taxes.
pub fn add_on_json(add_on: &AddOn) -> Value {
    let t = &add_on.terms;
    json!({
        "lago_id": add_on.id,
        "name": t.name,
        "invoice_display_name": t.invoice_display_name,
        "code": t.code.as_str(),
        "amount_cents": t.amount_cents,
        "amount_currency": t.currency.code(),
        "description": t.description,
        "created_at": add_on.created_at.to_rfc3339_seconds(),
        "taxes": add_on.taxes.iter().map(tax_json).collect::<Vec<_>>(),
    })
}

/// Reads a string field that may be cleared with `null`, keeping `base` when absent.
fn optional_text(fields: &mut Fields<'_>, field: &str, base: Option<&String>) -> Option<String> {
    match fields.string(field) {
        Field::Value(v) => Some(v),
        Field::Null => None,
        Field::Absent => base.cloned(),
    }
}

/// Reads an add-on object; for an update, `base` holds the current fields and only the keys sent
/// change, as in Lago.
fn read_draft(fields: &mut Fields<'_>, base: Option<&AddOnTerms>) -> Option<AddOnDraft> {
    let name = match base {
        None => fields.required_string("name"),
        Some(b) => match fields.string("name") {
            Field::Value(v) => Some(v),
            Field::Null => {
                fields.fail("name", Reason::ValueIsMandatory);
                None
            }
            Field::Absent => Some(b.name.clone()),
        },
    };
    let code = match base {
        None => fields.required_string("code"),
        Some(b) => match fields.string("code") {
            Field::Value(v) => Some(v),
            Field::Null => {
                fields.fail("code", Reason::ValueIsMandatory);
                None
            }
            Field::Absent => Some(b.code.to_string()),
        },
    }
    .and_then(|c| fields.errors.take(Code::parse("code", &c)));
    // A key of the wrong type is refused by the reader and reads as absent; `sent` tells it apart
    // from a key left out, which keeps the current value on update.
    let sent = fields.raw("amount_cents").is_some();
    let amount_cents = match fields.integer("amount_cents") {
        Field::Value(v) => Some(v),
        _ if !sent && base.is_some() => base.map(|b| b.amount_cents),
        Field::Absent if sent => None,
        _ => {
            fields.fail("amount_cents", Reason::ValueIsMandatory);
            None
        }
    };
    let sent = fields.raw("amount_currency").is_some();
    let currency = match fields.string("amount_currency") {
        Field::Value(code) => Currency::parse(&code).or_else(|| {
            fields.fail("amount_currency", Reason::ValueIsInvalid);
            None
        }),
        _ if !sent && base.is_some() => base.map(|b| b.currency),
        Field::Absent if sent => None,
        _ => {
            fields.fail("amount_currency", Reason::ValueIsMandatory);
            None
        }
    };
    let invoice_display_name = optional_text(
        fields,
        "invoice_display_name",
        base.and_then(|b| b.invoice_display_name.as_ref()),
    );
    let description = optional_text(
        fields,
        "description",
        base.and_then(|b| b.description.as_ref()),
    );
    let tax_codes = tax_codes(fields);
    Some(AddOnDraft {
        terms: AddOnTerms {
            code: code?,
            name: name?,
            invoice_display_name,
            description,
            amount_cents: amount_cents?,
            currency: currency?,
        },
        tax_codes,
    })
}

/// Creates an add-on.
#[utoipa::path(post, path = "/api/v1/add_ons", tag = "add_ons",
    request_body(content = Object, description = "`{\"add_on\": {name, code, amount_cents, amount_currency, invoice_display_name, description, tax_codes}}`"),
    responses((status = 200, description = "`{\"add_on\": {…}}`"), (status = 404, description = "`tax_not_found`"),
        (status = 422, description = "a field is refused (`value_already_exist` on a code in use)")))]
async fn create_add_on(
    State(state): State<AppState>,
    principal: Principal,
    body: Bytes,
) -> Result<Json<Value>, ApiError> {
    let value = parse_body(&body)?;
    let mut fields = Fields::new(root(&value, "add_on")?);
    let draft = read_draft(&mut fields, None);
    let draft = fields
        .finish(draft)?
        .ok_or_else(|| ApiError::BadRequest("the add-on is incomplete".into()))?;
    let add_on = state.store.create_add_on(principal.org, draft).await?;
    Ok(Json(json!({"add_on": add_on_json(&add_on)})))
}

/// Lists add-ons, oldest first.
#[utoipa::path(get, path = "/api/v1/add_ons", tag = "add_ons",
    params(("page" = Option<u32>, Query), ("per_page" = Option<u32>, Query)),
    responses((status = 200, description = "`{\"add_ons\": […], \"meta\": {…}}`")))]
async fn list_add_ons(
    State(state): State<AppState>,
    principal: Principal,
    RawQuery(raw): RawQuery,
) -> Result<Json<Value>, ApiError> {
    let page = QueryPairs::parse(raw.as_deref())?.page()?;
    let listed = state.store.list_add_ons(principal.org, page).await?;
    let add_ons: Vec<Value> = listed.items.iter().map(add_on_json).collect();
    Ok(Json(
        json!({"add_ons": add_ons, "meta": meta_json(PageMeta::new(page, listed.total))}),
    ))
}

/// Reads an add-on.
#[utoipa::path(get, path = "/api/v1/add_ons/{code}", tag = "add_ons",
    params(("code" = String, Path)),
    responses((status = 200, description = "`{\"add_on\": {…}}`"), (status = 404, description = "`add_on_not_found`")))]
async fn get_add_on(
    State(state): State<AppState>,
    principal: Principal,
    Path(code): Path<String>,
) -> Result<Json<Value>, ApiError> {
    let add_on = state.store.add_on(principal.org, &code).await?;
    Ok(Json(json!({"add_on": add_on_json(&add_on)})))
}

/// Changes an add-on: only the keys sent change, and `tax_codes`, when sent, replaces its taxes.
/// Invoices already issued keep what they billed.
#[utoipa::path(put, path = "/api/v1/add_ons/{code}", tag = "add_ons",
    params(("code" = String, Path)),
    request_body(content = Object, description = "`{\"add_on\": {…}}`, partial"),
    responses((status = 200, description = "`{\"add_on\": {…}}`"), (status = 404, description = "`add_on_not_found`, `tax_not_found`"),
        (status = 422, description = "a field is refused")))]
async fn update_add_on(
    State(state): State<AppState>,
    principal: Principal,
    Path(code): Path<String>,
    body: Bytes,
) -> Result<Json<Value>, ApiError> {
    let existing = state.store.add_on(principal.org, &code).await?;
    let value = parse_body(&body)?;
    let mut fields = Fields::new(root(&value, "add_on")?);
    let draft = read_draft(&mut fields, Some(&existing.terms));
    let draft = fields
        .finish(draft)?
        .ok_or_else(|| ApiError::BadRequest("the add-on is incomplete".into()))?;
    let add_on = state
        .store
        .update_add_on(principal.org, &code, draft)
        .await?;
    Ok(Json(json!({"add_on": add_on_json(&add_on)})))
}

/// Deletes an add-on; its code becomes free, and invoices that billed it keep their fees.
#[utoipa::path(delete, path = "/api/v1/add_ons/{code}", tag = "add_ons",
    params(("code" = String, Path)),
    responses((status = 200, description = "`{\"add_on\": {…}}`"), (status = 404, description = "`add_on_not_found`")))]
async fn delete_add_on(
    State(state): State<AppState>,
    principal: Principal,
    Path(code): Path<String>,
) -> Result<Json<Value>, ApiError> {
    let add_on = state.store.delete_add_on(principal.org, &code).await?;
    Ok(Json(json!({"add_on": add_on_json(&add_on)})))
}

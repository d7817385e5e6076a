//! Lago fees: `GET /fees` and `GET /fees/{lago_id}`. A fee is a line of an invoice, or a fee of a
//! pay-in-advance charge that is on no invoice (the charge is not invoiceable, or the event billed 0).

use axum::Json;
use axum::extract::{Path, RawQuery, State};
use serde_json::{Value, json};
use tally_core::billing::FeeKind;
use tally_core::id::FeeId;
use tally_core::page::PageMeta;
use tally_store::{FeeFilter, FeeRecord};
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use super::customers::meta_json;
use super::invoices::{FeeOwner, fee_object};
use crate::api::query::QueryPairs;
use crate::auth::Principal;
use crate::error::ApiError;
use crate::state::AppState;

/// The fee routes.
pub fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(list_fees))
        .routes(routes!(get_fee))
}

/// Renders a fee with its owners in Lago's shape.
pub fn fee_record_json(record: &FeeRecord) -> Value {
    let owner = FeeOwner {
        invoice_id: record.invoice_id.map(|id| id.0),
        customer: &record.customer,
        subscription: record.subscription.as_ref(),
        currency: record.currency,
        payment_status: record.payment_status,
        invoiceable: record.invoiceable,
    };
    fee_object(&owner, &record.fee)
}

/// Lists fees, newest first: invoice lines and pay-in-advance fees on no invoice.
#[utoipa::path(get, path = "/api/v1/fees", tag = "fees",
    params(("page" = Option<u32>, Query), ("per_page" = Option<u32>, Query),
        ("external_customer_id" = Option<String>, Query), ("external_subscription_id" = Option<String>, Query),
        ("fee_type" = Option<String>, Query, description = "subscription, charge, commitment or credit"),
        ("billable_metric_code" = Option<String>, Query)),
    responses((status = 200, description = "`{\"fees\": […], \"meta\": {…}}`"), (status = 400, description = "unknown fee_type")))]
async fn list_fees(
    State(state): State<AppState>,
    principal: Principal,
    RawQuery(raw): RawQuery,
) -> Result<Json<Value>, ApiError> {
    let query = QueryPairs::parse(raw.as_deref())?;
    let page = query.page()?;
    let fee_type = query
        .get("fee_type")
        .map(|name| {
            FeeKind::parse(name)
                .ok_or_else(|| ApiError::BadRequest(format!("unknown fee_type {name:?}")))
        })
        .transpose()?;
    let filter = FeeFilter {
        external_customer_id: query.get("external_customer_id").map(str::to_owned),
        external_subscription_id: query.get("external_subscription_id").map(str::to_owned),
        fee_type,
        billable_metric_code: query.get("billable_metric_code").map(str::to_owned),
    };
    let listed = state.store.list_fees(principal.org, &filter, page).await?;
    let fees: Vec<Value> = listed.items.iter().map(fee_record_json).collect();
    Ok(Json(
        json!({"fees": fees, "meta": meta_json(PageMeta::new(page, listed.total))}),
    ))
}

/// Reads one fee.
#[utoipa::path(get, path = "/api/v1/fees/{lago_id}", tag = "fees",
    params(("lago_id" = String, Path)),
    responses((status = 200, description = "`{\"fee\": {…}}`"), (status = 404, description = "`fee_not_found`")))]
async fn get_fee(
    State(state): State<AppState>,
    principal: Principal,
    Path(id): Path<String>,
) -> Result<Json<Value>, ApiError> {
    let id = uuid::Uuid::parse_str(&id)
        .map(FeeId)
        .map_err(|_| ApiError::NotFound("fee"))?;
    let record = state.store.fee(principal.org, id).await?;
    Ok(Json(json!({"fee": fee_record_json(&record)})))
}

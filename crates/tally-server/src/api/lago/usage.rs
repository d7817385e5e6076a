//! Lago customer usage: `GET /customers/{external_customer_id}/current_usage`, the priced usage of
//! the open period of one subscription, computed from rollups on every call; and
//! `GET /customers/{external_customer_id}/past_usage`, closed periods as their invoices billed them.

use axum::Json;
use axum::extract::{Path, RawQuery, State};
use serde_json::{Value, json};
use tally_core::billing::FeeKind;
use tally_core::money::dec_string;
use tally_core::page::PageMeta;
use tally_store::CurrentUsage;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use super::customers::meta_json;
use crate::api::query::QueryPairs;
use crate::auth::Principal;
use crate::error::ApiError;
use crate::state::AppState;

/// The usage routes.
pub fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(current_usage))
        .routes(routes!(past_usage))
}

/// Prices the open period of a customer's active subscription, without storing anything.
#[utoipa::path(get, path = "/api/v1/customers/{external_customer_id}/current_usage", tag = "customers",
    params(("external_customer_id" = String, Path), ("external_subscription_id" = String, Query)),
    responses((status = 200, description = "`{\"customer_usage\": {from_datetime, to_datetime, amount_cents, charges_usage: […]}}`"),
        (status = 404, description = "`customer_not_found`"), (status = 405, description = "`no_active_subscription`")))]
async fn current_usage(
    State(state): State<AppState>,
    principal: Principal,
    Path(customer): Path<String>,
    RawQuery(raw): RawQuery,
) -> Result<Json<Value>, ApiError> {
    let query = QueryPairs::parse(raw.as_deref())?;
    let subscription = query
        .get("external_subscription_id")
        .ok_or_else(|| ApiError::BadRequest("external_subscription_id is required".into()))?;
    let usage = state
        .store
        .current_usage(principal.org, &customer, subscription, state.clock.now())
        .await?;
    Ok(Json(json!({"customer_usage": usage_json(&usage)})))
}

/// Lists the closed periods of a customer's subscription as finalized invoices billed them, newest
/// first: `periods_count` keeps the latest n, `billable_metric_code` one metric's charges.
#[utoipa::path(get, path = "/api/v1/customers/{external_customer_id}/past_usage", tag = "customers",
    params(("external_customer_id" = String, Path), ("external_subscription_id" = String, Query),
        ("billable_metric_code" = Option<String>, Query), ("periods_count" = Option<u32>, Query),
        ("page" = Option<u32>, Query), ("per_page" = Option<u32>, Query)),
    responses((status = 200, description = "`{\"usage_periods\": [{from_datetime, to_datetime, lago_invoice_id, amount_cents, charges_usage: […]}], \"meta\": {…}}`"),
        (status = 404, description = "`customer_not_found` or `subscription_not_found`")))]
async fn past_usage(
    State(state): State<AppState>,
    principal: Principal,
    Path(customer): Path<String>,
    RawQuery(raw): RawQuery,
) -> Result<Json<Value>, ApiError> {
    let query = QueryPairs::parse(raw.as_deref())?;
    let page = query.page()?;
    let subscription = query
        .get("external_subscription_id")
        .ok_or_else(|| ApiError::BadRequest("external_subscription_id is required".into()))?;
    let periods = match query.get("periods_count") {
        Some(text) => text
            .parse::<usize>()
            .ok()
            .filter(|n| *n > 0)
            .ok_or_else(|| {
                ApiError::BadRequest("periods_count must be an integer greater than 0".into())
            })?,
        None => usize::MAX,
    };
    let all = state
        .store
        .past_usage(
            principal.org,
            &customer,
            subscription,
            query.get("billable_metric_code"),
            periods,
        )
        .await?;
    let total = all.len() as u64;
    let shown: Vec<Value> = all
        .iter()
        .skip(usize::try_from(page.offset()).unwrap_or(usize::MAX))
        .take(page.per_page as usize)
        .map(|past| {
            let mut rendered = usage_json(&past.usage);
            if let Some(map) = rendered.as_object_mut() {
                map.insert("lago_invoice_id".into(), json!(past.invoice_id.0));
            }
            rendered
        })
        .collect();
    Ok(Json(json!({
        "usage_periods": shown,
        "meta": meta_json(PageMeta::new(page, total)),
    })))
}

/// Renders current usage in Lago's shape.
pub fn usage_json(usage: &CurrentUsage) -> Value {
    let currency = usage.currency.code();
    let mut amount_cents = 0i64;
    let charges: Vec<Value> = usage
        .charges
        .iter()
        .map(|line| {
            let fees: Vec<_> = line
                .fees
                .iter()
                .filter(|f| f.fee.kind == FeeKind::Charge)
                .collect();
            let charge_amount: i64 = fees.iter().map(|f| f.fee.amount_cents).sum();
            let units: rust_decimal::Decimal = fees.iter().map(|f| f.fee.units).sum();
            let total: rust_decimal::Decimal =
                fees.iter().map(|f| f.fee.total_aggregated_units).sum();
            let events: u64 = fees.iter().map(|f| f.fee.events_count).sum();
            amount_cents += charge_amount;
            let filters: Vec<Value> = fees
                .iter()
                .filter_map(|f| {
                    let (_, filter) = line
                        .charge
                        .filters
                        .iter()
                        .find(|(id, _)| Some(*id) == f.fee.filter_id)?;
                    Some(json!({
                        "invoice_display_name": filter.invoice_display_name,
                        "values": filter.values,
                        "units": dec_string(f.fee.units),
                        "total_aggregated_units": dec_string(f.fee.total_aggregated_units),
                        "events_count": f.fee.events_count,
                        "amount_cents": f.fee.amount_cents,
                    }))
                })
                .collect();
            let metric = &line.metric.definition;
            json!({
                "units": dec_string(units),
                "total_aggregated_units": dec_string(total),
                "events_count": events,
                "amount_cents": charge_amount,
                "amount_currency": currency,
                "pricing_unit_details": null,
                "charge": {
                    "lago_id": line.charge.id.0,
                    "code": line.charge.terms.code,
                    "charge_model": line.charge.terms.model.kind().name(),
                    "invoice_display_name": line.charge.terms.invoice_display_name,
                },
                "billable_metric": {
                    "lago_id": line.metric.id.0,
                    "name": metric.name,
                    "code": metric.code.as_str(),
                    "aggregation_type": metric.aggregation.lago_name(),
                },
                "filters": filters,
                "grouped_usage": [],
                "presentation_breakdowns": [],
            })
        })
        .collect();
    let taxes_amount_cents: i64 = usage
        .charges
        .iter()
        .flat_map(|line| &line.fees)
        .filter(|f| f.fee.kind == FeeKind::Charge)
        .flat_map(|f| &f.taxes)
        .map(|t| t.amount_cents)
        .sum();
    json!({
        "from_datetime": usage.period.from.to_rfc3339_seconds(),
        "to_datetime": usage.period.to_inclusive().to_rfc3339_seconds(),
        "issuing_date": usage.issuing_date.to_string(),
        "lago_invoice_id": null,
        "currency": currency,
        "amount_cents": amount_cents,
        "taxes_amount_cents": taxes_amount_cents,
        "total_amount_cents": amount_cents + taxes_amount_cents,
        "charges_usage": charges,
    })
}

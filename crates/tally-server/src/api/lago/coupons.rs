//! Lago coupons: `POST /coupons`, `GET /coupons`, `GET|DELETE /coupons/{code}`; applied coupons:
//! `POST /applied_coupons`, `GET /applied_coupons`,
//! `DELETE /customers/{external_customer_id}/applied_coupons/{lago_id}`. Invoices use a customer's
//! coupons when they are computed and spend them when they are finalized.

use axum::Json;
use axum::body::Bytes;
use axum::extract::{Path, RawQuery, State};
use serde_json::{Value, json};
use tally_core::coupon::{AppliedCoupon, Coupon, CouponKind, CouponTerms, Frequency};
use tally_core::currency::Currency;
use tally_core::error::Reason;
use tally_core::id::{Code, ExternalId};
use tally_core::money::dec_string;
use tally_core::page::PageMeta;
use tally_core::time::Timestamp;
use tally_store::{AppliedCouponFilter, CouponOverrides};
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use super::customers::meta_json;
use crate::api::fields::{Field, Fields, parse_body, root};
use crate::api::query::QueryPairs;
use crate::auth::Principal;
use crate::error::ApiError;
use crate::state::AppState;

/// The coupon routes.
pub fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(create_coupon, list_coupons))
        .routes(routes!(get_coupon, delete_coupon))
        .routes(routes!(apply_coupon, list_applied))
        .routes(routes!(remove_applied))
}

fn kind_fields(kind: &CouponKind) -> (Option<i64>, Option<&str>, Option<String>, &'static str) {
    match kind {
        CouponKind::FixedAmount {
            amount_cents,
            currency,
        } => (
            Some(*amount_cents),
            Some(currency.code()),
            None,
            "fixed_amount",
        ),
        CouponKind::Percentage { rate } => (None, None, Some(dec_string(*rate)), "percentage"),
    }
}

/// Renders a coupon in Lago's shape.
pub fn coupon_json(coupon: &Coupon) -> Value {
    let t = &coupon.terms;
    let (amount, currency, rate, kind) = kind_fields(&t.kind);
    json!({
        "lago_id": coupon.id,
        "name": t.name,
        "code": t.code.as_str(),
        "description": t.description,
        "coupon_type": kind,
        "amount_cents": amount,
        "amount_currency": currency,
        "percentage_rate": rate,
        "frequency": t.frequency.name(),
        "frequency_duration": t.frequency.duration(),
        "reusable": t.reusable,
        "limited_plans": false, "plan_codes": [],
        "limited_billable_metrics": false, "billable_metric_codes": [],
        "expiration": if t.expiration_at.is_some() { "time_limit" } else { "no_expiration" },
        "expiration_at": t.expiration_at.map(Timestamp::to_rfc3339_seconds),
        "created_at": coupon.created_at.to_rfc3339_seconds(),
        "terminated_at": coupon.terminated_at.map(Timestamp::to_rfc3339_seconds),
    })
}

/// Renders an applied coupon in Lago's shape.
pub fn applied_json(applied: &AppliedCoupon) -> Value {
    let (amount, currency, rate, _) = kind_fields(&applied.kind);
    json!({
        "lago_id": applied.id,
        "lago_coupon_id": applied.coupon.id,
        "coupon_code": applied.coupon.terms.code.as_str(),
        "coupon_name": applied.coupon.terms.name,
        "lago_customer_id": applied.customer_id,
        "external_customer_id": applied.external_customer_id,
        "status": if applied.active { "active" } else { "terminated" },
        "amount_cents": amount,
        "amount_cents_remaining": applied.amount_cents_remaining,
        "amount_currency": currency,
        "percentage_rate": rate,
        "frequency": applied.frequency.name(),
        "frequency_duration": applied.frequency.duration(),
        "frequency_duration_remaining": applied.frequency_duration_remaining,
        "expiration_at": applied.coupon.terms.expiration_at.map(Timestamp::to_rfc3339_seconds),
        "created_at": applied.created_at.to_rfc3339_seconds(),
        "terminated_at": applied.terminated_at.map(Timestamp::to_rfc3339_seconds),
    })
}

/// Reads `frequency` and `frequency_duration`.
fn read_frequency(fields: &mut Fields<'_>, required: bool) -> Option<Frequency> {
    let duration = fields.integer("frequency_duration").value();
    match fields.string("frequency") {
        Field::Value(name) => match name.as_str() {
            "once" => Some(Frequency::Once),
            "forever" => Some(Frequency::Forever),
            "recurring" => match duration
                .and_then(|d| u32::try_from(d).ok())
                .filter(|d| *d > 0)
            {
                Some(d) => Some(Frequency::Recurring(d)),
                None => {
                    fields.fail("frequency_duration", Reason::ValueIsMandatory);
                    None
                }
            },
            _ => {
                fields.fail("frequency", Reason::ValueIsInvalid);
                None
            }
        },
        _ if required => {
            fields.fail("frequency", Reason::ValueIsMandatory);
            None
        }
        _ => None,
    }
}

/// Creates a coupon.
#[utoipa::path(post, path = "/api/v1/coupons", tag = "coupons",
    request_body(content = Object, description = "`{\"coupon\": {name, code, coupon_type, amount_cents, amount_currency, percentage_rate, frequency, frequency_duration, expiration, expiration_at, reusable}}`"),
    responses((status = 200, description = "`{\"coupon\": {…}}`"), (status = 422, description = "a field is refused")))]
async fn create_coupon(
    State(state): State<AppState>,
    principal: Principal,
    body: Bytes,
) -> Result<Json<Value>, ApiError> {
    let value = parse_body(&body)?;
    let mut fields = Fields::new(root(&value, "coupon")?);
    let name = fields.required_string("name");
    let code = fields
        .required_string("code")
        .and_then(|c| fields.errors.take(Code::parse("code", &c)));
    let kind = match fields.required_string("coupon_type").as_deref() {
        Some("fixed_amount") => {
            let amount = fields.integer("amount_cents").value();
            let currency = fields
                .string("amount_currency")
                .value()
                .and_then(|c| Currency::parse(&c));
            match (amount, currency) {
                (Some(amount_cents), Some(currency)) => Some(CouponKind::FixedAmount {
                    amount_cents,
                    currency,
                }),
                (None, _) => {
                    fields.fail("amount_cents", Reason::ValueIsMandatory);
                    None
                }
                (_, None) => {
                    fields.fail("amount_currency", Reason::ValueIsInvalid);
                    None
                }
            }
        }
        Some("percentage") => match fields.decimal("percentage_rate").value() {
            Some(rate) => Some(CouponKind::Percentage { rate }),
            None => {
                fields.fail("percentage_rate", Reason::ValueIsMandatory);
                None
            }
        },
        Some(_) => {
            fields.fail("coupon_type", Reason::ValueIsInvalid);
            None
        }
        None => None,
    };
    let frequency = read_frequency(&mut fields, true);
    let expiration_at = match fields.string("expiration").value().as_deref() {
        Some("time_limit") => match fields
            .string("expiration_at")
            .value()
            .and_then(|t| Timestamp::parse_rfc3339(&t))
        {
            Some(at) => Some(at),
            None => {
                fields.fail("expiration_at", Reason::InvalidDate);
                None
            }
        },
        Some("no_expiration") | None => None,
        Some(_) => {
            fields.fail("expiration", Reason::ValueIsInvalid);
            None
        }
    };
    let reusable = fields.boolean("reusable").value().unwrap_or(true);
    let description = fields.string("description").value();
    let terms = match (name, code, kind, frequency) {
        (Some(name), Some(code), Some(kind), Some(frequency)) => Some(CouponTerms {
            code,
            name,
            description,
            kind,
            frequency,
            expiration_at,
            reusable,
        }),
        _ => None,
    };
    let terms = fields
        .finish(terms)?
        .ok_or_else(|| ApiError::BadRequest("the coupon is incomplete".into()))?;
    let coupon = state.store.create_coupon(principal.org, terms).await?;
    Ok(Json(json!({"coupon": coupon_json(&coupon)})))
}

/// Lists coupons.
#[utoipa::path(get, path = "/api/v1/coupons", tag = "coupons",
    params(("page" = Option<u32>, Query), ("per_page" = Option<u32>, Query)),
    responses((status = 200, description = "`{\"coupons\": […], \"meta\": {…}}`")))]
async fn list_coupons(
    State(state): State<AppState>,
    principal: Principal,
    RawQuery(raw): RawQuery,
) -> Result<Json<Value>, ApiError> {
    let page = QueryPairs::parse(raw.as_deref())?.page()?;
    let listed = state.store.list_coupons(principal.org, page).await?;
    let coupons: Vec<Value> = listed.items.iter().map(coupon_json).collect();
    Ok(Json(
        json!({"coupons": coupons, "meta": meta_json(PageMeta::new(page, listed.total))}),
    ))
}

/// Reads a coupon.
#[utoipa::path(get, path = "/api/v1/coupons/{code}", tag = "coupons",
    params(("code" = String, Path)),
    responses((status = 200, description = "`{\"coupon\": {…}}`"), (status = 404, description = "`coupon_not_found`")))]
async fn get_coupon(
    State(state): State<AppState>,
    principal: Principal,
    Path(code): Path<String>,
) -> Result<Json<Value>, ApiError> {
    Ok(Json(
        json!({"coupon": coupon_json(&state.store.coupon(principal.org, &code).await?)}),
    ))
}

/// Terminates a coupon: no new applications; existing ones keep running.
#[utoipa::path(delete, path = "/api/v1/coupons/{code}", tag = "coupons",
    params(("code" = String, Path)),
    responses((status = 200, description = "`{\"coupon\": {…}}` with terminated_at"), (status = 404, description = "`coupon_not_found`")))]
async fn delete_coupon(
    State(state): State<AppState>,
    principal: Principal,
    Path(code): Path<String>,
) -> Result<Json<Value>, ApiError> {
    let coupon = state
        .store
        .terminate_coupon(principal.org, &code, state.clock.now())
        .await?;
    Ok(Json(json!({"coupon": coupon_json(&coupon)})))
}

/// Applies a coupon to a customer (its value and frequency may be overridden).
#[utoipa::path(post, path = "/api/v1/applied_coupons", tag = "coupons",
    request_body(content = Object, description = "`{\"applied_coupon\": {external_customer_id, coupon_code, amount_cents, amount_currency, percentage_rate, frequency, frequency_duration}}`"),
    responses((status = 200, description = "`{\"applied_coupon\": {…}}`"), (status = 404, description = "`coupon_not_found` or `customer_not_found`")))]
async fn apply_coupon(
    State(state): State<AppState>,
    principal: Principal,
    body: Bytes,
) -> Result<Json<Value>, ApiError> {
    let value = parse_body(&body)?;
    let mut fields = Fields::new(root(&value, "applied_coupon")?);
    let customer = fields
        .required_string("external_customer_id")
        .and_then(|c| {
            fields
                .errors
                .take(ExternalId::parse("external_customer_id", &c))
        });
    let code = fields.required_string("coupon_code");
    let overrides = CouponOverrides {
        amount_cents: fields.integer("amount_cents").value(),
        currency: fields
            .string("amount_currency")
            .value()
            .and_then(|c| Currency::parse(&c)),
        percentage_rate: fields.decimal("percentage_rate").value(),
        frequency: read_frequency(&mut fields, false),
    };
    let (customer, code, overrides) = fields.finish((customer, code, overrides))?;
    let (Some(customer), Some(code)) = (customer, code) else {
        return Err(ApiError::BadRequest(
            "the applied coupon is incomplete".into(),
        ));
    };
    let applied = state
        .store
        .apply_coupon(
            principal.org,
            &code,
            &customer,
            overrides,
            state.clock.now(),
        )
        .await?;
    Ok(Json(json!({"applied_coupon": applied_json(&applied)})))
}

/// Lists applied coupons (`status` active or terminated).
#[utoipa::path(get, path = "/api/v1/applied_coupons", tag = "coupons",
    params(("page" = Option<u32>, Query), ("per_page" = Option<u32>, Query), ("external_customer_id" = Option<String>, Query), ("status" = Option<String>, Query)),
    responses((status = 200, description = "`{\"applied_coupons\": […], \"meta\": {…}}`")))]
async fn list_applied(
    State(state): State<AppState>,
    principal: Principal,
    RawQuery(raw): RawQuery,
) -> Result<Json<Value>, ApiError> {
    let query = QueryPairs::parse(raw.as_deref())?;
    let page = query.page()?;
    let filter = AppliedCouponFilter {
        external_customer_id: query.get("external_customer_id").map(str::to_owned),
        active: match query.get("status") {
            None => None,
            Some("active") => Some(true),
            Some("terminated") => Some(false),
            Some(other) => {
                return Err(ApiError::BadRequest(format!(
                    "status {other:?} is not active or terminated"
                )));
            }
        },
    };
    let listed = state
        .store
        .list_applied_coupons(principal.org, &filter, page)
        .await?;
    let applied: Vec<Value> = listed.items.iter().map(applied_json).collect();
    Ok(Json(
        json!({"applied_coupons": applied, "meta": meta_json(PageMeta::new(page, listed.total))}),
    ))
}

/// Stops a coupon applied to a customer.
#[utoipa::path(delete, path = "/api/v1/customers/{external_customer_id}/applied_coupons/{lago_id}", tag = "coupons",
    params(("external_customer_id" = String, Path), ("lago_id" = String, Path)),
    responses((status = 200, description = "`{\"applied_coupon\": {…}}` terminated"), (status = 404, description = "`applied_coupon_not_found`")))]
async fn remove_applied(
    State(state): State<AppState>,
    principal: Principal,
    Path((customer, id)): Path<(String, String)>,
) -> Result<Json<Value>, ApiError> {
    let id = uuid::Uuid::parse_str(&id).map_err(|_| ApiError::NotFound("applied_coupon"))?;
    let applied = state
        .store
        .remove_applied_coupon(principal.org, &customer, id, state.clock.now())
        .await?;
    Ok(Json(json!({"applied_coupon": applied_json(&applied)})))
}

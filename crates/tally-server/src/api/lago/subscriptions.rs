//! Lago subscriptions: `POST /subscriptions` (create, upgrade, downgrade), `GET /subscriptions`,
//! `GET|PUT|DELETE /subscriptions/{external_id}`, `GET|PUT /subscriptions/{external_id}/lifetime_usage`.
//! Times follow the billing clock.

use axum::Json;
use axum::body::Bytes;
use axum::extract::{Path, RawQuery, State};
use serde_json::{Value, json};
use tally_core::error::Reason;
use tally_core::id::ExternalId;
use tally_core::page::PageMeta;
use tally_core::period::{BillingTime, Schedule};
use tally_core::plan::Plan;
use tally_core::subscription::{Subscription, SubscriptionStatus};
use tally_core::time::Timestamp;
use tally_store::{LifetimeUsage, NewSubscription, SubscriptionFilter, SubscriptionUpdate};
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use super::customers::meta_json;
use super::plans::plan_json;
use crate::api::fields::{Field, Fields, parse_body, root};
use crate::api::query::QueryPairs;
use crate::auth::Principal;
use crate::error::ApiError;
use crate::state::AppState;

/// The subscription routes.
pub fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(create_subscription, list_subscriptions))
        .routes(routes!(
            get_subscription,
            update_subscription,
            terminate_subscription
        ))
        .routes(routes!(get_lifetime_usage, update_lifetime_usage))
}

/// Reads the lifetime usage of the active subscription: what its plan's usage thresholds are
/// compared with (progressive billing).
#[utoipa::path(get, path = "/api/v1/subscriptions/{external_id}/lifetime_usage", tag = "subscriptions",
    params(("external_id" = String, Path)),
    responses((status = 200, description = "`{\"lifetime_usage\": {external_historical_usage_amount_cents, invoiced_usage_amount_cents, current_usage_amount_cents, usage_thresholds: […]}}`"),
        (status = 404, description = "`subscription_not_found`")))]
async fn get_lifetime_usage(
    State(state): State<AppState>,
    principal: Principal,
    Path(external_id): Path<String>,
) -> Result<Json<Value>, ApiError> {
    let usage = state
        .store
        .lifetime_usage(principal.org, &external_id, state.clock.now())
        .await?;
    Ok(Json(json!({"lifetime_usage": lifetime_usage_json(&usage)})))
}

/// Sets the usage the subscription had before tally (for migrations): it counts toward thresholds.
#[utoipa::path(put, path = "/api/v1/subscriptions/{external_id}/lifetime_usage", tag = "subscriptions",
    params(("external_id" = String, Path)),
    request_body(content = Object, description = "`{\"lifetime_usage\": {\"external_historical_usage_amount_cents\": 100}}`"),
    responses((status = 200, description = "`{\"lifetime_usage\": {…}}`"), (status = 404, description = "`subscription_not_found`"),
        (status = 422, description = "the amount is missing or below 0")))]
async fn update_lifetime_usage(
    State(state): State<AppState>,
    principal: Principal,
    Path(external_id): Path<String>,
    body: Bytes,
) -> Result<Json<Value>, ApiError> {
    let value = parse_body(&body)?;
    let mut fields = Fields::new(root(&value, "lifetime_usage")?);
    let amount = match fields.integer("external_historical_usage_amount_cents") {
        Field::Value(cents) if cents >= 0 => Some(cents),
        Field::Value(_) => {
            fields.fail(
                "external_historical_usage_amount_cents",
                Reason::InvalidAmount,
            );
            None
        }
        _ => {
            fields.fail(
                "external_historical_usage_amount_cents",
                Reason::ValueIsMandatory,
            );
            None
        }
    };
    let amount = fields.finish(amount)?.unwrap_or(0);
    let usage = state
        .store
        .set_historical_usage(principal.org, &external_id, amount, state.clock.now())
        .await?;
    Ok(Json(json!({"lifetime_usage": lifetime_usage_json(&usage)})))
}

/// Renders a lifetime usage in Lago's shape.
fn lifetime_usage_json(usage: &LifetimeUsage) -> Value {
    let s = &usage.subscription;
    json!({
        "lago_id": s.id.0,
        "lago_subscription_id": s.id.0,
        "external_subscription_id": s.external_id.as_str(),
        "external_historical_usage_amount_cents": usage.historical_usage_amount_cents,
        "invoiced_usage_amount_cents": usage.invoiced_usage_amount_cents,
        "current_usage_amount_cents": usage.current_usage_amount_cents,
        "from_datetime": s.started_at.map(|t| t.to_rfc3339_seconds()),
        "to_datetime": usage.period.to_inclusive().to_rfc3339_seconds(),
        "usage_thresholds": usage.thresholds.iter().map(|(p, reached)| json!({
            "amount_cents": p.amount_cents,
            "completion_ratio": p.completion_ratio.normalize().to_string().parse::<serde_json::Number>().map_or(Value::Null, Value::Number),
            "reached_at": reached.map(|t| t.to_rfc3339_seconds()),
        })).collect::<Vec<_>>(),
    })
}

fn time_field(fields: &mut Fields<'_>, name: &str) -> Field<Timestamp> {
    match fields.string(name) {
        Field::Value(text) => match Timestamp::parse_rfc3339(&text) {
            Some(at) => Field::Value(at),
            None => {
                fields.fail(name, Reason::InvalidDate);
                Field::Absent
            }
        },
        Field::Null => Field::Null,
        Field::Absent => Field::Absent,
    }
}

/// Creates a subscription; the same external id on another plan upgrades (at once) or downgrades
/// (at the end of the current period), as Lago does.
#[utoipa::path(post, path = "/api/v1/subscriptions", tag = "subscriptions",
    request_body(content = Object, description = "`{\"subscription\": {external_customer_id, plan_code, external_id, name, billing_time, subscription_at, ending_at}}`"),
    responses((status = 200, description = "`{\"subscription\": {…, plan}}`"), (status = 404, description = "`plan_not_found`"), (status = 422, description = "a field is refused")))]
async fn create_subscription(
    State(state): State<AppState>,
    principal: Principal,
    body: Bytes,
) -> Result<Json<Value>, ApiError> {
    let value = parse_body(&body)?;
    let mut fields = Fields::new(root(&value, "subscription")?);
    let customer = fields
        .required_string("external_customer_id")
        .and_then(|c| {
            fields
                .errors
                .take(ExternalId::parse("external_customer_id", &c))
        });
    let external_id = fields
        .required_string("external_id")
        .and_then(|c| fields.errors.take(ExternalId::parse("external_id", &c)));
    let plan_code = fields.required_string("plan_code");
    let billing_time = match fields.string("billing_time").value() {
        Some(name) => BillingTime::parse(&name).unwrap_or_else(|| {
            fields.fail("billing_time", Reason::ValueIsInvalid);
            BillingTime::Calendar
        }),
        None => BillingTime::Calendar,
    };
    let subscription_at = time_field(&mut fields, "subscription_at").value();
    let ending_at = time_field(&mut fields, "ending_at").value();
    let name = fields.string("name").value();
    let request = fields.finish((customer, external_id, plan_code))?;
    let (Some(external_customer_id), Some(external_id), Some(plan_code)) = request else {
        return Err(ApiError::BadRequest(
            "the subscription is incomplete".into(),
        ));
    };
    let request = NewSubscription {
        external_customer_id,
        plan_code,
        external_id,
        name,
        billing_time,
        subscription_at,
        ending_at,
    };
    let subscription = state
        .store
        .create_subscription(principal.org, request, state.clock.now())
        .await?;
    Ok(Json(
        json!({"subscription": full_json(&state, principal, &subscription).await?}),
    ))
}

fn status_param(query: &QueryPairs) -> Result<SubscriptionStatus, ApiError> {
    match query.get("status") {
        None => Ok(SubscriptionStatus::Active),
        Some(name) => SubscriptionStatus::parse(name).ok_or_else(|| {
            ApiError::BadRequest(format!(
                "status {name:?} is not pending, active, terminated or canceled"
            ))
        }),
    }
}

/// Lists subscriptions (active ones unless `status[]` says otherwise), oldest first.
#[utoipa::path(get, path = "/api/v1/subscriptions", tag = "subscriptions",
    params(("page" = Option<u32>, Query), ("per_page" = Option<u32>, Query), ("external_customer_id" = Option<String>, Query),
        ("plan_code" = Option<String>, Query), ("status[]" = Option<Vec<String>>, Query)),
    responses((status = 200, description = "`{\"subscriptions\": […], \"meta\": {…}}`")))]
async fn list_subscriptions(
    State(state): State<AppState>,
    principal: Principal,
    RawQuery(raw): RawQuery,
) -> Result<Json<Value>, ApiError> {
    let query = QueryPairs::parse(raw.as_deref())?;
    let page = query.page()?;
    let statuses = query
        .all("status")
        .iter()
        .map(|s| {
            SubscriptionStatus::parse(s)
                .ok_or_else(|| ApiError::BadRequest(format!("unknown status {s:?}")))
        })
        .collect::<Result<Vec<_>, _>>()?;
    let filter = SubscriptionFilter {
        external_customer_id: query.get("external_customer_id").map(str::to_owned),
        plan_code: query.get("plan_code").map(str::to_owned),
        statuses,
    };
    let listed = state
        .store
        .list_subscriptions(principal.org, &filter, page)
        .await?;
    let mut subscriptions = Vec::with_capacity(listed.items.len());
    for subscription in &listed.items {
        subscriptions.push(subscription_json(&state, principal, subscription, None).await?);
    }
    Ok(Json(
        json!({"subscriptions": subscriptions, "meta": meta_json(PageMeta::new(page, listed.total))}),
    ))
}

/// Reads a subscription (`?status=` picks among active, pending, terminated, canceled).
#[utoipa::path(get, path = "/api/v1/subscriptions/{external_id}", tag = "subscriptions",
    params(("external_id" = String, Path), ("status" = Option<String>, Query)),
    responses((status = 200, description = "`{\"subscription\": {…, plan}}`"), (status = 404, description = "`subscription_not_found`")))]
async fn get_subscription(
    State(state): State<AppState>,
    principal: Principal,
    Path(external_id): Path<String>,
    RawQuery(raw): RawQuery,
) -> Result<Json<Value>, ApiError> {
    let status = status_param(&QueryPairs::parse(raw.as_deref())?)?;
    let subscription = state
        .store
        .subscription(principal.org, &external_id, status)
        .await?;
    Ok(Json(
        json!({"subscription": full_json(&state, principal, &subscription).await?}),
    ))
}

/// Changes a subscription's `name`, `ending_at`, or (pending only) `subscription_at`.
#[utoipa::path(put, path = "/api/v1/subscriptions/{external_id}", tag = "subscriptions",
    params(("external_id" = String, Path), ("status" = Option<String>, Query)),
    request_body(content = Object, description = "`{\"subscription\": {name, ending_at, subscription_at}}`"),
    responses((status = 200, description = "`{\"subscription\": {…}}`"), (status = 404, description = "`subscription_not_found`")))]
async fn update_subscription(
    State(state): State<AppState>,
    principal: Principal,
    Path(external_id): Path<String>,
    RawQuery(raw): RawQuery,
    body: Bytes,
) -> Result<Json<Value>, ApiError> {
    let status = status_param(&QueryPairs::parse(raw.as_deref())?)?;
    let value = parse_body(&body)?;
    let mut fields = Fields::new(root(&value, "subscription")?);
    let change = SubscriptionUpdate {
        name: fields.string("name").patch(),
        ending_at: time_field(&mut fields, "ending_at").patch(),
        subscription_at: time_field(&mut fields, "subscription_at").value(),
    };
    let change = fields.finish(change)?;
    let subscription = state
        .store
        .update_subscription(
            principal.org,
            &external_id,
            status,
            change,
            state.clock.now(),
        )
        .await?;
    Ok(Json(
        json!({"subscription": full_json(&state, principal, &subscription).await?}),
    ))
}

/// Terminates a subscription now (a pending one is canceled).
#[utoipa::path(delete, path = "/api/v1/subscriptions/{external_id}", tag = "subscriptions",
    params(("external_id" = String, Path), ("status" = Option<String>, Query, description = "active (default) or pending")),
    responses((status = 200, description = "`{\"subscription\": {…}}` with status terminated or canceled"), (status = 404, description = "`subscription_not_found`")))]
async fn terminate_subscription(
    State(state): State<AppState>,
    principal: Principal,
    Path(external_id): Path<String>,
    RawQuery(raw): RawQuery,
) -> Result<Json<Value>, ApiError> {
    let status = status_param(&QueryPairs::parse(raw.as_deref())?)?;
    let subscription = state
        .store
        .terminate_subscription(principal.org, &external_id, status, state.clock.now())
        .await?;
    Ok(Json(
        json!({"subscription": full_json(&state, principal, &subscription).await?}),
    ))
}

async fn full_json(
    state: &AppState,
    principal: Principal,
    subscription: &Subscription,
) -> Result<Value, ApiError> {
    let plan = state
        .store
        .plan_by_id(principal.org, subscription.plan_id)
        .await?;
    subscription_json(state, principal, subscription, Some(&plan)).await
}

/// Renders a subscription in Lago's shape; with `plan`, the full plan is included.
async fn subscription_json(
    state: &AppState,
    principal: Principal,
    subscription: &Subscription,
    plan: Option<&Plan>,
) -> Result<Value, ApiError> {
    let s = subscription;
    let include_plan = plan.is_some();
    let owned;
    let plan = match plan {
        Some(plan) => plan,
        None => {
            owned = state.store.plan_by_id(principal.org, s.plan_id).await?;
            &owned
        }
    };
    let tz = state.billing_zone(principal.org, s.customer_id).await?;
    let now = state.clock.now();
    let current = s
        .started_at
        .filter(|_| s.status == SubscriptionStatus::Active)
        .map(|anchor| {
            Schedule {
                interval: plan.terms.interval,
                billing_time: s.billing_time,
                anchor,
                tz,
            }
            .period_containing(now.max(anchor))
        });
    let trial_end = s
        .started_at
        .filter(|_| plan.terms.trial_period_days > 0)
        .map(|start| {
            Timestamp::from_micros(
                start.micros() + i64::from(plan.terms.trial_period_days) * 86_400_000_000,
            )
        })
        .filter(|end| *end <= now);
    let seconds = |t: Option<Timestamp>| t.map(Timestamp::to_rfc3339_seconds);
    let mut object = subscription_summary(s);
    let extra = json!({
        "plan_amount_cents": plan.terms.amount_cents,
        "plan_amount_currency": plan.terms.currency.code(),
        "trial_ended_at": seconds(trial_end),
        "downgrade_plan_date": s.next_plan_at.map(|at| at.to_datetime().with_timezone(&tz).date_naive().to_string()),
        "current_billing_period_started_at": seconds(current.map(|p| p.from)),
        "current_billing_period_ending_at": seconds(current.map(|p| p.to_inclusive())),
        "on_termination_credit_note": null,
        "on_termination_invoice": "generate",
        "progressive_billing_disabled": false,
        "purchase_order_number": null,
        "cancellation_reason": null,
        "payment_method": null,
    });
    if let (Some(map), Value::Object(extra)) = (object.as_object_mut(), extra) {
        map.extend(extra);
    }
    if include_plan && let Some(map) = object.as_object_mut() {
        map.insert("plan".into(), plan_json(plan));
    }
    Ok(object)
}

/// The fields of a subscription that need nothing but the subscription (invoices embed these).
pub fn subscription_summary(s: &Subscription) -> Value {
    let seconds = |t: Option<Timestamp>| t.map(Timestamp::to_rfc3339_seconds);
    json!({
        "lago_id": s.id.0,
        "external_id": s.external_id.as_str(),
        "lago_customer_id": s.customer_id.0,
        "external_customer_id": s.external_customer_id.as_str(),
        "name": s.name,
        "plan_code": s.plan_code.as_str(),
        "status": s.status.name(),
        "billing_time": s.billing_time.name(),
        "subscription_at": s.subscription_at.to_rfc3339_seconds(),
        "started_at": s.started_at.map(Timestamp::to_rfc3339_millis),
        "ending_at": seconds(s.ending_at),
        "terminated_at": seconds(s.terminated_at),
        "canceled_at": seconds(s.canceled_at),
        "created_at": s.created_at.to_rfc3339_seconds(),
        "previous_plan_code": s.previous_plan_code.as_ref().map(|c| c.as_str()),
        "next_plan_code": s.next_plan_code.as_ref().map(|c| c.as_str()),
    })
}

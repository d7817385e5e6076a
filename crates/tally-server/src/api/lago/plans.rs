//! Lago plans: `POST /plans`, `GET /plans`, `GET|PUT|DELETE /plans/{code}`. A plan's charges are sent
//! with it; on update, the list sent replaces the plan's charges (those with an `id` are kept and
//! changed, the others are new, and those left out are removed).

use std::collections::BTreeMap;

use axum::Json;
use axum::body::Bytes;
use axum::extract::{Path, RawQuery, State};
use serde_json::{Map, Value, json};
use tally_core::charge::{ChargeModel, ChargeModelKind};
use tally_core::currency::Currency;
use tally_core::error::{Reason, ValidationErrors};
use tally_core::id::{ChargeId, Code, MetricId, UsageThresholdId};
use tally_core::metric::AggregationType;
use tally_core::page::PageMeta;
use tally_core::period::Interval;
use tally_core::plan::{
    Charge, ChargeDraft, ChargeFilter, ChargeTerms, MinimumCommitment, Plan, PlanDraft, PlanTerms,
    UsageThreshold,
};
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use super::customers::meta_json;
use crate::api::fields::{Field, Fields, parse_body, root};
use crate::api::query::QueryPairs;
use crate::auth::Principal;
use crate::error::ApiError;
use crate::state::AppState;

/// The plan routes.
pub fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(create_plan, list_plans))
        .routes(routes!(get_plan, update_plan, delete_plan))
}

/// Creates a plan with its charges.
#[utoipa::path(post, path = "/api/v1/plans", tag = "plans",
    request_body(content = Object, description = "`{\"plan\": {name, code, interval, amount_cents, amount_currency, pay_in_advance, trial_period, bill_charges_monthly, charges: [{billable_metric_id, charge_model, properties, filters, …}]}}`"),
    responses((status = 200, description = "`{\"plan\": {…}}`"), (status = 404, description = "`billable_metric_not_found`"), (status = 422, description = "a field is refused")))]
async fn create_plan(
    State(state): State<AppState>,
    principal: Principal,
    body: Bytes,
) -> Result<Json<Value>, ApiError> {
    let value = parse_body(&body)?;
    let mut fields = Fields::new(root(&value, "plan")?);
    let draft = read_plan(&state, principal, &mut fields, None).await?;
    let draft = fields.finish(draft)?;
    let plan = state.store.create_plan(principal.org, draft).await?;
    Ok(Json(
        json!({"plan": with_taxes(&state, principal, &plan).await?}),
    ))
}

/// Lists plans, oldest first.
#[utoipa::path(get, path = "/api/v1/plans", tag = "plans",
    params(("page" = Option<u32>, Query), ("per_page" = Option<u32>, Query)),
    responses((status = 200, description = "`{\"plans\": […], \"meta\": {…}}`")))]
async fn list_plans(
    State(state): State<AppState>,
    principal: Principal,
    RawQuery(raw): RawQuery,
) -> Result<Json<Value>, ApiError> {
    let page = QueryPairs::parse(raw.as_deref())?.page()?;
    let listed = state.store.list_plans(principal.org, page).await?;
    let plans: Vec<Value> = listed.items.iter().map(plan_json).collect();
    Ok(Json(
        json!({"plans": plans, "meta": meta_json(PageMeta::new(page, listed.total))}),
    ))
}

/// Reads one plan.
#[utoipa::path(get, path = "/api/v1/plans/{code}", tag = "plans",
    params(("code" = String, Path)),
    responses((status = 200, description = "`{\"plan\": {…}}`"), (status = 404, description = "`plan_not_found`")))]
async fn get_plan(
    State(state): State<AppState>,
    principal: Principal,
    Path(code): Path<String>,
) -> Result<Json<Value>, ApiError> {
    let plan = state.store.plan(principal.org, &code).await?;
    Ok(Json(
        json!({"plan": with_taxes(&state, principal, &plan).await?}),
    ))
}

/// Changes a plan; the fields sent change, and `charges`, when sent, replaces the list.
#[utoipa::path(put, path = "/api/v1/plans/{code}", tag = "plans",
    params(("code" = String, Path)),
    request_body(content = Object, description = "`{\"plan\": {…}}`"),
    responses((status = 200, description = "`{\"plan\": {…}}`"), (status = 404, description = "`plan_not_found`")))]
async fn update_plan(
    State(state): State<AppState>,
    principal: Principal,
    Path(code): Path<String>,
    body: Bytes,
) -> Result<Json<Value>, ApiError> {
    let existing = state.store.plan(principal.org, &code).await?;
    let value = parse_body(&body)?;
    let mut fields = Fields::new(root(&value, "plan")?);
    let draft = read_plan(&state, principal, &mut fields, Some(&existing)).await?;
    let draft = fields.finish(draft)?;
    let plan = state.store.update_plan(principal.org, &code, draft).await?;
    Ok(Json(
        json!({"plan": with_taxes(&state, principal, &plan).await?}),
    ))
}

/// Deletes a plan; subscriptions already on it keep running on it.
#[utoipa::path(delete, path = "/api/v1/plans/{code}", tag = "plans",
    params(("code" = String, Path)),
    responses((status = 200, description = "`{\"plan\": {…}}`"), (status = 404, description = "`plan_not_found`")))]
async fn delete_plan(
    State(state): State<AppState>,
    principal: Principal,
    Path(code): Path<String>,
) -> Result<Json<Value>, ApiError> {
    let plan = state.store.delete_plan(principal.org, &code).await?;
    let mut answer = plan_json(&plan);
    answer["pending_deletion"] = json!(false);
    Ok(Json(json!({"plan": answer})))
}

/// Renders a plan with the taxes it carries.
async fn with_taxes(
    state: &AppState,
    principal: Principal,
    plan: &Plan,
) -> Result<Value, ApiError> {
    let mut object = plan_json(plan);
    let taxes = state
        .store
        .taxes_of(principal.org, "plan", plan.id.0)
        .await?;
    object["taxes"] = Value::Array(taxes.iter().map(super::taxes::tax_json).collect());
    Ok(object)
}

/// Reads a plan object, on top of an existing plan for updates.
async fn read_plan(
    state: &AppState,
    principal: Principal,
    fields: &mut Fields<'_>,
    base: Option<&Plan>,
) -> Result<PlanDraft, ApiError> {
    let b = base.map(|p| &p.terms);
    let name = match b {
        None => fields.required_string("name"),
        Some(b) => fields
            .string("name")
            .value()
            .or_else(|| Some(b.name.clone())),
    };
    let code = match b {
        None => fields.required_string("code"),
        Some(b) => fields
            .string("code")
            .value()
            .or_else(|| Some(b.code.to_string())),
    }
    .and_then(|c| fields.errors.take(Code::parse("code", &c)));
    let interval = match fields.string("interval") {
        Field::Value(name) => Interval::parse(&name).or_else(|| {
            fields.fail("interval", Reason::ValueIsInvalid);
            None
        }),
        _ => match b {
            Some(b) => Some(b.interval),
            None => {
                fields.fail("interval", Reason::ValueIsMandatory);
                None
            }
        },
    };
    let amount_cents = match fields.integer("amount_cents") {
        Field::Value(cents) => Some(cents),
        _ => match b {
            Some(b) => Some(b.amount_cents),
            None => {
                fields.fail("amount_cents", Reason::ValueIsMandatory);
                None
            }
        },
    };
    let currency = match fields.string("amount_currency") {
        Field::Value(code) => Currency::parse(&code).or_else(|| {
            fields.fail("amount_currency", Reason::ValueIsInvalid);
            None
        }),
        _ => match b {
            Some(b) => Some(b.currency),
            None => {
                fields.fail("amount_currency", Reason::ValueIsMandatory);
                None
            }
        },
    };
    let pay_in_advance = match fields.boolean("pay_in_advance") {
        Field::Value(flag) => Some(flag),
        _ => b.map(|b| b.pay_in_advance).or_else(|| {
            fields.fail("pay_in_advance", Reason::ValueIsMandatory);
            None
        }),
    };
    let trial = match fields.decimal("trial_period") {
        Field::Value(days) if days >= rust_decimal::Decimal::ZERO && days.fract().is_zero() => {
            u32::try_from(days.mantissa() / 10_i128.pow(days.scale())).ok()
        }
        Field::Value(_) => {
            fields.fail("trial_period", Reason::ValueIsInvalid);
            None
        }
        _ => Some(b.map_or(0, |b| b.trial_period_days)),
    };
    let description = match fields.string("description").patch() {
        Some(v) => v,
        None => b.and_then(|b| b.description.clone()),
    };
    let invoice_display_name = match fields.string("invoice_display_name").patch() {
        Some(v) => v,
        None => b.and_then(|b| b.invoice_display_name.clone()),
    };
    let bill_charges_monthly = fields
        .boolean("bill_charges_monthly")
        .value()
        .or(b.map(|b| b.bill_charges_monthly))
        .unwrap_or(false);
    let minimum_commitment = match fields.object("minimum_commitment").patch() {
        Some(Some(object)) => {
            let mut nested = Fields::nested(object, "minimum_commitment");
            let amount_cents = nested.integer("amount_cents").value();
            if amount_cents.is_none() {
                nested.fail("amount_cents", Reason::ValueIsMandatory);
            }
            let invoice_display_name = nested.string("invoice_display_name").value();
            fields.absorb(nested);
            amount_cents.map(|amount_cents| MinimumCommitment {
                amount_cents,
                invoice_display_name,
            })
        }
        Some(None) => None,
        None => b.and_then(|b| b.minimum_commitment.clone()),
    };
    let charges = match fields.array("charges").patch() {
        Some(list) => {
            read_charges(
                state,
                principal,
                fields,
                list.map_or(&[][..], Vec::as_slice),
            )
            .await?
        }
        None => base
            .map(|p| p.charges.iter().map(draft_of).collect())
            .unwrap_or_default(),
    };
    let terms = match (
        name,
        code,
        interval,
        amount_cents,
        currency,
        pay_in_advance,
        trial,
    ) {
        (
            Some(name),
            Some(code),
            Some(interval),
            Some(amount_cents),
            Some(currency),
            Some(pay_in_advance),
            Some(trial),
        ) => PlanTerms {
            code,
            name,
            description,
            invoice_display_name,
            interval,
            amount_cents,
            currency,
            pay_in_advance,
            trial_period_days: trial,
            bill_charges_monthly,
            minimum_commitment,
        },
        _ => return Err(ApiError::Validation(std::mem::take(&mut fields.errors))),
    };
    let tax_codes = super::taxes::tax_codes(fields);
    let usage_thresholds = match fields.array("usage_thresholds").patch() {
        Some(list) => read_thresholds(fields, list.map_or(&[][..], Vec::as_slice)),
        None => base
            .map(|p| {
                p.usage_thresholds
                    .iter()
                    .map(|(id, t)| (Some(*id), t.clone()))
                    .collect()
            })
            .unwrap_or_default(),
    };
    Ok(PlanDraft {
        terms,
        charges,
        tax_codes,
        usage_thresholds,
    })
}

/// Reads `usage_thresholds`: `{id?, amount_cents*, threshold_display_name, recurring}` each.
fn read_thresholds(
    fields: &mut Fields<'_>,
    list: &[Value],
) -> Vec<(Option<UsageThresholdId>, UsageThreshold)> {
    let mut thresholds = Vec::with_capacity(list.len());
    for (index, item) in list.iter().enumerate() {
        let Some(object) = item.as_object() else {
            fields.fail(&format!("usage_thresholds.{index}"), Reason::InvalidFormat);
            continue;
        };
        let mut nested = Fields::nested(object, &format!("usage_thresholds.{index}"));
        let id = match nested.string("id").value() {
            Some(text) => match uuid::Uuid::parse_str(&text) {
                Ok(id) => Some(UsageThresholdId(id)),
                Err(_) => {
                    nested.fail("id", Reason::InvalidFormat);
                    None
                }
            },
            None => None,
        };
        let amount_cents = nested.integer("amount_cents").value();
        if amount_cents.is_none() {
            nested.fail("amount_cents", Reason::ValueIsMandatory);
        }
        let display_name = nested.string("threshold_display_name").value();
        let recurring = nested.boolean("recurring").value().unwrap_or(false);
        fields.absorb(nested);
        if let Some(amount_cents) = amount_cents {
            thresholds.push((
                id,
                UsageThreshold {
                    amount_cents,
                    display_name,
                    recurring,
                },
            ));
        }
    }
    thresholds
}

/// Renders a usage threshold in Lago's shape.
pub fn threshold_json(id: UsageThresholdId, threshold: &UsageThreshold, at: &str) -> Value {
    json!({
        "lago_id": id.0,
        "threshold_display_name": threshold.display_name,
        "amount_cents": threshold.amount_cents,
        "recurring": threshold.recurring,
        "created_at": at,
        "updated_at": at,
    })
}

/// Turns a stored charge back into a draft that keeps it as it is.
fn draft_of(charge: &Charge) -> ChargeDraft {
    ChargeDraft {
        id: Some(charge.id),
        metric_id: charge.metric_id,
        terms: charge.terms.clone(),
        filters: charge.filters.iter().map(|(_, f)| f.clone()).collect(),
        tax_codes: None,
    }
}

async fn read_charges(
    state: &AppState,
    principal: Principal,
    fields: &mut Fields<'_>,
    list: &[Value],
) -> Result<Vec<ChargeDraft>, ApiError> {
    let mut drafts = Vec::with_capacity(list.len());
    let mut used_codes: Vec<String> = Vec::new();
    for (index, item) in list.iter().enumerate() {
        let Some(object) = item.as_object() else {
            fields.fail(&format!("charges.{index}"), Reason::InvalidFormat);
            continue;
        };
        let prefix = format!("charges.{index}");
        let mut nested = Fields::nested(object, &prefix);
        let metric_id = nested.required_string("billable_metric_id");
        let metric = match metric_id.as_deref().map(uuid::Uuid::parse_str) {
            Some(Ok(id)) => Some(state.store.metric_by_id(principal.org, id).await?),
            Some(Err(_)) => return Err(ApiError::NotFound("billable_metric")),
            None => None,
        };
        let kind = match nested.required_string("charge_model") {
            Some(name) => ChargeModelKind::parse(&name).or_else(|| {
                nested.fail("charge_model", Reason::ValueIsInvalid);
                None
            }),
            None => None,
        };
        let id = match nested.string("id").value() {
            Some(text) => match uuid::Uuid::parse_str(&text) {
                Ok(id) => Some(ChargeId(id)),
                Err(_) => {
                    nested.fail("id", Reason::InvalidFormat);
                    None
                }
            },
            None => None,
        };
        let model = kind.and_then(|kind| {
            let properties = nested.object("properties").value();
            match ChargeModel::from_properties(kind, properties) {
                Ok(model) => Some(model),
                Err(errors) => {
                    prefix_errors(&mut nested, &errors);
                    None
                }
            }
        });
        let filters = match nested.array("filters").value() {
            Some(list) => read_filters(&mut nested, kind, list),
            None => Vec::new(),
        };
        let pay_in_advance = nested.boolean("pay_in_advance").value().unwrap_or(false);
        let tax_codes = super::taxes::tax_codes(&mut nested);
        let terms_code = nested.string("code").value();
        let terms = ChargeTerms {
            code: String::new(),
            invoice_display_name: nested.string("invoice_display_name").value(),
            model: model.clone().unwrap_or(ChargeModel::Standard {
                amount: rust_decimal::Decimal::ZERO,
            }),
            pay_in_advance,
            invoiceable: nested.boolean("invoiceable").value().unwrap_or(true),
            prorated: nested.boolean("prorated").value().unwrap_or(false),
            min_amount_cents: nested.integer("min_amount_cents").value().unwrap_or(0),
        };
        fields.absorb(nested);
        // Carried units (and proration) are built for recurring sums priced by standard, package or
        // graduated charges on invoices; other recurring metrics are not.
        if terms.pay_in_advance
            && let Some(metric) = &metric
            && metric.definition.recurring
            && (!matches!(
                metric.definition.aggregation,
                AggregationType::Sum | AggregationType::UniqueCount
            ) || !terms.invoiceable
                || !matches!(
                    terms.model.kind(),
                    ChargeModelKind::Standard
                        | ChargeModelKind::Package
                        | ChargeModelKind::Graduated
                ))
        {
            return Err(ApiError::NotImplemented(format!(
                "charges.{index}: pay-in-advance charges on recurring metrics other than an \
                 invoiceable standard, package or graduated charge on a sum or a unique count are not \
                 built yet; bill this charge in arrears (pay_in_advance: false)"
            )));
        }
        if let (Some(metric), Some(_)) = (metric, model) {
            let code = terms_code.unwrap_or_else(|| {
                let base = metric.definition.code.to_string();
                let mut candidate = base.clone();
                let mut n = 1;
                while used_codes.contains(&candidate) {
                    n += 1;
                    candidate = format!("{base}_{n}");
                }
                candidate
            });
            used_codes.push(code.clone());
            drafts.push(ChargeDraft {
                id,
                metric_id: MetricId(metric.id.0),
                terms: ChargeTerms { code, ..terms },
                filters,
                tax_codes,
            });
        }
    }
    Ok(drafts)
}

fn prefix_errors(fields: &mut Fields<'_>, errors: &ValidationErrors) {
    for error in errors.errors() {
        fields.fail(&error.field, error.reason);
    }
}

fn read_filters(
    fields: &mut Fields<'_>,
    kind: Option<ChargeModelKind>,
    list: &[Value],
) -> Vec<ChargeFilter> {
    let mut filters = Vec::new();
    for (index, item) in list.iter().enumerate() {
        let Some(object) = item.as_object() else {
            fields.fail(&format!("filters.{index}"), Reason::InvalidFormat);
            continue;
        };
        let mut nested = Fields::nested(object, &format!("filters.{index}"));
        let values: Option<BTreeMap<String, Vec<String>>> = match nested.object("values").value() {
            Some(map) => map
                .iter()
                .map(|(key, values)| {
                    let list = values
                        .as_array()?
                        .iter()
                        .map(|v| v.as_str().map(str::to_owned))
                        .collect::<Option<Vec<_>>>()?;
                    Some((key.clone(), list))
                })
                .collect(),
            None => None,
        };
        if values.is_none() {
            nested.fail("values", Reason::ValueIsMandatory);
        }
        let model = kind.and_then(|kind| {
            match ChargeModel::from_properties(kind, nested.object("properties").value()) {
                Ok(model) => Some(model),
                Err(errors) => {
                    prefix_errors(&mut nested, &errors);
                    None
                }
            }
        });
        let invoice_display_name = nested.string("invoice_display_name").value();
        fields.absorb(nested);
        if let (Some(values), Some(model)) = (values, model) {
            filters.push(ChargeFilter {
                values,
                model,
                invoice_display_name,
            });
        }
    }
    filters
}

fn charge_json(charge: &Charge, created_at: &str) -> Value {
    let t = &charge.terms;
    let filters: Vec<Value> = charge
        .filters
        .iter()
        .map(|(id, f)| {
            json!({
                "lago_id": id.0,
                "invoice_display_name": f.invoice_display_name,
                "properties": f.model.to_properties(),
                "values": f.values,
            })
        })
        .collect();
    json!({
        "lago_id": charge.id.0,
        "lago_billable_metric_id": charge.metric_id.0,
        "billable_metric_code": charge.metric_code.as_str(),
        "code": t.code,
        "invoice_display_name": t.invoice_display_name,
        "created_at": created_at,
        "charge_model": t.model.kind().name(),
        "pay_in_advance": t.pay_in_advance,
        "invoiceable": t.invoiceable,
        "regroup_paid_fees": null,
        "prorated": t.prorated,
        "min_amount_cents": t.min_amount_cents,
        "properties": t.model.to_properties(),
        "filters": filters,
        "taxes": charge.taxes.iter().map(super::taxes::tax_json).collect::<Vec<_>>(),
        "applied_pricing_unit": null,
        "accepts_target_wallet": false,
        "lago_parent_id": null,
    })
}

/// Renders a plan in Lago's shape.
pub fn plan_json(plan: &Plan) -> Value {
    let t = &plan.terms;
    let created_at = plan.created_at.to_rfc3339_seconds();
    let charges: Vec<Value> = plan
        .charges
        .iter()
        .map(|c| charge_json(c, &created_at))
        .collect();
    let mut object = Map::new();
    for (key, value) in [
        ("lago_id", json!(plan.id.0)),
        ("name", json!(t.name)),
        ("code", json!(t.code.as_str())),
        ("interval", json!(t.interval.name())),
        ("description", json!(t.description)),
        ("invoice_display_name", json!(t.invoice_display_name)),
        ("amount_cents", json!(t.amount_cents)),
        ("amount_currency", json!(t.currency.code())),
        ("pay_in_advance", json!(t.pay_in_advance)),
        ("trial_period", json!(t.trial_period_days)),
        ("bill_charges_monthly", json!(t.bill_charges_monthly)),
        ("created_at", json!(created_at)),
        ("charges", Value::Array(charges)),
        ("taxes", json!([])),
        (
            "minimum_commitment",
            t.minimum_commitment.as_ref().map_or(Value::Null, |c| {
                json!({
                    "plan_code": t.code.as_str(),
                    "amount_cents": c.amount_cents,
                    "invoice_display_name": c.invoice_display_name,
                    "interval": t.interval.name(),
                    "created_at": created_at,
                    "taxes": [],
                })
            }),
        ),
        (
            "usage_thresholds",
            plan.usage_thresholds
                .iter()
                .map(|(id, t)| threshold_json(*id, t, &created_at))
                .collect(),
        ),
        ("customers_count", json!(0)),
        ("active_subscriptions_count", json!(0)),
        ("draft_invoices_count", json!(0)),
        ("parent_id", Value::Null),
        ("pending_deletion", json!(false)),
    ] {
        object.insert(key.into(), value);
    }
    Value::Object(object)
}

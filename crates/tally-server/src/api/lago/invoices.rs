//! Lago invoices: `GET /invoices`, `GET|PUT /invoices/{lago_id}`, `PUT|POST /invoices/{lago_id}/finalize`,
//! `PUT|POST /invoices/{lago_id}/refresh`, `POST /invoices/{lago_id}/void`,
//! `POST /invoices/{lago_id}/download`, and `POST /invoices` for one-off invoices of add-ons. Other
//! invoices are made by the billing clock; a draft is recomputed until finalized, then frozen. Every
//! answer about a finalized or voided invoice carries a fresh signed `file_url` (see
//! [`crate::api::invoice_files`]).

use axum::Json;
use axum::body::Bytes;
use axum::extract::{Path, RawQuery, State};
use chrono::Days;
use serde_json::{Value, json};
use tally_core::billing::{FeeKind, RunReason};
use tally_core::error::Reason;
use tally_core::id::InvoiceId;
use tally_core::invoice::{InvoiceStatus, PaymentStatus};
use tally_core::money::dec_string;
use tally_core::page::PageMeta;
use tally_core::period::Period;
use tally_core::time::Timestamp;
use tally_store::{Invoice, InvoiceFilter, StoredFee};
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use super::customers::{customer_json, meta_json};
use super::subscriptions::subscription_summary;
use crate::api::fields::{Fields, parse_body, root};
use crate::api::invoice_files::DocumentLinks;
use crate::api::query::QueryPairs;
use crate::auth::Principal;
use crate::error::ApiError;
use crate::state::AppState;

/// The invoice routes.
pub fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(list_invoices, create_invoice))
        .routes(routes!(get_invoice, update_invoice))
        .routes(routes!(finalize_put, finalize_post))
        .routes(routes!(refresh_put, refresh_post))
        .routes(routes!(void_invoice))
        .routes(routes!(download_invoice))
}

fn invoice_id(text: &str) -> Result<InvoiceId, ApiError> {
    uuid::Uuid::parse_str(text)
        .map(InvoiceId)
        .map_err(|_| ApiError::NotFound("invoice"))
}

/// Lists invoices, newest first.
#[utoipa::path(get, path = "/api/v1/invoices", tag = "invoices",
    params(("page" = Option<u32>, Query), ("per_page" = Option<u32>, Query), ("external_customer_id" = Option<String>, Query),
        ("status" = Option<String>, Query), ("statuses[]" = Option<Vec<String>>, Query),
        ("payment_status" = Option<String>, Query), ("payment_statuses[]" = Option<Vec<String>>, Query)),
    responses((status = 200, description = "`{\"invoices\": […], \"meta\": {…}}` (without fees)")))]
async fn list_invoices(
    State(state): State<AppState>,
    principal: Principal,
    links: DocumentLinks,
    RawQuery(raw): RawQuery,
) -> Result<Json<Value>, ApiError> {
    let query = QueryPairs::parse(raw.as_deref())?;
    let page = query.page()?;
    let mut statuses = query.all("statuses");
    statuses.extend(query.get("status").map(str::to_owned));
    let mut payments = query.all("payment_statuses");
    payments.extend(query.get("payment_status").map(str::to_owned));
    let filter = InvoiceFilter {
        external_customer_id: query.get("external_customer_id").map(str::to_owned),
        statuses: statuses
            .iter()
            .map(|s| {
                InvoiceStatus::parse(s)
                    .ok_or_else(|| ApiError::BadRequest(format!("unknown status {s:?}")))
            })
            .collect::<Result<_, _>>()?,
        payment_statuses: payments
            .iter()
            .map(|s| {
                PaymentStatus::parse(s)
                    .ok_or_else(|| ApiError::BadRequest(format!("unknown payment status {s:?}")))
            })
            .collect::<Result<_, _>>()?,
    };
    let listed = state
        .store
        .list_invoices(principal.org, &filter, page)
        .await?;
    let invoices: Vec<Value> = listed
        .items
        .iter()
        .map(|i| {
            let mut object = invoice_json(i, false);
            links.attach(&mut object, i);
            object
        })
        .collect();
    Ok(Json(
        json!({"invoices": invoices, "meta": meta_json(PageMeta::new(page, listed.total))}),
    ))
}

/// Bills add-ons to a customer on a one-off invoice, finalized and numbered at once from the
/// customer's invoice sequence. No coupon, credit note or prepaid credit applies to it, as in Lago.
#[utoipa::path(post, path = "/api/v1/invoices", tag = "invoices",
    request_body(content = Object, description = "`{\"invoice\": {external_customer_id, currency, fees: [{add_on_code, units (dec-string, default 1), unit_amount_cents (default: the add-on's), description, invoice_display_name, tax_codes, from_datetime, to_datetime}]}}`"),
    responses((status = 200, description = "`{\"invoice\": {…, \"invoice_type\": \"one_off\", \"status\": \"finalized\"}}`"),
        (status = 404, description = "`customer_not_found`, `add_on_not_found`, `tax_not_found`"),
        (status = 422, description = "a field is refused (`currency`: `currencies_does_not_match`; `fees.<i>.<field>`)")))]
async fn create_invoice(
    State(state): State<AppState>,
    principal: Principal,
    links: DocumentLinks,
    body: Bytes,
) -> Result<Json<Value>, ApiError> {
    let value = parse_body(&body)?;
    let mut fields = Fields::new(root(&value, "invoice")?);
    let request = super::one_off::read_request(&mut fields);
    let request = fields
        .finish(request)?
        .ok_or_else(|| ApiError::BadRequest("the invoice is incomplete".into()))?;
    let invoice = state
        .store
        .create_one_off_invoice(principal.org, request, state.clock.now())
        .await?;
    Ok(answer(&invoice, &links))
}

/// Reads an invoice with its fees.
#[utoipa::path(get, path = "/api/v1/invoices/{lago_id}", tag = "invoices",
    params(("lago_id" = String, Path)),
    responses((status = 200, description = "`{\"invoice\": {…, fees}}`"), (status = 404, description = "`invoice_not_found`")))]
async fn get_invoice(
    State(state): State<AppState>,
    principal: Principal,
    links: DocumentLinks,
    Path(id): Path<String>,
) -> Result<Json<Value>, ApiError> {
    let invoice = state.store.invoice(principal.org, invoice_id(&id)?).await?;
    Ok(answer(&invoice, &links))
}

/// Answers `{"invoice": {…}}` with the fees and a fresh `file_url`.
fn answer(invoice: &Invoice, links: &DocumentLinks) -> Json<Value> {
    let mut object = invoice_json(invoice, true);
    links.attach(&mut object, invoice);
    Json(json!({ "invoice": object }))
}

/// Sets an invoice's `payment_status` (pending, succeeded, failed).
#[utoipa::path(put, path = "/api/v1/invoices/{lago_id}", tag = "invoices",
    params(("lago_id" = String, Path)),
    request_body(content = Object, description = "`{\"invoice\": {\"payment_status\": \"succeeded\"}}`"),
    responses((status = 200, description = "`{\"invoice\": {…}}`"), (status = 422, description = "unknown payment status")))]
async fn update_invoice(
    State(state): State<AppState>,
    principal: Principal,
    links: DocumentLinks,
    Path(id): Path<String>,
    body: Bytes,
) -> Result<Json<Value>, ApiError> {
    let id = invoice_id(&id)?;
    let value = parse_body(&body)?;
    let mut fields = Fields::new(root(&value, "invoice")?);
    let status = match fields.string("payment_status").value() {
        Some(name) => PaymentStatus::parse(&name).or_else(|| {
            fields.fail("payment_status", Reason::ValueIsInvalid);
            None
        }),
        None => None,
    };
    let status = fields.finish(status)?;
    let invoice = match status {
        Some(status) => {
            state
                .store
                .set_invoice_payment_status(principal.org, id, status)
                .await?
        }
        None => state.store.invoice(principal.org, id).await?,
    };
    Ok(answer(&invoice, &links))
}

async fn finalize(
    state: AppState,
    principal: Principal,
    links: DocumentLinks,
    id: String,
) -> Result<Json<Value>, ApiError> {
    let invoice = state
        .store
        .finalize_invoice(principal.org, invoice_id(&id)?, state.clock.now())
        .await?;
    Ok(answer(&invoice, &links))
}

/// Finalizes a draft now: recomputed, then frozen and numbered.
#[utoipa::path(put, path = "/api/v1/invoices/{lago_id}/finalize", tag = "invoices",
    params(("lago_id" = String, Path)),
    responses((status = 200, description = "`{\"invoice\": {…}}`"), (status = 405, description = "`invoice_not_draft`")))]
async fn finalize_put(
    State(state): State<AppState>,
    principal: Principal,
    links: DocumentLinks,
    Path(id): Path<String>,
) -> Result<Json<Value>, ApiError> {
    finalize(state, principal, links, id).await
}

/// Finalizes a draft now (the same as `PUT`).
#[utoipa::path(post, path = "/api/v1/invoices/{lago_id}/finalize", tag = "invoices",
    params(("lago_id" = String, Path)),
    responses((status = 200, description = "`{\"invoice\": {…}}`"), (status = 405, description = "`invoice_not_draft`")))]
async fn finalize_post(
    State(state): State<AppState>,
    principal: Principal,
    links: DocumentLinks,
    Path(id): Path<String>,
) -> Result<Json<Value>, ApiError> {
    finalize(state, principal, links, id).await
}

async fn refresh(
    state: AppState,
    principal: Principal,
    links: DocumentLinks,
    id: String,
) -> Result<Json<Value>, ApiError> {
    let invoice = state
        .store
        .refresh_invoice(principal.org, invoice_id(&id)?)
        .await?;
    Ok(answer(&invoice, &links))
}

/// Recomputes a draft from current usage.
#[utoipa::path(put, path = "/api/v1/invoices/{lago_id}/refresh", tag = "invoices",
    params(("lago_id" = String, Path)),
    responses((status = 200, description = "`{\"invoice\": {…}}`"), (status = 405, description = "`invoice_not_draft`")))]
async fn refresh_put(
    State(state): State<AppState>,
    principal: Principal,
    links: DocumentLinks,
    Path(id): Path<String>,
) -> Result<Json<Value>, ApiError> {
    refresh(state, principal, links, id).await
}

/// Recomputes a draft from current usage (the same as `PUT`).
#[utoipa::path(post, path = "/api/v1/invoices/{lago_id}/refresh", tag = "invoices",
    params(("lago_id" = String, Path)),
    responses((status = 200, description = "`{\"invoice\": {…}}`"), (status = 405, description = "`invoice_not_draft`")))]
async fn refresh_post(
    State(state): State<AppState>,
    principal: Principal,
    links: DocumentLinks,
    Path(id): Path<String>,
) -> Result<Json<Value>, ApiError> {
    refresh(state, principal, links, id).await
}

/// Voids a finalized invoice; it keeps its number.
#[utoipa::path(post, path = "/api/v1/invoices/{lago_id}/void", tag = "invoices",
    params(("lago_id" = String, Path)),
    responses((status = 200, description = "`{\"invoice\": {…}}` with status voided"), (status = 405, description = "`not_voidable`")))]
async fn void_invoice(
    State(state): State<AppState>,
    principal: Principal,
    links: DocumentLinks,
    Path(id): Path<String>,
) -> Result<Json<Value>, ApiError> {
    let invoice = state
        .store
        .void_invoice(principal.org, invoice_id(&id)?, state.clock.now())
        .await?;
    Ok(answer(&invoice, &links))
}

/// Answers the invoice with a signed `file_url` to its PDF at once (Lago answers an empty body until
/// its renderer has run); tally renders the document when the link is fetched. Drafts have no
/// document: 405 `is_draft`, as in Lago.
#[utoipa::path(post, path = "/api/v1/invoices/{lago_id}/download", tag = "invoices",
    params(("lago_id" = String, Path)),
    responses((status = 200, description = "`{\"invoice\": {…, \"file_url\": \"https://…/file.pdf?…\"}}`"),
        (status = 404, description = "`invoice_not_found`"), (status = 405, description = "`is_draft`")))]
async fn download_invoice(
    State(state): State<AppState>,
    principal: Principal,
    links: DocumentLinks,
    Path(id): Path<String>,
) -> Result<Json<Value>, ApiError> {
    let invoice = state.store.invoice(principal.org, invoice_id(&id)?).await?;
    if invoice.status == InvoiceStatus::Draft {
        return Err(ApiError::NotAllowed("is_draft"));
    }
    Ok(answer(&invoice, &links))
}

fn date_time(at: Timestamp) -> String {
    at.to_rfc3339_seconds()
}

/// What a fee is rendered with besides its own fields: the invoice it is on (if any), its customer
/// and subscription, its currency and payment status.
pub struct FeeOwner<'a> {
    /// The invoice's `lago_id`, when the fee is on an invoice.
    pub invoice_id: Option<uuid::Uuid>,
    /// The customer billed.
    pub customer: &'a tally_core::customer::Customer,
    /// The subscription billed, if any.
    pub subscription: Option<&'a tally_core::subscription::Subscription>,
    /// The currency of the amounts.
    pub currency: tally_core::currency::Currency,
    /// The payment status of the invoice (`pending` without one).
    pub payment_status: PaymentStatus,
    /// Whether the fee's charge puts its fees on invoices.
    pub invoiceable: bool,
}

impl<'a> FeeOwner<'a> {
    /// The owner of an invoice's lines.
    pub fn invoice(invoice: &'a Invoice) -> Self {
        FeeOwner {
            invoice_id: Some(invoice.id.0),
            customer: &invoice.customer,
            subscription: invoice.subscription.as_ref(),
            currency: invoice.currency,
            payment_status: invoice.payment_status,
            invoiceable: true,
        }
    }
}

/// Renders an invoice's fee in Lago's shape.
pub fn fee_json(invoice: &Invoice, stored: &StoredFee) -> Value {
    fee_object(&FeeOwner::invoice(invoice), stored)
}

/// Renders a fee in Lago's shape (`GET /fees`, invoice lines, fee estimates).
pub fn fee_object(owner: &FeeOwner<'_>, stored: &StoredFee) -> Value {
    let f = &stored.fee;
    let fee_taxes: i64 = stored.taxes.iter().map(|t| t.amount_cents).sum();
    let tax_rate = stored
        .taxes
        .iter()
        .map(|t| t.rate)
        .sum::<rust_decimal::Decimal>()
        .normalize()
        .to_string()
        .parse::<serde_json::Number>()
        .map_or(Value::Null, Value::Number);
    let currency = owner.currency.code();
    let subscription = owner.subscription;
    let (item_type, lago_item_id) = match f.kind {
        FeeKind::Subscription => ("Subscription", subscription.map(|s| json!(s.id.0))),
        FeeKind::Charge | FeeKind::Commitment => {
            ("BillableMetric", f.charge_id.map(|c| json!(c.0)))
        }
        FeeKind::Credit => ("WalletTransaction", None),
        FeeKind::AddOn => ("AddOn", stored.add_on_id.map(|id| json!(id))),
    };
    json!({
        "lago_id": stored.id.0,
        "lago_charge_id": f.charge_id.map(|c| c.0),
        "lago_charge_filter_id": f.filter_id.map(|c| c.0),
        "lago_fixed_charge_id": null,
        "lago_invoice_id": owner.invoice_id,
        "lago_true_up_fee_id": null,
        "lago_true_up_parent_fee_id": null,
        "lago_subscription_id": subscription.map(|s| s.id.0),
        "external_subscription_id": subscription.map(|s| s.external_id.as_str()),
        "lago_customer_id": owner.customer.id.0,
        "external_customer_id": owner.customer.external_id.as_str(),
        "item": {
            "type": f.kind.name(),
            "code": stored.item_code,
            "name": stored.item_name,
            "description": stored.description,
            "invoice_display_name": stored.invoice_display_name.clone().unwrap_or_else(|| stored.item_name.clone()),
            "filter_invoice_display_name": stored.filter_name,
            "filters": stored.filter_values,
            "lago_item_id": lago_item_id,
            "item_type": item_type,
            "grouped_by": {},
        },
        "pay_in_advance": stored.pay_in_advance,
        "invoiceable": owner.invoiceable,
        "amount_cents": f.amount_cents,
        "amount_currency": currency,
        "precise_amount": dec_string(f.precise_amount),
        "precise_total_amount": dec_string(f.precise_amount),
        "taxes_amount_cents": fee_taxes,
        "taxes_precise_amount": fee_taxes.to_string(),
        "taxes_rate": tax_rate,
        "total_amount_cents": f.amount_cents - stored.coupons_amount_cents + fee_taxes,
        "total_amount_currency": currency,
        "units": dec_string(f.units),
        "total_aggregated_units": dec_string(f.total_aggregated_units),
        "precise_unit_amount": dec_string(f.precise_unit_amount()),
        "events_count": f.events_count,
        "description": stored.description,
        "precise_coupons_amount_cents": stored.coupons_amount_cents.to_string(),
        "sub_total_excluding_taxes_amount_cents": f.amount_cents - stored.coupons_amount_cents,
        "sub_total_excluding_taxes_precise_amount_cents": dec_string(f.precise_amount * rust_decimal::Decimal::from(10_i64.pow(owner.currency.exponent()))),
        "payment_status": owner.payment_status.name(),
        "created_at": date_time(stored.created_at),
        "succeeded_at": null,
        "failed_at": null,
        "refunded_at": null,
        "from_date": date_time(f.period.from),
        "to_date": date_time(f.period.to_inclusive()),
        "event_transaction_id": stored.event_transaction_id,
        "amount_details": f.details,
        "self_billed": false,
        "pricing_unit_details": null,
        "presentation_breakdowns": [],
        "applied_taxes": stored.taxes.iter().map(|t| applied_tax_json(owner, t, stored.created_at)).collect::<Vec<_>>(),
    })
}

/// Renders a tax applied to a fee or an invoice.
fn applied_tax_json(owner: &FeeOwner<'_>, tax: &tally_store::FeeTax, at: Timestamp) -> Value {
    let rate = tax
        .rate
        .normalize()
        .to_string()
        .parse::<serde_json::Number>()
        .map_or(Value::Null, Value::Number);
    json!({
        "lago_id": tax.tax_id,
        "lago_tax_id": tax.tax_id,
        "lago_invoice_id": owner.invoice_id,
        "tax_name": tax.name,
        "tax_code": tax.code,
        "tax_rate": rate,
        "tax_description": null,
        "amount_cents": tax.amount_cents,
        "amount_currency": owner.currency.code(),
        "created_at": date_time(at),
    })
}

/// Renders an invoice in Lago's shape; `with_fees` adds its lines (single-invoice answers).
pub fn invoice_json(invoice: &Invoice, with_fees: bool) -> Value {
    let t = &invoice.totals;
    let due = invoice
        .issuing_date
        .checked_add_days(Days::new(
            u64::try_from(invoice.net_payment_term).unwrap_or(0),
        ))
        .unwrap_or(invoice.issuing_date);
    let number = invoice.number.clone().unwrap_or_else(|| "DRAFT".to_owned());
    let billing_periods: Vec<Value> = invoice
        .subscription
        .iter()
        .zip(&invoice.run)
        .map(|(s, run)| {
            let charges = run.charges.unwrap_or(run.subscription_period);
            // Ends are the last second of a period, except on a termination between boundaries,
            // whose periods end at terminated_at itself, as Lago shows them.
            let end = |period: Period| {
                if run.reason == RunReason::Terminating {
                    period.to
                } else {
                    period.to_inclusive()
                }
            };
            json!({
                "lago_subscription_id": s.id.0,
                "external_subscription_id": s.external_id.as_str(),
                "lago_plan_id": s.plan_id.0,
                "subscription_from_datetime": date_time(run.subscription_period.from),
                "subscription_to_datetime": date_time(end(run.subscription_period)),
                "charges_from_datetime": date_time(charges.from),
                "charges_to_datetime": date_time(end(charges)),
                "invoicing_reason": run.reason.name(),
            })
        })
        .collect();
    let mut object = json!({
        "lago_id": invoice.id.0,
        "sequential_id": invoice.sequential_id,
        "number": number,
        "billing_entity_code": null,
        "issuing_date": invoice.issuing_date.to_string(),
        "payment_due_date": due.to_string(),
        "net_payment_term": invoice.net_payment_term,
        "invoice_type": invoice.invoice_type,
        "status": invoice.status.name(),
        "payment_status": invoice.payment_status.name(),
        "payment_overdue": false,
        "payment_dispute_lost_at": null,
        "currency": invoice.currency.code(),
        "fees_amount_cents": t.fees_amount_cents,
        "coupons_amount_cents": t.coupons_amount_cents,
        "credit_notes_amount_cents": t.credit_notes_amount_cents,
        "sub_total_excluding_taxes_amount_cents": t.sub_total_excluding_taxes_amount_cents,
        "taxes_amount_cents": t.taxes_amount_cents,
        "sub_total_including_taxes_amount_cents": t.sub_total_including_taxes_amount_cents,
        "prepaid_credit_amount_cents": t.prepaid_credit_amount_cents,
        "prepaid_granted_credit_amount_cents": 0,
        "prepaid_purchased_credit_amount_cents": 0,
        "progressive_billing_credit_amount_cents": t.progressive_billing_credit_amount_cents,
        "total_amount_cents": t.total_amount_cents,
        "total_due_amount_cents": if invoice.payment_status == PaymentStatus::Succeeded || invoice.status == InvoiceStatus::Voided { 0 } else { t.total_amount_cents },
        "total_paid_amount_cents": if invoice.payment_status == PaymentStatus::Succeeded { t.total_amount_cents } else { 0 },
        "total_offsetted_credit_note_amount_cents": 0,
        "file_url": null,
        "xml_url": null,
        "web_url": null,
        "version_number": 4,
        "self_billed": false,
        "purchase_order_number": null,
        "voided_at": invoice.voided_at.map(date_time),
        "finalized_at": invoice.finalized_at.map(date_time),
        "created_at": date_time(invoice.created_at),
        "updated_at": date_time(invoice.updated_at),
        "customer": customer_json(&invoice.customer, invoice.timezone),
        "subscriptions": invoice.subscription.iter().map(subscription_summary).collect::<Vec<_>>(),
        "billing_periods": billing_periods,
        "credits": invoice.coupons.iter().map(|c| json!({
            "lago_id": c.applied_coupon_id,
            "amount_cents": c.amount_cents,
            "amount_currency": invoice.currency.code(),
            "before_taxes": true,
            "item": {"lago_item_id": c.applied_coupon_id, "type": "coupon", "code": c.code, "name": c.name},
            "invoice": {"lago_id": invoice.id.0, "payment_status": invoice.payment_status.name()},
        })).chain(invoice.credit_notes.iter().map(|n| json!({
            "lago_id": n.applied_coupon_id,
            "amount_cents": n.amount_cents,
            "amount_currency": invoice.currency.code(),
            "before_taxes": false,
            "item": {"lago_item_id": n.applied_coupon_id, "type": "credit_note", "code": n.code, "name": n.name},
            "invoice": {"lago_id": invoice.id.0, "payment_status": invoice.payment_status.name()},
        }))).collect::<Vec<_>>(),
        "metadata": [],
        "applied_taxes": invoice.applied_taxes.iter().map(|t| applied_tax_json(&FeeOwner::invoice(invoice), t, invoice.created_at)).collect::<Vec<_>>(),
        "applied_usage_thresholds": invoice.applied_usage_thresholds.iter().map(|a| json!({
            "lifetime_usage_amount_cents": a.lifetime_usage_amount_cents,
            "created_at": date_time(invoice.created_at),
            "usage_threshold": super::plans::threshold_json(
                a.id,
                &a.threshold,
                &date_time(a.created_at),
            ),
        })).collect::<Vec<_>>(),
        "error_details": [],
    });
    if with_fees && let Some(map) = object.as_object_mut() {
        let fees: Vec<Value> = invoice.fees.iter().map(|f| fee_json(invoice, f)).collect();
        map.insert("fees".into(), Value::Array(fees));
    }
    object
}

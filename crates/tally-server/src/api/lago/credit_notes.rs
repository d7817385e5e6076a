//! Lago credit notes: `POST /credit_notes`, `POST /credit_notes/estimate`, `GET /credit_notes`,
//! `GET /credit_notes/{lago_id}`, `PUT /credit_notes/{lago_id}/void`.
//!
//! A credit note gives back part of a finalized invoice's fees, as credit that the customer's next
//! finalized invoices spend (before wallets), as a refund, or both. Voiding drops the credit not spent
//! yet; what was spent stays spent.

use axum::Json;
use axum::body::Bytes;
use axum::extract::{Path, RawQuery, State};
use serde_json::{Value, json};
use tally_core::error::Reason;
use tally_core::id::InvoiceId;
use tally_core::page::PageMeta;
use tally_core::time::Timestamp;
use tally_store::{CreditNote, CreditNoteEstimate, Invoice, NewCreditNote};
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use super::customers::{customer_json, meta_json};
use super::invoices::fee_json;
use crate::api::fields::{Fields, parse_body, root};
use crate::api::query::QueryPairs;
use crate::auth::Principal;
use crate::error::ApiError;
use crate::state::AppState;

/// The credit note routes.
pub fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(create_credit_note, list_credit_notes))
        .routes(routes!(estimate_credit_note))
        .routes(routes!(get_credit_note))
        .routes(routes!(void_credit_note))
}

fn note_id(text: &str) -> Result<uuid::Uuid, ApiError> {
    uuid::Uuid::parse_str(text).map_err(|_| ApiError::NotFound("credit_note"))
}

/// Renders the items of a note or an estimate, with each credited fee as on its invoice.
fn items_json(invoice: &Invoice, items: &[(uuid::Uuid, i64)]) -> Vec<Value> {
    items
        .iter()
        .map(|(fee, amount)| {
            let rendered = invoice
                .fees
                .iter()
                .find(|f| f.id.0 == *fee)
                .map_or_else(|| json!({"lago_id": fee}), |f| fee_json(invoice, f));
            json!({
                "amount_cents": amount,
                "amount_currency": invoice.currency.code(),
                "fee": rendered,
            })
        })
        .collect()
}

/// Renders a credit note in Lago's shape; `invoice` is the invoice it credits.
fn credit_note_json(note: &CreditNote, invoice: &Invoice) -> Value {
    json!({
        "lago_id": note.id,
        "sequential_id": note.sequential_id,
        "billing_entity_code": null,
        "number": note.number,
        "lago_invoice_id": note.invoice_id,
        "invoice_number": note.invoice_number,
        "issuing_date": note.created_at.to_datetime().with_timezone(&invoice.timezone).date_naive().to_string(),
        "credit_status": note.credit_status,
        "refund_status": note.refund_status,
        "reason": note.reason,
        "description": note.description,
        "currency": note.currency.code(),
        "total_amount_cents": note.total_amount_cents,
        "taxes_amount_cents": note.taxes_amount_cents,
        "sub_total_excluding_taxes_amount_cents": note.sub_total_excluding_taxes_amount_cents,
        "balance_amount_cents": note.balance_amount_cents,
        "credit_amount_cents": note.credit_amount_cents,
        "refund_amount_cents": note.refund_amount_cents,
        "coupons_adjustment_amount_cents": 0,
        "created_at": note.created_at.to_rfc3339_seconds(),
        "updated_at": note.updated_at.to_rfc3339_seconds(),
        "voided_at": note.voided_at.map(Timestamp::to_rfc3339_seconds),
        "file_url": null,
        "customer": customer_json(&invoice.customer, invoice.timezone),
        "items": items_json(invoice, &note.items),
        "applied_taxes": [],
    })
}

fn estimate_json(estimate: &CreditNoteEstimate, invoice: &Invoice) -> Value {
    json!({
        "lago_invoice_id": estimate.invoice_id,
        "invoice_number": estimate.invoice_number,
        "currency": estimate.currency.code(),
        "taxes_amount_cents": estimate.taxes_amount_cents,
        "sub_total_excluding_taxes_amount_cents": estimate.sub_total_excluding_taxes_amount_cents,
        "max_creditable_amount_cents": estimate.max_creditable_amount_cents,
        "max_refundable_amount_cents": estimate.max_refundable_amount_cents,
        "coupons_adjustment_amount_cents": 0,
        "items": items_json(invoice, &estimate.items),
        "applied_taxes": [],
    })
}

/// Reads `{"credit_note": {invoice_id, reason, description, credit_amount_cents,
/// refund_amount_cents, items: [{fee_id, amount_cents}]}}`.
fn parse_request(body: &Bytes) -> Result<NewCreditNote, ApiError> {
    let value = parse_body(body)?;
    let mut fields = Fields::new(root(&value, "credit_note")?);
    let invoice = fields.required_string("invoice_id");
    let invoice_id = invoice.as_deref().and_then(|text| {
        let parsed = uuid::Uuid::parse_str(text).ok();
        if parsed.is_none() {
            fields.fail("invoice_id", Reason::InvalidFormat);
        }
        parsed
    });
    let reason = fields
        .string("reason")
        .value()
        .unwrap_or_else(|| "other".to_owned());
    let description = fields.string("description").value();
    let credit = fields.integer("credit_amount_cents").value();
    let refund = fields.integer("refund_amount_cents").value();
    let mut items = Vec::new();
    match fields.array("items").value() {
        Some(array) => {
            for (index, item) in array.iter().enumerate() {
                let Some(object) = item.as_object() else {
                    fields.fail(&format!("items.{index}"), Reason::InvalidFormat);
                    continue;
                };
                let mut item_fields = Fields::nested(object, &format!("items.{index}"));
                let fee = item_fields.required_string("fee_id");
                let amount = item_fields.integer("amount_cents").value();
                if amount.is_none() {
                    item_fields.fail("amount_cents", Reason::ValueIsMandatory);
                }
                let fee = fee.and_then(|text| {
                    let parsed = uuid::Uuid::parse_str(&text).ok();
                    if parsed.is_none() {
                        item_fields.fail("fee_id", Reason::InvalidFormat);
                    }
                    parsed
                });
                fields.absorb(item_fields);
                if let (Some(fee), Some(amount)) = (fee, amount) {
                    items.push((fee, amount));
                }
            }
        }
        None => fields.fail("items", Reason::ValueIsMandatory),
    }
    let (invoice_id, reason, description, credit, refund, items) =
        fields.finish((invoice_id, reason, description, credit, refund, items))?;
    let invoice_id =
        invoice_id.ok_or_else(|| ApiError::BadRequest("invoice_id is required".into()))?;
    Ok(NewCreditNote {
        invoice_id: InvoiceId(invoice_id),
        reason,
        description,
        items,
        credit_amount_cents: credit,
        refund_amount_cents: refund,
    })
}

/// Issues a credit note on a finalized invoice. Without `credit_amount_cents` and
/// `refund_amount_cents`, the whole amount is kept as credit; a refund needs the invoice paid.
#[utoipa::path(post, path = "/api/v1/credit_notes", tag = "credit_notes",
    request_body(content = Object, description = "`{\"credit_note\": {invoice_id, reason, description, credit_amount_cents, refund_amount_cents, items: [{fee_id, amount_cents}]}}`"),
    responses((status = 200, description = "`{\"credit_note\": {…}}`"), (status = 404, description = "`invoice_not_found` or `fee_not_found`"),
        (status = 405, description = "`invoice_not_finalized`"), (status = 422, description = "a field is refused, e.g. an amount above what is left of the fee")))]
async fn create_credit_note(
    State(state): State<AppState>,
    principal: Principal,
    body: Bytes,
) -> Result<Json<Value>, ApiError> {
    let request = parse_request(&body)?;
    let invoice_id = request.invoice_id;
    let note = state
        .store
        .create_credit_note(principal.org, request, state.clock.now())
        .await?;
    let invoice = state.store.invoice(principal.org, invoice_id).await?;
    Ok(Json(
        json!({"credit_note": credit_note_json(&note, &invoice)}),
    ))
}

/// Works out what a credit note would credit, without issuing it.
#[utoipa::path(post, path = "/api/v1/credit_notes/estimate", tag = "credit_notes",
    request_body(content = Object, description = "`{\"credit_note\": {invoice_id, items: [{fee_id, amount_cents}]}}`"),
    responses((status = 200, description = "`{\"estimated_credit_note\": {…}}`"), (status = 404, description = "`invoice_not_found` or `fee_not_found`"),
        (status = 405, description = "`invoice_not_finalized`"), (status = 422, description = "a field is refused")))]
async fn estimate_credit_note(
    State(state): State<AppState>,
    principal: Principal,
    body: Bytes,
) -> Result<Json<Value>, ApiError> {
    let request = parse_request(&body)?;
    let invoice_id = request.invoice_id;
    let estimate = state
        .store
        .estimate_credit_note(principal.org, request)
        .await?;
    let invoice = state.store.invoice(principal.org, invoice_id).await?;
    Ok(Json(
        json!({"estimated_credit_note": estimate_json(&estimate, &invoice)}),
    ))
}

/// Lists credit notes, newest first; `external_customer_id` narrows to one customer.
#[utoipa::path(get, path = "/api/v1/credit_notes", tag = "credit_notes",
    params(("external_customer_id" = Option<String>, Query), ("page" = Option<u32>, Query), ("per_page" = Option<u32>, Query)),
    responses((status = 200, description = "`{\"credit_notes\": […], \"meta\": {…}}`")))]
async fn list_credit_notes(
    State(state): State<AppState>,
    principal: Principal,
    RawQuery(raw): RawQuery,
) -> Result<Json<Value>, ApiError> {
    let query = QueryPairs::parse(raw.as_deref())?;
    let page = query.page()?;
    let listed = state
        .store
        .list_credit_notes(principal.org, query.get("external_customer_id"), page)
        .await?;
    let mut notes = Vec::with_capacity(listed.items.len());
    for note in &listed.items {
        let invoice = state
            .store
            .invoice(principal.org, InvoiceId(note.invoice_id))
            .await?;
        notes.push(credit_note_json(note, &invoice));
    }
    Ok(Json(
        json!({"credit_notes": notes, "meta": meta_json(PageMeta::new(page, listed.total))}),
    ))
}

/// Reads a credit note.
#[utoipa::path(get, path = "/api/v1/credit_notes/{lago_id}", tag = "credit_notes",
    params(("lago_id" = String, Path)),
    responses((status = 200, description = "`{\"credit_note\": {…}}`"), (status = 404, description = "`credit_note_not_found`")))]
async fn get_credit_note(
    State(state): State<AppState>,
    principal: Principal,
    Path(id): Path<String>,
) -> Result<Json<Value>, ApiError> {
    let note = state
        .store
        .credit_note(principal.org, note_id(&id)?)
        .await?;
    let invoice = state
        .store
        .invoice(principal.org, InvoiceId(note.invoice_id))
        .await?;
    Ok(Json(
        json!({"credit_note": credit_note_json(&note, &invoice)}),
    ))
}

/// Voids the credit a note has left; credit already spent stays on the invoices that spent it.
#[utoipa::path(put, path = "/api/v1/credit_notes/{lago_id}/void", tag = "credit_notes",
    params(("lago_id" = String, Path)),
    responses((status = 200, description = "`{\"credit_note\": {…}}` voided"), (status = 404, description = "`credit_note_not_found`"),
        (status = 405, description = "`credit_note_not_voidable`: no credit left or already voided")))]
async fn void_credit_note(
    State(state): State<AppState>,
    principal: Principal,
    Path(id): Path<String>,
) -> Result<Json<Value>, ApiError> {
    let note = state
        .store
        .void_credit_note(principal.org, note_id(&id)?, state.clock.now())
        .await?;
    let invoice = state
        .store
        .invoice(principal.org, InvoiceId(note.invoice_id))
        .await?;
    Ok(Json(
        json!({"credit_note": credit_note_json(&note, &invoice)}),
    ))
}

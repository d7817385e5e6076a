//! Lago customers: `POST /customers` (upsert by external_id), `GET /customers`,
//! `GET /customers/{external_customer_id}`, `DELETE /customers/{external_customer_id}`.

use axum::Json;
use axum::body::Bytes;
use axum::extract::{Path, RawQuery, State};
use serde_json::{Map, Value, json};
use tally_core::currency::Currency;
use tally_core::customer::{
    Address, Customer, CustomerProfile, CustomerType, Metadata, ZeroAmountInvoices,
};
use tally_core::error::Reason;
use tally_core::id::ExternalId;
use tally_core::page::PageMeta;
use tally_store::{CustomerChange, CustomerFilter, StoreError};
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use crate::api::fields::{Fields, parse_body, root};
use crate::api::query::QueryPairs;
use crate::auth::Principal;
use crate::error::ApiError;
use crate::state::AppState;

/// The customer routes.
pub fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(create_customer, list_customers))
        .routes(routes!(get_customer, delete_customer))
}

/// Creates a customer, or updates the one with this `external_id`: only the keys sent change.
#[utoipa::path(post, path = "/api/v1/customers", tag = "customers",
    request_body(content = Object, description = "`{\"customer\": {\"external_id\": …, …}}`"),
    responses((status = 200, description = "`{\"customer\": {…}}`"), (status = 422, description = "a field is refused")))]
async fn create_customer(
    State(state): State<AppState>,
    principal: Principal,
    body: Bytes,
) -> Result<Json<Value>, ApiError> {
    let value = parse_body(&body)?;
    let object = root(&value, "customer")?;
    let mut fields = Fields::new(object);
    let external_id = fields.required_string("external_id");
    let external_id = match external_id {
        Some(id) => fields.errors.take(ExternalId::parse("external_id", &id)),
        None => None,
    };
    let existing = match &external_id {
        Some(id) => match state.store.customer(principal.org, id).await {
            Ok(customer) => Some(customer),
            Err(StoreError::NotFound(_)) => None,
            Err(error) => return Err(error.into()),
        },
        None => None,
    };
    let mut profile = existing.map(|c| c.profile).unwrap_or_default();
    apply(&mut fields, &mut profile, state.clock.now().micros());
    let tax_codes = super::taxes::tax_codes(&mut fields);
    let external_id = fields
        .finish(external_id)?
        .ok_or(ApiError::field("external_id", Reason::ValueIsMandatory))?;
    let change = CustomerChange { profile, tax_codes };
    let customer = state
        .store
        .upsert_customer(principal.org, external_id, change)
        .await?;
    Ok(Json(
        json!({"customer": with_taxes(&state, principal, &customer).await?}),
    ))
}

/// Lists customers, oldest first.
#[utoipa::path(get, path = "/api/v1/customers", tag = "customers",
    params(("page" = Option<u32>, Query), ("per_page" = Option<u32>, Query, description = "1 to 1000, default 100"),
        ("search_term" = Option<String>, Query), ("currencies[]" = Option<Vec<String>>, Query), ("countries[]" = Option<Vec<String>>, Query)),
    responses((status = 200, description = "`{\"customers\": […], \"meta\": {…}}`")))]
async fn list_customers(
    State(state): State<AppState>,
    principal: Principal,
    RawQuery(raw): RawQuery,
) -> Result<Json<Value>, ApiError> {
    let query = QueryPairs::parse(raw.as_deref())?;
    let page = query.page()?;
    let filter = CustomerFilter {
        search_term: query.get("search_term").map(str::to_owned),
        currencies: query.all("currencies"),
        countries: query.all("countries"),
    };
    let listed = state
        .store
        .list_customers(principal.org, &filter, page)
        .await?;
    let org = state.organization(principal.org).await?;
    let customers: Vec<Value> = listed
        .items
        .iter()
        .map(|c| customer_json(c, org.timezone))
        .collect();
    Ok(Json(
        json!({"customers": customers, "meta": meta_json(PageMeta::new(page, listed.total))}),
    ))
}

/// Reads one customer.
#[utoipa::path(get, path = "/api/v1/customers/{external_customer_id}", tag = "customers",
    params(("external_customer_id" = String, Path)),
    responses((status = 200, description = "`{\"customer\": {…}}`"), (status = 404, description = "`customer_not_found`")))]
async fn get_customer(
    State(state): State<AppState>,
    principal: Principal,
    Path(external_id): Path<String>,
) -> Result<Json<Value>, ApiError> {
    let id = ExternalId::parse("external_customer_id", &external_id)
        .map_err(|_| ApiError::NotFound("customer"))?;
    let customer = state.store.customer(principal.org, &id).await?;
    Ok(Json(
        json!({"customer": with_taxes(&state, principal, &customer).await?}),
    ))
}

/// Renders a customer with the taxes it carries.
async fn with_taxes(
    state: &AppState,
    principal: Principal,
    customer: &Customer,
) -> Result<Value, ApiError> {
    let org = state.organization(principal.org).await?;
    let mut object = customer_json(customer, org.timezone);
    let taxes = state
        .store
        .taxes_of(principal.org, "customer", customer.id.0)
        .await?;
    object["taxes"] = Value::Array(taxes.iter().map(super::taxes::tax_json).collect());
    Ok(object)
}

/// Deletes a customer and answers with it as it was.
#[utoipa::path(delete, path = "/api/v1/customers/{external_customer_id}", tag = "customers",
    params(("external_customer_id" = String, Path)),
    responses((status = 200, description = "`{\"customer\": {…}}`"), (status = 404, description = "`customer_not_found`")))]
async fn delete_customer(
    State(state): State<AppState>,
    principal: Principal,
    Path(external_id): Path<String>,
) -> Result<Json<Value>, ApiError> {
    let id = ExternalId::parse("external_customer_id", &external_id)
        .map_err(|_| ApiError::NotFound("customer"))?;
    let customer = state.store.delete_customer(principal.org, &id).await?;
    let org = state.organization(principal.org).await?;
    Ok(Json(
        json!({"customer": customer_json(&customer, org.timezone)}),
    ))
}

/// Lago's list `meta` block.
pub fn meta_json(meta: PageMeta) -> Value {
    json!({
        "current_page": meta.current_page,
        "next_page": meta.next_page,
        "prev_page": meta.prev_page,
        "total_pages": meta.total_pages,
        "total_count": meta.total_count,
    })
}

fn apply_text(fields: &mut Fields<'_>, name: &str, slot: &mut Option<String>) {
    if let Some(value) = fields.string(name).patch() {
        *slot = value;
    }
}

fn apply_address(fields: &mut Fields<'_>, address: &mut Address) {
    apply_text(fields, "address_line1", &mut address.address_line1);
    apply_text(fields, "address_line2", &mut address.address_line2);
    apply_text(fields, "city", &mut address.city);
    apply_text(fields, "state", &mut address.state);
    apply_text(fields, "zipcode", &mut address.zipcode);
    apply_text(fields, "country", &mut address.country);
}

/// Applies the keys present in a customer object onto a profile.
fn apply(fields: &mut Fields<'_>, profile: &mut CustomerProfile, now_micros: i64) {
    for (name, slot) in [
        ("name", &mut profile.name),
        ("firstname", &mut profile.firstname),
        ("lastname", &mut profile.lastname),
        ("email", &mut profile.email),
        ("phone", &mut profile.phone),
        ("url", &mut profile.url),
        ("logo_url", &mut profile.logo_url),
        ("legal_name", &mut profile.legal_name),
        ("legal_number", &mut profile.legal_number),
        (
            "tax_identification_number",
            &mut profile.tax_identification_number,
        ),
    ] {
        apply_text(fields, name, slot);
    }
    apply_address(fields, &mut profile.address);
    if let Some(currency) = fields.string("currency").patch() {
        match currency.map(|c| Currency::parse(&c).ok_or(c)).transpose() {
            Ok(currency) => profile.currency = currency,
            Err(_) => fields.fail("currency", Reason::ValueIsInvalid),
        }
    }
    if let Some(timezone) = fields.string("timezone").patch() {
        match timezone.map(|t| t.parse::<chrono_tz::Tz>()).transpose() {
            Ok(tz) => profile.timezone = tz,
            Err(_) => fields.fail("timezone", Reason::InvalidTimezone),
        }
    }
    if let Some(term) = fields.integer("net_payment_term").patch() {
        profile.net_payment_term = term;
    }
    if let Some(kind) = fields.string("customer_type").patch() {
        match kind.as_deref() {
            None => profile.customer_type = None,
            Some("company") => profile.customer_type = Some(CustomerType::Company),
            Some("individual") => profile.customer_type = Some(CustomerType::Individual),
            Some(_) => fields.fail("customer_type", Reason::ValueIsInvalid),
        }
    }
    if let Some(policy) = fields.string("finalize_zero_amount_invoice").patch() {
        match policy.as_deref() {
            None | Some("inherit") => {
                profile.finalize_zero_amount_invoice = ZeroAmountInvoices::Inherit
            }
            Some("skip") => profile.finalize_zero_amount_invoice = ZeroAmountInvoices::Skip,
            Some("finalize") => profile.finalize_zero_amount_invoice = ZeroAmountInvoices::Finalize,
            Some(_) => fields.fail("finalize_zero_amount_invoice", Reason::ValueIsInvalid),
        }
    }
    if let Some(config) = fields.object("billing_configuration").value() {
        let mut nested = Fields::nested(config, "billing_configuration");
        if let Some(days) = nested.integer("invoice_grace_period").patch() {
            profile.invoice_grace_period = days;
        }
        apply_text(&mut nested, "document_locale", &mut profile.document_locale);
        fields.absorb(nested);
    }
    if let Some(shipping) = fields.object("shipping_address").value() {
        let mut nested = Fields::nested(shipping, "shipping_address");
        apply_address(&mut nested, &mut profile.shipping_address);
        fields.absorb(nested);
    }
    if let Some(entries) = fields.array("metadata").patch() {
        profile.metadata = read_metadata(
            fields,
            entries.map_or(&[][..], Vec::as_slice),
            &profile.metadata,
            now_micros,
        );
    }
}

/// Replaces the metadata list; entries sent with an existing `id` keep it.
fn read_metadata(
    fields: &mut Fields<'_>,
    entries: &[Value],
    current: &[Metadata],
    now_micros: i64,
) -> Vec<Metadata> {
    let mut out = Vec::new();
    for (index, entry) in entries.iter().enumerate() {
        let Some(object) = entry.as_object() else {
            fields.fail(&format!("metadata.{index}"), Reason::InvalidFormat);
            continue;
        };
        let mut nested = Fields::nested(object, &format!("metadata.{index}"));
        let key = nested.required_string("key");
        let value = match nested.raw("value") {
            Some(Value::String(s)) => Some(s.clone()),
            Some(Value::Number(n)) => Some(n.to_string()),
            Some(Value::Bool(b)) => Some(b.to_string()),
            _ => {
                nested.fail("value", Reason::ValueIsMandatory);
                None
            }
        };
        let display = nested
            .boolean("display_in_invoice")
            .value()
            .unwrap_or(false);
        let previous = nested
            .string("id")
            .value()
            .and_then(|id| current.iter().find(|m| m.id.to_string() == id));
        fields.absorb(nested);
        if let (Some(key), Some(value)) = (key, value) {
            out.push(Metadata {
                id: previous.map_or_else(uuid::Uuid::now_v7, |m| m.id),
                key,
                value,
                display_in_invoice: display,
                created_at: previous.map_or(now_micros, |m| m.created_at),
            });
        }
    }
    out
}

fn address_json(address: &Address) -> Map<String, Value> {
    let mut map = Map::new();
    for (key, value) in [
        ("address_line1", &address.address_line1),
        ("address_line2", &address.address_line2),
        ("city", &address.city),
        ("state", &address.state),
        ("zipcode", &address.zipcode),
        ("country", &address.country),
    ] {
        map.insert(key.into(), json!(value));
    }
    map
}

/// Renders a customer in Lago's shape.
pub fn customer_json(customer: &Customer, org_timezone: chrono_tz::Tz) -> Value {
    let p = &customer.profile;
    let mut object = json!({
        "lago_id": customer.id.0,
        "sequential_id": customer.sequential_id,
        "slug": format!("CUS-{:04}", customer.sequential_id),
        "external_id": customer.external_id.as_str(),
        "account_type": "customer",
        "name": p.name, "firstname": p.firstname, "lastname": p.lastname,
        "email": p.email, "phone": p.phone, "url": p.url, "logo_url": p.logo_url,
        "legal_name": p.legal_name, "legal_number": p.legal_number,
        "tax_identification_number": p.tax_identification_number,
        "currency": p.currency.map(|c| c.code().to_owned()),
        "timezone": p.timezone.map(|tz| tz.name()),
        "applicable_timezone": p.timezone.unwrap_or(org_timezone).name(),
        "net_payment_term": p.net_payment_term,
        "customer_type": p.customer_type,
        "finalize_zero_amount_invoice": p.finalize_zero_amount_invoice,
        "billing_configuration": {
            "invoice_grace_period": p.invoice_grace_period,
            "document_locale": p.document_locale,
            "payment_provider": null, "payment_provider_code": null, "provider_customer_id": null,
        },
        "shipping_address": address_json(&p.shipping_address),
        "metadata": p.metadata.iter().map(|m| json!({
            "lago_id": m.id, "key": m.key, "value": m.value, "display_in_invoice": m.display_in_invoice,
            "created_at": tally_core::Timestamp::from_micros(m.created_at).to_rfc3339_seconds(),
        })).collect::<Vec<_>>(),
        "taxes": [],
        "integration_customers": [],
        "billing_entity_code": null,
        "created_at": customer.created_at.to_rfc3339_seconds(),
        "updated_at": customer.updated_at.to_rfc3339_seconds(),
    });
    if let Some(map) = object.as_object_mut() {
        map.extend(address_json(&p.address));
    }
    object
}

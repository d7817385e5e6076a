//! Lago wallets of prepaid credits: `POST /wallets`, `GET /wallets?external_customer_id=`,
//! `GET|DELETE /wallets/{lago_id}`, `POST /wallet_transactions`,
//! `GET /wallets/{lago_id}/wallet_transactions`, `GET /wallet_transactions/{lago_id}`.
//! Finalized subscription invoices spend wallet credits before the amount is due.

use axum::Json;
use axum::body::Bytes;
use axum::extract::{Path, RawQuery, State};
use rust_decimal::Decimal;
use serde_json::{Value, json};
use tally_core::currency::Currency;
use tally_core::error::Reason;
use tally_core::id::ExternalId;
use tally_core::money::dec_string;
use tally_core::page::PageMeta;
use tally_core::subscription::SubscriptionStatus;
use tally_core::time::Timestamp;
use tally_core::wallet::{Wallet, cents_to_credits};
use tally_store::{NewWallet, SubscriptionFilter, TopUp, WalletTransaction};
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use super::customers::meta_json;
use crate::api::fields::{Fields, parse_body, root};
use crate::api::query::QueryPairs;
use crate::auth::Principal;
use crate::error::ApiError;
use crate::state::AppState;

/// The wallet routes.
pub fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(create_wallet, list_wallets))
        .routes(routes!(get_wallet, terminate_wallet))
        .routes(routes!(create_transactions))
        .routes(routes!(list_transactions))
        .routes(routes!(get_transaction))
}

fn wallet_id(text: &str) -> Result<uuid::Uuid, ApiError> {
    uuid::Uuid::parse_str(text).map_err(|_| ApiError::NotFound("wallet"))
}

/// Renders a wallet; `usage_cents` is the customer's current usage still to be invoiced.
fn wallet_json(wallet: &Wallet, usage_cents: i64) -> Value {
    let balance = wallet.balance_cents();
    let ongoing = (balance - usage_cents).max(0);
    let ongoing_credits = cents_to_credits(ongoing, wallet.rate_amount, wallet.currency);
    let usage_credits = cents_to_credits(usage_cents, wallet.rate_amount, wallet.currency);
    json!({
        "lago_id": wallet.id,
        "lago_customer_id": wallet.customer_id,
        "external_customer_id": wallet.external_customer_id,
        "status": if wallet.active { "active" } else { "terminated" },
        "currency": wallet.currency.code(),
        "name": wallet.name,
        "code": wallet.code,
        "priority": 50,
        "rate_amount": dec_string(wallet.rate_amount),
        "credits_balance": dec_string(wallet.credits_balance),
        "balance_cents": balance,
        "consumed_credits": dec_string(wallet.consumed_credits),
        "credits_ongoing_balance": dec_string(ongoing_credits),
        "credits_ongoing_usage_balance": dec_string(usage_credits),
        "ongoing_balance_cents": ongoing,
        "ongoing_usage_balance_cents": usage_cents,
        "created_at": wallet.created_at.to_rfc3339_seconds(),
        "expiration_at": wallet.expiration_at.map(Timestamp::to_rfc3339_seconds),
        "last_balance_sync_at": null,
        "last_consumed_credit_at": null,
        "terminated_at": wallet.terminated_at.map(Timestamp::to_rfc3339_seconds),
        "invoice_requires_successful_payment": false,
        "applies_to": null,
        "recurring_transaction_rules": [],
    })
}

fn transaction_json(t: &WalletTransaction) -> Value {
    json!({
        "lago_id": t.id,
        "lago_wallet_id": t.wallet_id,
        "lago_invoice_id": t.invoice_id,
        "lago_credit_note_id": null,
        "lago_voided_invoice_id": null,
        "status": t.status,
        "source": "manual",
        "transaction_status": t.transaction_status,
        "transaction_type": t.transaction_type,
        "amount": dec_string(t.amount),
        "credit_amount": dec_string(t.credit_amount),
        "settled_at": t.settled_at.map(Timestamp::to_rfc3339_seconds),
        "failed_at": null,
        "created_at": t.created_at.to_rfc3339_seconds(),
        "invoice_requires_successful_payment": false,
        "metadata": [],
    })
}

/// The customer's usage in the open periods of its active subscriptions, in the wallet's currency.
async fn ongoing_usage(
    state: &AppState,
    principal: Principal,
    wallet: &Wallet,
) -> Result<i64, ApiError> {
    let filter = SubscriptionFilter {
        external_customer_id: Some(wallet.external_customer_id.clone()),
        plan_code: None,
        statuses: vec![SubscriptionStatus::Active],
    };
    let subscriptions = state
        .store
        .list_subscriptions(
            principal.org,
            &filter,
            tally_core::page::Page::new(None, Some(100)),
        )
        .await?;
    let mut total = 0;
    for subscription in subscriptions.items {
        let usage = state
            .store
            .current_usage(
                principal.org,
                &wallet.external_customer_id,
                subscription.external_id.as_str(),
                state.clock.now(),
            )
            .await?;
        if usage.currency == wallet.currency {
            total += usage
                .charges
                .iter()
                .flat_map(|line| &line.fees)
                .map(|f| f.fee.amount_cents)
                .sum::<i64>();
        }
    }
    Ok(total)
}

fn credits(fields: &mut Fields<'_>, name: &str) -> Decimal {
    fields.decimal(name).value().unwrap_or(Decimal::ZERO)
}

/// Creates a wallet, adding its paid (billed on a credit invoice) and granted credits at once.
#[utoipa::path(post, path = "/api/v1/wallets", tag = "wallets",
    request_body(content = Object, description = "`{\"wallet\": {external_customer_id, currency, rate_amount, paid_credits, granted_credits, name, code, expiration_at}}`"),
    responses((status = 200, description = "`{\"wallet\": {…}}`"), (status = 404, description = "`customer_not_found`"), (status = 422, description = "a field is refused")))]
async fn create_wallet(
    State(state): State<AppState>,
    principal: Principal,
    body: Bytes,
) -> Result<Json<Value>, ApiError> {
    let value = parse_body(&body)?;
    let mut fields = Fields::new(root(&value, "wallet")?);
    let customer = fields
        .required_string("external_customer_id")
        .and_then(|c| {
            fields
                .errors
                .take(ExternalId::parse("external_customer_id", &c))
        });
    let currency = match fields.required_string("currency") {
        Some(code) => Currency::parse(&code).or_else(|| {
            fields.fail("currency", Reason::ValueIsInvalid);
            None
        }),
        None => None,
    };
    let rate = fields.decimal("rate_amount").value();
    if rate.is_none() {
        fields.fail("rate_amount", Reason::ValueIsMandatory);
    }
    let top_up = TopUp {
        paid_credits: credits(&mut fields, "paid_credits"),
        granted_credits: credits(&mut fields, "granted_credits"),
        voided_credits: Decimal::ZERO,
    };
    let expiration_at = fields
        .string("expiration_at")
        .value()
        .and_then(|t| Timestamp::parse_rfc3339(&t));
    let request = (
        customer,
        currency,
        rate,
        fields.string("name").value(),
        fields.string("code").value(),
    );
    let (customer, currency, rate, name, code) = fields.finish(request)?;
    let (Some(external_customer_id), Some(currency), Some(rate_amount)) =
        (customer, currency, rate)
    else {
        return Err(ApiError::BadRequest("the wallet is incomplete".into()));
    };
    let request = NewWallet {
        external_customer_id,
        currency,
        rate_amount,
        name,
        code,
        expiration_at,
        top_up,
    };
    let (wallet, _) = state
        .store
        .create_wallet(principal.org, request, state.clock.now())
        .await?;
    let usage = ongoing_usage(&state, principal, &wallet).await?;
    Ok(Json(json!({"wallet": wallet_json(&wallet, usage)})))
}

/// Lists a customer's wallets (`external_customer_id` is required).
#[utoipa::path(get, path = "/api/v1/wallets", tag = "wallets",
    params(("external_customer_id" = String, Query), ("page" = Option<u32>, Query), ("per_page" = Option<u32>, Query)),
    responses((status = 200, description = "`{\"wallets\": […], \"meta\": {…}}`")))]
async fn list_wallets(
    State(state): State<AppState>,
    principal: Principal,
    RawQuery(raw): RawQuery,
) -> Result<Json<Value>, ApiError> {
    let query = QueryPairs::parse(raw.as_deref())?;
    let page = query.page()?;
    let customer = query
        .get("external_customer_id")
        .ok_or_else(|| ApiError::BadRequest("external_customer_id is required".into()))?;
    let listed = state
        .store
        .list_wallets(principal.org, customer, page)
        .await?;
    let mut wallets = Vec::with_capacity(listed.items.len());
    for wallet in &listed.items {
        wallets.push(wallet_json(
            wallet,
            ongoing_usage(&state, principal, wallet).await?,
        ));
    }
    Ok(Json(
        json!({"wallets": wallets, "meta": meta_json(PageMeta::new(page, listed.total))}),
    ))
}

/// Reads a wallet, with its balance net of the usage not yet invoiced.
#[utoipa::path(get, path = "/api/v1/wallets/{lago_id}", tag = "wallets",
    params(("lago_id" = String, Path)),
    responses((status = 200, description = "`{\"wallet\": {…}}`"), (status = 404, description = "`wallet_not_found`")))]
async fn get_wallet(
    State(state): State<AppState>,
    principal: Principal,
    Path(id): Path<String>,
) -> Result<Json<Value>, ApiError> {
    let wallet = state.store.wallet(principal.org, wallet_id(&id)?).await?;
    let usage = ongoing_usage(&state, principal, &wallet).await?;
    Ok(Json(json!({"wallet": wallet_json(&wallet, usage)})))
}

/// Terminates a wallet.
#[utoipa::path(delete, path = "/api/v1/wallets/{lago_id}", tag = "wallets",
    params(("lago_id" = String, Path)),
    responses((status = 200, description = "`{\"wallet\": {…}}` terminated"), (status = 404, description = "`wallet_not_found`")))]
async fn terminate_wallet(
    State(state): State<AppState>,
    principal: Principal,
    Path(id): Path<String>,
) -> Result<Json<Value>, ApiError> {
    let wallet = state
        .store
        .terminate_wallet(principal.org, wallet_id(&id)?, state.clock.now())
        .await?;
    Ok(Json(json!({"wallet": wallet_json(&wallet, 0)})))
}

/// Adds paid or granted credits to a wallet, or voids credits; answers one transaction per kind.
#[utoipa::path(post, path = "/api/v1/wallet_transactions", tag = "wallets",
    request_body(content = Object, description = "`{\"wallet_transaction\": {wallet_id, paid_credits, granted_credits, voided_credits}}`"),
    responses((status = 200, description = "`{\"wallet_transactions\": […]}`"), (status = 404, description = "`wallet_not_found`")))]
async fn create_transactions(
    State(state): State<AppState>,
    principal: Principal,
    body: Bytes,
) -> Result<Json<Value>, ApiError> {
    let value = parse_body(&body)?;
    let mut fields = Fields::new(root(&value, "wallet_transaction")?);
    let wallet = fields.required_string("wallet_id");
    let top_up = TopUp {
        paid_credits: credits(&mut fields, "paid_credits"),
        granted_credits: credits(&mut fields, "granted_credits"),
        voided_credits: credits(&mut fields, "voided_credits"),
    };
    let (wallet, top_up) = fields.finish((wallet, top_up))?;
    let wallet = wallet_id(&wallet.unwrap_or_default())?;
    let made = state
        .store
        .top_up_wallet(principal.org, wallet, top_up, state.clock.now())
        .await?;
    Ok(Json(
        json!({"wallet_transactions": made.iter().map(transaction_json).collect::<Vec<_>>()}),
    ))
}

/// Lists a wallet's transactions, newest first.
#[utoipa::path(get, path = "/api/v1/wallets/{lago_id}/wallet_transactions", tag = "wallets",
    params(("lago_id" = String, Path), ("page" = Option<u32>, Query), ("per_page" = Option<u32>, Query)),
    responses((status = 200, description = "`{\"wallet_transactions\": […], \"meta\": {…}}`")))]
async fn list_transactions(
    State(state): State<AppState>,
    principal: Principal,
    Path(id): Path<String>,
    RawQuery(raw): RawQuery,
) -> Result<Json<Value>, ApiError> {
    let page = QueryPairs::parse(raw.as_deref())?.page()?;
    let listed = state
        .store
        .wallet_transactions(principal.org, wallet_id(&id)?, page)
        .await?;
    let items: Vec<Value> = listed.items.iter().map(transaction_json).collect();
    Ok(Json(
        json!({"wallet_transactions": items, "meta": meta_json(PageMeta::new(page, listed.total))}),
    ))
}

/// Reads one wallet transaction.
#[utoipa::path(get, path = "/api/v1/wallet_transactions/{lago_id}", tag = "wallets",
    params(("lago_id" = String, Path)),
    responses((status = 200, description = "`{\"wallet_transaction\": {…}}`"), (status = 404, description = "`wallet_transaction_not_found`")))]
async fn get_transaction(
    State(state): State<AppState>,
    principal: Principal,
    Path(id): Path<String>,
) -> Result<Json<Value>, ApiError> {
    let id = uuid::Uuid::parse_str(&id).map_err(|_| ApiError::NotFound("wallet_transaction"))?;
    let transaction = state.store.wallet_transaction(principal.org, id).await?;
    Ok(Json(
        json!({"wallet_transaction": transaction_json(&transaction)}),
    ))
}

//! The HTTP API: Lago v1 and OpenMeter v1 routes under `/api/v1`, health and metrics outside it, and
//! the OpenAPI 3.1 document generated from the same route definitions.

pub mod clock;
pub mod fields;
pub mod health;
pub mod invoice_files;
pub mod lago;
pub mod openmeter;
pub mod query;

use axum::extract::{DefaultBodyLimit, Request};
use axum::http::{StatusCode, header};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use axum::{Json, Router};
use utoipa::OpenApi;
use utoipa_axum::router::OpenApiRouter;

use crate::auth::{is_openmeter, require_key};
use crate::error::{ApiError, Problem};
use crate::state::AppState;

/// Bodies larger than this are refused on ordinary routes (a 100-event Lago batch fits easily).
pub const BODY_LIMIT: usize = 2 * 1024 * 1024;
/// Bodies larger than this are refused on `POST /api/v1/events/bulk`.
pub const BULK_BODY_LIMIT: usize = 64 * 1024 * 1024;

#[derive(OpenApi)]
#[openapi(
    info(title = "tally", description = "Usage metering and billing. Lago v1 REST and OpenMeter v1 ingest and meter contracts."),
    modifiers(&BearerAuth),
    security(("bearer" = [])),
    tags(
        (name = "customers", description = "Lago customers"),
        (name = "billable_metrics", description = "Lago billable metrics"),
        (name = "events", description = "Lago events, CloudEvents and bulk NDJSON ingest"),
        (name = "meters", description = "OpenMeter meters and usage queries"),
        (name = "organizations", description = "The caller's organization"),
        (name = "plans", description = "Lago plans and their charges"),
        (name = "subscriptions", description = "Lago subscriptions"),
        (name = "invoices", description = "Lago invoices, made by the billing clock"),
        (name = "fees", description = "Lago fees: invoice lines and pay-in-advance fees"),
        (name = "taxes", description = "Lago taxes"),
        (name = "coupons", description = "Lago coupons and applied coupons"),
        (name = "wallets", description = "Lago wallets of prepaid credits"),
        (name = "credit_notes", description = "Lago credit notes on finalized invoices"),
        (name = "add_ons", description = "Lago add-ons, billed on one-off invoices"),
        (name = "clock", description = "The simulated billing clock (tally serve --clock simulated)")
    )
)]
struct ApiDoc;

struct BearerAuth;

impl utoipa::Modify for BearerAuth {
    fn modify(&self, openapi: &mut utoipa::openapi::OpenApi) {
        use utoipa::openapi::security::{HttpAuthScheme, HttpBuilder, SecurityScheme};
        let components = openapi.components.get_or_insert_with(Default::default);
        components.add_security_scheme(
            "bearer",
            SecurityScheme::Http(HttpBuilder::new().scheme(HttpAuthScheme::Bearer).build()),
        );
    }
}

/// Builds the authenticated `/api/v1` routes and their OpenAPI document.
fn api_routes() -> (Router<AppState>, utoipa::openapi::OpenApi) {
    OpenApiRouter::with_openapi(ApiDoc::openapi())
        .merge(lago::customers::router())
        .merge(lago::billable_metrics::router())
        .merge(lago::organizations::router())
        .merge(lago::plans::router())
        .merge(lago::subscriptions::router())
        .merge(lago::invoices::router())
        .merge(lago::fees::router())
        .merge(lago::usage::router())
        .merge(lago::taxes::router())
        .merge(lago::coupons::router())
        .merge(lago::wallets::router())
        .merge(lago::credit_notes::router())
        .merge(lago::add_ons::router())
        .merge(clock::router())
        .merge(lago::events::router())
        .merge(openmeter::meters::router())
        .layer(DefaultBodyLimit::max(BODY_LIMIT))
        .merge(lago::events::bulk_router())
        .split_for_parts()
}

/// Lago resources of the billing half, planned but not built yet: they answer 501 with a message
/// rather than a misleading 404.
const NOT_BUILT: [&str; 1] = ["webhook_endpoints"];

fn not_built_routes() -> Router<AppState> {
    let answer = |what: &'static str| {
        move || async move {
            ApiError::NotImplemented(format!(
                "{what} are not built yet (the README lists what is not built)"
            ))
        }
    };
    let mut router = Router::new();
    for resource in NOT_BUILT {
        router = router
            .route(
                &format!("/api/v1/{resource}"),
                axum::routing::any(answer(resource)),
            )
            .route(
                &format!("/api/v1/{resource}/{{*rest}}"),
                axum::routing::any(answer(resource)),
            );
    }
    router.route(
        "/api/v1/customers/{external_customer_id}/projected_usage",
        axum::routing::any(answer("projected usage endpoints")),
    )
}

/// Builds the whole router.
pub fn router(state: AppState) -> Router {
    let (api, openapi) = api_routes();
    let openapi_json = openapi.to_pretty_json().unwrap_or_else(|_| "{}".into());
    let api = api
        .merge(not_built_routes())
        .route_layer(axum::middleware::from_fn_with_state(
            state.clone(),
            require_key,
        ));
    Router::new()
        .merge(api)
        // Invoice documents: the signed link is the credential, so no API key.
        .merge(invoice_files::router())
        .route(
            "/api/v1/openapi.json",
            get(move || async move {
                (
                    [(axum::http::header::CONTENT_TYPE, "application/json")],
                    openapi_json,
                )
            }),
        )
        .route("/healthz", get(health::healthz))
        .route("/readyz", get(health::readyz))
        .route("/metrics", get(health::metrics))
        .fallback(not_found)
        // As in Lago, a method a path does not serve is an unknown route.
        .method_not_allowed_fallback(not_found)
        .layer(axum::middleware::from_fn(oversized_body))
        .with_state(state)
}

/// Returns the OpenAPI document (for tests and `tally openapi`).
pub fn openapi() -> utoipa::openapi::OpenApi {
    api_routes().1
}

/// Answers axum's own refusal of a body over [`BODY_LIMIT`] (plain text) in the route family's error
/// format, so every error body is one the Lago and OpenMeter clients can parse.
async fn oversized_body(request: Request, next: Next) -> Response {
    let content_type = request
        .headers()
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok());
    let openmeter = is_openmeter(request.uri().path(), request.method(), content_type);
    let response = next.run(request).await;
    let json = response
        .headers()
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|ct| {
            ct.starts_with("application/json") || ct.starts_with("application/problem+json")
        });
    if response.status() != StatusCode::PAYLOAD_TOO_LARGE || json {
        return response;
    }
    let error =
        ApiError::PayloadTooLarge(format!("a request body holds at most {BODY_LIMIT} bytes"));
    if openmeter {
        Problem(error).into_response()
    } else {
        error.into_response()
    }
}

async fn not_found(request: Request) -> Response {
    let content_type = request
        .headers()
        .get(axum::http::header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok());
    if is_openmeter(request.uri().path(), request.method(), content_type) {
        Problem(ApiError::NotFound("resource")).into_response()
    } else {
        (axum::http::StatusCode::NOT_FOUND, Json(serde_json::json!({"status": 404, "error": "Not Found", "code": "resource_not_found"})))
            .into_response()
    }
}

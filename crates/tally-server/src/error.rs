//! The one place where failures become HTTP answers.
//!
//! Lago routes answer Lago's JSON error bodies; OpenMeter routes (CloudEvents ingest and `/meters`)
//! answer RFC 7807 problem documents. Handlers return [`ApiError`] (Lago) or [`Problem`] (OpenMeter) and
//! never build error bodies themselves. 5xx bodies say nothing; the cause is logged once, with the
//! request id.

use std::collections::BTreeMap;

use axum::Json;
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use serde_json::{Value, json};
use tally_core::ValidationErrors;
use tally_store::StoreError;

/// A failure on a Lago route.
#[derive(Debug, thiserror::Error)]
pub enum ApiError {
    /// Malformed request: not JSON, missing root key, bad query parameter.
    #[error("bad request: {0}")]
    BadRequest(String),
    /// No or unknown API key.
    #[error("unauthorized")]
    Unauthorized,
    /// The key's scope does not allow this; the string is Lago's code.
    #[error("forbidden: {0}")]
    Forbidden(String),
    /// The object does not exist; the string names its kind (`customer`, `billable_metric`…).
    #[error("{0} not found")]
    NotFound(&'static str),
    /// The object's state forbids the action; the string is Lago's code (`not_voidable`…).
    #[error("not allowed: {0}")]
    NotAllowed(&'static str),
    /// Fields refused, by name.
    #[error("validation failed: {0}")]
    Validation(ValidationErrors),
    /// Events of a batch refused, by index.
    #[error("batch validation failed")]
    BatchValidation(BTreeMap<usize, ValidationErrors>),
    /// A conflicting write (used on OpenMeter routes for duplicates and slugs).
    #[error("conflict: {0}")]
    Conflict(String),
    /// The body is larger than the route accepts.
    #[error("payload too large: {0}")]
    PayloadTooLarge(String),
    /// The feature exists in the contract but is not built yet.
    #[error("not implemented: {0}")]
    NotImplemented(String),
    /// The server is shutting down or the database is unreachable.
    #[error("unavailable: {0}")]
    Unavailable(String),
    /// Anything else; the message is logged, never sent.
    #[error("internal error: {0}")]
    Internal(String),
}

impl ApiError {
    /// Returns the HTTP status of this failure.
    pub fn status(&self) -> StatusCode {
        match self {
            ApiError::BadRequest(_) => StatusCode::BAD_REQUEST,
            ApiError::Unauthorized => StatusCode::UNAUTHORIZED,
            ApiError::Forbidden(_) => StatusCode::FORBIDDEN,
            ApiError::NotFound(_) => StatusCode::NOT_FOUND,
            ApiError::NotAllowed(_) => StatusCode::METHOD_NOT_ALLOWED,
            ApiError::Validation(_) | ApiError::BatchValidation(_) => {
                StatusCode::UNPROCESSABLE_ENTITY
            }
            ApiError::Conflict(_) => StatusCode::CONFLICT,
            ApiError::PayloadTooLarge(_) => StatusCode::PAYLOAD_TOO_LARGE,
            ApiError::NotImplemented(_) => StatusCode::NOT_IMPLEMENTED,
            ApiError::Unavailable(_) => StatusCode::SERVICE_UNAVAILABLE,
            ApiError::Internal(_) => StatusCode::INTERNAL_SERVER_ERROR,
        }
    }

    /// Builds a validation error for one field.
    pub fn field(field: &str, reason: tally_core::Reason) -> Self {
        let mut errors = ValidationErrors::new();
        errors.push(field, reason);
        ApiError::Validation(errors)
    }

    fn log(&self) {
        match self {
            ApiError::Internal(cause) => tracing::error!(%cause, "request failed"),
            ApiError::Unavailable(cause) => tracing::warn!(%cause, "request refused: unavailable"),
            _ => {}
        }
    }

    fn lago_body(&self) -> Value {
        let status = self.status().as_u16();
        match self {
            ApiError::BadRequest(reason) => {
                json!({"status": status, "error": format!("BadRequest: {reason}")})
            }
            ApiError::Unauthorized => json!({"status": status, "error": "Unauthorized"}),
            ApiError::Forbidden(code) => {
                json!({"status": status, "error": "Forbidden", "code": code})
            }
            ApiError::NotFound(what) => {
                json!({"status": status, "error": "Not Found", "code": format!("{what}_not_found")})
            }
            ApiError::NotAllowed(code) => {
                json!({"status": status, "error": "Method Not Allowed", "code": code})
            }
            ApiError::Validation(errors) => json!({
                "status": status, "error": "Unprocessable Entity", "code": "validation_errors",
                "error_details": errors.by_field(),
            }),
            ApiError::BatchValidation(by_index) => {
                let details: BTreeMap<String, BTreeMap<String, Vec<&'static str>>> = by_index
                    .iter()
                    .map(|(index, errors)| (index.to_string(), errors.by_field()))
                    .collect();
                json!({"status": status, "error": "Unprocessable Entity", "code": "validation_errors", "error_details": details})
            }
            ApiError::Conflict(message) => {
                json!({"status": status, "error": "Conflict", "code": "conflict", "message": message})
            }
            ApiError::PayloadTooLarge(message) => {
                json!({"status": status, "error": "Payload Too Large", "code": "payload_too_large", "message": message})
            }
            ApiError::NotImplemented(message) => {
                json!({"status": status, "error": "Not Implemented", "code": "not_implemented", "message": message})
            }
            ApiError::Unavailable(_) => json!({"status": status, "error": "Service Unavailable"}),
            ApiError::Internal(_) => json!({"status": status, "error": "Internal Server Error"}),
        }
    }

    /// Returns the explanation sent in a problem document.
    fn problem_detail(&self) -> String {
        match self {
            ApiError::BadRequest(reason) => reason.clone(),
            ApiError::Unauthorized => "missing or unknown API key".into(),
            ApiError::Forbidden(code) => {
                format!("the API key's scope does not allow this ({code})")
            }
            ApiError::NotFound(what) => {
                format!("{} not found", what.replace("billable_metric", "meter"))
            }
            ApiError::NotAllowed(code) => format!("not allowed in this state ({code})"),
            ApiError::Validation(errors) => format!("invalid input: {errors}"),
            ApiError::BatchValidation(by_index) => {
                let parts: Vec<String> = by_index
                    .iter()
                    .map(|(i, e)| format!("event {i}: {e}"))
                    .collect();
                format!("invalid events: {}", parts.join("; "))
            }
            ApiError::Conflict(message)
            | ApiError::PayloadTooLarge(message)
            | ApiError::NotImplemented(message) => message.clone(),
            ApiError::Unavailable(_) | ApiError::Internal(_) => String::new(),
        }
    }
}

impl From<StoreError> for ApiError {
    fn from(error: StoreError) -> Self {
        match error {
            StoreError::NotFound(what) => ApiError::NotFound(what),
            StoreError::NotAllowed(code) => ApiError::NotAllowed(code),
            StoreError::Invalid(errors) => ApiError::Validation(errors),
            StoreError::Closed => ApiError::Unavailable("the store is shutting down".into()),
            other => ApiError::Internal(other.to_string()),
        }
    }
}

impl From<ValidationErrors> for ApiError {
    fn from(errors: ValidationErrors) -> Self {
        ApiError::Validation(errors)
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        self.log();
        (self.status(), Json(self.lago_body())).into_response()
    }
}

/// A failure on an OpenMeter route, answered as `application/problem+json`.
#[derive(Debug)]
pub struct Problem(pub ApiError);

impl<E: Into<ApiError>> From<E> for Problem {
    fn from(error: E) -> Self {
        Problem(error.into())
    }
}

impl IntoResponse for Problem {
    fn into_response(self) -> Response {
        let error = self.0;
        error.log();
        let status = error.status();
        let request_id = crate::telemetry::current_request_id().unwrap_or_default();
        let body = json!({
            "type": "about:blank",
            "title": status.canonical_reason().unwrap_or("Error"),
            "status": status.as_u16(),
            "detail": error.problem_detail(),
            "instance": format!("urn:request:{request_id}"),
            "extensions": {},
        });
        let mut response = (status, Json(body)).into_response();
        response.headers_mut().insert(
            header::CONTENT_TYPE,
            HeaderValue::from_static("application/problem+json"),
        );
        response
    }
}

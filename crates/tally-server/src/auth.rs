//! API keys on every `/api` route: `Authorization: Bearer <secret>`, checked against the stored digest,
//! then the key's scope against the request (admin: everything; ingest: sending events; read: `GET`).

use axum::extract::{FromRequestParts, Request, State};
use axum::http::request::Parts;
use axum::http::{Method, header};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use sha2::{Digest, Sha256};
use tally_core::apikey::Scope;
use tally_core::id::{ApiKeyId, OrganizationId};

use crate::error::{ApiError, Problem};
use crate::state::AppState;

/// Who is calling: the key's organization and scope. Handlers take it as an extractor.
#[derive(Debug, Clone, Copy)]
pub struct Principal {
    /// The organization the key acts for.
    pub org: OrganizationId,
    /// What the key may do.
    pub scope: Scope,
    /// The key's id, for logs.
    pub key: ApiKeyId,
}

impl<S: Send + Sync> FromRequestParts<S> for Principal {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, _state: &S) -> Result<Self, Self::Rejection> {
        parts
            .extensions
            .get::<Principal>()
            .copied()
            .ok_or(ApiError::Unauthorized)
    }
}

/// Returns the SHA-256 digest under which a secret is stored.
pub fn digest(secret: &str) -> [u8; 32] {
    Sha256::digest(secret.as_bytes()).into()
}

/// Paths an `ingest` key may `POST` to.
const INGEST_PATHS: [&str; 3] = [
    "/api/v1/events",
    "/api/v1/events/batch",
    "/api/v1/events/bulk",
];

/// Tells whether a request belongs to the OpenMeter family and so expects problem+json errors.
pub fn is_openmeter(request_path: &str, method: &Method, content_type: Option<&str>) -> bool {
    if request_path.starts_with("/api/v1/meters") {
        return true;
    }
    method == Method::POST
        && request_path == "/api/v1/events"
        && content_type.is_some_and(|ct| ct.trim_start().starts_with("application/cloudevents"))
}

fn allowed(scope: Scope, method: &Method, path: &str) -> bool {
    match scope {
        Scope::Admin => true,
        Scope::Read => method == Method::GET || method == Method::HEAD,
        Scope::Ingest => method == Method::POST && INGEST_PATHS.contains(&path),
    }
}

/// Lago's refusal code: `<read|write>_action_not_allowed_for_<resource>`.
fn forbidden_code(method: &Method, path: &str) -> String {
    let mode = if method == Method::GET || method == Method::HEAD {
        "read"
    } else {
        "write"
    };
    let resource = path
        .trim_start_matches("/api/v1/")
        .split('/')
        .next()
        .unwrap_or("resource")
        .trim_end_matches('s');
    format!("{mode}_action_not_allowed_for_{resource}")
}

/// Middleware: authenticates the key and checks its scope, then hands the request on with a
/// [`Principal`].
pub async fn require_key(
    State(state): State<AppState>,
    mut request: Request,
    next: Next,
) -> Response {
    let path = request.uri().path().to_owned();
    let method = request.method().clone();
    let content_type = request
        .headers()
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .map(str::to_owned);
    let problem = is_openmeter(&path, &method, content_type.as_deref());
    let refuse = |error: ApiError| {
        if problem {
            Problem(error).into_response()
        } else {
            error.into_response()
        }
    };
    let secret = request
        .headers()
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| {
            v.strip_prefix("Bearer ")
                .or_else(|| v.strip_prefix("bearer "))
        })
        .map(str::trim)
        .filter(|s| !s.is_empty());
    let Some(secret) = secret else {
        return refuse(ApiError::Unauthorized);
    };
    let key = match state.key(digest(secret)).await {
        Ok(Some(key)) => key,
        Ok(None) => return refuse(ApiError::Unauthorized),
        Err(error) => return refuse(error),
    };
    if !allowed(key.scope, &method, &path) {
        return refuse(ApiError::Forbidden(forbidden_code(&method, &path)));
    }
    request.extensions_mut().insert(Principal {
        org: key.organization_id,
        scope: key.scope,
        key: key.id,
    });
    next.run(request).await
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn scopes_allow_what_they_say() {
        assert!(allowed(
            Scope::Ingest,
            &Method::POST,
            "/api/v1/events/batch"
        ));
        assert!(!allowed(Scope::Ingest, &Method::GET, "/api/v1/events"));
        assert!(!allowed(Scope::Ingest, &Method::POST, "/api/v1/customers"));
        assert!(allowed(Scope::Read, &Method::GET, "/api/v1/customers"));
        assert!(!allowed(Scope::Read, &Method::POST, "/api/v1/events"));
        assert_eq!(
            forbidden_code(&Method::POST, "/api/v1/customers"),
            "write_action_not_allowed_for_customer"
        );
        assert_eq!(
            forbidden_code(&Method::GET, "/api/v1/events/x"),
            "read_action_not_allowed_for_event"
        );
    }
}

//! Invoice documents behind signed links: `GET /api/v1/invoices/{lago_id}/file.pdf` and
//! `GET /api/v1/invoices/{lago_id}/file.html`, with `?organization=…&expires=…&signature=…`.
//!
//! These routes take no API key: the signed link is the credential, so a customer can open it from
//! an e-mail. A bad or missing signature and an expired link answer 403 (Lago error body, codes
//! `invalid_signature` and `link_expired`); a genuine link to an invoice that is gone answers 404.
//! Documents are rendered on each request from the stored invoice. [`DocumentLinks`] hands out the
//! links (`file_url`) in the authenticated invoice answers.

use axum::Router;
use axum::extract::{FromRequestParts, Path, RawQuery, State};
use axum::http::request::Parts;
use axum::http::{HeaderValue, header};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use serde_json::Value;
use tally_core::id::{InvoiceId, OrganizationId};
use tally_core::invoice::InvoiceStatus;
use tally_core::time::Timestamp;
use tally_store::Invoice;

use crate::api::query::QueryPairs;
use crate::auth::Principal;
use crate::document::{InvoiceDocument, html, pdf};
use crate::error::ApiError;
use crate::file_links::{FileFormat, LinkError, SignedLink};
use crate::state::AppState;

/// The document routes (no API key; mounted outside the authenticated `/api/v1` router).
pub fn router() -> Router<AppState> {
    Router::new()
        .route(
            "/api/v1/invoices/{lago_id}/file.pdf",
            get(|state, id, query| serve(state, id, query, FileFormat::Pdf)),
        )
        .route(
            "/api/v1/invoices/{lago_id}/file.html",
            get(|state, id, query| serve(state, id, query, FileFormat::Html)),
        )
}

fn refused(error: LinkError) -> ApiError {
    ApiError::Forbidden(error.code().to_owned())
}

/// Reads a link from its path and query; anything malformed is an invalid signature.
fn parse_link(id: &str, raw: Option<&str>, format: FileFormat) -> Result<SignedLink, ApiError> {
    let invalid = || refused(LinkError::InvalidSignature);
    let query = QueryPairs::parse(raw).map_err(|_| invalid())?;
    let uuid = |text: Option<&str>| text.and_then(|t| uuid::Uuid::parse_str(t).ok());
    Ok(SignedLink {
        organization: OrganizationId(uuid(query.get("organization")).ok_or_else(invalid)?),
        invoice: InvoiceId(uuid(Some(id)).ok_or_else(invalid)?),
        format,
        expires: query
            .get("expires")
            .and_then(|e| e.parse::<i64>().ok())
            .ok_or_else(invalid)?,
        signature: query
            .get("signature")
            .map(str::to_owned)
            .ok_or_else(invalid)?,
    })
}

async fn serve(
    State(state): State<AppState>,
    Path(id): Path<String>,
    RawQuery(raw): RawQuery,
    format: FileFormat,
) -> Result<Response, ApiError> {
    let link = parse_link(&id, raw.as_deref(), format)?;
    state
        .links
        .verify(&link, state.clock.now())
        .map_err(refused)?;
    let invoice = state.store.invoice(link.organization, link.invoice).await?;
    if invoice.status == InvoiceStatus::Draft {
        return Err(ApiError::NotAllowed("is_draft"));
    }
    let issuer = state.organization(link.organization).await?;
    let document = InvoiceDocument::new(&invoice, &issuer.name);
    let body = match format {
        FileFormat::Pdf => pdf::render(&document),
        FileFormat::Html => html::render(&document).into_bytes(),
    };
    let disposition = format!(
        "inline; filename=\"{}.{}\"",
        document.file_stem(),
        format.name()
    );
    let mut response = body.into_response();
    let headers = response.headers_mut();
    headers.insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static(format.content_type()),
    );
    if let Ok(value) = HeaderValue::from_str(&disposition) {
        headers.insert(header::CONTENT_DISPOSITION, value);
    }
    headers.insert(header::CACHE_CONTROL, HeaderValue::from_static("private"));
    headers.insert(
        header::X_CONTENT_TYPE_OPTIONS,
        HeaderValue::from_static("nosniff"),
    );
    headers.insert(
        header::REFERRER_POLICY,
        HeaderValue::from_static("no-referrer"),
    );
    if format == FileFormat::Html {
        headers.insert(
            header::CONTENT_SECURITY_POLICY,
            HeaderValue::from_static("default-src 'none'; style-src 'unsafe-inline'"),
        );
    }
    Ok(response)
}

/// Hands out signed document links for the caller's invoices, from an authenticated request.
///
/// Links are absolute: they start with the configured public URL, or with `http://` and the
/// request's `Host` header.
#[derive(Clone)]
pub struct DocumentLinks {
    state: AppState,
    organization: OrganizationId,
    base: String,
    now: Timestamp,
}

impl FromRequestParts<AppState> for DocumentLinks {
    type Rejection = ApiError;

    async fn from_request_parts(
        parts: &mut Parts,
        state: &AppState,
    ) -> Result<Self, Self::Rejection> {
        let principal = parts
            .extensions
            .get::<Principal>()
            .copied()
            .ok_or(ApiError::Unauthorized)?;
        let base = match &state.public_url {
            Some(url) => url.to_string(),
            None => parts
                .headers
                .get(header::HOST)
                .and_then(|h| h.to_str().ok())
                .or_else(|| parts.uri.authority().map(|a| a.as_str()))
                .map(|host| format!("http://{host}"))
                .unwrap_or_default(),
        };
        Ok(DocumentLinks {
            state: state.clone(),
            organization: principal.org,
            base,
            now: state.clock.now(),
        })
    }
}

impl DocumentLinks {
    /// Returns a fresh link to the invoice's `format` rendering; `None` for a draft.
    pub fn url(&self, invoice: &Invoice, format: FileFormat) -> Option<String> {
        if invoice.status == InvoiceStatus::Draft {
            return None;
        }
        let link = self
            .state
            .links
            .issue(self.organization, invoice.id, format, self.now);
        Some(format!("{}{}", self.base, link.path_and_query()))
    }

    /// Sets `file_url` (the PDF) and tally's `html_url` on an invoice object; drafts keep `null`.
    pub fn attach(&self, object: &mut Value, invoice: &Invoice) {
        if let Some(map) = object.as_object_mut() {
            map.insert("file_url".into(), self.url(invoice, FileFormat::Pdf).into());
            map.insert(
                "html_url".into(),
                self.url(invoice, FileFormat::Html).into(),
            );
        }
    }
}

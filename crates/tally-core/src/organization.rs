//! Organizations (tenants) and their settings.

use chrono_tz::Tz;

use crate::case::IdentifierCase;
use crate::id::OrganizationId;
use crate::time::Timestamp;

/// A tenant: every API key, customer, metric and event belongs to exactly one organization.
#[derive(Debug, Clone, PartialEq)]
pub struct Organization {
    /// Its id.
    pub id: OrganizationId,
    /// Display name.
    pub name: String,
    /// How identifiers are normalized on write (see [`crate::case`]).
    pub identifier_case: IdentifierCase,
    /// Default time zone for customers without one.
    pub timezone: Tz,
    /// Invoicing defaults.
    pub billing: OrganizationBilling,
    /// When it was created.
    pub created_at: Timestamp,
}

/// How invoice numbers count (Lago `document_numbering`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum DocumentNumbering {
    /// `<prefix>-<customer sequential id>-<the customer's n-th invoice>` (Lago's default).
    #[default]
    PerCustomer,
    /// `<prefix>-<YYYYMM of issuing>-<the organization's n-th invoice>`.
    PerOrganization,
}

impl DocumentNumbering {
    /// Lago's name.
    pub fn name(self) -> &'static str {
        match self {
            DocumentNumbering::PerCustomer => "per_customer",
            DocumentNumbering::PerOrganization => "per_organization",
        }
    }

    /// Parses Lago's name.
    pub fn parse(name: &str) -> Option<Self> {
        match name {
            "per_customer" => Some(DocumentNumbering::PerCustomer),
            "per_organization" => Some(DocumentNumbering::PerOrganization),
            _ => None,
        }
    }
}

/// An organization's invoicing defaults; a customer's own setting wins where it has one.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct OrganizationBilling {
    /// Days an invoice stays a draft before it is finalized.
    pub invoice_grace_period: i64,
    /// Days from issuing to the payment due date.
    pub net_payment_term: i64,
    /// How invoice numbers count.
    pub document_numbering: DocumentNumbering,
    /// The start of every invoice number; derived from the name and id when not set.
    pub document_number_prefix: Option<String>,
}

/// A change to an organization's settings; `None` leaves a setting as it is.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct OrganizationPatch {
    /// New display name.
    pub name: Option<String>,
    /// New identifier case policy.
    pub identifier_case: Option<IdentifierCase>,
    /// New default time zone.
    pub timezone: Option<Tz>,
    /// New grace period (days).
    pub invoice_grace_period: Option<i64>,
    /// New net payment term (days).
    pub net_payment_term: Option<i64>,
    /// New numbering.
    pub document_numbering: Option<DocumentNumbering>,
    /// New number prefix.
    pub document_number_prefix: Option<String>,
}

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
    /// When it was created.
    pub created_at: Timestamp,
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
}

//! Identifiers: tally's own ids (UUIDs, rendered as `lago_id`) and the ids clients choose.
//!
//! Each kind of id is its own type so that a customer id can never be passed where a metric id is
//! expected. Client-chosen ids are validated once, at the edge, by their constructors.

use std::fmt;

use serde::{Deserialize, Serialize};
use uuid::Uuid;

use crate::error::{FieldError, Reason};

/// The longest client-chosen identifier accepted, in bytes.
pub const MAX_IDENTIFIER_LEN: usize = 255;

macro_rules! uuid_id {
    ($(#[$doc:meta])* $name:ident) => {
        $(#[$doc])*
        #[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
        #[serde(transparent)]
        pub struct $name(pub Uuid);

        impl $name {
            /// Makes a new, time-ordered id (UUID v7).
            pub fn generate() -> Self {
                $name(Uuid::now_v7())
            }
        }

        impl fmt::Display for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                self.0.fmt(f)
            }
        }
    };
}

uuid_id!(
    /// The id of an organization (tenant); every API key belongs to one.
    OrganizationId
);
uuid_id!(
    /// The `lago_id` of a customer.
    CustomerId
);
uuid_id!(
    /// The `lago_id` of a billable metric, which is also the meter's id.
    MetricId
);
uuid_id!(
    /// The id of an API key (never the secret).
    ApiKeyId
);
uuid_id!(
    /// The `lago_id` of a stored event.
    EventId
);
uuid_id!(
    /// The `lago_id` of a plan.
    PlanId
);
uuid_id!(
    /// The `lago_id` of a charge of a plan.
    ChargeId
);
uuid_id!(
    /// The `lago_id` of a charge filter.
    ChargeFilterId
);
uuid_id!(
    /// The `lago_id` of a plan's usage threshold (progressive billing).
    UsageThresholdId
);
uuid_id!(
    /// The `lago_id` of a subscription.
    SubscriptionId
);
uuid_id!(
    /// The `lago_id` of an invoice.
    InvoiceId
);
uuid_id!(
    /// The `lago_id` of a fee.
    FeeId
);

/// An id chosen by the client (`external_id`, `external_customer_id`, `transaction_id`, a CloudEvent
/// `subject`): a non-empty string of at most [`MAX_IDENTIFIER_LEN`] bytes without control characters.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize)]
#[serde(transparent)]
pub struct ExternalId(String);

impl ExternalId {
    /// Validates a client id; `field` names it in the error.
    pub fn parse(field: &str, value: &str) -> Result<Self, FieldError> {
        check_identifier(field, value)?;
        Ok(ExternalId(value.to_owned()))
    }

    /// Returns the id as sent.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl fmt::Display for ExternalId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// A code naming a billable metric or an event type, after the organization's case policy was applied.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize)]
#[serde(transparent)]
pub struct Code(String);

impl Code {
    /// Validates a code; `field` names it in the error.
    pub fn parse(field: &str, value: &str) -> Result<Self, FieldError> {
        check_identifier(field, value)?;
        Ok(Code(value.to_owned()))
    }

    /// Returns the code.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl fmt::Display for Code {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

fn check_identifier(field: &str, value: &str) -> Result<(), FieldError> {
    if value.trim().is_empty() {
        return Err(FieldError::new(field, Reason::ValueIsMandatory));
    }
    if value.len() > MAX_IDENTIFIER_LEN {
        return Err(FieldError::new(field, Reason::ValueIsTooLong));
    }
    if value.chars().any(char::is_control) {
        return Err(FieldError::new(field, Reason::InvalidFormat));
    }
    Ok(())
}

/// Renders a metric id as the 26-character ULID OpenMeter clients expect for a meter `id`; it is the
/// same 128 bits as the metric's `lago_id`.
pub fn ulid_string(id: Uuid) -> String {
    ulid::Ulid::from(id).to_string()
}

/// Parses a 26-character ULID back into the UUID it encodes, or `None` if it is not one.
pub fn parse_ulid(text: &str) -> Option<Uuid> {
    ulid::Ulid::from_string(text).ok().map(Uuid::from)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ulid_round_trips_through_uuid() {
        let id = Uuid::from_u128(0x0188_4a3c_0000_7000_8000_0000_0000_00ff);
        let text = ulid_string(id);
        assert_eq!(text.len(), 26);
        assert_eq!(parse_ulid(&text), Some(id));
    }

    #[test]
    fn ulid_of_known_value() {
        // 2^128 - 1 is the largest ULID, 7ZZZZZZZZZZZZZZZZZZZZZZZZZ by the ULID spec.
        assert_eq!(
            ulid_string(Uuid::from_u128(u128::MAX)),
            "7ZZZZZZZZZZZZZZZZZZZZZZZZZ"
        );
        assert_eq!(
            ulid_string(Uuid::from_u128(1)),
            "00000000000000000000000001"
        );
    }

    #[test]
    fn external_ids_are_checked() {
        assert!(ExternalId::parse("external_id", "cus_1").is_ok());
        assert_eq!(
            ExternalId::parse("external_id", " ").unwrap_err().reason,
            Reason::ValueIsMandatory
        );
        assert_eq!(
            ExternalId::parse("external_id", &"x".repeat(256))
                .unwrap_err()
                .reason,
            Reason::ValueIsTooLong
        );
        assert_eq!(
            ExternalId::parse("external_id", "a\nb").unwrap_err().reason,
            Reason::InvalidFormat
        );
    }
}

//! Customers: who uses and pays, keyed by the client's `external_id`.

use chrono_tz::Tz;
use serde::{Deserialize, Serialize};

use crate::currency::Currency;
use crate::error::{Reason, ValidationErrors};
use crate::id::{CustomerId, ExternalId};
use crate::time::Timestamp;

/// A customer of an organization.
#[derive(Debug, Clone, PartialEq)]
pub struct Customer {
    /// tally's id (`lago_id`).
    pub id: CustomerId,
    /// A number counting the organization's customers from 1 (`sequential_id`).
    pub sequential_id: i64,
    /// The client's id.
    pub external_id: ExternalId,
    /// Everything else the client says about the customer.
    pub profile: CustomerProfile,
    /// When it was created.
    pub created_at: Timestamp,
    /// When it last changed.
    pub updated_at: Timestamp,
}

/// Company or person.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum CustomerType {
    /// A company.
    Company,
    /// A person.
    Individual,
}

/// Whether invoices of zero are finalized (Lago `finalize_zero_amount_invoice`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, Default)]
#[serde(rename_all = "snake_case")]
pub enum ZeroAmountInvoices {
    /// Follow the organization.
    #[default]
    Inherit,
    /// Skip them.
    Skip,
    /// Finalize them.
    Finalize,
}

/// A postal address.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, Default)]
pub struct Address {
    /// First line.
    pub address_line1: Option<String>,
    /// Second line.
    pub address_line2: Option<String>,
    /// City.
    pub city: Option<String>,
    /// State or region.
    pub state: Option<String>,
    /// Postal code.
    pub zipcode: Option<String>,
    /// ISO 3166 alpha-2 country code.
    pub country: Option<String>,
}

/// A key/value pair attached to a customer.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Metadata {
    /// Its id (`lago_id`), stable across updates.
    pub id: uuid::Uuid,
    /// Key.
    pub key: String,
    /// Value.
    pub value: String,
    /// Whether invoices show it.
    pub display_in_invoice: bool,
    /// When it was added.
    pub created_at: i64,
}

/// The descriptive fields of a customer, stored together.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, Default)]
pub struct CustomerProfile {
    /// Display name.
    pub name: Option<String>,
    /// First name.
    pub firstname: Option<String>,
    /// Last name.
    pub lastname: Option<String>,
    /// E-mail address.
    pub email: Option<String>,
    /// Phone number.
    pub phone: Option<String>,
    /// Web site.
    pub url: Option<String>,
    /// Logo.
    pub logo_url: Option<String>,
    /// Legal name.
    pub legal_name: Option<String>,
    /// Company registration number.
    pub legal_number: Option<String>,
    /// Tax id.
    pub tax_identification_number: Option<String>,
    /// Billing address.
    #[serde(default)]
    pub address: Address,
    /// Shipping address.
    #[serde(default)]
    pub shipping_address: Address,
    /// Default currency.
    pub currency: Option<Currency>,
    /// IANA time zone for billing periods.
    #[serde(default, with = "tz_name")]
    pub timezone: Option<Tz>,
    /// Days until an invoice is due.
    pub net_payment_term: Option<i64>,
    /// Company or individual.
    pub customer_type: Option<CustomerType>,
    /// Zero-amount invoice policy.
    #[serde(default)]
    pub finalize_zero_amount_invoice: ZeroAmountInvoices,
    /// Days invoices stay drafts.
    pub invoice_grace_period: Option<i64>,
    /// ISO 639-1 language of documents.
    pub document_locale: Option<String>,
    /// Key/value pairs.
    #[serde(default)]
    pub metadata: Vec<Metadata>,
}

mod tz_name {
    use chrono_tz::Tz;
    use serde::{Deserialize, Deserializer, Serializer};

    pub fn serialize<S: Serializer>(tz: &Option<Tz>, s: S) -> Result<S::Ok, S::Error> {
        match tz {
            Some(tz) => s.serialize_some(tz.name()),
            None => s.serialize_none(),
        }
    }

    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Option<Tz>, D::Error> {
        let name: Option<String> = Option::deserialize(d)?;
        Ok(name.and_then(|n| n.parse().ok()))
    }
}

/// The longest free-text customer field accepted, in characters.
pub const MAX_FIELD_LEN: usize = 1_000;
/// The most metadata entries per customer.
pub const MAX_METADATA: usize = 50;

impl CustomerProfile {
    /// Checks the rules no type can express: lengths, country codes, e-mail shape, ranges.
    pub fn validate(&self) -> Result<(), ValidationErrors> {
        let mut errors = ValidationErrors::new();
        let texts = [
            ("name", &self.name),
            ("firstname", &self.firstname),
            ("lastname", &self.lastname),
            ("email", &self.email),
            ("phone", &self.phone),
            ("url", &self.url),
            ("logo_url", &self.logo_url),
            ("legal_name", &self.legal_name),
            ("legal_number", &self.legal_number),
            ("tax_identification_number", &self.tax_identification_number),
            ("document_locale", &self.document_locale),
        ];
        for (field, value) in texts {
            if value
                .as_ref()
                .is_some_and(|v| v.chars().count() > MAX_FIELD_LEN)
            {
                errors.push(field, Reason::ValueIsTooLong);
            }
        }
        if let Some(email) = &self.email
            && !email.split(',').all(|e| {
                let e = e.trim();
                e.split_once('@')
                    .is_some_and(|(local, domain)| !local.is_empty() && domain.contains('.'))
            })
        {
            errors.push("email", Reason::InvalidFormat);
        }
        for (prefix, address) in [
            ("", &self.address),
            ("shipping_address.", &self.shipping_address),
        ] {
            if let Some(country) = &address.country
                && !(country.len() == 2 && country.chars().all(|c| c.is_ascii_uppercase()))
            {
                errors.push(format!("{prefix}country"), Reason::ValueIsInvalid);
            }
        }
        if self
            .net_payment_term
            .is_some_and(|d| !(0..=365).contains(&d))
        {
            errors.push("net_payment_term", Reason::ValueIsOutOfRange);
        }
        if self
            .invoice_grace_period
            .is_some_and(|d| !(0..=365).contains(&d))
        {
            errors.push(
                "billing_configuration.invoice_grace_period",
                Reason::ValueIsOutOfRange,
            );
        }
        if self.metadata.len() > MAX_METADATA {
            errors.push("metadata", Reason::ValueIsOutOfRange);
        }
        for (index, entry) in self.metadata.iter().enumerate() {
            if entry.key.trim().is_empty() {
                errors.push(format!("metadata.{index}.key"), Reason::ValueIsMandatory);
            }
        }
        errors.into_result(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn validates_shapes() {
        let mut profile = CustomerProfile {
            email: Some("a@b.co".into()),
            ..Default::default()
        };
        profile.address.country = Some("FR".into());
        assert!(profile.validate().is_ok());
        profile.email = Some("nobody".into());
        profile.address.country = Some("France".into());
        profile.net_payment_term = Some(-1);
        let errors = profile.validate().unwrap_err().by_field();
        assert_eq!(errors["email"], vec!["invalid_format"]);
        assert_eq!(errors["country"], vec!["value_is_invalid"]);
        assert_eq!(errors["net_payment_term"], vec!["value_is_out_of_range"]);
    }
}

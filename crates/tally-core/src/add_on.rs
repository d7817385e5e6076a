//! Add-ons: priced items billed once, on one-off invoices (setup fees, workshops, support hours).
//!
//! An add-on carries a default price in minor units of its currency; a one-off invoice may bill it at
//! that price or at another, for any number of units (see [`crate::billing::fees::add_on_fee`]).

use crate::currency::Currency;
use crate::error::{Reason, ValidationErrors};
use crate::id::Code;
use crate::tax::Tax;
use crate::time::Timestamp;

/// An add-on as stored.
#[derive(Debug, Clone, PartialEq)]
pub struct AddOn {
    /// Its id (`lago_id`).
    pub id: uuid::Uuid,
    /// What it says.
    pub terms: AddOnTerms,
    /// The taxes its fees take when a one-off invoice names none for them.
    pub taxes: Vec<Tax>,
    /// When it was created.
    pub created_at: Timestamp,
    /// When it last changed.
    pub updated_at: Timestamp,
}

/// An add-on's own fields.
#[derive(Debug, Clone, PartialEq)]
pub struct AddOnTerms {
    /// Unique among the organization's live add-ons.
    pub code: Code,
    /// Display name.
    pub name: String,
    /// The name invoices show instead of `name`, when set.
    pub invoice_display_name: Option<String>,
    /// Free text; a one-off fee shows it unless the invoice gives its own.
    pub description: Option<String>,
    /// The default price of one unit, in minor units of `currency`; more than 0, as in Lago.
    pub amount_cents: i64,
    /// The currency of `amount_cents`.
    pub currency: Currency,
}

impl AddOnTerms {
    /// Checks the fields: a name, and a price above zero (Lago's `value_is_out_of_range`).
    pub fn validate(&self) -> Result<(), ValidationErrors> {
        let mut errors = ValidationErrors::new();
        if self.name.trim().is_empty() {
            errors.push("name", Reason::ValueIsMandatory);
        }
        if self.amount_cents <= 0 {
            errors.push("amount_cents", Reason::ValueIsOutOfRange);
        }
        errors.into_result(())
    }
}

/// An add-on as a client sends it, for creation or change.
#[derive(Debug, Clone, PartialEq)]
pub struct AddOnDraft {
    /// The complete fields to store.
    pub terms: AddOnTerms,
    /// The taxes it carries, by code, when they change.
    pub tax_codes: Option<Vec<String>>,
}

#[cfg(test)]
mod tests {
    use super::*;

    fn terms(name: &str, amount_cents: i64) -> AddOnTerms {
        AddOnTerms {
            code: Code::parse("code", "setup").expect("code"),
            name: name.to_owned(),
            invoice_display_name: None,
            description: None,
            amount_cents,
            currency: Currency::parse("USD").expect("USD"),
        }
    }

    #[test]
    fn a_name_and_a_positive_price_are_required() {
        assert!(terms("Setup", 1).validate().is_ok());
        let errors = terms(" ", 0).validate().expect_err("refused");
        let by_field = errors.by_field();
        assert_eq!(by_field["name"], vec!["value_is_mandatory"]);
        assert_eq!(by_field["amount_cents"], vec!["value_is_out_of_range"]);
        assert!(terms("Setup", -5).validate().is_err());
    }
}

//! Taxes: named percentage rates applied to fees.
//!
//! A fee takes the taxes of its plan when the plan has any, else its customer's, else the
//! organization's default taxes (`applied_to_organization`). Each tax of each fee is computed on the
//! fee's amount after coupons and rounded once, half to even.

use rust_decimal::Decimal;

use crate::error::{Reason, ValidationErrors};
use crate::id::Code;
use crate::time::Timestamp;

/// A tax rate.
#[derive(Debug, Clone, PartialEq)]
pub struct Tax {
    /// Its id (`lago_id`).
    pub id: uuid::Uuid,
    /// What it says.
    pub terms: TaxTerms,
    /// When it was created.
    pub created_at: Timestamp,
}

/// A tax's own fields.
#[derive(Debug, Clone, PartialEq)]
pub struct TaxTerms {
    /// Unique among live taxes of the organization.
    pub code: Code,
    /// Display name.
    pub name: String,
    /// Percent: `20` is 20 %.
    pub rate: Decimal,
    /// Free text.
    pub description: Option<String>,
    /// Applies to every customer without taxes of their own.
    pub applied_to_organization: bool,
}

impl TaxTerms {
    /// Checks the fields.
    pub fn validate(&self) -> Result<(), ValidationErrors> {
        let mut errors = ValidationErrors::new();
        if self.name.trim().is_empty() {
            errors.push("name", Reason::ValueIsMandatory);
        }
        if self.rate < Decimal::ZERO || self.rate > Decimal::ONE_HUNDRED {
            errors.push("rate", Reason::ValueIsOutOfRange);
        }
        errors.into_result(())
    }
}

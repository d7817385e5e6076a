//! Validation errors in the vocabulary of the Lago contract.
//!
//! Every rejected input names the field and a reason code (`value_is_mandatory`, `invalid_format`, …), so
//! the HTTP layer can answer `{"error_details": {"<field>": ["<reason>"]}}` without knowing the rule.

use std::collections::BTreeMap;
use std::fmt;

/// Why a field was refused. The wire name of each variant is the snake_case code Lago clients expect.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Reason {
    /// The field is required and missing or blank.
    ValueIsMandatory,
    /// The value collides with an existing one (duplicate code, conflicting idempotency key).
    ValueAlreadyExist,
    /// The value is not one of the allowed values.
    ValueIsInvalid,
    /// The value does not have the expected format or type.
    InvalidFormat,
    /// The date or timestamp cannot be parsed or is out of range.
    InvalidDate,
    /// The number is outside the accepted range.
    ValueIsOutOfRange,
    /// The string is longer than accepted.
    ValueIsTooLong,
    /// The time zone is not a known IANA name.
    InvalidTimezone,
    /// The option cannot be combined with the metric's aggregation type.
    NotCompatibleWithAggregationType,
    /// A batch holds no events.
    NoEvents,
    /// A batch holds more events than allowed.
    TooManyEvents,
    /// A property that must be a number is not one.
    ValueIsNotValidNumber,
    /// A price in charge properties is not a decimal ≥ 0.
    InvalidAmount,
    /// A pay-in-advance charge on a charge model or metric that cannot bill event by event.
    InvalidAggregationTypeOrChargeModel,
    /// The option cannot be used on a pay-in-advance charge.
    NotCompatibleWithPayInAdvance,
    /// Only pay-in-advance charges may be left off invoices.
    MustBeTrueUnlessPayInAdvance,
    /// The plan's currency differs from the customer's.
    CurrenciesDoesNotMatch,
    /// A package charge's `package_size` is not an integer > 0.
    InvalidPackageSize,
    /// A package charge's `free_units` is not an integer ≥ 0.
    InvalidFreeUnits,
    /// Graduated ranges leave a gap, overlap, or do not end open.
    InvalidGraduatedRanges,
    /// A graduated charge has no ranges.
    MissingGraduatedRanges,
    /// Volume ranges leave a gap, overlap, or do not end open.
    InvalidVolumeRanges,
    /// A volume charge has no ranges.
    MissingVolumeRanges,
    /// Graduated percentage ranges leave a gap, overlap, or do not end open.
    InvalidGraduatedPercentageRanges,
    /// A graduated percentage charge has no ranges.
    MissingGraduatedPercentageRanges,
    /// A percentage rate is not a decimal ≥ 0.
    InvalidRate,
    /// A percentage charge's `fixed_amount` is not a decimal ≥ 0.
    InvalidFixedAmount,
    /// A percentage charge's `free_units_per_events` is not an integer > 0.
    InvalidFreeUnitsPerEvents,
    /// A percentage charge's `free_units_per_total_aggregation` is not a decimal ≥ 0.
    InvalidFreeUnitsPerTotalAggregation,
    /// A percentage charge's per-transaction maximum is below its minimum.
    PerTransactionMaxLowerThanPerTransactionMin,
    /// A fee estimate names an event code that no pay-in-advance charge of the plan bills.
    DoesNotMatchAnInstantCharge,
}

impl Reason {
    /// Returns the snake_case code sent on the wire.
    pub fn code(self) -> &'static str {
        match self {
            Reason::ValueIsMandatory => "value_is_mandatory",
            Reason::ValueAlreadyExist => "value_already_exist",
            Reason::ValueIsInvalid => "value_is_invalid",
            Reason::InvalidFormat => "invalid_format",
            Reason::InvalidDate => "invalid_date",
            Reason::ValueIsOutOfRange => "value_is_out_of_range",
            Reason::ValueIsTooLong => "value_is_too_long",
            Reason::InvalidTimezone => "invalid_timezone",
            Reason::NotCompatibleWithAggregationType => "not_compatible_with_aggregation_type",
            Reason::NoEvents => "no_events",
            Reason::TooManyEvents => "too_many_events",
            Reason::ValueIsNotValidNumber => "value_is_not_valid_number",
            Reason::InvalidAmount => "invalid_amount",
            Reason::InvalidAggregationTypeOrChargeModel => {
                "invalid_aggregation_type_or_charge_model"
            }
            Reason::NotCompatibleWithPayInAdvance => "not_compatible_with_pay_in_advance",
            Reason::MustBeTrueUnlessPayInAdvance => "must_be_true_unless_pay_in_advance",
            Reason::CurrenciesDoesNotMatch => "currencies_does_not_match",
            Reason::InvalidPackageSize => "invalid_package_size",
            Reason::InvalidFreeUnits => "invalid_free_units",
            Reason::InvalidGraduatedRanges => "invalid_graduated_ranges",
            Reason::MissingGraduatedRanges => "missing_graduated_ranges",
            Reason::InvalidVolumeRanges => "invalid_volume_ranges",
            Reason::MissingVolumeRanges => "missing_volume_ranges",
            Reason::InvalidGraduatedPercentageRanges => "invalid_graduated_percentage_ranges",
            Reason::MissingGraduatedPercentageRanges => "missing_graduated_percentage_ranges",
            Reason::InvalidRate => "invalid_rate",
            Reason::InvalidFixedAmount => "invalid_fixed_amount",
            Reason::InvalidFreeUnitsPerEvents => "invalid_free_units_per_events",
            Reason::InvalidFreeUnitsPerTotalAggregation => {
                "invalid_free_units_per_total_aggregation"
            }
            Reason::PerTransactionMaxLowerThanPerTransactionMin => {
                "per_transaction_max_lower_than_per_transaction_min"
            }
            Reason::DoesNotMatchAnInstantCharge => "does_not_match_an_instant_charge",
        }
    }
}

impl fmt::Display for Reason {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.code())
    }
}

/// One refused field: its name (dotted for nested fields, e.g. `filters.0.key`) and the reason.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FieldError {
    /// The field's name as the client sent it.
    pub field: String,
    /// Why it was refused.
    pub reason: Reason,
}

impl FieldError {
    /// Builds a field error.
    pub fn new(field: impl Into<String>, reason: Reason) -> Self {
        FieldError {
            field: field.into(),
            reason,
        }
    }
}

/// A non-empty set of field errors for one object.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct ValidationErrors {
    errors: Vec<FieldError>,
}

impl ValidationErrors {
    /// Starts an empty set, to be filled with [`ValidationErrors::push`].
    pub fn new() -> Self {
        Self::default()
    }

    /// Adds one field error.
    pub fn push(&mut self, field: impl Into<String>, reason: Reason) {
        self.errors.push(FieldError::new(field, reason));
    }

    /// Records the error of a fallible step and returns its value, if any.
    pub fn take<T>(&mut self, result: Result<T, FieldError>) -> Option<T> {
        match result {
            Ok(value) => Some(value),
            Err(error) => {
                self.errors.push(error);
                None
            }
        }
    }

    /// Tells whether no error was recorded.
    pub fn is_empty(&self) -> bool {
        self.errors.is_empty()
    }

    /// Returns `Ok(value)` when no error was recorded, else the errors.
    pub fn into_result<T>(self, value: T) -> Result<T, ValidationErrors> {
        if self.errors.is_empty() {
            Ok(value)
        } else {
            Err(self)
        }
    }

    /// Returns the errors in the order they were found.
    pub fn errors(&self) -> &[FieldError] {
        &self.errors
    }

    /// Groups the reasons by field, as Lago's `error_details` does.
    pub fn by_field(&self) -> BTreeMap<String, Vec<&'static str>> {
        let mut map: BTreeMap<String, Vec<&'static str>> = BTreeMap::new();
        for error in &self.errors {
            let reasons = map.entry(error.field.clone()).or_default();
            if !reasons.contains(&error.reason.code()) {
                reasons.push(error.reason.code());
            }
        }
        map
    }
}

impl From<FieldError> for ValidationErrors {
    fn from(error: FieldError) -> Self {
        ValidationErrors {
            errors: vec![error],
        }
    }
}

impl fmt::Display for ValidationErrors {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let parts: Vec<String> = self
            .errors
            .iter()
            .map(|e| format!("{}: {}", e.field, e.reason))
            .collect();
        write!(f, "{}", parts.join(", "))
    }
}

impl std::error::Error for ValidationErrors {}

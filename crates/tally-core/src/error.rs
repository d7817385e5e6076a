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

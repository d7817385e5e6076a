//! Reading JSON request objects field by field, so that every type error names its field.
//!
//! Unknown fields are ignored, as Lago does; a field of the wrong type is refused with
//! `invalid_format` (or the reason given) under its name, and all errors of an object are reported
//! together.

use axum::body::Bytes;
use rust_decimal::Decimal;
use serde_json::{Map, Value};
use tally_core::error::{Reason, ValidationErrors};
use tally_core::quantity::parse_decimal;

use crate::error::ApiError;

/// Parses a body as JSON, answering 400 when it is not.
pub fn parse_body(body: &Bytes) -> Result<Value, ApiError> {
    if body.is_empty() {
        return Err(ApiError::BadRequest("the request body is empty".into()));
    }
    serde_json::from_slice(body)
        .map_err(|e| ApiError::BadRequest(format!("the body is not valid JSON: {e}")))
}

/// Returns the object under Lago's root key (`{"customer": {...}}`), answering 400 when it is missing.
pub fn root<'a>(value: &'a Value, key: &str) -> Result<&'a Map<String, Value>, ApiError> {
    value.get(key).and_then(Value::as_object).ok_or_else(|| {
        ApiError::BadRequest(format!("param is missing or the value is empty: {key}"))
    })
}

/// A field's presence: absent, explicitly null, or a value.
#[derive(Debug, Clone, PartialEq)]
pub enum Field<T> {
    /// The key is not in the object.
    Absent,
    /// The key is present with `null`.
    Null,
    /// The key holds a value of the right type.
    Value(T),
}

impl<T> Field<T> {
    /// `None` when absent; `Some(None)` when null.
    pub fn patch(self) -> Option<Option<T>> {
        match self {
            Field::Absent => None,
            Field::Null => Some(None),
            Field::Value(v) => Some(Some(v)),
        }
    }

    /// The value, if one was sent.
    pub fn value(self) -> Option<T> {
        match self {
            Field::Value(v) => Some(v),
            _ => None,
        }
    }

    /// Tells whether the key was sent.
    pub fn is_present(&self) -> bool {
        !matches!(self, Field::Absent)
    }
}

/// Reads fields of one JSON object, collecting errors.
pub struct Fields<'a> {
    object: &'a Map<String, Value>,
    prefix: String,
    /// Every error found so far.
    pub errors: ValidationErrors,
}

impl<'a> Fields<'a> {
    /// Starts reading an object.
    pub fn new(object: &'a Map<String, Value>) -> Self {
        Fields {
            object,
            prefix: String::new(),
            errors: ValidationErrors::new(),
        }
    }

    /// Starts reading a nested object whose errors are named `prefix.field`.
    pub fn nested(object: &'a Map<String, Value>, prefix: &str) -> Self {
        Fields {
            object,
            prefix: format!("{prefix}."),
            errors: ValidationErrors::new(),
        }
    }

    /// Returns the full name of a field, for errors.
    pub fn name(&self, field: &str) -> String {
        format!("{}{field}", self.prefix)
    }

    /// Records an error on a field.
    pub fn fail(&mut self, field: &str, reason: Reason) {
        let name = self.name(field);
        self.errors.push(name, reason);
    }

    /// Returns the raw value of a field.
    pub fn raw(&self, field: &str) -> Option<&'a Value> {
        self.object.get(field)
    }

    fn read<T>(&mut self, field: &str, convert: impl FnOnce(&'a Value) -> Option<T>) -> Field<T> {
        match self.object.get(field) {
            None => Field::Absent,
            Some(Value::Null) => Field::Null,
            Some(value) => match convert(value) {
                Some(v) => Field::Value(v),
                None => {
                    self.fail(field, Reason::InvalidFormat);
                    Field::Absent
                }
            },
        }
    }

    /// A string field.
    pub fn string(&mut self, field: &str) -> Field<String> {
        self.read(field, |v| v.as_str().map(str::to_owned))
    }

    /// A string field that must be present and not blank.
    pub fn required_string(&mut self, field: &str) -> Option<String> {
        match self.string(field) {
            Field::Value(v) if !v.trim().is_empty() => Some(v),
            Field::Value(_) | Field::Null => {
                self.fail(field, Reason::ValueIsMandatory);
                None
            }
            Field::Absent => {
                if !self.object.contains_key(field) {
                    self.fail(field, Reason::ValueIsMandatory);
                }
                None
            }
        }
    }

    /// A boolean field (`true`/`false`, or the strings "true"/"false").
    pub fn boolean(&mut self, field: &str) -> Field<bool> {
        self.read(field, |v| match v {
            Value::Bool(b) => Some(*b),
            Value::String(s) if s == "true" => Some(true),
            Value::String(s) if s == "false" => Some(false),
            _ => None,
        })
    }

    /// An integer field (a JSON integer or an integer string).
    pub fn integer(&mut self, field: &str) -> Field<i64> {
        self.read(field, |v| match v {
            Value::Number(n) => n.as_i64(),
            Value::String(s) => s.trim().parse().ok(),
            _ => None,
        })
    }

    /// An exact decimal field (a JSON number or a numeric string).
    pub fn decimal(&mut self, field: &str) -> Field<Decimal> {
        self.read(field, |v| parse_decimal(v).ok())
    }

    /// An object field.
    pub fn object(&mut self, field: &str) -> Field<&'a Map<String, Value>> {
        self.read(field, Value::as_object)
    }

    /// An array field.
    pub fn array(&mut self, field: &str) -> Field<&'a Vec<Value>> {
        self.read(field, Value::as_array)
    }

    /// Merges the errors of a nested reader.
    pub fn absorb(&mut self, other: Fields<'_>) {
        for error in other.errors.errors() {
            self.errors.push(error.field.clone(), error.reason);
        }
    }

    /// Returns `Ok(value)` when no field was refused.
    pub fn finish<T>(self, value: T) -> Result<T, ApiError> {
        self.errors.into_result(value).map_err(ApiError::Validation)
    }
}

//! The store's errors, each with a kind the HTTP layer maps to a status in one place.

use tally_core::ValidationErrors;

/// Why a store operation failed.
#[derive(Debug, Clone, thiserror::Error)]
pub enum StoreError {
    /// The object does not exist; the string names its kind (`customer`, `billable_metric`, `event`…).
    #[error("{0} not found")]
    NotFound(&'static str),
    /// The object's state forbids the action; the string is Lago's code (`not_voidable`…).
    #[error("not allowed: {0}")]
    NotAllowed(&'static str),
    /// The input breaks a rule checked against stored data (a duplicate code, say).
    #[error("invalid: {0}")]
    Invalid(ValidationErrors),
    /// The database was created by a newer tally.
    #[error(
        "the database is at schema version {found}, newer than this tally knows ({known}); upgrade tally"
    )]
    SchemaTooNew {
        /// Version found in the database.
        found: i64,
        /// Latest version this build knows.
        known: i64,
    },
    /// A configuration or usage mistake, such as an unsupported database URL.
    #[error("{0}")]
    Config(String),
    /// The writer has stopped (the server is shutting down).
    #[error("the store is shutting down")]
    Closed,
    /// The database failed; the message is for logs only.
    #[error("database error: {0}")]
    Database(String),
}

impl From<rusqlite::Error> for StoreError {
    fn from(error: rusqlite::Error) -> Self {
        StoreError::Database(error.to_string())
    }
}

impl From<ValidationErrors> for StoreError {
    fn from(errors: ValidationErrors) -> Self {
        StoreError::Invalid(errors)
    }
}

/// The result of a store operation.
pub type StoreResult<T> = Result<T, StoreError>;

//! The domain's error: what went wrong in words a caller can act on. Mapped to HTTP in exactly one
//! place (`consentry-server`'s `error.rs`) and to exit codes in the CLI.

use crate::ids::InvalidId;
use crate::ports::StoreError;

/// Why a domain operation failed.
#[derive(Debug, thiserror::Error)]
pub enum DomainError {
    /// A referenced entity does not exist (or is not visible to the caller).
    #[error("{what} {id} was not found")]
    NotFound {
        /// "organization", "tenant", "app profile", "app type", …
        what: &'static str,
        /// The ID as given.
        id: String,
    },
    /// The request conflicts with existing state.
    #[error("{0}")]
    Conflict(String),
    /// The caller may see the data but not do this (a viewer changing something, an organization's
    /// account doing what only the platform operator may). The message says who may.
    #[error("{0}")]
    Forbidden(String),
    /// An input is invalid.
    #[error("{field}: {message}")]
    Invalid {
        /// The input field, as named in the API.
        field: &'static str,
        /// What is wrong and what to do.
        message: String,
    },
    /// Storage failed. The inner message is for logs only.
    #[error(transparent)]
    Store(#[from] StoreError),
}

impl DomainError {
    /// Shorthand for an invalid field.
    pub fn invalid(field: &'static str, message: impl Into<String>) -> Self {
        Self::Invalid {
            field,
            message: message.into(),
        }
    }

    /// Wraps an identifier parse failure under the field it came from.
    pub fn bad_id(field: &'static str, e: InvalidId) -> Self {
        Self::invalid(field, e.to_string())
    }
}

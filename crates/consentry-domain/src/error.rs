//! The domain's errors: what went wrong in words a caller can act on, and the storage failure the
//! ports report ([`StoreError`]). Mapped once per surface: to the JSON API's answers
//! (`consentry-server`'s `error.rs`), to the browser's pages (the console's `console/error.rs`, also for
//! the callback and consent link pages) and to the CLI's message and exit code (its `main`).

use crate::ids::InvalidId;

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
    /// Microsoft could not be asked (a timeout, 5xx, 429): nothing was done; try again. The message
    /// says what was being asked and holds no secret.
    #[error("{0}")]
    Unavailable(String),
    /// Storage failed. The inner message is for logs only.
    #[error(transparent)]
    Store(#[from] StoreError),
    /// Consentry itself failed (a value it could not serialize, an invariant broken). The message
    /// is for logs only: each surface logs it once where it maps the error and answers a bare
    /// "internal error".
    #[error("internal error: {0}")]
    Internal(String),
}

impl DomainError {
    /// Shorthand for an invalid field.
    pub fn invalid(field: &'static str, message: impl Into<String>) -> Self {
        Self::Invalid {
            field,
            message: message.into(),
        }
    }

    /// Shorthand for an internal failure (the detail is for logs only).
    pub fn internal(detail: impl std::fmt::Display) -> Self {
        Self::Internal(detail.to_string())
    }

    /// Wraps an identifier parse failure under the field it came from.
    pub fn bad_id(field: &'static str, e: InvalidId) -> Self {
        Self::invalid(field, e.to_string())
    }
}

/// A storage failure, free of any backend type. `Backend` messages are for logs only, never for clients.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    /// A row with the same key (or unique name) exists.
    #[error("{0} already exists")]
    Conflict(String),
    /// A row to change does not exist.
    #[error("{0} not found")]
    NotFound(String),
    /// A pagination cursor could not be decoded.
    #[error("the page cursor is not valid: ask for the first page again")]
    BadCursor,
    /// A sealed secret could not be opened (wrong master key or tampered data).
    #[error("a stored secret could not be unsealed: {0}")]
    Sealing(String),
    /// The database failed (I/O, constraint, connection). Internal detail for logs.
    #[error("storage backend error: {0}")]
    Backend(String),
}

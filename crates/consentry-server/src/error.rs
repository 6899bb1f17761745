//! The one place where errors become HTTP responses. Clients get a stable code and a human message;
//! internal details go to one log line, never to the response.

use axum::Json;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use consentry_domain::{DomainError, StoreError};
use serde::Serialize;

/// An error on its way to the client.
#[derive(Debug)]
pub enum ApiError {
    /// A domain failure.
    Domain(DomainError),
    /// The request itself is malformed (bad JSON, bad query, bad path parameter).
    BadRequest {
        /// The field or parameter, when known.
        field: Option<String>,
        /// What was wrong.
        message: String,
    },
    /// No or wrong credentials.
    Unauthorized(String),
    /// No route.
    RouteNotFound,
    /// The body is larger than the configured limit.
    PayloadTooLarge,
}

impl From<DomainError> for ApiError {
    fn from(e: DomainError) -> Self {
        Self::Domain(e)
    }
}

#[derive(Serialize)]
struct Body<'a> {
    error: ErrorBody<'a>,
}

#[derive(Serialize)]
struct ErrorBody<'a> {
    code: &'a str,
    message: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    field: Option<String>,
}

impl ApiError {
    /// The status, stable code, message and field for this error. Exhaustive on purpose: a new
    /// variant must decide how it is shown.
    fn parts(&self) -> (StatusCode, &'static str, String, Option<String>) {
        match self {
            ApiError::Domain(DomainError::NotFound { what, id }) => (
                StatusCode::NOT_FOUND,
                "not_found",
                format!("{what} {id} was not found"),
                None,
            ),
            ApiError::Domain(DomainError::Conflict(m)) => {
                (StatusCode::CONFLICT, "conflict", m.clone(), None)
            }
            ApiError::Domain(DomainError::Invalid { field, message }) => (
                StatusCode::UNPROCESSABLE_ENTITY,
                "invalid",
                format!("{field}: {message}"),
                Some((*field).to_string()),
            ),
            ApiError::Domain(DomainError::Store(e)) => store_parts(e),
            ApiError::BadRequest { field, message } => (
                StatusCode::BAD_REQUEST,
                "bad_request",
                message.clone(),
                field.clone(),
            ),
            ApiError::Unauthorized(m) => {
                (StatusCode::UNAUTHORIZED, "unauthorized", m.clone(), None)
            }
            ApiError::PayloadTooLarge => (
                StatusCode::PAYLOAD_TOO_LARGE,
                "payload_too_large",
                "the request body is larger than the server accepts (max_body_bytes)".into(),
                None,
            ),
            ApiError::RouteNotFound => (
                StatusCode::NOT_FOUND,
                "route_not_found",
                "no such endpoint; see /api/v1 for the API's routes".into(),
                None,
            ),
        }
    }
}

fn store_parts(e: &StoreError) -> (StatusCode, &'static str, String, Option<String>) {
    match e {
        StoreError::Conflict(what) => (
            StatusCode::CONFLICT,
            "conflict",
            format!("{what} already exists"),
            None,
        ),
        StoreError::NotFound(what) => (
            StatusCode::NOT_FOUND,
            "not_found",
            format!("{what} not found"),
            None,
        ),
        StoreError::BadCursor => (
            StatusCode::UNPROCESSABLE_ENTITY,
            "invalid",
            e.to_string(),
            Some("after".into()),
        ),
        StoreError::Sealing(_) | StoreError::Backend(_) => (
            StatusCode::INTERNAL_SERVER_ERROR,
            "internal",
            "an internal error occurred; it has been logged".into(),
            None,
        ),
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let (status, code, message, field) = self.parts();
        if status.is_server_error() {
            // The detail (never sent to the client) is logged once, here.
            tracing::error!(error.code = code, error.detail = %DetailFor(&self), "request failed");
        }
        (
            status,
            Json(Body {
                error: ErrorBody {
                    code,
                    message,
                    field,
                },
            }),
        )
            .into_response()
    }
}

struct DetailFor<'a>(&'a ApiError);

impl std::fmt::Display for DetailFor<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self.0 {
            ApiError::Domain(e) => write!(f, "{e}"),
            other => write!(f, "{other:?}"),
        }
    }
}

/// `Result` for handlers.
pub type ApiResult<T> = Result<T, ApiError>;

//! The one place where errors become HTTP responses. Clients get a stable code and a human message;
//! internal details go to one log line, never to the response.

use axum::Json;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use consentry_domain::{DomainError, ProfileId, ReasonView, StatusReason, StoreError};
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
    /// Something the caller may not see or that does not exist (the message names it).
    NotFound(String),
    /// An app profile cannot serve the request: its reason says why and what to do.
    ProfileInvalid {
        /// The profile.
        profile_id: ProfileId,
        /// Why.
        reason: StatusReason,
    },
    /// Microsoft did not answer in time; nothing changed.
    Unavailable(String),
    /// Consentry failed; the detail is logged, never sent.
    Internal(String),
}

impl From<DomainError> for ApiError {
    fn from(e: DomainError) -> Self {
        Self::Domain(e)
    }
}

/// The body of every error answer (`ErrorResponse` in the OpenAPI document).
#[derive(Debug, Serialize, utoipa::ToSchema)]
#[schema(as = ErrorResponse)]
pub struct Body<'a> {
    /// What went wrong.
    error: ErrorBody<'a>,
}

/// An error's details (`ErrorDetail` in the OpenAPI document).
#[derive(Debug, Serialize, utoipa::ToSchema)]
#[schema(as = ErrorDetail)]
pub struct ErrorBody<'a> {
    /// Stable code: `bad_request`, `unauthorized`, `forbidden`, `not_found`, `route_not_found`,
    /// `conflict`, `invalid`, `profile_invalid`, `payload_too_large`, `identity_platform_unavailable`
    /// or `internal`.
    #[schema(value_type = String)]
    code: &'a str,
    /// What was wrong and what to do, for people.
    message: String,
    /// The field or parameter at fault, when known.
    #[serde(skip_serializing_if = "Option::is_none")]
    field: Option<String>,
    /// `profile_invalid`: the app profile that cannot serve the request.
    #[serde(skip_serializing_if = "Option::is_none")]
    profile_id: Option<ProfileId>,
    /// `profile_invalid`: why, and what to do.
    #[serde(skip_serializing_if = "Option::is_none")]
    reason: Option<ReasonView>,
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
            ApiError::Domain(DomainError::Forbidden(m)) => {
                (StatusCode::FORBIDDEN, "forbidden", m.clone(), None)
            }
            ApiError::Domain(DomainError::Store(e)) => store_parts(e),
            ApiError::Domain(DomainError::Unavailable(m)) => (
                StatusCode::SERVICE_UNAVAILABLE,
                "identity_platform_unavailable",
                m.clone(),
                None,
            ),
            ApiError::Domain(DomainError::Internal(_)) | ApiError::Internal(_) => internal(),
            ApiError::BadRequest { field, message } => (
                StatusCode::BAD_REQUEST,
                "bad_request",
                message.clone(),
                field.clone(),
            ),
            ApiError::Unauthorized(m) => {
                (StatusCode::UNAUTHORIZED, "unauthorized", m.clone(), None)
            }
            ApiError::NotFound(m) => (StatusCode::NOT_FOUND, "not_found", m.clone(), None),
            ApiError::ProfileInvalid { profile_id, .. } => (
                StatusCode::CONFLICT,
                "profile_invalid",
                format!(
                    "the app profile {profile_id} is not valid: re-authorize it or fix the cause its reason names"
                ),
                None,
            ),
            ApiError::Unavailable(m) => (
                StatusCode::SERVICE_UNAVAILABLE,
                "identity_platform_unavailable",
                format!("Microsoft did not answer in time ({m}); try again in a few seconds"),
                None,
            ),
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
        StoreError::Sealing(_) | StoreError::Backend(_) => internal(),
    }
}

/// The answer to every internal failure: a bare 500 with a generic message (the detail is logged).
fn internal() -> (StatusCode, &'static str, String, Option<String>) {
    (
        StatusCode::INTERNAL_SERVER_ERROR,
        "internal",
        "an internal error occurred; it has been logged".into(),
        None,
    )
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let (status, code, message, field) = self.parts();
        let (profile_id, reason) = match &self {
            ApiError::ProfileInvalid { profile_id, reason } => {
                (Some(*profile_id), Some(ReasonView::from(reason)))
            }
            _ => (None, None),
        };
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
                    profile_id,
                    reason,
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
            ApiError::Internal(detail) => f.write_str(detail),
            other => write!(f, "{other:?}"),
        }
    }
}

/// `Result` for handlers.
pub type ApiResult<T> = Result<T, ApiError>;

/// The token API's refusals.
impl From<consentry_domain::TokenError> for ApiError {
    fn from(e: consentry_domain::TokenError) -> Self {
        match e {
            consentry_domain::TokenError::Unauthorized(m) => ApiError::Unauthorized(m),
            consentry_domain::TokenError::BadRequest(m) => ApiError::BadRequest {
                field: None,
                message: m,
            },
            consentry_domain::TokenError::NotFound(m) => ApiError::NotFound(m),
            consentry_domain::TokenError::ProfileInvalid { profile_id, reason } => {
                ApiError::ProfileInvalid { profile_id, reason }
            }
            consentry_domain::TokenError::Unavailable(m) => ApiError::Unavailable(m),
            consentry_domain::TokenError::Internal(m) => ApiError::Internal(m),
        }
    }
}

/// A response's status and body, for the unit tests of the error mappings.
#[cfg(test)]
pub(crate) async fn read(res: Response) -> (StatusCode, String) {
    let status = res.status();
    let body = axum::body::to_bytes(res.into_body(), 1 << 20)
        .await
        .unwrap();
    (status, String::from_utf8(body.to_vec()).unwrap())
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::{Value, json};

    async fn answer(e: ApiError) -> (StatusCode, Value) {
        let (status, body) = read(e.into_response()).await;
        (status, serde_json::from_str(&body).unwrap())
    }

    #[tokio::test]
    async fn an_internal_failure_is_a_bare_500_without_its_detail() {
        for e in [
            ApiError::from(DomainError::internal(
                "key must be a string at line 1 column 2",
            )),
            ApiError::from(DomainError::Store(StoreError::Backend(
                "relation \"profiles\" does not exist".into(),
            ))),
            ApiError::Internal("pool timed out".into()),
        ] {
            let (status, body) = answer(e).await;
            assert_eq!(status, StatusCode::INTERNAL_SERVER_ERROR);
            assert_eq!(
                body,
                json!({"error": {"code": "internal", "message": "an internal error occurred; it has been logged"}})
            );
        }
    }

    #[tokio::test]
    async fn a_real_conflict_is_a_409_with_its_message() {
        let (status, body) = answer(ApiError::from(DomainError::Conflict(
            "this app profile has no re-authorization in progress".into(),
        )))
        .await;
        assert_eq!(status, StatusCode::CONFLICT);
        assert_eq!(
            body,
            json!({"error": {"code": "conflict", "message": "this app profile has no re-authorization in progress"}})
        );
    }
}

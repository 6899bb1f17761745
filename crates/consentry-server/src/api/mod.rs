//! The versioned JSON API (`/api/v1`). Handlers parse input, call the domain services and shape output;
//! they hold no business rules.

pub mod audit;
pub mod catalog;
pub mod check;
pub mod keys;
pub mod metrics;
pub mod openapi;
pub mod orgs;
pub mod profiles;
pub mod reauth;
pub mod scan_profiles;
pub mod tenants;
pub mod tokens;
pub mod webhooks;

use axum::extract::rejection::{JsonRejection, PathRejection, QueryRejection};
use axum::extract::{FromRequest, FromRequestParts};
use serde::Serialize;

use crate::error::ApiError;

/// JSON body extractor whose rejections become [`ApiError::BadRequest`].
#[derive(Debug, FromRequest)]
#[from_request(via(axum::Json), rejection(ApiError))]
pub struct ApiJson<T>(pub T);

/// Query-string extractor whose rejections become [`ApiError::BadRequest`].
#[derive(Debug, FromRequestParts)]
#[from_request(via(axum::extract::Query), rejection(ApiError))]
pub struct ApiQuery<T>(pub T);

/// Path extractor whose rejections become [`ApiError::BadRequest`].
#[derive(Debug, FromRequestParts)]
#[from_request(via(axum::extract::Path), rejection(ApiError))]
pub struct ApiPath<T>(pub T);

impl<T: Serialize> axum::response::IntoResponse for ApiJson<T> {
    fn into_response(self) -> axum::response::Response {
        axum::Json(self.0).into_response()
    }
}

impl From<JsonRejection> for ApiError {
    fn from(r: JsonRejection) -> Self {
        if r.status() == axum::http::StatusCode::PAYLOAD_TOO_LARGE {
            return ApiError::PayloadTooLarge;
        }
        ApiError::BadRequest {
            field: None,
            message: format!(
                "the request body is not valid JSON for this endpoint: {}",
                r.body_text()
            ),
        }
    }
}

impl From<QueryRejection> for ApiError {
    fn from(r: QueryRejection) -> Self {
        ApiError::BadRequest {
            field: None,
            message: format!("bad query string: {}", r.body_text()),
        }
    }
}

impl From<PathRejection> for ApiError {
    fn from(r: PathRejection) -> Self {
        ApiError::BadRequest {
            field: None,
            message: format!("bad path parameter: {}", r.body_text()),
        }
    }
}

/// Loads the profile `raw` names if the caller may do `action` on it: a profile of another
/// organization is "not found", exactly like a missing one.
pub async fn visible_profile(
    st: &crate::AppState,
    caller: &consentry_domain::Caller,
    raw: &str,
    action: consentry_domain::Action,
) -> Result<consentry_domain::AppProfile, ApiError> {
    let id = parse_id("id", raw, consentry_domain::ProfileId::parse)?;
    let p = st.svc.profile(id).await?;
    caller.may_on(action, "app profile", &id.to_string(), p.org_id)?;
    Ok(p)
}

/// Loads the tenant `raw` (GUID or domain) names if the caller may do `action` on it: a tenant of
/// another organization is "not found", exactly like a missing one.
pub async fn visible_tenant(
    st: &crate::AppState,
    caller: &consentry_domain::Caller,
    field: &'static str,
    raw: &str,
    action: consentry_domain::Action,
) -> Result<consentry_domain::Tenant, ApiError> {
    let r = parse_id(field, raw, consentry_domain::TenantRef::parse)?;
    let t = st.svc.tenant(&r).await?;
    caller.may_on(action, "tenant", &r.to_string(), t.org_id)?;
    Ok(t)
}

/// Parses an identifier from a path or body field, naming the field on failure.
pub fn parse_id<T>(
    field: &'static str,
    raw: &str,
    parse: impl FnOnce(&str) -> Result<T, consentry_domain::InvalidId>,
) -> Result<T, ApiError> {
    parse(raw).map_err(|e| ApiError::BadRequest {
        field: Some(field.to_string()),
        message: e.to_string(),
    })
}

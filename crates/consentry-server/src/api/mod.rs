//! The versioned JSON API (`/api/v1`). Handlers parse input, call the domain services and shape output;
//! they hold no business rules.

pub mod audit;
pub mod campaigns;
pub mod catalog;
pub mod check;
pub mod graph_tokens;
pub mod keys;
pub mod mail;
pub mod metrics;
pub mod openapi;
pub mod orgs;
pub mod profiles;
pub mod reauth;
pub mod rollouts;
pub mod scan_profiles;
pub mod tenants;
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
        // Serialized here, so that a value that cannot be serialized is an internal failure answered
        // like any other (axum's own answer would carry serde's message to the client).
        match serde_json::to_vec(&self.0) {
            Ok(body) => (
                [(
                    axum::http::header::CONTENT_TYPE,
                    axum::http::HeaderValue::from_static("application/json"),
                )],
                body,
            )
                .into_response(),
            Err(e) => ApiError::from(consentry_domain::DomainError::internal(e)).into_response(),
        }
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

#[cfg(test)]
mod tests {
    use super::*;
    use axum::response::IntoResponse as _;

    #[tokio::test]
    async fn a_value_that_cannot_be_serialized_is_a_bare_500() {
        // JSON object keys must be strings: serde refuses this map.
        let unserializable: std::collections::BTreeMap<(u8, u8), u8> = [((1, 2), 3)].into();
        let res = ApiJson(unserializable).into_response();
        assert_eq!(res.status(), axum::http::StatusCode::INTERNAL_SERVER_ERROR);
        let body = axum::body::to_bytes(res.into_body(), 1 << 16)
            .await
            .unwrap();
        let v: serde_json::Value = serde_json::from_slice(&body).unwrap();
        assert_eq!(v["error"]["code"], "internal", "{v}");
        assert!(!v.to_string().contains("key must be"), "{v}");

        let res = ApiJson(serde_json::json!({"a": 1})).into_response();
        assert_eq!(res.status(), axum::http::StatusCode::OK);
        assert_eq!(res.headers()["content-type"], "application/json");
    }
}

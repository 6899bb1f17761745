//! `GET /api/v1/catalog` and `GET /api/v1/catalog/app-types/{key}`.

use axum::extract::State;
use consentry_domain::DomainError;
use serde_json::Value;

use super::{ApiJson, ApiPath};
use crate::AppState;
use crate::error::ApiResult;

/// The whole catalog in force.
pub async fn get_catalog(State(st): State<AppState>) -> ApiResult<ApiJson<Value>> {
    let c = st.svc.catalog();
    Ok(ApiJson(
        serde_json::to_value(c).map_err(DomainError::internal)?,
    ))
}

/// One app type.
pub async fn get_app_type(
    State(st): State<AppState>,
    ApiPath(key): ApiPath<String>,
) -> ApiResult<ApiJson<Value>> {
    let at = st
        .svc
        .catalog()
        .app_type(&key)
        .ok_or_else(|| DomainError::NotFound {
            what: "app type",
            id: key.chars().take(80).collect(),
        })?;
    Ok(ApiJson(
        serde_json::to_value(at).map_err(DomainError::internal)?,
    ))
}

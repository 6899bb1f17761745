//! `GET /api/v1/catalog` and `GET /api/v1/catalog/app-types/{key}`.

use axum::extract::State;
use consentry_domain::DomainError;
use serde_json::Value;

use super::{ApiJson, ApiPath};
use crate::AppState;
use crate::error::ApiResult;

/// The whole catalog in force.
#[utoipa::path(
    get,
    operation_id = "getCatalog",
    path = "/api/v1/catalog",
    tag = "catalog",
    responses(
        (status = OK, description = "The catalog in force", body = consentry_catalog::Catalog),
    )
)]
pub async fn get_catalog(State(st): State<AppState>) -> ApiResult<ApiJson<Value>> {
    let c = st.svc.catalog();
    Ok(ApiJson(
        serde_json::to_value(c).map_err(DomainError::internal)?,
    ))
}

/// One app type.
#[utoipa::path(
    get,
    operation_id = "getAppType",
    path = "/api/v1/catalog/app-types/{key}",
    tag = "catalog",
    params(("key" = String, Path, description = "The app type's key, e.g. `insights-m365`")),
    responses(
        (status = OK, description = "The app type", body = consentry_catalog::AppType),
    )
)]
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

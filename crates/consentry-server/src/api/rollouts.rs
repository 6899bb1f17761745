//! Permission rollouts: `GET /api/v1/rollouts` (every catalog version that added permissions, with its
//! counts), `GET /api/v1/rollouts/{version}` (one in full: who still lacks which permission, every
//! profile, completion over time) and `GET /api/v1/rollouts/{version}/export` (its profiles as CSV).
//! The domain's [`Rollouts`] service decides; the console's rollout pages and `consentry rollouts`
//! call it too. An organization's caller sees its own profiles only.

use axum::extract::State;
use axum::http::{HeaderValue, header};
use axum::response::{IntoResponse, Response};
use consentry_domain::{RolloutReport, RolloutSummary, Rollouts};

use super::{ApiJson, ApiPath};
use crate::AppState;
use crate::auth::ApiCaller;
use crate::error::{ApiError, ApiResult};

/// A rollout's ID from the path: its catalog version.
fn version(raw: &str) -> Result<u32, ApiError> {
    raw.parse::<u32>().map_err(|_| ApiError::BadRequest {
        field: Some("version".into()),
        message: format!(
            "`{}` is not a rollout: a rollout is named by the catalog version that added its permissions (a whole number)",
            raw.chars().take(40).collect::<String>()
        ),
    })
}

/// Every rollout, newest first, with its counts.
#[utoipa::path(
    get,
    operation_id = "listRollouts",
    path = "/api/v1/rollouts",
    tag = "rollouts",
    responses(
        (status = OK, description = "Every catalog version that added permissions, newest first, with how far the profiles the caller sees are", body = crate::api::openapi::Items<RolloutSummary>),
    )
)]
pub async fn list(
    State(st): State<AppState>,
    ApiCaller(c): ApiCaller,
) -> ApiResult<ApiJson<serde_json::Value>> {
    let items = Rollouts::new(st.svc.clone()).list(&c).await?;
    Ok(ApiJson(serde_json::json!({ "items": items })))
}

/// One rollout in full.
#[utoipa::path(
    get,
    operation_id = "getRollout",
    path = "/api/v1/rollouts/{version}",
    tag = "rollouts",
    params(("version" = u32, Path, description = "The catalog version that added the permissions")),
    responses(
        (status = OK, description = "The rollout: counts, the tenants still lacking each permission, every profile and completion over time", body = RolloutReport),
        (status = NOT_FOUND, description = "The catalog has no rollout of that version (`not_found`)", body = crate::api::openapi::ErrorResponse),
    )
)]
pub async fn get(
    State(st): State<AppState>,
    ApiCaller(c): ApiCaller,
    ApiPath(raw): ApiPath<String>,
) -> ApiResult<ApiJson<RolloutReport>> {
    let report = Rollouts::new(st.svc.clone())
        .show(&c, version(&raw)?)
        .await?;
    Ok(ApiJson(report))
}

/// One rollout's profiles as CSV.
#[utoipa::path(
    get,
    operation_id = "exportRollout",
    path = "/api/v1/rollouts/{version}/export",
    tag = "rollouts",
    params(("version" = u32, Path, description = "The catalog version that added the permissions")),
    responses(
        (status = OK, description = "`text/csv`: tenant, domain, tenant_id, app_type, profile_id, state, missing (`;`-separated), failure, done_at", content_type = "text/csv", body = String),
        (status = NOT_FOUND, description = "The catalog has no rollout of that version (`not_found`)", body = crate::api::openapi::ErrorResponse),
    )
)]
pub async fn export(
    State(st): State<AppState>,
    ApiCaller(c): ApiCaller,
    ApiPath(raw): ApiPath<String>,
) -> ApiResult<Response> {
    let v = version(&raw)?;
    let report = Rollouts::new(st.svc.clone()).show(&c, v).await?;
    Ok(csv_response(&report, v))
}

/// A rollout's CSV as a download (the console's export link answers the same).
pub fn csv_response(report: &RolloutReport, version: u32) -> Response {
    let mut res = report.csv().into_response();
    let h = res.headers_mut();
    h.insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("text/csv; charset=utf-8"),
    );
    if let Ok(v) = HeaderValue::from_str(&format!(
        "attachment; filename=\"consentry-rollout-{version}.csv\""
    )) {
        h.insert(header::CONTENT_DISPOSITION, v);
    }
    res
}

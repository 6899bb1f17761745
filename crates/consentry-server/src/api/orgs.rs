//! Organizations: `GET|POST /api/v1/organizations`, `GET|PATCH|DELETE /api/v1/organizations/{id}`.

use axum::extract::State;
use axum::http::StatusCode;
use consentry_domain::audit::AuditAction;
use consentry_domain::{OrgId, Organization};
use serde::Deserialize;

use super::{ApiJson, ApiPath, parse_id};
use crate::AppState;
use crate::error::ApiResult;

/// Body of `POST /organizations`.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CreateOrg {
    name: String,
    #[serde(default)]
    modules: Vec<String>,
}

/// Body of `PATCH /organizations/{id}`.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PatchOrg {
    modules: Vec<String>,
}

/// Lists organizations.
pub async fn list(State(st): State<AppState>) -> ApiResult<ApiJson<serde_json::Value>> {
    let items = st.svc.organizations().await?;
    Ok(ApiJson(serde_json::json!({ "items": items })))
}

/// Creates an organization.
pub async fn create(
    State(st): State<AppState>,
    ApiJson(body): ApiJson<CreateOrg>,
) -> ApiResult<(StatusCode, ApiJson<Organization>)> {
    let org = st
        .svc
        .create_organization(&body.name, &body.modules)
        .await?;
    super::audit::record(
        &st,
        Some(org.id),
        AuditAction::OrganizationCreated,
        format!("organization:{}", org.id),
        serde_json::json!({ "name": org.name, "modules": org.modules }),
    )
    .await;
    Ok((StatusCode::CREATED, ApiJson(org)))
}

/// Reads one organization.
pub async fn get(
    State(st): State<AppState>,
    ApiPath(id): ApiPath<String>,
) -> ApiResult<ApiJson<Organization>> {
    let id = parse_id("id", &id, OrgId::parse)?;
    Ok(ApiJson(st.svc.organization(id).await?))
}

/// Changes an organization's modules.
pub async fn patch(
    State(st): State<AppState>,
    ApiPath(id): ApiPath<String>,
    ApiJson(body): ApiJson<PatchOrg>,
) -> ApiResult<ApiJson<Organization>> {
    let id = parse_id("id", &id, OrgId::parse)?;
    let org = st.svc.set_organization_modules(id, &body.modules).await?;
    super::audit::record(
        &st,
        Some(id),
        AuditAction::OrganizationUpdated,
        format!("organization:{id}"),
        serde_json::json!({ "modules": org.modules }),
    )
    .await;
    Ok(ApiJson(org))
}

/// Deletes an organization with no tenants.
pub async fn delete(
    State(st): State<AppState>,
    ApiPath(id): ApiPath<String>,
) -> ApiResult<StatusCode> {
    let id = parse_id("id", &id, OrgId::parse)?;
    st.svc.delete_organization(id).await?;
    super::audit::record(
        &st,
        Some(id),
        AuditAction::OrganizationDeleted,
        format!("organization:{id}"),
        serde_json::json!({}),
    )
    .await;
    Ok(StatusCode::NO_CONTENT)
}

//! Organizations: `GET|POST /api/v1/organizations`, `GET|PATCH|DELETE /api/v1/organizations/{id}`.

use axum::extract::State;
use axum::http::StatusCode;
use consentry_domain::audit::AuditAction;
use consentry_domain::{Action, OrgId, Organization};
use serde::Deserialize;

use super::{ApiJson, ApiPath, parse_id};
use crate::AppState;
use crate::auth::ApiCaller;
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
pub async fn list(
    State(st): State<AppState>,
    ApiCaller(c): ApiCaller,
) -> ApiResult<ApiJson<serde_json::Value>> {
    let mut items = st.svc.organizations().await?;
    items.retain(|o| c.sees(o.id));
    Ok(ApiJson(serde_json::json!({ "items": items })))
}

/// Creates an organization.
pub async fn create(
    State(st): State<AppState>,
    ApiCaller(c): ApiCaller,
    ApiJson(body): ApiJson<CreateOrg>,
) -> ApiResult<(StatusCode, ApiJson<Organization>)> {
    c.may(Action::ManagePlatform, None)?;
    let org = st
        .svc
        .create_organization(&body.name, &body.modules)
        .await?;
    super::audit::record(
        &st,
        &c.actor,
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
    ApiCaller(c): ApiCaller,
    ApiPath(id): ApiPath<String>,
) -> ApiResult<ApiJson<Organization>> {
    let id = parse_id("id", &id, OrgId::parse)?;
    c.may(Action::Read, Some(id))?;
    Ok(ApiJson(st.svc.organization(id).await?))
}

/// Changes an organization's modules.
pub async fn patch(
    State(st): State<AppState>,
    ApiCaller(c): ApiCaller,
    ApiPath(id): ApiPath<String>,
    ApiJson(body): ApiJson<PatchOrg>,
) -> ApiResult<ApiJson<Organization>> {
    let id = parse_id("id", &id, OrgId::parse)?;
    c.may(Action::ManageSettings, Some(id))?;
    let org = st.svc.set_organization_modules(id, &body.modules).await?;
    super::audit::record(
        &st,
        &c.actor,
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
    ApiCaller(c): ApiCaller,
    ApiPath(id): ApiPath<String>,
) -> ApiResult<StatusCode> {
    let id = parse_id("id", &id, OrgId::parse)?;
    c.may(Action::ManagePlatform, Some(id))?;
    st.svc.delete_organization(id).await?;
    super::audit::record(
        &st,
        &c.actor,
        Some(id),
        AuditAction::OrganizationDeleted,
        format!("organization:{id}"),
        serde_json::json!({}),
    )
    .await;
    Ok(StatusCode::NO_CONTENT)
}

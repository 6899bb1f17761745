//! Tenants: `GET|POST /api/v1/tenants`, `GET|DELETE /api/v1/tenants/{tenant}` (GUID or domain).

use axum::extract::State;
use axum::http::StatusCode;
use consentry_domain::{Action, DomainName, OrgId, Tenant, TenantId, TenantRef};
use serde::Deserialize;

use super::{ApiJson, ApiPath, ApiQuery, parse_id, visible_tenant};
use crate::AppState;
use crate::auth::ApiCaller;
use crate::error::ApiResult;

/// Query of `GET /tenants`.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ListQuery {
    org: Option<String>,
}

/// Body of `POST /tenants`.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ConnectTenant {
    org_id: String,
    tenant_id: String,
    primary_domain: String,
    display_name: Option<String>,
}

/// Lists tenants, optionally of one organization.
pub async fn list(
    State(st): State<AppState>,
    ApiCaller(c): ApiCaller,
    ApiQuery(q): ApiQuery<ListQuery>,
) -> ApiResult<ApiJson<serde_json::Value>> {
    let org = match q.org.as_deref() {
        Some(o) => {
            let o = parse_id("org", o, OrgId::parse)?;
            c.may(Action::Read, Some(o))?;
            Some(o)
        }
        None => c.org(),
    };
    let items = st.svc.tenants(org).await?;
    Ok(ApiJson(serde_json::json!({ "items": items })))
}

/// Connects a tenant to an organization.
pub async fn create(
    State(st): State<AppState>,
    ApiCaller(c): ApiCaller,
    ApiJson(b): ApiJson<ConnectTenant>,
) -> ApiResult<(StatusCode, ApiJson<Tenant>)> {
    let org = parse_id("org_id", &b.org_id, OrgId::parse)?;
    c.may(Action::ManageProfiles, Some(org))?;
    let tid = parse_id("tenant_id", &b.tenant_id, TenantId::parse)?;
    let domain = parse_id("primary_domain", &b.primary_domain, DomainName::parse)?;
    let t = st
        .svc
        .connect_tenant(org, tid, domain, b.display_name.as_deref())
        .await?;
    super::audit::record(
        &st,
        &c.actor,
        Some(t.org_id),
        consentry_domain::AuditAction::TenantCreated,
        format!("tenant:{}", t.id),
        serde_json::json!({ "domain": t.primary_domain.to_string() }),
    )
    .await;
    Ok((StatusCode::CREATED, ApiJson(t)))
}

/// Reads a tenant by GUID or domain.
pub async fn get(
    State(st): State<AppState>,
    ApiCaller(c): ApiCaller,
    ApiPath(t): ApiPath<String>,
) -> ApiResult<ApiJson<Tenant>> {
    Ok(ApiJson(
        visible_tenant(&st, &c, "tenant", &t, Action::Read).await?,
    ))
}

/// Disconnects a tenant with no profiles.
pub async fn delete(
    State(st): State<AppState>,
    ApiCaller(c): ApiCaller,
    ApiPath(t): ApiPath<String>,
) -> ApiResult<StatusCode> {
    let tenant = visible_tenant(&st, &c, "tenant", &t, Action::ManageProfiles).await?;
    st.svc.delete_tenant(&TenantRef::Id(tenant.id)).await?;
    super::audit::record(
        &st,
        &c.actor,
        Some(tenant.org_id),
        consentry_domain::AuditAction::TenantDeleted,
        format!("tenant:{}", tenant.id),
        serde_json::json!({ "domain": tenant.primary_domain.to_string() }),
    )
    .await;
    Ok(StatusCode::NO_CONTENT)
}

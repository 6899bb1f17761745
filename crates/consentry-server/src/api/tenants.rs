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
#[derive(Debug, Deserialize, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
#[serde(deny_unknown_fields)]
pub struct ListQuery {
    /// Only this organization's tenants (its ID).
    org: Option<String>,
}

/// Body of `POST /tenants`.
#[derive(Debug, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct ConnectTenant {
    /// The organization's ID.
    org_id: String,
    /// The Entra tenant ID (GUID).
    tenant_id: String,
    /// Its primary verified domain, e.g. `contoso.onmicrosoft.com`.
    primary_domain: String,
    /// Display name (default: the domain).
    display_name: Option<String>,
    /// The Microsoft cloud the tenant lives in (`global`, `usgov`, `usgov-dod`, `china`). Default:
    /// found from the tenant's OpenID metadata at Microsoft (an unknown tenant is refused, 422; a
    /// Microsoft that does not answer, 503). Given, it is taken as it is and nothing is asked.
    cloud: Option<String>,
}

/// The cloud a request names: a cloud of the table.
fn parse_cloud(field: &'static str, raw: &str) -> ApiResult<consentry_domain::CloudKey> {
    consentry_entra::clouds::Clouds::builtin()
        .parse_key(raw)
        .map_err(|m| consentry_domain::DomainError::invalid(field, m).into())
}

/// Lists tenants, optionally of one organization.
#[utoipa::path(
    get,
    operation_id = "listTenants",
    path = "/api/v1/tenants",
    tag = "tenants",
    params(ListQuery),
    responses(
        (status = OK, description = "The tenants the caller sees", body = crate::api::openapi::Items<Tenant>),
    )
)]
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
#[utoipa::path(
    post,
    operation_id = "connectTenant",
    path = "/api/v1/tenants",
    tag = "tenants",
    request_body = ConnectTenant,
    responses(
        (status = CREATED, description = "The connected tenant", body = Tenant),
        (status = FORBIDDEN, description = "Only the platform operator connects a tenant by typing its ID; an organization administrator uses \"Connect a Microsoft tenant\" in the console (`forbidden`)", body = crate::api::openapi::ErrorResponse),
        (status = CONFLICT, description = "The tenant is connected already (`conflict`)", body = crate::api::openapi::ErrorResponse),
        (status = UNPROCESSABLE_ENTITY, description = "A value is not acceptable (`invalid`), or Microsoft knows no such tenant", body = crate::api::openapi::ErrorResponse),
        (status = SERVICE_UNAVAILABLE, description = "Microsoft could not be asked which cloud the tenant lives in (`identity_platform_unavailable`); try again", body = crate::api::openapi::ErrorResponse),
    )
)]
pub async fn create(
    State(st): State<AppState>,
    ApiCaller(c): ApiCaller,
    ApiJson(b): ApiJson<ConnectTenant>,
) -> ApiResult<(StatusCode, ApiJson<Tenant>)> {
    let org = parse_id("org_id", &b.org_id, OrgId::parse)?;
    // Typing a tenant ID proves nothing: only the platform operator connects that way (the
    // tenant stays unverified); an organization administrator connects by consenting.
    c.may(Action::ConnectTypedTenant, Some(org))?;
    let tid = parse_id("tenant_id", &b.tenant_id, TenantId::parse)?;
    let domain = parse_id("primary_domain", &b.primary_domain, DomainName::parse)?;
    let cloud = b
        .cloud
        .as_deref()
        .map(|c| parse_cloud("cloud", c))
        .transpose()?;
    let placement = match &cloud {
        Some(c) => consentry_domain::Placement::In(c),
        None => consentry_domain::Placement::Discover(st.reauth.platform().as_ref()),
    };
    let t = st
        .svc
        .connect_tenant(org, tid, domain, b.display_name.as_deref(), placement)
        .await?;
    super::audit::record(
        &st,
        &c.actor,
        Some(t.org_id),
        consentry_domain::AuditAction::TenantCreated,
        format!("tenant:{}", t.id),
        serde_json::json!({ "domain": t.primary_domain.to_string(), "cloud": t.cloud.to_string() }),
    )
    .await;
    Ok((StatusCode::CREATED, ApiJson(t)))
}

/// Reads a tenant by GUID or domain.
#[utoipa::path(
    get,
    operation_id = "getTenant",
    path = "/api/v1/tenants/{tenant}",
    tag = "tenants",
    params(("tenant" = String, Path, description = "The tenant: its Entra tenant ID (GUID) or its primary domain")),
    responses(
        (status = OK, description = "The tenant", body = Tenant),
    )
)]
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
#[utoipa::path(
    delete,
    operation_id = "disconnectTenant",
    path = "/api/v1/tenants/{tenant}",
    tag = "tenants",
    params(("tenant" = String, Path, description = "The tenant: its Entra tenant ID (GUID) or its primary domain")),
    responses(
        (status = NO_CONTENT, description = "Disconnected"),
        (status = CONFLICT, description = "The tenant still has app profiles (`conflict`)", body = crate::api::openapi::ErrorResponse),
    )
)]
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

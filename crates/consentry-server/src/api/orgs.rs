//! Organizations: `GET|POST /api/v1/organizations`, `GET|PATCH|DELETE /api/v1/organizations/{id}`,
//! `POST /api/v1/organizations/{id}/invitations` (inviting its first admin).

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
#[derive(Debug, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct CreateOrg {
    /// Display name.
    name: String,
    /// Subscription modules (catalog module keys, e.g. `planner`).
    #[serde(default)]
    modules: Vec<String>,
    /// The services it subscribes to (catalog service keys): connecting a tenant offers their app
    /// types, checked.
    #[serde(default)]
    services: Vec<String>,
}

/// Body of `PATCH /organizations/{id}`.
#[derive(Debug, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct PatchOrg {
    /// The subscription modules from now on (catalog module keys); absent: unchanged.
    #[serde(default)]
    modules: Option<Vec<String>>,
    /// The subscribed services from now on (catalog service keys); absent: unchanged.
    #[serde(default)]
    services: Option<Vec<String>>,
}

/// Lists organizations.
#[utoipa::path(
    get,
    operation_id = "listOrganizations",
    path = "/api/v1/organizations",
    tag = "organizations",
    responses(
        (status = OK, description = "The organizations the caller sees", body = crate::api::openapi::Items<Organization>),
    )
)]
pub async fn list(
    State(st): State<AppState>,
    ApiCaller(c): ApiCaller,
) -> ApiResult<ApiJson<serde_json::Value>> {
    let mut items = st.svc.organizations().await?;
    items.retain(|o| c.sees(o.id));
    Ok(ApiJson(serde_json::json!({ "items": items })))
}

/// Creates an organization.
#[utoipa::path(
    post,
    operation_id = "createOrganization",
    path = "/api/v1/organizations",
    tag = "organizations",
    request_body = CreateOrg,
    responses(
        (status = CREATED, description = "The new organization (platform operator only)", body = Organization),
        (status = CONFLICT, description = "An organization of that name exists (`conflict`)", body = crate::api::openapi::ErrorResponse),
        (status = UNPROCESSABLE_ENTITY, description = "A name or module is not acceptable (`invalid`)", body = crate::api::openapi::ErrorResponse),
    )
)]
pub async fn create(
    State(st): State<AppState>,
    ApiCaller(c): ApiCaller,
    ApiJson(body): ApiJson<CreateOrg>,
) -> ApiResult<(StatusCode, ApiJson<Organization>)> {
    c.may(Action::ManagePlatform, None)?;
    let mut org = st
        .svc
        .create_organization(&body.name, &body.modules)
        .await?;
    if !body.services.is_empty() {
        org = st
            .svc
            .set_organization_services(org.id, &body.services)
            .await?;
    }
    super::audit::record(
        &st,
        &c.actor,
        Some(org.id),
        AuditAction::OrganizationCreated,
        format!("organization:{}", org.id),
        serde_json::json!({ "name": org.name, "modules": org.modules, "services": org.services }),
    )
    .await;
    Ok((StatusCode::CREATED, ApiJson(org)))
}

/// Reads one organization.
#[utoipa::path(
    get,
    operation_id = "getOrganization",
    path = "/api/v1/organizations/{id}",
    tag = "organizations",
    params(("id" = consentry_domain::OrgId, Path, description = "The organization's ID")),
    responses(
        (status = OK, description = "The organization", body = Organization),
    )
)]
pub async fn get(
    State(st): State<AppState>,
    ApiCaller(c): ApiCaller,
    ApiPath(id): ApiPath<String>,
) -> ApiResult<ApiJson<Organization>> {
    let id = parse_id("id", &id, OrgId::parse)?;
    c.may(Action::Read, Some(id))?;
    Ok(ApiJson(st.svc.organization(id).await?))
}

/// Changes an organization's modules and subscribed services.
#[utoipa::path(
    patch,
    operation_id = "updateOrganization",
    path = "/api/v1/organizations/{id}",
    tag = "organizations",
    params(("id" = consentry_domain::OrgId, Path, description = "The organization's ID")),
    request_body = PatchOrg,
    responses(
        (status = OK, description = "The organization with its new modules and services", body = Organization),
        (status = UNPROCESSABLE_ENTITY, description = "A module or service is not in the catalog, or neither is given (`invalid`)", body = crate::api::openapi::ErrorResponse),
    )
)]
pub async fn patch(
    State(st): State<AppState>,
    ApiCaller(c): ApiCaller,
    ApiPath(id): ApiPath<String>,
    ApiJson(body): ApiJson<PatchOrg>,
) -> ApiResult<ApiJson<Organization>> {
    let id = parse_id("id", &id, OrgId::parse)?;
    c.may(Action::ManageSettings, Some(id))?;
    if body.modules.is_none() && body.services.is_none() {
        return Err(consentry_domain::DomainError::invalid(
            "modules",
            "give the modules, the services or both to change",
        )
        .into());
    }
    let mut org = st.svc.organization(id).await?;
    if let Some(modules) = &body.modules {
        org = st.svc.set_organization_modules(id, modules).await?;
    }
    if let Some(services) = &body.services {
        org = st.svc.set_organization_services(id, services).await?;
    }
    super::audit::record(
        &st,
        &c.actor,
        Some(id),
        AuditAction::OrganizationUpdated,
        format!("organization:{id}"),
        serde_json::json!({ "modules": org.modules, "services": org.services }),
    )
    .await;
    Ok(ApiJson(org))
}

/// Deletes an organization with no tenants.
#[utoipa::path(
    delete,
    operation_id = "deleteOrganization",
    path = "/api/v1/organizations/{id}",
    tag = "organizations",
    params(("id" = consentry_domain::OrgId, Path, description = "The organization's ID")),
    responses(
        (status = NO_CONTENT, description = "Deleted (platform operator only)"),
        (status = CONFLICT, description = "The organization still has tenants (`conflict`)", body = crate::api::openapi::ErrorResponse),
    )
)]
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

/// An organization's "Sign in with Microsoft" settings (body and answer of
/// `GET|PUT /organizations/{id}/microsoft-sign-in`).
#[derive(Debug, serde::Serialize, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct MicrosoftSignInSettings {
    /// What a member of the organization's tenants who has no administrator role (Global
    /// Administrator or Privileged Role Administrator by default) gets when signing in with
    /// Microsoft: `viewer`, or `refused`. Already signed-in members keep their role until their next
    /// sign-in.
    members_without_admin_role: consentry_domain::MemberRule,
}

/// Reads an organization's "Sign in with Microsoft" settings.
#[utoipa::path(
    get,
    operation_id = "getMicrosoftSignIn",
    path = "/api/v1/organizations/{id}/microsoft-sign-in",
    tag = "organizations",
    params(("id" = consentry_domain::OrgId, Path, description = "The organization's ID")),
    responses(
        (status = OK, description = "The settings", body = MicrosoftSignInSettings),
    )
)]
pub async fn get_microsoft_sign_in(
    State(st): State<AppState>,
    ApiCaller(c): ApiCaller,
    ApiPath(id): ApiPath<String>,
) -> ApiResult<ApiJson<MicrosoftSignInSettings>> {
    let id = parse_id("id", &id, OrgId::parse)?;
    c.may(Action::Read, Some(id))?;
    Ok(ApiJson(MicrosoftSignInSettings {
        members_without_admin_role: st.svc.member_rule(id).await?,
    }))
}

/// Changes an organization's "Sign in with Microsoft" settings (organization administrators).
#[utoipa::path(
    put,
    operation_id = "putMicrosoftSignIn",
    path = "/api/v1/organizations/{id}/microsoft-sign-in",
    tag = "organizations",
    params(("id" = consentry_domain::OrgId, Path, description = "The organization's ID")),
    request_body = MicrosoftSignInSettings,
    responses(
        (status = OK, description = "The settings as saved", body = MicrosoftSignInSettings),
    )
)]
pub async fn put_microsoft_sign_in(
    State(st): State<AppState>,
    ApiCaller(c): ApiCaller,
    ApiPath(id): ApiPath<String>,
    ApiJson(body): ApiJson<MicrosoftSignInSettings>,
) -> ApiResult<ApiJson<MicrosoftSignInSettings>> {
    let id = parse_id("id", &id, OrgId::parse)?;
    c.may(Action::ManageSettings, Some(id))?;
    st.svc
        .set_member_rule(id, body.members_without_admin_role)
        .await?;
    super::audit::record(
        &st,
        &c.actor,
        Some(id),
        AuditAction::OrganizationUpdated,
        format!("organization:{id}"),
        serde_json::json!({ "members_without_admin_role": body.members_without_admin_role }),
    )
    .await;
    Ok(ApiJson(body))
}

/// Body of `POST /organizations/{id}/invitations`.
#[derive(Debug, Default, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct CreateInvitation {
    /// Whom the link is meant for: recorded, and the link is emailed there when email is configured
    /// (`emailed` in the answer says whether it was).
    #[serde(default)]
    email: Option<String>,
}

/// A new invitation: the single-use link, shown only in this answer.
#[derive(Debug, serde::Serialize, utoipa::ToSchema)]
pub struct InvitationCreated {
    /// The organization.
    org_id: String,
    /// The link to send to the organization's first admin: opening it lets them choose a user
    /// name and password for an organization-admin account. Single use.
    url: String,
    /// When the link expires (72 hours).
    #[serde(with = "time::serde::rfc3339")]
    expires_at: time::OffsetDateTime,
    /// Whether the link was queued for email to the address given (email is configured).
    emailed: bool,
}

/// Invites an organization's first admin (platform operator only).
#[utoipa::path(
    post,
    operation_id = "createInvitation",
    path = "/api/v1/organizations/{id}/invitations",
    tag = "organizations",
    params(("id" = consentry_domain::OrgId, Path, description = "The organization's ID")),
    request_body = CreateInvitation,
    responses(
        (status = CREATED, description = "The single-use link (shown once)", body = InvitationCreated),
        (status = UNPROCESSABLE_ENTITY, description = "The email address is not acceptable (`invalid`)", body = crate::api::openapi::ErrorResponse),
    )
)]
pub async fn invite(
    State(st): State<AppState>,
    ApiCaller(c): ApiCaller,
    ApiPath(id): ApiPath<String>,
    ApiJson(body): ApiJson<CreateInvitation>,
) -> ApiResult<(StatusCode, ApiJson<InvitationCreated>)> {
    let id = parse_id("id", &id, OrgId::parse)?;
    let created = st.invitations.create(&c, id, body.email.as_deref()).await?;
    Ok((
        StatusCode::CREATED,
        ApiJson(InvitationCreated {
            org_id: created.org_id.to_string(),
            url: created.url,
            expires_at: created.expires_at,
            emailed: created.emailed,
        }),
    ))
}

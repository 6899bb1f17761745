//! Consent campaigns: `GET|POST /api/v1/campaigns`, `GET /api/v1/campaigns/{id}`,
//! `POST /api/v1/campaigns/{id}/cancel`, `POST /api/v1/campaigns/{id}/tenants/{tenant}/resend[?lifetime_days=N]` and
//! `GET /api/v1/campaigns/{id}/tenants/{tenant}/link`. The domain's [`Campaigns`] service decides;
//! the console's campaign pages and `consentry campaigns` call it too. Answers that carry a tenant's
//! link (a credential) are `Cache-Control: no-store`.

use axum::extract::State;
use axum::http::StatusCode;
use consentry_domain::{
    CampaignId, CampaignReport, CampaignRequest, CampaignScope, CampaignSummary, CampaignTenant,
    OrgId, StartedCampaign, TenantId, TenantRef,
};
use serde::{Deserialize, Serialize};

use super::{ApiJson, ApiPath, ApiQuery, parse_id};
use crate::AppState;
use crate::auth::ApiCaller;
use crate::error::{ApiError, ApiResult};
use crate::security::NoStore;

/// Body of the start call.
#[derive(Debug, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct StartCampaign {
    /// `rollout` (with `rollout`: its catalog version) or `invalid` (every invalid profile).
    scope: String,
    /// The rollout's catalog version, for `scope = rollout`.
    rollout: Option<u32>,
    /// The organization (required for the platform operator; an organization's account may omit it).
    organization_id: Option<String>,
    /// Only this tenant (ID or verified domain).
    tenant: Option<String>,
    /// Days the links work (1–90, default 14).
    lifetime_days: Option<u32>,
    /// Hours between reminders (0: none; default 72).
    remind_every_hours: Option<u32>,
    /// Queue an invitation to each tenant's contacts (default true).
    send_invitations: Option<bool>,
}

/// A tenant's link.
#[derive(Serialize, utoipa::ToSchema)]
#[schema(as = CampaignLinkUrl)]
pub struct LinkUrl {
    /// The link: whoever holds it may consent for the tenant's profiles of the campaign.
    url: String,
}

impl std::fmt::Debug for LinkUrl {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("LinkUrl")
            .field("url", &"[redacted]")
            .finish()
    }
}

/// Query of the resend call.
#[derive(Debug, Default, Deserialize, utoipa::IntoParams)]
#[serde(deny_unknown_fields)]
pub struct Resend {
    /// Days the link works from now (default: the campaign's lifetime).
    lifetime_days: Option<u32>,
}

fn scope_of(b: &StartCampaign) -> Result<CampaignScope, ApiError> {
    match (b.scope.as_str(), b.rollout) {
        ("rollout", Some(version)) => Ok(CampaignScope::Rollout { version }),
        ("rollout", None) => Err(ApiError::BadRequest {
            field: Some("rollout".into()),
            message: "a rollout campaign names the rollout: its catalog version".into(),
        }),
        ("invalid", None) => Ok(CampaignScope::Invalid),
        ("invalid", Some(_)) => Err(ApiError::BadRequest {
            field: Some("rollout".into()),
            message: "a campaign of every invalid profile names no rollout".into(),
        }),
        _ => Err(ApiError::BadRequest {
            field: Some("scope".into()),
            message: "scope must be `rollout` or `invalid`".into(),
        }),
    }
}

/// Every campaign the caller sees, newest first.
#[utoipa::path(
    get,
    operation_id = "listCampaigns",
    path = "/api/v1/campaigns",
    tag = "campaigns",
    responses(
        (status = OK, description = "Campaigns, newest first, with their counts", body = crate::api::openapi::Items<CampaignSummary>),
    )
)]
pub async fn list(
    State(st): State<AppState>,
    ApiCaller(c): ApiCaller,
) -> ApiResult<ApiJson<serde_json::Value>> {
    let items = st.campaigns.list(&c).await?;
    Ok(ApiJson(serde_json::json!({ "items": items })))
}

/// Starts a campaign: one link per affected tenant, invitations queued to the tenants' contacts.
#[utoipa::path(
    post,
    operation_id = "startCampaign",
    path = "/api/v1/campaigns",
    tag = "campaigns",
    request_body = StartCampaign,
    responses(
        (status = CREATED, description = "The campaign and each tenant's link (`Cache-Control: no-store`)", body = StartedCampaign),
        (status = BAD_REQUEST, description = "A malformed field (`scope`, `rollout`, `organization_id`, `tenant`)", body = crate::api::openapi::ErrorResponse),
        (status = UNPROCESSABLE_ENTITY, description = "Not acceptable: nothing to do (`scope`: no profile is affected), a lifetime out of range, no organization named", body = crate::api::openapi::ErrorResponse),
    )
)]
pub async fn start(
    State(st): State<AppState>,
    ApiCaller(c): ApiCaller,
    ApiJson(b): ApiJson<StartCampaign>,
) -> ApiResult<NoStore<(StatusCode, ApiJson<StartedCampaign>)>> {
    let scope = scope_of(&b)?;
    let org = b
        .organization_id
        .as_deref()
        .map(|o| parse_id("organization_id", o, OrgId::parse))
        .transpose()?;
    let tenant = b
        .tenant
        .as_deref()
        .map(|t| parse_id("tenant", t, TenantRef::parse))
        .transpose()?;
    let started = st
        .campaigns
        .start(
            &c,
            CampaignRequest {
                org,
                scope,
                tenant,
                lifetime_days: b.lifetime_days,
                remind_every_hours: b.remind_every_hours,
                send_invitations: b.send_invitations.unwrap_or(true),
            },
        )
        .await?;
    Ok(NoStore((StatusCode::CREATED, ApiJson(started))))
}

/// One campaign in full: each tenant and each profile's state.
#[utoipa::path(
    get,
    operation_id = "getCampaign",
    path = "/api/v1/campaigns/{id}",
    tag = "campaigns",
    params(("id" = CampaignId, Path, description = "The campaign's ID")),
    responses(
        (status = OK, description = "The campaign", body = CampaignReport),
        (status = NOT_FOUND, description = "No such campaign the caller sees (`not_found`)", body = crate::api::openapi::ErrorResponse),
    )
)]
pub async fn get(
    State(st): State<AppState>,
    ApiCaller(c): ApiCaller,
    ApiPath(id): ApiPath<String>,
) -> ApiResult<ApiJson<CampaignReport>> {
    let id = parse_id("id", &id, CampaignId::parse)?;
    Ok(ApiJson(st.campaigns.show(&c, id).await?))
}

/// Cancels a campaign: its links stop working, no reminder goes out.
#[utoipa::path(
    post,
    operation_id = "cancelCampaign",
    path = "/api/v1/campaigns/{id}/cancel",
    tag = "campaigns",
    params(("id" = CampaignId, Path, description = "The campaign's ID")),
    responses(
        (status = OK, description = "The cancelled campaign", body = CampaignSummary),
        (status = CONFLICT, description = "It was cancelled already (`conflict`)", body = crate::api::openapi::ErrorResponse),
    )
)]
pub async fn cancel(
    State(st): State<AppState>,
    ApiCaller(c): ApiCaller,
    ApiPath(id): ApiPath<String>,
) -> ApiResult<ApiJson<CampaignSummary>> {
    let id = parse_id("id", &id, CampaignId::parse)?;
    Ok(ApiJson(st.campaigns.cancel(&c, id).await?))
}

/// Sends a tenant's invitation again, its link working `lifetime_days` from now.
#[utoipa::path(
    post,
    operation_id = "resendCampaignInvitation",
    path = "/api/v1/campaigns/{id}/tenants/{tenant}/resend",
    tag = "campaigns",
    params(
        ("id" = CampaignId, Path, description = "The campaign's ID"),
        ("tenant" = TenantId, Path, description = "The tenant's ID"),
        Resend,
    ),
    responses(
        (status = OK, description = "The tenant, with its new expiry and invitation count", body = CampaignTenant),
        (status = UNPROCESSABLE_ENTITY, description = "Nothing left to do for the tenant, or it has no contacts", body = crate::api::openapi::ErrorResponse),
        (status = CONFLICT, description = "The campaign was cancelled", body = crate::api::openapi::ErrorResponse),
    )
)]
pub async fn resend(
    State(st): State<AppState>,
    ApiCaller(c): ApiCaller,
    ApiPath((id, tenant)): ApiPath<(String, String)>,
    ApiQuery(q): ApiQuery<Resend>,
) -> ApiResult<ApiJson<CampaignTenant>> {
    let id = parse_id("id", &id, CampaignId::parse)?;
    let tenant = parse_id("tenant", &tenant, TenantId::parse)?;
    let days = q.lifetime_days;
    Ok(ApiJson(st.campaigns.resend(&c, id, tenant, days).await?))
}

/// A tenant's link, to hand over by other means than email.
#[utoipa::path(
    get,
    operation_id = "getCampaignLink",
    path = "/api/v1/campaigns/{id}/tenants/{tenant}/link",
    tag = "campaigns",
    params(
        ("id" = CampaignId, Path, description = "The campaign's ID"),
        ("tenant" = TenantId, Path, description = "The tenant's ID"),
    ),
    responses(
        (status = OK, description = "The link (`Cache-Control: no-store`)", body = LinkUrl),
    )
)]
pub async fn link(
    State(st): State<AppState>,
    ApiCaller(c): ApiCaller,
    ApiPath((id, tenant)): ApiPath<(String, String)>,
) -> ApiResult<NoStore<ApiJson<LinkUrl>>> {
    let id = parse_id("id", &id, CampaignId::parse)?;
    let tenant = parse_id("tenant", &tenant, TenantId::parse)?;
    let url = st.campaigns.link(&c, id, tenant).await?;
    Ok(NoStore(ApiJson(LinkUrl { url })))
}

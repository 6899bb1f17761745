//! App profiles: list with filters and keyset pagination, create, read, delete, history.

use axum::extract::State;
use axum::http::StatusCode;
use consentry_domain::{
    Action, HistoryEvent, NewProfile, OrgId, Page, PageRequest, ProfileFilter, ProfileStatus,
    ProfileView, TenantRef,
};
use serde::Deserialize;

use super::{ApiJson, ApiPath, ApiQuery, parse_id, visible_profile, visible_tenant};
use crate::AppState;
use crate::auth::ApiCaller;
use crate::error::{ApiError, ApiResult};

/// Query of `GET /profiles`.
#[derive(Debug, Default, Deserialize, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
#[serde(deny_unknown_fields)]
pub struct ListQuery {
    /// Organization ID.
    pub org: Option<String>,
    /// Tenant GUID or domain.
    pub tenant: Option<String>,
    /// Comma-separated statuses.
    pub status: Option<String>,
    /// Service key.
    pub service: Option<String>,
    /// App type key.
    pub app_type: Option<String>,
    /// Search text.
    pub q: Option<String>,
    /// Page size.
    pub limit: Option<u32>,
    /// Cursor.
    pub after: Option<String>,
}

/// Parses a comma-separated status list, naming the bad value.
pub fn parse_statuses(s: &str) -> Result<Vec<ProfileStatus>, ApiError> {
    s.split(',')
        .map(str::trim)
        .filter(|x| !x.is_empty())
        .map(|x| {
            ProfileStatus::parse(x).ok_or_else(|| ApiError::BadRequest {
                field: Some("status".into()),
                message: format!(
                    "unknown status {:?}; use valid, attention, invalid or pending",
                    x.chars().take(40).collect::<String>()
                ),
            })
        })
        .collect()
}

/// Lists profiles.
#[utoipa::path(
    get,
    operation_id = "listProfiles",
    path = "/api/v1/profiles",
    tag = "profiles",
    params(ListQuery),
    responses(
        (status = OK, description = "One page of app profiles, oldest first; `next_cursor` (as `after`) gives the next", body = Page<ProfileView>),
        (status = UNPROCESSABLE_ENTITY, description = "A bad cursor or page size (`invalid`)", body = crate::api::openapi::ErrorResponse),
    )
)]
pub async fn list(
    State(st): State<AppState>,
    ApiCaller(c): ApiCaller,
    ApiQuery(q): ApiQuery<ListQuery>,
) -> ApiResult<ApiJson<Page<ProfileView>>> {
    let org = match q.org.as_deref() {
        Some(o) => {
            let o = parse_id("org", o, OrgId::parse)?;
            c.may(Action::Read, Some(o))?;
            st.svc.organization(o).await?;
            Some(o)
        }
        None => c.org(),
    };
    let mut filter = ProfileFilter {
        org_id: org,
        statuses: q
            .status
            .as_deref()
            .map(parse_statuses)
            .transpose()?
            .unwrap_or_default(),
        service: q.service.filter(|s| !s.is_empty()),
        app_type: q.app_type.filter(|s| !s.is_empty()),
        search: q.q.filter(|s| !s.trim().is_empty()),
        ..Default::default()
    };
    if let Some(t) = q.tenant.as_deref().filter(|t| !t.is_empty()) {
        filter.tenant_id = Some(visible_tenant(&st, &c, "tenant", t, Action::Read).await?.id);
    }
    let page = PageRequest {
        after: q.after.filter(|a| !a.is_empty()),
        limit: q.limit.unwrap_or(consentry_domain::DEFAULT_PAGE_SIZE),
    };
    let p = st.svc.profiles(&filter, &page).await?;
    let catalog = st.svc.catalog();
    Ok(ApiJson(Page {
        items: p
            .items
            .into_iter()
            .map(|x| ProfileView::new(x, catalog))
            .collect(),
        next_cursor: p.next_cursor,
    }))
}

/// Body of `POST /profiles`.
#[derive(Debug, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct CreateProfile {
    /// The tenant: its ID (GUID) or primary domain.
    tenant: String,
    /// Catalog key of the app type.
    app_type: String,
    /// Catalog key of the service (default: the app type's first).
    service: Option<String>,
}

/// Creates a profile (status invalid, "not yet authorized", until authorized).
#[utoipa::path(
    post,
    operation_id = "createProfile",
    path = "/api/v1/profiles",
    tag = "profiles",
    request_body = CreateProfile,
    responses(
        (status = CREATED, description = "The new app profile: `invalid`, not yet authorized, until it is authorized", body = ProfileView),
        (status = CONFLICT, description = "The tenant has a profile of that app type for that service (`conflict`)", body = crate::api::openapi::ErrorResponse),
        (status = UNPROCESSABLE_ENTITY, description = "An unknown app type or service (`invalid`)", body = crate::api::openapi::ErrorResponse),
    )
)]
pub async fn create(
    State(st): State<AppState>,
    ApiCaller(c): ApiCaller,
    ApiJson(b): ApiJson<CreateProfile>,
) -> ApiResult<(StatusCode, ApiJson<ProfileView>)> {
    let t = visible_tenant(&st, &c, "tenant", &b.tenant, Action::ManageProfiles).await?;
    let p = st
        .svc
        .create_profile(
            NewProfile {
                tenant: TenantRef::Id(t.id),
                app_type: b.app_type,
                service: b.service,
            },
            &c.actor,
        )
        .await?;
    Ok((
        StatusCode::CREATED,
        ApiJson(ProfileView::new(p, st.svc.catalog())),
    ))
}

/// Reads one profile.
#[utoipa::path(
    get,
    operation_id = "getProfile",
    path = "/api/v1/profiles/{id}",
    tag = "profiles",
    params(("id" = consentry_domain::ProfileId, Path, description = "The app profile's ID")),
    responses(
        (status = OK, description = "The app profile, with its reason and remediation in words", body = ProfileView),
    )
)]
pub async fn get(
    State(st): State<AppState>,
    ApiCaller(c): ApiCaller,
    ApiPath(id): ApiPath<String>,
) -> ApiResult<ApiJson<ProfileView>> {
    let p = visible_profile(&st, &c, &id, Action::Read).await?;
    Ok(ApiJson(detailed_view(&st, p).await?))
}

/// One profile's view with what only a single profile's read gives: the evidence kept with its
/// reason.
pub(crate) async fn detailed_view(
    st: &AppState,
    p: consentry_domain::AppProfile,
) -> ApiResult<ProfileView> {
    let evidence = st.svc.reason_evidence(&p).await?;
    Ok(ProfileView::new(p, st.svc.catalog()).with_evidence(evidence))
}

/// Deletes a profile.
#[utoipa::path(
    delete,
    operation_id = "deleteProfile",
    path = "/api/v1/profiles/{id}",
    tag = "profiles",
    params(("id" = consentry_domain::ProfileId, Path, description = "The app profile's ID")),
    responses(
        (status = NO_CONTENT, description = "Deleted"),
        (status = CONFLICT, description = "A scan profile uses it (`conflict`)", body = crate::api::openapi::ErrorResponse),
    )
)]
pub async fn delete(
    State(st): State<AppState>,
    ApiCaller(c): ApiCaller,
    ApiPath(id): ApiPath<String>,
) -> ApiResult<StatusCode> {
    let p = visible_profile(&st, &c, &id, Action::ManageProfiles).await?;
    st.svc.delete_profile(p.id).await?;
    st.graph_tokens.forget_profile(p.id);
    super::audit::record(
        &st,
        &c.actor,
        Some(p.org_id),
        consentry_domain::AuditAction::ProfileDeleted,
        format!("profile:{}", p.id),
        serde_json::json!({ "app_type": p.app_type, "tenant": p.tenant_id.to_string() }),
    )
    .await;
    Ok(StatusCode::NO_CONTENT)
}

/// Query of `GET /profiles/{id}/history`.
#[derive(Debug, Deserialize, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
#[serde(deny_unknown_fields)]
pub struct HistoryQuery {
    /// How many events (default 100).
    limit: Option<u32>,
}

/// A profile's history, newest first.
#[utoipa::path(
    get,
    operation_id = "getProfileHistory",
    path = "/api/v1/profiles/{id}/history",
    tag = "profiles",
    params(("id" = consentry_domain::ProfileId, Path, description = "The app profile's ID"), HistoryQuery),
    responses(
        (status = OK, description = "The profile's history, newest first", body = crate::api::openapi::Items<HistoryEvent>),
    )
)]
pub async fn history(
    State(st): State<AppState>,
    ApiCaller(c): ApiCaller,
    ApiPath(id): ApiPath<String>,
    ApiQuery(q): ApiQuery<HistoryQuery>,
) -> ApiResult<ApiJson<serde_json::Value>> {
    let p = visible_profile(&st, &c, &id, Action::Read).await?;
    let items: Vec<HistoryEvent> = st.svc.history(p.id, q.limit.unwrap_or(100)).await?;
    Ok(ApiJson(serde_json::json!({ "items": items })))
}

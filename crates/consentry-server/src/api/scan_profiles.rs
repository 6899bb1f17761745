//! Scan profiles and the Planner migration: `GET|POST /api/v1/tenants/{tenant}/scan-profiles`,
//! `GET|PUT|DELETE /api/v1/scan-profiles/{id}`, `GET /api/v1/scan-profiles/{id}/planner-readiness` and
//! `GET /api/v1/tenants/{tenant}/planner-readiness`. The rules live in `consentry_domain::scan`.

use axum::extract::State;
use axum::http::StatusCode;
use consentry_domain::{
    Action, Caller, NewScanProfile, PlannerReadiness, ProfileId, SavedScanProfile, ScanAuth,
    ScanProfile, ScanProfileEdit, ScanProfileId, ScanProfiles, TenantPlannerReadiness, TenantRef,
    Upn,
};
use serde::Deserialize;

use super::{ApiJson, ApiPath, parse_id, visible_tenant};
use crate::AppState;
use crate::auth::ApiCaller;
use crate::error::{ApiError, ApiResult};

fn service(st: &AppState) -> ScanProfiles {
    ScanProfiles::new(st.svc.clone())
}

/// The authentication method of `POST …/scan-profiles`.
#[derive(Debug, Deserialize, utoipa::ToSchema)]
#[schema(as = ScanProfileAuthentication)]
#[serde(tag = "method", rename_all = "snake_case", deny_unknown_fields)]
pub enum AuthBody {
    /// An app profile.
    AppProfile {
        /// Its ID.
        app_profile: String,
    },
    /// Records a scan profile configured in the classic UI (a service account plus a delegated app
    /// profile); the next save converts it. No password is accepted or stored.
    Classic {
        /// The service account's UPN.
        service_account: String,
        /// The additional delegated app profile.
        delegated_profile: String,
    },
    /// Records a scan profile configured in the classic UI in its other form (an app profile plus a
    /// delegated app profile); the next save converts it.
    ClassicAppProfile {
        /// The app profile.
        app_profile: String,
        /// The additional delegated app profile.
        delegated_profile: String,
    },
}

/// Body of `POST /tenants/{tenant}/scan-profiles`.
#[derive(Debug, Deserialize, utoipa::ToSchema)]
#[schema(as = NewScanProfileRequest)]
#[serde(deny_unknown_fields)]
pub struct CreateBody {
    /// Name, unique in the tenant (case-insensitive).
    name: String,
    /// Protected modules (catalog module keys, e.g. `planner`).
    #[serde(default)]
    modules: Vec<String>,
    /// How it authenticates.
    authentication: AuthBody,
    /// The backup setting "Planner data backup enabled".
    #[serde(default)]
    planner_backup_enabled: bool,
}

/// Body of `PUT /scan-profiles/{id}`: unset fields keep their value. Saving a classic scan profile
/// converts it to an app profile (`app_profile`, or the tenant's suitable one when unset).
#[derive(Debug, Default, Deserialize, utoipa::ToSchema)]
#[schema(as = ScanProfileEditRequest)]
#[serde(deny_unknown_fields)]
pub struct EditBody {
    /// New name.
    name: Option<String>,
    /// New protected modules.
    modules: Option<Vec<String>>,
    /// The app profile to authenticate with (converts a classic scan profile).
    app_profile: Option<String>,
    /// New "Planner data backup enabled".
    planner_backup_enabled: Option<bool>,
}

fn scan_id(raw: &str) -> Result<ScanProfileId, ApiError> {
    parse_id("id", raw, ScanProfileId::parse)
}

/// The tenant `raw` names, if the caller may do `action` on it (another organization's is "not found").
async fn tenant_ref(
    st: &AppState,
    c: &Caller,
    raw: &str,
    action: Action,
) -> Result<TenantRef, ApiError> {
    let t = visible_tenant(st, c, "tenant", raw, action).await?;
    Ok(TenantRef::Id(t.id))
}

/// The scan profile `raw` names, if the caller may do `action` on it (another organization's is "not
/// found", exactly like a missing one).
async fn visible_scan_profile(
    st: &AppState,
    c: &Caller,
    raw: &str,
    action: Action,
) -> Result<ScanProfile, ApiError> {
    let id = scan_id(raw)?;
    let sp = service(st).get(id).await?;
    c.may_on(action, "scan profile", raw, sp.org_id)?;
    Ok(sp)
}

/// A tenant's scan profiles, by name.
#[utoipa::path(
    get,
    operation_id = "listScanProfiles",
    path = "/api/v1/tenants/{tenant}/scan-profiles",
    tag = "scan profiles",
    params(("tenant" = String, Path, description = "The tenant: its Entra tenant ID (GUID) or its primary domain")),
    responses(
        (status = OK, description = "The tenant's scan profiles, by name", body = crate::api::openapi::Items<ScanProfile>),
    )
)]
pub async fn list(
    State(st): State<AppState>,
    ApiCaller(c): ApiCaller,
    ApiPath(tenant): ApiPath<String>,
) -> ApiResult<ApiJson<serde_json::Value>> {
    let t = tenant_ref(&st, &c, &tenant, Action::Read).await?;
    let items = service(&st).list(&t).await?;
    Ok(ApiJson(serde_json::json!({ "items": items })))
}

/// Creates a scan profile.
#[utoipa::path(
    post,
    operation_id = "createScanProfile",
    path = "/api/v1/tenants/{tenant}/scan-profiles",
    tag = "scan profiles",
    params(("tenant" = String, Path, description = "The tenant: its Entra tenant ID (GUID) or its primary domain")),
    request_body = CreateBody,
    responses(
        (status = CREATED, description = "The new scan profile", body = ScanProfile),
        (status = CONFLICT, description = "A scan profile of that name exists in the tenant (`conflict`)", body = crate::api::openapi::ErrorResponse),
        (status = UNPROCESSABLE_ENTITY, description = "A value is not acceptable, e.g. an app profile of another tenant (`invalid`)", body = crate::api::openapi::ErrorResponse),
    )
)]
pub async fn create(
    State(st): State<AppState>,
    ApiCaller(c): ApiCaller,
    ApiPath(tenant): ApiPath<String>,
    ApiJson(b): ApiJson<CreateBody>,
) -> ApiResult<(StatusCode, ApiJson<ScanProfile>)> {
    let tenant = tenant_ref(&st, &c, &tenant, Action::ManageProfiles).await?;
    let authentication = match b.authentication {
        AuthBody::AppProfile { app_profile } => ScanAuth::AppProfile {
            app_profile: parse_id("app_profile", &app_profile, ProfileId::parse)?,
        },
        AuthBody::Classic {
            service_account,
            delegated_profile,
        } => ScanAuth::Classic {
            service_account: parse_id("service_account", &service_account, Upn::parse)?,
            delegated_profile: parse_id("delegated_profile", &delegated_profile, ProfileId::parse)?,
        },
        AuthBody::ClassicAppProfile {
            app_profile,
            delegated_profile,
        } => ScanAuth::ClassicAppProfile {
            app_profile: parse_id("app_profile", &app_profile, ProfileId::parse)?,
            delegated_profile: parse_id("delegated_profile", &delegated_profile, ProfileId::parse)?,
        },
    };
    let sp = service(&st)
        .create(NewScanProfile {
            tenant,
            name: b.name,
            modules: b.modules,
            authentication,
            planner_backup_enabled: b.planner_backup_enabled,
        })
        .await?;
    Ok((StatusCode::CREATED, ApiJson(sp)))
}

/// Reads a scan profile.
#[utoipa::path(
    get,
    operation_id = "getScanProfile",
    path = "/api/v1/scan-profiles/{id}",
    tag = "scan profiles",
    params(("id" = consentry_domain::ScanProfileId, Path, description = "The scan profile's ID")),
    responses(
        (status = OK, description = "The scan profile", body = ScanProfile),
    )
)]
pub async fn get(
    State(st): State<AppState>,
    ApiCaller(c): ApiCaller,
    ApiPath(id): ApiPath<String>,
) -> ApiResult<ApiJson<ScanProfile>> {
    Ok(ApiJson(
        visible_scan_profile(&st, &c, &id, Action::Read).await?,
    ))
}

/// Edits and saves a scan profile (converting a classic one).
#[utoipa::path(
    put,
    operation_id = "saveScanProfile",
    path = "/api/v1/scan-profiles/{id}",
    tag = "scan profiles",
    params(("id" = consentry_domain::ScanProfileId, Path, description = "The scan profile's ID")),
    request_body = EditBody,
    responses(
        (status = OK, description = "The saved scan profile, and how a classic one was converted", body = SavedScanProfile),
        (status = CONFLICT, description = "The name is taken in the tenant (`conflict`)", body = crate::api::openapi::ErrorResponse),
        (status = UNPROCESSABLE_ENTITY, description = "A value is not acceptable, or Planner cannot be protected yet (`invalid`)", body = crate::api::openapi::ErrorResponse),
    )
)]
pub async fn put(
    State(st): State<AppState>,
    ApiCaller(c): ApiCaller,
    ApiPath(id): ApiPath<String>,
    ApiJson(b): ApiJson<EditBody>,
) -> ApiResult<ApiJson<SavedScanProfile>> {
    let id = visible_scan_profile(&st, &c, &id, Action::ManageProfiles)
        .await?
        .id;
    let edit = ScanProfileEdit {
        name: b.name,
        modules: b.modules,
        app_profile: b
            .app_profile
            .as_deref()
            .map(|p| parse_id("app_profile", p, ProfileId::parse))
            .transpose()?,
        planner_backup_enabled: b.planner_backup_enabled,
    };
    Ok(ApiJson(service(&st).save(id, edit).await?))
}

/// Deletes a scan profile.
#[utoipa::path(
    delete,
    operation_id = "deleteScanProfile",
    path = "/api/v1/scan-profiles/{id}",
    tag = "scan profiles",
    params(("id" = consentry_domain::ScanProfileId, Path, description = "The scan profile's ID")),
    responses(
        (status = NO_CONTENT, description = "Deleted"),
    )
)]
pub async fn delete(
    State(st): State<AppState>,
    ApiCaller(c): ApiCaller,
    ApiPath(id): ApiPath<String>,
) -> ApiResult<StatusCode> {
    let id = visible_scan_profile(&st, &c, &id, Action::ManageProfiles)
        .await?
        .id;
    service(&st).delete(id).await?;
    Ok(StatusCode::NO_CONTENT)
}

/// What a scan profile still lacks for Planner, each with its step.
#[utoipa::path(
    get,
    operation_id = "getScanProfilePlannerReadiness",
    path = "/api/v1/scan-profiles/{id}/planner-readiness",
    tag = "scan profiles",
    params(("id" = consentry_domain::ScanProfileId, Path, description = "The scan profile's ID")),
    responses(
        (status = OK, description = "What the scan profile still lacks for Planner, each with its step", body = PlannerReadiness),
    )
)]
pub async fn readiness(
    State(st): State<AppState>,
    ApiCaller(c): ApiCaller,
    ApiPath(id): ApiPath<String>,
) -> ApiResult<ApiJson<PlannerReadiness>> {
    Ok(ApiJson(
        service(&st)
            .planner_readiness(visible_scan_profile(&st, &c, &id, Action::Read).await?.id)
            .await?,
    ))
}

/// The Planner readiness of a tenant and each of its scan profiles.
#[utoipa::path(
    get,
    operation_id = "getTenantPlannerReadiness",
    path = "/api/v1/tenants/{tenant}/planner-readiness",
    tag = "scan profiles",
    params(("tenant" = String, Path, description = "The tenant: its Entra tenant ID (GUID) or its primary domain")),
    responses(
        (status = OK, description = "The Planner readiness of the tenant and each of its scan profiles", body = TenantPlannerReadiness),
    )
)]
pub async fn tenant_readiness(
    State(st): State<AppState>,
    ApiCaller(c): ApiCaller,
    ApiPath(tenant): ApiPath<String>,
) -> ApiResult<ApiJson<TenantPlannerReadiness>> {
    let t = tenant_ref(&st, &c, &tenant, Action::Read).await?;
    Ok(ApiJson(service(&st).tenant_readiness(&t).await?))
}

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
#[derive(Debug, Deserialize)]
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
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CreateBody {
    name: String,
    #[serde(default)]
    modules: Vec<String>,
    authentication: AuthBody,
    #[serde(default)]
    planner_backup_enabled: bool,
}

/// Body of `PUT /scan-profiles/{id}`: unset fields keep their value. Saving a classic scan profile
/// converts it to an app profile (`app_profile`, or the tenant's suitable one when unset).
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct EditBody {
    name: Option<String>,
    modules: Option<Vec<String>>,
    app_profile: Option<String>,
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
pub async fn tenant_readiness(
    State(st): State<AppState>,
    ApiCaller(c): ApiCaller,
    ApiPath(tenant): ApiPath<String>,
) -> ApiResult<ApiJson<TenantPlannerReadiness>> {
    let t = tenant_ref(&st, &c, &tenant, Action::Read).await?;
    Ok(ApiJson(service(&st).tenant_readiness(&t).await?))
}

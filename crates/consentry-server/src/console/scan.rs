//! Scan profiles in the console: a tenant's scan profiles with its Planner readiness, a scan profile's
//! detail with what is missing for Planner and the step for each, and the edit form whose save converts
//! a classic scan profile to an app profile. The rules live in `consentry_domain::scan`.

use askama::Template;
use axum::Form;
use axum::extract::{Path, Query, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Redirect, Response};
use consentry_domain::{
    Action, DomainError, PlannerReadiness, ProfileFilter, ProfileId, ReadinessItem, ScanAuth,
    ScanProfile, ScanProfileEdit, ScanProfileId, ScanProfiles, Tenant, TenantRef,
};
use serde::Deserialize;

use super::auth::Operator;
use super::error::{ConsoleError, html};
use super::pages::{Layout, when};
use crate::AppState;

fn service(st: &AppState) -> ScanProfiles {
    ScanProfiles::new(st.svc.clone())
}

/// The tenant `raw` names, if the account may do `action` on it (another organization's is "not found").
async fn visible_tenant(
    st: &AppState,
    op: &Operator,
    raw: &str,
    action: Action,
) -> Result<Tenant, ConsoleError> {
    let r = TenantRef::parse(raw).map_err(|e| ConsoleError::BadRequest(format!("tenant: {e}")))?;
    let t = st.svc.tenant(&r).await?;
    op.caller().may_on(action, "tenant", raw, t.org_id)?;
    Ok(t)
}

/// The scan profile `raw` names, if the account may do `action` on it (another organization's is "not
/// found", exactly like a missing one).
async fn visible_scan(
    st: &AppState,
    op: &Operator,
    raw: &str,
    action: Action,
) -> Result<ScanProfile, ConsoleError> {
    let id = ScanProfileId::parse(raw).map_err(|e| ConsoleError::BadRequest(format!("id: {e}")))?;
    let sp = service(st).get(id).await?;
    op.caller()
        .may_on(action, "scan profile", &id.to_string(), sp.org_id)?;
    Ok(sp)
}

/// A scan profile as a row or a header.
struct Row {
    id: String,
    name: String,
    modules: String,
    method: String,
    classic: bool,
    planner_backup: bool,
    ready: bool,
    missing: usize,
}

fn module_names(st: &AppState, sp: &ScanProfile) -> String {
    let c = st.svc.catalog();
    sp.modules
        .iter()
        .map(|m| {
            c.module(m)
                .map(|x| x.name.clone())
                .unwrap_or_else(|| m.clone())
        })
        .collect::<Vec<_>>()
        .join(", ")
}

fn method_text(a: &ScanAuth) -> String {
    match a {
        ScanAuth::AppProfile { app_profile } => format!("App profile {app_profile}"),
        ScanAuth::Classic {
            service_account,
            delegated_profile,
        } => format!(
            "Classic: service account {} with the delegated app profile {delegated_profile}",
            service_account.as_str()
        ),
        ScanAuth::ClassicAppProfile {
            app_profile,
            delegated_profile,
        } => format!(
            "Classic: app profile {app_profile} with the delegated app profile {delegated_profile}"
        ),
    }
}

fn row(st: &AppState, sp: &ScanProfile, r: &PlannerReadiness) -> Row {
    Row {
        id: sp.id.to_string(),
        name: sp.name.clone(),
        modules: module_names(st, sp),
        method: method_text(&sp.authentication),
        classic: sp.authentication.is_classic(),
        planner_backup: sp.planner_backup_enabled,
        ready: r.ready,
        missing: r.missing.len(),
    }
}

#[derive(Template)]
#[template(path = "console/scan_profiles.html")]
struct ListPage {
    layout: Layout,
    tenant: String,
    tenant_id: String,
    rows: Vec<Row>,
    tenant_missing: Vec<ReadinessItem>,
}

/// `GET /console/tenants/{tenant}/scan-profiles`.
pub async fn list(
    State(st): State<AppState>,
    op: Operator,
    Path(tenant): Path<String>,
) -> Result<Response, ConsoleError> {
    let layout = Layout::new(&st, &op).await?;
    let t = visible_tenant(&st, &op, &tenant, Action::Read).await?;
    let svc = service(&st);
    let readiness = svc.tenant_readiness(&TenantRef::Id(t.id)).await?;
    let sps = svc.list(&TenantRef::Id(t.id)).await?;
    let rows = sps
        .iter()
        .filter_map(|sp| {
            readiness
                .scan_profiles
                .iter()
                .find(|r| r.scan_profile_id == sp.id)
                .map(|r| row(&st, sp, r))
        })
        .collect();
    Ok(html(
        StatusCode::OK,
        &ListPage {
            layout,
            tenant: t.primary_domain.to_string(),
            tenant_id: t.id.to_string(),
            rows,
            tenant_missing: readiness.missing,
        },
    ))
}

#[derive(Template)]
#[template(path = "console/scan_profile.html")]
struct DetailPage {
    layout: Layout,
    tenant: String,
    tenant_id: String,
    row: Row,
    app_profile: Option<String>,
    missing: Vec<ReadinessItem>,
    updated: String,
    notice: Option<String>,
    can_edit: bool,
}

/// Query of the detail page (a note after a save).
#[derive(Debug, Default, Deserialize)]
pub struct DetailQuery {
    saved: Option<String>,
    converted: Option<String>,
}

/// `GET /console/scan-profiles/{id}`: the scan profile with its Planner readiness.
pub async fn detail(
    State(st): State<AppState>,
    op: Operator,
    Path(id): Path<String>,
    Query(q): Query<DetailQuery>,
) -> Result<Response, ConsoleError> {
    let layout = Layout::new(&st, &op).await?;
    let sp = visible_scan(&st, &op, &id, Action::Read).await?;
    let can_edit = op.caller().can(Action::ManageProfiles, Some(sp.org_id));
    let t = st.svc.tenant(&TenantRef::Id(sp.tenant_id)).await?;
    let r = service(&st).planner_readiness(sp.id).await?;
    let notice = match (q.converted.as_deref(), q.saved.as_deref()) {
        (Some(p), _) => Some(format!(
            "Saved. The authentication method was converted from the classic method to the app profile {}.",
            ProfileId::parse(p)
                .map(|p| p.to_string())
                .unwrap_or_default()
        )),
        (None, Some(_)) => Some("Saved.".to_string()),
        _ => None,
    };
    Ok(html(
        StatusCode::OK,
        &DetailPage {
            layout,
            tenant: t.primary_domain.to_string(),
            tenant_id: t.id.to_string(),
            row: row(&st, &sp, &r),
            app_profile: r.app_profile.map(|p| p.to_string()),
            missing: r.missing,
            updated: when(&sp.updated_at),
            notice,
            can_edit,
        },
    ))
}

struct ModuleChoice {
    key: String,
    name: String,
    checked: bool,
}

struct ProfileChoice {
    id: String,
    label: String,
    selected: bool,
}

#[derive(Template)]
#[template(path = "console/scan_profile_edit.html")]
struct EditPage {
    layout: Layout,
    id: String,
    name: String,
    classic: bool,
    method: String,
    modules: Vec<ModuleChoice>,
    profiles: Vec<ProfileChoice>,
    planner_backup: bool,
    error: Option<String>,
}

/// What the form holds (entered values, for re-rendering after a refusal).
struct Entered {
    name: String,
    modules: Vec<String>,
    app_profile: Option<String>,
    planner_backup: bool,
}

async fn edit_page(
    st: &AppState,
    op: &Operator,
    sp: &ScanProfile,
    entered: Entered,
    error: Option<String>,
) -> Result<EditPage, ConsoleError> {
    let layout = Layout::new(st, op).await?;
    let svc = service(st);
    let catalog = st.svc.catalog();
    let suitable: Vec<ProfileId> = svc
        .suitable_app_profiles(sp.org_id, sp.tenant_id)
        .await?
        .iter()
        .map(|p| p.id)
        .collect();
    let mut all = Vec::new();
    let mut page = consentry_domain::PageRequest {
        after: None,
        limit: consentry_domain::MAX_PAGE_SIZE,
    };
    loop {
        let got = st
            .svc
            .profiles(
                &ProfileFilter {
                    tenant_id: Some(sp.tenant_id),
                    ..Default::default()
                },
                &page,
            )
            .await?;
        all.extend(got.items);
        match got.next_cursor {
            Some(c) => page.after = Some(c),
            None => break,
        }
    }
    // Suitable ones first, in the order a save picks them; the others after, for an explicit choice.
    all.sort_by_key(|p| {
        suitable
            .iter()
            .position(|s| *s == p.id)
            .unwrap_or(usize::MAX)
    });
    let current = match (&entered.app_profile, &sp.authentication) {
        (Some(p), _) => Some(p.clone()),
        (None, ScanAuth::AppProfile { app_profile }) => Some(app_profile.to_string()),
        (None, ScanAuth::Classic { .. }) => None,
        // Its own app profile, which a save keeps when it can protect the modules.
        (None, ScanAuth::ClassicAppProfile { app_profile, .. }) => Some(app_profile.to_string()),
    };
    let profiles = all
        .iter()
        .map(|p| ProfileChoice {
            id: p.id.to_string(),
            label: format!(
                "{} — {}{} — {}",
                catalog
                    .app_type(&p.app_type)
                    .map(|a| a.display_name.as_str())
                    .unwrap_or(p.app_type.as_str()),
                p.status.label(),
                if suitable.contains(&p.id) {
                    ", can protect Planner"
                } else {
                    ""
                },
                p.id
            ),
            selected: current.as_deref() == Some(p.id.to_string().as_str()),
        })
        .collect();
    Ok(EditPage {
        layout,
        id: sp.id.to_string(),
        name: entered.name,
        classic: sp.authentication.is_classic(),
        method: method_text(&sp.authentication),
        modules: catalog
            .modules
            .iter()
            .map(|m| ModuleChoice {
                key: m.key.clone(),
                name: m.name.clone(),
                checked: entered.modules.contains(&m.key),
            })
            .collect(),
        profiles,
        planner_backup: entered.planner_backup,
        error,
    })
}

/// `GET /console/scan-profiles/{id}/edit`.
pub async fn edit_form(
    State(st): State<AppState>,
    op: Operator,
    Path(id): Path<String>,
) -> Result<Response, ConsoleError> {
    let sp = visible_scan(&st, &op, &id, Action::ManageProfiles).await?;
    let entered = Entered {
        name: sp.name.clone(),
        modules: sp.modules.iter().cloned().collect(),
        app_profile: None,
        planner_backup: sp.planner_backup_enabled,
    };
    let page = edit_page(&st, &op, &sp, entered, None).await?;
    Ok(html(StatusCode::OK, &page))
}

/// `POST /console/scan-profiles/{id}/edit`: saves (converting a classic scan profile); a refusal
/// shows the form again with its reason and step, and the scan profile stays as it was.
pub async fn edit_submit(
    State(st): State<AppState>,
    op: Operator,
    Path(id): Path<String>,
    Form(fields): Form<Vec<(String, String)>>,
) -> Result<Response, ConsoleError> {
    let field = |k: &str| fields.iter().find(|(n, _)| n == k).map(|(_, v)| v.clone());
    op.check_csrf(field("csrf").as_deref())?;
    let sp = visible_scan(&st, &op, &id, Action::ManageProfiles).await?;
    let entered = Entered {
        name: field("name").unwrap_or_default(),
        modules: fields
            .iter()
            .filter(|(n, _)| n == "module")
            .map(|(_, v)| v.clone())
            .collect(),
        app_profile: field("app_profile").filter(|v| !v.is_empty()),
        planner_backup: field("planner_backup").is_some(),
    };
    let app_profile = match entered.app_profile.as_deref() {
        Some(p) => Some(
            ProfileId::parse(p)
                .map_err(|e| ConsoleError::BadRequest(format!("app profile: {e}")))?,
        ),
        None => None,
    };
    let edit = ScanProfileEdit {
        name: Some(entered.name.clone()),
        modules: Some(entered.modules.clone()),
        app_profile,
        planner_backup_enabled: Some(entered.planner_backup),
    };
    match service(&st).save(sp.id, edit).await {
        Ok(saved) => {
            let to = match &saved.conversion {
                Some(c) => format!(
                    "/console/scan-profiles/{}?converted={}",
                    sp.id, c.app_profile
                ),
                None => format!("/console/scan-profiles/{}?saved=1", sp.id),
            };
            Ok(Redirect::to(&to).into_response())
        }
        Err(e @ (DomainError::Invalid { .. } | DomainError::Conflict(_))) => {
            let message = match &e {
                DomainError::Invalid { message, .. } => message.clone(),
                other => other.to_string(),
            };
            let page = edit_page(&st, &op, &sp, entered, Some(message)).await?;
            Ok(html(StatusCode::UNPROCESSABLE_ENTITY, &page))
        }
        Err(e) => Err(e.into()),
    }
}

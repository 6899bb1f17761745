//! Consent campaigns in the console: the list with a form to start one (`/console/campaigns`), one
//! campaign with each tenant's link, invitations and each profile's state
//! (`/console/campaigns/{id}`), cancel and re-send, a rollout's "ask the tenants" form (posting to
//! `/console/campaigns`), and the tenants list's "Re-authorize all N invalid profiles" (a campaign
//! of one tenant, without email, whose pass the administrator walks at once). The domain's
//! [`Campaigns`](consentry_domain::Campaigns) service decides, as for the API and the CLI.

use askama::Template;
use axum::Form;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Redirect, Response};
use consentry_domain::{
    Action, CampaignId, CampaignMemberState, CampaignReport, CampaignRequest, CampaignScope,
    CampaignSummary, DomainError, OrgId, TenantId, TenantRef,
};
use serde::Deserialize;

use super::auth::{CsrfForm, Operator};
use super::error::{ConsoleError, html};
use super::pages::{Layout, when};
use crate::AppState;

#[derive(Template)]
#[template(path = "console/campaigns.html")]
struct ListView {
    layout: Layout,
    campaigns: Vec<Row>,
    can_start: bool,
    /// (id, name) of the organizations the platform operator may start a campaign for.
    orgs: Vec<(String, String)>,
}

struct Row {
    s: CampaignSummary,
    created: String,
}

#[derive(Template)]
#[template(path = "console/campaign.html")]
struct DetailView {
    layout: Layout,
    s: CampaignSummary,
    created: String,
    expires: String,
    tenants: Vec<TenantView>,
    can_manage: bool,
}

struct TenantView {
    t: consentry_domain::CampaignTenant,
    expires: String,
    opened: String,
    link: Option<String>,
}

impl DetailView {
    /// The badge class of a member's state.
    fn class_of(&self, s: &CampaignMemberState) -> &'static str {
        class(*s)
    }
}

/// The badge class of a member's state.
pub(crate) fn class(s: CampaignMemberState) -> &'static str {
    use CampaignMemberState as S;
    match s {
        S::Consented | S::Resolved => "valid",
        S::InProgress => "pending",
        S::Failed | S::Expired => "invalid",
        S::Cancelled | S::NotSent | S::Sent | S::Opened => "idle",
    }
}

/// (ID, name) of the organizations a platform operator chooses among when starting a campaign
/// (an organization's account starts them for its own: none).
pub(crate) async fn org_choices(
    st: &AppState,
    caller: &consentry_domain::Caller,
) -> Result<Vec<(String, String)>, ConsoleError> {
    if !caller.is_platform() {
        return Ok(Vec::new());
    }
    Ok(st
        .svc
        .organizations()
        .await?
        .into_iter()
        .map(|o| (o.id.to_string(), o.name))
        .collect())
}

fn see_other(to: &str) -> Response {
    let mut res = Redirect::to(to).into_response();
    *res.status_mut() = StatusCode::SEE_OTHER;
    res
}

fn campaign_id(raw: &str) -> Result<CampaignId, ConsoleError> {
    CampaignId::parse(raw).map_err(|_| {
        ConsoleError::Domain(DomainError::NotFound {
            what: "campaign",
            id: raw.chars().take(40).collect(),
        })
    })
}

/// `GET /console/campaigns`.
pub async fn list(State(st): State<AppState>, op: Operator) -> Result<Response, ConsoleError> {
    let caller = op.caller();
    let campaigns = st
        .campaigns
        .list(&caller)
        .await?
        .into_iter()
        .map(|s| Row {
            created: when(&s.created_at),
            s,
        })
        .collect();
    let orgs = org_choices(&st, &caller).await?;
    let layout = Layout::new(&st, &op).await?;
    Ok(html(
        StatusCode::OK,
        &ListView {
            layout,
            campaigns,
            can_start: caller.can(Action::Reauthorize, caller.org()),
            orgs,
        },
    ))
}

/// `GET /console/campaigns/{id}`.
pub async fn detail(
    State(st): State<AppState>,
    op: Operator,
    Path(raw): Path<String>,
) -> Result<Response, ConsoleError> {
    let caller = op.caller();
    let id = campaign_id(&raw)?;
    let CampaignReport { summary, tenants } = st.campaigns.show(&caller, id).await?;
    let can_manage = caller.can(Action::Reauthorize, Some(summary.org_id));
    // The links are shown to those who may hand them over, while they can still be used.
    let open: Vec<TenantId> = tenants
        .iter()
        .filter(|t| can_manage && !t.done && summary.state == "running")
        .map(|t| t.tenant_id)
        .collect();
    let mut links: std::collections::BTreeMap<TenantId, String> = if open.is_empty() {
        Default::default()
    } else {
        st.campaigns
            .links(&caller, id, &open)
            .await?
            .into_iter()
            .collect()
    };
    let mut views = Vec::with_capacity(tenants.len());
    for t in tenants {
        let link = links.remove(&t.tenant_id);
        views.push(TenantView {
            expires: when(&t.expires_at),
            opened: t.opened_at.as_ref().map(when).unwrap_or_default(),
            link,
            t,
        });
    }
    let layout = Layout::new(&st, &op).await?;
    Ok(html(
        StatusCode::OK,
        &DetailView {
            layout,
            created: when(&summary.created_at),
            expires: when(&summary.expires_at),
            s: summary,
            tenants: views,
            can_manage,
        },
    ))
}

/// The start form.
#[derive(Debug, Deserialize)]
pub struct StartForm {
    csrf: Option<String>,
    /// `rollout` or `invalid`.
    scope: String,
    /// The rollout's catalog version.
    rollout: Option<u32>,
    /// The organization (platform operator).
    org: Option<String>,
}

/// `POST /console/campaigns`: starts a campaign and shows it.
pub async fn start(
    State(st): State<AppState>,
    op: Operator,
    Form(f): Form<StartForm>,
) -> Result<Response, ConsoleError> {
    op.check_csrf(f.csrf.as_deref())?;
    let caller = op.caller();
    let scope = match (f.scope.as_str(), f.rollout) {
        ("rollout", Some(version)) => CampaignScope::Rollout { version },
        ("invalid", _) => CampaignScope::Invalid,
        _ => {
            return Err(
                DomainError::invalid("scope", "choose a rollout or every invalid profile").into(),
            );
        }
    };
    let org = match f.org.as_deref().filter(|o| !o.is_empty()) {
        Some(o) => Some(OrgId::parse(o).map_err(|e| DomainError::invalid("org", e.to_string()))?),
        None => caller.org(),
    };
    let started = st
        .campaigns
        .start(
            &caller,
            CampaignRequest {
                org,
                scope,
                tenant: None,
                lifetime_days: None,
                remind_every_hours: None,
                send_invitations: true,
            },
        )
        .await?;
    Ok(see_other(&format!(
        "/console/campaigns/{}",
        started.campaign.id
    )))
}

/// `POST /console/campaigns/{id}/cancel`.
pub async fn cancel(
    State(st): State<AppState>,
    op: Operator,
    Path(raw): Path<String>,
    Form(f): Form<CsrfForm>,
) -> Result<Response, ConsoleError> {
    op.check_csrf(f.csrf.as_deref())?;
    let id = campaign_id(&raw)?;
    st.campaigns.cancel(&op.caller(), id).await?;
    Ok(see_other(&format!("/console/campaigns/{id}")))
}

/// `POST /console/campaigns/{id}/tenants/{tenant}/resend`.
pub async fn resend(
    State(st): State<AppState>,
    op: Operator,
    Path((raw, tenant)): Path<(String, String)>,
    Form(f): Form<CsrfForm>,
) -> Result<Response, ConsoleError> {
    op.check_csrf(f.csrf.as_deref())?;
    let id = campaign_id(&raw)?;
    let tenant = TenantId::parse(&tenant).map_err(|_| {
        ConsoleError::Domain(DomainError::NotFound {
            what: "tenant",
            id: tenant.chars().take(40).collect(),
        })
    })?;
    st.campaigns.resend(&op.caller(), id, tenant, None).await?;
    Ok(see_other(&format!("/console/campaigns/{id}")))
}

/// `POST /console/tenants/{tenant}/reauthorize-all`: a campaign of the tenant's invalid profiles,
/// without email or reminders, whose link the administrator opens at once.
pub async fn reauthorize_all(
    State(st): State<AppState>,
    op: Operator,
    Path(tenant): Path<String>,
    Form(f): Form<CsrfForm>,
) -> Result<Response, ConsoleError> {
    op.check_csrf(f.csrf.as_deref())?;
    let tenant = TenantRef::parse(&tenant).map_err(|_| {
        ConsoleError::Domain(DomainError::NotFound {
            what: "tenant",
            id: tenant.chars().take(40).collect(),
        })
    })?;
    let started = st
        .campaigns
        .start(
            &op.caller(),
            CampaignRequest {
                org: None,
                scope: CampaignScope::Invalid,
                tenant: Some(tenant),
                lifetime_days: Some(1),
                remind_every_hours: Some(0),
                send_invitations: false,
            },
        )
        .await?;
    let url = started
        .links
        .first()
        .map(|l| l.url.clone())
        .ok_or_else(|| DomainError::internal("a started campaign without its link"))?;
    // The link is absolute (public_url); the browser stays on this server.
    let path = url
        .find("/campaign/")
        .map_or(url.as_str(), |i| &url[i..])
        .to_string();
    Ok(see_other(&path))
}

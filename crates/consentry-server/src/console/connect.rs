//! "Connect a Microsoft tenant": the start button's form, Microsoft's answers on
//! `/console/tenants/connect/callback` (the sign-in, then the administrator consent) and the offer
//! of app profiles for the new tenant ("Create selected app profiles"). The rules are the domain's
//! ([`consentry_domain::TenantConnector`]); this module parses and renders.

use askama::Template;
use axum::extract::{Path, RawQuery, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Redirect, Response};
use axum::{Form, body::Bytes};
use consentry_domain::connect::OfferedAppType;
use consentry_domain::{
    Action, ConnectOutcome, DomainError, NewProfile, OrgId, Tenant, TenantId, TenantRef,
};
use serde::Deserialize;

use super::auth::Operator;
use super::error::{ConsoleError, html};
use super::pages::Layout;
use crate::AppState;

/// The start form.
#[derive(Debug, Deserialize)]
pub struct StartForm {
    csrf: Option<String>,
    /// The organization (the platform operator chooses; an organization's account has its own).
    org: Option<String>,
}

/// `POST /console/tenants/connect`: sends the browser to Microsoft's sign-in, bound to it.
pub async fn start(
    State(st): State<AppState>,
    op: Operator,
    Form(f): Form<StartForm>,
) -> Result<Response, ConsoleError> {
    op.check_csrf(f.csrf.as_deref())?;
    let caller = op.caller();
    // An organization's account connects to its own organization; naming another is "not found".
    let org = match (f.org.as_deref().filter(|o| !o.is_empty()), caller.org()) {
        (Some(o), _) => OrgId::parse(o).map_err(|e| DomainError::invalid("org", e.to_string()))?,
        (None, Some(o)) => o,
        (None, None) => {
            return Err(DomainError::invalid(
                "org",
                "choose the organization the tenant is connected to",
            )
            .into());
        }
    };
    caller.may(Action::ManageProfiles, Some(org))?;
    let (binding, cookie) = crate::security::new_connect_binding(st.security.tls);
    let started = st.connect.start(org, &op.actor(), &binding).await?;
    let mut res = Redirect::to(&started.url).into_response();
    *res.status_mut() = StatusCode::SEE_OTHER;
    res.headers_mut()
        .append(axum::http::header::SET_COOKIE, cookie);
    Ok(res)
}

/// The result page: connected (with the offer) or not.
#[derive(Template)]
#[template(path = "console/connect.html")]
struct ResultPage {
    layout: Layout,
    ok: bool,
    title: String,
    message: String,
    steps: Vec<String>,
    /// The connected tenant's ID and domain (empty when not connected).
    tenant_id: String,
    domain: String,
    offer: Vec<OfferedAppType>,
}

/// `GET /console/tenants/connect/callback`: Microsoft's answer to either step.
pub async fn callback(
    State(st): State<AppState>,
    op: Operator,
    headers: HeaderMap,
    RawQuery(query): RawQuery,
) -> Result<Response, ConsoleError> {
    let params = crate::callback::parse_callback_query(query.as_deref().unwrap_or_default())
        .map_err(|e| {
            ConsoleError::Link(format!(
                "{e}: click \"Connect a Microsoft tenant\" to start again."
            ))
        })?;
    let binding = crate::security::cookie(&headers, crate::security::CONNECT_BINDING_COOKIE)
        .filter(|v| v.len() <= 128);
    let outcome = match st.connect.callback(params, binding).await {
        Ok(o) => o,
        Err(DomainError::Invalid { message, .. }) => {
            return Err(ConsoleError::Link(format!(
                "{message}. Click \"Connect a Microsoft tenant\" on the Tenants page to start again."
            )));
        }
        Err(e) => return Err(e.into()),
    };
    let layout = Layout::new(&st, &op).await?;
    let page = match outcome {
        ConnectOutcome::Continue { url } => return Ok(Redirect::to(&url).into_response()),
        ConnectOutcome::Connected {
            tenant,
            already,
            upn,
        } => {
            // The session that started it may have lost the right since (or be another account).
            op.caller().may_on(
                Action::ManageProfiles,
                "tenant",
                &tenant.id.to_string(),
                tenant.org_id,
            )?;
            let offer = st.connect.offer(tenant.org_id).await?;
            ResultPage {
                layout,
                ok: true,
                title: if already {
                    "Tenant already connected".into()
                } else {
                    "Tenant connected".into()
                },
                message: format!(
                    "{} ({}) is connected and verified: {upn} signed in as an administrator of the tenant and consented.",
                    tenant.display_name, tenant.primary_domain
                ),
                steps: vec![],
                tenant_id: tenant.id.to_string(),
                domain: tenant.primary_domain.to_string(),
                offer,
            }
        }
        ConnectOutcome::Failed {
            message,
            remediation,
            ..
        } => ResultPage {
            layout,
            ok: false,
            title: "The tenant was not connected".into(),
            message,
            steps: remediation,
            tenant_id: String::new(),
            domain: String::new(),
            offer: vec![],
        },
    };
    Ok(html(StatusCode::OK, &page))
}

/// `POST /console/tenants/{tenant}/profiles`: creates the app profiles chosen in the offer
/// (`app_type` values `service/app type`, repeated), then lists the tenant's profiles.
pub async fn create_profiles(
    State(st): State<AppState>,
    op: Operator,
    Path(tenant): Path<String>,
    body: Bytes,
) -> Result<Response, ConsoleError> {
    let mut csrf = None;
    let mut chosen = Vec::new();
    for (k, v) in url::form_urlencoded::parse(&body) {
        match k.as_ref() {
            "csrf" => csrf = Some(v.into_owned()),
            "app_type" => chosen.push(v.into_owned()),
            _ => {}
        }
    }
    op.check_csrf(csrf.as_deref())?;
    let id =
        TenantId::parse(&tenant).map_err(|e| ConsoleError::BadRequest(format!("tenant: {e}")))?;
    let t: Tenant = match st.svc.tenant(&TenantRef::Id(id)).await {
        Ok(t) => t,
        Err(e) => return Err(e.into()),
    };
    op.caller()
        .may_on(Action::ManageProfiles, "tenant", &tenant, t.org_id)?;
    if chosen.is_empty() {
        return Err(ConsoleError::BadRequest(
            "no app type was chosen: tick the app profiles to create, or go to the Tenants page to skip this"
                .into(),
        ));
    }
    let actor = op.actor();
    for c in chosen {
        let (service, app_type) = c.split_once('/').ok_or_else(|| {
            ConsoleError::BadRequest(format!("app_type: {c:?} is not service/app type"))
        })?;
        st.svc
            .create_profile(
                NewProfile {
                    tenant: TenantRef::Id(t.id),
                    app_type: app_type.to_string(),
                    service: Some(service.to_string()),
                },
                &actor,
            )
            .await?;
    }
    Ok(Redirect::to(&format!("/console/profiles?tenant={}", t.id)).into_response())
}

//! A tenant's email page in the console: its administrator contacts (a form, with the accounts that
//! consented to its profiles suggested) and the emails sent about it (recipient, subject, state, last
//! error: a refusal's SMTP answer is visible here). Over the domain's `Mail` service, like the JSON API.

use askama::Template;
use axum::Form;
use axum::extract::{Path, Query, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Redirect, Response};
use consentry_domain::{Action, DomainError, Mail, TenantRef};
use serde::Deserialize;

use super::auth::Operator;
use super::error::{ConsoleError, html};
use super::pages::{Layout, when};
use crate::AppState;

/// How many emails the page lists.
const LISTED: u32 = 100;

struct EmailRow {
    to: String,
    subject: String,
    kind: &'static str,
    state: &'static str,
    badge: &'static str,
    attempts: u32,
    created: String,
    sent: String,
    error: String,
}

#[derive(Template)]
#[template(path = "console/tenant_email.html")]
struct EmailPage {
    layout: Layout,
    tenant: String,
    tenant_id: String,
    configured: bool,
    can_edit: bool,
    contacts: String,
    suggested: Vec<String>,
    emails: Vec<EmailRow>,
    error: Option<String>,
    saved: bool,
}

/// Query of the page (a note after a save).
#[derive(Debug, Default, Deserialize)]
pub struct PageQuery {
    saved: Option<String>,
}

async fn page(
    st: &AppState,
    op: &Operator,
    raw: &str,
    entered: Option<String>,
    error: Option<String>,
    saved: bool,
) -> Result<EmailPage, ConsoleError> {
    let layout = Layout::new(st, op).await?;
    let r = TenantRef::parse(raw).map_err(|e| ConsoleError::BadRequest(format!("tenant: {e}")))?;
    let mail = Mail::new(st.svc.clone());
    let caller = op.caller();
    let contacts = mail.contacts(&caller, &r).await?;
    let t = st.svc.tenant(&TenantRef::Id(contacts.tenant_id)).await?;
    let emails = mail
        .tenant_emails(&caller, &TenantRef::Id(t.id), LISTED)
        .await?
        .into_iter()
        .map(|e| EmailRow {
            to: e.to.to_string(),
            subject: e.subject,
            kind: match e.kind {
                consentry_domain::EmailKind::CampaignInvitation => "Campaign invitation",
                consentry_domain::EmailKind::CampaignReminder => "Campaign reminder",
                consentry_domain::EmailKind::ProfileInvalid => "Profile invalid",
                consentry_domain::EmailKind::Digest => "Digest",
                consentry_domain::EmailKind::AdminInvitation => "Admin invitation",
                consentry_domain::EmailKind::VendorCredential => "Vendor credential",
            },
            state: match e.state {
                consentry_domain::EmailState::Queued => "Queued",
                consentry_domain::EmailState::Sent => "Sent",
                consentry_domain::EmailState::Failed => "Failed",
            },
            badge: match e.state {
                consentry_domain::EmailState::Queued => "pending",
                consentry_domain::EmailState::Sent => "valid",
                consentry_domain::EmailState::Failed => "invalid",
            },
            attempts: e.attempts,
            created: when(&e.created_at),
            sent: e.sent_at.as_ref().map(when).unwrap_or_default(),
            error: e.last_error.unwrap_or_default(),
        })
        .collect();
    Ok(EmailPage {
        layout,
        tenant: t.primary_domain.to_string(),
        tenant_id: t.id.to_string(),
        configured: st.email.is_some(),
        can_edit: caller.can(Action::ManageSettings, Some(t.org_id)),
        contacts: entered.unwrap_or_else(|| {
            contacts
                .contacts
                .iter()
                .map(|c| c.to_string())
                .collect::<Vec<_>>()
                .join("\n")
        }),
        suggested: contacts.suggested,
        emails,
        error,
        saved,
    })
}

/// `GET /console/tenants/{tenant}/email`.
pub async fn show(
    State(st): State<AppState>,
    op: Operator,
    Path(tenant): Path<String>,
    Query(q): Query<PageQuery>,
) -> Result<Response, ConsoleError> {
    let p = page(&st, &op, &tenant, None, None, q.saved.is_some()).await?;
    Ok(html(StatusCode::OK, &p))
}

/// Fields of the contacts form.
#[derive(Debug, Deserialize)]
pub struct ContactsForm {
    csrf: Option<String>,
    #[serde(default)]
    contacts: String,
}

/// `POST /console/tenants/{tenant}/contacts`: replaces the contacts; a malformed address shows the
/// form again with the address named, and nothing changes.
pub async fn save_contacts(
    State(st): State<AppState>,
    op: Operator,
    Path(tenant): Path<String>,
    Form(f): Form<ContactsForm>,
) -> Result<Response, ConsoleError> {
    op.check_csrf(f.csrf.as_deref())?;
    let r =
        TenantRef::parse(&tenant).map_err(|e| ConsoleError::BadRequest(format!("tenant: {e}")))?;
    let mail = Mail::new(st.svc.clone());
    match mail
        .set_contacts(&op.caller(), &r, std::slice::from_ref(&f.contacts))
        .await
    {
        Ok(saved) => Ok(Redirect::to(&format!(
            "/console/tenants/{}/email?saved=1",
            saved.tenant_id
        ))
        .into_response()),
        Err(DomainError::Invalid { field, message }) => {
            let p = page(
                &st,
                &op,
                &tenant,
                Some(f.contacts),
                Some(format!("{field}: {message}")),
                false,
            )
            .await?;
            Ok(html(StatusCode::UNPROCESSABLE_ENTITY, &p))
        }
        Err(e) => Err(e.into()),
    }
}

//! The organization's audit log in the console: a table of entries, newest first, with paging and
//! export links. An account sees only its organization's log (another organization's answers "not
//! found"); a platform operator picks the organization.

use askama::Template;
use axum::extract::{Path, Query, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Redirect, Response};
use consentry_domain::OrgId;
use consentry_domain::audit::{ExportFormat, export};
use serde::Deserialize;

use super::auth::Operator;
use super::error::{ConsoleError, html};
use super::pages::{Layout, when};
use crate::AppState;

/// Entries per page.
pub const AUDIT_PAGE_SIZE: u32 = 50;

struct Row {
    seq: u64,
    at: String,
    actor: String,
    action: String,
    target: String,
    detail: String,
}

struct OrgLink {
    id: String,
    name: String,
}

#[derive(Template)]
#[template(path = "console/audit.html")]
struct AuditPageView {
    layout: Layout,
    org_id: String,
    org_name: String,
    rows: Vec<Row>,
    older: Option<u64>,
    first_page: bool,
    orgs: Vec<OrgLink>,
}

/// Query of the page.
#[derive(Debug, Deserialize)]
pub struct PageQuery {
    /// Entries older than this sequence number.
    before: Option<u64>,
}

/// Query of the export.
#[derive(Debug, Deserialize)]
pub struct ExportQuery {
    /// `csv` or `jsonl`.
    format: Option<String>,
}

/// The organization `raw` names, if the account may read its audit log: another organization's is
/// "not found"; a viewer is refused (the log holds sign-in addresses).
fn visible_org(op: &Operator, raw: &str) -> Result<OrgId, ConsoleError> {
    let not_found = || {
        ConsoleError::Domain(consentry_domain::DomainError::NotFound {
            what: "organization",
            id: raw.chars().take(64).collect(),
        })
    };
    let org = OrgId::parse(raw).map_err(|_| not_found())?;
    op.caller()
        .may(consentry_domain::Action::ReadAudit, Some(org))?;
    Ok(org)
}

/// `GET /console/audit`: the account's organization's log, or (platform operators) the choice of
/// organization.
pub async fn index(State(st): State<AppState>, op: Operator) -> Result<Response, ConsoleError> {
    if let Some(org) = op.session.account.scope.org() {
        return Ok(Redirect::to(&format!("/console/organizations/{org}/audit")).into_response());
    }
    let layout = Layout::new(&st, &op).await?;
    let orgs = st
        .svc
        .organizations()
        .await?
        .into_iter()
        .map(|o| OrgLink {
            id: o.id.to_string(),
            name: o.name,
        })
        .collect();
    Ok(html(
        StatusCode::OK,
        &AuditPageView {
            layout,
            org_id: String::new(),
            org_name: String::new(),
            rows: Vec::new(),
            older: None,
            first_page: true,
            orgs,
        },
    ))
}

/// `GET /console/organizations/{id}/audit`: one page of the organization's log.
pub async fn page(
    State(st): State<AppState>,
    op: Operator,
    Path(id): Path<String>,
    Query(q): Query<PageQuery>,
) -> Result<Response, ConsoleError> {
    let org = visible_org(&op, &id)?;
    let organization = st.svc.organization(org).await?;
    let layout = Layout::new(&st, &op).await?;
    let page = st
        .svc
        .audit()
        .page(Some(org), q.before, AUDIT_PAGE_SIZE)
        .await?;
    let rows = page
        .entries
        .iter()
        .map(|e| Row {
            seq: e.seq,
            at: when(&e.at),
            actor: e.actor.to_string(),
            action: e.action.replace('_', " "),
            target: e.target.clone(),
            detail: consentry_domain::audit::canonical_json(&e.detail),
        })
        .collect();
    Ok(html(
        StatusCode::OK,
        &AuditPageView {
            layout,
            org_id: org.to_string(),
            org_name: organization.name,
            rows,
            older: page.next_before,
            first_page: q.before.is_none(),
            orgs: Vec::new(),
        },
    ))
}

/// `GET /console/organizations/{id}/audit/export?format=csv|jsonl`: the whole log as a download.
pub async fn export_log(
    State(st): State<AppState>,
    op: Operator,
    Path(id): Path<String>,
    Query(q): Query<ExportQuery>,
) -> Result<Response, ConsoleError> {
    let org = visible_org(&op, &id)?;
    st.svc.organization(org).await?;
    let format = ExportFormat::parse(q.format.as_deref().unwrap_or("csv"))?;
    let body = export(&st.svc.audit().all(Some(org)).await?, format);
    Ok(crate::api::audit::download(body, format, org))
}

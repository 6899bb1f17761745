//! An organization's audit log: `GET /api/v1/organizations/{id}/audit` (newest first, paged with
//! `before` and `limit`) and `GET /api/v1/organizations/{id}/audit/export?format=csv|jsonl`. The
//! handlers that change things record them through [`record`].

use axum::extract::State;
use axum::http::{HeaderValue, header};
use axum::response::{IntoResponse, Response};
use consentry_domain::audit::{AuditAction, AuditPage, ExportFormat, export};
use consentry_domain::{Action, Actor, OrgId};
use serde::Deserialize;

use super::{ApiJson, ApiPath, ApiQuery, parse_id};
use crate::AppState;
use crate::auth::ApiCaller;
use crate::error::ApiResult;

/// Records an action done through the JSON API by `actor` (the caller's). A refused entry is logged;
/// the action stands.
pub async fn record(
    st: &AppState,
    actor: &Actor,
    org: Option<OrgId>,
    action: AuditAction,
    target: String,
    detail: serde_json::Value,
) {
    st.svc
        .audit()
        .record(actor, org, action, target, detail)
        .await;
}

/// Query of the list.
#[derive(Debug, Deserialize, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
#[serde(deny_unknown_fields)]
pub struct ListQuery {
    /// Entries older than this sequence number (the `next_before` of the previous page).
    before: Option<u64>,
    /// Page size (1–500, default 50).
    limit: Option<u32>,
}

/// Query of the export.
#[derive(Debug, Deserialize, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
#[serde(deny_unknown_fields)]
pub struct ExportQuery {
    /// `jsonl` (default) or `csv`.
    format: Option<String>,
}

/// One page of an organization's audit log, newest first.
#[utoipa::path(
    get,
    operation_id = "listAuditEntries",
    path = "/api/v1/organizations/{id}/audit",
    tag = "audit",
    params(("id" = consentry_domain::OrgId, Path, description = "The organization's ID"), ListQuery),
    responses(
        (status = OK, description = "One page of the audit log, newest first; `next_before` (as `before`) gives the next", body = AuditPage),
    )
)]
pub async fn list(
    State(st): State<AppState>,
    ApiCaller(c): ApiCaller,
    ApiPath(id): ApiPath<String>,
    ApiQuery(q): ApiQuery<ListQuery>,
) -> ApiResult<ApiJson<AuditPage>> {
    let org = parse_id("id", &id, OrgId::parse)?;
    // The audit log is an organization admin's (and the platform operator's): viewers see no sign-in
    // addresses.
    c.may(Action::ReadAudit, Some(org))?;
    st.svc.organization(org).await?;
    let page = st
        .svc
        .audit()
        .page(Some(org), q.before, q.limit.unwrap_or(50))
        .await?;
    Ok(ApiJson(page))
}

/// The whole of an organization's audit log, oldest first, as a download.
#[utoipa::path(
    get,
    operation_id = "exportAuditLog",
    path = "/api/v1/organizations/{id}/audit/export",
    tag = "audit",
    params(("id" = consentry_domain::OrgId, Path, description = "The organization's ID"), ExportQuery),
    responses(
        (status = OK, description = "The whole audit log, oldest first, as an attachment: one JSON entry per line, or CSV", content((String = "application/x-ndjson"), (String = "text/csv"))),
        (status = UNPROCESSABLE_ENTITY, description = "An unknown format (`invalid`)", body = crate::api::openapi::ErrorResponse),
    )
)]
pub async fn export_log(
    State(st): State<AppState>,
    ApiCaller(c): ApiCaller,
    ApiPath(id): ApiPath<String>,
    ApiQuery(q): ApiQuery<ExportQuery>,
) -> ApiResult<Response> {
    let org = parse_id("id", &id, OrgId::parse)?;
    // The audit log is an organization admin's (and the platform operator's): viewers see no sign-in
    // addresses.
    c.may(Action::ReadAudit, Some(org))?;
    st.svc.organization(org).await?;
    let format = ExportFormat::parse(q.format.as_deref().unwrap_or("jsonl"))?;
    Ok(download(
        export(&st.svc.audit().all(Some(org)).await?, format),
        format,
        org,
    ))
}

/// An export as an attachment named after the organization.
pub fn download(body: String, format: ExportFormat, org: OrgId) -> Response {
    let mut res = body.into_response();
    let h = res.headers_mut();
    h.insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static(format.content_type()),
    );
    if let Ok(v) = HeaderValue::from_str(&format!(
        "attachment; filename=\"audit-{org}.{}\"",
        format.extension()
    )) {
        h.insert(header::CONTENT_DISPOSITION, v);
    }
    res
}

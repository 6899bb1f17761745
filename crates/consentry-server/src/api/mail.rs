//! A tenant's administrator contacts and the emails sent about it: `GET|PUT
//! /api/v1/tenants/{tenant}/contacts` and `GET /api/v1/tenants/{tenant}/emails`; an organization's
//! daily digest recipients: `GET|PUT /api/v1/organizations/{id}/digest`. Over the domain's `Mail`
//! service (which authorizes).

use axum::extract::State;
use consentry_domain::ports::EmailRecord;
use consentry_domain::{DigestRecipients, Mail, OrgId, TenantContacts, TenantRef};
use serde::Deserialize;

use super::{ApiJson, ApiPath, ApiQuery, parse_id};
use crate::AppState;
use crate::auth::ApiCaller;
use crate::error::{ApiError, ApiResult};

fn service(st: &AppState) -> Mail {
    Mail::new(st.svc.clone())
}

fn tenant(raw: &str) -> Result<TenantRef, ApiError> {
    parse_id("tenant", raw, TenantRef::parse)
}

/// Body of `PUT /tenants/{tenant}/contacts`.
#[derive(Debug, Deserialize, utoipa::ToSchema)]
#[schema(as = TenantContactsRequest)]
#[serde(deny_unknown_fields)]
pub struct ContactsBody {
    /// Every contact (replacing the present ones), each an address such as `it-admin@contoso.com`;
    /// an entry may also hold several separated by commas. At most 20; an empty list removes them.
    contacts: Vec<String>,
}

/// `?limit=` of the emails list.
#[derive(Debug, Deserialize, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
#[serde(deny_unknown_fields)]
pub struct EmailsQuery {
    /// How many, newest first (1–500, default 100).
    limit: Option<u32>,
}

/// A tenant's administrator contacts, with the accounts that consented to its profiles suggested.
#[utoipa::path(
    get,
    operation_id = "getTenantContacts",
    path = "/api/v1/tenants/{tenant}/contacts",
    tag = "email",
    params(("tenant" = String, Path, description = "The tenant: its Entra tenant ID (GUID) or its primary domain")),
    responses(
        (status = OK, description = "The tenant's contacts and suggestions", body = TenantContacts),
    )
)]
pub async fn get_contacts(
    State(st): State<AppState>,
    ApiCaller(c): ApiCaller,
    ApiPath(raw): ApiPath<String>,
) -> ApiResult<ApiJson<TenantContacts>> {
    Ok(ApiJson(service(&st).contacts(&c, &tenant(&raw)?).await?))
}

/// Replaces a tenant's administrator contacts (organization administrators). A malformed address
/// is refused with the field `contacts` named, and nothing changes.
#[utoipa::path(
    put,
    operation_id = "putTenantContacts",
    path = "/api/v1/tenants/{tenant}/contacts",
    tag = "email",
    params(("tenant" = String, Path, description = "The tenant: its Entra tenant ID (GUID) or its primary domain")),
    request_body = ContactsBody,
    responses(
        (status = OK, description = "The tenant's contacts as saved", body = TenantContacts),
    )
)]
pub async fn put_contacts(
    State(st): State<AppState>,
    ApiCaller(c): ApiCaller,
    ApiPath(raw): ApiPath<String>,
    ApiJson(b): ApiJson<ContactsBody>,
) -> ApiResult<ApiJson<TenantContacts>> {
    let t = tenant(&raw)?;
    // Found and allowed first (another organization's tenant answers "not found" whatever the body).
    service(&st).contacts(&c, &t).await?;
    addresses("contacts", &b.contacts)?;
    Ok(ApiJson(
        service(&st).set_contacts(&c, &t, &b.contacts).await?,
    ))
}

/// The emails about a tenant, newest first: recipient, subject, state (`queued`, `sent`,
/// `failed`), attempts and the last error (a refusal's SMTP answer). Never their content.
#[utoipa::path(
    get,
    operation_id = "listTenantEmails",
    path = "/api/v1/tenants/{tenant}/emails",
    tag = "email",
    params(("tenant" = String, Path, description = "The tenant: its Entra tenant ID (GUID) or its primary domain"), EmailsQuery),
    responses(
        (status = OK, description = "The tenant's emails, newest first", body = crate::api::openapi::Items<EmailRecord>),
    )
)]
pub async fn list_emails(
    State(st): State<AppState>,
    ApiCaller(c): ApiCaller,
    ApiPath(raw): ApiPath<String>,
    ApiQuery(q): ApiQuery<EmailsQuery>,
) -> ApiResult<ApiJson<serde_json::Value>> {
    let items = service(&st)
        .tenant_emails(&c, &tenant(&raw)?, q.limit.unwrap_or(100))
        .await?;
    Ok(ApiJson(serde_json::json!({ "items": items })))
}

/// Parses addresses at the edge: a malformed one is a bad request naming `field`.
fn addresses(field: &'static str, entries: &[String]) -> Result<(), ApiError> {
    consentry_domain::mail::parse_addresses(field, entries)
        .map(|_| ())
        .map_err(|e| match e {
            consentry_domain::DomainError::Invalid { field, message } => ApiError::BadRequest {
                field: Some(field.to_string()),
                message,
            },
            other => ApiError::Domain(other),
        })
}

/// Body of `PUT /organizations/{id}/digest`.
#[derive(Debug, Deserialize, utoipa::ToSchema)]
#[schema(as = DigestRecipientsRequest)]
#[serde(deny_unknown_fields)]
pub struct DigestBody {
    /// Who receives the organization's daily digest (replacing the present recipients); an empty
    /// list turns the digest off. At most 20.
    recipients: Vec<String>,
}

/// An organization's daily digest recipients.
#[utoipa::path(
    get,
    operation_id = "getDigestRecipients",
    path = "/api/v1/organizations/{id}/digest",
    tag = "email",
    params(("id" = consentry_domain::OrgId, Path, description = "The organization's ID")),
    responses(
        (status = OK, description = "Who receives the daily digest", body = DigestRecipients),
    )
)]
pub async fn get_digest(
    State(st): State<AppState>,
    ApiCaller(c): ApiCaller,
    ApiPath(id): ApiPath<String>,
) -> ApiResult<ApiJson<DigestRecipients>> {
    let org = parse_id("id", &id, OrgId::parse)?;
    Ok(ApiJson(service(&st).digest_recipients(&c, org).await?))
}

/// Replaces an organization's daily digest recipients (organization administrators). A malformed
/// address is refused with the field `recipients` named, and nothing changes.
#[utoipa::path(
    put,
    operation_id = "putDigestRecipients",
    path = "/api/v1/organizations/{id}/digest",
    tag = "email",
    params(("id" = consentry_domain::OrgId, Path, description = "The organization's ID")),
    request_body = DigestBody,
    responses(
        (status = OK, description = "The recipients as saved", body = DigestRecipients),
    )
)]
pub async fn put_digest(
    State(st): State<AppState>,
    ApiCaller(c): ApiCaller,
    ApiPath(id): ApiPath<String>,
    ApiJson(b): ApiJson<DigestBody>,
) -> ApiResult<ApiJson<DigestRecipients>> {
    let org = parse_id("id", &id, OrgId::parse)?;
    // Found and allowed first (another organization's answers "not found" whatever the body).
    service(&st).digest_recipients(&c, org).await?;
    addresses("recipients", &b.recipients)?;
    Ok(ApiJson(
        service(&st)
            .set_digest_recipients(&c, org, &b.recipients)
            .await?,
    ))
}

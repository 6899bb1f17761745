//! An organization's service API keys (for the token API): `GET|POST /api/v1/organizations/{id}/keys`,
//! `DELETE /api/v1/organizations/{id}/keys/{key_id}` (revokes). A key is shown once, at creation; only
//! its SHA-256 is stored. The rules, the key minting and the audit entries are the domain's
//! [`ApiKeys`] service, which the CLI's `keys` commands call too.

use axum::extract::State;
use axum::http::StatusCode;
use consentry_domain::{Action, ApiKey, ApiKeyId, ApiKeys, OrgId};
use secrecy::ExposeSecret;
use serde::{Deserialize, Serialize};

use super::{ApiJson, ApiPath, parse_id};
use crate::AppState;
use crate::auth::ApiCaller;
use crate::error::ApiResult;

pub use consentry_domain::keys::MAX_KEY_NAME_LEN;

/// Body of the create call.
#[derive(Debug, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct CreateKey {
    /// A label (which service holds it).
    name: String,
}

/// A created key with its value (shown this once).
#[derive(Serialize, utoipa::ToSchema)]
#[schema(as = CreatedKey)]
pub struct Created {
    /// The key's record.
    #[serde(flatten)]
    record: ApiKey,
    /// The key: send it as `Authorization: Bearer <key>` to the token API.
    key: String,
}

impl std::fmt::Debug for Created {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Created")
            .field("record", &self.record)
            .field("key", &"[redacted]")
            .finish()
    }
}

/// Lists an organization's keys (never their values).
#[utoipa::path(
    get,
    operation_id = "listServiceKeys",
    path = "/api/v1/organizations/{id}/keys",
    tag = "keys",
    params(("id" = consentry_domain::OrgId, Path, description = "The organization's ID")),
    responses(
        (status = OK, description = "The organization's service API keys, never their values", body = crate::api::openapi::Items<ApiKey>),
    )
)]
pub async fn list(
    State(st): State<AppState>,
    ApiCaller(c): ApiCaller,
    ApiPath(id): ApiPath<String>,
) -> ApiResult<ApiJson<serde_json::Value>> {
    let org = parse_id("id", &id, OrgId::parse)?;
    let items = ApiKeys::new(st.svc.clone()).list(&c, Some(org)).await?;
    Ok(ApiJson(serde_json::json!({ "items": items })))
}

/// Creates a key for an organization.
#[utoipa::path(
    post,
    operation_id = "createServiceKey",
    path = "/api/v1/organizations/{id}/keys",
    tag = "keys",
    params(("id" = consentry_domain::OrgId, Path, description = "The organization's ID")),
    request_body = CreateKey,
    responses(
        (status = CREATED, description = "The key's record and the key, shown this once (`Cache-Control: no-store`)", body = Created),
        (status = UNPROCESSABLE_ENTITY, description = "The name is empty or too long (`invalid`)", body = crate::api::openapi::ErrorResponse),
    )
)]
pub async fn create(
    State(st): State<AppState>,
    ApiCaller(c): ApiCaller,
    ApiPath(id): ApiPath<String>,
    ApiJson(b): ApiJson<CreateKey>,
) -> ApiResult<crate::security::NoStore<(StatusCode, ApiJson<Created>)>> {
    let org = parse_id("id", &id, OrgId::parse)?;
    let created = ApiKeys::new(st.svc.clone())
        .create(&c, org, &b.name)
        .await?;
    // The key is shown once: no browser or proxy keeps the answer.
    Ok(crate::security::NoStore((
        StatusCode::CREATED,
        ApiJson(Created {
            record: created.record,
            key: created.key.expose_secret().to_string(),
        }),
    )))
}

/// Revokes one of an organization's keys.
#[utoipa::path(
    delete,
    operation_id = "revokeServiceKey",
    path = "/api/v1/organizations/{id}/keys/{key_id}",
    tag = "keys",
    params(("id" = consentry_domain::OrgId, Path, description = "The organization's ID"), ("key_id" = uuid::Uuid, Path, description = "The key's ID")),
    responses(
        (status = NO_CONTENT, description = "Revoked: the token API refuses the key from now on"),
    )
)]
pub async fn revoke(
    State(st): State<AppState>,
    ApiCaller(c): ApiCaller,
    ApiPath((id, key)): ApiPath<(String, String)>,
) -> ApiResult<StatusCode> {
    let org = parse_id("id", &id, OrgId::parse)?;
    c.may(Action::ManageSettings, Some(org))?;
    let key_id = parse_id("key_id", &key, ApiKeyId::parse)?;
    ApiKeys::new(st.svc.clone())
        .revoke(&c, Some(org), key_id)
        .await?;
    // This server stops accepting it at once (other replicas within the lookup time).
    st.graph_tokens.forget_key(key_id);
    Ok(StatusCode::NO_CONTENT)
}

//! An organization's service API keys (for the token API): `GET|POST /api/v1/organizations/{id}/keys`,
//! `DELETE /api/v1/organizations/{id}/keys/{key_id}` (revokes). A key is shown once, at creation; only
//! its SHA-256 is stored.

use axum::extract::State;
use axum::http::StatusCode;
use consentry_domain::{Action, ApiKey, DomainError, OrgId};
use serde::{Deserialize, Serialize};

use super::{ApiJson, ApiPath, parse_id};
use crate::AppState;
use crate::auth::ApiCaller;
use crate::error::{ApiError, ApiResult};

/// The longest key name accepted.
pub const MAX_KEY_NAME_LEN: usize = 64;

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

fn store_err(e: consentry_domain::StoreError) -> ApiError {
    ApiError::Domain(e.into())
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
    c.may(Action::Read, Some(org))?;
    st.svc.organization(org).await?;
    let items = st
        .svc
        .store()
        .list_api_keys(Some(org))
        .await
        .map_err(store_err)?;
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
    c.may(Action::ManageSettings, Some(org))?;
    st.svc.organization(org).await?;
    let name = b.name.trim();
    if name.is_empty() || name.chars().count() > MAX_KEY_NAME_LEN {
        return Err(DomainError::invalid(
            "name",
            format!("must have 1 to {MAX_KEY_NAME_LEN} characters"),
        )
        .into());
    }
    let key = super::tokens::new_api_key();
    let record = ApiKey {
        id: uuid::Uuid::new_v4(),
        org_id: org,
        name: name.to_string(),
        key_hash: super::tokens::key_hash(&key),
        created_at: st.svc.clock().now(),
        revoked_at: None,
        last_used_at: None,
    };
    st.svc
        .store()
        .insert_api_key(&record)
        .await
        .map_err(store_err)?;
    super::audit::record(
        &st,
        &c.actor,
        Some(org),
        consentry_domain::AuditAction::ApiKeyCreated,
        format!("api_key:{}", record.id),
        serde_json::json!({ "name": record.name }),
    )
    .await;
    // The key is shown once: no browser or proxy keeps the answer.
    Ok(crate::security::NoStore((
        StatusCode::CREATED,
        ApiJson(Created { record, key }),
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
    let not_found = || {
        ApiError::Domain(DomainError::NotFound {
            what: "active service API key",
            id: key.chars().take(40).collect(),
        })
    };
    let key_id = uuid::Uuid::parse_str(&key).map_err(|_| ApiError::BadRequest {
        field: Some("key_id".into()),
        message: "key_id is not a UUID".into(),
    })?;
    let store = st.svc.store();
    let owned = store
        .list_api_keys(Some(org))
        .await
        .map_err(store_err)?
        .into_iter()
        .any(|k| k.id == key_id && k.revoked_at.is_none());
    if !owned {
        return Err(not_found());
    }
    if !store
        .revoke_api_key(key_id, st.svc.clock().now())
        .await
        .map_err(store_err)?
    {
        return Err(not_found());
    }
    st.tokens.forget_key(key_id);
    super::audit::record(
        &st,
        &c.actor,
        Some(org),
        consentry_domain::AuditAction::ApiKeyRevoked,
        format!("api_key:{key_id}"),
        serde_json::json!({}),
    )
    .await;
    Ok(StatusCode::NO_CONTENT)
}

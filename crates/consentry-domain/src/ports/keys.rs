//! Service API keys (for the token API) as stored, and their port.

use async_trait::async_trait;
use time::OffsetDateTime;

use crate::error::StoreError;
use crate::ids::{ApiKeyId, OrgId};

/// A service API key of an organization (for the token API). Only the key's hash is stored.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct ApiKey {
    /// Its ID.
    pub id: ApiKeyId,
    /// The organization it is scoped to.
    pub org_id: OrgId,
    /// A label.
    pub name: String,
    /// Hex SHA-256 of the key.
    #[serde(skip)]
    pub key_hash: String,
    /// When it was created.
    #[serde(with = "time::serde::rfc3339")]
    pub created_at: OffsetDateTime,
    /// When it was revoked.
    #[serde(with = "time::serde::rfc3339::option")]
    pub revoked_at: Option<OffsetDateTime>,
    /// When the token API last accepted it (to the minute; migration 0006).
    #[serde(with = "time::serde::rfc3339::option")]
    pub last_used_at: Option<OffsetDateTime>,
}

/// Service API keys. Part of [`Store`](super::Store).
#[async_trait]
pub trait ApiKeyStore: Send + Sync {
    /// Adds a key. `NotFound` if the organization does not exist.
    async fn insert_api_key(&self, key: &ApiKey) -> Result<(), StoreError>;
    /// The key with this hash, revoked or not.
    async fn find_api_key(&self, key_hash: &str) -> Result<Option<ApiKey>, StoreError>;
    /// Keys of one organization (or all), oldest first.
    async fn list_api_keys(&self, org: Option<OrgId>) -> Result<Vec<ApiKey>, StoreError>;
    /// Revokes a key. Returns whether an unrevoked key was revoked.
    async fn revoke_api_key(&self, id: ApiKeyId, at: OffsetDateTime) -> Result<bool, StoreError>;
    /// Records a key's use. Returns whether it existed.
    async fn touch_api_key(&self, id: ApiKeyId, at: OffsetDateTime) -> Result<bool, StoreError>;
}

//! Organizations' webhooks and their delivery log as stored, and their port.

use async_trait::async_trait;
use secrecy::SecretSlice;
use time::OffsetDateTime;

use crate::error::StoreError;
use crate::ids::{OrgId, ProfileId, WebhookId};

/// An organization's webhook: status changes of its profiles are POSTed there, signed.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct Webhook {
    /// Its ID.
    pub id: WebhookId,
    /// The organization.
    pub org_id: OrgId,
    /// Where to POST.
    pub url: String,
    /// When it was added.
    #[serde(with = "time::serde::rfc3339")]
    pub created_at: OffsetDateTime,
}

/// One delivery attempt series of a webhook message (the delivery log).
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct WebhookDelivery {
    /// The webhook.
    pub webhook_id: WebhookId,
    /// The profile the message was about.
    pub profile_id: ProfileId,
    /// `status_changed` or `recovered`.
    pub event: String,
    /// The reason code the message carried.
    pub reason_code: Option<String>,
    /// The receiver's last HTTP status, if it answered.
    pub status_code: Option<u16>,
    /// Attempts made.
    pub attempts: u32,
    /// Whether the receiver accepted it (2xx).
    pub ok: bool,
    /// The last error, if it failed.
    pub error: Option<String>,
    /// When the series ended.
    #[serde(with = "time::serde::rfc3339")]
    pub at: OffsetDateTime,
}

/// Webhooks and their delivery log. Part of [`Store`](super::Store); webhook secrets are sealed like every secret.
#[async_trait]
pub trait WebhookStore: Send + Sync {
    /// Adds a webhook with its signing secret. `NotFound` if the organization does not exist.
    async fn insert_webhook(
        &self,
        hook: &Webhook,
        secret: &SecretSlice<u8>,
    ) -> Result<(), StoreError>;
    /// An organization's webhooks, oldest first.
    async fn list_webhooks(&self, org: OrgId) -> Result<Vec<Webhook>, StoreError>;
    /// A webhook's signing secret, unsealed.
    async fn webhook_secret(&self, id: WebhookId) -> Result<Option<SecretSlice<u8>>, StoreError>;
    /// Deletes one of an organization's webhooks with its log. Returns whether it existed.
    async fn delete_webhook(&self, org: OrgId, id: WebhookId) -> Result<bool, StoreError>;
    /// Appends to the delivery log.
    async fn record_delivery(&self, delivery: &WebhookDelivery) -> Result<(), StoreError>;
    /// A webhook's deliveries, newest first.
    async fn list_deliveries(
        &self,
        webhook: WebhookId,
        limit: u32,
    ) -> Result<Vec<WebhookDelivery>, StoreError>;
    /// When a message with this event and reason code about the profile was last delivered
    /// successfully to any webhook (for the hold-down).
    async fn last_notified(
        &self,
        profile: ProfileId,
        event: &str,
        reason_code: Option<&str>,
    ) -> Result<Option<OffsetDateTime>, StoreError>;
}

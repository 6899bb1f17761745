//! Alerts raised about the vendor's own credentials (migration 0021): one per credential and stage,
//! recorded by whichever replica raised it first, so a restart or another replica never raises it again.

use async_trait::async_trait;
use time::OffsetDateTime;

use crate::error::StoreError;

/// An alert raised about a vendor credential entering a stage.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct VendorCredentialAlert {
    /// The registration (`VendorAppKey::label`: an app type's key, or `consentry-app`).
    pub app: String,
    /// Its cloud.
    pub cloud: String,
    /// The credential (`CredentialFact::id`: its key ID, or `local:<thumbprint>`).
    pub credential_id: String,
    /// `attention` or `expired`.
    pub stage: String,
    /// When the credential ends.
    pub ends_at: Option<OffsetDateTime>,
    /// When the alert was raised.
    pub raised_at: OffsetDateTime,
    /// Which process raised it (the monitor's worker ID).
    pub raised_by: String,
}

/// Vendor credential alerts. Part of [`Store`](super::Store).
#[async_trait]
pub trait VendorAlertStore: Send + Sync {
    /// Records the alert unless one for the same app, cloud, credential and stage is recorded:
    /// returns whether this call recorded it (then, and only then, the caller sends it). One
    /// statement, so concurrent replicas record it once.
    async fn claim_vendor_alert(&self, alert: &VendorCredentialAlert) -> Result<bool, StoreError>;
    /// Every recorded alert, newest first.
    async fn list_vendor_alerts(&self) -> Result<Vec<VendorCredentialAlert>, StoreError>;
}

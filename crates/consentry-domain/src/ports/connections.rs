//! Tenant connections by consent as stored (migration 0018): the pending attempt between
//! Microsoft's redirects, and a tenant's verification.

use async_trait::async_trait;
use secrecy::SecretSlice;
use time::OffsetDateTime;

use crate::error::StoreError;
use crate::ids::{OrgId, TenantId};
use crate::model::{Actor, TenantVerification};

/// Which of Microsoft's answers a pending connection waits for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ConnectStep {
    /// The administrator's OpenID Connect sign-in (`organizations` authority).
    SignIn,
    /// The administrator consent to Consentry's app in the tenant the sign-in named.
    AdminConsent,
}

impl ConnectStep {
    /// Stable name, as stored.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::SignIn => "sign_in",
            Self::AdminConsent => "admin_consent",
        }
    }

    /// Parses a stable name.
    pub fn parse(s: &str) -> Option<Self> {
        [Self::SignIn, Self::AdminConsent]
            .into_iter()
            .find(|v| v.as_str() == s)
    }
}

/// A connection by consent waiting for Microsoft's answer. Keyed by the hex SHA-256 of its OAuth
/// state (the state itself is never stored); taken once.
pub struct PendingConnection {
    /// Hex SHA-256 of the OAuth `state`.
    pub state_hash: String,
    /// The organization the tenant is being connected to.
    pub org_id: OrgId,
    /// Who started it.
    pub started_by: Actor,
    /// The answer it waits for.
    pub step: ConnectStep,
    /// The tenant the administrator signed in to (known from the admin-consent step on).
    pub tenant_id: Option<TenantId>,
    /// When it started.
    pub created_at: OffsetDateTime,
    /// When it stops being accepted.
    pub expires_at: OffsetDateTime,
    /// The domain's secrets (PKCE verifier, nonce, browser binding, who signed in) as one blob;
    /// sealed by the store, bound to the state hash.
    pub secrets: SecretSlice<u8>,
}

impl std::fmt::Debug for PendingConnection {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("PendingConnection")
            .field("org_id", &self.org_id)
            .field("step", &self.step)
            .field("tenant_id", &self.tenant_id)
            .field("expires_at", &self.expires_at)
            .finish_non_exhaustive()
    }
}

/// Pending connections and tenant verification. Part of [`Store`](super::Store).
#[async_trait]
pub trait ConnectionStore: Send + Sync {
    /// Records a pending connection (its secrets sealed), and forgets those that expired before
    /// its `created_at`. `NotFound` if the organization does not exist.
    async fn put_pending_connection(&self, pending: &PendingConnection) -> Result<(), StoreError>;
    /// Takes (removes and returns) the pending connection with this state hash, atomically: of two
    /// concurrent callers at most one gets it. Expired ones are returned too (the caller says so).
    async fn take_pending_connection(
        &self,
        state_hash: &str,
    ) -> Result<Option<PendingConnection>, StoreError>;
    /// Marks a tenant verified, unless it is already. Returns whether it changed.
    async fn verify_tenant(
        &self,
        tenant: TenantId,
        verification: &TenantVerification,
    ) -> Result<bool, StoreError>;
}

//! "Sign in with Microsoft" as stored: the console's sign-in attempts (single-use, sealed), the
//! accounts of Microsoft identities, and each organization's rule for members without an admin role;
//! their port.

use secrecy::SecretSlice;
use time::OffsetDateTime;

use crate::error::StoreError;
use crate::ids::{ObjectId, OrgId, TenantId};
use crate::ports::accounts::OperatorAccount;

/// A "Sign in with Microsoft" started in a browser and not finished yet, stored under the SHA-256
/// of its OAuth state (the state itself is never stored).
pub struct SignInAttempt {
    /// Hex SHA-256 of the OAuth state.
    pub state_hash: String,
    /// The PKCE verifier, the nonce and the browser binding (serialized by the domain); the store
    /// seals them at rest, bound to the state hash.
    pub secrets: SecretSlice<u8>,
    /// The console path to go to after sign-in.
    pub next: String,
    /// When it was started.
    pub created_at: OffsetDateTime,
    /// When it can no longer be finished.
    pub expires_at: OffsetDateTime,
}

impl std::fmt::Debug for SignInAttempt {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SignInAttempt")
            .field("state_hash", &self.state_hash)
            .field("next", &self.next)
            .field("created_at", &self.created_at)
            .field("expires_at", &self.expires_at)
            .finish_non_exhaustive()
    }
}

/// A person in Microsoft Entra ID: their tenant and object ID, which never change (the UPN may).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct EntraIdentity {
    /// The tenant (`tid`).
    pub tenant: TenantId,
    /// The user's object ID (`oid`).
    pub object_id: ObjectId,
}

/// What an organization does with a member of its tenant who signs in with Microsoft without an
/// administrator role.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, serde::Serialize, serde::Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(rename_all = "snake_case")]
pub enum MemberRule {
    /// They sign in as viewers.
    #[default]
    Viewer,
    /// They are refused.
    Refused,
}

impl MemberRule {
    /// The stored and wire form.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Viewer => "viewer",
            Self::Refused => "refused",
        }
    }

    /// Parses the stored and wire form.
    pub fn parse(s: &str) -> Result<Self, String> {
        match s.trim() {
            "viewer" => Ok(Self::Viewer),
            "refused" => Ok(Self::Refused),
            other => Err(format!(
                "{other:?} is not a rule for members without an admin role: say `viewer` or `refused`"
            )),
        }
    }
}

/// Persistence of "Sign in with Microsoft"; part of the [`Store`](super::Store) port.
#[async_trait::async_trait]
pub trait MicrosoftSignInStore: Send + Sync {
    /// Adds a sign-in attempt. `Conflict` if its state hash is taken.
    async fn insert_sign_in_attempt(&self, attempt: &SignInAttempt) -> Result<(), StoreError>;
    /// Removes and returns the attempt of this state hash, atomically: of two concurrent callers
    /// only one gets it. Expired attempts are returned too (the caller refuses them).
    async fn take_sign_in_attempt(
        &self,
        state_hash: &str,
    ) -> Result<Option<SignInAttempt>, StoreError>;
    /// Deletes attempts that expired before `now`; returns how many went.
    async fn delete_expired_sign_in_attempts(&self, now: OffsetDateTime)
    -> Result<u64, StoreError>;
    /// The account of a Microsoft identity, if it signed in before.
    async fn find_entra_account(
        &self,
        identity: EntraIdentity,
    ) -> Result<Option<OperatorAccount>, StoreError>;
    /// Creates the account of a Microsoft identity, or replaces its user name, scope and role
    /// (keeping its ID and creation time); returns the stored account. `Conflict` if the user name
    /// belongs to another account.
    async fn save_entra_account(
        &self,
        identity: EntraIdentity,
        account: &OperatorAccount,
    ) -> Result<OperatorAccount, StoreError>;
    /// The organization's rule for members without an admin role (`NotFound` if it does not exist).
    async fn member_rule(&self, org: OrgId) -> Result<MemberRule, StoreError>;
    /// Replaces it. `NotFound` if the organization does not exist.
    async fn set_member_rule(&self, org: OrgId, rule: MemberRule) -> Result<(), StoreError>;
}

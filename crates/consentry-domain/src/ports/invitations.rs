//! Invitations of an organization's first admin as stored (migration 0018): only the hash of the
//! link's token, used once.

use async_trait::async_trait;
use time::OffsetDateTime;

use crate::error::StoreError;
use crate::ids::{EmailAddress, OrgId};
use crate::model::Actor;

/// An invitation to create an organization-admin account.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Invitation {
    /// Hex SHA-256 of the link's token (the token itself is never stored).
    pub token_hash: String,
    /// The organization.
    pub org_id: OrgId,
    /// Whom it was sent to, if an address was given.
    pub email: Option<EmailAddress>,
    /// Who created it.
    pub created_by: Actor,
    /// When.
    pub created_at: OffsetDateTime,
    /// When it stops being accepted.
    pub expires_at: OffsetDateTime,
    /// When it was used, if it was.
    pub used_at: Option<OffsetDateTime>,
    /// The account it created.
    pub used_by: Option<String>,
}

/// Invitations. Part of [`Store`](super::Store).
#[async_trait]
pub trait InvitationStore: Send + Sync {
    /// Adds one. `NotFound` if the organization does not exist.
    async fn insert_invitation(&self, invitation: &Invitation) -> Result<(), StoreError>;
    /// The invitation with this token hash, used or not.
    async fn get_invitation(&self, token_hash: &str) -> Result<Option<Invitation>, StoreError>;
    /// Marks it used by `username` at `at`, atomically, if it is unused and unexpired at `at`.
    /// Returns whether it was.
    async fn use_invitation(
        &self,
        token_hash: &str,
        username: &str,
        at: OffsetDateTime,
    ) -> Result<bool, StoreError>;
}

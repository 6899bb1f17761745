//! Operator accounts, console sessions and personal access tokens as stored, and their port.

use serde::Serialize;
use time::OffsetDateTime;
use uuid::Uuid;

use crate::access::{AccountScope, Caller, Role};
use crate::error::StoreError;

/// A local operator account of the console.
#[derive(Clone, PartialEq, Eq)]
pub struct OperatorAccount {
    /// Consentry's ID.
    pub id: Uuid,
    /// The sign-in name, lower case, unique.
    pub username: String,
    /// What it may see.
    pub scope: AccountScope,
    /// What it may do in its organization (a platform account is the platform operator whatever this
    /// says; it is stored as `admin`).
    pub role: Role,
    /// The argon2id hash in PHC string form (never the password).
    pub password_hash: String,
    /// When it was created.
    pub created_at: OffsetDateTime,
}

impl std::fmt::Debug for OperatorAccount {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("OperatorAccount")
            .field("id", &self.id)
            .field("username", &self.username)
            .field("scope", &self.scope)
            .field("role", &self.role)
            .field("password_hash", &"[redacted]")
            .field("created_at", &self.created_at)
            .finish()
    }
}

/// A console session as stored: keyed by the SHA-256 of its token.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ConsoleSession {
    /// Hex SHA-256 of the session token (the token itself lives only in the browser's cookie).
    pub token_hash: String,
    /// The signed-in account.
    pub account_id: Uuid,
    /// When it started (sign-in).
    pub created_at: OffsetDateTime,
    /// When it was last used.
    pub last_seen_at: OffsetDateTime,
    /// When it ends regardless of use.
    pub expires_at: OffsetDateTime,
}

/// A personal access token of an operator account for the JSON API, as stored: keyed by the SHA-256 of
/// the token (the token itself is shown once, at creation). It carries its account's scope and role.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct PersonalToken {
    /// Its ID (to list and revoke it).
    pub id: Uuid,
    /// The account it acts for.
    pub account_id: Uuid,
    /// A label chosen by its owner.
    pub name: String,
    /// Hex SHA-256 of the token.
    #[serde(skip)]
    pub token_hash: String,
    /// When it was created.
    #[serde(with = "time::serde::rfc3339")]
    pub created_at: OffsetDateTime,
    /// When it stops working.
    #[serde(with = "time::serde::rfc3339")]
    pub expires_at: OffsetDateTime,
    /// When it was last used (to the minute).
    #[serde(with = "time::serde::rfc3339::option")]
    pub last_used_at: Option<OffsetDateTime>,
    /// When it was revoked.
    #[serde(with = "time::serde::rfc3339::option")]
    pub revoked_at: Option<OffsetDateTime>,
}

/// Persistence of operator accounts and console sessions; part of the [`Store`](super::Store) port.
#[async_trait::async_trait]
pub trait AccountStore: Send + Sync {
    /// Adds an account. `Conflict` if the user name is taken.
    async fn insert_account(&self, account: &OperatorAccount) -> Result<(), StoreError>;
    /// Reads an account by ID.
    async fn get_account(&self, id: Uuid) -> Result<Option<OperatorAccount>, StoreError>;
    /// Reads an account by its (lower-case) user name.
    async fn find_account(&self, username: &str) -> Result<Option<OperatorAccount>, StoreError>;
    /// Every account, by user name.
    async fn list_accounts(&self) -> Result<Vec<OperatorAccount>, StoreError>;
    /// Deletes an account and its sessions. Returns whether it existed.
    async fn delete_account(&self, id: Uuid) -> Result<bool, StoreError>;
    /// Adds a session. `NotFound` if the account is absent.
    async fn insert_session(&self, session: &ConsoleSession) -> Result<(), StoreError>;
    /// Reads a session by its token hash.
    async fn get_session(&self, token_hash: &str) -> Result<Option<ConsoleSession>, StoreError>;
    /// Records a session's use. Returns whether it existed.
    async fn touch_session(
        &self,
        token_hash: &str,
        last_seen_at: OffsetDateTime,
    ) -> Result<bool, StoreError>;
    /// Deletes a session. Returns whether it existed.
    async fn delete_session(&self, token_hash: &str) -> Result<bool, StoreError>;
    /// Adds a personal access token. `NotFound` if the account is absent.
    async fn insert_personal_token(&self, token: &PersonalToken) -> Result<(), StoreError>;
    /// The personal access token with this hash, revoked or expired or not.
    async fn find_personal_token(
        &self,
        token_hash: &str,
    ) -> Result<Option<PersonalToken>, StoreError>;
    /// An account's personal access tokens, oldest first.
    async fn list_personal_tokens(&self, account: Uuid) -> Result<Vec<PersonalToken>, StoreError>;
    /// Revokes one of an account's tokens. Returns whether an unrevoked token of that account was
    /// revoked.
    async fn revoke_personal_token(
        &self,
        account: Uuid,
        id: Uuid,
        at: OffsetDateTime,
    ) -> Result<bool, StoreError>;
    /// Records a token's use. Returns whether it existed.
    async fn touch_personal_token(&self, id: Uuid, at: OffsetDateTime) -> Result<bool, StoreError>;
    /// Deletes sessions past their absolute expiry (`expires_at <= now`) or unused since `idle_before`.
    /// Returns how many went.
    async fn delete_expired_sessions(
        &self,
        now: OffsetDateTime,
        idle_before: OffsetDateTime,
    ) -> Result<u64, StoreError>;
}
impl OperatorAccount {
    /// The caller this account is, with history entries recorded as `via:username` (`console`, `api`).
    pub fn caller(&self, via: &str) -> Caller {
        Caller {
            scope: self.scope,
            role: self.role,
            actor: crate::model::Actor::Operator(format!("{via}:{}", self.username)),
            account_id: Some(self.id),
        }
    }
}

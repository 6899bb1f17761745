//! Operator accounts of the web console and their sign-in sessions.
//!
//! Accounts are local: a user name and an argon2id password hash. An account belongs to one
//! organization (it sees only that organization's tenants and profiles) or is a platform operator (it
//! sees every organization). Sessions live in the store, so any replica can serve them; the store keeps
//! only the SHA-256 of a session token, never the token. A session ends after [`SessionPolicy::idle`]
//! without use or [`SessionPolicy::absolute`] after sign-in, whichever comes first.

use std::sync::Arc;

use argon2::Argon2;
use argon2::password_hash::phc::PasswordHash;
use argon2::password_hash::{PasswordHasher as _, PasswordVerifier as _};
use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use secrecy::{ExposeSecret, SecretString};
use serde::Serialize;
use sha2::{Digest, Sha256};
use time::{Duration, OffsetDateTime};
use uuid::Uuid;

use crate::access::{Caller, Role};
use crate::error::DomainError;
use crate::ids::OrgId;
use crate::ports::{Clock, Store, StoreError};

/// The shortest password accepted for an operator account.
pub const MIN_PASSWORD_LEN: usize = 10;
/// The longest user name accepted.
pub const MAX_USERNAME_LEN: usize = 64;
/// The longest personal access token name accepted.
pub const MAX_TOKEN_NAME_LEN: usize = 64;
/// The longest validity of a personal access token, in days.
pub const MAX_TOKEN_DAYS: i64 = 366;
/// The validity of a personal access token when none is chosen, in days.
pub const DEFAULT_TOKEN_DAYS: i64 = 90;
/// How personal access tokens start (service API keys start with `csk_`).
pub const PERSONAL_TOKEN_PREFIX: &str = "cpt_";

/// What an account may see.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(tag = "kind", content = "org_id", rename_all = "snake_case")]
pub enum AccountScope {
    /// Every organization.
    Platform,
    /// One organization.
    Organization(OrgId),
}

impl AccountScope {
    /// The organization the account is limited to, if any.
    pub fn org(&self) -> Option<OrgId> {
        match self {
            Self::Platform => None,
            Self::Organization(o) => Some(*o),
        }
    }

    /// Whether the account may see data of `org`.
    pub fn sees(&self, org: OrgId) -> bool {
        match self {
            Self::Platform => true,
            Self::Organization(o) => *o == org,
        }
    }
}

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

/// Persistence of operator accounts and console sessions; part of the [`Store`] port.
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

/// How long sessions last.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SessionPolicy {
    /// A session unused this long ends.
    pub idle: Duration,
    /// A session ends this long after sign-in, used or not.
    pub absolute: Duration,
}

impl Default for SessionPolicy {
    fn default() -> Self {
        Self {
            idle: Duration::minutes(30),
            absolute: Duration::hours(12),
        }
    }
}

/// The cost of password hashing.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum HashCost {
    /// argon2id with the crate's recommended parameters (19 MiB, 2 passes).
    #[default]
    Recommended,
    /// Minimal parameters, for tests only: fast, and far too weak for real passwords.
    TestOnly,
}

impl HashCost {
    fn argon2(self) -> Argon2<'static> {
        match self {
            HashCost::Recommended => Argon2::default(),
            HashCost::TestOnly => Argon2::new(
                argon2::Algorithm::Argon2id,
                argon2::Version::V0x13,
                argon2::Params::new(64, 1, 1, None).unwrap_or_default(),
            ),
        }
    }
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

/// A signed-in session as the console sees it.
#[derive(Debug, Clone)]
pub struct ActiveSession {
    /// The account.
    pub account: OperatorAccount,
    /// The token that every form of this session must carry (derived from the session token).
    pub csrf_token: String,
    /// The stored session.
    pub session: ConsoleSession,
}

/// A new session: the token for the cookie, and the session.
#[derive(Debug)]
pub struct NewSession {
    /// The cookie value. Shown once; only its hash is stored.
    pub token: SecretString,
    /// The session.
    pub active: ActiveSession,
}

/// Hex SHA-256 of a session token: the key it is stored under.
pub fn session_token_hash(token: &str) -> String {
    hex::encode(Sha256::digest(token.as_bytes()))
}

/// The CSRF token of the session whose token is `token`.
pub fn csrf_token_for(token: &str) -> String {
    let mut h = Sha256::new();
    h.update(b"consentry-console-csrf\0");
    h.update(token.as_bytes());
    URL_SAFE_NO_PAD.encode(h.finalize())
}

/// Compares two strings without an early exit on the first difference.
pub fn constant_time_eq(a: &str, b: &str) -> bool {
    let (a, b) = (a.as_bytes(), b.as_bytes());
    if a.len() != b.len() {
        return false;
    }
    a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
}

fn check_username(raw: &str) -> Result<String, DomainError> {
    let u = raw.trim().to_lowercase();
    if u.is_empty() || u.chars().count() > MAX_USERNAME_LEN {
        return Err(DomainError::invalid(
            "username",
            format!("must have 1 to {MAX_USERNAME_LEN} characters"),
        ));
    }
    if !u
        .chars()
        .all(|c| c.is_ascii_alphanumeric() || matches!(c, '.' | '_' | '-' | '@'))
    {
        return Err(DomainError::invalid(
            "username",
            "may contain only letters, digits and . _ - @",
        ));
    }
    Ok(u)
}

/// Operator accounts and console sessions over the store.
#[derive(Debug, Clone)]
pub struct Accounts {
    store: Arc<dyn Store>,
    clock: Arc<dyn Clock>,
    policy: SessionPolicy,
    cost: HashCost,
    /// A hash of a random password, verified against when the user name is unknown so that a sign-in
    /// takes as long for an unknown name as for a wrong password. Made on first need, so that building
    /// the service (server start, every CLI command) costs no hashing.
    decoy: Arc<std::sync::OnceLock<String>>,
}

impl Accounts {
    /// Builds the service.
    pub fn new(
        store: Arc<dyn Store>,
        clock: Arc<dyn Clock>,
        policy: SessionPolicy,
        cost: HashCost,
    ) -> Self {
        Self {
            store,
            clock,
            policy,
            cost,
            decoy: Arc::new(std::sync::OnceLock::new()),
        }
    }

    /// The session policy.
    pub fn policy(&self) -> SessionPolicy {
        self.policy
    }

    /// Creates an organization administrator or a platform operator: [`Accounts::create_with_role`]
    /// with [`Role::Admin`].
    pub async fn create(
        &self,
        username: &str,
        password: &SecretString,
        scope: AccountScope,
    ) -> Result<OperatorAccount, DomainError> {
        self.create_with_role(username, password, scope, Role::Admin)
            .await
    }

    /// Creates an account. `scope` limits it to an organization (which must exist) or not at all;
    /// `role` says what it may do there. A platform account is the platform operator, so it cannot be a
    /// viewer.
    pub async fn create_with_role(
        &self,
        username: &str,
        password: &SecretString,
        scope: AccountScope,
        role: Role,
    ) -> Result<OperatorAccount, DomainError> {
        let username = check_username(username)?;
        if scope == AccountScope::Platform && role == Role::Viewer {
            return Err(DomainError::invalid(
                "role",
                "a platform account is the platform operator and may do everything; make a viewer an account of an organization (--org ID)",
            ));
        }
        if password.expose_secret().chars().count() < MIN_PASSWORD_LEN {
            return Err(DomainError::invalid(
                "password",
                format!("must have at least {MIN_PASSWORD_LEN} characters"),
            ));
        }
        if let AccountScope::Organization(org) = scope
            && self.store.get_organization(org).await?.is_none()
        {
            return Err(DomainError::NotFound {
                what: "organization",
                id: org.to_string(),
            });
        }
        let (cost, pw) = (self.cost, password.clone());
        // Hashing takes tens of milliseconds of CPU on purpose: off the async workers.
        let password_hash = tokio::task::spawn_blocking(move || {
            cost.argon2()
                .hash_password(pw.expose_secret().as_bytes())
                .map(|h| h.to_string())
        })
        .await
        .map_err(|e| DomainError::invalid("password", format!("could not be hashed: {e}")))?
        .map_err(|e| DomainError::invalid("password", format!("could not be hashed: {e}")))?;
        let account = OperatorAccount {
            id: Uuid::new_v4(),
            username,
            scope,
            role,
            password_hash,
            created_at: self.clock.now(),
        };
        self.store
            .insert_account(&account)
            .await
            .map_err(|e| match e {
                StoreError::Conflict(_) => DomainError::Conflict(format!(
                    "an operator account named {:?} already exists; choose another name or delete it first",
                    account.username
                )),
                e => e.into(),
            })?;
        Ok(account)
    }

    /// Every account, by user name.
    pub async fn list(&self) -> Result<Vec<OperatorAccount>, DomainError> {
        Ok(self.store.list_accounts().await?)
    }

    /// Deletes an account and ends its sessions.
    pub async fn delete(&self, username: &str) -> Result<(), DomainError> {
        let username = check_username(username)?;
        let account =
            self.store
                .find_account(&username)
                .await?
                .ok_or_else(|| DomainError::NotFound {
                    what: "operator account",
                    id: username.clone(),
                })?;
        self.store.delete_account(account.id).await?;
        Ok(())
    }

    /// Checks a user name and password; on success ends `previous_token`'s session (if any) and starts a
    /// new one, so a session token never survives a sign-in. `None` when the credentials are wrong (the
    /// caller must not say which part was wrong).
    pub async fn sign_in(
        &self,
        username: &str,
        password: &SecretString,
        previous_token: Option<&str>,
    ) -> Result<Option<NewSession>, DomainError> {
        let account = match check_username(username) {
            Ok(u) => self.store.find_account(&u).await?,
            Err(_) => None,
        };
        let hash = account.as_ref().map(|a| a.password_hash.clone());
        let (cost, pw, decoy) = (self.cost, password.clone(), self.decoy.clone());
        // Verifying costs as much as hashing: off the async workers too.
        let verified = tokio::task::spawn_blocking(move || {
            let hash = hash.unwrap_or_else(|| {
                decoy
                    .get_or_init(|| {
                        let mut random = [0u8; 24];
                        rand::fill(&mut random[..]);
                        cost.argon2()
                            .hash_password(&random)
                            .map(|h| h.to_string())
                            .unwrap_or_default()
                    })
                    .clone()
            });
            PasswordHash::new(&hash).is_ok_and(|h| {
                cost.argon2()
                    .verify_password(pw.expose_secret().as_bytes(), &h)
                    .is_ok()
            })
        })
        .await
        .unwrap_or(false);
        let Some(account) = account.filter(|_| verified) else {
            return Ok(None);
        };
        if let Some(prev) = previous_token {
            self.store.delete_session(&session_token_hash(prev)).await?;
        }
        let mut raw = [0u8; 32];
        rand::fill(&mut raw[..]);
        let token = URL_SAFE_NO_PAD.encode(raw);
        let now = self.clock.now();
        let session = ConsoleSession {
            token_hash: session_token_hash(&token),
            account_id: account.id,
            created_at: now,
            last_seen_at: now,
            expires_at: now + self.policy.absolute,
        };
        self.store.insert_session(&session).await?;
        let _ = self
            .store
            .delete_expired_sessions(now, now - self.policy.idle)
            .await;
        Ok(Some(NewSession {
            active: ActiveSession {
                account,
                csrf_token: csrf_token_for(&token),
                session,
            },
            token: SecretString::from(token),
        }))
    }

    /// The session of `token` if it is live; records its use. An expired session is removed.
    pub async fn session(&self, token: &str) -> Result<Option<ActiveSession>, DomainError> {
        let hash = session_token_hash(token);
        let Some(mut session) = self.store.get_session(&hash).await? else {
            return Ok(None);
        };
        let now = self.clock.now();
        if now >= session.expires_at || now - session.last_seen_at >= self.policy.idle {
            self.store.delete_session(&hash).await?;
            return Ok(None);
        }
        let Some(account) = self.store.get_account(session.account_id).await? else {
            self.store.delete_session(&hash).await?;
            return Ok(None);
        };
        // Writing on every request would make each page view a write; a minute's precision is enough.
        if now - session.last_seen_at >= Duration::minutes(1) {
            self.store.touch_session(&hash, now).await?;
            session.last_seen_at = now;
        }
        Ok(Some(ActiveSession {
            account,
            csrf_token: csrf_token_for(token),
            session,
        }))
    }

    /// Creates a personal access token for `account`, valid for `valid_for` (1 day to
    /// [`MAX_TOKEN_DAYS`] days). The token is returned once; only its hash is stored.
    pub async fn create_token(
        &self,
        account: &OperatorAccount,
        name: &str,
        valid_for: Duration,
    ) -> Result<(PersonalToken, SecretString), DomainError> {
        let name = name.trim();
        if name.is_empty()
            || name.chars().count() > MAX_TOKEN_NAME_LEN
            || name.chars().any(char::is_control)
        {
            return Err(DomainError::invalid(
                "name",
                format!("must have 1 to {MAX_TOKEN_NAME_LEN} printable characters"),
            ));
        }
        if valid_for < Duration::days(1) || valid_for > Duration::days(MAX_TOKEN_DAYS) {
            return Err(DomainError::invalid(
                "expires_in_days",
                format!("must be between 1 and {MAX_TOKEN_DAYS} days"),
            ));
        }
        let mut raw = [0u8; 32];
        rand::fill(&mut raw[..]);
        let token = format!("{PERSONAL_TOKEN_PREFIX}{}", URL_SAFE_NO_PAD.encode(raw));
        let now = self.clock.now();
        let record = PersonalToken {
            id: Uuid::new_v4(),
            account_id: account.id,
            name: name.to_string(),
            token_hash: session_token_hash(&token),
            created_at: now,
            expires_at: now + valid_for,
            last_used_at: None,
            revoked_at: None,
        };
        self.store.insert_personal_token(&record).await?;
        Ok((record, SecretString::from(token)))
    }

    /// The personal access tokens of `account`, oldest first (never their values).
    pub async fn tokens(&self, account: Uuid) -> Result<Vec<PersonalToken>, DomainError> {
        Ok(self.store.list_personal_tokens(account).await?)
    }

    /// Revokes one of `account`'s personal access tokens. A token of another account is "not found".
    pub async fn revoke_token(&self, account: Uuid, id: Uuid) -> Result<(), DomainError> {
        if self
            .store
            .revoke_personal_token(account, id, self.clock.now())
            .await?
        {
            Ok(())
        } else {
            Err(DomainError::NotFound {
                what: "active personal access token",
                id: id.to_string(),
            })
        }
    }

    /// The account behind a presented personal access token, if the token is known, unrevoked and
    /// unexpired and its account exists; records the token's use (to the minute).
    pub async fn authenticate_token(
        &self,
        token: &str,
    ) -> Result<Option<(OperatorAccount, PersonalToken)>, DomainError> {
        if !token.starts_with(PERSONAL_TOKEN_PREFIX) {
            return Ok(None);
        }
        let Some(mut t) = self
            .store
            .find_personal_token(&session_token_hash(token))
            .await?
        else {
            return Ok(None);
        };
        let now = self.clock.now();
        if t.revoked_at.is_some() || now >= t.expires_at {
            return Ok(None);
        }
        let Some(account) = self.store.get_account(t.account_id).await? else {
            return Ok(None);
        };
        if t.last_used_at
            .is_none_or(|at| now - at >= Duration::minutes(1))
        {
            self.store.touch_personal_token(t.id, now).await?;
            t.last_used_at = Some(now);
        }
        Ok(Some((account, t)))
    }

    /// Ends the session of `token` (nothing happens if there is none).
    pub async fn sign_out(&self, token: &str) -> Result<(), DomainError> {
        self.store
            .delete_session(&session_token_hash(token))
            .await?;
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn usernames_are_folded_and_checked() {
        assert_eq!(
            check_username("  Alice@Example.com ").ok().as_deref(),
            Some("alice@example.com")
        );
        assert!(check_username("").is_err());
        assert!(check_username("a b").is_err());
        assert!(check_username("<script>").is_err());
        assert!(check_username(&"a".repeat(MAX_USERNAME_LEN + 1)).is_err());
    }

    #[test]
    fn csrf_tokens_differ_per_session_and_compare_exactly() {
        let a = csrf_token_for("one");
        let b = csrf_token_for("two");
        assert_ne!(a, b);
        assert!(constant_time_eq(&a, &csrf_token_for("one")));
        assert!(!constant_time_eq(&a, &b));
        assert!(!constant_time_eq(&a, &a[..a.len() - 1]));
    }

    #[test]
    fn test_only_hashes_verify_and_reject() {
        let h = HashCost::TestOnly
            .argon2()
            .hash_password(b"correct horse")
            .map(|h| h.to_string())
            .unwrap_or_default();
        let parsed = PasswordHash::new(&h).expect("PHC string");
        assert!(
            Argon2::default()
                .verify_password(b"correct horse", &parsed)
                .is_ok()
        );
        assert!(
            Argon2::default()
                .verify_password(b"wrong horse", &parsed)
                .is_err()
        );
    }
}

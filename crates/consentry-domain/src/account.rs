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
use sha2::{Digest, Sha256};
use time::Duration;
use uuid::Uuid;

pub use crate::access::AccountScope;
use crate::access::Role;
use crate::error::DomainError;
pub use crate::ports::accounts::{AccountStore, ConsoleSession, OperatorAccount, PersonalToken};
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

pub(crate) fn check_username(raw: &str) -> Result<String, DomainError> {
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

    /// The account with this user name (trimmed, any case), if any.
    pub async fn find(&self, username: &str) -> Result<Option<OperatorAccount>, DomainError> {
        Ok(self
            .store
            .find_account(&username.trim().to_lowercase())
            .await?)
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

    /// Checks a user name and password (local accounts only: a Microsoft identity's account has no
    /// password and a user name no local name can be); on success ends `previous_token`'s session (if any) and starts a
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
        self.open_session(account, previous_token).await.map(Some)
    }

    /// Starts a session of `account` (signed in by a password or by Microsoft), ending
    /// `previous_token`'s session (if any) first.
    pub(crate) async fn open_session(
        &self,
        account: OperatorAccount,
        previous_token: Option<&str>,
    ) -> Result<NewSession, DomainError> {
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
        Ok(NewSession {
            active: ActiveSession {
                account,
                csrf_token: csrf_token_for(&token),
                session,
            },
            token: SecretString::from(token),
        })
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

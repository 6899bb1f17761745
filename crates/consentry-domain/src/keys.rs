//! Service API keys of an organization, for the token API: created (the key is shown once, only its
//! SHA-256 is stored), listed, revoked, and resolved when a service presents one. The JSON API and the
//! CLI call this one service, so both apply the same name rule and write the same audit entries.

use base64::Engine;
use secrecy::SecretString;
use sha2::{Digest, Sha256};
use time::OffsetDateTime;

use crate::access::{AccountScope, Action, Caller, Role};
use crate::audit::AuditAction;
use crate::error::DomainError;
use crate::ids::{ApiKeyId, OrgId};
use crate::model::Actor;
use crate::ports::ApiKey;
use crate::service::Consentry;

/// The longest key name accepted.
pub const MAX_KEY_NAME_LEN: usize = 64;
/// How service API keys start (personal access tokens start with `cpt_`).
pub const API_KEY_PREFIX: &str = "csk_";

/// Hex SHA-256 of a service API key, as stored.
pub fn key_hash(key: &str) -> String {
    hex::encode(key_digest(key))
}

/// SHA-256 of a service API key: what the token API remembers its lookups by (it hex-encodes it
/// only when it asks the store, [`key_hash`]).
pub fn key_digest(key: &str) -> [u8; 32] {
    Sha256::digest(key.as_bytes()).into()
}

/// A new service API key (`csk_` + 256 random bits, base64url).
pub fn new_api_key() -> String {
    let bytes: [u8; 32] = rand::random();
    format!(
        "{API_KEY_PREFIX}{}",
        base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(bytes)
    )
}

/// A key just created: its record and its value, shown this once.
#[derive(Debug)]
pub struct NewApiKey {
    /// The stored record (the key's hash, never the key).
    pub record: ApiKey,
    /// The key, to send as `Authorization: Bearer <key>` to the token API.
    pub key: SecretString,
}

/// The service API keys over the domain services' store, clock and audit log.
#[derive(Debug, Clone)]
pub struct ApiKeys {
    core: Consentry,
}

fn check_key_name(name: &str) -> Result<String, DomainError> {
    let name = name.trim();
    if name.is_empty() || name.chars().count() > MAX_KEY_NAME_LEN {
        return Err(DomainError::invalid(
            "name",
            format!("must have 1 to {MAX_KEY_NAME_LEN} characters"),
        ));
    }
    Ok(name.to_string())
}

impl ApiKeys {
    /// The service over `core`.
    pub fn new(core: Consentry) -> Self {
        Self { core }
    }

    /// Creates a key for `org`, named `name` (1 to [`MAX_KEY_NAME_LEN`] characters, trimmed), and
    /// records `api_key_created`.
    pub async fn create(
        &self,
        caller: &Caller,
        org: OrgId,
        name: &str,
    ) -> Result<NewApiKey, DomainError> {
        caller.may(Action::ManageSettings, Some(org))?;
        self.core.organization(org).await?;
        let name = check_key_name(name)?;
        let key = new_api_key();
        let record = ApiKey {
            id: ApiKeyId::new_random(),
            org_id: org,
            name,
            key_hash: key_hash(&key),
            created_at: self.core.clock().now(),
            revoked_at: None,
            last_used_at: None,
        };
        self.core.store().insert_api_key(&record).await?;
        self.core
            .audit()
            .record(
                &caller.actor,
                Some(org),
                AuditAction::ApiKeyCreated,
                format!("api_key:{}", record.id),
                serde_json::json!({ "name": record.name }),
            )
            .await;
        Ok(NewApiKey {
            record,
            key: SecretString::from(key),
        })
    }

    /// The keys (never their values) of `org`, or of every organization the caller sees.
    pub async fn list(
        &self,
        caller: &Caller,
        org: Option<OrgId>,
    ) -> Result<Vec<ApiKey>, DomainError> {
        caller.may(Action::Read, org)?;
        if let Some(o) = org {
            self.core.organization(o).await?;
        }
        Ok(self
            .core
            .store()
            .list_api_keys(org.or(caller.org()))
            .await?)
    }

    /// Revokes an active key, of `org` when given (else of any organization the caller sees), and
    /// records `api_key_revoked`. A key that is unknown, already revoked or of another organization
    /// is "active service API key … was not found". Returns the revoked key.
    pub async fn revoke(
        &self,
        caller: &Caller,
        org: Option<OrgId>,
        id: ApiKeyId,
    ) -> Result<ApiKey, DomainError> {
        if let Some(o) = org {
            caller.may(Action::ManageSettings, Some(o))?;
        }
        let not_found = || DomainError::NotFound {
            what: "active service API key",
            id: id.to_string(),
        };
        let key = self
            .core
            .store()
            .list_api_keys(org.or(caller.org()))
            .await?
            .into_iter()
            .find(|k| k.id == id && k.revoked_at.is_none())
            .ok_or_else(not_found)?;
        caller.may_on(
            Action::ManageSettings,
            "active service API key",
            &id.to_string(),
            key.org_id,
        )?;
        if !self
            .core
            .store()
            .revoke_api_key(id, self.core.clock().now())
            .await?
        {
            return Err(not_found());
        }
        self.core
            .audit()
            .record(
                &caller.actor,
                Some(key.org_id),
                AuditAction::ApiKeyRevoked,
                format!("api_key:{id}"),
                serde_json::json!({}),
            )
            .await;
        Ok(key)
    }

    /// The active (not revoked) key with this value, if any.
    pub async fn active(&self, key: &str) -> Result<Option<ApiKey>, DomainError> {
        self.active_by_hash(&key_hash(key)).await
    }

    /// The active (not revoked) key with this [`key_hash`], if any.
    pub async fn active_by_hash(&self, hash: &str) -> Result<Option<ApiKey>, DomainError> {
        Ok(self
            .core
            .store()
            .find_api_key(hash)
            .await?
            .filter(|k| k.revoked_at.is_none()))
    }

    /// Records that the token API accepted the key at `at`.
    pub async fn touch(&self, id: ApiKeyId, at: OffsetDateTime) -> Result<(), DomainError> {
        self.core.store().touch_api_key(id, at).await?;
        Ok(())
    }
}

/// The caller a service API key is: a reader of its organization, recorded as `service:<name>`.
/// The token API authorizes with it through [`Caller::may`] like every other surface.
pub fn service_caller(key: &ApiKey) -> Caller {
    Caller {
        scope: AccountScope::Organization(key.org_id),
        role: Role::Viewer,
        actor: Actor::Operator(format!("service:{}", key.name)),
        account_id: None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_are_trimmed_and_bounded() {
        assert_eq!(check_key_name("  billing ").unwrap(), "billing");
        for bad in ["", "   ", &"x".repeat(MAX_KEY_NAME_LEN + 1)] {
            match check_key_name(bad) {
                Err(DomainError::Invalid { field, message }) => {
                    assert_eq!(field, "name");
                    assert_eq!(message, "must have 1 to 64 characters");
                }
                other => panic!("{bad:?}: {other:?}"),
            }
        }
        assert!(check_key_name(&"é".repeat(MAX_KEY_NAME_LEN)).is_ok());
    }

    #[test]
    fn keys_are_prefixed_random_and_hashed() {
        let (a, b) = (new_api_key(), new_api_key());
        assert!(a.starts_with(API_KEY_PREFIX) && a.len() == 4 + 43, "{a}");
        assert_ne!(a, b);
        assert_eq!(
            key_hash("abc"),
            "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad"
        );
    }

    #[test]
    fn a_service_key_reads_its_own_organization_only() {
        let (mine, other) = (OrgId::new_random(), OrgId::new_random());
        let key = ApiKey {
            id: ApiKeyId::new_random(),
            org_id: mine,
            name: "billing".into(),
            key_hash: String::new(),
            created_at: OffsetDateTime::UNIX_EPOCH,
            revoked_at: None,
            last_used_at: None,
        };
        let c = service_caller(&key);
        assert_eq!(c.actor, Actor::Operator("service:billing".into()));
        assert!(c.may(Action::Read, Some(mine)).is_ok());
        assert!(matches!(
            c.may_on(Action::Read, "tenant", "contoso.com", other),
            Err(DomainError::NotFound { what: "tenant", .. })
        ));
        assert!(c.may(Action::ManageSettings, Some(mine)).is_err());
    }
}

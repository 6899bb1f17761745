//! The audit log as stored: its actions, entries and chain head, how an entry is chained to the
//! previous one (the store computes it inside its append), and the port.

use serde::Serialize;
use sha2::{Digest as _, Sha256};
use time::OffsetDateTime;

use crate::ids::OrgId;
use crate::model::Actor;

/// The hash before the first entry (hex of 32 zero bytes).
pub const GENESIS_HASH: &str = "0000000000000000000000000000000000000000000000000000000000000000";

/// What happened. The stable code ([`AuditAction::as_str`]) is what is stored and hashed.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize)]
#[serde(rename_all = "snake_case")]
#[non_exhaustive]
pub enum AuditAction {
    /// A console sign-in succeeded.
    SignIn,
    /// A console sign-in was refused.
    SignInFailed,
    /// A console session was ended.
    SignOut,
    /// A re-authorization started.
    ReauthorizationStarted,
    /// A re-authorization completed.
    ReauthorizationCompleted,
    /// A re-authorization failed (Microsoft's answer did not pass).
    ReauthorizationFailed,
    /// A re-authorization was cancelled.
    ReauthorizationCancelled,
    /// An access token was issued to a service.
    TokenIssued,
    /// A check was run by hand ("check now").
    CheckRun,
    /// An organization was created.
    OrganizationCreated,
    /// An organization's settings changed.
    OrganizationUpdated,
    /// An organization was deleted.
    OrganizationDeleted,
    /// A tenant was connected.
    TenantCreated,
    /// A tenant was disconnected.
    TenantDeleted,
    /// A tenant was proved to be its organization's (a consent in it).
    TenantVerified,
    /// A tenant connected by typing its ID was removed because an administrator of the tenant
    /// connected it by consent elsewhere (the entry names no other organization).
    TenantSuperseded,
    /// An app profile was created.
    ProfileCreated,
    /// An app profile was deleted.
    ProfileDeleted,
    /// A webhook was added.
    WebhookCreated,
    /// A webhook was removed.
    WebhookDeleted,
    /// A service API key was created.
    ApiKeyCreated,
    /// A service API key was revoked.
    ApiKeyRevoked,
    /// An operator account was created.
    AccountCreated,
    /// An operator account was deleted.
    AccountDeleted,
    /// An invitation of an organization's first admin was created.
    InvitationCreated,
    /// The master key was rotated (platform level).
    MasterKeyRotated,
    /// The old master key was retired (platform level).
    MasterKeyRetired,
    /// A consent campaign was started.
    CampaignStarted,
    /// A campaign's invitation was sent again.
    CampaignResent,
    /// A consent campaign was cancelled.
    CampaignCancelled,
}

impl AuditAction {
    /// Every action, for parsing.
    pub const ALL: &'static [AuditAction] = &[
        Self::SignIn,
        Self::SignInFailed,
        Self::SignOut,
        Self::ReauthorizationStarted,
        Self::ReauthorizationCompleted,
        Self::ReauthorizationFailed,
        Self::ReauthorizationCancelled,
        Self::TokenIssued,
        Self::CheckRun,
        Self::OrganizationCreated,
        Self::OrganizationUpdated,
        Self::OrganizationDeleted,
        Self::TenantCreated,
        Self::TenantDeleted,
        Self::TenantVerified,
        Self::TenantSuperseded,
        Self::ProfileCreated,
        Self::ProfileDeleted,
        Self::WebhookCreated,
        Self::WebhookDeleted,
        Self::ApiKeyCreated,
        Self::ApiKeyRevoked,
        Self::AccountCreated,
        Self::AccountDeleted,
        Self::InvitationCreated,
        Self::MasterKeyRotated,
        Self::MasterKeyRetired,
        Self::CampaignStarted,
        Self::CampaignResent,
        Self::CampaignCancelled,
    ];

    /// The stable code stored in the log.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::SignIn => "sign_in",
            Self::SignInFailed => "sign_in_failed",
            Self::SignOut => "sign_out",
            Self::ReauthorizationStarted => "reauthorization_started",
            Self::ReauthorizationCompleted => "reauthorization_completed",
            Self::ReauthorizationFailed => "reauthorization_failed",
            Self::ReauthorizationCancelled => "reauthorization_cancelled",
            Self::TokenIssued => "token_issued",
            Self::CheckRun => "check_run",
            Self::OrganizationCreated => "organization_created",
            Self::OrganizationUpdated => "organization_updated",
            Self::OrganizationDeleted => "organization_deleted",
            Self::TenantCreated => "tenant_created",
            Self::TenantDeleted => "tenant_deleted",
            Self::TenantVerified => "tenant_verified",
            Self::TenantSuperseded => "tenant_superseded",
            Self::ProfileCreated => "profile_created",
            Self::ProfileDeleted => "profile_deleted",
            Self::WebhookCreated => "webhook_created",
            Self::WebhookDeleted => "webhook_deleted",
            Self::ApiKeyCreated => "api_key_created",
            Self::ApiKeyRevoked => "api_key_revoked",
            Self::AccountCreated => "account_created",
            Self::AccountDeleted => "account_deleted",
            Self::InvitationCreated => "invitation_created",
            Self::MasterKeyRotated => "master_key_rotated",
            Self::MasterKeyRetired => "master_key_retired",
            Self::CampaignStarted => "campaign_started",
            Self::CampaignResent => "campaign_resent",
            Self::CampaignCancelled => "campaign_cancelled",
        }
    }

    /// Parses a stable code.
    pub fn parse(code: &str) -> Option<Self> {
        Self::ALL.iter().copied().find(|a| a.as_str() == code)
    }
}

impl std::fmt::Display for AuditAction {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// An entry to append: everything but its place in the chain.
#[derive(Debug, Clone, PartialEq)]
pub struct NewAuditEntry {
    /// When it happened.
    pub at: OffsetDateTime,
    /// Who did it.
    pub actor: Actor,
    /// The organization it concerns (None for platform-level events).
    pub org_id: Option<OrgId>,
    /// What happened.
    pub action: AuditAction,
    /// What it was done to (e.g. `profile:<id>`, `account:<name>`).
    pub target: String,
    /// A small JSON object with details; never a secret.
    pub detail: serde_json::Value,
}

/// A stored entry.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct AuditEntry {
    /// Its place in the chain: 1, 2, 3, … with no gaps.
    pub seq: u64,
    /// When it happened.
    #[serde(with = "time::serde::rfc3339")]
    pub at: OffsetDateTime,
    /// Who did it.
    pub actor: Actor,
    /// The organization (None for platform-level events).
    pub org_id: Option<OrgId>,
    /// The stable action code as stored (kept as text so that an entry written by a newer build still
    /// verifies).
    pub action: String,
    /// What it was done to.
    pub target: String,
    /// Details (JSON object).
    pub detail: serde_json::Value,
    /// The previous entry's hash (hex).
    pub prev_hash: String,
    /// This entry's hash (hex): SHA-256(prev_hash || canonical encoding).
    pub hash: String,
}

/// The end of the chain: the last entry's sequence number and hash (0 and [`GENESIS_HASH`] when the
/// log is empty).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AuditHead {
    /// The last sequence number.
    pub seq: u64,
    /// The last hash (hex).
    pub hash: String,
}

impl AuditHead {
    /// The head of an empty log.
    pub fn genesis() -> Self {
        Self {
            seq: 0,
            hash: GENESIS_HASH.to_string(),
        }
    }
}

fn put(out: &mut Vec<u8>, part: &[u8]) {
    let len = u64::try_from(part.len()).unwrap_or(u64::MAX);
    out.extend_from_slice(&len.to_be_bytes());
    out.extend_from_slice(part);
}

/// JSON with object keys sorted and no insignificant whitespace, whatever the map type in use.
pub fn canonical_json(v: &serde_json::Value) -> String {
    let mut out = String::new();
    write_canonical(v, &mut out);
    out
}

fn write_canonical(v: &serde_json::Value, out: &mut String) {
    match v {
        serde_json::Value::Object(map) => {
            let mut keys: Vec<&String> = map.keys().collect();
            keys.sort();
            out.push('{');
            for (i, k) in keys.into_iter().enumerate() {
                if i > 0 {
                    out.push(',');
                }
                out.push_str(&serde_json::Value::String(k.clone()).to_string());
                out.push(':');
                if let Some(value) = map.get(k) {
                    write_canonical(value, out);
                }
            }
            out.push('}');
        }
        serde_json::Value::Array(items) => {
            out.push('[');
            for (i, item) in items.iter().enumerate() {
                if i > 0 {
                    out.push(',');
                }
                write_canonical(item, out);
            }
            out.push(']');
        }
        other => out.push_str(&other.to_string()),
    }
}

/// The actor as stable text for hashing: `operator:<name>` or `system`.
fn actor_code(actor: &Actor) -> String {
    match actor {
        Actor::Operator(n) => format!("operator:{n}"),
        Actor::System => "system".to_string(),
    }
}

/// The bytes an entry's hash covers after the previous hash: a version label, then each field
/// length-prefixed (sequence number, time in Unix nanoseconds, actor, organization, action, target,
/// canonical JSON detail), so that no two different entries encode alike.
#[allow(clippy::too_many_arguments)]
pub fn canonical_encoding(
    seq: u64,
    at: OffsetDateTime,
    actor: &Actor,
    org_id: Option<OrgId>,
    action: &str,
    target: &str,
    detail: &serde_json::Value,
) -> Vec<u8> {
    let mut out = Vec::with_capacity(256);
    put(&mut out, b"consentry/audit/v1");
    put(&mut out, &seq.to_be_bytes());
    put(&mut out, &at.unix_timestamp_nanos().to_be_bytes());
    put(&mut out, actor_code(actor).as_bytes());
    put(
        &mut out,
        org_id.map(|o| o.to_string()).unwrap_or_default().as_bytes(),
    );
    put(&mut out, action.as_bytes());
    put(&mut out, target.as_bytes());
    put(&mut out, canonical_json(detail).as_bytes());
    out
}

/// `hex(SHA-256(prev_hash || encoding))`; `prev_hash` is hex (a malformed one hashes as its text, so
/// it never verifies against a well-formed chain).
pub fn chain_hash(prev_hash: &str, encoding: &[u8]) -> String {
    let mut h = Sha256::new();
    match hex::decode(prev_hash) {
        Ok(bytes) if bytes.len() == 32 => h.update(&bytes),
        _ => h.update(prev_hash.as_bytes()),
    }
    h.update(encoding);
    hex::encode(h.finalize())
}

impl AuditEntry {
    /// The entry `new` becomes when appended after `head`.
    pub fn chained(head: &AuditHead, new: &NewAuditEntry) -> Self {
        let seq = head.seq + 1;
        let action = new.action.as_str().to_string();
        let encoding = canonical_encoding(
            seq,
            new.at,
            &new.actor,
            new.org_id,
            &action,
            &new.target,
            &new.detail,
        );
        Self {
            seq,
            at: new.at,
            actor: new.actor.clone(),
            org_id: new.org_id,
            action,
            target: new.target.clone(),
            detail: new.detail.clone(),
            prev_hash: head.hash.clone(),
            hash: chain_hash(&head.hash, &encoding),
        }
    }

    /// The hash this entry's content and stored previous hash give.
    pub fn computed_hash(&self) -> String {
        chain_hash(
            &self.prev_hash,
            &canonical_encoding(
                self.seq,
                self.at,
                &self.actor,
                self.org_id,
                &self.action,
                &self.target,
                &self.detail,
            ),
        )
    }
}

/// The audit log's port. Part of [`Store`](super::Store): no update and no delete exist for it.
#[async_trait::async_trait]
pub trait AuditStore: Send + Sync {
    /// Appends an entry after the current head, atomically: the head is locked for the append, so
    /// concurrent appends (on any replica) each get the next sequence number and link to the one
    /// before. Returns the stored entry.
    async fn append_audit(
        &self,
        entry: &NewAuditEntry,
    ) -> Result<AuditEntry, crate::ports::StoreError>;
    /// Entries after `after_seq` (all from the start when None), oldest first, at most `limit`;
    /// only `org`'s when given.
    async fn list_audit(
        &self,
        org: Option<OrgId>,
        after_seq: Option<u64>,
        limit: u32,
    ) -> Result<Vec<AuditEntry>, crate::ports::StoreError>;
    /// Entries before `before_seq` (from the newest when None), newest first, at most `limit`; only
    /// `org`'s when given.
    async fn list_audit_newest(
        &self,
        org: Option<OrgId>,
        before_seq: Option<u64>,
        limit: u32,
    ) -> Result<Vec<AuditEntry>, crate::ports::StoreError>;
    /// The chain's head.
    async fn audit_head(&self) -> Result<AuditHead, crate::ports::StoreError>;
}

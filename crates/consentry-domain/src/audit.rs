//! The audit log: every security-relevant action, append-only and hash-chained so that tampering is
//! detectable.
//!
//! Each entry carries a sequence number (1, 2, 3, … with no gaps), the time, the actor, the
//! organization (none for platform-level events), a stable action code, a target and a small JSON
//! detail that never holds a secret. Its hash is `SHA-256(prev_hash || canonical encoding)`, where
//! `prev_hash` is the previous entry's hash (32 zero bytes before the first entry) and the canonical
//! encoding is [`canonical_encoding`]. The store keeps the chain's head (last sequence number and
//! hash) in a row it locks for every append, so concurrent writers on any replica extend one linear
//! chain; [`ChainVerifier`] walks the entries in order and names the first one that breaks it.
//!
//! Recording never makes the recorded action fail: [`AuditLog::record`] runs after the action
//! succeeded, and if the store refuses the entry the failure is logged at error level (action,
//! target and organization only — never a secret) and the action's result stands. A missing entry
//! therefore shows as an error in the logs, not as a lost action.

use std::sync::Arc;

use serde::Serialize;
use sha2::{Digest as _, Sha256};
use time::OffsetDateTime;

use crate::error::DomainError;
use crate::ids::OrgId;
use crate::model::Actor;
use crate::ports::{Clock, Store};

/// The hash before the first entry (hex of 32 zero bytes).
pub const GENESIS_HASH: &str = "0000000000000000000000000000000000000000000000000000000000000000";

/// The most entries returned in one page.
pub const MAX_AUDIT_PAGE: u32 = 500;

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
    /// The master key was rotated (platform level).
    MasterKeyRotated,
    /// The old master key was retired (platform level).
    MasterKeyRetired,
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
        Self::ProfileCreated,
        Self::ProfileDeleted,
        Self::WebhookCreated,
        Self::WebhookDeleted,
        Self::ApiKeyCreated,
        Self::ApiKeyRevoked,
        Self::AccountCreated,
        Self::AccountDeleted,
        Self::MasterKeyRotated,
        Self::MasterKeyRetired,
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
            Self::ProfileCreated => "profile_created",
            Self::ProfileDeleted => "profile_deleted",
            Self::WebhookCreated => "webhook_created",
            Self::WebhookDeleted => "webhook_deleted",
            Self::ApiKeyCreated => "api_key_created",
            Self::ApiKeyRevoked => "api_key_revoked",
            Self::AccountCreated => "account_created",
            Self::AccountDeleted => "account_deleted",
            Self::MasterKeyRotated => "master_key_rotated",
            Self::MasterKeyRetired => "master_key_retired",
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

/// Why the chain is broken at an entry.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum BreakReason {
    /// Entries are missing before this one (deleted rows).
    #[error("entries {expected} to {} are missing (deleted)", .found - 1)]
    Missing {
        /// The sequence number that should have come.
        expected: u64,
        /// The one found instead.
        found: u64,
    },
    /// The entry's sequence number repeats or goes back (rows reordered or duplicated).
    #[error(
        "its sequence number comes out of order after entry {previous} (reordered or duplicated)"
    )]
    OutOfOrder {
        /// The previous entry's sequence number.
        previous: u64,
    },
    /// The entry's content does not give its hash (the row was edited).
    #[error("its content does not match its hash (the entry was edited)")]
    Edited,
    /// The entry does not link to the previous entry's hash (reordered, or a preceding entry was
    /// replaced).
    #[error(
        "it does not link to the previous entry's hash (entries were reordered, or the one before it was replaced)"
    )]
    Unlinked,
    /// The log ends before the recorded head (the last entries were deleted).
    #[error(
        "the log ends at entry {last} but the chain's head records entry {head} (the last entries were deleted)"
    )]
    Truncated {
        /// The last entry present.
        last: u64,
        /// The head's sequence number.
        head: u64,
    },
    /// The recorded head does not match the last entry (the head row or the last entry was altered).
    #[error(
        "the chain's head does not match the last entry (the head or the last entry was altered)"
    )]
    HeadMismatch,
}

/// The first place the chain is broken.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("audit entry {seq} breaks the chain: {reason}")]
pub struct ChainBreak {
    /// The first broken entry's sequence number.
    pub seq: u64,
    /// Why.
    pub reason: BreakReason,
}

/// Checks entries one at a time in sequence order, so a log of any length is verified page by page.
#[derive(Debug, Clone)]
pub struct ChainVerifier {
    prev: AuditHead,
}

impl Default for ChainVerifier {
    fn default() -> Self {
        Self {
            prev: AuditHead::genesis(),
        }
    }
}

impl ChainVerifier {
    /// A verifier at the start of the log.
    pub fn new() -> Self {
        Self::default()
    }

    /// Entries checked so far (the last sequence number).
    pub fn checked(&self) -> u64 {
        self.prev.seq
    }

    /// Checks the next entry.
    pub fn push(&mut self, e: &AuditEntry) -> Result<(), ChainBreak> {
        let fail = |reason| ChainBreak { seq: e.seq, reason };
        let expected = self.prev.seq + 1;
        if e.seq < expected {
            return Err(fail(BreakReason::OutOfOrder {
                previous: self.prev.seq,
            }));
        }
        if e.seq > expected {
            return Err(ChainBreak {
                seq: expected,
                reason: BreakReason::Missing {
                    expected,
                    found: e.seq,
                },
            });
        }
        if e.computed_hash() != e.hash {
            return Err(fail(BreakReason::Edited));
        }
        if e.prev_hash != self.prev.hash {
            return Err(fail(BreakReason::Unlinked));
        }
        self.prev = AuditHead {
            seq: e.seq,
            hash: e.hash.clone(),
        };
        Ok(())
    }

    /// Ends the walk against the store's recorded head; returns the number of entries.
    pub fn finish(self, head: &AuditHead) -> Result<u64, ChainBreak> {
        if head.seq > self.prev.seq {
            return Err(ChainBreak {
                seq: self.prev.seq + 1,
                reason: BreakReason::Truncated {
                    last: self.prev.seq,
                    head: head.seq,
                },
            });
        }
        if head.seq < self.prev.seq || head.hash != self.prev.hash {
            return Err(ChainBreak {
                seq: self.prev.seq,
                reason: BreakReason::HeadMismatch,
            });
        }
        Ok(self.prev.seq)
    }
}

/// Verifies a whole log held in memory against its head.
pub fn verify(entries: &[AuditEntry], head: &AuditHead) -> Result<u64, ChainBreak> {
    let mut v = ChainVerifier::new();
    for e in entries {
        v.push(e)?;
    }
    v.finish(head)
}

/// The audit log's port. Part of [`Store`]: no update and no delete exist for it.
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

/// A page of entries, newest first.
#[derive(Debug, Clone, Serialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct AuditPage {
    /// The entries.
    pub entries: Vec<AuditEntry>,
    /// Pass as `before` to get the next (older) page; None on the last page.
    pub next_before: Option<u64>,
}

/// The audit service over the store: records entries, pages through them and verifies the chain.
#[derive(Debug, Clone)]
pub struct AuditLog {
    store: Arc<dyn Store>,
    clock: Arc<dyn Clock>,
}

impl AuditLog {
    /// Builds the service.
    pub fn new(store: Arc<dyn Store>, clock: Arc<dyn Clock>) -> Self {
        Self { store, clock }
    }

    /// Records an action that has happened. Never fails: a refused append is logged at error level
    /// (action, target and organization; the detail is left out of the log line) and the action stands.
    pub async fn record(
        &self,
        actor: &Actor,
        org_id: Option<OrgId>,
        action: AuditAction,
        target: impl Into<String>,
        detail: serde_json::Value,
    ) -> Option<AuditEntry> {
        let entry = NewAuditEntry {
            at: self.clock.now(),
            actor: actor.clone(),
            org_id,
            action,
            target: target.into(),
            detail,
        };
        match self.store.append_audit(&entry).await {
            Ok(stored) => Some(stored),
            Err(e) => {
                tracing::error!(
                    audit.action = action.as_str(),
                    audit.target = %entry.target,
                    audit.org = ?org_id.map(|o| o.to_string()),
                    error = %e,
                    "the audit log refused an entry; the action itself was carried out"
                );
                None
            }
        }
    }

    /// One page of the log (of one organization, or all), newest first.
    pub async fn page(
        &self,
        org: Option<OrgId>,
        before: Option<u64>,
        limit: u32,
    ) -> Result<AuditPage, DomainError> {
        let limit = limit.clamp(1, MAX_AUDIT_PAGE);
        let mut entries = self.store.list_audit_newest(org, before, limit + 1).await?;
        let more = entries.len() > limit as usize;
        entries.truncate(limit as usize);
        let next_before = if more {
            entries.last().map(|e| e.seq)
        } else {
            None
        };
        Ok(AuditPage {
            entries,
            next_before,
        })
    }

    /// Every entry (of one organization, or all), oldest first, read page by page.
    pub async fn all(&self, org: Option<OrgId>) -> Result<Vec<AuditEntry>, DomainError> {
        let mut out: Vec<AuditEntry> = Vec::new();
        loop {
            let after = out.last().map(|e| e.seq);
            let page = self.store.list_audit(org, after, MAX_AUDIT_PAGE).await?;
            let n = page.len();
            out.extend(page);
            if n < MAX_AUDIT_PAGE as usize {
                return Ok(out);
            }
        }
    }

    /// Verifies the whole chain page by page: `Ok(Ok(n))` when all `n` entries are intact,
    /// `Ok(Err(break))` naming the first broken entry.
    pub async fn verify(&self) -> Result<Result<u64, ChainBreak>, DomainError> {
        let head = self.store.audit_head().await?;
        let mut v = ChainVerifier::new();
        let mut after: Option<u64> = None;
        loop {
            let page = self.store.list_audit(None, after, MAX_AUDIT_PAGE).await?;
            for e in &page {
                if let Err(b) = v.push(e) {
                    return Ok(Err(b));
                }
            }
            match page.last() {
                Some(last) if page.len() == MAX_AUDIT_PAGE as usize => after = Some(last.seq),
                _ => break,
            }
        }
        Ok(v.finish(&head))
    }
}

/// An export format of the audit log.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ExportFormat {
    /// One JSON object per line.
    Jsonl,
    /// Comma-separated values with a header row.
    Csv,
}

impl ExportFormat {
    /// Parses `jsonl` or `csv`.
    pub fn parse(s: &str) -> Result<Self, DomainError> {
        match s.trim().to_ascii_lowercase().as_str() {
            "jsonl" => Ok(Self::Jsonl),
            "csv" => Ok(Self::Csv),
            other => Err(DomainError::invalid(
                "format",
                format!("unknown export format {other:?}; use jsonl or csv"),
            )),
        }
    }

    /// The media type of the export.
    pub fn content_type(self) -> &'static str {
        match self {
            Self::Jsonl => "application/x-ndjson",
            Self::Csv => "text/csv; charset=utf-8",
        }
    }

    /// The file extension.
    pub fn extension(self) -> &'static str {
        match self {
            Self::Jsonl => "jsonl",
            Self::Csv => "csv",
        }
    }
}

/// One CSV field: quoted when it holds a separator, a quote or a line break; a leading `=`, `+`, `-`,
/// `@`, tab or carriage return is prefixed with `'` so that a spreadsheet never runs it as a formula.
fn csv_field(s: &str) -> String {
    let guarded = if s.starts_with(['=', '+', '-', '@', '\t', '\r']) {
        format!("'{s}")
    } else {
        s.to_string()
    };
    if guarded.contains([',', '"', '\n', '\r']) {
        format!("\"{}\"", guarded.replace('"', "\"\""))
    } else {
        guarded
    }
}

/// The entries in `format` (entries in the order given; each line ends with a newline).
pub fn export(entries: &[AuditEntry], format: ExportFormat) -> String {
    let mut out = String::new();
    match format {
        ExportFormat::Jsonl => {
            for e in entries {
                out.push_str(&serde_json::to_string(e).unwrap_or_default());
                out.push('\n');
            }
        }
        ExportFormat::Csv => {
            out.push_str("seq,at,actor,org_id,action,target,detail,prev_hash,hash\n");
            for e in entries {
                let at =
                    e.at.format(&time::format_description::well_known::Rfc3339)
                        .unwrap_or_default();
                let fields = [
                    e.seq.to_string(),
                    at,
                    e.actor.to_string(),
                    e.org_id.map(|o| o.to_string()).unwrap_or_default(),
                    e.action.clone(),
                    e.target.clone(),
                    canonical_json(&e.detail),
                    e.prev_hash.clone(),
                    e.hash.clone(),
                ];
                let line: Vec<String> = fields.iter().map(|f| csv_field(f)).collect();
                out.push_str(&line.join(","));
                out.push('\n');
            }
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn chain(n: u64) -> (Vec<AuditEntry>, AuditHead) {
        let mut head = AuditHead::genesis();
        let mut out = Vec::new();
        for i in 0..n {
            let e = AuditEntry::chained(
                &head,
                &NewAuditEntry {
                    at: OffsetDateTime::from_unix_timestamp(1_700_000_000 + i as i64).unwrap(),
                    actor: Actor::Operator(format!("op{i}")),
                    org_id: None,
                    action: AuditAction::SignIn,
                    target: format!("account:op{i}"),
                    detail: json!({"ip": "127.0.0.1", "n": i}),
                },
            );
            head = AuditHead {
                seq: e.seq,
                hash: e.hash.clone(),
            };
            out.push(e);
        }
        (out, head)
    }

    #[test]
    fn an_intact_chain_verifies() {
        let (entries, head) = chain(5);
        assert_eq!(verify(&entries, &head), Ok(5));
        assert_eq!(entries[0].prev_hash, GENESIS_HASH);
        assert_eq!(entries[1].prev_hash, entries[0].hash);
        assert_eq!(verify(&[], &AuditHead::genesis()), Ok(0));
    }

    #[test]
    fn each_kind_of_tampering_is_named() {
        let (entries, head) = chain(5);
        let mut edited = entries.clone();
        edited[2].target = "account:mallory".into();
        assert_eq!(
            verify(&edited, &head).unwrap_err(),
            ChainBreak {
                seq: 3,
                reason: BreakReason::Edited
            }
        );
        let mut detail = entries.clone();
        detail[1].detail = json!({"ip": "10.0.0.1", "n": 1});
        assert_eq!(verify(&detail, &head).unwrap_err().seq, 2);

        let mut deleted = entries.clone();
        deleted.remove(1);
        let e = verify(&deleted, &head).unwrap_err();
        assert_eq!(e.seq, 2);
        assert!(
            matches!(
                e.reason,
                BreakReason::Missing {
                    expected: 2,
                    found: 3
                }
            ),
            "{e}"
        );

        // Two rows swapped, with their sequence numbers swapped too so the order looks right.
        let mut swapped = entries.clone();
        swapped.swap(1, 2);
        swapped[1].seq = 2;
        swapped[2].seq = 3;
        assert_eq!(
            verify(&swapped, &head).unwrap_err(),
            ChainBreak {
                seq: 2,
                reason: BreakReason::Edited
            }
        );
        // Rows out of order.
        let mut reordered = entries.clone();
        reordered.swap(1, 2);
        assert_eq!(verify(&reordered, &head).unwrap_err().seq, 2);

        // An edited row rehashed by someone without the rest of the chain: the next one no longer links.
        let mut rehashed = entries.clone();
        rehashed[2].target = "account:mallory".into();
        rehashed[2].hash = rehashed[2].computed_hash();
        assert_eq!(
            verify(&rehashed, &head).unwrap_err(),
            ChainBreak {
                seq: 4,
                reason: BreakReason::Unlinked
            }
        );

        let truncated = &entries[..3];
        assert!(matches!(
            verify(truncated, &head).unwrap_err().reason,
            BreakReason::Truncated { last: 3, head: 5 }
        ));
    }

    #[test]
    fn detail_encoding_ignores_key_order_but_not_values() {
        let a: serde_json::Value =
            serde_json::from_str(r#"{"b":1,"a":{"y":2,"x":[1,"z"]}}"#).unwrap();
        let b: serde_json::Value =
            serde_json::from_str(r#"{"a":{"x":[1,"z"],"y":2},"b":1}"#).unwrap();
        assert_eq!(canonical_json(&a), canonical_json(&b));
        assert_eq!(canonical_json(&a), r#"{"a":{"x":[1,"z"],"y":2},"b":1}"#);
        let c = json!({"a": {"x": [1, "z"], "y": 3}, "b": 1});
        assert_ne!(canonical_json(&a), canonical_json(&c));
    }

    #[test]
    fn encoding_separates_fields() {
        let at = OffsetDateTime::UNIX_EPOCH;
        let d = json!({});
        let one = canonical_encoding(1, at, &Actor::System, None, "ab", "c", &d);
        let two = canonical_encoding(1, at, &Actor::System, None, "a", "bc", &d);
        assert_ne!(one, two);
    }

    #[test]
    fn exports_escape_and_defuse_fields() {
        let (mut entries, _) = chain(2);
        entries[0].target = "=cmd|' /C calc'!A0".into();
        entries[1].target = "a,\"b\"\nc".into();
        let csv = export(&entries, ExportFormat::Csv);
        let lines: Vec<&str> = csv.lines().collect();
        assert_eq!(
            lines[0],
            "seq,at,actor,org_id,action,target,detail,prev_hash,hash"
        );
        assert!(lines[1].contains(",'=cmd|' /C calc'!A0,"), "{}", lines[1]);
        assert!(csv.contains("\"a,\"\"b\"\"\nc\""), "{csv}");
        let jsonl = export(&entries, ExportFormat::Jsonl);
        let parsed: Vec<serde_json::Value> = jsonl
            .lines()
            .map(|l| serde_json::from_str(l).unwrap())
            .collect();
        assert_eq!(parsed.len(), 2);
        assert_eq!(parsed[1]["hash"], entries[1].hash);
        assert_eq!(parsed[0]["seq"], 1);
        assert!(ExportFormat::parse("xml").is_err());
        assert_eq!(ExportFormat::parse(" CSV ").unwrap(), ExportFormat::Csv);
    }

    #[test]
    fn action_codes_round_trip() {
        for a in AuditAction::ALL {
            assert_eq!(AuditAction::parse(a.as_str()), Some(*a));
        }
        assert_eq!(AuditAction::parse("nope"), None);
    }
}

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

use crate::error::DomainError;
use crate::ids::OrgId;
use crate::model::Actor;
pub use crate::ports::audit::{
    AuditAction, AuditEntry, AuditHead, AuditStore, GENESIS_HASH, NewAuditEntry,
    canonical_encoding, canonical_json, chain_hash,
};
use crate::ports::{Clock, Store};

/// The most entries returned in one page.
pub const MAX_AUDIT_PAGE: u32 = 500;

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
    use time::OffsetDateTime;

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

//! Master key rotation on [`SqlStore`]: re-sealing every sealed value under the current key, in
//! batches, while the store stays in use, and counting values by the key that sealed them.
//!
//! Sealed values live in seven columns: `secrets.sealed` (profiles' refresh tokens and certificates,
//! bound to profile ID and kind), `pending_authorizations.sealed_secrets` and
//! `microsoft_sign_in_attempts.sealed_secrets` (bound to the state hash),
//! `pending_connections.sealed_secrets` (bound to the state hash),
//! `webhooks.sealed_secret` (bound to the webhook's ID), `campaign_tenants.sealed_token` (a
//! campaign link's token, bound to its hash) and `email_outbox.sealed_content` (bound to the
//! message's ID). Each is walked in primary-key order, one
//! batch at a time; a value not under the current key is opened (with whichever key sealed it) and
//! sealed again, and written back only if the row still holds the value read (`… AND sealed = $old`),
//! so a secret replaced meanwhile by the running server is never overwritten with an older one.

use std::collections::BTreeMap;

use consentry_domain::StoreError;
use sqlx::AssertSqlSafe;

use super::{SqlStore, db_err, get};
use crate::sealer::{Binding, sealed_key_id};

/// One column holding sealed values.
struct SealedColumn {
    /// Its table (for reports).
    table: &'static str,
    /// Rows after the keyset bound `($1[, $2])`, `LIMIT` as the last parameter; columns `owner`,
    /// `kind` (when `kind` is None) and `sealed`.
    select: &'static str,
    /// The first page (no bound).
    select_first: &'static str,
    /// `SET sealed = $1 WHERE key = $2[ AND kind = $3] AND sealed = $old`.
    update: &'static str,
    /// The sealing kind when it is the same for every row.
    kind: Option<&'static str>,
}

const COLUMNS: &[SealedColumn] = &[
    SealedColumn {
        table: "secrets",
        select: "SELECT profile_id AS owner, kind, sealed FROM secrets WHERE (profile_id, kind) > ($1, $2) \
                 ORDER BY profile_id, kind LIMIT $3",
        select_first: "SELECT profile_id AS owner, kind, sealed FROM secrets ORDER BY profile_id, kind LIMIT $1",
        update: "UPDATE secrets SET sealed = $1 WHERE profile_id = $2 AND kind = $3 AND sealed = $4",
        kind: None,
    },
    SealedColumn {
        table: "pending_authorizations",
        select: "SELECT state_hash AS owner, sealed_secrets AS sealed FROM pending_authorizations \
                 WHERE state_hash > $1 ORDER BY state_hash LIMIT $2",
        select_first: "SELECT state_hash AS owner, sealed_secrets AS sealed FROM pending_authorizations \
                       ORDER BY state_hash LIMIT $1",
        update: "UPDATE pending_authorizations SET sealed_secrets = $1 WHERE state_hash = $2 AND sealed_secrets = $3",
        kind: Some("pending"),
    },
    SealedColumn {
        table: "microsoft_sign_in_attempts",
        select: "SELECT state_hash AS owner, sealed_secrets AS sealed FROM microsoft_sign_in_attempts \
                 WHERE state_hash > $1 ORDER BY state_hash LIMIT $2",
        select_first: "SELECT state_hash AS owner, sealed_secrets AS sealed FROM microsoft_sign_in_attempts \
                       ORDER BY state_hash LIMIT $1",
        update: "UPDATE microsoft_sign_in_attempts SET sealed_secrets = $1 WHERE state_hash = $2 AND sealed_secrets = $3",
        kind: Some("microsoft_sign_in"),
    },
    SealedColumn {
        table: "pending_connections",
        select: "SELECT state_hash AS owner, sealed_secrets AS sealed FROM pending_connections \
                 WHERE state_hash > $1 ORDER BY state_hash LIMIT $2",
        select_first: "SELECT state_hash AS owner, sealed_secrets AS sealed FROM pending_connections \
                       ORDER BY state_hash LIMIT $1",
        update: "UPDATE pending_connections SET sealed_secrets = $1 WHERE state_hash = $2 AND sealed_secrets = $3",
        kind: Some("pending_connection"),
    },
    SealedColumn {
        table: "webhooks",
        select: "SELECT id AS owner, sealed_secret AS sealed FROM webhooks WHERE id > $1 ORDER BY id LIMIT $2",
        select_first: "SELECT id AS owner, sealed_secret AS sealed FROM webhooks ORDER BY id LIMIT $1",
        update: "UPDATE webhooks SET sealed_secret = $1 WHERE id = $2 AND sealed_secret = $3",
        kind: Some("webhook_secret"),
    },
    SealedColumn {
        table: "campaign_tenants",
        select: "SELECT token_hash AS owner, sealed_token AS sealed FROM campaign_tenants \
                 WHERE token_hash > $1 ORDER BY token_hash LIMIT $2",
        select_first: "SELECT token_hash AS owner, sealed_token AS sealed FROM campaign_tenants \
                       ORDER BY token_hash LIMIT $1",
        update: "UPDATE campaign_tenants SET sealed_token = $1 WHERE token_hash = $2 AND sealed_token = $3",
        kind: Some("campaign_link"),
    },
    SealedColumn {
        table: "email_outbox",
        select: "SELECT id AS owner, sealed_content AS sealed FROM email_outbox WHERE id > $1 ORDER BY id LIMIT $2",
        select_first: "SELECT id AS owner, sealed_content AS sealed FROM email_outbox ORDER BY id LIMIT $1",
        update: "UPDATE email_outbox SET sealed_content = $1 WHERE id = $2 AND sealed_content = $3",
        kind: Some("email_content"),
    },
];

/// A sealed value's row.
struct SealedRow {
    owner: String,
    kind: String,
    sealed: Vec<u8>,
}

/// Where a walk over the sealed columns stands.
#[derive(Debug, Clone, Default)]
struct Cursor {
    column: usize,
    after: Option<(String, String)>,
}

/// Progress of a re-sealing walk ([`SqlStore::resealer`]).
#[derive(Debug)]
pub struct Resealer<'a> {
    store: &'a SqlStore,
    batch: u32,
    cursor: Cursor,
    /// Values re-sealed so far.
    pub resealed: u64,
    /// Values that changed under the walk (replaced by a writer meanwhile; the writer sealed them).
    pub skipped: u64,
}

/// Sealed values counted by the key that sealed them.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct KeyCensus {
    /// Key ID (hex) → (table → number of values).
    pub by_key: BTreeMap<String, BTreeMap<&'static str, u64>>,
}

impl KeyCensus {
    /// Values sealed under any key but `key_id`.
    pub fn not_under(&self, key_id: &str) -> u64 {
        self.by_key
            .iter()
            .filter(|(k, _)| k.as_str() != key_id)
            .flat_map(|(_, tables)| tables.values())
            .sum()
    }

    /// Values sealed under `key_id`.
    pub fn under(&self, key_id: &str) -> u64 {
        self.by_key
            .get(key_id)
            .map(|t| t.values().sum())
            .unwrap_or(0)
    }
}

/// What [`SqlStore::open_sample`] found.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct SealSample {
    /// Values opened.
    pub opened: u64,
    /// Values that could not be opened, described.
    pub failures: Vec<String>,
}

impl SqlStore {
    async fn sealed_page(
        &self,
        col: &SealedColumn,
        after: Option<&(String, String)>,
        limit: u32,
    ) -> Result<Vec<SealedRow>, StoreError> {
        let limit = i64::from(limit);
        let q = match after {
            None => sqlx::query(AssertSqlSafe(col.select_first)).bind(limit),
            Some((owner, kind)) => {
                let q = sqlx::query(AssertSqlSafe(col.select)).bind(owner.clone());
                let q = if col.kind.is_none() {
                    q.bind(kind.clone())
                } else {
                    q
                };
                q.bind(limit)
            }
        };
        let rows = q
            .fetch_all(&self.pool)
            .await
            .map_err(|e| db_err("reading sealed values", e))?;
        rows.iter()
            .map(|row| {
                Ok(SealedRow {
                    owner: get(row, "owner")?,
                    kind: match col.kind {
                        Some(k) => k.to_string(),
                        None => get(row, "kind")?,
                    },
                    sealed: get(row, "sealed")?,
                })
            })
            .collect()
    }

    /// Counts every sealed value by the key that sealed it.
    pub async fn key_census(&self) -> Result<KeyCensus, StoreError> {
        let mut census = KeyCensus::default();
        for col in COLUMNS {
            let mut after: Option<(String, String)> = None;
            loop {
                let page = self.sealed_page(col, after.as_ref(), 500).await?;
                for row in &page {
                    let key = sealed_key_id(&row.sealed).unwrap_or_else(|| "malformed".into());
                    *census
                        .by_key
                        .entry(key)
                        .or_default()
                        .entry(col.table)
                        .or_insert(0) += 1;
                }
                match page.last() {
                    Some(last) if page.len() == 500 => {
                        after = Some((last.owner.clone(), last.kind.clone()));
                    }
                    _ => break,
                }
            }
        }
        Ok(census)
    }

    /// Opens up to `per_column` sealed values of each sealed column with the master key(s) this store
    /// holds (nothing is written): proof that the key in use opens what is stored. The failures name
    /// the table and the key that sealed the value, never the value.
    pub async fn open_sample(&self, per_column: u32) -> Result<SealSample, StoreError> {
        let mut sample = SealSample::default();
        for col in COLUMNS {
            for row in self.sealed_page(col, None, per_column.max(1)).await? {
                let binding = Binding {
                    owner: &row.owner,
                    kind: &row.kind,
                };
                match self.sealer.open(binding, &row.sealed) {
                    Ok(_) => sample.opened += 1,
                    Err(e) => sample.failures.push(format!(
                        "a value in {} sealed under key {} could not be opened: {e}",
                        col.table,
                        sealed_key_id(&row.sealed).unwrap_or_else(|| "(malformed)".into())
                    )),
                }
            }
        }
        Ok(sample)
    }

    /// A walk that re-seals, `batch` rows at a time, every value not sealed under the current key.
    pub fn resealer(&self, batch: u32) -> Resealer<'_> {
        Resealer {
            store: self,
            batch: batch.max(1),
            cursor: Cursor::default(),
            resealed: 0,
            skipped: 0,
        }
    }
}

impl Resealer<'_> {
    /// Handles the next batch of rows. Returns false when every column has been walked.
    pub async fn step(&mut self) -> Result<bool, StoreError> {
        let Some(col) = COLUMNS.get(self.cursor.column) else {
            return Ok(false);
        };
        let store = self.store;
        let page = store
            .sealed_page(col, self.cursor.after.as_ref(), self.batch)
            .await?;
        let current = store.sealer.key_id();
        for row in &page {
            if sealed_key_id(&row.sealed).as_deref() == Some(current.as_str()) {
                continue;
            }
            let binding = Binding {
                owner: &row.owner,
                kind: &row.kind,
            };
            let plain = store.sealer.open(binding, &row.sealed).map_err(|e| {
                StoreError::Sealing(format!(
                    "a value in {} could not be opened for re-sealing: {e}",
                    col.table
                ))
            })?;
            let resealed = store
                .sealer
                .seal(binding, &plain)
                .map_err(|e| StoreError::Sealing(e.to_string()))?;
            let q = sqlx::query(AssertSqlSafe(col.update))
                .bind(resealed)
                .bind(row.owner.clone());
            let q = if col.kind.is_none() {
                q.bind(row.kind.clone())
            } else {
                q
            };
            let done = q
                .bind(row.sealed.clone())
                .execute(&store.pool)
                .await
                .map_err(|e| db_err("writing a re-sealed value", e))?;
            if done.rows_affected() == 1 {
                self.resealed += 1;
            } else {
                self.skipped += 1;
            }
        }
        match page.last() {
            Some(last) if page.len() == self.batch as usize => {
                self.cursor.after = Some((last.owner.clone(), last.kind.clone()));
            }
            _ => {
                self.cursor = Cursor {
                    column: self.cursor.column + 1,
                    after: None,
                };
            }
        }
        Ok(self.cursor.column < COLUMNS.len())
    }

    /// Runs every remaining batch; returns the number of values re-sealed.
    pub async fn run(&mut self) -> Result<u64, StoreError> {
        while self.step().await? {}
        Ok(self.resealed)
    }
}

impl SqlStore {
    /// The last step of a rotation: removes the old key file (`<key_path>.old`) once no sealed value
    /// is under any key but the current one. Refuses (`Conflict`, naming how many values under which
    /// keys) otherwise, leaving the file. Returns the retired key's ID, or None when there was no
    /// old key file.
    pub async fn retire_old_key_file(
        &self,
        key_path: &std::path::Path,
    ) -> Result<Option<String>, StoreError> {
        let old_path = crate::sealer::old_key_path(key_path);
        if !old_path.exists() {
            return Ok(None);
        }
        let old_id = crate::sealer::key_file_id(&old_path)
            .map_err(|e| StoreError::Sealing(e.to_string()))?;
        let current = self.sealer.key_id();
        let census = self.key_census().await?;
        let left = census.not_under(&current);
        if left > 0 {
            let keys: Vec<String> = census
                .by_key
                .iter()
                .filter(|(k, _)| **k != current)
                .map(|(k, t)| format!("{k}: {}", t.values().sum::<u64>()))
                .collect();
            return Err(StoreError::Conflict(format!(
                "{left} sealed value(s) are not under the current master key {current} ({}); the old key file \
                 {} is kept. Run `consentry master-key rotate` again to finish re-sealing, then retire",
                keys.join(", "),
                old_path.display()
            )));
        }
        std::fs::remove_file(&old_path).map_err(|e| {
            StoreError::Backend(format!(
                "the old master key file {} could not be removed: {e}",
                old_path.display()
            ))
        })?;
        Ok(Some(old_id))
    }
}

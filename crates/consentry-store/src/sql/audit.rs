//! The audit log on [`SqlStore`] (migration 0005): append-only, hash-chained.
//!
//! An append is one transaction that first bumps the single `audit_head` row
//! (`UPDATE … RETURNING`): on PostgreSQL that takes the row's lock, on SQLite the database's write
//! lock, so every other append — on any connection or replica — waits until this one commits and then
//! sees the new head. The entry's hash is computed by the domain ([`AuditEntry::chained`]) from the head
//! read under the lock, so the chain cannot fork. Nothing here updates or deletes an entry.

use async_trait::async_trait;
use consentry_domain::audit::{AuditEntry, AuditHead, AuditStore, NewAuditEntry};
use consentry_domain::{Actor, OrgId, StoreError};
use sqlx::any::AnyRow;

use super::{Arg, Built, SqlStore, db_err, get};
use crate::codec::{json_from_db, json_to_db, parse_from_db, time_from_db, time_to_db};

const COLUMNS: &str = "seq, at, actor, org_id, action, target, detail, prev_hash, hash";

fn seq_to_db(seq: u64) -> Result<i64, StoreError> {
    i64::try_from(seq)
        .map_err(|_| StoreError::Backend(format!("audit sequence number {seq} is out of range")))
}

fn seq_from_db(n: i64) -> Result<u64, StoreError> {
    u64::try_from(n)
        .map_err(|_| StoreError::Backend(format!("column seq holds a negative number {n}")))
}

fn entry_from_row(row: &AnyRow) -> Result<AuditEntry, StoreError> {
    let org: Option<String> = get(row, "org_id")?;
    Ok(AuditEntry {
        seq: seq_from_db(get(row, "seq")?)?,
        at: time_from_db("at", get(row, "at")?)?,
        actor: json_from_db::<Actor>("actor", &get::<String>(row, "actor")?)?,
        org_id: org
            .map(|o| parse_from_db("org_id", &o, OrgId::parse))
            .transpose()?,
        action: get(row, "action")?,
        target: get(row, "target")?,
        detail: json_from_db("detail", &get::<String>(row, "detail")?)?,
        prev_hash: get(row, "prev_hash")?,
        hash: get(row, "hash")?,
    })
}

fn listing(
    org: Option<OrgId>,
    bound: Option<(u64, &str)>,
    order: &str,
    limit: u32,
) -> Result<Built, StoreError> {
    let mut b = Built {
        sql: format!("SELECT {COLUMNS} FROM audit_log"),
        args: Vec::new(),
    };
    let mut conds = Vec::new();
    if let Some(org) = org {
        let p = b.arg(Arg::Text(org.to_string()));
        conds.push(format!("org_id = {p}"));
    }
    if let Some((seq, op)) = bound {
        let p = b.arg(Arg::Int(seq_to_db(seq)?));
        conds.push(format!("seq {op} {p}"));
    }
    if !conds.is_empty() {
        b.sql.push_str(" WHERE ");
        b.sql.push_str(&conds.join(" AND "));
    }
    let pl = b.arg(Arg::Int(i64::from(limit)));
    b.sql.push_str(&format!(" ORDER BY seq {order} LIMIT {pl}"));
    Ok(b)
}

#[async_trait]
impl AuditStore for SqlStore {
    async fn append_audit(&self, entry: &NewAuditEntry) -> Result<AuditEntry, StoreError> {
        let actor = json_to_db("audit actor", &entry.actor)?;
        let detail = consentry_domain::audit::canonical_json(&entry.detail);
        let at = time_to_db(entry.at)?;
        let mut tx = self.begin_write().await?;
        // A write first: it takes the lock before anything is read, so the head read is the latest.
        let row = sqlx::query(
            "UPDATE audit_head SET seq = seq + 1 WHERE slot = 1 RETURNING seq - 1 AS prev_seq, hash",
        )
        .fetch_one(&mut *tx)
        .await
        .map_err(|e| db_err("locking the audit log's head", e))?;
        let head = AuditHead {
            seq: seq_from_db(get(&row, "prev_seq")?)?,
            hash: get(&row, "hash")?,
        };
        let stored = AuditEntry::chained(&head, entry);
        let sql = format!(
            "INSERT INTO audit_log ({COLUMNS}) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9)"
        );
        sqlx::query(sqlx::AssertSqlSafe(sql))
            .bind(seq_to_db(stored.seq)?)
            .bind(at)
            .bind(actor)
            .bind(stored.org_id.map(|o| o.to_string()))
            .bind(stored.action.clone())
            .bind(stored.target.clone())
            .bind(detail)
            .bind(stored.prev_hash.clone())
            .bind(stored.hash.clone())
            .execute(&mut *tx)
            .await
            .map_err(|e| db_err("appending an audit entry", e))?;
        sqlx::query("UPDATE audit_head SET hash = $1 WHERE slot = 1")
            .bind(stored.hash.clone())
            .execute(&mut *tx)
            .await
            .map_err(|e| db_err("moving the audit log's head", e))?;
        tx.commit()
            .await
            .map_err(|e| db_err("committing an audit entry", e))?;
        Ok(stored)
    }

    async fn list_audit(
        &self,
        org: Option<OrgId>,
        after_seq: Option<u64>,
        limit: u32,
    ) -> Result<Vec<AuditEntry>, StoreError> {
        let b = listing(org, after_seq.map(|s| (s, ">")), "ASC", limit)?;
        b.query()
            .fetch_all(&self.pool)
            .await
            .map_err(|e| db_err("listing the audit log", e))?
            .iter()
            .map(entry_from_row)
            .collect()
    }

    async fn list_audit_newest(
        &self,
        org: Option<OrgId>,
        before_seq: Option<u64>,
        limit: u32,
    ) -> Result<Vec<AuditEntry>, StoreError> {
        let b = listing(org, before_seq.map(|s| (s, "<")), "DESC", limit)?;
        b.query()
            .fetch_all(&self.pool)
            .await
            .map_err(|e| db_err("listing the audit log", e))?
            .iter()
            .map(entry_from_row)
            .collect()
    }

    async fn audit_head(&self) -> Result<AuditHead, StoreError> {
        let row = sqlx::query("SELECT seq, hash FROM audit_head WHERE slot = 1")
            .fetch_one(&self.pool)
            .await
            .map_err(|e| db_err("reading the audit log's head", e))?;
        Ok(AuditHead {
            seq: seq_from_db(get(&row, "seq")?)?,
            hash: get(&row, "hash")?,
        })
    }
}

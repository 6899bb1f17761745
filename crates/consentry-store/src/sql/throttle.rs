//! The console's sign-in throttle on [`SqlStore`] (migration 0017): failures per key, counted by one
//! upsert each so that replicas share the count, and the browsers known for an account.

use async_trait::async_trait;
use consentry_domain::{StoreError, ThrottleEntry, ThrottleStore};
use sqlx::AssertSqlSafe;
use time::OffsetDateTime;

use super::{SqlStore, db_err, get, numbered};
use crate::codec::{opt_time_from_db, time_from_db, time_to_db};

#[async_trait]
impl ThrottleStore for SqlStore {
    async fn throttle_locked_until(
        &self,
        keys: &[String],
        now: OffsetDateTime,
    ) -> Result<Option<OffsetDateTime>, StoreError> {
        if keys.is_empty() {
            return Ok(None);
        }
        let sql = format!(
            "SELECT MAX(locked_until) AS until FROM sign_in_throttle \
             WHERE throttle_key IN ({}) AND locked_until > ${}",
            numbered(1, keys.len()),
            keys.len() + 1
        );
        let mut q = sqlx::query(AssertSqlSafe(sql));
        for k in keys {
            q = q.bind(k.clone());
        }
        let row = q
            .bind(time_to_db(now)?)
            .fetch_one(&self.pool)
            .await
            .map_err(|e| db_err("reading sign-in lockouts", e))?;
        opt_time_from_db("locked_until", get(&row, "until")?)
    }

    async fn count_throttle_failure(
        &self,
        key: &str,
        now: OffsetDateTime,
        forget_before: OffsetDateTime,
    ) -> Result<u32, StoreError> {
        let row = sqlx::query(
            "INSERT INTO sign_in_throttle (throttle_key, failures, last_failure, locked_until) \
             VALUES ($1, 1, $2, NULL) \
             ON CONFLICT (throttle_key) DO UPDATE SET \
               failures = CASE WHEN sign_in_throttle.last_failure < $3 THEN 1 \
                               ELSE sign_in_throttle.failures + 1 END, \
               locked_until = CASE WHEN sign_in_throttle.last_failure < $3 THEN NULL \
                                   ELSE sign_in_throttle.locked_until END, \
               last_failure = $2 \
             RETURNING failures",
        )
        .bind(key.to_owned())
        .bind(time_to_db(now)?)
        .bind(time_to_db(forget_before)?)
        .fetch_one(&self.pool)
        .await
        .map_err(|e| db_err("counting a failed sign-in", e))?;
        let n: i64 = get(&row, "failures")?;
        Ok(u32::try_from(n).unwrap_or(u32::MAX))
    }

    async fn lock_throttle_key(&self, key: &str, until: OffsetDateTime) -> Result<(), StoreError> {
        sqlx::query(
            "UPDATE sign_in_throttle SET locked_until = $2 \
             WHERE throttle_key = $1 AND (locked_until IS NULL OR locked_until < $2)",
        )
        .bind(key.to_owned())
        .bind(time_to_db(until)?)
        .execute(&self.pool)
        .await
        .map_err(|e| db_err("locking out a sign-in key", e))?;
        Ok(())
    }

    async fn clear_throttle_keys(&self, keys: &[String]) -> Result<(), StoreError> {
        if keys.is_empty() {
            return Ok(());
        }
        let sql = format!(
            "DELETE FROM sign_in_throttle WHERE throttle_key IN ({})",
            numbered(1, keys.len())
        );
        let mut q = sqlx::query(AssertSqlSafe(sql));
        for k in keys {
            q = q.bind(k.clone());
        }
        q.execute(&self.pool)
            .await
            .map_err(|e| db_err("forgetting sign-in failures", e))?;
        Ok(())
    }

    async fn prune_throttle(&self, before: OffsetDateTime) -> Result<u64, StoreError> {
        let before = time_to_db(before)?;
        let done = sqlx::query(
            "DELETE FROM sign_in_throttle WHERE last_failure < $1 \
             AND (locked_until IS NULL OR locked_until < $1)",
        )
        .bind(before)
        .execute(&self.pool)
        .await
        .map_err(|e| db_err("pruning sign-in failures", e))?;
        Ok(done.rows_affected())
    }

    async fn throttle_entry(&self, key: &str) -> Result<Option<ThrottleEntry>, StoreError> {
        let row = sqlx::query(
            "SELECT failures, last_failure, locked_until FROM sign_in_throttle WHERE throttle_key = $1",
        )
        .bind(key.to_owned())
        .fetch_optional(&self.pool)
        .await
        .map_err(|e| db_err("reading a sign-in throttle entry", e))?;
        row.map(|row| {
            let failures: i64 = get(&row, "failures")?;
            Ok(ThrottleEntry {
                failures: u32::try_from(failures).unwrap_or(u32::MAX),
                last_failure: time_from_db("last_failure", get(&row, "last_failure")?)?,
                locked_until: opt_time_from_db("locked_until", get(&row, "locked_until")?)?,
            })
        })
        .transpose()
    }

    async fn remember_sign_in_device(
        &self,
        token_hash: &str,
        username: &str,
        now: OffsetDateTime,
    ) -> Result<(), StoreError> {
        sqlx::query(
            "INSERT INTO sign_in_devices (token_hash, username, last_used_at) VALUES ($1, $2, $3) \
             ON CONFLICT (token_hash, username) DO UPDATE SET last_used_at = $3",
        )
        .bind(token_hash.to_owned())
        .bind(username.to_owned())
        .bind(time_to_db(now)?)
        .execute(&self.pool)
        .await
        .map_err(|e| db_err("remembering a sign-in device", e))?;
        Ok(())
    }

    async fn is_known_sign_in_device(
        &self,
        token_hash: &str,
        username: &str,
        since: OffsetDateTime,
    ) -> Result<bool, StoreError> {
        let row = sqlx::query(
            "SELECT 1 AS known FROM sign_in_devices \
             WHERE token_hash = $1 AND username = $2 AND last_used_at >= $3",
        )
        .bind(token_hash.to_owned())
        .bind(username.to_owned())
        .bind(time_to_db(since)?)
        .fetch_optional(&self.pool)
        .await
        .map_err(|e| db_err("reading a sign-in device", e))?;
        Ok(row.is_some())
    }

    async fn prune_sign_in_devices(&self, before: OffsetDateTime) -> Result<u64, StoreError> {
        let done = sqlx::query("DELETE FROM sign_in_devices WHERE last_used_at < $1")
            .bind(time_to_db(before)?)
            .execute(&self.pool)
            .await
            .map_err(|e| db_err("pruning sign-in devices", e))?;
        Ok(done.rows_affected())
    }
}

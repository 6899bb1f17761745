//! Service API keys on [`SqlStore`] (migration 0003; last use, migration 0006): only hashes are stored.

use async_trait::async_trait;
use consentry_domain::{ApiKey, ApiKeyId, ApiKeyStore, OrgId, StoreError};
use sqlx::any::AnyRow;
use time::OffsetDateTime;

use super::{SqlStore, db_err, get, is_foreign_key_violation, is_unique_violation};
use crate::codec::{opt_time_from_db, parse_from_db, time_from_db, time_to_db};

const COLUMNS: &str = "id, org_id, name, key_hash, created_at, revoked_at, last_used_at";

fn key_from_row(row: &AnyRow) -> Result<ApiKey, StoreError> {
    Ok(ApiKey {
        id: parse_from_db("id", &get::<String>(row, "id")?, ApiKeyId::parse)?,
        org_id: parse_from_db("org_id", &get::<String>(row, "org_id")?, OrgId::parse)?,
        name: get(row, "name")?,
        key_hash: get(row, "key_hash")?,
        created_at: time_from_db("created_at", get(row, "created_at")?)?,
        revoked_at: opt_time_from_db("revoked_at", get(row, "revoked_at")?)?,
        last_used_at: opt_time_from_db("last_used_at", get(row, "last_used_at")?)?,
    })
}

#[async_trait]
impl ApiKeyStore for SqlStore {
    async fn insert_api_key(&self, key: &ApiKey) -> Result<(), StoreError> {
        let sql =
            format!("INSERT INTO api_keys ({COLUMNS}) VALUES ($1, $2, $3, $4, $5, NULL, NULL)");
        sqlx::query(sqlx::AssertSqlSafe(sql))
            .bind(key.id.to_string())
            .bind(key.org_id.to_string())
            .bind(key.name.clone())
            .bind(key.key_hash.clone())
            .bind(time_to_db(key.created_at)?)
            .execute(&self.pool)
            .await
            .map_err(|e| {
                if is_foreign_key_violation(&e) {
                    StoreError::NotFound(format!("organization {}", key.org_id))
                } else if is_unique_violation(&e) {
                    StoreError::Conflict("an API key with this hash".into())
                } else {
                    db_err("inserting an API key", e)
                }
            })?;
        Ok(())
    }

    async fn find_api_key(&self, key_hash: &str) -> Result<Option<ApiKey>, StoreError> {
        let sql = format!("SELECT {COLUMNS} FROM api_keys WHERE key_hash = $1");
        sqlx::query(sqlx::AssertSqlSafe(sql))
            .bind(key_hash.to_string())
            .fetch_optional(&self.pool)
            .await
            .map_err(|e| db_err("finding an API key", e))?
            .as_ref()
            .map(key_from_row)
            .transpose()
    }

    async fn list_api_keys(&self, org: Option<OrgId>) -> Result<Vec<ApiKey>, StoreError> {
        let rows = match org {
            Some(o) => {
                let sql = format!(
                    "SELECT {COLUMNS} FROM api_keys WHERE org_id = $1 ORDER BY created_at, id"
                );
                sqlx::query(sqlx::AssertSqlSafe(sql))
                    .bind(o.to_string())
                    .fetch_all(&self.pool)
                    .await
            }
            None => {
                let sql = format!("SELECT {COLUMNS} FROM api_keys ORDER BY created_at, id");
                sqlx::query(sqlx::AssertSqlSafe(sql))
                    .fetch_all(&self.pool)
                    .await
            }
        }
        .map_err(|e| db_err("listing API keys", e))?;
        rows.iter().map(key_from_row).collect()
    }

    async fn revoke_api_key(&self, id: ApiKeyId, at: OffsetDateTime) -> Result<bool, StoreError> {
        let done =
            sqlx::query("UPDATE api_keys SET revoked_at = $2 WHERE id = $1 AND revoked_at IS NULL")
                .bind(id.to_string())
                .bind(time_to_db(at)?)
                .execute(&self.pool)
                .await
                .map_err(|e| db_err("revoking an API key", e))?;
        Ok(done.rows_affected() > 0)
    }

    async fn touch_api_key(&self, id: ApiKeyId, at: OffsetDateTime) -> Result<bool, StoreError> {
        let done = sqlx::query("UPDATE api_keys SET last_used_at = $2 WHERE id = $1")
            .bind(id.to_string())
            .bind(time_to_db(at)?)
            .execute(&self.pool)
            .await
            .map_err(|e| db_err("recording an API key's use", e))?;
        Ok(done.rows_affected() > 0)
    }
}

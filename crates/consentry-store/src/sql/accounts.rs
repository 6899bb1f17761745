//! Operator accounts and console sessions on [`SqlStore`] (migration 0004), their roles and personal
//! access tokens (migration 0006).

use async_trait::async_trait;
use consentry_domain::{
    AccountScope, AccountStore, ConsoleSession, OperatorAccount, OrgId, PersonalToken, Role,
    StoreError,
};
use sqlx::any::AnyRow;
use time::OffsetDateTime;
use uuid::Uuid;

use super::{SqlStore, db_err, get, is_foreign_key_violation, is_unique_violation};
use crate::codec::{opt_time_from_db, parse_from_db, time_from_db, time_to_db};

pub(super) const ACCOUNT_COLUMNS: &str = "id, username, org_id, password_hash, created_at, role";
const TOKEN_COLUMNS: &str =
    "id, account_id, name, token_hash, created_at, expires_at, last_used_at, revoked_at";
const SESSION_COLUMNS: &str = "token_hash, account_id, created_at, last_seen_at, expires_at";

fn parse_uuid(s: &str) -> Result<Uuid, uuid::Error> {
    Uuid::parse_str(s)
}

pub(super) fn account_from_row(row: &AnyRow) -> Result<OperatorAccount, StoreError> {
    let org: Option<String> = get(row, "org_id")?;
    Ok(OperatorAccount {
        id: parse_from_db("id", &get::<String>(row, "id")?, parse_uuid)?,
        username: get(row, "username")?,
        scope: match org {
            None => AccountScope::Platform,
            Some(o) => AccountScope::Organization(parse_from_db("org_id", &o, OrgId::parse)?),
        },
        role: parse_from_db("role", &get::<String>(row, "role")?, Role::parse)?,
        password_hash: get(row, "password_hash")?,
        created_at: time_from_db("created_at", get(row, "created_at")?)?,
    })
}

fn token_from_row(row: &AnyRow) -> Result<PersonalToken, StoreError> {
    Ok(PersonalToken {
        id: parse_from_db("id", &get::<String>(row, "id")?, parse_uuid)?,
        account_id: parse_from_db("account_id", &get::<String>(row, "account_id")?, parse_uuid)?,
        name: get(row, "name")?,
        token_hash: get(row, "token_hash")?,
        created_at: time_from_db("created_at", get(row, "created_at")?)?,
        expires_at: time_from_db("expires_at", get(row, "expires_at")?)?,
        last_used_at: opt_time_from_db("last_used_at", get(row, "last_used_at")?)?,
        revoked_at: opt_time_from_db("revoked_at", get(row, "revoked_at")?)?,
    })
}

fn session_from_row(row: &AnyRow) -> Result<ConsoleSession, StoreError> {
    Ok(ConsoleSession {
        token_hash: get(row, "token_hash")?,
        account_id: parse_from_db("account_id", &get::<String>(row, "account_id")?, parse_uuid)?,
        created_at: time_from_db("created_at", get(row, "created_at")?)?,
        last_seen_at: time_from_db("last_seen_at", get(row, "last_seen_at")?)?,
        expires_at: time_from_db("expires_at", get(row, "expires_at")?)?,
    })
}

#[async_trait]
impl AccountStore for SqlStore {
    async fn insert_account(&self, account: &OperatorAccount) -> Result<(), StoreError> {
        let sql = format!(
            "INSERT INTO operator_accounts ({ACCOUNT_COLUMNS}) VALUES ($1, $2, $3, $4, $5, $6)"
        );
        sqlx::query(sqlx::AssertSqlSafe(sql))
            .bind(account.id.hyphenated().to_string())
            .bind(account.username.to_lowercase())
            .bind(account.scope.org().map(|o| o.to_string()))
            .bind(account.password_hash.clone())
            .bind(time_to_db(account.created_at)?)
            .bind(account.role.as_str())
            .execute(&self.pool)
            .await
            .map_err(|e| {
                if is_unique_violation(&e) {
                    StoreError::Conflict(format!("operator account {:?}", account.username))
                } else if is_foreign_key_violation(&e) {
                    StoreError::NotFound(format!(
                        "organization {}",
                        account
                            .scope
                            .org()
                            .map(|o| o.to_string())
                            .unwrap_or_default()
                    ))
                } else {
                    db_err("inserting an operator account", e)
                }
            })?;
        Ok(())
    }

    async fn get_account(&self, id: Uuid) -> Result<Option<OperatorAccount>, StoreError> {
        let sql = format!("SELECT {ACCOUNT_COLUMNS} FROM operator_accounts WHERE id = $1");
        sqlx::query(sqlx::AssertSqlSafe(sql))
            .bind(id.hyphenated().to_string())
            .fetch_optional(&self.pool)
            .await
            .map_err(|e| db_err("reading an operator account", e))?
            .as_ref()
            .map(account_from_row)
            .transpose()
    }

    async fn find_account(&self, username: &str) -> Result<Option<OperatorAccount>, StoreError> {
        let sql = format!("SELECT {ACCOUNT_COLUMNS} FROM operator_accounts WHERE username = $1");
        sqlx::query(sqlx::AssertSqlSafe(sql))
            .bind(username.to_lowercase())
            .fetch_optional(&self.pool)
            .await
            .map_err(|e| db_err("finding an operator account", e))?
            .as_ref()
            .map(account_from_row)
            .transpose()
    }

    async fn list_accounts(&self) -> Result<Vec<OperatorAccount>, StoreError> {
        let sql = format!("SELECT {ACCOUNT_COLUMNS} FROM operator_accounts ORDER BY username");
        sqlx::query(sqlx::AssertSqlSafe(sql))
            .fetch_all(&self.pool)
            .await
            .map_err(|e| db_err("listing operator accounts", e))?
            .iter()
            .map(account_from_row)
            .collect()
    }

    async fn delete_account(&self, id: Uuid) -> Result<bool, StoreError> {
        let mut tx = self.begin_write().await?;
        // ON DELETE CASCADE covers the sessions; deleting explicitly keeps the contract independent of it.
        sqlx::query("DELETE FROM console_sessions WHERE account_id = $1")
            .bind(id.hyphenated().to_string())
            .execute(&mut *tx)
            .await
            .map_err(|e| db_err("deleting an operator account's sessions", e))?;
        sqlx::query("DELETE FROM personal_tokens WHERE account_id = $1")
            .bind(id.hyphenated().to_string())
            .execute(&mut *tx)
            .await
            .map_err(|e| db_err("deleting an operator account's tokens", e))?;
        let done = sqlx::query("DELETE FROM operator_accounts WHERE id = $1")
            .bind(id.hyphenated().to_string())
            .execute(&mut *tx)
            .await
            .map_err(|e| db_err("deleting an operator account", e))?;
        tx.commit()
            .await
            .map_err(|e| db_err("committing an operator account deletion", e))?;
        Ok(done.rows_affected() > 0)
    }

    async fn insert_session(&self, session: &ConsoleSession) -> Result<(), StoreError> {
        let sql =
            format!("INSERT INTO console_sessions ({SESSION_COLUMNS}) VALUES ($1, $2, $3, $4, $5)");
        sqlx::query(sqlx::AssertSqlSafe(sql))
            .bind(session.token_hash.clone())
            .bind(session.account_id.hyphenated().to_string())
            .bind(time_to_db(session.created_at)?)
            .bind(time_to_db(session.last_seen_at)?)
            .bind(time_to_db(session.expires_at)?)
            .execute(&self.pool)
            .await
            .map_err(|e| {
                if is_foreign_key_violation(&e) {
                    StoreError::NotFound(format!("operator account {}", session.account_id))
                } else if is_unique_violation(&e) {
                    StoreError::Conflict("console session".into())
                } else {
                    db_err("inserting a console session", e)
                }
            })?;
        Ok(())
    }

    async fn get_session(&self, token_hash: &str) -> Result<Option<ConsoleSession>, StoreError> {
        let sql = format!("SELECT {SESSION_COLUMNS} FROM console_sessions WHERE token_hash = $1");
        sqlx::query(sqlx::AssertSqlSafe(sql))
            .bind(token_hash.to_string())
            .fetch_optional(&self.pool)
            .await
            .map_err(|e| db_err("reading a console session", e))?
            .as_ref()
            .map(session_from_row)
            .transpose()
    }

    async fn touch_session(
        &self,
        token_hash: &str,
        last_seen_at: OffsetDateTime,
    ) -> Result<bool, StoreError> {
        let done =
            sqlx::query("UPDATE console_sessions SET last_seen_at = $2 WHERE token_hash = $1")
                .bind(token_hash.to_string())
                .bind(time_to_db(last_seen_at)?)
                .execute(&self.pool)
                .await
                .map_err(|e| db_err("touching a console session", e))?;
        Ok(done.rows_affected() > 0)
    }

    async fn delete_session(&self, token_hash: &str) -> Result<bool, StoreError> {
        let done = sqlx::query("DELETE FROM console_sessions WHERE token_hash = $1")
            .bind(token_hash.to_string())
            .execute(&self.pool)
            .await
            .map_err(|e| db_err("deleting a console session", e))?;
        Ok(done.rows_affected() > 0)
    }

    async fn insert_personal_token(&self, token: &PersonalToken) -> Result<(), StoreError> {
        let sql = format!(
            "INSERT INTO personal_tokens ({TOKEN_COLUMNS}) VALUES ($1, $2, $3, $4, $5, $6, NULL, NULL)"
        );
        sqlx::query(sqlx::AssertSqlSafe(sql))
            .bind(token.id.hyphenated().to_string())
            .bind(token.account_id.hyphenated().to_string())
            .bind(token.name.clone())
            .bind(token.token_hash.clone())
            .bind(time_to_db(token.created_at)?)
            .bind(time_to_db(token.expires_at)?)
            .execute(&self.pool)
            .await
            .map_err(|e| {
                if is_foreign_key_violation(&e) {
                    StoreError::NotFound(format!("operator account {}", token.account_id))
                } else if is_unique_violation(&e) {
                    StoreError::Conflict("a personal access token with this hash".into())
                } else {
                    db_err("inserting a personal access token", e)
                }
            })?;
        Ok(())
    }

    async fn find_personal_token(
        &self,
        token_hash: &str,
    ) -> Result<Option<PersonalToken>, StoreError> {
        let sql = format!("SELECT {TOKEN_COLUMNS} FROM personal_tokens WHERE token_hash = $1");
        sqlx::query(sqlx::AssertSqlSafe(sql))
            .bind(token_hash.to_string())
            .fetch_optional(&self.pool)
            .await
            .map_err(|e| db_err("finding a personal access token", e))?
            .as_ref()
            .map(token_from_row)
            .transpose()
    }

    async fn list_personal_tokens(&self, account: Uuid) -> Result<Vec<PersonalToken>, StoreError> {
        let sql = format!(
            "SELECT {TOKEN_COLUMNS} FROM personal_tokens WHERE account_id = $1 ORDER BY created_at, id"
        );
        sqlx::query(sqlx::AssertSqlSafe(sql))
            .bind(account.hyphenated().to_string())
            .fetch_all(&self.pool)
            .await
            .map_err(|e| db_err("listing personal access tokens", e))?
            .iter()
            .map(token_from_row)
            .collect()
    }

    async fn revoke_personal_token(
        &self,
        account: Uuid,
        id: Uuid,
        at: OffsetDateTime,
    ) -> Result<bool, StoreError> {
        let done = sqlx::query(
            "UPDATE personal_tokens SET revoked_at = $3 \
             WHERE id = $1 AND account_id = $2 AND revoked_at IS NULL",
        )
        .bind(id.hyphenated().to_string())
        .bind(account.hyphenated().to_string())
        .bind(time_to_db(at)?)
        .execute(&self.pool)
        .await
        .map_err(|e| db_err("revoking a personal access token", e))?;
        Ok(done.rows_affected() > 0)
    }

    async fn touch_personal_token(&self, id: Uuid, at: OffsetDateTime) -> Result<bool, StoreError> {
        let done = sqlx::query("UPDATE personal_tokens SET last_used_at = $2 WHERE id = $1")
            .bind(id.hyphenated().to_string())
            .bind(time_to_db(at)?)
            .execute(&self.pool)
            .await
            .map_err(|e| db_err("recording a personal access token's use", e))?;
        Ok(done.rows_affected() > 0)
    }

    async fn delete_expired_sessions(
        &self,
        now: OffsetDateTime,
        idle_before: OffsetDateTime,
    ) -> Result<u64, StoreError> {
        let done =
            sqlx::query("DELETE FROM console_sessions WHERE expires_at <= $1 OR last_seen_at < $2")
                .bind(time_to_db(now)?)
                .bind(time_to_db(idle_before)?)
                .execute(&self.pool)
                .await
                .map_err(|e| db_err("deleting expired console sessions", e))?;
        Ok(done.rows_affected())
    }
}

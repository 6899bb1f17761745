//! "Sign in with Microsoft" on [`SqlStore`] (migration 0019): sign-in attempts (sealed, taken once),
//! the accounts of Microsoft identities and organizations' rule for members without an admin role.

use async_trait::async_trait;
use consentry_domain::{
    EntraIdentity, MemberRule, MicrosoftSignInStore, OperatorAccount, OrgId, SignInAttempt,
    StoreError,
};
use secrecy::{ExposeSecret as _, SecretSlice};
use time::OffsetDateTime;

use super::accounts::{ACCOUNT_COLUMNS, account_from_row};
use super::pending::check_state_hash;
use super::{SqlStore, db_err, get, is_unique_violation};
use crate::codec::{time_from_db, time_to_db};
use crate::sealer::Binding;

/// The sealing kind of an attempt's secrets; the owner is its state hash.
const ATTEMPT_SEAL_KIND: &str = "microsoft_sign_in";

#[async_trait]
impl MicrosoftSignInStore for SqlStore {
    async fn insert_sign_in_attempt(&self, attempt: &SignInAttempt) -> Result<(), StoreError> {
        check_state_hash(&attempt.state_hash)?;
        let sealed = self
            .sealer
            .seal(
                Binding {
                    owner: &attempt.state_hash,
                    kind: ATTEMPT_SEAL_KIND,
                },
                attempt.secrets.expose_secret(),
            )
            .map_err(|e| StoreError::Sealing(e.to_string()))?;
        sqlx::query(
            "INSERT INTO microsoft_sign_in_attempts (state_hash, sealed_secrets, next_path, created_at, expires_at) \
             VALUES ($1, $2, $3, $4, $5)",
        )
        .bind(attempt.state_hash.clone())
        .bind(sealed)
        .bind(attempt.next.clone())
        .bind(time_to_db(attempt.created_at)?)
        .bind(time_to_db(attempt.expires_at)?)
        .execute(&self.pool)
        .await
        .map_err(|e| {
            if is_unique_violation(&e) {
                StoreError::Conflict("a sign-in attempt with this state".into())
            } else {
                db_err("inserting a sign-in attempt", e)
            }
        })?;
        Ok(())
    }

    async fn take_sign_in_attempt(
        &self,
        state_hash: &str,
    ) -> Result<Option<SignInAttempt>, StoreError> {
        check_state_hash(state_hash)?;
        let row = sqlx::query(
            "DELETE FROM microsoft_sign_in_attempts WHERE state_hash = $1 \
             RETURNING state_hash, sealed_secrets, next_path, created_at, expires_at",
        )
        .bind(state_hash.to_string())
        .fetch_optional(&self.pool)
        .await
        .map_err(|e| db_err("taking a sign-in attempt", e))?;
        let Some(row) = row else {
            return Ok(None);
        };
        let sealed: Vec<u8> = get(&row, "sealed_secrets")?;
        let plain = self
            .sealer
            .open(
                Binding {
                    owner: state_hash,
                    kind: ATTEMPT_SEAL_KIND,
                },
                &sealed,
            )
            .map_err(|e| StoreError::Sealing(e.to_string()))?;
        Ok(Some(SignInAttempt {
            state_hash: get(&row, "state_hash")?,
            secrets: SecretSlice::from(plain.to_vec()),
            next: get(&row, "next_path")?,
            created_at: time_from_db("created_at", get(&row, "created_at")?)?,
            expires_at: time_from_db("expires_at", get(&row, "expires_at")?)?,
        }))
    }

    async fn delete_expired_sign_in_attempts(
        &self,
        now: OffsetDateTime,
    ) -> Result<u64, StoreError> {
        let done = sqlx::query("DELETE FROM microsoft_sign_in_attempts WHERE expires_at <= $1")
            .bind(time_to_db(now)?)
            .execute(&self.pool)
            .await
            .map_err(|e| db_err("deleting expired sign-in attempts", e))?;
        Ok(done.rows_affected())
    }

    async fn find_entra_account(
        &self,
        identity: EntraIdentity,
    ) -> Result<Option<OperatorAccount>, StoreError> {
        let sql = format!(
            "SELECT {ACCOUNT_COLUMNS} FROM operator_accounts \
             WHERE entra_tenant_id = $1 AND entra_object_id = $2"
        );
        sqlx::query(sqlx::AssertSqlSafe(sql))
            .bind(identity.tenant.to_string())
            .bind(identity.object_id.to_string())
            .fetch_optional(&self.pool)
            .await
            .map_err(|e| db_err("finding a Microsoft identity's account", e))?
            .as_ref()
            .map(account_from_row)
            .transpose()
    }

    async fn save_entra_account(
        &self,
        identity: EntraIdentity,
        account: &OperatorAccount,
    ) -> Result<OperatorAccount, StoreError> {
        let conflict = |e: sqlx::Error| {
            if is_unique_violation(&e) {
                StoreError::Conflict(format!("operator account {:?}", account.username))
            } else {
                db_err("saving a Microsoft identity's account", e)
            }
        };
        let updated = sqlx::query(
            "UPDATE operator_accounts SET username = $3, org_id = $4, role = $5 \
             WHERE entra_tenant_id = $1 AND entra_object_id = $2",
        )
        .bind(identity.tenant.to_string())
        .bind(identity.object_id.to_string())
        .bind(account.username.to_lowercase())
        .bind(account.scope.org().map(|o| o.to_string()))
        .bind(account.role.as_str())
        .execute(&self.pool)
        .await
        .map_err(conflict)?;
        if updated.rows_affected() == 0 {
            let sql = format!(
                "INSERT INTO operator_accounts ({ACCOUNT_COLUMNS}, entra_tenant_id, entra_object_id) \
                 VALUES ($1, $2, $3, $4, $5, $6, $7, $8)"
            );
            sqlx::query(sqlx::AssertSqlSafe(sql))
                .bind(account.id.hyphenated().to_string())
                .bind(account.username.to_lowercase())
                .bind(account.scope.org().map(|o| o.to_string()))
                .bind(account.password_hash.clone())
                .bind(time_to_db(account.created_at)?)
                .bind(account.role.as_str())
                .bind(identity.tenant.to_string())
                .bind(identity.object_id.to_string())
                .execute(&self.pool)
                .await
                .map_err(conflict)?;
        }
        self.find_entra_account(identity).await?.ok_or_else(|| {
            StoreError::Backend("a Microsoft identity's account vanished while saved".into())
        })
    }

    async fn member_rule(&self, org: OrgId) -> Result<MemberRule, StoreError> {
        let row = sqlx::query("SELECT microsoft_members FROM organizations WHERE id = $1")
            .bind(org.to_string())
            .fetch_optional(&self.pool)
            .await
            .map_err(|e| db_err("reading an organization's member rule", e))?
            .ok_or_else(|| StoreError::NotFound(format!("organization {org}")))?;
        let text: String = get(&row, "microsoft_members")?;
        MemberRule::parse(&text).map_err(|e| {
            StoreError::Backend(format!(
                "column microsoft_members holds an unknown value: {e}"
            ))
        })
    }

    async fn set_member_rule(&self, org: OrgId, rule: MemberRule) -> Result<(), StoreError> {
        let done = sqlx::query("UPDATE organizations SET microsoft_members = $2 WHERE id = $1")
            .bind(org.to_string())
            .bind(rule.as_str())
            .execute(&self.pool)
            .await
            .map_err(|e| db_err("changing an organization's member rule", e))?;
        if done.rows_affected() == 0 {
            return Err(StoreError::NotFound(format!("organization {org}")));
        }
        Ok(())
    }
}

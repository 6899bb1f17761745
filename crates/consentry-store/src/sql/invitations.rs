//! Invitations on [`SqlStore`] (migration 0018): keyed by the hex SHA-256 of the link's token, used
//! once by a conditional `UPDATE`.

use async_trait::async_trait;
use consentry_domain::{Actor, EmailAddress, Invitation, InvitationStore, OrgId, StoreError};
use sqlx::any::AnyRow;
use time::OffsetDateTime;

use super::{SqlStore, db_err, get, is_foreign_key_violation, is_unique_violation};
use crate::codec::{
    json_from_db, json_to_db, opt_time_from_db, parse_from_db, time_from_db, time_to_db,
};

const COLUMNS: &str =
    "token_hash, org_id, email, created_by, created_at, expires_at, used_at, used_by";

fn invitation_from_row(row: &AnyRow) -> Result<Invitation, StoreError> {
    Ok(Invitation {
        token_hash: get(row, "token_hash")?,
        org_id: parse_from_db("org_id", &get::<String>(row, "org_id")?, OrgId::parse)?,
        email: get::<Option<String>>(row, "email")?
            .map(|e| parse_from_db("email", &e, EmailAddress::parse))
            .transpose()?,
        created_by: json_from_db::<Actor>("created_by", &get::<String>(row, "created_by")?)?,
        created_at: time_from_db("created_at", get(row, "created_at")?)?,
        expires_at: time_from_db("expires_at", get(row, "expires_at")?)?,
        used_at: opt_time_from_db("used_at", get(row, "used_at")?)?,
        used_by: get(row, "used_by")?,
    })
}

#[async_trait]
impl InvitationStore for SqlStore {
    async fn insert_invitation(&self, i: &Invitation) -> Result<(), StoreError> {
        if i.token_hash.len() != 64 {
            return Err(StoreError::Backend(
                "an invitation is stored under the hex SHA-256 of its token, never the token"
                    .into(),
            ));
        }
        let sql =
            format!("INSERT INTO invitations ({COLUMNS}) VALUES ($1, $2, $3, $4, $5, $6, $7, $8)");
        sqlx::query(sqlx::AssertSqlSafe(sql))
            .bind(i.token_hash.clone())
            .bind(i.org_id.to_string())
            .bind(i.email.as_ref().map(|e| e.to_string()))
            .bind(json_to_db("actor", &i.created_by)?)
            .bind(time_to_db(i.created_at)?)
            .bind(time_to_db(i.expires_at)?)
            .bind(i.used_at.map(time_to_db).transpose()?)
            .bind(i.used_by.clone())
            .execute(&self.pool)
            .await
            .map_err(|e| {
                if is_foreign_key_violation(&e) {
                    StoreError::NotFound(format!("organization {}", i.org_id))
                } else if is_unique_violation(&e) {
                    StoreError::Conflict("an invitation with this token hash".into())
                } else {
                    db_err("inserting an invitation", e)
                }
            })?;
        Ok(())
    }

    async fn get_invitation(&self, token_hash: &str) -> Result<Option<Invitation>, StoreError> {
        let sql = format!("SELECT {COLUMNS} FROM invitations WHERE token_hash = $1");
        sqlx::query(sqlx::AssertSqlSafe(sql))
            .bind(token_hash.to_string())
            .fetch_optional(&self.pool)
            .await
            .map_err(|e| db_err("reading an invitation", e))?
            .as_ref()
            .map(invitation_from_row)
            .transpose()
    }

    async fn use_invitation(
        &self,
        token_hash: &str,
        username: &str,
        at: OffsetDateTime,
    ) -> Result<bool, StoreError> {
        let at = time_to_db(at)?;
        let done = sqlx::query(
            "UPDATE invitations SET used_at = $2, used_by = $3 \
             WHERE token_hash = $1 AND used_at IS NULL AND expires_at > $2",
        )
        .bind(token_hash.to_string())
        .bind(at)
        .bind(username.to_string())
        .execute(&self.pool)
        .await
        .map_err(|e| db_err("using an invitation", e))?;
        Ok(done.rows_affected() > 0)
    }
}

//! Tenant connections by consent on [`SqlStore`] (migration 0018): pending connections keyed by the
//! hex SHA-256 of the OAuth state, their secrets sealed to that hash, taken (deleted) once; and a
//! tenant's verification.

use async_trait::async_trait;
use consentry_domain::{
    Actor, ConnectStep, ConnectionStore, OrgId, PendingConnection, StoreError, TenantId,
    TenantVerification,
};
use secrecy::{ExposeSecret as _, SecretSlice};
use sqlx::any::AnyRow;

use super::pending::check_state_hash;
use super::{SqlStore, db_err, get, is_foreign_key_violation, is_unique_violation};
use crate::codec::{json_from_db, json_to_db, parse_from_db, time_from_db, time_to_db};
use crate::sealer::Binding;

const COLUMNS: &str =
    "state_hash, org_id, started_by, step, tenant_id, created_at, expires_at, sealed_secrets";

/// The sealing kind of a pending connection's secrets; the owner is its state hash, so a sealed
/// blob copied to another row does not open.
const SEAL_KIND: &str = "pending_connection";

fn binding(state_hash: &str) -> Binding<'_> {
    Binding {
        owner: state_hash,
        kind: SEAL_KIND,
    }
}

fn connection_from_row(row: &AnyRow, store: &SqlStore) -> Result<PendingConnection, StoreError> {
    let state_hash: String = get(row, "state_hash")?;
    let step: String = get(row, "step")?;
    let sealed: Vec<u8> = get(row, "sealed_secrets")?;
    let plain = store
        .sealer
        .open(binding(&state_hash), &sealed)
        .map_err(|e| StoreError::Sealing(e.to_string()))?;
    Ok(PendingConnection {
        org_id: parse_from_db("org_id", &get::<String>(row, "org_id")?, OrgId::parse)?,
        started_by: json_from_db::<Actor>("started_by", &get::<String>(row, "started_by")?)?,
        step: ConnectStep::parse(&step).ok_or_else(|| {
            StoreError::Backend(format!("column step holds an unknown step {step:?}"))
        })?,
        tenant_id: get::<Option<String>>(row, "tenant_id")?
            .map(|t| parse_from_db("tenant_id", &t, TenantId::parse))
            .transpose()?,
        created_at: time_from_db("created_at", get(row, "created_at")?)?,
        expires_at: time_from_db("expires_at", get(row, "expires_at")?)?,
        secrets: SecretSlice::from(plain.to_vec()),
        state_hash,
    })
}

#[async_trait]
impl ConnectionStore for SqlStore {
    async fn put_pending_connection(&self, p: &PendingConnection) -> Result<(), StoreError> {
        check_state_hash(&p.state_hash)?;
        let sealed = self
            .sealer
            .seal(binding(&p.state_hash), p.secrets.expose_secret())
            .map_err(|e| StoreError::Sealing(e.to_string()))?;
        sqlx::query("DELETE FROM pending_connections WHERE expires_at < $1")
            .bind(time_to_db(p.created_at)?)
            .execute(&self.pool)
            .await
            .map_err(|e| db_err("forgetting expired pending connections", e))?;
        let sql = format!(
            "INSERT INTO pending_connections ({COLUMNS}) VALUES ($1, $2, $3, $4, $5, $6, $7, $8)"
        );
        sqlx::query(sqlx::AssertSqlSafe(sql))
            .bind(p.state_hash.clone())
            .bind(p.org_id.to_string())
            .bind(json_to_db("actor", &p.started_by)?)
            .bind(p.step.as_str())
            .bind(p.tenant_id.map(|t| t.to_string()))
            .bind(time_to_db(p.created_at)?)
            .bind(time_to_db(p.expires_at)?)
            .bind(sealed)
            .execute(&self.pool)
            .await
            .map_err(|e| {
                if is_foreign_key_violation(&e) {
                    StoreError::NotFound(format!("organization {}", p.org_id))
                } else if is_unique_violation(&e) {
                    StoreError::Conflict("a pending connection with this state hash".into())
                } else {
                    db_err("recording a pending connection", e)
                }
            })?;
        Ok(())
    }

    async fn take_pending_connection(
        &self,
        state_hash: &str,
    ) -> Result<Option<PendingConnection>, StoreError> {
        check_state_hash(state_hash)?;
        let sql =
            format!("DELETE FROM pending_connections WHERE state_hash = $1 RETURNING {COLUMNS}");
        sqlx::query(sqlx::AssertSqlSafe(sql))
            .bind(state_hash.to_string())
            .fetch_optional(&self.pool)
            .await
            .map_err(|e| db_err("taking a pending connection", e))?
            .map(|row| connection_from_row(&row, self))
            .transpose()
    }

    async fn verify_tenant(
        &self,
        tenant: TenantId,
        v: &TenantVerification,
    ) -> Result<bool, StoreError> {
        let done = sqlx::query(
            "UPDATE tenants SET verified_at = $2, verified_by = $3 WHERE id = $1 AND verified_at IS NULL",
        )
        .bind(tenant.to_string())
        .bind(time_to_db(v.at)?)
        .bind(v.by.as_str())
        .execute(&self.pool)
        .await
        .map_err(|e| db_err("verifying a tenant", e))?;
        Ok(done.rows_affected() > 0)
    }
}

//! Profiles' secrets on [`SqlStore`], sealed and bound to their profile and kind.

use consentry_domain::{ProfileId, SecretKind, StoreError};
use secrecy::{ExposeSecret as _, SecretSlice};
use time::OffsetDateTime;

use super::{SqlStore, db_err, is_foreign_key_violation};
use crate::codec::time_to_db;
use crate::sealer::Binding;

impl SqlStore {
    pub(super) async fn put_secret(
        &self,
        profile: ProfileId,
        kind: SecretKind,
        secret: &SecretSlice<u8>,
    ) -> Result<(), StoreError> {
        let owner = profile.to_string();
        let sealed = self
            .sealer
            .seal(
                Binding {
                    owner: &owner,
                    kind: kind.as_str(),
                },
                secret.expose_secret(),
            )
            .map_err(|e| StoreError::Sealing(e.to_string()))?;
        sqlx::query(
            "INSERT INTO secrets (profile_id, kind, sealed, updated_at) VALUES ($1, $2, $3, $4) \
             ON CONFLICT (profile_id, kind) DO UPDATE SET sealed = excluded.sealed, updated_at = excluded.updated_at",
        )
        .bind(owner)
        .bind(kind.as_str())
        .bind(sealed)
        .bind(time_to_db(OffsetDateTime::now_utc())?)
        .execute(&self.pool)
        .await
        .map_err(|e| {
            if is_foreign_key_violation(&e) {
                StoreError::NotFound(format!("profile {profile}"))
            } else {
                db_err("storing a secret", e)
            }
        })?;
        Ok(())
    }

    pub(super) async fn get_secret(
        &self,
        profile: ProfileId,
        kind: SecretKind,
    ) -> Result<Option<SecretSlice<u8>>, StoreError> {
        let owner = profile.to_string();
        let sealed: Option<Vec<u8>> =
            sqlx::query_scalar("SELECT sealed FROM secrets WHERE profile_id = $1 AND kind = $2")
                .bind(owner.clone())
                .bind(kind.as_str())
                .fetch_optional(&self.pool)
                .await
                .map_err(|e| db_err("reading a secret", e))?;
        let Some(sealed) = sealed else {
            return Ok(None);
        };
        self.open_secret(&owner, kind, &sealed).map(Some)
    }

    /// Opens a secret sealed for `owner` (a profile ID) and `kind`.
    pub(super) fn open_secret(
        &self,
        owner: &str,
        kind: SecretKind,
        sealed: &[u8],
    ) -> Result<SecretSlice<u8>, StoreError> {
        let plain = self
            .sealer
            .open(
                Binding {
                    owner,
                    kind: kind.as_str(),
                },
                sealed,
            )
            .map_err(|e| StoreError::Sealing(e.to_string()))?;
        // `to_vec` allocates exactly, so the boxed slice is not reallocated; `plain` is zeroed on drop.
        Ok(SecretSlice::from(plain.to_vec()))
    }

    pub(super) async fn delete_secret(
        &self,
        profile: ProfileId,
        kind: SecretKind,
    ) -> Result<bool, StoreError> {
        let done = sqlx::query("DELETE FROM secrets WHERE profile_id = $1 AND kind = $2")
            .bind(profile.to_string())
            .bind(kind.as_str())
            .execute(&self.pool)
            .await
            .map_err(|e| db_err("deleting a secret", e))?;
        Ok(done.rows_affected() > 0)
    }
}

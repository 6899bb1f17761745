//! Vendor credential alerts on [`SqlStore`] (migration 0021): claimed by one `INSERT … ON CONFLICT DO
//! NOTHING`, so one replica records (and sends) each.

use async_trait::async_trait;
use consentry_domain::{StoreError, VendorAlertStore, VendorCredentialAlert};

use super::{SqlStore, db_err, get};
use crate::codec::{opt_time_from_db, time_from_db, time_to_db};

#[async_trait]
impl VendorAlertStore for SqlStore {
    async fn claim_vendor_alert(&self, a: &VendorCredentialAlert) -> Result<bool, StoreError> {
        if !matches!(a.stage.as_str(), "attention" | "expired") {
            return Err(StoreError::Backend(format!(
                "a vendor credential alert's stage is attention or expired, not {:?}",
                a.stage
            )));
        }
        let done = sqlx::query(
            "INSERT INTO vendor_credential_alerts \
             (app, cloud, credential_id, stage, ends_at, raised_at, raised_by) \
             VALUES ($1, $2, $3, $4, $5, $6, $7) \
             ON CONFLICT (app, cloud, credential_id, stage) DO NOTHING",
        )
        .bind(a.app.clone())
        .bind(a.cloud.clone())
        .bind(a.credential_id.clone())
        .bind(a.stage.clone())
        .bind(a.ends_at.map(time_to_db).transpose()?)
        .bind(time_to_db(a.raised_at)?)
        .bind(a.raised_by.clone())
        .execute(&self.pool)
        .await
        .map_err(|e| db_err("recording a vendor credential alert", e))?;
        Ok(done.rows_affected() == 1)
    }

    async fn list_vendor_alerts(&self) -> Result<Vec<VendorCredentialAlert>, StoreError> {
        let rows = sqlx::query(
            "SELECT app, cloud, credential_id, stage, ends_at, raised_at, raised_by \
             FROM vendor_credential_alerts ORDER BY raised_at DESC, app, cloud, credential_id, stage",
        )
        .fetch_all(&self.pool)
        .await
        .map_err(|e| db_err("listing vendor credential alerts", e))?;
        rows.iter()
            .map(|row| {
                Ok(VendorCredentialAlert {
                    app: get(row, "app")?,
                    cloud: get(row, "cloud")?,
                    credential_id: get(row, "credential_id")?,
                    stage: get(row, "stage")?,
                    ends_at: opt_time_from_db("ends_at", get(row, "ends_at")?)?,
                    raised_at: time_from_db("raised_at", get(row, "raised_at")?)?,
                    raised_by: get(row, "raised_by")?,
                })
            })
            .collect()
    }
}

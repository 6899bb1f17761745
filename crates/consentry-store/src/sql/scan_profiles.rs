//! Scan profiles on [`SqlStore`] (migration 0007; 0011 adds the classic method's app profile form).

use std::collections::BTreeSet;

use async_trait::async_trait;
use consentry_domain::{
    OrgId, ProfileId, ScanAuth, ScanProfile, ScanProfileId, ScanProfileStore, StoreError, TenantId,
    Upn,
};
use sqlx::any::AnyRow;

use super::{SqlStore, db_err, get, get_parsed, is_foreign_key_violation, is_unique_violation};
use crate::codec::{json_from_db, json_to_db, parse_from_db, time_from_db, time_to_db};

const COLUMNS: &str = "id, org_id, tenant_id, name, modules, auth_method, app_profile_id, \
     service_account_upn, delegated_profile_id, planner_backup_enabled, created_at, updated_at";

fn from_row(row: &AnyRow) -> Result<ScanProfile, StoreError> {
    let method: String = get(row, "auth_method")?;
    let app: Option<String> = get(row, "app_profile_id")?;
    let upn: Option<String> = get(row, "service_account_upn")?;
    let delegated: Option<String> = get(row, "delegated_profile_id")?;
    let authentication = match (method.as_str(), app, upn, delegated) {
        ("app_profile", Some(a), _, _) => ScanAuth::AppProfile {
            app_profile: parse_from_db("app_profile_id", &a, ProfileId::parse)?,
        },
        ("classic", _, Some(u), Some(d)) => ScanAuth::Classic {
            service_account: parse_from_db("service_account_upn", &u, Upn::parse)?,
            delegated_profile: parse_from_db("delegated_profile_id", &d, ProfileId::parse)?,
        },
        ("classic_app_profile", Some(a), _, Some(d)) => ScanAuth::ClassicAppProfile {
            app_profile: parse_from_db("app_profile_id", &a, ProfileId::parse)?,
            delegated_profile: parse_from_db("delegated_profile_id", &d, ProfileId::parse)?,
        },
        (m, ..) => {
            return Err(StoreError::Backend(format!(
                "scan profile row with authentication method {m:?} lacks its columns"
            )));
        }
    };
    let planner_backup_enabled = match get::<i64>(row, "planner_backup_enabled")? {
        0 => false,
        1 => true,
        other => {
            return Err(StoreError::Backend(format!(
                "column planner_backup_enabled holds {other}, not 0 or 1"
            )));
        }
    };
    Ok(ScanProfile {
        id: parse_from_db("id", &get::<String>(row, "id")?, ScanProfileId::parse)?,
        org_id: get_parsed(row, "org_id", OrgId::parse)?,
        tenant_id: get_parsed(row, "tenant_id", TenantId::parse)?,
        name: get(row, "name")?,
        modules: json_from_db::<BTreeSet<String>>("modules", &get::<String>(row, "modules")?)?,
        authentication,
        planner_backup_enabled,
        created_at: time_from_db("created_at", get(row, "created_at")?)?,
        updated_at: time_from_db("updated_at", get(row, "updated_at")?)?,
    })
}

/// The authentication columns: method, app profile, service account UPN, delegated profile.
fn auth_columns(a: &ScanAuth) -> (&'static str, Option<String>, Option<String>, Option<String>) {
    match a {
        ScanAuth::AppProfile { app_profile } => {
            ("app_profile", Some(app_profile.to_string()), None, None)
        }
        ScanAuth::Classic {
            service_account,
            delegated_profile,
        } => (
            "classic",
            None,
            Some(service_account.as_str().to_string()),
            Some(delegated_profile.to_string()),
        ),
        ScanAuth::ClassicAppProfile {
            app_profile,
            delegated_profile,
        } => (
            "classic_app_profile",
            Some(app_profile.to_string()),
            None,
            Some(delegated_profile.to_string()),
        ),
    }
}

#[async_trait]
impl ScanProfileStore for SqlStore {
    async fn insert_scan_profile(&self, sp: &ScanProfile) -> Result<(), StoreError> {
        let (method, app, upn, delegated) = auth_columns(&sp.authentication);
        let sql = format!(
            "INSERT INTO scan_profiles ({COLUMNS}, name_folded) \
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13)"
        );
        sqlx::query(sqlx::AssertSqlSafe(sql))
            .bind(sp.id.to_string())
            .bind(sp.org_id.to_string())
            .bind(sp.tenant_id.to_string())
            .bind(sp.name.clone())
            .bind(json_to_db("modules", &sp.modules)?)
            .bind(method)
            .bind(app)
            .bind(upn)
            .bind(delegated)
            .bind(i64::from(sp.planner_backup_enabled))
            .bind(time_to_db(sp.created_at)?)
            .bind(time_to_db(sp.updated_at)?)
            .bind(sp.name.to_lowercase())
            .execute(&self.pool)
            .await
            .map_err(|e| {
                if is_foreign_key_violation(&e) {
                    StoreError::NotFound(format!("tenant {}", sp.tenant_id))
                } else if is_unique_violation(&e) {
                    StoreError::Conflict(format!("scan profile {:?} of the tenant", sp.name))
                } else {
                    db_err("inserting a scan profile", e)
                }
            })?;
        Ok(())
    }

    async fn get_scan_profile(&self, id: ScanProfileId) -> Result<Option<ScanProfile>, StoreError> {
        let sql = format!("SELECT {COLUMNS} FROM scan_profiles WHERE id = $1");
        sqlx::query(sqlx::AssertSqlSafe(sql))
            .bind(id.to_string())
            .fetch_optional(&self.pool)
            .await
            .map_err(|e| db_err("reading a scan profile", e))?
            .as_ref()
            .map(from_row)
            .transpose()
    }

    async fn list_scan_profiles(&self, tenant: TenantId) -> Result<Vec<ScanProfile>, StoreError> {
        let sql = format!(
            "SELECT {COLUMNS} FROM scan_profiles WHERE tenant_id = $1 ORDER BY name_folded, id"
        );
        sqlx::query(sqlx::AssertSqlSafe(sql))
            .bind(tenant.to_string())
            .fetch_all(&self.pool)
            .await
            .map_err(|e| db_err("listing scan profiles", e))?
            .iter()
            .map(from_row)
            .collect()
    }

    async fn update_scan_profile(&self, sp: &ScanProfile) -> Result<(), StoreError> {
        let (method, app, upn, delegated) = auth_columns(&sp.authentication);
        let done = sqlx::query(
            "UPDATE scan_profiles SET name = $2, name_folded = $3, modules = $4, auth_method = $5, \
             app_profile_id = $6, service_account_upn = $7, delegated_profile_id = $8, \
             planner_backup_enabled = $9, updated_at = $10 WHERE id = $1",
        )
        .bind(sp.id.to_string())
        .bind(sp.name.clone())
        .bind(sp.name.to_lowercase())
        .bind(json_to_db("modules", &sp.modules)?)
        .bind(method)
        .bind(app)
        .bind(upn)
        .bind(delegated)
        .bind(i64::from(sp.planner_backup_enabled))
        .bind(time_to_db(sp.updated_at)?)
        .execute(&self.pool)
        .await
        .map_err(|e| {
            if is_unique_violation(&e) {
                StoreError::Conflict(format!("scan profile {:?} of the tenant", sp.name))
            } else {
                db_err("updating a scan profile", e)
            }
        })?;
        if done.rows_affected() == 0 {
            return Err(StoreError::NotFound(format!("scan profile {}", sp.id)));
        }
        Ok(())
    }

    async fn delete_scan_profile(&self, id: ScanProfileId) -> Result<bool, StoreError> {
        let done = sqlx::query("DELETE FROM scan_profiles WHERE id = $1")
            .bind(id.to_string())
            .execute(&self.pool)
            .await
            .map_err(|e| db_err("deleting a scan profile", e))?;
        Ok(done.rows_affected() > 0)
    }

    async fn scan_profiles_using(
        &self,
        profile: ProfileId,
    ) -> Result<Vec<ScanProfile>, StoreError> {
        let sql = format!(
            "SELECT {COLUMNS} FROM scan_profiles WHERE app_profile_id = $1 OR delegated_profile_id = $2 \
             ORDER BY name_folded, id"
        );
        sqlx::query(sqlx::AssertSqlSafe(sql))
            .bind(profile.to_string())
            .bind(profile.to_string())
            .fetch_all(&self.pool)
            .await
            .map_err(|e| db_err("finding the scan profiles of an app profile", e))?
            .iter()
            .map(from_row)
            .collect()
    }
}

//! Organizations and tenants on [`SqlStore`]: names unique regardless of case, tenants unique by ID
//! and primary domain, neither deleted while in use.

use consentry_domain::{
    DomainName, OrgId, Organization, StoreError, Tenant, TenantId, TenantVerification, VerifiedBy,
};
use sqlx::any::AnyRow;

use super::{SqlStore, db_err, get, is_foreign_key_violation, is_unique_violation};
use crate::codec::{
    json_from_db, json_to_db, opt_time_from_db, parse_from_db, time_from_db, time_to_db,
};

fn organization_from_row(row: &AnyRow) -> Result<Organization, StoreError> {
    Ok(Organization {
        id: parse_from_db("id", &get::<String>(row, "id")?, OrgId::parse)?,
        name: get(row, "name")?,
        modules: json_from_db("modules", &get::<String>(row, "modules")?)?,
        services: json_from_db("services", &get::<String>(row, "services")?)?,
        created_at: time_from_db("created_at", get(row, "created_at")?)?,
    })
}

fn tenant_from_row(row: &AnyRow) -> Result<Tenant, StoreError> {
    Ok(Tenant {
        id: parse_from_db("id", &get::<String>(row, "id")?, TenantId::parse)?,
        org_id: parse_from_db("org_id", &get::<String>(row, "org_id")?, OrgId::parse)?,
        primary_domain: parse_from_db(
            "primary_domain",
            &get::<String>(row, "primary_domain")?,
            DomainName::parse,
        )?,
        display_name: get(row, "display_name")?,
        cloud: parse_from_db(
            "cloud",
            &get::<String>(row, "cloud")?,
            consentry_domain::CloudKey::parse,
        )?,
        created_at: time_from_db("created_at", get(row, "created_at")?)?,
        verified: verification_from_row(row)?,
    })
}

/// A tenant's verification (migration 0018): both columns, or neither.
fn verification_from_row(row: &AnyRow) -> Result<Option<TenantVerification>, StoreError> {
    let at = opt_time_from_db("verified_at", get(row, "verified_at")?)?;
    let by: Option<String> = get(row, "verified_by")?;
    match (at, by) {
        (Some(at), Some(by)) => {
            let by = VerifiedBy::parse(&by).ok_or_else(|| {
                StoreError::Backend(format!("column verified_by holds an unknown way {by:?}"))
            })?;
            Ok(Some(TenantVerification { at, by }))
        }
        _ => Ok(None),
    }
}

impl SqlStore {
    pub(super) async fn insert_organization(&self, org: &Organization) -> Result<(), StoreError> {
        sqlx::query("INSERT INTO organizations (id, name, name_folded, modules, created_at, services) VALUES ($1, $2, $3, $4, $5, $6)")
            .bind(org.id.to_string())
            .bind(org.name.clone())
            .bind(org.name.to_lowercase())
            .bind(json_to_db("modules", &org.modules)?)
            .bind(time_to_db(org.created_at)?)
            .bind(json_to_db("services", &org.services)?)
            .execute(&self.pool)
            .await
            .map_err(|e| {
                if is_unique_violation(&e) {
                    StoreError::Conflict(format!("an organization with ID {} or named {:?}", org.id, org.name))
                } else {
                    db_err("inserting an organization", e)
                }
            })?;
        Ok(())
    }

    pub(super) async fn get_organization(
        &self,
        id: OrgId,
    ) -> Result<Option<Organization>, StoreError> {
        sqlx::query(
            "SELECT id, name, modules, services, created_at FROM organizations WHERE id = $1",
        )
        .bind(id.to_string())
        .fetch_optional(&self.pool)
        .await
        .map_err(|e| db_err("reading an organization", e))?
        .as_ref()
        .map(organization_from_row)
        .transpose()
    }

    pub(super) async fn list_organizations(&self) -> Result<Vec<Organization>, StoreError> {
        sqlx::query(
            "SELECT id, name, modules, services, created_at FROM organizations ORDER BY name_folded, id",
        )
        .fetch_all(&self.pool)
        .await
        .map_err(|e| db_err("listing organizations", e))?
        .iter()
        .map(organization_from_row)
        .collect()
    }

    pub(super) async fn update_organization(&self, org: &Organization) -> Result<(), StoreError> {
        let done = sqlx::query(
            "UPDATE organizations SET name = $2, name_folded = $3, modules = $4, services = $5 WHERE id = $1",
        )
        .bind(org.id.to_string())
        .bind(org.name.clone())
        .bind(org.name.to_lowercase())
        .bind(json_to_db("modules", &org.modules)?)
        .bind(json_to_db("services", &org.services)?)
        .execute(&self.pool)
        .await
        .map_err(|e| {
            if is_unique_violation(&e) {
                StoreError::Conflict(format!("an organization named {:?}", org.name))
            } else {
                db_err("updating an organization", e)
            }
        })?;
        if done.rows_affected() == 0 {
            return Err(StoreError::NotFound(format!("organization {}", org.id)));
        }
        Ok(())
    }

    pub(super) async fn delete_organization(&self, id: OrgId) -> Result<bool, StoreError> {
        self.delete_unreferenced(
            "DELETE FROM organizations WHERE id = $1",
            id.to_string(),
            || format!("organization {id} still has tenants or profiles; remove them first"),
            "deleting an organization",
        )
        .await
    }

    pub(super) async fn insert_tenant(&self, tenant: &Tenant) -> Result<(), StoreError> {
        let result = sqlx::query(
            "INSERT INTO tenants (id, org_id, primary_domain, display_name, created_at, verified_at, verified_by, cloud) \
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8)",
        )
        .bind(tenant.id.to_string())
        .bind(tenant.org_id.to_string())
        .bind(tenant.primary_domain.as_str())
        .bind(tenant.display_name.clone())
        .bind(time_to_db(tenant.created_at)?)
        .bind(tenant.verified.map(|v| time_to_db(v.at)).transpose()?)
        .bind(tenant.verified.map(|v| v.by.as_str()))
        .bind(tenant.cloud.to_string())
        .execute(&self.pool)
        .await;
        match result {
            Ok(_) => Ok(()),
            Err(e) if is_unique_violation(&e) => {
                if self.get_tenant(tenant.id).await?.is_some() {
                    Err(StoreError::Conflict(format!("tenant {}", tenant.id)))
                } else {
                    Err(StoreError::Conflict(format!(
                        "a tenant with primary domain {}",
                        tenant.primary_domain
                    )))
                }
            }
            Err(e) if is_foreign_key_violation(&e) => Err(StoreError::NotFound(format!(
                "organization {}",
                tenant.org_id
            ))),
            Err(e) => Err(db_err("inserting a tenant", e)),
        }
    }

    pub(super) async fn get_tenant(&self, id: TenantId) -> Result<Option<Tenant>, StoreError> {
        sqlx::query("SELECT id, org_id, primary_domain, display_name, created_at, verified_at, verified_by, cloud FROM tenants WHERE id = $1")
            .bind(id.to_string())
            .fetch_optional(&self.pool)
            .await
            .map_err(|e| db_err("reading a tenant", e))?
            .as_ref()
            .map(tenant_from_row)
            .transpose()
    }

    pub(super) async fn find_tenant_by_domain(
        &self,
        domain: &DomainName,
    ) -> Result<Option<Tenant>, StoreError> {
        sqlx::query("SELECT id, org_id, primary_domain, display_name, created_at, verified_at, verified_by, cloud FROM tenants WHERE primary_domain = $1")
            .bind(domain.as_str())
            .fetch_optional(&self.pool)
            .await
            .map_err(|e| db_err("finding a tenant by domain", e))?
            .as_ref()
            .map(tenant_from_row)
            .transpose()
    }

    pub(super) async fn list_tenants(&self, org: Option<OrgId>) -> Result<Vec<Tenant>, StoreError> {
        let rows = match org {
            Some(org) => {
                sqlx::query(
                    "SELECT id, org_id, primary_domain, display_name, created_at, verified_at, verified_by, cloud FROM tenants WHERE org_id = $1 \
                     ORDER BY primary_domain",
                )
                .bind(org.to_string())
                .fetch_all(&self.pool)
                .await
            }
            None => {
                sqlx::query(
                    "SELECT id, org_id, primary_domain, display_name, created_at, verified_at, verified_by, cloud FROM tenants ORDER BY primary_domain",
                )
                .fetch_all(&self.pool)
                .await
            }
        }
        .map_err(|e| db_err("listing tenants", e))?;
        rows.iter().map(tenant_from_row).collect()
    }

    pub(super) async fn delete_tenant(&self, id: TenantId) -> Result<bool, StoreError> {
        self.delete_unreferenced(
            "DELETE FROM tenants WHERE id = $1",
            id.to_string(),
            || format!("tenant {id} still has profiles; remove them first"),
            "deleting a tenant",
        )
        .await
    }

    /// Deletes one row by ID (`statement` binds it as `$1`); a row still referenced is refused with
    /// `in_use()`. Whether a row was deleted.
    async fn delete_unreferenced(
        &self,
        statement: &'static str,
        id: String,
        in_use: impl FnOnce() -> String,
        doing: &'static str,
    ) -> Result<bool, StoreError> {
        let done = sqlx::query(statement)
            .bind(id)
            .execute(&self.pool)
            .await
            .map_err(|e| {
                if is_foreign_key_violation(&e) {
                    StoreError::Backend(in_use())
                } else {
                    db_err(doing, e)
                }
            })?;
        Ok(done.rows_affected() > 0)
    }
}

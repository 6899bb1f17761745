//! Permission rollouts' members on [`SqlStore`] (migration 0013): enrolled with one set-based
//! statement, read with their profile, tenant and last re-authorization event in one query, marked
//! done in batches.

use async_trait::async_trait;
use consentry_domain::{
    GrantedPermission, OrgId, ProfileId, ProfileStatus, RolloutMember, RolloutStore, StoreError,
    TenantId,
};
use sqlx::any::AnyRow;
use time::OffsetDateTime;

use super::history::{REAUTH_KINDS, last_reauthorization};
use super::query::{Arg, Built};
use super::{SqlStore, db_err, get, get_parsed};
use crate::codec::{
    json_from_db, opt_time_from_db, opt_time_to_db, parse_from_db, time_from_db, time_to_db,
    version_from_db,
};

/// Members per UPDATE of [`RolloutStore::set_rollout_done`] (two bound values each, well under both
/// dialects' limits).
const DONE_BATCH: usize = 500;

fn member_from_row(row: &AnyRow) -> Result<RolloutMember, StoreError> {
    let status: String = get(row, "status")?;
    let version: Option<i64> = get(row, "consented_catalog_version")?;
    let last_reauthorization = last_reauthorization(row)?;
    Ok(RolloutMember {
        profile_id: parse_from_db("id", &get::<String>(row, "id")?, ProfileId::parse)?,
        org_id: get_parsed(row, "org_id", OrgId::parse)?,
        tenant_id: get_parsed(row, "tenant_id", TenantId::parse)?,
        tenant_name: get(row, "display_name")?,
        tenant_domain: get(row, "primary_domain")?,
        app_type: get(row, "app_type")?,
        added_at: time_from_db("added_at", get(row, "added_at")?)?,
        done_at: opt_time_from_db("done_at", get(row, "done_at")?)?,
        status: ProfileStatus::parse(&status).ok_or_else(|| {
            StoreError::Backend(format!("column status holds an unknown status {status:?}"))
        })?,
        granted: json_from_db::<Vec<GrantedPermission>>(
            "granted_permissions",
            &get::<String>(row, "granted_permissions")?,
        )?,
        consented_catalog_version: version_from_db(version)?,
        authorized_at: opt_time_from_db("authorized_at", get(row, "authorized_at")?)?,
        last_checked_at: opt_time_from_db("last_checked_at", get(row, "last_checked_at")?)?,
        last_reauthorization,
    })
}

#[async_trait]
impl RolloutStore for SqlStore {
    async fn enroll_rollout_members(
        &self,
        version: u32,
        app_types: &[String],
        at: OffsetDateTime,
    ) -> Result<u64, StoreError> {
        if app_types.is_empty() {
            return Ok(0);
        }
        let mut b = Built::default();
        let v = b.arg(Arg::Int(i64::from(version)));
        let at = b.arg(Arg::Int(time_to_db(at)?));
        let types: Vec<String> = app_types
            .iter()
            .map(|t| b.arg(Arg::Text(t.clone())))
            .collect();
        // ON CONFLICT, not NOT EXISTS: right after a bulk insert the planner may take the new table
        // for empty and check each profile by scanning it (30,000 profiles took 8.8 s instead of 0.8 s
        // on PostgreSQL); a replica enrolling at the same moment is absorbed the same way.
        b.sql = format!(
            "INSERT INTO rollout_members (catalog_version, profile_id, added_at, done_at) \
             SELECT {v}, p.id, {at}, NULL FROM profiles p \
             WHERE p.app_type IN ({}) AND p.consented_catalog_version IS NOT NULL \
             AND p.consented_catalog_version < {v} \
             ON CONFLICT (catalog_version, profile_id) DO NOTHING",
            types.join(", ")
        );
        let done = b
            .query()
            .execute(&self.pool)
            .await
            .map_err(|e| db_err("enrolling a rollout's profiles", e))?;
        Ok(done.rows_affected())
    }

    async fn rollout_members(
        &self,
        version: u32,
        org: Option<OrgId>,
    ) -> Result<Vec<RolloutMember>, StoreError> {
        let mut b = Built::default();
        let v = b.arg(Arg::Int(i64::from(version)));
        let org_cond = match org {
            Some(o) => format!(" AND p.org_id = {}", b.arg(Arg::Text(o.to_string()))),
            None => String::new(),
        };
        // The last re-authorization event of each member, in one pass over those members' history
        // (a window per profile), not a lookup per member.
        b.sql = format!(
            "SELECT p.id, p.org_id, p.tenant_id, t.display_name, t.primary_domain, p.app_type, \
             m.added_at, m.done_at, p.status, p.granted_permissions, p.consented_catalog_version, \
             p.authorized_at, p.last_checked_at, h.kind AS last_kind, h.at AS last_at, \
             h.detail AS last_detail \
             FROM rollout_members m JOIN profiles p ON p.id = m.profile_id \
             JOIN tenants t ON t.id = p.tenant_id \
             LEFT JOIN (SELECT profile_id, kind, at, detail, \
                        ROW_NUMBER() OVER (PARTITION BY profile_id ORDER BY seq DESC) AS rn \
                        FROM profile_history WHERE kind IN ({REAUTH_KINDS}) AND profile_id IN \
                        (SELECT profile_id FROM rollout_members WHERE catalog_version = {v})) h \
               ON h.profile_id = p.id AND h.rn = 1 \
             WHERE m.catalog_version = {v}{org_cond} \
             ORDER BY t.display_name, t.id, p.app_type, p.id"
        );
        b.query()
            .fetch_all(&self.pool)
            .await
            .map_err(|e| db_err("listing a rollout's profiles", e))?
            .iter()
            .map(member_from_row)
            .collect()
    }

    async fn set_rollout_done(
        &self,
        version: u32,
        changes: &[(ProfileId, Option<OffsetDateTime>)],
    ) -> Result<(), StoreError> {
        if changes.is_empty() {
            return Ok(());
        }
        // One UPDATE per batch of members, joined to a VALUES list (both dialects name its columns
        // column1, column2), all in one transaction.
        let mut tx = self.begin_write().await?;
        for batch in changes.chunks(DONE_BATCH) {
            let mut b = Built::default();
            let v = b.arg(Arg::Int(i64::from(version)));
            let mut rows = Vec::with_capacity(batch.len());
            let mut done = Vec::with_capacity(batch.len());
            for (profile, done_at) in batch {
                let p = b.arg(Arg::Text(profile.to_string()));
                rows.push(p);
                done.push(opt_time_to_db(*done_at)?);
            }
            // The times are bound after the IDs: `Built` binds text and integers, not NULL.
            let values: Vec<String> = rows
                .iter()
                .zip(&done)
                .map(|(p, d)| match d {
                    Some(t) => format!("({p}, CAST({} AS BIGINT))", b.arg(Arg::Int(*t))),
                    None => format!("({p}, CAST(NULL AS BIGINT))"),
                })
                .collect();
            b.sql = format!(
                "UPDATE rollout_members SET done_at = v.column2 FROM (VALUES {}) AS v \
                 WHERE rollout_members.catalog_version = {v} AND rollout_members.profile_id = v.column1",
                values.join(", ")
            );
            b.query()
                .execute(&mut *tx)
                .await
                .map_err(|e| db_err("recording a rollout's progress", e))?;
        }
        tx.commit()
            .await
            .map_err(|e| db_err("committing a rollout's progress", e))
    }
}

//! App profiles on [`SqlStore`]: their row codec, insert (with its history event and its row in the
//! monitor's schedule, atomically), read, guarded and unguarded saves (each with its history event,
//! atomically), the refresh-token redemption time, deletion, listing and counts.

use std::collections::BTreeMap;
use std::str::FromStr as _;

use consentry_domain::{
    AppId, AppProfile, CappedCount, CertificateInfo, ConsentUser, GrantedPermission, MAX_PAGE_SIZE,
    NewHistoryEvent, ObjectId, OrgId, Page, PageRequest, ProfileFilter, ProfileId, ProfileStatus,
    SecretKind, StatusReason, StoreError, TenantId, Thumbprint, Upn,
};
use secrecy::{ExposeSecret as _, SecretSlice};
use sqlx::AssertSqlSafe;
use sqlx::any::AnyRow;
use time::OffsetDateTime;

use super::{
    SqlStore, db_err, get, get_parsed,
    history::{HISTORY_COLUMNS, append_history, bind_history, check_event_matches},
    is_foreign_key_violation, is_unique_violation,
    query::{capped_count_query, count_query, counted_statuses, list_query},
};
use crate::codec::{
    decode_cursor, encode_cursor, enum_from_db, enum_to_db, json_from_db, json_to_db,
    opt_time_from_db, opt_time_to_db, parse_from_db, time_from_db, time_to_db, version_from_db,
};
use crate::sealer::Binding;

/// The columns of `profiles`, in the order [`profile_from_row`] reads them by name.
pub(super) const PROFILE_COLUMNS: &str = "id, org_id, tenant_id, app_type, service, application_id, consent_method, \
     consent_object_id, consent_upn, granted_permissions, cert_thumbprint, cert_subject, cert_not_after, functions, \
     original_sign_in_ip, status, reason, reason_code, last_checked_at, consented_catalog_version, authorized_at, \
     created_at, updated_at, scan_targets, refresh_token_redeemed_at, cloud";

/// The values of a profile's columns, in [`PROFILE_COLUMNS`] order.
struct ProfileRow {
    id: String,
    org_id: String,
    tenant_id: String,
    app_type: String,
    service: String,
    application_id: Option<String>,
    consent_method: Option<String>,
    consent_object_id: Option<String>,
    consent_upn: Option<String>,
    granted_permissions: String,
    cert_thumbprint: Option<String>,
    cert_subject: Option<String>,
    cert_not_after: Option<i64>,
    functions: String,
    scan_targets: String,
    original_sign_in_ip: Option<String>,
    status: String,
    reason: Option<String>,
    reason_code: Option<String>,
    last_checked_at: Option<i64>,
    consented_catalog_version: Option<i64>,
    authorized_at: Option<i64>,
    created_at: i64,
    updated_at: i64,
    refresh_token_redeemed_at: Option<i64>,
    cloud: String,
}

impl ProfileRow {
    fn from_profile(p: &AppProfile) -> Result<Self, StoreError> {
        Ok(Self {
            id: p.id.to_string(),
            org_id: p.org_id.to_string(),
            tenant_id: p.tenant_id.to_string(),
            app_type: p.app_type.clone(),
            service: p.service.clone(),
            application_id: p.application_id.map(|a| a.to_string()),
            consent_method: p
                .consent_method
                .as_ref()
                .map(|m| enum_to_db("consent method", m))
                .transpose()?,
            consent_object_id: p.consent_user.as_ref().map(|u| u.object_id.to_string()),
            consent_upn: p.consent_user.as_ref().map(|u| u.upn.to_string()),
            granted_permissions: json_to_db("granted permissions", &p.granted_permissions)?,
            cert_thumbprint: p.certificate.as_ref().map(|c| c.thumbprint.to_string()),
            cert_subject: p.certificate.as_ref().map(|c| c.subject.clone()),
            cert_not_after: opt_time_to_db(p.certificate.as_ref().map(|c| c.not_after))?,
            functions: json_to_db("functions", &p.functions)?,
            scan_targets: json_to_db("scan targets", &p.scan_targets)?,
            original_sign_in_ip: p.original_sign_in_ip.map(|ip| ip.to_string()),
            status: p.status.as_str().to_string(),
            reason: p
                .reason
                .as_ref()
                .map(|r| json_to_db("status reason", r))
                .transpose()?,
            reason_code: p.reason.as_ref().map(|r| r.code().to_string()),
            last_checked_at: opt_time_to_db(p.last_checked_at)?,
            consented_catalog_version: p.consented_catalog_version.map(i64::from),
            authorized_at: opt_time_to_db(p.authorized_at)?,
            created_at: time_to_db(p.created_at)?,
            updated_at: time_to_db(p.updated_at)?,
            refresh_token_redeemed_at: opt_time_to_db(p.refresh_token_redeemed_at)?,
            cloud: p.cloud.to_string(),
        })
    }

    /// Binds every column in [`PROFILE_COLUMNS`] order.
    fn bind<'q>(
        self,
        mut q: sqlx::query::Query<'q, sqlx::Any, sqlx::any::AnyArguments>,
    ) -> sqlx::query::Query<'q, sqlx::Any, sqlx::any::AnyArguments> {
        q = q
            .bind(self.id)
            .bind(self.org_id)
            .bind(self.tenant_id)
            .bind(self.app_type)
            .bind(self.service)
            .bind(self.application_id)
            .bind(self.consent_method)
            .bind(self.consent_object_id)
            .bind(self.consent_upn)
            .bind(self.granted_permissions)
            .bind(self.cert_thumbprint)
            .bind(self.cert_subject)
            .bind(self.cert_not_after)
            .bind(self.functions)
            .bind(self.original_sign_in_ip)
            .bind(self.status)
            .bind(self.reason)
            .bind(self.reason_code)
            .bind(self.last_checked_at)
            .bind(self.consented_catalog_version)
            .bind(self.authorized_at)
            .bind(self.created_at)
            .bind(self.updated_at)
            .bind(self.scan_targets)
            .bind(self.refresh_token_redeemed_at)
            .bind(self.cloud);
        q
    }
}

pub(super) fn profile_from_row(row: &AnyRow) -> Result<(AppProfile, i64), StoreError> {
    let id: String = get(row, "id")?;
    let created_raw: i64 = get(row, "created_at")?;
    let consent_object_id: Option<String> = get(row, "consent_object_id")?;
    let consent_upn: Option<String> = get(row, "consent_upn")?;
    let consent_user = match (consent_object_id, consent_upn) {
        (Some(o), Some(u)) => Some(ConsentUser {
            object_id: parse_from_db("consent_object_id", &o, ObjectId::parse)?,
            upn: parse_from_db("consent_upn", &u, Upn::parse)?,
        }),
        _ => None,
    };
    let thumbprint: Option<String> = get(row, "cert_thumbprint")?;
    let certificate = match thumbprint {
        Some(t) => Some(CertificateInfo {
            thumbprint: parse_from_db("cert_thumbprint", &t, Thumbprint::parse)?,
            subject: get::<Option<String>>(row, "cert_subject")?.unwrap_or_default(),
            not_after: time_from_db(
                "cert_not_after",
                get::<Option<i64>>(row, "cert_not_after")?.ok_or_else(|| {
                    StoreError::Backend(
                        "column cert_not_after is empty for a stored certificate".into(),
                    )
                })?,
            )?,
        }),
        None => None,
    };
    let status: String = get(row, "status")?;
    let granted: String = get(row, "granted_permissions")?;
    let functions: String = get(row, "functions")?;
    let reason: Option<String> = get(row, "reason")?;
    let version: Option<i64> = get(row, "consented_catalog_version")?;
    let profile = AppProfile {
        id: parse_from_db("id", &id, ProfileId::parse)?,
        org_id: get_parsed(row, "org_id", OrgId::parse)?,
        tenant_id: get_parsed(row, "tenant_id", TenantId::parse)?,
        cloud: get_parsed(row, "cloud", consentry_domain::CloudKey::parse)?,
        app_type: get(row, "app_type")?,
        service: get(row, "service")?,
        application_id: get::<Option<String>>(row, "application_id")?
            .map(|a| parse_from_db("application_id", &a, AppId::parse))
            .transpose()?,
        consent_method: get::<Option<String>>(row, "consent_method")?
            .map(|m| enum_from_db("consent_method", m))
            .transpose()?,
        consent_user,
        granted_permissions: json_from_db::<Vec<GrantedPermission>>(
            "granted_permissions",
            &granted,
        )?,
        certificate,
        functions: json_from_db::<Vec<String>>("functions", &functions)?,
        scan_targets: json_from_db::<Vec<String>>(
            "scan_targets",
            &get::<String>(row, "scan_targets")?,
        )?,
        original_sign_in_ip: get::<Option<String>>(row, "original_sign_in_ip")?
            .map(|ip| parse_from_db("original_sign_in_ip", &ip, std::net::IpAddr::from_str))
            .transpose()?,
        status: ProfileStatus::parse(&status).ok_or_else(|| {
            StoreError::Backend(format!("column status holds an unknown status {status:?}"))
        })?,
        reason: reason
            .map(|r| json_from_db::<StatusReason>("reason", &r))
            .transpose()?,
        last_checked_at: opt_time_from_db("last_checked_at", get(row, "last_checked_at")?)?,
        consented_catalog_version: version_from_db(version)?,
        authorized_at: opt_time_from_db("authorized_at", get(row, "authorized_at")?)?,
        refresh_token_redeemed_at: opt_time_from_db(
            "refresh_token_redeemed_at",
            get(row, "refresh_token_redeemed_at")?,
        )?,
        created_at: time_from_db("created_at", created_raw)?,
        updated_at: time_from_db("updated_at", get(row, "updated_at")?)?,
    };
    Ok((profile, created_raw))
}

impl SqlStore {
    /// Saves a profile (and its event, atomically); with `expected`, only while the stored profile
    /// still has that `updated_at` and status. `Ok(false)`: nothing was written because the profile
    /// changed since `expected`; `NotFound`: it is absent (told apart by reading it).
    async fn save_profile_guarded(
        &self,
        profile: &AppProfile,
        expected: Option<(OffsetDateTime, ProfileStatus)>,
        event: Option<NewHistoryEvent>,
    ) -> Result<bool, StoreError> {
        if let Some(event) = &event {
            check_event_matches(profile, event)?;
        }
        let row = ProfileRow::from_profile(profile)?;
        // Same column order as PROFILE_COLUMNS; $1 is the id (not updated).
        let mut sql = String::from(
            "UPDATE profiles SET org_id = $2, tenant_id = $3, app_type = $4, service = $5, application_id = $6, \
             consent_method = $7, consent_object_id = $8, consent_upn = $9, granted_permissions = $10, \
             cert_thumbprint = $11, cert_subject = $12, cert_not_after = $13, functions = $14, \
             original_sign_in_ip = $15, status = $16, reason = $17, reason_code = $18, last_checked_at = $19, \
             consented_catalog_version = $20, authorized_at = $21, created_at = $22, updated_at = $23, \
             scan_targets = $24, \
             refresh_token_redeemed_at = CASE WHEN refresh_token_redeemed_at IS NULL OR refresh_token_redeemed_at < $25 \
             THEN $25 ELSE refresh_token_redeemed_at END, cloud = $26 \
             WHERE id = $1",
        );
        // The redemption time only moves forward: a save of a profile read before a concurrent
        // redemption (the token API's) keeps the later time.
        if expected.is_some() {
            sql.push_str(" AND updated_at = $27 AND status = $28");
        }
        let mut query = row.bind(sqlx::query(AssertSqlSafe(sql)));
        if let Some((updated_at, status)) = expected {
            query = query
                .bind(time_to_db(updated_at)?)
                .bind(status.as_str().to_string());
        }
        let saving = |e: sqlx::Error| {
            if is_foreign_key_violation(&e) {
                StoreError::NotFound(format!(
                    "tenant {} in organization {}",
                    profile.tenant_id, profile.org_id
                ))
            } else {
                db_err("saving a profile", e)
            }
        };
        let Some(event) = event else {
            // One statement, committed on its own: no transaction round trips.
            let done = query.execute(&self.pool).await.map_err(saving)?;
            return self
                .saved_or_why(profile.id, done.rows_affected(), expected)
                .await;
        };
        let mut tx = self.begin_write().await?;
        let done = query.execute(&mut *tx).await.map_err(saving)?;
        if done.rows_affected() == 0 {
            drop(tx);
            return self.saved_or_why(profile.id, 0, expected).await;
        }
        append_history(&mut tx, &event).await?;
        tx.commit()
            .await
            .map_err(|e| db_err("committing a saved profile", e))?;
        Ok(true)
    }

    /// After a guarded update: saved, changed meanwhile (`false`), or absent (`NotFound`).
    async fn saved_or_why(
        &self,
        id: ProfileId,
        rows: u64,
        expected: Option<(OffsetDateTime, ProfileStatus)>,
    ) -> Result<bool, StoreError> {
        if rows > 0 {
            return Ok(true);
        }
        if expected.is_some() && self.get_profile(id).await?.is_some() {
            return Ok(false);
        }
        Err(StoreError::NotFound(format!("profile {id}")))
    }
}

/// One new profile of [`SqlStore::insert_profiles`]: the profile, its first history event and the
/// secrets stored with it (sealed by the store, each bound to this profile and its kind).
#[derive(Debug, Clone, Copy)]
pub struct NewProfileRows<'a> {
    /// The profile.
    pub profile: &'a AppProfile,
    /// Its first history event.
    pub event: &'a NewHistoryEvent,
    /// Its secrets.
    pub secrets: &'a [(SecretKind, &'a SecretSlice<u8>)],
}

/// Rows per multi-row `INSERT` of [`SqlStore::insert_profiles`]: 500 profiles bind 13,000 values,
/// within SQLite's 32,766 and PostgreSQL's 65,535.
const BULK_ROWS: usize = 500;

/// `INSERT INTO table (columns) VALUES (…), (…)`: `rows` tuples of `width` numbered placeholders.
fn multi_row_insert(table: &str, columns: &str, width: usize, rows: usize) -> String {
    format!(
        "INSERT INTO {table} ({columns}) VALUES {}",
        super::numbered_rows(1, width, rows)
    )
}

impl SqlStore {
    /// Inserts many new profiles in one transaction, set-based: per 500 profiles one multi-row `INSERT`
    /// each for the profiles, their schedule rows, their first history events and their secrets.
    /// The same rows as [`insert_profile`](consentry_domain::Store::insert_profile) followed by
    /// [`put_secret`](consentry_domain::Store::put_secret) for each, with the same sealing (every
    /// secret sealed on its own, bound to its profile and kind); for bulk loads (the benchmark's seed).
    /// All or nothing: `Conflict` if a profile exists, `NotFound` if a tenant or organization does not.
    pub async fn insert_profiles(&self, new: &[NewProfileRows<'_>]) -> Result<(), StoreError> {
        for n in new {
            check_event_matches(n.profile, n.event)?;
        }
        let inserting = |e: sqlx::Error| {
            if is_unique_violation(&e) {
                StoreError::Conflict("one of the profiles inserted in bulk".into())
            } else if is_foreign_key_violation(&e) {
                StoreError::NotFound(
                    "the tenant or organization of a profile inserted in bulk".into(),
                )
            } else {
                db_err("inserting profiles in bulk", e)
            }
        };
        let width = PROFILE_COLUMNS.split(',').count();
        let now = time_to_db(OffsetDateTime::now_utc())?;
        let mut tx = self.begin_write().await?;
        for chunk in new.chunks(BULK_ROWS) {
            let sql = multi_row_insert("profiles", PROFILE_COLUMNS, width, chunk.len());
            let mut q = sqlx::query(AssertSqlSafe(sql));
            for n in chunk {
                q = ProfileRow::from_profile(n.profile)?.bind(q);
            }
            q.execute(&mut *tx).await.map_err(inserting)?;

            let sql = multi_row_insert(
                "check_schedule",
                "profile_id, tenant_id, next_check_at",
                3,
                chunk.len(),
            );
            let mut q = sqlx::query(AssertSqlSafe(sql));
            for n in chunk {
                q = q
                    .bind(n.profile.id.to_string())
                    .bind(n.profile.tenant_id.to_string())
                    .bind(time_to_db(n.profile.created_at)?);
            }
            q.execute(&mut *tx)
                .await
                .map_err(|e| db_err("scheduling profiles inserted in bulk", e))?;

            let sql = multi_row_insert("profile_history", HISTORY_COLUMNS, 10, chunk.len());
            let mut q = sqlx::query(AssertSqlSafe(sql));
            for n in chunk {
                q = bind_history(q, n.event)?;
            }
            q.execute(&mut *tx)
                .await
                .map_err(|e| db_err("appending history events in bulk", e))?;

            let secrets: Vec<(String, SecretKind, &SecretSlice<u8>)> = chunk
                .iter()
                .flat_map(|n| {
                    n.secrets
                        .iter()
                        .map(|(kind, secret)| (n.profile.id.to_string(), *kind, *secret))
                })
                .collect();
            for part in secrets.chunks(BULK_ROWS) {
                let sql = multi_row_insert(
                    "secrets",
                    "profile_id, kind, sealed, updated_at",
                    4,
                    part.len(),
                );
                let mut q = sqlx::query(AssertSqlSafe(sql));
                for (owner, kind, secret) in part {
                    let sealed = self
                        .sealer
                        .seal(
                            Binding {
                                owner,
                                kind: kind.as_str(),
                            },
                            secret.expose_secret(),
                        )
                        .map_err(|e| StoreError::Sealing(e.to_string()))?;
                    q = q
                        .bind(owner.clone())
                        .bind(kind.as_str())
                        .bind(sealed)
                        .bind(now);
                }
                q.execute(&mut *tx)
                    .await
                    .map_err(|e| db_err("storing secrets in bulk", e))?;
            }
        }
        tx.commit()
            .await
            .map_err(|e| db_err("committing profiles inserted in bulk", e))
    }
}

impl SqlStore {
    pub(super) async fn insert_profile(
        &self,
        profile: &AppProfile,
        event: NewHistoryEvent,
    ) -> Result<(), StoreError> {
        check_event_matches(profile, &event)?;
        let row = ProfileRow::from_profile(profile)?;
        let mut tx = self.begin_write().await?;
        let sql = format!(
            "INSERT INTO profiles ({PROFILE_COLUMNS}) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, \
             $14, $15, $16, $17, $18, $19, $20, $21, $22, $23, $24, $25, $26)"
        );
        row.bind(sqlx::query(AssertSqlSafe(sql)))
            .execute(&mut *tx)
            .await
            .map_err(|e| {
                if is_unique_violation(&e) {
                    StoreError::Conflict(format!("profile {}", profile.id))
                } else if is_foreign_key_violation(&e) {
                    StoreError::NotFound(format!(
                        "tenant {} in organization {}",
                        profile.tenant_id, profile.org_id
                    ))
                } else {
                    db_err("inserting a profile", e)
                }
            })?;
        // The monitor's schedule row, due from the profile's creation: created here, with the
        // profile, so that no lease has to look for unscheduled profiles.
        sqlx::query(
            "INSERT INTO check_schedule (profile_id, tenant_id, next_check_at) VALUES ($1, $2, $3)",
        )
        .bind(profile.id.to_string())
        .bind(profile.tenant_id.to_string())
        .bind(time_to_db(profile.created_at)?)
        .execute(&mut *tx)
        .await
        .map_err(|e| db_err("scheduling a new profile's checks", e))?;
        append_history(&mut tx, &event).await?;
        tx.commit()
            .await
            .map_err(|e| db_err("committing a new profile", e))
    }

    pub(super) async fn get_profile(
        &self,
        id: ProfileId,
    ) -> Result<Option<AppProfile>, StoreError> {
        let sql = format!("SELECT {PROFILE_COLUMNS} FROM profiles WHERE id = $1");
        sqlx::query(AssertSqlSafe(sql))
            .bind(id.to_string())
            .fetch_optional(&self.pool)
            .await
            .map_err(|e| db_err("reading a profile", e))?
            .as_ref()
            .map(|r| profile_from_row(r).map(|(p, _)| p))
            .transpose()
    }

    pub(super) async fn save_profile(
        &self,
        profile: &AppProfile,
        event: Option<NewHistoryEvent>,
    ) -> Result<(), StoreError> {
        if self.save_profile_guarded(profile, None, event).await? {
            Ok(())
        } else {
            Err(StoreError::NotFound(format!("profile {}", profile.id)))
        }
    }

    pub(super) async fn save_profile_if_unchanged(
        &self,
        profile: &AppProfile,
        expected: (OffsetDateTime, ProfileStatus),
        event: Option<NewHistoryEvent>,
    ) -> Result<bool, StoreError> {
        self.save_profile_guarded(profile, Some(expected), event)
            .await
    }

    pub(super) async fn save_check(
        &self,
        profile: &AppProfile,
        (updated_at, status): (OffsetDateTime, ProfileStatus),
    ) -> Result<bool, StoreError> {
        // Only columns no index of `profiles` holds: SQLite rewrites the entry of every index whose
        // columns are in the SET list, changed or not (ten of them for a full save). Only those three
        // are encoded (`ProfileRow::from_profile` would encode every column).
        let done = sqlx::query(
            "UPDATE profiles SET last_checked_at = $2, granted_permissions = $3, \
             refresh_token_redeemed_at = CASE WHEN refresh_token_redeemed_at IS NULL OR refresh_token_redeemed_at < $4 \
             THEN $4 ELSE refresh_token_redeemed_at END \
             WHERE id = $1 AND updated_at = $5 AND status = $6",
        )
        .bind(profile.id.to_string())
        .bind(opt_time_to_db(profile.last_checked_at)?)
        .bind(json_to_db(
            "granted permissions",
            &profile.granted_permissions,
        )?)
        .bind(opt_time_to_db(profile.refresh_token_redeemed_at)?)
        .bind(time_to_db(updated_at)?)
        .bind(status.as_str().to_string())
        .execute(&self.pool)
        .await
        .map_err(|e| db_err("saving a check's result", e))?;
        self.saved_or_why(profile.id, done.rows_affected(), Some((updated_at, status)))
            .await
    }

    pub(super) async fn record_refresh_redemption(
        &self,
        profile: ProfileId,
        at: OffsetDateTime,
    ) -> Result<(), StoreError> {
        sqlx::query(
            "UPDATE profiles SET refresh_token_redeemed_at = $2 WHERE id = $1 \
             AND (refresh_token_redeemed_at IS NULL OR refresh_token_redeemed_at < $2)",
        )
        .bind(profile.to_string())
        .bind(time_to_db(at)?)
        .execute(&self.pool)
        .await
        .map_err(|e| db_err("recording a refresh-token redemption", e))?;
        Ok(())
    }

    pub(super) async fn set_reason_evidence(
        &self,
        profile: ProfileId,
        evidence: Option<&consentry_domain::Evidence>,
    ) -> Result<(), StoreError> {
        let value = evidence.map(|e| json_to_db("evidence", e)).transpose()?;
        sqlx::query("UPDATE profiles SET reason_evidence = $2 WHERE id = $1")
            .bind(profile.to_string())
            .bind(value)
            .execute(&self.pool)
            .await
            .map_err(|e| db_err("saving a diagnosis's evidence", e))?;
        Ok(())
    }

    pub(super) async fn reason_evidence(
        &self,
        profile: ProfileId,
    ) -> Result<Option<consentry_domain::Evidence>, StoreError> {
        let value: Option<Option<String>> =
            sqlx::query_scalar("SELECT reason_evidence FROM profiles WHERE id = $1")
                .bind(profile.to_string())
                .fetch_optional(&self.pool)
                .await
                .map_err(|e| db_err("reading a diagnosis's evidence", e))?;
        value
            .flatten()
            .map(|e| json_from_db("evidence", &e))
            .transpose()
    }

    pub(super) async fn delete_profile(&self, id: ProfileId) -> Result<bool, StoreError> {
        let mut tx = self.begin_write().await?;
        let done = sqlx::query("DELETE FROM profiles WHERE id = $1")
            .bind(id.to_string())
            .execute(&mut *tx)
            .await
            .map_err(|e| db_err("deleting a profile", e))?;
        // ON DELETE CASCADE covers these; deleting explicitly keeps the contract independent of the schema.
        for sql in [
            "DELETE FROM secrets WHERE profile_id = $1",
            "DELETE FROM pending_authorizations WHERE profile_id = $1",
            "DELETE FROM profile_history WHERE profile_id = $1",
        ] {
            sqlx::query(sql)
                .bind(id.to_string())
                .execute(&mut *tx)
                .await
                .map_err(|e| {
                    db_err(
                        "deleting a profile's history, secrets and pending re-authorization",
                        e,
                    )
                })?;
        }
        tx.commit()
            .await
            .map_err(|e| db_err("committing a profile deletion", e))?;
        Ok(done.rows_affected() > 0)
    }

    pub(super) async fn list_profiles(
        &self,
        filter: &ProfileFilter,
        page: &PageRequest,
    ) -> Result<Page<AppProfile>, StoreError> {
        let after = page.after.as_deref().map(decode_cursor).transpose()?;
        let limit = page.limit.clamp(1, MAX_PAGE_SIZE);
        let built = list_query(filter, after, limit);
        let rows = built
            .query()
            .fetch_all(&self.pool)
            .await
            .map_err(|e| db_err("listing profiles", e))?;
        let mut items = Vec::with_capacity(rows.len().min(limit as usize));
        let mut last = None;
        for row in rows.iter().take(limit as usize) {
            let (p, created_raw) = profile_from_row(row)?;
            last = Some((created_raw, p.id.as_uuid()));
            items.push(p);
        }
        let next_cursor = if rows.len() > limit as usize {
            last.map(|(at, id)| encode_cursor(at, id))
        } else {
            None
        };
        Ok(Page { items, next_cursor })
    }

    pub(super) async fn count_profiles(
        &self,
        filter: &ProfileFilter,
    ) -> Result<BTreeMap<ProfileStatus, u64>, StoreError> {
        let built = count_query(filter);
        let rows = built
            .query()
            .fetch_all(&self.pool)
            .await
            .map_err(|e| db_err("counting profiles", e))?;
        let mut counts: BTreeMap<ProfileStatus, u64> =
            ProfileStatus::ALL.into_iter().map(|s| (s, 0)).collect();
        for row in &rows {
            let status: String = get(row, "status")?;
            let n: i64 = get(row, "n")?;
            let status = ProfileStatus::parse(&status).ok_or_else(|| {
                StoreError::Backend(format!("column status holds an unknown status {status:?}"))
            })?;
            counts.insert(status, u64::try_from(n).unwrap_or(0));
        }
        Ok(counts)
    }

    pub(super) async fn count_profiles_up_to(
        &self,
        filter: &ProfileFilter,
        limit: u64,
    ) -> Result<BTreeMap<ProfileStatus, CappedCount>, StoreError> {
        let mut counts: BTreeMap<ProfileStatus, CappedCount> = ProfileStatus::ALL
            .into_iter()
            .map(|s| (s, CappedCount::exact(0)))
            .collect();
        let statuses = counted_statuses(filter);
        if statuses.is_empty() {
            return Ok(counts);
        }
        let row = capped_count_query(filter, &statuses, limit)
            .query()
            .fetch_one(&self.pool)
            .await
            .map_err(|e| db_err("counting profiles", e))?;
        for (i, s) in statuses.into_iter().enumerate() {
            let found: i64 = get(&row, &format!("n{i}"))?;
            counts.insert(s, CappedCount::of(u64::try_from(found).unwrap_or(0), limit));
        }
        Ok(counts)
    }
}

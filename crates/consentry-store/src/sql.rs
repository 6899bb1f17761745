//! [`SqlStore`]: the [`Store`] on a SQL database through sqlx's `Any` driver, so that one set of
//! queries serves every dialect; the few differences (migrations, connection set-up, WAL mode, leasing
//! with `SKIP LOCKED`, a `VACUUM` after sealing legacy nonces) match on [`Dialect`] where they arise.
//! One module per table family under `sql/`; the [`Store`] impl here routes each method to its module.

use std::collections::BTreeMap;
use std::sync::Arc;

use async_trait::async_trait;
use consentry_domain::{
    AppProfile, CappedCount, DomainName, HistoryEvent, NewHistoryEvent, OrgId, Organization, Page,
    PageRequest, PendingAuthorization, ProfileFilter, ProfileId, ProfileStatus, SecretKind,
    StatusReason, Store, StoreError, Tenant, TenantId,
};
use secrecy::SecretSlice;
use sqlx::any::AnyRow;
use sqlx::error::ErrorKind;
use sqlx::migrate::MigrateError;
use sqlx::{AnyPool, Row as _};
use time::OffsetDateTime;

use crate::sealer::Sealer;

mod accounts;
mod api_keys;
mod audit;
mod campaigns;
mod connections;
mod history;
mod invitations;
mod mail;
mod microsoft;
mod open;
mod pending;
mod profiles;
mod query;
mod rollouts;
mod rotation;
mod scan_profiles;
mod schedule;
mod secrets;
mod tenancy;
mod throttle;
mod vendor_alerts;
mod webhooks;

pub use open::{Dialect, SchemaVersion};
pub use profiles::NewProfileRows;
use query::{Arg, Built};
pub use rotation::{KeyCensus, Resealer, SealSample};

/// The store on a SQL database. Cheap to clone (a pool and a shared sealer).
#[derive(Debug, Clone)]
pub struct SqlStore {
    pool: AnyPool,
    sealer: Arc<Sealer>,
    dialect: Dialect,
}

impl SqlStore {
    /// Starts a transaction that will write. On SQLite it is `BEGIN IMMEDIATE`: the write lock is
    /// taken (waiting up to the busy timeout) before the first read. A deferred transaction that reads
    /// and then writes cannot wait for another writer: SQLite answers `SQLITE_BUSY` ("database is
    /// locked") at once, because the snapshot it read may already be stale. On PostgreSQL it is a
    /// plain `BEGIN`; row locks and `lock_timeout` do the waiting there.
    async fn begin_write(&self) -> Result<sqlx::Transaction<'static, sqlx::Any>, StoreError> {
        begin_write_on(&self.pool, self.dialect)
            .await
            .map_err(|e| db_err("starting a transaction", e))
    }
}

/// [`SqlStore::begin_write`] on any pool of `dialect` (also `db copy`'s target).
pub(crate) async fn begin_write_on(
    pool: &AnyPool,
    dialect: Dialect,
) -> Result<sqlx::Transaction<'static, sqlx::Any>, sqlx::Error> {
    match dialect {
        Dialect::Sqlite => pool.begin_with("BEGIN IMMEDIATE").await,
        Dialect::Postgres => pool.begin().await,
    }
}

/// A database error for logs; unique violations become `Conflict(what)`.
fn db_err(context: &str, e: sqlx::Error) -> StoreError {
    StoreError::Backend(format!("{context}: {e}"))
}

fn error_kind(e: &sqlx::Error) -> Option<ErrorKind> {
    match e {
        sqlx::Error::Database(d) => Some(d.kind()),
        _ => None,
    }
}

fn is_unique_violation(e: &sqlx::Error) -> bool {
    error_kind(e) == Some(ErrorKind::UniqueViolation)
}

fn is_foreign_key_violation(e: &sqlx::Error) -> bool {
    error_kind(e) == Some(ErrorKind::ForeignKeyViolation)
}

/// `$first, …`: `n` numbered placeholders from `$first` (SQLite and PostgreSQL alike).
fn numbered(first: usize, n: usize) -> String {
    (first..first + n)
        .map(|i| format!("${i}"))
        .collect::<Vec<_>>()
        .join(", ")
}

/// `($first, …), (…), …`: `rows` tuples of `width` consecutive numbered placeholders from `$first`.
fn numbered_rows(first: usize, width: usize, rows: usize) -> String {
    (0..rows)
        .map(|r| format!("({})", numbered(first + r * width, width)))
        .collect::<Vec<_>>()
        .join(", ")
}

fn get<'r, T>(row: &'r AnyRow, column: &str) -> Result<T, StoreError>
where
    T: sqlx::Decode<'r, sqlx::Any> + sqlx::Type<sqlx::Any>,
{
    row.try_get::<T, _>(column)
        .map_err(|e| StoreError::Backend(format!("column {column} could not be read: {e}")))
}

/// A text column parsed into an ID type (`parse`, e.g. `OrgId::parse`).
fn get_parsed<T, E: std::fmt::Display>(
    row: &AnyRow,
    column: &str,
    parse: impl FnOnce(&str) -> Result<T, E>,
) -> Result<T, StoreError> {
    crate::codec::parse_from_db(column, &get::<String>(row, column)?, parse)
}

fn migrate_err(e: MigrateError) -> StoreError {
    match e {
        MigrateError::VersionMissing(v) => StoreError::Backend(format!(
            "the database has migration {v} applied, which this build does not know: it was upgraded by a newer \
             Consentry; run that version (migrations only move forward)"
        )),
        MigrateError::VersionMismatch(v) => StoreError::Backend(format!(
            "migration {v} applied to the database differs from the one in this build; migrations must never be \
             edited once applied"
        )),
        MigrateError::Dirty(v) => StoreError::Backend(format!(
            "migration {v} failed part-way earlier; restore the database from a backup before starting again"
        )),
        other => StoreError::Backend(format!("migrations could not be applied: {other}")),
    }
}

/// Every method is implemented in its family's module (`tenancy`, `profiles`, `history`, `secrets`,
/// `pending`) as an inherent method of the same name; this table only routes the trait to them.
#[async_trait]
impl Store for SqlStore {
    async fn insert_organization(&self, org: &Organization) -> Result<(), StoreError> {
        SqlStore::insert_organization(self, org).await
    }

    async fn get_organization(&self, id: OrgId) -> Result<Option<Organization>, StoreError> {
        SqlStore::get_organization(self, id).await
    }

    async fn list_organizations(&self) -> Result<Vec<Organization>, StoreError> {
        SqlStore::list_organizations(self).await
    }

    async fn update_organization(&self, org: &Organization) -> Result<(), StoreError> {
        SqlStore::update_organization(self, org).await
    }

    async fn delete_organization(&self, id: OrgId) -> Result<bool, StoreError> {
        SqlStore::delete_organization(self, id).await
    }

    async fn insert_tenant(&self, tenant: &Tenant) -> Result<(), StoreError> {
        SqlStore::insert_tenant(self, tenant).await
    }

    async fn get_tenant(&self, id: TenantId) -> Result<Option<Tenant>, StoreError> {
        SqlStore::get_tenant(self, id).await
    }

    async fn find_tenant_by_domain(
        &self,
        domain: &DomainName,
    ) -> Result<Option<Tenant>, StoreError> {
        SqlStore::find_tenant_by_domain(self, domain).await
    }

    async fn list_tenants(&self, org: Option<OrgId>) -> Result<Vec<Tenant>, StoreError> {
        SqlStore::list_tenants(self, org).await
    }

    async fn delete_tenant(&self, id: TenantId) -> Result<bool, StoreError> {
        SqlStore::delete_tenant(self, id).await
    }

    async fn insert_profile(
        &self,
        profile: &AppProfile,
        event: NewHistoryEvent,
    ) -> Result<(), StoreError> {
        SqlStore::insert_profile(self, profile, event).await
    }

    async fn get_profile(&self, id: ProfileId) -> Result<Option<AppProfile>, StoreError> {
        SqlStore::get_profile(self, id).await
    }

    async fn save_profile(
        &self,
        profile: &AppProfile,
        event: Option<NewHistoryEvent>,
    ) -> Result<(), StoreError> {
        SqlStore::save_profile(self, profile, event).await
    }

    async fn save_profile_if_unchanged(
        &self,
        profile: &AppProfile,
        expected: (OffsetDateTime, ProfileStatus),
        event: Option<NewHistoryEvent>,
    ) -> Result<bool, StoreError> {
        SqlStore::save_profile_if_unchanged(self, profile, expected, event).await
    }

    async fn save_check(
        &self,
        profile: &AppProfile,
        expected: (OffsetDateTime, ProfileStatus),
    ) -> Result<bool, StoreError> {
        SqlStore::save_check(self, profile, expected).await
    }

    async fn record_refresh_redemption(
        &self,
        profile: ProfileId,
        at: OffsetDateTime,
    ) -> Result<(), StoreError> {
        SqlStore::record_refresh_redemption(self, profile, at).await
    }

    async fn set_reason_evidence(
        &self,
        profile: ProfileId,
        evidence: Option<&consentry_domain::Evidence>,
    ) -> Result<(), StoreError> {
        SqlStore::set_reason_evidence(self, profile, evidence).await
    }

    async fn reason_evidence(
        &self,
        profile: ProfileId,
    ) -> Result<Option<consentry_domain::Evidence>, StoreError> {
        SqlStore::reason_evidence(self, profile).await
    }

    async fn delete_profile(&self, id: ProfileId) -> Result<bool, StoreError> {
        SqlStore::delete_profile(self, id).await
    }

    async fn list_profiles(
        &self,
        filter: &ProfileFilter,
        page: &PageRequest,
    ) -> Result<Page<AppProfile>, StoreError> {
        SqlStore::list_profiles(self, filter, page).await
    }

    async fn count_profiles(
        &self,
        filter: &ProfileFilter,
    ) -> Result<BTreeMap<ProfileStatus, u64>, StoreError> {
        SqlStore::count_profiles(self, filter).await
    }

    async fn count_profiles_up_to(
        &self,
        filter: &ProfileFilter,
        limit: u64,
    ) -> Result<BTreeMap<ProfileStatus, CappedCount>, StoreError> {
        SqlStore::count_profiles_up_to(self, filter, limit).await
    }

    async fn list_history(
        &self,
        profile: ProfileId,
        limit: u32,
    ) -> Result<Vec<HistoryEvent>, StoreError> {
        SqlStore::list_history(self, profile, limit).await
    }

    async fn put_secret(
        &self,
        profile: ProfileId,
        kind: SecretKind,
        secret: &SecretSlice<u8>,
    ) -> Result<(), StoreError> {
        SqlStore::put_secret(self, profile, kind, secret).await
    }

    async fn get_secret(
        &self,
        profile: ProfileId,
        kind: SecretKind,
    ) -> Result<Option<SecretSlice<u8>>, StoreError> {
        SqlStore::get_secret(self, profile, kind).await
    }

    async fn delete_secret(
        &self,
        profile: ProfileId,
        kind: SecretKind,
    ) -> Result<bool, StoreError> {
        SqlStore::delete_secret(self, profile, kind).await
    }

    async fn put_pending(&self, pending: &PendingAuthorization) -> Result<(), StoreError> {
        SqlStore::put_pending(self, pending).await
    }

    async fn take_pending(
        &self,
        state_hash: &str,
        hold_until: OffsetDateTime,
    ) -> Result<Option<PendingAuthorization>, StoreError> {
        SqlStore::take_pending(self, state_hash, hold_until).await
    }

    async fn delete_pending(&self, state_hash: &str) -> Result<bool, StoreError> {
        SqlStore::delete_pending(self, state_hash).await
    }

    async fn note_pending_check(
        &self,
        state_hash: &str,
        status: ProfileStatus,
        reason: Option<&StatusReason>,
    ) -> Result<bool, StoreError> {
        SqlStore::note_pending_check(self, state_hash, status, reason).await
    }

    async fn pending_for_profile(
        &self,
        profile: ProfileId,
    ) -> Result<Option<PendingAuthorization>, StoreError> {
        SqlStore::pending_for_profile(self, profile).await
    }

    async fn delete_pending_for_profile(&self, profile: ProfileId) -> Result<bool, StoreError> {
        SqlStore::delete_pending_for_profile(self, profile).await
    }
}

#[cfg(test)]
mod placeholder_tests {
    #[test]
    fn numbered_placeholders_and_rows() {
        assert_eq!(super::numbered(1, 3), "$1, $2, $3");
        assert_eq!(super::numbered(2, 1), "$2");
        assert_eq!(super::numbered(5, 0), "");
        assert_eq!(super::numbered_rows(2, 2, 2), "($2, $3), ($4, $5)");
        assert_eq!(super::numbered_rows(1, 3, 1), "($1, $2, $3)");
    }
}

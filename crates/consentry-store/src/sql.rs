//! [`SqlStore`]: the [`Store`] on a SQL database through sqlx's `Any` driver, so that one set of
//! queries serves every dialect; only the migrations folder and the connection set-up differ, and both
//! are chosen by [`Dialect`] in one place.

use std::collections::BTreeMap;
use std::str::FromStr as _;
use std::sync::Arc;

use async_trait::async_trait;
use consentry_domain::{
    Actor, AppId, AppProfile, AuthLeg, CertificateInfo, ConsentUser, DomainName, EventKind,
    GrantedPermission, HistoryEvent, MAX_PAGE_SIZE, NewHistoryEvent, ObjectId, OrgId, Organization,
    Page, PageRequest, PendingAuthorization, ProfileFilter, ProfileId, ProfileStatus, SecretKind,
    StatusReason, Store, StoreError, Tenant, TenantId, Thumbprint, Upn,
};
use secrecy::zeroize::Zeroizing;
use secrecy::{ExposeSecret as _, SecretSlice};
use sqlx::any::{AnyConnectOptions, AnyPoolOptions, AnyRow};
use sqlx::error::ErrorKind;
use sqlx::migrate::{Migrate as _, MigrateError, Migrator};
use sqlx::{AnyPool, AssertSqlSafe, Executor as _, Row as _};
use time::OffsetDateTime;
use uuid::Uuid;

use crate::codec::{
    decode_cursor, encode_cursor, enum_from_db, enum_to_db, escape_like, json_from_db, json_to_db,
    opt_time_from_db, opt_time_to_db, parse_from_db, time_from_db, time_to_db,
};
use crate::sealer::{Binding, Sealer};

mod accounts;
mod api_keys;
mod audit;
mod rotation;
mod scan_profiles;
mod schedule;
mod webhooks;

pub use rotation::{KeyCensus, Resealer};

/// The SQLite schema's forward-only migrations, embedded in the binary and applied at open.
static SQLITE_MIGRATIONS: Migrator = sqlx::migrate!("./migrations/sqlite");

/// The PostgreSQL schema's forward-only migrations, embedded in the binary and applied at open.
static POSTGRES_MIGRATIONS: Migrator = sqlx::migrate!("./migrations/postgres");

/// The table sqlx records applied migrations in.
const MIGRATIONS_TABLE: &str = "_sqlx_migrations";

/// How long a connection waits for a lock held by another before giving up.
const BUSY_TIMEOUT_MS: u32 = 5_000;

/// Connections a pool keeps open at most on a file or server database.
const MAX_CONNECTIONS: u32 = 8;

/// The SQL dialect behind a store.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Dialect {
    /// SQLite (a file, or in memory for tests).
    Sqlite,
    /// PostgreSQL (a server; TLS as the URL's `sslmode` asks).
    Postgres,
}

impl Dialect {
    /// This dialect's forward-only migrations.
    fn migrator(self) -> &'static Migrator {
        match self {
            Dialect::Sqlite => &SQLITE_MIGRATIONS,
            Dialect::Postgres => &POSTGRES_MIGRATIONS,
        }
    }

    /// Statements run on every new connection before it is used.
    fn connection_setup(self) -> Vec<String> {
        match self {
            Dialect::Sqlite => vec![
                "PRAGMA foreign_keys = ON".to_string(),
                format!("PRAGMA busy_timeout = {BUSY_TIMEOUT_MS}"),
                // In WAL mode, NORMAL syncs the log at checkpoints instead of at every commit: the
                // database stays consistent after a power loss, which may undo the last commits before
                // it (SQLite's recommendation for WAL). FULL made every check's two writes wait for
                // the disk. See docs/DEPLOYMENT.md.
                "PRAGMA synchronous = NORMAL".to_string(),
            ],
            // Waits for a row lock held by another writer at most this long, like SQLite's busy timeout.
            Dialect::Postgres => vec![format!("SET lock_timeout = {BUSY_TIMEOUT_MS}")],
        }
    }
}

/// Where the schema of an open store stands.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SchemaVersion {
    /// The newest migration applied to the database (None on an empty database).
    pub applied: Option<i64>,
    /// The newest migration this build knows.
    pub latest: i64,
}

/// The store on a SQL database. Cheap to clone (a pool and a shared sealer).
#[derive(Debug, Clone)]
pub struct SqlStore {
    pool: AnyPool,
    sealer: Arc<Sealer>,
    dialect: Dialect,
}

/// The columns of `profiles`, in the order [`profile_from_row`] reads them by name.
const PROFILE_COLUMNS: &str = "id, org_id, tenant_id, app_type, service, application_id, consent_method, \
     consent_object_id, consent_upn, granted_permissions, cert_thumbprint, cert_subject, cert_not_after, functions, \
     original_sign_in_ip, status, reason, reason_code, last_checked_at, consented_catalog_version, authorized_at, \
     created_at, updated_at, scan_targets, refresh_token_redeemed_at";

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

fn get<'r, T>(row: &'r AnyRow, column: &str) -> Result<T, StoreError>
where
    T: sqlx::Decode<'r, sqlx::Any> + sqlx::Type<sqlx::Any>,
{
    row.try_get::<T, _>(column)
        .map_err(|e| StoreError::Backend(format!("column {column} could not be read: {e}")))
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

/// A bound value of a dynamically built query.
#[derive(Debug, Clone)]
enum Arg {
    Text(String),
    Int(i64),
}

/// A query being built with numbered `$n` placeholders (accepted by SQLite and PostgreSQL alike).
#[derive(Debug, Default)]
struct Built {
    sql: String,
    args: Vec<Arg>,
}

impl Built {
    /// Adds an argument and returns its placeholder.
    fn arg(&mut self, a: Arg) -> String {
        self.args.push(a);
        format!("${}", self.args.len())
    }

    fn query(&self) -> sqlx::query::Query<'_, sqlx::Any, sqlx::any::AnyArguments> {
        let mut q = sqlx::query(AssertSqlSafe(self.sql.clone()));
        for a in &self.args {
            q = match a {
                Arg::Text(s) => q.bind(s.clone()),
                Arg::Int(i) => q.bind(*i),
            };
        }
        q
    }
}

/// Appends the `WHERE` conditions of `filter` (and an optional keyset bound) to `b`.
fn push_filter(b: &mut Built, filter: &ProfileFilter, after: Option<(i64, Uuid)>) {
    let mut conds: Vec<String> = Vec::new();
    if let Some(org) = filter.org_id {
        let p = b.arg(Arg::Text(org.to_string()));
        conds.push(format!("org_id = {p}"));
    }
    if let Some(t) = filter.tenant_id {
        let p = b.arg(Arg::Text(t.to_string()));
        conds.push(format!("tenant_id = {p}"));
    }
    if !filter.statuses.is_empty() {
        let mut seen: Vec<ProfileStatus> = Vec::new();
        let mut ps = Vec::new();
        for s in &filter.statuses {
            if !seen.contains(s) {
                seen.push(*s);
                ps.push(b.arg(Arg::Text(s.as_str().to_string())));
            }
        }
        conds.push(format!("status IN ({})", ps.join(", ")));
    }
    if let Some(s) = &filter.service {
        let p = b.arg(Arg::Text(s.clone()));
        conds.push(format!("service = {p}"));
    }
    if let Some(a) = &filter.app_type {
        let p = b.arg(Arg::Text(a.clone()));
        conds.push(format!("app_type = {p}"));
    }
    if let Some(search) = filter
        .search
        .as_deref()
        .map(str::trim)
        .filter(|s| !s.is_empty())
    {
        let pattern = format!("%{}%", escape_like(&search.to_lowercase()));
        let alts: Vec<String> = ["app_type", "service", "consent_upn", "application_id"]
            .into_iter()
            .map(|col| {
                let p = b.arg(Arg::Text(pattern.clone()));
                format!("LOWER({col}) LIKE {p} ESCAPE '\\'")
            })
            .collect();
        conds.push(format!("({})", alts.join(" OR ")));
    }
    if let Some((at, id)) = after {
        let pa = b.arg(Arg::Int(at));
        let pi = b.arg(Arg::Text(id.hyphenated().to_string()));
        conds.push(format!("(created_at, id) > ({pa}, {pi})"));
    }
    if !conds.is_empty() {
        b.sql.push_str(" WHERE ");
        b.sql.push_str(&conds.join(" AND "));
    }
}

/// The `SELECT` of one page of profiles (fetching one row more than the page to learn whether another follows).
fn list_query(filter: &ProfileFilter, after: Option<(i64, Uuid)>, limit: u32) -> Built {
    let mut b = Built {
        sql: format!("SELECT {PROFILE_COLUMNS} FROM profiles"),
        args: Vec::new(),
    };
    push_filter(&mut b, filter, after);
    let pl = b.arg(Arg::Int(i64::from(limit) + 1));
    b.sql
        .push_str(&format!(" ORDER BY created_at, id LIMIT {pl}"));
    b
}

fn count_query(filter: &ProfileFilter) -> Built {
    let mut b = Built {
        sql: "SELECT status, COUNT(*) AS n FROM profiles".to_string(),
        args: Vec::new(),
    };
    push_filter(&mut b, filter, None);
    b.sql.push_str(" GROUP BY status");
    b
}

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
            .bind(self.refresh_token_redeemed_at);
        q
    }
}

fn profile_from_row(row: &AnyRow) -> Result<(AppProfile, i64), StoreError> {
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
        org_id: parse_from_db("org_id", &get::<String>(row, "org_id")?, OrgId::parse)?,
        tenant_id: parse_from_db(
            "tenant_id",
            &get::<String>(row, "tenant_id")?,
            TenantId::parse,
        )?,
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
        consented_catalog_version: version
            .map(|v| {
                u32::try_from(v).map_err(|_| {
                    StoreError::Backend(format!(
                        "column consented_catalog_version holds {v}, not a version"
                    ))
                })
            })
            .transpose()?,
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

fn organization_from_row(row: &AnyRow) -> Result<Organization, StoreError> {
    Ok(Organization {
        id: parse_from_db("id", &get::<String>(row, "id")?, OrgId::parse)?,
        name: get(row, "name")?,
        modules: json_from_db("modules", &get::<String>(row, "modules")?)?,
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
        created_at: time_from_db("created_at", get(row, "created_at")?)?,
    })
}

fn history_from_row(row: &AnyRow) -> Result<HistoryEvent, StoreError> {
    let kind: String = get(row, "kind")?;
    let status = |col: &str| -> Result<Option<ProfileStatus>, StoreError> {
        get::<Option<String>>(row, col)?
            .map(|s| {
                ProfileStatus::parse(&s).ok_or_else(|| {
                    StoreError::Backend(format!("column {col} holds an unknown status {s:?}"))
                })
            })
            .transpose()
    };
    Ok(HistoryEvent {
        seq: get(row, "seq")?,
        profile_id: parse_from_db(
            "profile_id",
            &get::<String>(row, "profile_id")?,
            ProfileId::parse,
        )?,
        at: time_from_db("at", get(row, "at")?)?,
        actor: json_from_db::<Actor>("actor", &get::<String>(row, "actor")?)?,
        kind: EventKind::parse(&kind).ok_or_else(|| {
            StoreError::Backend(format!("column kind holds an unknown event kind {kind:?}"))
        })?,
        from_status: status("from_status")?,
        to_status: status("to_status")?,
        reason: get::<Option<String>>(row, "reason")?
            .map(|r| json_from_db::<StatusReason>("reason", &r))
            .transpose()?,
        detail: get(row, "detail")?,
    })
}

/// Appends a history event inside `tx`.
async fn append_history(
    tx: &mut sqlx::Transaction<'_, sqlx::Any>,
    event: &NewHistoryEvent,
) -> Result<(), StoreError> {
    sqlx::query(
        "INSERT INTO profile_history (profile_id, at, actor, kind, from_status, to_status, reason, reason_code, detail) \
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9)",
    )
    .bind(event.profile_id.to_string())
    .bind(time_to_db(event.at)?)
    .bind(json_to_db("actor", &event.actor)?)
    .bind(event.kind.as_str())
    .bind(event.from_status.map(|s| s.as_str()))
    .bind(event.to_status.map(|s| s.as_str()))
    .bind(event.reason.as_ref().map(|r| json_to_db("status reason", r)).transpose()?)
    .bind(event.reason.as_ref().map(|r| r.code()))
    .bind(event.detail.clone())
    .execute(&mut **tx)
    .await
    .map_err(|e| db_err("appending a history event", e))?;
    Ok(())
}

fn check_event_matches(profile: &AppProfile, event: &NewHistoryEvent) -> Result<(), StoreError> {
    if event.profile_id != profile.id {
        return Err(StoreError::Backend(format!(
            "history event for profile {} given with profile {}; an event must belong to the profile it is saved with",
            event.profile_id, profile.id
        )));
    }
    Ok(())
}

/// The columns of `pending_authorizations`, in the order [`PendingRow::bind`] binds them.
const PENDING_COLUMNS: &str = "state_hash, profile_id, started_by, method, leg, sign_in_follows, custom_app_id, \
     functions, legacy_nonce, previous_status, previous_reason, created_at, expires_at, sealed_secrets, taken_until, \
     scan_targets";

/// The version byte of [`seal_pending`]'s plaintext layout.
const PENDING_SEALED_LAYOUT: u8 = 1;

/// What `sealed_secrets` holds once opened (migration 0010): the layout version, the OpenID Connect
/// nonce's length (4 bytes, big-endian), the nonce, then the domain's secrets blob. The nonce lets a
/// stolen ID token be replayed into a pending re-authorization, so it is sealed like the PKCE verifier.
fn pending_plaintext(nonce: &str, secrets: &[u8]) -> Result<Zeroizing<Vec<u8>>, StoreError> {
    let len = u32::try_from(nonce.len()).map_err(|_| {
        StoreError::Backend("a pending re-authorization's nonce is too long".into())
    })?;
    let mut plain = Zeroizing::new(Vec::with_capacity(5 + nonce.len() + secrets.len()));
    plain.push(PENDING_SEALED_LAYOUT);
    plain.extend_from_slice(&len.to_be_bytes());
    plain.extend_from_slice(nonce.as_bytes());
    plain.extend_from_slice(secrets);
    Ok(plain)
}

/// Splits an opened `sealed_secrets` of [`pending_plaintext`]'s layout into nonce and secrets.
fn split_pending_plaintext(plain: &[u8]) -> Result<(String, &[u8]), StoreError> {
    let malformed = |why: &str| {
        StoreError::Sealing(format!(
            "a pending re-authorization's sealed secrets are malformed ({why})"
        ))
    };
    let (&version, rest) = plain.split_first().ok_or_else(|| malformed("empty"))?;
    if version != PENDING_SEALED_LAYOUT {
        return Err(malformed(&format!("unknown layout {version}")));
    }
    let (len, rest) = rest
        .split_first_chunk::<4>()
        .ok_or_else(|| malformed("no nonce length"))?;
    let len = usize::try_from(u32::from_be_bytes(*len)).map_err(|_| malformed("nonce length"))?;
    if rest.len() < len {
        return Err(malformed("nonce cut short"));
    }
    let (nonce, secrets) = rest.split_at(len);
    let nonce = std::str::from_utf8(nonce).map_err(|_| malformed("nonce is not UTF-8"))?;
    Ok((nonce.to_string(), secrets))
}

/// The sealing kind of a pending re-authorization's secrets; the owner is its state hash, so a sealed
/// blob copied to another pending row (or into `secrets`) does not open.
const PENDING_SEAL_KIND: &str = "pending";

fn pending_binding(state_hash: &str) -> Binding<'_> {
    Binding {
        owner: state_hash,
        kind: PENDING_SEAL_KIND,
    }
}

/// Refuses anything but a hex SHA-256 (64 lower-case hex digits), so that an OAuth state itself is
/// never stored by mistake.
fn check_state_hash(state_hash: &str) -> Result<(), StoreError> {
    if state_hash.len() == 64
        && state_hash
            .bytes()
            .all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b))
    {
        Ok(())
    } else {
        Err(StoreError::Backend(format!(
            "a pending re-authorization's state hash must be the hex SHA-256 of the OAuth state (64 lower-case \
             hex digits), not {} characters of something else; the state itself must never be stored",
            state_hash.chars().count()
        )))
    }
}

/// The values of a pending re-authorization's columns, in [`PENDING_COLUMNS`] order.
struct PendingRow {
    state_hash: String,
    profile_id: String,
    started_by: String,
    method: String,
    leg: String,
    sign_in_follows: i64,
    custom_app_id: Option<String>,
    functions: String,
    scan_targets: String,
    /// Always None: only records written before migration 0010 hold a plaintext nonce here.
    legacy_nonce: Option<String>,
    previous_status: String,
    previous_reason: Option<String>,
    created_at: i64,
    expires_at: i64,
    sealed_secrets: Vec<u8>,
    /// Always NULL: a record put is untaken ([`Store::put_pending`]).
    taken_until: Option<i64>,
}

impl PendingRow {
    fn from_pending(p: &PendingAuthorization, sealer: &Sealer) -> Result<Self, StoreError> {
        check_state_hash(&p.state_hash)?;
        let plain = pending_plaintext(&p.nonce, p.secrets.expose_secret())?;
        let sealed_secrets = sealer
            .seal(pending_binding(&p.state_hash), &plain)
            .map_err(|e| StoreError::Sealing(e.to_string()))?;
        Ok(Self {
            state_hash: p.state_hash.clone(),
            profile_id: p.profile_id.to_string(),
            started_by: json_to_db("actor", &p.started_by)?,
            method: enum_to_db("consent method", &p.method)?,
            leg: p.leg.as_str().to_string(),
            sign_in_follows: i64::from(p.sign_in_follows),
            custom_app_id: p.custom_app_id.map(|a| a.to_string()),
            functions: json_to_db("functions", &p.functions)?,
            scan_targets: json_to_db("scan targets", &p.scan_targets)?,
            legacy_nonce: None,
            previous_status: p.previous_status.as_str().to_string(),
            previous_reason: p
                .previous_reason
                .as_ref()
                .map(|r| json_to_db("status reason", r))
                .transpose()?,
            created_at: time_to_db(p.created_at)?,
            expires_at: time_to_db(p.expires_at)?,
            sealed_secrets,
            taken_until: None,
        })
    }

    /// Binds every column in [`PENDING_COLUMNS`] order.
    fn bind<'q>(
        self,
        q: sqlx::query::Query<'q, sqlx::Any, sqlx::any::AnyArguments>,
    ) -> sqlx::query::Query<'q, sqlx::Any, sqlx::any::AnyArguments> {
        q.bind(self.state_hash)
            .bind(self.profile_id)
            .bind(self.started_by)
            .bind(self.method)
            .bind(self.leg)
            .bind(self.sign_in_follows)
            .bind(self.custom_app_id)
            .bind(self.functions)
            .bind(self.legacy_nonce)
            .bind(self.previous_status)
            .bind(self.previous_reason)
            .bind(self.created_at)
            .bind(self.expires_at)
            .bind(self.sealed_secrets)
            .bind(self.taken_until)
            .bind(self.scan_targets)
    }
}

/// Reads a pending re-authorization and opens its secrets.
fn pending_from_row(row: &AnyRow, sealer: &Sealer) -> Result<PendingAuthorization, StoreError> {
    let state_hash: String = get(row, "state_hash")?;
    let leg: String = get(row, "leg")?;
    let previous_status: String = get(row, "previous_status")?;
    let sign_in_follows = match get::<i64>(row, "sign_in_follows")? {
        0 => false,
        1 => true,
        other => {
            return Err(StoreError::Backend(format!(
                "column sign_in_follows holds {other}, not 0 or 1"
            )));
        }
    };
    let sealed: Vec<u8> = get(row, "sealed_secrets")?;
    let plain = sealer
        .open(pending_binding(&state_hash), &sealed)
        .map_err(|e| StoreError::Sealing(e.to_string()))?;
    // A record from before migration 0010 that the store has not sealed yet: plaintext nonce, bare
    // secrets.
    let (nonce, secrets) = match get::<Option<String>>(row, "legacy_nonce")? {
        Some(nonce) => (nonce, &plain[..]),
        None => split_pending_plaintext(&plain)?,
    };
    Ok(PendingAuthorization {
        profile_id: parse_from_db(
            "profile_id",
            &get::<String>(row, "profile_id")?,
            ProfileId::parse,
        )?,
        started_by: json_from_db::<Actor>("started_by", &get::<String>(row, "started_by")?)?,
        method: enum_from_db("method", get::<String>(row, "method")?)?,
        leg: AuthLeg::parse(&leg).ok_or_else(|| {
            StoreError::Backend(format!("column leg holds an unknown step {leg:?}"))
        })?,
        sign_in_follows,
        custom_app_id: get::<Option<String>>(row, "custom_app_id")?
            .map(|a| parse_from_db("custom_app_id", &a, AppId::parse))
            .transpose()?,
        functions: json_from_db::<Vec<String>>("functions", &get::<String>(row, "functions")?)?,
        scan_targets: json_from_db::<Vec<String>>(
            "scan_targets",
            &get::<String>(row, "scan_targets")?,
        )?,
        nonce,
        previous_status: ProfileStatus::parse(&previous_status).ok_or_else(|| {
            StoreError::Backend(format!(
                "column previous_status holds an unknown status {previous_status:?}"
            ))
        })?,
        previous_reason: get::<Option<String>>(row, "previous_reason")?
            .map(|r| json_from_db::<StatusReason>("previous_reason", &r))
            .transpose()?,
        created_at: time_from_db("created_at", get(row, "created_at")?)?,
        expires_at: time_from_db("expires_at", get(row, "expires_at")?)?,
        taken_until: opt_time_from_db("taken_until", get(row, "taken_until")?)?,
        // `to_vec` allocates exactly, so the boxed slice is not reallocated; `plain` is zeroed on drop.
        secrets: SecretSlice::from(secrets.to_vec()),
        state_hash,
    })
}

/// A parsed store URL.
enum Target {
    /// `create`: the file to create (mode 0600) when it is missing, before SQLite opens it.
    Sqlite {
        url: String,
        in_memory: bool,
        create: Option<std::path::PathBuf>,
    },
    Postgres {
        url: String,
    },
}

fn parse_url(url: &str) -> Result<Target, StoreError> {
    let url = url.trim();
    if url.starts_with("postgres://") || url.starts_with("postgresql://") {
        // Passed to sqlx as is: it reads host, port, user, password, database and the TLS settings
        // (`sslmode=verify-full`, `sslrootcert=…`) from the URL.
        return Ok(Target::Postgres { url: url.into() });
    }
    if url == "sqlite::memory:" || url == "sqlite://:memory:" {
        return Ok(Target::Sqlite {
            url: "sqlite::memory:".into(),
            in_memory: true,
            create: None,
        });
    }
    let Some(rest) = url
        .strip_prefix("sqlite://")
        .or_else(|| url.strip_prefix("sqlite:"))
    else {
        return Err(StoreError::Backend(format!(
            "the database URL scheme {:?} is not supported: use sqlite://PATH (or sqlite::memory: for a throw-away \
             database) or postgres://USER:PASSWORD@HOST:PORT/DATABASE",
            // Only the scheme: the rest of a URL may hold a password.
            url.split(':')
                .next()
                .unwrap_or_default()
                .chars()
                .take(20)
                .collect::<String>()
        )));
    };
    if rest.is_empty() || rest.starts_with('?') {
        return Err(StoreError::Backend(
            "the sqlite:// URL names no file: use sqlite://PATH, e.g. sqlite://consentry.db or sqlite:///var/lib/consentry/consentry.db"
                .into(),
        ));
    }
    let in_memory = rest.contains("mode=memory");
    // Create the file when missing unless the URL chose a mode itself.
    let url = if rest.contains("mode=") {
        format!("sqlite://{rest}")
    } else if rest.contains('?') {
        format!("sqlite://{rest}&mode=rwc")
    } else {
        format!("sqlite://{rest}?mode=rwc")
    };
    // The file Consentry creates itself (owner-only) before SQLite would create it with its default
    // 0644 less the umask. A path with percent-escapes is left to SQLite (it decodes them).
    let path = rest.split('?').next().unwrap_or_default();
    let create = (!in_memory && url.contains("mode=rwc") && !path.contains('%'))
        .then(|| std::path::PathBuf::from(path));
    Ok(Target::Sqlite {
        url,
        in_memory,
        create,
    })
}

/// Creates an empty SQLite database file readable and writable by its owner only (0600, whatever the
/// umask), unless it exists. SQLite gives the `-wal` and `-shm` files it creates later the database
/// file's permissions, so they are owner-only too. An existing file keeps its permissions.
fn create_private_file(path: &std::path::Path) -> Result<(), StoreError> {
    let mut options = std::fs::OpenOptions::new();
    options.write(true).create_new(true);
    #[cfg(unix)]
    {
        use std::os::unix::fs::OpenOptionsExt as _;
        options.mode(0o600);
    }
    match options.open(path) {
        Ok(file) => {
            // The mode given to open(2) is reduced by the umask; set it exactly.
            #[cfg(unix)]
            {
                use std::os::unix::fs::PermissionsExt as _;
                file.set_permissions(std::fs::Permissions::from_mode(0o600))
                    .map_err(|e| {
                        StoreError::Backend(format!(
                            "the database file {} could not be made owner-only (0600): {e}",
                            path.display()
                        ))
                    })?;
            }
            drop(file);
            Ok(())
        }
        Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => Ok(()),
        Err(e) => Err(StoreError::Backend(format!(
            "the database file {} could not be created: {e}; check that its directory exists and is writable",
            path.display()
        ))),
    }
}

impl SqlStore {
    /// Opens the database at `url` and applies pending migrations.
    ///
    /// Accepts `sqlite://PATH` (relative or, with a third slash, absolute; the file is created when
    /// missing) and `sqlite::memory:`; SQLite databases run in WAL mode with foreign keys on and a busy
    /// timeout. Also accepts `postgres://` and `postgresql://` URLs naming an existing database, with TLS
    /// as the URL's `sslmode` asks (`sslmode=verify-full&sslrootcert=/path/ca.pem` verifies the server's
    /// certificate and name); the password may be in the URL or in `PGPASSWORD`.
    pub async fn open(url: &str, sealer: Sealer) -> Result<SqlStore, StoreError> {
        let target = parse_url(url)?;
        sqlx::any::install_default_drivers();
        let (dialect, url, in_memory) = match target {
            Target::Sqlite {
                url,
                in_memory,
                create,
            } => {
                if let Some(path) = create {
                    create_private_file(&path)?;
                }
                (Dialect::Sqlite, url, in_memory)
            }
            Target::Postgres { url } => (Dialect::Postgres, url, false),
        };
        let options = AnyConnectOptions::from_str(&url)
            .map_err(|e| StoreError::Backend(format!("the database URL is not valid: {e}")))?;
        let mut pool_options = AnyPoolOptions::new().after_connect(move |conn, _meta| {
            Box::pin(async move {
                for statement in dialect.connection_setup() {
                    conn.execute(AssertSqlSafe(statement)).await?;
                }
                Ok(())
            })
        });
        pool_options = if in_memory {
            // An in-memory database lives as long as one connection does: keep exactly one, forever.
            pool_options
                .max_connections(1)
                .min_connections(1)
                .idle_timeout(None)
                .max_lifetime(None)
        } else {
            pool_options.max_connections(MAX_CONNECTIONS)
        };
        let pool = pool_options
            .connect_with(options)
            .await
            .map_err(|e| db_err("the database could not be opened", e))?;
        if dialect == Dialect::Sqlite && !in_memory {
            // WAL is a property of the file; set it once, on the first connection, before any other is open.
            let mode: String = sqlx::query_scalar("PRAGMA journal_mode = WAL")
                .fetch_one(&pool)
                .await
                .map_err(|e| db_err("the database could not be switched to WAL mode", e))?;
            if !mode.eq_ignore_ascii_case("wal") {
                tracing::warn!(journal_mode = %mode, "SQLite did not switch to WAL mode");
            }
        }
        let store = SqlStore {
            pool,
            sealer: Arc::new(sealer),
            dialect,
        };
        store.migrate().await?;
        store.seal_legacy_nonces().await?;
        let version = store.schema_version().await?;
        tracing::info!(
            db.dialect = ?store.dialect,
            db.schema_version = version.applied,
            sealer.key_id = %store.sealer.key_id(),
            "store opened"
        );
        Ok(store)
    }

    /// Checks that the database answers (for health checks).
    pub async fn ping(&self) -> Result<(), StoreError> {
        sqlx::query("SELECT 1")
            .execute(&self.pool)
            .await
            .map_err(|e| db_err("the database does not answer", e))?;
        Ok(())
    }

    fn migrator(&self) -> &'static Migrator {
        self.dialect.migrator()
    }

    /// Applies pending migrations (a no-op when the schema is current). Refuses a database migrated by a
    /// newer build or one whose applied migrations differ from this build's.
    pub async fn migrate(&self) -> Result<(), StoreError> {
        self.migrator().run(&self.pool).await.map_err(migrate_err)
    }

    /// Seals the plaintext nonces of pending re-authorizations written before migration 0010 into their
    /// `sealed_secrets` and clears `legacy_nonce`; run at every open (a no-op once done). Each row is
    /// rewritten only if it still holds what was read, so replicas opening at once do not clash.
    /// Returns the number of records sealed.
    pub async fn seal_legacy_nonces(&self) -> Result<u64, StoreError> {
        let rows = sqlx::query(
            "SELECT state_hash, legacy_nonce, sealed_secrets FROM pending_authorizations \
             WHERE legacy_nonce IS NOT NULL",
        )
        .fetch_all(&self.pool)
        .await
        .map_err(|e| {
            db_err(
                "reading pending re-authorizations with a plaintext nonce",
                e,
            )
        })?;
        let mut sealed_count = 0;
        for row in &rows {
            let state_hash: String = get(row, "state_hash")?;
            let nonce: String = get(row, "legacy_nonce")?;
            let old: Vec<u8> = get(row, "sealed_secrets")?;
            let binding = pending_binding(&state_hash);
            let secrets = self
                .sealer
                .open(binding, &old)
                .map_err(|e| StoreError::Sealing(e.to_string()))?;
            let sealed = self
                .sealer
                .seal(binding, &pending_plaintext(&nonce, &secrets)?)
                .map_err(|e| StoreError::Sealing(e.to_string()))?;
            let done = sqlx::query(
                "UPDATE pending_authorizations SET sealed_secrets = $1, legacy_nonce = NULL \
                 WHERE state_hash = $2 AND legacy_nonce = $3 AND sealed_secrets = $4",
            )
            .bind(sealed)
            .bind(state_hash)
            .bind(nonce)
            .bind(old)
            .execute(&self.pool)
            .await
            .map_err(|e| db_err("sealing a pending re-authorization's nonce", e))?;
            sealed_count += done.rows_affected();
        }
        if sealed_count > 0 && self.dialect == Dialect::Sqlite {
            // The migration's table rewrite and these updates leave the plaintext in freed pages:
            // rewrite the file (once, at the upgrade that found records in flight).
            sqlx::query("VACUUM")
                .execute(&self.pool)
                .await
                .map_err(|e| db_err("compacting the database after sealing nonces", e))?;
        }
        if sealed_count > 0 {
            tracing::info!(
                records = sealed_count,
                "sealed the nonces of pending re-authorizations started before the upgrade"
            );
        }
        Ok(sealed_count)
    }

    /// The newest applied migration and the newest this build knows.
    pub async fn schema_version(&self) -> Result<SchemaVersion, StoreError> {
        let mut conn = self
            .pool
            .acquire()
            .await
            .map_err(|e| db_err("no database connection", e))?;
        let applied = conn
            .list_applied_migrations(MIGRATIONS_TABLE)
            .await
            .map_err(migrate_err)?;
        Ok(SchemaVersion {
            applied: applied.iter().map(|m| m.version).max(),
            latest: self.migrator().iter().map(|m| m.version).max().unwrap_or(0),
        })
    }

    /// The dialect of the database.
    pub fn dialect(&self) -> Dialect {
        self.dialect
    }

    /// The ID of the master key new secrets are sealed under (safe to log).
    pub fn key_id(&self) -> String {
        self.sealer.key_id()
    }

    /// The IDs of the older master keys this store still opens values with (safe to log).
    pub fn old_key_ids(&self) -> Vec<String> {
        self.sealer.old_key_ids()
    }

    /// Closes every connection (on SQLite this checkpoints the WAL into the main file).
    pub async fn close(&self) {
        self.pool.close().await;
    }

    /// The connection pool (for [`crate::copy`]).
    pub(crate) fn pool(&self) -> &AnyPool {
        &self.pool
    }
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
             THEN $25 ELSE refresh_token_redeemed_at END \
             WHERE id = $1",
        );
        // The redemption time only moves forward: a save of a profile read before a concurrent
        // redemption (the token API's) keeps the later time.
        if expected.is_some() {
            sql.push_str(" AND updated_at = $26 AND status = $27");
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
        let mut tx = self
            .pool
            .begin()
            .await
            .map_err(|e| db_err("starting a transaction", e))?;
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

#[async_trait]
impl Store for SqlStore {
    async fn insert_organization(&self, org: &Organization) -> Result<(), StoreError> {
        sqlx::query("INSERT INTO organizations (id, name, name_folded, modules, created_at) VALUES ($1, $2, $3, $4, $5)")
            .bind(org.id.to_string())
            .bind(org.name.clone())
            .bind(org.name.to_lowercase())
            .bind(json_to_db("modules", &org.modules)?)
            .bind(time_to_db(org.created_at)?)
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

    async fn get_organization(&self, id: OrgId) -> Result<Option<Organization>, StoreError> {
        sqlx::query("SELECT id, name, modules, created_at FROM organizations WHERE id = $1")
            .bind(id.to_string())
            .fetch_optional(&self.pool)
            .await
            .map_err(|e| db_err("reading an organization", e))?
            .as_ref()
            .map(organization_from_row)
            .transpose()
    }

    async fn list_organizations(&self) -> Result<Vec<Organization>, StoreError> {
        sqlx::query(
            "SELECT id, name, modules, created_at FROM organizations ORDER BY name_folded, id",
        )
        .fetch_all(&self.pool)
        .await
        .map_err(|e| db_err("listing organizations", e))?
        .iter()
        .map(organization_from_row)
        .collect()
    }

    async fn update_organization(&self, org: &Organization) -> Result<(), StoreError> {
        let done = sqlx::query(
            "UPDATE organizations SET name = $2, name_folded = $3, modules = $4 WHERE id = $1",
        )
        .bind(org.id.to_string())
        .bind(org.name.clone())
        .bind(org.name.to_lowercase())
        .bind(json_to_db("modules", &org.modules)?)
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

    async fn delete_organization(&self, id: OrgId) -> Result<bool, StoreError> {
        let done = sqlx::query("DELETE FROM organizations WHERE id = $1")
            .bind(id.to_string())
            .execute(&self.pool)
            .await
            .map_err(|e| {
                if is_foreign_key_violation(&e) {
                    StoreError::Backend(format!(
                        "organization {id} still has tenants or profiles; remove them first"
                    ))
                } else {
                    db_err("deleting an organization", e)
                }
            })?;
        Ok(done.rows_affected() > 0)
    }

    async fn insert_tenant(&self, tenant: &Tenant) -> Result<(), StoreError> {
        let result = sqlx::query(
            "INSERT INTO tenants (id, org_id, primary_domain, display_name, created_at) VALUES ($1, $2, $3, $4, $5)",
        )
        .bind(tenant.id.to_string())
        .bind(tenant.org_id.to_string())
        .bind(tenant.primary_domain.as_str())
        .bind(tenant.display_name.clone())
        .bind(time_to_db(tenant.created_at)?)
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

    async fn get_tenant(&self, id: TenantId) -> Result<Option<Tenant>, StoreError> {
        sqlx::query("SELECT id, org_id, primary_domain, display_name, created_at FROM tenants WHERE id = $1")
            .bind(id.to_string())
            .fetch_optional(&self.pool)
            .await
            .map_err(|e| db_err("reading a tenant", e))?
            .as_ref()
            .map(tenant_from_row)
            .transpose()
    }

    async fn find_tenant_by_domain(
        &self,
        domain: &DomainName,
    ) -> Result<Option<Tenant>, StoreError> {
        sqlx::query("SELECT id, org_id, primary_domain, display_name, created_at FROM tenants WHERE primary_domain = $1")
            .bind(domain.as_str())
            .fetch_optional(&self.pool)
            .await
            .map_err(|e| db_err("finding a tenant by domain", e))?
            .as_ref()
            .map(tenant_from_row)
            .transpose()
    }

    async fn list_tenants(&self, org: Option<OrgId>) -> Result<Vec<Tenant>, StoreError> {
        let rows = match org {
            Some(org) => {
                sqlx::query(
                    "SELECT id, org_id, primary_domain, display_name, created_at FROM tenants WHERE org_id = $1 \
                     ORDER BY primary_domain",
                )
                .bind(org.to_string())
                .fetch_all(&self.pool)
                .await
            }
            None => {
                sqlx::query(
                    "SELECT id, org_id, primary_domain, display_name, created_at FROM tenants ORDER BY primary_domain",
                )
                .fetch_all(&self.pool)
                .await
            }
        }
        .map_err(|e| db_err("listing tenants", e))?;
        rows.iter().map(tenant_from_row).collect()
    }

    async fn delete_tenant(&self, id: TenantId) -> Result<bool, StoreError> {
        let done = sqlx::query("DELETE FROM tenants WHERE id = $1")
            .bind(id.to_string())
            .execute(&self.pool)
            .await
            .map_err(|e| {
                if is_foreign_key_violation(&e) {
                    StoreError::Backend(format!(
                        "tenant {id} still has profiles; remove them first"
                    ))
                } else {
                    db_err("deleting a tenant", e)
                }
            })?;
        Ok(done.rows_affected() > 0)
    }

    async fn insert_profile(
        &self,
        profile: &AppProfile,
        event: NewHistoryEvent,
    ) -> Result<(), StoreError> {
        check_event_matches(profile, &event)?;
        let row = ProfileRow::from_profile(profile)?;
        let mut tx = self
            .pool
            .begin()
            .await
            .map_err(|e| db_err("starting a transaction", e))?;
        let sql = format!(
            "INSERT INTO profiles ({PROFILE_COLUMNS}) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, \
             $14, $15, $16, $17, $18, $19, $20, $21, $22, $23, $24, $25)"
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
        append_history(&mut tx, &event).await?;
        tx.commit()
            .await
            .map_err(|e| db_err("committing a new profile", e))
    }

    async fn get_profile(&self, id: ProfileId) -> Result<Option<AppProfile>, StoreError> {
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

    async fn save_profile(
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

    async fn save_profile_if_unchanged(
        &self,
        profile: &AppProfile,
        expected: (OffsetDateTime, ProfileStatus),
        event: Option<NewHistoryEvent>,
    ) -> Result<bool, StoreError> {
        self.save_profile_guarded(profile, Some(expected), event)
            .await
    }

    async fn record_refresh_redemption(
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

    async fn delete_profile(&self, id: ProfileId) -> Result<bool, StoreError> {
        let mut tx = self
            .pool
            .begin()
            .await
            .map_err(|e| db_err("starting a transaction", e))?;
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

    async fn list_profiles(
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

    async fn count_profiles(
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

    async fn list_history(
        &self,
        profile: ProfileId,
        limit: u32,
    ) -> Result<Vec<HistoryEvent>, StoreError> {
        sqlx::query(
            "SELECT seq, profile_id, at, actor, kind, from_status, to_status, reason, detail FROM profile_history \
             WHERE profile_id = $1 ORDER BY seq DESC LIMIT $2",
        )
        .bind(profile.to_string())
        .bind(i64::from(limit))
        .fetch_all(&self.pool)
        .await
        .map_err(|e| db_err("listing history", e))?
        .iter()
        .map(history_from_row)
        .collect()
    }

    async fn put_secret(
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

    async fn get_secret(
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
        let plain = self
            .sealer
            .open(
                Binding {
                    owner: &owner,
                    kind: kind.as_str(),
                },
                &sealed,
            )
            .map_err(|e| StoreError::Sealing(e.to_string()))?;
        // `to_vec` allocates exactly, so the boxed slice is not reallocated; `plain` is zeroed on drop.
        Ok(Some(SecretSlice::from(plain.to_vec())))
    }

    async fn delete_secret(
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

    async fn put_pending(&self, pending: &PendingAuthorization) -> Result<(), StoreError> {
        let row = PendingRow::from_pending(pending, &self.sealer)?;
        // One statement replaces the profile's earlier pending record (its old state stops working) or
        // inserts the first one. Unlike a delete followed by an insert, two replicas starting a
        // re-authorization of one profile at the same moment cannot both insert and have one fail on the
        // one-per-profile constraint: the later simply replaces the earlier.
        let updates = PENDING_COLUMNS
            .split(", ")
            .filter(|c| *c != "profile_id")
            .map(|c| format!("{c} = excluded.{c}"))
            .collect::<Vec<_>>()
            .join(", ");
        let sql = format!(
            "INSERT INTO pending_authorizations ({PENDING_COLUMNS}) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, \
             $11, $12, $13, $14, $15, $16) ON CONFLICT (profile_id) DO UPDATE SET {updates}"
        );
        row.bind(sqlx::query(AssertSqlSafe(sql)))
            .execute(&self.pool)
            .await
            .map_err(|e| {
                if is_foreign_key_violation(&e) {
                    StoreError::NotFound(format!("profile {}", pending.profile_id))
                } else if is_unique_violation(&e) {
                    // Only the state hash can clash here: another profile's pending record has it.
                    StoreError::Conflict(format!(
                        "a pending re-authorization of another profile with the same state as profile {}'s (draw \
                         a new random state)",
                        pending.profile_id
                    ))
                } else {
                    db_err("storing a pending re-authorization", e)
                }
            })?;
        Ok(())
    }

    async fn take_pending(
        &self,
        state_hash: &str,
        hold_until: OffsetDateTime,
    ) -> Result<Option<PendingAuthorization>, StoreError> {
        let mut tx = self
            .pool
            .begin()
            .await
            .map_err(|e| db_err("starting a transaction", e))?;
        // The conditional update is the single-use guarantee: the database lets exactly one of any
        // number of concurrent updates of the row (on any connection, from any replica) find it
        // untaken, mark it and return it. The row stays until the taker saved the result
        // (`delete_pending`), so a taker that dies leaves the profile's previous status behind.
        let sql = format!(
            "UPDATE pending_authorizations SET taken_until = $2 \
             WHERE state_hash = $1 AND taken_until IS NULL RETURNING {PENDING_COLUMNS}"
        );
        let row = sqlx::query(AssertSqlSafe(sql))
            .bind(state_hash.to_string())
            .bind(time_to_db(hold_until)?)
            .fetch_optional(&mut *tx)
            .await
            .map_err(|e| db_err("taking a pending re-authorization", e))?;
        let Some(row) = row else {
            return Ok(None);
        };
        match pending_from_row(&row, &self.sealer) {
            Ok(pending) => {
                tx.commit()
                    .await
                    .map_err(|e| db_err("committing the take of a pending re-authorization", e))?;
                Ok(Some(pending))
            }
            Err(e) => {
                // Unreadable here (e.g. this replica lacks the master key it was sealed with): leave it
                // for one that can read it, or for a new start to replace.
                tx.rollback().await.map_err(|e| {
                    db_err("rolling back the take of a pending re-authorization", e)
                })?;
                Err(e)
            }
        }
    }

    async fn delete_pending(&self, state_hash: &str) -> Result<bool, StoreError> {
        let done = sqlx::query("DELETE FROM pending_authorizations WHERE state_hash = $1")
            .bind(state_hash.to_string())
            .execute(&self.pool)
            .await
            .map_err(|e| db_err("deleting a pending re-authorization", e))?;
        Ok(done.rows_affected() > 0)
    }

    async fn note_pending_check(
        &self,
        state_hash: &str,
        status: ProfileStatus,
        reason: Option<&StatusReason>,
    ) -> Result<bool, StoreError> {
        let done = sqlx::query(
            "UPDATE pending_authorizations SET previous_status = $2, previous_reason = $3 \
             WHERE state_hash = $1 AND taken_until IS NULL",
        )
        .bind(state_hash.to_string())
        .bind(status.as_str().to_string())
        .bind(reason.map(|r| json_to_db("status reason", r)).transpose()?)
        .execute(&self.pool)
        .await
        .map_err(|e| db_err("recording a check of a pending profile", e))?;
        Ok(done.rows_affected() > 0)
    }

    async fn pending_for_profile(
        &self,
        profile: ProfileId,
    ) -> Result<Option<PendingAuthorization>, StoreError> {
        let sql =
            format!("SELECT {PENDING_COLUMNS} FROM pending_authorizations WHERE profile_id = $1");
        sqlx::query(AssertSqlSafe(sql))
            .bind(profile.to_string())
            .fetch_optional(&self.pool)
            .await
            .map_err(|e| db_err("reading a pending re-authorization", e))?
            .as_ref()
            .map(|r| pending_from_row(r, &self.sealer))
            .transpose()
    }

    async fn delete_pending_for_profile(&self, profile: ProfileId) -> Result<bool, StoreError> {
        let done = sqlx::query("DELETE FROM pending_authorizations WHERE profile_id = $1")
            .bind(profile.to_string())
            .execute(&self.pool)
            .await
            .map_err(|e| db_err("deleting a pending re-authorization", e))?;
        Ok(done.rows_affected() > 0)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn urls_are_checked() {
        assert!(matches!(
            parse_url("sqlite::memory:"),
            Ok(Target::Sqlite {
                in_memory: true,
                ..
            })
        ));
        let Ok(Target::Sqlite {
            url,
            in_memory,
            create,
        }) = parse_url("sqlite:///tmp/x.db")
        else {
            panic!("sqlite:///tmp/x.db should parse");
        };
        assert_eq!(url, "sqlite:///tmp/x.db?mode=rwc");
        assert!(!in_memory);
        assert_eq!(create.as_deref(), Some(std::path::Path::new("/tmp/x.db")));
        let Ok(Target::Sqlite { url, create, .. }) = parse_url("sqlite://x.db?mode=ro") else {
            panic!("sqlite://x.db?mode=ro should parse");
        };
        assert_eq!(url, "sqlite://x.db?mode=ro");
        assert_eq!(create, None, "a read-only URL creates nothing");
        for pg in [
            "postgres://u@localhost/db",
            " postgresql://u:p@db.example:5433/consentry?sslmode=verify-full ",
        ] {
            let Ok(Target::Postgres { url }) = parse_url(pg) else {
                panic!("{pg} should parse as PostgreSQL");
            };
            assert_eq!(url, pg.trim(), "PostgreSQL URLs reach sqlx unchanged");
        }
        let Err(StoreError::Backend(msg)) = parse_url("mysql://admin:hunter2@db/x") else {
            panic!("mysql must be refused");
        };
        assert!(
            msg.contains("sqlite://PATH") && msg.contains("postgres://"),
            "{msg}"
        );
        assert!(
            !msg.contains("hunter2"),
            "the refusal must not repeat a password: {msg}"
        );
        assert!(
            matches!(parse_url("sqlite://"), Err(StoreError::Backend(m)) if m.contains("names no file"))
        );
    }

    #[test]
    fn filters_build_numbered_placeholders() {
        let filter = ProfileFilter {
            org_id: Some(OrgId::new_random()),
            statuses: vec![
                ProfileStatus::Invalid,
                ProfileStatus::Attention,
                ProfileStatus::Invalid,
            ],
            search: Some(" 50%_X ".into()),
            ..ProfileFilter::default()
        };
        let b = list_query(&filter, Some((5, Uuid::nil())), 10);
        // org, 2 distinct statuses, 4 search columns, 2 keyset values, limit
        assert_eq!(b.args.len(), 10);
        assert!(b.sql.contains("status IN ($2, $3)"), "{}", b.sql);
        assert!(b.sql.contains("(created_at, id) > ($8, $9)"), "{}", b.sql);
        assert!(
            b.sql.ends_with("ORDER BY created_at, id LIMIT $10"),
            "{}",
            b.sql
        );
        assert!(matches!(&b.args[3], Arg::Text(p) if p == "%50\\%\\_x%"));
        assert!(matches!(b.args[9], Arg::Int(11)));
    }
}

#[cfg(test)]
mod plan_tests {
    use super::*;

    /// SQLite's plan for a built query, one line per step.
    async fn plan(store: &SqlStore, built: &Built) -> Vec<String> {
        let explain = Built {
            sql: format!("EXPLAIN QUERY PLAN {}", built.sql),
            args: built.args.clone(),
        };
        explain
            .query()
            .fetch_all(&store.pool)
            .await
            .unwrap()
            .iter()
            .map(|r| r.try_get::<String, _>("detail").unwrap())
            .collect()
    }

    #[tokio::test]
    async fn every_single_filter_pages_through_an_index_without_sorting() {
        let store = SqlStore::open("sqlite::memory:", Sealer::from_key_bytes(&[9; 32]))
            .await
            .unwrap();
        let tenant = TenantId::from_uuid(Uuid::new_v4());
        let filters = [
            ProfileFilter::default(),
            ProfileFilter {
                org_id: Some(OrgId::new_random()),
                ..Default::default()
            },
            ProfileFilter {
                tenant_id: Some(tenant),
                ..Default::default()
            },
            ProfileFilter {
                statuses: vec![ProfileStatus::Invalid],
                ..Default::default()
            },
            ProfileFilter {
                service: Some("insights".into()),
                ..Default::default()
            },
            ProfileFilter {
                app_type: Some("m365-all".into()),
                ..Default::default()
            },
            ProfileFilter {
                org_id: Some(OrgId::new_random()),
                statuses: vec![ProfileStatus::Attention],
                ..Default::default()
            },
        ];
        for f in &filters {
            for after in [None, Some((1_700_000_000_000_000_000, Uuid::new_v4()))] {
                let steps = plan(&store, &list_query(f, after, 50)).await;
                let text = steps.join(" | ");
                assert!(text.contains("USING INDEX profiles_by_"), "{f:?}: {text}");
                assert!(!text.contains("TEMP B-TREE"), "{f:?} must not sort: {text}");
            }
        }
    }
}

//! Pending re-authorizations on [`SqlStore`]: one per profile, keyed by the hex SHA-256 of the OAuth
//! state, their nonce and secrets sealed to that hash, taken once under concurrency.

use consentry_domain::{
    Actor, AppId, AuthLeg, PendingAuthorization, ProfileId, ProfileStatus, StatusReason, StoreError,
};
use secrecy::zeroize::Zeroizing;
use secrecy::{ExposeSecret as _, SecretSlice};
use sqlx::AssertSqlSafe;
use sqlx::any::AnyRow;
use time::OffsetDateTime;

use super::{Dialect, SqlStore, db_err, get, is_foreign_key_violation, is_unique_violation};
use crate::codec::{
    enum_from_db, enum_to_db, json_from_db, json_to_db, opt_time_from_db, parse_from_db,
    time_from_db, time_to_db,
};
use crate::sealer::{Binding, Sealer};

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

/// Refuses anything but a hex SHA-256 (64 lower-case hex digits), so that an OAuth state (or an
/// invitation's token) itself is never stored by mistake. Shared by the pending connections.
pub(super) fn check_state_hash(state_hash: &str) -> Result<(), StoreError> {
    if state_hash.len() == 64
        && state_hash
            .bytes()
            .all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b))
    {
        Ok(())
    } else {
        Err(StoreError::Backend(format!(
            "a pending record's key must be the hex SHA-256 of its OAuth state (64 lower-case \
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

impl SqlStore {
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
}

impl SqlStore {
    pub(super) async fn put_pending(
        &self,
        pending: &PendingAuthorization,
    ) -> Result<(), StoreError> {
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

    pub(super) async fn take_pending(
        &self,
        state_hash: &str,
        hold_until: OffsetDateTime,
    ) -> Result<Option<PendingAuthorization>, StoreError> {
        let mut tx = self.begin_write().await?;
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

    pub(super) async fn delete_pending(&self, state_hash: &str) -> Result<bool, StoreError> {
        let done = sqlx::query("DELETE FROM pending_authorizations WHERE state_hash = $1")
            .bind(state_hash.to_string())
            .execute(&self.pool)
            .await
            .map_err(|e| db_err("deleting a pending re-authorization", e))?;
        Ok(done.rows_affected() > 0)
    }

    pub(super) async fn note_pending_check(
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

    pub(super) async fn pending_for_profile(
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

    pub(super) async fn delete_pending_for_profile(
        &self,
        profile: ProfileId,
    ) -> Result<bool, StoreError> {
        let done = sqlx::query("DELETE FROM pending_authorizations WHERE profile_id = $1")
            .bind(profile.to_string())
            .execute(&self.pool)
            .await
            .map_err(|e| db_err("deleting a pending re-authorization", e))?;
        Ok(done.rows_affected() > 0)
    }
}

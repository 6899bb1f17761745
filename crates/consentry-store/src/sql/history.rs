//! Profiles' append-only history on [`SqlStore`]: events are written in the transaction of the
//! profile write they record, and listed newest first.

use consentry_domain::{
    Actor, AppProfile, EventKind, Evidence, HistoryEvent, NewHistoryEvent, ProfileId,
    ProfileStatus, StatusReason, StoreError,
};
use sqlx::any::AnyRow;

use super::{SqlStore, db_err, get};
use crate::codec::{json_from_db, json_to_db, parse_from_db, time_from_db, time_to_db};

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
        evidence: get::<Option<String>>(row, "evidence")?
            .map(|e| json_from_db::<Evidence>("evidence", &e))
            .transpose()?,
    })
}

/// The columns of `profile_history` an event writes, in [`bind_history`]'s order.
pub(super) const HISTORY_COLUMNS: &str =
    "profile_id, at, actor, kind, from_status, to_status, reason, reason_code, detail, evidence";

/// Binds an event's values in [`HISTORY_COLUMNS`] order.
pub(super) fn bind_history<'q>(
    q: sqlx::query::Query<'q, sqlx::Any, sqlx::any::AnyArguments>,
    event: &NewHistoryEvent,
) -> Result<sqlx::query::Query<'q, sqlx::Any, sqlx::any::AnyArguments>, StoreError> {
    Ok(q.bind(event.profile_id.to_string())
        .bind(time_to_db(event.at)?)
        .bind(json_to_db("actor", &event.actor)?)
        .bind(event.kind.as_str())
        .bind(event.from_status.map(|s| s.as_str()))
        .bind(event.to_status.map(|s| s.as_str()))
        .bind(
            event
                .reason
                .as_ref()
                .map(|r| json_to_db("status reason", r))
                .transpose()?,
        )
        .bind(event.reason.as_ref().map(|r| r.code()))
        .bind(event.detail.clone())
        .bind(
            event
                .evidence
                .as_ref()
                .map(|e| json_to_db("evidence", e))
                .transpose()?,
        ))
}

/// Appends a history event inside `tx`.
pub(super) async fn append_history(
    tx: &mut sqlx::Transaction<'_, sqlx::Any>,
    event: &NewHistoryEvent,
) -> Result<(), StoreError> {
    let sql = format!(
        "INSERT INTO profile_history ({HISTORY_COLUMNS}) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10)"
    );
    bind_history(sqlx::query(sqlx::AssertSqlSafe(sql)), event)?
        .execute(&mut **tx)
        .await
        .map_err(|e| db_err("appending a history event", e))?;
    Ok(())
}

pub(super) fn check_event_matches(
    profile: &AppProfile,
    event: &NewHistoryEvent,
) -> Result<(), StoreError> {
    if event.profile_id != profile.id {
        return Err(StoreError::Backend(format!(
            "history event for profile {} given with profile {}; an event must belong to the profile it is saved with",
            event.profile_id, profile.id
        )));
    }
    Ok(())
}

impl SqlStore {
    pub(super) async fn list_history(
        &self,
        profile: ProfileId,
        limit: u32,
    ) -> Result<Vec<HistoryEvent>, StoreError> {
        sqlx::query(
            "SELECT seq, profile_id, at, actor, kind, from_status, to_status, reason, detail, evidence FROM profile_history \
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
}

/// The history kinds that tell how a profile's last re-authorization went (rollouts and campaigns
/// read the last one of them).
pub(super) const REAUTH_KINDS: &str = "'reauthorization_started', 'reauthorization_completed', \
    'reauthorization_failed', 'reauthorization_expired'";

/// A profile's last re-authorization event as a query selected it (`last_kind`, `last_at`,
/// `last_detail`): its kind, time and detail.
pub(super) fn last_reauthorization(
    row: &sqlx::any::AnyRow,
) -> Result<Option<(EventKind, time::OffsetDateTime, Option<String>)>, StoreError> {
    let Some(k) = get::<Option<String>>(row, "last_kind")? else {
        return Ok(None);
    };
    let kind = EventKind::parse(&k).ok_or_else(|| {
        StoreError::Backend(format!("column kind holds an unknown event kind {k:?}"))
    })?;
    let at = get::<Option<i64>>(row, "last_at")?
        .ok_or_else(|| StoreError::Backend("a history event without its time".into()))?;
    Ok(Some((
        kind,
        crate::codec::time_from_db("last_at", at)?,
        get::<Option<String>>(row, "last_detail")?,
    )))
}

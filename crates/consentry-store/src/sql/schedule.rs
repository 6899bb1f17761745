//! The monitor's schedule and leases on [`SqlStore`] (migrations 0003 and 0022).
//!
//! Every profile has its row from its creation (inserted with the profile; migration 0022 backfilled
//! older ones), so a lease never looks for unscheduled profiles. Leasing is one `UPDATE … RETURNING`
//! whose inner `SELECT` reads the due rows in the order of the index `check_schedule_due_order`
//! (`next_check_at, profile_id`) and stops at the limit, however many rows are due. The dialects
//! differ in [`lease_sql`]: on PostgreSQL the inner `SELECT` takes `FOR UPDATE SKIP LOCKED` (so
//! concurrent monitors pass over each other's rows instead of waiting) and hands the rows over by
//! `ctid`; SQLite serializes writers, so its plain form is already atomic.

use async_trait::async_trait;
use consentry_domain::{
    CheckInput, CheckRelease, CheckSchedule, LeasedCheck, ProfileId, ScheduleStore, SecretKind,
    StoreError, TenantId,
};
use sqlx::AssertSqlSafe;
use time::OffsetDateTime;

use super::profiles::{PROFILE_COLUMNS, profile_from_row};
use super::{Dialect, SqlStore, db_err, get, numbered, numbered_rows};
use crate::codec::{opt_time_from_db, parse_from_db, time_from_db, time_to_db};

/// PostgreSQL: the condition that makes a lease or a release commit without waiting for its WAL
/// to reach the disk (`SET LOCAL synchronous_commit = off` inside the statement's own transaction; an
/// uncorrelated sub-`SELECT`, so it runs once). What a server crash can lose is the last fraction of a
/// second of leases and releases: a lost lease lets another monitor lease the profile (checked once
/// more), a lost release leaves it leased until the lease runs out (then it is due again). A check's
/// result (`save_check`, `save_profile`) keeps the server's setting and is durable when it is
/// acknowledged. Saves the disk flush on every check's release and every lease (PostgreSQL
/// documentation, "Asynchronous Commit").
macro_rules! async_commit {
    () => {
        "(SELECT set_config('synchronous_commit', 'off', true)) = 'off'"
    };
}

/// Releases a lease: the next check time, failures counted from zero.
macro_rules! release {
    () => {
        "UPDATE check_schedule SET lease_owner = NULL, lease_until = NULL, next_check_at = $3, \
         transient_failures = 0 WHERE profile_id = $1 AND lease_owner = $2"
    };
}

/// Releases a lease after a transient failure: counted, with its message and time.
macro_rules! release_failed {
    () => {
        "UPDATE check_schedule SET lease_owner = NULL, lease_until = NULL, next_check_at = $3, \
         transient_failures = transient_failures + 1, last_error = $4, last_error_at = $5 \
         WHERE profile_id = $1 AND lease_owner = $2"
    };
}

/// The release statement for a dialect, after a transient failure or not.
fn release_sql(dialect: Dialect, failed: bool) -> &'static str {
    match (dialect, failed) {
        (Dialect::Postgres, false) => concat!(release!(), " AND ", async_commit!()),
        (Dialect::Postgres, true) => concat!(release_failed!(), " AND ", async_commit!()),
        (Dialect::Sqlite, false) => release!(),
        (Dialect::Sqlite, true) => release_failed!(),
    }
}

/// Releases many leases on SQLite (see [`ScheduleStore::release_checks`] for PostgreSQL): the rows come as a `VALUES` list (`r`: profile, next check time, whether the
/// check failed transiently, its message, the time of the failure), each counted or cleared as
/// [`release!`] and [`release_failed!`] do. `{values}` is the list; `$1` the worker.
fn release_many_sql(values: &str) -> String {
    format!(
        "WITH r (profile_id, next_check_at, failed, last_error, last_error_at) AS (VALUES {values}) \
         UPDATE check_schedule SET lease_owner = NULL, lease_until = NULL, next_check_at = r.next_check_at, \
         transient_failures = CASE WHEN r.failed THEN check_schedule.transient_failures + 1 ELSE 0 END, \
         last_error = CASE WHEN r.failed THEN r.last_error ELSE check_schedule.last_error END, \
         last_error_at = CASE WHEN r.failed THEN r.last_error_at ELSE check_schedule.last_error_at END \
         FROM r WHERE check_schedule.profile_id = r.profile_id AND check_schedule.lease_owner = $1"
    )
}

/// Releases in one statement of [`ScheduleStore::release_checks`] (five parameters each).
const RELEASES_CHUNK: usize = 200;

/// Profiles read by one statement of [`ScheduleStore::check_inputs`].
const CHECK_INPUTS_CHUNK: usize = 500;

/// The lease statement for a dialect. The inner `SELECT` reads due rows in index order and stops at
/// the limit; the outer `WHERE` repeats the due-and-free condition so that a row another transaction
/// leased meanwhile is never taken twice. On PostgreSQL the inner `SELECT` locks its rows (`FOR UPDATE
/// SKIP LOCKED`) and hands their `ctid`s to the `UPDATE` (a locked row keeps its `ctid`; should a row
/// have moved anyway, the join finds nothing and the row is simply not leased), which saves a
/// primary-key lookup per row; SQLite finds them by primary key. On PostgreSQL the lease commits
/// asynchronously (`async_commit!`).
fn lease_sql(dialect: Dialect) -> &'static str {
    match dialect {
        Dialect::Postgres => concat!(
            "UPDATE check_schedule AS s SET lease_owner = $1, lease_until = $2 \
             FROM (SELECT ctid FROM check_schedule \
                 WHERE next_check_at <= $3 AND (lease_until IS NULL OR lease_until <= $3) \
                 ORDER BY next_check_at, profile_id LIMIT $4 FOR UPDATE SKIP LOCKED) AS due \
             WHERE s.ctid = due.ctid \
             AND s.next_check_at <= $3 AND (s.lease_until IS NULL OR s.lease_until <= $3) AND ",
            async_commit!(),
            " RETURNING s.profile_id, s.tenant_id"
        ),
        Dialect::Sqlite => {
            "UPDATE check_schedule SET lease_owner = $1, lease_until = $2 \
             WHERE next_check_at <= $3 AND (lease_until IS NULL OR lease_until <= $3) \
             AND profile_id IN (SELECT profile_id FROM check_schedule \
                 WHERE next_check_at <= $3 AND (lease_until IS NULL OR lease_until <= $3) \
                 ORDER BY next_check_at, profile_id LIMIT $4) \
             RETURNING profile_id, tenant_id"
        }
    }
}

#[async_trait]
impl ScheduleStore for SqlStore {
    async fn lease_due_checks(
        &self,
        worker: &str,
        now: OffsetDateTime,
        limit: u32,
        lease_for: time::Duration,
    ) -> Result<Vec<LeasedCheck>, StoreError> {
        let now_db = time_to_db(now)?;
        // New profiles need no scheduling here: their row is created with them (`insert_profile`), due
        // from their creation.
        // A pending profile whose re-authorization nobody will finish is due at once: no pending
        // record (left by a build that deleted it on take), one that expired untaken, or one whose
        // taker missed its deadline (killed, or its request timed out). Its check puts the profile
        // back to the status its credentials have (consentry-domain's check.rs). The rows are found
        // from the pending profiles (few; `profiles_by_status`) by primary key: `next_check_at + 0`
        // keeps the planner off the due index, which would walk every row not yet due (after a
        // sweep, nearly all of them) whenever its estimate of those rows is stale.
        sqlx::query(
            "UPDATE check_schedule SET next_check_at = $1 \
             WHERE next_check_at + 0 > $1 AND profile_id IN ( \
                 SELECT p.id FROM profiles p \
                 LEFT JOIN pending_authorizations a ON a.profile_id = p.id \
                 WHERE p.status = 'pending' AND (a.state_hash IS NULL \
                     OR (a.taken_until IS NULL AND a.expires_at <= $1) \
                     OR a.taken_until <= $1))",
        )
        .bind(now_db)
        .execute(&self.pool)
        .await
        .map_err(|e| db_err("scheduling abandoned re-authorizations", e))?;
        let rows = sqlx::query(lease_sql(self.dialect))
            .bind(worker.to_string())
            .bind(time_to_db(now + lease_for)?)
            .bind(now_db)
            .bind(i64::from(limit))
            .fetch_all(&self.pool)
            .await
            .map_err(|e| db_err("leasing due checks", e))?;
        let mut out = rows
            .iter()
            .map(|row| {
                Ok(LeasedCheck {
                    profile_id: parse_from_db(
                        "profile_id",
                        &get::<String>(row, "profile_id")?,
                        ProfileId::parse,
                    )?,
                    tenant_id: parse_from_db(
                        "tenant_id",
                        &get::<String>(row, "tenant_id")?,
                        TenantId::parse,
                    )?,
                })
            })
            .collect::<Result<Vec<_>, StoreError>>()?;
        // By profile ID (a UUID orders as its hyphenated lowercase text does).
        out.sort_unstable_by_key(|l| l.profile_id);
        Ok(out)
    }

    async fn release_check(
        &self,
        profile: ProfileId,
        worker: &str,
        next_check_at: OffsetDateTime,
        transient_error: Option<&str>,
    ) -> Result<bool, StoreError> {
        let next = time_to_db(next_check_at)?;
        let query = match transient_error {
            Some(message) => sqlx::query(release_sql(self.dialect, true))
                .bind(profile.to_string())
                .bind(worker.to_string())
                .bind(next)
                .bind(message.to_string())
                .bind(time_to_db(OffsetDateTime::now_utc())?),
            None => sqlx::query(release_sql(self.dialect, false))
                .bind(profile.to_string())
                .bind(worker.to_string())
                .bind(next),
        };
        let done = query
            .execute(&self.pool)
            .await
            .map_err(|e| db_err("releasing a check lease", e))?;
        Ok(done.rows_affected() > 0)
    }

    async fn release_checks(
        &self,
        worker: &str,
        releases: &[CheckRelease],
    ) -> Result<u64, StoreError> {
        if self.dialect == Dialect::Postgres {
            // One statement per lease: a statement locking many rows of the schedule can deadlock
            // with another writer of many (seen against a bulk `UPDATE` of the schedule; another
            // monitor's abandoned-re-authorization statement is one), and PostgreSQL then rolls one
            // of them back. A release holding one row lock cannot be part of a cycle. Each commits
            // asynchronously (`async_commit!`), so the round trips are all it costs.
            let mut released = 0;
            for r in releases {
                if self
                    .release_check(
                        r.profile_id,
                        worker,
                        r.next_check_at,
                        r.transient_error.as_deref(),
                    )
                    .await?
                {
                    released += 1;
                }
            }
            return Ok(released);
        }
        // SQLite: one writer at a time for the whole database, so no statement waits for another's
        // rows and one statement releases many.
        let failed_at = time_to_db(OffsetDateTime::now_utc())?;
        let mut released = 0;
        for chunk in releases.chunks(RELEASES_CHUNK) {
            let sql = release_many_sql(&numbered_rows(2, 5, chunk.len()));
            let mut query = sqlx::query(AssertSqlSafe(sql)).bind(worker.to_string());
            for r in chunk {
                query = query
                    .bind(r.profile_id.to_string())
                    .bind(time_to_db(r.next_check_at)?)
                    .bind(r.transient_error.is_some())
                    .bind(r.transient_error.clone())
                    .bind(r.transient_error.as_ref().map(|_| failed_at));
            }
            released += query
                .execute(&self.pool)
                .await
                .map_err(|e| db_err("releasing check leases", e))?
                .rows_affected();
        }
        Ok(released)
    }

    async fn check_inputs(&self, profiles: &[ProfileId]) -> Result<Vec<CheckInput>, StoreError> {
        let mut out = Vec::with_capacity(profiles.len());
        // A lease is `[monitor] batch` rows (100 by default): one statement each chunk, well within
        // both databases' limits on parameters.
        for chunk in profiles.chunks(CHECK_INPUTS_CHUNK) {
            let placeholders = numbered(2, chunk.len());
            // The certificate by a sub-`SELECT` (at most one row: the key is `(profile_id, kind)`), so
            // the profile's own columns keep their names.
            let sql = format!(
                "SELECT {PROFILE_COLUMNS}, (SELECT sealed FROM secrets WHERE secrets.profile_id = profiles.id \
                 AND secrets.kind = $1) AS certificate_sealed FROM profiles WHERE id IN ({placeholders})"
            );
            let mut query =
                sqlx::query(AssertSqlSafe(sql)).bind(SecretKind::ClientCertificate.as_str());
            for id in chunk {
                query = query.bind(id.to_string());
            }
            let rows = query
                .fetch_all(&self.pool)
                .await
                .map_err(|e| db_err("reading the leased profiles", e))?;
            for row in &rows {
                let (profile, _) = profile_from_row(row)?;
                let sealed: Option<Vec<u8>> = get(row, "certificate_sealed")?;
                let certificate = sealed
                    .map(|s| {
                        self.open_secret(&profile.id.to_string(), SecretKind::ClientCertificate, &s)
                    })
                    .transpose()?;
                out.push(CheckInput {
                    profile,
                    certificate,
                });
            }
        }
        Ok(out)
    }

    async fn check_schedule(
        &self,
        profile: ProfileId,
    ) -> Result<Option<CheckSchedule>, StoreError> {
        let row = sqlx::query(
            "SELECT next_check_at, lease_owner, lease_until, transient_failures, last_error \
             FROM check_schedule WHERE profile_id = $1",
        )
        .bind(profile.to_string())
        .fetch_optional(&self.pool)
        .await
        .map_err(|e| db_err("reading a check schedule", e))?;
        let Some(row) = row else { return Ok(None) };
        Ok(Some(CheckSchedule {
            next_check_at: time_from_db("next_check_at", get(&row, "next_check_at")?)?,
            lease_owner: get(&row, "lease_owner")?,
            lease_until: opt_time_from_db("lease_until", get(&row, "lease_until")?)?,
            transient_failures: u32::try_from(get::<i64>(&row, "transient_failures")?)
                .unwrap_or(u32::MAX),
            last_error: get(&row, "last_error")?,
        }))
    }
}

#[cfg(test)]
mod plan_tests {
    use sqlx::Row as _;

    use super::*;
    use crate::sealer::Sealer;

    /// SQLite reads the due rows through `check_schedule_due_order` in its order and stops at the
    /// limit: no temporary B-tree sorting every due row. (PostgreSQL's plan at a million rows is
    /// checked by `bench/scale.sh`'s lease figure, see docs/PERFORMANCE.md.)
    #[tokio::test]
    async fn the_lease_reads_due_rows_in_index_order_without_sorting() {
        let store = SqlStore::open("sqlite::memory:", Sealer::from_key_bytes(&[9; 32]))
            .await
            .unwrap();
        let plan: Vec<String> = sqlx::query(sqlx::AssertSqlSafe(format!(
            "EXPLAIN QUERY PLAN {}",
            lease_sql(Dialect::Sqlite)
        )))
        .bind("w")
        .bind(2_i64)
        .bind(1_i64)
        .bind(250_i64)
        .fetch_all(&store.pool)
        .await
        .unwrap()
        .iter()
        .map(|r| r.try_get::<String, _>("detail").unwrap())
        .collect();
        let text = plan.join(" | ");
        assert!(
            text.contains("USING INDEX check_schedule_due_order"),
            "{text}"
        );
        assert!(!text.contains("TEMP B-TREE"), "must not sort: {text}");
        // The rows chosen are updated through the primary key, not by scanning the due rows again.
        assert!(text.contains("(profile_id=?)"), "{text}");
    }
}

#[cfg(all(test, feature = "story"))]
mod commit_tests {
    use sqlx::{Executor as _, Row as _};

    use super::*;
    use crate::sealer::Sealer;
    use crate::story::{TestDatabase, postgres_admin_url};

    async fn synchronous_commit(conn: &mut sqlx::AnyConnection) -> String {
        conn.fetch_one("SHOW synchronous_commit")
            .await
            .unwrap()
            .try_get::<String, _>(0)
            .unwrap()
    }

    /// On PostgreSQL a lease and a release commit asynchronously within their own transaction, and
    /// the setting ends with it: the next statement on the same connection (a check's save) commits
    /// durably again.
    #[tokio::test]
    async fn leases_and_releases_commit_asynchronously_and_nothing_else_does() {
        let Some(admin) = postgres_admin_url("asynchronous-commit test") else {
            return;
        };
        let db = TestDatabase::create(&admin, "consentry_commit").await;
        let store = SqlStore::open(&db.url, Sealer::from_key_bytes(&[9; 32]))
            .await
            .unwrap();
        let mut conn = store.pool.acquire().await.unwrap();
        assert_eq!(synchronous_commit(&mut conn).await, "on");
        let lease = sqlx::query(lease_sql(Dialect::Postgres))
            .bind("w")
            .bind(2_i64)
            .bind(1_i64)
            .bind(250_i64);
        let release = sqlx::query(release_sql(Dialect::Postgres, false))
            .bind("p")
            .bind("w")
            .bind(3_i64);
        let failed = sqlx::query(release_sql(Dialect::Postgres, true))
            .bind("p")
            .bind("w")
            .bind(3_i64)
            .bind("timed out")
            .bind(4_i64);
        for (what, q) in [("lease", lease), ("release", release), ("failed", failed)] {
            conn.execute("BEGIN").await.unwrap();
            q.execute(&mut *conn).await.unwrap();
            assert_eq!(synchronous_commit(&mut conn).await, "off", "{what}");
            conn.execute("COMMIT").await.unwrap();
            assert_eq!(synchronous_commit(&mut conn).await, "on", "{what}");
        }
        drop(conn);
        store.close().await;
    }
}

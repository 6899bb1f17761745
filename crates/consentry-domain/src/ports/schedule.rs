//! The monitor's check schedule and its leases, and their port.

use async_trait::async_trait;
use secrecy::SecretSlice;
use time::OffsetDateTime;

use crate::error::StoreError;
use crate::ids::{ProfileId, TenantId};
use crate::model::AppProfile;

/// A profile whose check is due, leased to one worker.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct LeasedCheck {
    /// The profile.
    pub profile_id: ProfileId,
    /// Its tenant (for per-tenant concurrency limits).
    pub tenant_id: TenantId,
}

/// What a scheduled check reads before it calls Microsoft, read for a whole lease at once
/// ([`ScheduleStore::check_inputs`]): the profile, and a custom app's certificate (the sealed
/// [`SecretKind::ClientCertificate`](crate::model::SecretKind::ClientCertificate), opened). `Debug`
/// shows no secret (`SecretSlice` is redacted).
#[derive(Debug)]
pub struct CheckInput {
    /// The profile as read.
    pub profile: AppProfile,
    /// Its stored client certificate, if it has one.
    pub certificate: Option<SecretSlice<u8>>,
}

/// A lease handed back after a check ([`ScheduleStore::release_checks`]).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CheckRelease {
    /// The profile checked.
    pub profile_id: ProfileId,
    /// When it is next due.
    pub next_check_at: OffsetDateTime,
    /// The check's transient failure (no secrets), if it failed so.
    pub transient_error: Option<String>,
}

/// The monitor's schedule: when each profile is next checked, and leases so that two monitor
/// processes never check the same profile at once. Part of [`Store`](super::Store).
#[async_trait]
pub trait ScheduleStore: Send + Sync {
    /// Makes due at once every pending profile whose re-authorization nobody will finish (no pending
    /// record, or one that [`is_dead`](crate::model::PendingAuthorization::is_dead) at `now`), then
    /// leases up to `limit` profiles whose check is due at `now` and whose lease (if any) has run out,
    /// to `worker` until `now + lease_for`, atomically: of two concurrent callers, each profile goes
    /// to at most one. A profile is scheduled from its creation, due at once: the store creates its
    /// schedule with it (in [`Store::insert_profile`](super::Store::insert_profile)'s write).
    async fn lease_due_checks(
        &self,
        worker: &str,
        now: OffsetDateTime,
        limit: u32,
        lease_for: time::Duration,
    ) -> Result<Vec<LeasedCheck>, StoreError>;
    /// Ends `worker`'s lease on a profile and schedules its next check at `next_check_at`. With
    /// `transient_error`, counts a persisting transient failure and keeps the message (no secrets);
    /// without, clears the count. Returns false when the lease was no longer `worker`'s.
    async fn release_check(
        &self,
        profile: ProfileId,
        worker: &str,
        next_check_at: OffsetDateTime,
        transient_error: Option<&str>,
    ) -> Result<bool, StoreError>;
    /// [`release_check`](Self::release_check) for many profiles at once: each gets its own next
    /// check time and failure count, in one statement where that cannot deadlock with another
    /// writer of the schedule (SQLite), one per lease otherwise (PostgreSQL). Returns how many
    /// leases were still `worker`'s (the others are left as they are).
    async fn release_checks(
        &self,
        worker: &str,
        releases: &[CheckRelease],
    ) -> Result<u64, StoreError>;
    /// The profiles `profiles` with their client certificates, in one read (the monitor reads its
    /// whole lease this way instead of two reads per check). A profile deleted meanwhile is left
    /// out; the order is unspecified.
    async fn check_inputs(&self, profiles: &[ProfileId]) -> Result<Vec<CheckInput>, StoreError>;
    /// The schedule of a profile: next check, lease holder, consecutive transient failures and the
    /// last transient error.
    async fn check_schedule(&self, profile: ProfileId)
    -> Result<Option<CheckSchedule>, StoreError>;
}

/// A profile's row in the monitor's schedule.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CheckSchedule {
    /// When it is next due.
    pub next_check_at: OffsetDateTime,
    /// The worker holding the lease, if any.
    pub lease_owner: Option<String>,
    /// Until when.
    pub lease_until: Option<OffsetDateTime>,
    /// Consecutive checks that failed transiently (`check_failed_transiently`).
    pub transient_failures: u32,
    /// The last transient error.
    pub last_error: Option<String>,
}

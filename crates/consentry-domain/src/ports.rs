//! The ports the domain needs from the outside world, as traits: storage and time.
//! Implementations live in other crates (`consentry-store`); the domain never sees SQL.

use std::collections::BTreeMap;

use async_trait::async_trait;
use secrecy::SecretSlice;
use time::OffsetDateTime;

use crate::ids::{DomainName, OrgId, ProfileId, TenantId};
use crate::model::{
    AppProfile, HistoryEvent, NewHistoryEvent, Organization, Page, PageRequest,
    PendingAuthorization, ProfileFilter, SecretKind, Tenant,
};
use crate::status::{ProfileStatus, StatusReason};

/// A storage failure, free of any backend type. `Backend` messages are for logs only, never for clients.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    /// A row with the same key (or unique name) exists.
    #[error("{0} already exists")]
    Conflict(String),
    /// A row to change does not exist.
    #[error("{0} not found")]
    NotFound(String),
    /// A pagination cursor could not be decoded.
    #[error("the page cursor is not valid: ask for the first page again")]
    BadCursor,
    /// A sealed secret could not be opened (wrong master key or tampered data).
    #[error("a stored secret could not be unsealed: {0}")]
    Sealing(String),
    /// The database failed (I/O, constraint, connection). Internal detail for logs.
    #[error("storage backend error: {0}")]
    Backend(String),
}

/// Persistence of everything Consentry keeps. One implementation per database; both pass the same
/// behaviour tests (`consentry-store`'s story).
#[async_trait]
pub trait Store:
    crate::account::AccountStore
    + crate::audit::AuditStore
    + ScheduleStore
    + WebhookStore
    + ApiKeyStore
    + crate::scan::ScanProfileStore
    + Send
    + Sync
    + std::fmt::Debug
{
    /// Adds an organization. `Conflict` if its name is taken (case-insensitive).
    async fn insert_organization(&self, org: &Organization) -> Result<(), StoreError>;
    /// Reads one organization.
    async fn get_organization(&self, id: OrgId) -> Result<Option<Organization>, StoreError>;
    /// All organizations, by name.
    async fn list_organizations(&self) -> Result<Vec<Organization>, StoreError>;
    /// Replaces an organization's name and modules. `NotFound` if absent.
    async fn update_organization(&self, org: &Organization) -> Result<(), StoreError>;
    /// Deletes an organization (the caller made sure it has no tenants). Returns whether it existed.
    async fn delete_organization(&self, id: OrgId) -> Result<bool, StoreError>;

    /// Connects a tenant. `Conflict` if the tenant ID is already connected.
    async fn insert_tenant(&self, tenant: &Tenant) -> Result<(), StoreError>;
    /// Reads a tenant by ID.
    async fn get_tenant(&self, id: TenantId) -> Result<Option<Tenant>, StoreError>;
    /// Reads a tenant by its primary domain.
    async fn find_tenant_by_domain(
        &self,
        domain: &DomainName,
    ) -> Result<Option<Tenant>, StoreError>;
    /// Tenants of one organization (or all), by domain.
    async fn list_tenants(&self, org: Option<OrgId>) -> Result<Vec<Tenant>, StoreError>;
    /// Deletes a tenant (the caller made sure it has no profiles). Returns whether it existed.
    async fn delete_tenant(&self, id: TenantId) -> Result<bool, StoreError>;

    /// Adds a profile and its first history event, atomically.
    async fn insert_profile(
        &self,
        profile: &AppProfile,
        event: NewHistoryEvent,
    ) -> Result<(), StoreError>;
    /// Reads one profile.
    async fn get_profile(&self, id: ProfileId) -> Result<Option<AppProfile>, StoreError>;
    /// Saves a changed profile and appends its history event, atomically. `NotFound` if absent.
    async fn save_profile(
        &self,
        profile: &AppProfile,
        event: Option<NewHistoryEvent>,
    ) -> Result<(), StoreError>;
    /// Saves a profile, with its event, only if the stored one still has the `updated_at` and status
    /// it had when it was read (`expected`): `Ok(false)` and nothing written when it changed since,
    /// for example because a re-authorization started while a check asked Microsoft. One statement
    /// when there is no event. `NotFound` if absent.
    async fn save_profile_if_unchanged(
        &self,
        profile: &AppProfile,
        expected: (OffsetDateTime, ProfileStatus),
        event: Option<NewHistoryEvent>,
    ) -> Result<bool, StoreError>;
    /// Records that the profile's refresh token was redeemed successfully at `at`; the time only
    /// moves forward (an earlier `at` changes nothing). Does not change `updated_at`.
    async fn record_refresh_redemption(
        &self,
        profile: ProfileId,
        at: OffsetDateTime,
    ) -> Result<(), StoreError>;
    /// Deletes a profile with its history and secrets. Returns whether it existed.
    async fn delete_profile(&self, id: ProfileId) -> Result<bool, StoreError>;
    /// Lists profiles matching `filter`, ordered by creation, one keyset page at a time.
    async fn list_profiles(
        &self,
        filter: &ProfileFilter,
        page: &PageRequest,
    ) -> Result<Page<AppProfile>, StoreError>;
    /// Counts profiles matching `filter` by status.
    async fn count_profiles(
        &self,
        filter: &ProfileFilter,
    ) -> Result<BTreeMap<ProfileStatus, u64>, StoreError>;

    /// A profile's history, newest first, at most `limit` events.
    async fn list_history(
        &self,
        profile: ProfileId,
        limit: u32,
    ) -> Result<Vec<HistoryEvent>, StoreError>;

    /// Stores (replaces) a secret; the store seals it before it touches the database.
    async fn put_secret(
        &self,
        profile: ProfileId,
        kind: SecretKind,
        secret: &SecretSlice<u8>,
    ) -> Result<(), StoreError>;
    /// Reads and unseals a secret.
    async fn get_secret(
        &self,
        profile: ProfileId,
        kind: SecretKind,
    ) -> Result<Option<SecretSlice<u8>>, StoreError>;
    /// Removes a secret. Returns whether it existed.
    async fn delete_secret(&self, profile: ProfileId, kind: SecretKind)
    -> Result<bool, StoreError>;

    /// Records a pending re-authorization, replacing any other pending one of the same profile
    /// (its `secrets` are sealed, bound to `state_hash`), untaken (`taken_until` is not stored).
    /// `NotFound` if the profile is absent.
    async fn put_pending(&self, pending: &PendingAuthorization) -> Result<(), StoreError>;
    /// Takes the pending re-authorization with this state hash, atomically: of two concurrent
    /// callers at most one gets it (single use), whichever replica they run on. The record is not
    /// deleted but marked taken until `hold_until` (returned in `taken_until`): the taker deletes it
    /// ([`delete_pending`](Self::delete_pending)) after it saved the result, so a taker that dies
    /// in between leaves a record that says what to restore. A taken record is never taken again.
    async fn take_pending(
        &self,
        state_hash: &str,
        hold_until: OffsetDateTime,
    ) -> Result<Option<PendingAuthorization>, StoreError>;
    /// Deletes the pending re-authorization with this state hash (taken or not). Returns whether
    /// there was one.
    async fn delete_pending(&self, state_hash: &str) -> Result<bool, StoreError>;
    /// Replaces what an untaken pending re-authorization restores (`previous_status`,
    /// `previous_reason`) with what a check of the profile's current credentials found. Returns
    /// false, changing nothing, when the record is gone, replaced or taken (a callback is finishing
    /// it: its result wins).
    async fn note_pending_check(
        &self,
        state_hash: &str,
        status: ProfileStatus,
        reason: Option<&StatusReason>,
    ) -> Result<bool, StoreError>;
    /// The pending re-authorization of a profile, if any (not removed; taken or not).
    async fn pending_for_profile(
        &self,
        profile: ProfileId,
    ) -> Result<Option<PendingAuthorization>, StoreError>;
    /// Removes a profile's pending re-authorization. Returns whether there was one.
    async fn delete_pending_for_profile(&self, profile: ProfileId) -> Result<bool, StoreError>;
}

/// A profile whose check is due, leased to one worker.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct LeasedCheck {
    /// The profile.
    pub profile_id: ProfileId,
    /// Its tenant (for per-tenant concurrency limits).
    pub tenant_id: TenantId,
}

/// The monitor's schedule: when each profile is next checked, and leases so that two monitor
/// processes never check the same profile at once. Part of [`Store`].
#[async_trait]
pub trait ScheduleStore: Send + Sync {
    /// Schedules every profile that has no schedule yet for `now`, makes due at once every pending
    /// profile whose re-authorization nobody will finish (no pending record, or one that
    /// [`is_dead`](crate::model::PendingAuthorization::is_dead) at `now`), then leases up to `limit` profiles
    /// whose check is due at `now` and whose lease (if any) has run out, to `worker` until
    /// `now + lease_for`, atomically: of two concurrent callers, each profile goes to at most one.
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

/// An organization's webhook: status changes of its profiles are POSTed there, signed.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct Webhook {
    /// Its ID.
    pub id: uuid::Uuid,
    /// The organization.
    pub org_id: OrgId,
    /// Where to POST.
    pub url: String,
    /// When it was added.
    #[serde(with = "time::serde::rfc3339")]
    pub created_at: OffsetDateTime,
}

/// One delivery attempt series of a webhook message (the delivery log).
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct WebhookDelivery {
    /// The webhook.
    pub webhook_id: uuid::Uuid,
    /// The profile the message was about.
    pub profile_id: ProfileId,
    /// `status_changed` or `recovered`.
    pub event: String,
    /// The reason code the message carried.
    pub reason_code: Option<String>,
    /// The receiver's last HTTP status, if it answered.
    pub status_code: Option<u16>,
    /// Attempts made.
    pub attempts: u32,
    /// Whether the receiver accepted it (2xx).
    pub ok: bool,
    /// The last error, if it failed.
    pub error: Option<String>,
    /// When the series ended.
    #[serde(with = "time::serde::rfc3339")]
    pub at: OffsetDateTime,
}

/// Webhooks and their delivery log. Part of [`Store`]; webhook secrets are sealed like every secret.
#[async_trait]
pub trait WebhookStore: Send + Sync {
    /// Adds a webhook with its signing secret. `NotFound` if the organization does not exist.
    async fn insert_webhook(
        &self,
        hook: &Webhook,
        secret: &SecretSlice<u8>,
    ) -> Result<(), StoreError>;
    /// An organization's webhooks, oldest first.
    async fn list_webhooks(&self, org: OrgId) -> Result<Vec<Webhook>, StoreError>;
    /// A webhook's signing secret, unsealed.
    async fn webhook_secret(&self, id: uuid::Uuid) -> Result<Option<SecretSlice<u8>>, StoreError>;
    /// Deletes one of an organization's webhooks with its log. Returns whether it existed.
    async fn delete_webhook(&self, org: OrgId, id: uuid::Uuid) -> Result<bool, StoreError>;
    /// Appends to the delivery log.
    async fn record_delivery(&self, delivery: &WebhookDelivery) -> Result<(), StoreError>;
    /// A webhook's deliveries, newest first.
    async fn list_deliveries(
        &self,
        webhook: uuid::Uuid,
        limit: u32,
    ) -> Result<Vec<WebhookDelivery>, StoreError>;
    /// When a message with this event and reason code about the profile was last delivered
    /// successfully to any webhook (for the hold-down).
    async fn last_notified(
        &self,
        profile: ProfileId,
        event: &str,
        reason_code: Option<&str>,
    ) -> Result<Option<OffsetDateTime>, StoreError>;
}

/// A service API key of an organization (for the token API). Only the key's hash is stored.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct ApiKey {
    /// Its ID.
    pub id: uuid::Uuid,
    /// The organization it is scoped to.
    pub org_id: OrgId,
    /// A label.
    pub name: String,
    /// Hex SHA-256 of the key.
    #[serde(skip)]
    pub key_hash: String,
    /// When it was created.
    #[serde(with = "time::serde::rfc3339")]
    pub created_at: OffsetDateTime,
    /// When it was revoked.
    #[serde(with = "time::serde::rfc3339::option")]
    pub revoked_at: Option<OffsetDateTime>,
    /// When the token API last accepted it (to the minute; migration 0006).
    #[serde(with = "time::serde::rfc3339::option")]
    pub last_used_at: Option<OffsetDateTime>,
}

/// Service API keys. Part of [`Store`].
#[async_trait]
pub trait ApiKeyStore: Send + Sync {
    /// Adds a key. `NotFound` if the organization does not exist.
    async fn insert_api_key(&self, key: &ApiKey) -> Result<(), StoreError>;
    /// The key with this hash, revoked or not.
    async fn find_api_key(&self, key_hash: &str) -> Result<Option<ApiKey>, StoreError>;
    /// Keys of one organization (or all), oldest first.
    async fn list_api_keys(&self, org: Option<OrgId>) -> Result<Vec<ApiKey>, StoreError>;
    /// Revokes a key. Returns whether an unrevoked key was revoked.
    async fn revoke_api_key(&self, id: uuid::Uuid, at: OffsetDateTime) -> Result<bool, StoreError>;
    /// Records a key's use. Returns whether it existed.
    async fn touch_api_key(&self, id: uuid::Uuid, at: OffsetDateTime) -> Result<bool, StoreError>;
}

/// The current time. Injected so that tests and the simulator can move it.
pub trait Clock: Send + Sync + std::fmt::Debug {
    /// Now, in UTC.
    fn now(&self) -> OffsetDateTime;
}

/// The real clock.
#[derive(Debug, Clone, Copy, Default)]
pub struct SystemClock;

impl Clock for SystemClock {
    fn now(&self) -> OffsetDateTime {
        OffsetDateTime::now_utc()
    }
}

/// The real clock moved by an adjustable offset: tests (and the simulator-backed demo) move time
/// forward without waiting.
#[derive(Debug, Default)]
pub struct OffsetClock {
    offset_nanos: std::sync::atomic::AtomicI64,
}

impl OffsetClock {
    /// Moves the clock forward by `by`.
    pub fn advance(&self, by: time::Duration) {
        let n = i64::try_from(by.whole_nanoseconds()).unwrap_or(i64::MAX);
        self.offset_nanos
            .fetch_add(n, std::sync::atomic::Ordering::SeqCst);
    }
}

impl Clock for OffsetClock {
    fn now(&self) -> OffsetDateTime {
        OffsetDateTime::now_utc()
            + time::Duration::nanoseconds(
                self.offset_nanos.load(std::sync::atomic::Ordering::SeqCst),
            )
    }
}

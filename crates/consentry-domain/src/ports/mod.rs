//! The ports the domain needs from the outside world, as traits, with the records they carry:
//! storage ([`Store`] and its parts, one module each) and time ([`Clock`]). Implementations live in
//! other crates (`consentry-store`); the domain never sees SQL. Nothing here depends on the services
//! built over the ports.

pub mod accounts;
pub mod audit;
pub mod campaigns;
pub mod clock;
pub mod connections;
pub mod invitations;
pub mod keys;
pub mod mail;
pub mod microsoft;
pub mod rollouts;
pub mod scan;
pub mod schedule;
pub mod throttle;
pub mod vendor_alerts;
pub mod webhooks;

use std::collections::BTreeMap;

use async_trait::async_trait;
use secrecy::SecretSlice;
use time::OffsetDateTime;

pub use self::accounts::{AccountStore, ConsoleSession, OperatorAccount, PersonalToken};
pub use self::audit::{AuditAction, AuditEntry, AuditHead, AuditStore, NewAuditEntry};
pub use self::campaigns::{
    Campaign, CampaignMember, CampaignScope, CampaignStore, CampaignTenantRow, NewCampaignTenant,
};
pub use self::clock::{Clock, OffsetClock, SystemClock};
pub use self::connections::{ConnectStep, ConnectionStore, PendingConnection};
pub use self::invitations::{Invitation, InvitationStore};
pub use self::keys::{ApiKey, ApiKeyStore};
pub use self::mail::{EmailKind, EmailRecord, EmailState, LeasedEmail, MailStore, NewEmail};
pub use self::microsoft::{EntraIdentity, MemberRule, MicrosoftSignInStore, SignInAttempt};
pub use self::rollouts::{RolloutMember, RolloutStore};
pub use self::scan::{ScanAuth, ScanProfile, ScanProfileStore};
pub use self::schedule::{CheckInput, CheckRelease, CheckSchedule, LeasedCheck, ScheduleStore};
pub use self::throttle::{ThrottleEntry, ThrottleStore};
pub use self::vendor_alerts::{VendorAlertStore, VendorCredentialAlert};
pub use self::webhooks::{Webhook, WebhookDelivery, WebhookStore};
pub use crate::error::StoreError;
use crate::ids::{DomainName, OrgId, ProfileId, TenantId};
use crate::model::{
    AppProfile, CappedCount, HistoryEvent, NewHistoryEvent, Organization, Page, PageRequest,
    PendingAuthorization, ProfileFilter, SecretKind, Tenant,
};
use crate::status::{ProfileStatus, StatusReason};

/// Persistence of everything Consentry keeps. One implementation per database; both pass the same
/// behaviour tests (`consentry-store`'s story).
#[async_trait]
pub trait Store:
    AccountStore
    + AuditStore
    + ScheduleStore
    + WebhookStore
    + ApiKeyStore
    + ScanProfileStore
    + RolloutStore
    + MailStore
    + CampaignStore
    + ThrottleStore
    + MicrosoftSignInStore
    + ConnectionStore
    + InvitationStore
    + VendorAlertStore
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

    /// Adds a profile, its first history event and its row in the monitor's schedule (due from
    /// `created_at`), atomically.
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
    /// Saves what a check learned when it changed neither the status nor the reason: the profile's
    /// `last_checked_at`, its granted permissions and its `refresh_token_redeemed_at` (which only
    /// moves forward), only if the stored one still has `expected` (as
    /// [`save_profile_if_unchanged`](Self::save_profile_if_unchanged): `Ok(false)` and nothing
    /// written otherwise, `NotFound` if absent). Every other column is left as stored, so no index
    /// of the profiles is rewritten: this is the save of nearly every scheduled check.
    async fn save_check(
        &self,
        profile: &AppProfile,
        expected: (OffsetDateTime, ProfileStatus),
    ) -> Result<bool, StoreError>;
    /// Records that the profile's refresh token was redeemed successfully at `at`; the time only
    /// moves forward (an earlier `at` changes nothing). Does not change `updated_at`.
    async fn record_refresh_redemption(
        &self,
        profile: ProfileId,
        at: OffsetDateTime,
    ) -> Result<(), StoreError>;
    /// Replaces the evidence kept with the profile's current reason (`None` clears it). Does not
    /// change `updated_at`.
    async fn set_reason_evidence(
        &self,
        profile: ProfileId,
        evidence: Option<&crate::evidence::Evidence>,
    ) -> Result<(), StoreError>;
    /// The evidence kept with the profile's current reason, if any.
    async fn reason_evidence(
        &self,
        profile: ProfileId,
    ) -> Result<Option<crate::evidence::Evidence>, StoreError>;
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
    /// Counts profiles matching `filter` by status, each status up to `limit` (reading at most
    /// `limit + 1` rows of it, so the cost does not grow with the number of profiles): for pages
    /// answered per request. Every status is present; one the filter excludes counts zero.
    async fn count_profiles_up_to(
        &self,
        filter: &ProfileFilter,
        limit: u64,
    ) -> Result<BTreeMap<ProfileStatus, CappedCount>, StoreError>;

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

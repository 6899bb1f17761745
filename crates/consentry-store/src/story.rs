//! The behaviour story every [`Store`] implementation must pass: one set of expectations, run against
//! SQLite and PostgreSQL alike.
//!
//! The story creates everything it looks at under fresh random names and IDs and never assumes an
//! empty database, so it can run against a shared database, concurrently with other runs. Failures
//! panic with a message naming the expectation, as test helpers do.
//!
//! ```no_run
//! # async fn example(store: &dyn consentry_domain::Store) {
//! consentry_store::story::run(store).await;
//! # }
//! ```

use std::collections::{BTreeMap, BTreeSet, HashSet};
use std::future::Future;
use std::net::IpAddr;
use std::pin::Pin;
use std::task::Poll;

use consentry_domain::audit::{
    AuditAction, AuditEntry, BreakReason, ChainBreak, ChainVerifier, NewAuditEntry,
};
use consentry_domain::catalog::{ConsentMethod, PermissionType};
use consentry_domain::{
    Actor, AppId, AppProfile, AuthLeg, CappedCount, CertificateInfo, CloudKey, ConsentUser,
    DomainName, EventKind, GrantedPermission, NewHistoryEvent, ObjectId, OrgId, Organization,
    PageRequest, PendingAuthorization, ProfileFilter, ProfileId, ProfileStatus, ScanAuth,
    ScanProfile, ScanProfileId, SecretKind, StatusReason, Store, StoreError, Tenant, TenantId,
    Thumbprint, Upn,
};
use secrecy::{ExposeSecret as _, SecretSlice};
use time::{Duration, OffsetDateTime};
use uuid::Uuid;

/// Runs every chapter of the story. Panics on the first unmet expectation.
pub async fn run(store: &dyn Store) {
    organizations(store).await;
    tenants(store).await;
    clouds(store).await;
    profile_round_trip(store).await;
    filters_and_search(store).await;
    pagination(store, 1234).await;
    counts(store).await;
    history(store).await;
    atomicity(store).await;
    conditional_save(store).await;
    check_save(store).await;
    refresh_redemption(store).await;
    secrets(store).await;
    check_inputs(store).await;
    pending(store).await;
    pending_under_concurrency(store).await;
    deletion(store).await;
    pending_deletion(store).await;
    scan_profiles(store).await;
    roles_and_tokens(store).await;
    rollouts(store).await;
    campaigns(store).await;
    mail(store).await;
    sign_in_throttle(store).await;
    microsoft_sign_in(store).await;
    tenant_connections(store).await;
    invitations(store).await;
    vendor_alerts(store).await;
}

mod accounts;
mod audit;
mod campaigns;
mod connections;
mod fixtures;
mod mail;
mod microsoft;
mod pending;
mod postgres;
mod profiles;
mod rollouts;
mod scan_profiles;
mod secrets;
mod tenancy;
mod throttle;
mod vendor_alerts;

pub use accounts::*;
pub use audit::*;
pub use campaigns::*;
pub use connections::*;
pub use fixtures::*;
pub use mail::*;
pub use microsoft::*;
pub use pending::*;
pub use postgres::*;
pub use profiles::*;
pub use rollouts::*;
pub use scan_profiles::*;
pub use secrets::*;
pub use tenancy::*;
pub use throttle::*;
pub use vendor_alerts::*;

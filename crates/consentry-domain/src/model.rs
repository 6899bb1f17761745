//! The entities Consentry keeps: organizations, their Microsoft tenants, app profiles and their history.

use std::collections::BTreeSet;
use std::net::IpAddr;

use consentry_catalog::{ConsentMethod, PermissionType};
use serde::{Deserialize, Serialize};
use time::OffsetDateTime;

use crate::ids::{
    AppId, CloudKey, DomainName, ObjectId, OrgId, ProfileId, TenantId, Thumbprint, Upn,
};
use crate::status::{ProfileStatus, StatusReason};

/// A customer of the vendor, with the service modules its subscription includes.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct Organization {
    /// Consentry's ID.
    pub id: OrgId,
    /// Display name.
    pub name: String,
    /// Subscription modules (catalog module keys, e.g. `planner`), which gate selectable functions.
    pub modules: BTreeSet<String>,
    /// The services it subscribes to (catalog service keys, migration 0018): connecting a tenant
    /// offers their app types first.
    #[serde(default)]
    pub services: BTreeSet<String>,
    /// When it was created.
    #[serde(with = "time::serde::rfc3339")]
    pub created_at: OffsetDateTime,
}

/// A Microsoft Entra tenant connected to an organization.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct Tenant {
    /// The Entra tenant ID.
    pub id: TenantId,
    /// The organization it belongs to.
    pub org_id: OrgId,
    /// Its primary verified domain.
    pub primary_domain: DomainName,
    /// Display name.
    pub display_name: String,
    /// The Microsoft cloud it lives in (found from its OpenID metadata when it was connected; never
    /// changes).
    #[cfg_attr(feature = "openapi", schema(value_type = String, example = "global"))]
    pub cloud: CloudKey,
    /// When it was connected.
    #[serde(with = "time::serde::rfc3339")]
    pub created_at: OffsetDateTime,
    /// Whether it is proved to be the organization's (migration 0018): `None` for a tenant
    /// connected by typing its ID (the CLI, the platform operator), until a consent in it proves it.
    #[serde(default)]
    pub verified: Option<TenantVerification>,
}

/// What proved that a tenant is its organization's.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct TenantVerification {
    /// When.
    #[serde(with = "time::serde::rfc3339")]
    pub at: OffsetDateTime,
    /// How.
    pub by: VerifiedBy,
}

/// How a tenant was proved to be its organization's.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(rename_all = "snake_case")]
pub enum VerifiedBy {
    /// An administrator of the tenant signed in and gave Consentry's app administrator consent
    /// ("Connect a Microsoft tenant").
    Consent,
    /// A re-authorization of one of its app profiles completed: an account of the tenant consented.
    Reauthorization,
}

impl VerifiedBy {
    /// Stable name, as stored.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Consent => "consent",
            Self::Reauthorization => "reauthorization",
        }
    }

    /// Parses a stable name.
    pub fn parse(s: &str) -> Option<Self> {
        [Self::Consent, Self::Reauthorization]
            .into_iter()
            .find(|v| v.as_str() == s)
    }
}

/// The account that gave consent.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct ConsentUser {
    /// Directory object ID of the user in the tenant.
    pub object_id: ObjectId,
    /// The user's principal name.
    pub upn: Upn,
}

/// A permission read from Graph as granted to the app in the tenant.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct GrantedPermission {
    /// Permission name, e.g. `Tasks.ReadWrite.All`.
    pub name: String,
    /// Delegated scope or application role.
    pub kind: PermissionType,
}

/// Whether a consent lacks a catalog permission (`name` of `kind`, added at catalog version `since`):
/// it is not among the permissions the last consent or check saw `granted`, or, for a consent recorded
/// before grants were read (`granted` empty), it was added after the catalog version the consent was
/// given at (`consented_version`; unknown: not lacking). The one rule of the permission rollouts and of
/// the token API's `missing_permissions`.
pub fn consent_lacks(
    granted: &[GrantedPermission],
    consented_version: Option<u32>,
    name: &str,
    kind: PermissionType,
    since: u32,
) -> bool {
    if granted.is_empty() {
        since > consented_version.unwrap_or(u32::MAX)
    } else {
        !granted.iter().any(|g| g.name == name && g.kind == kind)
    }
}

/// The certificate of a custom Azure app, as recorded at authorization.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct CertificateInfo {
    /// SHA-1 thumbprint.
    pub thumbprint: Thumbprint,
    /// Subject.
    pub subject: String,
    /// Expiry.
    #[serde(with = "time::serde::rfc3339")]
    pub not_after: OffsetDateTime,
}

/// An app profile: the connection of one app type to one tenant.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct AppProfile {
    /// Consentry's ID.
    pub id: ProfileId,
    /// The organization that owns the tenant.
    pub org_id: OrgId,
    /// The tenant.
    pub tenant_id: TenantId,
    /// The Microsoft cloud of the tenant (copied from the tenant when the profile is created: a
    /// tenant's cloud never changes), whose hosts every call for the profile uses.
    #[cfg_attr(feature = "openapi", schema(value_type = String, example = "global"))]
    pub cloud: CloudKey,
    /// Catalog key of the app type.
    pub app_type: String,
    /// Catalog key of the service the profile is used by.
    pub service: String,
    /// Application (client) ID: the vendor app's, or the customer's custom app.
    pub application_id: Option<AppId>,
    /// How consent was given at the last successful authorization.
    pub consent_method: Option<ConsentMethod>,
    /// Who gave consent (delegated and hybrid apps).
    pub consent_user: Option<ConsentUser>,
    /// Permissions granted in the tenant, as read from Graph.
    pub granted_permissions: Vec<GrantedPermission>,
    /// Certificate of a custom app.
    pub certificate: Option<CertificateInfo>,
    /// Chosen functions (Cloud Backup delegated app).
    pub functions: Vec<String>,
    /// What the profile scans (catalog scan target keys, e.g. the Power Platform app types'), chosen at the
    /// last successful authorization.
    #[serde(default)]
    pub scan_targets: Vec<String>,
    /// IP address from which the consent user signed in (conditional-access advice).
    #[cfg_attr(feature = "openapi", schema(value_type = Option<String>))]
    pub original_sign_in_ip: Option<IpAddr>,
    /// Current status.
    pub status: ProfileStatus,
    /// Why it is not valid (None exactly when valid).
    pub reason: Option<StatusReason>,
    /// Last completed check.
    #[serde(with = "time::serde::rfc3339::option")]
    pub last_checked_at: Option<OffsetDateTime>,
    /// Catalog version consented to: a refresh asks for the delegated scopes of this version
    /// (the check compares the grants with the current catalog).
    pub consented_catalog_version: Option<u32>,
    /// When the consent user's refresh token was last redeemed successfully (a check or the token
    /// API); `authorized_at` counts as one too. Microsoft revokes a token unused for 90 days.
    #[serde(default, with = "time::serde::rfc3339::option")]
    pub refresh_token_redeemed_at: Option<OffsetDateTime>,
    /// Last successful authorization.
    #[serde(with = "time::serde::rfc3339::option")]
    pub authorized_at: Option<OffsetDateTime>,
    /// Creation time.
    #[serde(with = "time::serde::rfc3339")]
    pub created_at: OffsetDateTime,
    /// Last change.
    #[serde(with = "time::serde::rfc3339")]
    pub updated_at: OffsetDateTime,
}

impl AppProfile {
    /// The profile's tenant and the cloud it lives in: what every identity-platform call for the
    /// profile names.
    pub fn tenant_at(&self) -> crate::platform::TenantAt {
        crate::platform::TenantAt {
            id: self.tenant_id,
            cloud: self.cloud.clone(),
        }
    }
}

/// Who did something.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(tag = "kind", content = "name", rename_all = "snake_case")]
pub enum Actor {
    /// A person or key using the console, the API or the CLI.
    Operator(String),
    /// Consentry itself (scheduled checks).
    System,
}

impl Actor {
    /// Who this is, in words for someone outside Consentry (a tenant's administrator reading a consent
    /// link): the person's account name and where they acted, or the service or operator. The recorded
    /// names are `console:<account>`, `api:<account>`, `cli:<user>`, `service:<key name>` and `api`
    /// (the platform operator's token); any other name is shown as it is.
    pub fn describe(&self) -> String {
        let Actor::Operator(name) = self else {
            return "Consentry".into();
        };
        match name.split_once(':') {
            Some(("console", who)) => format!("{who} (signed in to the Consentry console)"),
            Some(("api", who)) => format!("{who} (through the Consentry API)"),
            Some(("cli", who)) => format!("{who} (a Consentry operator, on the command line)"),
            Some(("service", key)) => {
                format!("the service using the API key \u{201c}{key}\u{201d}")
            }
            _ if name == "api" => "the Consentry platform operator".into(),
            _ => name.clone(),
        }
    }
}

impl std::fmt::Display for Actor {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Actor::Operator(n) => f.write_str(n),
            Actor::System => f.write_str("Consentry"),
        }
    }
}

#[cfg(test)]
mod actor_tests {
    use super::Actor;

    #[test]
    fn actors_are_described_for_people_outside_consentry() {
        let d = |n: &str| Actor::Operator(n.into()).describe();
        assert_eq!(
            d("console:alice"),
            "alice (signed in to the Consentry console)"
        );
        assert_eq!(d("api:bob"), "bob (through the Consentry API)");
        assert_eq!(
            d("cli:root"),
            "root (a Consentry operator, on the command line)"
        );
        assert_eq!(
            d("service:backup"),
            "the service using the API key \u{201c}backup\u{201d}"
        );
        assert_eq!(d("api"), "the Consentry platform operator");
        assert_eq!(d("demo"), "demo");
        assert_eq!(Actor::System.describe(), "Consentry");
    }
}

/// What happened to a profile.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(rename_all = "snake_case")]
pub enum EventKind {
    /// The profile was created.
    Created,
    /// Its status changed (check, diagnosis).
    StatusChanged,
    /// A re-authorization started.
    ReauthorizationStarted,
    /// A re-authorization completed.
    ReauthorizationCompleted,
    /// A re-authorization failed or was cancelled; the previous state was restored.
    ReauthorizationFailed,
    /// A re-authorization was not finished in time (or its callback died part-way); the profile went
    /// back to the status its credentials have.
    ReauthorizationExpired,
}

impl EventKind {
    /// Stable name.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Created => "created",
            Self::StatusChanged => "status_changed",
            Self::ReauthorizationStarted => "reauthorization_started",
            Self::ReauthorizationCompleted => "reauthorization_completed",
            Self::ReauthorizationFailed => "reauthorization_failed",
            Self::ReauthorizationExpired => "reauthorization_expired",
        }
    }
    /// Parses the stable name.
    pub fn parse(s: &str) -> Option<Self> {
        [
            Self::Created,
            Self::StatusChanged,
            Self::ReauthorizationStarted,
            Self::ReauthorizationCompleted,
            Self::ReauthorizationFailed,
            Self::ReauthorizationExpired,
        ]
        .into_iter()
        .find(|k| k.as_str() == s)
    }
}

/// One entry of a profile's history.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct HistoryEvent {
    /// Sequence number in the store (increasing).
    pub seq: i64,
    /// The profile.
    pub profile_id: ProfileId,
    /// When.
    #[serde(with = "time::serde::rfc3339")]
    pub at: OffsetDateTime,
    /// Who.
    pub actor: Actor,
    /// What.
    pub kind: EventKind,
    /// Status before.
    pub from_status: Option<ProfileStatus>,
    /// Status after.
    pub to_status: Option<ProfileStatus>,
    /// Why (the reason after the event, if any).
    pub reason: Option<StatusReason>,
    /// Free text detail (no secrets).
    pub detail: Option<String>,
    /// The sign-in log evidence behind the reason, when a check read it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub evidence: Option<crate::evidence::Evidence>,
}

/// A history event to append (the store assigns `seq`).
#[derive(Debug, Clone, PartialEq)]
pub struct NewHistoryEvent {
    /// The profile.
    pub profile_id: ProfileId,
    /// When.
    pub at: OffsetDateTime,
    /// Who.
    pub actor: Actor,
    /// What.
    pub kind: EventKind,
    /// Status before.
    pub from_status: Option<ProfileStatus>,
    /// Status after.
    pub to_status: Option<ProfileStatus>,
    /// Reason after the event.
    pub reason: Option<StatusReason>,
    /// Detail.
    pub detail: Option<String>,
    /// The sign-in log evidence behind the reason, when a check read it.
    pub evidence: Option<crate::evidence::Evidence>,
}

/// The kinds of secret kept per profile, always sealed at rest.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum SecretKind {
    /// The consent user's refresh token.
    RefreshToken,
    /// The custom app's private key and certificate (PKCS#8 + DER, or a .pfx).
    ClientCertificate,
}

impl SecretKind {
    /// Stable name.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::RefreshToken => "refresh_token",
            Self::ClientCertificate => "client_certificate",
        }
    }
}

/// Filters for listing profiles. All set filters must match.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct ProfileFilter {
    /// Only this organization's profiles.
    pub org_id: Option<OrgId>,
    /// Only this tenant.
    pub tenant_id: Option<TenantId>,
    /// Only these statuses (empty = all).
    pub statuses: Vec<ProfileStatus>,
    /// Only this service (catalog key).
    pub service: Option<String>,
    /// Only this app type (catalog key).
    pub app_type: Option<String>,
    /// Case-insensitive substring of app type, service, consent UPN or application ID.
    pub search: Option<String>,
}

/// How many profiles matched, counted up to a limit: a count that reads at most `limit + 1`
/// matching rows, so its cost does not grow with the number of profiles. `more` says that more than
/// `n` match (then `n` is the limit); otherwise `n` is exact.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, PartialOrd, Ord)]
pub struct CappedCount {
    /// The profiles counted: exact, or the limit when `more`.
    pub n: u64,
    /// More than `n` match.
    pub more: bool,
}

impl CappedCount {
    /// An exact count.
    pub fn exact(n: u64) -> Self {
        Self { n, more: false }
    }

    /// What counting up to `limit` shows when `found` rows were read (at most `limit + 1`).
    pub fn of(found: u64, limit: u64) -> Self {
        if found > limit {
            Self {
                n: limit,
                more: true,
            }
        } else {
            Self {
                n: found,
                more: false,
            }
        }
    }

    /// Whether no profile matched.
    pub fn is_zero(&self) -> bool {
        self.n == 0 && !self.more
    }

    /// The sum of counts: exact while every part is, else "more than" the sum of the parts.
    pub fn sum<'a>(parts: impl IntoIterator<Item = &'a CappedCount>) -> Self {
        parts.into_iter().fold(Self::default(), |acc, c| Self {
            n: acc.n.saturating_add(c.n),
            more: acc.more || c.more,
        })
    }
}

impl CappedCount {
    /// `n` with thousands separators (`10,000`), without the `+`.
    pub fn number(&self) -> String {
        let digits = self.n.to_string();
        let mut out = String::with_capacity(digits.len() + digits.len() / 3);
        for (i, ch) in digits.chars().enumerate() {
            if i > 0 && (digits.len() - i).is_multiple_of(3) {
                out.push(',');
            }
            out.push(ch);
        }
        out
    }
}

impl std::fmt::Display for CappedCount {
    /// The count with thousands separators, and `+` after a count that stopped at its limit
    /// (`10,000+`).
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.number())?;
        if self.more {
            f.write_str("+")?;
        }
        Ok(())
    }
}

#[cfg(test)]
mod capped_count_tests {
    use super::CappedCount;

    #[test]
    fn a_capped_count_shows_its_limit_with_a_plus() {
        assert_eq!(CappedCount::of(7, 10_000).to_string(), "7");
        assert_eq!(CappedCount::of(10_000, 10_000).to_string(), "10,000");
        let more = CappedCount::of(10_001, 10_000);
        assert_eq!((more.n, more.more), (10_000, true));
        assert_eq!(more.to_string(), "10,000+");
        assert_eq!(CappedCount::exact(1_234_567).to_string(), "1,234,567");
        assert!(CappedCount::of(0, 5).is_zero() && !CappedCount::of(1, 0).is_zero());
        let sum = CappedCount::sum(&[CappedCount::exact(3), more]);
        assert_eq!(sum.to_string(), "10,003+");
    }
}

/// Keyset pagination: ask for `limit` items after `after` (an opaque cursor from a previous page).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PageRequest {
    /// Cursor of the last item of the previous page.
    pub after: Option<String>,
    /// Page size (1..=MAX_PAGE_SIZE).
    pub limit: u32,
}

/// The largest page a list call returns.
pub const MAX_PAGE_SIZE: u32 = 500;
/// The page size when none is asked for.
pub const DEFAULT_PAGE_SIZE: u32 = 50;

impl Default for PageRequest {
    fn default() -> Self {
        Self {
            after: None,
            limit: DEFAULT_PAGE_SIZE,
        }
    }
}

/// One page of a list.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct Page<T> {
    /// The items.
    pub items: Vec<T>,
    /// Cursor for the next page, absent on the last page.
    pub next_cursor: Option<String>,
}

/// Which step of a re-authorization a pending record waits for.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum AuthLeg {
    /// The administrator's tenant-wide consent at `/v2.0/adminconsent`.
    AdminConsent,
    /// The consenting user's sign-in (authorization code + PKCE) at `/oauth2/v2.0/authorize`.
    SignIn,
    /// A consent link handed to the tenant's administrator, not opened yet. Its `state_hash` is the
    /// hash of the link's secret token; opening it starts the first step at Microsoft.
    Handoff,
}

impl AuthLeg {
    /// Stable name.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::AdminConsent => "admin_consent",
            Self::SignIn => "sign_in",
            Self::Handoff => "handoff",
        }
    }
    /// Parses the stable name.
    pub fn parse(s: &str) -> Option<Self> {
        match s {
            "admin_consent" => Some(Self::AdminConsent),
            "sign_in" => Some(Self::SignIn),
            "handoff" => Some(Self::Handoff),
            _ => None,
        }
    }
}

/// A re-authorization waiting for the administrator to come back from Microsoft. Stored server-side
/// under the hash of its OAuth state, so any replica can finish it; used once.
#[derive(Clone)]
pub struct PendingAuthorization {
    /// Hex SHA-256 of the OAuth `state` value (the value itself is never stored).
    pub state_hash: String,
    /// The profile being re-authorized.
    pub profile_id: ProfileId,
    /// Who started it.
    pub started_by: Actor,
    /// The consent method chosen.
    pub method: ConsentMethod,
    /// The step this record waits for.
    pub leg: AuthLeg,
    /// Whether a sign-in follows the admin-consent step.
    pub sign_in_follows: bool,
    /// The custom app's application ID (custom app types).
    pub custom_app_id: Option<AppId>,
    /// The functions chosen (Cloud Backup delegated app).
    pub functions: Vec<String>,
    /// The scan targets chosen (catalog keys, in catalog order).
    pub scan_targets: Vec<String>,
    /// The nonce expected in the id_token.
    pub nonce: String,
    /// The profile's status before the re-authorization started (restored on failure).
    pub previous_status: ProfileStatus,
    /// The profile's reason before the re-authorization started.
    pub previous_reason: Option<StatusReason>,
    /// When it started.
    pub created_at: OffsetDateTime,
    /// When it stops being accepted.
    pub expires_at: OffsetDateTime,
    /// Secrets (PKCE verifier, custom app .pfx and password) as one blob; sealed by the store.
    pub secrets: secrecy::SecretSlice<u8>,
    /// Set when a callback (or a cancel) took the record: the deadline by which the taker saves the
    /// result and deletes the record. Past it, the taker is taken to have died (process killed,
    /// request timed out) and the monitor puts the profile back (see `check.rs`). `None`: not
    /// taken. `Store::put_pending` always stores `None`.
    pub taken_until: Option<OffsetDateTime>,
}

impl PendingAuthorization {
    /// Whether nobody will finish this re-authorization any more: it expired untaken, or its taker
    /// missed its deadline.
    pub fn is_dead(&self, now: OffsetDateTime) -> bool {
        match self.taken_until {
            Some(until) => until <= now,
            None => self.expires_at <= now,
        }
    }
}

impl std::fmt::Debug for PendingAuthorization {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("PendingAuthorization")
            .field("profile_id", &self.profile_id)
            .field("started_by", &self.started_by)
            .field("method", &self.method)
            .field("leg", &self.leg)
            .field("sign_in_follows", &self.sign_in_follows)
            .field("custom_app_id", &self.custom_app_id)
            .field("functions", &self.functions)
            .field("scan_targets", &self.scan_targets)
            .field("previous_status", &self.previous_status)
            .field("created_at", &self.created_at)
            .field("expires_at", &self.expires_at)
            .field("taken_until", &self.taken_until)
            .field("secrets", &"[redacted]")
            .finish_non_exhaustive()
    }
}

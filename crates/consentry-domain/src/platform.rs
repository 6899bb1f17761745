//! The identity-platform port: what the domain needs from Microsoft (or entra-sim), in domain terms.
//! The adapter over HTTP lives in `consentry-entra`; the domain never sees URLs being fetched.

use std::net::IpAddr;

use async_trait::async_trait;
use consentry_catalog::UserFacts;
use secrecy::{SecretSlice, SecretString};
use time::OffsetDateTime;

use crate::ids::{AppId, CloudKey, DomainName, ObjectId, TenantId, Upn};
use crate::status::StatusReason;

pub mod registrations;

/// Which app registration a call acts as.
#[derive(Clone)]
pub enum ClientRef {
    /// The vendor's app registration for an app type (credentials come from Consentry's configuration).
    Vendor {
        /// Catalog key of the app type.
        app_type: String,
    },
    /// Consentry's own multi-tenant app registration (`[consentry_app]` in the configuration): the
    /// console's "Sign in with Microsoft" and connecting a tenant by administrator consent.
    Consentry,
    /// A customer's custom Azure app, authenticated with its certificate.
    Custom {
        /// The custom app's application (client) ID.
        app_id: AppId,
        /// The certificate and private key, as a PKCS#12 (.pfx) archive.
        pfx: SecretSlice<u8>,
        /// The archive's password.
        password: SecretString,
    },
}

impl std::fmt::Debug for ClientRef {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            ClientRef::Vendor { app_type } => f
                .debug_struct("Vendor")
                .field("app_type", app_type)
                .finish(),
            ClientRef::Consentry => f.write_str("Consentry"),
            ClientRef::Custom { app_id, .. } => f
                .debug_struct("Custom")
                .field("app_id", app_id)
                .field("pfx", &"[redacted]")
                .finish(),
        }
    }
}

/// A tenant and the Microsoft cloud it lives in: every call to the identity platform names both, so
/// the adapter uses that cloud's hosts and vendor registrations.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct TenantAt {
    /// The tenant.
    pub id: TenantId,
    /// Its cloud.
    pub cloud: CloudKey,
}

impl TenantAt {
    /// A tenant in a cloud.
    pub fn new(id: TenantId, cloud: CloudKey) -> Self {
        Self { id, cloud }
    }
}

impl std::fmt::Display for TenantAt {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{} ({} cloud)", self.id, self.cloud)
    }
}

/// What a tenant's OpenID metadata says of it: its ID and the cloud it lives in.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TenantCloud {
    /// The tenant ID (from the metadata's issuer).
    pub id: TenantId,
    /// The cloud, a key of the adapter's cloud table.
    pub cloud: CloudKey,
}

/// The parameters of an authorization-code sign-in.
#[derive(Debug, Clone)]
pub struct SignInRequest {
    /// The customer tenant and its cloud.
    pub tenant: TenantAt,
    /// The app's client ID.
    pub client_id: AppId,
    /// Opaque state (single use).
    pub state: String,
    /// Nonce to find in the id_token.
    pub nonce: String,
    /// PKCE S256 challenge.
    pub code_challenge: String,
    /// Delegated Graph scopes to request (short names).
    pub scopes: Vec<String>,
    /// Pre-fills the username.
    pub login_hint: Option<String>,
}

/// An OpenID Connect sign-in with Consentry's own app ([`ClientRef::Consentry`]) at the
/// `organizations` authority (any work or school account, whatever its tenant), with
/// `prompt=select_account`, returning to `redirect_uri`. Asks `openid profile User.Read`.
#[derive(Debug, Clone)]
pub struct ConsentrySignIn {
    /// Opaque state (single use).
    pub state: String,
    /// Nonce to find in the id_token.
    pub nonce: String,
    /// PKCE S256 challenge.
    pub code_challenge: String,
    /// Where Microsoft sends the browser back (registered on Consentry's app).
    pub redirect_uri: String,
}

/// What Microsoft Graph says of a tenant's organization (`GET /organization`, read with Consentry's
/// app's `Organization.Read.All` application permission).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OrganizationFacts {
    /// The tenant ID.
    pub id: TenantId,
    /// Its display name.
    pub display_name: String,
    /// Its verified domains, the default one first.
    pub verified_domains: Vec<DomainName>,
}

/// A consenting user's sign-in, redeemed.
pub struct SignedIn {
    /// The user's object ID.
    pub object_id: ObjectId,
    /// The user's UPN.
    pub upn: Upn,
    /// The IP address the user signed in from, as Microsoft saw it (`ipaddr` claim), if present.
    pub ip: Option<IpAddr>,
    /// The tenant the user signed into (`tid`).
    pub tenant: TenantId,
    /// The nonce found in the id_token.
    pub nonce: Option<String>,
    /// A delegated access token for Graph (used once to read the user's roles and licenses).
    pub access_token: SecretString,
    /// The refresh token to keep, sealed.
    pub refresh_token: Option<SecretString>,
    /// The delegated Graph scopes the identity platform says it granted (the token response's
    /// `scope`, short names).
    pub granted_scopes: Vec<String>,
}

impl std::fmt::Debug for SignedIn {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SignedIn")
            .field("object_id", &self.object_id)
            .field("upn", &self.upn)
            .field("ip", &self.ip)
            .field("tenant", &self.tenant)
            .finish_non_exhaustive()
    }
}

/// A "Sign in with Microsoft" to the console: Consentry's own app ([`ClientRef::Consentry`]) at the
/// `organizations` authority, returning to the console's own callback.
#[derive(Debug, Clone)]
pub struct ConsoleSignInRequest {
    /// Opaque state (single use).
    pub state: String,
    /// Nonce to find in the ID token.
    pub nonce: String,
    /// PKCE S256 challenge.
    pub code_challenge: String,
}

/// Who signed in to the console with Microsoft, from the verified ID token.
pub struct MicrosoftSignedIn {
    /// The user's tenant (`tid`).
    pub tenant: TenantId,
    /// The user's object ID (`oid`).
    pub object_id: ObjectId,
    /// The user's sign-in name (`preferred_username`).
    pub upn: Upn,
    /// The user's display name (`name`), if given.
    pub display_name: Option<String>,
    /// The nonce found in the ID token.
    pub nonce: Option<String>,
    /// The app roles of Consentry's app assigned to the user (the ID token's `roles` claim).
    pub app_roles: Vec<String>,
    /// A delegated Graph token (`User.Read`), used once to read the user's memberships; never kept.
    pub access_token: SecretString,
}

impl std::fmt::Debug for MicrosoftSignedIn {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("MicrosoftSignedIn")
            .field("tenant", &self.tenant)
            .field("object_id", &self.object_id)
            .field("upn", &self.upn)
            .field("app_roles", &self.app_roles)
            .finish_non_exhaustive()
    }
}

/// The signed-in user's direct memberships (`/me/memberOf`).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Memberships {
    /// Template IDs of the user's active directory roles.
    pub role_template_ids: std::collections::BTreeSet<uuid::Uuid>,
    /// Object IDs of the groups the user is a direct member of.
    pub group_ids: std::collections::BTreeSet<uuid::Uuid>,
}

/// What Viva Engage says of the consenting user.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct VivaEngageFacts {
    /// The user is a Viva Engage verified admin.
    pub verified_admin: bool,
    /// The delegated scopes (full form, e.g. `https://api.yammer.com/user_impersonation`) of the
    /// token Viva Engage accepted: proof that the consent covers them.
    pub granted_scopes: Vec<String>,
}

/// Permissions granted to an app in a tenant, read from Graph.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Grants {
    /// Object ID of the app's service principal (None: the app is not in the tenant).
    pub service_principal: Option<ObjectId>,
    /// Application permissions (app role values on Microsoft Graph).
    pub app_roles: Vec<String>,
    /// Delegated scopes granted for all users (admin consent).
    pub delegated_all_principals: Vec<String>,
    /// Delegated scopes granted by individual users: (user object ID, scopes).
    pub delegated_by_user: Vec<(ObjectId, Vec<String>)>,
    /// Whether Graph let the app list its delegated grants. Listing them needs an application
    /// permission such as DelegatedPermissionGrant.Read.All, which delegated-only apps do not have;
    /// then the delegated lists are empty and say nothing.
    pub delegated_readable: bool,
}

impl Grants {
    /// Delegated scopes effective for `user`: tenant-wide ones plus the user's own.
    pub fn delegated_for(&self, user: Option<ObjectId>) -> Vec<String> {
        let mut out = self.delegated_all_principals.clone();
        if let Some(u) = user {
            for (who, scopes) in &self.delegated_by_user {
                if *who == u {
                    out.extend(scopes.iter().cloned());
                }
            }
        }
        out.sort();
        out.dedup();
        out
    }
}

/// What a refusal from Microsoft means, independent of wire details.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PlatformCause {
    /// Password reset by an admin, or sessions revoked (50173 and kin).
    PasswordResetOrRevoked,
    /// The user is disabled (50057).
    UserDisabled,
    /// The user does not exist (50034 and kin).
    UserNotFound,
    /// MFA is now required (50076, 50079).
    MfaRequired,
    /// A conditional access policy blocks (53003), typically by network location.
    ConditionalAccess,
    /// A conditional access policy requires a control other than the location (53000–53002,
    /// 53004, 53011, 530032, 530035, 530084, 50131).
    ConditionalAccessRequirement(crate::status::CaRequirement),
    /// Consent is missing or was revoked (65001).
    ConsentMissing,
    /// The app is not in the tenant (700016, 7000229).
    AppNotInTenant,
    /// The certificate is not registered on the app (700027).
    CertificateNotRegistered,
    /// The client assertion was outside its time range (700024): a clock problem.
    AssertionTimeRange,
    /// The vendor app's secret is wrong (7000215).
    VendorSecretInvalid,
    /// The vendor app's secret expired (7000222).
    VendorSecretExpired,
    /// The refresh token expired after inactivity (700082).
    RefreshTokenInactive,
    /// The tenant does not exist (90002).
    TenantNotFound,
    /// The authorization code was invalid, expired or already used.
    CodeInvalid,
    /// The user cancelled at Microsoft (access_denied + cancel).
    Cancelled,
    /// The user or admin declined consent (65004).
    ConsentDeclined,
    /// The signed-in user may not grant the consent; an administrator must (90094 and kin).
    NeedAdminApproval,
    /// A transient failure (timeout, 5xx, 429, `temporarily_unavailable`): never changes a status.
    Transient,
    /// The vendor app for this app type is not configured in Consentry.
    NotConfigured,
    /// The sign-in's ID token failed verification (signature, issuer, audience, validity
    /// period) or was missing: the answer did not provably come from Microsoft for this app.
    IdTokenRejected,
    /// Anything else.
    Other,
}

/// A failed call to the identity platform.
#[derive(Debug, Clone, thiserror::Error)]
#[error("{message}")]
pub struct PlatformError {
    /// What it means.
    pub cause: PlatformCause,
    /// The AADSTS code, if any.
    pub aadsts: Option<u32>,
    /// The OAuth error class or Graph error code, if any.
    pub error: Option<String>,
    /// A human message without secrets (Microsoft's description may be included; it never holds tokens).
    pub message: String,
}

impl PlatformError {
    /// Whether the failure is transient (must never change a profile's status).
    pub fn is_transient(&self) -> bool {
        self.cause == PlatformCause::Transient
    }

    /// The status reason this failure is definitive evidence of, for a profile with the given consent
    /// user and original sign-in IP. `None` for transient failures.
    pub fn reason(
        &self,
        upn: Option<&Upn>,
        original_ip: Option<IpAddr>,
        thumbprint: Option<&str>,
    ) -> Option<StatusReason> {
        let upn = upn.map(|u| u.to_string());
        Some(match self.cause {
            PlatformCause::Transient => return None,
            PlatformCause::PasswordResetOrRevoked => {
                StatusReason::PasswordResetOrSessionsRevoked { upn }
            }
            PlatformCause::UserDisabled => StatusReason::ConsentUserDisabled { upn },
            PlatformCause::UserNotFound => StatusReason::ConsentUserDeleted { upn },
            PlatformCause::MfaRequired => StatusReason::MfaEnabledAfterConsent { upn },
            PlatformCause::ConditionalAccess => StatusReason::ConditionalAccessBlocked {
                original_ip,
                // Filled in by the checker, which knows the configured addresses.
                outbound_addresses: Vec::new(),
            },
            PlatformCause::ConditionalAccessRequirement(requirement) => {
                StatusReason::ConditionalAccessRequirement {
                    requirement,
                    aadsts: self.aadsts,
                }
            }
            PlatformCause::ConsentMissing | PlatformCause::ConsentDeclined => {
                StatusReason::ConsentRevoked
            }
            PlatformCause::AppNotInTenant => StatusReason::AppRemovedFromTenant,
            PlatformCause::CertificateNotRegistered => StatusReason::CertificateNotRegistered {
                thumbprint: thumbprint.map(str::to_string),
            },
            PlatformCause::RefreshTokenInactive => StatusReason::RefreshTokenInactive,
            PlatformCause::TenantNotFound => StatusReason::TenantNotFound,
            PlatformCause::VendorSecretInvalid
            | PlatformCause::VendorSecretExpired
            | PlatformCause::NotConfigured => StatusReason::VendorCredentialProblem {
                aadsts: self.aadsts,
            },
            PlatformCause::AssertionTimeRange
            | PlatformCause::CodeInvalid
            | PlatformCause::Cancelled
            | PlatformCause::NeedAdminApproval
            | PlatformCause::IdTokenRejected
            | PlatformCause::Other => StatusReason::UnrecognizedError {
                aadsts: self.aadsts,
                error: self.error.clone().unwrap_or_else(|| "error".into()),
            },
        })
    }
}

/// The Microsoft identity platform and Graph, as the domain needs them.
#[async_trait]
pub trait IdentityPlatform: Send + Sync + std::fmt::Debug {
    /// The vendor app's client ID for an app type in a cloud, if Consentry has credentials for it
    /// there (a national cloud needs registrations of its own).
    fn vendor_client_id(&self, cloud: &CloudKey, app_type: &str) -> Option<AppId>;

    /// Where a tenant lives, from its OpenID metadata at the configured global authority
    /// (`tenant` is a GUID or a verified domain). An unknown tenant is
    /// [`PlatformCause::TenantNotFound`]; metadata naming a cloud Consentry has no entry for, or one
    /// not configured, is [`PlatformCause::NotConfigured`] with the configuration to add; a failure to
    /// reach Microsoft is [`PlatformCause::Transient`] (never a guess).
    async fn tenant_cloud(&self, tenant: &str) -> Result<TenantCloud, PlatformError>;

    /// The client ID of Consentry's own app registration ([`ClientRef::Consentry`]), if configured.
    fn consentry_client_id(&self) -> Option<AppId>;

    /// The URL of the v2 admin-consent page (`/{tenant}/v2.0/adminconsent`) returning to Consentry's callback.
    fn admin_consent_url(&self, tenant: &TenantAt, client_id: AppId, state: &str) -> String;

    /// The URL of the authorization (sign-in) page returning to Consentry's callback.
    fn sign_in_url(&self, req: &SignInRequest) -> String;

    /// The URL of a sign-in with Consentry's own app at the `organizations` authority (connecting a
    /// tenant: the tenant is not known until the administrator signed in).
    fn consentry_sign_in_url(&self, req: &ConsentrySignIn) -> String;

    /// Redeems the code of a [`consentry_sign_in_url`](Self::consentry_sign_in_url) sign-in at the
    /// `organizations` authority; the ID token is verified (signature, issuer of its own `tid`,
    /// audience, validity) and [`SignedIn::tenant`] is its `tid`.
    async fn redeem_consentry_sign_in(
        &self,
        code: &str,
        code_verifier: &SecretString,
        redirect_uri: &str,
    ) -> Result<SignedIn, PlatformError>;

    /// The URL of the v2 admin-consent page for Consentry's own app in `tenant`, returning to
    /// `redirect_uri` (Graph's `.default`: the application permissions registered on the app).
    fn consentry_admin_consent_url(
        &self,
        tenant: TenantId,
        state: &str,
        redirect_uri: &str,
    ) -> String;

    /// Reads the tenant's organization (ID, display name, verified domains) from Graph with
    /// Consentry's own app (client credentials in the tenant): it works only once the tenant
    /// consented to the app.
    async fn organization(&self, tenant: TenantId) -> Result<OrganizationFacts, PlatformError>;

    /// Interprets an error returned on Consentry's callback (`error`, `error_description`, `error_subcode`
    /// query parameters of Microsoft's redirect).
    fn redirect_error(
        &self,
        error: &str,
        description: Option<&str>,
        subcode: Option<&str>,
    ) -> PlatformError;

    /// Redeems an authorization code (PKCE) for the consenting user's tokens.
    async fn redeem(
        &self,
        tenant: &TenantAt,
        client: &ClientRef,
        code: &str,
        code_verifier: &SecretString,
        scopes: &[String],
    ) -> Result<SignedIn, PlatformError>;

    /// Reads the signed-in user's directory roles, licenses, Viva Engage verified-admin flag and group
    /// ownership with their delegated token.
    async fn user_facts(
        &self,
        tenant: &TenantAt,
        access_token: &SecretString,
    ) -> Result<UserFacts, PlatformError>;

    /// The URL of Microsoft's sign-in page for the console's "Sign in with Microsoft" (authorization
    /// code, PKCE S256, nonce, `prompt=select_account`, at the `organizations` authority), returning to
    /// the console's callback. [`PlatformCause::NotConfigured`] when Consentry's app is not configured.
    fn console_sign_in_url(&self, req: &ConsoleSignInRequest) -> Result<String, PlatformError>;

    /// Redeems the console sign-in's code (PKCE, Consentry's own credential) at the `organizations`
    /// authority and verifies the ID token (signature, issuer of the token's own tenant, audience
    /// Consentry's client ID, validity) before any claim is used. The caller compares the nonce.
    async fn redeem_console_sign_in(
        &self,
        code: &str,
        code_verifier: &SecretString,
    ) -> Result<MicrosoftSignedIn, PlatformError>;

    /// Reads the signed-in user's directory roles and group memberships with their delegated token.
    async fn memberships(&self, access_token: &SecretString) -> Result<Memberships, PlatformError>;

    /// Reads the consenting user's Viva Engage facts (Verified Admin), which Microsoft Graph does not
    /// expose: the user's refresh token is redeemed for the Viva Engage (Yammer) resource, which the
    /// consent must cover, and the Viva Engage API is asked who the user is. Transient failures are
    /// [`PlatformCause::Transient`].
    async fn viva_engage_facts(
        &self,
        tenant: &TenantAt,
        client: &ClientRef,
        refresh_token: &SecretString,
    ) -> Result<VivaEngageFacts, PlatformError>;

    /// Proves the app can authenticate in the tenant (client credentials; a certificate assertion for
    /// custom apps) and reads the permissions granted to it from Graph.
    async fn grants(&self, tenant: &TenantAt, client: &ClientRef) -> Result<Grants, PlatformError>;

    /// An app-only Graph access token for the app in the tenant (client credentials: the vendor's
    /// secret or certificate, or a custom app's certificate assertion).
    async fn app_token(
        &self,
        tenant: &TenantAt,
        client: &ClientRef,
    ) -> Result<AccessToken, PlatformError>;

    /// Reads the tenant's sign-in log entries of `query.upn` for the app (with the app's own
    /// credential: client credentials, like [`grants`](Self::grants)), interactive and not,
    /// newest first. Without `AuditLog.Read.All` or an Entra ID P1/P2 license, or when Microsoft
    /// does not answer, says why ([`EvidenceUnavailable`](crate::evidence::EvidenceUnavailable)).
    async fn sign_in_log(
        &self,
        tenant: &TenantAt,
        client: &ClientRef,
        query: &crate::evidence::SignInLogQuery,
    ) -> Result<Vec<crate::evidence::SignInLogEntry>, crate::evidence::EvidenceUnavailable>;

    /// Reads each configured vendor registration — every app type's in every configured cloud, and
    /// Consentry's own app (`[consentry_app]`, global cloud) — with that app's own client-credentials
    /// token in its home tenant (`vendor_tenant`); an app reads its own registration without any
    /// permission. Failures are per registration ([`registrations::RegistrationRead`]).
    async fn vendor_registrations(&self) -> Vec<registrations::VendorRegistration>;

    /// How long Microsoft still throttles requests for `tenant` (a `Retry-After` not yet passed,
    /// for any app); `None` when it does not. The monitor holds the tenant's checks back until then
    /// without taking a global permit, so other tenants use the concurrency. A throttled request is a
    /// transient failure, never a reason to change a profile's status.
    fn throttled_for(&self, _tenant: TenantId) -> Option<std::time::Duration> {
        None
    }

    /// Uses a refresh token: returns the rotated refresh token (to store) and the access token's expiry.
    async fn refresh(
        &self,
        tenant: &TenantAt,
        client: &ClientRef,
        refresh_token: &SecretString,
        scopes: &[String],
    ) -> Result<Refreshed, PlatformError>;
}

/// An access token and when it expires.
pub struct AccessToken {
    /// The token.
    pub token: SecretString,
    /// Its expiry.
    pub expires_at: OffsetDateTime,
}

impl std::fmt::Debug for AccessToken {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("AccessToken")
            .field("expires_at", &self.expires_at)
            .finish_non_exhaustive()
    }
}

/// The result of a refresh.
pub struct Refreshed {
    /// The new access token.
    pub access_token: SecretString,
    /// When it expires.
    pub expires_at: OffsetDateTime,
    /// The rotated refresh token, when one was returned.
    pub refresh_token: Option<SecretString>,
    /// The delegated scopes the identity platform says the token carries (short names).
    pub granted_scopes: Vec<String>,
}

impl std::fmt::Debug for Refreshed {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Refreshed")
            .field("expires_at", &self.expires_at)
            .finish_non_exhaustive()
    }
}

//! The directory model. The same types are read from a scenario file and make up the live state,
//! so `GET /_sim/state` shows exactly what a scenario can declare (secrets are shown as hints only).

use ipnet::IpNet;
use secrecy::{ExposeSecret, SecretString};
use serde::{Deserialize, Serialize, Serializer};
use time::OffsetDateTime;
use uuid::Uuid;

fn yes() -> bool {
    true
}

fn hint<S: Serializer>(secret: &SecretString, s: S) -> Result<S::Ok, S::Error> {
    let value = secret.expose_secret();
    let shown: String = value.chars().take(3).collect();
    s.serialize_str(&format!("{shown}…(redacted)"))
}

fn hint_opt<S: Serializer>(secret: &Option<SecretString>, s: S) -> Result<S::Ok, S::Error> {
    match secret {
        Some(v) => hint(v, s),
        None => s.serialize_none(),
    }
}

/// Settings of the simulated service. Items marked UNVERIFIED in entra-facts §9 are configurable here.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct Settings {
    /// Lifetime of access and ID tokens in seconds (`expires_in`; Microsoft typically answers 3599).
    pub access_token_lifetime_secs: i64,
    /// Lifetime of authorization codes (Microsoft: "typically about 10 minutes").
    pub code_lifetime_secs: i64,
    /// Inactivity after which a refresh token fails with AADSTS700082 (90 days for non-SPA clients).
    pub refresh_token_inactivity_days: i64,
    /// Clock skew allowed on client assertion `exp`/`nbf`.
    pub assertion_clock_skew_secs: i64,
    /// HTTP status for `invalid_client` errors whose status is UNVERIFIED (7000222, 7000229, 700027,
    /// 700024); 401 by analogy with 7000215.
    pub invalid_client_status: u16,
    /// `error` on the redirect when a non-admin leaves the "Need admin approval" page (AADSTS90094).
    /// UNVERIFIED: third-party code expects `access_denied`.
    pub admin_approval_error: String,
    /// `error` on the legacy `/adminconsent` redirect when the admin cancels. UNVERIFIED: the doc says
    /// `permission_denied`, the v2 endpoint really answers `access_denied` (+ AADSTS65004).
    pub legacy_adminconsent_cancel_error: String,
    /// AADSTS code answered when a refresh token or code belongs to a user who was deleted.
    /// UNVERIFIED: 50034 (UserAccountNotFound) is the documented name for a missing user.
    pub deleted_user_code: u32,
    /// Which IP address conditional access sees when a code or refresh token is redeemed:
    /// `original_sign_in` (the IP of the interactive sign-in carried by the refresh token, as the
    /// product documentation describes) or `request_peer` (the address of the token request,
    /// entra-facts §7 conclusion).
    pub ca_refresh_ip: CaRefreshIp,
    /// Whether discovery for a domain-name tenant answers with GUID-based endpoints (UNVERIFIED).
    pub discovery_uses_tenant_guid: bool,
    /// `Retry-After` (seconds) on a 429 from the token endpoint when a fault does not give one.
    pub token_retry_after_secs: u64,
    /// One-time code accepted for users without their own `mfa_code` (demo value).
    pub default_mfa_code: String,
    /// Ignore the port of `http://localhost` / `http://127.0.0.1` redirect URIs when matching, as
    /// Microsoft does for loopback URIs; `false` makes every redirect URI match exactly.
    pub loopback_redirect_any_port: bool,
    /// The device code flow (`[settings.device_code]`).
    pub device_code: DeviceCodeSettings,
    /// Every tenant's "users can register applications" setting (Microsoft's default: yes): whether
    /// a member without an application administrator role may create app registrations through
    /// Graph (its creator becomes an owner). The `going-live` scenario turns it off.
    pub users_can_register_apps: bool,
    /// Microsoft's throttling limits (`[settings.throttling]`, off by default; see
    /// [`ThrottleSettings`](crate::ThrottleSettings)).
    pub throttling: crate::throttle::ThrottleSettings,
}

impl Default for Settings {
    fn default() -> Self {
        Self {
            access_token_lifetime_secs: 3599,
            code_lifetime_secs: 600,
            refresh_token_inactivity_days: 90,
            assertion_clock_skew_secs: 300,
            invalid_client_status: 401,
            admin_approval_error: "access_denied".into(),
            legacy_adminconsent_cancel_error: "access_denied".into(),
            deleted_user_code: 50034,
            ca_refresh_ip: CaRefreshIp::OriginalSignIn,
            discovery_uses_tenant_guid: true,
            token_retry_after_secs: 60,
            default_mfa_code: "123456".into(),
            loopback_redirect_any_port: true,
            device_code: DeviceCodeSettings::default(),
            users_can_register_apps: true,
            throttling: crate::throttle::ThrottleSettings::default(),
        }
    }
}

/// The device code flow's timing and the answers whose exact form no source shows (entra-facts §9
/// style: UNVERIFIED items are configurable). Verified answers are not settings: a poll before the
/// user finished is `authorization_pending` AADSTS70016, and a poll after `expires_in` is
/// `expired_token` AADSTS70020 ("The provided value for the input parameter 'device_code' is not
/// valid. This device code has expired.").
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct DeviceCodeSettings {
    /// `expires_in` of a device code (Microsoft: "the user has 15 minutes to sign in").
    pub lifetime_secs: i64,
    /// `interval` between polls (Microsoft answers 5).
    pub interval_secs: i64,
    /// Answer `slow_down` to a poll that comes sooner than `interval` after the previous one, and
    /// require 5 more seconds from then on (RFC 8628 §3.5). UNVERIFIED: Microsoft's documentation
    /// names no `slow_down`; MSAL treats it as RFC 8628 says.
    pub slow_down: bool,
    /// AADSTS code of the `slow_down` answer. UNVERIFIED: 70016 (AuthorizationPending) is the
    /// documented name closest to it.
    pub slow_down_code: u32,
    /// `error` when the user declined on the consent page. Microsoft's documentation names
    /// `authorization_declined`; RFC 8628 names `access_denied`.
    pub declined_error: String,
    /// AADSTS code of a declined authorization. UNVERIFIED: 65004 (UserDeclinedConsent) is the
    /// documented name of what the user did.
    pub declined_code: u32,
    /// `error` for a device code already redeemed. A previously authenticated device code is
    /// answered `expired_token` (Microsoft's Android library tests it against the service);
    /// UNVERIFIED for a code redeemed moments ago.
    pub redeemed_error: String,
    /// AADSTS code for a device code already redeemed. UNVERIFIED: 70020, as for an expired code.
    pub redeemed_code: u32,
    /// AADSTS code (`invalid_grant`, as observed by Microsoft's Android library) for a device code
    /// the service does not know. UNVERIFIED: 70000 (InvalidGrant); Microsoft's documentation
    /// names `bad_verification_code` for this case.
    pub unknown_code: u32,
}

impl Default for DeviceCodeSettings {
    fn default() -> Self {
        Self {
            lifetime_secs: 900,
            interval_secs: 5,
            slow_down: true,
            slow_down_code: 70016,
            declined_error: "authorization_declined".into(),
            declined_code: 65004,
            redeemed_error: "expired_token".into(),
            redeemed_code: 70020,
            unknown_code: 70000,
        }
    }
}

/// See [`Settings::ca_refresh_ip`].
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum CaRefreshIp {
    /// Evaluate against the IP of the original interactive sign-in.
    OriginalSignIn,
    /// Evaluate against the peer address of the refresh request.
    RequestPeer,
}

/// A customer (or vendor) tenant.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Tenant {
    /// Tenant ID.
    pub id: Uuid,
    /// Organization display name.
    pub display_name: String,
    /// The Microsoft cloud the tenant lives in (`global`, `usgov`, `usgov-dod`, `china`): its
    /// endpoints are that cloud's (`{base}/clouds/<key>`), and the global authority refuses it.
    #[serde(default = "global_cloud", skip_serializing_if = "is_global_cloud")]
    pub cloud: String,
    /// Verified domains; the first is the initial `*.onmicrosoft.com` domain.
    pub domains: Vec<String>,
    /// The tenant's "users can consent to apps" setting.
    #[serde(default = "yes")]
    pub users_can_consent: bool,
    /// The tenant's Microsoft Entra ID plan. Reading the sign-in logs through Graph needs P1 or P2
    /// (entra-facts §12).
    #[serde(default)]
    pub entra_id_plan: EntraIdPlan,
    /// Users.
    #[serde(default)]
    pub users: Vec<User>,
    /// Groups.
    #[serde(default)]
    pub groups: Vec<Group>,
    /// Conditional access policies.
    #[serde(default)]
    pub ca_policies: Vec<CaPolicy>,
    /// Convenience for scenarios: apps already consented by an admin when the simulator starts.
    #[serde(default, skip_serializing)]
    pub preconsented_apps: Vec<Uuid>,
    /// Service principals (created by consent).
    #[serde(default)]
    pub service_principals: Vec<ServicePrincipal>,
    /// Delegated permission grants.
    #[serde(default)]
    pub oauth2_permission_grants: Vec<OAuth2PermissionGrant>,
    /// Application permission grants.
    #[serde(default)]
    pub app_role_assignments: Vec<AppRoleAssignment>,
}

/// A tenant's Microsoft Entra ID plan (its premium subscription, if any).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum EntraIdPlan {
    /// Microsoft Entra ID Free (no premium license): no sign-in logs through Graph.
    #[default]
    Free,
    /// Microsoft Entra ID P1.
    P1,
    /// Microsoft Entra ID P2.
    P2,
}

/// A user account.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct User {
    /// Object ID.
    pub id: Uuid,
    /// User principal name (sign-in name).
    pub upn: String,
    /// Display name.
    pub display_name: String,
    /// Given name.
    #[serde(default)]
    pub given_name: Option<String>,
    /// Surname.
    #[serde(default)]
    pub surname: Option<String>,
    /// Job title.
    #[serde(default)]
    pub job_title: Option<String>,
    /// Password (demo value).
    #[serde(serialize_with = "hint")]
    pub password: SecretString,
    /// Account enabled.
    #[serde(default = "yes")]
    pub enabled: bool,
    /// Account deleted (kept so that its tokens fail the way Microsoft's do).
    #[serde(default)]
    pub deleted: bool,
    /// The user must complete MFA at every interactive sign-in.
    #[serde(default)]
    pub mfa_required: bool,
    /// The fixed one-time code the MFA step accepts (demo value).
    #[serde(default, serialize_with = "hint_opt")]
    pub mfa_code: Option<SecretString>,
    /// Directory roles by template ID (display names are accepted in scenario files).
    #[serde(default)]
    pub roles: Vec<String>,
    /// Licenses.
    #[serde(default)]
    pub licenses: Vec<License>,
    /// Viva Engage "verified admin".
    #[serde(default)]
    pub viva_engage_verified_admin: bool,
    /// App roles assigned to the user, by the client ID of the app that defines them (role
    /// `value`s): the ID tokens the user gets for that app carry them in `roles` (entra-facts §2.5).
    #[serde(default)]
    pub app_roles: std::collections::BTreeMap<Uuid, Vec<String>>,
    /// Tokens issued before this instant are invalid (AADSTS50173).
    #[serde(default, with = "time::serde::rfc3339::option")]
    pub tokens_valid_from: Option<OffsetDateTime>,
}

/// A license assigned to a user.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct License {
    /// SKU ID.
    pub sku_id: Uuid,
    /// SKU part number, e.g. `ENTERPRISEPREMIUM`.
    pub sku_part_number: String,
    /// Service plans.
    #[serde(default)]
    pub service_plans: Vec<ServicePlan>,
}

/// A service plan inside a license.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ServicePlan {
    /// Service plan ID.
    pub service_plan_id: Uuid,
    /// Service plan name, e.g. `YAMMER_ENTERPRISE`.
    pub service_plan_name: String,
}

/// A group.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Group {
    /// Object ID.
    pub id: Uuid,
    /// Display name.
    pub display_name: String,
    /// Owners (UPNs or object IDs; stored as object IDs).
    #[serde(default)]
    pub owners: Vec<String>,
    /// Members (UPNs or object IDs; stored as object IDs).
    #[serde(default)]
    pub members: Vec<String>,
    /// Mail-enabled (Microsoft 365 group).
    #[serde(default = "yes")]
    pub mail_enabled: bool,
    /// Security-enabled.
    #[serde(default)]
    pub security_enabled: bool,
}

/// What a conditional access policy does when it applies.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum CaAction {
    /// Block: AADSTS53003.
    Block,
    /// Require MFA: AADSTS50076 unless the session completed MFA.
    RequireMfa,
    /// Require a compliant device: AADSTS53000 (DeviceNotCompliant). Redeeming a code or a refresh
    /// token is a non-interactive sign-in by the client's server, which presents no device, so it
    /// always fails; the interactive sign-in is taken to come from the administrator's managed
    /// device and passes. The OAuth `error` answered with it is UNVERIFIED (entra-facts §9):
    /// `invalid_grant`, like the verified CA block.
    RequireCompliantDevice,
    /// Require a Microsoft Entra (hybrid) joined device: AADSTS53001, evaluated like
    /// [`RequireCompliantDevice`](Self::RequireCompliantDevice).
    RequireDomainJoinedDevice,
    /// Require an approved client app: AADSTS53002, evaluated like
    /// [`RequireCompliantDevice`](Self::RequireCompliantDevice).
    RequireApprovedClientApp,
}

/// A conditional access policy: it applies to the users and apps in scope when the sign-in IP is
/// outside the allowed ranges (named locations). Empty `allowed_ranges` means "from anywhere".
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CaPolicy {
    /// Name shown in the state dump.
    pub name: String,
    /// Enabled.
    #[serde(default = "yes")]
    pub enabled: bool,
    /// Users in scope (UPNs or object IDs); empty = all users.
    #[serde(default)]
    pub users: Vec<String>,
    /// Client apps in scope (client IDs); empty = all apps.
    #[serde(default)]
    pub apps: Vec<Uuid>,
    /// Trusted IP ranges (named locations).
    #[serde(default)]
    pub allowed_ranges: Vec<IpNet>,
    /// Grant control.
    pub action: CaAction,
}

/// A client secret of an app registration.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ClientSecret {
    /// Key ID.
    pub key_id: Uuid,
    /// Secret value (demo value).
    #[serde(serialize_with = "hint")]
    pub value: SecretString,
    /// Expiry.
    #[serde(with = "time::serde::rfc3339")]
    pub end_date_time: OffsetDateTime,
    /// Friendly name (`displayName` of Graph's passwordCredential).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub display_name: Option<String>,
    /// When the secret became valid (`startDateTime`; `null` on reads when absent).
    #[serde(
        default,
        with = "time::serde::rfc3339::option",
        skip_serializing_if = "Option::is_none"
    )]
    pub start_date_time: Option<OffsetDateTime>,
}

/// A certificate registered on an app (`keyCredentials`).
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct KeyCredential {
    /// Key ID.
    pub key_id: Uuid,
    /// Display name (the subject, e.g. `CN=contoso-custom-app`).
    #[serde(default)]
    pub display_name: Option<String>,
    /// The certificate, PEM or base64 DER.
    pub certificate: String,
}

/// How an app is registered.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum SignInAudience {
    /// Multi-tenant.
    AzureADMultipleOrgs,
    /// Single-tenant.
    AzureADMyOrg,
}

/// An app registration (application object) in its home tenant.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct App {
    /// Application (client) ID.
    pub client_id: Uuid,
    /// Application object ID (derived from the client ID when absent).
    #[serde(default)]
    pub object_id: Option<Uuid>,
    /// The app's name in Entra ID.
    pub display_name: String,
    /// Home tenant (ID or domain).
    pub home_tenant: String,
    /// Key of the catalog app type this app stands for, if any.
    #[serde(default)]
    pub catalog_key: Option<String>,
    /// Sign-in audience.
    #[serde(default = "multi")]
    pub sign_in_audience: SignInAudience,
    /// Registered redirect URIs of the web platform (matched exactly): a code obtained with one of
    /// them is redeemed by a confidential client, with a secret or a certificate.
    #[serde(default)]
    pub redirect_uris: Vec<String>,
    /// "Allow public client flows": the app may use the device code grant without a credential
    /// (a public client, `azpacr` "0").
    #[serde(default)]
    pub allow_public_client: bool,
    /// Redirect URIs of the "mobile and desktop applications" platform (for example
    /// `http://localhost`, any port, or `https://login.microsoftonline.com/common/oauth2/nativeclient`):
    /// a code obtained with one of them, and the refresh tokens that follow, are redeemed without a
    /// credential. Such a platform makes its redirect URIs public whether or not
    /// `allow_public_client` is set [INF: the portal's toggle names the device code, ROPC and
    /// integrated Windows flows only].
    #[serde(default)]
    pub public_client_redirect_uris: Vec<String>,
    /// Client secrets.
    #[serde(default)]
    pub secrets: Vec<ClientSecret>,
    /// Certificates.
    #[serde(default)]
    pub certificates: Vec<KeyCredential>,
    /// Requested delegated permissions (`User.Read` for Graph, or `{resource uri}/{scope}`).
    #[serde(default)]
    pub delegated: Vec<String>,
    /// Requested application permissions (`Sites.FullControl.All` for Graph, or `{resource uri}/{role}`).
    #[serde(default)]
    pub application: Vec<String>,
}

/// Whether `requested` matches the registered redirect URI exactly. With
/// `loopback_any_port`, the port of `http://localhost` / `http://127.0.0.1` redirect URIs is ignored
/// (Microsoft's loopback exception, RFC 8252 §7.3).
pub(crate) fn redirect_matches(registered: &str, requested: &str, loopback_any_port: bool) -> bool {
    if registered == requested {
        return true;
    }
    if !loopback_any_port {
        return false;
    }
    match (url::Url::parse(registered), url::Url::parse(requested)) {
        (Ok(a), Ok(b)) => {
            let loopback =
                |u: &url::Url| matches!(u.host_str(), Some("localhost" | "127.0.0.1" | "[::1]"));
            a.scheme() == "http"
                && b.scheme() == "http"
                && loopback(&a)
                && a.host_str() == b.host_str()
                && a.path() == b.path()
                && a.query() == b.query()
        }
        _ => false,
    }
}

impl App {
    /// Whether `uri` is one of the app's public-client ("mobile and desktop applications")
    /// redirect URIs.
    pub(crate) fn is_public_redirect(&self, uri: &str, loopback_any_port: bool) -> bool {
        self.public_client_redirect_uris
            .iter()
            .any(|r| redirect_matches(r, uri, loopback_any_port))
    }
}

fn multi() -> SignInAudience {
    SignInAudience::AzureADMultipleOrgs
}

/// A resource API whose permissions apps request (Microsoft Graph is built in).
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ResourceApi {
    /// Application ID of the resource.
    pub app_id: Uuid,
    /// Display name, e.g. `Office 365 Exchange Online`.
    pub display_name: String,
    /// Identifier URI, e.g. `https://outlook.office365.com`; the token `aud`.
    pub identifier_uri: String,
    /// Permissions published by the resource.
    #[serde(default)]
    pub permissions: Vec<PermissionDef>,
}

/// A permission published by a resource API.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PermissionDef {
    /// Claim value, e.g. `Sites.FullControl.All`.
    pub value: String,
    /// Application role ID, if the permission exists as an application permission.
    #[serde(default)]
    pub role_id: Option<Uuid>,
    /// Delegated scope ID, if the permission exists as a delegated permission.
    #[serde(default)]
    pub scope_id: Option<Uuid>,
    /// The delegated scope needs an administrator's consent.
    #[serde(default)]
    pub admin_consent_required: bool,
}

/// A service principal in a tenant.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ServicePrincipal {
    /// Object ID (tenant-specific).
    pub id: Uuid,
    /// Application ID.
    pub app_id: Uuid,
    /// Display name.
    pub display_name: String,
    /// The publisher's tenant ID.
    pub app_owner_organization_id: Uuid,
    /// Creation time.
    #[serde(with = "time::serde::rfc3339")]
    pub created_date_time: OffsetDateTime,
}

/// A delegated permission grant.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct OAuth2PermissionGrant {
    /// Grant ID.
    pub id: String,
    /// Client service principal object ID.
    pub client_id: Uuid,
    /// `AllPrincipals` or `Principal`.
    pub consent_type: String,
    /// The user for `Principal` grants.
    #[serde(default)]
    pub principal_id: Option<Uuid>,
    /// Resource service principal object ID.
    pub resource_id: Uuid,
    /// Space-separated scope values.
    pub scope: String,
}

/// An application permission granted to a service principal.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AppRoleAssignment {
    /// Assignment ID.
    pub id: String,
    /// App role ID.
    pub app_role_id: Uuid,
    /// Client service principal object ID.
    pub principal_id: Uuid,
    /// Client display name.
    pub principal_display_name: String,
    /// Resource service principal object ID.
    pub resource_id: Uuid,
    /// Resource display name.
    pub resource_display_name: String,
    /// Creation time.
    #[serde(with = "time::serde::rfc3339")]
    pub created_date_time: OffsetDateTime,
}

fn global_cloud() -> String {
    crate::wellknown::GLOBAL_CLOUD.to_owned()
}

fn is_global_cloud(cloud: &str) -> bool {
    cloud == crate::wellknown::GLOBAL_CLOUD
}

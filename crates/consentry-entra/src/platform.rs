//! [`EntraPlatform`]: the domain's [`IdentityPlatform`] port implemented over [`EntraClient`].
//!
//! It turns domain requests (tenant, app profile client, code, refresh token) into token grants
//! and Graph reads, and every [`EntraError`] into a [`PlatformError`] with the matching
//! [`PlatformCause`] ([`platform_error`]). Idempotent calls (client credentials, refresh, Graph
//! reads) are retried on transient failures with a bounded [`RetryPolicy`]; the authorization
//! code is redeemed once (a retry after a lost answer could only fail with AADSTS54005).
//!
//! A sign-in's ID token is verified ([`IdTokenVerifier`]: signature against the authority's
//! JWKS, issuer, audience, validity period) before any of its claims is used; the domain compares
//! its nonce with the pending authorization's. The access token (meant for Graph, not for
//! Consentry) is only read for `ipaddr`, which the ID token does not carry.

use std::collections::BTreeMap;
use std::collections::BTreeSet;
use std::fmt;
use std::net::IpAddr;
use std::sync::Arc;

use async_trait::async_trait;
use consentry_catalog::{Catalog, UserFacts};
use consentry_certs::ClientCertificate;
use consentry_domain::{
    AccessToken, AppId, AppliedPolicy, ClientRef, CloudKey, ConsentrySignIn, DomainName,
    EvidenceUnavailable, Grants, IdentityPlatform, ObjectId, OrganizationFacts, PlatformCause,
    PlatformError, Refreshed, SignInLogEntry, SignInLogQuery, SignInRequest, SignedIn, TenantAt,
    TenantCloud, TenantId, Upn, VivaEngageFacts,
};

/// How many sign-in log entries one evidence read asks for (the failures among them are kept).
const SIGN_IN_LOG_PAGE: u32 = 50;
use secrecy::{ExposeSecret as _, SecretString};
use time::OffsetDateTime;
use url::Url;
use uuid::Uuid;

use crate::EntraClient;
use crate::clouds::Clouds;
use crate::error::{EntraError, GraphErrorKind};
use crate::graph::{AppRoleAssignment, OAuth2PermissionGrant, ServicePrincipal};
use crate::id_token::{IdTokenError, IdTokenExpectations, IdTokenVerifier};
use crate::retry::{RetryPolicy, with_retry};
use crate::token::{ClientCredential, TokenClaims, TokenResponse};
use crate::urls::{AdminConsentRequest, AuthorizeRequest, Prompt};
pub use consentry_protocol::diagnosis::{platform_error, platform_error_from_redirect};

/// The vendor's app registration for one app type: its client ID and how it authenticates.
#[derive(Debug, Clone)]
pub struct VendorApp {
    /// The application (client) ID, the same in every tenant.
    pub client_id: AppId,
    credential: VendorCredential,
}

/// A vendor app's credential: given once, or kept in files that are read again when they change.
#[derive(Debug, Clone)]
enum VendorCredential {
    Fixed(ClientCredential),
    Files(std::sync::Arc<crate::credential_files::CredentialFiles>),
}

impl VendorApp {
    /// A vendor app authenticating with a client secret (its value, not its ID).
    pub fn with_secret(client_id: AppId, secret: SecretString) -> Self {
        Self {
            client_id,
            credential: VendorCredential::Fixed(ClientCredential::Secret(secret)),
        }
    }

    /// A vendor app authenticating with a certificate (assertions PS256 + `x5t#S256`).
    pub fn with_certificate(client_id: AppId, certificate: ClientCertificate) -> Self {
        Self {
            client_id,
            credential: VendorCredential::Fixed(ClientCredential::certificate(certificate)),
        }
    }

    /// A vendor app whose secret or certificate is kept in files, read again whenever they change (a
    /// rotated credential is used without a restart).
    pub fn with_credential_files(
        client_id: AppId,
        files: crate::credential_files::CredentialFiles,
    ) -> Self {
        Self {
            client_id,
            credential: VendorCredential::Files(std::sync::Arc::new(files)),
        }
    }

    /// The credential to use now. `Debug` never shows the secret or the key.
    pub fn credential(&self) -> ClientCredential {
        match &self.credential {
            VendorCredential::Fixed(c) => c.clone(),
            VendorCredential::Files(f) => f.current(),
        }
    }
}

/// The Microsoft identity platform and Graph as the domain sees them ([`IdentityPlatform`]).
///
/// ```no_run
/// use std::collections::BTreeMap;
/// use consentry_domain::AppId;
/// use consentry_entra::{EntraClient, EntraConfig};
/// use consentry_entra::platform::{EntraPlatform, VendorApp};
/// use secrecy::SecretString;
///
/// # fn run() -> Result<(), consentry_entra::EntraError> {
/// let client = EntraClient::new(EntraConfig::default())?;
/// let mut apps = BTreeMap::new();
/// apps.insert(
///     "insights-m365".to_owned(),
///     VendorApp::with_secret(
///         AppId::parse("6731de76-14a6-49ae-97bc-6eba6914391e").unwrap(),
///         SecretString::from("vendor secret value"),
///     ),
/// );
/// let platform = EntraPlatform::new(client, "https://consentry.example.com/oauth/callback".into(), apps)?;
/// # let _ = platform; Ok(()) }
/// ```
pub struct EntraPlatform {
    /// The configured clouds: the global one always ([`EntraPlatform::new`]), others added with
    /// [`EntraPlatform::with_cloud`].
    clouds: BTreeMap<CloudKey, CloudSide>,
    redirect_uri: String,
    consentry_app: Option<VendorApp>,
    console_redirect_uri: Option<String>,
    retry: RetryPolicy,
    sign_in_prompt: Option<Prompt>,
    catalog: Arc<Catalog>,
    clock: Arc<dyn consentry_domain::Clock>,
    certificates: CertificateCache,
}

/// One cloud as Consentry reaches it: its client (authority and Graph URLs, Graph's resource
/// identifier there), the vendor's registrations in it, and the verifier of its ID tokens (issuer
/// `{its authority}/{tid}/v2.0`, keys from its discovery).
struct CloudSide {
    client: EntraClient,
    vendor_apps: BTreeMap<String, VendorApp>,
    id_tokens: IdTokenVerifier,
    /// The vendor's own tenant in this cloud (`vendor_tenant`): home of its registrations.
    vendor_tenant: Option<String>,
    /// Microsoft Graph's app roles, value by lowercase app-role ID, as read in full once from Graph's
    /// service principal. Graph's permission IDs are published as one table for all tenants
    /// (entra-facts §5.2, permissions-ids), so a check reads only Graph's
    /// service principal's ID and names the roles from here; a role not seen yet makes the check
    /// read Graph's app roles again (at most once per [`GRAPH_ROLES_REREAD`]). Whether a national
    /// cloud's Graph uses the global IDs is UNVERIFIED: each cloud keeps its own.
    graph_roles: std::sync::RwLock<GraphRoles>,
    /// Held while Graph's app roles are read in full, so that the checks starting together read
    /// them once, not once each.
    graph_roles_reading: tokio::sync::Mutex<()>,
}

/// Graph's app roles as last read in full ([`CloudSide::graph_roles`]).
#[derive(Default)]
struct GraphRoles {
    /// Value by lowercase app-role ID.
    values: std::collections::HashMap<String, String>,
    /// When they were last read in full.
    read_at: Option<std::time::Instant>,
}

/// How long after reading Graph's app roles a role it did not define (one Microsoft added since,
/// or an assignment naming no role) is not a reason to read them again.
const GRAPH_ROLES_REREAD: std::time::Duration = std::time::Duration::from_secs(3600);

impl CloudSide {
    /// The value of Graph's app role `id`, when known ([`Self::graph_roles`]).
    fn graph_role(&self, id: &str) -> Option<String> {
        self.graph_roles
            .read()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .values
            .get(&id.to_ascii_lowercase())
            .cloned()
    }

    /// Whether Graph's app roles should be read (again) to name `ids`: one of them is unknown, and
    /// they were not read in the last [`GRAPH_ROLES_REREAD`].
    fn graph_roles_to_read<'a>(&self, mut ids: impl Iterator<Item = &'a str>) -> bool {
        let known = self
            .graph_roles
            .read()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        let recent = known
            .read_at
            .is_some_and(|at| at.elapsed() < GRAPH_ROLES_REREAD);
        !recent && ids.any(|id| !known.values.contains_key(&id.to_ascii_lowercase()))
    }

    /// Keeps the app roles of Graph's service principal `graph`, read in full.
    fn learn_graph_roles(&self, graph: &ServicePrincipal) {
        let mut known = self
            .graph_roles
            .write()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        if graph.app_roles.is_empty() {
            // Its ID only (`$select`), not a read of its roles.
            return;
        }
        known.read_at = Some(std::time::Instant::now());
        for role in &graph.app_roles {
            if let Some(value) = &role.value {
                known
                    .values
                    .insert(role.id.to_ascii_lowercase(), value.clone());
            }
        }
    }

    /// Graph's `/.default` scope in this cloud.
    fn graph_default_scope(&self) -> String {
        format!("{}.default", self.client.config().graph_resource)
    }

    /// The granted scopes of a token response in their short form (`User.Read`, `openid`).
    fn short_scopes(&self, token: &TokenResponse) -> Vec<String> {
        let resource = self.client.config().graph_resource.as_str();
        token
            .scopes()
            .into_iter()
            .map(|s| s.strip_prefix(resource).unwrap_or(s).to_owned())
            .collect()
    }
}

/// Custom apps' certificates, parsed, by the SHA-256 of their password and `.pfx` archive. Opening a
/// `.pfx` derives its keys with PBKDF2 (twice: MAC and key bag), which costs more CPU than the
/// signature a check makes with the key; a profile's archive does not change between checks, so it is
/// opened once. Bounded: emptied when it holds [`CertificateCache::MAX`] entries.
#[derive(Default)]
struct CertificateCache(std::sync::Mutex<std::collections::HashMap<[u8; 32], ClientCertificate>>);

impl CertificateCache {
    const MAX: usize = 4096;

    fn key(pfx: &[u8], password: &str) -> [u8; 32] {
        use sha2::{Digest as _, Sha256};
        let mut h = Sha256::new();
        h.update((password.len() as u64).to_le_bytes());
        h.update(password.as_bytes());
        h.update(pfx);
        h.finalize().into()
    }

    fn lock(
        &self,
    ) -> std::sync::MutexGuard<'_, std::collections::HashMap<[u8; 32], ClientCertificate>> {
        self.0
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    /// The archive's certificate: cached while it is within its validity period, otherwise opened
    /// again (so an expired or not yet valid certificate gets `from_pfx`'s precise error).
    fn open(
        &self,
        pfx: &[u8],
        password: &str,
        now: OffsetDateTime,
    ) -> Result<ClientCertificate, consentry_certs::PfxError> {
        let key = Self::key(pfx, password);
        if let Some(c) = self.lock().get(&key)
            && c.not_before() <= now
            && now <= c.not_after()
        {
            return Ok(c.clone());
        }
        let certificate = ClientCertificate::from_pfx(pfx, password, now)?;
        let mut map = self.lock();
        if map.len() >= Self::MAX {
            map.clear();
        }
        map.insert(key, certificate.clone());
        Ok(certificate)
    }
}

impl fmt::Debug for EntraPlatform {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let clouds: BTreeMap<&str, (&str, &str, &BTreeMap<String, VendorApp>)> = self
            .clouds
            .iter()
            .map(|(k, s)| {
                let c = s.client.config();
                (
                    k.as_str(),
                    (c.authority.as_str(), c.graph.as_str(), &s.vendor_apps),
                )
            })
            .collect();
        f.debug_struct("EntraPlatform")
            .field("clouds", &clouds)
            .field("redirect_uri", &self.redirect_uri)
            .field("consentry_app", &self.consentry_app)
            .field("retry", &self.retry)
            .field("sign_in_prompt", &self.sign_in_prompt)
            .finish_non_exhaustive()
    }
}

impl EntraPlatform {
    /// Builds the adapter. `redirect_uri` is Consentry's callback, registered on every vendor
    /// app (and on customers' custom apps). `vendor_apps` maps catalog app-type keys to the
    /// vendor's registrations. Fails when the redirect URI is not an absolute http(s) URL
    /// without fragment.
    pub fn new(
        client: EntraClient,
        redirect_uri: String,
        vendor_apps: BTreeMap<String, VendorApp>,
    ) -> Result<Self, EntraError> {
        match Url::parse(&redirect_uri) {
            Ok(u) if matches!(u.scheme(), "https" | "http") && u.fragment().is_none() => {}
            _ => {
                return Err(EntraError::Config(format!(
                    "the redirect URI `{redirect_uri}` is not an absolute http(s) URL without fragment: give Consentry's callback URL as registered on the apps"
                )));
            }
        }
        let mut clouds = BTreeMap::new();
        clouds.insert(
            CloudKey::global(),
            CloudSide {
                client,
                vendor_apps,
                id_tokens: IdTokenVerifier::new(),
                vendor_tenant: None,
                graph_roles: Default::default(),
                graph_roles_reading: tokio::sync::Mutex::new(()),
            },
        );
        Ok(Self {
            clouds,
            redirect_uri,
            consentry_app: None,
            console_redirect_uri: None,
            retry: RetryPolicy::default(),
            sign_in_prompt: Some(Prompt::SelectAccount),
            catalog: Arc::new(Catalog::builtin()),
            clock: Arc::new(consentry_domain::SystemClock),
            certificates: CertificateCache::default(),
        })
    }

    /// Consentry's own multi-tenant app registration ([`ClientRef::Consentry`]): the console's
    /// "Sign in with Microsoft" and connecting a tenant by administrator consent.
    pub fn with_consentry_app(mut self, app: VendorApp) -> Self {
        self.consentry_app = Some(app);
        self
    }

    /// The console's "Sign in with Microsoft" callback (`{public_url}/console/sign-in/microsoft/callback`),
    /// registered on Consentry's own app.
    pub fn with_console_redirect_uri(mut self, uri: String) -> Self {
        self.console_redirect_uri = Some(uri);
        self
    }

    pub(crate) fn console_redirect_uri(&self) -> Option<&str> {
        self.console_redirect_uri.as_deref()
    }

    pub(crate) fn consentry_app_id(&self) -> Option<AppId> {
        self.consentry_app.as_ref().map(|a| a.client_id)
    }

    pub(crate) fn credential_of(
        &self,
        client: &ClientRef,
    ) -> Result<(String, ClientCredential), PlatformError> {
        self.credential(&CloudKey::global(), client)
    }

    pub(crate) fn id_token_verifier(&self) -> &IdTokenVerifier {
        &self.global().id_tokens
    }

    pub(crate) fn now(&self) -> OffsetDateTime {
        self.clock.now()
    }

    pub(crate) fn retry_policy(&self) -> &RetryPolicy {
        &self.retry
    }

    /// Adds (or replaces) a cloud: tenants in `cloud` are reached through `client` (its authority
    /// and Graph URLs; its `graph_resource` should be the cloud's, [`crate::clouds::Cloud::graph_resource`])
    /// with the vendor's registrations in that cloud. `new`'s client is the global cloud's.
    pub fn with_cloud(
        mut self,
        cloud: CloudKey,
        client: EntraClient,
        vendor_apps: BTreeMap<String, VendorApp>,
    ) -> Self {
        self.clouds.insert(
            cloud,
            CloudSide {
                client,
                vendor_apps,
                id_tokens: IdTokenVerifier::new(),
                vendor_tenant: None,
                graph_roles: Default::default(),
                graph_roles_reading: tokio::sync::Mutex::new(()),
            },
        );
        self
    }

    /// The vendor's own tenant in `cloud` (`vendor_tenant`, `[clouds.<key>] vendor_tenant`): the home
    /// of its registrations, where each reads its own ([`IdentityPlatform::vendor_registrations`]).
    /// Ignored for a cloud not configured.
    pub fn with_vendor_tenant(mut self, cloud: &CloudKey, tenant: String) -> Self {
        if let Some(side) = self.clouds.get_mut(cloud) {
            side.vendor_tenant = Some(tenant);
        }
        self
    }

    /// Every configured vendor registration to read: its cloud, which app, the cloud's client, the
    /// home tenant (when configured) and the app's credential. Consentry's own app is in the global
    /// cloud.
    pub(crate) fn registrations_to_read(
        &self,
    ) -> Vec<(
        CloudKey,
        consentry_domain::VendorAppKey,
        &EntraClient,
        Option<&str>,
        &VendorApp,
    )> {
        let mut out = Vec::new();
        for (cloud, side) in &self.clouds {
            for (key, app) in &side.vendor_apps {
                out.push((
                    cloud.clone(),
                    consentry_domain::VendorAppKey::AppType(key.clone()),
                    &side.client,
                    side.vendor_tenant.as_deref(),
                    app,
                ));
            }
        }
        if let Some(app) = &self.consentry_app {
            let global = self.global();
            out.push((
                CloudKey::global(),
                consentry_domain::VendorAppKey::ConsentryApp,
                &global.client,
                global.vendor_tenant.as_deref(),
                app,
            ));
        }
        out
    }

    /// Each configured cloud's client (its authority and Graph), the global one first.
    pub fn cloud_clients(&self) -> Vec<(&CloudKey, &EntraClient)> {
        let mut out: Vec<(&CloudKey, &EntraClient)> =
            self.clouds.iter().map(|(k, s)| (k, &s.client)).collect();
        out.sort_by_key(|(k, _)| !k.is_global());
        out
    }

    /// The keys of the configured clouds.
    pub fn cloud_keys(&self) -> impl Iterator<Item = &CloudKey> {
        self.clouds.keys()
    }

    /// The configured side of a cloud; a tenant in a cloud Consentry is not configured for is
    /// [`PlatformCause::NotConfigured`], naming the configuration to add.
    fn side(&self, cloud: &CloudKey) -> Result<&CloudSide, PlatformError> {
        self.clouds.get(cloud).ok_or_else(|| PlatformError {
            cause: PlatformCause::NotConfigured,
            aadsts: None,
            error: None,
            message: format!(
                "Consentry is not configured for the {cloud} cloud: add [clouds.{cloud}.apps.<app type>] registrations (and [entra.clouds.{cloud}] to point it elsewhere than Microsoft) to its configuration"
            ),
        })
    }

    /// Replaces the retry policy used for idempotent calls (default: [`RetryPolicy::default`]).
    pub fn with_retry_policy(mut self, policy: RetryPolicy) -> Self {
        self.retry = policy;
        self
    }

    /// The `prompt` of sign-in URLs: `select_account` by default (the admin may pick another
    /// account than the one signed in to the browser); `None` sends no prompt.
    pub fn with_sign_in_prompt(mut self, prompt: Option<Prompt>) -> Self {
        self.sign_in_prompt = prompt;
        self
    }

    /// The catalog consulted for well-known Graph app-role IDs and for which app types have
    /// delegated permissions (default: the built-in catalog).
    pub fn with_catalog(mut self, catalog: Arc<Catalog>) -> Self {
        self.catalog = catalog;
        self
    }

    /// The clock ID tokens' `exp` and `nbf` are checked against (default: the system clock; tests
    /// that move entra-sim's clock move this one with it).
    pub fn with_clock(mut self, clock: Arc<dyn consentry_domain::Clock>) -> Self {
        self.clock = clock;
        self
    }

    /// The global cloud's client.
    pub fn client(&self) -> &EntraClient {
        &self.global().client
    }

    fn global(&self) -> &CloudSide {
        // `new` always inserts the global cloud and nothing removes it.
        self.clouds
            .get(&CloudKey::global())
            .or_else(|| self.clouds.values().next())
            .expect("the global cloud is configured")
    }

    /// Consentry's callback URL.
    pub fn redirect_uri(&self) -> &str {
        &self.redirect_uri
    }

    /// Redeems an authorization code at `tenant` (a GUID, or `organizations`) of the cloud `side`
    /// (`cloud`) and verifies the ID token for it: shared by re-authorization sign-ins and
    /// Consentry's own sign-in.
    #[allow(clippy::too_many_arguments)]
    async fn redeem_at(
        &self,
        side: &CloudSide,
        cloud: &CloudKey,
        tenant: &str,
        client: &ClientRef,
        code: &str,
        code_verifier: &SecretString,
        redirect_uri: &str,
        scopes: &[String],
    ) -> Result<SignedIn, PlatformError> {
        let (client_id, credential) = self.credential(cloud, client)?;
        let code = SecretString::from(code.to_owned());
        // Not retried: a code is single-use, so a retry after a lost answer fails with 54005.
        let token = side
            .client
            .redeem_code(
                tenant,
                &client_id,
                &credential,
                &code,
                redirect_uri,
                code_verifier,
                scopes,
            )
            .await
            .map_err(|e| platform_error(&e))?;
        // The ID token is verified before any claim is used (openid is always requested).
        let id_token = token
            .id_token
            .as_deref()
            .ok_or_else(|| id_token_error(&IdTokenError::Missing))?;
        let (id_claims, _) = side
            .id_tokens
            .verify(
                &side.client,
                id_token,
                &IdTokenExpectations {
                    tenant,
                    client_id: &client_id,
                    now: self.clock.now(),
                },
            )
            .await
            .map_err(|e| id_token_error(&e))?;
        let id_claims = Some(id_claims);
        // Only for `ipaddr` (see the module documentation); never for identity.
        let at_claims = token.access_token_claims().ok().map(|c| TokenClaims {
            ipaddr: c.ipaddr,
            ..TokenClaims::default()
        });
        let (idc, atc) = (id_claims.as_ref(), at_claims.as_ref());
        let oid = first(idc, atc, |c| c.oid.as_deref()).ok_or_else(|| {
            protocol_error("the sign-in's tokens carry no `oid` claim: the user cannot be identified; report it with the tenant ID".into())
        })?;
        let object_id = ObjectId::parse(oid)
            .map_err(|e| protocol_error(format!("the sign-in's `oid` claim is unusable: {e}")))?;
        let tid = first(idc, atc, |c| c.tid.as_deref()).ok_or_else(|| {
            protocol_error("the sign-in's tokens carry no `tid` claim: the tenant cannot be confirmed; report it".into())
        })?;
        let signed_tenant = TenantId::parse(tid)
            .map_err(|e| protocol_error(format!("the sign-in's `tid` claim is unusable: {e}")))?;
        let upn = first(idc, atc, TokenClaims::user_principal).ok_or_else(|| {
            protocol_error("the sign-in's tokens carry neither `upn` nor `preferred_username`: the user's sign-in name is unknown".into())
        })?;
        let upn = Upn::parse(upn)
            .map_err(|e| protocol_error(format!("the sign-in's user name is unusable: {e}")))?;
        let ip = first(idc, atc, |c| c.ipaddr.as_deref()).and_then(|s| s.parse::<IpAddr>().ok());
        let nonce = idc.and_then(|c| c.nonce.clone());
        Ok(SignedIn {
            object_id,
            upn,
            ip,
            tenant: signed_tenant,
            nonce,
            granted_scopes: side.short_scopes(&token),
            access_token: token.access_token,
            refresh_token: token.refresh_token,
        })
    }

    /// The client ID and credential a [`ClientRef`] stands for in a cloud.
    fn credential(
        &self,
        cloud: &CloudKey,
        client: &ClientRef,
    ) -> Result<(String, ClientCredential), PlatformError> {
        match client {
            ClientRef::Vendor { app_type } => {
                let side = self.side(cloud)?;
                let app = side.vendor_apps.get(app_type).ok_or_else(|| PlatformError {
                    cause: PlatformCause::NotConfigured,
                    aadsts: None,
                    error: None,
                    message: if cloud.is_global() {
                        format!(
                            "no vendor app is configured for the app type `{app_type}`: add its application (client) ID and client secret or certificate to Consentry's configuration ([apps.{app_type}])"
                        )
                    } else {
                        format!(
                            "no vendor app is configured for the app type `{app_type}` in the {cloud} cloud: register the app in that cloud and add it to Consentry's configuration ([clouds.{cloud}.apps.{app_type}])"
                        )
                    },
                })?;
                Ok((app.client_id.to_string(), app.credential()))
            }
            ClientRef::Consentry => {
                let app = self.consentry_app.as_ref().ok_or_else(|| PlatformError {
                    cause: PlatformCause::NotConfigured,
                    aadsts: None,
                    error: None,
                    message: "Consentry's own app registration is not configured: set `[consentry_app]` (client_id and a client secret or certificate) in Consentry's configuration".into(),
                })?;
                Ok((app.client_id.to_string(), app.credential()))
            }
            ClientRef::Custom {
                app_id,
                pfx,
                password,
            } => {
                let certificate = self
                    .certificates
                    .open(
                        pfx.expose_secret(),
                        password.expose_secret(),
                        OffsetDateTime::now_utc(),
                    )
                    .map_err(|e| PlatformError {
                        cause: PlatformCause::Other,
                        aadsts: None,
                        error: Some("invalid_pfx".into()),
                        message: format!("the custom app's .pfx cannot be used: {e}"),
                    })?;
                Ok((
                    app_id.to_string(),
                    ClientCredential::certificate(certificate),
                ))
            }
        }
    }

    /// Whether the app behind `client` is known (from the catalog) to have no delegated
    /// permissions, so that its delegated grants do not matter.
    fn application_only(&self, client: &ClientRef) -> bool {
        match client {
            ClientRef::Vendor { app_type } => self
                .catalog
                .app_type(app_type)
                .is_some_and(|a| a.delegated_scopes().next().is_none()),
            ClientRef::Consentry | ClientRef::Custom { .. } => false,
        }
    }

    /// Graph application-permission names by app-role ID, from the catalog (used when the app
    /// may not read Microsoft Graph's service principal).
    fn catalog_role_names(&self) -> BTreeMap<Uuid, String> {
        self.catalog
            .app_types
            .iter()
            .flat_map(|a| a.application_roles())
            .filter_map(|p| p.id.map(|id| (id, p.name.clone())))
            .collect()
    }

    async fn app_only_token(
        &self,
        side: &CloudSide,
        tenant: TenantId,
        client_id: &str,
        credential: &ClientCredential,
    ) -> Result<TokenResponse, EntraError> {
        let tenant = tenant.to_string();
        let scope = side.graph_default_scope();
        with_retry(&self.retry, || {
            side.client
                .client_credentials(&tenant, client_id, credential, &scope)
        })
        .await
    }

    /// The grants from one batch of [`EntraClient::consent_reads`]; `None` when a read must be
    /// made again on its own (a transient failure inside the batch, or a read by appId that Graph
    /// refused as a bad request or did not find while the service principal exists).
    fn grants_from(
        &self,
        side: &CloudSide,
        reads: crate::ConsentReads,
        client: &ClientRef,
        client_id: &str,
    ) -> Result<Option<Grants>, PlatformError> {
        let again = |e: &EntraError| {
            e.is_transient()
                || matches!(e, EntraError::Graph(g)
                    if matches!(g.kind, GraphErrorKind::BadRequest | GraphErrorKind::NotFound))
        };
        let sp = match reads.service_principal {
            Ok(Some(sp)) => sp,
            // No service principal: nothing is granted (the reads by appId then fail, unread).
            Ok(None) => return Ok(Some(Grants::default())),
            Err(e) if e.is_transient() => return Ok(None),
            Err(e) => return Err(platform_error(&e)),
        };
        let assignments = match reads.app_role_assignments {
            Ok(a) => a,
            Err(e) if again(&e) => {
                tracing::debug!(error = %e, "app role assignments by appId not read; read by object ID");
                return Ok(None);
            }
            Err(e) => return Err(platform_error(&e)),
        };
        let graph_sp = match reads.graph_service_principal {
            Ok(g) => g,
            // Reading another app's service principal needs Application.Read.All or
            // Directory.Read.All; without it, the catalog's well-known IDs name the roles.
            Err(EntraError::Graph(e)) if e.kind == GraphErrorKind::AccessDenied => None,
            Err(e) if e.is_transient() => return Ok(None),
            Err(e) => return Err(platform_error(&e)),
        };
        let (grants, delegated_readable) = match reads.oauth2_permission_grants {
            Ok(g) => (g, true),
            Err(EntraError::Graph(e)) if e.kind == GraphErrorKind::AccessDenied => {
                self.delegated_not_readable(client, client_id, &e.code);
                (Vec::new(), false)
            }
            Err(e) if again(&e) => {
                tracing::debug!(error = %e, "delegated grants by appId not read; read by object ID");
                return Ok(None);
            }
            Err(e) => return Err(platform_error(&e)),
        };
        let (app_roles, graph_sp_id) = self.app_role_names(side, &assignments, graph_sp);
        Ok(Some(grants_of(
            &sp,
            app_roles,
            graph_sp_id,
            &grants,
            delegated_readable,
        )?))
    }

    /// Logs that the app may not list its delegated grants: quietly when its app type has no
    /// delegated permissions, as a warning with what to do otherwise.
    fn delegated_not_readable(&self, client: &ClientRef, client_id: &str, graph_error: &str) {
        if self.application_only(client) {
            tracing::debug!(
                client_id = %client_id,
                "delegated grants not readable; the app type has no delegated permissions"
            );
        } else {
            tracing::warn!(
                client_id = %client_id,
                graph_error = %graph_error,
                "Microsoft Graph refused to list the app's delegated permission grants: add the application permission DelegatedPermissionGrant.Read.All (or Directory.Read.All) to the app, with admin consent, so that delegated consent can be verified; reported as none"
            );
        }
    }

    /// The grants read one request at a time, by the service principal's object ID: its service
    /// principal first, then the other three reads at once (three round trips after the token).
    async fn grants_one_by_one(
        &self,
        side: &CloudSide,
        client: &ClientRef,
        client_id: &str,
        token: &SecretString,
    ) -> Result<Grants, PlatformError> {
        let c = &side.client;
        // An app may read its own service principal and its app role assignments without
        // permissions (entra-facts §4.6).
        let Some(sp) = with_retry(&self.retry, || {
            c.service_principal_by_app_id(token, client_id)
        })
        .await
        .map_err(|e| platform_error(&e))?
        else {
            return Ok(Grants::default());
        };
        // The app role assignments, Graph's own service principal (to name the roles by) and the
        // delegated grants are independent reads: asked at once, a check waits for one Graph round
        // trip after its service principal instead of three.
        let roles = async {
            let (assignments, graph_sp) = tokio::try_join!(
                with_retry(&self.retry, || c.app_role_assignments(token, &sp.id)),
                self.graph_service_principal(c, token),
            )
            .map_err(|e| platform_error(&e))?;
            Ok::<_, PlatformError>(self.app_role_names(side, &assignments, graph_sp))
        };
        // Listing delegated grants needs DelegatedPermissionGrant.Read.All or Directory.Read.All
        // even for the app's own grants (entra-facts §4.7; entra-sim answers the same). Without
        // it the delegated lists stay empty: the app-role check (what application-permission
        // consents need) still works, and a delegated check then reports the scopes as missing.
        let delegated = async {
            match with_retry(&self.retry, || c.oauth2_permission_grants(token, &sp.id)).await {
                Ok(g) => Ok((g, true)),
                Err(EntraError::Graph(e)) if e.kind == GraphErrorKind::AccessDenied => {
                    self.delegated_not_readable(client, client_id, &e.code);
                    Ok((Vec::new(), false))
                }
                Err(e) => Err(platform_error(&e)),
            }
        };
        let ((app_roles, graph_sp_id), (grants, delegated_readable)): (
            _,
            (Vec<OAuth2PermissionGrant>, bool),
        ) = tokio::try_join!(roles, delegated)?;
        grants_of(&sp, app_roles, graph_sp_id, &grants, delegated_readable)
    }

    /// Microsoft Graph's service principal in the tenant, to name app roles by; `None` when the app may
    /// not read it.
    async fn graph_service_principal(
        &self,
        client: &EntraClient,
        token: &SecretString,
    ) -> Result<Option<ServicePrincipal>, EntraError> {
        match with_retry(&self.retry, || client.graph_service_principal(token)).await {
            Ok(sp) => Ok(sp),
            // Reading another app's service principal needs Application.Read.All or
            // Directory.Read.All; without it, the catalog's well-known IDs name the roles.
            Err(EntraError::Graph(e)) if e.kind == GraphErrorKind::AccessDenied => Ok(None),
            Err(e) => Err(e),
        }
    }

    /// The names of the Graph app roles assigned, and Graph's service principal ID when known.
    fn app_role_names(
        &self,
        side: &CloudSide,
        assignments: &[AppRoleAssignment],
        graph_sp: Option<ServicePrincipal>,
    ) -> (Vec<String>, Option<String>) {
        let mut names = BTreeSet::new();
        match &graph_sp {
            Some(graph) => {
                side.learn_graph_roles(graph);
                for a in assignments.iter().filter(|a| a.resource_id == graph.id) {
                    match side.graph_role(&a.app_role_id) {
                        Some(v) => {
                            names.insert(v);
                        }
                        None => tracing::warn!(
                            app_role_id = %a.app_role_id,
                            "an app role assignment names no app role of Microsoft Graph; ignored"
                        ),
                    }
                }
            }
            None => {
                let known = self.catalog_role_names();
                for a in assignments {
                    let name = Uuid::parse_str(&a.app_role_id)
                        .ok()
                        .and_then(|id| known.get(&id));
                    match name {
                        Some(n) => {
                            names.insert(n.clone());
                        }
                        None => tracing::warn!(
                            app_role_id = %a.app_role_id,
                            resource = a.resource_display_name.as_deref().unwrap_or_default(),
                            "an app role assignment could not be named (Microsoft Graph's service principal is not readable and the ID is not in the catalog); ignored"
                        ),
                    }
                }
            }
        }
        (names.into_iter().collect(), graph_sp.map(|g| g.id))
    }
}

/// The grants of the service principal `sp`: its Graph app roles, and the delegated grants whose
/// client it is (for Microsoft Graph, when Graph's service principal ID is known), admin consents
/// apart from each user's.
fn grants_of(
    sp: &ServicePrincipal,
    app_roles: Vec<String>,
    graph_sp_id: Option<String>,
    grants: &[OAuth2PermissionGrant],
    delegated_readable: bool,
) -> Result<Grants, PlatformError> {
    let sp_object = ObjectId::parse(&sp.id).map_err(|e| {
        protocol_error(format!(
            "Graph answered a service principal ID that is not a GUID: {e}"
        ))
    })?;
    let mut all = BTreeSet::new();
    let mut by_user: BTreeMap<ObjectId, BTreeSet<String>> = BTreeMap::new();
    for g in grants
        .iter()
        .filter(|g| g.client_id.eq_ignore_ascii_case(&sp.id))
        .filter(|g| graph_sp_id.as_ref().is_none_or(|id| &g.resource_id == id))
    {
        let scopes = g.scopes().into_iter().map(str::to_owned);
        if g.is_admin_consent() {
            all.extend(scopes);
        } else if let Some(user) = g
            .principal_id
            .as_deref()
            .and_then(|p| ObjectId::parse(p).ok())
        {
            by_user.entry(user).or_default().extend(scopes);
        }
    }
    Ok(Grants {
        service_principal: Some(sp_object),
        app_roles,
        delegated_all_principals: all.into_iter().collect(),
        delegated_by_user: by_user
            .into_iter()
            .map(|(u, s)| (u, s.into_iter().collect()))
            .collect(),
        delegated_readable,
    })
}

/// A refused ID token: [`PlatformCause::IdTokenRejected`] (transient when the keys could not be
/// fetched for a transient reason).
pub(crate) fn id_token_error(e: &IdTokenError) -> PlatformError {
    tracing::warn!(error = %e, "an ID token was refused");
    match e {
        IdTokenError::Keys(inner) => PlatformError {
            message: e.to_string(),
            ..platform_error(inner)
        },
        _ => PlatformError {
            cause: PlatformCause::IdTokenRejected,
            aadsts: None,
            error: Some("invalid_id_token".into()),
            message: e.to_string(),
        },
    }
}

/// A protocol-level problem with a successful answer (a claim missing, …).
fn protocol_error(message: String) -> PlatformError {
    PlatformError {
        cause: PlatformCause::Other,
        aadsts: None,
        error: None,
        message,
    }
}

fn first<'a>(
    id: Option<&'a TokenClaims>,
    at: Option<&'a TokenClaims>,
    get: impl Fn(&'a TokenClaims) -> Option<&'a str>,
) -> Option<&'a str> {
    id.and_then(&get).or_else(|| at.and_then(&get))
}

#[async_trait]
impl IdentityPlatform for EntraPlatform {
    fn vendor_client_id(&self, cloud: &CloudKey, app_type: &str) -> Option<AppId> {
        self.clouds
            .get(cloud)?
            .vendor_apps
            .get(app_type)
            .map(|a| a.client_id)
    }

    fn consentry_client_id(&self) -> Option<AppId> {
        self.consentry_app.as_ref().map(|a| a.client_id)
    }

    async fn vendor_registrations(&self) -> Vec<consentry_domain::VendorRegistration> {
        crate::registrations::read_all(self).await
    }

    fn throttled_for(&self, tenant: TenantId) -> Option<std::time::Duration> {
        let tenant = tenant.to_string();
        self.clouds
            .values()
            .filter_map(|side| side.client.paused_for(&tenant))
            .max()
    }

    async fn tenant_cloud(&self, tenant: &str) -> Result<TenantCloud, PlatformError> {
        // Asked at the configured global authority, which answers for every tenant and says where
        // it lives (entra-facts §11); a national tenant's cloud must then be configured.
        let global = self.global();
        let meta = with_retry(&self.retry, || global.client.tenant_metadata(tenant))
            .await
            .map_err(|e| platform_error(&e))?;
        let id = meta.tenant_id().ok_or_else(|| {
            protocol_error(format!(
                "the OpenID metadata of {tenant} names no tenant ID in its issuer"
            ))
        })?;
        let cloud = Clouds::builtin()
            .identify(&meta)
            .map_err(|e| protocol_error(e.to_string()))?;
        // A cloud of the table that is not configured is refused where it is used (`side`), so a
        // tenant can be connected before its cloud's registrations are added; here it is reported
        // only in the log.
        if !self.clouds.contains_key(&cloud.key) {
            tracing::warn!(tenant = %id, cloud = %cloud.key, "a tenant lives in a cloud Consentry is not configured for");
        }
        Ok(TenantCloud {
            id,
            cloud: cloud.key.clone(),
        })
    }

    fn admin_consent_url(&self, tenant: &TenantAt, client_id: AppId, state: &str) -> String {
        let side = match self.side(&tenant.cloud) {
            Ok(side) => side,
            Err(e) => return self.error_to_callback(&EntraError::Config(e.message), state),
        };
        let req = AdminConsentRequest {
            tenant: tenant.id.to_string(),
            client_id: client_id.to_string(),
            redirect_uri: self.redirect_uri.clone(),
            state: state.to_owned(),
            scope: None,
        };
        match side.client.admin_consent_url(&req) {
            Ok(url) => url.into(),
            Err(e) => self.error_to_callback(&e, state),
        }
    }

    fn sign_in_url(&self, req: &SignInRequest) -> String {
        let side = match self.side(&req.tenant.cloud) {
            Ok(side) => side,
            Err(e) => return self.error_to_callback(&EntraError::Config(e.message), &req.state),
        };
        let authorize = AuthorizeRequest {
            tenant: req.tenant.id.to_string(),
            client_id: req.client_id.to_string(),
            redirect_uri: self.redirect_uri.clone(),
            scopes: req.scopes.clone(),
            state: req.state.clone(),
            nonce: req.nonce.clone(),
            code_challenge: req.code_challenge.clone(),
            login_hint: req.login_hint.clone(),
            prompt: self.sign_in_prompt,
        };
        match side.client.authorize_url(&authorize) {
            Ok(url) => url.into(),
            Err(e) => self.error_to_callback(&e, &req.state),
        }
    }

    fn redirect_error(
        &self,
        error: &str,
        description: Option<&str>,
        subcode: Option<&str>,
    ) -> PlatformError {
        platform_error_from_redirect(error, description, subcode)
    }

    async fn redeem(
        &self,
        tenant: &TenantAt,
        client: &ClientRef,
        code: &str,
        code_verifier: &SecretString,
        scopes: &[String],
    ) -> Result<SignedIn, PlatformError> {
        let side = self.side(&tenant.cloud)?;
        self.redeem_at(
            side,
            &tenant.cloud,
            &tenant.id.to_string(),
            client,
            code,
            code_verifier,
            &self.redirect_uri,
            scopes,
        )
        .await
    }

    fn consentry_sign_in_url(&self, req: &ConsentrySignIn) -> String {
        match self.consentry_authorize_url(
            &req.redirect_uri,
            &req.state,
            &req.nonce,
            &req.code_challenge,
        ) {
            Ok(url) => url,
            Err(e) if e.cause == PlatformCause::NotConfigured => {
                self.not_configured_to(&req.redirect_uri, &req.state)
            }
            Err(e) => error_to(
                &req.redirect_uri,
                &EntraError::Config(e.message),
                &req.state,
            ),
        }
    }

    async fn redeem_consentry_sign_in(
        &self,
        code: &str,
        code_verifier: &SecretString,
        redirect_uri: &str,
    ) -> Result<SignedIn, PlatformError> {
        let signed = self
            .redeem_consentry_code(code, code_verifier, redirect_uri)
            .await?;
        let (tenant, object_id, upn) = signed.who()?;
        Ok(SignedIn {
            object_id,
            upn,
            ip: None,
            tenant,
            nonce: signed.claims.nonce.clone(),
            granted_scopes: self.global().short_scopes(&signed.token),
            access_token: signed.token.access_token,
            refresh_token: None,
        })
    }

    fn consentry_admin_consent_url(
        &self,
        tenant: TenantId,
        state: &str,
        redirect_uri: &str,
    ) -> String {
        let Some(app) = &self.consentry_app else {
            return self.not_configured_to(redirect_uri, state);
        };
        let req = AdminConsentRequest {
            tenant: tenant.to_string(),
            client_id: app.client_id.to_string(),
            redirect_uri: redirect_uri.to_owned(),
            state: state.to_owned(),
            scope: None,
        };
        match self.global().client.admin_consent_url(&req) {
            Ok(url) => url.into(),
            Err(e) => error_to(redirect_uri, &e, state),
        }
    }

    async fn organization(&self, tenant: TenantId) -> Result<OrganizationFacts, PlatformError> {
        let (client_id, credential) =
            self.credential(&CloudKey::global(), &ClientRef::Consentry)?;
        let token = self
            .app_only_token(self.global(), tenant, &client_id, &credential)
            .await
            .map_err(|e| platform_error(&e))?;
        let orgs = with_retry(&self.retry, || {
            self.global().client.organization(&token.access_token)
        })
        .await
        .map_err(|e| platform_error(&e))?;
        organization_facts(orgs)
    }

    fn console_sign_in_url(
        &self,
        req: &consentry_domain::ConsoleSignInRequest,
    ) -> Result<String, PlatformError> {
        self.console_sign_in_url_impl(req)
    }

    async fn redeem_console_sign_in(
        &self,
        code: &str,
        code_verifier: &SecretString,
    ) -> Result<consentry_domain::MicrosoftSignedIn, PlatformError> {
        self.redeem_console_sign_in_impl(code, code_verifier).await
    }

    async fn memberships(
        &self,
        access_token: &SecretString,
    ) -> Result<consentry_domain::Memberships, PlatformError> {
        self.memberships_impl(access_token).await
    }

    async fn user_facts(
        &self,
        tenant: &TenantAt,
        access_token: &SecretString,
    ) -> Result<UserFacts, PlatformError> {
        let client = &self.side(&tenant.cloud)?.client;
        let member_of = with_retry(&self.retry, || client.me_member_of(access_token))
            .await
            .map_err(|e| platform_error(&e))?;
        let licenses = with_retry(&self.retry, || client.me_license_details(access_token))
            .await
            .map_err(|e| platform_error(&e))?;
        let owned = with_retry(&self.retry, || client.me_owned_groups(access_token))
            .await
            .map_err(|e| platform_error(&e))?;
        let mut facts = UserFacts::default();
        for id in crate::directory_role_template_ids(&member_of) {
            match Uuid::parse_str(id) {
                Ok(id) => {
                    facts.role_template_ids.insert(id);
                }
                Err(_) => tracing::warn!(role_template_id = id, "not a GUID; ignored"),
            }
        }
        for license in &licenses {
            facts
                .sku_part_numbers
                .insert(license.sku_part_number.clone());
            // A plan switched off inside an assigned license does not give the user the service.
            for plan in license.service_plans.iter().filter(|p| {
                !p.provisioning_status
                    .as_deref()
                    .is_some_and(|s| s.eq_ignore_ascii_case("Disabled"))
            }) {
                facts.service_plans.insert(plan.service_plan_name.clone());
            }
        }
        facts.group_owner = !owned.is_empty();
        // Viva Engage "verified admin" is not a Microsoft Graph property: it is read from the Viva
        // Engage API by `viva_engage_facts`, which the domain calls when a rule needs it.
        facts.verified_admin = false;
        Ok(facts)
    }

    async fn viva_engage_facts(
        &self,
        tenant: &TenantAt,
        client: &ClientRef,
        refresh_token: &SecretString,
    ) -> Result<VivaEngageFacts, PlatformError> {
        // Viva Engage (Yammer) is a service of the global cloud only: its resource and API
        // (api.yammer.com, www.yammer.com) have no national-cloud counterpart Consentry knows.
        if !tenant.cloud.is_global() {
            return Err(PlatformError {
                cause: PlatformCause::NotConfigured,
                aadsts: None,
                error: None,
                message: format!(
                    "Viva Engage facts can be read only for tenants in the global cloud; this tenant lives in the {} cloud",
                    tenant.cloud
                ),
            });
        }
        let side = self.side(&tenant.cloud)?;
        let (client_id, credential) = self.credential(&tenant.cloud, client)?;
        let tenant = tenant.id.to_string();
        // A refresh token is redeemable for another resource the user consented to (entra-facts
        // §2.2): the token for Viva Engage proves the consent covers its scope. Retrying is safe
        // (rotation does not revoke the old refresh token).
        let token = with_retry(&self.retry, || {
            side.client.refresh(
                &tenant,
                &client_id,
                &credential,
                refresh_token,
                &[crate::VIVA_ENGAGE_SCOPE],
            )
        })
        .await
        .map_err(|e| platform_error(&e))?;
        let user = with_retry(&self.retry, || {
            side.client.viva_engage_current_user(&token.access_token)
        })
        .await
        .map_err(|e| platform_error(&e))?;
        Ok(VivaEngageFacts {
            verified_admin: user.verified_admin,
            // The resource's scopes only (the OpenID scopes belong to no resource).
            granted_scopes: token
                .scopes()
                .into_iter()
                .filter(|s| s.starts_with(crate::VIVA_ENGAGE_RESOURCE))
                .map(str::to_owned)
                .collect(),
        })
    }

    async fn sign_in_log(
        &self,
        tenant: &TenantAt,
        client: &ClientRef,
        query: &SignInLogQuery,
    ) -> Result<Vec<SignInLogEntry>, EvidenceUnavailable> {
        let failed = |message: String| EvidenceUnavailable::ReadFailed { message };
        let side = self.side(&tenant.cloud).map_err(|e| failed(e.message))?;
        let (client_id, credential) = self
            .credential(&tenant.cloud, client)
            .map_err(|e| failed(e.message))?;
        let token = self
            .app_only_token(side, tenant.id, &client_id, &credential)
            .await
            .map_err(|e| failed(platform_error(&e).message))?
            .access_token;
        let since = query
            .since
            .format(&time::format_description::well_known::Rfc3339)
            .map_err(|e| failed(format!("the time {} cannot be written: {e}", query.since)))?;
        let answer = with_retry(&self.retry, || {
            side.client
                .sign_ins(&token, &client_id, &query.upn, &since, SIGN_IN_LOG_PAGE)
        })
        .await;
        let entries = match answer {
            Ok(entries) => entries,
            // entra-facts §12 ([V-obs]): the tenant has no Entra ID P1/P2 license.
            Err(EntraError::Graph(e))
                if e.code == "Authentication_RequestFromNonPremiumTenantOrB2CTenant" =>
            {
                return Err(EvidenceUnavailable::LicenseMissing);
            }
            Err(EntraError::Graph(e)) if e.kind == GraphErrorKind::AccessDenied => {
                return Err(EvidenceUnavailable::PermissionMissing);
            }
            Err(e) => return Err(failed(platform_error(&e).message)),
        };
        Ok(entries
            .into_iter()
            .filter_map(|e| {
                let at = OffsetDateTime::parse(
                    &e.created_date_time,
                    &time::format_description::well_known::Rfc3339,
                )
                .ok()?;
                let status = e.status.unwrap_or_default();
                Some(SignInLogEntry {
                    at,
                    user_principal_name: e.user_principal_name,
                    app_display_name: e.app_display_name,
                    ip_address: e.ip_address,
                    interactive: e.is_interactive.unwrap_or(false),
                    error_code: status.error_code,
                    failure_reason: status.failure_reason,
                    conditional_access_status: e.conditional_access_status,
                    policies: e
                        .applied_conditional_access_policies
                        .into_iter()
                        .map(|p| AppliedPolicy {
                            display_name: p.display_name.unwrap_or_default(),
                            result: p.result.unwrap_or_default(),
                        })
                        .collect(),
                })
            })
            .collect())
    }

    async fn grants(&self, tenant: &TenantAt, client: &ClientRef) -> Result<Grants, PlatformError> {
        let side = self.side(&tenant.cloud)?;
        let (client_id, credential) = self.credential(&tenant.cloud, client)?;
        // Round trip 1: the token proves that the secret or certificate works in the customer
        // tenant.
        let token = self
            .app_only_token(side, tenant.id, &client_id, &credential)
            .await
            .map_err(|e| platform_error(&e))?
            .access_token;
        // Round trip 2: every read the check needs, in one Graph `$batch`. An app may read its own
        // service principal and its app role assignments without permissions (entra-facts §4.6).
        let c = &side.client;
        let mut reads = with_retry(&self.retry, || c.consent_reads(&token, &client_id))
            .await
            .map_err(|e| platform_error(&e))?;
        // The Graph app roles assigned to the app, to be named.
        let graph_roles: Vec<String> =
            match (&reads.graph_service_principal, &reads.app_role_assignments) {
                (Ok(Some(graph)), Ok(assignments)) => assignments
                    .iter()
                    .filter(|a| a.resource_id == graph.id)
                    .map(|a| a.app_role_id.clone())
                    .collect(),
                _ => Vec::new(),
            };
        let unnamed = || side.graph_roles_to_read(graph_roles.iter().map(String::as_str));
        if unnamed() {
            // A Graph app role not seen yet (the first checks of this process in this cloud, or a
            // permission Microsoft added): Graph's app roles are read in full once more, by one
            // check while the others starting with it wait for that read.
            let _reading = side.graph_roles_reading.lock().await;
            if unnamed() {
                reads.graph_service_principal = self.graph_service_principal(c, &token).await;
            }
        }
        match self.grants_from(side, reads, client, &client_id)? {
            Some(grants) => Ok(grants),
            // A read inside the batch failed transiently, or Graph does not take a read by appId:
            // the reads again, one by one by object ID, each with its own retries.
            None => {
                self.grants_one_by_one(side, client, &client_id, &token)
                    .await
            }
        }
    }

    async fn app_token(
        &self,
        tenant: &TenantAt,
        client: &ClientRef,
    ) -> Result<AccessToken, PlatformError> {
        let side = self.side(&tenant.cloud)?;
        let (client_id, credential) = self.credential(&tenant.cloud, client)?;
        let received_at = OffsetDateTime::now_utc();
        let token = self
            .app_only_token(side, tenant.id, &client_id, &credential)
            .await
            .map_err(|e| platform_error(&e))?;
        Ok(AccessToken {
            expires_at: token.expires_at(received_at),
            token: token.access_token,
        })
    }

    async fn refresh(
        &self,
        tenant: &TenantAt,
        client: &ClientRef,
        refresh_token: &SecretString,
        scopes: &[String],
    ) -> Result<Refreshed, PlatformError> {
        let side = self.side(&tenant.cloud)?;
        let (client_id, credential) = self.credential(&tenant.cloud, client)?;
        let tenant = tenant.id.to_string();
        let received_at = OffsetDateTime::now_utc();
        // Retrying is safe: the server does not revoke the old refresh token on rotation.
        let token = with_retry(&self.retry, || {
            side.client
                .refresh(&tenant, &client_id, &credential, refresh_token, scopes)
        })
        .await
        .map_err(|e| platform_error(&e))?;
        Ok(Refreshed {
            expires_at: token.expires_at(received_at),
            granted_scopes: side.short_scopes(&token),
            access_token: token.access_token,
            refresh_token: token.refresh_token,
        })
    }
}

impl EntraPlatform {
    /// When a sign-in URL cannot be built (a caller bug, e.g. a short PKCE challenge), sends the
    /// browser straight back to the callback with an `invalid_request` error, so the failure
    /// takes the normal error path.
    fn error_to_callback(&self, e: &EntraError, state: &str) -> String {
        error_to(&self.redirect_uri, e, state)
    }

    /// Consentry's own app is not configured: the browser goes straight back to `redirect_uri`
    /// with an error naming the missing setting (the domain refuses to start before this).
    fn not_configured_to(&self, redirect_uri: &str, state: &str) -> String {
        error_to(
            redirect_uri,
            &EntraError::Config("Consentry's own app registration is not configured".into()),
            state,
        )
    }
}

/// When a Microsoft URL cannot be built (a caller bug, e.g. a short PKCE challenge), sends the
/// browser straight back to `redirect_uri` with an `invalid_request` error, so the failure takes
/// the normal error path.
fn error_to(redirect_uri: &str, e: &EntraError, state: &str) -> String {
    tracing::warn!(error = %e, "a Microsoft URL could not be built");
    let Ok(mut url) = Url::parse(redirect_uri) else {
        return redirect_uri.to_owned();
    };
    url.query_pairs_mut()
        .append_pair("error", "invalid_request")
        .append_pair("error_description", &e.to_string())
        .append_pair("state", state);
    url.into()
}

/// The tenant's organization from Graph's `/organization` answer (one item).
fn organization_facts(
    orgs: Vec<crate::graph::Organization>,
) -> Result<OrganizationFacts, PlatformError> {
    let org = orgs.into_iter().next().ok_or_else(|| {
        protocol_error("Graph's /organization answer lists no organization".into())
    })?;
    let id = TenantId::parse(&org.id)
        .map_err(|e| protocol_error(format!("Graph's organization ID is not a tenant ID: {e}")))?;
    let mut domains: Vec<(bool, DomainName)> = Vec::new();
    for d in &org.verified_domains {
        match DomainName::parse(&d.name) {
            Ok(name) => domains.push((d.is_default.unwrap_or(false), name)),
            Err(e) => {
                tracing::warn!(error = %e, "a verified domain Graph listed is unusable; ignored")
            }
        }
    }
    // The default domain first (the primary domain); the others in Graph's order.
    domains.sort_by_key(|(default, _)| !*default);
    Ok(OrganizationFacts {
        id,
        display_name: org.display_name.unwrap_or_default(),
        verified_domains: domains.into_iter().map(|(_, d)| d).collect(),
    })
}

#[cfg(test)]
mod certificate_cache_tests {
    use super::CertificateCache;
    use time::{Duration, OffsetDateTime};

    #[test]
    fn an_archive_is_opened_once_and_still_refused_once_expired() {
        let now = OffsetDateTime::now_utc();
        let pair = consentry_certs::generate_self_signed("CN=cache test", 1, "pw-0123456789", now)
            .expect("generate");
        let cache = CertificateCache::default();
        let a = cache.open(&pair.pfx, "pw-0123456789", now).expect("opens");
        assert_eq!(cache.lock().len(), 1);
        let b = cache.open(&pair.pfx, "pw-0123456789", now).expect("cached");
        assert_eq!(a.sha1_thumbprint(), b.sha1_thumbprint());
        assert_eq!(
            cache.lock().len(),
            1,
            "the second open is served from the cache"
        );
        // A wrong password is never served from the cache.
        assert!(matches!(
            cache.open(&pair.pfx, "wrong-password", now),
            Err(consentry_certs::PfxError::WrongPassword)
        ));
        // Past its validity the archive is opened again and refused with the precise error.
        let later = now + Duration::days(400);
        assert!(matches!(
            cache.open(&pair.pfx, "pw-0123456789", later),
            Err(consentry_certs::PfxError::Expired { .. })
        ));
    }
}

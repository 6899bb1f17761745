//! Pure builders for the URLs an administrator is sent to (admin consent, authorize), PKCE,
//! scopes, and the parser of the redirect back.

use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use rand::RngCore as _;
use secrecy::{ExposeSecret as _, SecretString};
use sha2::{Digest as _, Sha256};
use url::Url;

use crate::client::{EntraClient, join_segments};
use crate::error::{EntraError, IdentityError, parse_redirect_error};

/// Microsoft Graph's resource URI prefix for scopes.
pub const GRAPH_RESOURCE: &str = "https://graph.microsoft.com/";
/// The static scope asking for everything in the app registration (`/.default`).
pub const GRAPH_DEFAULT_SCOPE: &str = "https://graph.microsoft.com/.default";
/// OpenID Connect scopes requested with every delegated sign-in.
pub const OIDC_SCOPES: [&str; 3] = ["openid", "offline_access", "profile"];

/// Checks a tenant path segment: a GUID or a domain (letters, digits, `-`, `.`). `forbidden`
/// lists the multi-tenant aliases the endpoint does not accept.
pub(crate) fn check_tenant<'a>(tenant: &'a str, forbidden: &[&str]) -> Result<&'a str, EntraError> {
    let ok = !tenant.is_empty()
        && tenant.len() <= 253
        && tenant
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '.')
        && !tenant.starts_with('.');
    if !ok {
        return Err(EntraError::InvalidInput(format!(
            "the tenant `{tenant}` is not a tenant ID or domain: give the tenant's GUID (preferred) or its verified domain"
        )));
    }
    if let Some(alias) = forbidden.iter().find(|a| a.eq_ignore_ascii_case(tenant)) {
        return Err(EntraError::InvalidInput(format!(
            "the tenant `{alias}` cannot be used here: give the customer's tenant GUID or domain"
        )));
    }
    Ok(tenant)
}

/// Checks an application (client) ID: a GUID.
pub(crate) fn check_guid<'a>(value: &'a str, what: &str) -> Result<&'a str, EntraError> {
    uuid::Uuid::parse_str(value).map_err(|_| {
        EntraError::InvalidInput(format!(
            "the {what} `{value}` is not a GUID: copy it from Microsoft Entra ID (e.g. 6731de76-14a6-49ae-97bc-6eba6914391e)"
        ))
    })?;
    Ok(value)
}

fn check_redirect_uri(value: &str) -> Result<(), EntraError> {
    match Url::parse(value) {
        Ok(u) if matches!(u.scheme(), "https" | "http") && u.fragment().is_none() => Ok(()),
        _ => Err(EntraError::InvalidInput(format!(
            "the redirect URI `{value}` is not an absolute http(s) URL without fragment: give the URI registered on the app"
        ))),
    }
}

/// Expands Graph scopes to their full form (`User.Read` → `https://graph.microsoft.com/User.Read`),
/// leaving OIDC scopes and already-qualified scopes as they are, and drops duplicates.
pub fn qualify_scopes<S: AsRef<str>>(scopes: &[S]) -> Vec<String> {
    qualify_scopes_for(GRAPH_RESOURCE, scopes)
}

/// [`qualify_scopes`] for the Graph of a given cloud: `resource` is its resource identifier with
/// the trailing slash (`https://graph.microsoft.us/`).
pub fn qualify_scopes_for<S: AsRef<str>>(resource: &str, scopes: &[S]) -> Vec<String> {
    let mut out: Vec<String> = Vec::new();
    for s in scopes
        .iter()
        .map(|s| s.as_ref().trim())
        .filter(|s| !s.is_empty())
    {
        let full = if OIDC_SCOPES.contains(&s) || s == "email" || s.contains("://") {
            s.to_owned()
        } else {
            format!("{resource}{s}")
        };
        if !out.contains(&full) {
            out.push(full);
        }
    }
    out
}

/// The `scope` value of a delegated sign-in: the OIDC scopes, then the Graph scopes (or
/// `/.default` when none are given).
pub fn delegated_scope<S: AsRef<str>>(scopes: &[S]) -> String {
    delegated_scope_for(GRAPH_RESOURCE, scopes)
}

/// [`delegated_scope`] for the Graph of a given cloud (`resource` as in [`qualify_scopes_for`]).
pub fn delegated_scope_for<S: AsRef<str>>(resource: &str, scopes: &[S]) -> String {
    let mut all: Vec<String> = OIDC_SCOPES.iter().map(|s| (*s).to_owned()).collect();
    let graph: Vec<String> = qualify_scopes_for(resource, scopes)
        .into_iter()
        .filter(|s| !OIDC_SCOPES.contains(&s.as_str()))
        .collect();
    if graph.is_empty() {
        all.push(format!("{resource}.default"));
    } else {
        all.extend(graph);
    }
    all.join(" ")
}

/// A PKCE pair (RFC 7636, S256). The verifier is a secret until redemption.
#[derive(Debug, Clone)]
pub struct Pkce {
    /// `code_verifier`: 86 characters of base64url (64 random bytes).
    pub verifier: SecretString,
    /// `code_challenge` = base64url(SHA-256(verifier)), unpadded.
    pub challenge: String,
}

impl Pkce {
    /// A fresh pair from the operating system's CSPRNG (via `rand`'s thread RNG).
    pub fn generate() -> Self {
        let verifier = random_url_safe(64);
        let challenge = pkce_challenge_s256(&verifier);
        Self {
            verifier: SecretString::from(verifier),
            challenge,
        }
    }

    /// A pair from an existing verifier, checked against RFC 7636: 43–128 characters of
    /// `[A-Za-z0-9-._~]`.
    pub fn from_verifier(verifier: SecretString) -> Result<Self, EntraError> {
        let v = verifier.expose_secret();
        let ok = (43..=128).contains(&v.len())
            && v.chars()
                .all(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '.' | '_' | '~'));
        if !ok {
            return Err(EntraError::InvalidInput(
                "the PKCE code verifier must be 43 to 128 characters of A-Z a-z 0-9 - . _ ~: generate a new one"
                    .into(),
            ));
        }
        let challenge = pkce_challenge_s256(v);
        Ok(Self {
            verifier,
            challenge,
        })
    }
}

/// `code_challenge` for `verifier` with method S256.
pub fn pkce_challenge_s256(verifier: &str) -> String {
    URL_SAFE_NO_PAD.encode(Sha256::digest(verifier.as_bytes()))
}

/// `n` random bytes from the thread CSPRNG, base64url without padding: for `state`, `nonce`,
/// PKCE verifiers.
pub fn random_url_safe(n: usize) -> String {
    let mut bytes = vec![0u8; n];
    rand::rng().fill_bytes(&mut bytes);
    URL_SAFE_NO_PAD.encode(bytes)
}

/// An admin-consent request (`/{tenant}/v2.0/adminconsent`, entra-facts §1.4).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AdminConsentRequest {
    /// The customer's tenant GUID or domain (`organizations` is accepted, `common` is not).
    pub tenant: String,
    /// The app's client ID.
    pub client_id: String,
    /// Registered redirect URI.
    pub redirect_uri: String,
    /// Opaque state echoed back.
    pub state: String,
    /// Requested scope; `None` asks for `https://graph.microsoft.com/.default`.
    pub scope: Option<String>,
}

/// `prompt` values for `/authorize`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Prompt {
    /// `login`: force credentials.
    Login,
    /// `none`: no interaction.
    None,
    /// `consent`: show the consent page.
    Consent,
    /// `select_account`: show the account picker.
    SelectAccount,
    /// `admin_consent`: accepted in practice but UNVERIFIED in Microsoft's documentation
    /// (entra-facts §1.2); prefer the `/adminconsent` endpoint.
    AdminConsent,
}

impl Prompt {
    /// The wire value.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Login => "login",
            Self::None => "none",
            Self::Consent => "consent",
            Self::SelectAccount => "select_account",
            Self::AdminConsent => "admin_consent",
        }
    }
}

/// An authorization-code request (`/{tenant}/oauth2/v2.0/authorize`, entra-facts §1.2, §2.1).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AuthorizeRequest {
    /// Tenant GUID, domain or `organizations`.
    pub tenant: String,
    /// The app's client ID.
    pub client_id: String,
    /// Registered redirect URI.
    pub redirect_uri: String,
    /// Graph scopes (short or full form); the OIDC scopes are always added.
    pub scopes: Vec<String>,
    /// Opaque state echoed back.
    pub state: String,
    /// Nonce copied into the ID token.
    pub nonce: String,
    /// PKCE S256 `code_challenge`.
    pub code_challenge: String,
    /// Pre-fills the user name.
    pub login_hint: Option<String>,
    /// `prompt`.
    pub prompt: Option<Prompt>,
}

impl EntraClient {
    /// `{authority}/{tenant}/oauth2/v2.0/token`.
    pub fn token_endpoint(&self, tenant: &str) -> Result<Url, EntraError> {
        let tenant = check_tenant(tenant, &[])?;
        Ok(join_segments(
            &self.authority,
            &[tenant, "oauth2", "v2.0", "token"],
        ))
    }

    /// The URL to send an administrator to for tenant-wide admin consent.
    pub fn admin_consent_url(&self, req: &AdminConsentRequest) -> Result<Url, EntraError> {
        let tenant = check_tenant(&req.tenant, &["common", "consumers"])?;
        check_guid(&req.client_id, "application (client) ID")?;
        check_redirect_uri(&req.redirect_uri)?;
        let mut url = join_segments(&self.authority, &[tenant, "v2.0", "adminconsent"]);
        url.query_pairs_mut()
            .append_pair("client_id", &req.client_id)
            .append_pair("redirect_uri", &req.redirect_uri)
            .append_pair("state", &req.state)
            .append_pair(
                "scope",
                req.scope
                    .as_deref()
                    .unwrap_or(&format!("{}.default", self.config.graph_resource)),
            );
        Ok(url)
    }

    /// The URL to send a user to for a delegated sign-in (authorization code + PKCE S256).
    pub fn authorize_url(&self, req: &AuthorizeRequest) -> Result<Url, EntraError> {
        let tenant = check_tenant(&req.tenant, &[])?;
        check_guid(&req.client_id, "application (client) ID")?;
        check_redirect_uri(&req.redirect_uri)?;
        if req.code_challenge.len() < 43 {
            return Err(EntraError::InvalidInput(
                "the PKCE code challenge is missing or too short: use Pkce::generate()".into(),
            ));
        }
        let mut url = join_segments(&self.authority, &[tenant, "oauth2", "v2.0", "authorize"]);
        {
            let mut q = url.query_pairs_mut();
            q.append_pair("client_id", &req.client_id)
                .append_pair("response_type", "code")
                .append_pair("redirect_uri", &req.redirect_uri)
                .append_pair("response_mode", "query")
                .append_pair(
                    "scope",
                    &delegated_scope_for(&self.config.graph_resource, &req.scopes),
                )
                .append_pair("state", &req.state)
                .append_pair("nonce", &req.nonce)
                .append_pair("code_challenge", &req.code_challenge)
                .append_pair("code_challenge_method", "S256");
            if let Some(hint) = &req.login_hint {
                q.append_pair("login_hint", hint);
            }
            if let Some(prompt) = req.prompt {
                q.append_pair("prompt", prompt.as_str());
            }
        }
        Ok(url)
    }
}

/// What came back on the redirect URI.
#[derive(Debug, Clone)]
pub enum RedirectResponse {
    /// `/authorize` succeeded: redeem `code` with the PKCE verifier.
    Code {
        /// The authorization code (short-lived, single use).
        code: SecretString,
        /// The echoed state.
        state: Option<String>,
    },
    /// `/adminconsent` succeeded. Never trust `tenant` on its own: confirm with a token request
    /// (entra-facts §1.4).
    AdminConsent {
        /// The tenant GUID that granted consent, as claimed by the redirect.
        tenant: Option<String>,
        /// The granted scopes, space-separated, as claimed by the redirect.
        scope: Option<String>,
        /// The echoed state.
        state: Option<String>,
    },
    /// An error, a cancel or a denial.
    Error {
        /// The parsed error.
        error: Box<IdentityError>,
        /// The echoed state.
        state: Option<String>,
    },
}

impl RedirectResponse {
    /// Parses the query string of the redirect (a leading `?` is accepted). Unknown parameters
    /// (`session_state`, …) are ignored.
    pub fn parse(query: &str) -> Result<Self, EntraError> {
        let query = query.trim_start_matches(['?', '#']);
        let get = |name: &str| {
            url::form_urlencoded::parse(query.as_bytes())
                .find(|(k, _)| k == name)
                .map(|(_, v)| v.into_owned())
        };
        let state = get("state");
        if let Some(error) = parse_redirect_error(query) {
            return Ok(Self::Error {
                error: Box::new(error),
                state,
            });
        }
        if let Some(code) = get("code").filter(|c| !c.is_empty()) {
            return Ok(Self::Code {
                code: SecretString::from(code),
                state,
            });
        }
        if get("admin_consent").is_some_and(|v| v.eq_ignore_ascii_case("true")) {
            return Ok(Self::AdminConsent {
                tenant: get("tenant"),
                scope: get("scope"),
                state,
            });
        }
        Err(EntraError::InvalidInput(
            "the redirect carries neither `code`, `admin_consent=True` nor `error`: it did not come from Microsoft's sign-in; start again"
                .into(),
        ))
    }

    /// The echoed state.
    pub fn state(&self) -> Option<&str> {
        match self {
            Self::Code { state, .. }
            | Self::AdminConsent { state, .. }
            | Self::Error { state, .. } => state.as_deref(),
        }
    }
}

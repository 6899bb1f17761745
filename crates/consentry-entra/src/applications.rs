//! Application objects (app registrations) in their home tenant, through Microsoft Graph: what going
//! live reads and writes (`consentry apps register`, `consentry doctor`, credential expiry).
//!
//! The shapes are Graph's `application` resource (v1.0): `requiredResourceAccess`, `web.redirectUris`,
//! `passwordCredentials` (never with `secretText` on a read), `keyCredentials`. An app may read its own
//! registration with a client-credentials token and no permission at all ("A service principal can
//! retrieve its own application and service principal details without being granted any application
//! permissions", Graph's `serviceprincipal-get` page); reading or writing other registrations needs
//! `Application.Read.All` / `Application.ReadWrite.All`.

use secrecy::SecretString;
use serde::{Deserialize, Serialize};

use crate::client::EntraClient;
use crate::error::{EntraError, GraphErrorKind};
use crate::graph::KeyCredential;
use crate::urls::check_guid;

/// The fields of an application object Consentry reads and writes.
pub const APPLICATION_SELECT: &str = "id,appId,displayName,signInAudience,web,publicClient,isFallbackPublicClient,requiredResourceAccess,passwordCredentials,keyCredentials";

/// An application object (app registration) as Graph returns it. Unknown fields are ignored; missing
/// collections read as empty.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Application {
    /// Object ID (what `/applications/{id}` takes).
    #[serde(default)]
    pub id: String,
    /// Application (client) ID.
    #[serde(default)]
    pub app_id: String,
    /// Display name.
    #[serde(default)]
    pub display_name: Option<String>,
    /// `AzureADMyOrg`, `AzureADMultipleOrgs`, …
    #[serde(default)]
    pub sign_in_audience: Option<String>,
    /// The web platform (redirect URIs of a confidential client).
    #[serde(default)]
    pub web: Option<WebApplication>,
    /// "Allow public client flows".
    #[serde(default)]
    pub is_fallback_public_client: Option<bool>,
    /// The permissions the app requests, per resource API.
    #[serde(default, deserialize_with = "null_as_empty")]
    pub required_resource_access: Vec<RequiredResourceAccess>,
    /// Client secrets (never their values on a read).
    #[serde(default, deserialize_with = "null_as_empty")]
    pub password_credentials: Vec<PasswordCredential>,
    /// Certificates.
    #[serde(default, deserialize_with = "null_as_empty", skip_serializing)]
    pub key_credentials: Vec<KeyCredential>,
}

impl Application {
    /// The web platform's redirect URIs.
    pub fn redirect_uris(&self) -> &[String] {
        self.web
            .as_ref()
            .map(|w| w.redirect_uris.as_slice())
            .unwrap_or_default()
    }
}

/// The web platform of an application.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct WebApplication {
    /// Redirect URIs (matched exactly by the identity platform).
    #[serde(default, deserialize_with = "null_as_empty")]
    pub redirect_uris: Vec<String>,
}

/// The permissions an application requests of one resource API.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct RequiredResourceAccess {
    /// The resource's application ID (`00000003-0000-0000-c000-000000000000` for Microsoft Graph).
    pub resource_app_id: String,
    /// The permissions.
    #[serde(default, deserialize_with = "null_as_empty")]
    pub resource_access: Vec<ResourceAccess>,
}

/// One requested permission.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ResourceAccess {
    /// The permission's ID (an app role ID or a delegated scope ID).
    pub id: String,
    /// `Role` (application permission) or `Scope` (delegated).
    #[serde(rename = "type")]
    pub kind: String,
}

/// A client secret of an application (`passwordCredential`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct PasswordCredential {
    /// The credential's ID (what `removePassword` takes).
    #[serde(default)]
    pub key_id: Option<String>,
    /// Display name.
    #[serde(default)]
    pub display_name: Option<String>,
    /// The first characters of the secret (Graph returns three).
    #[serde(default)]
    pub hint: Option<String>,
    /// Start of validity (ISO 8601).
    #[serde(default)]
    pub start_date_time: Option<String>,
    /// End of validity (ISO 8601).
    #[serde(default)]
    pub end_date_time: Option<String>,
}

/// Which registrations `applications_where` lists.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ApplicationFilter {
    /// The one with this application (client) ID.
    AppId(String),
    /// Those with exactly this display name (display names are not unique in a tenant).
    DisplayName(String),
}

/// What `POST /applications` creates and `PATCH /applications/{id}` changes: the fields set here, in
/// Graph's JSON (also the application manifest `consentry apps manifest` prints, Microsoft Graph format).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ApplicationWrite {
    /// Display name.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub display_name: Option<String>,
    /// `AzureADMultipleOrgs` for a registration every tenant can consent to.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub sign_in_audience: Option<String>,
    /// The web platform's redirect URIs.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub web: Option<WebApplication>,
    /// The permissions requested, per resource API (written whole).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub required_resource_access: Option<Vec<RequiredResourceAccess>>,
}

impl ApplicationWrite {
    /// Whether nothing is set (a `PATCH` with it would change nothing).
    pub fn is_empty(&self) -> bool {
        *self == Self::default()
    }
}

/// A certificate on a registration as written to `keyCredentials` (Graph's `keyCredential`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct KeyCredentialWrite {
    /// The credential's ID; `None` for a new one (Graph assigns it).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub key_id: Option<String>,
    /// `AsymmetricX509Cert`.
    #[serde(rename = "type")]
    pub kind: String,
    /// `Verify` (the app signs client assertions; Microsoft verifies them).
    pub usage: String,
    /// The certificate, base64 DER (public part only).
    pub key: String,
    /// Display name.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub display_name: Option<String>,
}

impl KeyCredentialWrite {
    /// A new certificate credential from the certificate's DER.
    pub fn certificate(der: &[u8], display_name: &str) -> Self {
        use base64::Engine as _;
        Self {
            key_id: None,
            kind: "AsymmetricX509Cert".into(),
            usage: "Verify".into(),
            key: base64::engine::general_purpose::STANDARD.encode(der),
            display_name: Some(display_name.to_owned()),
        }
    }

    /// An existing credential, written back unchanged when the list is replaced. Needs its `key`,
    /// which Graph returns when `keyCredentials` is `$select`ed (UNVERIFIED that Graph accepts a
    /// `PATCH` re-sending existing certificates by `keyId` + `key`; its documentation says the list is
    /// replaced as a whole).
    pub fn existing(read: &KeyCredential) -> Result<Self, EntraError> {
        let key = read.key.clone().ok_or_else(|| {
            EntraError::Protocol {
                detail: format!(
                    "Graph did not return the certificate of key credential {} (its `key`); it is needed to keep it when the certificate list is written",
                    read.key_id.as_deref().unwrap_or("?")
                ),
                client_request_id: None,
            }
        })?;
        Ok(Self {
            key_id: read.key_id.clone(),
            kind: read
                .kind
                .clone()
                .unwrap_or_else(|| "AsymmetricX509Cert".into()),
            usage: read.usage.clone().unwrap_or_else(|| "Verify".into()),
            key,
            display_name: read.display_name.clone(),
        })
    }
}

/// A client secret just added (`addPassword`): the only time Graph returns its value.
#[derive(Clone, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct NewPassword {
    /// The credential's ID (what `removePassword` takes).
    #[serde(default)]
    pub key_id: Option<String>,
    /// The first characters of the secret.
    #[serde(default)]
    pub hint: Option<String>,
    /// End of validity (ISO 8601).
    #[serde(default)]
    pub end_date_time: Option<String>,
    /// The secret.
    pub secret_text: SecretString,
}

impl std::fmt::Debug for NewPassword {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("NewPassword")
            .field("key_id", &self.key_id)
            .field("hint", &self.hint)
            .field("end_date_time", &self.end_date_time)
            .field("secret_text", &"[REDACTED]")
            .finish()
    }
}

fn null_as_empty<'de, D, T>(d: D) -> Result<Vec<T>, D::Error>
where
    D: serde::Deserializer<'de>,
    T: Deserialize<'de>,
{
    Ok(Option::<Vec<T>>::deserialize(d)?.unwrap_or_default())
}

impl EntraClient {
    /// The registration of `app_id` in the token's tenant (its home tenant), with
    /// [`APPLICATION_SELECT`]; `None` when Graph does not find it. With the app's own client-credentials
    /// token this needs no permission.
    pub async fn application_by_app_id(
        &self,
        token: &SecretString,
        app_id: &str,
    ) -> Result<Option<Application>, EntraError> {
        check_guid(app_id, "application ID")?;
        let segment = format!("applications(appId='{app_id}')");
        let url = self.graph_url(&[&segment], &[("$select", APPLICATION_SELECT)]);
        match self.graph_get::<Application>(token, url).await {
            Ok(app) => Ok(Some(app)),
            Err(EntraError::Graph(e)) if e.kind == GraphErrorKind::NotFound => Ok(None),
            Err(e) => Err(e),
        }
    }
}

//! Token grants: client credentials, authorization code (PKCE), refresh token; and the claims
//! Consentry reads from the tokens it receives.

use std::fmt;

use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use consentry_certs::{AssertionAlg, CLIENT_ASSERTION_TYPE, ClientCertificate};
use reqwest::Method;
use secrecy::{ExposeSecret as _, SecretString};
use serde_json::Value;
use time::OffsetDateTime;

use crate::client::{EntraClient, Service};
use crate::error::EntraError;
use crate::urls::{check_guid, check_tenant, delegated_scope_for};

/// How an app authenticates to the token endpoint: the vendor's apps (secret or certificate)
/// and customers' custom apps (certificate).
#[derive(Clone)]
pub enum ClientCredential {
    /// `client_secret` (the secret's value, not its ID).
    Secret(SecretString),
    /// A client assertion signed with the certificate's key (`private_key_jwt`).
    Certificate {
        /// The certificate and its private key.
        certificate: Box<ClientCertificate>,
        /// The assertion's header profile.
        alg: AssertionAlg,
    },
}

impl ClientCredential {
    /// A client secret.
    pub fn secret(value: impl Into<String>) -> Self {
        Self::Secret(SecretString::from(value.into()))
    }

    /// A certificate, asserting with PS256 + `x5t#S256` (current Microsoft guidance).
    pub fn certificate(certificate: ClientCertificate) -> Self {
        Self::Certificate {
            certificate: Box::new(certificate),
            alg: AssertionAlg::default(),
        }
    }

    /// The form parameters that authenticate the client at `token_endpoint`.
    fn form_params(
        &self,
        client_id: &str,
        token_endpoint: &str,
        now: OffsetDateTime,
    ) -> Result<Vec<(&'static str, String)>, EntraError> {
        Ok(match self {
            Self::Secret(secret) => vec![("client_secret", secret.expose_secret().to_owned())],
            Self::Certificate { certificate, alg } => vec![
                ("client_assertion_type", CLIENT_ASSERTION_TYPE.to_owned()),
                (
                    "client_assertion",
                    certificate.client_assertion(client_id, token_endpoint, *alg, now)?,
                ),
            ],
        })
    }
}

impl fmt::Debug for ClientCredential {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Secret(_) => f.write_str("ClientCredential::Secret([REDACTED])"),
            Self::Certificate { certificate, alg } => f
                .debug_struct("ClientCredential::Certificate")
                .field("thumbprint_sha1", &certificate.sha1_thumbprint())
                .field("alg", alg)
                .finish(),
        }
    }
}

/// A successful token response (entra-facts §1.3).
#[derive(Clone)]
pub struct TokenResponse {
    /// The access token (a JWT).
    pub access_token: SecretString,
    /// `token_type`, normally `Bearer`.
    pub token_type: String,
    /// Lifetime in seconds.
    pub expires_in: u64,
    /// Extended lifetime in seconds, when sent.
    pub ext_expires_in: Option<u64>,
    /// The new refresh token (delegated flows with `offline_access`; rotate it).
    pub refresh_token: Option<SecretString>,
    /// The ID token (when `openid` was requested).
    pub id_token: Option<String>,
    /// The granted scopes, space-separated (delegated flows).
    pub scope: Option<String>,
    /// The `client-request-id` of the request that obtained it.
    pub client_request_id: String,
}

impl TokenResponse {
    /// The granted scopes.
    pub fn scopes(&self) -> Vec<&str> {
        self.scope
            .as_deref()
            .map(|s| s.split_whitespace().collect())
            .unwrap_or_default()
    }

    /// When the access token expires, for a response received at `received_at`.
    pub fn expires_at(&self, received_at: OffsetDateTime) -> OffsetDateTime {
        let secs = i64::try_from(self.expires_in).unwrap_or(i64::MAX / 2);
        received_at + time::Duration::seconds(secs)
    }

    /// The access token's claims, decoded WITHOUT verifying the signature.
    pub fn access_token_claims(&self) -> Result<TokenClaims, EntraError> {
        TokenClaims::decode_unverified(self.access_token.expose_secret())
    }

    /// The ID token's claims, decoded WITHOUT verifying the signature; `None` without an ID
    /// token. For display and diagnostics only: sign-ins verify it with
    /// [`IdTokenVerifier`](crate::IdTokenVerifier).
    pub fn id_token_claims(&self) -> Option<Result<TokenClaims, EntraError>> {
        self.id_token.as_deref().map(TokenClaims::decode_unverified)
    }

    pub(crate) fn from_json(body: &[u8], client_request_id: String) -> Result<Self, EntraError> {
        let protocol = |detail: String| EntraError::Protocol {
            detail,
            client_request_id: Some(client_request_id.clone()),
        };
        let v: Value = serde_json::from_slice(body)
            .map_err(|e| protocol(format!("token response is not JSON: {e}")))?;
        let text = |k: &str| v.get(k).and_then(Value::as_str).map(str::to_owned);
        // v1-era answers sent the lifetimes as strings; accept both.
        let secs = |k: &str| {
            v.get(k).and_then(|x| {
                x.as_u64()
                    .or_else(|| x.as_str().and_then(|s| s.trim().parse().ok()))
            })
        };
        let access_token = text("access_token")
            .filter(|t| !t.is_empty())
            .ok_or_else(|| protocol("token response has no access_token".into()))?;
        let expires_in = secs("expires_in")
            .ok_or_else(|| protocol("token response has no expires_in".into()))?;
        Ok(Self {
            access_token: SecretString::from(access_token),
            token_type: text("token_type").unwrap_or_else(|| "Bearer".into()),
            expires_in,
            ext_expires_in: secs("ext_expires_in"),
            refresh_token: text("refresh_token")
                .filter(|t| !t.is_empty())
                .map(SecretString::from),
            id_token: text("id_token").filter(|t| !t.is_empty()),
            scope: text("scope"),
            client_request_id,
        })
    }
}

impl fmt::Debug for TokenResponse {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("TokenResponse")
            .field("access_token", &"[REDACTED]")
            .field("token_type", &self.token_type)
            .field("expires_in", &self.expires_in)
            .field("ext_expires_in", &self.ext_expires_in)
            .field(
                "refresh_token",
                &self.refresh_token.as_ref().map(|_| "[REDACTED]"),
            )
            .field("id_token", &self.id_token.as_ref().map(|_| "[REDACTED]"))
            .field("scope", &self.scope)
            .field("client_request_id", &self.client_request_id)
            .finish()
    }
}

fn string_or_list(v: Option<&Value>) -> Vec<String> {
    match v {
        Some(Value::Array(a)) => a
            .iter()
            .filter_map(|v| v.as_str().map(str::to_owned))
            .collect(),
        Some(Value::String(s)) => s.split_whitespace().map(str::to_owned).collect(),
        _ => Vec::new(),
    }
}

/// The claims Consentry reads from an ID token or access token (entra-facts §2.5).
///
/// [`decode_unverified`](Self::decode_unverified) does not verify the signature, issuer or
/// audience: use it only for access tokens just received over TLS from the token endpoint (they
/// are meant for Graph, not for Consentry). ID tokens are verified with
/// [`IdTokenVerifier`](crate::IdTokenVerifier).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct TokenClaims {
    /// Tenant ID.
    pub tid: Option<String>,
    /// The user's (or service principal's) object ID.
    pub oid: Option<String>,
    /// User principal name (v1 access tokens).
    pub upn: Option<String>,
    /// Preferred user name (v2 tokens).
    pub preferred_username: Option<String>,
    /// Display name.
    pub name: Option<String>,
    /// Delegated scopes (the `scp` claim, space-separated on the wire).
    pub scp: Vec<String>,
    /// Application permissions (app-only tokens).
    pub roles: Vec<String>,
    /// Role template IDs of the user's directory roles (when configured on the app).
    pub wids: Vec<String>,
    /// The IP address the user signed in from (v1 access tokens).
    pub ipaddr: Option<String>,
    /// Authentication methods (`pwd`, `mfa`, …).
    pub amr: Vec<String>,
    /// Audience (the first one when it is a list).
    pub aud: Option<String>,
    /// Issuer.
    pub iss: Option<String>,
    /// The client's app ID (v1: `appid`, v2: `azp`).
    pub appid: Option<String>,
    /// Nonce (ID tokens).
    pub nonce: Option<String>,
    /// Expiry, Unix seconds.
    pub exp: Option<i64>,
}

impl TokenClaims {
    /// Decodes the payload of a compact JWT WITHOUT verifying it (see the type's docs).
    pub fn decode_unverified(jwt: &str) -> Result<Self, EntraError> {
        let bad = |why: &str| EntraError::Protocol {
            detail: format!("the token is not a readable JWT ({why})"),
            client_request_id: None,
        };
        let mut parts = jwt.split('.');
        let (Some(_), Some(payload), Some(_), None) =
            (parts.next(), parts.next(), parts.next(), parts.next())
        else {
            return Err(bad("expected three dot-separated parts"));
        };
        let bytes = URL_SAFE_NO_PAD
            .decode(payload.trim_end_matches('='))
            .map_err(|_| bad("payload is not base64url"))?;
        let value: Value = serde_json::from_slice(&bytes)
            .ok()
            .filter(Value::is_object)
            .ok_or_else(|| bad("payload is not a JSON object of claims"))?;
        Ok(Self::from_value(&value))
    }

    /// The claims of a decoded JWT payload.
    pub fn from_value(value: &Value) -> Self {
        let text = |k: &str| value.get(k).and_then(Value::as_str).map(str::to_owned);
        Self {
            tid: text("tid"),
            oid: text("oid"),
            upn: text("upn"),
            preferred_username: text("preferred_username"),
            name: text("name"),
            scp: string_or_list(value.get("scp")),
            roles: string_or_list(value.get("roles")),
            wids: string_or_list(value.get("wids")),
            ipaddr: text("ipaddr"),
            amr: string_or_list(value.get("amr")),
            aud: text("aud").or_else(|| string_or_list(value.get("aud")).into_iter().next()),
            iss: text("iss"),
            appid: text("appid").or_else(|| text("azp")),
            nonce: text("nonce"),
            exp: value
                .get("exp")
                .and_then(|v| v.as_i64().or_else(|| v.as_f64().map(|f| f as i64))),
        }
    }

    /// The user's sign-in name: `upn`, else `preferred_username`.
    pub fn user_principal(&self) -> Option<&str> {
        self.upn.as_deref().or(self.preferred_username.as_deref())
    }

    /// Whether the sign-in used multi-factor authentication (`amr` contains `mfa`).
    pub fn used_mfa(&self) -> bool {
        self.amr.iter().any(|m| m == "mfa")
    }
}

impl EntraClient {
    async fn token_request(
        &self,
        tenant: &str,
        client_id: &str,
        credential: &ClientCredential,
        mut form: Vec<(&'static str, String)>,
        forbidden_tenants: &[&str],
    ) -> Result<TokenResponse, EntraError> {
        check_tenant(tenant, forbidden_tenants)?;
        check_guid(client_id, "application (client) ID")?;
        let endpoint = self.token_endpoint(tenant)?;
        form.push(("client_id", client_id.to_owned()));
        form.extend(credential.form_params(
            client_id,
            endpoint.as_str(),
            OffsetDateTime::now_utc(),
        )?);
        let request = self.request(Method::POST, endpoint).form(&form);
        let answer = self.send(Service::Identity, request).await?;
        TokenResponse::from_json(&answer.body, answer.client_request_id)
    }

    /// Client-credentials grant (app-only), e.g. `scope` = `https://graph.microsoft.com/.default`.
    /// `tenant` must be the customer's tenant GUID or domain.
    pub async fn client_credentials(
        &self,
        tenant: &str,
        client_id: &str,
        credential: &ClientCredential,
        scope: &str,
    ) -> Result<TokenResponse, EntraError> {
        let form = vec![
            ("grant_type", "client_credentials".to_owned()),
            ("scope", scope.to_owned()),
        ];
        self.token_request(
            tenant,
            client_id,
            credential,
            form,
            &["common", "organizations", "consumers"],
        )
        .await
    }

    /// Redeems an authorization code with its PKCE verifier. `scopes` are Graph scopes (short
    /// or full form); the OIDC scopes are added.
    #[allow(clippy::too_many_arguments)]
    pub async fn redeem_code<S: AsRef<str>>(
        &self,
        tenant: &str,
        client_id: &str,
        credential: &ClientCredential,
        code: &SecretString,
        redirect_uri: &str,
        code_verifier: &SecretString,
        scopes: &[S],
    ) -> Result<TokenResponse, EntraError> {
        self.redeem_code_with_scope(
            tenant,
            client_id,
            credential,
            code,
            redirect_uri,
            code_verifier,
            &delegated_scope_for(&self.config.graph_resource, scopes),
        )
        .await
    }

    /// [`redeem_code`](Self::redeem_code) asking for exactly `scope` (space-separated, as sent).
    #[allow(clippy::too_many_arguments)]
    pub async fn redeem_code_with_scope(
        &self,
        tenant: &str,
        client_id: &str,
        credential: &ClientCredential,
        code: &SecretString,
        redirect_uri: &str,
        code_verifier: &SecretString,
        scope: &str,
    ) -> Result<TokenResponse, EntraError> {
        let form = vec![
            ("grant_type", "authorization_code".to_owned()),
            ("code", code.expose_secret().to_owned()),
            ("redirect_uri", redirect_uri.to_owned()),
            ("code_verifier", code_verifier.expose_secret().to_owned()),
            ("scope", scope.to_owned()),
        ];
        self.token_request(tenant, client_id, credential, form, &[])
            .await
    }

    /// Refresh-token grant. The answer carries a new refresh token: store it in place of the old.
    pub async fn refresh<S: AsRef<str>>(
        &self,
        tenant: &str,
        client_id: &str,
        credential: &ClientCredential,
        refresh_token: &SecretString,
        scopes: &[S],
    ) -> Result<TokenResponse, EntraError> {
        let form = vec![
            ("grant_type", "refresh_token".to_owned()),
            ("refresh_token", refresh_token.expose_secret().to_owned()),
            (
                "scope",
                delegated_scope_for(&self.config.graph_resource, scopes),
            ),
        ];
        self.token_request(tenant, client_id, credential, form, &[])
            .await
    }
}

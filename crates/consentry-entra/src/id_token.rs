//! ID token verification (OpenID Connect Core §3.1.3.7, RFC 9700): the signature against the
//! authority's published keys (discovery → `jwks_uri`, cached, refetched when a token names an
//! unknown `kid`), the issuer, the audience and the validity period. The nonce is returned and
//! compared by the caller with the one stored with the pending authorization.

use std::collections::{HashMap, HashSet};
use std::time::{Duration, Instant};

use jsonwebtoken::{Algorithm, DecodingKey, Validation};
use reqwest::Method;
use serde_json::Value;
use time::OffsetDateTime;
use tokio::sync::Mutex;
use url::Url;

use crate::client::{EntraClient, Service, join_segments};
use crate::error::EntraError;
use crate::token::TokenClaims;
use crate::urls::check_tenant;

/// Clock skew accepted on `exp` and `nbf`.
pub const ID_TOKEN_LEEWAY: time::Duration = time::Duration::seconds(120);
/// How long fetched keys are used before they are fetched again (Microsoft serves the JWKS with
/// `Cache-Control: max-age=86400`, entra-facts §1.6).
pub const JWKS_MAX_AGE: Duration = Duration::from_secs(24 * 3600);
/// A token naming an unknown `kid` refetches the keys, but not more often than this per tenant.
pub const JWKS_MIN_REFETCH: Duration = Duration::from_secs(30);

/// Why an ID token was refused.
#[derive(Debug, thiserror::Error)]
pub enum IdTokenError {
    /// The token response carries no ID token although `openid` was requested.
    #[error("the sign-in's token response carries no ID token")]
    Missing,
    /// Not a compact JWS with a readable header and JSON claims.
    #[error("the ID token is not a readable JWT ({0})")]
    Malformed(String),
    /// Signed with an algorithm other than RS256.
    #[error("the ID token is signed with `{0}`, not RS256 as the identity platform signs them")]
    Algorithm(String),
    /// No `kid` in the header.
    #[error("the ID token's header names no signing key (`kid`)")]
    NoKeyId,
    /// The `kid` is not among the authority's published keys, even after refetching them.
    #[error(
        "the ID token was signed with a key (kid `{kid}`) the identity platform does not publish: it was not issued by Microsoft"
    )]
    UnknownKey {
        /// The token's `kid`.
        kid: String,
    },
    /// The signature does not verify.
    #[error(
        "the ID token's signature does not verify against the identity platform's published key: it was not issued by Microsoft or was altered"
    )]
    Signature,
    /// A required claim is missing or has the wrong type.
    #[error("the ID token has no usable `{0}` claim")]
    MissingClaim(&'static str),
    /// `iss` is not the tenant's v2 issuer.
    #[error("the ID token was issued by `{found}`, not by `{expected}`")]
    Issuer {
        /// The issuer expected for the token's tenant.
        expected: String,
        /// The token's `iss`.
        found: String,
    },
    /// `aud` is not the app's client ID.
    #[error("the ID token is meant for `{found}`, not for this app (`{expected}`)")]
    Audience {
        /// The app's client ID.
        expected: String,
        /// The token's `aud`.
        found: String,
    },
    /// `exp` has passed.
    #[error("the ID token expired at {exp} (now {now})")]
    Expired {
        /// The token's expiry.
        exp: OffsetDateTime,
        /// The time of the check.
        now: OffsetDateTime,
    },
    /// `nbf` is still ahead.
    #[error("the ID token is not valid before {nbf} (now {now}): check the server's clock")]
    NotYetValid {
        /// The token's `nbf`.
        nbf: OffsetDateTime,
        /// The time of the check.
        now: OffsetDateTime,
    },
    /// The authority's discovery document or keys could not be read.
    #[error("the identity platform's signing keys could not be read: {0}")]
    Keys(#[source] EntraError),
}

impl IdTokenError {
    /// Whether the failure is transient (the keys could not be fetched for a transient reason).
    pub fn is_transient(&self) -> bool {
        matches!(self, Self::Keys(e) if e.is_transient())
    }
}

/// What an ID token must say.
#[derive(Debug, Clone, Copy)]
pub struct IdTokenExpectations<'a> {
    /// The tenant the sign-in was made in (the discovery document and keys are this tenant's).
    pub tenant: &'a str,
    /// The app's client ID (the token's audience).
    pub client_id: &'a str,
    /// Now.
    pub now: OffsetDateTime,
}

struct CachedKeys {
    fetched: Instant,
    keys: HashMap<String, DecodingKey>,
}

/// Verifies ID tokens, caching the authority's keys per tenant. Share one per [`EntraClient`].
#[derive(Default)]
pub struct IdTokenVerifier {
    cache: Mutex<HashMap<String, CachedKeys>>,
}

impl std::fmt::Debug for IdTokenVerifier {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("IdTokenVerifier").finish_non_exhaustive()
    }
}

impl IdTokenVerifier {
    /// A verifier with an empty key cache.
    pub fn new() -> Self {
        Self::default()
    }

    /// Verifies `id_token` and returns its claims: RS256 signature by a key the authority
    /// publishes for `expect.tenant`, `iss` = `{authority}/{tid}/v2.0` for the token's own `tid`
    /// (a GUID; the caller compares it with the tenant it expects), `aud` = the client ID, `exp`
    /// and `nbf` with [`ID_TOKEN_LEEWAY`].
    pub async fn verify(
        &self,
        client: &EntraClient,
        id_token: &str,
        expect: &IdTokenExpectations<'_>,
    ) -> Result<(TokenClaims, Value), IdTokenError> {
        let header = jsonwebtoken::decode_header(id_token)
            .map_err(|e| IdTokenError::Malformed(e.to_string()))?;
        if header.alg != Algorithm::RS256 {
            return Err(IdTokenError::Algorithm(format!("{:?}", header.alg)));
        }
        let kid = header.kid.ok_or(IdTokenError::NoKeyId)?;
        let key = self.key(client, expect.tenant, &kid).await?;
        let mut validation = Validation::new(Algorithm::RS256);
        // Claims are checked below, each with its own message.
        validation.validate_exp = false;
        validation.validate_nbf = false;
        validation.validate_aud = false;
        validation.required_spec_claims = HashSet::new();
        let data =
            jsonwebtoken::decode::<Value>(id_token, &key, &validation).map_err(|e| {
                match e.kind() {
                    jsonwebtoken::errors::ErrorKind::InvalidSignature => IdTokenError::Signature,
                    _ => IdTokenError::Malformed(e.to_string()),
                }
            })?;
        let value = data.claims;
        if !value.is_object() {
            return Err(IdTokenError::Malformed(
                "the claims are not a JSON object".into(),
            ));
        }
        check_claims(&client.config().authority, &value, expect)?;
        let claims = TokenClaims::from_value(&value);
        Ok((claims, value))
    }

    /// The key `kid` of the tenant, from the cache or freshly fetched.
    async fn key(
        &self,
        client: &EntraClient,
        tenant: &str,
        kid: &str,
    ) -> Result<DecodingKey, IdTokenError> {
        let mut cache = self.cache.lock().await;
        let cached = cache.get(tenant);
        if let Some(c) = cached
            && c.fetched.elapsed() < JWKS_MAX_AGE
            && let Some(k) = c.keys.get(kid)
        {
            return Ok(k.clone());
        }
        let may_fetch = cached.is_none_or(|c| {
            c.fetched.elapsed() >= JWKS_MIN_REFETCH || c.fetched.elapsed() >= JWKS_MAX_AGE
        });
        if may_fetch {
            let keys = fetch_keys(client, tenant)
                .await
                .map_err(IdTokenError::Keys)?;
            cache.insert(
                tenant.to_owned(),
                CachedKeys {
                    fetched: Instant::now(),
                    keys,
                },
            );
        }
        cache
            .get(tenant)
            .and_then(|c| c.keys.get(kid))
            .cloned()
            .ok_or_else(|| IdTokenError::UnknownKey {
                kid: kid.chars().take(64).collect(),
            })
    }
}

fn check_claims(
    authority: &str,
    value: &Value,
    expect: &IdTokenExpectations<'_>,
) -> Result<(), IdTokenError> {
    let text = |k: &'static str| {
        value
            .get(k)
            .and_then(Value::as_str)
            .ok_or(IdTokenError::MissingClaim(k))
    };
    let time = |k: &'static str| -> Result<Option<OffsetDateTime>, IdTokenError> {
        match value.get(k) {
            None => Ok(None),
            Some(v) => v
                .as_i64()
                .and_then(|s| OffsetDateTime::from_unix_timestamp(s).ok())
                .map(Some)
                .ok_or(IdTokenError::MissingClaim(k)),
        }
    };
    let tid = text("tid")?;
    let tid = uuid::Uuid::parse_str(tid).map_err(|_| IdTokenError::MissingClaim("tid"))?;
    // The tenant-specific v2 issuer (entra-facts §1.6, §2.5), for the token's own tenant; the
    // caller then checks that tenant is the profile's.
    let expected = format!("{}/{tid}/v2.0", authority.trim_end_matches('/'));
    let iss = text("iss")?;
    if iss != expected {
        return Err(IdTokenError::Issuer {
            expected,
            found: iss.chars().take(200).collect(),
        });
    }
    let aud = match value.get("aud") {
        Some(Value::String(s)) => s.clone(),
        Some(Value::Array(a)) if a.len() == 1 => a[0]
            .as_str()
            .ok_or(IdTokenError::MissingClaim("aud"))?
            .to_owned(),
        _ => return Err(IdTokenError::MissingClaim("aud")),
    };
    if !aud.eq_ignore_ascii_case(expect.client_id) {
        return Err(IdTokenError::Audience {
            expected: expect.client_id.to_owned(),
            found: aud.chars().take(200).collect(),
        });
    }
    let exp = time("exp")?.ok_or(IdTokenError::MissingClaim("exp"))?;
    if expect.now > exp + ID_TOKEN_LEEWAY {
        return Err(IdTokenError::Expired {
            exp,
            now: expect.now,
        });
    }
    if let Some(nbf) = time("nbf")?
        && expect.now + ID_TOKEN_LEEWAY < nbf
    {
        return Err(IdTokenError::NotYetValid {
            nbf,
            now: expect.now,
        });
    }
    Ok(())
}

/// Reads the tenant's discovery document and the keys at its `jwks_uri` (which must be on the
/// authority's origin).
async fn fetch_keys(
    client: &EntraClient,
    tenant: &str,
) -> Result<HashMap<String, DecodingKey>, EntraError> {
    let tenant = check_tenant(tenant, &[])?;
    let protocol = |detail: String| EntraError::Protocol {
        detail,
        client_request_id: None,
    };
    let discovery = join_segments(
        &client.authority,
        &[tenant, "v2.0", ".well-known", "openid-configuration"],
    );
    let answer = client
        .send(Service::Identity, client.request(Method::GET, discovery))
        .await?;
    let doc: Value = serde_json::from_slice(&answer.body)
        .map_err(|e| protocol(format!("the discovery document is not JSON: {e}")))?;
    let jwks_uri = doc
        .get("jwks_uri")
        .and_then(Value::as_str)
        .and_then(|u| Url::parse(u).ok())
        .ok_or_else(|| protocol("the discovery document has no valid `jwks_uri`".into()))?;
    if jwks_uri.origin() != client.authority.origin() {
        return Err(protocol(format!(
            "the discovery document's `jwks_uri` is not on the authority ({})",
            client.authority.origin().ascii_serialization()
        )));
    }
    let answer = client
        .send(Service::Identity, client.request(Method::GET, jwks_uri))
        .await?;
    parse_jwks(&answer.body).map_err(protocol)
}

/// The RSA signing keys of a JWKS document, by `kid`. Keys of other types or uses are skipped.
pub fn parse_jwks(body: &[u8]) -> Result<HashMap<String, DecodingKey>, String> {
    let doc: Value =
        serde_json::from_slice(body).map_err(|e| format!("the JWKS is not JSON: {e}"))?;
    let keys = doc
        .get("keys")
        .and_then(Value::as_array)
        .ok_or("the JWKS has no `keys` list")?;
    let mut out = HashMap::new();
    for k in keys {
        let s = |f: &str| k.get(f).and_then(Value::as_str);
        if s("kty") != Some("RSA") || s("use").is_some_and(|u| u != "sig") {
            continue;
        }
        let (Some(kid), Some(n), Some(e)) = (s("kid"), s("n"), s("e")) else {
            continue;
        };
        match DecodingKey::from_rsa_components(n, e) {
            Ok(key) => {
                out.insert(kid.to_owned(), key);
            }
            Err(err) => tracing::warn!(kid, error = %err, "a JWKS key could not be read; skipped"),
        }
    }
    Ok(out)
}

//! Client-assertion JWTs (`private_key_jwt`) that authenticate an app to the Microsoft identity
//! platform with its certificate instead of a client secret.

use base64::Engine as _;
use jsonwebtoken::{Algorithm, Header};
use secrecy::ExposeSecret as _;
use serde::{Deserialize, Serialize};
use time::OffsetDateTime;

use crate::ClientCertificate;

/// Lifetime of an assertion: `exp = iat + 600 s`, MSAL's default.
pub const ASSERTION_LIFETIME_SECS: i64 = 600;

/// The header profile of a client assertion. Entra accepts both.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default, Serialize, Deserialize)]
pub enum AssertionAlg {
    /// `alg: RS256` with `x5t` = base64url(SHA-1 thumbprint): the older documented profile, also
    /// what AD FS requires.
    Rs256X5t,
    /// `alg: PS256` with `x5t#S256` = base64url(SHA-256 thumbprint): the profile current Microsoft
    /// documentation and MSAL use.
    #[default]
    Ps256X5tS256,
}

/// Why an assertion could not be made.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum AssertionError {
    /// `client_id` was empty or contained whitespace.
    #[error(
        "the client ID `{0}` is not usable as the assertion's issuer: give the app's Application \
         (client) ID as shown in Microsoft Entra ID"
    )]
    InvalidClientId(String),
    /// `audience` was not an http(s) URL.
    #[error(
        "the audience `{0}` is not a URL: give the token endpoint, e.g. \
         https://login.microsoftonline.com/{{tenant}}/oauth2/v2.0/token"
    )]
    InvalidAudience(String),
    /// The certificate's validity ended before `now`.
    #[error(
        "the certificate expired on {not_after}, so Entra would reject the assertion: upload a new \
         certificate to the app and re-authorize the profile with its .pfx"
    )]
    CertificateExpired {
        /// End of the certificate's validity.
        not_after: OffsetDateTime,
    },
    /// The certificate's validity starts after `now`.
    #[error(
        "the certificate is not valid until {not_before}: check the system clock or use another certificate"
    )]
    CertificateNotYetValid {
        /// Start of the certificate's validity.
        not_before: OffsetDateTime,
    },
    /// Signing failed (the key could not be used by the JWT library).
    #[error(
        "signing the client assertion failed ({0}): load the .pfx again; if it persists, re-create the certificate"
    )]
    Signing(String),
}

/// The claims of a client assertion (entra-facts §2.4). Public so that verifiers (the simulator,
/// tests) can decode into the same shape.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct AssertionClaims {
    /// The token endpoint URL the assertion is sent to.
    pub aud: String,
    /// The app's client ID.
    pub iss: String,
    /// The app's client ID (same as `iss`).
    pub sub: String,
    /// A fresh random UUID per assertion.
    pub jti: String,
    /// Not before, Unix seconds (= `iat`).
    pub nbf: i64,
    /// Issued at, Unix seconds.
    pub iat: i64,
    /// Expiry, Unix seconds (`iat` + [`ASSERTION_LIFETIME_SECS`]).
    pub exp: i64,
}

impl ClientCertificate {
    /// Makes a signed client assertion for `client_id`, to be posted as `client_assertion` (with
    /// `client_assertion_type=urn:ietf:params:oauth:client-assertion-type:jwt-bearer`) to
    /// `audience`, which must be the token endpoint URL it is sent to.
    ///
    /// Header: `typ: JWT`, and `alg: RS256` + `x5t` or `alg: PS256` + `x5t#S256`, the thumbprint
    /// in unpadded base64url (RFC 7515). MSAL Python keeps the `=` padding; Entra accepts both
    /// (entra-facts §2.4). No `kid`.
    pub fn client_assertion(
        &self,
        client_id: &str,
        audience: &str,
        alg: AssertionAlg,
        now: OffsetDateTime,
    ) -> Result<String, AssertionError> {
        if client_id.is_empty() || client_id.chars().any(char::is_whitespace) {
            return Err(AssertionError::InvalidClientId(client_id.to_owned()));
        }
        let lower = audience.to_ascii_lowercase();
        if !(lower.starts_with("https://") || lower.starts_with("http://"))
            || audience.chars().any(char::is_whitespace)
        {
            return Err(AssertionError::InvalidAudience(audience.to_owned()));
        }
        if now < self.not_before() {
            return Err(AssertionError::CertificateNotYetValid {
                not_before: self.not_before(),
            });
        }
        if now > self.not_after() {
            return Err(AssertionError::CertificateExpired {
                not_after: self.not_after(),
            });
        }

        let mut header = match alg {
            AssertionAlg::Rs256X5t => {
                let mut h = Header::new(Algorithm::RS256);
                h.x5t = Some(self.sha1_thumbprint().base64url());
                h
            }
            AssertionAlg::Ps256X5tS256 => {
                let mut h = Header::new(Algorithm::PS256);
                h.x5t_s256 = Some(self.sha256_thumbprint().base64url());
                h
            }
        };
        header.typ = Some("JWT".into());

        let iat = now.unix_timestamp();
        let claims = AssertionClaims {
            aud: audience.to_owned(),
            iss: client_id.to_owned(),
            sub: client_id.to_owned(),
            jti: uuid::Uuid::new_v4().to_string(),
            nbf: iat,
            iat,
            exp: iat + ASSERTION_LIFETIME_SECS,
        };
        // The JWS compact serialization (RFC 7515 §7.1) of jsonwebtoken's header and the claims,
        // signed by aws-lc-rs with the key parsed once (jsonwebtoken's `encode` would parse the key
        // and set up its blinding again for every signature).
        let mut jws = format!("{}.{}", jws_part(&header)?, jws_part(&claims)?);
        let key = self.signing_key()?;
        let encoding: &'static dyn aws_lc_rs::signature::RsaEncoding = match alg {
            AssertionAlg::Rs256X5t => &aws_lc_rs::signature::RSA_PKCS1_SHA256,
            AssertionAlg::Ps256X5tS256 => &aws_lc_rs::signature::RSA_PSS_SHA256,
        };
        let mut signature = vec![0; key.public_modulus_len()];
        key.sign(
            encoding,
            &aws_lc_rs::rand::SystemRandom::new(),
            jws.as_bytes(),
            &mut signature,
        )
        .map_err(|_| AssertionError::Signing("the RSA signature failed".into()))?;
        jws.push('.');
        jws.push_str(&base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(&signature));
        Ok(jws)
    }

    /// The private key, parsed on first use and kept.
    fn signing_key(&self) -> Result<&aws_lc_rs::signature::RsaKeyPair, AssertionError> {
        if let Some(k) = self.signing_key.get() {
            return Ok(k);
        }
        let parsed = aws_lc_rs::signature::RsaKeyPair::from_pkcs8(
            self.private_key_pkcs8_der().expose_secret(),
        )
        .map_err(|e| AssertionError::Signing(format!("the private key is not usable: {e}")))?;
        Ok(self.signing_key.get_or_init(|| parsed))
    }
}

/// One part of a JWS: the value as JSON, in unpadded base64url.
fn jws_part<T: Serialize>(value: &T) -> Result<String, AssertionError> {
    serde_json::to_vec(value)
        .map(|json| base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(json))
        .map_err(|e| AssertionError::Signing(e.to_string()))
}

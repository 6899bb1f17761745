//! Keys and certificates: the token-signing key published in the JWKS, the local CA and TLS server
//! certificate, and parsing of certificates registered on apps. All keys made here are TEST-ONLY:
//! they are generated at start, never leave the process except as public certificates, and must
//! never be trusted outside a development machine.

use base64::Engine;
use base64::engine::general_purpose::{STANDARD, URL_SAFE_NO_PAD};
use der::Decode;
use jsonwebtoken::{Algorithm, DecodingKey, EncodingKey, Header};
use rcgen::{
    BasicConstraints, CertificateParams, DistinguishedName, DnType, IsCa, Issuer, KeyPair,
    KeyUsagePurpose,
};
use secrecy::{ExposeSecret, SecretString};
use sha1::Digest as _;
use time::OffsetDateTime;

use crate::error::SimError;

/// The key that signs access and ID tokens. TEST-ONLY.
pub(crate) struct SigningKey {
    /// The private key, parsed (and checked) once: signing with it is one RSA operation.
    signer: aws_lc_rs::signature::RsaKeyPair,
    key_pem: SecretString,
    /// `kid` = `x5t` = base64url SHA-1 thumbprint of `cert_der`.
    pub kid: String,
    pub n: String,
    pub e: String,
    pub cert_der: Vec<u8>,
    pub decoding: DecodingKey,
}

impl std::fmt::Debug for SigningKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SigningKey")
            .field("kid", &self.kid)
            .finish_non_exhaustive()
    }
}

impl SigningKey {
    /// Generates a fresh RSA-2048 key and a self-signed certificate for it.
    pub fn generate() -> Result<Self, SimError> {
        let key = KeyPair::generate_rsa_for(&rcgen::PKCS_RSA_SHA256, rcgen::RsaKeySize::_2048)
            .map_err(|e| SimError::Crypto(format!("generating the token signing key: {e}")))?;
        let mut params = CertificateParams::new(Vec::<String>::new())
            .map_err(|e| SimError::Crypto(e.to_string()))?;
        params.distinguished_name = dn("entra-sim TEST-ONLY token signing key");
        let cert = params
            .self_signed(&key)
            .map_err(|e| SimError::Crypto(format!("self-signing the token signing key: {e}")))?;
        Self::from_parts(SecretString::from(key.serialize_pem()), cert.der().to_vec())
    }

    /// Loads a key saved with [`key_pem`](Self::key_pem) and its certificate.
    pub fn from_parts(key_pem: SecretString, cert_der: Vec<u8>) -> Result<Self, SimError> {
        let encoding = EncodingKey::from_rsa_pem(key_pem.expose_secret().as_bytes())
            .map_err(|e| SimError::Crypto(format!("loading the token signing key: {e}")))?;
        let info = CertInfo::from_der(&cert_der)
            .map_err(|e| SimError::Crypto(format!("reading the token signing certificate: {e}")))?;
        let jwk = jsonwebtoken::jwk::Jwk::from_encoding_key(&encoding, Algorithm::RS256)
            .map_err(|e| SimError::Crypto(format!("deriving the JWKS entry: {e}")))?;
        let (n, e) = match jwk.algorithm {
            jsonwebtoken::jwk::AlgorithmParameters::RSA(rsa) => (rsa.n, rsa.e),
            _ => return Err(SimError::Crypto("the signing key is not an RSA key".into())),
        };
        let decoding = DecodingKey::from_rsa_components(&n, &e)
            .map_err(|e| SimError::Crypto(format!("deriving the verification key: {e}")))?;
        // jsonwebtoken keeps an RSA key as its PKCS#1 DER.
        let signer = aws_lc_rs::signature::RsaKeyPair::from_der(encoding.as_bytes())
            .map_err(|e| SimError::Crypto(format!("loading the token signing key: {e}")))?;
        Ok(Self {
            signer,
            key_pem,
            kid: URL_SAFE_NO_PAD.encode(info.sha1),
            n,
            e,
            cert_der,
            decoding,
        })
    }

    /// The private key (PKCS#8 PEM), for saving the state. TEST-ONLY.
    pub fn key_pem(&self) -> &SecretString {
        &self.key_pem
    }

    /// Signs `claims` as an RS256 JWT with `kid` in the header.
    pub fn sign(&self, claims: &serde_json::Value) -> String {
        self.sign_as(claims, &self.kid)
    }

    /// Signs `claims` with this key under another key's `kid` (forged tokens for fault injection).
    pub fn sign_as(&self, claims: &serde_json::Value, kid: &str) -> String {
        let mut header = Header::new(Algorithm::RS256);
        header.typ = Some("JWT".into());
        header.kid = Some(kid.to_owned());
        // A JWS in compact form (RFC 7515 §7.1): base64url(header) "." base64url(claims), signed with
        // RSASSA-PKCS1-v1_5 SHA-256 (RS256, RFC 7518 §3.3) by aws-lc.
        // Serializing a header and a JSON value cannot fail (string keys only).
        let mut jws = URL_SAFE_NO_PAD.encode(serde_json::to_vec(&header).unwrap_or_default());
        jws.push('.');
        jws.push_str(&URL_SAFE_NO_PAD.encode(serde_json::to_vec(claims).unwrap_or_default()));
        let mut signature = vec![0; self.signer.public_modulus_len()];
        // Signing with a key checked at start cannot fail short of a broken crypto backend; should it
        // happen, the empty token is refused by every consumer and the cause is logged.
        if let Err(e) = self.signer.sign(
            &aws_lc_rs::signature::RSA_PKCS1_SHA256,
            &aws_lc_rs::rand::SystemRandom::new(),
            jws.as_bytes(),
            &mut signature,
        ) {
            tracing::error!(error = %e, "signing a token failed");
            return String::new();
        }
        jws.push('.');
        jws.push_str(&URL_SAFE_NO_PAD.encode(&signature));
        jws
    }
}

/// The local CA and the server certificate it signed, for HTTPS on loopback. TEST-ONLY.
#[derive(Clone)]
pub(crate) struct TlsMaterial {
    pub ca_pem: String,
    pub cert_pem: String,
    pub key_pem: SecretString,
}

impl std::fmt::Debug for TlsMaterial {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TlsMaterial")
            .field("key_pem", &"[redacted]")
            .finish_non_exhaustive()
    }
}

fn dn(cn: &str) -> DistinguishedName {
    let mut dn = DistinguishedName::new();
    dn.push(DnType::CommonName, cn);
    dn.push(DnType::OrganizationName, "entra-sim (TEST-ONLY)");
    dn
}

impl TlsMaterial {
    /// Creates a CA and a server certificate for 127.0.0.1, ::1 and localhost.
    pub fn generate() -> Result<Self, SimError> {
        let err = |e: rcgen::Error| SimError::Crypto(format!("creating the local TLS CA: {e}"));
        let ca_key = KeyPair::generate().map_err(err)?;
        let mut ca_params = CertificateParams::new(Vec::<String>::new()).map_err(err)?;
        ca_params.distinguished_name = dn("entra-sim local CA (TEST-ONLY)");
        ca_params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
        ca_params.key_usages = vec![KeyUsagePurpose::KeyCertSign, KeyUsagePurpose::CrlSign];
        let ca_cert = ca_params.self_signed(&ca_key).map_err(err)?;
        let issuer = Issuer::new(ca_params, ca_key);
        let key = KeyPair::generate().map_err(err)?;
        let mut params = CertificateParams::new(vec![
            "localhost".to_owned(),
            "127.0.0.1".to_owned(),
            "::1".to_owned(),
        ])
        .map_err(err)?;
        params.distinguished_name = dn("localhost");
        let cert = params.signed_by(&key, &issuer).map_err(err)?;
        Ok(Self {
            ca_pem: ca_cert.pem(),
            cert_pem: cert.pem(),
            key_pem: SecretString::from(key.serialize_pem()),
        })
    }
}

/// What the simulator needs to know about a certificate registered on an app.
#[derive(Debug, Clone)]
pub(crate) struct CertInfo {
    pub der: Vec<u8>,
    pub sha1: [u8; 20],
    pub sha256: [u8; 32],
    /// PKCS#1 RSAPublicKey, if the key is RSA.
    pub rsa_public_pkcs1: Vec<u8>,
    pub subject: String,
    pub not_before: OffsetDateTime,
    pub not_after: OffsetDateTime,
}

impl CertInfo {
    /// Parses a DER certificate.
    pub fn from_der(der: &[u8]) -> Result<Self, String> {
        let cert = x509_cert::Certificate::from_der(der).map_err(|e| e.to_string())?;
        let tbs = cert.tbs_certificate();
        let spki = tbs.subject_public_key_info();
        let to_odt = |t: x509_cert::time::Time| {
            OffsetDateTime::from_unix_timestamp(t.to_unix_duration().as_secs() as i64)
                .unwrap_or(OffsetDateTime::UNIX_EPOCH)
        };
        let mut sha1 = [0u8; 20];
        sha1.copy_from_slice(&sha1::Sha1::digest(der));
        let mut sha256 = [0u8; 32];
        sha256.copy_from_slice(&sha2::Sha256::digest(der));
        Ok(Self {
            der: der.to_vec(),
            sha1,
            sha256,
            rsa_public_pkcs1: spki.subject_public_key.raw_bytes().to_vec(),
            subject: tbs.subject().to_string(),
            not_before: to_odt(tbs.validity().not_before),
            not_after: to_odt(tbs.validity().not_after),
        })
    }

    /// Parses a PEM certificate or a base64 DER certificate.
    pub fn parse(text: &str) -> Result<Self, String> {
        let text = text.trim();
        let der = if text.starts_with("-----BEGIN") {
            let body: String = text
                .lines()
                .filter(|l| !l.starts_with("-----"))
                .map(str::trim)
                .collect();
            STANDARD
                .decode(body)
                .map_err(|e| format!("bad PEM body: {e}"))?
        } else {
            let compact: String = text.split_whitespace().collect();
            STANDARD
                .decode(compact)
                .map_err(|e| format!("not base64 DER: {e}"))?
        };
        Self::from_der(&der)
    }

    /// The uppercase hex SHA-1 thumbprint, as the Azure portal shows it.
    pub fn thumbprint_hex(&self) -> String {
        self.sha1.iter().map(|b| format!("{b:02X}")).collect()
    }

    /// Whether `x5t` (base64url SHA-1, padded or not, or standard base64) names this certificate.
    pub fn matches_x5t(&self, x5t: &str) -> bool {
        decode_b64_any(x5t).is_some_and(|b| b == self.sha1)
    }

    /// Whether `x5t#S256` names this certificate.
    pub fn matches_x5t_s256(&self, x5t: &str) -> bool {
        decode_b64_any(x5t).is_some_and(|b| b == self.sha256)
    }
}

/// Decodes base64url or standard base64, with or without padding.
pub(crate) fn decode_b64_any(s: &str) -> Option<Vec<u8>> {
    let normalized: String = s
        .trim()
        .trim_end_matches('=')
        .chars()
        .map(|c| match c {
            '+' => '-',
            '/' => '_',
            c => c,
        })
        .collect();
    URL_SAFE_NO_PAD.decode(normalized).ok()
}

/// A random URL-safe string with `bytes` bytes of entropy.
pub(crate) fn random_token(bytes: usize) -> String {
    use rand::RngCore;
    let mut buf = vec![0u8; bytes];
    rand::rng().fill_bytes(&mut buf);
    URL_SAFE_NO_PAD.encode(buf)
}

/// Base64url SHA-256, as PKCS S256 uses it.
pub(crate) fn s256(input: &str) -> String {
    URL_SAFE_NO_PAD.encode(sha2::Sha256::digest(input.as_bytes()))
}

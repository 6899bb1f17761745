//! Public X.509 certificates (a `.cer`/`.crt`, or the leaf inside a `.pfx`).

use der::{Decode as _, DecodePem as _, Encode as _};
use time::OffsetDateTime;
use x509_cert::Certificate;

use crate::Thumbprint;

/// OID of `rsaEncryption` (RFC 8017), the only key type Entra client assertions use.
pub(crate) const RSA_ENCRYPTION_OID: &str = "1.2.840.113549.1.1.1";

/// A certificate that could not be read.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum CertificateError {
    /// The bytes are not a DER or PEM X.509 certificate.
    #[error(
        "the file is not an X.509 certificate ({0}): give the public certificate as .cer/.crt, \
         DER or PEM (\"-----BEGIN CERTIFICATE-----\")"
    )]
    Malformed(String),
}

/// A parsed public certificate: what is uploaded to an Entra app registration as `.cer`.
#[derive(Clone, PartialEq, Eq)]
pub struct PublicCertificate {
    der: Vec<u8>,
    subject: String,
    issuer: String,
    not_before: OffsetDateTime,
    not_after: OffsetDateTime,
    key_algorithm_oid: String,
    public_key: Vec<u8>,
    sha1: Thumbprint,
    sha256: Thumbprint,
}

impl PublicCertificate {
    /// Parses a DER certificate (a `.cer` as Entra takes it, or Graph's `keyCredential.key` decoded).
    pub fn from_der(der: &[u8]) -> Result<Self, CertificateError> {
        let cert =
            Certificate::from_der(der).map_err(|e| CertificateError::Malformed(e.to_string()))?;
        Self::from_parsed(&cert, der.to_vec())
    }

    /// Parses a PEM certificate (`-----BEGIN CERTIFICATE-----`); the first one when several.
    pub fn from_pem(pem: &str) -> Result<Self, CertificateError> {
        let malformed = |e: der::Error| CertificateError::Malformed(e.to_string());
        let cert = Certificate::from_pem(pem.trim().as_bytes())
            .or_else(|_| {
                Certificate::load_pem_chain(pem.as_bytes())?
                    .into_iter()
                    .next()
                    .ok_or_else(|| der::Error::from(der::ErrorKind::Failed))
            })
            .map_err(malformed)?;
        let der = cert.to_der().map_err(malformed)?;
        Self::from_parsed(&cert, der)
    }

    /// Parses DER or PEM, whichever the bytes are.
    pub fn from_der_or_pem(bytes: &[u8]) -> Result<Self, CertificateError> {
        match std::str::from_utf8(bytes) {
            Ok(text) if text.contains("-----BEGIN") => Self::from_pem(text),
            _ => Self::from_der(bytes),
        }
    }

    fn from_parsed(cert: &Certificate, der: Vec<u8>) -> Result<Self, CertificateError> {
        let tbs = cert.tbs_certificate();
        let spki = tbs.subject_public_key_info();
        let validity = tbs.validity();
        let to_time = |t: x509_cert::time::Time| {
            let secs = i64::try_from(t.to_unix_duration().as_secs())
                .map_err(|_| CertificateError::Malformed("validity date out of range".into()))?;
            OffsetDateTime::from_unix_timestamp(secs).map_err(|e| {
                CertificateError::Malformed(format!("validity date out of range: {e}"))
            })
        };
        Ok(Self {
            subject: tbs.subject().to_string(),
            issuer: tbs.issuer().to_string(),
            not_before: to_time(validity.not_before)?,
            not_after: to_time(validity.not_after)?,
            key_algorithm_oid: spki.algorithm.oid.to_string(),
            public_key: spki.subject_public_key.raw_bytes().to_vec(),
            sha1: Thumbprint::sha1_of(&der),
            sha256: Thumbprint::sha256_of(&der),
            der,
        })
    }

    /// The DER encoding.
    pub fn der(&self) -> &[u8] {
        &self.der
    }

    /// The certificate in PEM (`-----BEGIN CERTIFICATE-----`).
    pub fn to_pem(&self) -> String {
        to_pem(&self.der)
    }

    /// Subject distinguished name in RFC 4514 form, e.g. `CN=consentry-app`.
    pub fn subject(&self) -> &str {
        &self.subject
    }

    /// Issuer distinguished name in RFC 4514 form (equal to the subject when self-signed).
    pub fn issuer(&self) -> &str {
        &self.issuer
    }

    /// Start of the validity period.
    pub fn not_before(&self) -> OffsetDateTime {
        self.not_before
    }

    /// End of the validity period (inclusive).
    pub fn not_after(&self) -> OffsetDateTime {
        self.not_after
    }

    /// Whether `now` lies within the validity period.
    pub fn is_valid_at(&self, now: OffsetDateTime) -> bool {
        self.not_before <= now && now <= self.not_after
    }

    /// SHA-1 thumbprint of the DER encoding.
    pub fn sha1_thumbprint(&self) -> Thumbprint {
        self.sha1.clone()
    }

    /// SHA-256 thumbprint of the DER encoding.
    pub fn sha256_thumbprint(&self) -> Thumbprint {
        self.sha256.clone()
    }

    /// The PKCS#1 `RSAPublicKey` DER when the key is RSA (what
    /// `jsonwebtoken::DecodingKey::from_rsa_der` takes to verify an assertion), else `None`.
    pub fn rsa_public_key_der(&self) -> Option<&[u8]> {
        (self.key_algorithm_oid == RSA_ENCRYPTION_OID).then_some(self.public_key.as_slice())
    }

    pub(crate) fn key_algorithm_oid(&self) -> &str {
        &self.key_algorithm_oid
    }

    /// The raw `subjectPublicKey` bits (for RSA the PKCS#1 `RSAPublicKey` DER).
    pub(crate) fn public_key_raw(&self) -> &[u8] {
        &self.public_key
    }
}

impl std::fmt::Debug for PublicCertificate {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("PublicCertificate")
            .field("subject", &self.subject)
            .field("issuer", &self.issuer)
            .field("not_before", &self.not_before)
            .field("not_after", &self.not_after)
            .field("sha1", &self.sha1)
            .finish_non_exhaustive()
    }
}

/// PEM-encodes a DER certificate with 64-character lines.
pub(crate) fn to_pem(der: &[u8]) -> String {
    use base64::Engine as _;
    let b64 = base64::engine::general_purpose::STANDARD.encode(der);
    let mut out = String::from("-----BEGIN CERTIFICATE-----\n");
    for chunk in b64.as_bytes().chunks(64) {
        // base64 output is ASCII, so every chunk is valid UTF-8.
        out.push_str(std::str::from_utf8(chunk).unwrap_or_default());
        out.push('\n');
    }
    out.push_str("-----END CERTIFICATE-----\n");
    out
}

/// A human name for a key algorithm OID, for error messages.
pub(crate) fn key_algorithm_name(oid: &str) -> String {
    match oid {
        RSA_ENCRYPTION_OID => "RSA".into(),
        "1.2.840.113549.1.1.10" => "RSA-PSS-only (id-RSASSA-PSS)".into(),
        "1.2.840.10045.2.1" => "elliptic-curve (EC)".into(),
        "1.3.101.112" => "Ed25519".into(),
        "1.3.101.113" => "Ed448".into(),
        "1.2.840.10040.4.1" => "DSA".into(),
        other => format!("unknown ({other})"),
    }
}

//! What a pending re-authorization keeps sealed (PKCE verifier, uploaded certificate, browser
//! binding), the random values it is made of, and how a custom app's certificate is stored.

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use secrecy::ExposeSecret;
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

use crate::model::PendingAuthorization;

/// The sealed part of a pending authorization.
#[derive(Serialize, Deserialize)]
pub(super) struct PendingSecrets {
    pub(super) code_verifier: String,
    pub(super) pfx_b64: Option<String>,
    pub(super) pfx_password: Option<String>,
    /// Hex SHA-256 of the browser-binding cookie of the browser the sign-in was started in; the
    /// callback is refused without the matching cookie. `None`: started through the API for
    /// another browser (not bound).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub(super) browser_binding: Option<String>,
}

impl PendingSecrets {
    /// Reads the secrets sealed in `pending`.
    pub(super) fn of(pending: &PendingAuthorization) -> Result<Self, serde_json::Error> {
        serde_json::from_slice(pending.secrets.expose_secret())
    }

    /// The blob to seal.
    pub(super) fn to_blob(&self) -> Result<Vec<u8>, serde_json::Error> {
        serde_json::to_vec(self)
    }
}

/// A random URL-safe value of `bytes` random bytes (OAuth state, PKCE verifier, nonce).
pub(crate) fn random_token(bytes: usize) -> String {
    let mut buf = vec![0u8; bytes];
    rand::fill(&mut buf[..]);
    URL_SAFE_NO_PAD.encode(buf)
}

/// Hex SHA-256 of an OAuth state value, the key under which its pending record is stored.
pub fn state_hash(state: &str) -> String {
    hex::encode(Sha256::digest(state.as_bytes()))
}

/// PKCE S256 challenge of a verifier.
pub fn pkce_challenge(verifier: &str) -> String {
    URL_SAFE_NO_PAD.encode(Sha256::digest(verifier.as_bytes()))
}

/// How a custom app's certificate is kept (sealed) for later checks and token requests.
#[derive(Serialize, Deserialize)]
pub struct StoredCertificate {
    /// The .pfx, base64.
    pub pfx_b64: String,
    /// Its password.
    pub password: String,
}

impl std::fmt::Debug for StoredCertificate {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("StoredCertificate([redacted])")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pkce_challenge_is_rfc_7636s_s256() {
        // RFC 7636, appendix B.
        assert_eq!(
            pkce_challenge("dBjftJeZ4CVP-mB92K27uhbUJU1p1r_wW1gFWFOEjXk"),
            "E9Melhoa2OwvFrEMTJguCHaoeK1t8URWbuGJSstw-cM"
        );
    }

    #[test]
    fn state_hash_is_hex_sha256_and_random_tokens_differ() {
        assert_eq!(
            state_hash("abc"),
            "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad"
        );
        let (a, b) = (random_token(32), random_token(32));
        assert_ne!(a, b);
        assert_eq!(a.len(), 43, "32 bytes, base64url without padding");
    }

    #[test]
    fn an_unbound_record_omits_the_binding_and_reads_back_as_unbound() {
        let s = PendingSecrets {
            code_verifier: "v".into(),
            pfx_b64: None,
            pfx_password: None,
            browser_binding: None,
        };
        let blob = s.to_blob().unwrap();
        assert!(!String::from_utf8_lossy(&blob).contains("browser_binding"));
        let back: PendingSecrets = serde_json::from_slice(&blob).unwrap();
        assert!(back.browser_binding.is_none());
        assert_eq!(back.code_verifier, "v");
    }

    #[test]
    fn a_stored_certificate_never_shows_its_password() {
        let c = StoredCertificate {
            pfx_b64: "AAAA".into(),
            password: "hunter2".into(),
        };
        assert!(!format!("{c:?}").contains("hunter2"));
    }
}

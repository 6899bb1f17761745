//! Matching a local certificate against an app registration's Graph `keyCredentials` entry.

use base64::Engine as _;
use base64::engine::general_purpose::{STANDARD, STANDARD_NO_PAD};

use crate::{ClientCertificate, Thumbprint};

/// Whether a Graph `keyCredential` (`customKeyIdentifier`, `key`) describes `cert`.
///
/// entra-facts §4.9: `customKeyIdentifier` is met as the upper-case hex SHA-1 thumbprint (portal
/// uploads), as base64 of the 20 raw SHA-1 bytes (Graph's Edm.Binary), and, set by other tools,
/// as arbitrary text; `key` (only returned with `$select=keyCredentials`) is base64 of the DER
/// certificate. So: when `key` decodes, it decides (equal DER or not); otherwise
/// `customKeyIdentifier` matches when it is the SHA-1 (or SHA-256) thumbprint in hex or base64, or
/// base64 of the hex text.
pub fn keycredential_matches(
    cert: &ClientCertificate,
    custom_key_identifier: Option<&str>,
    key_b64: Option<&str>,
) -> bool {
    if let Some(der) = key_b64.and_then(decode_b64) {
        return der == cert.certificate_der();
    }
    let Some(id) = custom_key_identifier
        .map(str::trim)
        .filter(|s| !s.is_empty())
    else {
        return false;
    };
    let ours = [cert.sha1_thumbprint(), cert.sha256_thumbprint()];
    if let Ok(t) = Thumbprint::parse(id)
        && ours.contains(&t)
    {
        return true;
    }
    // Edm.Binary holding the hex text itself: base64("E56B7D…").
    decode_b64(id)
        .and_then(|bytes| String::from_utf8(bytes).ok())
        .and_then(|text| Thumbprint::parse(&text).ok())
        .is_some_and(|t| ours.contains(&t))
}

fn decode_b64(s: &str) -> Option<Vec<u8>> {
    let s: String = s.chars().filter(|c| !c.is_whitespace()).collect();
    STANDARD
        .decode(&s)
        .or_else(|_| STANDARD_NO_PAD.decode(&s))
        .ok()
        .filter(|b| !b.is_empty())
}

//! Certificate thumbprints (SHA-1 and SHA-256 digests of a certificate's DER encoding).

use std::fmt;
use std::str::FromStr;

use base64::Engine as _;
use base64::engine::general_purpose::{STANDARD, STANDARD_NO_PAD, URL_SAFE, URL_SAFE_NO_PAD};
use sha1::Digest as _;

/// Which digest a [`Thumbprint`] holds; told apart by length (20 or 32 bytes).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum ThumbprintAlg {
    /// SHA-1, 20 bytes: what Entra shows as "Thumbprint" and what `x5t` carries.
    Sha1,
    /// SHA-256, 32 bytes: what `x5t#S256` carries.
    Sha256,
}

/// A certificate thumbprint: the raw SHA-1 or SHA-256 digest of the certificate's DER bytes.
///
/// `Display` (and serde) use upper-case hex without separators, the form the Entra admin center
/// shows. [`Thumbprint::parse`] accepts every form the thumbprint is met in: hex in any case with
/// or without `:`/space separators, base64 and base64url with or without padding.
#[derive(Clone, PartialEq, Eq, Hash)]
pub struct Thumbprint(Vec<u8>);

/// A string that is not a SHA-1 or SHA-256 thumbprint in any accepted encoding.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error(
    "`{input}` is not a certificate thumbprint: give the SHA-1 (40 hex digits) or SHA-256 (64 hex \
     digits) thumbprint as shown by Entra or `openssl x509 -fingerprint`, or its base64/base64url form"
)]
pub struct ThumbprintParseError {
    input: String,
}

impl Thumbprint {
    /// The SHA-1 thumbprint of a DER-encoded certificate.
    pub fn sha1_of(der: &[u8]) -> Self {
        Self(sha1::Sha1::digest(der).to_vec())
    }

    /// The SHA-256 thumbprint of a DER-encoded certificate.
    pub fn sha256_of(der: &[u8]) -> Self {
        Self(sha2::Sha256::digest(der).to_vec())
    }

    /// Wraps raw digest bytes; `None` unless they are 20 (SHA-1) or 32 (SHA-256) bytes long.
    pub fn from_bytes(bytes: &[u8]) -> Option<Self> {
        matches!(bytes.len(), 20 | 32).then(|| Self(bytes.to_vec()))
    }

    /// Parses hex (any case; `:`, space and `-` separators ignored), base64 or base64url (padding
    /// optional). Only 20- or 32-byte results are accepted, so the encodings cannot be confused:
    /// hex is 40/64 characters, base64 27–28/43–44.
    pub fn parse(s: &str) -> Result<Self, ThumbprintParseError> {
        let err = || ThumbprintParseError {
            input: s.chars().take(100).collect(),
        };
        let trimmed = s.trim();
        let hex_digits: String = trimmed
            .chars()
            .filter(|c| !matches!(c, ':' | ' ' | '-' | '\t'))
            .collect();
        if matches!(hex_digits.len(), 40 | 64)
            && let Ok(bytes) = hex::decode(&hex_digits)
        {
            return Ok(Self(bytes));
        }
        for engine in [&STANDARD, &STANDARD_NO_PAD, &URL_SAFE, &URL_SAFE_NO_PAD] {
            if let Ok(bytes) = engine.decode(trimmed)
                && let Some(t) = Self::from_bytes(&bytes)
            {
                return Ok(t);
            }
        }
        Err(err())
    }

    /// SHA-1 or SHA-256, by length.
    pub fn algorithm(&self) -> ThumbprintAlg {
        if self.0.len() == 20 {
            ThumbprintAlg::Sha1
        } else {
            ThumbprintAlg::Sha256
        }
    }

    /// The raw digest bytes.
    pub fn as_bytes(&self) -> &[u8] {
        &self.0
    }

    /// Upper-case hex without separators (`E56B7DBD…`), as the Entra admin center shows it.
    pub fn hex_upper(&self) -> String {
        hex::encode_upper(&self.0)
    }

    /// Unpadded base64url of the raw bytes (RFC 7515 `x5t` / `x5t#S256`).
    pub fn base64url(&self) -> String {
        URL_SAFE_NO_PAD.encode(&self.0)
    }

    /// Padded standard base64 of the raw bytes (Graph `keyCredential.customKeyIdentifier`).
    pub fn base64(&self) -> String {
        STANDARD.encode(&self.0)
    }
}

impl fmt::Display for Thumbprint {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.hex_upper())
    }
}

impl fmt::Debug for Thumbprint {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Thumbprint({:?}:{})", self.algorithm(), self.hex_upper())
    }
}

impl FromStr for Thumbprint {
    type Err = ThumbprintParseError;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Self::parse(s)
    }
}

impl serde::Serialize for Thumbprint {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.serialize_str(&self.hex_upper())
    }
}

impl<'de> serde::Deserialize<'de> for Thumbprint {
    fn deserialize<D: serde::Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let s = String::deserialize(deserializer)?;
        Self::parse(&s).map_err(serde::de::Error::custom)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    // The example of entra-facts §2.4: hex 84E0…5534 is `hOBcHZi846VCHSJbFAs26Go9VTQ=` in base64.
    const HEX: &str = "84E05C1D98BCE3A5421D225B140B36E86A3D5534";
    const B64: &str = "hOBcHZi846VCHSJbFAs26Go9VTQ=";

    #[test]
    fn encodes_the_documented_example() {
        let t = Thumbprint::parse(HEX).unwrap();
        assert_eq!(t.algorithm(), ThumbprintAlg::Sha1);
        assert_eq!(t.base64(), B64);
        assert_eq!(t.base64url(), "hOBcHZi846VCHSJbFAs26Go9VTQ");
        assert_eq!(t.to_string(), HEX);
    }

    #[test]
    fn parses_every_accepted_form_to_the_same_value() {
        let expected = Thumbprint::parse(HEX).unwrap();
        for form in [
            HEX.to_lowercase().as_str(),
            "84:E0:5C:1D:98:BC:E3:A5:42:1D:22:5B:14:0B:36:E8:6A:3D:55:34",
            "84 e0 5c 1d 98 bc e3 a5 42 1d 22 5b 14 0b 36 e8 6a 3d 55 34",
            B64,
            "hOBcHZi846VCHSJbFAs26Go9VTQ",
            &format!("  {HEX}\n"),
        ] {
            assert_eq!(Thumbprint::parse(form).unwrap(), expected, "form {form:?}");
        }
    }

    #[test]
    fn base64url_alphabet_is_accepted() {
        // 0xfb 0xff... encodes with `+`/`/` in base64 and `-`/`_` in base64url.
        let raw = [0xfbu8; 32];
        let t = Thumbprint::from_bytes(&raw).unwrap();
        assert!(t.base64().contains('+'));
        assert!(t.base64url().contains('-'));
        assert_eq!(Thumbprint::parse(&t.base64url()).unwrap(), t);
        assert_eq!(Thumbprint::parse(&t.base64()).unwrap(), t);
        assert_eq!(t.algorithm(), ThumbprintAlg::Sha256);
    }

    #[test]
    fn rejects_wrong_lengths_and_garbage() {
        for bad in [
            "",
            "84E05C1D98BCE3A5421D225B140B36E86A3D55",
            "84E05C1D98BCE3A5421D225B140B36E86A3D5534FF",
            "not a thumbprint",
            "ZZE05C1D98BCE3A5421D225B140B36E86A3D5534",
            "aGVsbG8=",
        ] {
            assert!(Thumbprint::parse(bad).is_err(), "accepted {bad:?}");
        }
        assert!(Thumbprint::from_bytes(&[0; 16]).is_none());
    }

    #[test]
    fn digests_match_known_values() {
        // SHA-1("abc") and SHA-256("abc") from FIPS 180.
        assert_eq!(
            Thumbprint::sha1_of(b"abc").hex_upper(),
            "A9993E364706816ABA3E25717850C26C9CD0D89D"
        );
        assert_eq!(
            Thumbprint::sha256_of(b"abc").hex_upper(),
            "BA7816BF8F01CFEA414140DE5DAE2223B00361A396177A9CB410FF61F20015AD"
        );
    }

    #[test]
    fn serde_round_trip_uses_upper_hex() {
        let t = Thumbprint::parse(HEX).unwrap();
        let json = serde_json::to_string(&t).unwrap();
        assert_eq!(json, format!("\"{HEX}\""));
        let back: Thumbprint = serde_json::from_str(&format!("\"{B64}\"")).unwrap();
        assert_eq!(back, t);
        assert!(serde_json::from_str::<Thumbprint>("\"nope\"").is_err());
    }
}

//! Certificate credentials for custom Azure apps: what Consentry needs to authenticate as an app
//! with a certificate instead of a client secret.
//!
//! - [`ClientCertificate::from_pfx`] reads the `.pfx` an administrator uploads (OpenSSL 3 default,
//!   `-legacy`, Windows-exported, empty password, with a chain) and says precisely what is wrong
//!   with it ([`PfxError`]): wrong password, no key, no certificate, expired, not yet valid, key
//!   and certificate that do not belong together, corrupt or oversize file.
//! - [`Thumbprint`]: SHA-1 / SHA-256 thumbprints, in every encoding Entra and Graph use.
//! - [`ClientCertificate::client_assertion`] signs the `private_key_jwt` client assertion for the
//!   token endpoint (RS256 + `x5t` or PS256 + `x5t#S256`).
//! - [`generate_self_signed`] creates the self-signed pair for "Prepare a Certificate for the
//!   Custom Azure App": a password-protected `.pfx` and the `.cer` to upload to Entra.
//! - [`keycredential_matches`] tells whether an app registration's Graph `keyCredentials` entry is
//!   this certificate.
//!
//! The crate is pure: nothing here reads files, the network or the clock (the caller passes
//! `now`). The one exception is [`GeneratedPair::write_to_dir`], which writes a generated pair.
//!
//! ```
//! use consentry_certs::{AssertionAlg, ClientCertificate, generate_self_signed};
//! use time::OffsetDateTime;
//!
//! let now = OffsetDateTime::now_utc();
//! // `consentry cert new`: the .cer goes to the app registration, the .pfx to Consentry.
//! let pair = generate_self_signed("CN=contoso-backup-app", 2, "a strong password", now)?;
//! println!("upload the .cer; Entra will show thumbprint {}", pair.sha1_thumbprint);
//!
//! // Re-authorizing a custom app: the admin uploads the .pfx and its password.
//! let cert = ClientCertificate::from_pfx(&pair.pfx, "a strong password", now)?;
//! let token_endpoint = "https://login.microsoftonline.com/contoso.onmicrosoft.com/oauth2/v2.0/token";
//! let assertion = cert.client_assertion(
//!     "6731de76-14a6-49ae-97bc-6eba6914391e",
//!     token_endpoint,
//!     AssertionAlg::Ps256X5tS256,
//!     now,
//! )?;
//! // POST client_assertion_type=CLIENT_ASSERTION_TYPE & client_assertion=assertion to the endpoint.
//! assert_eq!(assertion.split('.').count(), 3);
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```

mod assertion;
mod generate;
mod keycredential;
mod pfx;
mod public;
mod thumbprint;

pub use assertion::{ASSERTION_LIFETIME_SECS, AssertionAlg, AssertionClaims, AssertionError};
pub use generate::{GenerateError, GeneratedPair, MAX_GENERATED_YEARS, generate_self_signed};
pub use keycredential::keycredential_matches;
pub use pfx::{ClientCertificate, MAX_PFX_BYTES, MIN_RSA_BITS, PfxError, utc_minutes};
pub use public::{CertificateError, PublicCertificate};
pub use thumbprint::{Thumbprint, ThumbprintAlg, ThumbprintParseError};

/// `client_assertion_type` value to send with a client assertion.
pub const CLIENT_ASSERTION_TYPE: &str = "urn:ietf:params:oauth:client-assertion-type:jwt-bearer";

/// The `.pfx` fuzz target's body (`fuzz/fuzz_targets/pfx.rs`), also run over the committed
/// corpus by this crate's tests: parses `bytes` with no password and with the fixtures' password,
/// and reads a parsed certificate's thumbprints and subject. Never panics on any input.
#[doc(hidden)]
pub fn fuzz_pfx(bytes: &[u8]) -> Vec<Result<String, PfxError>> {
    // A fixed time inside the fixtures' validity, so results do not depend on the clock.
    let now = time::macros::datetime!(2030-01-01 00:00 UTC);
    ["", "Fixture-Pass-1"]
        .iter()
        .map(|password| {
            ClientCertificate::from_pfx(bytes, password, now).map(|c| {
                format!(
                    "{} {} {}",
                    c.subject(),
                    c.sha1_thumbprint(),
                    c.sha256_thumbprint()
                )
            })
        })
        .collect()
}

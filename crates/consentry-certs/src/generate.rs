//! Self-signed certificates for a custom Azure app: a password-protected `.pfx` for Consentry and
//! a `.cer` to upload to the app registration in Microsoft Entra ID.

use std::io::Write as _;
use std::path::{Path, PathBuf};

use rcgen::{
    CertificateParams, DistinguishedName, DnType, ExtendedKeyUsagePurpose, IsCa, KeyPair,
    KeyUsagePurpose, PKCS_RSA_SHA256, RsaKeySize, SerialNumber,
};
use time::{Duration, OffsetDateTime};

use crate::pfx::write_pfx;
use crate::{PfxError, Thumbprint};

/// Longest validity [`generate_self_signed`] accepts, in years.
pub const MAX_GENERATED_YEARS: u32 = 30;

/// How far `not_before` is set back from `now`, so that a clock slightly behind still accepts it.
const BACKDATE: Duration = Duration::minutes(10);

/// Why a certificate pair could not be generated.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum GenerateError {
    /// The subject common name was empty, too long or had control characters.
    #[error(
        "the subject `{0}` cannot be used: give a common name of 1 to 64 printable characters, \
         e.g. `consentry-app` or `CN=consentry-app`"
    )]
    InvalidSubject(String),
    /// The validity in years was zero or above [`MAX_GENERATED_YEARS`].
    #[error("a validity of {0} years is not allowed: choose 1 to {MAX_GENERATED_YEARS} years")]
    InvalidYears(u32),
    /// The `.pfx` password was empty.
    #[error("the .pfx password is empty: choose a password, the .pfx holds the app's private key")]
    EmptyPassword,
    /// Key generation or certificate signing failed in the crypto library.
    #[error("creating the key or certificate failed ({0}): try again; if it persists, report it")]
    Crypto(String),
    /// Writing the `.pfx` failed.
    #[error(transparent)]
    Pfx(#[from] PfxError),
}

/// A freshly generated self-signed certificate with its key.
#[derive(Clone)]
pub struct GeneratedPair {
    /// The `.pfx` (certificate + private key, encrypted with the password given).
    pub pfx: Vec<u8>,
    /// The certificate alone, DER: the `.cer` to upload to the app in Entra.
    pub cer_der: Vec<u8>,
    /// The certificate alone, PEM.
    pub cer_pem: String,
    /// SHA-1 thumbprint, as Entra will show it.
    pub sha1_thumbprint: Thumbprint,
    /// SHA-256 thumbprint.
    pub sha256_thumbprint: Thumbprint,
    /// Start of validity (`now` less ten minutes).
    pub not_before: OffsetDateTime,
    /// End of validity.
    pub not_after: OffsetDateTime,
}

impl std::fmt::Debug for GeneratedPair {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("GeneratedPair")
            .field(
                "pfx",
                &format_args!("<{} bytes, encrypted>", self.pfx.len()),
            )
            .field("cer_der", &format_args!("<{} bytes>", self.cer_der.len()))
            .field("sha1_thumbprint", &self.sha1_thumbprint)
            .field("not_before", &self.not_before)
            .field("not_after", &self.not_after)
            .finish_non_exhaustive()
    }
}

/// Generates an RSA-2048 key and a self-signed certificate for `CN=<subject_cn>` valid from now
/// (less ten minutes) for `years` years, with key usage digitalSignature/keyEncipherment and
/// extended key usage clientAuth — what the PowerShell `New-SelfSignedCertificate` recipe for a
/// custom Azure app produces. `subject_cn` may be given with or without a leading `CN=`.
pub fn generate_self_signed(
    subject_cn: &str,
    years: u32,
    password: &str,
    now: OffsetDateTime,
) -> Result<GeneratedPair, GenerateError> {
    let trimmed = subject_cn.trim();
    let cn = trimmed
        .strip_prefix("CN=")
        .or_else(|| trimmed.strip_prefix("cn="))
        .unwrap_or(trimmed)
        .trim();
    if cn.is_empty() || cn.chars().count() > 64 || cn.chars().any(char::is_control) {
        return Err(GenerateError::InvalidSubject(subject_cn.to_owned()));
    }
    if years == 0 || years > MAX_GENERATED_YEARS {
        return Err(GenerateError::InvalidYears(years));
    }
    if password.is_empty() {
        return Err(GenerateError::EmptyPassword);
    }

    let now = now.replace_nanosecond(0).unwrap_or(now);
    let not_before = now - BACKDATE;
    let not_after = add_years(now, years);

    let crypto = |e: rcgen::Error| GenerateError::Crypto(e.to_string());
    let key = KeyPair::generate_rsa_for(&PKCS_RSA_SHA256, RsaKeySize::_2048).map_err(crypto)?;

    let mut params = CertificateParams::default();
    let mut dn = DistinguishedName::new();
    dn.push(DnType::CommonName, cn);
    params.distinguished_name = dn;
    params.not_before = not_before;
    params.not_after = not_after;
    params.is_ca = IsCa::ExplicitNoCa;
    params.key_usages = vec![
        KeyUsagePurpose::DigitalSignature,
        KeyUsagePurpose::KeyEncipherment,
    ];
    params.extended_key_usages = vec![ExtendedKeyUsagePurpose::ClientAuth];
    // A random positive 128-bit serial (the top bit cleared keeps the DER integer positive).
    let mut serial = *uuid::Uuid::new_v4().as_bytes();
    serial[0] &= 0x7f;
    params.serial_number = Some(SerialNumber::from_slice(&serial));
    let cert = params.self_signed(&key).map_err(crypto)?;

    let cer_der = cert.der().to_vec();
    let pfx = write_pfx(&cer_der, &[], &key.serialize_der(), password)?;
    Ok(GeneratedPair {
        cer_pem: crate::public::to_pem(&cer_der),
        sha1_thumbprint: Thumbprint::sha1_of(&cer_der),
        sha256_thumbprint: Thumbprint::sha256_of(&cer_der),
        pfx,
        cer_der,
        not_before,
        not_after,
    })
}

/// `t` plus whole calendar years; 29 February becomes 28 February in a non-leap target year.
fn add_years(t: OffsetDateTime, years: u32) -> OffsetDateTime {
    let year = t.year() + i32::try_from(years).unwrap_or(i32::MAX / 2);
    t.replace_year(year)
        .or_else(|_| t.replace_day(28).and_then(|d| d.replace_year(year)))
        .unwrap_or(t + Duration::days(365 * i64::from(years)))
}

impl GeneratedPair {
    /// Writes `<base_name>.pfx` (mode 0600 on Unix) and `<base_name>.cer` (DER) into `dir`, which
    /// must exist. Existing files are never overwritten (`AlreadyExists`). Returns both paths,
    /// `.pfx` first.
    pub fn write_to_dir(&self, dir: &Path, base_name: &str) -> std::io::Result<(PathBuf, PathBuf)> {
        if base_name.is_empty()
            || base_name.starts_with('.')
            || base_name.contains(['/', '\\', '\0'])
        {
            return Err(std::io::Error::new(
                std::io::ErrorKind::InvalidInput,
                format!(
                    "`{base_name}` is not a plain file name: give a name without slashes, e.g. `consentry-app`"
                ),
            ));
        }
        let pfx_path = dir.join(format!("{base_name}.pfx"));
        let cer_path = dir.join(format!("{base_name}.cer"));
        if cer_path.exists() {
            return Err(std::io::Error::new(
                std::io::ErrorKind::AlreadyExists,
                format!(
                    "{} already exists: choose another name or directory",
                    cer_path.display()
                ),
            ));
        }
        write_new(&pfx_path, &self.pfx, true)?;
        if let Err(e) = write_new(&cer_path, &self.cer_der, false) {
            // Leave no half pair behind.
            let _ = std::fs::remove_file(&pfx_path);
            return Err(e);
        }
        Ok((pfx_path, cer_path))
    }
}

fn write_new(path: &Path, bytes: &[u8], private: bool) -> std::io::Result<()> {
    let mut options = std::fs::OpenOptions::new();
    options.write(true).create_new(true);
    #[cfg(unix)]
    {
        use std::os::unix::fs::OpenOptionsExt as _;
        options.mode(if private { 0o600 } else { 0o644 });
    }
    #[cfg(not(unix))]
    let _ = private;
    let mut file = options.open(path).map_err(|e| {
        std::io::Error::new(e.kind(), format!("cannot create {}: {e}", path.display()))
    })?;
    file.write_all(bytes)?;
    file.sync_all()
}

//! Reading and writing PKCS#12 (`.pfx`) files holding an app's certificate and private key.

use p12_keystore::{KeyStore, KeyStoreEntry, Pkcs12Archive, PrivateKey, PrivateKeyChain};
use secrecy::{ExposeSecret as _, SecretSlice};
use time::OffsetDateTime;

use crate::Thumbprint;
use crate::public::{PublicCertificate, RSA_ENCRYPTION_OID, key_algorithm_name};

/// The shortest RSA key accepted, in bits (what Microsoft Entra ID requires of certificate
/// credentials).
pub const MIN_RSA_BITS: usize = 2048;
/// The longest RSA key accepted, in bits.
pub const MAX_RSA_BITS: usize = 8192;

/// A time as people read it in a message: `2021-01-01 00:00 UTC`.
pub fn utc_minutes(t: OffsetDateTime) -> String {
    let t = t.to_offset(time::UtcOffset::UTC);
    format!(
        "{:04}-{:02}-{:02} {:02}:{:02} UTC",
        t.year(),
        u8::from(t.month()),
        t.day(),
        t.hour(),
        t.minute()
    )
}

/// Largest `.pfx` accepted. A certificate with its key and a CA chain is a few kilobytes; the
/// limit keeps an upload from making the service parse (and decrypt) megabytes.
pub const MAX_PFX_BYTES: usize = 256 * 1024;

/// Why a `.pfx` could not be used as an app credential. Each message says what to do.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum PfxError {
    /// The upload is larger than [`MAX_PFX_BYTES`].
    #[error(
        "the .pfx file is {size} bytes, more than the {limit}-byte limit: a certificate with its \
         private key is a few kilobytes, so check that the right file was chosen"
    )]
    TooLarge {
        /// Size of the upload in bytes.
        size: usize,
        /// The limit in bytes.
        limit: usize,
    },
    /// The file is empty (0 bytes).
    #[error(
        "the file is empty (0 bytes): choose the .pfx file again; if it is empty on disk too, \
         export the certificate again as .pfx (PKCS#12) with its private key"
    )]
    Empty,
    /// A PEM (text) file: a certificate and/or key in Base64, not a PKCS#12 archive.
    #[error(
        "this is a PEM file (text beginning with \"-----BEGIN\"), not a .pfx: export the certificate \
         with its private key as .pfx (PKCS#12), e.g. openssl pkcs12 -export -in cert.pem -inkey \
         key.pem -out app.pfx"
    )]
    Pem,
    /// A bare certificate (a `.cer`/`.crt`, DER): no private key.
    #[error(
        "this is a certificate without its private key (.cer/.crt): upload the .pfx that holds the \
         private key (the .cer is what goes to the app in Microsoft Entra ID)"
    )]
    CertificateOnly,
    /// Not a readable PKCS#12 file (truncated, another format, or an encryption not supported).
    #[error(
        "the file is not a readable PKCS#12 (.pfx) file: it may be truncated, in another format \
         (a .cer or .crt holds no private key) or encrypted with an unsupported algorithm; export \
         the certificate again as .pfx with its private key"
    )]
    Corrupt,
    /// The password does not open the file (its integrity check failed).
    #[error(
        "the password does not open this .pfx file (or the file was altered after it was \
         exported): check the certificate password and try again"
    )]
    WrongPassword,
    /// The file holds certificates only.
    #[error(
        "the .pfx file holds no private key: export the certificate again choosing to export the \
         private key (Windows: \"Yes, export the private key\"; openssl: pkcs12 -export -inkey KEY)"
    )]
    NoPrivateKey,
    /// The file holds a private key only.
    #[error(
        "the .pfx file holds a private key but no certificate: export it again including the \
         certificate that was uploaded to the app in Microsoft Entra ID"
    )]
    NoCertificate,
    /// The certificate's validity ended before now.
    #[error(
        "the certificate expired on {}: create or renew a certificate, upload its .cer to the app \
         in Microsoft Entra ID and use the new .pfx",
        utc_minutes(*.not_after)
    )]
    Expired {
        /// End of the certificate's validity.
        not_after: OffsetDateTime,
    },
    /// The certificate's validity starts after now.
    #[error(
        "the certificate is not valid until {}: use it after that date, or check the clock of the \
         machine that created it",
        utc_minutes(*.not_before)
    )]
    NotYetValid {
        /// Start of the certificate's validity.
        not_before: OffsetDateTime,
    },
    /// The private key does not belong to any certificate in the file.
    #[error(
        "the private key in the .pfx file does not belong to its certificate: export the .pfx \
         again from the machine that holds the certificate's own private key"
    )]
    KeyMismatch,
    /// The RSA key is shorter than Microsoft Entra ID accepts.
    #[error(
        "the certificate's RSA key is {bits} bits; Microsoft Entra ID and Consentry need at least \
         {MIN_RSA_BITS} bits: create a new certificate with an RSA key of 2048 bits or more (e.g. \
         New-SelfSignedCertificate -KeyLength 2048, or openssl req -newkey rsa:2048), upload its \
         .cer to the app in Microsoft Entra ID and use its .pfx"
    )]
    RsaKeyTooSmall {
        /// The key's modulus length in bits.
        bits: usize,
    },
    /// The key cannot sign Entra client assertions (not RSA, or an RSA size out of range).
    #[error(
        "the private key cannot sign Microsoft Entra client assertions ({0}): create the \
         certificate with an RSA key of 2048 bits or more"
    )]
    UnsupportedKey(String),
}

/// An app's certificate credential: the certificate, its CA chain and its private key, checked to
/// belong together and to be valid at the time it was loaded.
///
/// The private key is held in a [`SecretSlice`] and never shown by `Debug`.
#[derive(Clone)]
pub struct ClientCertificate {
    leaf: PublicCertificate,
    chain: Vec<Vec<u8>>,
    key_pkcs8: SecretSlice<u8>,
    /// The private key parsed for signing, once (shared by clones). Parsing and checking an RSA key
    /// and setting up its blinding cost about as much as a signature: keeping the parsed key halves
    /// the CPU of each client assertion.
    pub(crate) signing_key: std::sync::Arc<std::sync::OnceLock<aws_lc_rs::signature::RsaKeyPair>>,
}

impl ClientCertificate {
    /// Reads a `.pfx`: OpenSSL 3 default (AES-256/PBKDF2), `-legacy` (RC2/3DES), Windows-exported
    /// (3DES/SHA-1), empty password, with or without a chain.
    ///
    /// The certificate chosen is the one whose public key matches the private key; the other
    /// certificates become the chain, ordered from the leaf's issuer upwards. Checks, in order:
    /// size, format, password, presence of certificate and key, key type, key/certificate match,
    /// validity at `now`.
    pub fn from_pfx(bytes: &[u8], password: &str, now: OffsetDateTime) -> Result<Self, PfxError> {
        if bytes.len() > MAX_PFX_BYTES {
            return Err(PfxError::TooLarge {
                size: bytes.len(),
                limit: MAX_PFX_BYTES,
            });
        }
        if bytes.is_empty() {
            return Err(PfxError::Empty);
        }
        let archive = Pkcs12Archive::from_pkcs12(bytes, password)
            .map_err(|e| not_a_pfx(bytes).unwrap_or_else(|| map_p12_error(e)))?;
        if archive.certs.is_empty() {
            return Err(PfxError::NoCertificate);
        }
        if archive.keys.is_empty() {
            return Err(PfxError::NoPrivateKey);
        }
        let certs = archive
            .certs
            .iter()
            .map(|bag| PublicCertificate::from_der(bag.cert.as_der()))
            .collect::<Result<Vec<_>, _>>()
            .map_err(|_| PfxError::Corrupt)?;

        let mut first_problem = None;
        for bag in &archive.keys {
            let key_der = bag.key.as_der();
            let public = match rsa_public_key_of(key_der) {
                Ok(public) => public,
                Err(e) => {
                    first_problem.get_or_insert(e);
                    continue;
                }
            };
            let Some(leaf_idx) = certs.iter().position(|c| {
                c.key_algorithm_oid() == RSA_ENCRYPTION_OID && c.public_key_raw() == public
            }) else {
                first_problem.get_or_insert(PfxError::KeyMismatch);
                continue;
            };
            let mut rest = certs;
            let leaf = rest.remove(leaf_idx);
            let chain = order_chain(&leaf, rest);
            return Self::checked(leaf, chain, key_der.to_vec(), now);
        }
        Err(first_problem.unwrap_or(PfxError::KeyMismatch))
    }

    /// Builds a credential from parts already in memory (DER certificate, DER chain, PKCS#8 key),
    /// with the same checks as [`ClientCertificate::from_pfx`].
    pub fn from_parts(
        certificate_der: &[u8],
        chain_der: Vec<Vec<u8>>,
        private_key_pkcs8_der: SecretSlice<u8>,
        now: OffsetDateTime,
    ) -> Result<Self, PfxError> {
        let leaf = PublicCertificate::from_der(certificate_der).map_err(|_| PfxError::Corrupt)?;
        let key = private_key_pkcs8_der.expose_secret();
        let public = rsa_public_key_of(key)?;
        if leaf.key_algorithm_oid() != RSA_ENCRYPTION_OID || leaf.public_key_raw() != public {
            return Err(PfxError::KeyMismatch);
        }
        Self::checked(leaf, chain_der, key.to_vec(), now)
    }

    fn checked(
        leaf: PublicCertificate,
        chain: Vec<Vec<u8>>,
        key_pkcs8: Vec<u8>,
        now: OffsetDateTime,
    ) -> Result<Self, PfxError> {
        if now < leaf.not_before() {
            return Err(PfxError::NotYetValid {
                not_before: leaf.not_before(),
            });
        }
        if now > leaf.not_after() {
            return Err(PfxError::Expired {
                not_after: leaf.not_after(),
            });
        }
        Ok(Self {
            leaf,
            chain,
            key_pkcs8: SecretSlice::from(key_pkcs8),
            signing_key: std::sync::Arc::default(),
        })
    }

    /// The certificate's DER encoding (the `.cer` uploaded to Entra).
    pub fn certificate_der(&self) -> &[u8] {
        self.leaf.der()
    }

    /// The parsed public certificate.
    pub fn certificate(&self) -> &PublicCertificate {
        &self.leaf
    }

    /// The CA certificates that came with it (DER), from the leaf's issuer upwards.
    pub fn chain_der(&self) -> &[Vec<u8>] {
        &self.chain
    }

    /// Subject distinguished name in RFC 4514 form, e.g. `CN=consentry-app`.
    pub fn subject(&self) -> &str {
        self.leaf.subject()
    }

    /// Start of the certificate's validity.
    pub fn not_before(&self) -> OffsetDateTime {
        self.leaf.not_before()
    }

    /// End of the certificate's validity.
    pub fn not_after(&self) -> OffsetDateTime {
        self.leaf.not_after()
    }

    /// SHA-1 thumbprint (what Entra shows, and what `x5t` carries).
    pub fn sha1_thumbprint(&self) -> Thumbprint {
        self.leaf.sha1_thumbprint()
    }

    /// SHA-256 thumbprint (what `x5t#S256` carries).
    pub fn sha256_thumbprint(&self) -> Thumbprint {
        self.leaf.sha256_thumbprint()
    }

    /// The private key, PKCS#8 DER.
    pub fn private_key_pkcs8_der(&self) -> &SecretSlice<u8> {
        &self.key_pkcs8
    }

    /// Writes the certificate, chain and key as a `.pfx` protected by `password` (PBES2 with
    /// AES-256-CBC and PBKDF2-HMAC-SHA256, HMAC-SHA256 MAC), e.g. to seal it for storage.
    pub fn to_pfx(&self, password: &str) -> Result<Vec<u8>, PfxError> {
        write_pfx(
            self.leaf.der(),
            &self.chain,
            self.key_pkcs8.expose_secret(),
            password,
        )
    }
}

impl std::fmt::Debug for ClientCertificate {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ClientCertificate")
            .field("subject", &self.leaf.subject())
            .field("not_before", &self.leaf.not_before())
            .field("not_after", &self.leaf.not_after())
            .field("sha1_thumbprint", &self.leaf.sha1_thumbprint().hex_upper())
            .field("chain_len", &self.chain.len())
            .field("private_key", &"[REDACTED]")
            .finish()
    }
}

/// Writes a `.pfx` from DER parts; the key's local key ID is the certificate's SHA-1 thumbprint.
pub(crate) fn write_pfx(
    leaf_der: &[u8],
    chain: &[Vec<u8>],
    key_pkcs8: &[u8],
    password: &str,
) -> Result<Vec<u8>, PfxError> {
    let corrupt = |_| PfxError::Corrupt;
    let mut certs = vec![p12_keystore::Certificate::from_der(leaf_der).map_err(corrupt)?];
    for der in chain {
        certs.push(p12_keystore::Certificate::from_der(der).map_err(corrupt)?);
    }
    let key = PrivateKey::from_der(key_pkcs8).map_err(corrupt)?;
    let local_key_id = Thumbprint::sha1_of(leaf_der).as_bytes().to_vec();
    let mut store = KeyStore::new();
    store.add_entry(
        "consentry",
        KeyStoreEntry::PrivateKeyChain(PrivateKeyChain::new(local_key_id, key, certs)),
    );
    store.writer(password).write().map_err(corrupt)
}

/// The PKCS#1 `RSAPublicKey` DER of a PKCS#8 RSA private key, validating the key on the way.
fn rsa_public_key_of(pkcs8_der: &[u8]) -> Result<Vec<u8>, PfxError> {
    let info = pkcs8::PrivateKeyInfoRef::try_from(pkcs8_der).map_err(|_| PfxError::Corrupt)?;
    let oid = info.algorithm.oid.to_string();
    if oid != RSA_ENCRYPTION_OID {
        return Err(PfxError::UnsupportedKey(format!(
            "it is an {} key, not RSA",
            key_algorithm_name(&oid)
        )));
    }
    let bits = rsa_modulus_bits(info.private_key.as_bytes());
    if let Some(bits) = bits
        && bits < MIN_RSA_BITS
    {
        return Err(PfxError::RsaKeyTooSmall { bits });
    }
    // The crypto library's own words ("Key rejected by …") say nothing to an administrator.
    let pair =
        rcgen::KeyPair::from_pkcs8_der_and_sign_algo(&pkcs8_der.into(), &rcgen::PKCS_RSA_SHA256)
            .map_err(|_| {
                PfxError::UnsupportedKey(match bits {
                    Some(bits) if bits > MAX_RSA_BITS => format!(
                        "its RSA key is {bits} bits, more than the {MAX_RSA_BITS} supported"
                    ),
                    Some(bits) => format!("its {bits}-bit RSA key is malformed"),
                    None => "its RSA key is malformed".to_string(),
                })
            })?;
    Ok(pair.public_key_raw().to_vec())
}

/// Orders the non-leaf certificates by following issuer names from the leaf upwards; the ones
/// not on that path follow in their original order. Copies of the leaf and duplicates are dropped.
fn order_chain(leaf: &PublicCertificate, rest: Vec<PublicCertificate>) -> Vec<Vec<u8>> {
    let mut unique: Vec<PublicCertificate> = Vec::with_capacity(rest.len());
    for cert in rest {
        if cert.der() != leaf.der() && !unique.iter().any(|u| u.der() == cert.der()) {
            unique.push(cert);
        }
    }
    let mut rest = unique;
    let mut ordered = Vec::with_capacity(rest.len());
    let mut issuer = leaf.issuer().to_owned();
    let mut current_subject = leaf.subject().to_owned();
    while issuer != current_subject {
        let Some(idx) = rest.iter().position(|c| c.subject() == issuer) else {
            break;
        };
        let next = rest.remove(idx);
        issuer = next.issuer().to_owned();
        current_subject = next.subject().to_owned();
        ordered.push(next.der().to_vec());
    }
    ordered.extend(rest.into_iter().map(|c| c.der().to_vec()));
    ordered
}

/// The length in bits of the modulus of a PKCS#1 `RSAPrivateKey` (`SEQUENCE { version, modulus, … }`),
/// or None when the bytes are not one.
fn rsa_modulus_bits(pkcs1_der: &[u8]) -> Option<usize> {
    use der::{Decode as _, Reader as _};
    let mut reader = der::SliceReader::new(pkcs1_der).ok()?;
    let modulus = reader
        .sequence(|seq| {
            let _version = u8::decode(seq)?;
            let modulus = der::asn1::UintRef::decode(seq)?;
            // The rest (exponents, primes) is not needed here.
            seq.read_slice(seq.remaining_len())?;
            Ok::<_, der::Error>(modulus)
        })
        .ok()?;
    let bytes = modulus.as_bytes();
    let first = *bytes.first()?;
    Some(bytes.len() * 8 - first.leading_zeros() as usize)
}

/// What a file that is not a PKCS#12 archive is instead, when it is recognizably something else: a
/// PEM text file, or a bare DER certificate (a `.cer`/`.crt` renamed `.pfx`).
fn not_a_pfx(bytes: &[u8]) -> Option<PfxError> {
    let head = &bytes[..bytes.len().min(1024)];
    let text = String::from_utf8_lossy(head);
    if text
        .trim_start_matches('\u{feff}')
        .trim_start()
        .starts_with("-----BEGIN")
        || text.contains("-----BEGIN ")
    {
        return Some(PfxError::Pem);
    }
    if PublicCertificate::from_der(bytes).is_ok() {
        return Some(PfxError::CertificateOnly);
    }
    None
}

fn map_p12_error(e: p12_keystore::error::Error) -> PfxError {
    use p12_keystore::error::Error as E;
    match e {
        // The MAC is keyed by the password: a mismatch means a wrong password (or altered bytes,
        // which cannot be told apart). Bad padding after decryption means the same for files
        // without a MAC.
        E::MacError(_) | E::UnpadError => PfxError::WrongPassword,
        _ => PfxError::Corrupt,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const PASSWORD: &str = "Fixture-Pass-1";

    #[test]
    fn duplicate_and_leaf_copies_are_dropped_from_the_chain() {
        let now = time::macros::datetime!(2030-01-01 0:00 UTC);
        let source = ClientCertificate::from_pfx(
            include_bytes!("../tests/fixtures/chain.pfx"),
            PASSWORD,
            now,
        )
        .unwrap();
        let root = include_bytes!("../tests/fixtures/root.cer").to_vec();
        let inter = include_bytes!("../tests/fixtures/intermediate.cer").to_vec();
        let leaf = source.certificate_der().to_vec();
        let messy = vec![root.clone(), leaf, inter.clone(), root.clone()];
        let key = source.private_key_pkcs8_der().expose_secret();
        let pfx = write_pfx(source.certificate_der(), &messy, key, "pw").unwrap();
        let back = ClientCertificate::from_pfx(&pfx, "pw", now).unwrap();
        assert_eq!(back.certificate_der(), source.certificate_der());
        assert_eq!(back.chain_der(), &[inter, root]);
    }
}

//! Sealing of secrets at rest with AES-256-GCM.
//!
//! Every secret is sealed before it reaches the database and opened only after it has been read back.
//! A sealed value is bound to its row (profile ID and secret kind) through the AEAD's associated data,
//! so a sealed value copied into another row fails to open.
//!
//! Sealed format (version 1):
//!
//! ```text
//! +---------+-------------+-------------+------------------------------+
//! | version | key ID      | nonce       | ciphertext || 16-byte tag   |
//! | 1 byte  | 8 bytes     | 12 bytes    | len(plaintext) + 16 bytes    |
//! +---------+-------------+-------------+------------------------------+
//! ```
//!
//! The key ID is the first 8 bytes of SHA-256 of the key, so that a sealer holding several keys (the
//! current one and older ones during a rotation) can pick the right one to open with. The associated
//! data covers the version byte, the key ID and the row binding.

use std::fmt;
use std::io::Write as _;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, RwLock, RwLockReadGuard};

use aes_gcm::aead::{Aead, KeyInit, Payload};
use aes_gcm::{Aes256Gcm, Key, Nonce};
use base64::Engine as _;
use base64::engine::general_purpose::STANDARD;
use rand::RngCore as _;
use secrecy::SecretString;
use secrecy::zeroize::{Zeroize, Zeroizing};
use sha2::{Digest as _, Sha256};

/// The version byte of the sealed format written today.
pub const SEALED_FORMAT_VERSION: u8 = 1;
/// Length of the key ID prefix.
pub const KEY_ID_LEN: usize = 8;
/// Length of the AES-GCM nonce.
pub const NONCE_LEN: usize = 12;
/// Length of the AES-GCM tag.
pub const TAG_LEN: usize = 16;
/// Bytes a sealed value adds to its plaintext.
pub const SEALED_OVERHEAD: usize = 1 + KEY_ID_LEN + NONCE_LEN + TAG_LEN;

/// Domain separation for the associated data, so these ciphertexts cannot be confused with any
/// other use of the same key.
const AAD_LABEL: &[u8] = b"consentry/secret/v1";

/// A failure to build a sealer or to seal or open a value.
#[derive(Debug, thiserror::Error)]
pub enum SealerError {
    /// The master key given as text is not base64 of exactly 32 bytes.
    #[error(
        "the master key is not valid: {0}; give 32 random bytes encoded as base64 (for example the output of `openssl rand -base64 32`)"
    )]
    BadKey(String),
    /// The key file could not be read or created.
    #[error(
        "the master key file {path} could not be {action}: {source}; check the path and its permissions"
    )]
    KeyFileIo {
        /// The key file.
        path: PathBuf,
        /// What was being done ("read", "created").
        action: &'static str,
        /// The I/O error.
        #[source]
        source: std::io::Error,
    },
    /// The key file is readable by others than its owner.
    #[error(
        "the master key file {path} has permissions {mode:o}, which let other users read it; restrict it with `chmod 600 {path}`"
    )]
    KeyFilePermissions {
        /// The key file.
        path: PathBuf,
        /// Its permission bits.
        mode: u32,
    },
    /// The key file does not hold base64 of exactly 32 bytes.
    #[error(
        "the master key file {path} does not hold a valid key: {reason}; it must contain 32 random bytes encoded as base64 (delete it only if no secrets were ever sealed with it)"
    )]
    KeyFileContent {
        /// The key file.
        path: PathBuf,
        /// What is wrong.
        reason: String,
    },
    /// The sealed value is shorter than the format allows or has an unknown version.
    #[error("the sealed value is malformed: {0}")]
    Malformed(String),
    /// The sealed value was sealed under a key this sealer does not hold.
    #[error(
        "the sealed value was sealed under master key {key_id}, which is not configured; configure that key (as the current or an old key)"
    )]
    UnknownKey {
        /// Hex of the key ID found in the value.
        key_id: String,
    },
    /// Authentication failed: the value was tampered with or belongs to another row.
    #[error("the sealed value failed authentication: it was altered or belongs to another row")]
    Authentication,
    /// Encryption failed (input too large for AES-GCM).
    #[error("the value could not be sealed: it is too large")]
    Encryption,
}

/// What a sealed value is bound to: its owner (a profile ID) and the kind of secret.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Binding<'a> {
    /// The row owner, e.g. a profile ID in canonical text form.
    pub owner: &'a str,
    /// The kind of secret, e.g. `refresh_token`.
    pub kind: &'a str,
}

struct KeySlot {
    id: [u8; KEY_ID_LEN],
    cipher: Aes256Gcm,
}

impl KeySlot {
    fn new(key: &[u8; 32]) -> Self {
        let digest = Sha256::digest(key);
        let mut id = [0u8; KEY_ID_LEN];
        id.copy_from_slice(&digest[..KEY_ID_LEN]);
        // Borrowed as an array reference: no copy of the key is left behind on the stack.
        let key: &Key<Aes256Gcm> = key.into();
        Self {
            id,
            cipher: Aes256Gcm::new(key),
        }
    }
}

/// The keys a sealer holds: the current one (seals and opens) and older ones (open only).
struct Keys {
    current: Arc<KeySlot>,
    old: Vec<Arc<KeySlot>>,
}

/// Where a sealer's keys come from when they are files: the current key file and its `.old`
/// companion, re-read when the key file changes (a rotation by another process) or when a value
/// sealed under an unknown key turns up.
struct KeySource {
    path: PathBuf,
    stamp: Mutex<Option<FileStamp>>,
}

/// What identifies one version of the key file (a rotation replaces the file, changing these).
#[derive(Debug, Clone, PartialEq, Eq)]
struct FileStamp {
    modified: Option<std::time::SystemTime>,
    len: u64,
    inode: u64,
}

fn file_stamp(path: &Path) -> Option<FileStamp> {
    let meta = std::fs::metadata(path).ok()?;
    #[cfg(unix)]
    let inode = std::os::unix::fs::MetadataExt::ino(&meta);
    #[cfg(not(unix))]
    let inode = 0;
    Some(FileStamp {
        modified: meta.modified().ok(),
        len: meta.len(),
        inode,
    })
}

/// Seals and opens secrets with AES-256-GCM under a master key (plus, optionally, older keys that
/// are still accepted for opening). `Debug` shows key IDs only, never key material.
///
/// A sealer built from a key file ([`Sealer::from_key_files`]) follows a master key rotation made by
/// another process (`consentry master-key rotate`) without a restart: before sealing it notices that
/// the key file was replaced and takes the new key as current (keeping the previous one for
/// opening), and a value sealed under a key it does not hold makes it re-read the key files once.
pub struct Sealer {
    keys: RwLock<Keys>,
    source: Option<KeySource>,
}

impl fmt::Debug for Sealer {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let keys = self.keys();
        f.debug_struct("Sealer")
            .field("current_key_id", &hex::encode(keys.current.id))
            .field(
                "old_key_ids",
                &keys
                    .old
                    .iter()
                    .map(|k| hex::encode(k.id))
                    .collect::<Vec<_>>(),
            )
            .field(
                "key_file",
                &self.source.as_ref().map(|s| s.path.display().to_string()),
            )
            .field("key", &"[REDACTED]")
            .finish()
    }
}

fn decode_key_text(text: &str) -> Result<Zeroizing<[u8; 32]>, String> {
    let bytes = Zeroizing::new(
        STANDARD
            .decode(text.trim())
            .map_err(|e| format!("it is not base64 ({e})"))?,
    );
    if bytes.len() != 32 {
        return Err(format!("it decodes to {} bytes instead of 32", bytes.len()));
    }
    let mut key = Zeroizing::new([0u8; 32]);
    key.copy_from_slice(&bytes);
    Ok(key)
}

impl Sealer {
    /// A sealer using `key` as its current master key.
    pub fn from_key_bytes(key: &[u8; 32]) -> Self {
        Self {
            keys: RwLock::new(Keys {
                current: Arc::new(KeySlot::new(key)),
                old: Vec::new(),
            }),
            source: None,
        }
    }

    fn keys(&self) -> RwLockReadGuard<'_, Keys> {
        // A poisoned lock only means a panic elsewhere while holding it; the keys are still whole.
        self.keys
            .read()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    /// The sealer of a deployment that keeps its master key in a file: the key at `path` (created with
    /// a fresh random key, mode 0600, when missing) as current, and the key at [`old_key_path`]
    /// (`path` + `.old`, left there by a rotation) for opening, when present. It follows later
    /// rotations of these files (see the type's documentation).
    pub fn from_key_files(path: impl AsRef<Path>) -> Result<Self, SealerError> {
        let path = path.as_ref();
        let stamp = file_stamp(path);
        let mut sealer = Self::load_or_create_key_file(path)?;
        let stamp = if stamp.is_some() {
            stamp
        } else {
            file_stamp(path)
        };
        let old_path = old_key_path(path);
        if old_path.exists() {
            let old = read_key_file(&old_path)?;
            sealer = sealer.with_old_key(&old);
        }
        sealer.source = Some(KeySource {
            path: path.to_path_buf(),
            stamp: Mutex::new(stamp),
        });
        Ok(sealer)
    }

    /// Re-reads the key files: the file's key becomes current, every key held so far and the `.old`
    /// file's key stay for opening. Returns whether the keys changed. A failure leaves the keys as they
    /// were (and is logged without key material).
    fn reload(&self, source: &KeySource) -> bool {
        let stamp = file_stamp(&source.path);
        let current = match read_key_file(&source.path) {
            Ok(k) => k,
            Err(e) => {
                tracing::error!(error = %e, "the master key file could not be re-read; keeping the keys in use");
                return false;
            }
        };
        let old_file = old_key_path(&source.path);
        let old_key = if old_file.exists() {
            read_key_file(&old_file).ok()
        } else {
            None
        };
        let mut keys = self
            .keys
            .write()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        let slot = Arc::new(KeySlot::new(&current));
        let mut changed = false;
        if slot.id != keys.current.id {
            let previous = std::mem::replace(&mut keys.current, slot);
            keys.old.retain(|k| k.id != previous.id);
            keys.old.push(previous);
            let new_id = keys.current.id;
            keys.old.retain(|k| k.id != new_id);
            changed = true;
            tracing::info!(sealer.key_id = %hex::encode(new_id), "the master key file changed: sealing under the new key");
        }
        if let Some(old) = old_key {
            let slot = KeySlot::new(&old);
            if slot.id != keys.current.id && !keys.old.iter().any(|k| k.id == slot.id) {
                keys.old.push(Arc::new(slot));
                changed = true;
            }
        }
        if let Ok(mut s) = source.stamp.lock() {
            *s = stamp;
        }
        changed
    }

    /// Before sealing: takes up a replaced key file.
    fn follow_key_file(&self) {
        if let Some(source) = &self.source {
            let now = file_stamp(&source.path);
            let seen = source.stamp.lock().map(|s| s.clone()).unwrap_or(None);
            if now.is_some() && now != seen {
                self.reload(source);
            }
        }
    }

    /// Whether this sealer holds the key with this ID (hex), as current or old.
    pub fn holds_key(&self, key_id: &str) -> bool {
        let keys = self.keys();
        std::iter::once(&keys.current)
            .chain(keys.old.iter())
            .any(|k| hex::encode(k.id) == key_id)
    }

    /// The IDs of the older keys held for opening (hex).
    pub fn old_key_ids(&self) -> Vec<String> {
        self.keys().old.iter().map(|k| hex::encode(k.id)).collect()
    }

    /// A sealer from a master key given as base64 of 32 bytes (e.g. from configuration).
    pub fn from_base64(text: &str) -> Result<Self, SealerError> {
        let key = decode_key_text(text).map_err(SealerError::BadKey)?;
        Ok(Self::from_key_bytes(&key))
    }

    /// A fresh random master key, base64-encoded (for a command that writes a key for configuration).
    pub fn generate_key_base64() -> SecretString {
        let mut key = Zeroizing::new([0u8; 32]);
        rand::rng().fill_bytes(key.as_mut());
        SecretString::from(STANDARD.encode(key.as_ref()))
    }

    /// Loads the master key from `path`, creating the file with a fresh random key (base64, mode 0600)
    /// if it does not exist. Refuses a file others can read, or one that does not hold exactly 32
    /// base64-encoded bytes.
    pub fn load_or_create_key_file(path: impl AsRef<Path>) -> Result<Self, SealerError> {
        let path = path.as_ref();
        match create_key_file(path) {
            Ok(sealer) => return Ok(sealer),
            Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => {}
            Err(source) => {
                return Err(SealerError::KeyFileIo {
                    path: path.to_path_buf(),
                    action: "created",
                    source,
                });
            }
        }
        let io_err = |source| SealerError::KeyFileIo {
            path: path.to_path_buf(),
            action: "read",
            source,
        };
        check_permissions(path).map_err(|e| match e {
            PermissionProblem::Io(source) => io_err(source),
            PermissionProblem::TooOpen(mode) => SealerError::KeyFilePermissions {
                path: path.to_path_buf(),
                mode,
            },
        })?;
        let text = Zeroizing::new(std::fs::read_to_string(path).map_err(io_err)?);
        let key = decode_key_text(&text).map_err(|reason| SealerError::KeyFileContent {
            path: path.to_path_buf(),
            reason,
        })?;
        Ok(Self::from_key_bytes(&key))
    }

    /// Adds an older master key that is still accepted for opening (never used for sealing).
    pub fn with_old_key(self, key: &[u8; 32]) -> Self {
        {
            let mut keys = self
                .keys
                .write()
                .unwrap_or_else(std::sync::PoisonError::into_inner);
            let slot = KeySlot::new(key);
            if slot.id != keys.current.id && !keys.old.iter().any(|k| k.id == slot.id) {
                keys.old.push(Arc::new(slot));
            }
        }
        self
    }

    /// The ID of the current key (first 8 bytes of its SHA-256), in hex. Safe to log.
    pub fn key_id(&self) -> String {
        self.follow_key_file();
        hex::encode(self.keys().current.id)
    }

    /// Seals `plaintext` for the row named by `binding`, with a fresh random nonce.
    pub fn seal(&self, binding: Binding<'_>, plaintext: &[u8]) -> Result<Vec<u8>, SealerError> {
        self.follow_key_file();
        let current = Arc::clone(&self.keys().current);
        let mut nonce = [0u8; NONCE_LEN];
        rand::rng().fill_bytes(&mut nonce);
        let aad = associated_data(SEALED_FORMAT_VERSION, &current.id, binding);
        let ciphertext = current
            .cipher
            .encrypt(
                &Nonce::from(nonce),
                Payload {
                    msg: plaintext,
                    aad: &aad,
                },
            )
            .map_err(|_| SealerError::Encryption)?;
        let mut out = Vec::with_capacity(SEALED_OVERHEAD + plaintext.len());
        out.push(SEALED_FORMAT_VERSION);
        out.extend_from_slice(&current.id);
        out.extend_from_slice(&nonce);
        out.extend_from_slice(&ciphertext);
        Ok(out)
    }

    /// Opens a value sealed for the row named by `binding`, with whichever configured key sealed it.
    pub fn open(
        &self,
        binding: Binding<'_>,
        sealed: &[u8],
    ) -> Result<Zeroizing<Vec<u8>>, SealerError> {
        if sealed.len() < SEALED_OVERHEAD {
            return Err(SealerError::Malformed(format!(
                "{} bytes is shorter than the {SEALED_OVERHEAD} bytes of overhead",
                sealed.len()
            )));
        }
        let version = sealed[0];
        if version != SEALED_FORMAT_VERSION {
            return Err(SealerError::Malformed(format!(
                "unknown format version {version}; this build reads version {SEALED_FORMAT_VERSION}"
            )));
        }
        let key_id = &sealed[1..1 + KEY_ID_LEN];
        let find = || {
            let keys = self.keys();
            std::iter::once(&keys.current)
                .chain(keys.old.iter())
                .find(|k| k.id == key_id)
                .cloned()
        };
        let slot = match find() {
            Some(slot) => slot,
            None => {
                // Perhaps sealed by a process that rotated the key files after this one read them.
                if let Some(source) = &self.source {
                    self.reload(source);
                }
                find().ok_or_else(|| SealerError::UnknownKey {
                    key_id: hex::encode(key_id),
                })?
            }
        };
        let nonce_start = 1 + KEY_ID_LEN;
        let mut nonce = [0u8; NONCE_LEN];
        nonce.copy_from_slice(&sealed[nonce_start..nonce_start + NONCE_LEN]);
        let aad = associated_data(version, &slot.id, binding);
        slot.cipher
            .decrypt(
                &Nonce::from(nonce),
                Payload {
                    msg: &sealed[nonce_start + NONCE_LEN..],
                    aad: &aad,
                },
            )
            .map(Zeroizing::new)
            .map_err(|_| SealerError::Authentication)
    }
}

/// The associated data: label, version, key ID and the row binding, each length-prefixed so that
/// no two different bindings produce the same bytes.
fn associated_data(version: u8, key_id: &[u8; KEY_ID_LEN], binding: Binding<'_>) -> Vec<u8> {
    let mut aad = Vec::with_capacity(
        AAD_LABEL.len() + 1 + KEY_ID_LEN + 8 + binding.owner.len() + binding.kind.len(),
    );
    aad.extend_from_slice(AAD_LABEL);
    aad.push(version);
    aad.extend_from_slice(key_id);
    for part in [binding.owner, binding.kind] {
        let len = u32::try_from(part.len()).unwrap_or(u32::MAX);
        aad.extend_from_slice(&len.to_be_bytes());
        aad.extend_from_slice(part.as_bytes());
    }
    aad
}

/// The key ID (hex) a sealed value names, if it is long enough to name one.
pub fn sealed_key_id(sealed: &[u8]) -> Option<String> {
    (sealed.len() >= SEALED_OVERHEAD).then(|| hex::encode(&sealed[1..1 + KEY_ID_LEN]))
}

/// Where a rotation keeps the previous master key: the key file's path with `.old` appended.
pub fn old_key_path(path: &Path) -> PathBuf {
    let mut name = path.as_os_str().to_owned();
    name.push(".old");
    PathBuf::from(name)
}

/// Reads a key file (refusing one others can read, or one without a valid key).
fn read_key_file(path: &Path) -> Result<Zeroizing<[u8; 32]>, SealerError> {
    let io_err = |source| SealerError::KeyFileIo {
        path: path.to_path_buf(),
        action: "read",
        source,
    };
    check_permissions(path).map_err(|e| match e {
        PermissionProblem::Io(source) => io_err(source),
        PermissionProblem::TooOpen(mode) => SealerError::KeyFilePermissions {
            path: path.to_path_buf(),
            mode,
        },
    })?;
    let text = Zeroizing::new(std::fs::read_to_string(path).map_err(io_err)?);
    decode_key_text(&text).map_err(|reason| SealerError::KeyFileContent {
        path: path.to_path_buf(),
        reason,
    })
}

/// Writes `key` (base64) to a new file at `path`, mode 0600, synced; refuses an existing file.
fn write_new_key_file(path: &Path, key: &[u8; 32]) -> std::io::Result<()> {
    let mut options = std::fs::OpenOptions::new();
    options.write(true).create_new(true);
    #[cfg(unix)]
    {
        use std::os::unix::fs::OpenOptionsExt as _;
        options.mode(0o600);
    }
    let mut file = options.open(path)?;
    let mut text = Zeroizing::new(STANDARD.encode(key));
    text.push('\n');
    let written = file
        .write_all(text.as_bytes())
        .and_then(|()| file.sync_all());
    if let Err(e) = written {
        drop(file);
        let _ = std::fs::remove_file(path);
        return Err(e);
    }
    Ok(())
}

fn sync_parent(path: &Path) {
    if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty())
        && let Ok(d) = std::fs::File::open(dir)
    {
        let _ = d.sync_all();
    }
}

/// What [`rotate_key_files`] did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct KeyFileRotation {
    /// The key ID now in the key file (the current key).
    pub current_key_id: String,
    /// The key ID kept in the `.old` file.
    pub old_key_id: String,
    /// True when an earlier rotation had not been retired: no new key was made, the earlier one is
    /// to be finished.
    pub resumed: bool,
}

/// The file half of a master key rotation: keeps the key file's key as `<path>.old` and puts a fresh
/// random key in the key file (written beside it, then renamed over it, so the key file always holds
/// a whole key). When a `.old` file with another key is already there (an earlier rotation not yet
/// retired), nothing changes and `resumed` is true. The secrets still have to be re-sealed (the
/// store's `reseal_all`).
pub fn rotate_key_files(path: &Path) -> Result<KeyFileRotation, SealerError> {
    let current = read_key_file(path)?;
    let current_id = KeySlot::new(&current).id;
    let old_path = old_key_path(path);
    let io = |p: &Path, action: &'static str| {
        let p = p.to_path_buf();
        move |source| SealerError::KeyFileIo {
            path: p,
            action,
            source,
        }
    };
    if old_path.exists() {
        let old = read_key_file(&old_path)?;
        let old_id = KeySlot::new(&old).id;
        if old_id != current_id {
            return Ok(KeyFileRotation {
                current_key_id: hex::encode(current_id),
                old_key_id: hex::encode(old_id),
                resumed: true,
            });
        }
        // Left by a rotation stopped before the new key was in place: it is this very key.
    } else {
        write_new_key_file(&old_path, &current).map_err(io(&old_path, "created"))?;
        sync_parent(&old_path);
    }
    let mut fresh = Zeroizing::new([0u8; 32]);
    rand::rng().fill_bytes(fresh.as_mut());
    let mut next = path.as_os_str().to_owned();
    next.push(".new");
    let next = PathBuf::from(next);
    let _ = std::fs::remove_file(&next);
    write_new_key_file(&next, &fresh).map_err(io(&next, "created"))?;
    std::fs::rename(&next, path).map_err(io(path, "replaced"))?;
    sync_parent(path);
    Ok(KeyFileRotation {
        current_key_id: hex::encode(KeySlot::new(&fresh).id),
        old_key_id: hex::encode(current_id),
        resumed: false,
    })
}

/// The key ID (hex) of the key in a key file.
pub fn key_file_id(path: &Path) -> Result<String, SealerError> {
    let key = read_key_file(path)?;
    Ok(hex::encode(KeySlot::new(&key).id))
}

/// Creates the key file exclusively (fails with `AlreadyExists` if it is there) with mode 0600.
fn create_key_file(path: &Path) -> std::io::Result<Sealer> {
    let mut options = std::fs::OpenOptions::new();
    options.write(true).create_new(true);
    #[cfg(unix)]
    {
        use std::os::unix::fs::OpenOptionsExt as _;
        options.mode(0o600);
    }
    let mut file = options.open(path)?;
    let mut key = Zeroizing::new([0u8; 32]);
    rand::rng().fill_bytes(key.as_mut());
    let mut text = Zeroizing::new(STANDARD.encode(key.as_ref()));
    text.push('\n');
    let written = file
        .write_all(text.as_bytes())
        .and_then(|()| file.sync_all());
    if let Err(e) = written {
        // Do not leave a half-written key file behind: the next start would refuse it.
        drop(file);
        let _ = std::fs::remove_file(path);
        return Err(e);
    }
    text.zeroize();
    Ok(Sealer::from_key_bytes(&key))
}

enum PermissionProblem {
    Io(std::io::Error),
    TooOpen(u32),
}

#[cfg(unix)]
fn check_permissions(path: &Path) -> Result<(), PermissionProblem> {
    use std::os::unix::fs::PermissionsExt as _;
    let meta = std::fs::metadata(path).map_err(PermissionProblem::Io)?;
    let mode = meta.permissions().mode() & 0o777;
    if mode & 0o077 != 0 {
        return Err(PermissionProblem::TooOpen(mode));
    }
    Ok(())
}

#[cfg(not(unix))]
fn check_permissions(path: &Path) -> Result<(), PermissionProblem> {
    std::fs::metadata(path)
        .map(|_| ())
        .map_err(PermissionProblem::Io)
}

#[cfg(test)]
mod tests {
    use super::*;

    const A: Binding<'static> = Binding {
        owner: "7b5d6a0e-2f7c-4b61-9e53-1d2a3c4b5e6f",
        kind: "refresh_token",
    };

    #[test]
    fn seal_then_open_round_trips_and_hides_plaintext() {
        let s = Sealer::from_key_bytes(&[7u8; 32]);
        let secret = b"RT-0.AAAAsecret-refresh-token";
        let sealed = s.seal(A, secret).unwrap();
        assert_eq!(sealed.len(), secret.len() + SEALED_OVERHEAD);
        assert_eq!(sealed[0], SEALED_FORMAT_VERSION);
        assert_eq!(hex::encode(&sealed[1..9]), s.key_id());
        assert!(!sealed.windows(secret.len()).any(|w| w == secret));
        assert_eq!(s.open(A, &sealed).unwrap().as_slice(), secret);
    }

    #[test]
    fn nonces_differ_between_seals() {
        let s = Sealer::from_key_bytes(&[1u8; 32]);
        let a = s.seal(A, b"same").unwrap();
        let b = s.seal(A, b"same").unwrap();
        assert_ne!(a, b);
        assert_ne!(a[9..21], b[9..21]);
    }

    #[test]
    fn binding_is_enforced() {
        let s = Sealer::from_key_bytes(&[2u8; 32]);
        let sealed = s.seal(A, b"x").unwrap();
        let other_owner = Binding {
            owner: "00000000-0000-0000-0000-000000000000",
            ..A
        };
        let other_kind = Binding {
            kind: "client_certificate",
            ..A
        };
        assert!(matches!(
            s.open(other_owner, &sealed),
            Err(SealerError::Authentication)
        ));
        assert!(matches!(
            s.open(other_kind, &sealed),
            Err(SealerError::Authentication)
        ));
        // Length prefixes: moving a character from owner to kind changes the binding.
        let shifted = Binding {
            owner: "ab",
            kind: "c",
        };
        let sealed2 = s.seal(shifted, b"y").unwrap();
        assert!(
            s.open(
                Binding {
                    owner: "a",
                    kind: "bc"
                },
                &sealed2
            )
            .is_err()
        );
    }

    #[test]
    fn tampering_is_detected() {
        let s = Sealer::from_key_bytes(&[3u8; 32]);
        let sealed = s.seal(A, b"payload").unwrap();
        for i in 0..sealed.len() {
            let mut t = sealed.clone();
            t[i] ^= 0x01;
            assert!(s.open(A, &t).is_err(), "flip at byte {i} was not detected");
        }
        assert!(matches!(
            s.open(A, &sealed[..10]),
            Err(SealerError::Malformed(_))
        ));
    }

    #[test]
    fn wrong_key_and_rotation() {
        let old = Sealer::from_key_bytes(&[4u8; 32]);
        let sealed_old = old.seal(A, b"old secret").unwrap();
        let new_only = Sealer::from_key_bytes(&[5u8; 32]);
        assert!(matches!(
            new_only.open(A, &sealed_old),
            Err(SealerError::UnknownKey { .. })
        ));
        let rotated = Sealer::from_key_bytes(&[5u8; 32]).with_old_key(&[4u8; 32]);
        assert_eq!(
            rotated.open(A, &sealed_old).unwrap().as_slice(),
            b"old secret"
        );
        let sealed_new = rotated.seal(A, b"new").unwrap();
        assert_eq!(hex::encode(&sealed_new[1..9]), new_only.key_id());
        assert!(old.open(A, &sealed_new).is_err());
    }

    #[test]
    fn base64_keys_are_validated() {
        let text = Sealer::generate_key_base64();
        let text = secrecy::ExposeSecret::expose_secret(&text);
        assert_ne!(
            text,
            secrecy::ExposeSecret::expose_secret(&Sealer::generate_key_base64())
        );
        let a = Sealer::from_base64(text).unwrap();
        let b = Sealer::from_base64(&format!("  {text}\n")).unwrap();
        assert_eq!(a.key_id(), b.key_id());
        let e = Sealer::from_base64("c2hvcnQ=").unwrap_err();
        assert!(e.to_string().contains("5 bytes instead of 32"), "{e}");
        let e = Sealer::from_base64("not base64!").unwrap_err();
        assert!(e.to_string().contains("not base64"), "{e}");
    }

    #[test]
    fn debug_shows_no_key_material() {
        let key = [0xABu8; 32];
        let s = Sealer::from_key_bytes(&key);
        let dbg = format!("{s:?}");
        assert!(dbg.contains(&s.key_id()));
        assert!(dbg.contains("REDACTED"));
        assert!(!dbg.contains(&hex::encode(key)));
        assert!(!dbg.contains(&STANDARD.encode(key)));
    }

    #[test]
    fn a_key_file_sealer_follows_a_rotation_by_another_process() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("master.key");
        let running = Sealer::from_key_files(&path).unwrap();
        let before = running.seal(A, b"before").unwrap();
        let first = running.key_id();
        let rotation = rotate_key_files(&path).unwrap();
        assert_eq!(rotation.old_key_id, first);
        assert!(!rotation.resumed);
        // Sealing notices the replaced file: the new value is under the new key.
        let after = running.seal(A, b"after").unwrap();
        assert_eq!(sealed_key_id(&after).unwrap(), rotation.current_key_id);
        assert_eq!(running.open(A, &before).unwrap().as_slice(), b"before");
        // A sealer started after the rotation holds both keys from the files.
        let restarted = Sealer::from_key_files(&path).unwrap();
        assert_eq!(restarted.key_id(), rotation.current_key_id);
        assert_eq!(restarted.old_key_ids(), vec![first.clone()]);
        assert_eq!(restarted.open(A, &before).unwrap().as_slice(), b"before");
        // A second rotation before the first is retired resumes it instead of making a third key.
        let again = rotate_key_files(&path).unwrap();
        assert!(again.resumed);
        assert_eq!(again.current_key_id, rotation.current_key_id);
        // Without the old file, a fresh sealer cannot open the old value.
        std::fs::remove_file(old_key_path(&path)).unwrap();
        let retired = Sealer::from_key_files(&path).unwrap();
        assert!(matches!(
            retired.open(A, &before),
            Err(SealerError::UnknownKey { .. })
        ));
        assert_eq!(retired.open(A, &after).unwrap().as_slice(), b"after");
    }

    #[test]
    fn a_sealer_opens_a_value_sealed_under_a_key_file_written_after_it_started() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("master.key");
        let reader = Sealer::from_key_files(&path).unwrap();
        let _ = rotate_key_files(&path).unwrap();
        let writer = Sealer::load_or_create_key_file(&path).unwrap();
        let sealed = writer.seal(A, b"x").unwrap();
        // The reader has not sealed anything since; opening re-reads the files.
        assert_eq!(reader.open(A, &sealed).unwrap().as_slice(), b"x");
    }
}

//! A vendor app's credential kept in files (`client_secret_file`, or `certificate_file` with
//! `certificate_password_file`) and read again when a file changes, so that rotating a credential —
//! writing the new secret or certificate over the file (`consentry apps rotate-credential` writes a
//! temporary file and renames it) — reaches a running server without a restart. Each use looks at the
//! files' metadata (one `stat` each); they are read and parsed only when it changed. A file that cannot
//! be read or parsed any more keeps the last good credential in use (and says so in the log, naming the
//! file, never its content): a half-written file never takes a running server down.

use std::path::{Path, PathBuf};
use std::sync::Mutex;
use std::time::SystemTime;

use consentry_certs::ClientCertificate;
use secrecy::{ExposeSecret as _, SecretString};
use time::OffsetDateTime;

use crate::token::ClientCredential;

/// What identifies a version of a file: replaced (renamed over), rewritten or resized files differ.
#[derive(Debug, Clone, PartialEq, Eq)]
struct Stamp {
    modified: Option<SystemTime>,
    len: u64,
    #[cfg(unix)]
    inode: u64,
}

impl Stamp {
    fn of(path: &Path) -> std::io::Result<Self> {
        let m = std::fs::metadata(path)?;
        Ok(Self {
            modified: m.modified().ok(),
            len: m.len(),
            #[cfg(unix)]
            inode: std::os::unix::fs::MetadataExt::ino(&m),
        })
    }
}

/// Where the credential comes from.
#[derive(Debug, Clone)]
enum Files {
    Secret(PathBuf),
    Certificate {
        pfx: PathBuf,
        /// The password's file; `None` when the password is given inline (`fixed_password`).
        password_file: Option<PathBuf>,
        fixed_password: Option<SecretString>,
    },
}

impl Files {
    fn paths(&self) -> Vec<&Path> {
        match self {
            Files::Secret(p) => vec![p],
            Files::Certificate {
                pfx, password_file, ..
            } => std::iter::once(pfx.as_path())
                .chain(password_file.as_deref())
                .collect(),
        }
    }

    fn stamps(&self) -> std::io::Result<Vec<Stamp>> {
        self.paths().into_iter().map(Stamp::of).collect()
    }

    fn load(&self, now: OffsetDateTime) -> Result<ClientCredential, String> {
        match self {
            Files::Secret(p) => Ok(ClientCredential::Secret(read_secret(p)?)),
            Files::Certificate {
                pfx,
                password_file,
                fixed_password,
            } => {
                let password = match (password_file, fixed_password) {
                    (Some(f), _) => read_secret(f)?,
                    (None, Some(pw)) => pw.clone(),
                    (None, None) => SecretString::from(String::new()),
                };
                let bytes = std::fs::read(pfx)
                    .map_err(|e| format!("cannot read {}: {e}", pfx.display()))?;
                let certificate =
                    ClientCertificate::from_pfx(&bytes, password.expose_secret(), now)
                        .map_err(|e| format!("{}: {e}", pfx.display()))?;
                Ok(ClientCredential::certificate(certificate))
            }
        }
    }
}

fn read_secret(path: &Path) -> Result<SecretString, String> {
    let text = std::fs::read_to_string(path)
        .map_err(|e| format!("cannot read {}: {e}", path.display()))?;
    let value = text.trim();
    if value.is_empty() {
        return Err(format!("{} is empty", path.display()));
    }
    Ok(SecretString::from(value.to_owned()))
}

struct Loaded {
    stamps: Vec<Stamp>,
    credential: ClientCredential,
}

/// A credential read from files and read again when they change.
pub struct CredentialFiles {
    files: Files,
    loaded: Mutex<Loaded>,
}

impl std::fmt::Debug for CredentialFiles {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("CredentialFiles")
            .field("files", &self.paths())
            .finish_non_exhaustive()
    }
}

impl CredentialFiles {
    /// A client secret in `path` (surrounding whitespace ignored). Fails now when it cannot be read or is
    /// empty.
    pub fn secret(path: impl Into<PathBuf>) -> Result<Self, String> {
        Self::new(Files::Secret(path.into()))
    }

    /// A .pfx in `pfx` whose password is in `password_file`, or `password` inline, or empty. Fails now when
    /// the archive cannot be opened.
    pub fn certificate(
        pfx: impl Into<PathBuf>,
        password_file: Option<PathBuf>,
        password: Option<SecretString>,
    ) -> Result<Self, String> {
        Self::new(Files::Certificate {
            pfx: pfx.into(),
            password_file,
            fixed_password: password,
        })
    }

    fn new(files: Files) -> Result<Self, String> {
        let stamps = files
            .stamps()
            .map_err(|e| format!("cannot read {}: {e}", describe(&files.paths())))?;
        let credential = files.load(OffsetDateTime::now_utc())?;
        Ok(Self {
            files,
            loaded: Mutex::new(Loaded { stamps, credential }),
        })
    }

    /// The files this credential is read from.
    pub fn paths(&self) -> Vec<&Path> {
        self.files.paths()
    }

    /// The credential as the files hold it now (read again only when they changed since the last read).
    pub fn current(&self) -> ClientCredential {
        let mut loaded = self
            .loaded
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        match self.files.stamps() {
            Ok(stamps) if stamps != loaded.stamps => {
                match self.files.load(OffsetDateTime::now_utc()) {
                    Ok(credential) => {
                        tracing::info!(
                            files = %describe(&self.paths()),
                            "a vendor app's credential file changed; the new credential is in use"
                        );
                        *loaded = Loaded { stamps, credential };
                    }
                    Err(problem) => {
                        // Keep the last good credential; record the stamps so the log says it once
                        // per change, not once per token.
                        tracing::warn!(
                            %problem,
                            "a vendor app's credential file changed but cannot be used; the previous credential stays in use"
                        );
                        loaded.stamps = stamps;
                    }
                }
            }
            Ok(_) => {}
            Err(e) => {
                tracing::warn!(
                    files = %describe(&self.paths()),
                    error = %e,
                    "a vendor app's credential file cannot be read; the previous credential stays in use"
                );
            }
        }
        loaded.credential.clone()
    }
}

fn describe(paths: &[&Path]) -> String {
    paths
        .iter()
        .map(|p| p.display().to_string())
        .collect::<Vec<_>>()
        .join(", ")
}

#[cfg(test)]
mod tests {
    use super::*;

    fn secret_of(c: &ClientCredential) -> String {
        match c {
            ClientCredential::Secret(s) => s.expose_secret().to_owned(),
            ClientCredential::Certificate { .. } => panic!("a certificate"),
        }
    }

    fn replace(path: &Path, content: &[u8]) {
        let tmp = path.with_extension("tmp");
        std::fs::write(&tmp, content).unwrap();
        std::fs::rename(&tmp, path).unwrap();
    }

    #[test]
    fn a_secret_file_renamed_over_is_read_again_and_a_broken_one_keeps_the_last_good_secret() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("app.secret");
        std::fs::write(&path, "first-secret\n").unwrap();
        let files = CredentialFiles::secret(&path).unwrap();
        assert_eq!(secret_of(&files.current()), "first-secret");
        replace(&path, b"second-secret");
        assert_eq!(secret_of(&files.current()), "second-secret");
        // An empty file (a botched write) is refused; the last good secret stays.
        replace(&path, b"  \n");
        assert_eq!(secret_of(&files.current()), "second-secret");
        // A missing file likewise.
        std::fs::remove_file(&path).unwrap();
        assert_eq!(secret_of(&files.current()), "second-secret");
        replace(&path, b"third-secret");
        assert_eq!(secret_of(&files.current()), "third-secret");
    }

    #[test]
    fn an_unreadable_secret_file_is_refused_at_start_with_its_path() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("missing.secret");
        let e = CredentialFiles::secret(&path).unwrap_err();
        assert!(e.contains("missing.secret"), "{e}");
        std::fs::write(&path, "").unwrap();
        let e = CredentialFiles::secret(&path).unwrap_err();
        assert!(e.contains("is empty"), "{e}");
    }

    #[test]
    fn a_certificate_renamed_over_is_read_again() {
        let dir = tempfile::tempdir().unwrap();
        let now = OffsetDateTime::now_utc();
        let a = consentry_certs::generate_self_signed("CN=first", 1, "pw-0123456789", now).unwrap();
        let b =
            consentry_certs::generate_self_signed("CN=second", 1, "pw-9876543210", now).unwrap();
        let pfx = dir.path().join("app.pfx");
        let pw = dir.path().join("app.pfx.password");
        std::fs::write(&pfx, &a.pfx).unwrap();
        std::fs::write(&pw, "pw-0123456789").unwrap();
        let files = CredentialFiles::certificate(&pfx, Some(pw.clone()), None).unwrap();
        let thumb = |c: &ClientCredential| match c {
            ClientCredential::Certificate { certificate, .. } => {
                certificate.sha1_thumbprint().hex_upper()
            }
            ClientCredential::Secret(_) => panic!("a secret"),
        };
        let first = thumb(&files.current());
        // The archive changes before its password does: in between, the old certificate stays.
        replace(&pfx, &b.pfx);
        assert_eq!(thumb(&files.current()), first);
        replace(&pw, b"pw-9876543210");
        let second = thumb(&files.current());
        assert_ne!(second, first);
    }
}

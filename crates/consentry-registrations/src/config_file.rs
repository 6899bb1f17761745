//! Writing the registrations into the operator's configuration file: `vendor_tenant`, the
//! `[apps.<key>]` / `[consentry_app]` tables (`client_id` and the credential's file keys), keeping every
//! comment and other key of the file. Secrets go into files of mode 0600 in a `secrets` directory
//! beside the configuration file, each written atomically (a temporary file in the same directory,
//! then a rename), so a running server re-reading it sees the old or the new content, never half.

use std::io::Write as _;
use std::path::{Path, PathBuf};

use toml_edit::{DocumentMut, Item, Table, value};

use crate::manifest::Registration;

/// Why the configuration file or a secret file could not be written.
#[derive(Debug, thiserror::Error)]
pub enum ConfigFileError {
    /// Reading or writing failed.
    #[error("{what} {path}: {source}")]
    Io {
        /// What was being done.
        what: &'static str,
        /// The file.
        path: PathBuf,
        /// The I/O error.
        source: std::io::Error,
    },
    /// The file is not TOML.
    #[error("the configuration file {path} is not valid TOML: {message}")]
    Parse {
        /// The file.
        path: PathBuf,
        /// The parser's message.
        message: String,
    },
    /// A key is there with a shape that cannot be written into.
    #[error("the configuration file {path}: {message}")]
    Shape {
        /// The file.
        path: PathBuf,
        /// What is wrong, and what to do.
        message: String,
    },
}

/// The keys of a registration's credential; writing one credential removes the others (the
/// configuration accepts exactly one).
pub const CREDENTIAL_KEYS: [&str; 5] = [
    "client_secret",
    "client_secret_file",
    "certificate_file",
    "certificate_password",
    "certificate_password_file",
];

/// A credential as the configuration names it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum CredentialFiles {
    /// `client_secret_file`.
    Secret(PathBuf),
    /// `certificate_file` and `certificate_password_file`.
    Certificate {
        /// The .pfx.
        pfx: PathBuf,
        /// The file holding its password.
        password: PathBuf,
    },
}

/// The directory of the secrets written for a configuration file: `secrets/` beside it.
pub fn secrets_dir(config_path: &Path) -> PathBuf {
    let dir = config_path
        .parent()
        .filter(|p| !p.as_os_str().is_empty())
        .unwrap_or_else(|| Path::new("."));
    dir.join("secrets")
}

fn io(what: &'static str, path: &Path) -> impl FnOnce(std::io::Error) -> ConfigFileError + use<> {
    let path = path.to_path_buf();
    move |source| ConfigFileError::Io { what, path, source }
}

/// Writes `bytes` to `path` atomically with mode 0600: a temporary file in the same directory (created
/// 0600, synced), then renamed over `path`. The directory is created (mode 0700) when missing.
pub fn write_secret_file(path: &Path, bytes: &[u8]) -> Result<(), ConfigFileError> {
    write_atomically(path, bytes, 0o600)
}

/// Writes `bytes` to `path` atomically (temporary file in the same directory, then rename) with `mode`.
pub fn write_atomically(path: &Path, bytes: &[u8], mode: u32) -> Result<(), ConfigFileError> {
    let dir = path
        .parent()
        .filter(|p| !p.as_os_str().is_empty())
        .unwrap_or_else(|| Path::new("."));
    if !dir.exists() {
        let mut builder = std::fs::DirBuilder::new();
        builder.recursive(true);
        #[cfg(unix)]
        {
            use std::os::unix::fs::DirBuilderExt as _;
            builder.mode(0o700);
        }
        builder
            .create(dir)
            .map_err(io("cannot create the directory", dir))?;
    }
    let name = path
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_else(|| "secret".into());
    let suffix: u64 = rand::random();
    let tmp = dir.join(format!(".{name}.{suffix:016x}.tmp"));
    let result = (|| {
        let mut options = std::fs::OpenOptions::new();
        options.write(true).create_new(true);
        #[cfg(unix)]
        {
            use std::os::unix::fs::OpenOptionsExt as _;
            options.mode(mode);
        }
        let mut file = options.open(&tmp).map_err(io("cannot create", &tmp))?;
        file.write_all(bytes).map_err(io("cannot write", &tmp))?;
        file.sync_all().map_err(io("cannot write", &tmp))?;
        std::fs::rename(&tmp, path).map_err(io("cannot replace", path))
    })();
    if result.is_err() {
        let _ = std::fs::remove_file(&tmp);
    }
    result
}

/// The configuration file being edited.
#[derive(Debug)]
pub struct ConfigFile {
    path: PathBuf,
    doc: DocumentMut,
    existed: bool,
}

impl ConfigFile {
    /// Reads `path`, or starts an empty document when it does not exist.
    pub fn open_or_new(path: &Path) -> Result<Self, ConfigFileError> {
        let (text, existed) = match std::fs::read_to_string(path) {
            Ok(t) => (t, true),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => (String::new(), false),
            Err(e) => return Err(io("cannot read", path)(e)),
        };
        let doc = text
            .parse::<DocumentMut>()
            .map_err(|e| ConfigFileError::Parse {
                path: path.to_path_buf(),
                message: e.to_string(),
            })?;
        Ok(Self {
            path: path.to_path_buf(),
            doc,
            existed,
        })
    }

    /// The file's path.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Sets the top-level `vendor_tenant`.
    pub fn set_vendor_tenant(&mut self, tenant: &str) {
        self.doc["vendor_tenant"] = value(tenant);
    }

    fn table_mut(&mut self, registration: &Registration) -> Result<&mut Table, ConfigFileError> {
        let path = registration.config_path();
        let shape = |message: String| ConfigFileError::Shape {
            path: self.path.clone(),
            message,
        };
        let mut item: &mut Item = self.doc.as_item_mut();
        for (i, key) in path.iter().enumerate() {
            let table = item.as_table_like_mut().ok_or_else(|| {
                shape(format!(
                    "`{}` is not a table: make it one (or remove it) and run again",
                    path[..i].join(".")
                ))
            })?;
            if table.get(key).is_none() {
                let mut t = Table::new();
                // `[apps]` itself stays implicit: only `[apps.<key>]` headers are written.
                t.set_implicit(i + 1 < path.len());
                table.insert(key, Item::Table(t));
            }
            item = table.get_mut(key).expect("just inserted");
        }
        item.as_table_mut().ok_or_else(|| {
            shape(format!(
                "`{}` is not a table (an inline table?): write it as a [{}] section and run again",
                path.join("."),
                path.join(".")
            ))
        })
    }

    /// Writes a registration's `client_id` and, when given, its credential's keys (removing any
    /// other credential key of the table).
    pub fn set_registration(
        &mut self,
        registration: &Registration,
        client_id: &str,
        credential: Option<&CredentialFiles>,
    ) -> Result<(), ConfigFileError> {
        let table = self.table_mut(registration)?;
        table["client_id"] = value(client_id);
        if let Some(credential) = credential {
            for key in CREDENTIAL_KEYS {
                table.remove(key);
            }
            match credential {
                CredentialFiles::Secret(p) => {
                    table["client_secret_file"] = value(p.display().to_string());
                }
                CredentialFiles::Certificate { pfx, password } => {
                    table["certificate_file"] = value(pfx.display().to_string());
                    table["certificate_password_file"] = value(password.display().to_string());
                }
            }
        }
        Ok(())
    }

    /// The document's text.
    pub fn text(&self) -> String {
        self.doc.to_string()
    }

    /// Writes the file atomically: a new file gets mode 0600, an existing one keeps its mode.
    pub fn save(&self) -> Result<(), ConfigFileError> {
        let mode = if self.existed {
            current_mode(&self.path).unwrap_or(0o600)
        } else {
            0o600
        };
        write_atomically(&self.path, self.text().as_bytes(), mode)
    }
}

#[cfg(unix)]
fn current_mode(path: &Path) -> Option<u32> {
    use std::os::unix::fs::PermissionsExt as _;
    std::fs::metadata(path)
        .ok()
        .map(|m| m.permissions().mode() & 0o7777)
}

#[cfg(not(unix))]
fn current_mode(_path: &Path) -> Option<u32> {
    None
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn writing_keeps_comments_and_other_keys_and_replaces_the_credential() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("consentry.toml");
        std::fs::write(
            &path,
            "# the operator's note\npublic_url = \"https://c.example\" # ours\n\n[apps.insights-m365]\nclient_id = \"old\"\nclient_secret = \"inline\" # to be replaced\n",
        )
        .unwrap();
        let mut file = ConfigFile::open_or_new(&path).unwrap();
        file.set_vendor_tenant("vendor.example");
        let secret = secrets_dir(&path).join("insights-m365.secret");
        file.set_registration(
            &Registration::AppType("insights-m365".into()),
            "new-id",
            Some(&CredentialFiles::Secret(secret.clone())),
        )
        .unwrap();
        file.set_registration(&Registration::ConsentryApp, "c-id", None)
            .unwrap();
        file.save().unwrap();
        let text = std::fs::read_to_string(&path).unwrap();
        assert!(text.starts_with("# the operator's note\n"), "{text}");
        assert!(text.contains("public_url = \"https://c.example\" # ours"));
        assert!(!text.contains("client_secret ="), "{text}");
        assert!(text.contains(&format!("client_secret_file = \"{}\"", secret.display())));
        assert!(
            text.contains("[consentry_app]\nclient_id = \"c-id\""),
            "{text}"
        );
        assert!(!text.contains("[apps]\n"), "{text}");
        let parsed: toml_edit::DocumentMut = text.parse().unwrap();
        assert_eq!(parsed["vendor_tenant"].as_str(), Some("vendor.example"));
        assert_eq!(
            parsed["apps"]["insights-m365"]["client_id"].as_str(),
            Some("new-id")
        );
    }

    #[cfg(unix)]
    #[test]
    fn secret_files_are_written_atomically_with_mode_0600() {
        use std::os::unix::fs::PermissionsExt as _;
        let dir = tempfile::tempdir().unwrap();
        let path = secrets_dir(&dir.path().join("c.toml")).join("a.secret");
        write_secret_file(&path, b"one").unwrap();
        write_secret_file(&path, b"two").unwrap();
        assert_eq!(std::fs::read(&path).unwrap(), b"two");
        let mode = std::fs::metadata(&path).unwrap().permissions().mode() & 0o777;
        assert_eq!(mode, 0o600);
        // No temporary file is left behind.
        assert_eq!(
            std::fs::read_dir(path.parent().unwrap()).unwrap().count(),
            1
        );
    }
}

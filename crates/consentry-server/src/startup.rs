//! Start-up: open the store, load the catalog, prepare secrets, and serve until a shutdown signal.

use std::io::Write;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use base64::Engine;
use consentry_catalog::{Catalog, CatalogError};
use consentry_domain::{Consentry, StoreError, SystemClock};
use consentry_store::Sealer;
use secrecy::{ExposeSecret, SecretString};
use tokio::net::TcpListener;

use crate::auth::OperatorToken;
use crate::config::{Config, redact_url};
use crate::{AppState, router};

/// Why Consentry could not start. Each message names what to fix.
#[derive(Debug, thiserror::Error)]
pub enum StartupError {
    /// The catalog file is malformed.
    #[error("the app-type catalog is not valid: {0}")]
    Catalog(#[from] CatalogError),
    /// The master key could not be loaded or created.
    #[error("master key: {0}")]
    MasterKey(String),
    /// The operator token file could not be read or created.
    #[error("API token file {path}: {message}")]
    ApiToken {
        /// The file.
        path: PathBuf,
        /// What went wrong.
        message: String,
    },
    /// The data directory could not be created.
    #[error("cannot create the data directory {path}: {source}")]
    DataDir {
        /// The folder.
        path: PathBuf,
        /// The I/O error.
        source: std::io::Error,
    },
    /// The database could not be opened or migrated.
    #[error("database {url}: {source}")]
    Database {
        /// The URL with any password hidden.
        url: String,
        /// The failure.
        source: StoreError,
    },
    /// The listener failed.
    #[error("server: {0}")]
    Io(#[from] std::io::Error),
}

/// Loads the catalog in force.
pub fn load_catalog(cfg: &Config) -> Result<Catalog, StartupError> {
    Ok(match &cfg.catalog_file {
        Some(p) => Catalog::load_file(p)?,
        None => Catalog::builtin(),
    })
}

/// Loads or creates the sealing key.
pub fn load_sealer(cfg: &Config) -> Result<Sealer, StartupError> {
    match &cfg.master_key {
        Some(k) => Sealer::from_base64(k.expose_secret())
            .map_err(|e| StartupError::MasterKey(e.to_string())),
        None => {
            let path = cfg.master_key_path();
            ensure_parent(&path)?;
            Sealer::load_or_create_key_file(&path)
                .map_err(|e| StartupError::MasterKey(e.to_string()))
        }
    }
}

fn ensure_parent(path: &Path) -> Result<(), StartupError> {
    if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
        std::fs::create_dir_all(dir).map_err(|source| StartupError::DataDir {
            path: dir.to_path_buf(),
            source,
        })?;
    }
    Ok(())
}

/// Reads the operator token from config, or from its file, creating the file (mode 0600) on first run.
/// Returns the token and, when it came from a file, the file's path.
pub fn load_api_token(cfg: &Config) -> Result<(SecretString, Option<PathBuf>), StartupError> {
    if let Some(t) = &cfg.api_token {
        return Ok((t.clone(), None));
    }
    let path = cfg.api_token_path();
    let err = |message: String| StartupError::ApiToken {
        path: path.clone(),
        message,
    };
    match std::fs::read_to_string(&path) {
        Ok(s) => {
            let t = s.trim().to_string();
            if t.len() < 16 {
                return Err(err(
                    "the token in the file is shorter than 16 characters".into()
                ));
            }
            Ok((SecretString::from(t), Some(path)))
        }
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
            ensure_parent(&path)?;
            let bytes: [u8; 32] = rand::random();
            let token = format!(
                "cst_{}",
                base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(bytes)
            );
            write_private_file(&path, token.as_bytes()).map_err(|e| err(e.to_string()))?;
            Ok((SecretString::from(token), Some(path)))
        }
        Err(e) => Err(err(e.to_string())),
    }
}

fn write_private_file(path: &Path, contents: &[u8]) -> std::io::Result<()> {
    let mut opts = std::fs::OpenOptions::new();
    opts.write(true).create_new(true);
    #[cfg(unix)]
    {
        use std::os::unix::fs::OpenOptionsExt;
        opts.mode(0o600);
    }
    let mut f = opts.open(path)?;
    f.write_all(contents)?;
    f.write_all(b"\n")
}

/// Opens the store (running migrations), loads the catalog and builds the handler state.
pub async fn build_state(cfg: &Config) -> Result<AppState, StartupError> {
    let catalog = Arc::new(load_catalog(cfg)?);
    std::fs::create_dir_all(&cfg.data_dir).map_err(|source| StartupError::DataDir {
        path: cfg.data_dir.clone(),
        source,
    })?;
    let sealer = load_sealer(cfg)?;
    let (token, _) = load_api_token(cfg)?;
    let url = cfg.database_url();
    let store = consentry_store::SqlStore::open(&url, sealer)
        .await
        .map_err(|source| StartupError::Database {
            url: redact_url(&url),
            source,
        })?;
    let svc = Consentry::new(Arc::new(store), catalog, Arc::new(SystemClock));
    Ok(AppState {
        svc,
        operator_token: OperatorToken::new(&token),
        max_body_bytes: cfg.max_body_bytes,
    })
}

/// Serves `state` on `listener` until Ctrl-C or SIGTERM (or until `shutdown` resolves).
pub async fn serve(
    listener: TcpListener,
    state: AppState,
    shutdown: impl std::future::Future<Output = ()> + Send + 'static,
) -> Result<(), StartupError> {
    axum::serve(listener, router(state))
        .with_graceful_shutdown(shutdown)
        .await?;
    Ok(())
}

/// Resolves on Ctrl-C or SIGTERM.
pub async fn shutdown_signal() {
    let ctrl_c = async {
        let _ = tokio::signal::ctrl_c().await;
    };
    #[cfg(unix)]
    let term = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut s) => {
                s.recv().await;
            }
            Err(_) => std::future::pending::<()>().await,
        }
    };
    #[cfg(not(unix))]
    let term = std::future::pending::<()>();
    tokio::select! {
        _ = ctrl_c => {},
        _ = term => {},
    }
    tracing::info!("shutdown signal received");
}

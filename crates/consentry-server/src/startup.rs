//! Start-up: open the store, load the catalog, prepare secrets, and serve until a shutdown signal.

use std::collections::BTreeMap;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use base64::Engine;
use consentry_catalog::{Catalog, CatalogError};
use consentry_domain::{AppId, Consentry, Reauthorizer, StoreError, SystemClock};
use consentry_entra::credential_files::CredentialFiles;
use consentry_entra::platform::{EntraPlatform, VendorApp};
use consentry_entra::{EntraClient, EntraConfig};
use consentry_store::Sealer;
use secrecy::{ExposeSecret, SecretString};
use tokio::net::TcpListener;

use crate::auth::OperatorToken;
use crate::config::{Config, VendorAppConfig, redact_url};
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
    /// A vendor app or the Microsoft endpoints are misconfigured.
    #[error("configuration: {0}")]
    Config(String),
    /// The listener failed.
    #[error("server: {0}")]
    Io(#[from] std::io::Error),
}

/// A secret read once from its file (surrounding whitespace ignored).
fn read_secret_file(path: &Path, what: &str) -> Result<SecretString, StartupError> {
    std::fs::read_to_string(path)
        .map(|s| SecretString::from(s.trim().to_string()))
        .map_err(|e| {
            StartupError::Config(format!("cannot read {what} file {}: {e}", path.display()))
        })
}

/// The vendor's app registrations by app type in the global cloud (`[apps]`), with their
/// credentials, from the configuration.
pub fn vendor_apps(
    cfg: &Config,
    catalog: &Catalog,
) -> Result<BTreeMap<String, VendorApp>, StartupError> {
    registrations("apps", &cfg.apps, catalog)
}

/// The registrations configured under `prefix` (`apps`, `clouds.usgov.apps`).
fn registrations(
    prefix: &str,
    configured: &BTreeMap<String, crate::config::VendorAppConfig>,
    catalog: &Catalog,
) -> Result<BTreeMap<String, VendorApp>, StartupError> {
    let mut apps = BTreeMap::new();
    for (key, app) in configured {
        let key_path = format!("{prefix}.{key}");
        let key_path = key_path.as_str();
        if catalog.app_type(key).is_none() {
            return Err(StartupError::Config(format!(
                "{key_path}: no app type {key:?} in the catalog (`consentry catalog list` shows the keys)"
            )));
        }
        let vendor = vendor_app(app, key_path)?;
        apps.insert(key.clone(), vendor);
    }
    Ok(apps)
}

/// One app registration's client ID and credential from its configuration entry (`what` names the
/// entry in error messages, e.g. `apps.insights-m365`).
pub fn vendor_app(app: &VendorAppConfig, what: &str) -> Result<VendorApp, StartupError> {
    let client_id = AppId::parse(&app.client_id)
        .map_err(|e| StartupError::Config(format!("{what}.client_id: {e}")))?;
    // Credentials in files are read again whenever the files change (`consentry apps
    // rotate-credential` renames the new one over the old), so a rotation needs no restart.
    Ok(if let Some(s) = &app.client_secret {
        VendorApp::with_secret(client_id, s.clone())
    } else if let Some(p) = &app.client_secret_file {
        let files = CredentialFiles::secret(p)
            .map_err(|e| StartupError::Config(format!("{what}.client_secret_file: {e}")))?;
        VendorApp::with_credential_files(client_id, files)
    } else if let Some(p) = &app.certificate_file {
        let files = CredentialFiles::certificate(
            p,
            app.certificate_password_file.clone(),
            app.certificate_password.clone(),
        )
        .map_err(|e| StartupError::Config(format!("{what}.certificate_file: {e}")))?;
        VendorApp::with_credential_files(client_id, files)
    } else {
        return Err(StartupError::Config(format!(
            "{what}: give client_secret, client_secret_file or certificate_file"
        )));
    })
}

fn extra_ca_pem(cfg: &Config) -> Result<Option<String>, StartupError> {
    match &cfg.entra.extra_ca_file {
        Some(p) => Ok(Some(std::fs::read_to_string(p).map_err(|e| {
            StartupError::Config(format!("entra.extra_ca_file {}: {e}", p.display()))
        })?)),
        None => Ok(None),
    }
}

/// The client for the global cloud's identity platform and Graph (`[entra]`: Microsoft's, or
/// entra-sim's with its CA).
pub fn entra_client(cfg: &Config) -> Result<EntraClient, StartupError> {
    EntraClient::new(EntraConfig {
        authority: cfg.entra.authority.clone(),
        graph: cfg.entra.graph.clone(),
        viva_engage: cfg.entra.viva_engage.clone(),
        extra_ca_pem: extra_ca_pem(cfg)?,
        // After a 429, requests of that tenant and app wait for its Retry-After (issue #21).
        pacing: Some(consentry_entra::Pacing::default()),
        ..EntraConfig::default()
    })
    .map_err(|e| StartupError::Config(format!("entra: {e}")))
}

/// Builds the identity-platform adapter from the configuration: Microsoft's (or entra-sim's)
/// endpoints, the extra CA, and the vendor's app registrations by app type.
pub fn build_platform(cfg: &Config, catalog: &Arc<Catalog>) -> Result<EntraPlatform, StartupError> {
    let extra_ca_pem = extra_ca_pem(cfg)?;
    let client = entra_client(cfg)?;
    let apps = vendor_apps(cfg, catalog)?;
    let mut platform = EntraPlatform::new(client, cfg.callback_url(), apps)
        .map_err(|e| StartupError::Config(format!("public_url: {e}")))?
        .with_console_redirect_uri(cfg.console_sign_in_callback_url());
    if let Some(app) = &cfg.consentry_app {
        platform = platform.with_consentry_app(vendor_app(app, "consentry_app")?);
    }
    if let Some(t) = &cfg.vendor_tenant {
        platform = platform.with_vendor_tenant(&consentry_domain::CloudKey::global(), t.clone());
    }
    // Each national cloud named in the configuration: its endpoints ([entra.clouds.<key>], by
    // default the cloud table's hosts), Graph's resource identifier there (always the table's: it
    // names Microsoft's Graph in that cloud, wherever the URL points) and its registrations.
    let table = consentry_entra::clouds::Clouds::builtin();
    for key in cfg.national_clouds() {
        let cloud = table.get(key).ok_or_else(|| {
            StartupError::Config(format!("clouds.{key}: no such cloud in the cloud table"))
        })?;
        let endpoints = cfg.entra.clouds.get(key).cloned().unwrap_or_default();
        let client = EntraClient::new(EntraConfig {
            authority: cloud_authority(cfg, key),
            graph: endpoints.graph.unwrap_or_else(|| cloud.default_graph()),
            graph_resource: cloud.graph_resource(),
            viva_engage: cfg.entra.viva_engage.clone(),
            extra_ca_pem: extra_ca_pem.clone(),
            pacing: Some(consentry_entra::Pacing::default()),
            ..EntraConfig::default()
        })
        .map_err(|e| StartupError::Config(format!("entra.clouds.{key}: {e}")))?;
        let apps = match cfg.clouds.get(key) {
            Some(c) => registrations(&format!("clouds.{key}.apps"), &c.apps, catalog)?,
            None => BTreeMap::new(),
        };
        platform = platform.with_cloud(cloud.key.clone(), client, apps);
        if let Some(t) = cfg.clouds.get(key).and_then(|c| c.vendor_tenant.clone()) {
            platform = platform.with_vendor_tenant(&cloud.key, t);
        }
    }
    Ok(platform
        .with_catalog(catalog.clone())
        .with_retry_policy(consentry_entra::RetryPolicy {
            max_attempts: cfg.entra.retry_attempts,
            base_delay: std::time::Duration::from_millis(cfg.entra.retry_base_delay_ms),
            ..consentry_entra::RetryPolicy::default()
        }))
}

/// A national cloud's authority: `[entra.clouds.<key>] authority`, or the cloud table's host.
fn cloud_authority(cfg: &Config, key: &str) -> String {
    cfg.entra
        .clouds
        .get(key)
        .and_then(|c| c.authority.clone())
        .or_else(|| {
            consentry_entra::clouds::Clouds::builtin()
                .get(key)
                .map(|c| c.default_authority())
        })
        .unwrap_or_default()
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
            // The key file and, during a master key rotation, `<file>.old`; followed without a restart.
            Sealer::from_key_files(&path).map_err(|e| StartupError::MasterKey(e.to_string()))
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

/// The services every entry point runs on, built one way from the configuration by [`compose`]:
/// `consentry serve` (the API, the console and the monitor), every CLI command, the demo and the
/// test kit. So
/// the scheduled check and "check now" are the same path everywhere: the configured
/// [`CheckPolicy`](consentry_domain::CheckPolicy) (`monitor.transient_attempts`) and the webhook
/// notifier, whether the check runs in the server or in `consentry profiles check`.
#[derive(Debug, Clone)]
pub struct Services {
    /// The domain services over the store.
    pub svc: Consentry,
    /// Re-authorization, with consent links and the callback hold from the request time limit.
    pub reauth: Reauthorizer,
    /// The checker, with the configured policy and the webhook notifier as observer.
    pub checker: consentry_domain::Checker,
    /// The webhook notifier (deliveries run in the background: a short-lived process flushes it).
    pub notifier: Arc<consentry_monitor::webhooks::WebhookNotifier>,
    /// The token API's service (its caches live as long as the process).
    pub graph_tokens: Arc<consentry_domain::GraphTokens>,
    /// Consent campaigns, with the webhook notifier told of their progress.
    pub campaigns: consentry_domain::Campaigns,
    /// The email outbox's delivery worker, when `[email]` is configured (`serve` runs it).
    pub email: Option<consentry_mail::DeliveryWorker>,
    /// The watch over the vendor's own credentials, with the operator's webhook and email as
    /// observers when configured (`serve` reads the registrations periodically).
    pub vendor_credentials: consentry_domain::VendorCredentialWatch,
}

/// Opens the configured database with the configured master key, running migrations: the one
/// place a store is opened from the configuration. [`compose`] builds the services on it; the
/// commands that work on the store itself (`consentry migrate`, `consentry master-key`) use it alone.
pub async fn open_store(cfg: &Config) -> Result<consentry_store::SqlStore, StartupError> {
    std::fs::create_dir_all(&cfg.data_dir).map_err(|source| StartupError::DataDir {
        path: cfg.data_dir.clone(),
        source,
    })?;
    let sealer = load_sealer(cfg)?;
    let url = cfg.database_url();
    consentry_store::SqlStore::open(&url, sealer)
        .await
        .map_err(|source| StartupError::Database {
            url: redact_url(&url),
            source,
        })
}

/// The composition root: builds the store, the domain services, the re-authorizer and the checker
/// from the configuration, the same way for every entry point (`serve`, every CLI command, the
/// demo, the test kit).
pub async fn compose(
    cfg: &Config,
    clock: Arc<dyn consentry_domain::Clock>,
) -> Result<Services, StartupError> {
    let catalog = Arc::new(load_catalog(cfg)?);
    let store: Arc<dyn consentry_domain::Store> = Arc::new(open_store(cfg).await?);
    let svc = Consentry::new(store.clone(), catalog.clone(), clock.clone());
    let platform = build_platform(cfg, &catalog)?.with_clock(clock);
    let platform: Arc<dyn consentry_domain::IdentityPlatform> = Arc::new(platform);
    // A callback's request is dropped at the request time limit; its taken pending record is held
    // twice as long (at least 10 s) before the monitor treats it as abandoned.
    let hold = i64::try_from(cfg.request_timeout_seconds)
        .unwrap_or(i64::MAX / 4)
        .saturating_mul(2)
        .max(10);
    let reauth = Reauthorizer::new(svc.clone(), platform.clone())
        .with_consent_links(cfg.public_url.clone())
        .with_callback_hold(time::Duration::seconds(hold));
    let notifier = Arc::new(consentry_monitor::webhooks::WebhookNotifier::new(
        consentry_domain::Webhooks::new(svc.clone()),
        consentry_monitor::webhooks::NotifierConfig {
            hold_down: time::Duration::minutes(i64::from(cfg.monitor.webhook_hold_down_minutes)),
            attempts: cfg.monitor.webhook_attempts,
            allow_private: cfg.webhooks.allow_private,
            ..consentry_monitor::webhooks::NotifierConfig::default()
        },
    ));
    let mut checker = consentry_domain::Checker::new(svc.clone(), platform, cfg_check_policy(cfg))
        .with_observer(notifier.clone());
    // With email on, a check making a profile invalid queues a message to the tenant's contacts.
    let email = email_worker(cfg, &svc)?;
    if email.is_some() {
        checker = checker.with_observer(Arc::new(consentry_domain::InvalidEmails::new(
            consentry_domain::Mail::new(svc.clone()),
            time::Duration::minutes(i64::from(cfg.email.invalid_hold_down_minutes)),
        )));
    }
    let graph_tokens = Arc::new(consentry_domain::GraphTokens::new(
        svc.clone(),
        checker.clone(),
        std::time::Duration::from_millis(cfg.token_api.lookup_cache_ms),
        time::Duration::seconds(
            i64::try_from(cfg.token_api.audit_window_seconds).unwrap_or(i64::MAX / 2),
        ),
    ));
    let vendor_credentials = vendor_watch(cfg, &svc, reauth.platform().clone())?;
    let campaigns =
        consentry_domain::Campaigns::new(reauth.clone(), consentry_domain::Mail::new(svc.clone()))
            .with_outbound_addresses(cfg.network.outbound_addresses.clone())
            .with_email(email.is_some())
            .with_observer(notifier.clone());
    Ok(Services {
        svc,
        reauth,
        checker,
        notifier,
        graph_tokens,
        campaigns,
        email,
        vendor_credentials,
    })
}

/// The watch over the vendor's credentials: alerts go to `[webhooks] operator_url` and to
/// `[email] operator_to` when they are set.
fn vendor_watch(
    cfg: &Config,
    svc: &Consentry,
    platform: Arc<dyn consentry_domain::IdentityPlatform>,
) -> Result<consentry_domain::VendorCredentialWatch, StartupError> {
    let mut watch = consentry_domain::VendorCredentialWatch::new(
        svc.clone(),
        platform,
        &cfg.public_url,
        monitor_config(cfg).worker_id,
    );
    if let (Some(url), Some(file)) = (
        &cfg.webhooks.operator_url,
        &cfg.webhooks.operator_secret_file,
    ) {
        let secret = read_secret_file(file, "webhooks.operator_secret")?;
        if secret.expose_secret().len() < 16 {
            return Err(StartupError::Config(format!(
                "webhooks.operator_secret_file {}: the secret must be at least 16 characters",
                file.display()
            )));
        }
        watch = watch.with_observer(Arc::new(consentry_monitor::vendor::OperatorWebhook::new(
            url.clone(),
            secret,
            cfg.monitor.webhook_attempts,
            cfg.webhooks.allow_private,
        )));
    }
    if let Some(smtp) = cfg.email.smtp()
        && !cfg.email.operator_to.is_empty()
    {
        let to =
            consentry_domain::mail::parse_addresses("email.operator_to", &cfg.email.operator_to)
                .map_err(|e| StartupError::Config(e.to_string()))?;
        let sender = consentry_mail::SmtpSender::new(&smtp)
            .map_err(|e| StartupError::Config(e.to_string()))?;
        watch = watch.with_observer(Arc::new(consentry_mail::OperatorMail::new(sender, to)));
    }
    Ok(watch)
}

/// The email delivery worker from `[email]`; `None` while `smtp_host` is unset.
fn email_worker(
    cfg: &Config,
    svc: &Consentry,
) -> Result<Option<consentry_mail::DeliveryWorker>, StartupError> {
    let Some(smtp) = cfg.email.smtp() else {
        return Ok(None);
    };
    let sender =
        consentry_mail::SmtpSender::new(&smtp).map_err(|e| StartupError::Config(e.to_string()))?;
    Ok(Some(consentry_mail::DeliveryWorker::new(
        consentry_domain::Mail::new(svc.clone()),
        sender,
        consentry_mail::WorkerConfig {
            poll: std::time::Duration::from_secs(u64::from(cfg.email.poll_seconds)),
            digest_hour: Some(cfg.email.digest_hour_utc),
            ..consentry_mail::WorkerConfig::default()
        },
    )))
}

/// Opens the store (running migrations), loads the catalog and builds the handler state.
pub async fn build_state(cfg: &Config) -> Result<AppState, StartupError> {
    build_state_with_clock(cfg, Arc::new(SystemClock)).await
}

/// [`build_state`] with another clock (tests move time forward).
pub async fn build_state_with_clock(
    cfg: &Config,
    clock: Arc<dyn consentry_domain::Clock>,
) -> Result<AppState, StartupError> {
    let (token, _) = load_api_token(cfg)?;
    let Services {
        svc,
        reauth,
        checker,
        notifier,
        graph_tokens,
        campaigns,
        email,
        vendor_credentials,
    } = compose(cfg, clock).await?;
    let console = crate::console::ConsoleState::new(&svc, &cfg.public_url)
        .with_microsoft_sign_in(
            &svc,
            reauth.platform().clone(),
            cfg.microsoft_sign_in
                .rules()
                .map_err(StartupError::Config)?,
        )
        .with_count_limit(cfg.console_count_limit);
    let connect = consentry_domain::TenantConnector::new(
        svc.clone(),
        reauth.platform().clone(),
        &cfg.public_url,
    );
    let invitations = consentry_domain::Invitations::new(svc.clone(), &cfg.public_url)
        .with_email(cfg.email.smtp_host.is_some());
    Ok(AppState::new(crate::AppStateParts {
        console,
        connect,
        invitations,
        svc,
        reauth,
        operator_token: OperatorToken::new(&token),
        max_body_bytes: cfg.max_body_bytes,
        security: crate::security::SecurityConfig::new(
            cfg.tls(),
            std::time::Duration::from_secs(cfg.request_timeout_seconds),
            &cfg.entra.authority,
        )
        .with_authorities(
            std::iter::once(cfg.entra.authority.clone())
                .chain(
                    cfg.national_clouds()
                        .into_iter()
                        .map(|k| cloud_authority(cfg, k)),
                )
                .collect::<Vec<_>>()
                .iter()
                .map(String::as_str),
        )
        .with_trusted_proxies(cfg.network.trusted_proxy_ranges()),
        webhooks_allow_private: cfg.webhooks.allow_private,
        checker,
        webhook_stats: notifier.stats().clone(),
        metrics: Arc::new(consentry_monitor::metrics::Metrics::new()),
        graph_tokens,
        campaigns,
        email,
        vendor_credentials,
    }))
}

/// The check policy from the configuration.
fn cfg_check_policy(cfg: &Config) -> consentry_domain::CheckPolicy {
    consentry_domain::CheckPolicy {
        transient_attempts: cfg.monitor.transient_attempts,
        outbound_addresses: cfg.network.outbound_addresses.clone(),
        ..consentry_domain::CheckPolicy::default()
    }
}

/// The monitor's settings from the configuration (`[monitor]`).
pub fn monitor_config(cfg: &Config) -> consentry_monitor::MonitorConfig {
    let m = &cfg.monitor;
    let defaults = consentry_monitor::MonitorConfig::default();
    consentry_monitor::MonitorConfig {
        // Unique per process, and naming the process: an operator (or a test) can tell from
        // `check_schedule.lease_owner` which replica holds a lease.
        worker_id: format!("{}-pid{}", defaults.worker_id, std::process::id()),
        interval: time::Duration::minutes(i64::from(m.interval_minutes)),
        invalid_interval: time::Duration::minutes(i64::from(m.invalid_interval_minutes)),
        poll: std::time::Duration::from_secs(u64::from(m.poll_seconds)),
        batch: m.batch,
        lease_for: match m.lease_seconds {
            Some(s) => time::Duration::seconds(i64::from(s)),
            None => time::Duration::minutes(i64::from(m.lease_minutes)),
        },
        max_concurrent: m.max_concurrent as usize,
        max_per_tenant: m.max_per_tenant as usize,
    }
}

/// Serves `state` on `listener` until Ctrl-C or SIGTERM (or until `shutdown` resolves).
pub async fn serve(
    listener: TcpListener,
    state: AppState,
    shutdown: impl std::future::Future<Output = ()> + Send + 'static,
) -> Result<(), StartupError> {
    // The token API's summed-up audit entries are written as their windows end, and all at shutdown.
    let flusher = state.graph_tokens.audit_flush_every().map(|every| {
        let st = state.clone();
        tokio::spawn(async move {
            let mut tick = tokio::time::interval(every);
            tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
            loop {
                tick.tick().await;
                st.graph_tokens.flush_audit(false).await;
            }
        })
    });
    // Consent campaigns' reminders: every minute, whatever is due (safe on every replica: each
    // reminder is recorded by one).
    let reminders = {
        let campaigns = state.campaigns.clone();
        tokio::spawn(async move {
            let mut tick = tokio::time::interval(std::time::Duration::from_secs(60));
            tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
            loop {
                tick.tick().await;
                match campaigns.send_due_reminders().await {
                    Ok(0) => {}
                    Ok(n) => tracing::info!(reminders = n, "campaign reminders queued"),
                    Err(e) => tracing::warn!(error = %e, "campaign reminders could not be queued"),
                }
            }
        })
    };
    let st = state.clone();
    // With the peer's address: the audit log and the sign-in throttle use it (or, when the peer is a
    // trusted proxy, the client address it forwards).
    // TCP_NODELAY: small answers go out at once instead of waiting for the peer's delayed ACK.
    let listener = axum::serve::ListenerExt::tap_io(listener, |tcp| {
        if let Err(e) = tcp.set_nodelay(true) {
            tracing::debug!(error = %e, "TCP_NODELAY could not be set");
        }
    });
    let served = axum::serve(
        listener,
        router(state).into_make_service_with_connect_info::<std::net::SocketAddr>(),
    )
    .with_graceful_shutdown(shutdown)
    .await;
    if let Some(f) = flusher {
        f.abort();
    }
    reminders.abort();
    st.graph_tokens.flush_audit(true).await;
    served?;
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

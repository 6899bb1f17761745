//! Configuration: one typed struct with defaults in code, overridden by a TOML file, then by
//! `CONSENTRY_*` environment variables (nested keys joined with `__`, e.g. `CONSENTRY_ENTRA__AUTHORITY`),
//! with secrets readable from files (`*_file` keys, or `CONSENTRY_<KEY>_FILE`). Validated once at start;
//! every message names the key and the problem.

use std::collections::BTreeMap;
use std::fmt;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};

use secrecy::{ExposeSecret, SecretString};
use serde::Deserialize;

/// The prefix of environment overrides.
pub const ENV_PREFIX: &str = "CONSENTRY_";

/// The project's own `CONSENTRY_*` variables that are not configuration keys, skipped when the
/// environment is read (every other `CONSENTRY_*` variable must name a key, so a typo is an error
/// naming it):
///
/// - `CONSENTRY_CONFIG`: the configuration file itself (handled by the CLI).
/// - `CONSENTRY_LOG`: the log filter (read by the binary's logging set-up).
/// - `CONSENTRY_CERT_PASSWORD`: `consentry cert new`'s .pfx password.
/// - `CONSENTRY_PFX_PASSWORD`: the .pfx password of `consentry profiles reauthorize`.
/// - `CONSENTRY_FUZZ_SECONDS`, `CONSENTRY_REPLICA_TEST_PROFILES`: the fuzz and replica test scripts.
/// - every `CONSENTRY_TEST_*` variable ([`NOT_CONFIG_PREFIX`]): the test suite's settings, such as
///   `CONSENTRY_TEST_POSTGRES_URL`, which `scripts/test.sh` exports; no configuration key starts
///   with `test_`.
pub const NOT_CONFIG_VARS: &[&str] = &[
    "CONSENTRY_CONFIG",
    "CONSENTRY_LOG",
    "CONSENTRY_CERT_PASSWORD",
    "CONSENTRY_PFX_PASSWORD",
    "CONSENTRY_FUZZ_SECONDS",
    "CONSENTRY_REPLICA_TEST_PROFILES",
];

/// The prefix of the test suite's variables, none of which is a configuration key.
pub const NOT_CONFIG_PREFIX: &str = "CONSENTRY_TEST_";

/// Whether an environment variable is read as a configuration key.
pub fn is_config_var(name: &str) -> bool {
    name.starts_with(ENV_PREFIX)
        && !name.starts_with(NOT_CONFIG_PREFIX)
        && !NOT_CONFIG_VARS.contains(&name)
}

/// Why the configuration could not be loaded.
#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    /// The file could not be read.
    #[error("cannot read the configuration file {path}: {source}")]
    Read {
        /// The file.
        path: PathBuf,
        /// The I/O error.
        source: std::io::Error,
    },
    /// A key has a bad value (or is unknown).
    #[error("configuration {origin}: {message}")]
    Invalid {
        /// Where: the file path, "environment" or "defaults".
        origin: String,
        /// The key and the problem.
        message: String,
    },
}

/// How log lines are written.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, Default)]
#[serde(rename_all = "lowercase")]
pub enum LogFormat {
    /// Human-readable lines.
    #[default]
    Text,
    /// One JSON object per line.
    Json,
}

/// Where Consentry reaches the Microsoft identity platform and Graph.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct EntraConfig {
    /// Base of the authority, without tenant: `https://login.microsoftonline.com`.
    pub authority: String,
    /// Graph base URL including the version: `https://graph.microsoft.com/v1.0`.
    pub graph: String,
    /// The Viva Engage (Yammer) REST API base: `https://www.yammer.com` (where Verified Admin is
    /// read; entra-sim serves it at `{base}/yammer`).
    pub viva_engage: String,
    /// An extra CA certificate (PEM) to trust, e.g. entra-sim's.
    pub extra_ca_file: Option<PathBuf>,
    /// Attempts of an idempotent call to Microsoft (token redemption, Graph reads) that fails
    /// transiently (timeout, 5xx, 429), the first included; 1 to 10.
    pub retry_attempts: u32,
    /// Backoff before the first retry, in milliseconds, doubled each time (with jitter; a
    /// `Retry-After` from Microsoft wins); 1 to 60000.
    pub retry_base_delay_ms: u64,
    /// Where a national cloud's endpoints are, by cloud key (`[entra.clouds.usgov]`): the keys above
    /// are the global cloud's. Unset fields default to the cloud table's hosts.
    pub clouds: BTreeMap<String, EntraCloudConfig>,
}

/// `[entra.clouds.<key>]`: a national cloud's endpoints, when not Microsoft's (entra-sim's).
#[derive(Debug, Clone, Default, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct EntraCloudConfig {
    /// The cloud's authority base: `https://<authority host>` by default (`https://login.microsoftonline.us`).
    pub authority: Option<String>,
    /// The cloud's Graph base URL with version: `https://<graph host>/v1.0` by default.
    pub graph: Option<String>,
}

/// `[clouds.<key>]`: what Consentry has in a national cloud.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct CloudConfig {
    /// The vendor's own tenant in that cloud (ID or verified domain), home of its registrations there.
    pub vendor_tenant: Option<String>,
    /// The vendor's app registrations in that cloud, by catalog app-type key
    /// (`[clouds.usgov.apps.insights-m365]`); a national cloud needs registrations of its own.
    pub apps: BTreeMap<String, VendorAppConfig>,
}

impl Default for EntraConfig {
    fn default() -> Self {
        Self {
            authority: "https://login.microsoftonline.com".into(),
            graph: "https://graph.microsoft.com/v1.0".into(),
            viva_engage: "https://www.yammer.com".into(),
            extra_ca_file: None,
            retry_attempts: 4,
            retry_base_delay_ms: 500,
            clouds: BTreeMap::new(),
        }
    }
}

/// The monitor: scheduled checks of every app profile (`[monitor]`).
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct MonitorSettings {
    /// Whether `consentry serve` runs the monitor.
    pub enabled: bool,
    /// Minutes between checks of a valid profile.
    pub interval_minutes: u32,
    /// Minutes between checks of an invalid profile (and after a persisting transient failure).
    pub invalid_interval_minutes: u32,
    /// Seconds between looks for due checks.
    pub poll_seconds: u32,
    /// Profiles leased per sweep.
    pub batch: u32,
    /// Minutes a lease protects a profile from other monitor processes.
    pub lease_minutes: u32,
    /// Seconds a lease protects a profile; when set, it replaces `lease_minutes` (short leases are for
    /// tests: a lease must outlast the checks of one batch, or they are skipped and leased again).
    pub lease_seconds: Option<u32>,
    /// Checks running at once, in all.
    pub max_concurrent: u32,
    /// Checks running at once per tenant.
    pub max_per_tenant: u32,
    /// Attempts of a check whose calls to Microsoft keep failing transiently.
    pub transient_attempts: u32,
    /// Minutes during which a webhook message for the same profile and reason is not sent again.
    pub webhook_hold_down_minutes: u32,
    /// Delivery attempts per webhook message.
    pub webhook_attempts: u32,
    /// Hours between readings of the vendor's own registrations (credential expiry, `/metrics`, the
    /// console's Vendor apps page, the expiry alerts); they are also read once at start.
    pub vendor_credentials_hours: u32,
}

impl Default for MonitorSettings {
    fn default() -> Self {
        Self {
            enabled: true,
            interval_minutes: 60,
            invalid_interval_minutes: 15,
            poll_seconds: 30,
            batch: 100,
            lease_minutes: 10,
            lease_seconds: None,
            max_concurrent: 16,
            max_per_tenant: 4,
            transient_attempts: 3,
            webhook_hold_down_minutes: 1440,
            webhook_attempts: 5,
            vendor_credentials_hours: 6,
        }
    }
}

/// The vendor's app registration for one app type.
#[derive(Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct VendorAppConfig {
    /// Application (client) ID.
    pub client_id: String,
    /// Client secret value. Prefer `client_secret_file`.
    pub client_secret: Option<SecretString>,
    /// File holding the client secret.
    pub client_secret_file: Option<PathBuf>,
    /// A .pfx file with the app's certificate and private key (instead of a secret).
    pub certificate_file: Option<PathBuf>,
    /// The .pfx password. Prefer `certificate_password_file`.
    pub certificate_password: Option<SecretString>,
    /// File holding the .pfx password.
    pub certificate_password_file: Option<PathBuf>,
}

impl fmt::Debug for VendorAppConfig {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("VendorAppConfig")
            .field("client_id", &self.client_id)
            .field(
                "client_secret",
                &self.client_secret.as_ref().map(|_| "[redacted]"),
            )
            .field("client_secret_file", &self.client_secret_file)
            .field("certificate_file", &self.certificate_file)
            .field(
                "certificate_password",
                &self.certificate_password.as_ref().map(|_| "[redacted]"),
            )
            .field("certificate_password_file", &self.certificate_password_file)
            .finish()
    }
}

/// The whole configuration.
#[derive(Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct Config {
    /// Address the server listens on.
    pub listen: SocketAddr,
    /// Public base URL (used in links and OAuth redirect URIs).
    pub public_url: String,
    /// Database URL: `sqlite://PATH` (default, in the data directory) or `postgres://…`.
    pub database_url: Option<String>,
    /// Folder for the SQLite database, the generated master key and the generated API token.
    pub data_dir: PathBuf,
    /// Master key for sealing secrets (base64 of 32 bytes). Prefer `master_key_file`.
    pub master_key: Option<SecretString>,
    /// File holding the master key; created with mode 0600 on first run when absent.
    pub master_key_file: Option<PathBuf>,
    /// Operator bearer token for the JSON API. Prefer `api_token_file`.
    pub api_token: Option<SecretString>,
    /// File holding the operator API token; created on first run when absent.
    pub api_token_file: Option<PathBuf>,
    /// Replacement app-type catalog (TOML); the built-in one when absent.
    pub catalog_file: Option<PathBuf>,
    /// Log format.
    pub log_format: LogFormat,
    /// Largest accepted request body, in bytes.
    pub max_body_bytes: usize,
    /// Microsoft endpoints.
    pub entra: EntraConfig,
    /// The vendor's app registrations, by catalog app-type key (`[apps.insights-m365]`), in the
    /// global cloud.
    pub apps: BTreeMap<String, VendorAppConfig>,
    /// The vendor's own tenant in the global cloud (ID or verified domain): the home tenant of the
    /// `[apps.*]` and `[consentry_app]` registrations, where `consentry apps register` writes them and
    /// `consentry doctor` and the credential monitor read them back.
    pub vendor_tenant: Option<String>,
    /// Consentry's own multi-tenant app registration (`[consentry_app]`, same keys as an `[apps.*]`
    /// entry), in the vendor's tenant: the console's "Sign in with Microsoft" and connecting a tenant
    /// by administrator consent. Both are off while it is unset.
    pub consentry_app: Option<VendorAppConfig>,
    /// Who is what when signing in with Microsoft (`[microsoft_sign_in]`).
    pub microsoft_sign_in: crate::sign_in_settings::MicrosoftSignInSettings,
    /// National clouds Consentry serves tenants in, by cloud key (`[clouds.usgov]`, `[clouds.usgov-dod]`,
    /// `[clouds.china]`): their vendor app registrations.
    pub clouds: BTreeMap<String, CloudConfig>,
    /// Scheduled checks.
    pub monitor: MonitorSettings,
    /// Longest time one request may take before it is answered 408 (seconds).
    pub request_timeout_seconds: u64,
    /// The console counts profiles (the invalid banner, the list's and the tenants' counts by
    /// status) up to this many per status and shows a larger count as `10,000+`, so a page's cost
    /// does not grow with the number of profiles.
    pub console_count_limit: u64,
    /// Webhook destinations (`[webhooks]`).
    pub webhooks: WebhookSettings,
    /// The token API (`[token_api]`).
    pub token_api: TokenApiSettings,
    /// Consentry's network as Microsoft sees it (`[network]`).
    pub network: NetworkSettings,
    /// Email to tenants' administrators (`[email]`); off while `smtp_host` is unset.
    pub email: EmailSettings,
}

/// `[email]`: the SMTP server Consentry sends through. Email is off while `smtp_host` is unset:
/// then nothing is queued by Consentry itself (no "profile became invalid" messages) and the console
/// says email is not configured.
#[derive(Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct EmailSettings {
    /// The SMTP server's host name or address; unset: email is off.
    pub smtp_host: Option<String>,
    /// Its port (default: 587 for starttls, 465 for tls, 25 for none).
    pub smtp_port: Option<u16>,
    /// `starttls` (default), `tls` (implicit TLS), or `none` (only to a loopback host).
    pub security: String,
    /// The user to authenticate as, with the password in `password_file`.
    pub username: Option<String>,
    /// The file holding the SMTP password (read at start).
    pub password_file: Option<PathBuf>,
    /// The sender: `address` or `Name <address>`. Required when email is on.
    pub from: Option<String>,
    /// Seconds between looks at the outbox.
    pub poll_seconds: u32,
    /// Minutes during which a "profile became invalid" message for the same profile and reason is
    /// not sent again.
    pub invalid_hold_down_minutes: u32,
    /// The hour (UTC, 0–23) from which each organization's daily digest is sent to its opted-in
    /// recipients.
    pub digest_hour_utc: u8,
    /// The platform operator's addresses: vendor credential expiry alerts are emailed there. A TOML
    /// list, or one comma-separated string in `CONSENTRY_EMAIL__OPERATOR_TO`.
    #[serde(deserialize_with = "list_or_csv")]
    pub operator_to: Vec<String>,
    /// The password read from `password_file`.
    #[serde(skip)]
    pub password: Option<SecretString>,
}

impl Default for EmailSettings {
    fn default() -> Self {
        Self {
            smtp_host: None,
            smtp_port: None,
            security: "starttls".into(),
            username: None,
            password_file: None,
            from: None,
            poll_seconds: 30,
            invalid_hold_down_minutes: 1440,
            digest_hour_utc: 7,
            operator_to: Vec::new(),
            password: None,
        }
    }
}

impl fmt::Debug for EmailSettings {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("EmailSettings")
            .field("smtp_host", &self.smtp_host)
            .field("smtp_port", &self.smtp_port)
            .field("security", &self.security)
            .field("username", &self.username)
            .field("password_file", &self.password_file)
            .field("from", &self.from)
            .field("poll_seconds", &self.poll_seconds)
            .field("invalid_hold_down_minutes", &self.invalid_hold_down_minutes)
            .field("digest_hour_utc", &self.digest_hour_utc)
            .field("operator_to", &self.operator_to)
            .field("password", &self.password.as_ref().map(|_| "[redacted]"))
            .finish()
    }
}

impl EmailSettings {
    /// The SMTP settings, when email is on (`smtp_host` set). Call after validation.
    pub fn smtp(&self) -> Option<consentry_mail::SmtpSettings> {
        let host = self.smtp_host.clone()?;
        let security = consentry_mail::Security::parse(&self.security)
            .unwrap_or(consentry_mail::Security::StartTls);
        Some(consentry_mail::SmtpSettings {
            port: self.smtp_port.unwrap_or(security.default_port()),
            host,
            security,
            username: self.username.clone(),
            password: self.password.clone(),
            from: self.from.clone().unwrap_or_default(),
            timeout: std::time::Duration::from_secs(30),
        })
    }

    /// Reads the password file and checks the settings, naming the key that is wrong.
    fn validate(&mut self) -> Result<(), String> {
        if consentry_mail::Security::parse(&self.security).is_none() {
            return Err(format!(
                "email.security = {:?} must be \"starttls\", \"tls\" or \"none\"",
                self.security
            ));
        }
        for (key, value) in [
            ("email.poll_seconds", self.poll_seconds),
            (
                "email.invalid_hold_down_minutes",
                self.invalid_hold_down_minutes,
            ),
        ] {
            if value == 0 {
                return Err(format!("{key} must be at least 1"));
            }
        }
        if self.digest_hour_utc > 23 {
            return Err(format!(
                "email.digest_hour_utc = {} must be an hour between 0 and 23",
                self.digest_hour_utc
            ));
        }
        if self.smtp_host.is_none() {
            return Ok(());
        }
        if self.from.as_deref().is_none_or(|f| f.trim().is_empty()) {
            return Err(
                "email.from: email is on (email.smtp_host is set): give the sender, e.g. \"Consentry <consentry@vendor.example>\""
                    .into(),
            );
        }
        if let Some(p) = &self.password_file {
            let pw = std::fs::read_to_string(p)
                .map_err(|e| format!("email.password_file {}: {e}", p.display()))?;
            let pw = pw.trim_end_matches(['\r', '\n']).to_string();
            if pw.is_empty() {
                return Err(format!("email.password_file {} is empty", p.display()));
            }
            self.password = Some(SecretString::from(pw));
        }
        if let Some(smtp) = self.smtp() {
            smtp.validate().map_err(|e| e.to_string())?;
        }
        Ok(())
    }
}

/// `[network]`: what tenant administrators need to know about Consentry's network.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct NetworkSettings {
    /// The public IP addresses (or CIDR ranges) Consentry's requests to Microsoft leave from.
    /// Microsoft evaluates conditional access on every refresh-token redemption against them, so
    /// they are named in conditional access advice, on the re-authorization page and on consent
    /// links, for administrators to add to their named locations. A TOML list, or one
    /// comma-separated string in `CONSENTRY_NETWORK__OUTBOUND_ADDRESSES`.
    #[serde(deserialize_with = "list_or_csv")]
    pub outbound_addresses: Vec<String>,
    /// The load balancers and reverse proxies in front of Consentry (IP addresses or CIDR ranges),
    /// whose `Forwarded` / `X-Forwarded-For` headers are believed: the client address they forward
    /// is the one the sign-in throttle counts and the audit log records. Empty (the default): no
    /// forwarding header is believed, the connection's peer is the client. A TOML list, or one
    /// comma-separated string in `CONSENTRY_NETWORK__TRUSTED_PROXIES`.
    #[serde(deserialize_with = "list_or_csv")]
    pub trusted_proxies: Vec<String>,
}

impl NetworkSettings {
    /// The trusted proxies as address ranges (a validated configuration's entries always parse).
    pub fn trusted_proxy_ranges(&self) -> Vec<ipnet::IpNet> {
        self.trusted_proxies
            .iter()
            .filter_map(|p| trusted_proxy(p).ok())
            .collect()
    }
}

/// One `[network] trusted_proxies` entry: an IP address (a range of one) or a CIDR range with its host
/// bits clear.
fn trusted_proxy(value: &str) -> Result<ipnet::IpNet, String> {
    let v = value.trim();
    if let Ok(ip) = v.parse::<std::net::IpAddr>() {
        return Ok(ipnet::IpNet::from(ip));
    }
    let net: ipnet::IpNet = v.parse().map_err(|_| {
        format!("network.trusted_proxies: {value:?} is neither an IP address nor a CIDR range such as 10.0.0.0/8")
    })?;
    if net.trunc() != net {
        return Err(format!(
            "network.trusted_proxies: {value:?} has host bits set; give the range's first address ({})",
            net.trunc()
        ));
    }
    Ok(net)
}

/// A list of strings, or one comma-separated string (environment variables).
pub(crate) fn list_or_csv<'de, D: serde::Deserializer<'de>>(d: D) -> Result<Vec<String>, D::Error> {
    #[derive(Deserialize)]
    #[serde(untagged)]
    enum ListOrCsv {
        List(Vec<String>),
        Csv(String),
    }
    Ok(match ListOrCsv::deserialize(d)? {
        ListOrCsv::List(v) => v,
        ListOrCsv::Csv(s) => s
            .split(',')
            .map(str::trim)
            .filter(|s| !s.is_empty())
            .map(str::to_string)
            .collect(),
    })
}

/// Checks and normalizes one `[network] outbound_addresses` entry: an IP address, or a CIDR range
/// with its host bits clear (what a named location accepts).
fn outbound_address(value: &str) -> Result<String, String> {
    let v = value.trim();
    if let Ok(ip) = v.parse::<std::net::IpAddr>() {
        return Ok(ip.to_string());
    }
    let (addr, len) = v.split_once('/').ok_or_else(|| {
        format!("network.outbound_addresses: {value:?} is neither an IP address nor a CIDR range such as 203.0.113.0/28")
    })?;
    let ip: std::net::IpAddr = addr.parse().map_err(|_| {
        format!("network.outbound_addresses: {value:?} does not start with an IP address")
    })?;
    let max = if ip.is_ipv4() { 32 } else { 128 };
    let len: u32 = len.parse().ok().filter(|l| *l <= max).ok_or_else(|| {
        format!("network.outbound_addresses: {value:?} has a prefix length outside 0..={max}")
    })?;
    let bits = match ip {
        std::net::IpAddr::V4(a) => u128::from(u32::from(a)) << 96,
        std::net::IpAddr::V6(a) => u128::from(a),
    };
    let host = u128::MAX.checked_shr(len).unwrap_or(0);
    if bits & host != 0 {
        return Err(format!(
            "network.outbound_addresses: {value:?} has host bits set; give the range's first address (for example {addr}/{len} → its network address)"
        ));
    }
    Ok(format!("{ip}/{len}"))
}

/// `[token_api]`: how much of a token request may be answered from memory.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct TokenApiSettings {
    /// How long (milliseconds) a resolved request — API key, tenant, app profile — is reused before
    /// the database is asked again. A key revoked on another replica or with the CLI stops working
    /// within this time; one revoked through this server's API stops at once. 0 asks every time.
    pub lookup_cache_ms: u64,
    /// Tokens issued to one key for one profile within this many seconds share one audit entry for
    /// the first token and one summing up the rest (`repeats`). 0 writes one entry per token.
    pub audit_window_seconds: u64,
}

impl Default for TokenApiSettings {
    fn default() -> Self {
        Self {
            lookup_cache_ms: 1000,
            audit_window_seconds: 60,
        }
    }
}

/// `[webhooks]`.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct WebhookSettings {
    /// Accept http URLs and private, loopback and link-local destinations (tests and demos only;
    /// by default a webhook must be https to a public address, checked again at delivery).
    pub allow_private: bool,
    /// Where the platform operator's own events go (`vendor_credential_expiry`: a vendor app's secret
    /// or certificate ends within 30 days, or ended): an https URL (any while `allow_private`).
    pub operator_url: Option<String>,
    /// The file holding the secret that signs the operator's events (`X-Consentry-Signature`, as
    /// organizations' webhooks); required with `operator_url`.
    pub operator_secret_file: Option<PathBuf>,
}

impl fmt::Debug for Config {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let redact = |s: &Option<SecretString>| s.as_ref().map(|_| "[redacted]");
        f.debug_struct("Config")
            .field("listen", &self.listen)
            .field("public_url", &self.public_url)
            .field(
                "database_url",
                &self.database_url.as_deref().map(redact_url),
            )
            .field("data_dir", &self.data_dir)
            .field("master_key", &redact(&self.master_key))
            .field("master_key_file", &self.master_key_file)
            .field("api_token", &redact(&self.api_token))
            .field("api_token_file", &self.api_token_file)
            .field("catalog_file", &self.catalog_file)
            .field("log_format", &self.log_format)
            .field("max_body_bytes", &self.max_body_bytes)
            .field("entra", &self.entra)
            .field("apps", &self.apps)
            .field("consentry_app", &self.consentry_app)
            .field("microsoft_sign_in", &self.microsoft_sign_in)
            .field("clouds", &self.clouds)
            .field("monitor", &self.monitor)
            .field("request_timeout_seconds", &self.request_timeout_seconds)
            .field("console_count_limit", &self.console_count_limit)
            .field("webhooks", &self.webhooks)
            .field("token_api", &self.token_api)
            .field("network", &self.network)
            .field("email", &self.email)
            .finish()
    }
}

/// Hides a password in a database URL (`postgres://user:secret@host` → `postgres://user:***@host`).
pub fn redact_url(url: &str) -> String {
    if let Some((scheme, rest)) = url.split_once("://")
        && let Some((userinfo, host)) = rest.split_once('@')
        && let Some((user, _)) = userinfo.split_once(':')
    {
        return format!("{scheme}://{user}:***@{host}");
    }
    url.to_string()
}

impl Default for Config {
    fn default() -> Self {
        Self {
            listen: "127.0.0.1:8080".parse().expect("valid default address"),
            public_url: String::new(),
            database_url: None,
            data_dir: PathBuf::from("consentry-data"),
            master_key: None,
            master_key_file: None,
            api_token: None,
            api_token_file: None,
            catalog_file: None,
            log_format: LogFormat::Text,
            max_body_bytes: 1024 * 1024,
            entra: EntraConfig::default(),
            apps: BTreeMap::new(),
            vendor_tenant: None,
            consentry_app: None,
            microsoft_sign_in: Default::default(),
            clouds: BTreeMap::new(),
            monitor: MonitorSettings::default(),
            request_timeout_seconds: 60,
            console_count_limit: crate::console::COUNT_LIMIT,
            webhooks: WebhookSettings::default(),
            token_api: TokenApiSettings::default(),
            network: NetworkSettings::default(),
            email: EmailSettings::default(),
        }
    }
}

/// The vendor app registrations under `prefix` (`apps`, `clouds.usgov.apps`): client IDs are GUIDs,
/// exactly one credential each.
fn check_apps(prefix: &str, apps: &BTreeMap<String, VendorAppConfig>) -> Result<(), String> {
    for (key, app) in apps {
        if consentry_domain::AppId::parse(&app.client_id).is_err() {
            return Err(format!(
                "{prefix}.{key}.client_id = {:?} is not a GUID",
                app.client_id
            ));
        }
        let secrets = usize::from(app.client_secret.is_some())
            + usize::from(app.client_secret_file.is_some())
            + usize::from(app.certificate_file.is_some());
        if secrets != 1 {
            return Err(format!(
                "{prefix}.{key}: give exactly one of client_secret, client_secret_file or certificate_file"
            ));
        }
    }
    Ok(())
}

/// The national clouds' keys name clouds of the table (not `global`, whose keys are `[entra]` and
/// `[apps]`), their URLs are http(s) URLs and their registrations are complete.
fn check_cloud_key(section: &str, key: &str) -> Result<(), String> {
    let table = consentry_entra::clouds::Clouds::builtin();
    if key == consentry_domain::CloudKey::GLOBAL {
        return Err(format!(
            "{section}.global: the global cloud is configured by [entra] and [apps.<app type>]; remove {section}.global"
        ));
    }
    if table.get(key).is_none() {
        let known: Vec<&str> = table
            .iter()
            .filter(|c| !c.key.is_global())
            .map(|c| c.key.as_str())
            .collect();
        return Err(format!(
            "{section}.{key}: no cloud {key:?}; the national clouds are {}",
            known.join(", ")
        ));
    }
    Ok(())
}

impl Config {
    fn validate_clouds(&self) -> Result<(), String> {
        for (key, cloud) in &self.entra.clouds {
            check_cloud_key("entra.clouds", key)?;
            for (field, value) in [("authority", &cloud.authority), ("graph", &cloud.graph)] {
                if let Some(v) = value
                    && !((v.starts_with("https://") || v.starts_with("http://"))
                        && url_host_present(v))
                {
                    return Err(format!(
                        "entra.clouds.{key}.{field} = {v:?} is not an http(s) URL such as https://login.microsoftonline.us"
                    ));
                }
            }
        }
        for (key, cloud) in &self.clouds {
            check_cloud_key("clouds", key)?;
            check_apps(&format!("clouds.{key}.apps"), &cloud.apps)?;
        }
        Ok(())
    }

    /// The national clouds Consentry is configured for (named under `[clouds]` or `[entra.clouds]`).
    pub fn national_clouds(&self) -> std::collections::BTreeSet<&str> {
        self.clouds
            .keys()
            .chain(self.entra.clouds.keys())
            .map(String::as_str)
            .collect()
    }
}

fn invalid(origin: &str, message: impl Into<String>) -> ConfigError {
    ConfigError::Invalid {
        origin: origin.to_string(),
        message: message.into(),
    }
}

/// Turns an environment value into a TOML value: numbers and booleans as such, everything else a string.
fn env_value(raw: &str) -> toml::Value {
    if let Ok(i) = raw.parse::<i64>() {
        return toml::Value::Integer(i);
    }
    match raw {
        "true" => toml::Value::Boolean(true),
        "false" => toml::Value::Boolean(false),
        _ => toml::Value::String(raw.to_string()),
    }
}

fn set_path(table: &mut toml::Table, path: &[String], value: toml::Value) -> Result<(), String> {
    let (last, parents) = path.split_last().ok_or("empty key")?;
    let mut cur = table;
    for p in parents {
        let entry = cur
            .entry(p.clone())
            .or_insert_with(|| toml::Value::Table(toml::Table::new()));
        cur = entry
            .as_table_mut()
            .ok_or_else(|| format!("{p} is not a table"))?;
    }
    cur.insert(last.clone(), value);
    Ok(())
}

impl Config {
    /// Loads defaults, then the file (if any), then the environment `vars`, and validates.
    pub fn load(
        file: Option<&Path>,
        vars: impl IntoIterator<Item = (String, String)>,
    ) -> Result<Config, ConfigError> {
        let mut table = toml::Table::new();
        let mut origin = "defaults".to_string();
        if let Some(path) = file {
            let text = std::fs::read_to_string(path).map_err(|source| ConfigError::Read {
                path: path.to_path_buf(),
                source,
            })?;
            origin = path.display().to_string();
            table = text
                .parse::<toml::Table>()
                .map_err(|e| invalid(&origin, e.to_string()))?;
        }
        // The project's own variables that are not keys ([`NOT_CONFIG_VARS`], `CONSENTRY_TEST_*`)
        // are skipped; any other CONSENTRY_* variable must name a key.
        let env: BTreeMap<String, String> =
            vars.into_iter().filter(|(k, _)| is_config_var(k)).collect();
        let from_env = !env.is_empty();
        for (k, v) in env {
            let key = k[ENV_PREFIX.len()..].to_ascii_lowercase();
            let mut path: Vec<String> = key.split("__").map(str::to_string).collect();
            // App-type keys are slugs with hyphens, which shells do not allow in variable names:
            // CONSENTRY_APPS__INSIGHTS_M365__CLIENT_ID names [apps.insights-m365].
            if path.len() > 2 && path[0] == "apps" {
                path[1] = path[1].replace('_', "-");
            }
            // Cloud keys too: CONSENTRY_CLOUDS__USGOV_DOD__APPS__INSIGHTS_M365__CLIENT_ID names
            // [clouds.usgov-dod.apps.insights-m365], CONSENTRY_ENTRA__CLOUDS__USGOV_DOD__GRAPH
            // [entra.clouds.usgov-dod].
            if path.len() > 2 && path[0] == "clouds" {
                path[1] = path[1].replace('_', "-");
                if path.len() > 4 && path[2] == "apps" {
                    path[3] = path[3].replace('_', "-");
                }
            }
            if path.len() > 3 && path[0] == "entra" && path[1] == "clouds" {
                path[2] = path[2].replace('_', "-");
            }
            set_path(&mut table, &path, env_value(&v))
                .map_err(|e| invalid("environment", format!("{k}: {e}")))?;
        }
        let origin = if from_env {
            format!("{origin} + environment")
        } else {
            origin
        };
        let mut cfg = Config::deserialize(toml::Value::Table(table))
            .map_err(|e| invalid(&origin, e.message().to_string()))?;
        cfg.read_secret_files(&origin)?;
        cfg.validate(&origin)?;
        Ok(cfg)
    }

    fn read_secret_files(&mut self, origin: &str) -> Result<(), ConfigError> {
        // `api_token_file`/`master_key_file` are read lazily (they may be created on first run);
        // here we only check that a value and a file are not both given.
        if self.api_token.is_some() && self.api_token_file.is_some() {
            return Err(invalid(
                origin,
                "api_token and api_token_file are both set: keep one",
            ));
        }
        if self.master_key.is_some() && self.master_key_file.is_some() {
            return Err(invalid(
                origin,
                "master_key and master_key_file are both set: keep one",
            ));
        }
        Ok(())
    }

    fn validate(&mut self, origin: &str) -> Result<(), ConfigError> {
        if self.public_url.is_empty() {
            self.public_url = format!("http://{}", self.listen);
        }
        for (key, value) in [
            ("public_url", &self.public_url),
            ("entra.authority", &self.entra.authority),
            ("entra.graph", &self.entra.graph),
            ("entra.viva_engage", &self.entra.viva_engage),
        ] {
            let ok = (value.starts_with("https://") || value.starts_with("http://"))
                && url_host_present(value);
            if !ok {
                return Err(invalid(
                    origin,
                    format!("{key} = {value:?} is not an http(s) URL such as https://example.com"),
                ));
            }
        }
        if !(1..=10).contains(&self.entra.retry_attempts) {
            return Err(invalid(
                origin,
                format!(
                    "entra.retry_attempts = {} must be between 1 (no retry) and 10",
                    self.entra.retry_attempts
                ),
            ));
        }
        if !(1..=60_000).contains(&self.entra.retry_base_delay_ms) {
            return Err(invalid(
                origin,
                format!(
                    "entra.retry_base_delay_ms = {} must be between 1 and 60000 (milliseconds)",
                    self.entra.retry_base_delay_ms
                ),
            ));
        }
        self.network.outbound_addresses = self
            .network
            .outbound_addresses
            .iter()
            .map(|a| outbound_address(a))
            .collect::<Result<_, _>>()
            .map_err(|m| invalid(origin, m))?;
        self.network.trusted_proxies = self
            .network
            .trusted_proxies
            .iter()
            .map(|p| trusted_proxy(p).map(|n| n.to_string()))
            .collect::<Result<_, _>>()
            .map_err(|m| invalid(origin, m))?;
        self.microsoft_sign_in
            .rules()
            .map_err(|m| invalid(origin, m))?;
        self.public_url = self.public_url.trim_end_matches('/').to_string();
        self.entra.authority = self.entra.authority.trim_end_matches('/').to_string();
        self.entra.graph = self.entra.graph.trim_end_matches('/').to_string();
        self.entra.viva_engage = self.entra.viva_engage.trim_end_matches('/').to_string();
        if let Some(url) = &self.database_url
            && !(url.starts_with("sqlite:")
                || url.starts_with("postgres://")
                || url.starts_with("postgresql://"))
        {
            return Err(invalid(
                origin,
                format!(
                    "database_url = {:?} must start with sqlite:// or postgres://",
                    redact_url(url)
                ),
            ));
        }
        for (key, value) in [
            ("monitor.interval_minutes", self.monitor.interval_minutes),
            (
                "monitor.invalid_interval_minutes",
                self.monitor.invalid_interval_minutes,
            ),
            ("monitor.poll_seconds", self.monitor.poll_seconds),
            ("monitor.batch", self.monitor.batch),
            ("monitor.lease_minutes", self.monitor.lease_minutes),
            (
                "monitor.lease_seconds",
                self.monitor.lease_seconds.unwrap_or(1),
            ),
            ("monitor.max_concurrent", self.monitor.max_concurrent),
            ("monitor.max_per_tenant", self.monitor.max_per_tenant),
            ("monitor.webhook_attempts", self.monitor.webhook_attempts),
            (
                "monitor.vendor_credentials_hours",
                self.monitor.vendor_credentials_hours,
            ),
            (
                "monitor.transient_attempts",
                self.monitor.transient_attempts,
            ),
        ] {
            if value == 0 {
                return Err(invalid(origin, format!("{key} must be at least 1")));
            }
        }
        if !(1..=3600).contains(&self.request_timeout_seconds) {
            return Err(invalid(
                origin,
                "request_timeout_seconds must be between 1 and 3600",
            ));
        }
        if !(1..=1_000_000).contains(&self.console_count_limit) {
            return Err(invalid(
                origin,
                "console_count_limit must be between 1 and 1000000",
            ));
        }
        if !(1024..=512 * 1024 * 1024).contains(&self.max_body_bytes) {
            return Err(invalid(
                origin,
                "max_body_bytes must be between 1024 and 536870912",
            ));
        }
        check_apps("apps", &self.apps).map_err(|m| invalid(origin, m))?;
        self.validate_clouds().map_err(|m| invalid(origin, m))?;
        self.email.validate().map_err(|m| invalid(origin, m))?;
        if !self.email.operator_to.is_empty() {
            consentry_domain::mail::parse_addresses("email.operator_to", &self.email.operator_to)
                .map_err(|e| invalid(origin, e.to_string()))?;
            if self.email.smtp_host.is_none() {
                return Err(invalid(
                    origin,
                    "email.operator_to is set but email is off: set email.smtp_host (and email.from) too",
                ));
            }
        }
        match (
            &self.webhooks.operator_url,
            &self.webhooks.operator_secret_file,
        ) {
            (Some(url), Some(_)) => {
                if !(url.starts_with("https://")
                    || (self.webhooks.allow_private && url.starts_with("http://")))
                {
                    return Err(invalid(
                        origin,
                        format!("webhooks.operator_url = {url:?} must be an https URL"),
                    ));
                }
            }
            (Some(_), None) => {
                return Err(invalid(
                    origin,
                    "webhooks.operator_url needs webhooks.operator_secret_file: a file holding the secret that signs the operator's events (at least 16 characters)",
                ));
            }
            (None, Some(_)) => {
                return Err(invalid(
                    origin,
                    "webhooks.operator_secret_file is set without webhooks.operator_url: give the URL the operator's events go to",
                ));
            }
            (None, None) => {}
        }
        if let Some(k) = &self.master_key
            && k.expose_secret().trim().is_empty()
        {
            return Err(invalid(origin, "master_key is empty"));
        }
        if let Some(t) = &self.api_token
            && t.expose_secret().trim().len() < 16
        {
            return Err(invalid(origin, "api_token must be at least 16 characters"));
        }
        Ok(())
    }

    /// The database URL in force: the configured one, or a SQLite file in the data directory.
    pub fn database_url(&self) -> String {
        self.database_url
            .clone()
            .unwrap_or_else(|| format!("sqlite://{}", self.data_dir.join("consentry.db").display()))
    }

    /// The master key file in force.
    pub fn master_key_path(&self) -> PathBuf {
        self.master_key_file
            .clone()
            .unwrap_or_else(|| self.data_dir.join("master.key"))
    }

    /// Whether Consentry is reached over TLS (the public URL is https): cookies are `Secure` and
    /// responses carry `Strict-Transport-Security`.
    pub fn tls(&self) -> bool {
        self.public_url.starts_with("https://")
    }

    /// Consentry's OAuth callback URL, registered on every vendor app and custom app.
    pub fn callback_url(&self) -> String {
        format!("{}/oauth/callback", self.public_url)
    }

    /// The console's "Sign in with Microsoft" callback, registered on Consentry's own app.
    pub fn console_sign_in_callback_url(&self) -> String {
        format!("{}/console/sign-in/microsoft/callback", self.public_url)
    }

    /// The API token file in force.
    pub fn api_token_path(&self) -> PathBuf {
        self.api_token_file
            .clone()
            .unwrap_or_else(|| self.data_dir.join("api-token"))
    }
}

fn url_host_present(u: &str) -> bool {
    u.split_once("://")
        .map(|(_, rest)| !rest.is_empty() && !rest.starts_with('/'))
        .unwrap_or(false)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn env(pairs: &[(&str, &str)]) -> Vec<(String, String)> {
        pairs
            .iter()
            .map(|(a, b)| (a.to_string(), b.to_string()))
            .collect()
    }

    /// The error of a configuration from these environment variables alone, which must be refused.
    fn refused(pairs: &[(&str, &str)]) -> String {
        Config::load(None, env(pairs)).unwrap_err().to_string()
    }

    #[test]
    fn defaults_are_valid() {
        let c = Config::load(None, env(&[])).unwrap();
        assert_eq!(c.listen.port(), 8080);
        assert_eq!(c.public_url, "http://127.0.0.1:8080");
        assert!(c.database_url().starts_with("sqlite://"));
        assert_eq!(c.console_count_limit, 10_000);
    }

    #[test]
    fn the_console_count_limit_is_bounded() {
        let c = Config::load(None, env(&[("CONSENTRY_CONSOLE_COUNT_LIMIT", "250")])).unwrap();
        assert_eq!(c.console_count_limit, 250);
        for bad in ["0", "1000001"] {
            let e = refused(&[("CONSENTRY_CONSOLE_COUNT_LIMIT", bad)]);
            assert!(
                e.contains("console_count_limit must be between 1 and 1000000"),
                "{e}"
            );
        }
    }

    #[test]
    fn file_then_env_override() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("c.toml");
        std::fs::write(
            &p,
            "listen = \"127.0.0.1:9000\"\n[entra]\nauthority = \"https://a.example\"\n",
        )
        .unwrap();
        let c = Config::load(
            Some(&p),
            env(&[
                ("CONSENTRY_ENTRA__AUTHORITY", "https://b.example/"),
                ("CONSENTRY_MAX_BODY_BYTES", "4096"),
                ("OTHER", "x"),
            ]),
        )
        .unwrap();
        assert_eq!(c.listen.port(), 9000);
        assert_eq!(c.entra.authority, "https://b.example");
        assert_eq!(c.max_body_bytes, 4096);
    }

    #[test]
    fn national_clouds_are_configured_by_file_and_environment() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("c.toml");
        std::fs::write(
            &p,
            "[clouds.usgov.apps.insights-m365]\nclient_id = \"6731de76-14a6-49ae-97bc-6eba6914391e\"\nclient_secret = \"s\"\n[entra.clouds.china]\ngraph = \"https://sim.example/clouds/china/v1.0\"\n",
        )
        .unwrap();
        let c = Config::load(
            Some(&p),
            env(&[
                (
                    "CONSENTRY_CLOUDS__USGOV_DOD__APPS__CLOUD_BACKUP_M365__CLIENT_ID",
                    "6731de76-14a6-49ae-97bc-6eba6914391f",
                ),
                (
                    "CONSENTRY_CLOUDS__USGOV_DOD__APPS__CLOUD_BACKUP_M365__CLIENT_SECRET",
                    "t",
                ),
                (
                    "CONSENTRY_ENTRA__CLOUDS__USGOV_DOD__AUTHORITY",
                    "https://sim.example/clouds/usgov-dod",
                ),
            ]),
        )
        .unwrap();
        assert!(c.clouds["usgov"].apps.contains_key("insights-m365"));
        assert_eq!(
            c.clouds["usgov-dod"].apps["cloud-backup-m365"].client_id,
            "6731de76-14a6-49ae-97bc-6eba6914391f"
        );
        assert_eq!(
            c.entra.clouds["usgov-dod"].authority.as_deref(),
            Some("https://sim.example/clouds/usgov-dod")
        );
        assert_eq!(c.entra.clouds["china"].authority, None);
        assert_eq!(
            c.national_clouds().into_iter().collect::<Vec<_>>(),
            ["china", "usgov", "usgov-dod"]
        );
        // The global cloud keeps [entra] and [apps]; unknown clouds and bad registrations are named.
        for (vars, wanted) in [
            (
                vec![("CONSENTRY_CLOUDS__GLOBAL__APPS__FLY__CLIENT_ID", "x")],
                "clouds.global: the global cloud is configured by [entra] and [apps.<app type>]",
            ),
            (
                vec![(
                    "CONSENTRY_ENTRA__CLOUDS__GERMANY__GRAPH",
                    "https://g.example",
                )],
                "entra.clouds.germany: no cloud \"germany\"; the national clouds are usgov, usgov-dod, china",
            ),
            (
                vec![("CONSENTRY_ENTRA__CLOUDS__CHINA__GRAPH", "graph.example")],
                "entra.clouds.china.graph = \"graph.example\" is not an http(s) URL",
            ),
            (
                vec![(
                    "CONSENTRY_CLOUDS__CHINA__APPS__FLY__CLIENT_ID",
                    "not-a-guid",
                )],
                "clouds.china.apps.fly.client_id = \"not-a-guid\" is not a GUID",
            ),
        ] {
            let e = Config::load(None, env(&vars)).unwrap_err().to_string();
            assert!(e.contains(wanted), "{e}");
        }
    }

    #[test]
    fn unknown_key_is_named() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("c.toml");
        std::fs::write(&p, "lissten = \"127.0.0.1:9000\"\n").unwrap();
        let e = Config::load(Some(&p), env(&[])).unwrap_err().to_string();
        assert!(e.contains("lissten"), "{e}");
        assert!(e.contains(&p.display().to_string()), "{e}");
        let e = refused(&[("CONSENTRY_ENTRA__AUTHORTY", "x")]);
        assert!(e.contains("authorty"), "{e}");
    }

    #[test]
    fn the_projects_own_variables_are_not_configuration_keys_but_typos_stay_errors() {
        // scripts/test.sh exports CONSENTRY_TEST_POSTGRES_URL; the demo and serve must still start.
        let c = Config::load(
            None,
            env(&[
                ("CONSENTRY_TEST_POSTGRES_URL", "postgres://u:p@localhost/x"),
                ("CONSENTRY_TEST_STATE_DIR", "/tmp/x"),
                ("CONSENTRY_CERT_PASSWORD", "pw"),
                ("CONSENTRY_PFX_PASSWORD", "pw"),
                ("CONSENTRY_REPLICA_TEST_PROFILES", "10"),
                ("CONSENTRY_FUZZ_SECONDS", "10"),
                ("CONSENTRY_CONFIG", "/nowhere.toml"),
                ("CONSENTRY_MONITOR__MAX_CONCURRENT", "3"),
            ]),
        )
        .unwrap();
        assert_eq!(c.monitor.max_concurrent, 3);
        // A misspelt real key is an error naming it.
        let e = refused(&[
            ("CONSENTRY_TEST_POSTGRES_URL", "postgres://u:p@localhost/x"),
            ("CONSENTRY_MONITOR__MAX_CONCURENT", "3"),
        ]);
        assert!(e.contains("max_concurent"), "{e}");
        assert!(e.contains("unknown field"), "{e}");
        let e = refused(&[("CONSENTRY_TESTS_URL", "x")]);
        assert!(e.contains("tests_url"), "{e}");
    }

    #[test]
    fn the_log_filter_variable_is_not_a_configuration_key() {
        let c = Config::load(
            None,
            env(&[
                ("CONSENTRY_LOG", "warn"),
                ("CONSENTRY_MAX_BODY_BYTES", "4096"),
            ]),
        )
        .unwrap();
        assert_eq!(c.max_body_bytes, 4096);
    }

    #[test]
    fn retries_to_microsoft_are_bounded_and_named_when_wrong() {
        let c = Config::load(None, env(&[])).unwrap();
        assert_eq!(
            (c.entra.retry_attempts, c.entra.retry_base_delay_ms),
            (4, 500)
        );
        let c = Config::load(
            None,
            env(&[
                ("CONSENTRY_ENTRA__RETRY_ATTEMPTS", "1"),
                ("CONSENTRY_ENTRA__RETRY_BASE_DELAY_MS", "20"),
            ]),
        )
        .unwrap();
        assert_eq!(
            (c.entra.retry_attempts, c.entra.retry_base_delay_ms),
            (1, 20)
        );
        for (key, value, named) in [
            (
                "CONSENTRY_ENTRA__RETRY_ATTEMPTS",
                "0",
                "entra.retry_attempts = 0",
            ),
            (
                "CONSENTRY_ENTRA__RETRY_ATTEMPTS",
                "11",
                "entra.retry_attempts = 11",
            ),
            (
                "CONSENTRY_ENTRA__RETRY_BASE_DELAY_MS",
                "0",
                "entra.retry_base_delay_ms = 0",
            ),
        ] {
            let e = refused(&[(key, value)]);
            assert!(e.contains(named), "{e}");
        }
    }

    #[test]
    fn trusted_proxies_are_addresses_or_ranges() {
        let c = Config::load(
            None,
            env(&[(
                "CONSENTRY_NETWORK__TRUSTED_PROXIES",
                "10.0.0.0/8, 192.0.2.7, 2001:db8::/32",
            )]),
        )
        .unwrap();
        assert_eq!(
            c.network.trusted_proxies,
            ["10.0.0.0/8", "192.0.2.7/32", "2001:db8::/32"]
        );
        assert_eq!(c.network.trusted_proxy_ranges().len(), 3);
        assert!(
            Config::load(None, env(&[]))
                .unwrap()
                .network
                .trusted_proxies
                .is_empty()
        );
        for (bad, says) in [
            ("10.0.0.1/8", "host bits set"),
            (
                "balancer.internal",
                "neither an IP address nor a CIDR range",
            ),
            ("10.0.0.0/33", "neither an IP address nor a CIDR range"),
        ] {
            let e = refused(&[("CONSENTRY_NETWORK__TRUSTED_PROXIES", bad)]);
            assert!(
                e.contains("network.trusted_proxies") && e.contains(says),
                "{bad}: {e}"
            );
        }
    }

    #[test]
    fn the_operator_alert_settings_are_checked() {
        let e = refused(&[(
            "CONSENTRY_WEBHOOKS__OPERATOR_URL",
            "https://ops.example/hook",
        )]);
        assert!(e.contains("webhooks.operator_secret_file"), "{e}");
        let e = refused(&[
            (
                "CONSENTRY_WEBHOOKS__OPERATOR_URL",
                "http://ops.example/hook",
            ),
            ("CONSENTRY_WEBHOOKS__OPERATOR_SECRET_FILE", "/etc/s"),
        ]);
        assert!(e.contains("must be an https URL"), "{e}");
        let e = refused(&[("CONSENTRY_EMAIL__OPERATOR_TO", "ops@vendor.example")]);
        assert!(
            e.contains("email.operator_to") && e.contains("smtp_host"),
            "{e}"
        );
        let e = refused(&[
            ("CONSENTRY_EMAIL__SMTP_HOST", "127.0.0.1"),
            ("CONSENTRY_EMAIL__SECURITY", "none"),
            ("CONSENTRY_EMAIL__FROM", "c@vendor.example"),
            (
                "CONSENTRY_EMAIL__OPERATOR_TO",
                "ops@vendor.example, not an address",
            ),
        ]);
        assert!(e.contains("not an address"), "{e}");
        let c = Config::load(
            None,
            env(&[
                ("CONSENTRY_EMAIL__SMTP_HOST", "127.0.0.1"),
                ("CONSENTRY_EMAIL__SECURITY", "none"),
                ("CONSENTRY_EMAIL__FROM", "c@vendor.example"),
                (
                    "CONSENTRY_EMAIL__OPERATOR_TO",
                    "ops@vendor.example,oncall@vendor.example",
                ),
                ("CONSENTRY_MONITOR__VENDOR_CREDENTIALS_HOURS", "12"),
            ]),
        )
        .unwrap();
        assert_eq!(
            c.email.operator_to,
            vec!["ops@vendor.example", "oncall@vendor.example"]
        );
        assert_eq!(c.monitor.vendor_credentials_hours, 12);
        assert_eq!(
            Config::load(None, env(&[]))
                .unwrap()
                .monitor
                .vendor_credentials_hours,
            6
        );
        let e = refused(&[("CONSENTRY_MONITOR__VENDOR_CREDENTIALS_HOURS", "0")]);
        assert!(e.contains("monitor.vendor_credentials_hours"), "{e}");
    }

    #[test]
    fn bad_values_name_the_key() {
        let e = refused(&[("CONSENTRY_LISTEN", "nowhere")]);
        assert!(e.to_lowercase().contains("address"), "{e}");
        let e = refused(&[("CONSENTRY_ENTRA__GRAPH", "ftp://x")]);
        assert!(e.contains("entra.graph"), "{e}");
        let e = refused(&[("CONSENTRY_ENTRA__VIVA_ENGAGE", "yammer.com")]);
        assert!(e.contains("entra.viva_engage"), "{e}");
        let c = Config::load(
            None,
            env(&[(
                "CONSENTRY_ENTRA__VIVA_ENGAGE",
                "https://sim.example/yammer/",
            )]),
        )
        .unwrap();
        assert_eq!(c.entra.viva_engage, "https://sim.example/yammer");
        assert_eq!(
            Config::load(None, env(&[])).unwrap().entra.viva_engage,
            "https://www.yammer.com"
        );
        let e = refused(&[("CONSENTRY_DATABASE_URL", "mysql://u:pw@h/db")]);
        assert!(e.contains("database_url") && !e.contains("pw"), "{e}");
        let e = refused(&[("CONSENTRY_API_TOKEN", "short")]);
        assert!(e.contains("api_token"), "{e}");
        let e = refused(&[("CONSENTRY_MAX_BODY_BYTES", "1")]);
        assert!(e.contains("max_body_bytes"), "{e}");
    }

    #[test]
    fn email_is_off_by_default_and_its_settings_name_the_key_when_wrong() {
        let c = Config::load(None, env(&[])).unwrap();
        assert!(c.email.smtp().is_none());
        let dir = tempfile::tempdir().unwrap();
        let pw = dir.path().join("smtp.pw");
        std::fs::write(&pw, "s3cret-smtp\n").unwrap();
        let pw_path = pw.display().to_string();
        let c = Config::load(
            None,
            env(&[
                ("CONSENTRY_EMAIL__SMTP_HOST", "smtp.vendor.example"),
                ("CONSENTRY_EMAIL__USERNAME", "consentry"),
                ("CONSENTRY_EMAIL__PASSWORD_FILE", &pw_path),
                (
                    "CONSENTRY_EMAIL__FROM",
                    "Consentry <consentry@vendor.example>",
                ),
            ]),
        )
        .unwrap();
        let smtp = c.email.smtp().unwrap();
        assert_eq!(
            (smtp.port, smtp.security),
            (587, consentry_mail::Security::StartTls)
        );
        assert_eq!(
            smtp.password
                .as_ref()
                .map(|p| p.expose_secret().to_string()),
            Some("s3cret-smtp".to_string())
        );
        assert!(!format!("{c:?}").contains("s3cret-smtp"));
        let e = refused(&[
            ("CONSENTRY_EMAIL__SMTP_HOST", "smtp.vendor.example"),
            ("CONSENTRY_EMAIL__SECURITY", "none"),
            ("CONSENTRY_EMAIL__FROM", "consentry@vendor.example"),
        ]);
        assert!(
            e.contains("email.security") && e.contains("loopback"),
            "{e}"
        );
        let e = refused(&[("CONSENTRY_EMAIL__SECURITY", "ssl")]);
        assert!(e.contains("email.security"), "{e}");
        let e = refused(&[("CONSENTRY_EMAIL__SMTP_HOST", "smtp.vendor.example")]);
        assert!(e.contains("email.from"), "{e}");
        let e = refused(&[
            ("CONSENTRY_EMAIL__SMTP_HOST", "smtp.vendor.example"),
            ("CONSENTRY_EMAIL__FROM", "not an address"),
        ]);
        assert!(e.contains("email.from"), "{e}");
        let e = refused(&[
            ("CONSENTRY_EMAIL__SMTP_HOST", "smtp.vendor.example"),
            ("CONSENTRY_EMAIL__FROM", "consentry@vendor.example"),
            ("CONSENTRY_EMAIL__PASSWORD_FILE", "/nonexistent/smtp.pw"),
        ]);
        assert!(e.contains("email.password_file"), "{e}");
        let e = refused(&[("CONSENTRY_EMAIL__POLL_SECONDS", "0")]);
        assert!(e.contains("email.poll_seconds"), "{e}");
        let e = refused(&[("CONSENTRY_EMAIL__DIGEST_HOUR_UTC", "24")]);
        assert!(e.contains("email.digest_hour_utc"), "{e}");
        let ok = Config::load(
            None,
            env(&[
                ("CONSENTRY_EMAIL__SMTP_HOST", "127.0.0.1"),
                ("CONSENTRY_EMAIL__SMTP_PORT", "2525"),
                ("CONSENTRY_EMAIL__SECURITY", "none"),
                ("CONSENTRY_EMAIL__FROM", "consentry@vendor.example"),
            ]),
        )
        .unwrap();
        assert_eq!(ok.email.smtp().unwrap().port, 2525);
    }

    #[test]
    fn debug_redacts_secrets() {
        let c = Config::load(
            None,
            env(&[
                ("CONSENTRY_API_TOKEN", "super-secret-token-value"),
                (
                    "CONSENTRY_DATABASE_URL",
                    "postgres://u:hunter2@db/consentry",
                ),
                (
                    "CONSENTRY_CONSENTRY_APP__CLIENT_ID",
                    "c0de0000-0000-4000-8000-0000000000c0",
                ),
                ("CONSENTRY_CONSENTRY_APP__CLIENT_SECRET", "own-app-secret"),
            ]),
        )
        .unwrap();
        let app = c
            .consentry_app
            .as_ref()
            .expect("[consentry_app] from the environment");
        assert_eq!(app.client_id, "c0de0000-0000-4000-8000-0000000000c0");
        let d = format!("{c:?}");
        assert!(
            !d.contains("super-secret-token-value")
                && !d.contains("hunter2")
                && !d.contains("own-app-secret"),
            "{d}"
        );
    }
}

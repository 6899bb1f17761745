//! `consentry doctor`: checks a configuration against reality, one line per check with what to do when
//! it is not ok — the database (reachable, migrated to this build's version), the master key (readable,
//! opening what is stored), TLS trust for the authority and Graph, the clock against the authority's,
//! `vendor_tenant`, and each configured vendor registration (a token by client credentials in its home
//! tenant, redirect URIs, `requiredResourceAccess` against the catalog, each credential's expiry).
//! Exit status 0 only when every check is ok; `--json` prints [`Report`] for monitoring.

use std::sync::Arc;

use clap::Args;
use consentry_domain::vendor_credentials::{
    self, CredentialFact, Expiry, FactSource, RegistrationRead, VendorAppFacts,
};
use consentry_domain::{CredentialKind, IdentityPlatform as _};
use consentry_entra::registrations::ProbeFailure;
use consentry_server::Config;
use serde::Serialize;
use time::OffsetDateTime;

/// The largest clock offset from the authority's `Date` that passes. Microsoft documents no tolerance
/// for client assertions (AADSTS700024, entra-facts §2.4: "not within its valid time range"; UNVERIFIED
/// how much skew Entra allows); Consentry itself verifies ID tokens' `nbf`/`exp` with 120 s of leeway
/// against its clock, so a larger offset breaks its own sign-ins first.
pub const CLOCK_TOLERANCE_SECONDS: i64 = 120;

/// `consentry doctor` options.
#[derive(Debug, Args)]
pub struct DoctorArgs {
    /// Print the report as JSON (a stable document for monitoring) instead of lines.
    #[arg(long)]
    json: bool,
}

/// A check's outcome.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Status {
    /// Nothing to do.
    Ok,
    /// Works now, will not for long (a credential ending within 30 days).
    Attention,
    /// Broken, or cannot be told to work.
    Fail,
}

/// One check.
#[derive(Debug, Clone, Serialize)]
pub struct Check {
    /// Stable identifier (`database`, `master_key`, `tls.authority`, `app.<label>.token`, …).
    pub id: String,
    /// The outcome.
    pub status: Status,
    /// What was found.
    pub message: String,
    /// What to do, when not ok.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub action: Option<String>,
}

/// The whole report (`--json`).
#[derive(Debug, Serialize)]
pub struct Report {
    /// The document's version (changes only incompatibly).
    pub version: u32,
    /// Whether every check is ok (the exit status is 0 exactly then).
    pub ok: bool,
    /// When the checks ran.
    #[serde(with = "time::serde::rfc3339")]
    pub checked_at: OffsetDateTime,
    /// Checks by outcome.
    pub counts: Counts,
    /// The checks, in order.
    pub checks: Vec<Check>,
    /// Every vendor credential's expiry.
    pub credentials: Vec<CredentialFact>,
}

/// Checks by outcome.
#[derive(Debug, Default, Serialize)]
pub struct Counts {
    /// Ok.
    pub ok: usize,
    /// Attention.
    pub attention: usize,
    /// Fail.
    pub fail: usize,
}

#[derive(Default)]
struct Checks(Vec<Check>);

impl Checks {
    fn ok(&mut self, id: impl Into<String>, message: impl Into<String>) {
        self.push(id, Status::Ok, message, None::<String>);
    }
    fn fail(
        &mut self,
        id: impl Into<String>,
        message: impl Into<String>,
        action: impl Into<String>,
    ) {
        self.push(id, Status::Fail, message, Some(action));
    }
    fn push(
        &mut self,
        id: impl Into<String>,
        status: Status,
        message: impl Into<String>,
        action: Option<impl Into<String>>,
    ) {
        self.0.push(Check {
            id: id.into(),
            status,
            message: message.into(),
            action: action.map(Into::into),
        });
    }
}

/// Runs the checks, prints them and fails (exit status 1) unless every one is ok.
pub async fn run(args: DoctorArgs, cfg_path: Option<&std::path::Path>) -> anyhow::Result<bool> {
    let report = match crate::load_config(cfg_path) {
        Ok(cfg) => report(&cfg).await,
        Err(e) => {
            let mut checks = Checks::default();
            checks.fail(
                "config",
                format!("the configuration cannot be loaded: {e:#}"),
                "fix the configuration file or CONSENTRY_* variables named above",
            );
            finish(checks, Vec::new())
        }
    };
    if args.json {
        println!("{}", serde_json::to_string_pretty(&report)?);
    } else {
        for c in &report.checks {
            let tag = match c.status {
                Status::Ok => "ok       ",
                Status::Attention => "attention",
                Status::Fail => "FAIL     ",
            };
            match &c.action {
                Some(a) => println!("{tag} {}: {} — {a}", c.id, c.message),
                None => println!("{tag} {}: {}", c.id, c.message),
            }
        }
        println!(
            "{} ok, {} attention, {} failed",
            report.counts.ok, report.counts.attention, report.counts.fail
        );
    }
    Ok(report.ok)
}

fn finish(checks: Checks, credentials: Vec<CredentialFact>) -> Report {
    let mut counts = Counts::default();
    for c in &checks.0 {
        match c.status {
            Status::Ok => counts.ok += 1,
            Status::Attention => counts.attention += 1,
            Status::Fail => counts.fail += 1,
        }
    }
    Report {
        version: 1,
        ok: counts.attention == 0 && counts.fail == 0,
        checked_at: OffsetDateTime::now_utc(),
        counts,
        checks: checks.0,
        credentials,
    }
}

/// Every check against `cfg`.
pub async fn report(cfg: &Config) -> Report {
    let mut checks = Checks::default();
    store_checks(cfg, &mut checks).await;
    let catalog = match consentry_server::startup::load_catalog(cfg) {
        Ok(c) => Arc::new(c),
        Err(e) => {
            checks.fail(
                "catalog",
                e.to_string(),
                "fix catalog_file (or remove it to use the built-in catalog)",
            );
            return finish(checks, Vec::new());
        }
    };
    let platform = match consentry_server::startup::build_platform(cfg, &catalog) {
        Ok(p) => p,
        Err(e) => {
            checks.fail(
                "config.entra",
                e.to_string(),
                "fix the [entra], [apps.*] and [consentry_app] settings named above",
            );
            return finish(checks, Vec::new());
        }
    };
    for (cloud, client) in platform.cloud_clients() {
        reachability_checks(cloud, client, &mut checks).await;
    }
    vendor_tenant_checks(cfg, &mut checks);
    let now = OffsetDateTime::now_utc();
    let mut credentials = Vec::new();
    for reg in platform.vendor_registrations().await {
        let facts = vendor_credentials::facts(reg, &catalog, &cfg.public_url, now);
        registration_checks(&facts, &mut checks);
        credentials.extend(facts.credentials);
    }
    finish(checks, credentials)
}

/// The database (reachable, migrated to this build's version) and the master key (readable, opening
/// what is stored). Nothing is migrated or created.
async fn store_checks(cfg: &Config, checks: &mut Checks) {
    let sealer = match &cfg.master_key {
        Some(k) => consentry_store::Sealer::from_base64(secrecy::ExposeSecret::expose_secret(k))
            .map_err(|e| {
                format!("the master key (master_key / CONSENTRY_MASTER_KEY) is not usable: {e}")
            }),
        None => {
            let path = cfg.master_key_path();
            if path.exists() {
                consentry_store::Sealer::from_key_files(&path).map_err(|e| {
                    format!("the master key file {} is not usable: {e}", path.display())
                })
            } else {
                Err(format!("there is no master key file at {}", path.display()))
            }
        }
    };
    // Without a usable key the database is still inspected (with a throw-away key that opens nothing).
    let (sealer, key_error) = match sealer {
        Ok(s) => (s, None),
        Err(e) => (consentry_store::Sealer::from_key_bytes(&[0u8; 32]), Some(e)),
    };
    let url = cfg.database_url();
    let shown = consentry_server::config::redact_url(&url);
    let opened = consentry_store::SqlStore::open_unmigrated(&url, sealer).await;
    let store = database_check(&shown, opened, checks).await;
    if let Some(e) = key_error {
        checks.fail(
            "master_key",
            e,
            "restore the key file that sealed the stored secrets (mode 0600) or point master_key_file at it; \
             a new key is made only for a new installation (by its first `consentry serve` or `consentry migrate`)",
        );
        if let Some(store) = store {
            store.close().await;
        }
        return;
    }
    let Some(store) = store else {
        checks.ok(
            "master_key",
            "readable (the stored values were not sampled: see the database check)",
        );
        return;
    };
    match store.open_sample(20).await {
        Ok(sample) if !sample.failures.is_empty() => checks.fail(
            "master_key",
            format!(
                "{} of {} sealed values sampled could not be opened: {}",
                sample.failures.len(),
                sample.failures.len() as u64 + sample.opened,
                sample.failures[0]
            ),
            "the master key is not the one that sealed them: restore the right key file (and `<file>.old` \
             during a master key rotation, `consentry master-key status`)",
        ),
        Ok(sample) if sample.opened == 0 => checks.ok(
            "master_key",
            format!("key {} readable; nothing is sealed yet", store.key_id()),
        ),
        Ok(sample) => checks.ok(
            "master_key",
            format!(
                "key {} readable; opened {} sealed value(s) sampled",
                store.key_id(),
                sample.opened
            ),
        ),
        Err(e) => checks.fail(
            "master_key",
            format!("the sealed values could not be read: {e}"),
            "check the database (see the database check)",
        ),
    }
    store.close().await;
}

async fn database_check(
    shown: &str,
    store: Result<consentry_store::SqlStore, consentry_domain::StoreError>,
    checks: &mut Checks,
) -> Option<consentry_store::SqlStore> {
    let store = match store {
        Ok(s) => s,
        Err(e) => {
            checks.fail(
                "database",
                format!("database {shown} cannot be opened: {e}"),
                "check database_url (CONSENTRY_DATABASE_URL), that the server is up and the credentials; \
                 a new installation creates its database with `consentry migrate`",
            );
            return None;
        }
    };
    match store.schema_version().await {
        Ok(v) if v.applied == Some(v.latest) => {
            checks.ok(
                "database",
                format!("{shown} reachable, schema at migration {}", v.latest),
            );
            Some(store)
        }
        Ok(v) if v.applied.unwrap_or(0) < v.latest => {
            checks.fail(
                "database",
                format!(
                    "{shown} is at migration {} but this build expects {}",
                    v.applied.map_or("none".into(), |a| a.to_string()),
                    v.latest
                ),
                "run `consentry migrate` (servers of this build also migrate at start)",
            );
            None
        }
        Ok(v) => {
            checks.fail(
                "database",
                format!(
                    "{shown} is at migration {} — newer than this build's {}",
                    v.applied.unwrap_or_default(),
                    v.latest
                ),
                "run the Consentry version that migrated it (or newer)",
            );
            None
        }
        Err(e) => {
            checks.fail(
                "database",
                format!("{shown}: the schema version cannot be read: {e}"),
                "check the database and its permissions",
            );
            None
        }
    }
}

/// TLS trust for a cloud's authority and Graph, and the clock against its authority's `Date`.
async fn reachability_checks(
    cloud: &consentry_domain::CloudKey,
    client: &consentry_entra::EntraClient,
    checks: &mut Checks,
) {
    let tls_hint = "install the CA that issued the server's certificate in the system store or name it in \
                    `[entra] extra_ca_file` (PEM); a TLS-inspecting proxy needs its CA there too";
    let suffix = if cloud.is_global() {
        String::new()
    } else {
        format!(".{cloud}")
    };
    let config = client.config();
    let mut date = None;
    for (what, graph, url) in [
        ("tls.authority", false, &config.authority),
        ("tls.graph", true, &config.graph),
    ] {
        let id = format!("{what}{suffix}");
        match client.probe(graph).await {
            Ok(p) => {
                if !graph {
                    date = p.date;
                }
                checks.ok(id, format!("{url} answered over a trusted TLS connection (HTTP {})", p.status));
            }
            Err(ProbeFailure::Tls(detail)) => checks.fail(
                id,
                format!("TLS failure: the certificate of {url} is not trusted ({detail})"),
                tls_hint,
            ),
            Err(ProbeFailure::Unreachable(detail)) => checks.fail(
                id,
                format!("{url} cannot be reached ({detail})"),
                "check the URL ([entra] authority / graph, [entra.clouds.<key>]), DNS, the firewall and any \
                 outbound proxy",
            ),
        }
    }
    let clock = format!("clock{suffix}");
    let now = OffsetDateTime::now_utc();
    match date {
        Some(theirs) => {
            let offset = (now - theirs).whole_seconds();
            if offset.abs() <= CLOCK_TOLERANCE_SECONDS {
                checks.ok(
                    clock,
                    format!(
                        "within {offset:+} s of the authority's clock (tolerance {CLOCK_TOLERANCE_SECONDS} s)"
                    ),
                );
            } else {
                checks.fail(
                    clock,
                    format!(
                        "this machine's clock is {offset:+} s off the authority's (tolerance {CLOCK_TOLERANCE_SECONDS} s): \
                         certificate assertions fail with AADSTS700024 and ID tokens are refused"
                    ),
                    "synchronise the clock (NTP, e.g. `timedatectl set-ntp true`)",
                );
            }
        }
        None => checks.fail(
            clock,
            "the authority's answer carried no Date header to compare the clock with",
            "check the authority URL; make sure the clock is synchronised (NTP)",
        ),
    }
}

/// `vendor_tenant` is set wherever registrations are configured.
fn vendor_tenant_checks(cfg: &Config, checks: &mut Checks) {
    if !cfg.apps.is_empty() || cfg.consentry_app.is_some() {
        match &cfg.vendor_tenant {
            Some(t) => checks.ok("vendor_tenant", format!("the registrations' home tenant is {t}")),
            None => checks.fail(
                "vendor_tenant",
                "vendor_tenant is not set: the home tenant of the [apps.*] and [consentry_app] registrations is unknown",
                "set `vendor_tenant = \"<your tenant ID or verified domain>\"` (CONSENTRY_VENDOR_TENANT), the tenant \
                 the registrations were created in",
            ),
        }
    }
    for (key, cloud) in &cfg.clouds {
        if !cloud.apps.is_empty() && cloud.vendor_tenant.is_none() {
            checks.fail(
                format!("vendor_tenant.{key}"),
                format!("[clouds.{key}] vendor_tenant is not set: the home tenant of its registrations is unknown"),
                format!("set `vendor_tenant` under [clouds.{key}] to your tenant in that cloud"),
            );
        }
    }
}

/// A date as the lines show it.
fn day(t: OffsetDateTime) -> String {
    consentry_certs::utc_minutes(t)
}

fn registration_checks(facts: &VendorAppFacts, checks: &mut Checks) {
    let reg = &facts.registration;
    let label = if reg.cloud.is_global() {
        reg.app.label().to_string()
    } else {
        format!("{}@{}", reg.app.label(), reg.cloud)
    };
    let section = reg.app.config_section(&reg.cloud);
    let id = |what: &str| format!("app.{label}.{what}");
    let tenant = reg.home_tenant.as_deref().unwrap_or("?");
    match &reg.read {
        RegistrationRead::NoVendorTenant => {
            checks.fail(
                id("token"),
                format!(
                    "{label} ({}): not checked, the home tenant is unknown",
                    reg.client_id
                ),
                "set vendor_tenant (see the vendor_tenant check)",
            );
        }
        RegistrationRead::TokenRefused(e) => {
            let action = match e.cause {
                consentry_domain::PlatformCause::VendorSecretInvalid => format!(
                    "the client secret in {section} is not one of the registration's: put the current secret there \
                     (or make a new one with `{}`)",
                    reg.app.rotate_command()
                ),
                consentry_domain::PlatformCause::VendorSecretExpired => format!(
                    "the secret expired: `{}` (or add a new secret in the Entra admin center and put it in {section})",
                    reg.app.rotate_command()
                ),
                consentry_domain::PlatformCause::AppNotInTenant => format!(
                    "the application {} is not registered in {tenant}: check client_id in {section} and vendor_tenant",
                    reg.client_id
                ),
                consentry_domain::PlatformCause::Transient => {
                    "Microsoft did not answer in time: run doctor again; if it persists check the network".into()
                }
                _ => format!("check client_id and the credential in {section}, and vendor_tenant"),
            };
            let tls = e.message.to_ascii_lowercase().contains("certificate");
            checks.fail(
                id("token"),
                format!(
                    "{label} ({}) gets no token by client credentials in {tenant}: {}{}",
                    reg.client_id,
                    if tls { "TLS failure: " } else { "" },
                    e.message
                ),
                action,
            );
        }
        RegistrationRead::NotFound => {
            checks.ok(
                id("token"),
                format!("{label} ({}) gets a token in {tenant}", reg.client_id),
            );
            checks.fail(
                id("registration"),
                format!("the application {} is not found in {tenant}", reg.client_id),
                format!("vendor_tenant must be the registration's home tenant; check client_id in {section}"),
            );
        }
        RegistrationRead::ReadFailed(e) => {
            checks.ok(
                id("token"),
                format!("{label} ({}) gets a token in {tenant}", reg.client_id),
            );
            checks.fail(
                id("registration"),
                format!("the registration could not be read: {}", e.message),
                "run doctor again; if it persists, check the network to Graph",
            );
        }
        RegistrationRead::Read(_) => {
            checks.ok(
                id("token"),
                format!("{label} ({}) gets a token in {tenant}", reg.client_id),
            );
            let missing_uris: Vec<&str> = facts
                .problems
                .iter()
                .filter_map(|p| match p {
                    vendor_credentials::RegistrationProblem::RedirectUriMissing { uri } => {
                        Some(uri.as_str())
                    }
                    _ => None,
                })
                .collect();
            if missing_uris.is_empty() {
                checks.ok(
                    id("redirect_uris"),
                    "Consentry's redirect URIs are registered",
                );
            } else {
                checks.fail(
                    id("redirect_uris"),
                    format!("redirect URI missing: {}", missing_uris.join(", ")),
                    "add it to the registration's Web platform (Entra admin center, Authentication), or run \
                     `consentry apps register`",
                );
            }
            let missing: Vec<String> = facts
                .problems
                .iter()
                .filter_map(|p| match p {
                    vendor_credentials::RegistrationProblem::PermissionMissing {
                        name,
                        kind,
                        ..
                    } => Some(format!("{name} ({kind})")),
                    _ => None,
                })
                .collect();
            let unchecked = if facts.unchecked_permissions.is_empty() {
                String::new()
            } else {
                format!(
                    "; not checked (ID unknown to the catalog): {}",
                    facts.unchecked_permissions.join(", ")
                )
            };
            if matches!(reg.app, consentry_domain::VendorAppKey::AppType(_)) {
                if missing.is_empty() {
                    checks.ok(
                        id("permissions"),
                        format!(
                            "requiredResourceAccess covers the catalog's permissions{unchecked}"
                        ),
                    );
                } else {
                    checks.fail(
                        id("permissions"),
                        format!(
                            "requiredResourceAccess lacks {}{unchecked}",
                            missing.join(", ")
                        ),
                        "a missing permission is the start of a permission rollout: add it to the registration \
                         (`consentry apps register`, or API permissions in the Entra admin center), then follow the \
                         customers' consents with `consentry rollouts list` and `consentry rollouts show <version>`",
                    );
                }
            }
        }
    }
    for c in &facts.credentials {
        credential_check(&id("credential"), reg.app.rotate_command(), c, checks);
    }
}

fn credential_check(prefix: &str, rotate: String, c: &CredentialFact, checks: &mut Checks) {
    let what = match (c.kind, c.source) {
        (CredentialKind::Certificate, FactSource::LocalCertificate) => {
            "the configured certificate file".to_string()
        }
        (CredentialKind::Secret, FactSource::Configured) => "the configured secret".to_string(),
        (kind, _) => format!(
            "{} {}{}",
            kind.as_str(),
            c.key_id.as_deref().unwrap_or("?"),
            match c.in_use {
                Some(true) => " (in use)",
                Some(false) => " (not in use)",
                None => "",
            }
        ),
    };
    let id = format!("{prefix}.{}", c.id());
    let ends = c.ends_at.map(day);
    match c.expiry {
        Expiry::Ok => checks.ok(id, format!("{what} ends {}", ends.unwrap_or_default())),
        Expiry::Unknown => {
            if c.source == FactSource::Configured {
                // The token or registration line above says why; nothing more to add.
                return;
            }
            checks.push(
                id,
                Status::Attention,
                format!("{what}: Graph gives no end date"),
                Some("check the credential in the Entra admin center"),
            );
        }
        Expiry::Attention | Expiry::Expired if !c.matters() => checks.ok(
            id,
            format!(
                "{what} {} {} (Consentry uses another; remove it when no longer needed)",
                if c.expiry == Expiry::Expired {
                    "ended"
                } else {
                    "ends"
                },
                ends.unwrap_or_default()
            ),
        ),
        Expiry::Attention => checks.push(
            id,
            Status::Attention,
            format!(
                "{what} ends {} (in {} day(s))",
                ends.clone().unwrap_or_default(),
                c.ends_at
                    .map(|e| (e - OffsetDateTime::now_utc()).whole_days())
                    .unwrap_or_default()
            ),
            Some(format!("rotate it before then: `{rotate}`")),
        ),
        Expiry::Expired => checks.fail(
            id,
            format!("{what} ended {}", ends.unwrap_or_default()),
            format!("replace it: `{rotate}`"),
        ),
    }
}

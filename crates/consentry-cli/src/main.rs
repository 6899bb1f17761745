//! `consentry`: the one binary. Runs the server (`serve`), the self-contained demo (`demo`), database
//! migrations, and the operator's commands on the catalog, organizations, tenants and app profiles.
//! Operator commands work directly on the configured database through the same domain services as the API.

mod audit;
mod demo;
mod output;
mod scan_profiles;
mod users;

use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::Arc;

use anyhow::Context;
use clap::{Args, Parser, Subcommand};
use consentry_domain::audit::AuditAction;
use consentry_domain::{
    Actor, Consentry, DomainName, NewProfile, OrgId, PageRequest, ProfileFilter, ProfileId,
    ProfileStatus, SystemClock, TenantId, TenantRef,
};
use consentry_server::Config;
use consentry_server::startup::{load_catalog, shutdown_signal};

/// Consentry: keeps app profiles for Microsoft 365 / Entra ID tenants healthy.
#[derive(Debug, Parser)]
#[command(name = "consentry", version, about)]
struct Cli {
    /// Configuration file (TOML). Also `CONSENTRY_CONFIG`.
    #[arg(long, global = true, env = "CONSENTRY_CONFIG")]
    config: Option<PathBuf>,
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Run the server (JSON API) with the configured database.
    Serve,
    /// Run a self-contained demo: server on SQLite in a data folder, seeded with example data.
    Demo(demo::DemoArgs),
    /// Apply database migrations and exit.
    Migrate,
    /// Show the app-type catalog.
    #[command(subcommand)]
    Catalog(CatalogCmd),
    /// Manage organizations (the vendor's customers).
    #[command(subcommand)]
    Orgs(OrgsCmd),
    /// Manage Microsoft tenants connected to organizations.
    #[command(subcommand)]
    Tenants(TenantsCmd),
    /// Manage app profiles.
    #[command(subcommand)]
    Profiles(ProfilesCmd),
    /// Certificates for custom Azure apps.
    #[command(subcommand)]
    Cert(CertCmd),
    /// Operator accounts of the web console.
    #[command(subcommand)]
    Users(users::UsersCmd),
    /// Service API keys for the token API, scoped to an organization (for the master key that
    /// seals secrets, see `master-key`).
    #[command(subcommand)]
    Keys(KeysCmd),
    /// Scan profiles (Cloud Backup for Microsoft 365) and the Planner migration.
    #[command(subcommand)]
    ScanProfiles(scan_profiles::ScanProfilesCmd),
    /// The audit log: verify its hash chain, list and export entries.
    #[command(subcommand)]
    Audit(audit::AuditCmd),
    /// The master key sealing secrets at rest: rotate it, retire the old one, show what it seals.
    #[command(subcommand, name = "master-key")]
    MasterKey(audit::MasterKeyCmd),
    /// Database operations: copy a whole installation between SQLite and PostgreSQL.
    #[command(subcommand)]
    Db(DbCmd),
}

#[derive(Debug, Subcommand)]
enum DbCmd {
    /// Copy every table from one database into another, empty one (e.g. SQLite to PostgreSQL when moving
    /// to several replicas, or back). Secrets are copied still sealed: the target needs the same master key.
    /// Both databases are migrated to this build's schema first; the copy is one transaction on the target
    /// and ends by comparing the row counts of every table.
    Copy {
        /// Source database URL (`sqlite://PATH` or `postgres://…`).
        #[arg(long)]
        from: String,
        /// Target database URL; it must exist (PostgreSQL) and hold no data.
        #[arg(long)]
        to: String,
    },
}

#[derive(Debug, Subcommand)]
enum KeysCmd {
    /// Create a key for an organization; it is printed once and only its hash is stored.
    Create {
        /// Organization ID.
        #[arg(long)]
        org: String,
        /// A label (e.g. the service using it).
        #[arg(long, default_value = "service")]
        name: String,
    },
    /// List keys (never their values).
    List {
        /// Only this organization's.
        #[arg(long)]
        org: Option<String>,
        #[command(flatten)]
        out: JsonFlag,
    },
    /// Revoke a key by its ID.
    Revoke {
        /// Key ID.
        id: String,
    },
}

#[derive(Debug, Subcommand)]
enum CertCmd {
    /// Create a self-signed certificate: a .pfx (with a password) to give Consentry, and a .cer to upload
    /// to the custom app in Microsoft Entra ID (App registrations > the app > Certificates & secrets).
    New {
        /// Subject common name, e.g. "Consentry custom app".
        #[arg(long)]
        subject: String,
        /// Validity in years.
        #[arg(long, default_value_t = 2)]
        years: u32,
        /// Folder to write NAME.pfx and NAME.cer into (created if missing).
        #[arg(long)]
        out: PathBuf,
        /// Base file name (default: derived from the subject).
        #[arg(long)]
        name: Option<String>,
        /// The .pfx password; read from CONSENTRY_CERT_PASSWORD when not given, generated when neither is set.
        #[arg(long, env = "CONSENTRY_CERT_PASSWORD", hide_env_values = true)]
        password: Option<String>,
    },
}

#[derive(Debug, Args)]
struct JsonFlag {
    /// Print JSON instead of a table.
    #[arg(long)]
    json: bool,
}

#[derive(Debug, Subcommand)]
enum CatalogCmd {
    /// List the app types.
    List(JsonFlag),
    /// Show one app type by key (see `catalog list`).
    Show {
        /// App type key, e.g. cloud-backup-delegated.
        key: String,
        #[command(flatten)]
        out: JsonFlag,
    },
    /// Check a catalog file and report the first problem with its line.
    Check {
        /// The TOML file.
        file: PathBuf,
    },
}

#[derive(Debug, Subcommand)]
enum OrgsCmd {
    /// List organizations.
    List(JsonFlag),
    /// Create an organization.
    Create {
        /// Name.
        #[arg(long)]
        name: String,
        /// Subscription modules, comma-separated (catalog module keys).
        #[arg(long, value_delimiter = ',')]
        modules: Vec<String>,
        #[command(flatten)]
        out: JsonFlag,
    },
    /// Show one organization.
    Show {
        /// Organization ID.
        id: String,
        #[command(flatten)]
        out: JsonFlag,
    },
    /// Delete an organization with no tenants.
    Delete {
        /// Organization ID.
        id: String,
    },
}

#[derive(Debug, Subcommand)]
enum TenantsCmd {
    /// List tenants.
    List {
        /// Only this organization's.
        #[arg(long)]
        org: Option<String>,
        #[command(flatten)]
        out: JsonFlag,
    },
    /// Connect a tenant to an organization.
    Connect {
        /// Organization ID.
        #[arg(long)]
        org: String,
        /// Tenant ID (GUID).
        #[arg(long)]
        tenant_id: String,
        /// Primary domain, e.g. contoso.onmicrosoft.com.
        #[arg(long)]
        domain: String,
        /// Display name.
        #[arg(long)]
        name: Option<String>,
        #[command(flatten)]
        out: JsonFlag,
    },
    /// Show a tenant (GUID or domain).
    Show {
        /// Tenant ID or domain.
        tenant: String,
        #[command(flatten)]
        out: JsonFlag,
    },
    /// Disconnect a tenant with no app profiles.
    Delete {
        /// Tenant ID or domain.
        tenant: String,
    },
}

#[derive(Debug, Subcommand)]
enum ProfilesCmd {
    /// List app profiles.
    List {
        /// Organization ID.
        #[arg(long)]
        org: Option<String>,
        /// Tenant ID or domain.
        #[arg(long)]
        tenant: Option<String>,
        /// Statuses, comma-separated (valid, attention, invalid, pending).
        #[arg(long, value_delimiter = ',')]
        status: Vec<String>,
        /// Service key.
        #[arg(long)]
        service: Option<String>,
        /// App type key.
        #[arg(long)]
        app_type: Option<String>,
        /// Search text (app type, service, consent user, application ID).
        #[arg(long)]
        search: Option<String>,
        /// Page size.
        #[arg(long, default_value_t = 50)]
        limit: u32,
        /// Cursor printed with the previous page.
        #[arg(long)]
        after: Option<String>,
        #[command(flatten)]
        out: JsonFlag,
    },
    /// Show one app profile with its reason, remediation and history.
    Show {
        /// Profile ID.
        id: String,
        #[command(flatten)]
        out: JsonFlag,
    },
    /// Create an app profile (it starts "not yet authorized").
    Create {
        /// Tenant ID or domain.
        #[arg(long)]
        tenant: String,
        /// App type key (see `catalog list`).
        #[arg(long)]
        app_type: String,
        /// Service key, when the app type serves several.
        #[arg(long)]
        service: Option<String>,
        #[command(flatten)]
        out: JsonFlag,
    },
    /// Delete an app profile with its history and secrets.
    Delete {
        /// Profile ID.
        id: String,
    },
    /// Start re-authorizing an app profile: prints the Microsoft URL to open (or, with --handoff, a consent
    /// link to send to the tenant's administrator).
    Reauthorize {
        /// Profile ID.
        id: String,
        /// Consent method: admin or user (user only where the catalog allows it).
        #[arg(long, default_value = "admin")]
        method: String,
        /// Custom apps: the application (client) ID.
        #[arg(long)]
        application_id: Option<String>,
        /// Custom apps: the certificate file (.pfx).
        #[arg(long)]
        pfx: Option<PathBuf>,
        /// Custom apps: a file holding the .pfx password (or CONSENTRY_PFX_PASSWORD).
        #[arg(long)]
        pfx_password_file: Option<PathBuf>,
        /// Functions to enable, comma-separated (Cloud Backup delegated app).
        #[arg(long, value_delimiter = ',')]
        functions: Vec<String>,
        /// What the profile will scan, comma-separated scan target keys (Power Platform app types; see
        /// `catalog show`).
        #[arg(long, value_delimiter = ',')]
        scan_targets: Vec<String>,
        /// Return a consent link for the tenant's administrator instead of the Microsoft URL.
        #[arg(long)]
        handoff: bool,
        #[command(flatten)]
        out: JsonFlag,
    },
    /// Check app profiles now: exercises each profile's credential at Microsoft and updates its status
    /// (the same check as the monitor's schedule). One profile by ID, a tenant's with --tenant, or --all.
    Check {
        /// Profile ID.
        id: Option<String>,
        /// Check every profile of this tenant (ID or domain).
        #[arg(long, conflicts_with = "id")]
        tenant: Option<String>,
        /// Check every profile.
        #[arg(long, conflicts_with_all = ["id", "tenant"])]
        all: bool,
        #[command(flatten)]
        out: JsonFlag,
    },
    /// Cancel a pending re-authorization (the profile returns to its previous status).
    CancelReauthorization {
        /// Profile ID.
        id: String,
    },
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    let runtime = match tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
    {
        Ok(r) => r,
        Err(e) => {
            eprintln!("error: cannot start the async runtime: {e}");
            return ExitCode::FAILURE;
        }
    };
    match runtime.block_on(run(cli)) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("error: {e:#}");
            ExitCode::FAILURE
        }
    }
}

fn load_config(path: Option<&std::path::Path>) -> anyhow::Result<Config> {
    Ok(Config::load(path, std::env::vars())?)
}

fn init_logging(cfg: &Config) {
    let filter = tracing_subscriber::EnvFilter::try_from_env("CONSENTRY_LOG")
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info,sqlx=warn"));
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr);
    let _ = match cfg.log_format {
        consentry_server::config::LogFormat::Json => builder.json().try_init(),
        consentry_server::config::LogFormat::Text => builder.try_init(),
    };
}

async fn services(cfg: &Config) -> anyhow::Result<Consentry> {
    Ok(consentry_server::startup::open_services(cfg, Arc::new(SystemClock)).await?)
}

fn cert_new(
    subject: &str,
    years: u32,
    out: &std::path::Path,
    name: Option<String>,
    password: Option<String>,
) -> anyhow::Result<()> {
    use base64::Engine;
    let (password, generated) = match password {
        Some(p) if !p.is_empty() => (p, false),
        _ => {
            let bytes: [u8; 18] = rand::random();
            (
                base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(bytes),
                true,
            )
        }
    };
    let pair = consentry_certs::generate_self_signed(
        subject,
        years,
        &password,
        time::OffsetDateTime::now_utc(),
    )?;
    std::fs::create_dir_all(out).with_context(|| format!("cannot create {}", out.display()))?;
    let base = name.unwrap_or_else(|| {
        let slug: String = subject
            .trim_start_matches("CN=")
            .chars()
            .map(|c| {
                if c.is_ascii_alphanumeric() {
                    c.to_ascii_lowercase()
                } else {
                    '-'
                }
            })
            .collect();
        let slug = slug.trim_matches('-').to_string();
        if slug.is_empty() {
            "custom-app".into()
        } else {
            slug
        }
    });
    let (pfx, cer) = pair.write_to_dir(out, &base)?;
    println!(
        "Created a self-signed certificate valid until {}:",
        pair.not_after.date()
    );
    println!(
        "  {}  (private: give it to Consentry with its password when you re-authorize)",
        pfx.display()
    );
    println!(
        "  {}  (public: upload it to the custom app in Microsoft Entra ID)",
        cer.display()
    );
    println!("  SHA-1 thumbprint: {}", pair.sha1_thumbprint);
    if generated {
        println!("  password: {password}  (generated; keep it safe, it is not stored anywhere)");
    }
    Ok(())
}

/// `consentry db copy`. The copy moves sealed secrets as they are and never opens one, so it needs no
/// master key (the stores get a throw-away one); the copied installation needs the original key.
async fn db_copy(from: &str, to: &str) -> anyhow::Result<()> {
    use consentry_server::config::redact_url;
    let open = |url: String, what: &'static str| async move {
        let sealer = consentry_store::Sealer::from_key_bytes(&rand::random::<[u8; 32]>());
        consentry_store::SqlStore::open(&url, sealer)
            .await
            .with_context(|| format!("cannot open the {what} database {}", redact_url(&url)))
    };
    let source = open(from.to_string(), "source").await?;
    let target = open(to.to_string(), "target").await?;
    let report = consentry_store::copy::copy(&source, &target).await;
    source.close().await;
    target.close().await;
    let report = report?;
    println!("copied {} to {}", redact_url(from), redact_url(to));
    println!("{:<24} {:>10} {:>10}", "table", "source", "target");
    for t in &report.tables {
        println!(
            "{:<24} {:>10} {:>10}",
            t.table, t.source_rows, t.target_rows
        );
    }
    println!(
        "every table has the same row count on both sides; secrets are still sealed: start Consentry on the \
         target with the same master key"
    );
    Ok(())
}

/// Serves until Ctrl-C or SIGTERM, with the monitor beside the server (when enabled); both stop
/// together and checks in flight finish.
pub(crate) async fn serve_with_monitor(
    cfg: &Config,
    state: consentry_server::AppState,
    listener: tokio::net::TcpListener,
) -> anyhow::Result<()> {
    let (stop_tx, stop_rx) = tokio::sync::watch::channel(false);
    let monitor = cfg.monitor.enabled.then(|| {
        let m = consentry_server::consentry_monitor::Monitor::new(
            state.checker.clone(),
            consentry_server::startup::monitor_config(cfg),
        );
        let mut rx = stop_rx.clone();
        tokio::spawn(m.run(async move {
            let _ = rx.wait_for(|stop| *stop).await;
        }))
    });
    let shutdown = async move {
        shutdown_signal().await;
        let _ = stop_tx.send(true);
    };
    consentry_server::serve(listener, state, shutdown).await?;
    if let Some(task) = monitor {
        task.await?;
    }
    Ok(())
}

fn reauthorizer(cfg: &Config, svc: &Consentry) -> anyhow::Result<consentry_domain::Reauthorizer> {
    Ok(consentry_server::startup::compose_on(cfg, svc.clone())?.reauth)
}

/// What a run of `consentry profiles check` found, counted the way an operator reads it.
#[derive(Debug, Default, PartialEq, Eq)]
struct CheckTally {
    valid: usize,
    attention: usize,
    invalid: usize,
    transient: usize,
    skipped: usize,
    errors: usize,
}

impl CheckTally {
    fn add(&mut self, label: &str) {
        match label {
            "valid" => self.valid += 1,
            "attention" => self.attention += 1,
            "invalid" => self.invalid += 1,
            "transient_failure" => self.transient += 1,
            "skipped" => self.skipped += 1,
            _ => self.errors += 1,
        }
    }

    fn checked(&self) -> usize {
        self.valid + self.attention + self.invalid
    }

    /// The exit decision: a run that checked nothing although there was something to check
    /// (Microsoft kept failing, or Consentry could not read what it needs) fails, so that a script
    /// or a scheduler notices; skipped profiles (never authorized, an answer being recorded) are
    /// not failures, and a run that checked some profiles succeeds with the others named (their
    /// status is unchanged and the monitor retries them within 15 minutes).
    fn nothing_could_be_checked(&self) -> bool {
        self.checked() == 0 && self.transient + self.errors > 0
    }

    fn summary(&self) -> String {
        format!(
            "{} checked ({} valid, {} attention, {} invalid), {} transient failure(s), {} skipped, {} error(s)",
            self.checked(),
            self.valid,
            self.attention,
            self.invalid,
            self.transient,
            self.skipped,
            self.errors
        )
    }
}

/// Checks profiles one after the other through the same checker as the monitor (composed by
/// `consentry_server::startup`: the configured policy and the webhook notifier), with progress on
/// standard error for long runs.
async fn check_profiles(
    cfg: &Config,
    svc: &Consentry,
    ids: Vec<ProfileId>,
    json: bool,
) -> anyhow::Result<()> {
    let services = consentry_server::startup::compose_on(cfg, svc.clone())?;
    let checker = services.checker;
    let total = ids.len();
    let who = match operator() {
        Actor::Operator(n) => n,
        Actor::System => "cli".into(),
    };
    let mut results = Vec::with_capacity(total);
    let mut tally = CheckTally::default();
    for (i, id) in ids.into_iter().enumerate() {
        if total > 1 {
            eprint!("\rchecking {}/{total} …", i + 1);
        }
        let outcome = checker
            .check(id, consentry_domain::CheckTrigger::Manual(who.clone()))
            .await;
        let (label, reason, message) = match &outcome {
            Ok(o) => (
                o.label().to_string(),
                o.reason_code().unwrap_or_default().to_string(),
                match o {
                    consentry_domain::CheckOutcome::Skipped { message, .. }
                    | consentry_domain::CheckOutcome::TransientFailure { message, .. } => {
                        message.clone()
                    }
                    consentry_domain::CheckOutcome::Checked {
                        credentials: Some(c),
                        ..
                    } => format!(
                        "re-authorization pending; the credentials in use: {}",
                        c.reason
                            .as_ref()
                            .map_or_else(|| "they work".to_string(), |r| r.summary())
                    ),
                    consentry_domain::CheckOutcome::Checked { profile, .. } => profile
                        .reason
                        .as_ref()
                        .map(|r| r.summary())
                        .unwrap_or_default(),
                },
            ),
            Err(e) => ("error".to_string(), String::new(), e.to_string()),
        };
        tally.add(&label);
        let mut row = serde_json::json!({
            "profile_id": id.to_string(),
            "outcome": label,
            "reason": reason,
            "message": message,
        });
        if let Ok(consentry_domain::CheckOutcome::TransientFailure { attempts, .. }) = &outcome {
            row["attempts"] = (*attempts).into();
        }
        results.push(row);
    }
    if total > 1 {
        eprintln!("\rchecked {total} app profile(s)      ");
    }
    // Status changes were handed to the webhook notifier, which delivers in the background: wait
    // for it (bounded), as the server would have.
    if !services
        .notifier
        .flush(std::time::Duration::from_secs(120))
        .await
    {
        eprintln!("warning: some webhook deliveries did not finish before the command ended");
    }
    if json {
        println!("{}", serde_json::to_string_pretty(&results)?);
    } else {
        for r in &results {
            println!(
                "{}  {:<17}  {}  {}",
                r["profile_id"].as_str().unwrap_or_default(),
                r["outcome"].as_str().unwrap_or_default(),
                r["reason"].as_str().unwrap_or_default(),
                r["message"].as_str().unwrap_or_default()
            );
        }
        println!("{}", tally.summary());
    }
    if tally.nothing_could_be_checked() {
        anyhow::bail!(
            "no app profile could be checked ({}); their statuses are unchanged. Try again later, or look at the messages above",
            tally.summary()
        );
    }
    if tally.transient + tally.errors > 0 {
        eprintln!(
            "warning: {} app profile(s) could not be checked now; their statuses are unchanged and the monitor tries again",
            tally.transient + tally.errors
        );
    }
    Ok(())
}

fn operator() -> Actor {
    let user = std::env::var("USER").unwrap_or_else(|_| "operator".into());
    Actor::Operator(format!("cli:{user}"))
}

/// Records an operator's action in the audit log (a refused entry is logged; the action stands).
async fn record(
    svc: &Consentry,
    org: Option<OrgId>,
    action: AuditAction,
    target: String,
    detail: serde_json::Value,
) {
    svc.audit()
        .record(&operator(), org, action, target, detail)
        .await;
}

fn parse<T>(
    what: &str,
    raw: &str,
    f: impl FnOnce(&str) -> Result<T, consentry_domain::InvalidId>,
) -> anyhow::Result<T> {
    f(raw).with_context(|| format!("{what} is not valid"))
}

async fn run(cli: Cli) -> anyhow::Result<()> {
    let cfg_path = cli.config.as_deref();
    match cli.command {
        Command::Serve => {
            let cfg = load_config(cfg_path)?;
            init_logging(&cfg);
            let state = consentry_server::build_state(&cfg).await?;
            let listener = tokio::net::TcpListener::bind(cfg.listen)
                .await
                .with_context(|| format!("cannot listen on {}", cfg.listen))?;
            let (_, token_file) = consentry_server::startup::load_api_token(&cfg)?;
            tracing::info!(
                listen = %listener.local_addr()?,
                api_token_file = ?token_file,
                "consentry serving"
            );
            serve_with_monitor(&cfg, state, listener).await
        }
        Command::Demo(args) => demo::run(args, cfg_path).await,
        Command::Cert(CertCmd::New {
            subject,
            years,
            out,
            name,
            password,
        }) => cert_new(&subject, years, &out, name, password),
        Command::Migrate => {
            let cfg = load_config(cfg_path)?;
            services(&cfg).await?;
            println!(
                "database {} is up to date",
                consentry_server::config::redact_url(&cfg.database_url())
            );
            Ok(())
        }
        Command::Catalog(cmd) => {
            let cfg = load_config(cfg_path)?;
            let catalog = load_catalog(&cfg)?;
            match cmd {
                CatalogCmd::List(o) => output::catalog_list(&catalog, o.json),
                CatalogCmd::Show { key, out } => {
                    let at = catalog.app_type(&key).with_context(|| {
                        format!("unknown app type {key:?}; `consentry catalog list` shows the keys")
                    })?;
                    output::app_type(&catalog, at, out.json)
                }
                CatalogCmd::Check { file } => {
                    let c = consentry_catalog::Catalog::load_file(&file)?;
                    println!(
                        "{}: valid catalog version {} with {} app types",
                        file.display(),
                        c.version,
                        c.app_types.len()
                    );
                    Ok(())
                }
            }
        }
        Command::Audit(cmd) => {
            let cfg = load_config(cfg_path)?;
            let svc = services(&cfg).await?;
            audit::run(cmd, &svc).await
        }
        Command::MasterKey(cmd) => {
            let cfg = load_config(cfg_path)?;
            audit::run_master_key(cmd, &cfg).await
        }
        Command::Db(DbCmd::Copy { from, to }) => db_copy(&from, &to).await,
        Command::Users(cmd) => {
            let cfg = load_config(cfg_path)?;
            let svc = services(&cfg).await?;
            users::run(cmd, &svc).await
        }
        Command::ScanProfiles(cmd) => {
            let cfg = load_config(cfg_path)?;
            let svc = services(&cfg).await?;
            scan_profiles::run(cmd, &svc).await
        }
        Command::Orgs(cmd) => {
            let cfg = load_config(cfg_path)?;
            let svc = services(&cfg).await?;
            match cmd {
                OrgsCmd::List(o) => output::orgs(&svc.organizations().await?, o.json),
                OrgsCmd::Create { name, modules, out } => {
                    let org = svc.create_organization(&name, &modules).await?;
                    record(
                        &svc,
                        Some(org.id),
                        AuditAction::OrganizationCreated,
                        format!("organization:{}", org.id),
                        serde_json::json!({ "name": org.name, "modules": org.modules }),
                    )
                    .await;
                    output::orgs(&[org], out.json)
                }
                OrgsCmd::Show { id, out } => {
                    let id = parse("organization ID", &id, OrgId::parse)?;
                    output::orgs(&[svc.organization(id).await?], out.json)
                }
                OrgsCmd::Delete { id } => {
                    let id = parse("organization ID", &id, OrgId::parse)?;
                    svc.delete_organization(id).await?;
                    record(
                        &svc,
                        Some(id),
                        AuditAction::OrganizationDeleted,
                        format!("organization:{id}"),
                        serde_json::json!({}),
                    )
                    .await;
                    println!("organization {id} deleted");
                    Ok(())
                }
            }
        }
        Command::Tenants(cmd) => {
            let cfg = load_config(cfg_path)?;
            let svc = services(&cfg).await?;
            match cmd {
                TenantsCmd::List { org, out } => {
                    let org = org
                        .map(|o| parse("organization ID", &o, OrgId::parse))
                        .transpose()?;
                    output::tenants(&svc.tenants(org).await?, out.json)
                }
                TenantsCmd::Connect {
                    org,
                    tenant_id,
                    domain,
                    name,
                    out,
                } => {
                    let org = parse("organization ID", &org, OrgId::parse)?;
                    let tid = parse("tenant ID", &tenant_id, TenantId::parse)?;
                    let domain = parse("domain", &domain, DomainName::parse)?;
                    let t = svc
                        .connect_tenant(org, tid, domain, name.as_deref())
                        .await?;
                    record(
                        &svc,
                        Some(t.org_id),
                        AuditAction::TenantCreated,
                        format!("tenant:{}", t.id),
                        serde_json::json!({ "domain": t.primary_domain.to_string() }),
                    )
                    .await;
                    output::tenants(&[t], out.json)
                }
                TenantsCmd::Show { tenant, out } => {
                    let r = parse("tenant", &tenant, TenantRef::parse)?;
                    output::tenants(&[svc.tenant(&r).await?], out.json)
                }
                TenantsCmd::Delete { tenant } => {
                    let r = parse("tenant", &tenant, TenantRef::parse)?;
                    let t = svc.tenant(&r).await?;
                    svc.delete_tenant(&r).await?;
                    record(
                        &svc,
                        Some(t.org_id),
                        AuditAction::TenantDeleted,
                        format!("tenant:{}", t.id),
                        serde_json::json!({ "domain": t.primary_domain.to_string() }),
                    )
                    .await;
                    println!("tenant {tenant} disconnected");
                    Ok(())
                }
            }
        }
        Command::Keys(cmd) => {
            let cfg = load_config(cfg_path)?;
            let svc = services(&cfg).await?;
            // The same service as the JSON API: the same name rule, the same audit entries.
            let keys = consentry_domain::ApiKeys::new(svc.clone());
            let caller = consentry_domain::Caller {
                actor: operator(),
                ..consentry_domain::Caller::platform("cli")
            };
            match cmd {
                KeysCmd::Create { org, name } => {
                    let org = parse("organization ID", &org, OrgId::parse)?;
                    let created = keys.create(&caller, org, &name).await?;
                    println!("key id: {}", created.record.id);
                    println!(
                        "key:    {}",
                        secrecy::ExposeSecret::expose_secret(&created.key)
                    );
                    println!(
                        "(shown once; only its hash is stored. Send it as `Authorization: Bearer <key>`.)"
                    );
                    Ok(())
                }
                KeysCmd::List { org, out } => {
                    let org = org
                        .map(|o| parse("organization ID", &o, OrgId::parse))
                        .transpose()?;
                    let keys = keys.list(&caller, org).await?;
                    if out.json {
                        println!("{}", serde_json::to_string_pretty(&keys)?);
                    } else {
                        for k in &keys {
                            println!(
                                "{}  org {}  {:<20}  {}  {}",
                                k.id,
                                k.org_id,
                                k.name,
                                match k.revoked_at {
                                    Some(at) => format!("revoked {at}"),
                                    None => "active".into(),
                                },
                                match k.last_used_at {
                                    Some(at) => format!("last used {at}"),
                                    None => "never used".into(),
                                }
                            );
                        }
                    }
                    Ok(())
                }
                KeysCmd::Revoke { id } => {
                    let id = parse("key ID", &id, consentry_domain::ApiKeyId::parse)?;
                    match keys.revoke(&caller, None, id).await {
                        Ok(_) => {
                            println!("key {id} revoked");
                            Ok(())
                        }
                        Err(consentry_domain::DomainError::NotFound { .. }) => {
                            anyhow::bail!(
                                "no active key {id}; `consentry keys list` shows the keys"
                            )
                        }
                        Err(e) => Err(e.into()),
                    }
                }
            }
        }
        Command::Profiles(cmd) => {
            let cfg = load_config(cfg_path)?;
            let svc = services(&cfg).await?;
            match cmd {
                ProfilesCmd::List {
                    org,
                    tenant,
                    status,
                    service,
                    app_type,
                    search,
                    limit,
                    after,
                    out,
                } => {
                    let mut filter = ProfileFilter {
                        org_id: org
                            .map(|o| parse("organization ID", &o, OrgId::parse))
                            .transpose()?,
                        service,
                        app_type,
                        search,
                        ..Default::default()
                    };
                    for s in status {
                        filter
                            .statuses
                            .push(ProfileStatus::parse(s.trim()).with_context(|| {
                                format!(
                                    "unknown status {s:?}; use valid, attention, invalid or pending"
                                )
                            })?);
                    }
                    if let Some(t) = tenant {
                        let r = parse("tenant", &t, TenantRef::parse)?;
                        filter.tenant_id = Some(svc.tenant(&r).await?.id);
                    }
                    let page = svc.profiles(&filter, &PageRequest { after, limit }).await?;
                    output::profiles(&svc, page, out.json)
                }
                ProfilesCmd::Show { id, out } => {
                    let id = parse("profile ID", &id, ProfileId::parse)?;
                    let p = svc.profile(id).await?;
                    let history = svc.history(id, 50).await?;
                    output::profile_detail(&svc, p, &history, out.json)
                }
                ProfilesCmd::Create {
                    tenant,
                    app_type,
                    service,
                    out,
                } => {
                    let tenant = parse("tenant", &tenant, TenantRef::parse)?;
                    let p = svc
                        .create_profile(
                            NewProfile {
                                tenant,
                                app_type,
                                service,
                            },
                            &operator(),
                        )
                        .await?;
                    let history = svc.history(p.id, 50).await?;
                    output::profile_detail(&svc, p, &history, out.json)
                }
                ProfilesCmd::Delete { id } => {
                    let id = parse("profile ID", &id, ProfileId::parse)?;
                    let p = svc.profile(id).await?;
                    svc.delete_profile(id).await?;
                    record(
                        &svc,
                        Some(p.org_id),
                        AuditAction::ProfileDeleted,
                        format!("profile:{id}"),
                        serde_json::json!({ "app_type": p.app_type, "tenant": p.tenant_id.to_string() }),
                    )
                    .await;
                    println!("app profile {id} deleted");
                    Ok(())
                }
                ProfilesCmd::Reauthorize {
                    id,
                    method,
                    application_id,
                    pfx,
                    pfx_password_file,
                    functions,
                    scan_targets,
                    handoff,
                    out,
                } => {
                    let id = parse("profile ID", &id, ProfileId::parse)?;
                    let method: consentry_catalog::ConsentMethod =
                        method.parse().map_err(|_| {
                            anyhow::anyhow!("--method must be admin or user, not {method:?}")
                        })?;
                    let custom_app = match (application_id, pfx) {
                        (None, None) => None,
                        (app, pfx) => {
                            let pfx = pfx.context("a custom app needs --pfx FILE")?;
                            let bytes = std::fs::read(&pfx)
                                .with_context(|| format!("cannot read {}", pfx.display()))?;
                            let password = match pfx_password_file {
                                Some(f) => std::fs::read_to_string(&f)
                                    .with_context(|| format!("cannot read {}", f.display()))?
                                    .trim_end_matches(['\r', '\n'])
                                    .to_string(),
                                None => std::env::var("CONSENTRY_PFX_PASSWORD").unwrap_or_default(),
                            };
                            Some(consentry_domain::CustomAppInput {
                                application_id: app.unwrap_or_default(),
                                pfx: bytes,
                                password: secrecy::SecretString::from(password),
                            })
                        }
                    };
                    let reauth = reauthorizer(&cfg, &svc)?;
                    let started = reauth
                        .start(
                            id,
                            consentry_domain::StartRequest {
                                method,
                                custom_app,
                                functions,
                                scan_targets,
                                login_hint: None,
                                handoff,
                            },
                            &operator(),
                        )
                        .await?;
                    if out.json {
                        println!(
                            "{}",
                            serde_json::to_string_pretty(&serde_json::json!({
                                "url": started.url,
                                "consent_link": started.consent_link,
                                "expires_at": started.expires_at.to_string(),
                            }))?
                        );
                    } else if started.consent_link {
                        println!(
                            "Send this consent link to the tenant's administrator (valid until {}):",
                            started.expires_at
                        );
                        println!("{}", started.url);
                    } else {
                        println!(
                            "Open this URL to consent at Microsoft (valid until {}):",
                            started.expires_at
                        );
                        println!("{}", started.url);
                        println!(
                            "The result is recorded when Microsoft redirects back to {}.",
                            cfg.callback_url()
                        );
                    }
                    Ok(())
                }
                ProfilesCmd::Check {
                    id,
                    tenant,
                    all,
                    out,
                } => {
                    let ids = match (id, tenant, all) {
                        (Some(id), _, _) => vec![parse("profile ID", &id, ProfileId::parse)?],
                        (None, tenant, true) | (None, tenant @ Some(_), false) => {
                            let mut filter = ProfileFilter::default();
                            if let Some(t) = tenant {
                                let r = parse("tenant", &t, TenantRef::parse)?;
                                filter.tenant_id = Some(svc.tenant(&r).await?.id);
                            }
                            let mut ids = Vec::new();
                            let mut after = None;
                            loop {
                                let page = svc
                                    .profiles(&filter, &PageRequest { after, limit: 500 })
                                    .await?;
                                ids.extend(page.items.iter().map(|p| p.id));
                                match page.next_cursor {
                                    Some(c) => after = Some(c),
                                    None => break,
                                }
                            }
                            ids
                        }
                        (None, None, false) => {
                            anyhow::bail!("name a profile ID, or use --tenant TENANT or --all")
                        }
                    };
                    check_profiles(&cfg, &svc, ids, out.json).await
                }
                ProfilesCmd::CancelReauthorization { id } => {
                    let id = parse("profile ID", &id, ProfileId::parse)?;
                    let reauth = reauthorizer(&cfg, &svc)?;
                    let p = reauth.cancel(id, &operator()).await?;
                    println!(
                        "re-authorization cancelled; app profile {id} is {} again",
                        p.status
                    );
                    Ok(())
                }
            }
        }
    }
}

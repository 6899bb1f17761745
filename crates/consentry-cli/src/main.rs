//! `consentry`: the one binary. Runs the server (`serve`), the self-contained demo (`demo`), database
//! migrations, and the operator's commands on the catalog, organizations, tenants and app profiles.
//! Operator commands work directly on the configured database through the same domain services as the API.

/// mimalloc instead of the C library's allocator: a health sweep spends about a tenth of its CPU
/// allocating and freeing; with mimalloc a check costs about 6 % less CPU (A/B of sweeps, docs/PERFORMANCE.md).
#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

mod apps;
mod audit;
mod campaigns;
mod catalog;
mod cert;
mod db;
mod demo;
mod doctor;
mod keys;
mod master_key;
mod orgs;
mod output;
mod profiles;
mod progress;
mod rollouts;
mod scan_profiles;
mod serve;
mod tenants;
mod users;

use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::Arc;

use anyhow::Context;
use clap::{Args, Parser, Subcommand};
use consentry_domain::audit::AuditAction;
use consentry_domain::{Actor, Consentry, OrgId, SystemClock};
use consentry_server::Config;

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
    Catalog(catalog::CatalogCmd),
    /// Manage organizations (the vendor's customers).
    #[command(subcommand)]
    Orgs(orgs::OrgsCmd),
    /// Manage Microsoft tenants connected to organizations.
    #[command(subcommand)]
    Tenants(tenants::TenantsCmd),
    /// Manage app profiles.
    #[command(subcommand)]
    Profiles(profiles::ProfilesCmd),
    /// The vendor's app registrations in its own tenant: manifests, registering them, rotating a credential.
    #[command(subcommand)]
    Apps(apps::AppsCmd),
    /// Certificates for custom Azure apps.
    #[command(subcommand)]
    Cert(cert::CertCmd),
    /// Operator accounts of the web console.
    #[command(subcommand)]
    Users(users::UsersCmd),
    /// Service API keys for the token API, scoped to an organization (for the master key that
    /// seals secrets, see `master-key`).
    #[command(subcommand)]
    Keys(keys::KeysCmd),
    /// Permission rollouts: catalog versions that added permissions, and which tenants still lack them.
    #[command(subcommand)]
    Rollouts(rollouts::RolloutsCmd),
    /// Consent campaigns: one link per tenant that walks its administrator through every profile
    /// needing consent again, with invitations, reminders and each profile's state.
    #[command(subcommand)]
    Campaigns(campaigns::CampaignsCmd),
    /// Scan profiles (Cloud Backup for Microsoft 365) and the Planner migration.
    #[command(subcommand)]
    ScanProfiles(scan_profiles::ScanProfilesCmd),
    /// The audit log: verify its hash chain, list and export entries.
    #[command(subcommand)]
    Audit(audit::AuditCmd),
    /// The master key sealing secrets at rest: rotate it, retire the old one, show what it seals.
    #[command(subcommand, name = "master-key")]
    MasterKey(master_key::MasterKeyCmd),
    /// Database operations: copy a whole installation between SQLite and PostgreSQL.
    #[command(subcommand)]
    Db(db::DbCmd),
    /// Check the configuration against reality: database, master key, TLS, clock, and each vendor
    /// registration (token, redirect URIs, permissions, credential expiry). Exit status 0 only when
    /// every check is ok.
    Doctor(doctor::DoctorArgs),
}

#[derive(Debug, Args)]
pub(crate) struct JsonFlag {
    /// Print JSON instead of a table.
    #[arg(long)]
    pub(crate) json: bool,
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
    if let Command::Doctor(args) = cli.command {
        // Its own exit status: 0 only when every check is ok (attention counts as not ok).
        return match runtime.block_on(doctor::run(args, cli.config.as_deref())) {
            Ok(true) => ExitCode::SUCCESS,
            Ok(false) => ExitCode::FAILURE,
            Err(e) => {
                eprintln!("error: {e:#}");
                ExitCode::from(2)
            }
        };
    }
    match runtime.block_on(run(cli)) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("error: {e:#}");
            ExitCode::FAILURE
        }
    }
}

/// The configuration: the file (if any), then `CONSENTRY_*` variables over it.
pub(crate) fn load_config(path: Option<&std::path::Path>) -> anyhow::Result<Config> {
    Ok(Config::load(path, std::env::vars())?)
}

/// Every command's services, composed like `serve`'s (`consentry_server::startup::compose`; opening the
/// database applies the migrations).
pub(crate) async fn services(cfg: &Config) -> anyhow::Result<consentry_server::startup::Services> {
    Ok(consentry_server::startup::compose(cfg, Arc::new(SystemClock)).await?)
}

/// Who the audit log names for a command run from this shell (`cli:$USER`).
pub(crate) fn operator() -> Actor {
    let user = std::env::var("USER").unwrap_or_else(|_| "operator".into());
    Actor::Operator(format!("cli:{user}"))
}

/// Records an operator's action in the audit log (a refused entry is logged; the action stands).
pub(crate) async fn record(
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

/// Parses an identifier given on the command line, naming `what` when it is not valid.
pub(crate) fn parse<T>(
    what: &str,
    raw: &str,
    f: impl FnOnce(&str) -> Result<T, consentry_domain::InvalidId>,
) -> anyhow::Result<T> {
    f(raw).with_context(|| format!("{what} is not valid"))
}

async fn run(cli: Cli) -> anyhow::Result<()> {
    let cfg_path = cli.config.as_deref();
    match cli.command {
        Command::Serve => serve::run(&load_config(cfg_path)?).await,
        Command::Demo(args) => demo::run(args, cfg_path).await,
        Command::Cert(cmd) => cert::run(cmd),
        Command::Apps(cmd) => apps::run(cmd, cfg_path).await,
        Command::Migrate => db::migrate(&load_config(cfg_path)?).await,
        Command::Catalog(cmd) => catalog::run(cmd, &load_config(cfg_path)?),
        Command::Audit(cmd) => {
            let cfg = load_config(cfg_path)?;
            let svc = services(&cfg).await?.svc;
            audit::run(cmd, &svc).await
        }
        Command::MasterKey(cmd) => {
            let cfg = load_config(cfg_path)?;
            master_key::run(cmd, &cfg).await
        }
        Command::Db(cmd) => db::run(cmd).await,
        Command::Doctor(_) => unreachable!("doctor runs from main with its own exit status"),
        Command::Users(cmd) => {
            let cfg = load_config(cfg_path)?;
            let svc = services(&cfg).await?.svc;
            users::run(cmd, &svc).await
        }
        Command::ScanProfiles(cmd) => {
            let cfg = load_config(cfg_path)?;
            let svc = services(&cfg).await?.svc;
            scan_profiles::run(cmd, &svc).await
        }
        Command::Orgs(cmd) => {
            let cfg = load_config(cfg_path)?;
            let svc = services(&cfg).await?.svc;
            orgs::run(cmd, &svc, &cfg.public_url, cfg.email.smtp_host.is_some()).await
        }
        Command::Tenants(cmd) => {
            let cfg = load_config(cfg_path)?;
            let s = services(&cfg).await?;
            tenants::run(cmd, &s.svc, s.reauth.platform().as_ref()).await
        }
        Command::Keys(cmd) => {
            let cfg = load_config(cfg_path)?;
            let svc = services(&cfg).await?.svc;
            keys::run(cmd, &svc).await
        }
        Command::Rollouts(cmd) => {
            let cfg = load_config(cfg_path)?;
            let svc = services(&cfg).await?.svc;
            rollouts::run(cmd, &svc).await
        }
        Command::Campaigns(cmd) => {
            let cfg = load_config(cfg_path)?;
            campaigns::run(cmd, &services(&cfg).await?.campaigns).await
        }
        Command::Profiles(cmd) => {
            let cfg = load_config(cfg_path)?;
            profiles::run(cmd, &cfg, &services(&cfg).await?).await
        }
    }
}

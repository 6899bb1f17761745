//! `consentry demo`: the server on SQLite in a data folder, seeded with an example organization,
//! tenant and app profiles, ready to explore.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};

use anyhow::Context;
use clap::Args;
use consentry_domain::{Actor, DomainName, NewProfile, TenantId, TenantRef};
use consentry_server::Config;
use consentry_server::startup::{load_api_token, shutdown_signal};
use secrecy::ExposeSecret;

/// Options of `consentry demo`.
#[derive(Debug, Args)]
pub struct DemoArgs {
    /// Folder for the demo's database and keys.
    #[arg(long, default_value = "consentry-demo")]
    data_dir: PathBuf,
    /// Address to listen on.
    #[arg(long, default_value = "127.0.0.1:8080")]
    listen: SocketAddr,
    /// Delete the data folder first and seed afresh.
    #[arg(long)]
    fresh: bool,
}

/// The demo tenant (the same GUID as the simulator's default "contoso" scenario).
pub const DEMO_TENANT_ID: &str = "4f1c2a7e-0b7d-4c55-9d1e-6a0c3b2e8f10";
const DEMO_DOMAIN: &str = "contoso.onmicrosoft.com";
const DEMO_APP_TYPES: &[(&str, Option<&str>)] = &[
    ("insights-m365", None),
    ("cloud-backup-delegated", None),
    ("cloud-backup-express", None),
    ("viva-engage", Some("cloud-backup-m365")),
    ("m365-all", Some("cloud-backup-m365")),
    ("custom-azure-app", Some("cloud-backup-m365")),
    ("cloud-governance-delegated", None),
    ("portal-manager", None),
];

pub async fn run(args: DemoArgs, config_file: Option<&Path>) -> anyhow::Result<()> {
    if args.fresh && args.data_dir.exists() {
        std::fs::remove_dir_all(&args.data_dir)
            .with_context(|| format!("cannot remove {}", args.data_dir.display()))?;
    }
    let mut cfg = Config::load(config_file, std::env::vars())?;
    cfg.data_dir = args.data_dir.clone();
    cfg.database_url = None;
    cfg.listen = args.listen;
    cfg.public_url = format!("http://{}", args.listen);
    let started = std::time::Instant::now();
    let state = consentry_server::build_state(&cfg).await?;
    let seeded = seed(&state.svc).await?;
    let listener = tokio::net::TcpListener::bind(cfg.listen)
        .await
        .with_context(|| {
            format!(
                "cannot listen on {} (use --listen to pick another address)",
                cfg.listen
            )
        })?;
    let (token, token_file) = load_api_token(&cfg)?;
    let url = format!("http://{}", listener.local_addr()?);
    println!(
        "Consentry demo is ready in {:.1?} at {url}",
        started.elapsed()
    );
    println!("  data folder: {}", cfg.data_dir.display());
    if seeded {
        println!(
            "  seeded: organization \"Contoso (demo)\", tenant {DEMO_DOMAIN}, {} app profiles",
            DEMO_APP_TYPES.len()
        );
    }
    println!(
        "  API token: {} (also in {})",
        token.expose_secret(),
        token_file
            .map(|p| p.display().to_string())
            .unwrap_or_default()
    );
    println!(
        "  try: curl -H 'Authorization: Bearer {}' {url}/api/v1/profiles",
        token.expose_secret()
    );
    println!(
        "  or:  consentry profiles list --config <(echo 'data_dir = \"{}\"')",
        cfg.data_dir.display()
    );
    println!();
    println!("Not built yet: the web console, the embedded Microsoft simulator (entra-sim) and");
    println!("re-authorization. Until they land, every seeded profile is \"not yet authorized\".");
    println!("Press Ctrl-C to stop.");
    consentry_server::serve(listener, state, shutdown_signal()).await?;
    Ok(())
}

/// Seeds the demo data when the database is empty. Returns whether it seeded.
async fn seed(svc: &consentry_domain::Consentry) -> anyhow::Result<bool> {
    if !svc.organizations().await?.is_empty() {
        return Ok(false);
    }
    let org = svc
        .create_organization(
            "Contoso (demo)",
            &["teams".into(), "planner".into(), "power-platform".into()],
        )
        .await?;
    let tenant_id = TenantId::parse(DEMO_TENANT_ID)?;
    svc.connect_tenant(
        org.id,
        tenant_id,
        DomainName::parse(DEMO_DOMAIN)?,
        Some("Contoso"),
    )
    .await?;
    let actor = Actor::Operator("demo".into());
    for (app_type, service) in DEMO_APP_TYPES {
        svc.create_profile(
            NewProfile {
                tenant: TenantRef::Id(tenant_id),
                app_type: (*app_type).into(),
                service: service.map(str::to_string),
            },
            &actor,
        )
        .await?;
    }
    Ok(true)
}

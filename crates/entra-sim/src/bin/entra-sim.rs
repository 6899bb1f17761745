//! entra-sim binary: runs the simulator with a scenario file (or the embedded contoso scenario) until
//! Ctrl-C or SIGTERM.

use std::net::SocketAddr;
use std::path::PathBuf;

use anyhow::Context;
use clap::Parser;
use entra_sim::{RunningSim, Scenario, SimOptions};

/// A local simulator of the Microsoft identity platform and Microsoft Graph (development and tests only).
#[derive(Debug, Parser)]
#[command(name = "entra-sim", version)]
struct Args {
    /// Scenario: a built-in one by name (`contoso`, `national-clouds`, `going-live`: an empty
    /// vendor tenant for `consentry apps register`) or a scenario file (TOML); "contoso" when absent.
    #[arg(long, env = "ENTRA_SIM_SCENARIO")]
    scenario: Option<PathBuf>,
    /// Address to listen on.
    #[arg(long, env = "ENTRA_SIM_LISTEN", default_value = "127.0.0.1:8444")]
    listen: SocketAddr,
    /// Directory where ca.pem is written (the CA clients must trust).
    #[arg(long, env = "ENTRA_SIM_STATE_DIR", default_value = ".entra-sim")]
    state_dir: PathBuf,
    /// Serve plain http instead of https.
    #[arg(long)]
    http: bool,
    /// TLS certificate chain (PEM) to use instead of generating a local CA.
    #[arg(long, requires = "tls_key")]
    tls_cert: Option<PathBuf>,
    /// TLS private key (PEM) for --tls-cert.
    #[arg(long, requires = "tls_cert")]
    tls_key: Option<PathBuf>,
    /// Take the client IP from X-Forwarded-For (tests that play users signing in from elsewhere).
    #[arg(long)]
    trust_forwarded_for: bool,
    /// Save the state in the state directory and resume it at the next start (same scenario).
    #[arg(long)]
    persist: bool,
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    tracing_subscriber::fmt()
        .with_writer(std::io::stderr)
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env()
                .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info")),
        )
        .init();
    let args = Args::parse();
    let builtin = args
        .scenario
        .as_ref()
        .filter(|p| !p.exists())
        .and_then(|p| p.to_str())
        .and_then(Scenario::builtin);
    let scenario = match (&args.scenario, builtin) {
        (_, Some(s)) => s,
        (Some(path), None) => {
            let text = std::fs::read_to_string(path)
                .with_context(|| format!("reading the scenario file {}", path.display()))?;
            Scenario::from_toml_str(&text).with_context(|| format!("loading {}", path.display()))?
        }
        (None, None) => Scenario::contoso(),
    };
    let opts = SimOptions {
        listen: args.listen,
        tls: !args.http,
        state_dir: Some(args.state_dir.clone()),
        trust_forwarded_for: args.trust_forwarded_for,
        tls_cert_files: args.tls_cert.zip(args.tls_key),
        persist: args.persist,
    };
    let sim = RunningSim::start(scenario, opts).await?;
    println!("entra-sim listening on {}", sim.base_url());
    println!("  authority:   {}/{{tenant}}", sim.authority());
    println!("  graph:       {}", sim.graph_base());
    println!("  control API: {}/_sim/state", sim.base_url());
    if let Some(path) = sim.ca_pem_path() {
        println!("  trust this CA: {}", path.display());
    }
    let name = args.scenario.as_deref().and_then(|p| p.to_str());
    if matches!(
        name,
        None | Some("contoso" | "national-clouds" | "going-live")
    ) {
        println!(
            "  demo sign-in: admin@contoso.onmicrosoft.com / Demo-Passw0rd! (MFA code 123456)"
        );
    }
    if name == Some("going-live") {
        println!(
            "  vendor tenant: appadmin@consentry-vendor.onmicrosoft.com / Demo-Vendor-Passw0rd! (Application Administrator)"
        );
    }
    shutdown_signal().await;
    sim.shutdown().await;
    Ok(())
}

async fn shutdown_signal() {
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
        () = ctrl_c => {},
        () = term => {},
    }
}

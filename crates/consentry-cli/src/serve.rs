//! `consentry serve`: the server (JSON API and web console) with the monitor and the email
//! delivery worker beside it.

use anyhow::Context as _;
use consentry_server::Config;
use consentry_server::startup::shutdown_signal;

/// Runs the server on the configured database until Ctrl-C or SIGTERM.
pub async fn run(cfg: &Config) -> anyhow::Result<()> {
    init_logging(cfg);
    let state = consentry_server::build_state(cfg).await?;
    let listener = tokio::net::TcpListener::bind(cfg.listen)
        .await
        .with_context(|| format!("cannot listen on {}", cfg.listen))?;
    let (_, token_file) = consentry_server::startup::load_api_token(cfg)?;
    tracing::info!(
        listen = %listener.local_addr()?,
        api_token_file = ?token_file,
        "consentry serving"
    );
    serve_with_monitor(cfg, state, listener).await
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
    // The vendor's own credentials: read at start, then every `monitor.vendor_credentials_hours`.
    let vendor = cfg.monitor.enabled.then(|| {
        let mut rx = stop_rx.clone();
        tokio::spawn(consentry_server::consentry_monitor::vendor::run(
            state.vendor_credentials.clone(),
            std::time::Duration::from_secs(u64::from(cfg.monitor.vendor_credentials_hours) * 3600),
            async move {
                let _ = rx.wait_for(|stop| *stop).await;
            },
        ))
    });
    // The email outbox's delivery worker (when `[email]` is configured) stops with the server: the
    // message being sent is finished and recorded, the rest waits in the database.
    let email = state.email.clone().map(|worker| {
        let mut rx = stop_rx.clone();
        tokio::spawn(worker.run(async move {
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
    if let Some(task) = email {
        task.await?;
    }
    if let Some(task) = vendor {
        task.await?;
    }
    Ok(())
}

/// Logs to standard error, filtered by `CONSENTRY_LOG`, as text or JSON lines (`log_format`).
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

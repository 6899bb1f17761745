//! The HTTPS server: one port for the identity platform, Microsoft Graph and the control API.

use std::convert::Infallible;
use std::future::Future;
use std::net::{IpAddr, SocketAddr};
use std::path::{Path, PathBuf};
use std::pin::Pin;
use std::sync::{Arc, Mutex};
use std::task::{Context, Poll};

use axum::Router;
use axum::body::{Body, Bytes, HttpBody};
use axum::extract::ConnectInfo;
use axum::http::Request;
use axum::response::Response;
use secrecy::ExposeSecret;
use tower::{Service, ServiceExt};

use crate::control::SimControl;
use crate::crypto::{SigningKey, TlsMaterial};
use crate::ctx::Ctx;
use crate::error::SimError;
use crate::scenario::Scenario;
use crate::state::State;

type BoxError = Box<dyn std::error::Error + Send + Sync>;

/// How to run the simulator.
#[derive(Debug, Clone)]
pub struct SimOptions {
    /// Address to listen on; port 0 picks a free port.
    pub listen: SocketAddr,
    /// Serve HTTPS (default). Microsoft's client libraries refuse `http` authorities.
    pub tls: bool,
    /// Where to write `ca.pem` (the CA clients must trust); nothing is written when `None`.
    pub state_dir: Option<PathBuf>,
    /// Take the client IP from `X-Forwarded-For` (for tests that play users signing in from
    /// elsewhere). Microsoft ignores this header; leave it off unless a test needs it.
    pub trust_forwarded_for: bool,
    /// Use this certificate chain and key (PEM files) instead of generating a CA and certificate.
    pub tls_cert_files: Option<(PathBuf, PathBuf)>,
    /// Save the state to `state_dir/state.json` (every second when it changed, and at shutdown) and
    /// resume from it at the next start with the same scenario. Needs `state_dir`.
    pub persist: bool,
}

impl Default for SimOptions {
    fn default() -> Self {
        Self {
            listen: SocketAddr::from(([127, 0, 0, 1], 0)),
            tls: true,
            state_dir: None,
            trust_forwarded_for: false,
            tls_cert_files: None,
            persist: false,
        }
    }
}

/// A running simulator.
#[derive(Debug)]
pub struct RunningSim {
    ctx: Ctx,
    addr: SocketAddr,
    ca_pem: String,
    ca_pem_path: Option<PathBuf>,
    handle: axum_server::Handle<SocketAddr>,
    task: tokio::task::JoinHandle<std::io::Result<()>>,
    saver: Option<Saver>,
}

/// Saves the state when it changed (see `persist`).
#[derive(Debug)]
struct Saver {
    dir: PathBuf,
    fingerprint: String,
    task: tokio::task::JoinHandle<()>,
}

fn save(ctx: &Ctx, dir: &Path, fingerprint: &str, last: &mut String) {
    let json = crate::persist::to_json(&ctx.lock(), &ctx.key, fingerprint);
    if json != *last {
        match crate::persist::write(dir, &json) {
            Ok(()) => *last = json,
            Err(e) => {
                tracing::warn!(error = %e, dir = %dir.display(), "saving the simulator state failed")
            }
        }
    }
}

impl RunningSim {
    /// Starts the simulator with `scenario`.
    pub async fn start(scenario: Scenario, opts: SimOptions) -> Result<RunningSim, SimError> {
        let io = |context: &str| {
            let context = context.to_owned();
            move |source| SimError::Io { context, source }
        };
        let scenario = scenario.normalized()?;
        let listener =
            std::net::TcpListener::bind(opts.listen).map_err(io("binding the listen address"))?;
        listener
            .set_nonblocking(true)
            .map_err(io("configuring the listener"))?;
        let addr = listener
            .local_addr()
            .map_err(io("reading the listen address"))?;
        let host = match addr.ip() {
            IpAddr::V4(ip) if ip.is_unspecified() => "127.0.0.1".to_owned(),
            IpAddr::V4(ip) => ip.to_string(),
            IpAddr::V6(ip) if ip.is_unspecified() => "[::1]".to_owned(),
            IpAddr::V6(ip) => format!("[{ip}]"),
        };
        let scheme = if opts.tls { "https" } else { "http" };
        let base: Arc<str> = format!("{scheme}://{host}:{}", addr.port()).into();

        let fingerprint = crate::persist::fingerprint(&scenario);
        let persist_dir = opts.state_dir.clone().filter(|_| opts.persist);
        let resumed = persist_dir
            .as_deref()
            .and_then(|dir| crate::persist::load(dir, &fingerprint, &base));
        let (state, key) = match resumed {
            Some((state, key)) => (state, key),
            None => {
                let key = tokio::task::spawn_blocking(SigningKey::generate)
                    .await
                    .map_err(|e| SimError::Crypto(e.to_string()))??;
                (State::new(scenario, &base), key)
            }
        };
        let ctx = Ctx {
            state: Arc::new(Mutex::new(state)),
            key: Arc::new(key),
            base: base.clone(),
            trust_forwarded_for: opts.trust_forwarded_for,
            cloud: &crate::wellknown::CLOUDS[0],
            root: base.clone(),
        };
        let router = crate::routes::router(ctx.clone());
        let make = {
            let ctx = ctx.clone();
            tower::service_fn(move |peer: SocketAddr| {
                let svc = ConnService {
                    router: router.clone(),
                    ctx: ctx.clone(),
                    peer,
                };
                async move { Ok::<_, Infallible>(svc) }
            })
        };
        let handle = axum_server::Handle::new();
        let (ca_pem, task) = if opts.tls {
            let (material, ca_pem) = match &opts.tls_cert_files {
                Some((cert, key)) => {
                    let cert_pem = std::fs::read_to_string(cert)
                        .map_err(io("reading the TLS certificate file"))?;
                    let key_pem =
                        std::fs::read_to_string(key).map_err(io("reading the TLS key file"))?;
                    // With given files the chain's last certificate is what clients must trust.
                    let ca = cert_pem
                        .rsplit_once("-----BEGIN CERTIFICATE-----")
                        .map(|(_, last)| format!("-----BEGIN CERTIFICATE-----{last}"))
                        .unwrap_or_else(|| cert_pem.clone());
                    (
                        TlsMaterial {
                            ca_pem: ca.clone(),
                            cert_pem,
                            key_pem: key_pem.into(),
                        },
                        ca,
                    )
                }
                None => {
                    let m = TlsMaterial::generate()?;
                    let ca = m.ca_pem.clone();
                    (m, ca)
                }
            };
            let config = rustls_config(&material)?;
            // TCP_NODELAY: without it, the second of two answers written on one connection (HTTP/2
            // streams of concurrent requests) waits for the client's delayed ACK, 40 ms on Linux.
            let acceptor = axum_server::tls_rustls::RustlsAcceptor::new(config)
                .acceptor(axum_server::accept::NoDelayAcceptor::new());
            let server = axum_server::from_tcp(listener)
                .map_err(io("starting the TLS listener"))?
                .acceptor(acceptor)
                .handle(handle.clone());
            (ca_pem, tokio::spawn(server.serve(make)))
        } else {
            let server = axum_server::from_tcp(listener)
                .map_err(io("starting the listener"))?
                .acceptor(axum_server::accept::NoDelayAcceptor::new())
                .handle(handle.clone());
            (String::new(), tokio::spawn(server.serve(make)))
        };
        let ca_pem_path = match (&opts.state_dir, opts.tls) {
            (Some(dir), true) => {
                std::fs::create_dir_all(dir).map_err(io("creating the state directory"))?;
                let path = dir.join("ca.pem");
                std::fs::write(&path, &ca_pem).map_err(io("writing ca.pem"))?;
                Some(path)
            }
            _ => None,
        };
        let saver = match persist_dir {
            Some(dir) => {
                std::fs::create_dir_all(&dir).map_err(io("creating the state directory"))?;
                let (ctx2, dir2, fp2) = (ctx.clone(), dir.clone(), fingerprint.clone());
                let task = tokio::spawn(async move {
                    let mut last = String::new();
                    loop {
                        save(&ctx2, &dir2, &fp2, &mut last);
                        tokio::time::sleep(std::time::Duration::from_secs(1)).await;
                    }
                });
                Some(Saver {
                    dir,
                    fingerprint,
                    task,
                })
            }
            None => None,
        };
        tracing::info!(base_url = %ctx.base, "entra-sim listening");
        Ok(RunningSim {
            ctx,
            addr,
            ca_pem,
            ca_pem_path,
            handle,
            task,
            saver,
        })
    }

    /// `https://127.0.0.1:PORT` — stands for `https://login.microsoftonline.com`.
    pub fn base_url(&self) -> &str {
        &self.ctx.base
    }

    /// The authority host (same as [`base_url`](Self::base_url)); append `/{tenant}`.
    pub fn authority(&self) -> String {
        self.ctx.base.to_string()
    }

    /// The authority of one tenant: `{base}/{tenant}`.
    pub fn tenant_authority(&self, tenant: &str) -> String {
        format!("{}/{tenant}", self.ctx.base)
    }

    /// The token endpoint of a tenant.
    pub fn token_endpoint(&self, tenant: &str) -> String {
        format!("{}/{tenant}/oauth2/v2.0/token", self.ctx.base)
    }

    /// Microsoft Graph v1.0 base: `{base}/v1.0`.
    pub fn graph_base(&self) -> String {
        format!("{}/v1.0", self.ctx.base)
    }

    /// A cloud's authority, standing for `https://login.microsoftonline.us` and the like: the
    /// global cloud's is [`authority`](Self::authority), another's `{base}/clouds/<key>`.
    pub fn cloud_authority(&self, cloud: &str) -> String {
        crate::ctx::Ctx::cloud_base(&self.ctx.root, cloud)
    }

    /// A cloud's Graph v1.0 base: `{cloud authority}/v1.0`.
    pub fn cloud_graph_base(&self, cloud: &str) -> String {
        format!("{}/v1.0", self.cloud_authority(cloud))
    }

    /// The Viva Engage (Yammer) REST API base, standing for `https://www.yammer.com`:
    /// `{base}/yammer` (the API answers under `{base}/yammer/api/v1/…`).
    pub fn viva_engage_base(&self) -> String {
        format!("{}{}", self.ctx.base, crate::wellknown::YAMMER_PATH_PREFIX)
    }

    /// The local address the server is bound to.
    pub fn local_addr(&self) -> SocketAddr {
        self.addr
    }

    /// PEM of the CA clients must trust (empty for plain http).
    pub fn ca_pem(&self) -> &str {
        &self.ca_pem
    }

    /// Where `ca.pem` was written, if a state directory was given.
    pub fn ca_pem_path(&self) -> Option<&Path> {
        self.ca_pem_path.as_deref()
    }

    /// Direct access to the control operations (the same as the `/_sim/` API).
    pub fn control(&self) -> SimControl {
        SimControl::new(self.ctx.clone())
    }

    /// Stops the server, letting open requests finish for up to a second (and saves the state when
    /// [`SimOptions::persist`] is on).
    pub async fn shutdown(self) {
        self.handle
            .graceful_shutdown(Some(std::time::Duration::from_secs(1)));
        let _ = self.task.await;
        if let Some(saver) = self.saver {
            saver.task.abort();
            save(
                &self.ctx,
                &saver.dir,
                &saver.fingerprint,
                &mut String::new(),
            );
        }
    }
}

fn rustls_config(m: &TlsMaterial) -> Result<axum_server::tls_rustls::RustlsConfig, SimError> {
    use rustls::pki_types::pem::PemObject;
    use rustls::pki_types::{CertificateDer, PrivateKeyDer};
    let err = |e: &dyn std::fmt::Display| SimError::Crypto(format!("TLS configuration: {e}"));
    let certs = CertificateDer::pem_slice_iter(m.cert_pem.as_bytes())
        .collect::<Result<Vec<_>, _>>()
        .map_err(|e| err(&e))?;
    let key =
        PrivateKeyDer::from_pem_slice(m.key_pem.expose_secret().as_bytes()).map_err(|e| err(&e))?;
    let provider = Arc::new(rustls::crypto::aws_lc_rs::default_provider());
    let mut config = rustls::ServerConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .map_err(|e| err(&e))?
        .with_no_client_auth()
        .with_single_cert(certs, key)
        .map_err(|e| err(&e))?;
    config.alpn_protocols = vec![b"h2".to_vec(), b"http/1.1".to_vec()];
    Ok(axum_server::tls_rustls::RustlsConfig::from_config(
        Arc::new(config),
    ))
}

/// Per-connection service: records the peer address and applies fault rules before routing.
#[derive(Clone)]
struct ConnService {
    router: Router,
    ctx: Ctx,
    peer: SocketAddr,
}

impl<B> Service<Request<B>> for ConnService
where
    B: HttpBody<Data = Bytes> + Send + 'static,
    B::Error: Into<BoxError>,
{
    type Response = Response;
    type Error = BoxError;
    type Future = Pin<Box<dyn Future<Output = Result<Response, BoxError>> + Send>>;

    fn poll_ready(&mut self, _cx: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        Poll::Ready(Ok(()))
    }

    fn call(&mut self, req: Request<B>) -> Self::Future {
        let mut req = req.map(Body::new);
        req.extensions_mut().insert(ConnectInfo(self.peer));
        let path = req.uri().path().to_owned();
        let (fault, retry_default) = {
            let st = self.ctx.lock();
            let fault = crate::faults::pick(&st.faults, &path);
            (fault, st.settings.token_retry_after_secs)
        };
        let router = self.router.clone();
        Box::pin(async move {
            if let Some(f) = fault {
                if f.latency_ms > 0 {
                    crate::faults::added_latency(f.latency_ms).await;
                }
                if f.drop_connection {
                    return Err("connection dropped by an entra-sim fault rule".into());
                }
                if let Some(status) = f.status {
                    return Ok(f.response(&path, status, retry_default));
                }
            }
            match router.oneshot(req).await {
                Ok(resp) => Ok(resp),
                Err(never) => match never {},
            }
        })
    }
}

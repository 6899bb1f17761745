//! `consentry-bench`: the drivers behind `bench/*.sh`. Each subcommand prints one JSON object on
//! stdout (the scripts turn them into the results table); progress goes to stderr.

/// mimalloc instead of the C library's allocator: a health sweep spends about a tenth of its CPU
/// allocating and freeing; with mimalloc a check costs about 6 % less CPU (A/B of sweeps, docs/PERFORMANCE.md).
#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::{Context, bail};
use clap::{Parser, Subcommand};
use consentry_bench::procfs::{cpu_seconds, machine, rss_kb};
use consentry_bench::scenario::{bench_scenario, custom_app_id, tenant_id};
use consentry_bench::seed::{SeedPlan, seed};
use consentry_bench::sign::{DEMO_PFX, DEMO_PFX_PASSWORD};
use consentry_bench::stats::percentile;
use consentry_certs::AssertionAlg;
use consentry_domain::{AppId, ClientRef, IdentityPlatform, OffsetClock, TenantId};
use consentry_monitor::{Monitor, MonitorConfig};
use secrecy::{SecretSlice, SecretString};
use serde_json::{Value, json};

#[derive(Debug, Parser)]
#[command(
    name = "consentry-bench",
    about = "Consentry benchmark drivers (see bench/run.sh)"
)]
struct Cli {
    #[command(subcommand)]
    cmd: Cmd,
}

#[derive(Debug, Subcommand)]
enum Cmd {
    /// The machine (nproc, CPU model, RAM).
    Machine,
    /// RS256 client-assertion signatures per second on all cores, and CPU per signature.
    Sign {
        /// Seconds to sign for.
        #[arg(long, default_value_t = 3.0)]
        seconds: f64,
        /// Threads (default: one per logical CPU).
        #[arg(long)]
        threads: Option<usize>,
    },
    /// A permission rollout over the configured (seeded) store: the catalog's next version adds an
    /// application permission to the seeded app type; times the first report (which enrolls every
    /// profile in one statement), then further reports (members read and assessed), each the median
    /// of `--runs`, against the baseline of counting the same profiles by status (one set-based
    /// statement over the same rows) in the same run.
    Rollout {
        /// Reports timed after the first (the median is printed).
        #[arg(long, default_value_t = 5)]
        runs: usize,
    },
    /// A consent campaign over the rollout of `rollout` (run it after `rollout`, on the same store):
    /// times starting the campaign (who is affected, a link per tenant, a member per profile, in
    /// one transaction) and reading it back in full, against the same baseline count.
    Campaign,
    /// An axum hello-world server: the baseline of the HTTP figures.
    Hello {
        /// Address to listen on.
        #[arg(long, default_value = "127.0.0.1:18090")]
        listen: SocketAddr,
    },
    /// entra-sim with `--tenants` bench tenants, each with a consented custom app.
    Sim {
        /// Bench tenants.
        #[arg(long, default_value_t = 100)]
        tenants: usize,
        /// Address to listen on.
        #[arg(long, default_value = "127.0.0.1:18443")]
        listen: SocketAddr,
        /// Where ca.pem is written.
        #[arg(long)]
        state_dir: PathBuf,
        /// Also serve `GET /token-requests` here (plain HTTP): the simulator's token requests per
        /// tenant, client and grant type (`SimControl::token_requests`), one of the sources of truth
        /// `bench/scaleout.sh` counts checks with.
        #[arg(long)]
        counts_listen: Option<SocketAddr>,
    },
    /// Seeds the configured store (CONSENTRY_* variables, as `consentry serve`) with profiles.
    Seed {
        /// Profiles.
        #[arg(long)]
        profiles: usize,
        /// Tenants they are spread over.
        #[arg(long, default_value_t = 100)]
        tenants: usize,
        /// Every Nth profile is stored invalid (0: none).
        #[arg(long, default_value_t = 0)]
        invalid_every: usize,
        /// Also create a platform console account and session, and a service API key.
        #[arg(long)]
        credentials: bool,
        /// Tenants per organization (default 10).
        #[arg(long, default_value_t = 0)]
        tenants_per_org: usize,
    },
    /// Runs the monitor over the configured store until `--checks` checks completed.
    Sweep {
        /// Checks to run.
        #[arg(long)]
        checks: u64,
        /// Latency entra-sim adds to every token request (ms).
        #[arg(long, default_value_t = 0)]
        latency_ms: u64,
        /// The simulator's base URL (for its control API).
        #[arg(long)]
        sim: String,
        /// The simulator's process ID (its CPU time is reported).
        #[arg(long)]
        sim_pid: Option<u32>,
        /// Checks at once.
        #[arg(long, default_value_t = 16)]
        concurrency: usize,
        /// Checks at once per tenant.
        #[arg(long, default_value_t = 4)]
        per_tenant: usize,
        /// Moves Consentry's clock forward by this many hours first (so that checked profiles are due again).
        #[arg(long, default_value_t = 0)]
        clock_hours: i64,
    },
    /// A sweep of every seeded profile with entra-sim enforcing Microsoft's documented throttling
    /// limits: 429s answered, duration, and the limit-implied minimum (`consentry_bench::throttle`).
    Throttle {
        /// Checks to wait for (the seeded profiles).
        #[arg(long)]
        checks: u64,
        /// The simulator's base URL (for its control API).
        #[arg(long)]
        sim: String,
        /// Checks at once.
        #[arg(long, default_value_t = 16)]
        concurrency: usize,
        /// Checks at once per tenant.
        #[arg(long, default_value_t = 4)]
        per_tenant: usize,
    },
    /// entra-sim's capacity: the identity-platform calls of one certificate-based check, run
    /// `--concurrency` at once through the Entra adapter with no store.
    SimCapacity {
        /// Seconds to run.
        #[arg(long, default_value_t = 5.0)]
        seconds: f64,
        /// Calls at once.
        #[arg(long, default_value_t = 32)]
        concurrency: usize,
        /// Bench tenants to spread over.
        #[arg(long, default_value_t = 100)]
        tenants: usize,
        /// The simulator's process ID.
        #[arg(long)]
        sim_pid: Option<u32>,
        /// Milliseconds entra-sim adds to every round trip (as in `sweep`): the identity platform's
        /// own rate at that latency, without the store or the monitor.
        #[arg(long, default_value_t = 0)]
        latency_ms: u64,
    },
    /// GETs a URL `--requests` times one after another; prints p50/p95/p99 in ms.
    Latency {
        /// The URL.
        #[arg(long)]
        url: String,
        /// Requests.
        #[arg(long, default_value_t = 200)]
        requests: usize,
        /// Bearer token.
        #[arg(long)]
        bearer: Option<String>,
        /// Cookie header value.
        #[arg(long)]
        cookie: Option<String>,
    },
    /// Times the monitor's lease (`ScheduleStore::lease_due_checks` of `--limit` due profiles, as the
    /// monitor calls it) on the configured (seeded) store, `--leases` times after 5 untimed ones, p50/p95 in ms; each
    /// lease's profiles are then released untimed, as the monitor releases them, due again at the
    /// lease's time (behind every profile due earlier, and still due for a sweep measured next). Baseline of the same run: a primary-key read of the schedule through the same store
    /// (`check_schedule` of an absent profile, one round trip), as many times.
    Lease {
        /// Leases timed.
        #[arg(long, default_value_t = 50)]
        leases: usize,
        /// Profiles per lease (default: the monitor's batch, `[monitor] batch`).
        #[arg(long)]
        limit: Option<u32>,
    },
    /// Samples a process's resident memory every 100 ms until it exits or `--seconds` pass.
    Rss {
        /// The process.
        #[arg(long)]
        pid: u32,
        /// Seconds to sample.
        #[arg(long, default_value_t = 10.0)]
        seconds: f64,
    },
}

fn main() -> anyhow::Result<()> {
    tracing_subscriber::fmt()
        .with_writer(std::io::stderr)
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_env("CONSENTRY_LOG")
                .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("error")),
        )
        .init();
    let cli = Cli::parse();
    if let Cmd::Sign { seconds, threads } = &cli.cmd {
        let threads = threads.unwrap_or_else(|| {
            std::thread::available_parallelism().map_or(1, std::num::NonZero::get)
        });
        let all = consentry_bench::sign::measure(
            threads,
            Duration::from_secs_f64(*seconds),
            AssertionAlg::Rs256X5t,
        )?;
        let one = consentry_bench::sign::measure(
            1,
            Duration::from_secs_f64(*seconds / 2.0),
            AssertionAlg::Rs256X5t,
        )?;
        let pfx = consentry_bench::sign::pfx_open_cpu_secs(50)?;
        print(&json!({"all_cores": all, "one_thread": one, "pfx_open_cpu_secs": pfx}));
        return Ok(());
    }
    let rt = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()?;
    rt.block_on(run(cli.cmd))
}

fn print(v: &Value) {
    println!("{v}");
}

fn config() -> anyhow::Result<consentry_server::Config> {
    Ok(consentry_server::Config::load(
        None,
        std::env::vars().collect::<Vec<(String, String)>>(),
    )?)
}

async fn run(cmd: Cmd) -> anyhow::Result<()> {
    match cmd {
        Cmd::Machine => print(&json!({"machine": machine()})),
        Cmd::Rollout { runs } => print(&rollout(runs).await?),
        Cmd::Campaign => print(&campaign().await?),
        Cmd::Sign { .. } => unreachable!("handled before the runtime starts"),
        Cmd::Hello { listen } => hello(listen).await?,
        Cmd::Sim {
            tenants,
            listen,
            state_dir,
            counts_listen,
        } => {
            let sim = entra_sim::RunningSim::start(
                bench_scenario(tenants),
                entra_sim::SimOptions {
                    listen,
                    state_dir: Some(state_dir),
                    ..entra_sim::SimOptions::default()
                },
            )
            .await?;
            if let Some(addr) = counts_listen {
                serve_token_requests(addr, sim.control()).await?;
            }
            print(&json!({"sim": sim.base_url(), "pid": std::process::id()}));
            consentry_server::startup::shutdown_signal().await;
        }
        Cmd::Seed {
            profiles,
            tenants,
            invalid_every,
            credentials,
            tenants_per_org,
        } => {
            let cfg = config()?;
            let state = consentry_server::build_state(&cfg).await?;
            // The profiles are written to the store directly: a handle of its own on the database
            // `build_state` opened and migrated.
            let store = consentry_store::SqlStore::open(
                &cfg.database_url(),
                consentry_server::startup::load_sealer(&cfg)?,
            )
            .await?;
            let seeded = seed(
                &state.svc,
                store,
                SeedPlan {
                    profiles,
                    tenants,
                    invalid_every,
                    tenants_per_org,
                    parallel: 4,
                },
            )
            .await?;
            let mut out = serde_json::to_value(&seeded)?;
            if credentials {
                let (session, key) = credentials_for(&state, &seeded.first_org).await?;
                out["session"] = json!(session);
                out["api_key"] = json!(key);
            }
            print(&out);
        }
        Cmd::Sweep {
            checks,
            latency_ms,
            sim,
            sim_pid,
            concurrency,
            per_tenant,
            clock_hours,
        } => {
            sweep(
                checks,
                latency_ms,
                &sim,
                sim_pid,
                concurrency,
                per_tenant,
                clock_hours,
            )
            .await?;
        }
        Cmd::Throttle {
            checks,
            sim,
            concurrency,
            per_tenant,
        } => print(
            &consentry_bench::throttle::run(&consentry_bench::throttle::ThrottleSweep {
                checks,
                sim,
                concurrency,
                per_tenant,
            })
            .await?,
        ),
        Cmd::SimCapacity {
            seconds,
            concurrency,
            tenants,
            sim_pid,
            latency_ms,
        } => sim_capacity(seconds, concurrency, tenants, sim_pid, latency_ms).await?,
        Cmd::Latency {
            url,
            requests,
            bearer,
            cookie,
        } => latency(&url, requests, bearer, cookie).await?,
        Cmd::Lease { leases, limit } => print(&lease(leases, limit).await?),
        Cmd::Rss { pid, seconds } => {
            let until = Instant::now() + Duration::from_secs_f64(seconds);
            let pid = pid.to_string();
            let mut samples = Vec::new();
            while Instant::now() < until {
                match rss_kb(&pid) {
                    Ok((rss, _)) => samples.push(rss as f64),
                    Err(_) => break,
                }
                tokio::time::sleep(Duration::from_millis(100)).await;
            }
            let max = samples.iter().copied().fold(0.0, f64::max);
            print(&json!({"samples": samples.len(), "max_rss_mb": max / 1024.0}));
        }
    }
    Ok(())
}

/// The hello-world baseline: `GET /` answers a short text, `POST /api/v1/tenants/{t}/tokens` a fixed
/// JSON body of the token API's shape (so the same load script drives both).
async fn hello(listen: SocketAddr) -> anyhow::Result<()> {
    use axum::routing::{get, post};
    let app = axum::Router::new()
        .route("/", get(|| async { "Hello, World!" }))
        .route("/healthz", get(|| async { "ok" }))
        .route(
            "/api/v1/tenants/{tenant}/tokens",
            post(|| async {
                axum::Json(json!({
                    "access_token": "x".repeat(1200),
                    "token_type": "Bearer",
                    "expires_at": "2030-01-01T00:00:00Z",
                    "profile_id": "00000000-0000-4000-8000-000000000000",
                    "cached": true,
                }))
            }),
        );
    let listener = tokio::net::TcpListener::bind(listen).await?;
    eprintln!("hello-world baseline on http://{}", listener.local_addr()?);
    // TCP_NODELAY like `consentry serve`, so that the baseline differs only in what it answers.
    let listener = axum::serve::ListenerExt::tap_io(listener, |tcp| {
        let _ = tcp.set_nodelay(true);
    });
    axum::serve(listener, app)
        .with_graceful_shutdown(consentry_server::startup::shutdown_signal())
        .await?;
    Ok(())
}

/// `GET /token-requests` on `addr`: the simulator's token requests so far, one JSON object per tenant,
/// client and grant type (`{"tenant_id", "client_id", "grant_type", "count"}`).
async fn serve_token_requests(
    addr: SocketAddr,
    control: entra_sim::SimControl,
) -> anyhow::Result<()> {
    use axum::routing::get;
    let app = axum::Router::new().route(
        "/token-requests",
        get(move || {
            let control = control.clone();
            async move {
                let rows: Vec<Value> = control
                    .token_requests()
                    .into_iter()
                    .map(|r| {
                        json!({
                            "tenant_id": r.tenant_id,
                            "client_id": r.client_id,
                            "grant_type": r.grant_type,
                            "count": r.count,
                        })
                    })
                    .collect();
                axum::Json(rows)
            }
        }),
    );
    let listener = tokio::net::TcpListener::bind(addr).await?;
    tokio::spawn(async move {
        if let Err(e) = axum::serve(listener, app).await {
            eprintln!("the token-request counts server stopped: {e}");
        }
    });
    Ok(())
}

/// A platform operator account with a session (for the console) and a service API key of `org`
/// (for the token API).
async fn credentials_for(
    state: &consentry_server::AppState,
    org: &str,
) -> anyhow::Result<(String, String)> {
    use secrecy::ExposeSecret as _;
    let accounts = &state.console.accounts;
    let password = SecretString::from(format!("bench-{}", uuid::Uuid::new_v4()));
    let name = format!("bench{}", &uuid::Uuid::new_v4().simple().to_string()[..8]);
    accounts
        .create(&name, &password, consentry_domain::AccountScope::Platform)
        .await?;
    let session = accounts
        .sign_in(&name, &password, None)
        .await?
        .context("the new bench account could not sign in")?;
    let org = consentry_domain::OrgId::parse(org)?;
    let key = consentry_domain::ApiKeys::new(state.svc.clone())
        .create(&consentry_domain::Caller::platform("bench"), org, "bench")
        .await?;
    Ok((
        session.token.expose_secret().to_string(),
        key.key.expose_secret().to_string(),
    ))
}

/// A client of the simulator's control API.
fn sim_client() -> anyhow::Result<reqwest::Client> {
    let mut b = reqwest::Client::builder();
    if let Ok(ca) = std::env::var("CONSENTRY_ENTRA__EXTRA_CA_FILE") {
        let pem = std::fs::read(&ca).with_context(|| format!("reading {ca}"))?;
        b = b.add_root_certificate(reqwest::Certificate::from_pem(&pem)?);
    }
    Ok(b.build()?)
}

async fn set_latency(sim: &str, latency_ms: u64) -> anyhow::Result<()> {
    let faults = if latency_ms == 0 {
        json!([])
    } else {
        // Every round trip to Microsoft waits: the token request and each Graph exchange (a
        // `$batch` waits once).
        json!([
            {"endpoint": "token", "rate": 1.0, "latency_ms": latency_ms},
            {"endpoint": "graph", "rate": 1.0, "latency_ms": latency_ms},
        ])
    };
    let resp = sim_client()?
        .post(format!("{sim}/_sim/ops"))
        .json(&json!({"op": "set_faults", "faults": faults}))
        .send()
        .await?;
    if !resp.status().is_success() {
        bail!(
            "the simulator refused the latency rule: {}",
            resp.text().await?
        );
    }
    Ok(())
}

#[allow(clippy::too_many_arguments)]
async fn sweep(
    checks: u64,
    latency_ms: u64,
    sim: &str,
    sim_pid: Option<u32>,
    concurrency: usize,
    per_tenant: usize,
    clock_hours: i64,
) -> anyhow::Result<()> {
    set_latency(sim, latency_ms).await?;
    let cfg = config()?;
    let clock = Arc::new(OffsetClock::default());
    clock.advance(time::Duration::hours(clock_hours));
    let state = consentry_server::build_state_with_clock(&cfg, clock).await?;
    let checker = state.checker.clone();
    let monitor = Monitor::new(
        checker.clone(),
        MonitorConfig {
            worker_id: format!("bench-{}", uuid::Uuid::new_v4()),
            poll: Duration::from_millis(100),
            // The batch `consentry serve` leases (`[monitor] batch`).
            batch: cfg.monitor.batch,
            max_concurrent: concurrency,
            max_per_tenant: per_tenant,
            ..MonitorConfig::default()
        },
    );
    let done = || -> u64 { checker.stats().snapshot().outcomes.values().sum() };
    let sim_cpu = || sim_pid.and_then(|p| cpu_seconds(&p.to_string()).ok());
    let (tx, rx) = tokio::sync::oneshot::channel::<()>();
    let started = Instant::now();
    let handle = tokio::spawn(monitor.run(async {
        let _ = rx.await;
    }));
    // The rate is taken between 5% and 100% of the checks: the first sweep also schedules every
    // profile (one statement over the whole table), which is not a per-check cost.
    let warm = (checks / 20).max(1);
    let mut window: Option<(Instant, u64, f64, Option<f64>)> = None;
    let mut max_rss = 0u64;
    let mut last_progress = Instant::now();
    loop {
        tokio::time::sleep(Duration::from_millis(20)).await;
        let n = done();
        if window.is_none() && n >= warm {
            window = Some((Instant::now(), n, cpu_seconds("self")?, sim_cpu()));
        }
        if let Ok((rss, _)) = rss_kb("self") {
            max_rss = max_rss.max(rss);
        }
        if n >= checks {
            break;
        }
        if last_progress.elapsed() > Duration::from_secs(10) {
            eprintln!("  … {n}/{checks} checks");
            last_progress = Instant::now();
        }
        if started.elapsed() > Duration::from_secs(1800) {
            bail!("the sweep did not finish {checks} checks in 30 minutes ({n} done)");
        }
    }
    let (t0, n0, cpu0, sim0) = window.context("no check completed")?;
    let n1 = done();
    let secs = t0.elapsed().as_secs_f64();
    let cpu1 = cpu_seconds("self")?;
    let sim1 = sim_cpu();
    let _ = tx.send(());
    let _ = handle.await;
    let measured = (n1 - n0).max(1) as f64;
    let snapshot = checker.stats().snapshot();
    // Every check of the run, those in flight at the stop included (they finish before `run` ends).
    let all_checks: u64 = snapshot.outcomes.values().sum();
    let outcomes: BTreeMap<String, u64> = snapshot
        .outcomes
        .iter()
        .map(|((label, reason), n)| {
            let k = if reason.is_empty() {
                label.clone()
            } else {
                format!("{label}:{reason}")
            };
            (k, *n)
        })
        .collect();
    print(&json!({
        "checks": n1,
        "all_checks": all_checks,
        "measured_checks": n1 - n0,
        "seconds": secs,
        "checks_per_sec": measured / secs,
        "cpu_secs_per_check": (cpu1 - cpu0) / measured,
        "sim_cpu_secs_per_check": sim0.zip(sim1).map(|(a, b)| (b - a) / measured),
        "latency_ms": latency_ms,
        "concurrency": concurrency,
        "max_rss_mb": max_rss as f64 / 1024.0,
        "outcomes": outcomes,
        "platform_errors": snapshot.platform_errors,
    }));
    Ok(())
}

async fn sim_capacity(
    seconds: f64,
    concurrency: usize,
    tenants: usize,
    sim_pid: Option<u32>,
    latency_ms: u64,
) -> anyhow::Result<()> {
    set_latency(
        &std::env::var("CONSENTRY_ENTRA__AUTHORITY").context("CONSENTRY_ENTRA__AUTHORITY")?,
        latency_ms,
    )
    .await?;
    let cfg = config()?;
    let catalog = Arc::new(consentry_server::startup::load_catalog(&cfg)?);
    let platform: Arc<dyn IdentityPlatform> =
        Arc::new(consentry_server::startup::build_platform(&cfg, &catalog)?);
    let until = Instant::now() + Duration::from_secs_f64(seconds);
    let sim_cpu = || sim_pid.and_then(|p| cpu_seconds(&p.to_string()).ok());
    let (cpu0, sim0, t0) = (cpu_seconds("self")?, sim_cpu(), Instant::now());
    let mut tasks = tokio::task::JoinSet::new();
    for w in 0..concurrency.max(1) {
        let platform = platform.clone();
        tasks.spawn(async move {
            let (mut ok, mut failed) = (0u64, 0u64);
            let mut i = w;
            while Instant::now() < until {
                let t = i % tenants.max(1);
                i += concurrency;
                let (Ok(tenant), Ok(app_id)) = (
                    TenantId::parse(&tenant_id(t).to_string()),
                    AppId::parse(&custom_app_id(t).to_string()),
                ) else {
                    failed += 1;
                    continue;
                };
                let client = ClientRef::Custom {
                    app_id,
                    pfx: SecretSlice::from(DEMO_PFX.to_vec()),
                    password: SecretString::from(DEMO_PFX_PASSWORD),
                };
                match platform
                    .grants(
                        &consentry_domain::TenantAt::new(
                            tenant,
                            consentry_domain::CloudKey::global(),
                        ),
                        &client,
                    )
                    .await
                {
                    Ok(_) => ok += 1,
                    Err(_) => failed += 1,
                }
            }
            (ok, failed)
        });
    }
    let (mut ok, mut failed) = (0, 0);
    while let Some(r) = tasks.join_next().await {
        let (o, f) = r?;
        ok += o;
        failed += f;
    }
    let secs = t0.elapsed().as_secs_f64();
    let n = ok.max(1) as f64;
    let sim_cpu_per = sim0.zip(sim_cpu()).map(|(a, b)| (b - a) / n);
    let cores = std::thread::available_parallelism().map_or(1, std::num::NonZero::get) as f64;
    print(&json!({
        "checks_per_sec": ok as f64 / secs,
        "failed": failed,
        "client_cpu_secs_per_check": (cpu_seconds("self")? - cpu0) / n,
        "sim_cpu_secs_per_check": sim_cpu_per,
        // What the simulator could serve with every core to itself.
        "sim_capacity_per_sec_all_cores": sim_cpu_per.map(|c| cores / c),
    }));
    Ok(())
}

/// The `lease` subcommand: the monitor's lease timed on the configured store against a one-round-trip
/// read of the same store.
async fn lease(leases: usize, limit: Option<u32>) -> anyhow::Result<Value> {
    use consentry_domain::ScheduleStore as _;
    let cfg = config()?;
    let limit = limit.unwrap_or(cfg.monitor.batch);
    let store = consentry_store::SqlStore::open(
        &cfg.database_url(),
        consentry_server::startup::load_sealer(&cfg)?,
    )
    .await?;
    let absent = consentry_domain::ProfileId::new_random();
    let worker = format!("bench-lease-{}", std::process::id());
    let mut lease_ms = Vec::with_capacity(leases);
    let mut read_ms = Vec::with_capacity(leases);
    let mut leased = 0;
    // Warm up the pool's connections and the database's caches, as a running monitor has them: the
    // first leases on a connection also prepare and plan the statement (untimed, like the reads).
    const WARM_UP: usize = 5;
    for i in 0..WARM_UP + leases {
        let timed = i >= WARM_UP;
        let t = Instant::now();
        store.check_schedule(absent).await?;
        if timed {
            read_ms.push(t.elapsed().as_secs_f64() * 1000.0);
        }
        let now = time::OffsetDateTime::now_utc();
        let t = Instant::now();
        let got = store
            .lease_due_checks(&worker, now, limit, time::Duration::minutes(5))
            .await?;
        let elapsed = t.elapsed().as_secs_f64() * 1000.0;
        if got.is_empty() {
            // A small store runs out of due profiles: the leases so far are the figure.
            if leased == 0 {
                bail!("no profile was due: seed the store first");
            }
            read_ms.truncate(lease_ms.len());
            break;
        }
        if timed {
            lease_ms.push(elapsed);
            leased += got.len();
        }
        for l in got {
            store
                .release_check(l.profile_id, &worker, now, None)
                .await?;
        }
    }
    let p50 = percentile(&mut lease_ms, 50.0);
    let p95 = percentile(&mut lease_ms, 95.0);
    let base50 = percentile(&mut read_ms, 50.0);
    let base95 = percentile(&mut read_ms, 95.0);
    store.close().await;
    Ok(json!({
        "leases": lease_ms.len(),
        "limit": limit,
        "leased": leased,
        "lease_p50_ms": p50,
        "lease_p95_ms": p95,
        "lease_max_ms": lease_ms.last(),
        "baseline_p50_ms": base50,
        "baseline_p95_ms": base95,
    }))
}

async fn latency(
    url: &str,
    requests: usize,
    bearer: Option<String>,
    cookie: Option<String>,
) -> anyhow::Result<()> {
    let client = reqwest::Client::builder().build()?;
    let get = || {
        let mut r = client.get(url);
        if let Some(b) = &bearer {
            r = r.bearer_auth(b);
        }
        if let Some(c) = &cookie {
            r = r.header(reqwest::header::COOKIE, c);
        }
        r
    };
    // Warm up the connection and the database's caches.
    for _ in 0..5 {
        let resp = get().send().await?;
        if !resp.status().is_success() {
            bail!(
                "GET {url} answered {}: {}",
                resp.status(),
                resp.text().await?
            );
        }
        resp.bytes().await?;
    }
    let mut ms = Vec::with_capacity(requests);
    let mut bytes = 0;
    for _ in 0..requests {
        let t = Instant::now();
        let resp = get().send().await?;
        let status = resp.status();
        let body = resp.bytes().await?;
        ms.push(t.elapsed().as_secs_f64() * 1000.0);
        if !status.is_success() {
            bail!("GET {url} answered {status}");
        }
        bytes = body.len();
    }
    print(&json!({
        "requests": requests,
        "p50_ms": percentile(&mut ms, 50.0),
        "p95_ms": percentile(&mut ms, 95.0),
        "p99_ms": percentile(&mut ms, 99.0),
        "body_bytes": bytes,
    }));
    Ok(())
}

/// The median of `samples` (sorted in place).
fn median(samples: &mut [f64]) -> f64 {
    samples.sort_by(f64::total_cmp);
    samples.get(samples.len() / 2).copied().unwrap_or(0.0)
}

/// `Cmd::Rollout`: see its documentation.
/// The state over the seeded store with the catalog's next version adding an application permission to
/// the seeded app type (`custom-azure-app`), and that version.
async fn released_state() -> anyhow::Result<(consentry_server::AppState, u32)> {
    let mut cfg = config()?;
    let release = cfg.data_dir.join("bench-rollout-catalog.toml");
    std::fs::create_dir_all(&cfg.data_dir)?;
    std::fs::write(
        &release,
        consentry_catalog::with_permission_added(
            consentry_catalog::BUILTIN_TOML,
            "built-in catalog",
            "custom-azure-app",
            "AuditLog.Read.All",
            consentry_catalog::PermissionType::Role,
            false,
        )?,
    )?;
    cfg.catalog_file = Some(release);
    let state = consentry_server::build_state(&cfg).await?;
    Ok((state, consentry_catalog::Catalog::builtin().version + 1))
}

fn timed(started: std::time::Instant) -> f64 {
    started.elapsed().as_secs_f64() * 1000.0
}

async fn campaign() -> anyhow::Result<Value> {
    let (state, version) = released_state().await?;
    let caller = consentry_domain::Caller::platform("bench");
    let org = state
        .svc
        .organizations()
        .await?
        .first()
        .map(|o| o.id)
        .ok_or_else(|| anyhow::anyhow!("seed the store first"))?;
    let started = std::time::Instant::now();
    let c = state
        .campaigns
        .start(
            &caller,
            consentry_domain::CampaignRequest {
                org: Some(org),
                scope: consentry_domain::CampaignScope::Rollout { version },
                tenant: None,
                lifetime_days: None,
                remind_every_hours: None,
                send_invitations: true,
            },
        )
        .await?;
    let start_ms = timed(started);
    let started = std::time::Instant::now();
    let shown = state.campaigns.show(&caller, c.campaign.id).await?;
    let show_ms = timed(started);
    anyhow::ensure!(
        shown.summary.counts.profiles == c.campaign.counts.profiles,
        "the campaign changed"
    );
    let started = std::time::Instant::now();
    state
        .svc
        .profile_counts(&consentry_domain::ProfileFilter::default())
        .await?;
    let count_ms = timed(started);
    Ok(json!({
        "profiles": c.campaign.counts.profiles,
        "tenants": c.campaign.counts.tenants,
        "start_ms": start_ms,
        "show_ms": show_ms,
        "baseline_count_ms": count_ms,
        "start_ratio": start_ms / count_ms.max(0.001),
        "show_ratio": show_ms / count_ms.max(0.001),
    }))
}

async fn rollout(runs: usize) -> anyhow::Result<Value> {
    let (state, version) = released_state().await?;
    let caller = consentry_domain::Caller::platform("bench");
    let rollouts = consentry_domain::Rollouts::new(state.svc.clone());

    let started = std::time::Instant::now();
    let first = rollouts.show(&caller, version).await?;
    let enroll_ms = timed(started);
    let mut reports = Vec::new();
    let mut counts = Vec::new();
    for _ in 0..runs.max(1) {
        let started = std::time::Instant::now();
        let r = rollouts.show(&caller, version).await?;
        reports.push(timed(started));
        anyhow::ensure!(
            r.summary.profiles == first.summary.profiles,
            "the rollout changed"
        );
        let started = std::time::Instant::now();
        state
            .svc
            .profile_counts(&consentry_domain::ProfileFilter::default())
            .await?;
        counts.push(timed(started));
    }
    let report_ms = median(&mut reports);
    let count_ms = median(&mut counts);
    Ok(json!({
        "profiles": first.summary.profiles.total(),
        "tenants": first.summary.tenants,
        "first_report_ms": enroll_ms,
        "report_ms": report_ms,
        "baseline_count_ms": count_ms,
        "first_report_ratio": enroll_ms / count_ms.max(0.001),
        "report_ratio": report_ms / count_ms.max(0.001),
    }))
}

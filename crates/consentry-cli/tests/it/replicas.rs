//! Several replicas on one PostgreSQL database: three `consentry serve` processes (the built binary) on
//! loopback, entra-sim in this process, one fresh database.
//!
//! - 900 application-permission profiles across 300 tenants (seeded through the store, with tenants the
//!   simulator knows and has consented the vendor apps in) are swept by the three monitors, and each profile is
//!   checked exactly once: the simulator counts one client-credentials request per profile (one profile per
//!   tenant and app, so the count is per profile), the replicas' metrics add up to 900 checks, and every
//!   profile's `last_checked_at` moved.
//! - Then all are made due again and one replica is killed with SIGKILL while it holds leases. The others take
//!   its leases once they run out and finish: every profile is checked again; only profiles the killed replica
//!   held a lease on at its death may be checked twice (it may have reached Microsoft before dying), and at most
//!   `max_concurrent` of them (only that many of its checks run at once).
//! - A re-authorization started on one replica finishes on another (the OAuth callback reaches another
//!   process), a console session made on one replica works on another, and concurrent token requests for one
//!   profile spread over N replicas cause at most N acquisitions (each replica has its own token cache).
//!
//! Needs `CONSENTRY_TEST_POSTGRES_URL` (an admin URL of a role with CREATEDB; `scripts/ensure-postgres.sh`
//! prints one). Without it the test is skipped with a note, except in CI (`CI` set), where it fails. Waiting
//! is on conditions, each with a generous deadline so that a broken build fails instead of hanging; nothing
//! asserts on durations.

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::io::Write as _;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration as StdDuration, Instant};

use consentry_domain::catalog::{Catalog, ConsentMethod, PermissionType};
use consentry_domain::{
    Actor, ApiKey, ApiKeyStore as _, AppProfile, DomainName, EventKind, GrantedPermission,
    NewHistoryEvent, OrgId, Organization, ProfileId, ProfileStatus, Store, Tenant, TenantId,
};
use consentry_store::{Sealer, SqlStore};
use entra_sim::{RunningSim, Scenario, SimOptions};
use secrecy::ExposeSecret as _;
use sqlx::postgres::PgPoolOptions;
use sqlx::{AssertSqlSafe, PgPool};
use time::OffsetDateTime;
use uuid::Uuid;

/// Profiles swept (`CONSENTRY_REPLICA_TEST_PROFILES` overrides it, e.g. 10000 for a scale run). What the
/// test proves needs the three replicas to compete for the same due profiles for many sweeps, and a
/// round long enough to kill one mid-sweep: 900 profiles are over a hundred batches of [`BATCH`] and
/// several seconds of checking per round on two cores (each replica polls every second), so every
/// replica takes part in both rounds and the kill lands while leases are held; a larger number only
/// repeats the same races for longer.
const DEFAULT_PROFILES: usize = 900;
/// Application-permission app types (checked with client credentials only, no consent user): one profile
/// of each per tenant.
const APP_TYPES: [(&str, &str); 3] = [
    ("fly", "fly"),
    ("m365-all", "cloud-governance"),
    ("cloud-backup-m365-all", "cloud-backup-m365"),
];
const ORGS: usize = 40;
const REPLICAS: usize = 3;
/// Seconds a lease lasts: much longer than the checks of the batches a replica holds at once take (at
/// most 4 overlapping sweeps × BATCH, 8 at a time: a few seconds on a loaded machine), short enough to
/// wait for after the kill.
const LEASE_SECONDS: u64 = 20;
/// Profiles leased per sweep, and checks running at once per replica.
const BATCH: u64 = 8;
const MAX_CONCURRENT: u64 = 8;
const API_TOKEN: &str = "replicas-operator-token-0123456789";
const PASSWORD: &str = "Demo-Passw0rd!";
const CONSOLE_PASSWORD: &str = "replica-console-password";
/// Deadline of one wait (a hang guard, not an assertion on speed).
const DEADLINE: StdDuration = StdDuration::from_secs(900);

/// One `consentry serve` process; killed (SIGKILL) when dropped.
struct Replica {
    child: Option<Child>,
    pid: u32,
    base: String,
    log: PathBuf,
}

impl Drop for Replica {
    fn drop(&mut self) {
        if let Some(mut c) = self.child.take() {
            let _ = c.kill();
            let _ = c.wait();
        }
    }
}

impl Replica {
    /// The worker name this process uses in `check_schedule.lease_owner` ends with this.
    fn lease_suffix(&self) -> String {
        format!("-pid{}", self.pid)
    }

    fn log_tail(&self) -> String {
        let text = std::fs::read_to_string(&self.log).unwrap_or_default();
        let lines: Vec<&str> = text.lines().collect();
        lines[lines.len().saturating_sub(30)..].join("\n")
    }

    /// SIGKILL, and wait for the process to be gone.
    /// Sends `SIGname` (e.g. `STOP`, `CONT`) to the replica.
    fn signal(&self, name: &str) {
        let ok = Command::new("kill")
            .arg(format!("-{name}"))
            .arg(self.pid.to_string())
            .status()
            .expect("run kill");
        assert!(ok.success(), "kill -{name} {}", self.pid);
    }

    fn kill(&mut self) {
        if let Some(mut c) = self.child.take() {
            c.kill().expect("SIGKILL the replica");
            c.wait().expect("reap the replica");
        }
    }
}

/// A port free at the moment (the replica binds it right after).
fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

fn now_ns() -> i64 {
    i64::try_from(OffsetDateTime::now_utc().unix_timestamp_nanos()).unwrap()
}

/// Waits until `cond` answers `Some`, polling; panics with `what` (and the replicas' logs) at the deadline.
async fn wait_for<T, F, Fut>(what: &str, replicas: &[Replica], mut cond: F) -> T
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = Option<T>>,
{
    let start = Instant::now();
    loop {
        if let Some(v) = cond().await {
            return v;
        }
        if start.elapsed() > DEADLINE {
            let logs: Vec<String> = replicas
                .iter()
                .map(|r| format!("--- {} ---\n{}", r.base, r.log_tail()))
                .collect();
            panic!("gave up waiting for {what}\n{}", logs.join("\n"));
        }
        tokio::time::sleep(StdDuration::from_millis(250)).await;
    }
}

/// Everything a replica (or a CLI command) needs in its environment.
struct Installation {
    db_url: String,
    key_file: PathBuf,
    ca_file: PathBuf,
    dir: PathBuf,
    sim_authority: String,
    sim_graph: String,
    apps: Vec<(String, Uuid, String)>,
}

impl Installation {
    fn command(&self, data_dir: &Path) -> Command {
        let mut cmd = Command::new(env!("CARGO_BIN_EXE_consentry"));
        cmd.env_clear()
            .env("PATH", std::env::var("PATH").unwrap_or_default())
            .env("CONSENTRY_LOG", "warn")
            .env("CONSENTRY_DATABASE_URL", &self.db_url)
            .env("CONSENTRY_MASTER_KEY_FILE", &self.key_file)
            .env("CONSENTRY_DATA_DIR", data_dir)
            .env("CONSENTRY_API_TOKEN", API_TOKEN)
            .env("CONSENTRY_ENTRA__AUTHORITY", &self.sim_authority)
            .env("CONSENTRY_ENTRA__GRAPH", &self.sim_graph)
            .env("CONSENTRY_ENTRA__EXTRA_CA_FILE", &self.ca_file);
        for (key, client_id, secret) in &self.apps {
            let k = key.to_ascii_uppercase().replace('-', "_");
            cmd.env(
                format!("CONSENTRY_APPS__{k}__CLIENT_ID"),
                client_id.to_string(),
            )
            .env(format!("CONSENTRY_APPS__{k}__CLIENT_SECRET"), secret);
        }
        cmd
    }

    /// Starts `consentry serve` on `port`, with `public_url` (the address the load balancer would have).
    fn start_replica(&self, index: usize, port: u16, public_url: &str) -> Replica {
        let data_dir = self.dir.join(format!("replica-{index}"));
        std::fs::create_dir_all(&data_dir).unwrap();
        let log = self.dir.join(format!("replica-{index}.log"));
        let out = std::fs::File::create(&log).unwrap();
        let child = self
            .command(&data_dir)
            .arg("serve")
            .env("CONSENTRY_LISTEN", format!("127.0.0.1:{port}"))
            .env("CONSENTRY_PUBLIC_URL", public_url)
            .env("CONSENTRY_MONITOR__POLL_SECONDS", "1")
            .env(
                "CONSENTRY_MONITOR__LEASE_SECONDS",
                LEASE_SECONDS.to_string(),
            )
            .env("CONSENTRY_MONITOR__BATCH", BATCH.to_string())
            .env(
                "CONSENTRY_MONITOR__MAX_CONCURRENT",
                MAX_CONCURRENT.to_string(),
            )
            .env("CONSENTRY_MONITOR__MAX_PER_TENANT", "4")
            .stdout(Stdio::null())
            .stderr(out)
            .spawn()
            .expect("start consentry serve");
        Replica {
            pid: child.id(),
            child: Some(child),
            base: format!("http://127.0.0.1:{port}"),
            log,
        }
    }

    /// Runs a CLI command to completion; panics with its stderr when it fails.
    fn run(&self, args: &[&str], stdin: Option<&str>) -> String {
        let data_dir = self.dir.join("cli");
        std::fs::create_dir_all(&data_dir).unwrap();
        let mut child = self
            .command(&data_dir)
            .args(args)
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .expect("run consentry");
        if let Some(text) = stdin {
            child
                .stdin
                .take()
                .unwrap()
                .write_all(text.as_bytes())
                .unwrap();
        }
        drop(child.stdin.take());
        let out = child.wait_with_output().unwrap();
        assert!(
            out.status.success(),
            "consentry {args:?} failed: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        String::from_utf8(out.stdout).unwrap()
    }
}

/// One seeded profile and the simulator's key for its credential.
#[derive(Debug, Clone)]
struct Seeded {
    id: ProfileId,
    tenant: Uuid,
    client_id: Uuid,
}

/// The simulator's client-credentials requests by (tenant, client).
fn sim_counts(sim: &RunningSim) -> HashMap<(Uuid, Uuid), u64> {
    sim.control()
        .token_requests()
        .into_iter()
        .filter(|r| r.grant_type == "client_credentials")
        .map(|r| ((r.tenant_id, r.client_id), r.count))
        .collect()
}

/// Sum of `consentry_checks_total` on a replica's `/metrics`, by outcome.
async fn checks_by_outcome(http: &reqwest::Client, base: &str) -> BTreeMap<String, u64> {
    let text = http
        .get(format!("{base}/metrics"))
        .send()
        .await
        .expect("metrics")
        .text()
        .await
        .unwrap();
    let mut out = BTreeMap::new();
    for line in text.lines() {
        let Some(rest) = line.strip_prefix("consentry_checks_total{") else {
            continue;
        };
        let outcome = rest
            .split("outcome=\"")
            .nth(1)
            .and_then(|s| s.split('"').next())
            .unwrap_or_default()
            .to_string();
        let n: u64 = line
            .rsplit(' ')
            .next()
            .and_then(|v| v.parse::<f64>().ok())
            .map(|v| v as u64)
            .unwrap_or(0);
        *out.entry(outcome).or_default() += n;
    }
    out
}

fn total(m: &BTreeMap<String, u64>) -> u64 {
    m.values().sum()
}

async fn scalar(db: &PgPool, sql: &str, args: &[i64]) -> i64 {
    let mut q = sqlx::query_scalar::<_, i64>(AssertSqlSafe(sql.to_string()));
    for a in args {
        q = q.bind(*a);
    }
    q.fetch_one(db).await.unwrap()
}

/// Seeds organizations, tenants and authorized, valid application-permission profiles through the store.
async fn seed(
    store: &SqlStore,
    tenants: &[(Uuid, String)],
    profiles_wanted: usize,
    catalog: &Catalog,
    sim_apps: &HashMap<String, Uuid>,
) -> (Vec<Organization>, Vec<Seeded>) {
    let now = OffsetDateTime::now_utc();
    let mut orgs = Vec::new();
    for i in 0..ORGS {
        let org = Organization {
            id: OrgId::new_random(),
            name: format!("Replica customer {i}"),
            modules: BTreeSet::new(),
            services: BTreeSet::new(),
            created_at: now,
        };
        store.insert_organization(&org).await.unwrap();
        orgs.push(org);
    }
    let mut profiles = Vec::new();
    let mut seeded = Vec::new();
    for (i, (tid, domain)) in tenants.iter().enumerate() {
        let org = &orgs[i % ORGS];
        let tenant = Tenant {
            id: TenantId::from_uuid(*tid),
            org_id: org.id,
            primary_domain: DomainName::parse(domain).unwrap(),
            display_name: format!("Replica tenant {i}"),
            cloud: consentry_domain::CloudKey::global(),
            created_at: now,
            verified: None,
        };
        store.insert_tenant(&tenant).await.unwrap();
        for (app_type, service) in APP_TYPES {
            if profiles.len() == profiles_wanted {
                break;
            }
            let at = catalog.app_type(app_type).unwrap();
            let p = AppProfile {
                id: ProfileId::new_random(),
                org_id: org.id,
                tenant_id: tenant.id,
                cloud: consentry_domain::CloudKey::global(),
                app_type: app_type.into(),
                service: service.into(),
                application_id: None,
                consent_method: Some(ConsentMethod::Admin),
                consent_user: None,
                granted_permissions: at
                    .application_roles()
                    .map(|r| GrantedPermission {
                        name: r.name.clone(),
                        kind: PermissionType::Role,
                    })
                    .collect(),
                certificate: None,
                functions: Vec::new(),
                scan_targets: Vec::new(),
                original_sign_in_ip: None,
                status: ProfileStatus::Valid,
                reason: None,
                last_checked_at: None,
                consented_catalog_version: Some(catalog.version),
                refresh_token_redeemed_at: None,
                authorized_at: Some(now),
                created_at: now,
                updated_at: now,
            };
            seeded.push(Seeded {
                id: p.id,
                tenant: *tid,
                client_id: sim_apps[app_type],
            });
            profiles.push(p);
        }
    }
    // Eight writers at once (the pool's size): PostgreSQL commits them together.
    let mut tasks = tokio::task::JoinSet::new();
    for chunk in profiles.chunks(profiles_wanted.div_ceil(8)) {
        let store = store.clone();
        let chunk = chunk.to_vec();
        tasks.spawn(async move {
            for p in chunk {
                let event = NewHistoryEvent {
                    evidence: None,
                    profile_id: p.id,
                    at: p.created_at,
                    actor: Actor::Operator("replica-test".into()),
                    kind: EventKind::Created,
                    from_status: None,
                    to_status: Some(p.status),
                    reason: None,
                    detail: Some("seeded".into()),
                };
                store.insert_profile(&p, event).await.unwrap();
            }
        });
    }
    while let Some(done) = tasks.join_next().await {
        done.unwrap();
    }
    (orgs, seeded)
}

/// The cookie value `name` set by a response.
fn set_cookie(resp: &reqwest::Response, name: &str) -> Option<String> {
    resp.headers()
        .get_all(reqwest::header::SET_COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .find_map(|v| {
            let first = v.split(';').next()?;
            let (k, val) = first.split_once('=')?;
            (k.trim() == name).then(|| val.trim().to_string())
        })
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn three_replicas_share_the_work_and_survive_a_killed_one() {
    let Some(admin) = consentry_store::story::postgres_admin_url("replica test") else {
        return;
    };
    let db = consentry_store::story::TestDatabase::create(&admin, "consentry_replicas").await;
    let dir = tempfile::tempdir().unwrap();
    let catalog = Catalog::builtin();
    #[allow(non_snake_case)]
    let PROFILES: usize = std::env::var("CONSENTRY_REPLICA_TEST_PROFILES")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(DEFAULT_PROFILES);

    // The simulator: contoso (for the consent and console steps) plus one tenant per three profiles, each
    // having consented the three application-permission vendor apps.
    let mut scenario = Scenario::contoso();
    let sim_apps: HashMap<String, Uuid> = APP_TYPES
        .iter()
        .map(|(k, _)| {
            (
                k.to_string(),
                scenario.client_id_for(k).expect("vendor app"),
            )
        })
        .collect();
    let preconsented: Vec<Uuid> = sim_apps.values().copied().collect();
    let tenants: Vec<(Uuid, String)> = (0..PROFILES.div_ceil(APP_TYPES.len()))
        .map(|i| {
            let id = Uuid::new_v4();
            (
                id,
                format!(
                    "replica{i}-{}.onmicrosoft.com",
                    &id.simple().to_string()[..8]
                ),
            )
        })
        .collect();
    for (i, (id, domain)) in tenants.iter().enumerate() {
        scenario.tenants.push(entra_sim::Tenant {
            id: *id,
            display_name: format!("Replica tenant {i}"),
            cloud: "global".into(),
            domains: vec![domain.clone()],
            users_can_consent: false,
            entra_id_plan: entra_sim::EntraIdPlan::Free,
            users: Vec::new(),
            groups: Vec::new(),
            ca_policies: Vec::new(),
            preconsented_apps: preconsented.clone(),
            service_principals: Vec::new(),
            oauth2_permission_grants: Vec::new(),
            app_role_assignments: Vec::new(),
        });
    }
    let sim = RunningSim::start(
        scenario.clone(),
        SimOptions {
            trust_forwarded_for: true,
            ..SimOptions::default()
        },
    )
    .await
    .expect("simulator starts");
    let ca_file = dir.path().join("sim-ca.pem");
    std::fs::write(&ca_file, sim.ca_pem()).unwrap();

    // One master key file for every replica (it seals what any of them stores).
    let key_file = dir.path().join("master.key");
    Sealer::load_or_create_key_file(&key_file).unwrap();
    let inst = Installation {
        db_url: db.url.clone(),
        key_file: key_file.clone(),
        ca_file,
        dir: dir.path().to_path_buf(),
        sim_authority: sim.authority(),
        sim_graph: sim.graph_base(),
        apps: scenario
            .vendor_apps()
            .into_iter()
            .map(|(k, id, s)| (k, id, s.expose_secret().to_string()))
            .collect(),
    };

    // Migrations once, before any replica starts (as DEPLOYMENT.md says).
    let out = inst.run(&["migrate"], None);
    assert!(out.contains("up to date"), "{out}");

    let store = SqlStore::open(&db.url, Sealer::load_or_create_key_file(&key_file).unwrap())
        .await
        .unwrap();
    let (orgs, seeded) = seed(&store, &tenants, PROFILES, &catalog, &sim_apps).await;
    assert_eq!(seeded.len(), PROFILES);
    let pg = PgPoolOptions::new()
        .max_connections(2)
        .connect(&db.url)
        .await
        .unwrap();

    // Three replicas behind an imaginary load balancer whose public address reaches the second one (so the
    // OAuth callback of a consent started anywhere lands there).
    let ports: Vec<u16> = (0..REPLICAS).map(|_| free_port()).collect();
    let public_url = format!("http://127.0.0.1:{}", ports[1]);
    for (key, client_id, _) in &inst.apps {
        if key == "insights-m365" {
            sim.control()
                .add_redirect_uri(*client_id, &format!("{public_url}/oauth/callback"))
                .unwrap();
        }
    }
    let round1_start = now_ns();
    let mut replicas: Vec<Replica> = ports
        .iter()
        .enumerate()
        .map(|(i, port)| inst.start_replica(i, *port, &public_url))
        .collect();
    let http = reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .unwrap();
    for r in &replicas {
        let url = format!("{}/healthz", r.base);
        wait_for("a replica to answer /healthz", &replicas, || {
            let http = http.clone();
            let url = url.clone();
            async move {
                let ok = http.get(&url).send().await.ok()?.status().is_success();
                ok.then_some(())
            }
        })
        .await;
    }

    // ---- Round 1: every profile is due once; the three replicas sweep them. --------------------------
    wait_for("round 1: every profile checked and released", &replicas, || {
        let pg = pg.clone();
        async move {
            let checked = scalar(
                &pg,
                "SELECT COUNT(*) FROM profiles WHERE last_checked_at >= $1",
                &[round1_start],
            )
            .await;
            let open = scalar(
                &pg,
                "SELECT COUNT(*) FROM check_schedule WHERE lease_owner IS NOT NULL OR next_check_at < $1",
                &[round1_start],
            )
            .await;
            (checked == PROFILES as i64 && open == 0).then_some(())
        }
    })
    .await;
    // The simulator's side: exactly one client-credentials request per profile.
    let after1 = sim_counts(&sim);
    for s in &seeded {
        assert_eq!(
            after1.get(&(s.tenant, s.client_id)).copied().unwrap_or(0),
            1,
            "round 1: profile {} must reach Microsoft exactly once",
            s.id
        );
    }
    let seeded_keys: BTreeSet<(Uuid, Uuid)> =
        seeded.iter().map(|s| (s.tenant, s.client_id)).collect();
    assert_eq!(
        after1
            .iter()
            .filter(|(k, _)| seeded_keys.contains(k))
            .map(|(_, n)| n)
            .sum::<u64>(),
        PROFILES as u64
    );
    // The replicas' side: their checks add up to PROFILES (each profile checked at least once, so exactly
    // once), all valid, and each replica took part.
    let mut per_replica = Vec::new();
    for r in &replicas {
        per_replica.push(checks_by_outcome(&http, &r.base).await);
    }
    let all: u64 = per_replica.iter().map(total).sum();
    assert_eq!(
        all, PROFILES as u64,
        "round 1 checks by replica: {per_replica:?}"
    );
    for (i, m) in per_replica.iter().enumerate() {
        assert_eq!(
            m.get("valid").copied().unwrap_or(0),
            total(m),
            "replica {i}: {m:?}"
        );
        assert!(total(m) > 0, "replica {i} did no check: {per_replica:?}");
    }
    eprintln!(
        "round 1: checks by replica {:?}",
        per_replica.iter().map(total).collect::<Vec<_>>()
    );

    // ---- Round 2: all due again; replica 3 is killed while it holds leases. --------------------------
    let round2_start = now_ns();
    sqlx::query("UPDATE check_schedule SET next_check_at = $1")
        .bind(round2_start)
        .execute(&pg)
        .await
        .unwrap();
    let victim = REPLICAS - 1;
    let suffix = format!("%{}", replicas[victim].lease_suffix());
    // Freeze the replica (SIGSTOP) before reading its leases, so none is released between the read
    // and the SIGKILL; if it let go of them all just before the freeze, let it run and try again.
    let rows: Vec<(String, i64)> = loop {
        wait_for("replica 3 to hold leases mid-sweep", &replicas, || {
            let pg = pg.clone();
            let suffix = suffix.clone();
            async move {
                let held: i64 = sqlx::query_scalar(
                    "SELECT COUNT(*) FROM check_schedule WHERE lease_owner LIKE $1",
                )
                .bind(suffix)
                .fetch_one(&pg)
                .await
                .unwrap();
                let done = scalar(
                    &pg,
                    "SELECT COUNT(*) FROM profiles WHERE last_checked_at >= $1",
                    &[round2_start],
                )
                .await;
                (held > 0 && done > 0 && done < PROFILES as i64 / 2).then_some(())
            }
        })
        .await;
        replicas[victim].signal("STOP");
        // What the frozen replica holds: nobody can take these before their leases run out.
        let rows: Vec<(String, i64)> = sqlx::query_as(
            "SELECT profile_id, lease_until FROM check_schedule WHERE lease_owner LIKE $1",
        )
        .bind(&suffix)
        .fetch_all(&pg)
        .await
        .unwrap();
        if !rows.is_empty() {
            break rows;
        }
        replicas[victim].signal("CONT");
    };
    replicas[victim].kill();
    let killed_at = now_ns();
    assert!(!rows.is_empty(), "the killed replica held no lease");
    let held: BTreeMap<String, i64> = rows.into_iter().collect();
    assert!(
        held.values().all(|until| *until > killed_at),
        "the held leases were read before they ran out"
    );
    let lease_end = *held.values().max().unwrap();

    wait_for("round 2: the survivors finish, the dead replica's leases included", &replicas[..victim], || {
        let pg = pg.clone();
        async move {
            let open = scalar(
                &pg,
                "SELECT COUNT(*) FROM check_schedule WHERE lease_owner IS NOT NULL OR next_check_at <= $1",
                &[round2_start],
            )
            .await;
            (open == 0).then_some(())
        }
    })
    .await;
    // Nothing lost: every profile was checked in round 2; the dead replica's leased profiles were checked
    // by a survivor after the lease ran out.
    let checked2 = scalar(
        &pg,
        "SELECT COUNT(*) FROM profiles WHERE last_checked_at >= $1",
        &[round2_start],
    )
    .await;
    assert_eq!(checked2, PROFILES as i64);
    let ids: Vec<String> = held.keys().cloned().collect();
    let checked: Vec<(String, i64)> =
        sqlx::query_as("SELECT id, last_checked_at FROM profiles WHERE id = ANY($1)")
            .bind(&ids)
            .fetch_all(&pg)
            .await
            .unwrap();
    assert_eq!(checked.len(), held.len());
    for (id, at) in &checked {
        assert!(
            *at >= held[id],
            "profile {id}, leased by the dead replica until {}, must be checked again after that (last check {at})",
            held[id]
        );
    }
    // The simulator's side: once per profile, except profiles the dead replica held a lease on, which may
    // have reached Microsoft once before it died; at most MAX_CONCURRENT of those (its checks in flight).
    let after2 = sim_counts(&sim);
    let held_keys: BTreeSet<(Uuid, Uuid)> = seeded
        .iter()
        .filter(|s| held.contains_key(&s.id.to_string()))
        .map(|s| (s.tenant, s.client_id))
        .collect();
    let mut repeated = 0u64;
    for s in &seeded {
        let key = (s.tenant, s.client_id);
        let n = after2.get(&key).copied().unwrap_or(0) - after1.get(&key).copied().unwrap_or(0);
        if held_keys.contains(&key) {
            assert!(
                (1..=2).contains(&n),
                "held profile {} reached Microsoft {n} times",
                s.id
            );
            repeated += n - 1;
        } else {
            assert_eq!(
                n, 1,
                "round 2: profile {} must reach Microsoft exactly once",
                s.id
            );
        }
    }
    assert!(
        repeated <= MAX_CONCURRENT,
        "{repeated} repeated checks; only the dead replica's checks in flight (at most {MAX_CONCURRENT}) may repeat"
    );
    let survivors: u64 = {
        let mut n = 0;
        for r in &replicas[..victim] {
            n += total(&checks_by_outcome(&http, &r.base).await);
        }
        n
    };
    eprintln!(
        "round 2: killed replica held {} leases (until {} s after the kill); {repeated} checks repeated; survivors \
         have made {survivors} checks in both rounds",
        held.len(),
        (lease_end - killed_at) / 1_000_000_000
    );

    // ---- A consent started on replica 1 finishes on replica 2. ---------------------------------------
    let api = |base: &str, method: reqwest::Method, path: &str| {
        http.request(method, format!("{base}/api/v1{path}"))
            .bearer_auth(API_TOKEN)
    };
    let contoso_id = scenario
        .tenants
        .iter()
        .find(|t| t.domains.iter().any(|d| d == "contoso.onmicrosoft.com"))
        .unwrap()
        .id;
    let org = &orgs[0];
    let resp = api(&replicas[0].base, reqwest::Method::POST, "/tenants")
        .json(&serde_json::json!({"org_id": org.id.to_string(), "tenant_id": contoso_id.to_string(), "primary_domain": "contoso.onmicrosoft.com"}))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 201, "{}", resp.text().await.unwrap());
    let resp = api(&replicas[0].base, reqwest::Method::POST, "/profiles")
        .json(
            &serde_json::json!({"tenant": "contoso.onmicrosoft.com", "app_type": "insights-m365"}),
        )
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 201);
    let profile: serde_json::Value = resp.json().await.unwrap();
    let pid = profile["id"].as_str().unwrap().to_string();
    let resp = api(
        &replicas[0].base,
        reqwest::Method::POST,
        &format!("/profiles/{pid}/reauthorize"),
    )
    .json(&serde_json::json!({"method": "admin"}))
    .send()
    .await
    .unwrap();
    assert_eq!(resp.status(), 200);
    let started: serde_json::Value = resp.json().await.unwrap();
    let page = entra_sim::browser::Browser::new(sim.ca_pem(), Some("203.0.113.7"))
        .unwrap()
        .complete(
            started["url"].as_str().unwrap(),
            "admin@contoso.onmicrosoft.com",
            PASSWORD,
            entra_sim::browser::Decision::Accept { org_wide: true },
        )
        .await;
    // Only replica 2 listens on the public address, so it is the one that took the callback(s).
    assert!(page.body.contains("re-authorized"), "{}", page.body);
    let resp = api(
        &replicas[0].base,
        reqwest::Method::GET,
        &format!("/profiles/{pid}"),
    )
    .send()
    .await
    .unwrap();
    let p: serde_json::Value = resp.json().await.unwrap();
    assert_eq!(p["status"], "valid", "{p}");

    // ---- A console session made on replica 1 works on replica 2. ------------------------------------
    inst.run(
        &[
            "users",
            "create",
            "replica-ops",
            "--platform",
            "--password-stdin",
        ],
        Some(CONSOLE_PASSWORD),
    );
    let resp = http
        .post(format!("{}/console/login", replicas[0].base))
        .header(
            reqwest::header::COOKIE,
            "consentry_login=double-submit-check",
        )
        .form(&[
            ("csrf", "double-submit-check"),
            ("username", "replica-ops"),
            ("password", CONSOLE_PASSWORD),
        ])
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 303, "sign-in on replica 1");
    let session = set_cookie(&resp, "consentry_session").expect("a session cookie");
    let page = http
        .get(format!(
            "{}/console/profiles?search=insights",
            replicas[1].base
        ))
        .header(
            reqwest::header::COOKIE,
            format!("consentry_session={session}"),
        )
        .send()
        .await
        .unwrap();
    assert_eq!(
        page.status(),
        200,
        "the session made on replica 1 works on replica 2"
    );
    let body = page.text().await.unwrap();
    assert!(
        body.contains("replica-ops"),
        "signed in as replica-ops on replica 2"
    );
    let anonymous = http
        .get(format!("{}/console/profiles", replicas[1].base))
        .send()
        .await
        .unwrap();
    assert_ne!(
        anonymous.status(),
        200,
        "without the cookie replica 2 asks for a sign-in"
    );

    // ---- Token acquisitions: at most one per replica for one profile under concurrent requests. -----
    let key = consentry_domain::keys::new_api_key();
    let target = &seeded[0];
    let owner = orgs[0].id;
    let tenant_org: String = sqlx::query_scalar("SELECT org_id FROM tenants WHERE id = $1")
        .bind(target.tenant.to_string())
        .fetch_one(&pg)
        .await
        .unwrap();
    assert_eq!(tenant_org, owner.to_string());
    store
        .insert_api_key(&ApiKey {
            id: consentry_domain::ApiKeyId::new_random(),
            org_id: owner,
            name: "replica test".into(),
            key_hash: consentry_domain::keys::key_hash(&key),
            created_at: OffsetDateTime::now_utc(),
            revoked_at: None,
            last_used_at: None,
        })
        .await
        .unwrap();
    let before = sim_counts(&sim)
        .get(&(target.tenant, target.client_id))
        .copied()
        .unwrap_or(0);
    let app_type = APP_TYPES
        .iter()
        .find(|(k, _)| sim_apps[*k] == target.client_id)
        .unwrap()
        .0;
    let live: Vec<String> = replicas[..victim].iter().map(|r| r.base.clone()).collect();
    let mut calls = tokio::task::JoinSet::new();
    for i in 0..24 {
        let url = format!(
            "{}/api/v1/tenants/{}/tokens",
            live[i % live.len()],
            target.tenant
        );
        let http = http.clone();
        let key = key.clone();
        calls.spawn(async move {
            http.post(url)
                .bearer_auth(key)
                .json(&serde_json::json!({"app_type": app_type}))
                .send()
                .await
                .unwrap()
                .status()
        });
    }
    while let Some(status) = calls.join_next().await {
        assert_eq!(status.unwrap(), 200);
    }
    let acquisitions = sim_counts(&sim)
        .get(&(target.tenant, target.client_id))
        .copied()
        .unwrap_or(0)
        - before;
    assert!(
        (1..=live.len() as u64).contains(&acquisitions),
        "24 concurrent token requests over {} replicas made {acquisitions} acquisitions",
        live.len()
    );

    store.close().await;
    pg.close().await;
    drop(replicas);
    drop(db);
}

//! A `consentry serve` process killed (SIGKILL) while it handles Microsoft's answer to a
//! re-authorization — after it took the pending record, before it saved the result — leaves no
//! profile stuck "pending": after a restart the profile goes back to the status its credentials
//! have, and a new start/cancel restores the real previous status.
//!
//! entra-sim in this process (its Graph answers delayed, so the callback is caught while it waits
//! on Microsoft), `consentry serve` as a child process on loopback, the browser played through
//! the simulator's pages. Waiting is on conditions with generous deadlines; nothing asserts on
//! durations.

use crate::run;

use std::path::{Path, PathBuf};
use std::process::{Child, Stdio};
use std::time::{Duration as StdDuration, Instant};

use consentry_domain::{ProfileId, ProfileStatus, Store as _};
use entra_sim::browser::{Browser, Decision};
use entra_sim::{FaultRule, RunningSim, Scenario, SimOptions};
use serde_json::{Value, json};

const TOKEN: &str = "crash-test-operator-token-0123456789";
const ADMIN: &str = "admin@contoso.onmicrosoft.com";
const PASSWORD: &str = "Demo-Passw0rd!";
const DEADLINE: StdDuration = StdDuration::from_secs(120);

struct Server {
    child: Child,
    log: PathBuf,
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn start_server(d: &Path, vars: &[(String, String)], n: usize) -> Server {
    let log = d.join(format!("serve-{n}.log"));
    let mut c = run::command(d, &["serve"]);
    for (k, v) in vars {
        c.env(k, v);
    }
    let child = c
        .stdout(Stdio::null())
        .stderr(std::fs::File::create(&log).unwrap())
        .spawn()
        .expect("start consentry serve");
    Server { child, log }
}

async fn api(base: &str, method: reqwest::Method, path: &str, body: Option<Value>) -> (u16, Value) {
    let http = reqwest::Client::new();
    let mut r = http
        .request(method, format!("{base}{path}"))
        .bearer_auth(TOKEN);
    if let Some(b) = body {
        r = r.json(&b);
    }
    let resp = r.send().await.expect("consentry answers");
    let status = resp.status().as_u16();
    (status, resp.json().await.unwrap_or(Value::Null))
}

async fn wait_until_up(base: &str, server: &Server) {
    let start = Instant::now();
    while reqwest::get(format!("{base}/healthz")).await.is_err() {
        assert!(
            start.elapsed() < DEADLINE,
            "the server did not start: {}",
            std::fs::read_to_string(&server.log).unwrap_or_default()
        );
        tokio::time::sleep(StdDuration::from_millis(100)).await;
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn a_server_killed_while_recording_a_reauthorization_leaves_no_profile_stuck() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let scenario = Scenario::contoso();
    let sim = RunningSim::start(
        scenario.clone(),
        SimOptions {
            listen: "127.0.0.1:0".parse().unwrap(),
            ..SimOptions::default()
        },
    )
    .await
    .unwrap();
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let base = format!("http://127.0.0.1:{port}");
    let control = sim.control();
    let mut vars: Vec<(String, String)> = vec![
        ("CONSENTRY_LOG".into(), "info,sqlx=warn".into()),
        ("CONSENTRY_LISTEN".into(), format!("127.0.0.1:{port}")),
        ("CONSENTRY_PUBLIC_URL".into(), base.clone()),
        ("CONSENTRY_API_TOKEN".into(), TOKEN.into()),
        // A callback may take 3 s; its taken record is held 10 s (twice, at least 10 s).
        ("CONSENTRY_REQUEST_TIMEOUT_SECONDS".into(), "3".into()),
        ("CONSENTRY_MONITOR__POLL_SECONDS".into(), "1".into()),
    ];
    vars.extend(consentry_testkit::sim_settings(
        &sim,
        &scenario,
        d,
        Some(&format!("{base}/oauth/callback")),
    ));
    let tenant = scenario
        .tenants
        .iter()
        .find(|t| t.domains[0] == "contoso.onmicrosoft.com")
        .unwrap();
    let cli = |args: &[&str]| {
        let mut c = run::command(d, args);
        for (k, v) in &vars {
            c.env(k, v);
        }
        run::succeeded(c.output().unwrap(), args)
    };
    let org: Value =
        serde_json::from_str(&cli(&["orgs", "create", "--name", "Contoso", "--json"])).unwrap();
    cli(&[
        "tenants",
        "connect",
        "--org",
        org[0]["id"].as_str().unwrap(),
        "--tenant-id",
        &tenant.id.to_string(),
        "--domain",
        &tenant.domains[0],
    ]);
    let created: Value = serde_json::from_str(&cli(&[
        "profiles",
        "create",
        "--tenant",
        &tenant.domains[0],
        "--app-type",
        "m365-all",
        "--service",
        "cloud-backup-m365",
        "--json",
    ]))
    .unwrap();
    let id = created["profile"]["id"].as_str().unwrap().to_string();
    let pid = ProfileId::parse(&id).unwrap();

    let server = start_server(d, &vars, 1);
    wait_until_up(&base, &server).await;
    let browser = Browser::new(sim.ca_pem(), None).unwrap();
    // Authorized once: valid.
    let (s, started) = api(
        &base,
        reqwest::Method::POST,
        &format!("/api/v1/profiles/{id}/reauthorize"),
        Some(json!({"method": "admin"})),
    )
    .await;
    assert_eq!(s, 200, "{started}");
    let page = browser
        .complete(
            started["url"].as_str().unwrap(),
            ADMIN,
            PASSWORD,
            Decision::Accept { org_wide: true },
        )
        .await;
    assert!(page.body.contains("re-authorized"), "{}", page.body);
    let (_, p) = api(
        &base,
        reqwest::Method::GET,
        &format!("/api/v1/profiles/{id}"),
        None,
    )
    .await;
    assert_eq!(p["status"], "valid", "{p}");

    // A second re-authorization; Microsoft's Graph is slow now, so the callback waits on it.
    let (s, started) = api(
        &base,
        reqwest::Method::POST,
        &format!("/api/v1/profiles/{id}/reauthorize"),
        Some(json!({"method": "admin"})),
    )
    .await;
    assert_eq!(s, 200, "{started}");
    control
        .set_faults(vec![FaultRule {
            endpoint: "graph".into(),
            rate: 1.0,
            latency_ms: 60_000,
            status: None,
            retry_after_secs: None,
            drop_connection: false,
        }])
        .unwrap();
    let url = started["url"].as_str().unwrap().to_string();
    let b2 = Browser::new(sim.ca_pem(), None).unwrap();
    let answering = tokio::spawn(async move {
        b2.complete(&url, ADMIN, PASSWORD, Decision::Accept { org_wide: true })
            .await
    });
    // The store as the server sees it: the moment the callback took the record, kill the server.
    let cfg = consentry_server::config::Config::load(
        None,
        vars.iter()
            .cloned()
            .chain([("CONSENTRY_DATA_DIR".to_string(), d.display().to_string())]),
    )
    .unwrap();
    let store = consentry_server::startup::open_store(&cfg).await.unwrap();
    let start = Instant::now();
    loop {
        let rec = store.pending_for_profile(pid).await.unwrap();
        if rec.as_ref().is_some_and(|r| r.taken_until.is_some()) {
            break;
        }
        assert!(
            start.elapsed() < DEADLINE,
            "the callback never took the record"
        );
        tokio::time::sleep(StdDuration::from_millis(20)).await;
    }
    let mut server = server;
    server.child.kill().expect("SIGKILL");
    server.child.wait().unwrap();
    answering.abort();
    control.set_faults(vec![]).unwrap();
    let p = store.get_profile(pid).await.unwrap().unwrap();
    assert_eq!(
        p.status,
        ProfileStatus::Pending,
        "killed before the result was saved"
    );

    // Restarted: within the callback's hold the answer might still be recorded, so the profile
    // stays pending and a cancel says why; then the monitor puts it back to its credentials'
    // status (they work: valid).
    let server = start_server(d, &vars, 2);
    wait_until_up(&base, &server).await;
    let (s, body) = api(
        &base,
        reqwest::Method::POST,
        &format!("/api/v1/profiles/{id}/reauthorize/cancel"),
        None,
    )
    .await;
    assert_eq!(s, 409, "{body}");
    assert!(body.to_string().contains("being recorded"), "{body}");
    let start = Instant::now();
    let p = loop {
        let (_, p) = api(
            &base,
            reqwest::Method::GET,
            &format!("/api/v1/profiles/{id}"),
            None,
        )
        .await;
        if p["status"] != "pending" {
            break p;
        }
        assert!(
            start.elapsed() < DEADLINE,
            "the profile stayed pending: {}",
            std::fs::read_to_string(&server.log).unwrap_or_default()
        );
        tokio::time::sleep(StdDuration::from_millis(250)).await;
    };
    assert_eq!(p["status"], "valid", "{p}");
    let (_, h) = api(
        &base,
        reqwest::Method::GET,
        &format!("/api/v1/profiles/{id}/history"),
        None,
    )
    .await;
    assert_eq!(h["items"][0]["kind"], "reauthorization_expired", "{h}");
    assert!(
        h["items"][0]["detail"]
            .as_str()
            .unwrap()
            .contains("was not recorded"),
        "{h}"
    );
    assert!(store.pending_for_profile(pid).await.unwrap().is_none());

    // A new start and cancel restore the real previous status, not "pending".
    let (s, started) = api(
        &base,
        reqwest::Method::POST,
        &format!("/api/v1/profiles/{id}/reauthorize"),
        Some(json!({"method": "admin"})),
    )
    .await;
    assert_eq!(s, 200, "{started}");
    let (s, body) = api(
        &base,
        reqwest::Method::POST,
        &format!("/api/v1/profiles/{id}/reauthorize/cancel"),
        None,
    )
    .await;
    assert_eq!(s, 200, "{body}");
    let (_, p) = api(
        &base,
        reqwest::Method::GET,
        &format!("/api/v1/profiles/{id}"),
        None,
    )
    .await;
    assert_eq!(p["status"], "valid", "{p}");
    drop(server);
}

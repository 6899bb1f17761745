//! `consentry profiles check` runs the server's check: the configured policy
//! (`monitor.transient_attempts`) and the webhook notifier, composed by `consentry_server::startup`
//! like `serve`'s; and its summary tells checked, invalid, transient failures and skipped apart.
//! entra-sim in this process on loopback, the binary as an operator runs it.

use crate::run;

use std::io::{BufRead as _, BufReader, Read as _, Write as _};
use std::path::Path;
use std::process::{Command, Output};
use std::sync::{Arc, Mutex};

use consentry_domain::{ProfileId, ProfileStatus, Store, Webhook};
use entra_sim::{FaultRule, RunningSim, Scenario, SimOptions};

/// A loopback webhook receiver: records each POST body, answers 204.
fn receiver() -> (String, Arc<Mutex<Vec<String>>>) {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let url = format!("http://{}/hook", listener.local_addr().unwrap());
    let got = Arc::new(Mutex::new(Vec::new()));
    let seen = got.clone();
    std::thread::spawn(move || {
        for stream in listener.incoming() {
            let Ok(mut stream) = stream else { continue };
            let mut reader = BufReader::new(stream.try_clone().unwrap());
            let mut len = 0usize;
            loop {
                let mut line = String::new();
                if reader.read_line(&mut line).unwrap_or(0) == 0 {
                    break;
                }
                let l = line.to_ascii_lowercase();
                if let Some(v) = l.strip_prefix("content-length:") {
                    len = v.trim().parse().unwrap_or(0);
                }
                if line == "\r\n" {
                    break;
                }
            }
            let mut body = vec![0u8; len];
            let _ = reader.read_exact(&mut body);
            seen.lock()
                .unwrap()
                .push(String::from_utf8_lossy(&body).into_owned());
            let _ = stream.write_all(b"HTTP/1.1 204 No Content\r\nConnection: close\r\n\r\n");
        }
    });
    (url, got)
}

struct Setup {
    vars: Vec<(String, String)>,
}

impl Setup {
    fn command(&self, data_dir: &Path, args: &[&str]) -> Command {
        let mut c = run::command(data_dir, args);
        c.env("CONSENTRY_LOG", "warn");
        for (k, v) in &self.vars {
            c.env(k, v);
        }
        c
    }
    fn run(&self, data_dir: &Path, args: &[&str]) -> Output {
        self.command(data_dir, args).output().unwrap()
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn a_cli_check_honours_transient_attempts_sends_the_webhook_and_counts_apart() {
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
    let mut vars = vec![
        (
            "CONSENTRY_WEBHOOKS__ALLOW_PRIVATE".to_string(),
            "true".to_string(),
        ),
        // Not the default (3): a CLI check must use it.
        (
            "CONSENTRY_MONITOR__TRANSIENT_ATTEMPTS".to_string(),
            "2".to_string(),
        ),
    ];
    vars.extend(consentry_testkit::sim_settings(&sim, &scenario, d, None));
    let setup = Setup { vars };
    let ok = |args: &[&str]| run::succeeded(setup.run(d, args), args);

    let tenant = scenario
        .tenants
        .iter()
        .find(|t| t.domains[0] == "contoso.onmicrosoft.com")
        .unwrap();
    let org: serde_json::Value =
        serde_json::from_str(&ok(&["orgs", "create", "--name", "Contoso", "--json"])).unwrap();
    let org_id = org[0]["id"].as_str().unwrap().to_string();
    ok(&[
        "tenants",
        "connect",
        "--org",
        &org_id,
        "--tenant-id",
        &tenant.id.to_string(),
        "--domain",
        &tenant.domains[0],
    ]);
    let created: serde_json::Value = serde_json::from_str(&ok(&[
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
    let id = ProfileId::parse(created["profile"]["id"].as_str().unwrap()).unwrap();
    // A second profile, never authorized: skipped.
    ok(&[
        "profiles",
        "create",
        "--tenant",
        &tenant.domains[0],
        "--app-type",
        "insights-m365",
        "--service",
        "insights",
        "--json",
    ]);

    // The first is marked authorized (valid) in the store, and the organization gets a webhook.
    let cfg = consentry_server::config::Config::load(
        None,
        setup
            .vars
            .iter()
            .cloned()
            .chain([("CONSENTRY_DATA_DIR".to_string(), d.display().to_string())]),
    )
    .unwrap();
    let store: Arc<dyn Store> =
        Arc::new(consentry_server::startup::open_store(&cfg).await.unwrap());
    let mut p = store.get_profile(id).await.unwrap().unwrap();
    p.status = ProfileStatus::Valid;
    p.reason = None;
    p.authorized_at = Some(time::OffsetDateTime::now_utc());
    store.save_profile(&p, None).await.unwrap();
    let (hook_url, received) = receiver();
    store
        .insert_webhook(
            &Webhook {
                id: consentry_domain::WebhookId::new_random(),
                org_id: p.org_id,
                url: hook_url,
                created_at: time::OffsetDateTime::now_utc(),
            },
            &secrecy::SecretSlice::from(b"webhook-secret".to_vec()),
        )
        .await
        .unwrap();

    // Microsoft's token endpoint answers 503: the check is tried `transient_attempts` times, and
    // with nothing checked the command fails, saying why.
    sim.control()
        .set_faults(vec![FaultRule {
            endpoint: "token".into(),
            rate: 1.0,
            latency_ms: 0,
            status: Some(503),
            retry_after_secs: Some(0),
            drop_connection: false,
        }])
        .unwrap();
    let out = setup.run(d, &["profiles", "check", "--all", "--json"]);
    let stdout = String::from_utf8_lossy(&out.stdout);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success(), "{stdout}\n{stderr}");
    assert!(
        stderr.contains("no app profile could be checked"),
        "{stderr}"
    );
    let rows: serde_json::Value = serde_json::from_str(&stdout).unwrap();
    let row = rows
        .as_array()
        .unwrap()
        .iter()
        .find(|r| r["profile_id"] == id.to_string())
        .unwrap();
    assert_eq!(row["outcome"], "transient_failure", "{row}");
    assert_eq!(row["attempts"], 2, "monitor.transient_attempts: {row}");
    assert_eq!(
        store.get_profile(id).await.unwrap().unwrap().status,
        ProfileStatus::Valid,
        "a transient failure changes nothing"
    );
    assert!(received.lock().unwrap().is_empty());

    // Microsoft answers again: the app was never consented in the tenant, so the profile is
    // invalid, and the organization's webhook hears of it before the command ends.
    sim.control().set_faults(vec![]).unwrap();
    let out = setup.run(d, &["profiles", "check", "--all"]);
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "{stdout}\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(
        stdout.contains(
            "1 checked (0 valid, 0 attention, 1 invalid), 0 transient failure(s), 1 skipped, 0 error(s)"
        ),
        "{stdout}"
    );
    // Standard error is not a terminal: the progress is a plain line, not a bar.
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stderr.lines().any(|l| l == "checked 2/2 app profiles"),
        "{stderr}"
    );
    let bodies = received.lock().unwrap().clone();
    assert_eq!(bodies.len(), 1, "{bodies:?}");
    let msg: serde_json::Value = serde_json::from_str(&bodies[0]).unwrap();
    assert_eq!(msg["profile_id"], id.to_string(), "{msg}");
    assert!(bodies[0].contains("invalid"), "{msg}");
}

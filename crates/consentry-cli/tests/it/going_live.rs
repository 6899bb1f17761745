//! Going live, end to end, with entra-sim standing in for Microsoft (the "done when"): from an
//! empty vendor tenant `consentry apps register` creates every registration; `consentry doctor` then
//! passes; a secret ending in 10 days makes it fail with the date and the rotate command; and
//! `consentry apps rotate-credential` replaces it while a running `consentry serve` keeps checking a
//! profile of that app — with no failed check, before, during and after the old secret is removed (the
//! server reads the switched secret file without a restart).

use std::process::Stdio;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use consentry_server::Config;
use consentry_server::startup::{entra_client, vendor_app};
use consentry_testkit::going_live::{
    VENDOR_APP_ADMIN, consent_graph_cli_for_vendor, going_live_scenario, run_signing_in, start_sim,
    vendor_password,
};
use consentry_testkit::{Browser, CONTOSO, Decision, PASSWORD};
use serde_json::{Value, json};

const API_TOKEN: &str = "going-live-operator-token-0123456789";
const CUSTOMER_ADMIN: &str = "admin@contoso.onmicrosoft.com";
const APP_TYPE: &str = "insights-m365";

/// `consentry serve`, killed when dropped.
struct Server(tokio::process::Child);

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.0.start_kill();
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn from_an_empty_vendor_tenant_to_a_rotated_secret_with_no_failed_check() {
    let scenario = going_live_scenario();
    let sim = start_sim(scenario.clone()).await;
    let password = vendor_password(&scenario);
    consent_graph_cli_for_vendor(&sim, &password).await;
    let dir = tempfile::tempdir().unwrap();
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let base = format!("http://127.0.0.1:{port}");
    let mut vars = consentry_testkit::sim_settings(&sim, &scenario, dir.path(), None);
    vars.extend([
        ("CONSENTRY_PUBLIC_URL".to_string(), base.clone()),
        ("CONSENTRY_LISTEN".into(), format!("127.0.0.1:{port}")),
        (
            "CONSENTRY_DATA_DIR".into(),
            dir.path().join("data").display().to_string(),
        ),
        ("CONSENTRY_API_TOKEN".into(), API_TOKEN.into()),
        ("CONSENTRY_LOG".into(), "warn".into()),
        ("CONSENTRY_MONITOR__POLL_SECONDS".into(), "1".into()),
    ]);
    let config = dir.path().join("etc").join("consentry.toml");
    let command = |args: &[&str]| {
        let mut cmd = tokio::process::Command::new(env!("CARGO_BIN_EXE_consentry"));
        cmd.arg("--config")
            .arg(&config)
            .args(args)
            .env_clear()
            .env("PATH", std::env::var("PATH").unwrap_or_default())
            .envs(vars.iter().cloned())
            .kill_on_drop(true);
        cmd
    };
    let run = |args: &'static [&'static str]| {
        let mut cmd = command(args);
        async move {
            let out = cmd.output().await.expect("run consentry");
            (
                out.status.code(),
                String::from_utf8_lossy(&out.stdout).into_owned(),
                String::from_utf8_lossy(&out.stderr).into_owned(),
            )
        }
    };

    // 1. Every registration, from an empty vendor tenant, signed in as an Application Administrator.
    let reg = run_signing_in(
        command(&["apps", "register", "--yes"]),
        &sim,
        VENDOR_APP_ADMIN,
        &password,
    )
    .await;
    assert!(reg.success, "register: {}\n{}", reg.stdout, reg.stderr);
    let cfg = Config::load(Some(&config), vars.clone()).expect("the written config loads");
    let registrable = consentry_catalog::Catalog::builtin()
        .app_types
        .iter()
        .filter(|a| !a.custom_app)
        .count();
    assert_eq!(cfg.apps.len(), registrable, "one registration per app type");
    assert!(cfg.consentry_app.is_some());

    // 2. The doctor passes on a migrated database.
    let (code, _, err) = run(&["migrate"]).await;
    assert_eq!(code, Some(0), "migrate: {err}");
    let (code, out, err) = run(&["doctor"]).await;
    assert_eq!(code, Some(0), "doctor after register:\n{out}\n{err}");
    assert!(
        out.lines()
            .all(|l| !l.starts_with("FAIL") && !l.starts_with("attention")),
        "{out}"
    );

    // 3. A first tenant and a first profile of the app type, authorized by contoso's admin through the
    //    running server.
    let server = Server(
        command(&["serve"])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("consentry serve"),
    );
    let http = reqwest::Client::new();
    let api = |method: reqwest::Method, path: String, body: Option<Value>| {
        let mut rb = http
            .request(method, format!("{base}{path}"))
            .bearer_auth(API_TOKEN);
        if let Some(b) = body {
            rb = rb.json(&b);
        }
        async move {
            let resp = rb.send().await?;
            let status = resp.status();
            let v: Value = resp.json().await.unwrap_or(Value::Null);
            Ok::<_, reqwest::Error>((status, v))
        }
    };
    let mut up = false;
    for _ in 0..200 {
        if http.get(format!("{base}/healthz")).send().await.is_ok() {
            up = true;
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert!(up, "consentry serve answers");
    let contoso = scenario
        .tenants
        .iter()
        .find(|t| t.domains.iter().any(|d| d == CONTOSO))
        .unwrap()
        .id;
    let (s, org) = api(
        reqwest::Method::POST,
        "/api/v1/organizations".into(),
        Some(json!({"name": "Contoso"})),
    )
    .await
    .unwrap();
    assert!(s.is_success(), "{org}");
    let (s, t) = api(
        reqwest::Method::POST,
        "/api/v1/tenants".into(),
        Some(json!({"org_id": org["id"], "tenant_id": contoso, "primary_domain": CONTOSO})),
    )
    .await
    .unwrap();
    assert!(s.is_success(), "{t}");
    let (s, p) = api(
        reqwest::Method::POST,
        "/api/v1/profiles".into(),
        Some(json!({"tenant": CONTOSO, "app_type": APP_TYPE})),
    )
    .await
    .unwrap();
    assert!(s.is_success(), "{p}");
    let id = p["id"].as_str().unwrap().to_string();
    let (s, started) = api(
        reqwest::Method::POST,
        format!("/api/v1/profiles/{id}/reauthorize"),
        Some(json!({"method": "admin"})),
    )
    .await
    .unwrap();
    assert!(s.is_success(), "{started}");
    let page = Browser::new(sim.ca_pem(), None)
        .unwrap()
        .complete(
            started["url"].as_str().unwrap(),
            CUSTOMER_ADMIN,
            PASSWORD,
            Decision::Accept { org_wide: true },
        )
        .await;
    assert!(page.body.contains("re-authorized"), "{}", page.body);

    // 4. The secret Consentry uses ends in 10 days: the doctor fails, with the date and the command.
    let entry = &cfg.apps[APP_TYPE];
    let app = own_registration(&cfg, entry).await;
    assert_eq!(app.password_credentials.len(), 1);
    let old_key = app.password_credentials[0].key_id.clone().unwrap();
    let ends = time::OffsetDateTime::now_utc() + time::Duration::days(10);
    sim.control()
        .set_secret_end_date(
            entry.client_id.parse().unwrap(),
            old_key.parse().unwrap(),
            ends,
        )
        .unwrap();
    let (code, out, _) = run(&["doctor"]).await;
    assert_eq!(
        code,
        Some(1),
        "doctor with a secret ending in 10 days:\n{out}"
    );
    let date = format!(
        "{}-{:02}-{:02}",
        ends.year(),
        u8::from(ends.month()),
        ends.day()
    );
    assert!(
        out.lines().any(|l| l.contains(&date)
            && l.contains(&format!("consentry apps rotate-credential {APP_TYPE}"))),
        "the date and the rotate command:\n{out}"
    );

    // 5. Checks run without a pause while the secret is rotated (and a little after the old one is
    //    removed): not one may fail.
    let stop = Arc::new(AtomicBool::new(false));
    let checker = {
        let stop = stop.clone();
        let http = http.clone();
        let url = format!("{base}/api/v1/profiles/{id}/check");
        tokio::spawn(async move {
            let mut checks = Vec::new();
            while !stop.load(Ordering::SeqCst) {
                let resp = http
                    .post(&url)
                    .bearer_auth(API_TOKEN)
                    .send()
                    .await
                    .expect("check");
                let status = resp.status();
                let body: Value = resp.json().await.unwrap_or(Value::Null);
                checks.push((status, body));
                tokio::time::sleep(Duration::from_millis(50)).await;
            }
            checks
        })
    };
    let rotated = run_signing_in(
        command(&[
            "apps",
            "rotate-credential",
            APP_TYPE,
            "--yes",
            "--grace-seconds",
            "2",
        ]),
        &sim,
        VENDOR_APP_ADMIN,
        &password,
    )
    .await;
    assert!(
        rotated.success,
        "rotate: {}\n{}",
        rotated.stdout, rotated.stderr
    );
    // The old secret is gone at Microsoft: checks from now on can only pass with the new one.
    tokio::time::sleep(Duration::from_secs(2)).await;
    stop.store(true, Ordering::SeqCst);
    let checks = checker.await.unwrap();
    assert!(
        checks.len() >= 10,
        "checks ran throughout: {}",
        checks.len()
    );
    let failed: Vec<_> = checks
        .iter()
        .filter(|(s, b)| !s.is_success() || b["status"] != "valid")
        .collect();
    assert!(failed.is_empty(), "failed checks: {failed:?}");
    let app = own_registration(&cfg, entry).await;
    assert!(
        app.password_credentials
            .iter()
            .all(|c| c.key_id.as_deref() != Some(old_key.as_str())),
        "the old secret is removed"
    );

    // 6. The doctor passes again.
    let (code, out, _) = run(&["doctor"]).await;
    assert_eq!(code, Some(0), "doctor after the rotation:\n{out}");
    drop(server);
}

/// The app's registration read with its own token in the vendor tenant, with the credential its configured
/// file holds now (panics when that credential gets no token: the secret Consentry uses must work).
async fn own_registration(
    cfg: &Config,
    entry: &consentry_server::config::VendorAppConfig,
) -> consentry_entra::applications::Application {
    let client = entra_client(cfg).unwrap();
    let vendor = cfg.vendor_tenant.clone().unwrap();
    let token = client
        .client_credentials(
            &vendor,
            &entry.client_id,
            &vendor_app(entry, "x").unwrap().credential(),
            consentry_entra::GRAPH_DEFAULT_SCOPE,
        )
        .await
        .expect("the configured secret works");
    client
        .application_by_app_id(&token.access_token, &entry.client_id)
        .await
        .unwrap()
        .expect("its registration")
}

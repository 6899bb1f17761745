//! `consentry doctor` against entra-sim over real HTTPS: passes on the test kit's configuration, and
//! fails with a clear line (and exit status 1) for each thing that is wrong.

use crate::run;

use std::path::Path;
use std::process::Output;

use entra_sim::{RunningSim, Scenario, SimOptions};
use serde_json::Value;

const PUBLIC_URL: &str = "https://consentry.vendor.example";

struct Doctor {
    sim: RunningSim,
    scenario: Scenario,
    vars: Vec<(String, String)>,
    dir: tempfile::TempDir,
}

impl Doctor {
    async fn start(scenario: Scenario) -> Doctor {
        let dir = tempfile::tempdir().unwrap();
        let sim = RunningSim::start(
            scenario.clone(),
            SimOptions {
                listen: "127.0.0.1:0".parse().unwrap(),
                ..SimOptions::default()
            },
        )
        .await
        .unwrap();
        let mut vars = vec![("CONSENTRY_PUBLIC_URL".to_string(), PUBLIC_URL.to_string())];
        vars.extend(consentry_testkit::sim_settings(
            &sim,
            &scenario,
            dir.path(),
            Some(&format!("{PUBLIC_URL}/oauth/callback")),
        ));
        let d = Doctor {
            sim,
            scenario,
            vars,
            dir,
        };
        run::succeeded(d.run(&["migrate"], &[]), &["migrate"]);
        d
    }

    fn data(&self) -> &Path {
        self.dir.path()
    }

    /// Runs `consentry ARGS` with the kit's settings, `over` replacing or adding some (an empty value
    /// removes one).
    fn run(&self, args: &[&str], over: &[(&str, &str)]) -> Output {
        let mut c = run::command(self.data(), args);
        c.env("CONSENTRY_LOG", "warn");
        for (k, v) in &self.vars {
            if !over.iter().any(|(o, _)| o == k) {
                c.env(k, v);
            }
        }
        for (k, v) in over {
            if !v.is_empty() {
                c.env(k, v);
            }
        }
        c.output().unwrap()
    }

    /// `consentry doctor --json`: exit code and report.
    fn json(&self, over: &[(&str, &str)]) -> (i32, Value) {
        let out = self.run(&["doctor", "--json"], over);
        let report: Value = serde_json::from_slice(&out.stdout).unwrap_or_else(|e| {
            panic!(
                "doctor --json printed no JSON ({e}): {}\n{}",
                String::from_utf8_lossy(&out.stdout),
                String::from_utf8_lossy(&out.stderr)
            )
        });
        (out.status.code().unwrap(), report)
    }

    /// `consentry doctor`: exit code and lines.
    fn lines(&self, over: &[(&str, &str)]) -> (i32, String) {
        let out = self.run(&["doctor"], over);
        (
            out.status.code().unwrap(),
            String::from_utf8(out.stdout).unwrap(),
        )
    }
}

fn failing(report: &Value) -> Vec<(String, String, String)> {
    report["checks"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|c| c["status"] != "ok")
        .map(|c| {
            (
                c["id"].as_str().unwrap().to_string(),
                c["message"].as_str().unwrap().to_string(),
                c["action"].as_str().unwrap_or_default().to_string(),
            )
        })
        .collect()
}

#[tokio::test(flavor = "multi_thread")]
async fn doctor_passes_on_the_test_kit_setup_with_a_stable_json_shape() {
    let d = Doctor::start(Scenario::contoso()).await;
    let (code, report) = d.json(&[]);
    assert_eq!(failing(&report), Vec::new(), "{report:#}");
    assert_eq!(code, 0);
    assert_eq!(report["version"], 1);
    assert_eq!(report["ok"], true);
    assert_eq!(report["counts"]["fail"], 0);
    assert_eq!(report["counts"]["attention"], 0);
    let ids: Vec<&str> = report["checks"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| c["id"].as_str().unwrap())
        .collect();
    for id in [
        "database",
        "master_key",
        "tls.authority",
        "tls.graph",
        "clock",
        "vendor_tenant",
    ] {
        assert!(ids.contains(&id), "{id} in {ids:?}");
    }
    // Every vendor app of the scenario is checked: token, redirect URIs, permissions, credentials.
    for (key, _, _) in d.scenario.vendor_apps() {
        for what in ["token", "redirect_uris", "permissions"] {
            let id = format!("app.{key}.{what}");
            assert!(ids.contains(&id.as_str()), "{id} in {ids:?}");
        }
    }
    assert!(ids.contains(&"app.consentry-app.redirect_uris"), "{ids:?}");
    let creds = report["credentials"].as_array().unwrap();
    assert!(!creds.is_empty());
    for c in creds {
        assert_eq!(c["expiry"], "ok", "{c}");
        assert!(c["ends_at"].is_string(), "{c}");
        for k in ["app", "cloud", "kind", "key_id", "in_use", "source"] {
            assert!(c.get(k).is_some(), "{k} in {c}");
        }
    }
    let (code, text) = d.lines(&[]);
    assert_eq!(code, 0, "{text}");
    assert!(
        text.lines()
            .any(|l| l.starts_with("ok") && l.contains("database")),
        "{text}"
    );
}

/// The scenario's first vendor app (catalog key, index in `apps`).
fn first_vendor_app(scenario: &Scenario) -> (String, usize) {
    let (key, client_id, _) = scenario.vendor_apps().into_iter().next().unwrap();
    let at = scenario
        .apps
        .iter()
        .position(|a| a.client_id == client_id)
        .unwrap();
    (key, at)
}

fn env_key(app_type: &str) -> String {
    app_type.to_ascii_uppercase().replace('-', "_")
}

#[tokio::test(flavor = "multi_thread")]
async fn a_secret_ending_in_ten_days_fails_with_the_date_and_the_rotate_command() {
    let mut scenario = Scenario::contoso();
    let (key, at) = first_vendor_app(&scenario);
    let ends = time::OffsetDateTime::now_utc() + time::Duration::days(10);
    scenario.apps[at].secrets[0].end_date_time = ends;
    // Another secret of the registration, not the one configured, ends even sooner: not Consentry's
    // problem (Graph's hint tells them apart).
    let mut other = scenario.apps[at].secrets[0].clone();
    other.key_id = uuid::Uuid::new_v4();
    other.value = secrecy::SecretString::from("zq~another-secret-value".to_string());
    other.end_date_time = time::OffsetDateTime::now_utc() + time::Duration::days(5);
    scenario.apps[at].secrets.push(other.clone());
    let d = Doctor::start(scenario).await;
    let (code, report) = d.json(&[]);
    assert_eq!(code, 1, "{report:#}");
    let other_fact = report["credentials"]
        .as_array()
        .unwrap()
        .iter()
        .find(|c| c["key_id"] == other.key_id.to_string())
        .unwrap();
    assert_eq!(other_fact["in_use"], false, "{other_fact}");
    assert_eq!(other_fact["expiry"], "attention");
    assert_eq!(report["ok"], false);
    let bad = failing(&report);
    assert_eq!(bad.len(), 1, "{bad:#?}");
    let (id, message, action) = &bad[0];
    assert!(id.starts_with(&format!("app.{key}.credential.")), "{id}");
    let day = ends.date().to_string();
    assert!(message.contains(&day), "{message} names {day}");
    assert!(
        message.contains("in 9 day(s)") || message.contains("in 10 day(s)"),
        "{message}"
    );
    assert_eq!(
        action,
        &format!("rotate it before then: `consentry apps rotate-credential {key}`")
    );
    let check = report["checks"]
        .as_array()
        .unwrap()
        .iter()
        .find(|c| c["id"] == id.as_str())
        .unwrap();
    assert_eq!(check["status"], "attention");
    let cred = report["credentials"]
        .as_array()
        .unwrap()
        .iter()
        .find(|c| c["expiry"] == "attention" && c["in_use"] != false)
        .unwrap();
    assert_eq!(cred["app"]["app_type"], key.as_str());
    assert_eq!(cred["kind"], "secret");
    assert_eq!(
        cred["in_use"], true,
        "the hint matches the configured secret"
    );
    // The lines say the same.
    let (code, text) = d.lines(&[]);
    println!("{text}");
    assert_eq!(code, 1);
    let line = text.lines().find(|l| l.starts_with("attention")).unwrap();
    assert!(
        line.contains(&day) && line.contains(&format!("consentry apps rotate-credential {key}")),
        "{line}"
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn a_missing_permission_and_a_missing_redirect_uri_fail_with_what_to_do() {
    let mut scenario = Scenario::contoso();
    let (key, at) = first_vendor_app(&scenario);
    let app = &mut scenario.apps[at];
    let removed = if app.application.is_empty() {
        app.delegated.pop().unwrap()
    } else {
        app.application.pop().unwrap()
    };
    let d = Doctor::start(scenario).await;
    let (code, report) = d.json(&[]);
    assert_eq!(code, 1);
    let bad = failing(&report);
    assert_eq!(bad.len(), 1, "{bad:#?}");
    let (id, message, action) = &bad[0];
    assert_eq!(id, &format!("app.{key}.permissions"));
    assert!(message.contains(&removed), "{message} names {removed}");
    assert!(
        action.contains("start of a permission rollout") && action.contains("consentry rollouts"),
        "{action}"
    );

    // Another public URL: Consentry's callback is not registered on any app.
    let other = "https://elsewhere.vendor.example";
    let (code, report) = d.json(&[("CONSENTRY_PUBLIC_URL", other)]);
    assert_eq!(code, 1);
    let bad = failing(&report);
    let line = bad
        .iter()
        .find(|(id, _, _)| id == &format!("app.{key}.redirect_uris"))
        .unwrap();
    assert_eq!(
        line.1,
        format!("redirect URI missing: {other}/oauth/callback")
    );
    assert!(line.2.contains("Web platform"), "{}", line.2);
    let own = bad
        .iter()
        .find(|(id, _, _)| id == "app.consentry-app.redirect_uris")
        .unwrap();
    assert!(
        own.1
            .contains(&format!("{other}/console/sign-in/microsoft/callback")),
        "{}",
        own.1
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn a_bad_secret_a_missing_vendor_tenant_and_an_untrusted_or_unreachable_authority_fail_clearly()
 {
    let scenario = Scenario::contoso();
    let (key, _) = first_vendor_app(&scenario);
    let d = Doctor::start(scenario).await;

    let var = format!("CONSENTRY_APPS__{}__CLIENT_SECRET", env_key(&key));
    let (code, report) = d.json(&[(var.as_str(), "not-the-registered-secret")]);
    assert_eq!(code, 1);
    let bad = failing(&report);
    let token = bad
        .iter()
        .find(|(id, _, _)| id == &format!("app.{key}.token"))
        .unwrap_or_else(|| panic!("{bad:#?}"));
    assert!(
        token.1.contains("gets no token by client credentials"),
        "{}",
        token.1
    );
    assert!(token.2.contains(&format!("[apps.{key}]")), "{}", token.2);
    // Unknown, never an expiry: no credential line fails for it.
    assert!(
        !bad.iter()
            .any(|(id, _, _)| id.starts_with(&format!("app.{key}.credential"))),
        "{bad:#?}"
    );

    let (code, report) = d.json(&[("CONSENTRY_VENDOR_TENANT", "")]);
    assert_eq!(code, 1);
    let bad = failing(&report);
    let vt = bad.iter().find(|(id, _, _)| id == "vendor_tenant").unwrap();
    assert!(
        vt.2.contains("vendor_tenant =") && vt.2.contains("CONSENTRY_VENDOR_TENANT"),
        "{}",
        vt.2
    );

    // Without the simulator's CA, its certificate is not trusted: a TLS failure, named as such.
    let (code, text) = d.lines(&[("CONSENTRY_ENTRA__EXTRA_CA_FILE", "")]);
    assert_eq!(code, 1);
    let line = text.lines().find(|l| l.contains("tls.authority")).unwrap();
    assert!(
        line.starts_with("FAIL") && line.contains("TLS failure") && line.contains("extra_ca_file"),
        "{line}"
    );

    // Nothing listens there.
    let (code, text) = d.lines(&[("CONSENTRY_ENTRA__AUTHORITY", "https://127.0.0.1:9")]);
    assert_eq!(code, 1);
    let line = text.lines().find(|l| l.contains("tls.authority")).unwrap();
    assert!(
        line.starts_with("FAIL") && line.contains("cannot be reached"),
        "{line}"
    );
    assert!(
        text.lines()
            .any(|l| l.starts_with("FAIL") && l.contains("clock")),
        "{text}"
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn a_missing_database_and_a_wrong_master_key_fail() {
    let d = Doctor::start(Scenario::contoso()).await;
    // A database that is not there.
    let (code, report) = d.json(&[(
        "CONSENTRY_DATABASE_URL",
        &format!("sqlite://{}/absent.db", d.data().display()),
    )]);
    assert_eq!(code, 1);
    let db = failing(&report)
        .into_iter()
        .find(|(id, _, _)| id == "database")
        .unwrap();
    assert!(db.1.contains("does not exist"), "{}", db.1);
    assert!(
        !d.data().join("absent.db").exists(),
        "doctor creates nothing"
    );

    // Something sealed (a started re-authorization keeps its PKCE verifier sealed), then another key.
    let ok = |args: &[&str]| run::succeeded(d.run(args, &[]), args);
    run::contoso_by(ok);
    let (app_type, _) = first_vendor_app(&d.scenario);
    let created: Value = serde_json::from_str(&ok(&[
        "profiles",
        "create",
        "--tenant",
        "contoso.onmicrosoft.com",
        "--app-type",
        &app_type,
        "--json",
    ]))
    .unwrap();
    let profile = created["profile"]["id"].as_str().unwrap().to_string();
    ok(&["profiles", "reauthorize", &profile, "--method", "admin"]);
    let (code, report) = d.json(&[]);
    assert_eq!(code, 0, "{report:#}");
    let key = report["checks"]
        .as_array()
        .unwrap()
        .iter()
        .find(|c| c["id"] == "master_key")
        .unwrap()
        .clone();
    assert!(
        key["message"]
            .as_str()
            .unwrap()
            .contains("opened 1 sealed value"),
        "{key}"
    );
    let other = consentry_store::Sealer::generate_key_base64();
    let (code, report) = d.json(&[(
        "CONSENTRY_MASTER_KEY",
        secrecy::ExposeSecret::expose_secret(&other),
    )]);
    assert_eq!(code, 1);
    let key = failing(&report)
        .into_iter()
        .find(|(id, _, _)| id == "master_key")
        .unwrap();
    assert!(
        key.1.contains("could not be opened") && key.1.contains("pending_authorizations"),
        "{}",
        key.1
    );
    assert!(key.2.contains("restore the right key file"), "{}", key.2);
}

#[tokio::test(flavor = "multi_thread")]
async fn a_certificate_is_matched_by_thumbprint_and_its_registered_end_is_checked() {
    let scenario = Scenario::contoso();
    let (key, _) = first_vendor_app(&scenario);
    let client_id = scenario.vendor_apps()[0].1;
    let d = Doctor::start(scenario).await;
    let pair = consentry_certs::generate_self_signed(
        "Consentry vendor app",
        2,
        "vendor-pfx-password",
        time::OffsetDateTime::now_utc(),
    )
    .unwrap();
    let key_id = d
        .sim
        .control()
        .add_app_certificate(client_id, &pair.cer_pem)
        .unwrap();
    let pfx = d.data().join("vendor.pfx");
    std::fs::write(&pfx, &pair.pfx).unwrap();
    let k = env_key(&key);
    let secret_var = format!("CONSENTRY_APPS__{k}__CLIENT_SECRET");
    let file_var = format!("CONSENTRY_APPS__{k}__CERTIFICATE_FILE");
    let password_var = format!("CONSENTRY_APPS__{k}__CERTIFICATE_PASSWORD");
    let pfx_path = pfx.display().to_string();
    let over = [
        (secret_var.as_str(), ""),
        (file_var.as_str(), pfx_path.as_str()),
        (password_var.as_str(), "vendor-pfx-password"),
    ];
    let (code, report) = d.json(&over);
    assert_eq!(failing(&report), Vec::new(), "{report:#}");
    assert_eq!(code, 0);
    let creds: Vec<&Value> = report["credentials"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|c| c["app"]["app_type"] == key.as_str())
        .collect();
    let registered = creds
        .iter()
        .find(|c| c["key_id"] == key_id.to_string())
        .unwrap();
    assert_eq!(registered["kind"], "certificate");
    assert_eq!(registered["in_use"], true, "matched by thumbprint");
    assert!(
        creds
            .iter()
            .any(|c| c["source"] == "local_certificate" && c["expiry"] == "ok")
    );
    // The app's secret is registered but not what Consentry uses now.
    assert!(
        creds
            .iter()
            .any(|c| c["kind"] == "secret" && c["in_use"] == false)
    );

    // The registration says the certificate ends in 10 days: attention, with the rotate command.
    let ends = time::OffsetDateTime::now_utc() + time::Duration::days(10);
    d.sim
        .control()
        .set_certificate_end_date(client_id, key_id, ends)
        .unwrap();
    let (code, report) = d.json(&over);
    assert_eq!(code, 1);
    let bad = failing(&report);
    assert_eq!(bad.len(), 1, "{bad:#?}");
    assert_eq!(bad[0].0, format!("app.{key}.credential.{key_id}"));
    assert!(bad[0].1.contains(&ends.date().to_string()), "{}", bad[0].1);
    assert!(
        bad[0]
            .2
            .contains(&format!("consentry apps rotate-credential {key}"))
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn each_national_cloud_is_checked_with_its_own_vendor_tenant() {
    let d = Doctor::start(Scenario::national_clouds()).await;
    // The kit names the global vendor tenant only: each cloud's is missing.
    let (code, report) = d.json(&[]);
    assert_eq!(code, 1);
    let bad = failing(&report);
    for cloud in ["usgov", "usgov-dod", "china"] {
        let line = bad
            .iter()
            .find(|(id, _, _)| id == &format!("vendor_tenant.{cloud}"))
            .unwrap_or_else(|| panic!("{bad:#?}"));
        assert!(line.2.contains(&format!("[clouds.{cloud}]")), "{}", line.2);
        assert!(
            bad.iter()
                .any(|(id, _, _)| id == &format!("app.insights-m365@{cloud}.token")),
            "{bad:#?}"
        );
    }
    let (code, report) = d.json(&[
        (
            "CONSENTRY_CLOUDS__USGOV__VENDOR_TENANT",
            "vendor-gcch.onmicrosoft.us",
        ),
        (
            "CONSENTRY_CLOUDS__USGOV_DOD__VENDOR_TENANT",
            "0e9d1a7c-0000-4000-8000-00000000c102",
        ),
        (
            "CONSENTRY_CLOUDS__CHINA__VENDOR_TENANT",
            "0e9d1a7c-0000-4000-8000-00000000c103",
        ),
    ]);
    assert_eq!(failing(&report), Vec::new(), "{report:#}");
    assert_eq!(code, 0);
    let ids: Vec<&str> = report["checks"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| c["id"].as_str().unwrap())
        .collect();
    for cloud in ["usgov", "usgov-dod", "china"] {
        for id in [
            format!("tls.authority.{cloud}"),
            format!("tls.graph.{cloud}"),
            format!("clock.{cloud}"),
            format!("app.insights-m365@{cloud}.permissions"),
        ] {
            assert!(ids.contains(&id.as_str()), "{id} in {ids:?}");
        }
    }
}

//! The JSON control API and fault injection.

use std::time::{Duration, Instant};

use entra_sim::FaultRule;
use serde_json::json;

use crate::support::*;

fn rule(endpoint: &str) -> FaultRule {
    FaultRule {
        endpoint: endpoint.into(),
        rate: 1.0,
        latency_ms: 0,
        status: None,
        retry_after_secs: None,
        drop_connection: false,
    }
}

#[tokio::test]
async fn control_api_over_http() {
    let sim = start().await;
    let http = client(&sim);
    let ops = format!("{}/_sim/ops", sim.base_url());
    let resp = http
        .post(&ops)
        .json(&json!({"op": "grant_admin_consent", "tenant": CONTOSO, "client_id": INSIGHTS}))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status().as_u16(), 200);
    assert_eq!(app_token(&sim, INSIGHTS, INSIGHTS_SECRET).await.0, 200);
    let resp = http
        .post(&ops)
        .json(&json!({"op": "delete_service_principal", "tenant": CONTOSO, "client_id": INSIGHTS}))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status().as_u16(), 200);
    assert_eq!(app_token(&sim, INSIGHTS, INSIGHTS_SECRET).await.0, 401);
    let resp = http
        .post(&ops)
        .json(&json!({"op": "revoke_sessions", "user": "ghost@contoso.onmicrosoft.com"}))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status().as_u16(), 404);
    let resp = http
        .post(&ops)
        .json(&json!({"op": "no_such_op"}))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status().as_u16(), 400);
    let resp = http
        .post(&ops)
        .json(&json!({"op": "advance_clock", "seconds": 86400}))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status().as_u16(), 200);
    let clock: serde_json::Value = http
        .get(format!("{}/_sim/clock", sim.base_url()))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(clock["offset_seconds"], 86400);
    let now = clock["now"]
        .as_str()
        .expect("the time as an RFC 3339 string");
    assert!(
        time::OffsetDateTime::parse(now, &time::format_description::well_known::Rfc3339).is_ok(),
        "{now}"
    );
    let state: serde_json::Value = http
        .get(format!("{}/_sim/state", sim.base_url()))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let contoso = state["tenants"]
        .as_array()
        .unwrap()
        .iter()
        .find(|t| t["id"] == CONTOSO_ID)
        .unwrap();
    let admin = contoso["users"]
        .as_array()
        .unwrap()
        .iter()
        .find(|u| u["upn"] == ADMIN)
        .unwrap();
    assert!(
        !admin["password"].as_str().unwrap().contains("Passw0rd"),
        "passwords are redacted in the dump"
    );
    assert!(state["apps"].as_array().unwrap().iter().all(|a| {
        a["secrets"]
            .as_array()
            .unwrap()
            .iter()
            .all(|s| s["value"].as_str().unwrap().ends_with("(redacted)"))
    }));
    sim.shutdown().await;
}

#[tokio::test]
async fn faults_answer_429_5xx_drop_connections_and_add_latency() {
    let sim = start().await;
    sim.control()
        .grant_admin_consent(CONTOSO, uuid(INSIGHTS))
        .unwrap();
    let control = sim.control();

    control
        .set_faults(vec![FaultRule {
            status: Some(429),
            ..rule("token")
        }])
        .unwrap();
    let resp = client(&sim)
        .post(sim.token_endpoint(CONTOSO))
        .form(&[
            ("grant_type", "client_credentials"),
            ("client_id", INSIGHTS),
            ("client_secret", INSIGHTS_SECRET),
            ("scope", "https://graph.microsoft.com/.default"),
        ])
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status().as_u16(), 429);
    assert_eq!(resp.headers()["retry-after"], "60");

    control
        .set_faults(vec![FaultRule {
            status: Some(429),
            retry_after_secs: Some(7),
            ..rule("graph")
        }])
        .unwrap();
    let (status, body) = app_token(&sim, INSIGHTS, INSIGHTS_SECRET).await;
    assert_eq!(
        status, 200,
        "the graph rule leaves the token endpoint alone"
    );
    let token = body["access_token"].as_str().unwrap().to_owned();
    let (status, headers, body) = graph_get(&sim, "/servicePrincipals", &token).await;
    assert_eq!(status, 429);
    assert_eq!(headers["retry-after"], "7");
    assert_eq!(body["error"]["code"], "TooManyRequests");
    assert_eq!(body["error"]["innerError"]["status"], "429");
    assert_eq!(
        headers["x-ms-throttle-information"],
        "ResourceUnitLimitExceeded"
    );
    // Graph may also throttle without Retry-After.
    control
        .set_faults(vec![FaultRule {
            status: Some(429),
            ..rule("graph")
        }])
        .unwrap();
    let (status, headers, _) = graph_get(&sim, "/servicePrincipals", &token).await;
    assert_eq!(status, 429);
    assert!(!headers.contains_key("retry-after"));

    control
        .set_faults(vec![FaultRule {
            status: Some(503),
            ..rule("/v1.0/servicePrincipals")
        }])
        .unwrap();
    assert_eq!(graph_get(&sim, "/servicePrincipals", &token).await.0, 503);
    assert_eq!(
        graph_get(&sim, "/organization", &token).await.0,
        200,
        "prefix rules are specific"
    );

    control
        .set_faults(vec![FaultRule {
            drop_connection: true,
            ..rule("graph")
        }])
        .unwrap();
    let err = client(&sim)
        .get(format!("{}/organization", sim.graph_base()))
        .bearer_auth(&token)
        .send()
        .await;
    assert!(err.is_err(), "connection dropped: {err:?}");

    control
        .set_faults(vec![FaultRule {
            latency_ms: 300,
            ..rule("graph")
        }])
        .unwrap();
    let started = Instant::now();
    assert_eq!(graph_get(&sim, "/organization", &token).await.0, 200);
    assert!(started.elapsed() >= Duration::from_millis(300));

    control
        .set_faults(vec![FaultRule {
            status: Some(500),
            rate: 0.0,
            ..rule("graph")
        }])
        .unwrap();
    for _ in 0..5 {
        assert_eq!(
            graph_get(&sim, "/organization", &token).await.0,
            200,
            "rate 0 never fires"
        );
    }
    assert!(
        control
            .set_faults(vec![FaultRule {
                rate: 1.5,
                ..rule("graph")
            }])
            .is_err()
    );
    // The control API itself is never faulted.
    control
        .set_faults(vec![FaultRule {
            status: Some(500),
            ..rule("/")
        }])
        .unwrap();
    let resp = client(&sim)
        .get(format!("{}/_sim/state", sim.base_url()))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status().as_u16(), 200);
    sim.shutdown().await;
}

#[tokio::test]
async fn plain_http_and_ca_file_options() {
    let dir = tempfile::tempdir().unwrap();
    let sim = start_with(entra_sim::SimOptions {
        state_dir: Some(dir.path().to_path_buf()),
        ..Default::default()
    })
    .await;
    let written = std::fs::read_to_string(sim.ca_pem_path().unwrap()).unwrap();
    assert_eq!(written, sim.ca_pem());
    assert!(sim.base_url().starts_with("https://127.0.0.1:"));
    sim.shutdown().await;
    let sim = start_with(entra_sim::SimOptions {
        tls: false,
        ..Default::default()
    })
    .await;
    assert!(sim.base_url().starts_with("http://"));
    let resp = reqwest::get(format!("{}/{CONTOSO}/discovery/v2.0/keys", sim.base_url()))
        .await
        .unwrap();
    assert_eq!(resp.status().as_u16(), 200);
    sim.shutdown().await;
}

#[tokio::test]
async fn tls_certificate_from_files() {
    let dir = tempfile::tempdir().unwrap();
    let ca_key = rcgen::KeyPair::generate().unwrap();
    let mut ca_params = rcgen::CertificateParams::new(Vec::<String>::new()).unwrap();
    ca_params.is_ca = rcgen::IsCa::Ca(rcgen::BasicConstraints::Unconstrained);
    ca_params
        .distinguished_name
        .push(rcgen::DnType::CommonName, "test CA");
    let ca = ca_params.self_signed(&ca_key).unwrap();
    let issuer = rcgen::Issuer::new(ca_params, ca_key);
    let key = rcgen::KeyPair::generate().unwrap();
    let cert = rcgen::CertificateParams::new(vec!["127.0.0.1".to_owned()])
        .unwrap()
        .signed_by(&key, &issuer)
        .unwrap();
    let (cert_path, key_path) = (dir.path().join("cert.pem"), dir.path().join("key.pem"));
    std::fs::write(&cert_path, format!("{}{}", cert.pem(), ca.pem())).unwrap();
    std::fs::write(&key_path, key.serialize_pem()).unwrap();
    let sim = start_with(entra_sim::SimOptions {
        tls_cert_files: Some((cert_path, key_path)),
        ..Default::default()
    })
    .await;
    assert_eq!(sim.ca_pem().trim(), ca.pem().trim());
    let resp = client(&sim)
        .get(format!("{}/{CONTOSO}/discovery/v2.0/keys", sim.base_url()))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status().as_u16(), 200);
    sim.shutdown().await;
}

#[tokio::test]
async fn the_binary_serves_a_scenario_file() {
    use std::io::{BufRead, BufReader};
    let dir = tempfile::tempdir().unwrap();
    let scenario = concat!(env!("CARGO_MANIFEST_DIR"), "/scenarios/contoso.toml");
    let mut child = std::process::Command::new(env!("CARGO_BIN_EXE_entra-sim"))
        .args([
            "--scenario",
            scenario,
            "--listen",
            "127.0.0.1:0",
            "--state-dir",
        ])
        .arg(dir.path())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::null())
        .spawn()
        .unwrap();
    let mut line = String::new();
    let mut stdout = BufReader::new(child.stdout.take().unwrap());
    stdout.read_line(&mut line).unwrap();
    // The binary prints more lines after the first: keep reading them, or its next `println!`
    // meets a closed pipe and the process dies.
    let drain = std::thread::spawn(move || std::io::copy(&mut stdout, &mut std::io::sink()));
    let base = line
        .trim()
        .strip_prefix("entra-sim listening on ")
        .map(str::to_owned);
    let ca = std::fs::read(dir.path().join("ca.pem"));
    let result = async {
        let base = base.ok_or("no base URL printed")?;
        let ca = reqwest::Certificate::from_pem(&ca.map_err(|_| "no ca.pem")?)
            .map_err(|_| "bad ca.pem")?;
        let http = reqwest::Client::builder()
            .tls_certs_merge([ca])
            .no_proxy()
            .build()
            .map_err(|_| "client")?;
        let resp = http
            .get(format!(
                "{base}/{CONTOSO}/v2.0/.well-known/openid-configuration"
            ))
            .send()
            .await
            .map_err(|_| "request")?;
        Ok::<u16, &str>(resp.status().as_u16())
    }
    .await;
    child.kill().unwrap();
    child.wait().unwrap();
    let _ = drain.join();
    assert_eq!(result, Ok(200));
}

#[tokio::test]
async fn persisted_state_survives_a_restart_for_the_same_scenario_only() {
    let dir = tempfile::tempdir().unwrap();
    let opts = || entra_sim::SimOptions {
        state_dir: Some(dir.path().to_path_buf()),
        persist: true,
        ..Default::default()
    };
    let sim = start_with(opts()).await;
    let browser = Browser::new(&sim);
    let body = sign_in_and_redeem(
        &sim,
        &browser,
        USER,
        IAAS_DELEGATED,
        IAAS_SECRET,
        "openid offline_access User.Read",
    )
    .await;
    let rt = body["refresh_token"].as_str().unwrap().to_owned();
    let access = body["access_token"].as_str().unwrap().to_owned();
    sim.control()
        .grant_admin_consent(CONTOSO, uuid(INSIGHTS))
        .unwrap();
    sim.control()
        .advance_clock(Duration::from_secs(86400))
        .unwrap();
    sim.control()
        .reset_password(MFA_USER, "Changed-Demo-Passw0rd!")
        .unwrap();
    sim.shutdown().await;
    let saved = std::fs::read_to_string(dir.path().join("state.json")).unwrap();
    assert!(
        saved.contains("TEST-ONLY") || saved.contains("PRIVATE KEY"),
        "the signing key is saved"
    );

    // Same scenario: consents, refresh tokens, clock, signing key and user changes come back.
    let sim = start_with(opts()).await;
    let (status, refreshed) = refresh(&sim, IAAS_DELEGATED, IAAS_SECRET, &rt).await;
    assert_eq!(status, 200, "{refreshed}");
    assert_eq!(app_token(&sim, INSIGHTS, INSIGHTS_SECRET).await.0, 200);
    let (status, _, _) = graph_get(&sim, "/me", &access).await;
    assert_eq!(
        status, 401,
        "a day later the old access token has expired (clock kept)"
    );
    let offset: serde_json::Value = client(&sim)
        .get(format!("{}/_sim/clock", sim.base_url()))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(offset["offset_seconds"], 86400);
    let page = Browser::new(&sim)
        .sign_in(
            &authorize_url(&sim, IAAS_DELEGATED, "openid", "c", &[]),
            MFA_USER,
            "Changed-Demo-Passw0rd!",
        )
        .await;
    assert!(
        page.body.contains("Enter code"),
        "the new password works: {}",
        page.body
    );
    sim.shutdown().await;

    // Another scenario: the saved state is not used.
    let mut other = entra_sim::Scenario::contoso();
    other.settings.code_lifetime_secs = 300;
    let sim = entra_sim::RunningSim::start(other, opts()).await.unwrap();
    let (status, body) = refresh(&sim, IAAS_DELEGATED, IAAS_SECRET, &rt).await;
    assert_aad_error(status, &body, 400, "invalid_grant", 70000);
    sim.shutdown().await;
}

//! Evidence behind a diagnosis: when the consent user's sign-in is refused, a check reads the
//! tenant's sign-in logs (the profile's app holds `AuditLog.Read.All`, the tenant has Entra ID P2)
//! and the API, the console and the history show when, from which IP and which conditional access
//! policy refused it; without the permission or the license the diagnosis says why there is none.

use consentry_testkit::TestEnv;
use reqwest::{Method, StatusCode};
use serde_json::{Value, json};

use crate::check::{check, console_session, vendor_app};

const CONTOSO: &str = "contoso.onmicrosoft.com";
const OWNER: &str = "group.owner@contoso.onmicrosoft.com";
const PRA: &str = "pra@contoso.onmicrosoft.com";
const OFFICE_IP: &str = "203.0.113.7";
/// The Cloud Governance Delegated App: its registration in entra-sim also asks for
/// `AuditLog.Read.All`, which the organization's admin consent grants.
const APP_TYPE: &str = "cloud-governance-delegated";

/// A delegated profile the group owner consented to from the office, the app's admin consent
/// (with `AuditLog.Read.All`) granted in the tenant.
async fn delegated_env() -> (TestEnv, String, String) {
    let env = TestEnv::start().await;
    let org = env.connect_contoso(&[]).await;
    env.sim
        .control()
        .grant_admin_consent(CONTOSO, vendor_app(APP_TYPE))
        .unwrap();
    let id = env.profile(APP_TYPE, None).await;
    env.authorize(&id, json!({"method": "user"}), OWNER, Some(OFFICE_IP))
        .await;
    let v = check(&env, &id).await;
    assert_eq!(v["outcome"], "valid", "{v}");
    assert!(
        v["profile"]["reason_view"].is_null(),
        "a valid profile has no evidence: {v}"
    );
    (env, id, org)
}

fn evidence(v: &Value) -> &Value {
    &v["profile"]["reason_view"]["evidence"]
}

/// The newest entry of the evidence, after checking it was read.
fn newest(v: &Value) -> &Value {
    let e = evidence(v);
    assert_eq!(e["state"], "sign_ins", "{v}");
    let entries = e["entries"].as_array().expect("entries");
    assert!(!entries.is_empty(), "no entry: {v}");
    &entries[0]
}

async fn history(env: &TestEnv, id: &str) -> Vec<Value> {
    let (_, h) = env
        .api(Method::GET, &format!("/api/v1/profiles/{id}/history"), None)
        .await;
    h["items"].as_array().unwrap().clone()
}

#[tokio::test]
async fn a_conditional_access_block_shows_the_policy_and_the_refused_ip() {
    let (env, id, org) = delegated_env().await;
    let policy: entra_sim::CaPolicy = serde_json::from_value(json!({
        "name": "Head office only",
        "users": [OWNER],
        "allowed_ranges": ["198.51.100.0/24"],
        "action": "block"
    }))
    .unwrap();
    env.sim
        .control()
        .set_ca_policies(CONTOSO, vec![policy])
        .unwrap();
    let v = check(&env, &id).await;
    assert_eq!(
        v["profile"]["reason"]["code"], "conditional_access_blocked",
        "{v}"
    );
    let entry = newest(&v);
    assert_eq!(entry["error_code"], 53003, "{v}");
    assert_eq!(entry["ip_address"], OFFICE_IP, "{v}");
    assert_eq!(entry["interactive"], false, "{v}");
    assert_eq!(entry["user_principal_name"], OWNER, "{v}");
    assert_eq!(entry["conditional_access_status"], "failure", "{v}");
    assert_eq!(
        entry["policies"],
        json!([{"display_name": "Head office only", "result": "failure"}]),
        "{v}"
    );

    // The API's profile read and the history keep it.
    let (s, p) = env
        .api(Method::GET, &format!("/api/v1/profiles/{id}"), None)
        .await;
    assert_eq!(s, StatusCode::OK);
    assert_eq!(p["reason_view"]["evidence"], *evidence(&v), "{p}");
    let h = history(&env, &id).await;
    assert_eq!(h[0]["kind"], "status_changed");
    assert_eq!(h[0]["evidence"], *evidence(&v), "{h:?}");

    // The console shows it under the reason.
    let session = console_session(&env, &org).await;
    let page = consentry_testkit::console::get(
        &env.state,
        &format!("/console/profiles/{id}"),
        Some(&session),
    )
    .await;
    assert_eq!(page.status, StatusCode::OK);
    let evidence_html = page
        .body
        .split("id=\"evidence\"")
        .nth(1)
        .expect("an evidence table");
    assert!(
        evidence_html.contains("Head office only: failure"),
        "{}",
        page.body
    );
    assert!(evidence_html.contains(OFFICE_IP), "{}", page.body);
    assert!(evidence_html.contains("AADSTS53003"), "{}", page.body);

    // A second check keeps the evidence it has (no need to read the logs again) and writes no
    // history event.
    let again = check(&env, &id).await;
    assert_eq!(again["changed"], false);
    assert_eq!(evidence(&again), evidence(&v));
    assert_eq!(history(&env, &id).await.len(), h.len());

    // Lifting the policy makes the profile valid; the evidence goes with the reason.
    env.sim.control().set_ca_policies(CONTOSO, vec![]).unwrap();
    let valid = check(&env, &id).await;
    assert_eq!(valid["outcome"], "valid", "{valid}");
    let (_, p) = env
        .api(Method::GET, &format!("/api/v1/profiles/{id}"), None)
        .await;
    assert!(p["reason_view"].is_null(), "{p}");
}

#[tokio::test]
async fn mfa_enabled_after_consent_and_a_password_reset_show_the_refused_refresh() {
    let (env, id, _) = delegated_env().await;
    env.sim.control().set_mfa_required(OWNER, true).unwrap();
    let v = check(&env, &id).await;
    assert_eq!(
        v["profile"]["reason"]["code"], "mfa_enabled_after_consent",
        "{v}"
    );
    let entry = newest(&v);
    assert_eq!(entry["error_code"], 50076, "{v}");
    assert!(
        entry["failure_reason"]
            .as_str()
            .unwrap()
            .contains("multi-factor"),
        "{v}"
    );
    assert_eq!(entry["ip_address"], OFFICE_IP);

    env.sim.control().set_mfa_required(OWNER, false).unwrap();
    env.sim
        .control()
        .reset_password(OWNER, "Changed-Passw0rd!")
        .unwrap();
    let v = check(&env, &id).await;
    assert_eq!(
        v["profile"]["reason"]["code"], "password_reset_or_sessions_revoked",
        "{v}"
    );
    // The reason changed: the logs are read again, and the newest refusal is the reset's.
    let entry = newest(&v);
    assert_eq!(entry["error_code"], 50173, "{v}");
    assert!(
        entry["failure_reason"]
            .as_str()
            .unwrap()
            .contains("password"),
        "{v}"
    );
}

#[tokio::test]
async fn without_the_permission_or_the_license_the_diagnosis_says_why_there_is_no_evidence() {
    let env = TestEnv::start().await;
    env.connect_contoso(&[]).await;
    // insights-m365's registration does not ask for AuditLog.Read.All.
    let id = env.profile("insights-m365", None).await;
    env.authorize(&id, json!({"method": "admin"}), PRA, Some(OFFICE_IP))
        .await;
    env.sim.control().set_mfa_required(PRA, true).unwrap();
    let v = check(&env, &id).await;
    assert_eq!(
        v["profile"]["reason"]["code"], "mfa_enabled_after_consent",
        "{v}"
    );
    assert_eq!(evidence(&v)["state"], "unavailable", "{v}");
    assert_eq!(evidence(&v)["why"]["code"], "permission_missing", "{v}");

    // The same delegated profile as above, in a tenant without Entra ID P1/P2.
    let (env, id, org) = delegated_env().await;
    env.sim
        .control()
        .set_entra_id_plan(CONTOSO, entra_sim::EntraIdPlan::Free)
        .unwrap();
    env.sim.control().set_mfa_required(OWNER, true).unwrap();
    let v = check(&env, &id).await;
    assert_eq!(evidence(&v)["state"], "unavailable", "{v}");
    assert_eq!(evidence(&v)["why"]["code"], "license_missing", "{v}");
    let session = console_session(&env, &org).await;
    let page = consentry_testkit::console::get(
        &env.state,
        &format!("/console/profiles/{id}"),
        Some(&session),
    )
    .await;
    assert!(
        page.body.contains("Evidence unavailable") && page.body.contains("P1 or P2"),
        "{}",
        page.body
    );
}

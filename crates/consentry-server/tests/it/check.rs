//! Profile checks end to end: a profile is authorized through entra-sim's pages, a failure is caused
//! with the simulator's control API, `POST /api/v1/profiles/{id}/check` names the exact reason and
//! remediation, and the fix makes the profile valid again with a history event.

use std::sync::Arc;

use base64::Engine;
use consentry_domain::{CheckOutcome, CheckPolicy, CheckTrigger, Checker, ProfileId};
use consentry_testkit::{CUSTOM_APP_ID, CUSTOM_APP_PFX, CUSTOM_APP_PFX_PASSWORD, TestEnv};
use reqwest::{Method, StatusCode};
use serde_json::{Value, json};

const CONTOSO: &str = "contoso.onmicrosoft.com";
const ADMIN: &str = "admin@contoso.onmicrosoft.com";
const PRA: &str = "pra@contoso.onmicrosoft.com";
const OFFICE_IP: &str = "203.0.113.7";

pub(crate) fn vendor_app(key: &str) -> uuid::Uuid {
    entra_sim::Scenario::contoso()
        .client_id_for(key)
        .expect("app in the scenario")
}

/// Authorizes a profile of `app_type` with administrator consent by `upn`, from the office IP.
pub(crate) async fn authorize(env: &TestEnv, id: &str, upn: &str, extra: Value) {
    let mut body = json!({"method": "admin"});
    if let (Some(b), Some(e)) = (body.as_object_mut(), extra.as_object()) {
        b.extend(e.clone());
    }
    env.authorize(id, body, upn, Some(OFFICE_IP)).await;
}

async fn hybrid_env(upn: &str) -> (TestEnv, String) {
    let env = TestEnv::start().await;
    env.connect_contoso(&[]).await;
    let id = env.profile("insights-m365", None).await;
    authorize(&env, &id, upn, json!({})).await;
    (env, id)
}

pub(crate) async fn check(env: &TestEnv, id: &str) -> Value {
    let (s, v) = env
        .api(Method::POST, &format!("/api/v1/profiles/{id}/check"), None)
        .await;
    assert_eq!(s, StatusCode::OK, "{v}");
    v
}

async fn history(env: &TestEnv, id: &str) -> Vec<Value> {
    let (_, h) = env
        .api(Method::GET, &format!("/api/v1/profiles/{id}/history"), None)
        .await;
    h["items"].as_array().unwrap().clone()
}

fn remediation(v: &Value) -> String {
    v["profile"]["reason_view"]["remediation"]
        .as_array()
        .unwrap()
        .iter()
        .map(|s| s.as_str().unwrap())
        .collect::<Vec<_>>()
        .join(" ")
}

/// Asserts the check made the profile invalid with `code`, writing one history event.
async fn expect_invalid(env: &TestEnv, id: &str, code: &str) -> Value {
    let before = history(env, id).await.len();
    let v = check(env, id).await;
    assert_eq!(v["outcome"], "invalid", "{v}");
    assert_eq!(v["status"], "invalid");
    assert_eq!(v["changed"], true);
    assert_eq!(v["profile"]["reason"]["code"], code, "{v}");
    let h = history(env, id).await;
    assert_eq!(h.len(), before + 1, "one history event per status change");
    assert_eq!(h[0]["kind"], "status_changed");
    assert_eq!(h[0]["to_status"], "invalid");
    // Checking again changes nothing and writes nothing.
    let again = check(env, id).await;
    assert_eq!(again["changed"], false, "{again}");
    assert_eq!(again["profile"]["reason"]["code"], code);
    assert_eq!(history(env, id).await.len(), before + 1);
    v
}

/// Re-authorizes with the global administrator, then checks: valid again.
async fn fix_by_reauthorizing(env: &TestEnv, id: &str) {
    authorize(env, id, ADMIN, json!({})).await;
    let v = check(env, id).await;
    assert_eq!(v["outcome"], "valid", "{v}");
}

#[tokio::test]
async fn a_healthy_profile_stays_valid_without_history_noise_and_rotates_its_refresh_token() {
    use consentry_domain::SecretKind;
    use secrecy::ExposeSecret;
    let (env, id) = hybrid_env(ADMIN).await;
    let pid = ProfileId::parse(&id).unwrap();
    let store = env.state.svc.store();
    let rt_before = store
        .get_secret(pid, SecretKind::RefreshToken)
        .await
        .unwrap()
        .unwrap();
    let events = history(&env, &id).await.len();
    let checked_before = env.get_profile(&id).await["last_checked_at"].clone();

    let v = check(&env, &id).await;
    assert_eq!(v["outcome"], "valid", "{v}");
    assert_eq!(v["changed"], false);
    assert_eq!(
        history(&env, &id).await.len(),
        events,
        "no event without a change"
    );
    assert_ne!(
        env.get_profile(&id).await["last_checked_at"],
        checked_before
    );
    let rt_after = store
        .get_secret(pid, SecretKind::RefreshToken)
        .await
        .unwrap()
        .unwrap();
    assert_ne!(
        rt_before.expose_secret(),
        rt_after.expose_secret(),
        "the rotated refresh token is stored"
    );
}

#[tokio::test]
async fn password_reset_then_reauthorization() {
    let (env, id) = hybrid_env(PRA).await;
    env.sim
        .control()
        .reset_password(PRA, "New-Passw0rd!")
        .unwrap();
    let v = expect_invalid(&env, &id, "password_reset_or_sessions_revoked").await;
    assert_eq!(v["profile"]["reason"]["upn"], PRA);
    assert!(remediation(&v).contains("new password"), "{v}");
    fix_by_reauthorizing(&env, &id).await;
    let h = history(&env, &id).await;
    assert_eq!(h[0]["kind"], "reauthorization_completed", "{h:?}");
    assert_eq!(h[0]["to_status"], "valid");
}

#[tokio::test]
async fn revoked_sessions() {
    let (env, id) = hybrid_env(PRA).await;
    env.sim.control().revoke_sessions(PRA).unwrap();
    expect_invalid(&env, &id, "password_reset_or_sessions_revoked").await;
    fix_by_reauthorizing(&env, &id).await;
}

#[tokio::test]
async fn disabled_and_deleted_consent_users() {
    let (env, id) = hybrid_env(PRA).await;
    env.sim.control().set_user_enabled(PRA, false).unwrap();
    let v = expect_invalid(&env, &id, "consent_user_disabled").await;
    assert!(remediation(&v).contains("another account"), "{v}");
    fix_by_reauthorizing(&env, &id).await;

    // Now the consent user is the global admin; the PRA account is deleted: no effect.
    env.sim.control().delete_user(PRA).unwrap();
    assert_eq!(check(&env, &id).await["outcome"], "valid");

    let (env, id) = hybrid_env(PRA).await;
    env.sim.control().delete_user(PRA).unwrap();
    let v = expect_invalid(&env, &id, "consent_user_deleted").await;
    assert!(remediation(&v).contains("another account"), "{v}");
    fix_by_reauthorizing(&env, &id).await;
}

#[tokio::test]
async fn mfa_enabled_after_consent() {
    let (env, id) = hybrid_env(PRA).await;
    env.sim.control().set_mfa_required(PRA, true).unwrap();
    let v = expect_invalid(&env, &id, "mfa_enabled_after_consent").await;
    assert!(remediation(&v).contains("multi-factor"), "{v}");
    fix_by_reauthorizing(&env, &id).await;
}

const OUTBOUND: &str = "198.51.100.10, 192.0.2.16/28";

/// A hybrid profile authorized by `upn` on a Consentry whose outbound addresses are [`OUTBOUND`].
async fn hybrid_env_with_outbound(upn: &str) -> (TestEnv, String, String) {
    let env = TestEnv::start_with_settings(
        entra_sim::Scenario::contoso(),
        vec![(
            "CONSENTRY_NETWORK__OUTBOUND_ADDRESSES".into(),
            OUTBOUND.into(),
        )],
    )
    .await;
    let org = env.connect_contoso(&[]).await;
    let id = env.profile("insights-m365", None).await;
    authorize(&env, &id, upn, json!({})).await;
    (env, id, org)
}

#[tokio::test]
async fn conditional_access_names_the_original_ip_and_lifting_the_policy_restores_validity() {
    let (env, id, org) = hybrid_env_with_outbound(ADMIN).await;
    let policy: entra_sim::CaPolicy = serde_json::from_value(json!({
        "name": "Only from HQ",
        "users": [ADMIN],
        "allowed_ranges": ["198.51.100.0/24"],
        "action": "block"
    }))
    .unwrap();
    env.sim
        .control()
        .set_ca_policies(CONTOSO, vec![policy])
        .unwrap();
    let v = expect_invalid(&env, &id, "conditional_access_blocked").await;
    assert_eq!(v["profile"]["reason"]["original_ip"], OFFICE_IP);
    // The advice names both the consent IP and the service's own outbound addresses, which
    // Microsoft evaluates at every refresh (entra-facts §7).
    assert_eq!(
        v["profile"]["reason"]["outbound_addresses"],
        json!(["198.51.100.10", "192.0.2.16/28"]),
        "{v}"
    );
    assert!(remediation(&v).contains(OFFICE_IP), "{v}");
    assert!(
        remediation(&v).contains("198.51.100.10, 192.0.2.16/28"),
        "{v}"
    );
    // The console's profile detail shows the same remediation.
    let session = console_session(&env, &org).await;
    let page = consentry_testkit::console::get(
        &env.state,
        &format!("/console/profiles/{id}"),
        Some(&session),
    )
    .await;
    assert_eq!(page.status, StatusCode::OK);
    assert!(page.body.contains(OFFICE_IP), "{}", page.body);
    assert!(
        page.body.contains("198.51.100.10, 192.0.2.16/28"),
        "{}",
        page.body
    );

    // The policy is fixed in the tenant: the next check makes the profile valid again.
    env.sim.control().set_ca_policies(CONTOSO, vec![]).unwrap();
    let v = check(&env, &id).await;
    assert_eq!(v["outcome"], "valid", "{v}");
    assert_eq!(v["changed"], true);
    assert_eq!(v["previous_status"], "invalid");
    let h = history(&env, &id).await;
    assert_eq!(h[0]["kind"], "status_changed");
    assert_eq!(h[0]["from_status"], "invalid");
    assert_eq!(h[0]["to_status"], "valid");
}

#[tokio::test]
async fn refresh_token_unused_for_91_days() {
    let (env, id) = hybrid_env(ADMIN).await;
    env.sim
        .control()
        .advance_clock(std::time::Duration::from_secs(91 * 24 * 3600))
        .unwrap();
    // Consentry lives in the same time as Microsoft (ID tokens' validity is checked against it).
    env.clock.advance(time::Duration::days(91));
    expect_invalid(&env, &id, "refresh_token_inactive").await;
    fix_by_reauthorizing(&env, &id).await;
}

#[tokio::test]
async fn application_permissions_consent_revoked_app_removed_and_vendor_secret_expired() {
    let env = TestEnv::start().await;
    env.connect_contoso(&["teams"]).await;
    let id = env.profile("m365-all", Some("cloud-backup-m365")).await;
    authorize(&env, &id, ADMIN, json!({})).await;
    assert_eq!(check(&env, &id).await["outcome"], "valid");

    env.sim
        .control()
        .revoke_consent(CONTOSO, vendor_app("m365-all"))
        .unwrap();
    let v = expect_invalid(&env, &id, "consent_revoked").await;
    assert!(remediation(&v).contains("grant consent again"), "{v}");
    fix_by_reauthorizing(&env, &id).await;

    env.sim
        .control()
        .delete_service_principal(CONTOSO, vendor_app("m365-all"))
        .unwrap();
    expect_invalid(&env, &id, "app_removed_from_tenant").await;
    fix_by_reauthorizing(&env, &id).await;

    env.sim
        .control()
        .expire_secret(vendor_app("m365-all"), None)
        .unwrap();
    let v = expect_invalid(&env, &id, "vendor_credential_problem").await;
    assert_eq!(v["profile"]["reason_view"]["owner"], "operator", "{v}");
}

#[tokio::test]
async fn custom_app_certificate_removed() {
    let env = TestEnv::start().await;
    env.connect_contoso(&[]).await;
    let id = env
        .profile("custom-azure-app", Some("cloud-backup-m365"))
        .await;
    let b64 = base64::engine::general_purpose::STANDARD.encode(CUSTOM_APP_PFX);
    let extra = json!({"application_id": CUSTOM_APP_ID,
        "certificate_pfx_base64": b64, "certificate_password": CUSTOM_APP_PFX_PASSWORD});
    authorize(&env, &id, ADMIN, extra.clone()).await;
    let v = check(&env, &id).await;
    assert!(
        v["outcome"] == "valid" || v["outcome"] == "attention",
        "{v}"
    );
    let thumb = env.get_profile(&id).await["certificate"]["thumbprint"]
        .as_str()
        .unwrap()
        .to_string();
    env.sim
        .control()
        .remove_app_certificate(CUSTOM_APP_ID.parse().unwrap(), &thumb)
        .unwrap();
    let v = expect_invalid(&env, &id, "certificate_not_registered").await;
    assert!(remediation(&v).contains(&thumb), "{v}");
}

#[tokio::test]
async fn never_authorized_profiles_are_not_checked_and_pending_ones_check_their_credentials() {
    let env = TestEnv::start().await;
    env.connect_contoso(&[]).await;
    let id = env.profile("insights-m365", None).await;
    let v = check(&env, &id).await;
    assert_eq!(v["outcome"], "skipped", "{v}");
    assert!(
        v["message"]
            .as_str()
            .unwrap()
            .contains("never been authorized")
    );
    assert_eq!(v["profile"]["reason"]["code"], "not_yet_authorized");

    authorize(&env, &id, ADMIN, json!({})).await;
    let (s, _) = env.start_reauth(&id, json!({"method": "admin"})).await;
    assert_eq!(s, StatusCode::OK);
    // A re-authorization in progress keeps the previous credentials in use: they are checked,
    // and the profile stays pending.
    let v = check(&env, &id).await;
    assert_eq!(v["outcome"], "valid", "{v}");
    assert_eq!(v["status"], "pending");
    assert!(v["message"].as_str().unwrap().contains("re-authorization"));

    let (s, v) = env
        .api(
            Method::POST,
            "/api/v1/profiles/00000000-0000-4000-8000-000000000000/check",
            None,
        )
        .await;
    assert_eq!(s, StatusCode::NOT_FOUND, "{v}");
}

#[tokio::test]
async fn transient_faults_never_make_a_profile_invalid() {
    let (env, id) = hybrid_env(ADMIN).await;
    let checker = Checker::new(
        env.state.svc.clone(),
        Arc::clone(env.state.reauth.platform()),
        CheckPolicy {
            retry_base_delay: std::time::Duration::from_millis(5),
            retry_max_delay: std::time::Duration::from_millis(20),
            ..CheckPolicy::default()
        },
    );
    let pid = ProfileId::parse(&id).unwrap();
    let fault = |endpoint: &str, status: Option<u16>, drop_connection: bool| {
        serde_json::from_value::<entra_sim::FaultRule>(json!({
            "endpoint": endpoint, "rate": 0.35, "latency_ms": 5,
            "status": status, "drop_connection": drop_connection
        }))
        .unwrap()
    };
    env.sim
        .control()
        .set_faults(vec![
            fault("token", Some(503), false),
            fault("graph", Some(429), false),
            fault("/v1.0/servicePrincipals", None, true),
        ])
        .unwrap();
    let mut transient = 0;
    for _ in 0..25 {
        match checker.check(pid, CheckTrigger::Schedule).await.unwrap() {
            CheckOutcome::Checked { profile, .. } => {
                assert_eq!(profile.status.as_str(), "valid", "{profile:?}");
            }
            CheckOutcome::TransientFailure { status, .. } => {
                assert_eq!(status.as_str(), "valid");
                transient += 1;
            }
            other => panic!("unexpected {other:?}"),
        }
    }
    let stats = checker.stats().snapshot();
    assert!(stats.transient_retries + stats.failed_transiently > 0 || transient == 0);
    assert_eq!(stats.failed_transiently, transient);
    assert_eq!(env.get_profile(&id).await["status"], "valid");
    assert!(
        history(&env, &id)
            .await
            .iter()
            .filter(|e| e["kind"] == "status_changed")
            .all(|e| e["to_status"] != "invalid"),
        "no invalid status ever recorded"
    );
}

#[tokio::test]
async fn metrics_count_checks_by_outcome_and_reason_without_a_token() {
    let (env, id) = hybrid_env(PRA).await;
    env.sim.control().revoke_sessions(PRA).unwrap();
    check(&env, &id).await;
    let text = reqwest::get(format!("{}/metrics", env.base))
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert!(
        text.contains(
            "consentry_checks_total{outcome=\"invalid\",reason=\"password_reset_or_sessions_revoked\"} 1"
        ),
        "{text}"
    );
    assert!(
        text.contains("consentry_profiles{status=\"invalid\"} 1"),
        "{text}"
    );
    assert!(
        text.contains("consentry_identity_platform_errors_total{aadsts=\"50173\"} 1"),
        "{text}"
    );
    assert!(!text.contains(&id), "no identifiers in metrics");
}

#[test]
fn monitor_settings_are_validated() {
    let vars = |k: &str, v: &str| vec![(k.to_string(), v.to_string())];
    let cfg =
        consentry_server::Config::load(None, vars("CONSENTRY_MONITOR__INTERVAL_MINUTES", "30"))
            .unwrap();
    assert_eq!(cfg.monitor.interval_minutes, 30);
    assert_eq!(cfg.monitor.invalid_interval_minutes, 15);
    let m = consentry_server::startup::monitor_config(&cfg);
    assert_eq!(m.interval, time::Duration::minutes(30));
    let err = consentry_server::Config::load(None, vars("CONSENTRY_MONITOR__MAX_PER_TENANT", "0"))
        .unwrap_err()
        .to_string();
    assert!(
        err.contains("monitor.max_per_tenant must be at least 1"),
        "{err}"
    );
}

#[tokio::test]
async fn permissions_of_a_newer_catalog_version_are_reported_until_granted() {
    use consentry_catalog::{Catalog, GraphPermission, PermissionType};
    let env = TestEnv::start().await;
    env.connect_contoso(&["teams"]).await;
    let id = env.profile("m365-all", Some("cloud-backup-m365")).await;
    authorize(&env, &id, ADMIN, json!({})).await;

    // Catalog version 3 adds a required and an optional application permission to the app type.
    let mut catalog = Catalog::builtin();
    catalog.version += 1;
    let since = catalog.version;
    let app = catalog
        .app_types
        .iter_mut()
        .find(|a| a.key == "m365-all")
        .unwrap();
    for (name, guid, optional) in [
        (
            "Policy.Read.All",
            "246dd0d5-5bd0-4def-940b-0421030a5b68",
            false,
        ),
        (
            "Organization.Read.All",
            "498476ce-e0fe-48b0-b801-37ba7e2685c6",
            true,
        ),
    ] {
        app.permissions.push(GraphPermission {
            name: name.into(),
            kind: PermissionType::Role,
            id: Some(guid.parse().unwrap()),
            since,
            optional,
        });
    }
    let core = consentry_domain::Consentry::new(
        env.state.svc.store().clone(),
        Arc::new(catalog),
        env.clock.clone(),
    );
    let newer = Checker::new(
        core,
        Arc::clone(env.state.reauth.platform()),
        CheckPolicy::default(),
    );
    let pid = ProfileId::parse(&id).unwrap();
    let CheckOutcome::Checked {
        profile,
        remediation,
        ..
    } = newer.check(pid, CheckTrigger::Schedule).await.unwrap()
    else {
        panic!("checked")
    };
    assert_eq!(profile.status.as_str(), "invalid");
    assert_eq!(
        profile.reason,
        Some(consentry_domain::StatusReason::PermissionsMissing {
            missing: vec!["Policy.Read.All".into()]
        })
    );
    assert!(remediation[0].contains("Re-authorize"), "{remediation:?}");

    // The vendor adds the permission to its app registration; the admin re-authorizes: only the
    // optional permission is left, which draws attention.
    env.sim
        .control()
        .add_app_permission(
            vendor_app("m365-all"),
            entra_sim::PermissionKind::Application,
            "Policy.Read.All",
        )
        .unwrap();
    authorize(&env, &id, ADMIN, json!({})).await;
    let CheckOutcome::Checked { profile, .. } =
        newer.check(pid, CheckTrigger::Schedule).await.unwrap()
    else {
        panic!("checked")
    };
    assert_eq!(profile.status.as_str(), "attention", "{profile:?}");
    assert_eq!(
        profile.reason,
        Some(
            consentry_domain::StatusReason::OptionalPermissionsAvailable {
                permissions: vec!["Organization.Read.All".into()]
            }
        )
    );
}

#[tokio::test]
async fn a_certificate_close_to_expiry_draws_attention_and_an_expired_one_invalidates() {
    let env = TestEnv::start().await;
    env.connect_contoso(&[]).await;
    let id = env
        .profile("custom-azure-app", Some("cloud-backup-m365"))
        .await;
    let b64 = base64::engine::general_purpose::STANDARD.encode(CUSTOM_APP_PFX);
    authorize(
        &env,
        &id,
        ADMIN,
        json!({"application_id": CUSTOM_APP_ID,
            "certificate_pfx_base64": b64, "certificate_password": CUSTOM_APP_PFX_PASSWORD}),
    )
    .await;
    let not_after = time::OffsetDateTime::parse(
        env.get_profile(&id).await["certificate"]["not_after"]
            .as_str()
            .unwrap(),
        &time::format_description::well_known::Rfc3339,
    )
    .unwrap();
    // Consentry's clock moves to 10 days before the expiry (Microsoft's does not).
    let now = time::OffsetDateTime::now_utc();
    env.clock
        .advance(not_after - now - time::Duration::days(10));
    let v = check(&env, &id).await;
    assert_eq!(v["outcome"], "attention", "{v}");
    assert_eq!(
        v["profile"]["reason"]["code"], "certificate_expiring_soon",
        "{v}"
    );
    assert!(remediation(&v).contains("consentry cert new"), "{v}");

    env.clock.advance(time::Duration::days(11));
    let v = check(&env, &id).await;
    assert_eq!(v["outcome"], "invalid", "{v}");
    assert_eq!(v["profile"]["reason"]["code"], "certificate_expired");
}

#[tokio::test]
async fn a_reauthorization_started_during_a_check_wins_over_its_result() {
    let (env, id) = hybrid_env(PRA).await;
    // Graph answers late, so the re-authorization starts while the check waits for it; the check
    // would have found the profile valid, but its evidence is stale when it returns.
    env.sim
        .control()
        .set_faults(vec![entra_sim::FaultRule {
            endpoint: "graph".into(),
            rate: 1.0,
            latency_ms: 800,
            status: None,
            retry_after_secs: None,
            drop_connection: false,
        }])
        .unwrap();
    let running = {
        let (http, base, token, id) = (
            env.http.clone(),
            env.base.clone(),
            env.token.clone(),
            id.clone(),
        );
        tokio::spawn(async move {
            http.post(format!("{base}/api/v1/profiles/{id}/check"))
                .bearer_auth(token)
                .send()
                .await
                .unwrap()
                .json::<Value>()
                .await
                .unwrap()
        })
    };
    tokio::time::sleep(std::time::Duration::from_millis(300)).await;
    let (s, v) = env.start_reauth(&id, json!({"method": "admin"})).await;
    assert_eq!(s, StatusCode::OK, "{v}");
    let v = running.await.unwrap();
    env.sim.control().set_faults(vec![]).unwrap();
    assert_eq!(v["outcome"], "skipped", "{v}");
    let p = env.get_profile(&id).await;
    assert_eq!(p["status"], "pending", "{p}");
    assert_eq!(
        history(&env, &id)
            .await
            .iter()
            .filter(|e| e["kind"] == "status_changed")
            .count(),
        0,
        "the stale check recorded nothing"
    );
}

async fn service_key(env: &TestEnv, org: &str) -> String {
    let key = consentry_domain::keys::new_api_key();
    env.state
        .svc
        .store()
        .insert_api_key(&consentry_domain::ApiKey {
            id: consentry_domain::ApiKeyId::new_random(),
            org_id: org.parse().unwrap(),
            name: "backup-service".into(),
            key_hash: consentry_domain::keys::key_hash(&key),
            created_at: time::OffsetDateTime::now_utc(),
            revoked_at: None,
            last_used_at: None,
        })
        .await
        .unwrap();
    key
}

async fn issue_token(env: &TestEnv, key: &str, profile: &str) -> (StatusCode, Value) {
    let res = env
        .http
        .post(format!("{}/api/v1/tenants/{CONTOSO}/tokens", env.base))
        .bearer_auth(key)
        .json(&json!({"profile_id": profile}))
        .send()
        .await
        .unwrap();
    let status = res.status();
    (status, res.json().await.unwrap_or(Value::Null))
}

/// Consent under the current catalog; the vendor adds a delegated scope to its app registration and
/// ships a catalog version adding it; the next check names the new scope (not "consent revoked"),
/// the token API keeps serving with what was granted, and re-authorizing grants it.
async fn a_new_delegated_scope_is_reported_as_missing(app_type: &str, optional: bool) {
    const NEW_SCOPE: &str = "Files.Read.All";
    let mut env = TestEnv::start().await;
    let org = env.connect_contoso(&[]).await;
    let id = env.profile(app_type, None).await;
    authorize(&env, &id, ADMIN, json!({})).await;
    assert_eq!(check(&env, &id).await["outcome"], "valid");
    let consented_at = env.get_profile(&id).await["consented_catalog_version"].clone();

    env.release_permission(
        app_type,
        NEW_SCOPE,
        consentry_catalog::PermissionType::Scope,
        optional,
    )
    .await;
    assert_eq!(
        env.get_profile(&id).await["consented_catalog_version"],
        consented_at
    );

    let v = check(&env, &id).await;
    if optional {
        assert_eq!(v["outcome"], "attention", "{v}");
        assert_eq!(
            v["profile"]["reason"]["code"],
            "optional_permissions_available"
        );
        assert_eq!(
            v["profile"]["reason"]["permissions"],
            json!([NEW_SCOPE]),
            "{v}"
        );
    } else {
        assert_eq!(v["outcome"], "invalid", "{v}");
        assert_eq!(v["profile"]["reason"]["code"], "permissions_missing", "{v}");
        assert_eq!(v["profile"]["reason"]["missing"], json!([NEW_SCOPE]), "{v}");
        assert!(remediation(&v).contains("Re-authorize"), "{v}");
    }
    // The refresh token still works with the scopes that were granted: the token API serves.
    let key = service_key(&env, &org).await;
    let (s, t) = issue_token(&env, &key, &id).await;
    assert_eq!(s, StatusCode::OK, "{t}");
    assert!(
        t["access_token"]
            .as_str()
            .is_some_and(|a| a.split('.').count() == 3),
        "{t}"
    );
    let p = env.get_profile(&id).await;
    assert_eq!(
        p["status"],
        if optional { "attention" } else { "invalid" },
        "{p}"
    );
    // The token's answer names what the consent lacks, so the service can do without it.
    let (lacking, other) = if optional {
        ("missing_optional_permissions", "missing_permissions")
    } else {
        ("missing_permissions", "missing_optional_permissions")
    };
    assert_eq!(t[lacking], json!([NEW_SCOPE]), "{t}");
    assert_eq!(t[other], json!([]), "{t}");

    // Re-authorizing grants the new scope: valid, consented at the new version.
    authorize(&env, &id, ADMIN, json!({})).await;
    let v = check(&env, &id).await;
    assert_eq!(v["outcome"], "valid", "{v}");
    let p = env.get_profile(&id).await;
    assert_ne!(p["consented_catalog_version"], consented_at, "{p}");
    // A new token (the old one is cached for the old profile) lacks nothing.
    env.restart_with_settings(vec![]).await;
    let (s, t) = issue_token(&env, &key, &id).await;
    assert_eq!(s, StatusCode::OK, "{t}");
    assert_eq!(t["missing_permissions"], json!([]), "{t}");
    assert_eq!(t["missing_optional_permissions"], json!([]), "{t}");
    assert!(
        p["granted_permissions"]
            .as_array()
            .unwrap()
            .iter()
            .any(|g| g["name"] == NEW_SCOPE),
        "{p}"
    );
}

#[tokio::test]
async fn a_delegated_scope_added_by_a_newer_catalog_is_missing_not_a_revoked_consent_delegated() {
    a_new_delegated_scope_is_reported_as_missing("iaas-delegated", false).await;
}

#[tokio::test]
async fn a_delegated_scope_added_by_a_newer_catalog_is_missing_not_a_revoked_consent_hybrid() {
    a_new_delegated_scope_is_reported_as_missing("insights-m365", false).await;
}

#[tokio::test]
async fn an_optional_delegated_scope_added_by_a_newer_catalog_draws_attention() {
    a_new_delegated_scope_is_reported_as_missing("iaas-delegated", true).await;
}

/// Signs in to the console as an operator of `org`; the session token.
pub(crate) async fn console_session(env: &TestEnv, org: &str) -> String {
    let name = format!("ops-{}", &uuid::Uuid::new_v4().simple().to_string()[..8]);
    let pw = secrecy::SecretString::from("Console-Passw0rd!".to_string());
    env.state
        .console
        .accounts
        .create(
            &name,
            &pw,
            consentry_domain::AccountScope::Organization(org.parse().unwrap()),
        )
        .await
        .unwrap();
    consentry_testkit::console::sign_in(&env.state, &name, "Console-Passw0rd!", None).await
}

#[tokio::test]
async fn a_compliant_device_policy_gets_its_own_advice_not_the_ip_one() {
    let (env, id, _) = hybrid_env_with_outbound(PRA).await;
    let policy: entra_sim::CaPolicy = serde_json::from_value(json!({
        "name": "Managed devices only",
        "users": [PRA],
        "action": "require_compliant_device"
    }))
    .unwrap();
    env.sim
        .control()
        .set_ca_policies(CONTOSO, vec![policy])
        .unwrap();
    let v = expect_invalid(&env, &id, "conditional_access_requirement").await;
    assert_eq!(
        v["profile"]["reason"]["requirement"], "compliant_device",
        "{v}"
    );
    assert_eq!(v["profile"]["reason"]["aadsts"], 53000, "{v}");
    let steps = remediation(&v);
    assert!(steps.contains("exclude this app"), "{v}");
    assert!(steps.contains("compliant device"), "{v}");
    assert!(
        !steps.contains(OFFICE_IP) && !steps.contains("198.51.100.10"),
        "no named-location advice for a device control: {v}"
    );
    assert!(
        v["profile"]["reason_view"]["summary"]
            .as_str()
            .unwrap()
            .contains("compliant device"),
        "{v}"
    );

    // The administrator excludes the app from the policy: valid again at the next check.
    env.sim.control().set_ca_policies(CONTOSO, vec![]).unwrap();
    let v = check(&env, &id).await;
    assert_eq!(v["outcome"], "valid", "{v}");
    assert_eq!(v["changed"], true);
}

#[tokio::test]
async fn the_outbound_addresses_are_shown_before_consenting() {
    let (env, id, org) = hybrid_env_with_outbound(ADMIN).await;
    // The re-authorization wizard, for an app type with delegated permissions.
    let session = console_session(&env, &org).await;
    let page = consentry_testkit::console::get(
        &env.state,
        &format!("/console/profiles/{id}/reauthorize"),
        Some(&session),
    )
    .await;
    assert_eq!(page.status, StatusCode::OK, "{}", page.body);
    assert!(page.body.contains("id=\"network-note\""), "{}", page.body);
    assert!(
        page.body.contains("198.51.100.10, 192.0.2.16/28"),
        "{}",
        page.body
    );
    assert!(
        page.body.contains(OFFICE_IP),
        "the previous consent IP: {}",
        page.body
    );

    // A consent link for the tenant's administrator says the same before Microsoft.
    let (s, started) = env
        .start_reauth(&id, json!({"method": "admin", "handoff": true}))
        .await;
    assert_eq!(s, StatusCode::OK, "{started}");
    let link = started["url"].as_str().unwrap();
    let html = env
        .http
        .get(link)
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert!(html.contains("id=\"network-note\""), "{html}");
    assert!(html.contains("198.51.100.10, 192.0.2.16/28"), "{html}");
    assert!(html.contains("the IP address you consent from"), "{html}");

    // An application-only app type has no such note.
    let app_only = env.profile("m365-all", Some("cloud-backup-m365")).await;
    let page = consentry_testkit::console::get(
        &env.state,
        &format!("/console/profiles/{app_only}/reauthorize"),
        Some(&session),
    )
    .await;
    assert_eq!(page.status, StatusCode::OK, "{}", page.body);
    assert!(!page.body.contains("network-note"), "{}", page.body);
}

#[test]
fn outbound_addresses_are_validated() {
    let load = |v: &str| {
        consentry_server::Config::load(
            None,
            vec![(
                "CONSENTRY_NETWORK__OUTBOUND_ADDRESSES".to_string(),
                v.to_string(),
            )],
        )
    };
    let cfg = load("203.0.113.10,2001:db8::/32").unwrap();
    assert_eq!(
        cfg.network.outbound_addresses,
        vec!["203.0.113.10".to_string(), "2001:db8::/32".to_string()]
    );
    let err = load("203.0.113.10/24").unwrap_err().to_string();
    assert!(err.contains("host bits"), "{err}");
    let err = load("office").unwrap_err().to_string();
    assert!(
        err.contains("neither an IP address nor a CIDR range"),
        "{err}"
    );
    let err = load("203.0.113.0/33").unwrap_err().to_string();
    assert!(err.contains("prefix length"), "{err}");
}

/// Moves Microsoft's and Consentry's clocks together.
fn advance_days(env: &TestEnv, days: i64) {
    env.sim
        .control()
        .advance_clock(std::time::Duration::from_secs(
            u64::try_from(days).unwrap() * 24 * 3600,
        ))
        .unwrap();
    env.clock.advance(time::Duration::days(days));
}

fn fast_checker(env: &TestEnv) -> Checker {
    Checker::new(
        env.state.svc.clone(),
        Arc::clone(env.state.reauth.platform()),
        CheckPolicy {
            retry_base_delay: std::time::Duration::from_millis(5),
            retry_max_delay: std::time::Duration::from_millis(20),
            ..CheckPolicy::default()
        },
    )
}

fn token_endpoint_down() -> Vec<entra_sim::FaultRule> {
    vec![entra_sim::FaultRule {
        endpoint: "token".into(),
        rate: 1.0,
        latency_ms: 0,
        status: Some(503),
        retry_after_secs: None,
        drop_connection: false,
    }]
}

#[tokio::test]
async fn a_refresh_token_unredeemed_for_75_days_draws_attention_when_checks_cannot_renew_it() {
    let (env, id) = hybrid_env(ADMIN).await;
    let checker = fast_checker(&env);
    let pid = ProfileId::parse(&id).unwrap();
    let authorized = env.get_profile(&id).await["authorized_at"].clone();

    // Microsoft cannot be reached for 70 days (the server was down, or its network was):
    // a transient failure changes nothing yet.
    advance_days(&env, 70);
    env.sim.control().set_faults(token_endpoint_down()).unwrap();
    match checker.check(pid, CheckTrigger::Schedule).await.unwrap() {
        CheckOutcome::TransientFailure { status, .. } => assert_eq!(status.as_str(), "valid"),
        other => panic!("unexpected {other:?}"),
    }
    assert_eq!(env.get_profile(&id).await["status"], "valid");

    // Past 75 days without a redemption: attention, with the days left before Microsoft revokes
    // the token (90 days after its last use).
    advance_days(&env, 10);
    let events = history(&env, &id).await.len();
    match checker.check(pid, CheckTrigger::Schedule).await.unwrap() {
        CheckOutcome::TransientFailure {
            status, message, ..
        } => {
            assert_eq!(status.as_str(), "attention");
            assert!(message.contains("10 days left"), "{message}");
        }
        other => panic!("unexpected {other:?}"),
    }
    let p = env.get_profile(&id).await;
    assert_eq!(p["status"], "attention", "{p}");
    assert_eq!(p["reason"]["code"], "refresh_token_near_inactivity", "{p}");
    assert_eq!(p["reason"]["days_left"], 10, "{p}");
    assert_eq!(p["reason"]["last_used"], authorized, "{p}");
    assert_eq!(p["reason_view"]["owner"], "operator", "{p}");
    assert!(
        p["reason_view"]["summary"]
            .as_str()
            .unwrap()
            .contains("10 days left"),
        "{p}"
    );
    let h = history(&env, &id).await;
    assert_eq!(h.len(), events + 1);
    assert_eq!(h[0]["to_status"], "attention");
    // The same finding again writes nothing.
    checker.check(pid, CheckTrigger::Schedule).await.unwrap();
    assert_eq!(history(&env, &id).await.len(), events + 1);

    // Microsoft is reachable again: the check renews the token and the profile is valid.
    env.sim.control().set_faults(vec![]).unwrap();
    match checker.check(pid, CheckTrigger::Schedule).await.unwrap() {
        CheckOutcome::Checked {
            profile,
            refresh_token_kept_alive,
            ..
        } => {
            assert_eq!(profile.status.as_str(), "valid", "{profile:?}");
            assert!(refresh_token_kept_alive);
            assert!(
                profile.refresh_token_redeemed_at.unwrap()
                    > profile.authorized_at.unwrap() + time::Duration::days(80),
                "the redemption is recorded: {profile:?}"
            );
        }
        other => panic!("unexpected {other:?}"),
    }
    // Down again the next day: the token was just renewed, so nothing to warn about.
    advance_days(&env, 1);
    env.sim.control().set_faults(token_endpoint_down()).unwrap();
    match checker.check(pid, CheckTrigger::Schedule).await.unwrap() {
        CheckOutcome::TransientFailure { status, .. } => assert_eq!(status.as_str(), "valid"),
        other => panic!("unexpected {other:?}"),
    }
}

#[tokio::test]
async fn the_token_apis_redemptions_count_as_uses_of_the_refresh_token() {
    let env = TestEnv::start().await;
    let org = env.connect_contoso(&[]).await;
    let id = env.profile("iaas-delegated", None).await;
    authorize(&env, &id, ADMIN, json!({})).await;
    let before = env.get_profile(&id).await["refresh_token_redeemed_at"].clone();
    // Only the token API uses it for 80 days; then Microsoft becomes unreachable.
    advance_days(&env, 80);
    let key = service_key(&env, &org).await;
    let (s, t) = issue_token(&env, &key, &id).await;
    assert_eq!(s, StatusCode::OK, "{t}");
    let after = env.get_profile(&id).await["refresh_token_redeemed_at"].clone();
    assert_ne!(after, before, "the token API's redemption is recorded");
    env.sim.control().set_faults(token_endpoint_down()).unwrap();
    let checker = fast_checker(&env);
    match checker
        .check(ProfileId::parse(&id).unwrap(), CheckTrigger::Schedule)
        .await
        .unwrap()
    {
        CheckOutcome::TransientFailure { status, .. } => assert_eq!(status.as_str(), "valid"),
        other => panic!("unexpected {other:?}"),
    }
}

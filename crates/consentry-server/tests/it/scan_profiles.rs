//! Scan profiles and the Planner migration, end to end over the JSON API with app profiles authorized
//! through entra-sim: a classic scan profile is converted on a save without other change; each refusal
//! (wrong app type, a catalog-version-1 consent of Microsoft 365 (All permissions), a custom app without
//! Tasks.ReadWrite.All, an invalid profile, another tenant or organization, an unknown profile) names
//! its reason and step and leaves the scan profile as it was; the Planner readiness items appear and
//! disappear as each is fixed.

use std::sync::Arc;

use base64::Engine as _;
use consentry_catalog::Catalog;
use consentry_domain::{
    Consentry, PlannerRefusal, ProfileId, ScanProfileEdit, ScanProfileId, ScanProfiles,
};
use consentry_testkit::{CUSTOM_APP_ID, CUSTOM_APP_PFX, CUSTOM_APP_PFX_PASSWORD, TestEnv};
use entra_sim::Scenario;
use reqwest::{Method, StatusCode};
use serde_json::{Value, json};

const ADMIN: &str = "admin@contoso.onmicrosoft.com";
const CONTOSO: &str = "contoso.onmicrosoft.com";

async fn authorize(env: &TestEnv, id: &str, extra: Value) {
    let mut body = json!({"method": "admin"});
    if let (Some(b), Some(e)) = (body.as_object_mut(), extra.as_object()) {
        b.extend(e.clone());
    }
    env.authorize(id, body, ADMIN, None).await;
}

fn custom_app_body() -> Value {
    json!({"application_id": CUSTOM_APP_ID,
        "certificate_pfx_base64": base64::engine::general_purpose::STANDARD.encode(CUSTOM_APP_PFX),
        "certificate_password": CUSTOM_APP_PFX_PASSWORD})
}

async fn create_classic(env: &TestEnv, delegated: &str, backup: bool) -> Value {
    let (s, v) = post_scan(
        env,
        json!({
            "name": "Contoso backup",
            "modules": ["planner", "teams"],
            "authentication": {"method": "classic",
                "service_account": "svc-backup@contoso.onmicrosoft.com",
                "delegated_profile": delegated},
            "planner_backup_enabled": backup,
        }),
    )
    .await;
    assert_eq!(s, StatusCode::CREATED, "{v}");
    assert_eq!(v["authentication"]["method"], "classic", "{v}");
    v
}

async fn readiness_codes(env: &TestEnv, id: &str) -> Vec<String> {
    let (s, v) = env
        .api(
            Method::GET,
            &format!("/api/v1/scan-profiles/{id}/planner-readiness"),
            None,
        )
        .await;
    assert_eq!(s, StatusCode::OK, "{v}");
    let codes: Vec<String> = v["missing"]
        .as_array()
        .unwrap()
        .iter()
        .map(|i| {
            assert!(
                !i["step"].as_str().unwrap().is_empty(),
                "every item has a step: {i}"
            );
            i["code"].as_str().unwrap().to_string()
        })
        .collect();
    assert_eq!(v["ready"], codes.is_empty(), "{v}");
    codes
}

/// `POST /api/v1/tenants/{CONTOSO}/scan-profiles` with `body`.
async fn post_scan(env: &TestEnv, body: Value) -> (StatusCode, Value) {
    env.api(
        Method::POST,
        &format!("/api/v1/tenants/{CONTOSO}/scan-profiles"),
        Some(body),
    )
    .await
}

async fn put(env: &TestEnv, id: &str, body: Value) -> (StatusCode, Value) {
    env.api(
        Method::PUT,
        &format!("/api/v1/scan-profiles/{id}"),
        Some(body),
    )
    .await
}

async fn get_scan(env: &TestEnv, id: &str) -> Value {
    let (s, v) = env
        .api(Method::GET, &format!("/api/v1/scan-profiles/{id}"), None)
        .await;
    assert_eq!(s, StatusCode::OK, "{v}");
    v
}

fn message(v: &Value) -> String {
    v["error"]["message"]
        .as_str()
        .unwrap_or_default()
        .to_string()
}

#[tokio::test]
async fn a_classic_scan_profile_is_converted_on_a_save_without_other_change() {
    let env = TestEnv::start().await;
    env.connect_contoso(&["planner"]).await;
    let delegated = env.profile("cloud-backup-delegated", None).await;
    let modern = env.profile("cloud-backup-m365-all", None).await;

    let sp = create_classic(&env, &delegated, false).await;
    let id = sp["id"].as_str().unwrap().to_string();
    // No app profile can protect Planner yet: the modern one is not authorized.
    assert_eq!(
        readiness_codes(&env, &id).await,
        ["permission", "validity", "classic_method", "backup_setting"]
    );
    let (s, v) = put(&env, &id, json!({})).await;
    assert_eq!(s, StatusCode::UNPROCESSABLE_ENTITY, "{v}");
    assert!(
        message(&v).contains("has no app profile that can protect Planner data")
            && message(&v).contains("Cloud Backup for Microsoft 365 (All permissions)"),
        "{v}"
    );
    assert_eq!(
        get_scan(&env, &id).await,
        sp,
        "a refused save changes nothing"
    );

    authorize(&env, &modern, json!({})).await;
    assert_eq!(
        readiness_codes(&env, &id).await,
        ["classic_method", "backup_setting"]
    );

    // Edit and save without any change: the method becomes the tenant's suitable app profile.
    let (s, v) = put(&env, &id, json!({})).await;
    assert_eq!(s, StatusCode::OK, "{v}");
    assert_eq!(v["conversion"]["app_profile"], modern.as_str(), "{v}");
    assert_eq!(v["conversion"]["picked_automatically"], true, "{v}");
    assert_eq!(v["conversion"]["previous"]["method"], "classic", "{v}");
    let now = get_scan(&env, &id).await;
    assert_eq!(
        now["authentication"],
        json!({"method": "app_profile", "app_profile": modern})
    );
    assert_eq!(now["name"], sp["name"]);
    assert_eq!(now["modules"], sp["modules"]);
    assert_eq!(readiness_codes(&env, &id).await, ["backup_setting"]);

    // A second save is not a conversion.
    let (s, v) = put(&env, &id, json!({"planner_backup_enabled": true})).await;
    assert_eq!(s, StatusCode::OK, "{v}");
    assert!(v["conversion"].is_null(), "{v}");
    assert!(readiness_codes(&env, &id).await.is_empty());
    let (_, t) = env
        .api(
            Method::GET,
            &format!("/api/v1/tenants/{CONTOSO}/planner-readiness"),
            None,
        )
        .await;
    assert_eq!(t["ready"], true, "{t}");
    assert_eq!(t["suitable_app_profiles"], json!([modern]), "{t}");

    // The app profile in use cannot be deleted; the scan profile can.
    let (s, v) = env
        .api(Method::DELETE, &format!("/api/v1/profiles/{modern}"), None)
        .await;
    assert_eq!(s, StatusCode::CONFLICT, "{v}");
    assert!(message(&v).contains("Contoso backup"), "{v}");
    let (s, _) = env
        .api(Method::DELETE, &format!("/api/v1/scan-profiles/{id}"), None)
        .await;
    assert_eq!(s, StatusCode::NO_CONTENT);
    let (s, _) = env
        .api(Method::GET, &format!("/api/v1/scan-profiles/{id}"), None)
        .await;
    assert_eq!(s, StatusCode::NOT_FOUND);
    let (s, _) = env
        .api(Method::DELETE, &format!("/api/v1/profiles/{modern}"), None)
        .await;
    assert_eq!(s, StatusCode::NO_CONTENT);
}

#[tokio::test]
async fn unsuitable_app_profiles_are_refused_with_their_reason_and_step() {
    let env = TestEnv::start().await;
    let org = env.connect_contoso(&["planner"]).await;
    let delegated = env.profile("cloud-backup-delegated", None).await;
    let modern = env.profile("cloud-backup-m365-all", None).await;
    authorize(&env, &modern, json!({})).await;
    let sp = create_classic(&env, &delegated, true).await;
    let id = sp["id"].as_str().unwrap().to_string();

    // Another tenant of the same organization, and another organization's tenant.
    let (s, v) = env
        .api(
            Method::POST,
            "/api/v1/tenants",
            Some(
                json!({"org_id": org, "tenant_id": uuid::Uuid::new_v4().to_string(),
                "primary_domain": "fabrikam-scan.onmicrosoft.com", "cloud": "global"}),
            ),
        )
        .await;
    assert_eq!(s, StatusCode::CREATED, "{v}");
    let (_, p) = env
        .api(
            Method::POST,
            "/api/v1/profiles",
            Some(json!({"tenant": "fabrikam-scan.onmicrosoft.com", "app_type": "cloud-backup-m365-all"})),
        )
        .await;
    let other_tenant = p["id"].as_str().unwrap().to_string();
    let (_, o) = env
        .api(
            Method::POST,
            "/api/v1/organizations",
            Some(json!({"name": "Northwind", "modules": ["planner"]})),
        )
        .await;
    env.api(
        Method::POST,
        "/api/v1/tenants",
        Some(
            json!({"org_id": o["id"], "tenant_id": uuid::Uuid::new_v4().to_string(),
            "primary_domain": "northwind-scan.onmicrosoft.com", "cloud": "global"}),
        ),
    )
    .await;
    let (_, p) = env
        .api(
            Method::POST,
            "/api/v1/profiles",
            Some(json!({"tenant": "northwind-scan.onmicrosoft.com", "app_type": "cloud-backup-m365-all"})),
        )
        .await;
    let other_org = p["id"].as_str().unwrap().to_string();

    // A modern app profile made invalid by a definitive refusal (its grants are kept).
    let broken = env.profile("cloud-backup-m365-all", None).await;
    authorize(&env, &broken, json!({})).await;

    let cases: Vec<(String, &str)> = vec![
        (
            delegated.clone(),
            "cannot protect Planner data: use an app profile of one of these app types",
        ),
        (other_tenant, "belongs to tenant"),
        (other_org, "belongs to another organization"),
        (
            ProfileId::new_random().to_string(),
            "was not found: choose an app profile of this tenant",
        ),
    ];
    for (app_profile, want) in cases {
        let (s, v) = put(&env, &id, json!({"app_profile": app_profile})).await;
        assert_eq!(s, StatusCode::UNPROCESSABLE_ENTITY, "{v}");
        assert_eq!(v["error"]["field"], "app_profile", "{v}");
        assert!(message(&v).contains(want), "{want}: {v}");
        assert_eq!(
            get_scan(&env, &id).await,
            sp,
            "a refused save changes nothing"
        );
    }

    // Invalid: the vendor's credential of the app expired; the check makes the profile invalid.
    env.sim
        .control()
        .expire_secret(
            Scenario::contoso()
                .client_id_for("cloud-backup-m365-all")
                .unwrap(),
            None,
        )
        .unwrap();
    let (s, v) = env
        .api(
            Method::POST,
            &format!("/api/v1/profiles/{broken}/check"),
            None,
        )
        .await;
    assert_eq!(s, StatusCode::OK, "{v}");
    assert_eq!(env.get_profile(&broken).await["status"], "invalid");
    let (s, v) = put(&env, &id, json!({"app_profile": broken})).await;
    assert_eq!(s, StatusCode::UNPROCESSABLE_ENTITY, "{v}");
    assert!(message(&v).contains("is invalid ("), "{v}");
    assert_eq!(get_scan(&env, &id).await, sp);

    // Creating one with an unsuitable app profile is refused the same way.
    let (s, v) = post_scan(
        &env,
        json!({"name": "New", "modules": ["planner"],
                "authentication": {"method": "app_profile", "app_profile": delegated}}),
    )
    .await;
    assert_eq!(s, StatusCode::UNPROCESSABLE_ENTITY, "{v}");
    let (s, v) = post_scan(&env, json!({"name": "Classic", "modules": ["planner"],
                "authentication": {"method": "classic", "service_account": "svc@contoso.onmicrosoft.com",
                    "delegated_profile": modern}})).await;
    assert_eq!(s, StatusCode::UNPROCESSABLE_ENTITY, "{v}");
    assert_eq!(v["error"]["field"], "delegated_profile", "{v}");
    let (_, list) = env
        .api(
            Method::GET,
            &format!("/api/v1/tenants/{CONTOSO}/scan-profiles"),
            None,
        )
        .await;
    assert_eq!(list["items"].as_array().unwrap().len(), 1, "{list}");
}

/// The default catalog as it was at version 1: without the permissions version 2 added.
fn catalog_v1() -> String {
    let src = include_str!("../../../consentry-catalog/catalog/default.toml");
    src.lines()
        .filter(|l| !l.contains("since = 2"))
        .map(|l| {
            if l.trim() == "version = 2" {
                "version = 1"
            } else {
                l
            }
        })
        .collect::<Vec<_>>()
        .join("\n")
}

#[tokio::test]
async fn consents_without_tasks_readwrite_all_are_refused_until_reauthorized() {
    // The vendor's classic app and the customer's custom app were registered without
    // Tasks.ReadWrite.All, and consented under catalog version 1.
    let mut scenario = Scenario::contoso();
    let m365_all = scenario.client_id_for("m365-all").unwrap();
    let custom = uuid::Uuid::parse_str(CUSTOM_APP_ID).unwrap();
    for app in scenario.apps.iter_mut() {
        if app.client_id == m365_all || app.client_id == custom {
            app.application.retain(|p| p != "Tasks.ReadWrite.All");
        }
    }
    let dir = tempfile::tempdir().unwrap();
    let v1 = dir.path().join("catalog-v1.toml");
    std::fs::write(&v1, catalog_v1()).unwrap();
    let env = TestEnv::start_with_settings(
        scenario,
        vec![("CONSENTRY_CATALOG_FILE".into(), v1.display().to_string())],
    )
    .await;
    env.connect_contoso(&["planner"]).await;
    let classic = env.profile("m365-all", Some("cloud-backup-m365")).await;
    let custom_profile = env
        .profile("custom-azure-app", Some("cloud-backup-m365"))
        .await;
    authorize(&env, &classic, json!({})).await;
    authorize(&env, &custom_profile, custom_app_body()).await;
    assert_eq!(
        env.get_profile(&classic).await["consented_catalog_version"],
        1
    );
    assert_eq!(env.get_profile(&classic).await["status"], "valid");

    // Consentry now runs catalog version 2 (same database).
    let svc = ScanProfiles::new(Consentry::new(
        env.state.svc.store().clone(),
        Arc::new(Catalog::builtin()),
        env.clock.clone(),
    ));
    let delegated = env.profile("cloud-backup-delegated", None).await;
    let sp = create_classic(&env, &delegated, true).await;
    let id = ScanProfileId::parse(sp["id"].as_str().unwrap()).unwrap();
    let classic_id = ProfileId::parse(&classic).unwrap();
    let custom_id = ProfileId::parse(&custom_profile).unwrap();
    let before = svc.get(id).await.unwrap();

    let tenant = before.tenant_id;
    let org = before.org_id;
    for (pid, want) in [
        (classic_id, "the Microsoft 365 (All permissions) profile"),
        (custom_id, "the Custom Azure app profile"),
    ] {
        let p = svc.core().profile(pid).await.unwrap();
        let refusal = svc.refusal(org, tenant, &p, true);
        assert!(
            matches!(refusal, Some(PlannerRefusal::PermissionNotGranted { .. })),
            "{refusal:?}"
        );
        let err = svc
            .save(
                id,
                ScanProfileEdit {
                    app_profile: Some(pid),
                    ..Default::default()
                },
            )
            .await
            .unwrap_err()
            .to_string();
        assert!(
            err.contains(want) && err.contains("lacks Tasks.ReadWrite.All"),
            "{err}"
        );
        if pid == classic_id {
            assert!(
                err.contains("re-authorize it so the new permission is consented"),
                "{err}"
            );
        } else {
            assert!(
                err.contains("add the Microsoft Graph application permission Tasks.ReadWrite.All to the custom app"),
                "{err}"
            );
        }
        assert_eq!(
            svc.get(id).await.unwrap(),
            before,
            "refused: nothing changes"
        );
    }
    // Without a named profile: none of the tenant's is suitable, and the message says what each lacks.
    let err = svc
        .save(id, ScanProfileEdit::default())
        .await
        .unwrap_err()
        .to_string();
    assert!(
        err.contains("has no app profile that can protect Planner data")
            && err.contains(&format!("profile {classic} lacks Tasks.ReadWrite.All")),
        "{err}"
    );
    let r = svc.planner_readiness(id).await.unwrap();
    let codes: Vec<_> = r.missing.iter().map(|i| i.code).collect();
    use consentry_domain::ReadinessCode as C;
    assert_eq!(codes, [C::Permission, C::ClassicMethod], "{r:?}");

    // The vendor adds the permission to its app; the administrator re-authorizes.
    env.sim
        .control()
        .add_app_permission(
            m365_all,
            entra_sim::PermissionKind::Application,
            "Tasks.ReadWrite.All",
        )
        .unwrap();
    authorize(&env, &classic, json!({})).await;
    let r = svc.planner_readiness(id).await.unwrap();
    assert_eq!(
        r.missing.iter().map(|i| i.code).collect::<Vec<_>>(),
        [C::ClassicMethod],
        "{r:?}"
    );
    assert_eq!(r.app_profile, Some(classic_id));
    let saved = svc.save(id, ScanProfileEdit::default()).await.unwrap();
    assert_eq!(
        saved.conversion.as_ref().map(|c| c.app_profile),
        Some(classic_id)
    );
    assert!(svc.planner_readiness(id).await.unwrap().ready);

    // The custom app still lacks it: naming it is refused, and the scan profile keeps the classic app.
    let kept = svc.get(id).await.unwrap();
    assert!(
        svc.save(
            id,
            ScanProfileEdit {
                app_profile: Some(custom_id),
                ..Default::default()
            }
        )
        .await
        .is_err()
    );
    assert_eq!(svc.get(id).await.unwrap(), kept);
}

#[tokio::test]
async fn readiness_follows_the_app_profile_validity_and_the_settings() {
    let env = TestEnv::start().await;
    env.connect_contoso(&[]).await;
    let modern = env.profile("cloud-backup-m365-all", None).await;
    authorize(&env, &modern, json!({})).await;
    let (s, sp) = post_scan(
        &env,
        json!({"name": "Mail only", "modules": ["teams"],
                "authentication": {"method": "app_profile", "app_profile": modern}}),
    )
    .await;
    assert_eq!(s, StatusCode::CREATED, "{sp}");
    let id = sp["id"].as_str().unwrap().to_string();
    assert_eq!(
        readiness_codes(&env, &id).await,
        [
            "planner_not_protected",
            "subscription_module",
            "backup_setting"
        ]
    );
    let (_, t) = env
        .api(
            Method::GET,
            &format!("/api/v1/tenants/{CONTOSO}/planner-readiness"),
            None,
        )
        .await;
    assert_eq!(t["missing"][0]["code"], "scan_profile", "{t}");

    let (s, v) = put(
        &env,
        &id,
        json!({"modules": ["teams", "planner"], "planner_backup_enabled": true}),
    )
    .await;
    assert_eq!(s, StatusCode::OK, "{v}");
    assert_eq!(readiness_codes(&env, &id).await, ["subscription_module"]);
    let (_, org) = env.api(Method::GET, "/api/v1/organizations", None).await;
    let org_id = org["items"][0]["id"].as_str().unwrap().to_string();
    env.api(
        Method::PATCH,
        &format!("/api/v1/organizations/{org_id}"),
        Some(json!({"modules": ["planner"]})),
    )
    .await;
    assert!(readiness_codes(&env, &id).await.is_empty());

    // A re-authorization in progress: the app profile is not valid until it completes.
    let (s, v) = env.start_reauth(&modern, json!({"method": "admin"})).await;
    assert_eq!(s, StatusCode::OK, "{v}");
    assert_eq!(readiness_codes(&env, &id).await, ["validity"]);
    let (s, v) = env
        .api(
            Method::POST,
            &format!("/api/v1/profiles/{modern}/reauthorize/cancel"),
            None,
        )
        .await;
    assert!(s.is_success(), "{v}");
    assert!(readiness_codes(&env, &id).await.is_empty());

    // Names are unique per tenant; unknown modules are named.
    let (s, v) = post_scan(
        &env,
        json!({"name": "MAIL ONLY", "modules": ["planner"],
                "authentication": {"method": "app_profile", "app_profile": modern}}),
    )
    .await;
    assert_eq!(s, StatusCode::CONFLICT, "{v}");
    let (s, v) = put(&env, &id, json!({"modules": ["exchange"]})).await;
    assert_eq!(s, StatusCode::UNPROCESSABLE_ENTITY, "{v}");
    assert!(message(&v).contains("unknown module"), "{v}");
}

/// Creates a classic scan profile in its second form (an app profile plus a delegated app profile).
async fn create_classic_app(env: &TestEnv, name: &str, app: &str, delegated: &str) -> Value {
    let (s, v) = post_scan(
        env,
        json!({
            "name": name,
            "modules": ["planner"],
            "authentication": {"method": "classic_app_profile",
                "app_profile": app, "delegated_profile": delegated},
            "planner_backup_enabled": true,
        }),
    )
    .await;
    assert_eq!(s, StatusCode::CREATED, "{v}");
    assert_eq!(
        v["authentication"],
        json!({"method": "classic_app_profile", "app_profile": app, "delegated_profile": delegated}),
        "{v}"
    );
    v
}

#[tokio::test]
async fn a_classic_scan_profile_with_an_app_profile_is_converted_on_a_save() {
    let env = TestEnv::start().await;
    env.connect_contoso(&["planner"]).await;
    let delegated = env.profile("cloud-backup-delegated", None).await;
    let modern = env.profile("cloud-backup-m365-all", None).await;
    let classic_mode = env.profile("m365-all", Some("cloud-backup-m365")).await;
    let insights = env.profile("insights-m365", None).await;
    authorize(&env, &modern, json!({})).await;

    // The references are checked when it is recorded.
    let ghost = ProfileId::new_random().to_string();
    let (s, v) = post_scan(
        &env,
        json!({"name": "Ghost", "modules": ["planner"],
            "authentication": {"method": "classic_app_profile", "app_profile": ghost,
                "delegated_profile": delegated}}),
    )
    .await;
    assert_eq!(s, StatusCode::UNPROCESSABLE_ENTITY, "{v}");
    assert_eq!(v["error"]["field"], "app_profile", "{v}");
    let (s, v) = post_scan(
        &env,
        json!({"name": "Not delegated", "modules": ["planner"],
            "authentication": {"method": "classic_app_profile", "app_profile": modern,
                "delegated_profile": modern}}),
    )
    .await;
    assert_eq!(s, StatusCode::UNPROCESSABLE_ENTITY, "{v}");
    assert_eq!(v["error"]["field"], "delegated_profile", "{v}");

    // Its own app profile cannot protect Planner yet (not authorized): a save picks the tenant's
    // suitable one instead.
    let own_unready = create_classic_app(&env, "Own not ready", &classic_mode, &delegated).await;
    let id = own_unready["id"].as_str().unwrap().to_string();
    let codes = readiness_codes(&env, &id).await;
    assert!(codes.contains(&"classic_method".to_string()), "{codes:?}");
    let (s, v) = put(&env, &id, json!({})).await;
    assert_eq!(s, StatusCode::OK, "{v}");
    assert_eq!(v["conversion"]["app_profile"], modern.as_str(), "{v}");
    assert_eq!(v["conversion"]["picked_automatically"], true, "{v}");
    assert_eq!(v["conversion"]["previous"]["method"], "classic_app_profile");
    assert_eq!(
        get_scan(&env, &id).await["authentication"],
        json!({"method": "app_profile", "app_profile": modern})
    );

    // Once its own app profile can protect Planner, a save without changes keeps it, though the
    // tenant's first pick would be the modern one.
    authorize(&env, &classic_mode, json!({})).await;
    let own_ready = create_classic_app(&env, "Own ready", &classic_mode, &delegated).await;
    let id = own_ready["id"].as_str().unwrap().to_string();
    assert_eq!(
        readiness_codes(&env, &id).await,
        ["classic_method"],
        "only the method is left"
    );
    let (_, r) = env
        .api(
            Method::GET,
            &format!("/api/v1/scan-profiles/{id}/planner-readiness"),
            None,
        )
        .await;
    assert_eq!(r["app_profile"], classic_mode.as_str(), "{r}");
    assert!(
        r["missing"][0]["summary"]
            .as_str()
            .unwrap()
            .contains("an app profile with an additional delegated app profile"),
        "{r}"
    );
    let (s, v) = put(&env, &id, json!({})).await;
    assert_eq!(s, StatusCode::OK, "{v}");
    assert_eq!(v["conversion"]["app_profile"], classic_mode.as_str(), "{v}");
    assert_eq!(v["conversion"]["picked_automatically"], false, "{v}");
    assert_eq!(
        get_scan(&env, &id).await["authentication"],
        json!({"method": "app_profile", "app_profile": classic_mode})
    );
    assert!(readiness_codes(&env, &id).await.is_empty());

    // An app profile of a wrong app type with no suitable alternative: the refusal names the own
    // profile's shortcoming and the scan profile stays as it was.
    let (s, _) = env
        .api(
            Method::DELETE,
            &format!(
                "/api/v1/scan-profiles/{}",
                own_unready["id"].as_str().unwrap()
            ),
            None,
        )
        .await;
    assert_eq!(s, StatusCode::NO_CONTENT);
    let (s, _) = env
        .api(Method::DELETE, &format!("/api/v1/scan-profiles/{id}"), None)
        .await;
    assert_eq!(s, StatusCode::NO_CONTENT);
    for p in [&modern, &classic_mode] {
        let (s, v) = env
            .api(Method::DELETE, &format!("/api/v1/profiles/{p}"), None)
            .await;
        assert_eq!(s, StatusCode::NO_CONTENT, "{v}");
    }
    let wrong = create_classic_app(&env, "Wrong type", &insights, &delegated).await;
    let id = wrong["id"].as_str().unwrap().to_string();
    let (s, v) = put(&env, &id, json!({})).await;
    assert_eq!(s, StatusCode::UNPROCESSABLE_ENTITY, "{v}");
    assert!(
        message(&v).contains(&format!("profile {insights} cannot protect Planner data")),
        "{v}"
    );
    assert_eq!(
        get_scan(&env, &id).await,
        wrong,
        "a refused save changes nothing"
    );
    // Its delegated and app profiles are in use.
    let (s, v) = env
        .api(
            Method::DELETE,
            &format!("/api/v1/profiles/{insights}"),
            None,
        )
        .await;
    assert_eq!(s, StatusCode::CONFLICT, "{v}");
}

//! Scan profiles in the web console (router in memory, state wired to entra-sim): the tenant's list,
//! the detail with the Planner readiness list and its steps, the edit form (CSRF required, a refusal
//! shown with its reason and the scan profile left as it was, the conversion of a classic scan profile
//! on a save without other change), and organization scoping.

use axum::http::StatusCode;
use consentry_domain::{AccountScope, Accounts, HashCost, OrgId, SessionPolicy};
use consentry_server::AppState;
use consentry_testkit::TestEnv;
use consentry_testkit::console::{self as kit, Answer, post};
use reqwest::Method;
use secrecy::SecretString;
use serde_json::{Value, json};

const PASSWORD: &str = "console-password-1";
const CONTOSO: &str = "contoso.onmicrosoft.com";

async fn get(state: &AppState, path: &str, session: &str) -> Answer {
    kit::get(state, path, Some(session)).await
}

async fn sign_in(state: &AppState, user: &str) -> String {
    kit::sign_in(state, user, PASSWORD, None).await
}

async fn stored(env: &TestEnv, id: &str) -> Value {
    let (s, v) = env
        .api(Method::GET, &format!("/api/v1/scan-profiles/{id}"), None)
        .await;
    assert_eq!(s, StatusCode::OK, "{v}");
    v
}

#[tokio::test]
async fn a_classic_scan_profile_is_converted_from_the_console() {
    let env = TestEnv::start().await;
    let org = env.connect_contoso(&["planner"]).await;
    let delegated = env.profile("cloud-backup-delegated", None).await;
    let modern = env.profile("cloud-backup-m365-all", None).await;
    env.authorize(
        &modern,
        json!({"method": "admin"}),
        "admin@contoso.onmicrosoft.com",
        None,
    )
    .await;
    let (s, sp) = env
        .api(
            Method::POST,
            &format!("/api/v1/tenants/{CONTOSO}/scan-profiles"),
            Some(json!({"name": "Contoso <backup>", "modules": ["planner"],
                "authentication": {"method": "classic",
                    "service_account": "svc@contoso.onmicrosoft.com", "delegated_profile": delegated}})),
        )
        .await;
    assert_eq!(s, StatusCode::CREATED, "{sp}");
    let id = sp["id"].as_str().unwrap().to_string();
    let mut state = env.state.clone();
    state.console.accounts = Accounts::new(
        state.svc.store().clone(),
        env.clock.clone(),
        SessionPolicy::default(),
        HashCost::TestOnly,
    );
    let pw = SecretString::from(PASSWORD.to_string());
    state
        .console
        .accounts
        .create(
            "ops",
            &pw,
            AccountScope::Organization(OrgId::parse(&org).unwrap()),
        )
        .await
        .unwrap();
    let other = state
        .svc
        .create_organization("Elsewhere", &[])
        .await
        .unwrap();
    state
        .console
        .accounts
        .create("outsider", &pw, AccountScope::Organization(other.id))
        .await
        .unwrap();
    let session = sign_in(&state, "ops").await;
    let cookies = format!("consentry_session={session}");

    // The tenant's list, from the tenants page.
    let home = get(&state, "/console", &session).await;
    let list_path = format!("/console/tenants/{}/scan-profiles", env.contoso_id);
    assert!(home.body.contains(&list_path), "{}", home.body);
    let list = get(&state, &list_path, &session).await;
    assert_eq!(list.status, StatusCode::OK, "{}", list.body);
    assert!(
        list.body.contains("Contoso &#60;backup&#62;")
            || list.body.contains("Contoso &lt;backup&gt;"),
        "names are escaped: {}",
        list.body
    );
    assert!(list.body.contains("Classic"), "{}", list.body);

    // The detail lists what is missing, with the steps.
    let detail_path = format!("/console/scan-profiles/{id}");
    let d = get(&state, &detail_path, &session).await;
    assert_eq!(d.status, StatusCode::OK, "{}", d.body);
    assert!(
        d.body.contains("data-code=\"classic_method\""),
        "{}",
        d.body
    );
    assert!(
        d.body.contains("data-code=\"backup_setting\""),
        "{}",
        d.body
    );
    assert!(
        d.body
            .contains("Edit the scan profile and save it, even without changes"),
        "{}",
        d.body
    );

    // Another organization's account does not see it.
    let outsider = sign_in(&state, "outsider").await;
    assert_eq!(
        get(&state, &detail_path, &outsider).await.status,
        StatusCode::NOT_FOUND
    );
    assert_eq!(
        get(&state, &list_path, &outsider).await.status,
        StatusCode::NOT_FOUND
    );

    let edit_path = format!("/console/scan-profiles/{id}/edit");
    let form = get(&state, &edit_path, &session).await;
    assert_eq!(form.status, StatusCode::OK, "{}", form.body);
    assert!(form.body.contains("id=\"classic-note\""), "{}", form.body);
    let csrf = form.csrf();
    let before = stored(&env, &id).await;

    // No CSRF token: refused, nothing changes.
    let a = post(
        &state,
        &edit_path,
        &cookies,
        &[("name", "Contoso <backup>"), ("module", "planner")],
    )
    .await;
    assert_eq!(a.status, StatusCode::FORBIDDEN, "{}", a.body);
    assert_eq!(stored(&env, &id).await, before);

    // An unsuitable app profile: the form again, with the reason and step; nothing changes.
    let a = post(
        &state,
        &edit_path,
        &cookies,
        &[
            ("csrf", &csrf),
            ("name", "Contoso <backup>"),
            ("module", "planner"),
            ("app_profile", &delegated),
        ],
    )
    .await;
    assert_eq!(a.status, StatusCode::UNPROCESSABLE_ENTITY, "{}", a.body);
    assert!(
        a.body.contains("id=\"error\"") && a.body.contains("cannot protect Planner data"),
        "{}",
        a.body
    );
    assert_eq!(stored(&env, &id).await, before);

    // Save without other change: converted to the tenant's suitable app profile.
    let a = post(
        &state,
        &edit_path,
        &cookies,
        &[
            ("csrf", &csrf),
            ("name", "Contoso <backup>"),
            ("module", "planner"),
            ("app_profile", ""),
        ],
    )
    .await;
    assert_eq!(a.status, StatusCode::SEE_OTHER, "{}", a.body);
    assert_eq!(
        a.location(),
        format!("/console/scan-profiles/{id}?converted={modern}")
    );
    let now: Value = stored(&env, &id).await;
    assert_eq!(
        now["authentication"],
        json!({"method": "app_profile", "app_profile": modern})
    );
    let d = get(&state, a.location(), &session).await;
    assert!(
        d.body.contains("was converted from the classic method"),
        "{}",
        d.body
    );
    assert!(
        !d.body.contains("data-code=\"classic_method\""),
        "{}",
        d.body
    );
    assert!(
        d.body.contains("data-code=\"backup_setting\""),
        "{}",
        d.body
    );

    // Enabling Planner data backup: ready.
    let a = post(
        &state,
        &edit_path,
        &cookies,
        &[
            ("csrf", &csrf),
            ("name", "Contoso <backup>"),
            ("module", "planner"),
            ("app_profile", &modern),
            ("planner_backup", "on"),
        ],
    )
    .await;
    assert_eq!(a.status, StatusCode::SEE_OTHER, "{}", a.body);
    let d = get(&state, a.location(), &session).await;
    assert!(d.body.contains("id=\"planner-ready\""), "{}", d.body);
}

#[tokio::test]
async fn a_classic_scan_profile_with_an_app_profile_is_shown_and_converted_from_the_console() {
    let env = TestEnv::start().await;
    let org = env.connect_contoso(&["planner"]).await;
    let delegated = env.profile("cloud-backup-delegated", None).await;
    let classic_mode = env.profile("m365-all", Some("cloud-backup-m365")).await;
    env.authorize(
        &classic_mode,
        json!({"method": "admin"}),
        "admin@contoso.onmicrosoft.com",
        None,
    )
    .await;
    let (s, sp) = env
        .api(
            Method::POST,
            &format!("/api/v1/tenants/{CONTOSO}/scan-profiles"),
            Some(
                json!({"name": "Contoso classic app", "modules": ["planner"],
                "authentication": {"method": "classic_app_profile",
                    "app_profile": classic_mode, "delegated_profile": delegated},
                "planner_backup_enabled": true}),
            ),
        )
        .await;
    assert_eq!(s, StatusCode::CREATED, "{sp}");
    let id = sp["id"].as_str().unwrap().to_string();
    let mut state = env.state.clone();
    state.console.accounts = Accounts::new(
        state.svc.store().clone(),
        env.clock.clone(),
        SessionPolicy::default(),
        HashCost::TestOnly,
    );
    state
        .console
        .accounts
        .create(
            "ops",
            &SecretString::from(PASSWORD.to_string()),
            AccountScope::Organization(OrgId::parse(&org).unwrap()),
        )
        .await
        .unwrap();
    let session = sign_in(&state, "ops").await;
    let cookies = format!("consentry_session={session}");

    let list = get(
        &state,
        &format!("/console/tenants/{}/scan-profiles", env.contoso_id),
        &session,
    )
    .await;
    assert_eq!(list.status, StatusCode::OK, "{}", list.body);
    assert!(
        list.body.contains(&format!(
            "Classic: app profile {classic_mode} with the delegated app profile {delegated}"
        )),
        "{}",
        list.body
    );
    let d = get(&state, &format!("/console/scan-profiles/{id}"), &session).await;
    assert!(
        d.body.contains("data-code=\"classic_method\""),
        "{}",
        d.body
    );

    // The edit form notes the classic method and has its own app profile chosen.
    let edit_path = format!("/console/scan-profiles/{id}/edit");
    let form = get(&state, &edit_path, &session).await;
    assert_eq!(form.status, StatusCode::OK, "{}", form.body);
    assert!(form.body.contains("id=\"classic-note\""), "{}", form.body);
    assert!(
        form.body
            .contains(&format!("<option value=\"{classic_mode}\" selected>")),
        "{}",
        form.body
    );
    let csrf = form.csrf();
    let a = post(
        &state,
        &edit_path,
        &cookies,
        &[
            ("csrf", &csrf),
            ("name", "Contoso classic app"),
            ("module", "planner"),
            ("app_profile", &classic_mode),
            ("planner_backup", "on"),
        ],
    )
    .await;
    assert_eq!(a.status, StatusCode::SEE_OTHER, "{}", a.body);
    assert_eq!(
        a.location(),
        format!("/console/scan-profiles/{id}?converted={classic_mode}")
    );
    assert_eq!(
        stored(&env, &id).await["authentication"],
        json!({"method": "app_profile", "app_profile": classic_mode})
    );
    let d = get(&state, a.location(), &session).await;
    assert!(d.body.contains("id=\"planner-ready\""), "{}", d.body);
}

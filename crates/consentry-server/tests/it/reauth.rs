//! Re-authorization end to end: Consentry and entra-sim on loopback over HTTPS, the administrator's
//! browser played by a plain HTTP client through the simulator's sign-in and consent pages.

use base64::Engine;
use consentry_testkit::{
    CUSTOM_APP_ID, CUSTOM_APP_PFX, CUSTOM_APP_PFX_PASSWORD, Decision, PASSWORD, TestEnv,
};
use reqwest::StatusCode;
use serde_json::{Value, json};

const ADMIN: &str = "admin@contoso.onmicrosoft.com";
const USER: &str = "user@contoso.onmicrosoft.com";
const GROUP_OWNER: &str = "group.owner@contoso.onmicrosoft.com";
const EXCHANGE: &str = "exchange.admin@contoso.onmicrosoft.com";
const BACKUP_ADMIN: &str = "backup.admin@contoso.onmicrosoft.com";
const OFFICE_IP: &str = "203.0.113.7";

fn granted(p: &Value) -> Vec<String> {
    p["granted_permissions"]
        .as_array()
        .unwrap()
        .iter()
        .map(|g| g["name"].as_str().unwrap().to_string())
        .collect()
}

async fn history_kinds(env: &TestEnv, id: &str) -> Vec<String> {
    let (_, h) = env
        .api(
            reqwest::Method::GET,
            &format!("/api/v1/profiles/{id}/history"),
            None,
        )
        .await;
    h["items"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["kind"].as_str().unwrap().to_string())
        .collect()
}

#[tokio::test]
async fn application_permissions_admin_consent_reads_real_grants() {
    let env = TestEnv::start().await;
    env.connect_contoso(&["teams"]).await;
    let id = env.profile("m365-all", Some("cloud-backup-m365")).await;

    let (s, started) = env.start_reauth(&id, json!({"method": "admin"})).await;
    assert_eq!(s, StatusCode::OK, "{started}");
    let url = started["url"].as_str().unwrap();
    assert!(url.contains("/v2.0/adminconsent"), "{url}");
    assert_eq!(started["profile"]["status"], "pending");

    let page = env
        .browser(Some(OFFICE_IP))
        .complete(url, ADMIN, PASSWORD, Decision::Accept { org_wide: true })
        .await;
    assert_eq!(page.status, 200, "{}", page.body);
    assert!(page.body.contains("re-authorized"), "{}", page.body);

    let p = env.get_profile(&id).await;
    assert_eq!(p["status"], "valid", "{p}");
    assert_eq!(p["consent_method"], "admin");
    assert!(
        p["consent_user"].is_null(),
        "application permissions have no consent user"
    );
    let g = granted(&p);
    for want in [
        "Tasks.ReadWrite.All",
        "Mail.ReadWrite",
        "Sites.FullControl.All",
    ] {
        assert!(g.contains(&want.to_string()), "{want} in {g:?}");
    }
    let vendor = entra_sim::Scenario::contoso()
        .client_id_for("m365-all")
        .expect("app in the scenario");
    assert_eq!(p["application_id"], vendor.to_string());
    let kinds = history_kinds(&env, &id).await;
    assert_eq!(kinds[0], "reauthorization_completed", "{kinds:?}");
    assert!(kinds.contains(&"reauthorization_started".to_string()));
}

#[tokio::test]
async fn hybrid_admin_consent_records_the_consent_user_and_original_ip() {
    let env = TestEnv::start().await;
    env.connect_contoso(&[]).await;
    let id = env.profile("insights-m365", None).await;
    let (s, started) = env.start_reauth(&id, json!({"method": "admin"})).await;
    assert_eq!(s, StatusCode::OK, "{started}");
    let page = env
        .browser(Some(OFFICE_IP))
        .complete(
            started["url"].as_str().unwrap(),
            ADMIN,
            PASSWORD,
            Decision::Accept { org_wide: true },
        )
        .await;
    assert!(page.body.contains("re-authorized"), "{}", page.body);
    let p = env.get_profile(&id).await;
    assert_eq!(p["status"], "valid", "{p}");
    assert_eq!(p["consent_user"]["upn"], ADMIN);
    assert_eq!(p["original_sign_in_ip"], OFFICE_IP);
    let g = granted(&p);
    assert!(
        g.contains(&"User.Read".to_string()) && g.contains(&"Directory.Read.All".to_string()),
        "{g:?}"
    );
}

#[tokio::test]
async fn user_consent_needs_admin_consent_first_then_checks_roles() {
    let env = TestEnv::start().await;
    env.connect_contoso(&[]).await;
    let id = env.profile("cloud-governance-delegated", None).await;

    // No admin consent in the tenant yet: a clear error with the Entra steps.
    let (s, v) = env.start_reauth(&id, json!({"method": "user"})).await;
    assert_eq!(s, StatusCode::UNPROCESSABLE_ENTITY, "{v}");
    let msg = v["error"]["message"].as_str().unwrap();
    assert!(
        msg.contains("Enterprise applications") && msg.contains("Grant admin consent"),
        "{msg}"
    );
    assert_eq!(
        env.get_profile(&id).await["status"],
        "invalid",
        "nothing changed"
    );

    // The organization grants admin consent in Entra.
    let client = env.get_profile(&id).await; // application_id unknown until authorized
    assert!(client["application_id"].is_null());
    let app_id = entra_sim::Scenario::contoso()
        .client_id_for("cloud-governance-delegated")
        .expect("app in the scenario");
    env.sim
        .control()
        .grant_admin_consent("contoso.onmicrosoft.com", app_id)
        .unwrap();

    // A plain user is not a group owner: rejected with what is missing; the profile is restored.
    let (s, started) = env.start_reauth(&id, json!({"method": "user"})).await;
    assert_eq!(s, StatusCode::OK, "{started}");
    let page = env
        .browser(None)
        .complete(
            started["url"].as_str().unwrap(),
            USER,
            PASSWORD,
            Decision::Accept { org_wide: false },
        )
        .await;
    assert!(
        page.body.contains("Not completed")
            && page.body.contains("ownership of the managed groups"),
        "{}",
        page.body
    );
    let p = env.get_profile(&id).await;
    assert_eq!(p["status"], "invalid");
    assert_eq!(
        p["reason_view"]["code"], "not_yet_authorized",
        "previous reason restored"
    );

    // A group owner may.
    let page = env
        .reauthorize_as(
            &id,
            json!({"method": "user"}),
            GROUP_OWNER,
            None,
            Decision::Accept { org_wide: false },
        )
        .await;
    assert!(page.body.contains("re-authorized"), "{}", page.body);
    let p = env.get_profile(&id).await;
    assert_eq!(p["status"], "valid", "{p}");
    assert_eq!(p["consent_method"], "user");
    assert_eq!(p["consent_user"]["upn"], GROUP_OWNER);
}

#[tokio::test]
async fn admin_consent_role_rules_reject_and_accept() {
    let env = TestEnv::start().await;
    env.connect_contoso(&[]).await;
    // Cloud Governance delegated app: Global or Exchange Administrator for admin consent.
    let id = env.profile("cloud-governance-delegated", None).await;
    let page = env
        .reauthorize_as(
            &id,
            json!({"method": "admin"}),
            ADMIN,
            None,
            Decision::Accept { org_wide: true },
        )
        .await;
    assert!(page.body.contains("re-authorized"), "{}", page.body);

    // Cloud Backup Express: Microsoft 365 Backup Administrator is required; a Global Administrator
    // without it is refused, naming the role.
    let id = env.profile("cloud-backup-express", None).await;
    let page = env
        .reauthorize_as(
            &id,
            json!({"method": "admin"}),
            ADMIN,
            None,
            Decision::Accept { org_wide: true },
        )
        .await;
    assert!(
        page.body.contains("Microsoft 365 Backup Administrator"),
        "{}",
        page.body
    );
    assert_eq!(env.get_profile(&id).await["status"], "invalid");
    let _ = (EXCHANGE, BACKUP_ADMIN);
}

#[tokio::test]
async fn cancel_at_microsoft_restores_the_previous_state() {
    let env = TestEnv::start().await;
    env.connect_contoso(&[]).await;
    let id = env.profile("insights-m365", None).await;
    // First a successful authorization.
    env.reauthorize_as(
        &id,
        json!({"method": "admin"}),
        ADMIN,
        None,
        Decision::Accept { org_wide: true },
    )
    .await;
    let before = env.get_profile(&id).await;
    assert_eq!(before["status"], "valid");

    // Then a re-authorization cancelled at Microsoft's page.
    let (_, started) = env.start_reauth(&id, json!({"method": "admin"})).await;
    assert_eq!(env.get_profile(&id).await["status"], "pending");
    let page = env
        .browser(None)
        .complete(
            started["url"].as_str().unwrap(),
            ADMIN,
            PASSWORD,
            Decision::Cancel,
        )
        .await;
    assert!(page.body.contains("Not completed"), "{}", page.body);
    assert!(
        page.body.contains("cancel") || page.body.contains("declined"),
        "{}",
        page.body
    );
    let after = env.get_profile(&id).await;
    assert_eq!(after["status"], "valid");
    assert_eq!(after["consent_user"], before["consent_user"]);
    assert_eq!(after["authorized_at"], before["authorized_at"]);
    let kinds = history_kinds(&env, &id).await;
    assert_eq!(kinds[0], "reauthorization_failed", "{kinds:?}");
}

#[tokio::test]
async fn state_is_single_use_and_unknown_state_is_refused() {
    let env = TestEnv::start().await;
    env.connect_contoso(&[]).await;
    let id = env.profile("m365-all", Some("cloud-backup-m365")).await;
    let (_, started) = env.start_reauth(&id, json!({"method": "admin"})).await;
    let browser = env.browser(None);
    let back = browser
        .at_microsoft(
            started["url"].as_str().unwrap(),
            ADMIN,
            PASSWORD,
            Decision::Accept { org_wide: true },
        )
        .await;
    let callback = back.location.clone().expect("redirect to Consentry");
    let first = browser.get(&callback).await;
    assert!(first.body.contains("re-authorized"), "{}", first.body);
    let replay = browser.get(&callback).await;
    assert_eq!(replay.status, 400);
    assert!(replay.body.contains("already used"), "{}", replay.body);

    let forged = browser
        .get(&format!(
            "{}/oauth/callback?state=forged&admin_consent=True",
            env.base
        ))
        .await;
    assert_eq!(forged.status, 400);
    let missing = browser.get(&format!("{}/oauth/callback", env.base)).await;
    assert_eq!(missing.status, 400);
    assert!(missing.body.contains("state"), "{}", missing.body);
}

#[tokio::test]
async fn custom_app_with_good_and_bad_certificates() {
    let env = TestEnv::start().await;
    env.connect_contoso(&[]).await;
    let id = env
        .profile("custom-azure-app", Some("cloud-backup-m365"))
        .await;
    let b64 = |b: &[u8]| base64::engine::general_purpose::STANDARD.encode(b);

    let (s, v) = env.start_reauth(&id, json!({"method": "admin"})).await;
    assert_eq!(s, StatusCode::UNPROCESSABLE_ENTITY, "{v}");
    assert_eq!(v["error"]["field"], "application_id");

    let (s, v) = env
        .start_reauth(
            &id,
            json!({"method": "admin", "application_id": CUSTOM_APP_ID,
            "certificate_pfx_base64": b64(CUSTOM_APP_PFX), "certificate_password": "wrong"}),
        )
        .await;
    assert_eq!(s, StatusCode::UNPROCESSABLE_ENTITY, "{v}");
    assert_eq!(v["error"]["field"], "certificate");
    assert!(
        v["error"]["message"]
            .as_str()
            .unwrap()
            .to_lowercase()
            .contains("password"),
        "{v}"
    );

    let (s, v) = env
        .start_reauth(&id, json!({"method": "admin", "application_id": "not-a-guid",
            "certificate_pfx_base64": b64(CUSTOM_APP_PFX), "certificate_password": CUSTOM_APP_PFX_PASSWORD}))
        .await;
    assert_eq!(s, StatusCode::UNPROCESSABLE_ENTITY, "{v}");
    assert_eq!(v["error"]["field"], "application_id");

    let (s, v) = env
        .start_reauth(&id, json!({"method": "admin", "application_id": CUSTOM_APP_ID,
            "certificate_pfx_base64": b64(&CUSTOM_APP_PFX[..100]), "certificate_password": CUSTOM_APP_PFX_PASSWORD}))
        .await;
    assert_eq!(s, StatusCode::UNPROCESSABLE_ENTITY, "{v}");
    assert_eq!(v["error"]["field"], "certificate");

    // A certificate that is valid but not registered on the app: Microsoft answers 700027.
    let other = consentry_certs::generate_self_signed("Not registered", 1, "pw-123456", time_now())
        .unwrap();
    let (s, started) = env
        .start_reauth(
            &id,
            json!({"method": "admin", "application_id": CUSTOM_APP_ID,
            "certificate_pfx_base64": b64(&other.pfx), "certificate_password": "pw-123456"}),
        )
        .await;
    assert_eq!(s, StatusCode::OK, "{started}");
    let page = env
        .browser(None)
        .complete(
            started["url"].as_str().unwrap(),
            ADMIN,
            PASSWORD,
            Decision::Accept { org_wide: true },
        )
        .await;
    assert!(page.body.contains("not registered"), "{}", page.body);
    assert_eq!(env.get_profile(&id).await["status"], "invalid");

    // The registered one.
    let (s, started) = env
        .start_reauth(&id, json!({"method": "admin", "application_id": CUSTOM_APP_ID,
            "certificate_pfx_base64": b64(CUSTOM_APP_PFX), "certificate_password": CUSTOM_APP_PFX_PASSWORD}))
        .await;
    assert_eq!(s, StatusCode::OK, "{started}");
    let page = env
        .browser(None)
        .complete(
            started["url"].as_str().unwrap(),
            ADMIN,
            PASSWORD,
            Decision::Accept { org_wide: true },
        )
        .await;
    assert!(page.body.contains("re-authorized"), "{}", page.body);
    let p = env.get_profile(&id).await;
    assert_eq!(p["status"], "valid", "{p}");
    assert_eq!(p["application_id"], CUSTOM_APP_ID);
    let cert = consentry_certs::ClientCertificate::from_pfx(
        CUSTOM_APP_PFX,
        CUSTOM_APP_PFX_PASSWORD,
        time_now(),
    )
    .unwrap();
    assert_eq!(
        p["certificate"]["thumbprint"],
        cert.sha1_thumbprint().hex_upper()
    );
    assert!(granted(&p).contains(&"Tasks.ReadWrite.All".to_string()));
}

#[tokio::test]
async fn functions_are_gated_by_the_subscription() {
    let env = TestEnv::start().await;
    env.connect_contoso(&["teams", "planner"]).await;
    let id = env.profile("cloud-backup-delegated", None).await;
    let (s, v) = env
        .start_reauth(
            &id,
            json!({"method": "admin", "functions": ["protect-power-bi"]}),
        )
        .await;
    assert_eq!(s, StatusCode::UNPROCESSABLE_ENTITY, "{v}");
    assert_eq!(v["error"]["field"], "functions");
    assert!(
        v["error"]["message"].as_str().unwrap().contains("Power BI"),
        "{v}"
    );
    let (s, v) = env
        .start_reauth(&id, json!({"method": "admin", "functions": []}))
        .await;
    assert_eq!(s, StatusCode::UNPROCESSABLE_ENTITY, "{v}");

    let (s, started) = env
        .start_reauth(&id, json!({"method": "admin", "functions": ["restore-planner-comments", "restore-teams-conversations"]}))
        .await;
    assert_eq!(s, StatusCode::OK, "{started}");
    let page = env
        .browser(None)
        .complete(
            started["url"].as_str().unwrap(),
            ADMIN,
            PASSWORD,
            Decision::Accept { org_wide: true },
        )
        .await;
    assert!(page.body.contains("re-authorized"), "{}", page.body);
    let p = env.get_profile(&id).await;
    assert_eq!(
        p["functions"],
        json!(["restore-planner-comments", "restore-teams-conversations"])
    );
}

#[tokio::test]
async fn user_consent_is_refused_where_the_catalog_does_not_allow_it() {
    let env = TestEnv::start().await;
    env.connect_contoso(&[]).await;
    let id = env.profile("m365-all", Some("cloud-backup-m365")).await;
    let (s, v) = env.start_reauth(&id, json!({"method": "user"})).await;
    assert_eq!(s, StatusCode::UNPROCESSABLE_ENTITY, "{v}");
    assert_eq!(v["error"]["field"], "method");
    let (s, v) = env.start_reauth(&id, json!({"method": "sideways"})).await;
    assert_eq!(s, StatusCode::BAD_REQUEST, "{v}");
}

fn time_now() -> time::OffsetDateTime {
    time::OffsetDateTime::now_utc()
}

#[tokio::test]
async fn an_expired_state_is_refused_and_the_profile_restored() {
    let env = TestEnv::start().await;
    env.connect_contoso(&[]).await;
    let id = env.profile("m365-all", Some("cloud-backup-m365")).await;
    let (_, started) = env.start_reauth(&id, json!({"method": "admin"})).await;
    env.clock.advance(time::Duration::minutes(11));
    let page = env
        .browser(None)
        .complete(
            started["url"].as_str().unwrap(),
            ADMIN,
            PASSWORD,
            Decision::Accept { org_wide: true },
        )
        .await;
    assert!(page.body.contains("expired"), "{}", page.body);
    let p = env.get_profile(&id).await;
    assert_eq!(p["status"], "invalid");
    assert_eq!(p["reason_view"]["code"], "not_yet_authorized");
}

#[tokio::test]
async fn a_failed_reauthorization_leaves_the_previous_credentials_working() {
    use consentry_domain::{ClientRef, ProfileId, SecretKind, TenantId};
    use secrecy::ExposeSecret;
    let env = TestEnv::start().await;
    env.connect_contoso(&[]).await;
    let id = env.profile("insights-m365", None).await;
    env.reauthorize_as(
        &id,
        json!({"method": "admin"}),
        ADMIN,
        None,
        Decision::Accept { org_wide: true },
    )
    .await;
    let pid = ProfileId::parse(&id).unwrap();
    let store = env.state.svc.store();
    let before = store
        .get_secret(pid, SecretKind::RefreshToken)
        .await
        .unwrap()
        .expect("refresh token kept");

    // A plain user tries to re-authorize with administrator consent: Microsoft asks for admin approval.
    let page = env
        .reauthorize_as(
            &id,
            json!({"method": "admin"}),
            USER,
            None,
            Decision::Accept { org_wide: true },
        )
        .await;
    assert!(page.body.contains("Not completed"), "{}", page.body);
    assert!(
        page.body.contains("Grant admin consent") || page.body.contains("administrator"),
        "{}",
        page.body
    );

    let p = env.get_profile(&id).await;
    assert_eq!(p["status"], "valid");
    assert_eq!(p["consent_user"]["upn"], ADMIN);
    let after = store
        .get_secret(pid, SecretKind::RefreshToken)
        .await
        .unwrap()
        .expect("still there");
    assert_eq!(
        before.expose_secret(),
        after.expose_secret(),
        "the refresh token was not touched"
    );
    // And it still works at Microsoft.
    let rt =
        secrecy::SecretString::from(String::from_utf8(after.expose_secret().to_vec()).unwrap());
    let refreshed = env
        .state
        .reauth
        .platform()
        .refresh(
            &consentry_domain::TenantAt::new(
                TenantId::parse(&env.contoso_id).unwrap(),
                consentry_domain::CloudKey::global(),
            ),
            &ClientRef::Vendor {
                app_type: "insights-m365".into(),
            },
            &rt,
            &["User.Read".to_string()],
        )
        .await;
    assert!(refreshed.is_ok(), "{refreshed:?}");
}

#[tokio::test]
async fn a_consent_link_is_handed_to_the_tenant_admin_and_works_once() {
    let env = TestEnv::start().await;
    env.connect_contoso(&[]).await;
    let id = env.profile("cloud-backup-express", None).await;
    let (s, started) = env
        .start_reauth(&id, json!({"method": "admin", "handoff": true}))
        .await;
    assert_eq!(s, StatusCode::OK, "{started}");
    assert_eq!(started["consent_link"], true);
    let link = started["url"].as_str().unwrap().to_string();
    assert!(
        link.starts_with(&format!("{}/consent/{id}/", env.base)),
        "{link}"
    );

    // The administrator needs no Consentry account: the page explains what, why and who may consent.
    let browser = env.browser(None);
    let page = browser.get(&link).await;
    assert_eq!(page.status, 200, "{}", page.body);
    for want in [
        "Cloud Backup Express",
        "AvePoint Cloud Backup Express",
        "Microsoft 365 Backup Administrator",
        "Files.Read.All",
        "not been authorized",
    ] {
        assert!(page.body.contains(want), "{want} in {}", page.body);
    }
    // Continue to Microsoft, as the backup administrator (who also needs GA/PRA for tenant-wide consent).
    let go = browser.post(&link, &[]).await;
    assert_eq!(go.status, 303, "{}", go.body);
    let ms = go.location.clone().unwrap();
    assert!(ms.contains("/v2.0/adminconsent"), "{ms}");
    let done = browser
        .complete(
            &ms,
            BACKUP_ADMIN,
            PASSWORD,
            Decision::Accept { org_wide: true },
        )
        .await;
    assert!(
        done.body.contains("Not completed") || done.body.contains("re-authorized"),
        "{}",
        done.body
    );
    // The administrator has no Consentry account: the result page says they are done instead of
    // linking to the console's sign-in.
    assert!(
        done.body.contains("id=\"done\"") && !done.body.contains("back-to-profile"),
        "{}",
        done.body
    );

    // The link was used: opening it again is refused.
    let again = browser.get(&link).await;
    assert_eq!(again.status, 400);
    assert!(again.body.contains("not valid"), "{}", again.body);
    let again = browser.post(&link, &[]).await;
    assert_eq!(again.status, 400);

    // A new link expires after 72 hours.
    let (_, started) = env
        .start_reauth(&id, json!({"method": "admin", "handoff": true}))
        .await;
    env.clock.advance(time::Duration::hours(73));
    let page = browser.get(started["url"].as_str().unwrap()).await;
    assert_eq!(page.status, 400);
    assert!(page.body.contains("expired"), "{}", page.body);

    let kinds = history_kinds(&env, &id).await;
    assert!(
        kinds
            .iter()
            .filter(|k| *k == "reauthorization_started")
            .count()
            >= 2,
        "{kinds:?}"
    );
}

#[tokio::test]
async fn a_consent_link_completed_by_a_global_admin_records_both_people() {
    let env = TestEnv::start().await;
    env.connect_contoso(&[]).await;
    let id = env.profile("insights-m365", None).await;
    let (_, started) = env
        .start_reauth(&id, json!({"method": "admin", "handoff": true}))
        .await;
    let link = started["url"].as_str().unwrap().to_string();
    let browser = env.browser(Some(OFFICE_IP));
    let go = browser.post(&link, &[]).await;
    let done = browser
        .complete(
            go.location.as_deref().unwrap(),
            ADMIN,
            PASSWORD,
            Decision::Accept { org_wide: true },
        )
        .await;
    assert!(done.body.contains("re-authorized"), "{}", done.body);
    let p = env.get_profile(&id).await;
    assert_eq!(p["consent_user"]["upn"], ADMIN);
    let (_, h) = env
        .api(
            reqwest::Method::GET,
            &format!("/api/v1/profiles/{id}/history"),
            None,
        )
        .await;
    let completed = &h["items"][0];
    assert_eq!(completed["kind"], "reauthorization_completed");
    let detail = completed["detail"].as_str().unwrap();
    assert!(
        detail.contains(ADMIN) && detail.contains("started by api"),
        "{detail}"
    );
}

/// The roles, licenses and conditions the documentation requires of the consenting user, each
/// accepted for an account that has them and refused, with what is missing, for one that does not.
#[tokio::test]
async fn each_consent_rule_of_the_catalog_accepts_and_rejects() {
    struct Case {
        app_type: &'static str,
        service: Option<&'static str>,
        method: &'static str,
        functions: &'static [&'static str],
        user: &'static str,
        ok: bool,
        says: &'static str,
    }
    const fn case(
        app_type: &'static str,
        service: Option<&'static str>,
        method: &'static str,
        functions: &'static [&'static str],
        user: &'static str,
        ok: bool,
        says: &'static str,
    ) -> Case {
        Case {
            app_type,
            service,
            method,
            functions,
            user,
            ok,
            says,
        }
    }
    let cases = [
        // Portal Manager: Global Administrator, or Privileged Role Administrator plus Teams Administrator
        // (administrator consent; user consent of the default apps needs no role).
        case(
            "portal-manager",
            None,
            "admin",
            &[],
            "pra@contoso.onmicrosoft.com",
            false,
            "Teams Administrator",
        ),
        case("portal-manager", None, "admin", &[], ADMIN, true, ""),
        case(
            "portal-manager",
            None,
            "user",
            &[],
            "teams.admin@contoso.onmicrosoft.com",
            true,
            "",
        ),
        case("portal-manager", None, "user", &[], USER, true, ""),
        // Cloud Backup Express: Microsoft 365 Backup Administrator.
        case(
            "cloud-backup-express",
            None,
            "user",
            &[],
            BACKUP_ADMIN,
            true,
            "",
        ),
        case(
            "cloud-backup-express",
            None,
            "user",
            &[],
            "teams.admin@contoso.onmicrosoft.com",
            false,
            "Microsoft 365 Backup Administrator",
        ),
        // Viva Engage apps: Engage (Yammer) Administrator.
        case(
            "viva-engage",
            Some("cloud-governance"),
            "user",
            &[],
            "engage.admin@contoso.onmicrosoft.com",
            true,
            "",
        ),
        case(
            "viva-engage",
            Some("cloud-governance"),
            "user",
            &[],
            USER,
            false,
            "Yammer Administrator",
        ),
        // ... used by Cloud Backup: also Verified Admin (read from the Viva Engage API) and a Viva
        // Engage license. Lidia is all three; the Global Administrator is neither a Yammer
        // Administrator nor a verified admin.
        case(
            "viva-engage",
            Some("cloud-backup-m365"),
            "user",
            &[],
            "engage.admin@contoso.onmicrosoft.com",
            true,
            "",
        ),
        case(
            "viva-engage",
            Some("cloud-backup-m365"),
            "user",
            &[],
            ADMIN,
            false,
            "Verified Admin",
        ),
        // The Cloud Backup delegated app: Global Administrator for administrator consent; any user for
        // user consent.
        case(
            "cloud-backup-delegated",
            None,
            "admin",
            &["restore-planner-comments"],
            ADMIN,
            true,
            "",
        ),
        case(
            "cloud-backup-delegated",
            None,
            "user",
            &["restore-planner-comments"],
            EXCHANGE,
            true,
            "",
        ),
        // The Cloud Governance delegated app: Global or Exchange Administrator (admin consent), group owner (user).
        case(
            "cloud-governance-delegated",
            None,
            "user",
            &[],
            GROUP_OWNER,
            true,
            "",
        ),
        case(
            "cloud-governance-delegated",
            None,
            "user",
            &[],
            EXCHANGE,
            false,
            "ownership",
        ),
    ];
    let env = TestEnv::start().await;
    env.connect_contoso(&["teams", "planner", "power-platform", "power-bi"])
        .await;
    let scenario = entra_sim::Scenario::contoso();
    // The organization granted admin consent in Entra to every app (the user-consent preparation).
    for app in &scenario.apps {
        if app.catalog_key.is_some()
            && !app
                .catalog_key
                .as_deref()
                .unwrap_or_default()
                .starts_with("custom")
        {
            env.sim
                .control()
                .grant_admin_consent("contoso.onmicrosoft.com", app.client_id)
                .unwrap();
        }
    }
    for c in cases {
        let id = env.profile(c.app_type, c.service).await;
        let page = env
            .reauthorize_as(
                &id,
                json!({"method": c.method, "functions": c.functions}),
                c.user,
                None,
                Decision::Accept { org_wide: true },
            )
            .await;
        let status = env.get_profile(&id).await["status"].clone();
        let label = format!("{} {:?} {} as {}", c.app_type, c.service, c.method, c.user);
        if c.ok {
            assert!(
                page.body.contains("re-authorized"),
                "{label}: {}",
                page.body
            );
            assert_eq!(status, "valid", "{label}");
        } else {
            assert!(
                page.body.contains("Not completed") && page.body.contains(c.says),
                "{label}: {}",
                page.body
            );
            assert_eq!(status, "invalid", "{label}");
        }
    }
}

#[tokio::test]
async fn custom_app_with_delegated_permissions_by_user_consent() {
    let env = TestEnv::start().await;
    env.connect_contoso(&[]).await;
    let id = env
        .profile("custom-delegated", Some("cloud-governance"))
        .await;
    let b64 = base64::engine::general_purpose::STANDARD.encode(CUSTOM_APP_PFX);
    let body = json!({"method": "user", "application_id": CUSTOM_APP_ID,
        "certificate_pfx_base64": b64, "certificate_password": CUSTOM_APP_PFX_PASSWORD});
    // Before admin consent in Entra (and with user consent not allowed in the tenant), Microsoft asks
    // for an administrator's approval; the instructions point at App registrations (a custom app).
    env.sim
        .control()
        .set_users_can_consent("contoso.onmicrosoft.com", false)
        .unwrap();
    let page = env
        .reauthorize_as(
            &id,
            body.clone(),
            USER,
            None,
            Decision::Accept { org_wide: false },
        )
        .await;
    assert!(
        page.body.contains("Not completed") && page.body.contains("App registrations"),
        "{}",
        page.body
    );
    assert_eq!(env.get_profile(&id).await["status"], "invalid");

    env.sim
        .control()
        .grant_admin_consent("contoso.onmicrosoft.com", uuid_of(CUSTOM_APP_ID))
        .unwrap();
    let page = env
        .reauthorize_as(
            &id,
            body,
            USER,
            Some(OFFICE_IP),
            Decision::Accept { org_wide: false },
        )
        .await;
    assert!(page.body.contains("re-authorized"), "{}", page.body);
    let p = env.get_profile(&id).await;
    assert_eq!(p["status"], "valid", "{p}");
    assert_eq!(p["consent_method"], "user");
    assert_eq!(p["consent_user"]["upn"], USER);
    assert_eq!(p["application_id"], CUSTOM_APP_ID);
    assert_eq!(p["original_sign_in_ip"], OFFICE_IP);
    assert!(p["certificate"]["thumbprint"].is_string());
}

fn uuid_of(s: &str) -> uuid::Uuid {
    uuid::Uuid::parse_str(s).unwrap()
}

/// The preparation for user consent: the organization granted admin consent in Entra to every vendor app.
fn grant_admin_consent_to_vendor_apps(env: &TestEnv) {
    for app in &entra_sim::Scenario::contoso().apps {
        if app
            .catalog_key
            .as_deref()
            .is_some_and(|k| !k.starts_with("custom"))
        {
            env.sim
                .control()
                .grant_admin_consent("contoso.onmicrosoft.com", app.client_id)
                .unwrap();
        }
    }
}

/// The documentation lists the Cloud Backup for Microsoft 365 delegated app among the apps "you can
/// re-authorize ... with a non-Administrator account"; its Global Administrator rule is for administrator
/// consent. A user without any role completes user consent once admin consent was granted in Entra, and
/// the chosen functions (still gated by the subscription's modules) are recorded.
#[tokio::test]
async fn cloud_backup_delegated_app_by_user_consent_with_a_non_administrator_account() {
    let env = TestEnv::start().await;
    env.connect_contoso(&["teams", "planner"]).await;
    let id = env.profile("cloud-backup-delegated", None).await;
    let body = json!({"method": "user", "functions": ["restore-planner-comments", "restore-teams-conversations"]});

    // Without admin consent in Entra first, user consent is refused with the steps to grant it.
    let (s, v) = env.start_reauth(&id, body.clone()).await;
    assert_eq!(s, StatusCode::UNPROCESSABLE_ENTITY, "{v}");
    assert!(
        v["error"]["message"]
            .as_str()
            .unwrap()
            .contains("Grant admin consent"),
        "{v}"
    );

    grant_admin_consent_to_vendor_apps(&env);
    // Functions stay gated by the subscription's modules.
    let (s, v) = env
        .start_reauth(
            &id,
            json!({"method": "user", "functions": ["protect-power-bi"]}),
        )
        .await;
    assert_eq!(s, StatusCode::UNPROCESSABLE_ENTITY, "{v}");
    assert_eq!(v["error"]["field"], "functions");

    let page = env
        .reauthorize_as(
            &id,
            body,
            USER,
            Some(OFFICE_IP),
            Decision::Accept { org_wide: false },
        )
        .await;
    assert!(page.body.contains("re-authorized"), "{}", page.body);
    let p = env.get_profile(&id).await;
    assert_eq!(p["status"], "valid", "{p}");
    assert_eq!(p["consent_method"], "user");
    assert_eq!(p["consent_user"]["upn"], USER);
    assert_eq!(
        p["functions"],
        json!(["restore-planner-comments", "restore-teams-conversations"])
    );
    assert!(granted(&p).contains(&"Tasks.ReadWrite".to_string()), "{p}");
}

/// AvePoint Portal Manager: the default apps' user consent needs no role; the Teams Service
/// Administrator rule of the user-consent section applies to the custom app with delegated permissions
/// when it is used for Portal Manager, and not when the same custom app type serves another service.
#[tokio::test]
async fn portal_manager_user_consent_rules_for_default_and_custom_apps() {
    let env = TestEnv::start().await;
    env.connect_contoso(&[]).await;
    grant_admin_consent_to_vendor_apps(&env);
    env.sim
        .control()
        .grant_admin_consent("contoso.onmicrosoft.com", uuid_of(CUSTOM_APP_ID))
        .unwrap();

    // 1. The default apps: any user of the tenant.
    for app_type in ["portal-manager", "portal-manager-room"] {
        let id = env.profile(app_type, None).await;
        let page = env
            .reauthorize_as(
                &id,
                json!({"method": "user"}),
                USER,
                None,
                Decision::Accept { org_wide: false },
            )
            .await;
        assert!(
            page.body.contains("re-authorized"),
            "{app_type}: {}",
            page.body
        );
        let p = env.get_profile(&id).await;
        assert_eq!(p["status"], "valid", "{app_type}: {p}");
        assert_eq!(p["consent_user"]["upn"], USER);
    }

    let b64 = base64::engine::general_purpose::STANDARD.encode(CUSTOM_APP_PFX);
    let custom = json!({"method": "user", "application_id": CUSTOM_APP_ID,
        "certificate_pfx_base64": b64, "certificate_password": CUSTOM_APP_PFX_PASSWORD});
    // 2. The custom app with delegated permissions used for Portal Manager: Teams Administrator or higher.
    let id = env
        .profile("custom-delegated", Some("portal-manager"))
        .await;
    let page = env
        .reauthorize_as(
            &id,
            custom.clone(),
            USER,
            None,
            Decision::Accept { org_wide: false },
        )
        .await;
    assert!(
        page.body.contains("Not completed") && page.body.contains("Teams Administrator"),
        "{}",
        page.body
    );
    assert_eq!(env.get_profile(&id).await["status"], "invalid");
    let page = env
        .reauthorize_as(
            &id,
            custom.clone(),
            "teams.admin@contoso.onmicrosoft.com",
            None,
            Decision::Accept { org_wide: false },
        )
        .await;
    assert!(page.body.contains("re-authorized"), "{}", page.body);
    assert_eq!(env.get_profile(&id).await["status"], "valid");

    // 3. The same custom app type used for another service: any user.
    let id = env.profile("custom-delegated", Some("myhub")).await;
    let page = env
        .reauthorize_as(
            &id,
            custom,
            USER,
            None,
            Decision::Accept { org_wide: false },
        )
        .await;
    assert!(page.body.contains("re-authorized"), "{}", page.body);
    assert_eq!(env.get_profile(&id).await["status"], "valid");
}

/// The Power Platform app types: what the profile will scan is the consent's own choice (at least one,
/// not gated by the subscription's modules), stored with the profile; the consenting user's roles and
/// license follow from it.
#[tokio::test]
async fn power_platform_scan_targets_decide_what_the_consenting_user_needs() {
    let env = TestEnv::start().await;
    // No Power Platform or Power BI module in the subscription: scan targets do not depend on modules.
    env.connect_contoso(&[]).await;
    grant_admin_consent_to_vendor_apps(&env);
    let id = env.profile("insights-power-platform", None).await;

    let (s, v) = env.start_reauth(&id, json!({"method": "user"})).await;
    assert_eq!(s, StatusCode::UNPROCESSABLE_ENTITY, "{v}");
    assert_eq!(v["error"]["field"], "scan_targets");
    assert!(
        v["error"]["message"].as_str().unwrap().contains("power-bi"),
        "the message lists the choices: {v}"
    );
    let (s, v) = env
        .start_reauth(
            &id,
            json!({"method": "user", "scan_targets": ["dataverse"]}),
        )
        .await;
    assert_eq!(s, StatusCode::UNPROCESSABLE_ENTITY, "{v}");
    assert_eq!(v["error"]["field"], "scan_targets");
    // The old module-gated functions are gone.
    let (s, v) = env
        .start_reauth(
            &id,
            json!({"method": "user", "scan_targets": ["power-bi"], "functions": ["scan-power-bi"]}),
        )
        .await;
    assert_eq!(s, StatusCode::UNPROCESSABLE_ENTITY, "{v}");
    assert_eq!(v["error"]["field"], "functions");

    struct Case {
        app_type: &'static str,
        method: &'static str,
        targets: &'static [&'static str],
        user: &'static str,
        says: Option<&'static str>,
    }
    let cases = [
        // Power BI objects: a Power BI license and Fabric Administrator.
        Case {
            app_type: "insights-power-platform",
            method: "user",
            targets: &["power-bi"],
            user: "fabric.admin@contoso.onmicrosoft.com",
            says: None,
        },
        Case {
            app_type: "insights-power-platform",
            method: "user",
            targets: &["power-bi"],
            user: "pp.admin@contoso.onmicrosoft.com",
            says: Some("Fabric Administrator"),
        },
        // Environments, Connections, Power Apps, Solutions, Power Automate, Copilot Studio: Power Platform Administrator.
        Case {
            app_type: "enpower-power-platform",
            method: "user",
            targets: &["environments", "solutions"],
            user: "pp.admin@contoso.onmicrosoft.com",
            says: None,
        },
        Case {
            app_type: "fly-power-platform",
            method: "user",
            targets: &["copilot-studio"],
            user: USER,
            says: Some("Power Platform Administrator"),
        },
        Case {
            app_type: "cloud-governance-power-platform",
            method: "user",
            targets: &["power-apps", "power-bi"],
            user: "fabric.admin@contoso.onmicrosoft.com",
            says: Some("Power Platform Administrator"),
        },
        // Administrator consent: the targets' needs, with the Global Administrator accepted for the roles.
        Case {
            app_type: "cloud-governance-power-platform",
            method: "admin",
            targets: &["environments"],
            user: ADMIN,
            says: None,
        },
        Case {
            app_type: "cloud-governance-power-platform",
            method: "admin",
            targets: &["power-bi"],
            user: ADMIN,
            says: Some("Power BI license"),
        },
        Case {
            app_type: "insights-power-platform",
            method: "admin",
            targets: &["connections"],
            user: "pra@contoso.onmicrosoft.com",
            says: Some("Power Platform Administrator"),
        },
    ];
    for c in cases {
        let id = env.profile(c.app_type, None).await;
        let page = env
            .reauthorize_as(
                &id,
                json!({"method": c.method, "scan_targets": c.targets}),
                c.user,
                None,
                Decision::Accept { org_wide: true },
            )
            .await;
        let p = env.get_profile(&id).await;
        let label = format!("{} {} {:?} as {}", c.app_type, c.method, c.targets, c.user);
        match c.says {
            None => {
                assert!(
                    page.body.contains("re-authorized"),
                    "{label}: {}",
                    page.body
                );
                assert_eq!(p["status"], "valid", "{label}");
                assert_eq!(p["scan_targets"], json!(c.targets), "{label}");
                assert_eq!(p["functions"], json!([]), "{label}");
            }
            Some(says) => {
                assert!(
                    page.body.contains("Not completed") && page.body.contains(says),
                    "{label}: {}",
                    page.body
                );
                assert_eq!(p["status"], "invalid", "{label}");
                assert_eq!(p["scan_targets"], json!([]), "{label}");
            }
        }
    }

    // A failed re-authorization keeps what the profile scanned before.
    let page = env
        .reauthorize_as(
            &id,
            json!({"method": "user", "scan_targets": ["power-bi", "power-bi"]}),
            "fabric.admin@contoso.onmicrosoft.com",
            None,
            Decision::Accept { org_wide: false },
        )
        .await;
    assert!(page.body.contains("re-authorized"), "{}", page.body);
    assert_eq!(
        env.get_profile(&id).await["scan_targets"],
        json!(["power-bi"])
    );
    let page = env
        .reauthorize_as(
            &id,
            json!({"method": "user", "scan_targets": ["environments"]}),
            "fabric.admin@contoso.onmicrosoft.com",
            None,
            Decision::Accept { org_wide: false },
        )
        .await;
    assert!(page.body.contains("Not completed"), "{}", page.body);
    let p = env.get_profile(&id).await;
    assert_eq!(p["scan_targets"], json!(["power-bi"]), "{p}");
    assert_eq!(p["status"], "valid", "{p}");
}

/// A consent link tells the tenant's administrator the catalog's notes on the app and what the profile
/// will scan, with what that needs of the consenting account.
#[tokio::test]
async fn a_consent_link_shows_the_notes_and_what_the_profile_will_scan() {
    let env = TestEnv::start().await;
    env.connect_contoso(&[]).await;
    let id = env.profile("fly-power-platform", None).await;
    let (s, started) = env
        .start_reauth(
            &id,
            json!({"method": "admin", "handoff": true, "scan_targets": ["power-bi"]}),
        )
        .await;
    assert_eq!(s, StatusCode::OK, "{started}");
    let page = env
        .browser(None)
        .get(started["url"].as_str().unwrap())
        .await;
    assert_eq!(page.status, 200, "{}", page.body);
    assert!(
        page.body
            .contains("<ul id=\"scan-targets\"><li>Power BI</li></ul>"),
        "{}",
        page.body
    );
    assert!(page.body.contains("a Power BI license"), "{}", page.body);

    let fly = env.profile("fly", None).await;
    let (s, started) = env
        .start_reauth(&fly, json!({"method": "admin", "handoff": true}))
        .await;
    assert_eq!(s, StatusCode::OK, "{started}");
    let page = env
        .browser(None)
        .get(started["url"].as_str().unwrap())
        .await;
    assert!(page.body.contains("id=\"app-notes\""), "{}", page.body);
    assert!(
        page.body.contains("Fly App Profile Permissions"),
        "{}",
        page.body
    );
}

const ENGAGE_ADMIN: &str = "engage.admin@contoso.onmicrosoft.com";
const YAMMER_SCOPE: &str = "https://api.yammer.com/user_impersonation";

/// The refresh token stored for a profile.
async fn stored_refresh_token(env: &TestEnv, id: &str) -> Vec<u8> {
    use consentry_domain::{ProfileId, SecretKind};
    use secrecy::ExposeSecret;
    env.state
        .svc
        .store()
        .get_secret(ProfileId::parse(id).unwrap(), SecretKind::RefreshToken)
        .await
        .unwrap()
        .expect("a refresh token")
        .expose_secret()
        .to_vec()
}

/// A Viva Engage profile used by Cloud Backup: the consenting user must be a Yammer Administrator
/// with a Viva Engage license and a Viva Engage Verified Admin, which Consentry reads from the Viva
/// Engage API (entra-sim's `/yammer/api/v1/users/current.json`) with a token for the Yammer
/// resource redeemed from the consent's refresh token.
#[tokio::test]
async fn viva_engage_for_cloud_backup_needs_a_verified_admin_read_from_viva_engage() {
    let env = TestEnv::start().await;
    env.connect_contoso(&[]).await;
    let viva = entra_sim::Scenario::contoso()
        .client_id_for("viva-engage")
        .unwrap();
    // The user-consent preparation: admin consent granted in Entra (Graph and Viva Engage scopes).
    env.sim
        .control()
        .grant_admin_consent("contoso.onmicrosoft.com", viva)
        .unwrap();
    let id = env.profile("viva-engage", Some("cloud-backup-m365")).await;

    // A verified Yammer administrator with the license re-authorizes.
    let page = env
        .reauthorize_as(
            &id,
            json!({"method": "user"}),
            ENGAGE_ADMIN,
            None,
            Decision::Accept { org_wide: false },
        )
        .await;
    assert!(page.body.contains("re-authorized"), "{}", page.body);
    let p = env.get_profile(&id).await;
    assert_eq!(p["status"], "valid", "{p}");
    assert_eq!(p["consent_user"]["upn"], ENGAGE_ADMIN);
    assert!(
        granted(&p).contains(&YAMMER_SCOPE.to_string()),
        "the Viva Engage scope is proven and recorded: {p}"
    );
    let token_before = stored_refresh_token(&env, &id).await;

    // No longer a verified admin in Viva Engage: refused, naming Verified Admin and how to get it;
    // the profile and its credentials stay as they were.
    env.sim
        .control()
        .set_viva_engage_verified_admin(ENGAGE_ADMIN, false)
        .unwrap();
    let page = env
        .reauthorize_as(
            &id,
            json!({"method": "user"}),
            ENGAGE_ADMIN,
            None,
            Decision::Accept { org_wide: false },
        )
        .await;
    assert!(page.body.contains("Not completed"), "{}", page.body);
    assert!(
        page.body.contains("missing: Verified Admin"),
        "the refusal names the missing Verified Admin: {}",
        page.body
    );
    assert!(
        page.body.contains("Viva Engage admin center"),
        "and says where it is assigned: {}",
        page.body
    );
    let after = env.get_profile(&id).await;
    assert_eq!(after["status"], "valid", "{after}");
    assert_eq!(after["consent_user"]["upn"], ENGAGE_ADMIN);
    assert_eq!(granted(&after), granted(&p));
    assert_eq!(stored_refresh_token(&env, &id).await, token_before);
    assert!(
        history_kinds(&env, &id)
            .await
            .iter()
            .any(|k| k == "reauthorization_failed")
    );

    // Viva Engage down: a transient failure, never a refusal; nothing changes.
    env.sim
        .control()
        .set_faults(vec![entra_sim::FaultRule {
            endpoint: "yammer".into(),
            rate: 1.0,
            latency_ms: 0,
            status: Some(503),
            retry_after_secs: None,
            drop_connection: false,
        }])
        .unwrap();
    let page = env
        .reauthorize_as(
            &id,
            json!({"method": "user"}),
            ENGAGE_ADMIN,
            None,
            Decision::Accept { org_wide: false },
        )
        .await;
    assert!(
        page.body.contains("Viva Engage did not answer in time"),
        "{}",
        page.body
    );
    assert!(
        !page.body.contains("missing: Verified Admin"),
        "{}",
        page.body
    );
    let after = env.get_profile(&id).await;
    assert_eq!(after["status"], "valid", "{after}");
    assert_eq!(stored_refresh_token(&env, &id).await, token_before);

    // While Viva Engage is down, an account lacking another condition is still refused for it.
    let page = env
        .reauthorize_as(
            &id,
            json!({"method": "user"}),
            USER,
            None,
            Decision::Accept { org_wide: false },
        )
        .await;
    assert!(page.body.contains("Yammer Administrator"), "{}", page.body);
    assert!(
        !page.body.contains("did not answer in time"),
        "{}",
        page.body
    );
    assert_eq!(
        env.get_profile(&id).await["consent_user"]["upn"],
        ENGAGE_ADMIN
    );
}

/// The Cloud Governance Delegated App: "Global Administrator or Exchange Administrator" for
/// administrator consent. An Exchange Administrator cannot grant tenant-wide consent at Microsoft
/// (the admin-consent page asks for an administrator's approval); once the organization has
/// approved the app, the re-authorization continues with the Exchange Administrator's own sign-in
/// and the role check accepts them. A Global Administrator consents for the tenant as before.
#[tokio::test]
async fn cloud_governance_delegated_admin_consent_by_global_or_exchange_administrator() {
    let env = TestEnv::start().await;
    env.connect_contoso(&[]).await;
    let id = env.profile("cloud-governance-delegated", None).await;

    // Before the organization approved the app, an Exchange Administrator cannot complete it.
    let page = env
        .reauthorize_as(
            &id,
            json!({"method": "admin"}),
            EXCHANGE,
            None,
            Decision::Accept { org_wide: true },
        )
        .await;
    assert!(page.body.contains("Not completed"), "{}", page.body);
    assert!(page.body.contains("Grant admin consent"), "{}", page.body);
    assert_ne!(env.get_profile(&id).await["status"], "valid");

    // A Global Administrator consents for the organization.
    let page = env
        .reauthorize_as(
            &id,
            json!({"method": "admin"}),
            ADMIN,
            None,
            Decision::Accept { org_wide: true },
        )
        .await;
    assert!(page.body.contains("re-authorized"), "{}", page.body);
    assert_eq!(env.get_profile(&id).await["consent_user"]["upn"], ADMIN);

    // Now the Exchange Administrator re-authorizes (e.g. to become the consent user).
    let page = env
        .reauthorize_as(
            &id,
            json!({"method": "admin"}),
            EXCHANGE,
            None,
            Decision::Accept { org_wide: true },
        )
        .await;
    assert!(page.body.contains("re-authorized"), "{}", page.body);
    let p = env.get_profile(&id).await;
    assert_eq!(p["status"], "valid", "{p}");
    assert_eq!(p["consent_user"]["upn"], EXCHANGE);
    assert!(
        granted(&p).contains(&"Group.ReadWrite.All".to_string()),
        "{p}"
    );

    // Another administrator role is refused by the catalog's rule, naming the roles it needs.
    let page = env
        .reauthorize_as(
            &id,
            json!({"method": "admin"}),
            BACKUP_ADMIN,
            None,
            Decision::Accept { org_wide: true },
        )
        .await;
    assert!(page.body.contains("Not completed"), "{}", page.body);
    assert!(
        page.body.contains("Exchange Administrator"),
        "{}",
        page.body
    );
    assert_eq!(env.get_profile(&id).await["consent_user"]["upn"], EXCHANGE);
}

#[tokio::test]
async fn a_consent_given_in_another_tenant_is_refused_and_the_profile_left_intact() {
    let env = TestEnv::start().await;
    env.connect_contoso(&[]).await;
    let id = env.profile("m365-all", Some("cloud-backup-m365")).await;
    env.authorize(&id, json!({"method": "admin"}), ADMIN, None)
        .await;
    let before = env.get_profile(&id).await;
    assert_eq!(before["status"], "valid", "{before}");

    // The administrator changes the link's tenant to `organizations` and signs in with an account of
    // another organization: Microsoft records the consent in that tenant and says so in `tenant`.
    let (s, started) = env.start_reauth(&id, json!({"method": "admin"})).await;
    assert_eq!(s, StatusCode::OK, "{started}");
    let url = started["url"].as_str().unwrap();
    let ours = format!("/{}/v2.0/adminconsent", env.contoso_id);
    assert!(url.contains(&ours), "{url}");
    let url = url.replace(&ours, "/organizations/v2.0/adminconsent");
    let page = env
        .browser(None)
        .complete(
            &url,
            "admin@fabrikam.onmicrosoft.com",
            "Demo-Fabrikam-Passw0rd!",
            Decision::Accept { org_wide: true },
        )
        .await;
    assert!(
        page.body
            .contains("The consent was given in another Microsoft tenant"),
        "{}",
        page.body
    );
    assert!(
        page.body
            .contains(&format!("contoso.onmicrosoft.com ({})", env.contoso_id)),
        "the page names the profile's tenant: {}",
        page.body
    );
    assert!(!page.body.contains("re-authorized"), "{}", page.body);

    // The profile is as it was (its status restored; consent, grants and authorization untouched).
    let after = env.get_profile(&id).await;
    for field in [
        "status",
        "reason",
        "consent_user",
        "granted_permissions",
        "authorized_at",
        "application_id",
    ] {
        assert_eq!(after[field], before[field], "{field}: {after}");
    }
    assert_eq!(
        history_kinds(&env, &id).await.first().map(String::as_str),
        Some("reauthorization_failed")
    );
}

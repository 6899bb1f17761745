//! Every failure of the seed and entra-facts §3 at the token endpoint, with exact code and shape.

use std::time::Duration;

use entra_sim::{CaAction, CaPolicy, SimOptions};

use crate::support::*;

const SCOPE: &str = "openid offline_access User.Read";

async fn signed_in(sim: &entra_sim::RunningSim, user: &str) -> String {
    let browser = Browser::new(sim);
    let body = sign_in_and_redeem(sim, &browser, user, IAAS_DELEGATED, IAAS_SECRET, SCOPE).await;
    body["refresh_token"]
        .as_str()
        .expect("refresh token")
        .to_owned()
}

#[tokio::test]
async fn password_reset_and_session_revocation_fail_refresh_with_50173() {
    let sim = start().await;
    let rt = signed_in(&sim, USER).await;
    sim.control()
        .reset_password(USER, "Another-Demo-Passw0rd!")
        .unwrap();
    let (status, body) = refresh(&sim, IAAS_DELEGATED, IAAS_SECRET, &rt).await;
    assert_aad_error(status, &body, 400, "invalid_grant", 50173);
    assert!(
        body["error_description"]
            .as_str()
            .unwrap()
            .contains("TokensValidFrom")
    );

    let rt = signed_in(&sim, MFA_USER).await;
    let (status, _) = refresh(&sim, IAAS_DELEGATED, IAAS_SECRET, &rt).await;
    assert_eq!(status, 200, "still valid before revocation");
    sim.control().revoke_sessions(MFA_USER).unwrap();
    let (status, body) = refresh(&sim, IAAS_DELEGATED, IAAS_SECRET, &rt).await;
    assert_aad_error(status, &body, 400, "invalid_grant", 50173);
    sim.shutdown().await;
}

#[tokio::test]
async fn disabled_deleted_and_newly_mfa_users_fail_refresh() {
    let sim = start().await;
    let rt = signed_in(&sim, USER).await;
    sim.control().set_user_enabled(USER, false).unwrap();
    let (status, body) = refresh(&sim, IAAS_DELEGATED, IAAS_SECRET, &rt).await;
    assert_aad_error(status, &body, 400, "invalid_grant", 50057);
    sim.control().set_user_enabled(USER, true).unwrap();
    let (status, _) = refresh(&sim, IAAS_DELEGATED, IAAS_SECRET, &rt).await;
    assert_eq!(status, 200);

    sim.control().set_mfa_required(USER, true).unwrap();
    let (status, body) = refresh(&sim, IAAS_DELEGATED, IAAS_SECRET, &rt).await;
    assert_aad_error(status, &body, 400, "invalid_grant", 50076);
    assert_eq!(body["suberror"], "basic_action");
    sim.control().set_mfa_required(USER, false).unwrap();

    let rt2 = signed_in(&sim, GROUP_OWNER).await;
    sim.control().delete_user(GROUP_OWNER).unwrap();
    let (status, body) = refresh(&sim, IAAS_DELEGATED, IAAS_SECRET, &rt2).await;
    assert_aad_error(status, &body, 400, "invalid_grant", 50034);
    sim.shutdown().await;
}

#[tokio::test]
async fn consent_revoked_gives_65001_and_deleted_service_principal_700016() {
    let sim = start().await;
    let rt = signed_in(&sim, USER).await;
    sim.control()
        .revoke_consent(CONTOSO, uuid(IAAS_DELEGATED))
        .unwrap();
    let (status, body) = refresh(&sim, IAAS_DELEGATED, IAAS_SECRET, &rt).await;
    assert_aad_error(status, &body, 400, "invalid_grant", 65001);
    assert_eq!(body["suberror"], "consent_required");

    let rt = signed_in(&sim, USER).await;
    sim.control()
        .delete_service_principal(CONTOSO, uuid(IAAS_DELEGATED))
        .unwrap();
    let (status, body) = refresh(&sim, IAAS_DELEGATED, IAAS_SECRET, &rt).await;
    assert_aad_error(status, &body, 400, "unauthorized_client", 700016);

    // client_credentials after the service principal is deleted: 7000229.
    sim.control()
        .grant_admin_consent(CONTOSO, uuid(INSIGHTS))
        .unwrap();
    let (status, _) = app_token(&sim, INSIGHTS, INSIGHTS_SECRET).await;
    assert_eq!(status, 200);
    sim.control()
        .delete_service_principal(CONTOSO, uuid(INSIGHTS))
        .unwrap();
    let (status, body) = app_token(&sim, INSIGHTS, INSIGHTS_SECRET).await;
    assert_aad_error(status, &body, 401, "invalid_client", 7000229);
    sim.shutdown().await;
}

#[tokio::test]
async fn conditional_access_uses_the_original_sign_in_ip_at_refresh() {
    let sim = start_with(SimOptions {
        trust_forwarded_for: true,
        ..SimOptions::default()
    })
    .await;
    // The admin signs in from the office (203.0.113.7); the backend refreshes from 127.0.0.1.
    let office = Browser::from_ip(&sim, "203.0.113.7");
    let body = sign_in_and_redeem(&sim, &office, USER, IAAS_DELEGATED, IAAS_SECRET, SCOPE).await;
    assert_eq!(
        claims(body["access_token"].as_str().unwrap())["ipaddr"],
        "203.0.113.7"
    );
    let rt = body["refresh_token"].as_str().unwrap().to_owned();
    let block_outside = |range: &str| CaPolicy {
        name: "Block outside trusted locations".into(),
        enabled: true,
        users: vec![],
        apps: vec![],
        allowed_ranges: vec![range.parse().unwrap()],
        action: CaAction::Block,
    };
    // The office range is trusted: the refresh passes although it comes from elsewhere.
    sim.control()
        .set_ca_policies(CONTOSO, vec![block_outside("203.0.113.0/24")])
        .unwrap();
    let (status, ok) = refresh(&sim, IAAS_DELEGATED, IAAS_SECRET, &rt).await;
    assert_eq!(status, 200, "{ok}");
    // The original IP is not among the allowed ranges: 53003.
    sim.control()
        .set_ca_policies(CONTOSO, vec![block_outside("198.51.100.0/24")])
        .unwrap();
    let (status, body) = refresh(&sim, IAAS_DELEGATED, IAAS_SECRET, &rt).await;
    assert_aad_error(status, &body, 400, "invalid_grant", 53003);
    // Interactive sign-in from outside is blocked on the page.
    let (_, challenge) = pkce();
    let page = office
        .sign_in(
            &authorize_url(&sim, IAAS_DELEGATED, SCOPE, &challenge, &[]),
            USER,
            PASSWORD,
        )
        .await;
    assert!(page.body.contains("AADSTS53003"), "{}", page.body);
    // A require-MFA policy fails refresh tokens obtained without MFA with 50076.
    let mut mfa = block_outside("198.51.100.0/24");
    mfa.action = CaAction::RequireMfa;
    sim.control().set_ca_policies(CONTOSO, vec![mfa]).unwrap();
    let (status, body) = refresh(&sim, IAAS_DELEGATED, IAAS_SECRET, &rt).await;
    assert_aad_error(status, &body, 400, "invalid_grant", 50076);
    assert_eq!(body["suberror"], "basic_action");
    // ...and asks for the code at sign-in, after which refreshes pass.
    let body = sign_in_and_redeem(&sim, &office, USER, IAAS_DELEGATED, IAAS_SECRET, SCOPE).await;
    let rt = body["refresh_token"].as_str().unwrap();
    let (status, _) = refresh(&sim, IAAS_DELEGATED, IAAS_SECRET, rt).await;
    assert_eq!(status, 200);
    sim.shutdown().await;
}

#[tokio::test]
async fn refresh_token_unused_for_90_days_fails_with_700082() {
    let sim = start().await;
    let rt = signed_in(&sim, USER).await;
    sim.control()
        .advance_clock(Duration::from_secs(89 * 86400))
        .unwrap();
    let (status, fresh) = refresh(&sim, IAAS_DELEGATED, IAAS_SECRET, &rt).await;
    assert_eq!(status, 200, "used within 90 days: {fresh}");
    sim.control()
        .advance_clock(Duration::from_secs(91 * 86400))
        .unwrap();
    let (status, body) = refresh(&sim, IAAS_DELEGATED, IAAS_SECRET, &rt).await;
    assert_aad_error(status, &body, 400, "invalid_grant", 700082);
    assert_eq!(body["suberror"], "bad_token");
    sim.shutdown().await;
}

#[tokio::test]
async fn client_secret_errors_unknown_tenant_and_bad_scope() {
    let sim = start().await;
    sim.control()
        .grant_admin_consent(CONTOSO, uuid(INSIGHTS))
        .unwrap();
    let (status, body) = app_token(&sim, INSIGHTS, "wrong-secret").await;
    assert_aad_error(status, &body, 401, "invalid_client", 7000215);
    // HTTP Basic works like client_secret_post.
    let resp = client(&sim)
        .post(sim.token_endpoint(CONTOSO_ID))
        .basic_auth(INSIGHTS, Some(INSIGHTS_SECRET))
        .form(&[
            ("grant_type", "client_credentials"),
            ("scope", "https://graph.microsoft.com/.default"),
        ])
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status().as_u16(), 200);
    sim.control().expire_secret(uuid(INSIGHTS), None).unwrap();
    let (status, body) = app_token(&sim, INSIGHTS, INSIGHTS_SECRET).await;
    assert_aad_error(status, &body, 401, "invalid_client", 7000222);

    let (status, _, body) = token(
        &sim,
        "nowhere.example",
        &[("grant_type", "client_credentials")],
    )
    .await;
    assert_aad_error(status, &body, 400, "invalid_tenant", 90002);

    let (status, _, body) = token(
        &sim,
        CONTOSO,
        &[
            ("grant_type", "client_credentials"),
            ("client_id", IAAS_DELEGATED),
            ("client_secret", IAAS_SECRET),
            ("scope", "User.Read"),
        ],
    )
    .await;
    assert_aad_error(status, &body, 400, "invalid_scope", 70011);
    let (status, _, body) = token(
        &sim,
        CONTOSO,
        &[
            ("grant_type", "client_credentials"),
            ("client_id", "00000000-1111-2222-3333-444444444444"),
            ("client_secret", "x"),
        ],
    )
    .await;
    assert_aad_error(status, &body, 400, "unauthorized_client", 700016);
    let (status, _, body) = token(&sim, CONTOSO, &[("client_id", IAAS_DELEGATED)]).await;
    assert_aad_error(status, &body, 400, "invalid_request", 900144);
    let (status, _, body) = token(
        &sim,
        CONTOSO,
        &[("grant_type", "password"), ("client_id", IAAS_DELEGATED)],
    )
    .await;
    assert_aad_error(status, &body, 400, "unsupported_grant_type", 70003);
    sim.shutdown().await;
}

#[tokio::test]
async fn correlation_id_echoes_client_request_id() {
    let sim = start().await;
    let resp = client(&sim)
        .post(sim.token_endpoint(CONTOSO))
        .header("client-request-id", "9b8f6d0e-1111-4222-8333-444455556666")
        .form(&[
            ("grant_type", "client_credentials"),
            ("client_id", INSIGHTS),
            ("client_secret", "nope"),
            ("scope", "https://graph.microsoft.com/.default"),
        ])
        .send()
        .await
        .unwrap();
    assert_eq!(resp.headers()["pragma"], "no-cache");
    let body: serde_json::Value = resp.json().await.unwrap();
    assert_eq!(
        body["correlation_id"],
        "9b8f6d0e-1111-4222-8333-444455556666"
    );
    sim.shutdown().await;
}

#[tokio::test]
async fn with_request_peer_semantics_the_backend_ip_is_what_conditional_access_sees() {
    let mut scenario = entra_sim::Scenario::contoso();
    scenario.settings.ca_refresh_ip = entra_sim::CaRefreshIp::RequestPeer;
    let sim = entra_sim::RunningSim::start(
        scenario,
        SimOptions {
            trust_forwarded_for: true,
            ..SimOptions::default()
        },
    )
    .await
    .unwrap();
    sim.control()
        .set_ca_policies(
            CONTOSO,
            vec![CaPolicy {
                name: "Office only".into(),
                enabled: true,
                users: vec![USER.into()],
                apps: vec![],
                allowed_ranges: vec!["203.0.113.0/24".parse().unwrap()],
                action: CaAction::Block,
            }],
        )
        .unwrap();
    // The user signs in from the office; the backend (127.0.0.1) redeems the code: 53003.
    let office = Browser::from_ip(&sim, "203.0.113.7");
    let (verifier, challenge) = pkce();
    let url = authorize_url(&sim, IAAS_DELEGATED, SCOPE, &challenge, &[]);
    let mut page = office.sign_in(&url, USER, PASSWORD).await;
    if page.body.contains("Permissions requested") {
        page = page.form().submit(&office, Some("accept")).await;
    }
    let code = page.redirect_params()["code"].clone();
    let (status, _, body) = token(
        &sim,
        CONTOSO,
        &[
            ("grant_type", "authorization_code"),
            ("client_id", IAAS_DELEGATED),
            ("client_secret", IAAS_SECRET),
            ("code", &code),
            ("redirect_uri", REDIRECT),
            ("code_verifier", &verifier),
        ],
    )
    .await;
    assert_aad_error(status, &body, 400, "invalid_grant", 53003);
    // Another user, outside the policy's scope, is not affected.
    let rt = signed_in(&sim, GROUP_OWNER).await;
    assert_eq!(refresh(&sim, IAAS_DELEGATED, IAAS_SECRET, &rt).await.0, 200);
    sim.shutdown().await;
}

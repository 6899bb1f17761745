//! The Viva Engage (Yammer) resource: tokens for `https://api.yammer.com/user_impersonation` from a
//! refresh token when the consent covers it, and `GET /yammer/api/v1/users/current.json` with the
//! user's `verified_admin` flag; Microsoft Graph tokens are refused there. Also: every endpoint the
//! discovery document advertises answers.

use serde_json::Value;

use crate::support::*;

/// The viva-engage vendor app of the contoso scenario (its registration includes the Yammer scope).
const VIVA: &str = "c0de0000-0000-4000-8000-000000000014";
const VIVA_SECRET: &str = "demo-secret-viva-engage";
const ENGAGE_ADMIN: &str = "engage.admin@contoso.onmicrosoft.com";
const YAMMER_SCOPE: &str = "https://api.yammer.com/user_impersonation";

async fn refresh_for(
    sim: &entra_sim::RunningSim,
    client: &str,
    secret: &str,
    rt: &str,
    scope: &str,
) -> (u16, Value) {
    let (status, _, body) = token(
        sim,
        CONTOSO,
        &[
            ("grant_type", "refresh_token"),
            ("client_id", client),
            ("client_secret", secret),
            ("refresh_token", rt),
            ("scope", scope),
        ],
    )
    .await;
    (status, body)
}

async fn current_user(sim: &entra_sim::RunningSim, token: &str) -> (u16, Value) {
    let resp = client(sim)
        .get(format!(
            "{}/api/v1/users/current.json",
            sim.viva_engage_base()
        ))
        .bearer_auth(token)
        .send()
        .await
        .expect("Viva Engage request");
    let status = resp.status().as_u16();
    (status, resp.json().await.unwrap_or(Value::Null))
}

#[tokio::test]
async fn a_refresh_token_gets_a_viva_engage_token_and_current_json_tells_verified_admin() {
    let sim = start().await;
    let browser = Browser::new(&sim);
    let signed = sign_in_and_redeem(
        &sim,
        &browser,
        ENGAGE_ADMIN,
        VIVA,
        VIVA_SECRET,
        &format!("openid profile offline_access User.Read {YAMMER_SCOPE}"),
    )
    .await;
    // The code is redeemed for Microsoft Graph (the first resource asked for).
    let graph_token = signed["access_token"].as_str().unwrap();
    assert_eq!(claims(graph_token)["aud"], "https://graph.microsoft.com");
    let rt = signed["refresh_token"].as_str().expect("refresh token");

    // The same refresh token is redeemed for Viva Engage, which the user consented to.
    let (status, body) = refresh_for(
        &sim,
        VIVA,
        VIVA_SECRET,
        rt,
        &format!("{YAMMER_SCOPE} offline_access"),
    )
    .await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["scope"], YAMMER_SCOPE, "{body}");
    let yammer_token = body["access_token"].as_str().unwrap();
    let c = claims(yammer_token);
    assert_eq!(c["aud"], "https://api.yammer.com");
    assert_eq!(c["scp"], "user_impersonation");

    let (status, user) = current_user(&sim, yammer_token).await;
    assert_eq!(status, 200, "{user}");
    assert_eq!(user["email"], ENGAGE_ADMIN);
    assert_eq!(user["verified_admin"], "true");
    assert_eq!(user["admin"], "true");

    // A Microsoft Graph token is not accepted by Viva Engage.
    let (status, _) = current_user(&sim, graph_token).await;
    assert_eq!(status, 401);
    // Nor is no token at all.
    let resp = client(&sim)
        .get(format!(
            "{}/api/v1/users/current.json",
            sim.viva_engage_base()
        ))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status().as_u16(), 401);

    // The control API takes the flag away; the API says so at once.
    sim.control()
        .set_viva_engage_verified_admin(ENGAGE_ADMIN, false)
        .unwrap();
    let (status, user) = current_user(&sim, yammer_token).await;
    assert_eq!(status, 200);
    assert_eq!(user["verified_admin"], "false");
    sim.shutdown().await;
}

#[tokio::test]
async fn users_are_not_verified_admins_unless_the_scenario_says_so() {
    let sim = start().await;
    let browser = Browser::new(&sim);
    // The global administrator of contoso is not a Viva Engage verified admin (the default).
    let signed = sign_in_and_redeem(
        &sim,
        &browser,
        ADMIN,
        VIVA,
        VIVA_SECRET,
        &format!("openid offline_access User.Read {YAMMER_SCOPE}"),
    )
    .await;
    let rt = signed["refresh_token"].as_str().unwrap();
    let (status, body) = refresh_for(&sim, VIVA, VIVA_SECRET, rt, YAMMER_SCOPE).await;
    assert_eq!(status, 200, "{body}");
    let (status, user) = current_user(&sim, body["access_token"].as_str().unwrap()).await;
    assert_eq!(status, 200);
    assert_eq!(user["verified_admin"], "false");
    assert_eq!(
        user["admin"], "true",
        "a Global Administrator is a Viva Engage admin"
    );
    sim.shutdown().await;
}

#[tokio::test]
async fn no_viva_engage_token_without_consent_to_the_yammer_scope() {
    let sim = start().await;
    let browser = Browser::new(&sim);
    // The IaaS delegated app's consent covers Microsoft Graph only.
    let signed = sign_in_and_redeem(
        &sim,
        &browser,
        USER,
        IAAS_DELEGATED,
        IAAS_SECRET,
        "openid offline_access User.Read",
    )
    .await;
    let rt = signed["refresh_token"].as_str().unwrap();
    let (status, body) = refresh_for(&sim, IAAS_DELEGATED, IAAS_SECRET, rt, YAMMER_SCOPE).await;
    assert_aad_error(status, &body, 400, "invalid_grant", 65001);
    sim.shutdown().await;
}

#[tokio::test]
async fn a_viva_engage_fault_rule_answers_the_api_with_a_server_error() {
    let sim = start().await;
    sim.control()
        .set_faults(vec![entra_sim::FaultRule {
            endpoint: "yammer".into(),
            rate: 1.0,
            latency_ms: 0,
            status: Some(503),
            retry_after_secs: None,
            drop_connection: false,
        }])
        .unwrap();
    let resp = client(&sim)
        .get(format!(
            "{}/api/v1/users/current.json",
            sim.viva_engage_base()
        ))
        .bearer_auth("anything")
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status().as_u16(), 503);
    sim.shutdown().await;
}

/// Every URL of the discovery document on the simulator's host answers with something other than
/// 404 (a flow it does not implement is not advertised).
#[tokio::test]
async fn every_endpoint_the_discovery_document_advertises_answers() {
    let sim = start().await;
    let c = client(&sim);
    for tenant in [CONTOSO, CONTOSO_ID, "common", "organizations"] {
        let doc: Value = c
            .get(format!(
                "{}/{tenant}/v2.0/.well-known/openid-configuration",
                sim.base_url()
            ))
            .send()
            .await
            .unwrap()
            .json()
            .await
            .unwrap();
        let mut checked = 0;
        for (name, value) in doc.as_object().unwrap() {
            let Some(url) = value.as_str().filter(|v| v.starts_with("https://")) else {
                continue;
            };
            if name.ends_with("_endpoint") || name.ends_with("_uri") {
                assert!(
                    url.starts_with(sim.base_url()),
                    "{name} points outside the simulator: {url}"
                );
            }
            if !url.starts_with(sim.base_url()) {
                continue;
            }
            // `{tenantid}` stands for the tenant in the issuer of /common; the issuer is an
            // identifier, not an endpoint.
            if name == "issuer" {
                continue;
            }
            for method in [reqwest::Method::GET, reqwest::Method::POST] {
                let status = c
                    .request(method.clone(), url)
                    .send()
                    .await
                    .unwrap()
                    .status()
                    .as_u16();
                assert_ne!(
                    status, 404,
                    "{method} {name} = {url} answers 404 ({tenant})"
                );
            }
            checked += 1;
        }
        assert!(
            checked >= 6,
            "{checked} endpoints checked for {tenant}: {doc}"
        );
        assert!(doc.get("device_authorization_endpoint").is_some());
        assert!(doc.get("kerberos_endpoint").is_none());
    }
    sim.shutdown().await;
}

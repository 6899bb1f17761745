//! Public clients and the device code flow: the device authorization endpoint, the verification
//! page with the sign-in pages of /authorize, the token endpoint's polling answers, and the
//! redemption of codes and refresh tokens without a credential.

use std::time::Duration;

use entra_sim::{CaAction, CaPolicy, SimOptions};
use serde_json::Value;

use crate::support::*;

/// The contoso scenario's desktop sample app (public client flows allowed).
const DESKTOP: &str = "c0de0000-0000-4000-8000-0000000000de";
const DEVICE_GRANT: &str = "urn:ietf:params:oauth:grant-type:device_code";
const SCOPE: &str = "openid profile offline_access User.Read";

async fn devicecode(sim: &entra_sim::RunningSim, client_id: &str, scope: &str) -> (u16, Value) {
    let resp = client(sim)
        .post(format!(
            "{}/{CONTOSO}/oauth2/v2.0/devicecode",
            sim.base_url()
        ))
        .form(&[("client_id", client_id), ("scope", scope)])
        .send()
        .await
        .expect("devicecode request");
    let status = resp.status().as_u16();
    (status, resp.json().await.expect("JSON body"))
}

async fn start_device(sim: &entra_sim::RunningSim) -> (String, String) {
    let (status, body) = devicecode(sim, DESKTOP, SCOPE).await;
    assert_eq!(status, 200, "{body}");
    (
        body["device_code"].as_str().unwrap().to_owned(),
        body["user_code"].as_str().unwrap().to_owned(),
    )
}

async fn poll(sim: &entra_sim::RunningSim, client_id: &str, device_code: &str) -> (u16, Value) {
    let (status, _, body) = token(
        sim,
        CONTOSO,
        &[
            ("grant_type", DEVICE_GRANT),
            ("client_id", client_id),
            ("device_code", device_code),
        ],
    )
    .await;
    (status, body)
}

fn advance(sim: &entra_sim::RunningSim, secs: u64) {
    sim.control()
        .advance_clock(Duration::from_secs(secs))
        .expect("clock");
}

/// Enters the user code on the verification page; returns the next page.
async fn enter_code(sim: &entra_sim::RunningSim, browser: &Browser, user_code: &str) -> Page {
    let page = browser
        .get(&format!("{}/devicelogin", sim.base_url()))
        .await;
    assert_eq!(page.status, 200, "{}", page.body);
    assert!(page.body.contains("Enter code"), "{}", page.body);
    page.form()
        .set("user_code", user_code)
        .submit(browser, None)
        .await
}

/// Enters the user code, signs in (with the one-time code when asked) and returns the page after
/// the password and MFA steps.
async fn sign_in_for_device(
    sim: &entra_sim::RunningSim,
    browser: &Browser,
    user_code: &str,
    user: &str,
) -> Page {
    let page = enter_code(sim, browser, user_code).await;
    assert!(
        page.body.contains("Consentry Desktop Sample"),
        "the sign-in page names the app: {}",
        page.body
    );
    let mut page = page
        .form()
        .set("username", user)
        .set("password", PASSWORD)
        .submit(browser, None)
        .await;
    if page.status == 200 && page.body.contains("name=\"otc\"") {
        let code = if user == MFA_USER { "246810" } else { "123456" };
        page = page.form().set("otc", code).submit(browser, None).await;
    }
    page
}

#[tokio::test]
async fn device_code_pending_then_sign_in_with_mfa_then_tokens() {
    let sim = start().await;
    let (status, body) = devicecode(&sim, DESKTOP, SCOPE).await;
    assert_eq!(status, 200, "{body}");
    let user_code = body["user_code"].as_str().unwrap().to_owned();
    let device_code = body["device_code"].as_str().unwrap().to_owned();
    let verification_uri = format!("{}/devicelogin", sim.base_url());
    assert_eq!(body["verification_uri"], verification_uri.as_str());
    assert_eq!(body["expires_in"], 900);
    assert_eq!(body["interval"], 5);
    assert_eq!(user_code.len(), 9);
    assert_eq!(
        body["message"],
        format!(
            "To sign in, use a web browser to open the page {verification_uri} and enter the code {user_code} to authenticate."
        )
        .as_str()
    );
    assert!(body.get("verification_uri_complete").is_none());

    // Before the user signs in.
    let (status, body) = poll(&sim, DESKTOP, &device_code).await;
    assert_aad_error(status, &body, 400, "authorization_pending", 70016);

    // The user signs in on another device: password, MFA, consent, then the closing page.
    let browser = Browser::new(&sim);
    let page = sign_in_for_device(&sim, &browser, &user_code.to_lowercase(), MFA_USER).await;
    assert!(page.body.contains("Permissions requested"), "{}", page.body);
    let done = page.form().submit(&browser, Some("accept")).await;
    assert_eq!(done.status, 200, "{}", done.body);
    assert!(
        done.body.contains(
            "You have signed in to the Consentry Desktop Sample application on your device. You may now close this window."
        ),
        "{}",
        done.body
    );

    advance(&sim, 5);
    let (status, tokens) = poll(&sim, DESKTOP, &device_code).await;
    assert_eq!(status, 200, "{tokens}");
    assert_eq!(tokens["token_type"], "Bearer");
    let at = claims(tokens["access_token"].as_str().unwrap());
    assert_eq!(at["upn"], MFA_USER);
    assert_eq!(at["azpacr"], "0");
    assert_eq!(at["appidacr"], "0");
    assert_eq!(at["appid"], DESKTOP);
    assert_eq!(at["tid"], CONTOSO_ID);
    assert_eq!(at["scp"], "User.Read");
    assert_eq!(at["amr"], serde_json::json!(["pwd", "mfa"]));
    let id = claims(tokens["id_token"].as_str().unwrap());
    assert_eq!(id["aud"], DESKTOP);
    assert_eq!(id["preferred_username"], MFA_USER);
    let rt = tokens["refresh_token"].as_str().unwrap().to_owned();

    // The device code is single use.
    let (status, body) = poll(&sim, DESKTOP, &device_code).await;
    assert_aad_error(status, &body, 400, "expired_token", 70020);
    // Its user code no longer starts a sign-in.
    let page = enter_code(&sim, &browser, &user_code).await;
    assert!(page.body.contains("AADSTS90120"), "{}", page.body);

    // The public client refreshes without a secret, and gets a new refresh token each time.
    let (status, _, refreshed) = token(
        &sim,
        CONTOSO,
        &[
            ("grant_type", "refresh_token"),
            ("client_id", DESKTOP),
            ("refresh_token", &rt),
            ("scope", "User.Read offline_access"),
        ],
    )
    .await;
    assert_eq!(status, 200, "{refreshed}");
    assert_ne!(refreshed["refresh_token"].as_str(), Some(rt.as_str()));
    let at = claims(refreshed["access_token"].as_str().unwrap());
    assert_eq!(at["azpacr"], "0");
    assert_eq!(at["amr"], serde_json::json!(["pwd", "mfa"]));
    sim.shutdown().await;
}

#[tokio::test]
async fn polling_faster_than_the_interval_answers_slow_down() {
    let sim = start().await;
    let (device_code, _) = start_device(&sim).await;
    let (status, body) = poll(&sim, DESKTOP, &device_code).await;
    assert_aad_error(status, &body, 400, "authorization_pending", 70016);
    // Again at once: slow down, and 5 seconds more between polls from now on (RFC 8628 §3.5).
    let (status, body) = poll(&sim, DESKTOP, &device_code).await;
    assert_eq!(status, 400, "{body}");
    assert_eq!(body["error"], "slow_down");
    advance(&sim, 5);
    let (_, body) = poll(&sim, DESKTOP, &device_code).await;
    assert_eq!(body["error"], "slow_down", "10 s are needed now");
    advance(&sim, 15);
    let (status, body) = poll(&sim, DESKTOP, &device_code).await;
    assert_aad_error(status, &body, 400, "authorization_pending", 70016);
    sim.shutdown().await;
}

#[tokio::test]
async fn an_unused_device_code_expires_and_its_user_code_no_longer_works() {
    let sim = start().await;
    let (device_code, user_code) = start_device(&sim).await;
    advance(&sim, 901);
    let (status, body) = poll(&sim, DESKTOP, &device_code).await;
    assert_aad_error(status, &body, 400, "expired_token", 70020);
    assert!(
        body["error_description"]
            .as_str()
            .unwrap()
            .contains("This device code has expired."),
        "{body}"
    );
    let page = enter_code(&sim, &Browser::new(&sim), &user_code).await;
    assert_eq!(page.status, 200);
    assert!(page.body.contains("AADSTS70019"), "{}", page.body);
    assert!(page.body.contains("has expired"), "{}", page.body);
    sim.shutdown().await;
}

#[tokio::test]
async fn declining_consent_stops_the_device_with_authorization_declined() {
    let sim = start().await;
    let (device_code, user_code) = start_device(&sim).await;
    let browser = Browser::new(&sim);
    let page = sign_in_for_device(&sim, &browser, &user_code, USER).await;
    assert!(page.body.contains("Permissions requested"), "{}", page.body);
    let declined = page.form().submit(&browser, Some("cancel")).await;
    assert!(declined.location.is_none(), "no redirect: {declined:?}");
    assert!(declined.body.contains("AADSTS65004"), "{}", declined.body);
    let (status, body) = poll(&sim, DESKTOP, &device_code).await;
    assert_aad_error(status, &body, 400, "authorization_declined", 65004);
    // A declined user code does not start another sign-in.
    let page = enter_code(&sim, &browser, &user_code).await;
    assert!(page.body.contains("AADSTS90120"), "{}", page.body);
    sim.shutdown().await;
}

#[tokio::test]
async fn a_wrong_user_code_is_answered_on_the_page_and_an_unknown_device_code_at_the_token_endpoint()
 {
    let sim = start().await;
    let (device_code, user_code) = start_device(&sim).await;
    let browser = Browser::new(&sim);
    let page = enter_code(&sim, &browser, "ABCDEFGHJ").await;
    assert_eq!(page.status, 200);
    assert!(
        page.body
            .contains("AADSTS70018: That code didn&#39;t work. Check the code and try again.")
            || page
                .body
                .contains("AADSTS70018: That code didn&#x27;t work. Check the code and try again."),
        "{}",
        page.body
    );
    // The code entry page again, with what was typed.
    assert!(page.body.contains("value=\"ABCDEFGHJ\""), "{}", page.body);
    // The right code still works afterwards.
    let page = enter_code(&sim, &browser, &user_code).await;
    assert!(page.body.contains("name=\"password\""), "{}", page.body);
    let (status, body) = poll(&sim, DESKTOP, "not-a-device-code").await;
    assert_aad_error(status, &body, 400, "invalid_grant", 70000);
    let (status, body) = poll(&sim, DESKTOP, &device_code).await;
    assert_aad_error(status, &body, 400, "authorization_pending", 70016);
    // The device authorization endpoint checks the client and the scope.
    let (status, body) = devicecode(&sim, "00000000-0000-4000-8000-00000000dead", SCOPE).await;
    assert_aad_error(status, &body, 400, "unauthorized_client", 700016);
    let (status, body) = devicecode(&sim, DESKTOP, "Not.A.Scope").await;
    assert_aad_error(status, &body, 400, "invalid_scope", 70011);
    sim.shutdown().await;
}

#[tokio::test]
async fn conditional_access_is_evaluated_with_the_browsers_ip() {
    let sim = start_with(SimOptions {
        trust_forwarded_for: true,
        ..SimOptions::default()
    })
    .await;
    sim.control()
        .set_ca_policies(
            CONTOSO,
            vec![CaPolicy {
                name: "Office only".into(),
                enabled: true,
                users: vec![USER.into()],
                apps: vec![uuid(DESKTOP)],
                allowed_ranges: vec!["203.0.113.0/24".parse().unwrap()],
                action: CaAction::Block,
            }],
        )
        .unwrap();
    let (device_code, user_code) = start_device(&sim).await;
    let cafe = Browser::from_ip(&sim, "198.51.100.9");
    let blocked = sign_in_for_device(&sim, &cafe, &user_code, USER).await;
    assert!(blocked.body.contains("AADSTS53003"), "{}", blocked.body);
    let (status, body) = poll(&sim, DESKTOP, &device_code).await;
    assert_aad_error(status, &body, 400, "authorization_pending", 70016);
    // From the office the same user code signs in.
    let office = Browser::from_ip(&sim, "203.0.113.7");
    let page = sign_in_for_device(&sim, &office, &user_code, USER).await;
    let done = page.form().submit(&office, Some("accept")).await;
    assert!(done.body.contains("You may now close this window."));
    advance(&sim, 5);
    let (status, tokens) = poll(&sim, DESKTOP, &device_code).await;
    assert_eq!(status, 200, "{tokens}");
    let at = claims(tokens["access_token"].as_str().unwrap());
    assert_eq!(at["ipaddr"], "203.0.113.7");
    sim.shutdown().await;
}

#[tokio::test]
async fn a_public_client_redeems_a_code_with_pkce_and_no_secret() {
    let sim = start().await;
    let browser = Browser::new(&sim);
    let (verifier, challenge) = pkce();
    // A loopback redirect URI of the desktop platform, on any port.
    let redirect = "http://localhost:53117";
    let mut url = url::Url::parse(&format!(
        "{}/{CONTOSO}/oauth2/v2.0/authorize",
        sim.base_url()
    ))
    .unwrap();
    url.query_pairs_mut()
        .append_pair("client_id", DESKTOP)
        .append_pair("response_type", "code")
        .append_pair("redirect_uri", redirect)
        .append_pair("scope", SCOPE)
        .append_pair("state", "s-1")
        .append_pair("code_challenge", &challenge)
        .append_pair("code_challenge_method", "S256");
    let page = browser.sign_in(url.as_str(), USER, PASSWORD).await;
    let done = page.form().submit(&browser, Some("accept")).await;
    let location = done.location.clone().expect("redirect");
    assert!(
        location.starts_with("http://localhost:53117/?code="),
        "{location}"
    );
    let code = done.redirect_params()["code"].clone();
    let redeem = |verifier: String, secret: Option<&'static str>| {
        let code = code.clone();
        let sim = &sim;
        async move {
            let mut form = vec![
                ("grant_type", "authorization_code".to_owned()),
                ("client_id", DESKTOP.to_owned()),
                ("code", code),
                ("redirect_uri", redirect.to_owned()),
                ("code_verifier", verifier),
            ];
            if let Some(s) = secret {
                form.push(("client_secret", s.to_owned()));
            }
            let form: Vec<(&str, &str)> = form.iter().map(|(k, v)| (*k, v.as_str())).collect();
            let (status, _, body) = token(sim, CONTOSO, &form).await;
            (status, body)
        }
    };
    // A public client that sends a credential anyway is refused (700025).
    let (status, body) = redeem(verifier.clone(), Some("any-secret")).await;
    assert_aad_error(status, &body, 401, "invalid_client", 700025);
    // PKCE is checked.
    let (status, body) = redeem(
        "a-wrong-verifier-a-wrong-verifier-a-wrong-verifier".into(),
        None,
    )
    .await;
    assert_aad_error(status, &body, 400, "invalid_grant", 501481);
    let (status, tokens) = redeem(verifier, None).await;
    assert_eq!(status, 200, "{tokens}");
    let at = claims(tokens["access_token"].as_str().unwrap());
    assert_eq!(at["azpacr"], "0");
    assert_eq!(at["appidacr"], "0");
    assert_eq!(at["upn"], USER);
    let rt = tokens["refresh_token"].as_str().unwrap();
    // Its refresh token is refreshed without a secret; with one it is refused.
    let (status, refreshed) = refresh(&sim, DESKTOP, "any-secret", rt).await;
    assert_aad_error(status, &refreshed, 401, "invalid_client", 700025);
    let (status, _, refreshed) = token(
        &sim,
        CONTOSO,
        &[
            ("grant_type", "refresh_token"),
            ("client_id", DESKTOP),
            ("refresh_token", rt),
        ],
    )
    .await;
    assert_eq!(status, 200, "{refreshed}");
    assert_eq!(
        claims(refreshed["access_token"].as_str().unwrap())["azpacr"],
        "0"
    );
    // The native client redirect URI is accepted by /authorize as well.
    let mut native = url.clone();
    native.query_pairs_mut().clear();
    for (k, v) in url.query_pairs() {
        let v = if k == "redirect_uri" {
            "https://login.microsoftonline.com/common/oauth2/nativeclient".into()
        } else {
            v
        };
        native.query_pairs_mut().append_pair(&k, &v);
    }
    let page = browser.get(native.as_str()).await;
    assert!(page.body.contains("name=\"password\""), "{}", page.body);
    sim.shutdown().await;
}

#[tokio::test]
async fn a_web_only_app_without_a_secret_still_answers_7000218() {
    let sim = start().await;
    let browser = Browser::new(&sim);
    let (verifier, challenge) = pkce();
    let url = authorize_url(&sim, IAAS_DELEGATED, SCOPE, &challenge, &[]);
    let mut page = browser.sign_in(&url, USER, PASSWORD).await;
    if page.body.contains("Permissions requested") {
        page = page.form().submit(&browser, Some("accept")).await;
    }
    let code = page.redirect_params()["code"].clone();
    let (status, _, body) = token(
        &sim,
        CONTOSO,
        &[
            ("grant_type", "authorization_code"),
            ("client_id", IAAS_DELEGATED),
            ("code", &code),
            ("redirect_uri", REDIRECT),
            ("code_verifier", &verifier),
        ],
    )
    .await;
    assert_aad_error(status, &body, 401, "invalid_client", 7000218);
    // Its device codes need a credential too: the device authorization endpoint answers, the
    // token endpoint does not issue without a secret.
    let (status, body) = devicecode(&sim, IAAS_DELEGATED, SCOPE).await;
    assert_eq!(status, 200, "{body}");
    let device_code = body["device_code"].as_str().unwrap();
    let (status, body) = poll(&sim, IAAS_DELEGATED, device_code).await;
    assert_aad_error(status, &body, 401, "invalid_client", 7000218);
    sim.shutdown().await;
}

//! Interactive flows through the HTML pages: admin consent (v2 and legacy), authorization code +
//! PKCE, refresh with rotation, MFA, user consent and "Need admin approval".

use serde_json::json;

use crate::support::*;

fn admin_consent_url(
    sim: &entra_sim::RunningSim,
    path: &str,
    client_id: &str,
    scope: Option<&str>,
) -> String {
    let mut url = url::Url::parse(&format!("{}/{CONTOSO}/{path}", sim.base_url())).expect("url");
    url.query_pairs_mut()
        .append_pair("client_id", client_id)
        .append_pair("redirect_uri", REDIRECT)
        .append_pair("state", "xyz");
    if let Some(s) = scope {
        url.query_pairs_mut().append_pair("scope", s);
    }
    url.to_string()
}

#[tokio::test]
async fn admin_consent_v2_grants_delegated_and_application_permissions() {
    let sim = start().await;
    let browser = Browser::new(&sim);
    // Before consent the app has no service principal in contoso.
    let (status, body) = app_token(&sim, INSIGHTS, INSIGHTS_SECRET).await;
    assert_aad_error(status, &body, 401, "invalid_client", 7000229);

    let url = admin_consent_url(
        &sim,
        "v2.0/adminconsent",
        INSIGHTS,
        Some("https://graph.microsoft.com/.default"),
    );
    let page = browser.sign_in(&url, ADMIN, PASSWORD).await;
    assert_eq!(page.status, 200);
    assert!(page.body.contains("Permissions requested"), "{}", page.body);
    assert!(page.body.contains("AvePoint Insights for Microsoft365"));
    assert!(
        page.body.contains("Sites.Read.All"),
        "application permissions are listed"
    );
    let done = page.form().submit(&browser, Some("accept")).await;
    assert_eq!(done.status, 302);
    assert!(
        done.location
            .as_deref()
            .is_some_and(|l| l.starts_with(REDIRECT))
    );
    let p = done.redirect_params();
    assert_eq!(p["admin_consent"], "True");
    assert_eq!(p["tenant"], CONTOSO_ID);
    assert_eq!(p["state"], "xyz");
    assert!(p["scope"].split(' ').any(|s| s == "User.Read"), "{p:?}");

    // Application permissions now reach client_credentials tokens.
    let (status, body) = app_token(&sim, INSIGHTS, INSIGHTS_SECRET).await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["token_type"], "Bearer");
    assert!(body.get("refresh_token").is_none());
    let at = claims(body["access_token"].as_str().unwrap());
    let mut roles: Vec<String> = serde_json::from_value(at["roles"].clone()).unwrap();
    roles.sort();
    assert_eq!(
        roles,
        [
            "Directory.Read.All",
            "Group.Read.All",
            "Reports.Read.All",
            "Sites.Read.All",
            "User.Read.All"
        ]
    );
    assert_eq!(at["tid"], CONTOSO_ID);
    assert_eq!(at["appid"], INSIGHTS);
    assert_eq!(at["azpacr"], "1");
    assert!(at.get("scp").is_none());

    // Graph shows the service principal, the AllPrincipals grant and the role assignments.
    let token = body["access_token"].as_str().unwrap();
    let (status, _, sps) = graph_get(
        &sim,
        &format!("/servicePrincipals?$filter=appId eq '{INSIGHTS}'"),
        token,
    )
    .await;
    assert_eq!(status, 200, "{sps}");
    let sp = &sps["value"][0];
    assert_eq!(sp["appDisplayName"], "AvePoint Insights for Microsoft365");
    assert_eq!(
        sp["appOwnerOrganizationId"],
        "0e9d1a7c-0000-4000-8000-000000000001"
    );
    let sp_id = sp["id"].as_str().unwrap();
    let (_, _, grants) = graph_get(
        &sim,
        &format!("/oauth2PermissionGrants?$filter=clientId eq '{sp_id}'"),
        token,
    )
    .await;
    assert_eq!(grants["value"].as_array().unwrap().len(), 1, "{grants}");
    assert_eq!(grants["value"][0]["consentType"], "AllPrincipals");
    assert_eq!(grants["value"][0]["principalId"], serde_json::Value::Null);
    assert_eq!(grants["value"][0]["scope"], "User.Read offline_access");
    let (_, _, assignments) = graph_get(
        &sim,
        &format!("/servicePrincipals/{sp_id}/appRoleAssignments"),
        token,
    )
    .await;
    let list = assignments["value"].as_array().unwrap();
    assert_eq!(list.len(), 5);
    assert!(
        list.iter()
            .any(|a| a["appRoleId"] == "df021288-bdef-4463-88db-98f22de89214"),
        "User.Read.All role id"
    );
    assert!(list.iter().all(|a| a["principalType"] == "ServicePrincipal"
        && a["resourceDisplayName"] == "Microsoft Graph"));
    sim.shutdown().await;
}

#[tokio::test]
async fn admin_consent_cancel_redirects_access_denied_65004_without_tenant() {
    let sim = start().await;
    let browser = Browser::new(&sim);
    let url = admin_consent_url(
        &sim,
        "v2.0/adminconsent",
        INSIGHTS,
        Some("https://graph.microsoft.com/.default"),
    );
    let page = browser.sign_in(&url, PRA, PASSWORD).await;
    let done = page.form().submit(&browser, Some("cancel")).await;
    let p = done.redirect_params();
    assert_eq!(p["error"], "access_denied");
    assert!(
        p["error_description"].starts_with("AADSTS65004: User declined to consent"),
        "{p:?}"
    );
    assert!(p["error_description"].contains("\r\nTrace ID: "));
    assert!(p["error_uri"].ends_with("/error?code=65004"));
    assert_eq!(p["admin_consent"], "True");
    assert_eq!(p["state"], "xyz");
    assert!(!p.contains_key("tenant"));
    // Nothing was granted.
    let (status, body) = app_token(&sim, INSIGHTS, INSIGHTS_SECRET).await;
    assert_aad_error(status, &body, 401, "invalid_client", 7000229);
    sim.shutdown().await;
}

#[tokio::test]
async fn non_admin_gets_need_admin_approval_then_access_denied_90094() {
    let sim = start().await;
    let browser = Browser::new(&sim);
    let url = admin_consent_url(
        &sim,
        "v2.0/adminconsent",
        INSIGHTS,
        Some("https://graph.microsoft.com/.default"),
    );
    // An Exchange Administrator is an admin, but not one who may consent tenant-wide.
    let page = browser
        .sign_in(&url, "exchange.admin@contoso.onmicrosoft.com", PASSWORD)
        .await;
    assert!(page.body.contains("Need admin approval"), "{}", page.body);
    let done = page.form().submit(&browser, Some("back")).await;
    let p = done.redirect_params();
    assert_eq!(p["error"], "access_denied");
    assert!(p["error_description"].starts_with("AADSTS90094: "), "{p:?}");
    assert_eq!(p["state"], "xyz");
    sim.shutdown().await;
}

#[tokio::test]
async fn legacy_adminconsent_asks_for_everything_and_answers_without_scope() {
    let sim = start().await;
    let browser = Browser::new(&sim);
    let url = admin_consent_url(&sim, "adminconsent", INSIGHTS, None);
    let page = browser.sign_in(&url, ADMIN, PASSWORD).await;
    assert!(page.body.contains("Reports.Read.All"));
    let p = page
        .form()
        .submit(&browser, Some("accept"))
        .await
        .redirect_params();
    assert_eq!(p.get("admin_consent").map(String::as_str), Some("True"));
    assert_eq!(p["tenant"], CONTOSO_ID);
    assert_eq!(p["state"], "xyz");
    assert!(!p.contains_key("scope"));
    let (status, body) = app_token(&sim, INSIGHTS, INSIGHTS_SECRET).await;
    assert_eq!(status, 200, "{body}");
    // Cancel on the legacy endpoint (the error class is a setting; access_denied by default).
    let other = admin_consent_url(
        &sim,
        "adminconsent",
        "c0de0000-0000-4000-8000-000000000018",
        None,
    );
    let page = browser.sign_in(&other, ADMIN, PASSWORD).await;
    let p = page
        .form()
        .submit(&browser, Some("cancel"))
        .await
        .redirect_params();
    assert_eq!(p["error"], "access_denied");
    assert!(p["error_description"].starts_with("AADSTS65004"));
    assert!(!p.contains_key("tenant"));
    sim.shutdown().await;
}

#[tokio::test]
async fn authorization_code_with_pkce_refresh_rotation_and_single_use_codes() {
    let sim = start().await;
    let browser = Browser::new(&sim);
    let (verifier, challenge) = pkce();
    let scope = "openid profile offline_access https://graph.microsoft.com/User.Read";
    let url = authorize_url(&sim, IAAS_DELEGATED, scope, &challenge, &[]);
    let page = browser.sign_in(&url, USER, PASSWORD).await;
    // A plain user may consent to user-consentable scopes; no "on behalf of your organization".
    assert!(page.body.contains("Permissions requested"), "{}", page.body);
    assert!(!page.body.contains("on behalf of your organization"));
    let done = page.form().submit(&browser, Some("accept")).await;
    let p = done.redirect_params();
    assert_eq!(p["state"], "st-123");
    assert!(uuid::Uuid::parse_str(&p["session_state"]).is_ok());
    let code = p["code"].clone();

    let redeem = |verifier: String, code: String| {
        let sim = &sim;
        async move {
            token(
                sim,
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
            .await
        }
    };
    let (status, headers, body) = redeem(verifier.clone(), code.clone()).await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(headers["cache-control"], "no-store, no-cache");
    assert_eq!(body["expires_in"], 3599);
    assert_eq!(body["ext_expires_in"], 3599);
    let scopes: Vec<&str> = body["scope"].as_str().unwrap().split(' ').collect();
    assert!(
        scopes.contains(&"User.Read") && scopes.contains(&"openid"),
        "{scopes:?}"
    );
    let at = claims(body["access_token"].as_str().unwrap());
    assert_eq!(at["aud"], "https://graph.microsoft.com");
    assert_eq!(at["upn"], USER);
    assert_eq!(at["preferred_username"], USER);
    assert_eq!(at["oid"], "c0a70000-0000-4000-8000-000000000009");
    assert_eq!(at["scp"], "User.Read");
    assert_eq!(at["amr"], json!(["pwd"]));
    assert_eq!(at["ipaddr"], "127.0.0.1");
    assert_eq!(at["azp"], IAAS_DELEGATED);
    let id = claims(body["id_token"].as_str().unwrap());
    assert_eq!(id["nonce"], "n-456");
    assert_eq!(id["aud"], IAAS_DELEGATED);
    assert_eq!(id["ver"], "2.0");
    assert_eq!(id["iss"], format!("{}/{CONTOSO_ID}/v2.0", sim.base_url()));

    // The code is single-use.
    let (status, _, again) = redeem(verifier.clone(), code).await;
    assert_aad_error(status, &again, 400, "invalid_grant", 54005);

    // A second sign-in no longer shows consent; a wrong verifier fails with 501481.
    let (_, challenge2) = pkce();
    let url = authorize_url(&sim, IAAS_DELEGATED, scope, &challenge2, &[]);
    let page = browser.sign_in(&url, USER, PASSWORD).await;
    let code2 = page.redirect_params()["code"].clone();
    let (status, _, bad) = redeem(verifier.clone(), code2).await;
    assert_aad_error(status, &bad, 400, "invalid_grant", 501481);

    // Refresh: a new refresh token every time, the old one stays valid.
    let rt1 = body["refresh_token"].as_str().unwrap().to_owned();
    let (status, r1) = refresh(&sim, IAAS_DELEGATED, IAAS_SECRET, &rt1).await;
    assert_eq!(status, 200, "{r1}");
    let rt2 = r1["refresh_token"].as_str().unwrap().to_owned();
    assert_ne!(rt1, rt2);
    let (status, r2) = refresh(&sim, IAAS_DELEGATED, IAAS_SECRET, &rt1).await;
    assert_eq!(status, 200, "old refresh token still valid: {r2}");
    let (status, _) = refresh(&sim, IAAS_DELEGATED, IAAS_SECRET, &rt2).await;
    assert_eq!(status, 200);
    // Debug output of the running simulator never shows refresh tokens or passwords.
    let debug = format!("{sim:?}");
    assert!(
        !debug.contains(&rt1) && !debug.contains(&rt2) && !debug.contains(PASSWORD),
        "{debug}"
    );
    let dump = sim.control().state_json().to_string();
    assert!(!dump.contains(&rt1) && !dump.contains(PASSWORD));
    // The refreshed access token works on Graph.
    let (status, _, me) = graph_get(&sim, "/me", r1["access_token"].as_str().unwrap()).await;
    assert_eq!(status, 200, "{me}");
    assert_eq!(me["userPrincipalName"], USER);
    assert_eq!(
        me["@odata.context"],
        format!("{}/$metadata#users/$entity", sim.graph_base())
    );
    // Unknown codes and refresh tokens.
    let (status, _, unknown) = redeem(verifier, "1.SIM.nope".into()).await;
    assert_aad_error(status, &unknown, 400, "invalid_grant", 70000);
    let (status, unknown_rt) = refresh(&sim, IAAS_DELEGATED, IAAS_SECRET, "0.SIM.nope").await;
    assert_aad_error(status, &unknown_rt, 400, "invalid_grant", 70000);
    sim.shutdown().await;
}

#[tokio::test]
async fn user_with_mfa_enters_the_one_time_code_and_gets_mfa_in_amr() {
    let sim = start().await;
    let browser = Browser::new(&sim);
    let (_, challenge) = pkce();
    let url = authorize_url(
        &sim,
        IAAS_DELEGATED,
        "openid offline_access User.Read",
        &challenge,
        &[],
    );
    let page = browser.sign_in(&url, MFA_USER, PASSWORD).await;
    assert!(page.body.contains("Enter code"), "{}", page.body);
    let wrong = page
        .form()
        .set("otc", "000000")
        .submit(&browser, None)
        .await;
    assert!(
        wrong.body.contains("That code didn&#39;t work")
            || wrong.body.contains("That code didn't work"),
        "{}",
        wrong.body
    );
    let body = sign_in_and_redeem(
        &sim,
        &browser,
        MFA_USER,
        IAAS_DELEGATED,
        IAAS_SECRET,
        "openid offline_access User.Read",
    )
    .await;
    let at = claims(body["access_token"].as_str().unwrap());
    assert_eq!(at["amr"], json!(["pwd", "mfa"]));
    sim.shutdown().await;
}

#[tokio::test]
async fn admin_consenting_on_behalf_of_the_organization_creates_an_allprincipals_grant() {
    let sim = start().await;
    let browser = Browser::new(&sim);
    let (_, challenge) = pkce();
    let url = authorize_url(
        &sim,
        "c0de0000-0000-4000-8000-00000000000d",
        "openid offline_access https://graph.microsoft.com/.default",
        &challenge,
        &[],
    );
    let page = browser.sign_in(&url, ADMIN, PASSWORD).await;
    assert!(page.body.contains("Consent on behalf of your organization"));
    let done = page
        .form()
        .check("on_behalf")
        .submit(&browser, Some("accept"))
        .await;
    assert!(done.redirect_params().contains_key("code"));
    let state = sim.control().state_json();
    let contoso = state["tenants"]
        .as_array()
        .unwrap()
        .iter()
        .find(|t| t["id"] == CONTOSO_ID)
        .unwrap()
        .clone();
    let grants = contoso["oauth2_permission_grants"].as_array().unwrap();
    let grant = grants
        .iter()
        .find(|g| g["consent_type"] == "AllPrincipals")
        .expect("AllPrincipals grant");
    assert!(
        grant["scope"]
            .as_str()
            .unwrap()
            .contains("Group.ReadWrite.All"),
        "{grant}"
    );
    // Another user now signs in without a consent page.
    let other = Browser::new(&sim);
    let url = authorize_url(
        &sim,
        "c0de0000-0000-4000-8000-00000000000d",
        "openid offline_access https://graph.microsoft.com/.default",
        &challenge,
        &[],
    );
    let page = other.sign_in(&url, GROUP_OWNER, PASSWORD).await;
    assert!(page.redirect_params().contains_key("code"), "{}", page.body);
    sim.shutdown().await;
}

#[tokio::test]
async fn user_consent_needs_admin_approval_for_admin_scopes_or_when_the_tenant_forbids_it() {
    let sim = start().await;
    let browser = Browser::new(&sim);
    let (_, challenge) = pkce();
    // cloud-governance-delegated asks for Group.ReadWrite.All, which needs an admin.
    let url = authorize_url(
        &sim,
        "c0de0000-0000-4000-8000-00000000000d",
        "openid https://graph.microsoft.com/.default",
        &challenge,
        &[],
    );
    let page = browser.sign_in(&url, USER, PASSWORD).await;
    assert!(page.body.contains("Need admin approval"), "{}", page.body);
    let p = page
        .form()
        .submit(&browser, Some("back"))
        .await
        .redirect_params();
    assert_eq!(p["error"], "access_denied");
    assert!(p["error_description"].starts_with("AADSTS90094"));

    // With user consent turned off, even User.Read needs an admin.
    sim.control().set_users_can_consent(CONTOSO, false).unwrap();
    let url = authorize_url(&sim, IAAS_DELEGATED, "openid User.Read", &challenge, &[]);
    let page = browser.sign_in(&url, USER, PASSWORD).await;
    assert!(page.body.contains("Need admin approval"), "{}", page.body);

    // Cancel on a user consent page: access_denied with subcode cancel.
    sim.control().set_users_can_consent(CONTOSO, true).unwrap();
    let page = browser.sign_in(&url, USER, PASSWORD).await;
    let p = page
        .form()
        .submit(&browser, Some("cancel"))
        .await
        .redirect_params();
    assert_eq!(p["error"], "access_denied");
    assert_eq!(p["error_subcode"], "cancel");
    assert!(p["error_description"].starts_with("AADSTS65004"));
    sim.shutdown().await;
}

#[tokio::test]
async fn redirect_uri_mismatch_and_unknown_tenant_are_shown_not_redirected() {
    let sim = start().await;
    let browser = Browser::new(&sim);
    let url = format!(
        "{}/{CONTOSO}/oauth2/v2.0/authorize?client_id={IAAS_DELEGATED}&response_type=code&scope=openid&redirect_uri=https%3A%2F%2Fevil.example%2Fcb&state=%3Cscript%3E",
        sim.base_url()
    );
    let page = browser.get(&url).await;
    assert_eq!(page.status, 400);
    assert!(page.location.is_none());
    assert!(page.body.contains("AADSTS50011"), "{}", page.body);
    assert!(
        page.body.contains("https://evil.example/cb")
            || page.body.contains("https:&#x2f;&#x2f;evil.example")
    );
    let page = browser
        .get(&format!(
            "{}/nowhere.example/oauth2/v2.0/authorize?client_id={IAAS_DELEGATED}",
            sim.base_url()
        ))
        .await;
    assert!(page.body.contains("AADSTS90002"));
    // Echoed text is escaped.
    let hint = format!(
        "{}&login_hint=%3Cb%3Ex%3C%2Fb%3E",
        authorize_url(&sim, IAAS_DELEGATED, "openid", "c", &[])
    );
    let page = browser.get(&hint).await;
    assert!(!page.body.contains("<b>x</b>"), "{}", page.body);
    assert!(
        page.body.contains("&#60;b&#62;x&#60;/b&#62;")
            || page.body.contains("&lt;b&gt;x&lt;/b&gt;"),
        "{}",
        page.body
    );
    // Hybrid response types need the implicit grant, which no simulated app has.
    let hybrid = authorize_url(&sim, IAAS_DELEGATED, "openid", "c", &[])
        .replace("response_type=code", "response_type=code+id_token");
    let p = browser.get(&hybrid).await.redirect_params();
    assert_eq!(p["error"], "unsupported_response_type");
    assert!(p["error_description"].starts_with("AADSTS700054"));
    // An unknown scope goes back to the (trusted) redirect URI as invalid_scope.
    let page = browser
        .get(&authorize_url(
            &sim,
            IAAS_DELEGATED,
            "Not.A.Scope",
            "c",
            &[],
        ))
        .await;
    let p = page.redirect_params();
    assert_eq!(p["error"], "invalid_scope");
    assert_eq!(p["state"], "st-123");
    sim.shutdown().await;
}

#[tokio::test]
async fn prompt_none_needs_a_session_and_prompt_admin_consent_consents_for_the_tenant() {
    let sim = start().await;
    let browser = Browser::new(&sim);
    let (_, challenge) = pkce();
    let silent = browser
        .get(&authorize_url(
            &sim,
            IAAS_DELEGATED,
            "openid User.Read",
            &challenge,
            &[("prompt", "none")],
        ))
        .await;
    let p = silent.redirect_params();
    assert_eq!(p["error"], "login_required");
    assert!(p["error_description"].starts_with("AADSTS50058"));

    // prompt=admin_consent: a plain user needs admin approval...
    let url = authorize_url(
        &sim,
        INSIGHTS,
        "openid offline_access https://graph.microsoft.com/.default",
        &challenge,
        &[("prompt", "admin_consent")],
    );
    let page = browser.sign_in(&url, USER, PASSWORD).await;
    assert!(page.body.contains("Need admin approval"), "{}", page.body);
    // ...an administrator consents for the organization, application permissions included.
    let page = browser.sign_in(&url, PRA, PASSWORD).await;
    assert!(
        page.body.contains("Review for your organization"),
        "{}",
        page.body
    );
    let done = page.form().submit(&browser, Some("accept")).await;
    assert!(done.redirect_params().contains_key("code"));
    let (status, body) = app_token(&sim, INSIGHTS, INSIGHTS_SECRET).await;
    assert_eq!(status, 200, "{body}");
    assert!(
        claims(body["access_token"].as_str().unwrap())["roles"]
            .as_array()
            .is_some_and(|r| r.len() == 5)
    );
    sim.shutdown().await;
}

#[tokio::test]
async fn a_single_tenant_custom_app_is_unknown_in_other_tenants() {
    let sim = start().await;
    let browser = Browser::new(&sim);
    let url = format!(
        "{}/fabrikam.onmicrosoft.com/v2.0/adminconsent?client_id={CUSTOM_APP}&redirect_uri={}&scope=openid",
        sim.base_url(),
        url::form_urlencoded::byte_serialize(REDIRECT.as_bytes()).collect::<String>()
    );
    let page = browser.get(&url).await;
    assert!(page.body.contains("AADSTS700016"), "{}", page.body);
    // Through /organizations a fabrikam admin is sent back with 700016.
    let url = url.replace("fabrikam.onmicrosoft.com", "organizations");
    let page = browser
        .sign_in(
            &url,
            "admin@fabrikam.onmicrosoft.com",
            "Demo-Fabrikam-Passw0rd!",
        )
        .await;
    let p = page.redirect_params();
    assert_eq!(p["error"], "unauthorized_client");
    assert!(p["error_description"].starts_with("AADSTS700016"));
    assert!(
        sim.control()
            .grant_admin_consent("fabrikam.onmicrosoft.com", uuid(CUSTOM_APP))
            .is_err()
    );
    sim.shutdown().await;
}

#[tokio::test]
async fn logout_returns_to_a_registered_uri_only() {
    let sim = start().await;
    let browser = Browser::new(&sim);
    let base = format!("{}/{CONTOSO}/oauth2/v2.0/logout", sim.base_url());
    let enc = |s: &str| url::form_urlencoded::byte_serialize(s.as_bytes()).collect::<String>();
    let page = browser
        .get(&format!(
            "{base}?post_logout_redirect_uri={}&state=bye",
            enc(REDIRECT)
        ))
        .await;
    assert_eq!(page.status, 302);
    assert_eq!(page.redirect_params()["state"], "bye");
    let page = browser
        .get(&format!(
            "{base}?post_logout_redirect_uri={}",
            enc("https://evil.example/")
        ))
        .await;
    assert_eq!(page.status, 200);
    assert!(page.body.contains("You signed out"));
    sim.shutdown().await;
}

#[tokio::test]
async fn a_permission_added_to_the_app_needs_a_new_consent() {
    let sim = start().await;
    let m365_all = uuid("c0de0000-0000-4000-8000-000000000018");
    sim.control()
        .grant_admin_consent(CONTOSO, m365_all)
        .unwrap();
    let roles = |body: &serde_json::Value| -> Vec<String> {
        serde_json::from_value(claims(body["access_token"].as_str().unwrap())["roles"].clone())
            .unwrap()
    };
    let (_, before) = app_token(&sim, &m365_all.to_string(), "demo-secret-m365-all").await;
    assert!(!roles(&before).contains(&"Policy.Read.All".to_owned()));
    sim.control()
        .add_app_permission(
            m365_all,
            entra_sim::PermissionKind::Application,
            "Policy.Read.All",
        )
        .unwrap();
    let (_, still) = app_token(&sim, &m365_all.to_string(), "demo-secret-m365-all").await;
    assert!(
        !roles(&still).contains(&"Policy.Read.All".to_owned()),
        "not granted until consented again"
    );
    sim.control()
        .grant_admin_consent(CONTOSO, m365_all)
        .unwrap();
    let (_, after) = app_token(&sim, &m365_all.to_string(), "demo-secret-m365-all").await;
    assert!(roles(&after).contains(&"Policy.Read.All".to_owned()));

    // A new delegated scope: a refresh asking for it fails with 65001 until the user consents.
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
    let rt = body["refresh_token"].as_str().unwrap();
    sim.control()
        .add_app_permission(
            uuid(IAAS_DELEGATED),
            entra_sim::PermissionKind::Delegated,
            "Files.Read.All",
        )
        .unwrap();
    let (status, _, body) = token(
        &sim,
        CONTOSO,
        &[
            ("grant_type", "refresh_token"),
            ("client_id", IAAS_DELEGATED),
            ("client_secret", IAAS_SECRET),
            ("refresh_token", rt),
            ("scope", "https://graph.microsoft.com/Files.Read.All"),
        ],
    )
    .await;
    assert_aad_error(status, &body, 400, "invalid_grant", 65001);
    let (status, _) = refresh(&sim, IAAS_DELEGATED, IAAS_SECRET, rt).await;
    assert_eq!(status, 200, "the consented scopes still work");
    sim.shutdown().await;
}

#[tokio::test]
async fn organizations_authority_and_form_post_response_mode() {
    let sim = start().await;
    sim.control()
        .grant_admin_consent(CONTOSO, uuid(IAAS_DELEGATED))
        .unwrap();
    let browser = Browser::new(&sim);
    let (verifier, challenge) = pkce();
    let url = authorize_url(
        &sim,
        IAAS_DELEGATED,
        "openid offline_access User.Read",
        &challenge,
        &[("response_mode", "form_post")],
    )
    .replace(&format!("/{CONTOSO}/"), "/organizations/");
    let page = browser.sign_in(&url, ADMIN, PASSWORD).await;
    // form_post: a page whose form posts code and state to the redirect URI.
    assert_eq!(page.status, 200, "{}", page.body);
    let form = page.form();
    assert_eq!(form.action, REDIRECT);
    let field = |name: &str| {
        form.fields
            .iter()
            .find(|(n, _)| n == name)
            .map(|(_, v)| v.clone())
            .unwrap_or_default()
    };
    assert_eq!(field("state"), "st-123");
    let code = field("code");
    let (status, _, body) = token(
        &sim,
        "organizations",
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
    assert_eq!(status, 200, "{body}");
    assert_eq!(
        claims(body["access_token"].as_str().unwrap())["tid"],
        CONTOSO_ID
    );
    sim.shutdown().await;
}

#[tokio::test]
async fn loopback_redirect_uris_match_on_any_port_unless_configured_otherwise() {
    let enc = |s: &str| url::form_urlencoded::byte_serialize(s.as_bytes()).collect::<String>();
    for (any_port, expect_sign_in) in [(true, true), (false, false)] {
        let mut scenario = entra_sim::Scenario::contoso();
        scenario.settings.loopback_redirect_any_port = any_port;
        let sim = entra_sim::RunningSim::start(scenario, entra_sim::SimOptions::default())
            .await
            .unwrap();
        let url = format!(
            "{}/{CONTOSO}/oauth2/v2.0/authorize?client_id={IAAS_DELEGATED}&response_type=code&scope=openid&redirect_uri={}",
            sim.base_url(),
            enc("http://localhost:54321/oauth/callback")
        );
        let page = Browser::new(&sim).get(&url).await;
        assert_eq!(
            page.body.contains("name=\"password\""),
            expect_sign_in,
            "{}",
            page.body
        );
        assert_eq!(page.body.contains("AADSTS50011"), !expect_sign_in);
        sim.shutdown().await;
    }
}

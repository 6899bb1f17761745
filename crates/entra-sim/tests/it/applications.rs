//! App registrations written through Graph (`consentry apps register` / `rotate-credential`
//! against the simulator): the going-live scenario's empty vendor tenant, the Microsoft Graph
//! Command Line Tools client signing in by device code, `POST`/`PATCH /applications`,
//! `addPassword` / `removePassword`, `POST /servicePrincipals`, and the new registrations used for
//! real (client credentials, admin consent in a customer tenant), with Microsoft's permission checks.

use entra_sim::{RunningSim, Scenario, SimOptions};
use serde_json::{Value, json};

use crate::support::*;

const VENDOR: &str = "consentry-vendor.onmicrosoft.com";
const VENDOR_ID: &str = "0e9d1a7c-0000-4000-8000-000000000001";
const VENDOR_PASSWORD: &str = "Demo-Vendor-Passw0rd!";
const VENDOR_OWNER: &str = "owner@consentry-vendor.onmicrosoft.com";
const APP_ADMIN: &str = "appadmin@consentry-vendor.onmicrosoft.com";
const VENDOR_USER: &str = "user@consentry-vendor.onmicrosoft.com";
/// Microsoft Graph Command Line Tools (the `Connect-MgGraph` public client).
const GRAPH_CLI: &str = "14d82eec-204b-4c2f-b7e8-296a70dab67e";
const GRAPH: &str = "00000003-0000-0000-c000-000000000000";
const USER_READ: &str = "e1fe6dd8-ba31-4d61-89e7-88639da4683d";
const OFFLINE_ACCESS: &str = "7427e0e9-2fba-42fe-b0c0-848c9e6a8182";
const USER_READ_ALL_ROLE: &str = "df021288-bdef-4463-88db-98f22de89214";
const OWNED_BY_ROLE: &str = "18a4783c-866b-4cc7-a460-3d5e5662c884";
const WRITE_SCOPE: &str = "Application.ReadWrite.All offline_access";

async fn start_going_live(scenario: Scenario) -> RunningSim {
    RunningSim::start(scenario, SimOptions::default())
        .await
        .expect("simulator starts")
}

/// How a device code sign-in of the Graph CLI ended.
enum Signed {
    Token(Value),
    /// The page the user was left on (e.g. "Need admin approval").
    Stopped(Page),
}

/// Signs `user` in to the vendor tenant with the Graph CLI by device code for `scope`; on the
/// consent page an administrator consents for the organization when `for_org`.
async fn graph_cli(sim: &RunningSim, user: &str, scope: &str, for_org: bool) -> Signed {
    let resp = client(sim)
        .post(format!(
            "{}/{VENDOR}/oauth2/v2.0/devicecode",
            sim.base_url()
        ))
        .form(&[("client_id", GRAPH_CLI), ("scope", scope)])
        .send()
        .await
        .expect("devicecode");
    assert_eq!(resp.status().as_u16(), 200);
    let dc: Value = resp.json().await.expect("JSON");
    let browser = Browser::new(sim);
    let page = browser
        .get(&format!("{}/devicelogin", sim.base_url()))
        .await
        .form()
        .set("user_code", dc["user_code"].as_str().unwrap())
        .submit(&browser, None)
        .await;
    assert!(
        page.body.contains("Microsoft Graph Command Line Tools"),
        "{}",
        page.body
    );
    let mut page = page
        .form()
        .set("username", user)
        .set("password", VENDOR_PASSWORD)
        .submit(&browser, None)
        .await;
    if page.body.contains("Permissions requested") {
        let mut form = page.form();
        if for_org {
            form = form.check("on_behalf");
        }
        page = form.submit(&browser, Some("accept")).await;
    }
    if !page.body.contains("You have signed in") {
        return Signed::Stopped(page);
    }
    let (status, _, body) = token(
        sim,
        VENDOR,
        &[
            ("grant_type", "urn:ietf:params:oauth:grant-type:device_code"),
            ("client_id", GRAPH_CLI),
            ("device_code", dc["device_code"].as_str().unwrap()),
        ],
    )
    .await;
    assert_eq!(status, 200, "{body}");
    Signed::Token(body)
}

async fn graph_cli_token(sim: &RunningSim, user: &str) -> String {
    match graph_cli(sim, user, WRITE_SCOPE, false).await {
        Signed::Token(t) => t["access_token"].as_str().unwrap().to_owned(),
        Signed::Stopped(p) => panic!("{user} got no token: {}", p.body),
    }
}

/// The vendor's Global Administrator consents to the Graph CLI for the organization.
async fn consent_graph_cli_for_org(sim: &RunningSim) {
    match graph_cli(sim, VENDOR_OWNER, WRITE_SCOPE, true).await {
        Signed::Token(t) => {
            let scp = claims(t["access_token"].as_str().unwrap())["scp"].clone();
            assert!(
                scp.as_str().unwrap().contains("Application.ReadWrite.All"),
                "{scp}"
            );
        }
        Signed::Stopped(p) => panic!("the owner could not consent: {}", p.body),
    }
}

/// A Graph request with a JSON body; (status, body or Null when empty).
async fn graph_send(
    sim: &RunningSim,
    method: reqwest::Method,
    path: &str,
    token: &str,
    body: Option<Value>,
) -> (u16, Value) {
    let mut req = client(sim)
        .request(method, format!("{}{path}", sim.graph_base()))
        .bearer_auth(token);
    if let Some(b) = body {
        req = req.json(&b);
    }
    let resp = req.send().await.expect("graph request");
    let status = resp.status().as_u16();
    let text = resp.text().await.expect("body");
    let body = if text.is_empty() {
        Value::Null
    } else {
        serde_json::from_str(&text).expect("JSON")
    };
    (status, body)
}

async fn post(sim: &RunningSim, path: &str, token: &str, body: Value) -> (u16, Value) {
    graph_send(sim, reqwest::Method::POST, path, token, Some(body)).await
}

async fn patch(sim: &RunningSim, path: &str, token: &str, body: Value) -> (u16, Value) {
    graph_send(sim, reqwest::Method::PATCH, path, token, Some(body)).await
}

fn assert_denied(status: u16, body: &Value) {
    assert_eq!(status, 403, "{body}");
    assert_eq!(
        body["error"]["code"], "Authorization_RequestDenied",
        "{body}"
    );
    assert_eq!(
        body["error"]["message"],
        "Insufficient privileges to complete the operation."
    );
}

/// Client credentials for Graph in `tenant`.
async fn client_credentials(
    sim: &RunningSim,
    tenant: &str,
    client_id: &str,
    secret: &str,
) -> (u16, Value) {
    app_token_in(sim, tenant, client_id, secret).await
}

fn registration(name: &str) -> Value {
    json!({
        "displayName": name,
        "signInAudience": "AzureADMultipleOrgs",
        "web": {"redirectUris": [REDIRECT]},
        "requiredResourceAccess": [{
            "resourceAppId": GRAPH,
            "resourceAccess": [
                {"id": USER_READ, "type": "Scope"},
                {"id": OFFLINE_ACCESS, "type": "Scope"},
                {"id": USER_READ_ALL_ROLE, "type": "Role"},
            ],
        }],
    })
}

#[tokio::test]
async fn the_going_live_scenario_has_an_empty_vendor_tenant() {
    let s = Scenario::going_live();
    let contoso = Scenario::contoso();
    assert_eq!(
        s.tenants[0].id, contoso.tenants[0].id,
        "the vendor tenant is first"
    );
    assert_eq!(s.tenants.len(), contoso.tenants.len());
    assert!(s.vendor_apps().is_empty(), "no catalog registration");
    assert!(s.consentry_app().is_none(), "no Consentry registration");
    assert!(
        s.apps
            .iter()
            .all(|a| !a.home_tenant.eq_ignore_ascii_case(VENDOR_ID) && a.home_tenant != VENDOR),
        "nothing is homed in the vendor tenant"
    );
    let users: Vec<&str> = s.tenants[0].users.iter().map(|u| u.upn.as_str()).collect();
    assert!(
        users.contains(&APP_ADMIN) && users.contains(&VENDOR_USER),
        "{users:?}"
    );
    assert!(!s.settings.users_can_register_apps);

    let sim = start_going_live(s).await;
    // No customer tenant knows a vendor registration: no service principal, no consent.
    let insights = uuid(INSIGHTS);
    let state = sim.control().state_json();
    for t in state["tenants"].as_array().unwrap() {
        for sp in t["service_principals"].as_array().unwrap() {
            assert_ne!(sp["app_id"], json!(insights), "{sp}");
        }
    }
    let (status, body) = client_credentials(&sim, CONTOSO, INSIGHTS, INSIGHTS_SECRET).await;
    assert_aad_error(status, &body, 400, "unauthorized_client", 700016);
    // The vendor's Global Administrator consents to the Graph CLI, the application administrator
    // then lists the (empty) registrations.
    consent_graph_cli_for_org(&sim).await;
    let admin = graph_cli_token(&sim, APP_ADMIN).await;
    let (status, _, body) = graph_get(&sim, "/applications", &admin).await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["value"], json!([]), "{body}");
    sim.shutdown().await;
}

#[tokio::test]
async fn a_registration_created_through_graph_signs_in_and_is_consented_like_any_other() {
    let sim = start_going_live(Scenario::going_live()).await;
    // Before any consent, the application administrator needs an administrator's approval for
    // Application.ReadWrite.All (an admin-only scope).
    match graph_cli(&sim, APP_ADMIN, WRITE_SCOPE, false).await {
        Signed::Stopped(p) => assert!(p.body.contains("Need admin approval"), "{}", p.body),
        Signed::Token(t) => panic!("no approval needed? {t}"),
    }
    consent_graph_cli_for_org(&sim).await;
    let admin = graph_cli_token(&sim, APP_ADMIN).await;

    // Create: 201 with new IDs, homed in the caller's tenant.
    let (status, created) = post(&sim, "/applications", &admin, registration("Insights")).await;
    assert_eq!(status, 201, "{created}");
    assert!(
        created["@odata.context"]
            .as_str()
            .unwrap()
            .ends_with("$metadata#applications/$entity")
    );
    let app_id = created["appId"].as_str().unwrap().to_owned();
    let object_id = created["id"].as_str().unwrap().to_owned();
    assert_ne!(app_id, object_id);
    assert_eq!(created["displayName"], "Insights");
    assert_eq!(created["signInAudience"], "AzureADMultipleOrgs");
    assert_eq!(created["web"]["redirectUris"], json!([REDIRECT]));
    assert_eq!(created["passwordCredentials"], json!([]));
    let access = &created["requiredResourceAccess"][0];
    assert_eq!(access["resourceAppId"], GRAPH);
    let mut ids: Vec<String> = access["resourceAccess"]
        .as_array()
        .unwrap()
        .iter()
        .map(|a| {
            format!(
                "{}={}",
                a["id"].as_str().unwrap(),
                a["type"].as_str().unwrap()
            )
        })
        .collect();
    ids.sort();
    let mut want = vec![
        format!("{USER_READ}=Scope"),
        format!("{OFFLINE_ACCESS}=Scope"),
        format!("{USER_READ_ALL_ROLE}=Role"),
    ];
    want.sort();
    assert_eq!(ids, want);

    // Find it by appId and by display name, with $select.
    let filter = format!("/applications?$filter=appId eq '{app_id}'&$select=id,displayName");
    let (status, _, list) = graph_get(&sim, &filter, &admin).await;
    assert_eq!(status, 200, "{list}");
    assert_eq!(
        list["value"],
        json!([{"id": object_id, "displayName": "Insights"}])
    );
    let (_, _, by_name) = graph_get(
        &sim,
        "/applications?$filter=displayName eq 'Insights'",
        &admin,
    )
    .await;
    assert_eq!(by_name["value"][0]["appId"], json!(app_id));

    // Update by appId: 204 and no body.
    let second = "https://consentry.example/oauth/callback";
    let (status, body) = patch(
        &sim,
        &format!("/applications(appId='{app_id}')"),
        &admin,
        json!({"displayName": "Insights for Microsoft 365", "web": {"redirectUris": [REDIRECT, second]}}),
    )
    .await;
    assert_eq!((status, &body), (204, &Value::Null));
    let (_, _, read) = graph_get(&sim, &format!("/applications/{object_id}"), &admin).await;
    assert_eq!(read["displayName"], "Insights for Microsoft 365");
    assert_eq!(read["web"]["redirectUris"], json!([REDIRECT, second]));
    // A web redirect URI over plain http (not loopback) is refused; an unknown permission too.
    let (status, body) = patch(
        &sim,
        &format!("/applications/{object_id}"),
        &admin,
        json!({"web": {"redirectUris": ["http://consentry.example/cb"]}}),
    )
    .await;
    assert_eq!(status, 400, "{body}");
    assert_eq!(body["error"]["code"], "Request_BadRequest");
    let mut unknown = registration("x");
    unknown["requiredResourceAccess"][0]["resourceAccess"][0]["id"] =
        json!("00000000-1111-2222-3333-444444444444");
    let (status, body) = patch(&sim, &format!("/applications/{object_id}"), &admin, unknown).await;
    assert_eq!(status, 400, "{body}");
    let (status, body) = post(
        &sim,
        "/applications",
        &admin,
        json!({"signInAudience": "AzureADMyOrg"}),
    )
    .await;
    assert_eq!(status, 400, "displayName is required: {body}");

    // A secret expiring in 10 days: shown once, with its hint.
    let end = (time::OffsetDateTime::now_utc() + time::Duration::days(10))
        .format(&time::format_description::well_known::Rfc3339)
        .unwrap();
    let (status, pc) = post(
        &sim,
        &format!("/applications/{object_id}/addPassword"),
        &admin,
        json!({"passwordCredential": {"displayName": "consentry", "endDateTime": end}}),
    )
    .await;
    assert_eq!(status, 200, "{pc}");
    let secret = pc["secretText"].as_str().unwrap().to_owned();
    assert!(secret.len() >= 16, "{secret}");
    assert_eq!(pc["hint"], json!(&secret[..3]));
    assert_eq!(pc["displayName"], "consentry");
    assert!(
        pc["endDateTime"].as_str().unwrap().starts_with(&end[..10]),
        "{pc}"
    );
    let key_id = pc["keyId"].as_str().unwrap().to_owned();
    // Reads show the hint, never the secret.
    let (_, _, read) = graph_get(&sim, &format!("/applications/{object_id}"), &admin).await;
    let listed = &read["passwordCredentials"][0];
    assert_eq!(listed["keyId"], json!(key_id));
    assert_eq!(listed["hint"], json!(&secret[..3]));
    assert_eq!(listed["secretText"], Value::Null);
    assert!(!read.to_string().contains(&secret));

    // Client credentials in the home tenant need the service principal there.
    let (status, body) = client_credentials(&sim, VENDOR, &app_id, &secret).await;
    assert_aad_error(status, &body, 401, "invalid_client", 7000229);
    let (status, sp) = post(&sim, "/servicePrincipals", &admin, json!({"appId": app_id})).await;
    assert_eq!(status, 201, "{sp}");
    assert_eq!(sp["appId"], json!(app_id));
    assert_eq!(sp["appOwnerOrganizationId"], VENDOR_ID);
    let (status, body) = post(&sim, "/servicePrincipals", &admin, json!({"appId": app_id})).await;
    assert_eq!(status, 409, "{body}");
    assert_eq!(
        body["error"]["code"],
        "Request_MultipleObjectsWithSameKeyValue"
    );
    let (status, body) = client_credentials(&sim, VENDOR, &app_id, &secret).await;
    assert_eq!(status, 200, "{body}");

    // A customer's admin consents to the new registration with its requested permissions.
    let browser = Browser::new(&sim);
    let url = format!(
        "{}/{CONTOSO}/v2.0/adminconsent?client_id={app_id}&redirect_uri={}&scope={}&state=s",
        sim.base_url(),
        url::form_urlencoded::byte_serialize(REDIRECT.as_bytes()).collect::<String>(),
        url::form_urlencoded::byte_serialize(b"https://graph.microsoft.com/.default")
            .collect::<String>(),
    );
    let page = browser.sign_in(&url, ADMIN, PASSWORD).await;
    assert!(
        page.body.contains("Insights for Microsoft 365"),
        "{}",
        page.body
    );
    assert!(page.body.contains("User.Read.All"), "{}", page.body);
    let p = page
        .form()
        .submit(&browser, Some("accept"))
        .await
        .redirect_params();
    assert_eq!(p["admin_consent"], "True");
    let (status, body) = client_credentials(&sim, CONTOSO, &app_id, &secret).await;
    assert_eq!(status, 200, "{body}");
    let roles = claims(body["access_token"].as_str().unwrap())["roles"].clone();
    assert_eq!(roles, json!(["User.Read.All"]));

    // The secret expires (10 days): AADSTS7000222; a new one works; the removed one is wrong.
    sim.control()
        .advance_clock(std::time::Duration::from_secs(11 * 86_400))
        .unwrap();
    let (status, body) = client_credentials(&sim, CONTOSO, &app_id, &secret).await;
    assert_aad_error(status, &body, 401, "invalid_client", 7000222);
    // (The Graph CLI token expired with the clock: sign in again.)
    let admin = graph_cli_token(&sim, APP_ADMIN).await;
    let (status, fresh) = post(
        &sim,
        &format!("/applications(appId='{app_id}')/addPassword"),
        &admin,
        json!({}),
    )
    .await;
    assert_eq!(status, 200, "{fresh}");
    let fresh_secret = fresh["secretText"].as_str().unwrap();
    // Graph's default lifetime: two years.
    let start = time::OffsetDateTime::parse(
        fresh["startDateTime"].as_str().unwrap(),
        &time::format_description::well_known::Rfc3339,
    )
    .unwrap();
    let end = time::OffsetDateTime::parse(
        fresh["endDateTime"].as_str().unwrap(),
        &time::format_description::well_known::Rfc3339,
    )
    .unwrap();
    assert!((end - start).whole_days() >= 730 && (end - start).whole_days() <= 731);
    let (status, body) = client_credentials(&sim, CONTOSO, &app_id, fresh_secret).await;
    assert_eq!(status, 200, "{body}");
    let (status, body) = post(
        &sim,
        &format!("/applications/{object_id}/removePassword"),
        &admin,
        json!({"keyId": fresh["keyId"]}),
    )
    .await;
    assert_eq!((status, &body), (204, &Value::Null));
    let (status, body) = client_credentials(&sim, CONTOSO, &app_id, fresh_secret).await;
    assert_aad_error(status, &body, 401, "invalid_client", 7000215);
    let (status, body) = post(
        &sim,
        &format!("/applications/{object_id}/removePassword"),
        &admin,
        json!({"keyId": fresh["keyId"]}),
    )
    .await;
    assert_eq!(status, 400, "removing it twice: {body}");
    sim.shutdown().await;
}

#[tokio::test]
async fn who_may_write_registrations() {
    let mut scenario = Scenario::going_live();
    // Members may register applications here (Microsoft's default), so a plain user can own one.
    scenario.settings.users_can_register_apps = true;
    let sim = start_going_live(scenario).await;
    consent_graph_cli_for_org(&sim).await;
    let admin = graph_cli_token(&sim, APP_ADMIN).await;
    let user = graph_cli_token(&sim, VENDOR_USER).await;

    // The application administrator's registration.
    let (status, a) = post(&sim, "/applications", &admin, registration("Admin's")).await;
    assert_eq!(status, 201, "{a}");
    let a_path = format!("/applications/{}", a["id"].as_str().unwrap());
    // The member's own registration: the member is its owner and may update it, not another.
    let (status, mine) = post(&sim, "/applications", &user, registration("Member's")).await;
    assert_eq!(status, 201, "{mine}");
    let mine_path = format!("/applications/{}", mine["id"].as_str().unwrap());
    let (status, body) = patch(&sim, &mine_path, &user, json!({"displayName": "Mine"})).await;
    assert_eq!(status, 204, "{body}");
    let (status, body) = post(&sim, &format!("{mine_path}/addPassword"), &user, json!({})).await;
    assert_eq!(status, 200, "{body}");
    let (status, body) = patch(&sim, &a_path, &user, json!({"displayName": "Taken"})).await;
    assert_denied(status, &body);
    let (status, body) = post(&sim, &format!("{a_path}/addPassword"), &user, json!({})).await;
    assert_denied(status, &body);

    // Without Application.ReadWrite.All even an administrator is refused.
    let read_only = match graph_cli(&sim, APP_ADMIN, "User.Read", false).await {
        Signed::Token(t) => t["access_token"].as_str().unwrap().to_owned(),
        Signed::Stopped(p) => panic!("{}", p.body),
    };
    let (status, body) = post(&sim, "/applications", &read_only, registration("x")).await;
    assert_denied(status, &body);

    // An automation app with Application.ReadWrite.OwnedBy creates and manages its own apps only.
    let mut automation = registration("Automation");
    automation["requiredResourceAccess"][0]["resourceAccess"] =
        json!([{"id": OWNED_BY_ROLE, "type": "Role"}]);
    let (status, auto) = post(&sim, "/applications", &admin, automation).await;
    assert_eq!(status, 201, "{auto}");
    let auto_id = auto["appId"].as_str().unwrap().to_owned();
    let (_, pc) = post(
        &sim,
        &format!("/applications(appId='{auto_id}')/addPassword"),
        &admin,
        json!({}),
    )
    .await;
    let (status, body) = post(
        &sim,
        "/servicePrincipals",
        &admin,
        json!({"appId": auto_id}),
    )
    .await;
    assert_eq!(status, 201, "{body}");
    sim.control()
        .grant_admin_consent(VENDOR, uuid(&auto_id))
        .unwrap();
    let (status, body) =
        client_credentials(&sim, VENDOR, &auto_id, pc["secretText"].as_str().unwrap()).await;
    assert_eq!(status, 200, "{body}");
    let app_only = body["access_token"].as_str().unwrap().to_owned();
    assert_eq!(
        claims(&app_only)["roles"],
        json!(["Application.ReadWrite.OwnedBy"])
    );
    let (status, owned) = post(&sim, "/applications", &app_only, registration("Owned")).await;
    assert_eq!(status, 201, "{owned}");
    let owned_path = format!("/applications/{}", owned["id"].as_str().unwrap());
    let (status, body) = patch(
        &sim,
        &owned_path,
        &app_only,
        json!({"displayName": "Owned 2"}),
    )
    .await;
    assert_eq!(status, 204, "{body}");
    let (status, body) = post(
        &sim,
        &format!("{owned_path}/addPassword"),
        &app_only,
        json!({}),
    )
    .await;
    assert_eq!(status, 200, "{body}");
    let (status, body) = patch(&sim, &a_path, &app_only, json!({"displayName": "Taken"})).await;
    assert_denied(status, &body);
    // An app-only token without any application permission is refused.
    let (status, plain) = post(&sim, &format!("{mine_path}/addPassword"), &user, json!({})).await;
    assert_eq!(status, 200);
    let mine_app = mine["appId"].as_str().unwrap();
    post(
        &sim,
        "/servicePrincipals",
        &user,
        json!({"appId": mine_app}),
    )
    .await;
    let (status, body) = client_credentials(
        &sim,
        VENDOR,
        mine_app,
        plain["secretText"].as_str().unwrap(),
    )
    .await;
    assert_eq!(status, 200, "{body}");
    let no_roles = body["access_token"].as_str().unwrap();
    let (status, body) = post(&sim, "/applications", no_roles, registration("x")).await;
    assert_denied(status, &body);
    // ...but it may read its own registration.
    let (status, _, body) = graph_get(
        &sim,
        &format!("/applications(appId='{mine_app}')"),
        no_roles,
    )
    .await;
    assert_eq!(status, 200, "{body}");
    sim.shutdown().await;
}

#[tokio::test]
async fn a_plain_member_may_not_register_when_the_tenant_forbids_it() {
    let sim = start_going_live(Scenario::going_live()).await;
    consent_graph_cli_for_org(&sim).await;
    let user = graph_cli_token(&sim, VENDOR_USER).await;
    let (status, body) = post(&sim, "/applications", &user, registration("x")).await;
    assert_denied(status, &body);
    sim.shutdown().await;
}

/// A self-signed certificate for an app: (base64 DER for Graph's `key`, private key PEM, DER).
fn app_certificate(cn: &str) -> (String, String, Vec<u8>) {
    use base64::Engine;
    let (_, key_pem, der) = make_cert(cn, 90);
    (
        base64::engine::general_purpose::STANDARD.encode(&der),
        key_pem,
        der,
    )
}

/// A JWT signed with `key_pem` (RS256, `x5t#S256` of `der`) carrying `claims`.
fn signed(claims: &Value, key_pem: &str, der: &[u8]) -> String {
    use base64::Engine;
    use sha2::Digest;
    let mut header = jsonwebtoken::Header::new(jsonwebtoken::Algorithm::RS256);
    header.x5t_s256 =
        Some(base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(sha2::Sha256::digest(der)));
    jsonwebtoken::encode(
        &header,
        claims,
        &jsonwebtoken::EncodingKey::from_rsa_pem(key_pem.as_bytes()).unwrap(),
    )
    .unwrap()
}

fn unix_now() -> i64 {
    time::OffsetDateTime::now_utc().unix_timestamp()
}

/// Client credentials in the vendor tenant with a certificate assertion.
async fn with_certificate(
    sim: &RunningSim,
    app_id: &str,
    key_pem: &str,
    der: &[u8],
) -> (u16, Value) {
    let assertion = signed(
        &json!({"aud": sim.token_endpoint(VENDOR), "iss": app_id, "sub": app_id,
                "jti": uuid::Uuid::new_v4().to_string(), "nbf": unix_now(), "exp": unix_now() + 600}),
        key_pem,
        der,
    );
    let (status, _, body) = token(
        sim,
        VENDOR,
        &[
            ("grant_type", "client_credentials"),
            ("client_id", app_id),
            ("scope", "https://graph.microsoft.com/.default"),
            (
                "client_assertion_type",
                "urn:ietf:params:oauth:client-assertion-type:jwt-bearer",
            ),
            ("client_assertion", &assertion),
        ],
    )
    .await;
    (status, body)
}

/// The proof of possession `addKey` / `removeKey` want, for the application object `object_id`.
fn proof(object_id: &str, key_pem: &str, der: &[u8]) -> String {
    signed(
        &json!({"aud": "00000002-0000-0000-c000-000000000000", "iss": object_id,
                "nbf": unix_now(), "exp": unix_now() + 600}),
        key_pem,
        der,
    )
}

#[tokio::test]
async fn a_certificate_app_registers_its_key_and_rolls_it_with_a_proof_of_possession() {
    let sim = start_going_live(Scenario::going_live()).await;
    consent_graph_cli_for_org(&sim).await;
    let admin = graph_cli_token(&sim, APP_ADMIN).await;
    let (first_key, first_pem, first_der) = app_certificate("CN=first");
    let mut body = registration("Certificate app");
    body["keyCredentials"] = json!([{"type": "AsymmetricX509Cert", "usage": "Verify", "key": first_key, "displayName": "CN=first"}]);
    let (status, app) = post(&sim, "/applications", &admin, body).await;
    assert_eq!(status, 201, "{app}");
    let app_id = app["appId"].as_str().unwrap().to_owned();
    let object_id = app["id"].as_str().unwrap().to_owned();
    let first_key_id = app["keyCredentials"][0]["keyId"]
        .as_str()
        .unwrap()
        .to_owned();
    assert_eq!(app["keyCredentials"][0]["type"], "AsymmetricX509Cert");
    post(&sim, "/servicePrincipals", &admin, json!({"appId": app_id})).await;
    let (status, body) = with_certificate(&sim, &app_id, &first_pem, &first_der).await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(
        claims(body["access_token"].as_str().unwrap())["azpacr"],
        "2"
    );

    // The app rolls its own key: no permission, a proof signed by its current certificate.
    let (status, own) = client_credentials_cert_token(&sim, &app_id, &first_pem, &first_der).await;
    assert_eq!(status, 200);
    let (second_key, second_pem, second_der) = app_certificate("CN=second");
    let (_, stranger_pem, stranger_der) = app_certificate("CN=stranger");
    let add = |proof: String| {
        json!({"keyCredential": {"type": "AsymmetricX509Cert", "usage": "Verify", "key": second_key},
               "passwordCredential": null, "proof": proof})
    };
    let path = format!("/applications/{object_id}/addKey");
    let (status, body) = post(
        &sim,
        &path,
        &own,
        add(proof(&object_id, &stranger_pem, &stranger_der)),
    )
    .await;
    assert_eq!(status, 400, "a proof signed by an unregistered key: {body}");
    let (status, body) = post(
        &sim,
        &path,
        &own,
        add(proof(&app_id, &first_pem, &first_der)),
    )
    .await;
    assert_eq!(
        status, 400,
        "iss must be the object id, not the appId: {body}"
    );
    let (status, added) = post(
        &sim,
        &path,
        &own,
        add(proof(&object_id, &first_pem, &first_der)),
    )
    .await;
    assert_eq!(status, 200, "{added}");
    assert!(
        added["@odata.context"]
            .as_str()
            .unwrap()
            .ends_with("$metadata#microsoft.graph.keyCredential")
    );
    let (status, body) = with_certificate(&sim, &app_id, &second_pem, &second_der).await;
    assert_eq!(status, 200, "the new certificate signs in: {body}");
    // Then removes the old one, proving possession with the new one.
    let (status, body) = post(
        &sim,
        &format!("/applications/{object_id}/removeKey"),
        &own,
        json!({"keyId": first_key_id, "proof": proof(&object_id, &second_pem, &second_der)}),
    )
    .await;
    assert_eq!((status, &body), (204, &Value::Null));
    let (status, body) = with_certificate(&sim, &app_id, &first_pem, &first_der).await;
    assert_aad_error(status, &body, 401, "invalid_client", 700027);

    // PATCH keyCredentials replaces the collection: keep the current one by its keyId, add another.
    let second_id = added["keyId"].as_str().unwrap();
    let (status, body) = patch(
        &sim,
        &format!("/applications/{object_id}"),
        &admin,
        json!({"keyCredentials": [{"keyId": second_id}, {"type": "AsymmetricX509Cert", "usage": "Verify", "key": first_key}]}),
    )
    .await;
    assert_eq!(status, 204, "{body}");
    let (_, _, read) = graph_get(
        &sim,
        &format!("/applications/{object_id}?$select=keyCredentials"),
        &admin,
    )
    .await;
    let keys = read["keyCredentials"].as_array().unwrap();
    assert_eq!(keys.len(), 2, "{read}");
    assert!(
        keys.iter().all(|k| k["key"].is_string()),
        "$select returns the key: {read}"
    );
    let (status, body) = with_certificate(&sim, &app_id, &first_pem, &first_der).await;
    assert_eq!(status, 200, "{body}");

    // A certificate close to expiry (control API): Graph shows the end date, then it is refused.
    let soon = time::OffsetDateTime::now_utc() + time::Duration::days(10);
    sim.control()
        .set_certificate_end_date(uuid(&app_id), uuid(second_id), soon)
        .unwrap();
    let (_, _, read) = graph_get(&sim, &format!("/applications/{object_id}"), &admin).await;
    let second = read["keyCredentials"]
        .as_array()
        .unwrap()
        .iter()
        .find(|k| k["keyId"] == json!(second_id))
        .cloned()
        .unwrap();
    assert!(
        second["endDateTime"]
            .as_str()
            .unwrap()
            .starts_with(&soon.date().to_string()),
        "{second}"
    );
    sim.control()
        .advance_clock(std::time::Duration::from_secs(11 * 86_400))
        .unwrap();
    let (status, body) = with_certificate(&sim, &app_id, &second_pem, &second_der).await;
    assert_aad_error(status, &body, 401, "invalid_client", 700027);
    let (status, body) = with_certificate(&sim, &app_id, &first_pem, &first_der).await;
    assert_eq!(status, 200, "the other certificate still works: {body}");
    sim.shutdown().await;
}

/// An app-only token of a certificate app (its own token, for rolling its own key).
async fn client_credentials_cert_token(
    sim: &RunningSim,
    app_id: &str,
    key_pem: &str,
    der: &[u8],
) -> (u16, String) {
    let (status, body) = with_certificate(sim, app_id, key_pem, der).await;
    (
        status,
        body["access_token"].as_str().unwrap_or_default().to_owned(),
    )
}

#[tokio::test]
async fn registrations_made_through_graph_and_batch_survive_a_restart() {
    let dir = tempfile::tempdir().unwrap();
    let opts = || SimOptions {
        state_dir: Some(dir.path().to_path_buf()),
        persist: true,
        ..Default::default()
    };
    let sim = RunningSim::start(Scenario::going_live(), opts())
        .await
        .unwrap();
    consent_graph_cli_for_org(&sim).await;
    let admin = graph_cli_token(&sim, APP_ADMIN).await;
    // Writes are reachable through $batch too.
    let resp = client(&sim)
        .post(format!("{}/$batch", sim.graph_base()))
        .bearer_auth(&admin)
        .json(&json!({"requests": [
            {"id": "1", "method": "POST", "url": "/applications",
             "headers": {"Content-Type": "application/json"}, "body": registration("Batched")},
            {"id": "2", "method": "GET", "url": "/applications?$filter=displayName eq 'Batched'&$select=appId",
             "dependsOn": ["1"]},
        ]}))
        .send()
        .await
        .unwrap();
    let batch: Value = resp.json().await.unwrap();
    let responses = batch["responses"].as_array().unwrap();
    assert_eq!(responses[0]["status"], 201, "{batch}");
    let app_id = responses[0]["body"]["appId"].as_str().unwrap().to_owned();
    assert_eq!(
        responses[1]["body"]["value"],
        json!([{"appId": app_id}]),
        "{batch}"
    );
    let (_, pc) = post(
        &sim,
        &format!("/applications(appId='{app_id}')/addPassword"),
        &admin,
        json!({}),
    )
    .await;
    let secret = pc["secretText"].as_str().unwrap().to_owned();
    post(&sim, "/servicePrincipals", &admin, json!({"appId": app_id})).await;
    // A credential close to expiry, set through the control API.
    let soon = time::OffsetDateTime::now_utc() + time::Duration::days(3);
    sim.control()
        .set_secret_end_date(uuid(&app_id), uuid(pc["keyId"].as_str().unwrap()), soon)
        .unwrap();
    // Wait for the periodic save, then restart.
    let saved = dir.path().join("state.json");
    for _ in 0..100 {
        if std::fs::read_to_string(&saved).is_ok_and(|t| t.contains(&app_id)) {
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    }
    sim.shutdown().await;
    let sim = RunningSim::start(Scenario::going_live(), opts())
        .await
        .unwrap();
    let (status, body) = client_credentials(&sim, VENDOR, &app_id, &secret).await;
    assert_eq!(
        status, 200,
        "the registration, its secret and its service principal survive: {body}"
    );
    let admin = graph_cli_token(&sim, APP_ADMIN).await;
    let (_, _, read) = graph_get(&sim, &format!("/applications(appId='{app_id}')"), &admin).await;
    let end = read["passwordCredentials"][0]["endDateTime"]
        .as_str()
        .unwrap();
    assert!(end.starts_with(&soon.date().to_string()), "{end}");
    sim.shutdown().await;
}

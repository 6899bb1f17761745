//! "Connect a Microsoft tenant" over real HTTP: a console account's browser starts it, signs in at
//! entra-sim as a tenant's administrator, consents to Consentry's app, and comes back to a verified
//! tenant read from Graph, with the offer of app profiles. Refusals (not an administrator, declined,
//! a forged admin-consent redirect, a replayed state, another organization's verified claim) connect
//! nothing and name no organization; another organization's typed claim is superseded; a typed
//! connection by an organization's admin is refused; a re-authorization verifies a typed tenant.

use consentry_domain::{AccountScope, AuditAction, Role};
use consentry_testkit::{PASSWORD, TestEnv};
use entra_sim::browser::{Browser, Decision, Page};
use reqwest::{Method, StatusCode};
use secrecy::SecretString;
use serde_json::{Value, json};

const FABRIKAM: &str = "8a7b6c5d-4e3f-4a2b-9c1d-0e1f2a3b4c5d";
const FABRIKAM_DOMAIN: &str = "fabrikam.onmicrosoft.com";
const FABRIKAM_ADMIN: &str = "admin@fabrikam.onmicrosoft.com";
const FABRIKAM_USER: &str = "user@fabrikam.onmicrosoft.com";
const FABRIKAM_PASSWORD: &str = "Demo-Fabrikam-Passw0rd!";
const CONSOLE_PASSWORD: &str = "connect-test-password-123";

/// An organization with an admin account signed in to the console in its own browser.
struct Admin {
    org: String,
    org_name: String,
    browser: Browser,
}

async fn org_with_admin(env: &TestEnv, label: &str) -> Admin {
    let org_name = format!("{label} {}", uuid::Uuid::new_v4().simple());
    let org = env
        .state
        .svc
        .create_organization(&org_name, &[])
        .await
        .expect("org");
    let username = format!(
        "{}-admin-{}",
        label.to_lowercase(),
        &uuid::Uuid::new_v4().simple().to_string()[..8]
    );
    env.state
        .console
        .accounts
        .create_with_role(
            &username,
            &SecretString::from(CONSOLE_PASSWORD.to_string()),
            AccountScope::Organization(org.id),
            Role::Admin,
        )
        .await
        .expect("account");
    let browser = env.browser(None);
    let login = browser.get(&format!("{}/console/login", env.base)).await;
    let done = browser
        .post(
            &format!("{}/console/login", env.base),
            &[
                ("csrf".into(), csrf(&login.body)),
                ("username".into(), username),
                ("password".into(), CONSOLE_PASSWORD.into()),
            ],
        )
        .await;
    assert_eq!(done.status, 303, "{}", done.body);
    Admin {
        org: org.id.to_string(),
        org_name,
        browser,
    }
}

fn csrf(body: &str) -> String {
    let i = body.find("name=\"csrf\" value=\"").expect("a csrf field") + 19;
    body[i..i + body[i..].find('"').expect("end")].to_string()
}

/// Clicks "Connect a Microsoft tenant" on the tenants page: the redirect to Microsoft.
async fn click_connect(env: &TestEnv, admin: &Admin) -> Page {
    let tenants = admin.browser.get(&format!("{}/console", env.base)).await;
    assert!(
        tenants.body.contains("Connect a Microsoft tenant"),
        "{}",
        tenants.body
    );
    let started = admin
        .browser
        .post(
            &format!("{}/console/tenants/connect", env.base),
            &[("csrf".into(), csrf(&tenants.body))],
        )
        .await;
    assert_eq!(started.status, 303, "{}", started.body);
    assert!(
        started
            .location
            .as_deref()
            .unwrap_or_default()
            .contains("/organizations/oauth2/v2.0/authorize"),
        "{started:?}"
    );
    started
}

/// Connects as `user` (a fabrikam account) deciding `decision`: the last page.
async fn connect_as(env: &TestEnv, admin: &Admin, user: &str, decision: Decision) -> Page {
    connect_with(env, admin, user, FABRIKAM_PASSWORD, decision).await
}

async fn connect_with(
    env: &TestEnv,
    admin: &Admin,
    user: &str,
    password: &str,
    decision: Decision,
) -> Page {
    let started = click_connect(env, admin).await;
    admin
        .browser
        .complete(
            started.location.as_deref().expect("to Microsoft"),
            user,
            password,
            decision,
        )
        .await
}

async fn tenant(env: &TestEnv, id: &str) -> (StatusCode, Value) {
    env.api(Method::GET, &format!("/api/v1/tenants/{id}"), None)
        .await
}

async fn audit_of(env: &TestEnv, org: &str) -> Vec<Value> {
    let (s, v) = env
        .api(
            Method::GET,
            &format!("/api/v1/organizations/{org}/audit?limit=100"),
            None,
        )
        .await;
    assert_eq!(s, StatusCode::OK, "{v}");
    v["entries"].as_array().cloned().expect("entries")
}

#[tokio::test]
async fn an_administrator_connects_fabrikam_by_consenting_and_creates_the_offered_profiles() {
    let env = TestEnv::start().await;
    let admin = org_with_admin(&env, "Connect").await;
    let page = connect_as(
        &env,
        &admin,
        FABRIKAM_ADMIN,
        Decision::Accept { org_wide: true },
    )
    .await;
    assert_eq!(page.status, 200, "{}", page.body);
    assert!(page.body.contains("Tenant connected"), "{}", page.body);
    assert!(page.body.contains(FABRIKAM_ADMIN), "{}", page.body);

    // ID, name and domain from Graph, verified by consent, in the organization.
    let (s, t) = tenant(&env, FABRIKAM).await;
    assert_eq!(s, StatusCode::OK, "{t}");
    assert_eq!(t["org_id"], admin.org.as_str());
    assert_eq!(t["display_name"], "Fabrikam");
    assert_eq!(t["primary_domain"], FABRIKAM_DOMAIN);
    assert_eq!(t["verified"]["by"], "consent", "{t}");
    let created = audit_of(&env, &admin.org).await;
    assert!(
        created
            .iter()
            .any(|e| e["action"] == AuditAction::TenantCreated.as_str()
                && e["detail"]["consent_user"] == FABRIKAM_ADMIN),
        "{created:?}"
    );

    // The offer: catalog app types (none subscribed: none preselected), custom apps left out.
    assert!(
        page.body.contains("Create selected app profiles"),
        "{}",
        page.body
    );
    assert!(
        page.body.contains("value=\"insights/insights-m365\""),
        "{}",
        page.body
    );
    assert!(!page.body.contains(" checked"), "nothing preselected");
    let custom: Vec<&str> = env
        .state
        .svc
        .catalog()
        .app_types
        .iter()
        .filter(|a| a.custom_app)
        .map(|a| a.key.as_str())
        .collect();
    for key in &custom {
        assert!(
            !page.body.contains(&format!("/{key}\"")),
            "{key} is offered"
        );
    }
    let offered: Vec<String> = page
        .body
        .match_indices("name=\"app_type\" id=\"")
        .filter_map(|(i, _)| {
            let rest = &page.body[i..];
            let v = rest.find("value=\"")? + 7;
            Some(rest[v..v + rest[v..].find('"')?].to_string())
        })
        .collect();
    assert!(offered.len() >= 2, "{offered:?}");
    let chosen = &offered[..2];
    let mut form = vec![("csrf".to_string(), csrf(&page.body))];
    form.extend(chosen.iter().map(|v| ("app_type".to_string(), v.clone())));
    let done = admin
        .browser
        .post(
            &format!("{}/console/tenants/{FABRIKAM}/profiles", env.base),
            &form,
        )
        .await;
    assert_eq!(done.status, 303, "{}", done.body);
    let list = admin
        .browser
        .get(&format!(
            "{}{}",
            env.base,
            done.location.expect("to the list")
        ))
        .await;
    let (s, v) = env
        .api(
            Method::GET,
            &format!("/api/v1/profiles?tenant={FABRIKAM}"),
            None,
        )
        .await;
    assert_eq!(s, StatusCode::OK, "{v}");
    let items = v["items"].as_array().expect("items");
    assert_eq!(items.len(), 2, "{v}");
    for (p, c) in items.iter().zip(chosen) {
        let (service, app_type) = c.split_once('/').expect("service/app type");
        assert!(
            items
                .iter()
                .any(|p| p["app_type"] == app_type && p["service"] == service),
            "{c} not created: {v}"
        );
        assert_eq!(p["status"], "invalid", "{p}");
    }
    assert_eq!(list.status, 200, "{}", list.body);

    // Connecting again says so and changes nothing.
    let again = connect_as(
        &env,
        &admin,
        FABRIKAM_ADMIN,
        Decision::Accept { org_wide: true },
    )
    .await;
    assert!(
        again.body.contains("Tenant already connected"),
        "{}",
        again.body
    );
}

#[tokio::test]
async fn refusals_connect_nothing() {
    let env = TestEnv::start().await;
    let admin = org_with_admin(&env, "Refused").await;

    // A user of a tenant that lets users consent signs in, but is no administrator.
    let page = connect_with(
        &env,
        &admin,
        "user@contoso.onmicrosoft.com",
        PASSWORD,
        Decision::Accept { org_wide: false },
    )
    .await;
    assert!(
        page.body.contains("The tenant was not connected"),
        "{}",
        page.body
    );
    assert!(
        page.body
            .contains("user@contoso.onmicrosoft.com holds none of the roles"),
        "{}",
        page.body
    );
    assert_eq!(tenant(&env, &env.contoso_id).await.0, StatusCode::NOT_FOUND);

    // A user of fabrikam, where users may not consent: Microsoft asks for an administrator.
    let page = connect_as(
        &env,
        &admin,
        FABRIKAM_USER,
        Decision::Accept { org_wide: true },
    )
    .await;
    assert!(
        page.body.contains("The tenant was not connected"),
        "{}",
        page.body
    );
    assert!(page.body.contains("administrator"), "{}", page.body);
    assert_eq!(tenant(&env, FABRIKAM).await.0, StatusCode::NOT_FOUND);

    // Consent declined (cancelled at Microsoft).
    let page = connect_as(&env, &admin, FABRIKAM_ADMIN, Decision::Cancel).await;
    assert!(
        page.body.contains("The tenant was not connected"),
        "{}",
        page.body
    );
    assert!(
        page.body.contains("cancelled") || page.body.contains("declined"),
        "{}",
        page.body
    );
    assert_eq!(tenant(&env, FABRIKAM).await.0, StatusCode::NOT_FOUND);

    // A forged admin-consent redirect naming another tenant than the one signed in to, with the
    // attacker's own state.
    let started = click_connect(&env, &admin).await;
    let back = admin
        .browser
        .at_microsoft(
            started.location.as_deref().unwrap(),
            "admin@contoso.onmicrosoft.com",
            PASSWORD,
            Decision::Accept { org_wide: true },
        )
        .await;
    let to_consent = admin
        .browser
        .get(back.location.as_deref().expect("back"))
        .await;
    assert_eq!(to_consent.status, 303, "{}", to_consent.body);
    let consent_url = to_consent.location.clone().expect("to the consent");
    assert!(consent_url.contains("/v2.0/adminconsent"), "{consent_url}");
    let state = to_consent.redirect_params()["state"].clone();
    let forged = format!(
        "{}/console/tenants/connect/callback?admin_consent=True&tenant={FABRIKAM}&state={state}",
        env.base
    );
    let page = admin.browser.get(&forged).await;
    assert!(
        page.body
            .contains("not given in the tenant you signed in to"),
        "{}",
        page.body
    );
    assert_eq!(tenant(&env, FABRIKAM).await.0, StatusCode::NOT_FOUND);

    // The same state again: used.
    let replay = admin.browser.get(&forged).await;
    assert_ne!(replay.status, 200, "{}", replay.body);
    assert!(replay.body.contains("cannot be used"), "{}", replay.body);

    // A state started in another browser is refused (the binding cookie).
    let started = click_connect(&env, &admin).await;
    let back = admin
        .browser
        .at_microsoft(
            started.location.as_deref().unwrap(),
            FABRIKAM_ADMIN,
            FABRIKAM_PASSWORD,
            Decision::Accept { org_wide: true },
        )
        .await;
    let other = org_with_admin(&env, "Other").await;
    let stolen = other.browser.get(back.location.as_deref().unwrap()).await;
    assert!(stolen.body.contains("cannot be used"), "{}", stolen.body);
    assert_eq!(tenant(&env, FABRIKAM).await.0, StatusCode::NOT_FOUND);
}

#[tokio::test]
async fn a_verified_claim_supersedes_a_typed_one_and_is_never_taken_over() {
    let env = TestEnv::start().await;
    // The squatter's organization types fabrikam's ID and domain (through the operator), with a
    // profile never authorized.
    let squatter = org_with_admin(&env, "Squatter").await;
    let (s, t) = env
        .api(
            Method::POST,
            "/api/v1/tenants",
            Some(json!({"org_id": squatter.org, "tenant_id": FABRIKAM, "primary_domain": FABRIKAM_DOMAIN})),
        )
        .await;
    assert_eq!(s, StatusCode::CREATED, "{t}");
    assert!(t["verified"].is_null(), "a typed tenant is unverified: {t}");
    let (s, p) = env
        .api(
            Method::POST,
            "/api/v1/profiles",
            Some(json!({"tenant": FABRIKAM, "app_type": "insights-m365"})),
        )
        .await;
    assert_eq!(s, StatusCode::CREATED, "{p}");

    // The real owner (subscribing to Insights) connects by consent: the typed claim goes.
    let owner = org_with_admin(&env, "Owner").await;
    let (s, o) = env
        .api(
            Method::PATCH,
            &format!("/api/v1/organizations/{}", owner.org),
            Some(json!({"services": ["insights"]})),
        )
        .await;
    assert_eq!(s, StatusCode::OK, "{o}");
    assert_eq!(o["services"], json!(["insights"]));
    let (s, o) = env
        .api(
            Method::PATCH,
            &format!("/api/v1/organizations/{}", owner.org),
            Some(json!({"services": ["no-such-service"]})),
        )
        .await;
    assert_eq!(s, StatusCode::UNPROCESSABLE_ENTITY, "{o}");
    let page = connect_as(
        &env,
        &owner,
        FABRIKAM_ADMIN,
        Decision::Accept { org_wide: true },
    )
    .await;
    // The offer: the subscribed service's app types only, checked.
    let offered = page.body.matches("name=\"app_type\"").count();
    let insights = page.body.matches("value=\"insights/").count();
    assert!(insights > 0 && offered == insights, "{}", page.body);
    assert_eq!(
        page.body.matches(" checked").count(),
        offered,
        "{}",
        page.body
    );
    assert!(page.body.contains("Tenant connected"), "{}", page.body);
    let (_, t) = tenant(&env, FABRIKAM).await;
    assert_eq!(t["org_id"], owner.org.as_str(), "{t}");
    let (s, _) = env
        .api(
            Method::GET,
            &format!("/api/v1/profiles/{}", p["id"].as_str().unwrap()),
            None,
        )
        .await;
    assert_eq!(s, StatusCode::NOT_FOUND, "the squatter's profile is gone");
    let entries = audit_of(&env, &squatter.org).await;
    let superseded = entries
        .iter()
        .find(|e| e["action"] == AuditAction::TenantSuperseded.as_str())
        .unwrap_or_else(|| panic!("no superseded entry: {entries:?}"));
    let text = superseded.to_string();
    assert!(
        !text.contains(&owner.org) && !text.contains(&owner.org_name),
        "{text}"
    );

    // The squatter now tries by consent (somehow holding fabrikam's admin): refused, naming no one.
    let page = connect_as(
        &env,
        &squatter,
        FABRIKAM_ADMIN,
        Decision::Accept { org_wide: true },
    )
    .await;
    assert!(
        page.body.contains("The tenant was not connected"),
        "{}",
        page.body
    );
    assert!(
        page.body.contains("already connected to Consentry"),
        "{}",
        page.body
    );
    assert!(
        !page.body.contains(&owner.org_name) && !page.body.contains(&owner.org),
        "{}",
        page.body
    );
    let (_, t) = tenant(&env, FABRIKAM).await;
    assert_eq!(t["org_id"], owner.org.as_str(), "{t}");
}

#[tokio::test]
async fn an_organization_admin_cannot_type_a_tenant_and_a_reauthorization_verifies_a_typed_one() {
    let env = TestEnv::start().await;
    let org = env.connect_contoso(&[]).await;
    let (_, t) = tenant(&env, &env.contoso_id).await;
    assert!(t["verified"].is_null(), "{t}");

    // An organization admin's personal token on the API: typing is refused, pointing to consent.
    let accounts = &env.state.console.accounts;
    let a = accounts
        .create_with_role(
            &format!("typist-{}", &uuid::Uuid::new_v4().simple().to_string()[..8]),
            &SecretString::from(CONSOLE_PASSWORD.to_string()),
            AccountScope::Organization(org.parse().unwrap()),
            Role::Admin,
        )
        .await
        .expect("account");
    let (_, token) = accounts
        .create_token(&a, "typing", time::Duration::days(1))
        .await
        .expect("token");
    let answer = env
        .http
        .post(format!("{}/api/v1/tenants", env.base))
        .bearer_auth(secrecy::ExposeSecret::expose_secret(&token))
        .json(&json!({"org_id": org, "tenant_id": FABRIKAM, "primary_domain": FABRIKAM_DOMAIN}))
        .send()
        .await
        .expect("call");
    assert_eq!(answer.status(), StatusCode::FORBIDDEN);
    let body = answer.text().await.unwrap();
    assert!(body.contains("Connect a Microsoft tenant"), "{body}");
    assert_eq!(tenant(&env, FABRIKAM).await.0, StatusCode::NOT_FOUND);

    // A completed re-authorization in the typed tenant verifies it.
    let p = env.profile("insights-m365", None).await;
    env.authorize(
        &p,
        json!({"method": "admin"}),
        "admin@contoso.onmicrosoft.com",
        None,
    )
    .await;
    let (_, t) = tenant(&env, &env.contoso_id).await;
    assert_eq!(t["verified"]["by"], "reauthorization", "{t}");
    let entries = audit_of(&env, &org).await;
    assert!(
        entries
            .iter()
            .any(|e| e["action"] == AuditAction::TenantVerified.as_str()),
        "{entries:?}"
    );
}

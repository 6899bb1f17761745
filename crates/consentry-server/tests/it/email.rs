//! Email end to end: a tenant's contacts through the API (a malformed address refused with the field
//! named), and a check making a profile invalid emailing them through a real SMTP server on loopback
//! (the `mailbox`), the message listed on the tenant's emails.

use consentry_domain::{AccountScope, Accounts, HashCost, OrgId, SessionPolicy};
use consentry_mail::mailbox::Mailbox;
use consentry_server::AppState;
use consentry_testkit::console as kit;
use consentry_testkit::{Decision, PASSWORD, TestEnv};
use reqwest::{Method, StatusCode};
use secrecy::SecretString;
use serde_json::json;

const CONSOLE_PASSWORD: &str = "console-password-1";

/// The server's state with an organization admin `ops` of `org` signed in: (state, session).
async fn console(env: &TestEnv, org: &str) -> (AppState, String) {
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
            &SecretString::from(CONSOLE_PASSWORD.to_string()),
            AccountScope::Organization(OrgId::parse(org).unwrap()),
        )
        .await
        .unwrap();
    let session = kit::sign_in(&state, "ops", CONSOLE_PASSWORD, None).await;
    (state, session)
}

const ADMIN: &str = "admin@contoso.onmicrosoft.com";
const CONTOSO: &str = "contoso.onmicrosoft.com";

#[tokio::test]
async fn contacts_are_replaced_whole_and_a_malformed_address_is_refused_naming_the_field() {
    let env = TestEnv::start().await;
    let org = env.connect_contoso(&[]).await;
    let path = format!("/api/v1/tenants/{CONTOSO}/contacts");
    let (s, v) = env.api(Method::GET, &path, None).await;
    assert_eq!(s, StatusCode::OK, "{v}");
    assert_eq!(v["contacts"], json!([]));
    assert_eq!(v["tenant_id"], env.contoso_id.as_str());

    let (s, v) = env
        .api(
            Method::PUT,
            &path,
            Some(json!({"contacts": ["IT-Admin@Contoso.example", "sec@contoso.example, it-admin@contoso.EXAMPLE"]})),
        )
        .await;
    assert_eq!(s, StatusCode::OK, "{v}");
    assert_eq!(
        v["contacts"],
        json!(["IT-Admin@contoso.example", "sec@contoso.example"])
    );

    let (s, v) = env
        .api(
            Method::PUT,
            &path,
            Some(json!({"contacts": ["ok@contoso.example", "not an address"]})),
        )
        .await;
    assert_eq!(s, StatusCode::BAD_REQUEST, "{v}");
    assert_eq!(v["error"]["code"], "bad_request", "{v}");
    assert_eq!(v["error"]["field"], "contacts", "{v}");
    assert!(
        v["error"]["message"]
            .as_str()
            .unwrap()
            .contains("not an address"),
        "{v}"
    );
    let (_, v) = env.api(Method::GET, &path, None).await;
    assert_eq!(
        v["contacts"],
        json!(["IT-Admin@contoso.example", "sec@contoso.example"]),
        "a refused change changes nothing"
    );

    let (s, v) = env
        .api(Method::PUT, &path, Some(json!({"contacts": []})))
        .await;
    assert_eq!(s, StatusCode::OK, "{v}");
    assert_eq!(v["contacts"], json!([]));
    let (s, v) = env
        .api(Method::PUT, &path, Some(json!({"addresses": []})))
        .await;
    assert_eq!(s, StatusCode::BAD_REQUEST, "{v}");

    // The console's form: the same rule, the entered text kept after a refusal.
    let (state, session) = console(&env, &org).await;
    let page_path = format!("/console/tenants/{}/email", env.contoso_id);
    let home = kit::get(&state, "/console", Some(&session)).await;
    assert!(home.body.contains(&page_path), "{}", home.body);
    let page = kit::get(&state, &page_path, Some(&session)).await;
    assert_eq!(page.status, StatusCode::OK, "{}", page.body);
    assert!(
        page.body.contains("id=\"email-off\""),
        "email is not configured here"
    );
    assert!(
        page.body.contains("<label for=\"contacts-field\">"),
        "{}",
        page.body
    );
    let cookies = format!("consentry_session={session}");
    let form_path = format!("/console/tenants/{}/contacts", env.contoso_id);
    let bad = kit::post(
        &state,
        &form_path,
        &cookies,
        &[
            ("csrf", page.csrf().as_str()),
            ("contacts", "it@contoso.example\nbroken@"),
        ],
    )
    .await;
    assert_eq!(bad.status, StatusCode::UNPROCESSABLE_ENTITY, "{}", bad.body);
    assert!(bad.body.contains("id=\"error\""), "{}", bad.body);
    assert!(bad.body.contains("broken@"), "{}", bad.body);
    let no_csrf = kit::post(
        &state,
        &form_path,
        &cookies,
        &[("contacts", "it@contoso.example")],
    )
    .await;
    assert_eq!(no_csrf.status, StatusCode::FORBIDDEN, "{}", no_csrf.body);
    let ok = kit::post(
        &state,
        &form_path,
        &cookies,
        &[
            ("csrf", page.csrf().as_str()),
            ("contacts", "it@contoso.example,\r\nsec@contoso.example"),
        ],
    )
    .await;
    assert_eq!(ok.status, StatusCode::SEE_OTHER, "{}", ok.body);
    let (_, v) = env.api(Method::GET, &path, None).await;
    assert_eq!(
        v["contacts"],
        json!(["it@contoso.example", "sec@contoso.example"])
    );
    let after = kit::get(&state, &format!("{page_path}?saved=1"), Some(&session)).await;
    assert!(after.body.contains("id=\"saved\""), "{}", after.body);
    assert!(
        after
            .body
            .contains("it@contoso.example\nsec@contoso.example"),
        "{}",
        after.body
    );
}

#[tokio::test]
async fn a_profile_becoming_invalid_emails_the_contacts_and_the_tenant_lists_it() {
    let dir = tempfile::tempdir().unwrap();
    let mailbox = Mailbox::start(dir.path()).unwrap();
    let env = TestEnv::start_with_settings(
        entra_sim::Scenario::contoso(),
        consentry_testkit::smtp_settings(mailbox.addr().port()),
    )
    .await;
    let org = env.connect_contoso(&[]).await;
    let id = env.profile("insights-m365", None).await;
    let (_, started) = env.start_reauth(&id, json!({"method": "admin"})).await;
    env.browser(Some("203.0.113.7"))
        .complete(
            started["url"].as_str().unwrap(),
            ADMIN,
            PASSWORD,
            Decision::Accept { org_wide: true },
        )
        .await;
    // The consent user is suggested as a contact.
    let contacts = format!("/api/v1/tenants/{CONTOSO}/contacts");
    let (_, v) = env.api(Method::GET, &contacts, None).await;
    assert_eq!(v["suggested"], json!([ADMIN]), "{v}");
    let (s, v) = env
        .api(
            Method::PUT,
            &contacts,
            Some(json!({"contacts": ["it-admin@contoso.example", "gone@contoso.example"]})),
        )
        .await;
    assert_eq!(s, StatusCode::OK, "{v}");
    mailbox.refuse("gone@contoso.example");

    let block: entra_sim::CaPolicy = serde_json::from_value(json!({
        "name": "HQ only", "users": [ADMIN], "allowed_ranges": ["198.51.100.0/24"], "action": "block"
    }))
    .unwrap();
    env.sim
        .control()
        .set_ca_policies(CONTOSO, vec![block])
        .unwrap();
    let (s, v) = env
        .api(Method::POST, &format!("/api/v1/profiles/{id}/check"), None)
        .await;
    assert_eq!(
        (s, v["outcome"].as_str()),
        (StatusCode::OK, Some("invalid"))
    );

    let emails = format!("/api/v1/tenants/{CONTOSO}/emails");
    let (s, v) = env.api(Method::GET, &emails, None).await;
    assert_eq!(s, StatusCode::OK, "{v}");
    let items = v["items"].as_array().unwrap();
    assert_eq!(items.len(), 2, "{v}");
    assert!(
        items
            .iter()
            .all(|e| e["state"] == "queued" && e["kind"] == "profile_invalid")
    );
    assert!(
        items.iter().all(|e| e.get("content").is_none()),
        "the list carries no content"
    );

    // The server's delivery worker (what `consentry serve` runs) sends them.
    let worker = env.state.email.clone().expect("email is configured");
    let report = worker.deliver_due().await.unwrap();
    assert_eq!((report.sent, report.failed), (1, 1));
    let got = mailbox.messages().unwrap();
    assert_eq!(got.len(), 1);
    assert!(
        got[0].contains("To: it-admin@contoso.example"),
        "{}",
        got[0]
    );
    assert!(got[0].contains("needs to be re-authorized"), "{}", got[0]);

    let (_, v) = env.api(Method::GET, &emails, None).await;
    let by_to = |to: &str| {
        v["items"]
            .as_array()
            .unwrap()
            .iter()
            .find(|e| e["to"] == to)
            .cloned()
            .unwrap()
    };
    assert_eq!(by_to("it-admin@contoso.example")["state"], "sent");
    let gone = by_to("gone@contoso.example");
    assert_eq!(gone["state"], "failed");
    assert!(
        gone["last_error"].as_str().unwrap().contains("550"),
        "{gone}"
    );

    // The tenant's console page shows the refusal.
    let (state, session) = console(&env, &org).await;
    let page = kit::get(
        &state,
        &format!("/console/tenants/{}/email", env.contoso_id),
        Some(&session),
    )
    .await;
    assert_eq!(page.status, StatusCode::OK, "{}", page.body);
    assert!(!page.body.contains("id=\"email-off\""), "{}", page.body);
    assert!(page.body.contains("gone@contoso.example"), "{}", page.body);
    assert!(page.body.contains("Failed"), "{}", page.body);
    assert!(page.body.contains("550"), "{}", page.body);
    assert!(page.body.contains(ADMIN), "the consent user is suggested");

    // Checked again, still invalid for the same reason: no second message.
    env.api(Method::POST, &format!("/api/v1/profiles/{id}/check"), None)
        .await;
    let (_, v) = env.api(Method::GET, &emails, None).await;
    assert_eq!(v["items"].as_array().unwrap().len(), 2);
}

#[tokio::test]
async fn an_organizations_digest_recipients_are_set_and_a_malformed_one_is_refused() {
    let env = TestEnv::start().await;
    let org = env.connect_contoso(&[]).await;
    let path = format!("/api/v1/organizations/{org}/digest");
    let (s, v) = env.api(Method::GET, &path, None).await;
    assert_eq!(s, StatusCode::OK, "{v}");
    assert_eq!(v, json!({"org_id": org, "recipients": []}));
    let (s, v) = env
        .api(
            Method::PUT,
            &path,
            Some(json!({"recipients": ["ops@vendor.example", "x@"]})),
        )
        .await;
    assert_eq!(s, StatusCode::BAD_REQUEST, "{v}");
    assert_eq!(v["error"]["field"], "recipients", "{v}");
    let (s, v) = env
        .api(
            Method::PUT,
            &path,
            Some(json!({"recipients": ["ops@vendor.example"]})),
        )
        .await;
    assert_eq!(s, StatusCode::OK, "{v}");
    assert_eq!(v["recipients"], json!(["ops@vendor.example"]));
    let (s, _) = env
        .api(
            Method::GET,
            &format!("/api/v1/organizations/{}/digest", uuid::Uuid::new_v4()),
            None,
        )
        .await;
    assert_eq!(s, StatusCode::NOT_FOUND);
}

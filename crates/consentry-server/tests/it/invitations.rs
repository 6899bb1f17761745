//! Inviting an organization's first admin: the platform operator's single-use link (API), the
//! page and its form creating an organization-admin account and signing it in, a used link, an
//! expired link, and who may invite.

use consentry_domain::{AccountScope, AuditAction, Role};
use consentry_testkit::TestEnv;
use reqwest::{Method, StatusCode};
use serde_json::{Value, json};

fn csrf(body: &str) -> String {
    let i = body.find("name=\"csrf\" value=\"").expect("a csrf field") + 19;
    body[i..i + body[i..].find('"').expect("end")].to_string()
}

async fn invite(env: &TestEnv, org: &str, body: Value) -> (StatusCode, Value) {
    env.api(
        Method::POST,
        &format!("/api/v1/organizations/{org}/invitations"),
        Some(body),
    )
    .await
}

#[tokio::test]
async fn an_invitation_creates_one_organization_admin_once() {
    let env = TestEnv::start().await;
    let org = env
        .state
        .svc
        .create_organization("Invited Org", &[])
        .await
        .expect("org");
    let (s, v) = invite(
        &env,
        &org.id.to_string(),
        json!({"email": "first@example.com"}),
    )
    .await;
    assert_eq!(s, StatusCode::CREATED, "{v}");
    let url = v["url"].as_str().expect("url").to_string();
    assert!(
        url.starts_with(&format!("{}/console/invitations/", env.base)),
        "{url}"
    );
    let token = url.rsplit('/').next().unwrap();
    assert!(token.len() >= 43, "256 random bits");

    let browser = env.browser(None);
    let page = browser.get(&url).await;
    assert_eq!(page.status, 200, "{}", page.body);
    assert!(page.body.contains("Invited Org"), "{}", page.body);

    // Passwords that differ, then a password too short: the link stays usable.
    let post = |user: &str, pw: &str, confirm: &str, csrf: String| {
        vec![
            ("csrf".to_string(), csrf),
            ("username".to_string(), user.to_string()),
            ("password".to_string(), pw.to_string()),
            ("confirm".to_string(), confirm.to_string()),
        ]
    };
    let again = browser
        .post(
            &url,
            &post(
                "first.admin",
                "long-enough-password-1",
                "other-password-12",
                csrf(&page.body),
            ),
        )
        .await;
    assert_eq!(again.status, 422, "{}", again.body);
    assert!(again.body.contains("differ"), "{}", again.body);
    let short = browser
        .post(
            &url,
            &post("first.admin", "short", "short", csrf(&again.body)),
        )
        .await;
    assert_eq!(short.status, 422, "{}", short.body);
    assert!(short.body.contains("password"), "{}", short.body);
    // Without the page's CSRF value: refused.
    let forged = browser
        .post(
            &url,
            &post(
                "first.admin",
                "long-enough-password-1",
                "long-enough-password-1",
                "x".into(),
            ),
        )
        .await;
    assert_eq!(forged.status, 403, "{}", forged.body);

    let done = browser
        .post(
            &url,
            &post(
                "first.admin",
                "long-enough-password-1",
                "long-enough-password-1",
                csrf(&short.body),
            ),
        )
        .await;
    assert_eq!(done.status, 303, "{}", done.body);
    let console = browser.get(&format!("{}/console", env.base)).await;
    assert_eq!(console.status, 200, "signed in: {}", console.body);
    assert!(console.body.contains("first.admin"), "{}", console.body);
    let account = env
        .state
        .console
        .accounts
        .find("first.admin")
        .await
        .unwrap()
        .expect("account");
    assert_eq!(account.scope, AccountScope::Organization(org.id));
    assert_eq!(account.role, Role::Admin);

    // Used: a clear page, for a new browser too; no second account.
    let other = env.browser(None);
    let used = other.get(&url).await;
    assert_ne!(used.status, 200);
    assert!(used.body.contains("used already"), "{}", used.body);

    let (_, log) = env
        .api(
            Method::GET,
            &format!("/api/v1/organizations/{}/audit", org.id),
            None,
        )
        .await;
    assert!(
        log["entries"]
            .as_array()
            .unwrap()
            .iter()
            .any(|e| e["action"] == AuditAction::InvitationCreated.as_str()
                && e["detail"]["email"] == "first@example.com"),
        "{log}"
    );
}

#[tokio::test]
async fn an_expired_or_unknown_link_says_so_and_only_the_platform_invites() {
    let env = TestEnv::start().await;
    let org = env
        .state
        .svc
        .create_organization("Late Org", &[])
        .await
        .unwrap();
    let (_, v) = invite(&env, &org.id.to_string(), json!({})).await;
    let url = v["url"].as_str().unwrap().to_string();
    env.clock.advance(time::Duration::hours(73));
    let browser = env.browser(None);
    let expired = browser.get(&url).await;
    assert!(expired.body.contains("expired"), "{}", expired.body);
    let unknown = browser
        .get(&format!(
            "{}/console/invitations/not-a-real-token",
            env.base
        ))
        .await;
    assert!(unknown.body.contains("not valid"), "{}", unknown.body);

    let (s, v) = invite(
        &env,
        &org.id.to_string(),
        json!({"email": "not an address"}),
    )
    .await;
    assert_eq!(s, StatusCode::UNPROCESSABLE_ENTITY, "{v}");

    // An organization's admin may not invite.
    let accounts = &env.state.console.accounts;
    let a = accounts
        .create(
            "late-admin",
            &secrecy::SecretString::from("late-admin-password".to_string()),
            AccountScope::Organization(org.id),
        )
        .await
        .unwrap();
    let (_, token) = accounts
        .create_token(&a, "t", time::Duration::days(1))
        .await
        .unwrap();
    let answer = env
        .http
        .post(format!(
            "{}/api/v1/organizations/{}/invitations",
            env.base, org.id
        ))
        .bearer_auth(secrecy::ExposeSecret::expose_secret(&token))
        .json(&json!({}))
        .send()
        .await
        .unwrap();
    assert_eq!(answer.status(), StatusCode::FORBIDDEN);
}

#[tokio::test]
async fn with_email_configured_the_link_is_emailed_to_the_address_given() {
    let dir = tempfile::tempdir().unwrap();
    let mailbox = consentry_mail::mailbox::Mailbox::start(dir.path()).unwrap();
    let env = TestEnv::start_with_settings(
        entra_sim::Scenario::contoso(),
        consentry_testkit::smtp_settings(mailbox.addr().port()),
    )
    .await;
    let org = env
        .state
        .svc
        .create_organization("Emailed Org", &[])
        .await
        .expect("org");
    let (s, v) = invite(
        &env,
        &org.id.to_string(),
        json!({"email": "first.admin@example.com"}),
    )
    .await;
    assert_eq!(s, StatusCode::CREATED, "{v}");
    assert_eq!(v["emailed"], true, "{v}");
    let url = v["url"].as_str().expect("url").to_string();
    // Without an address nothing is sent.
    let (_, v2) = invite(&env, &org.id.to_string(), json!({})).await;
    assert_eq!(v2["emailed"], false, "{v2}");

    // The server's delivery worker (what `consentry serve` runs) sends it.
    let worker = env.state.email.clone().expect("email is configured");
    let report = worker.deliver_due().await.unwrap();
    assert_eq!((report.sent, report.failed), (1, 0));
    let got = mailbox.messages().unwrap();
    assert_eq!(got.len(), 1);
    assert!(got[0].contains("To: first.admin@example.com"), "{}", got[0]);
    assert!(
        got[0].contains("administer Emailed Org"),
        "the subject names the organization: {}",
        got[0]
    );
    // The link in the message is the one the operator got, and it opens the invitation page.
    let token = url.rsplit('/').next().unwrap();
    // Quoted-printable soft line breaks undone.
    let unfolded = got[0].replace("=\r\n", "").replace("=\n", "");
    assert!(
        unfolded.contains(token),
        "the message carries the link: {}",
        got[0]
    );
    let page = reqwest::get(&url).await.unwrap();
    assert_eq!(page.status(), StatusCode::OK);
}

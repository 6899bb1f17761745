//! The web console through the router in memory: sign-in (CSRF on the form, wrong passwords, cookie
//! attributes, rotation), CSRF refusal on every POST, idle expiry, sign-out, organization scoping,
//! escaping of hostile text, security headers, the wizard's function gating and its size limit.

use std::sync::{Arc, Mutex};

use axum::body::Body;
use axum::http::{Request, StatusCode, header};
use consentry_domain::{
    AccountScope, Accounts, Actor, Clock, DomainName, HashCost, NewProfile, OrgId, SessionPolicy,
    TenantId, TenantRef,
};
use consentry_server::{AppState, Config};
use consentry_testkit::console::{self as kit, Answer};
use secrecy::SecretString;
use time::{Duration, OffsetDateTime};

#[derive(Debug)]
struct ManualClock(Mutex<OffsetDateTime>);

impl Clock for ManualClock {
    fn now(&self) -> OffsetDateTime {
        *self.0.lock().expect("clock")
    }
}

struct Console {
    state: AppState,
    clock: Arc<ManualClock>,
    org: OrgId,
    other_org: OrgId,
    profile: String,
    other_profile: String,
    _dir: tempfile::TempDir,
}

const PASSWORD: &str = "console-password-1";
const HOSTILE: &str = "<script>alert(1)</script>";

async fn console() -> Console {
    let dir = tempfile::tempdir().expect("temp dir");
    let cfg = Config::load(
        None,
        vec![
            (
                "CONSENTRY_DATA_DIR".to_string(),
                dir.path().display().to_string(),
            ),
            (
                "CONSENTRY_API_TOKEN".to_string(),
                "console-test-token-0123456789".to_string(),
            ),
        ],
    )
    .expect("config");
    let mut state = consentry_server::build_state(&cfg).await.expect("state");
    let clock = Arc::new(ManualClock(Mutex::new(OffsetDateTime::now_utc())));
    state.console.accounts = Accounts::new(
        state.svc.store().clone(),
        clock.clone(),
        SessionPolicy {
            idle: Duration::minutes(30),
            absolute: Duration::hours(8),
        },
        HashCost::TestOnly,
    );
    let svc = &state.svc;
    let org = svc
        .create_organization("Contoso", &["teams".to_string()])
        .await
        .expect("org");
    let other = svc.create_organization("Fabrikam", &[]).await.expect("org");
    let t = svc
        .connect_tenant(
            org.id,
            TenantId::parse("11111111-1111-4111-8111-111111111111").expect("id"),
            DomainName::parse("contoso.onmicrosoft.com").expect("domain"),
            Some(HOSTILE),
            consentry_domain::Placement::In(&consentry_domain::CloudKey::global()),
        )
        .await
        .expect("tenant");
    let t2 = svc
        .connect_tenant(
            other.id,
            TenantId::parse("22222222-2222-4222-8222-222222222222").expect("id"),
            DomainName::parse("fabrikam.onmicrosoft.com").expect("domain"),
            None,
            consentry_domain::Placement::In(&consentry_domain::CloudKey::global()),
        )
        .await
        .expect("tenant");
    let actor = Actor::Operator("test".into());
    let p = svc
        .create_profile(
            NewProfile {
                tenant: TenantRef::Id(t.id),
                app_type: "cloud-backup-delegated".into(),
                service: None,
            },
            &actor,
        )
        .await
        .expect("profile");
    let p2 = svc
        .create_profile(
            NewProfile {
                tenant: TenantRef::Id(t2.id),
                app_type: "cloud-backup-delegated".into(),
                service: None,
            },
            &actor,
        )
        .await
        .expect("profile");
    let accounts = &state.console.accounts;
    let pw = SecretString::from(PASSWORD.to_string());
    accounts
        .create("ops", &pw, AccountScope::Organization(org.id))
        .await
        .expect("account");
    accounts
        .create("root", &pw, AccountScope::Platform)
        .await
        .expect("account");
    Console {
        state,
        clock,
        org: org.id,
        other_org: other.id,
        profile: p.id.to_string(),
        other_profile: p2.id.to_string(),
        _dir: dir,
    }
}

impl Console {
    async fn send(&self, req: Request<Body>) -> Answer {
        kit::send(&self.state, req).await
    }

    async fn get(&self, path: &str, session: Option<&str>) -> Answer {
        kit::get(&self.state, path, session).await
    }

    async fn post(&self, path: &str, cookies: &str, form: &[(&str, &str)]) -> Answer {
        kit::post(&self.state, path, cookies, form).await
    }

    /// Signs in and returns the session token.
    async fn sign_in(&self, user: &str, previous: Option<&str>) -> String {
        kit::sign_in(&self.state, user, PASSWORD, previous).await
    }
}

#[tokio::test]
async fn pages_need_a_session_and_sign_in_checks_csrf_and_password() {
    let c = console().await;
    let a = c.get("/console/profiles?status=invalid", None).await;
    assert!(a.status.is_redirection());
    assert_eq!(
        a.location(),
        "/console/login?next=/console/profiles%3Fstatus%3Dinvalid"
    );

    let page = c.get("/console/login", None).await;
    assert_eq!(page.status, StatusCode::OK);
    let login_cookie = page.cookie_value("consentry_login").expect("login cookie");
    let csrf = page.csrf();

    // No or wrong CSRF: refused before the password is even looked at.
    let a = c
        .post(
            "/console/login",
            &format!("consentry_login={login_cookie}"),
            &[
                ("csrf", "forged"),
                ("username", "ops"),
                ("password", PASSWORD),
            ],
        )
        .await;
    assert_eq!(a.status, StatusCode::FORBIDDEN);
    assert!(a.cookie("consentry_session").is_none());
    let a = c
        .post(
            "/console/login",
            "",
            &[("csrf", &csrf), ("username", "ops"), ("password", PASSWORD)],
        )
        .await;
    assert_eq!(a.status, StatusCode::FORBIDDEN);

    // Wrong password: the same words as an unknown user.
    let cookies = format!("consentry_login={login_cookie}");
    let wrong = c
        .post(
            "/console/login",
            &cookies,
            &[
                ("csrf", &csrf),
                ("username", "ops"),
                ("password", "not-the-password"),
            ],
        )
        .await;
    assert_eq!(wrong.status, StatusCode::UNAUTHORIZED);
    assert!(
        wrong
            .body
            .contains("The user name or password is not correct.")
    );
    let unknown = c
        .post(
            "/console/login",
            &cookies,
            &[
                ("csrf", &csrf),
                ("username", "nobody"),
                ("password", PASSWORD),
            ],
        )
        .await;
    assert_eq!(unknown.status, StatusCode::UNAUTHORIZED);
    assert!(
        unknown
            .body
            .contains("The user name or password is not correct.")
    );

    let ok = c
        .post(
            "/console/login",
            &cookies,
            &[
                ("csrf", &csrf),
                ("username", "OPS"),
                ("password", PASSWORD),
                ("next", "/console/profiles?status=invalid"),
            ],
        )
        .await;
    assert_eq!(ok.status, StatusCode::SEE_OTHER);
    assert_eq!(ok.location(), "/console/profiles?status=invalid");
    let cookie = ok.cookie("consentry_session").expect("session cookie");
    assert!(cookie.contains("HttpOnly"), "{cookie}");
    assert!(cookie.contains("SameSite=Lax"), "{cookie}");
    assert!(
        !cookie.contains("Secure"),
        "plain http public URL: {cookie}"
    );
    let token = ok.cookie_value("consentry_session").expect("token");
    let page = c.get("/console", Some(&token)).await;
    assert_eq!(page.status, StatusCode::OK);
    assert!(page.body.contains("Signed in as <strong>ops</strong>"));

    // An open redirect is not possible through `next`.
    let page = c.get("/console/login", None).await;
    let lc = page.cookie_value("consentry_login").expect("login cookie");
    let a = c
        .post(
            "/console/login",
            &format!("consentry_login={lc}"),
            &[
                ("csrf", &page.csrf()),
                ("username", "ops"),
                ("password", PASSWORD),
                ("next", "https://evil.example/"),
            ],
        )
        .await;
    assert_eq!(a.location(), "/console");
}

#[tokio::test]
async fn every_post_needs_the_sessions_csrf_token() {
    let c = console().await;
    let token = c.sign_in("ops", None).await;
    let other = c.sign_in("root", None).await;
    let page = c
        .get(&format!("/console/profiles/{}", c.profile), Some(&token))
        .await;
    let csrf = page.csrf();
    let other_csrf = c
        .get(&format!("/console/profiles/{}", c.profile), Some(&other))
        .await
        .csrf();
    assert_ne!(csrf, other_csrf, "CSRF tokens are per session");
    let cookies = format!("consentry_session={token}");
    for path in [
        "/console/logout".to_string(),
        format!("/console/profiles/{}/check", c.profile),
        format!("/console/profiles/{}/cancel", c.profile),
    ] {
        for bad in [
            vec![],
            vec![("csrf", "forged")],
            vec![("csrf", other_csrf.as_str())],
        ] {
            let a = c.post(&path, &cookies, &bad).await;
            assert_eq!(a.status, StatusCode::FORBIDDEN, "{path} with {bad:?}");
            assert!(a.body.contains("reload the page"), "{}", a.body);
        }
    }
    // The multipart wizard too.
    let boundary = "XyZ";
    let body = format!(
        "--{boundary}\r\nContent-Disposition: form-data; name=\"method\"\r\n\r\nadmin\r\n--{boundary}--\r\n"
    );
    let req = Request::post(format!("/console/profiles/{}/reauthorize", c.profile))
        .header(header::COOKIE, &cookies)
        .header(
            header::CONTENT_TYPE,
            format!("multipart/form-data; boundary={boundary}"),
        )
        .body(Body::from(body))
        .expect("request");
    assert_eq!(c.send(req).await.status, StatusCode::FORBIDDEN);
    let p = c
        .get(&format!("/console/profiles/{}", c.profile), Some(&token))
        .await;
    assert!(p.body.contains("Not yet authorized") || p.body.contains("Invalid"));
    assert!(
        !p.body.contains("Re-authorization pending"),
        "nothing was started"
    );

    // The session still works; signing out with the right token ends it.
    let a = c
        .post("/console/logout", &cookies, &[("csrf", &csrf)])
        .await;
    assert_eq!(a.status, StatusCode::SEE_OTHER);
    assert!(
        a.cookie("consentry_session")
            .is_some_and(|c| c.contains("Max-Age=0"))
    );
    let a = c.get("/console", Some(&token)).await;
    assert!(a.status.is_redirection());
    assert!(a.location().starts_with("/console/login"));
}

#[tokio::test]
async fn sessions_rotate_at_sign_in_and_expire_when_idle() {
    let c = console().await;
    let first = c.sign_in("ops", None).await;
    let second = c.sign_in("ops", Some(&first)).await;
    assert_ne!(first, second);
    assert!(
        c.get("/console", Some(&first))
            .await
            .status
            .is_redirection()
    );
    assert_eq!(
        c.get("/console", Some(&second)).await.status,
        StatusCode::OK
    );

    c.clock
        .0
        .lock()
        .map(|mut t| *t += Duration::minutes(29))
        .expect("clock");
    assert_eq!(
        c.get("/console", Some(&second)).await.status,
        StatusCode::OK
    );
    c.clock
        .0
        .lock()
        .map(|mut t| *t += Duration::minutes(31))
        .expect("clock");
    let a = c.get("/console", Some(&second)).await;
    assert!(a.status.is_redirection(), "an idle session ends");
    assert!(
        c.get("/console", Some(&second))
            .await
            .status
            .is_redirection()
    );
}

#[tokio::test]
async fn hostile_text_is_escaped_and_security_headers_are_set() {
    let c = console().await;
    let token = c.sign_in("ops", None).await;
    let page = c.get("/console", Some(&token)).await;
    assert_eq!(page.status, StatusCode::OK);
    assert!(!page.body.contains(HOSTILE), "raw script tag in the page");
    assert!(
        page.body
            .contains("&#60;script&#62;alert(1)&#60;/script&#62;"),
        "{}",
        page.body
    );
    let search = c
        .get(
            "/console/profiles?q=%3Cscript%3Ealert(1)%3C%2Fscript%3E",
            Some(&token),
        )
        .await;
    assert_eq!(search.status, StatusCode::OK);
    assert!(!search.body.contains(HOSTILE));

    for a in [&page, &search, &c.get("/console/login", None).await] {
        let csp = a
            .headers
            .get(header::CONTENT_SECURITY_POLICY)
            .and_then(|v| v.to_str().ok())
            .expect("CSP");
        assert!(csp.contains("frame-ancestors 'none'"), "{csp}");
        assert!(!csp.contains("unsafe-inline"), "{csp}");
        assert_eq!(a.headers[header::X_CONTENT_TYPE_OPTIONS], "nosniff");
        assert!(a.headers.contains_key(header::REFERRER_POLICY));
        assert!(
            !a.body.contains("<style") && !a.body.contains("style=\""),
            "no inline styles"
        );
        assert!(!a.body.contains("<script>"), "no inline scripts");
    }
    let css = c.get("/console/static/console.css", None).await;
    assert_eq!(css.status, StatusCode::OK);
    assert!(
        css.headers[header::CONTENT_TYPE]
            .to_str()
            .unwrap_or_default()
            .starts_with("text/css")
    );
    assert_eq!(
        c.get("/console/static/other.js", None).await.status,
        StatusCode::NOT_FOUND
    );
}

#[tokio::test]
async fn accounts_see_only_their_organization() {
    let c = console().await;
    let ops = c.sign_in("ops", None).await;
    let root = c.sign_in("root", None).await;
    let mine = c
        .get(&format!("/console/profiles/{}", c.profile), Some(&ops))
        .await;
    assert_eq!(mine.status, StatusCode::OK);
    let theirs = c
        .get(
            &format!("/console/profiles/{}", c.other_profile),
            Some(&ops),
        )
        .await;
    assert_eq!(theirs.status, StatusCode::NOT_FOUND);
    let wizard = c
        .get(
            &format!("/console/profiles/{}/reauthorize", c.other_profile),
            Some(&ops),
        )
        .await;
    assert_eq!(wizard.status, StatusCode::NOT_FOUND);
    let list = c.get("/console/profiles", Some(&ops)).await;
    assert!(list.body.contains("contoso.onmicrosoft.com"));
    assert!(!list.body.contains("fabrikam.onmicrosoft.com"));
    // Both profiles are new, so invalid ("not yet authorized"): the banner counts what the account sees.
    assert!(
        list.body.contains("1 app profile is invalid"),
        "{}",
        list.body
    );
    let all = c.get("/console/profiles", Some(&root)).await;
    assert!(all.body.contains("fabrikam.onmicrosoft.com"));
    assert!(all.body.contains("2 app profiles are invalid"));
    let tenants = c.get("/console", Some(&root)).await;
    assert!(tenants.body.contains("Fabrikam") && tenants.body.contains("Contoso"));
    let _ = (c.org, c.other_org);
}

#[tokio::test]
async fn the_wizard_gates_functions_by_module_and_spells_out_roles() {
    let c = console().await;
    let token = c.sign_in("ops", None).await;
    let w = c
        .get(
            &format!("/console/profiles/{}/reauthorize", c.profile),
            Some(&token),
        )
        .await;
    assert_eq!(w.status, StatusCode::OK);
    // Contoso subscribes to the teams module only.
    assert!(
        w.body
            .contains("name=\"functions\" value=\"restore-teams-conversations\">"),
        "{}",
        w.body
    );
    assert!(w.body.contains("value=\"protect-power-bi\" disabled"));
    assert!(
        w.body
            .contains("your subscription does not include the Power BI module")
    );
    assert!(w.body.contains("Global Administrator"));
    assert!(w.body.contains("Administrator consent") && w.body.contains("User consent"));

    // A forged choice of a gated function is refused by the domain and shown on the form.
    let csrf = w.csrf();
    let boundary = "b0undary";
    let mut body = String::new();
    for (k, v) in [
        ("csrf", csrf.as_str()),
        ("method", "admin"),
        ("functions", "protect-power-bi"),
    ] {
        body.push_str(&format!(
            "--{boundary}\r\nContent-Disposition: form-data; name=\"{k}\"\r\n\r\n{v}\r\n"
        ));
    }
    body.push_str(&format!("--{boundary}--\r\n"));
    let req = Request::post(format!("/console/profiles/{}/reauthorize", c.profile))
        .header(header::COOKIE, format!("consentry_session={token}"))
        .header(
            header::CONTENT_TYPE,
            format!("multipart/form-data; boundary={boundary}"),
        )
        .body(Body::from(body))
        .expect("request");
    let a = c.send(req).await;
    assert_eq!(a.status, StatusCode::UNPROCESSABLE_ENTITY, "{}", a.body);
    assert!(a.body.contains("id=\"wizard-error\""));
    assert!(a.body.contains("Power BI"), "{}", a.body);

    // An oversized upload is refused with what to do.
    let big = "x".repeat(300 * 1024);
    let body = format!(
        "--{boundary}\r\nContent-Disposition: form-data; name=\"csrf\"\r\n\r\n{csrf}\r\n--{boundary}\r\nContent-Disposition: form-data; name=\"certificate\"; filename=\"a.pfx\"\r\n\r\n{big}\r\n--{boundary}--\r\n"
    );
    let req = Request::post(format!("/console/profiles/{}/reauthorize", c.profile))
        .header(header::COOKIE, format!("consentry_session={token}"))
        .header(
            header::CONTENT_TYPE,
            format!("multipart/form-data; boundary={boundary}"),
        )
        .body(Body::from(body))
        .expect("request");
    let a = c.send(req).await;
    assert!(
        a.status == StatusCode::BAD_REQUEST || a.status == StatusCode::PAYLOAD_TOO_LARGE,
        "{} {}",
        a.status,
        a.body
    );
}

/// The wizard's file part: `None` is a file input with no file chosen (empty file name),
/// `Some((name, bytes))` a chosen file.
type Upload<'a> = Option<(&'a str, &'a [u8])>;

/// Posts the wizard of `profile` for a custom app with `certificate` as the file part.
async fn post_custom_app(
    c: &Console,
    token: &str,
    profile: &str,
    certificate: Upload<'_>,
) -> Answer {
    let w = c
        .get(
            &format!("/console/profiles/{profile}/reauthorize"),
            Some(token),
        )
        .await;
    assert_eq!(w.status, StatusCode::OK, "{}", w.body);
    let boundary = "b0undary-pfx";
    let mut body = Vec::new();
    for (k, v) in [
        ("csrf", w.csrf()),
        ("method", "admin".to_string()),
        (
            "application_id",
            "c0a70000-0000-4000-8000-0000000c0570".to_string(),
        ),
        ("password", "pfx-password".to_string()),
    ] {
        body.extend_from_slice(
            format!("--{boundary}\r\nContent-Disposition: form-data; name=\"{k}\"\r\n\r\n{v}\r\n")
                .as_bytes(),
        );
    }
    let (file_name, bytes) = certificate.unwrap_or(("", b""));
    body.extend_from_slice(
        format!(
            "--{boundary}\r\nContent-Disposition: form-data; name=\"certificate\"; filename=\"{file_name}\"\r\nContent-Type: application/octet-stream\r\n\r\n"
        )
        .as_bytes(),
    );
    body.extend_from_slice(bytes);
    body.extend_from_slice(format!("\r\n--{boundary}--\r\n").as_bytes());
    let req = Request::post(format!("/console/profiles/{profile}/reauthorize"))
        .header(header::COOKIE, format!("consentry_session={token}"))
        .header(
            header::CONTENT_TYPE,
            format!("multipart/form-data; boundary={boundary}"),
        )
        .body(Body::from(body))
        .expect("request");
    c.send(req).await
}

#[tokio::test]
async fn the_wizard_says_what_the_uploaded_certificate_file_is() {
    let c = console().await;
    let p = c
        .state
        .svc
        .create_profile(
            NewProfile {
                tenant: TenantRef::Domain(
                    DomainName::parse("contoso.onmicrosoft.com").expect("domain"),
                ),
                app_type: "custom-azure-app".into(),
                service: Some("cloud-backup-m365".into()),
            },
            &Actor::Operator("test".into()),
        )
        .await
        .expect("profile")
        .id
        .to_string();
    let token = c.sign_in("ops", None).await;
    let generated = consentry_certs::generate_self_signed(
        "consentry-wizard-test",
        1,
        "pfx-password",
        OffsetDateTime::now_utc(),
    )
    .expect("certificate");
    let cases: [(Upload<'_>, &str); 4] = [
        (None, "No certificate file was chosen"),
        (Some(("app.pfx", b"")), "the file is empty (0 bytes)"),
        (
            Some(("app.pfx", generated.cer_pem.as_bytes())),
            "this is a PEM file",
        ),
        (
            Some(("app.pfx", &generated.cer_der)),
            "this is a certificate without its private key (.cer/.crt): upload the .pfx that holds the private key",
        ),
    ];
    for (file, want) in cases {
        let a = post_custom_app(&c, &token, &p, file).await;
        assert_eq!(
            a.status,
            StatusCode::UNPROCESSABLE_ENTITY,
            "{want}: {}",
            a.body
        );
        assert!(a.body.contains("id=\"wizard-error\""), "{}", a.body);
        // The page starts the domain's message with a capital letter.
        assert!(
            a.body.to_lowercase().contains(&want.to_lowercase()),
            "{want:?} expected in {}",
            a.body
        );
        assert!(
            !a.body.contains("not a readable PKCS#12"),
            "{want}: the generic message is not what the administrator needs: {}",
            a.body
        );
    }
    // The right file goes through the checks.
    let a = post_custom_app(&c, &token, &p, Some(("app.pfx", &generated.pfx))).await;
    assert!(
        !a.body.contains("id=\"wizard-error\""),
        "{} {}",
        a.status,
        a.body
    );
}

#[tokio::test]
async fn the_list_pages_through_the_stores_cursor_and_filters() {
    let c = console().await;
    let actor = Actor::Operator("test".into());
    for _ in 0..55 {
        c.state
            .svc
            .create_profile(
                NewProfile {
                    tenant: TenantRef::Domain(
                        DomainName::parse("contoso.onmicrosoft.com").expect("domain"),
                    ),
                    app_type: "insights-m365".into(),
                    service: None,
                },
                &actor,
            )
            .await
            .expect("profile");
    }
    let token = c.sign_in("ops", None).await;
    let rows = |body: &str| body.matches("<td data-label=\"App type\">").count();

    // 56 of Contoso's profiles: 50, then 6.
    let first = c.get("/console/profiles", Some(&token)).await;
    assert_eq!(rows(&first.body), 50);
    assert!(!first.body.contains(">First page<"));
    let i = first.body.find("rel=\"next\"").expect("a next page link");
    let href_start = first.body[..i].rfind("href=\"").expect("href") + 6;
    let href = first.body[href_start..i]
        .trim_end()
        .trim_end_matches('"')
        .replace("&amp;", "&");
    let second = c.get(&href, Some(&token)).await;
    assert_eq!(second.status, StatusCode::OK, "{href}");
    assert_eq!(rows(&second.body), 6);
    assert!(second.body.contains(">First page<"));
    assert!(!second.body.contains("rel=\"next\""));

    // Filters: by app type search, by status, by tenant.
    let search = c
        .get("/console/profiles?q=cloud-backup", Some(&token))
        .await;
    assert_eq!(rows(&search.body), 1);
    let valid = c.get("/console/profiles?status=valid", Some(&token)).await;
    assert_eq!(rows(&valid.body), 0);
    assert!(valid.body.contains("No app profile matches these filters."));
    let bad = c.get("/console/profiles?status=broken", Some(&token)).await;
    assert_eq!(bad.status, StatusCode::BAD_REQUEST);
    let bad = c
        .get("/console/profiles?after=not-a-cursor", Some(&token))
        .await;
    assert_eq!(bad.status, StatusCode::UNPROCESSABLE_ENTITY);
}

#[tokio::test]
async fn an_organization_without_tenants_sees_how_to_connect_one() {
    let c = console().await;
    let empty = c
        .state
        .svc
        .create_organization("Northwind", &[])
        .await
        .expect("org");
    c.state
        .console
        .accounts
        .create(
            "northwind",
            &SecretString::from(PASSWORD.to_string()),
            AccountScope::Organization(empty.id),
        )
        .await
        .expect("account");
    let token = c.sign_in("northwind", None).await;
    let page = c.get("/console", Some(&token)).await;
    assert_eq!(page.status, StatusCode::OK);
    assert!(page.body.contains("id=\"empty-state\""));
    assert!(page.body.contains("consentry tenants connect"));
    assert!(
        !page.body.contains("is invalid"),
        "no banner without invalid profiles"
    );
    let list = c.get("/console/profiles", Some(&token)).await;
    assert!(list.body.contains("There are no app profiles yet."));
    assert!(!list.body.contains("contoso.onmicrosoft.com"));
}

/// A multipart body for the wizard's form.
fn wizard_body(fields: &[(&str, &str)]) -> (String, String) {
    let boundary = "b0undary";
    let mut body = String::new();
    for (k, v) in fields {
        body.push_str(&format!(
            "--{boundary}\r\nContent-Disposition: form-data; name=\"{k}\"\r\n\r\n{v}\r\n"
        ));
    }
    body.push_str(&format!("--{boundary}--\r\n"));
    (format!("multipart/form-data; boundary={boundary}"), body)
}

async fn new_profile(c: &Console, app_type: &str) -> consentry_domain::AppProfile {
    c.state
        .svc
        .create_profile(
            NewProfile {
                tenant: TenantRef::Domain(
                    DomainName::parse("contoso.onmicrosoft.com").expect("domain"),
                ),
                app_type: app_type.into(),
                service: None,
            },
            &Actor::Operator("test".into()),
        )
        .await
        .expect("profile")
}

/// The catalog's notes (e.g. where the Fly app's further permissions are described) are shown where the
/// admin chooses the consent method.
#[tokio::test]
async fn the_wizard_shows_the_catalogs_notes_on_the_app_type() {
    let c = console().await;
    let token = c.sign_in("ops", None).await;
    let fly = new_profile(&c, "fly").await;
    let w = c
        .get(
            &format!("/console/profiles/{}/reauthorize", fly.id),
            Some(&token),
        )
        .await;
    assert_eq!(w.status, StatusCode::OK);
    assert!(w.body.contains("id=\"app-notes\""), "{}", w.body);
    assert!(
        w.body.contains(
            "Further permissions of the consenting account: see Fly App Profile Permissions."
        ),
        "{}",
        w.body
    );
    // An app type without notes shows none.
    let w = c
        .get(
            &format!("/console/profiles/{}/reauthorize", c.profile),
            Some(&token),
        )
        .await;
    assert!(
        w.body.contains("Cloud Backup for Microsoft 365 user guide"),
        "{}",
        w.body
    );
    let myhub = new_profile(&c, "myhub").await;
    let w = c
        .get(
            &format!("/console/profiles/{}/reauthorize", myhub.id),
            Some(&token),
        )
        .await;
    assert!(!w.body.contains("id=\"app-notes\""), "{}", w.body);
}

/// A Power Platform app type: the wizard offers what the profile will scan (not gated by the subscription's
/// modules; Contoso subscribes to Teams only), says what each choice needs, requires at least one, and the
/// profile detail shows what the profile scans.
#[tokio::test]
async fn the_wizard_offers_scan_targets_and_the_detail_shows_them() {
    let c = console().await;
    let token = c.sign_in("ops", None).await;
    let p = new_profile(&c, "insights-power-platform").await;
    let w = c
        .get(
            &format!("/console/profiles/{}/reauthorize", p.id),
            Some(&token),
        )
        .await;
    assert_eq!(w.status, StatusCode::OK);
    for key in [
        "environments",
        "connections",
        "power-apps",
        "solutions",
        "power-automate",
        "copilot-studio",
        "power-bi",
    ] {
        assert!(
            w.body
                .contains(&format!("name=\"scan_targets\" value=\"{key}\">")),
            "{key} offered and enabled: {}",
            w.body
        );
    }
    assert!(!w.body.contains("name=\"functions\""), "{}", w.body);
    assert!(
        w.body.contains(
            "When the profile scans Power BI: The consenting account needs: a Power BI license and Fabric Administrator."
        ),
        "{}",
        w.body
    );
    assert!(
        w.body.contains("When the profile scans Environments, Connections, Power Apps, Solutions, Power Automate, Copilot Studio: The consenting account needs: Power Platform Administrator."),
        "{}",
        w.body
    );

    // Nothing chosen: refused on the form, saying what to do.
    let (ct, body) = wizard_body(&[("csrf", &w.csrf()), ("method", "user")]);
    let req = Request::post(format!("/console/profiles/{}/reauthorize", p.id))
        .header(header::COOKIE, format!("consentry_session={token}"))
        .header(header::CONTENT_TYPE, ct)
        .body(Body::from(body))
        .expect("request");
    let a = c.send(req).await;
    assert_eq!(a.status, StatusCode::UNPROCESSABLE_ENTITY, "{}", a.body);
    assert!(a.body.contains("id=\"wizard-error\""));
    assert!(a.body.contains("at least one of"), "{}", a.body);

    // The profile detail shows what it scans, by name.
    let page = c
        .get(&format!("/console/profiles/{}", p.id), Some(&token))
        .await;
    assert!(
        page.body.contains("chosen at the next re-authorization"),
        "{}",
        page.body
    );
    let mut scanned = c.state.svc.profile(p.id).await.expect("profile");
    scanned.scan_targets = vec!["solutions".into(), "power-bi".into()];
    c.state
        .svc
        .store()
        .save_profile(&scanned, None)
        .await
        .expect("save");
    let page = c
        .get(&format!("/console/profiles/{}", p.id), Some(&token))
        .await;
    assert!(
        page.body
            .contains("<dd id=\"scan-targets\">Solutions, Power BI</dd>"),
        "{}",
        page.body
    );
    // The wizard starts from the profile's current choice.
    let w = c
        .get(
            &format!("/console/profiles/{}/reauthorize", p.id),
            Some(&token),
        )
        .await;
    assert!(w.body.contains("value=\"power-bi\" checked"), "{}", w.body);
    assert!(w.body.contains("value=\"environments\">"), "{}", w.body);
}

/// The console counts profiles up to `console_count_limit` per status: past it the banner, the
/// list's and the tenants' counts say "more than" the limit (`3+`) and a sentence says what that
/// means; under it every count is exact and no such sentence is shown.
#[tokio::test]
async fn counts_past_the_limit_say_more_than_the_limit() {
    let mut c = console().await;
    // The console's own profile and four more: five invalid ("not yet authorized") in Contoso.
    for _ in 0..4 {
        new_profile(&c, "insights-m365").await;
    }
    c.state.console.count_limit = 3;
    let token = c.sign_in("ops", None).await;

    let list = c.get("/console/profiles", Some(&token)).await;
    assert_eq!(list.status, StatusCode::OK);
    for want in [
        "More than 3 app profiles are invalid",
        "3+ Invalid",
        "0 Valid",
        "Counts stop at 3: \u{201c}3+\u{201d} means more than 3.",
    ] {
        assert!(list.body.contains(want), "{want:?} in {}", list.body);
    }
    let invalid = c
        .get("/console/profiles?status=invalid", Some(&token))
        .await;
    assert!(invalid.body.contains("3+ Invalid"), "{}", invalid.body);
    assert!(invalid.body.contains("id=\"counts-capped\""));
    let tenants = c.get("/console", Some(&token)).await;
    assert!(
        tenants
            .body
            .contains("<td data-label=\"App profiles\">3+</td>"),
        "{}",
        tenants.body
    );
    assert!(tenants.body.contains("id=\"counts-capped\""));

    // Under the limit: exact, no sentence.
    c.state.console.count_limit = 5;
    let list = c.get("/console/profiles", Some(&token)).await;
    assert!(
        list.body.contains("5 app profiles are invalid"),
        "{}",
        list.body
    );
    assert!(list.body.contains("5 Invalid"));
    assert!(!list.body.contains("counts-capped"));
    let tenants = c.get("/console", Some(&token)).await;
    assert!(
        tenants
            .body
            .contains("<td data-label=\"App profiles\">5</td>")
    );
    assert!(!tenants.body.contains("counts-capped"));
}

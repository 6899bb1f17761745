//! The pages Consentry serves outside the console's own (consent links, the callback's result pages)
//! and the answers that must not be stored: their CSP lets forms reach Consentry and the identity
//! platform only, they have no inline style or script, they carry `Cache-Control: no-store`, and the
//! request log does not hold a consent link's token. Also the console's answers to a path with a
//! trailing slash and to a wizard POST that is not multipart.

use std::io::Write as _;
use std::sync::{Arc, Mutex};

use axum::body::Body;
use axum::http::{HeaderMap, Request, StatusCode, header};
use consentry_domain::AccountScope;
use consentry_testkit::TestEnv;
use consentry_testkit::console::{self as kit};
use reqwest::Method;
use secrecy::SecretString;
use serde_json::json;

const CONTOSO: &str = "contoso.onmicrosoft.com";

fn csp(h: &HeaderMap) -> String {
    h.get(header::CONTENT_SECURITY_POLICY)
        .and_then(|v| v.to_str().ok())
        .expect("a CSP")
        .to_string()
}

fn assert_no_store(h: &HeaderMap, what: &str) {
    assert_eq!(
        h.get(header::CACHE_CONTROL).and_then(|v| v.to_str().ok()),
        Some("no-store"),
        "{what}: {h:?}"
    );
    assert_eq!(
        h.get(header::PRAGMA).and_then(|v| v.to_str().ok()),
        Some("no-cache"),
        "{what}"
    );
}

/// The sim's origin, as a CSP source (`https://127.0.0.1:<port>`).
fn authority_origin(env: &TestEnv) -> String {
    url::Url::parse(&env.sim.authority())
        .expect("authority URL")
        .origin()
        .ascii_serialization()
}

/// A consent link to a fresh Cloud Backup Express profile, made through the API (operator token).
async fn link(env: &TestEnv) -> (String, String) {
    let id = env.profile("cloud-backup-express", None).await;
    let (s, started) = env
        .start_reauth(&id, json!({"method": "admin", "handoff": true}))
        .await;
    assert_eq!(s, StatusCode::OK, "{started}");
    let url = started["url"].as_str().expect("url").to_string();
    let path = url.strip_prefix(&env.base).expect("own link").to_string();
    (id, path)
}

#[tokio::test]
async fn the_consent_link_page_names_who_asked_and_may_post_to_microsoft() {
    let env = TestEnv::start().await;
    let org = env.connect_contoso(&[]).await;
    let (_, path) = link(&env).await;
    let page = kit::get(&env.state, &path, None).await;
    assert_eq!(page.status, StatusCode::OK, "{}", page.body);

    // Chromium applies form-action to the redirect after "Continue to Microsoft".
    let csp = csp(&page.headers);
    assert!(
        csp.contains(&format!("form-action 'self' {};", authority_origin(&env))),
        "{csp}"
    );
    assert!(csp.contains("style-src 'self'"), "{csp}");
    assert!(
        !csp.contains("unsafe-inline") && !csp.contains("'none'; form"),
        "{csp}"
    );
    assert!(
        !page.body.contains("<style")
            && !page.body.contains("style=\"")
            && !page.body.contains("<script"),
        "no inline style or script: {}",
        page.body
    );
    assert!(page.body.contains("href=\"/console/static/console.css\""));
    assert_no_store(&page.headers, "consent link page");

    // Who asked: the organization and, here, the platform operator's API token.
    let (_, o) = env
        .api(Method::GET, &format!("/api/v1/organizations/{org}"), None)
        .await;
    let org_name = o["name"].as_str().expect("org name");
    assert!(page.body.contains(org_name), "{}", page.body);
    assert!(
        page.body
            .contains("the Consentry platform operator asks an administrator of"),
        "{}",
        page.body
    );
    assert!(!page.body.contains(">api asks"), "{}", page.body);

    // A link made by a console account's personal access token names the account.
    let account = env
        .state
        .console
        .accounts
        .create(
            "dana",
            &SecretString::from("a-long-password-for-dana".to_string()),
            AccountScope::Organization(org.parse().expect("org id")),
        )
        .await
        .expect("account");
    let (_, pat) = env
        .state
        .console
        .accounts
        .create_token(&account, "links", time::Duration::days(1))
        .await
        .expect("token");
    let id = env.profile("insights-m365", None).await;
    let started: serde_json::Value = env
        .http
        .post(format!("{}/api/v1/profiles/{id}/reauthorize", env.base))
        .bearer_auth(secrecy::ExposeSecret::expose_secret(&pat))
        .json(&json!({"method": "admin", "handoff": true}))
        .send()
        .await
        .expect("start")
        .json()
        .await
        .expect("json");
    let url = started["url"].as_str().expect("url");
    let page = kit::get(&env.state, url.strip_prefix(&env.base).expect("own"), None).await;
    assert!(
        page.body
            .contains("dana (through the Consentry API) asks an administrator"),
        "{}",
        page.body
    );

    // A vendor app whose Entra name the catalog does not give is named by its app type, not called
    // the customer's own custom app, and no note meant for the catalog's authors is shown.
    let id = env.profile("m365-all", Some("cloud-backup-m365")).await;
    let (_, started) = env
        .start_reauth(&id, json!({"method": "admin", "handoff": true}))
        .await;
    let url = started["url"].as_str().expect("url");
    let page = kit::get(&env.state, url.strip_prefix(&env.base).expect("own"), None).await;
    assert!(
        page.body
            .contains("the app <strong>Microsoft 365 (All permissions)</strong>"),
        "{}",
        page.body
    );
    assert!(
        !page.body.contains("custom app") && !page.body.contains("reference document"),
        "{}",
        page.body
    );

    // Continue: the redirect goes to the authority, whose origin the CSP allows.
    let go = kit::post(&env.state, &path, "", &[]).await;
    assert_eq!(go.status, StatusCode::SEE_OTHER, "{}", go.body);
    assert!(
        go.location().starts_with(&authority_origin(&env)),
        "{}",
        go.location()
    );
    assert_no_store(&go.headers, "consent link continue");

    // A used link's error page is a page of its own with the same headers.
    let used = kit::get(&env.state, &path, None).await;
    assert_eq!(used.status, StatusCode::BAD_REQUEST);
    assert_no_store(&used.headers, "consent link error");
    assert!(csp_ok(&used.headers));
}

fn csp_ok(h: &HeaderMap) -> bool {
    let c = csp(h);
    c.contains("style-src 'self'")
        && !c.contains("unsafe-inline")
        && c.contains("form-action 'self'")
}

#[tokio::test]
async fn the_callbacks_result_pages_have_the_page_csp_and_are_not_stored() {
    let env = TestEnv::start().await;
    for path in [
        "/oauth/callback?state=a&state=b",
        "/oauth/callback?state=unknown-state&code=x",
    ] {
        let page = kit::get(&env.state, path, None).await;
        assert!(page.body.contains("id=\"result\""), "{}", page.body);
        assert!(csp_ok(&page.headers), "{path}: {}", csp(&page.headers));
        assert_no_store(&page.headers, path);
        assert!(!page.body.contains("<style") && !page.body.contains("style=\""));
    }
}

#[tokio::test]
async fn tokens_keys_and_webhook_secrets_are_answered_with_no_store() {
    let env = TestEnv::start().await;
    let org = env.connect_contoso(&[]).await;

    // A new service API key (shown once).
    let res = env
        .http
        .post(format!("{}/api/v1/organizations/{org}/keys", env.base))
        .bearer_auth(&env.token)
        .json(&json!({"name": "backup"}))
        .send()
        .await
        .expect("create key");
    assert_eq!(res.status(), StatusCode::CREATED);
    assert_no_store(res.headers(), "new API key");
    let key = res.json::<serde_json::Value>().await.expect("json")["key"]
        .as_str()
        .expect("key")
        .to_string();

    // The token API, refusals included (RFC 6749 §5.1, §5.2).
    for bearer in [key.as_str(), "csk_wrong"] {
        let res = env
            .http
            .post(format!("{}/api/v1/tenants/{CONTOSO}/tokens", env.base))
            .bearer_auth(bearer)
            .json(&json!({"app_type": "m365-all"}))
            .send()
            .await
            .expect("token API");
        assert_no_store(res.headers(), &format!("token API ({})", res.status()));
    }

    // A new webhook's secret (shown once).
    let res = env
        .http
        .post(format!("{}/api/v1/organizations/{org}/webhooks", env.base))
        .bearer_auth(&env.token)
        .json(&json!({"url": "https://127.0.0.1:9/hook"}))
        .send()
        .await
        .expect("create webhook");
    assert_eq!(res.status(), StatusCode::CREATED);
    assert_no_store(res.headers(), "new webhook");

    // A new personal access token on the console's page (shown once).
    env.state
        .console
        .accounts
        .create(
            "erin",
            &SecretString::from("a-long-password-for-erin".to_string()),
            AccountScope::Platform,
        )
        .await
        .expect("account");
    let session = kit::sign_in(&env.state, "erin", "a-long-password-for-erin", None).await;
    let page = kit::get(&env.state, "/console/tokens", Some(&session)).await;
    let made = kit::post(
        &env.state,
        "/console/tokens",
        &format!("consentry_session={session}"),
        &[("csrf", &page.csrf()), ("name", "report"), ("days", "7")],
    )
    .await;
    assert_eq!(made.status, StatusCode::CREATED, "{}", made.body);
    assert!(made.body.contains("cpt_"));
    assert_no_store(&made.headers, "new personal access token");
}

/// A `tracing` writer into a shared buffer.
#[derive(Clone, Default)]
struct Buffer(Arc<Mutex<Vec<u8>>>);

impl std::io::Write for Buffer {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.0.lock().expect("buffer").write(buf)
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

#[tokio::test]
async fn the_request_log_does_not_hold_a_consent_links_token() {
    let env = TestEnv::start().await;
    env.connect_contoso(&[]).await;
    let (id, path) = link(&env).await;
    let token = path.rsplit('/').next().expect("token").to_string();
    assert!(token.len() >= 20, "{path}");

    let buf = Buffer::default();
    let writer = buf.clone();
    let subscriber = tracing_subscriber::fmt()
        .with_max_level(tracing::Level::DEBUG)
        .with_ansi(false)
        .with_writer(move || writer.clone())
        .finish();
    {
        let _guard = tracing::subscriber::set_default(subscriber);
        // The current-thread runtime runs the in-memory router on this thread.
        let page = kit::get(&env.state, &path, None).await;
        assert_eq!(page.status, StatusCode::OK);
        let go = kit::post(&env.state, &path, "", &[]).await;
        assert_eq!(go.status, StatusCode::SEE_OTHER);
    }
    let log = String::from_utf8(buf.0.lock().expect("buffer").clone()).expect("utf-8");
    assert!(
        log.contains(&format!("http.path=/consent/{id}/[redacted]")),
        "the request is logged, without its token: {log}"
    );
    assert!(!log.contains(&token), "the token is in the log: {log}");
    let _ = std::io::stdout().flush();
}

#[tokio::test]
async fn console_paths_answer_console_pages_not_json() {
    let env = TestEnv::start().await;
    env.connect_contoso(&[]).await;
    let id = env.profile("insights-m365", None).await;

    // `/console/` (a trailing slash) leads to the console's home.
    let a = kit::get(&env.state, "/console/", None).await;
    assert_eq!(a.status, StatusCode::PERMANENT_REDIRECT, "{}", a.body);
    assert_eq!(a.location(), "/console");
    // Unknown console paths are the console's HTML 404.
    let a = kit::get(&env.state, "/console/no-such-page", None).await;
    assert_eq!(a.status, StatusCode::NOT_FOUND);
    assert!(a.body.contains("<h1>Page not found</h1>"), "{}", a.body);

    // A wizard POST that is not multipart: the console's error page, saying what to do.
    env.state
        .console
        .accounts
        .create(
            "fred",
            &SecretString::from("a-long-password-for-fred".to_string()),
            AccountScope::Platform,
        )
        .await
        .expect("account");
    let session = kit::sign_in(&env.state, "fred", "a-long-password-for-fred", None).await;
    let a = kit::post(
        &env.state,
        &format!("/console/profiles/{id}/reauthorize"),
        &format!("consentry_session={session}"),
        &[("method", "admin")],
    )
    .await;
    assert_eq!(a.status, StatusCode::BAD_REQUEST, "{}", a.body);
    assert!(
        a.headers[header::CONTENT_TYPE]
            .to_str()
            .unwrap_or_default()
            .starts_with("text/html"),
        "{:?}",
        a.headers
    );
    assert!(
        a.body.contains("must be sent as multipart/form-data"),
        "{}",
        a.body
    );
    assert!(a.body.contains("Check your input"), "{}", a.body);

    // Without a body type at all, the same page.
    let req = Request::post(format!("/console/profiles/{id}/reauthorize"))
        .header(header::COOKIE, format!("consentry_session={session}"))
        .body(Body::from("x"))
        .expect("request");
    let a = kit::send(&env.state, req).await;
    assert_eq!(a.status, StatusCode::BAD_REQUEST);
    assert!(a.body.contains("multipart/form-data"), "{}", a.body);
}

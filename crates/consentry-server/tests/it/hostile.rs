//! Hostile input against the API, the console, the OAuth callback and consent links: HTML and
//! script, SQL fragments, 100 kB strings, NUL and control characters, wrong JSON types, unknown
//! and malformed IDs, huge and malformed .pfx files, tampered and replayed callbacks, forged ID
//! tokens and callbacks from another browser. Each gets a 4xx with a specific message (never a
//! 500), nothing is echoed unescaped, and the data stays as it was. Also: the security headers
//! on every kind of response and the console's sign-in throttling.

use axum::body::Body;
use axum::http::{Request, StatusCode as AxStatus, header};
use base64::Engine as _;
use consentry_domain::{AccountScope, Accounts, HashCost, SessionPolicy};
use consentry_testkit::{Decision, PASSWORD, TestEnv};
use entra_sim::IdTokenFault;
use reqwest::{Method, StatusCode};
use serde_json::{Value, json};
use tower::ServiceExt as _;

const ADMIN: &str = "admin@contoso.onmicrosoft.com";
const SCRIPT: &str = "<script>alert(1)</script>";

fn hostile_strings() -> Vec<(&'static str, String)> {
    vec![
        ("html", format!("{SCRIPT}<img src=x onerror=alert(1)>")),
        ("sql", "x'); DROP TABLE organizations; --".into()),
        ("huge", "A".repeat(100 * 1024)),
        ("nul", "a\0b".into()),
        ("control", "line\u{1b}[31m\r\nbreak".into()),
    ]
}

/// A raw request to the running server.
async fn raw(
    env: &TestEnv,
    method: Method,
    path: &str,
    body: Option<&[u8]>,
) -> (StatusCode, String) {
    let mut rb = env
        .http
        .request(method, format!("{}{path}", env.base))
        .bearer_auth(&env.token);
    if let Some(b) = body {
        rb = rb
            .header("content-type", "application/json")
            .body(b.to_vec());
    }
    let r = rb.send().await.expect("request");
    (r.status(), r.text().await.expect("body"))
}

/// A 4xx with a JSON error body naming what was wrong (JSON answers are served as
/// `application/json` with `nosniff`, so quoted input in them is data, not markup).
fn assert_client_error(what: &str, s: StatusCode, body: &str) {
    assert!(s.is_client_error(), "{what}: {s} {body}");
    let v: Value =
        serde_json::from_str(body).unwrap_or_else(|_| panic!("{what}: not JSON: {body}"));
    assert!(
        v["error"]["message"]
            .as_str()
            .is_some_and(|m| !m.is_empty()),
        "{what}: {body}"
    );
    assert!(!body.to_lowercase().contains("internal"), "{what}: {body}");
}

#[tokio::test]
async fn api_text_fields_ids_types_and_sizes() {
    let env = TestEnv::start().await;
    let org = env.connect_contoso(&["teams"]).await;
    let profile = env.profile("insights-m365", None).await;
    let (_, before) = env.api(Method::GET, "/api/v1/organizations", None).await;
    let profile_before = env.get_profile(&profile).await;

    for (kind, value) in hostile_strings() {
        // Organization names: markup and SQL are names like any other (stored verbatim, always
        // escaped on output); oversized and control characters are refused by field.
        let (s, v) = env
            .api(
                Method::POST,
                "/api/v1/organizations",
                Some(json!({"name": value, "modules": []})),
            )
            .await;
        match kind {
            "html" | "sql" => {
                assert_eq!(s, StatusCode::CREATED, "{kind}: {v}");
                assert_eq!(v["name"], value.as_str(), "{kind}");
            }
            _ => {
                assert_client_error(kind, s, &v.to_string());
                assert!(v.to_string().contains("name"), "{kind}: {v}");
            }
        }
        // Tenants: the domain and the tenant ID are parsed.
        let (s, v) = env
            .api(
                Method::POST,
                "/api/v1/tenants",
                Some(json!({"org_id": org, "tenant_id": value, "primary_domain": value})),
            )
            .await;
        assert_client_error(kind, s, &v.to_string());
        // Profile creation: unknown app types and tenants.
        let (s, v) = env
            .api(
                Method::POST,
                "/api/v1/profiles",
                Some(json!({"tenant": value, "app_type": value})),
            )
            .await;
        assert_client_error(kind, s, &v.to_string());
        // Webhook URLs.
        let (s, v) = env
            .api(
                Method::POST,
                &format!("/api/v1/organizations/{org}/webhooks"),
                Some(json!({"url": value})),
            )
            .await;
        assert_client_error(kind, s, &v.to_string());
        assert!(v.to_string().contains("url"), "{kind}: {v}");
        // Search strings and filters (the 100 kB one stays under the URL limit at 8 kB).
        let q: String = value.chars().take(8 * 1024).collect();
        let query = url::form_urlencoded::Serializer::new(String::new())
            .append_pair("q", &q)
            .finish();
        let (s, body) = raw(
            &env,
            Method::GET,
            &format!("/api/v1/profiles?{query}"),
            None,
        )
        .await;
        match kind {
            "html" | "sql" => assert_eq!(s, StatusCode::OK, "{kind}: {body}"),
            _ => {
                assert_client_error(kind, s, &body);
                assert!(body.contains("search"), "{kind}: {body}");
            }
        }
        // IDs in paths.
        let path = format!(
            "/api/v1/profiles/{}",
            url::form_urlencoded::byte_serialize(q.as_bytes()).collect::<String>()
        );
        let (s, body) = raw(&env, Method::GET, &path, None).await;
        assert_client_error(kind, s, &body);
    }

    // Wrong JSON types, malformed JSON, unknown fields.
    for body in [
        &br#"{"name": 5, "modules": []}"#[..],
        br#"{"name": ["a"], "modules": "teams"}"#,
        br#"{"name": "a", "modules": [], "admin": true}"#,
        br#"{"name": "#,
        b"\x00\x01",
    ] {
        let (s, text) = raw(&env, Method::POST, "/api/v1/organizations", Some(body)).await;
        assert_client_error("json", s, &text);
    }
    // Unknown and malformed IDs.
    let unknown = uuid::Uuid::new_v4();
    let (s, text) = raw(
        &env,
        Method::GET,
        &format!("/api/v1/profiles/{unknown}"),
        None,
    )
    .await;
    assert_eq!(s, StatusCode::NOT_FOUND, "{text}");
    let (s, text) = raw(&env, Method::GET, "/api/v1/profiles/..%2F..%2Fetc", None).await;
    assert_client_error("path", s, &text);
    // Page sizes.
    let (s, text) = raw(&env, Method::GET, "/api/v1/profiles?limit=100000", None).await;
    assert_client_error("limit", s, &text);
    assert!(text.contains("limit"), "{text}");
    let (s, text) = raw(&env, Method::GET, "/api/v1/profiles?limit=-1", None).await;
    assert_client_error("limit", s, &text);
    // A request body over the limit.
    let big = vec![b' '; 2 * 1024 * 1024];
    let (s, text) = raw(&env, Method::POST, "/api/v1/organizations", Some(&big)).await;
    assert_eq!(s, StatusCode::PAYLOAD_TOO_LARGE, "{text}");

    // .pfx uploads: malformed, random and huge.
    let b64 = base64::engine::general_purpose::STANDARD;
    for (what, pfx) in [
        ("garbage", b64.encode(b"not a pfx at all")),
        ("random", b64.encode([0x30u8; 3000])),
        ("not base64", "%%%".to_string()),
        ("huge", b64.encode(vec![0u8; 600 * 1024])),
    ] {
        let id = env
            .profile("custom-azure-app", Some("cloud-backup-m365"))
            .await;
        let fresh = env.get_profile(&id).await;
        let (s, v) = env
            .start_reauth(
                &id,
                json!({"method": "admin", "application_id": consentry_testkit::CUSTOM_APP_ID,
                       "certificate_pfx_base64": pfx, "certificate_password": "x"}),
            )
            .await;
        assert_client_error(what, s, &v.to_string());
        assert_eq!(env.get_profile(&id).await, fresh, "{what}");
    }

    // Nothing else changed: exactly the two accepted organizations were added and the profile
    // is untouched.
    let (_, after) = env.api(Method::GET, "/api/v1/organizations", None).await;
    let count = |v: &Value| v["items"].as_array().or(v.as_array()).map_or(0, Vec::len);
    assert_eq!(count(&after), count(&before) + 2, "{after}");
    assert_eq!(env.get_profile(&profile).await, profile_before);
}

#[tokio::test]
async fn every_response_carries_the_security_headers() {
    let env = TestEnv::start().await;
    for path in [
        "/api/v1/organizations",
        "/api/v1/nope",
        "/console/login",
        "/oauth/callback?state=nope",
        "/consent/not-an-id/x",
        "/healthz",
    ] {
        let r = env
            .http
            .get(format!("{}{path}", env.base))
            .bearer_auth(&env.token)
            .send()
            .await
            .unwrap();
        let h = r.headers();
        let csp = h["content-security-policy"].to_str().unwrap();
        assert!(csp.contains("frame-ancestors 'none'"), "{path}: {csp}");
        assert!(!csp.contains("unsafe-inline"), "{path}: {csp}");
        assert_eq!(h["x-content-type-options"], "nosniff", "{path}");
        assert_eq!(h["referrer-policy"], "no-referrer", "{path}");
        // Served over plain http here: no HSTS (it is sent when the public URL is https).
        assert!(h.get("strict-transport-security").is_none(), "{path}");
    }
}

#[tokio::test]
async fn hsts_and_secure_cookies_when_the_public_url_is_https() {
    let dir = tempfile::tempdir().unwrap();
    let cfg = consentry_server::Config::load(
        None,
        vec![
            (
                "CONSENTRY_DATA_DIR".into(),
                dir.path().display().to_string(),
            ),
            (
                "CONSENTRY_API_TOKEN".into(),
                "hostile-test-token-0123456789".into(),
            ),
            (
                "CONSENTRY_PUBLIC_URL".into(),
                "https://consentry.example.com".into(),
            ),
        ],
    )
    .unwrap();
    let state = consentry_server::build_state(&cfg).await.unwrap();
    let res = consentry_server::router(state)
        .oneshot(Request::get("/console/login").body(Body::empty()).unwrap())
        .await
        .unwrap();
    assert!(
        res.headers()["strict-transport-security"]
            .to_str()
            .unwrap()
            .contains("max-age=")
    );
    let cookie = res.headers()[header::SET_COOKIE].to_str().unwrap();
    assert!(
        cookie.contains("Secure") && cookie.contains("HttpOnly"),
        "{cookie}"
    );
}

#[tokio::test]
async fn tampered_replayed_and_hostile_callbacks() {
    let env = TestEnv::start().await;
    env.connect_contoso(&[]).await;
    let id = env.profile("insights-m365", None).await;
    let get = |q: String| {
        let http = env.http.clone();
        let url = format!("{}/oauth/callback?{q}", env.base);
        async move {
            let r = http.get(url).send().await.unwrap();
            (r.status(), r.text().await.unwrap())
        }
    };
    // Unknown state, hostile markup in every parameter, repeated and NUL-bearing parameters.
    let hostile = url::form_urlencoded::byte_serialize(SCRIPT.as_bytes()).collect::<String>();
    for (q, expect) in [
        (
            "state=unknown&code=abc".to_string(),
            "unknown or was already used",
        ),
        (
            format!("state={hostile}&code={hostile}&error={hostile}&error_description={hostile}"),
            "unknown or was already used",
        ),
        ("state=a&state=b".to_string(), "more than once"),
        ("state=a%00&code=b".to_string(), "control characters"),
        (String::new(), "no valid state"),
        (format!("state={}", "a".repeat(20_000)), "longer than"),
    ] {
        let (s, body) = get(q.clone()).await;
        assert_eq!(s, StatusCode::BAD_REQUEST, "{q}: {body}");
        assert!(body.contains(expect), "{q}: {body}");
        assert!(!body.contains(SCRIPT), "{q}: markup echoed");
    }

    // A completed callback replayed: refused, the profile keeps its new authorization.
    let (s, started) = env.start_reauth(&id, json!({"method": "admin"})).await;
    assert_eq!(s, StatusCode::OK, "{started}");
    let browser = env.browser(None);
    let back = browser
        .at_microsoft(
            started["url"].as_str().unwrap(),
            ADMIN,
            PASSWORD,
            Decision::Accept { org_wide: true },
        )
        .await;
    let callback = back.location.clone().expect("redirect to the callback");
    let done = browser
        .complete(
            &callback,
            ADMIN,
            PASSWORD,
            Decision::Accept { org_wide: true },
        )
        .await;
    assert!(done.body.contains("re-authorized"), "{}", done.body);
    let valid = env.get_profile(&id).await;
    let replay = browser.get(&callback).await;
    assert_eq!(replay.status, 400, "{}", replay.body);
    assert!(replay.body.contains("already used"), "{}", replay.body);
    let after = env.get_profile(&id).await;
    assert_eq!(after["status"], valid["status"]);
    assert_eq!(after["consent_user"], valid["consent_user"]);
}

/// Signs in through Microsoft (entra-sim) with an ID-token defect and returns the result page.
async fn reauthorize_with_fault(env: &TestEnv, id: &str, fault: IdTokenFault) -> String {
    env.sim.control().set_id_token_fault(Some(fault)).unwrap();
    let page = env
        .reauthorize_as(
            id,
            json!({"method": "user"}),
            ADMIN,
            None,
            Decision::Accept { org_wide: true },
        )
        .await;
    env.sim.control().set_id_token_fault(None).unwrap();
    page.body
}

#[tokio::test]
async fn forged_and_mismatched_id_tokens_leave_the_profile_as_it_was() {
    let env = TestEnv::start().await;
    env.connect_contoso(&[]).await;
    let id = env.profile("insights-m365", None).await;
    env.authorize(&id, json!({"method": "admin"}), ADMIN, None)
        .await;
    let before = env.get_profile(&id).await;
    assert_eq!(before["status"], "valid", "{before}");
    for (fault, reason) in [
        (IdTokenFault::ForeignKey, "signature does not verify"),
        (IdTokenFault::UnknownKid, "does not publish"),
        (IdTokenFault::WrongAudience, "not for this app"),
        (IdTokenFault::WrongIssuer, "not by"),
        (IdTokenFault::Expired, "expired at"),
        (IdTokenFault::WrongNonce, "nonce mismatch"),
        (IdTokenFault::NoNonce, "nonce mismatch"),
    ] {
        let body = reauthorize_with_fault(&env, &id, fault).await;
        assert!(body.contains("did not complete"), "{fault:?}: {body}");
        assert!(body.contains(reason), "{fault:?}: {body}");
        let after = env.get_profile(&id).await;
        assert_eq!(after["status"], before["status"], "{fault:?}");
        assert_eq!(after["consent_user"], before["consent_user"], "{fault:?}");
    }
    let (_, h) = env
        .api(Method::GET, &format!("/api/v1/profiles/{id}/history"), None)
        .await;
    assert!(!h.to_string().contains("completed\",\"upn\":null"), "{h}");
}

#[tokio::test]
async fn a_callback_from_another_browser_is_refused_and_the_right_one_still_works() {
    let env = TestEnv::start().await;
    env.connect_contoso(&[]).await;
    let id = env.profile("insights-m365", None).await;
    let (_, started) = env
        .start_reauth(&id, json!({"method": "admin", "handoff": true}))
        .await;
    let link = started["url"].as_str().unwrap().to_string();
    // The administrator opens the consent link: the sign-in is bound to this browser.
    let admin_browser = env.browser(None);
    let go = admin_browser.post(&link, &[]).await;
    let back = admin_browser
        .at_microsoft(
            go.location.as_deref().unwrap(),
            ADMIN,
            PASSWORD,
            Decision::Accept { org_wide: true },
        )
        .await;
    let callback = back.location.clone().expect("redirect to the callback");
    // The same callback URL in another browser (a stolen or injected state).
    let other = env.browser(None);
    let stolen = other.get(&callback).await;
    assert_eq!(stolen.status, 400, "{}", stolen.body);
    assert!(
        stolen.body.contains("start again from the same browser"),
        "{}",
        stolen.body
    );
    assert_eq!(env.get_profile(&id).await["status"], "pending");
    // The administrator's browser completes it.
    let page = admin_browser
        .complete(
            &callback,
            ADMIN,
            PASSWORD,
            Decision::Accept { org_wide: true },
        )
        .await;
    assert!(page.body.contains("re-authorized"), "{}", page.body);
    assert_eq!(env.get_profile(&id).await["status"], "valid");
}

#[tokio::test]
async fn console_sign_in_is_throttled_per_account_with_the_same_message() {
    let dir = tempfile::tempdir().unwrap();
    let cfg = consentry_server::Config::load(
        None,
        vec![
            (
                "CONSENTRY_DATA_DIR".into(),
                dir.path().display().to_string(),
            ),
            (
                "CONSENTRY_API_TOKEN".into(),
                "hostile-test-token-0123456789".into(),
            ),
        ],
    )
    .unwrap();
    let mut state = consentry_server::build_state(&cfg).await.unwrap();
    state.console.accounts = Accounts::new(
        state.svc.store().clone(),
        state.svc.clock().clone(),
        SessionPolicy::default(),
        HashCost::TestOnly,
    );
    let pw = secrecy::SecretString::from("right-password-1".to_string());
    state
        .console
        .accounts
        .create("ops", &pw, AccountScope::Platform)
        .await
        .unwrap();
    let app = consentry_server::router(state);
    let attempt = |password: &'static str| {
        let app = app.clone();
        async move {
            let body = format!("csrf=c&username=ops&password={password}");
            let res = app
                .oneshot(
                    Request::post("/console/login")
                        .header(header::CONTENT_TYPE, "application/x-www-form-urlencoded")
                        .header(header::COOKIE, "consentry_login=c")
                        .body(Body::from(body))
                        .unwrap(),
                )
                .await
                .unwrap();
            let retry = res.headers().get(header::RETRY_AFTER).cloned();
            let status = res.status();
            let bytes = axum::body::to_bytes(res.into_body(), 1 << 20)
                .await
                .unwrap();
            (status, retry, String::from_utf8_lossy(&bytes).into_owned())
        }
    };
    for _ in 0..5 {
        let (s, retry, body) = attempt("wrong").await;
        assert_eq!(s, AxStatus::UNAUTHORIZED);
        assert!(retry.is_none());
        assert!(body.contains("The user name or password is not correct."));
    }
    // Locked out: even the right password is refused, with the same message and a Retry-After.
    let (s, retry, body) = attempt("right-password-1").await;
    assert_eq!(s, AxStatus::TOO_MANY_REQUESTS, "{body}");
    assert!(body.contains("The user name or password is not correct."));
    let secs: u64 = retry
        .expect("Retry-After")
        .to_str()
        .unwrap()
        .parse()
        .unwrap();
    assert!((1..=30).contains(&secs), "{secs}");
}

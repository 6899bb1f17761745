//! The console's sign-in throttle through real servers on 127.0.0.1:0: behind a trusted proxy the
//! forwarded client address is throttled and audited (not the proxy's), an untrusted peer's
//! forwarding headers are ignored, a stranger's failures cannot lock an account out of a browser
//! that signed in to it before, and two servers on one database share the count.

use consentry_domain::{AccountScope, Accounts, HashCost, SessionPolicy};
use reqwest::StatusCode;
use reqwest::header;
use secrecy::SecretString;
use serde_json::json;

use crate::audit_api::{App, hidden, set_cookie, spawn_app_with};

const PASSWORD: &str = "console-password-1";

/// One sign-in attempt's answer: status, `Retry-After`, and the device cookie it set (`name=value`).
struct Answer {
    status: StatusCode,
    retry_after: Option<u64>,
    device: Option<String>,
}

impl App {
    /// Creates an organization and an admin account of it named `user`; returns the organization ID.
    async fn org_with_account(&self, org: &str, user: &str) -> String {
        let (s, o) = self
            .api(
                reqwest::Method::POST,
                "/organizations",
                Some(json!({"name": org})),
            )
            .await;
        assert_eq!(s, StatusCode::CREATED, "{o}");
        let id = o["id"].as_str().unwrap().to_string();
        let accounts = Accounts::new(
            self.state.svc.store().clone(),
            self.state.svc.clock().clone(),
            SessionPolicy::default(),
            HashCost::TestOnly,
        );
        accounts
            .create(
                user,
                &SecretString::from(PASSWORD.to_string()),
                AccountScope::Organization(consentry_domain::OrgId::parse(&id).unwrap()),
            )
            .await
            .unwrap();
        id
    }

    /// Posts the sign-in form as a browser sending `forwarded_for` in `X-Forwarded-For` and holding
    /// the device cookie `device` (`name=value`).
    async fn attempt(
        &self,
        user: &str,
        password: &str,
        forwarded_for: Option<&str>,
        device: Option<&str>,
    ) -> Answer {
        let page = self.raw_get("/console/login", None).await;
        let login = set_cookie(&page, "consentry_login").unwrap();
        let csrf = hidden(&page.text().await.unwrap(), "csrf");
        let cookies = match device {
            Some(d) => format!("{login}; {d}"),
            None => login,
        };
        let mut rb = self
            .http
            .post(format!("{}/console/login", self.base))
            .header(header::COOKIE, cookies)
            .form(&[
                ("csrf", csrf.as_str()),
                ("username", user),
                ("password", password),
            ]);
        if let Some(f) = forwarded_for {
            rb = rb.header("x-forwarded-for", f);
        }
        let resp = rb.send().await.unwrap();
        Answer {
            status: resp.status(),
            retry_after: resp
                .headers()
                .get(header::RETRY_AFTER)
                .and_then(|v| v.to_str().ok()?.parse().ok()),
            device: set_cookie(&resp, "consentry_device"),
        }
    }

    /// The IP addresses of the organization's audit entries of `action`, oldest first.
    async fn audited_ips(&self, org: &str, action: &str) -> Vec<String> {
        let (s, log) = self
            .api(
                reqwest::Method::GET,
                &format!("/organizations/{org}/audit?limit=200"),
                None,
            )
            .await;
        assert_eq!(s, StatusCode::OK, "{log}");
        let mut ips: Vec<String> = log["entries"]
            .as_array()
            .unwrap()
            .iter()
            .filter(|e| e["action"] == action)
            .map(|e| e["detail"]["ip"].as_str().unwrap_or("").to_string())
            .collect();
        ips.reverse();
        ips
    }
}

fn trusting_loopback() -> Vec<(String, String)> {
    vec![(
        "CONSENTRY_NETWORK__TRUSTED_PROXIES".into(),
        "127.0.0.1, ::1".into(),
    )]
}

#[tokio::test]
async fn behind_a_trusted_proxy_each_client_is_throttled_and_audited_by_its_own_address() {
    let dir = tempfile::tempdir().unwrap();
    let app = spawn_app_with(dir.path(), trusting_loopback()).await;
    let org = app.org_with_account("Proxy Org", "carol").await;
    app.org_with_account("Proxy Org 2", "dave").await;

    // A stranger at 203.0.113.66 fails five times as carol, then is locked out.
    for _ in 0..5 {
        let a = app
            .attempt("carol", "wrong", Some("198.51.100.1, 203.0.113.66"), None)
            .await;
        assert_eq!(a.status, StatusCode::UNAUTHORIZED);
    }
    let locked = app
        .attempt("carol", "wrong", Some("203.0.113.66"), None)
        .await;
    assert_eq!(locked.status, StatusCode::TOO_MANY_REQUESTS);
    assert!(locked.retry_after.is_some_and(|s| (1..=60).contains(&s)));

    // Every browser reaches Consentry through the same proxy (127.0.0.1), yet another client
    // signing in to another account is not locked out.
    let dave = app
        .attempt("dave", PASSWORD, Some("192.0.2.10"), None)
        .await;
    assert_eq!(dave.status, StatusCode::SEE_OTHER);
    // The stranger is locked out for other accounts too (per client address).
    let other = app
        .attempt("dave", PASSWORD, Some("203.0.113.66"), None)
        .await;
    assert_eq!(other.status, StatusCode::TOO_MANY_REQUESTS);

    // The audit log names the clients, not the proxy; the spoofed leftmost entry is ignored.
    let failed = app.audited_ips(&org, "sign_in_failed").await;
    assert_eq!(failed.len(), 5, "{failed:?}");
    assert!(failed.iter().all(|ip| ip == "203.0.113.66"), "{failed:?}");
}

#[tokio::test]
async fn an_untrusted_peer_cannot_choose_its_address() {
    let dir = tempfile::tempdir().unwrap();
    let app = spawn_app_with(dir.path(), Vec::new()).await;
    app.org_with_account("Direct Org", "erin").await;
    // Five failures, each claiming another forwarded address: all count against 127.0.0.1.
    for i in 0..5 {
        let a = app
            .attempt("someone", "wrong", Some(&format!("203.0.113.{i}")), None)
            .await;
        assert_eq!(a.status, StatusCode::UNAUTHORIZED);
    }
    let a = app
        .attempt("erin", PASSWORD, Some("192.0.2.77"), None)
        .await;
    assert_eq!(
        a.status,
        StatusCode::TOO_MANY_REQUESTS,
        "the peer is locked out whatever it forwards"
    );
}

#[tokio::test]
async fn a_stranger_cannot_lock_an_account_out_of_a_browser_that_signed_in_before() {
    let dir = tempfile::tempdir().unwrap();
    let app = spawn_app_with(dir.path(), trusting_loopback()).await;
    app.org_with_account("Device Org", "alice").await;
    // Alice signs in from her browser: it gets a device cookie.
    let first = app
        .attempt("alice", PASSWORD, Some("192.0.2.20"), None)
        .await;
    assert_eq!(first.status, StatusCode::SEE_OTHER);
    let device = first
        .device
        .expect("a device cookie after a successful sign-in");

    // Strangers from many addresses keep failing as alice.
    for i in 0..12 {
        let a = app
            .attempt("alice", "guess", Some(&format!("203.0.113.{i}")), None)
            .await;
        assert!(
            matches!(
                a.status,
                StatusCode::UNAUTHORIZED | StatusCode::TOO_MANY_REQUESTS
            ),
            "{:?}",
            a.status
        );
    }
    // The account is locked for unknown browsers, even with the right password …
    let unknown = app
        .attempt("alice", PASSWORD, Some("192.0.2.21"), None)
        .await;
    assert_eq!(unknown.status, StatusCode::TOO_MANY_REQUESTS);
    // … but Alice's own browser signs in, and keeps its device cookie.
    let known = app
        .attempt("alice", PASSWORD, Some("192.0.2.21"), Some(&device))
        .await;
    assert_eq!(known.status, StatusCode::SEE_OTHER);
    assert_eq!(known.device.as_deref(), Some(device.as_str()));

    // A device cookie is no skeleton key: wrong passwords from it are throttled on their own.
    for _ in 0..5 {
        let a = app
            .attempt("alice", "guess", Some("192.0.2.21"), Some(&device))
            .await;
        assert_eq!(a.status, StatusCode::UNAUTHORIZED);
    }
    let a = app
        .attempt("alice", PASSWORD, Some("192.0.2.21"), Some(&device))
        .await;
    assert_eq!(a.status, StatusCode::TOO_MANY_REQUESTS);
    // A device cookie of another account, or a made-up one, counts for nothing.
    let forged = app
        .attempt(
            "alice",
            PASSWORD,
            Some("192.0.2.22"),
            Some("consentry_device=AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA"),
        )
        .await;
    assert_eq!(forged.status, StatusCode::TOO_MANY_REQUESTS);
}

#[tokio::test]
async fn replicas_share_the_count() {
    let dir = tempfile::tempdir().unwrap();
    let one = spawn_app_with(dir.path(), trusting_loopback()).await;
    let two = spawn_app_with(dir.path(), trusting_loopback()).await;
    one.org_with_account("Replica Org", "frank").await;
    // Three failures on one replica and two on the other make five.
    for (i, app) in [&one, &two, &one, &two, &one].into_iter().enumerate() {
        let a = app
            .attempt("frank", "wrong", Some("203.0.113.50"), None)
            .await;
        assert_eq!(a.status, StatusCode::UNAUTHORIZED, "attempt {i}");
    }
    for app in [&one, &two] {
        let a = app
            .attempt("frank", PASSWORD, Some("203.0.113.51"), None)
            .await;
        assert_eq!(
            a.status,
            StatusCode::TOO_MANY_REQUESTS,
            "the account is locked on every replica"
        );
    }
}

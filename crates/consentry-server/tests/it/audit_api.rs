//! The audit log through a real server on 127.0.0.1:0: actions done through the JSON API and the
//! console land in the log (sign-ins with the peer's address, webhooks without their URL's secret
//! path), the organization's log pages and exports over the API and in the console, another
//! organization's log answers "not found" in the console, and the chain verifies afterwards.

use consentry_domain::{AccountScope, Accounts, HashCost, SessionPolicy};
use consentry_server::{AppState, Config};
use reqwest::StatusCode;
use reqwest::header;
use secrecy::SecretString;
use serde_json::{Value, json};

const TOKEN: &str = "test-operator-token-0123456789";
const PASSWORD: &str = "console-password-1";

pub(crate) struct App {
    pub(crate) base: String,
    pub(crate) state: AppState,
    pub(crate) http: reqwest::Client,
    _dir: Option<tempfile::TempDir>,
    shutdown: Option<tokio::sync::oneshot::Sender<()>>,
}

impl Drop for App {
    fn drop(&mut self) {
        if let Some(tx) = self.shutdown.take() {
            let _ = tx.send(());
        }
    }
}

async fn spawn_app() -> App {
    let dir = tempfile::tempdir().unwrap();
    let mut app = spawn_app_with(dir.path(), Vec::new()).await;
    app._dir = Some(dir);
    app
}

/// A server on 127.0.0.1:0 over the data folder `data_dir` (several servers on one folder share its
/// SQLite database, as replicas share one), with `extra` settings.
pub(crate) async fn spawn_app_with(
    data_dir: &std::path::Path,
    extra: Vec<(String, String)>,
) -> App {
    let mut vars = vec![
        (
            "CONSENTRY_DATA_DIR".to_string(),
            data_dir.display().to_string(),
        ),
        ("CONSENTRY_API_TOKEN".to_string(), TOKEN.to_string()),
    ];
    vars.extend(extra);
    let cfg = Config::load(None, vars).unwrap();
    let mut state = consentry_server::build_state(&cfg).await.unwrap();
    state.console.accounts = Accounts::new(
        state.svc.store().clone(),
        state.svc.clock().clone(),
        SessionPolicy::default(),
        HashCost::TestOnly,
    );
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let (tx, rx) = tokio::sync::oneshot::channel::<()>();
    tokio::spawn(consentry_server::serve(listener, state.clone(), async {
        let _ = rx.await;
    }));
    App {
        base: format!("http://{addr}"),
        state,
        http: reqwest::Client::builder()
            .redirect(reqwest::redirect::Policy::none())
            .build()
            .unwrap(),
        _dir: None,
        shutdown: Some(tx),
    }
}

impl App {
    pub(crate) async fn api(
        &self,
        method: reqwest::Method,
        path: &str,
        body: Option<Value>,
    ) -> (StatusCode, Value) {
        let mut rb = self
            .http
            .request(method, format!("{}/api/v1{path}", self.base))
            .bearer_auth(TOKEN);
        if let Some(b) = body {
            rb = rb.json(&b);
        }
        let resp = rb.send().await.unwrap();
        let status = resp.status();
        let text = resp.text().await.unwrap();
        (
            status,
            serde_json::from_str(&text).unwrap_or(Value::String(text)),
        )
    }

    pub(crate) async fn raw_get(&self, path: &str, cookie: Option<&str>) -> reqwest::Response {
        let mut rb = self.http.get(format!("{}{path}", self.base));
        if let Some(c) = cookie {
            rb = rb.header(header::COOKIE, c);
        }
        rb.send().await.unwrap()
    }

    /// Signs in to the console; returns the session cookie (`name=value`) or the refusal's status.
    async fn sign_in(&self, user: &str, password: &str) -> Result<String, StatusCode> {
        let page = self.raw_get("/console/login", None).await;
        let login = set_cookie(&page, "consentry_login").unwrap();
        let body = page.text().await.unwrap();
        let csrf = hidden(&body, "csrf");
        let resp = self
            .http
            .post(format!("{}/console/login", self.base))
            .header(header::COOKIE, &login)
            .form(&[
                ("csrf", csrf.as_str()),
                ("username", user),
                ("password", password),
            ])
            .send()
            .await
            .unwrap();
        match resp.status() {
            StatusCode::SEE_OTHER => Ok(set_cookie(&resp, "consentry_session").unwrap()),
            other => Err(other),
        }
    }
}

pub(crate) fn set_cookie(resp: &reqwest::Response, name: &str) -> Option<String> {
    resp.headers()
        .get_all(header::SET_COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .find(|c| c.starts_with(&format!("{name}=")))
        .and_then(|c| c.split(';').next())
        .map(str::to_string)
}

pub(crate) fn hidden(body: &str, name: &str) -> String {
    let marker = format!("name=\"{name}\" value=\"");
    let i = body.find(&marker).expect("a hidden field");
    let rest = &body[i + marker.len()..];
    rest[..rest.find('"').unwrap()].to_string()
}

fn actions(page: &Value) -> Vec<String> {
    page["entries"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["action"].as_str().unwrap().to_string())
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn api_and_console_actions_are_audited_paged_exported_and_scoped() {
    let app = spawn_app().await;
    let (s, org) = app
        .api(
            reqwest::Method::POST,
            "/organizations",
            Some(json!({"name": "Contoso"})),
        )
        .await;
    assert_eq!(s, StatusCode::CREATED, "{org}");
    let org_id = org["id"].as_str().unwrap().to_string();
    let (s, _) = app
        .api(
            reqwest::Method::PATCH,
            &format!("/organizations/{org_id}"),
            Some(json!({"modules": ["teams"]})),
        )
        .await;
    assert_eq!(s, StatusCode::OK);
    let (s, _) = app
        .api(
            reqwest::Method::POST,
            "/tenants",
            Some(
                json!({"org_id": org_id, "tenant_id": "11111111-2222-4333-8444-555555555555",
                        "primary_domain": "contoso.onmicrosoft.com", "cloud": "global"}),
            ),
        )
        .await;
    assert_eq!(s, StatusCode::CREATED);
    let (s, profile) = app
        .api(
            reqwest::Method::POST,
            "/profiles",
            Some(json!({"tenant": "contoso.onmicrosoft.com", "app_type": "cloud-backup-express"})),
        )
        .await;
    assert_eq!(s, StatusCode::CREATED, "{profile}");
    let profile_id = profile["id"].as_str().unwrap().to_string();
    let (s, hook) = app
        .api(
            reqwest::Method::POST,
            &format!("/organizations/{org_id}/webhooks"),
            Some(json!({"url": "https://hooks.example.com/services/T0/B0/PathSecret123"})),
        )
        .await;
    assert_eq!(s, StatusCode::CREATED);
    let hook_id = hook["webhook"]["id"].as_str().unwrap().to_string();
    let signing_secret = hook["secret"].as_str().unwrap().to_string();
    let (s, _) = app
        .api(
            reqwest::Method::DELETE,
            &format!("/organizations/{org_id}/webhooks/{hook_id}"),
            None,
        )
        .await;
    assert_eq!(s, StatusCode::NO_CONTENT);
    let (s, _) = app
        .api(
            reqwest::Method::DELETE,
            &format!("/profiles/{profile_id}"),
            None,
        )
        .await;
    assert_eq!(s, StatusCode::NO_CONTENT);

    // Paged, newest first.
    let (s, first) = app
        .api(
            reqwest::Method::GET,
            &format!("/organizations/{org_id}/audit?limit=4"),
            None,
        )
        .await;
    assert_eq!(s, StatusCode::OK, "{first}");
    assert_eq!(
        actions(&first),
        [
            "profile_deleted",
            "webhook_deleted",
            "webhook_created",
            "profile_created"
        ]
    );
    let before = first["next_before"].as_u64().unwrap();
    let (_, second) = app
        .api(
            reqwest::Method::GET,
            &format!("/organizations/{org_id}/audit?limit=4&before={before}"),
            None,
        )
        .await;
    assert_eq!(
        actions(&second),
        [
            "tenant_created",
            "organization_updated",
            "organization_created"
        ]
    );
    assert!(second["next_before"].is_null());
    let created = &first["entries"][2];
    assert_eq!(created["actor"]["name"], "api");
    assert_eq!(created["detail"]["host"], "hooks.example.com");
    let everything = serde_json::to_string(&[&first, &second]).unwrap();
    assert!(!everything.contains("PathSecret123") && !everything.contains(&signing_secret));

    // Exports.
    let resp = app
        .http
        .get(format!(
            "{}/api/v1/organizations/{org_id}/audit/export?format=csv",
            app.base
        ))
        .bearer_auth(TOKEN)
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), StatusCode::OK);
    assert!(
        resp.headers()[header::CONTENT_TYPE]
            .to_str()
            .unwrap()
            .starts_with("text/csv")
    );
    assert!(
        resp.headers()[header::CONTENT_DISPOSITION]
            .to_str()
            .unwrap()
            .contains(&format!("audit-{org_id}.csv"))
    );
    let csv = resp.text().await.unwrap();
    assert_eq!(csv.lines().count(), 8, "{csv}");
    let resp = app
        .http
        .get(format!(
            "{}/api/v1/organizations/{org_id}/audit/export?format=jsonl",
            app.base
        ))
        .bearer_auth(TOKEN)
        .send()
        .await
        .unwrap();
    let jsonl = resp.text().await.unwrap();
    let parsed: Vec<Value> = jsonl
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    assert_eq!(parsed.len(), 7);
    assert_eq!(parsed[0]["action"], "organization_created");
    let (s, err) = app
        .api(
            reqwest::Method::GET,
            &format!("/organizations/{org_id}/audit/export?format=xml"),
            None,
        )
        .await;
    assert_eq!(s, StatusCode::UNPROCESSABLE_ENTITY, "{err}");
    let (s, _) = app
        .api(
            reqwest::Method::GET,
            "/organizations/00000000-0000-4000-8000-000000000000/audit",
            None,
        )
        .await;
    assert_eq!(s, StatusCode::NOT_FOUND);
    let resp = app
        .http
        .get(format!("{}/api/v1/organizations/{org_id}/audit", app.base))
        .send()
        .await
        .unwrap();
    assert_eq!(
        resp.status(),
        StatusCode::UNAUTHORIZED,
        "the operator token is required"
    );

    // The console: sign-ins with the peer's address, the page, scoping, export, sign-out.
    let org = consentry_domain::OrgId::parse(&org_id).unwrap();
    let other = app
        .state
        .svc
        .create_organization("Fabrikam", &[])
        .await
        .unwrap();
    app.state
        .console
        .accounts
        .create(
            "alice",
            &SecretString::from(PASSWORD),
            AccountScope::Organization(org),
        )
        .await
        .unwrap();
    assert_eq!(
        app.sign_in("alice", "wrong-password-1").await,
        Err(StatusCode::UNAUTHORIZED)
    );
    let session = app.sign_in("alice", PASSWORD).await.unwrap();
    let (_, log) = app
        .api(
            reqwest::Method::GET,
            &format!("/organizations/{org_id}/audit?limit=2"),
            None,
        )
        .await;
    assert_eq!(actions(&log), ["sign_in", "sign_in_failed"]);
    assert_eq!(log["entries"][0]["detail"]["ip"], "127.0.0.1");
    assert_eq!(log["entries"][1]["detail"]["ip"], "127.0.0.1");
    assert_eq!(log["entries"][1]["target"], "account:alice");

    let resp = app.raw_get("/console/audit", Some(&session)).await;
    assert!(resp.status().is_redirection());
    assert_eq!(
        resp.headers()[header::LOCATION],
        format!("/console/organizations/{org_id}/audit").as_str()
    );
    let resp = app
        .raw_get(
            &format!("/console/organizations/{org_id}/audit"),
            Some(&session),
        )
        .await;
    assert_eq!(resp.status(), StatusCode::OK);
    let page = resp.text().await.unwrap();
    assert!(page.contains("Audit log of Contoso"), "{page}");
    assert!(page.contains("sign in failed") && page.contains("127.0.0.1"));
    assert!(page.contains("webhook created") && page.contains("console:alice"));
    assert!(page.contains(&format!(
        "/console/organizations/{org_id}/audit/export?format=csv"
    )));
    let resp = app
        .raw_get(
            &format!("/console/organizations/{}/audit", other.id),
            Some(&session),
        )
        .await;
    assert_eq!(
        resp.status(),
        StatusCode::NOT_FOUND,
        "another organization's log is not found"
    );
    let resp = app
        .raw_get(
            &format!(
                "/console/organizations/{}/audit/export?format=csv",
                other.id
            ),
            Some(&session),
        )
        .await;
    assert_eq!(resp.status(), StatusCode::NOT_FOUND);
    let resp = app
        .raw_get(
            &format!("/console/organizations/{org_id}/audit/export?format=csv"),
            Some(&session),
        )
        .await;
    assert_eq!(resp.status(), StatusCode::OK);
    assert!(resp.text().await.unwrap().contains("sign_in_failed"));
    let resp = app
        .raw_get(&format!("/console/organizations/{org_id}/audit"), None)
        .await;
    assert!(resp.status().is_redirection(), "the page needs a session");

    let home = app
        .raw_get("/console", Some(&session))
        .await
        .text()
        .await
        .unwrap();
    let csrf = hidden(&home, "csrf");
    let resp = app
        .http
        .post(format!("{}/console/logout", app.base))
        .header(header::COOKIE, &session)
        .form(&[("csrf", csrf.as_str())])
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), StatusCode::SEE_OTHER);
    let (_, log) = app
        .api(
            reqwest::Method::GET,
            &format!("/organizations/{org_id}/audit?limit=1"),
            None,
        )
        .await;
    assert_eq!(actions(&log), ["sign_out"]);

    let verified = app.state.svc.audit().verify().await.unwrap();
    assert_eq!(
        verified,
        Ok(10),
        "the whole chain verifies: 7 API actions, 2 sign-ins, 1 sign-out"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_viewer_is_told_that_only_an_administrator_reads_the_audit_log() {
    let app = spawn_app().await;
    let org = app
        .state
        .svc
        .create_organization("Contoso", &[])
        .await
        .unwrap();
    let accounts = &app.state.console.accounts;
    let viewer = accounts
        .create_with_role(
            "vera",
            &SecretString::from(PASSWORD),
            AccountScope::Organization(org.id),
            consentry_domain::Role::Viewer,
        )
        .await
        .unwrap();
    let (_, token) = accounts
        .create_token(&viewer, "audit", time::Duration::days(1))
        .await
        .unwrap();
    let want =
        "only an organization administrator (or the platform operator) may read the audit log";
    for path in [
        format!("/api/v1/organizations/{}/audit", org.id),
        format!("/api/v1/organizations/{}/audit/export?format=csv", org.id),
    ] {
        let resp = app
            .http
            .get(format!("{}{path}", app.base))
            .bearer_auth(secrecy::ExposeSecret::expose_secret(&token))
            .send()
            .await
            .unwrap();
        assert_eq!(resp.status(), StatusCode::FORBIDDEN, "{path}");
        let body: Value = resp.json().await.unwrap();
        let message = body["error"]["message"].as_str().unwrap_or_default();
        assert!(message.contains(want), "{path}: {body}");
        assert!(
            !message.contains("settings") && !message.contains("may only read"),
            "{path}: the refusal names the audit log, not the settings: {body}"
        );
    }
    let session = app.sign_in("vera", PASSWORD).await.unwrap();
    let resp = app
        .raw_get(
            &format!("/console/organizations/{}/audit", org.id),
            Some(&session),
        )
        .await;
    assert_eq!(resp.status(), StatusCode::FORBIDDEN);
    let page = resp.text().await.unwrap();
    assert!(page.contains(want), "{page}");
    assert!(!page.contains("settings"), "{page}");
}

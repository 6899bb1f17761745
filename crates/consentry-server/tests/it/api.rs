//! The JSON API end to end: a real server on 127.0.0.1:0 over a fresh SQLite database, driven by reqwest.

use consentry_server::Config;
use reqwest::StatusCode;
use serde_json::{Value, json};

struct App {
    base: String,
    token: String,
    http: reqwest::Client,
    _dir: tempfile::TempDir,
    shutdown: Option<tokio::sync::oneshot::Sender<()>>,
}

impl Drop for App {
    fn drop(&mut self) {
        if let Some(tx) = self.shutdown.take() {
            let _ = tx.send(());
        }
    }
}

const TOKEN: &str = "test-operator-token-0123456789";

async fn spawn_app() -> App {
    let dir = tempfile::tempdir().unwrap();
    let cfg = Config::load(
        None,
        vec![
            (
                "CONSENTRY_DATA_DIR".to_string(),
                dir.path().display().to_string(),
            ),
            ("CONSENTRY_API_TOKEN".to_string(), TOKEN.to_string()),
            ("CONSENTRY_MAX_BODY_BYTES".to_string(), "65536".to_string()),
        ],
    )
    .unwrap();
    let state = consentry_server::build_state(&cfg).await.unwrap();
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let (tx, rx) = tokio::sync::oneshot::channel::<()>();
    tokio::spawn(consentry_server::serve(listener, state, async {
        let _ = rx.await;
    }));
    App {
        base: format!("http://{addr}"),
        token: TOKEN.into(),
        http: reqwest::Client::new(),
        _dir: dir,
        shutdown: Some(tx),
    }
}

impl App {
    async fn call(
        &self,
        method: reqwest::Method,
        path: &str,
        body: Option<Value>,
    ) -> (StatusCode, Value) {
        let mut rb = self
            .http
            .request(method, format!("{}{path}", self.base))
            .bearer_auth(&self.token);
        if let Some(b) = body {
            rb = rb.json(&b);
        }
        let resp = rb.send().await.unwrap();
        let status = resp.status();
        let text = resp.text().await.unwrap();
        let v = if text.is_empty() {
            Value::Null
        } else {
            serde_json::from_str(&text).unwrap_or(Value::String(text))
        };
        (status, v)
    }
    async fn get(&self, path: &str) -> (StatusCode, Value) {
        self.call(reqwest::Method::GET, path, None).await
    }
    async fn post(&self, path: &str, body: Value) -> (StatusCode, Value) {
        self.call(reqwest::Method::POST, path, Some(body)).await
    }
    async fn delete(&self, path: &str) -> (StatusCode, Value) {
        self.call(reqwest::Method::DELETE, path, None).await
    }

    /// Creates an org and a tenant; returns (org id, tenant id).
    async fn org_and_tenant(&self, name: &str, tenant: &str, domain: &str) -> (String, String) {
        let (s, org) = self
            .post(
                "/api/v1/organizations",
                json!({"name": name, "modules": ["teams", "planner"]}),
            )
            .await;
        assert_eq!(s, StatusCode::CREATED, "{org}");
        let org_id = org["id"].as_str().unwrap().to_string();
        let (s, t) = self
            .post(
                "/api/v1/tenants",
                json!({"org_id": org_id, "tenant_id": tenant, "primary_domain": domain, "cloud": "global"}),
            )
            .await;
        assert_eq!(s, StatusCode::CREATED, "{t}");
        (org_id, t["id"].as_str().unwrap().to_string())
    }
}

const T1: &str = "11111111-2222-4333-8444-555555555555";
const T2: &str = "66666666-7777-4888-9999-aaaaaaaaaaaa";

#[tokio::test]
async fn health_and_authentication() {
    let app = spawn_app().await;
    let r = app
        .http
        .get(format!("{}/healthz", app.base))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::OK);
    assert_eq!(r.json::<Value>().await.unwrap()["status"], "ok");

    let r = app
        .http
        .get(format!("{}/api/v1/profiles", app.base))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::UNAUTHORIZED);
    let body: Value = r.json().await.unwrap();
    assert_eq!(body["error"]["code"], "unauthorized");
    assert!(
        body["error"]["message"]
            .as_str()
            .unwrap()
            .contains("Bearer")
    );

    let r = app
        .http
        .get(format!("{}/api/v1/profiles", app.base))
        .bearer_auth("wrong-token-wrong-token")
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::UNAUTHORIZED);

    let (s, v) = app.get("/api/v1/nope").await;
    assert_eq!(s, StatusCode::NOT_FOUND);
    assert_eq!(v["error"]["code"], "route_not_found");
}

#[tokio::test]
async fn catalog_is_served() {
    let app = spawn_app().await;
    let (s, v) = app.get("/api/v1/catalog").await;
    assert_eq!(s, StatusCode::OK);
    assert!(
        v["app_types"].as_array().unwrap().len() >= 27,
        "{}",
        v["app_types"]
    );
    let (s, v) = app
        .get("/api/v1/catalog/app-types/cloud-backup-delegated")
        .await;
    assert_eq!(s, StatusCode::OK);
    assert_eq!(v["functions"].as_array().unwrap().len(), 4);
    // The catalog's notes and a Power Platform app type's scan targets (with the rules scoped by them).
    let (s, v) = app.get("/api/v1/catalog/app-types/fly").await;
    assert_eq!(s, StatusCode::OK);
    assert!(
        v["notes"]
            .as_str()
            .unwrap()
            .contains("Fly App Profile Permissions"),
        "{v}"
    );
    let (_, v) = app
        .get("/api/v1/catalog/app-types/insights-power-platform")
        .await;
    assert_eq!(v["functions"], json!([]), "{v}");
    assert_eq!(v["scan_targets"].as_array().unwrap().len(), 7, "{v}");
    assert!(
        v["consent"]
            .as_array()
            .unwrap()
            .iter()
            .any(|r| r["method"] == "user" && r["scan_targets"] == json!(["power-bi"])),
        "{v}"
    );
    let (s, v) = app.get("/api/v1/catalog/app-types/no-such-type").await;
    assert_eq!(s, StatusCode::NOT_FOUND);
    assert_eq!(v["error"]["code"], "not_found");
}

#[tokio::test]
async fn organizations_and_tenants_with_clear_errors() {
    let app = spawn_app().await;
    let (org_id, tenant_id) = app
        .org_and_tenant("Contoso", T1, "contoso.onmicrosoft.com")
        .await;
    assert_eq!(tenant_id, T1);

    let (s, v) = app
        .post("/api/v1/organizations", json!({"name": "contoso"}))
        .await;
    assert_eq!(s, StatusCode::CONFLICT, "{v}");
    assert!(
        v["error"]["message"]
            .as_str()
            .unwrap()
            .contains("already exists")
    );

    let (s, v) = app
        .post(
            "/api/v1/organizations",
            json!({"name": "X", "modules": ["warp-drive"]}),
        )
        .await;
    assert_eq!(s, StatusCode::UNPROCESSABLE_ENTITY);
    assert_eq!(v["error"]["field"], "modules");
    assert!(
        v["error"]["message"].as_str().unwrap().contains("planner"),
        "{v}"
    );

    let (s, v) = app
        .post("/api/v1/organizations", json!({"name": "  "}))
        .await;
    assert_eq!(s, StatusCode::UNPROCESSABLE_ENTITY);
    assert_eq!(v["error"]["field"], "name");

    let (s, v) = app
        .post(
            "/api/v1/tenants",
            json!({"org_id": org_id, "tenant_id": "not-a-guid", "primary_domain": "x.example.com"}),
        )
        .await;
    assert_eq!(s, StatusCode::BAD_REQUEST);
    assert_eq!(v["error"]["field"], "tenant_id");
    assert!(v["error"]["message"].as_str().unwrap().contains("GUID"));

    let (s, _) = app
        .post(
            "/api/v1/tenants",
            json!({"org_id": org_id, "tenant_id": T1, "primary_domain": "other.onmicrosoft.com", "cloud": "global"}),
        )
        .await;
    assert_eq!(s, StatusCode::CONFLICT);

    let (s, v) = app
        .post(
            "/api/v1/tenants",
            json!({"org_id": "00000000-0000-4000-8000-000000000000", "tenant_id": T2, "primary_domain": "f.onmicrosoft.com"}),
        )
        .await;
    assert_eq!(s, StatusCode::NOT_FOUND, "{v}");

    let (s, v) = app.get("/api/v1/tenants/contoso.onmicrosoft.com").await;
    assert_eq!(s, StatusCode::OK);
    assert_eq!(v["id"], T1);
    let (s, v) = app.get(&format!("/api/v1/tenants?org={org_id}")).await;
    assert_eq!(s, StatusCode::OK);
    assert_eq!(v["items"].as_array().unwrap().len(), 1);

    // An organization with tenants cannot be deleted.
    let (s, v) = app.delete(&format!("/api/v1/organizations/{org_id}")).await;
    assert_eq!(s, StatusCode::CONFLICT, "{v}");
    let (s, _) = app.delete("/api/v1/tenants/contoso.onmicrosoft.com").await;
    assert_eq!(s, StatusCode::NO_CONTENT);
    let (s, _) = app.delete(&format!("/api/v1/organizations/{org_id}")).await;
    assert_eq!(s, StatusCode::NO_CONTENT);
    let (s, _) = app.get(&format!("/api/v1/organizations/{org_id}")).await;
    assert_eq!(s, StatusCode::NOT_FOUND);
}

#[tokio::test]
async fn malformed_requests_get_specific_errors() {
    let app = spawn_app().await;
    let r = app
        .http
        .post(format!("{}/api/v1/organizations", app.base))
        .bearer_auth(&app.token)
        .header("content-type", "application/json")
        .body("{not json")
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::BAD_REQUEST);
    let v: Value = r.json().await.unwrap();
    assert_eq!(v["error"]["code"], "bad_request");

    let (s, v) = app
        .post(
            "/api/v1/organizations",
            json!({"name": "A", "colour": "red"}),
        )
        .await;
    assert_eq!(s, StatusCode::BAD_REQUEST);
    assert!(
        v["error"]["message"].as_str().unwrap().contains("colour"),
        "{v}"
    );

    let (s, v) = app.get("/api/v1/profiles/12345").await;
    assert_eq!(s, StatusCode::BAD_REQUEST);
    assert_eq!(v["error"]["field"], "id");

    let (s, v) = app.get("/api/v1/profiles?status=broken").await;
    assert_eq!(s, StatusCode::BAD_REQUEST);
    assert!(v["error"]["message"].as_str().unwrap().contains("broken"));

    let (s, v) = app.get("/api/v1/profiles?limit=0").await;
    assert_eq!(s, StatusCode::UNPROCESSABLE_ENTITY, "{v}");
    let (s, v) = app.get("/api/v1/profiles?after=%%%garbage").await;
    assert!(
        s == StatusCode::UNPROCESSABLE_ENTITY || s == StatusCode::BAD_REQUEST,
        "{s} {v}"
    );

    let huge = "x".repeat(70_000);
    let (s, _) = app
        .post("/api/v1/organizations", json!({"name": huge}))
        .await;
    assert_eq!(s, StatusCode::PAYLOAD_TOO_LARGE);

    let html = "<img src=x onerror=alert(1)>";
    let (s, v) = app.get(&format!("/api/v1/tenants/{html}")).await;
    assert_eq!(s, StatusCode::BAD_REQUEST);
    assert_eq!(v["error"]["field"], "tenant");
}

#[tokio::test]
async fn profiles_lifecycle_filters_and_pagination() {
    let app = spawn_app().await;
    app.org_and_tenant("Contoso", T1, "contoso.onmicrosoft.com")
        .await;
    app.org_and_tenant("Fabrikam", T2, "fabrikam.onmicrosoft.com")
        .await;

    let (s, v) = app
        .post(
            "/api/v1/profiles",
            json!({"tenant": "contoso.onmicrosoft.com", "app_type": "no-such"}),
        )
        .await;
    assert_eq!(s, StatusCode::UNPROCESSABLE_ENTITY);
    assert_eq!(v["error"]["field"], "app_type");

    // viva-engage serves two services: the service must be named.
    let (s, v) = app
        .post(
            "/api/v1/profiles",
            json!({"tenant": T1, "app_type": "viva-engage"}),
        )
        .await;
    assert_eq!(s, StatusCode::UNPROCESSABLE_ENTITY);
    assert_eq!(v["error"]["field"], "service");
    let (s, v) = app
        .post(
            "/api/v1/profiles",
            json!({"tenant": T1, "app_type": "viva-engage", "service": "cloud-backup-m365"}),
        )
        .await;
    assert_eq!(s, StatusCode::CREATED, "{v}");
    assert_eq!(v["status"], "invalid");
    assert_eq!(v["reason_view"]["code"], "not_yet_authorized");
    assert!(
        !v["reason_view"]["remediation"]
            .as_array()
            .unwrap()
            .is_empty()
    );

    let mut ids = vec![v["id"].as_str().unwrap().to_string()];
    for (tenant, app_type, service) in [
        (T1, "insights-m365", None),
        (T1, "cloud-backup-delegated", None),
        (T1, "m365-all", Some("cloud-backup-m365")),
        (T2, "insights-m365", None),
        (T2, "custom-azure-app", Some("cloud-backup-m365")),
    ] {
        let (s, v) = app
            .post(
                "/api/v1/profiles",
                json!({"tenant": tenant, "app_type": app_type, "service": service}),
            )
            .await;
        assert_eq!(s, StatusCode::CREATED, "{v}");
        ids.push(v["id"].as_str().unwrap().to_string());
    }

    let (_, v) = app
        .get("/api/v1/profiles?tenant=contoso.onmicrosoft.com")
        .await;
    assert_eq!(v["items"].as_array().unwrap().len(), 4);
    let (_, v) = app.get("/api/v1/profiles?service=insights").await;
    assert_eq!(v["items"].as_array().unwrap().len(), 2);
    let (_, v) = app
        .get(&format!(
            "/api/v1/profiles?tenant={T2}&app_type=custom-azure-app"
        ))
        .await;
    assert_eq!(v["items"].as_array().unwrap().len(), 1);
    let (_, v) = app.get("/api/v1/profiles?status=valid").await;
    assert_eq!(v["items"].as_array().unwrap().len(), 0);
    let (_, v) = app.get("/api/v1/profiles?status=invalid,pending").await;
    assert_eq!(v["items"].as_array().unwrap().len(), 6);
    let (_, v) = app.get("/api/v1/profiles?q=DELEGATED").await;
    assert_eq!(v["items"].as_array().unwrap().len(), 1, "{v}");

    // Keyset pagination: pages of 4 cover all six with no duplicates.
    let mut seen = vec![];
    let mut after: Option<String> = None;
    loop {
        let path = match &after {
            Some(c) => format!("/api/v1/profiles?limit=4&after={c}"),
            None => "/api/v1/profiles?limit=4".to_string(),
        };
        let (s, v) = app.get(&path).await;
        assert_eq!(s, StatusCode::OK, "{v}");
        for it in v["items"].as_array().unwrap() {
            seen.push(it["id"].as_str().unwrap().to_string());
        }
        match v["next_cursor"].as_str() {
            Some(c) => after = Some(c.to_string()),
            None => break,
        }
    }
    seen.sort();
    let mut want = ids.clone();
    want.sort();
    assert_eq!(seen, want);

    let (s, v) = app
        .get(&format!("/api/v1/profiles/{}/history", ids[0]))
        .await;
    assert_eq!(s, StatusCode::OK);
    assert_eq!(v["items"][0]["kind"], "created");

    let (s, _) = app.delete(&format!("/api/v1/profiles/{}", ids[0])).await;
    assert_eq!(s, StatusCode::NO_CONTENT);
    let (s, v) = app.get(&format!("/api/v1/profiles/{}", ids[0])).await;
    assert_eq!(s, StatusCode::NOT_FOUND);
    assert!(v["error"]["message"].as_str().unwrap().contains(&ids[0]));
    let (s, _) = app.delete(&format!("/api/v1/profiles/{}", ids[0])).await;
    assert_eq!(s, StatusCode::NOT_FOUND);
}

#[tokio::test]
async fn error_bodies_never_echo_markup_unescaped() {
    let app = spawn_app().await;
    let html = "<img src=x onerror=alert(1)>";
    let (s, v) = app.get(&format!("/api/v1/profiles?status={html}")).await;
    assert_eq!(s, StatusCode::BAD_REQUEST);
    // JSON responses are not HTML, but the content type must say so.
    let r = app
        .http
        .get(format!("{}/api/v1/profiles?status=x", app.base))
        .bearer_auth(&app.token)
        .send()
        .await
        .unwrap();
    assert!(
        r.headers()["content-type"]
            .to_str()
            .unwrap()
            .starts_with("application/json")
    );
    assert!(v["error"]["message"].is_string());
}

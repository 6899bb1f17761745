//! The OpenAPI document against the server it describes: real answers of a running server (testkit,
//! entra-sim over loopback) — lists, details, a Graph token, error bodies — are validated with a JSON
//! Schema validator against the schemas the document gives for that route and status. The document's
//! component schemas are made strict for the check (`unevaluatedProperties: false`), so a field that the
//! code sends but the document does not name fails too. The document and the docs page are public.

use consentry_testkit::TestEnv;
use reqwest::{Method, StatusCode};
use serde_json::{Value, json};

const CONTOSO: &str = "contoso.onmicrosoft.com";
const ADMIN: &str = "admin@contoso.onmicrosoft.com";

/// The served document, made strict: every component schema that is an object (and is not a part of
/// another's `allOf`, where it shares the object with its siblings) allows no other property.
fn strict(doc: &Value) -> Value {
    let mut doc = doc.clone();
    let text = doc.to_string();
    let schemas = doc["components"]["schemas"]
        .as_object_mut()
        .expect("component schemas");
    for (name, schema) in schemas.iter_mut() {
        // A schema flattened into another (`allOf`) is checked as part of that one.
        let flattened = text.contains(&format!(
            "\"allOf\":[{{\"$ref\":\"#/components/schemas/{name}\""
        ));
        let is_object = schema.get("properties").is_some() || schema.get("allOf").is_some();
        if is_object && !flattened {
            schema["unevaluatedProperties"] = json!(false);
        }
    }
    doc
}

/// The schema the document gives for `method path` answering `status` (the path as a template).
fn response_schema(doc: &Value, method: &str, template: &str, status: StatusCode) -> Value {
    let op = &doc["paths"][template][method.to_lowercase()];
    assert!(op.is_object(), "{method} {template} is not in the document");
    let mut response = &op["responses"][status.as_str()];
    assert!(
        response.is_object(),
        "{method} {template} does not document {status}: {}",
        op["responses"]
    );
    if let Some(r) = response["$ref"].as_str() {
        let name = r.rsplit('/').next().expect("name");
        response = &doc["components"]["responses"][name];
    }
    response["content"]["application/json"]["schema"].clone()
}

struct Contract {
    env: TestEnv,
    doc: Value,
    strict: Value,
    checked: Vec<String>,
}

impl Contract {
    /// What the document finds wrong with `body` as the answer of `method template` with `status`.
    fn errors(
        &self,
        method: &str,
        template: &str,
        status: StatusCode,
        body: &Value,
    ) -> Vec<String> {
        let schema = response_schema(&self.doc, method, template, status);
        assert!(
            schema.is_object(),
            "{method} {template} {status} has no JSON schema"
        );
        // The whole document is the root, so that `#/components/...` references resolve.
        let mut root = self.strict.clone();
        root["allOf"] = json!([schema]);
        let validator = jsonschema::draft202012::new(&root).expect("a valid JSON Schema");
        validator
            .iter_errors(body)
            .map(|e| format!("{} at {}", e, e.instance_path()))
            .collect()
    }

    /// Validates one answer against the document.
    fn check(&mut self, method: &str, template: &str, status: StatusCode, body: &Value) {
        let errors = self.errors(method, template, status, body);
        assert!(
            errors.is_empty(),
            "{method} {template} answered {status} with a body the document does not describe:\n{}\nbody: {body:#}",
            errors.join("\n")
        );
        self.checked.push(format!("{method} {template} {status}"));
    }

    /// `GET path` (`template` in the document) with the operator token: 200, validated.
    async fn get(&mut self, path: &str, template: &str) -> Value {
        let token = self.env.token.clone();
        self.call(
            Method::GET,
            path,
            template,
            None,
            Some(&token),
            StatusCode::OK,
        )
        .await
    }

    /// Calls `method path` with the operator token (or `bearer`), asserts `status`, validates.
    async fn call(
        &mut self,
        method: Method,
        path: &str,
        template: &str,
        body: Option<Value>,
        bearer: Option<&str>,
        status: StatusCode,
    ) -> Value {
        let mut rb = self
            .env
            .http
            .request(method.clone(), format!("{}{path}", self.env.base));
        if let Some(b) = bearer {
            rb = rb.bearer_auth(b);
        }
        if let Some(b) = body {
            rb = rb.json(&b);
        }
        let res = rb.send().await.expect("call");
        assert_eq!(res.status(), status, "{method} {path}");
        let text = res.text().await.expect("body");
        if status == StatusCode::NO_CONTENT {
            assert!(text.is_empty());
            let op = &self.doc["paths"][template][method.as_str().to_lowercase()];
            assert!(
                op["responses"]["204"].is_object(),
                "{method} {template} does not document 204"
            );
            self.checked.push(format!("{method} {template} 204"));
            return Value::Null;
        }
        let v: Value = serde_json::from_str(&text).expect("a JSON answer");
        self.check(method.as_str(), template, status, &v);
        v
    }
}

#[tokio::test]
async fn real_answers_match_the_documents_schemas() {
    let env = TestEnv::start().await;
    let doc: Value = env
        .http
        .get(format!("{}/api/v1/openapi.json", env.base))
        .send()
        .await
        .expect("document")
        .json()
        .await
        .expect("JSON");
    assert_eq!(doc["openapi"], "3.1.0");
    let token = env.token.clone();
    let op = Some(token.as_str());
    let mut c = Contract {
        strict: strict(&doc),
        doc,
        env,
        checked: Vec::new(),
    };
    use StatusCode as S;

    // The index, the catalog, organizations and tenants.
    c.get("/api/v1", "/api/v1").await;
    c.get("/api/v1/catalog", "/api/v1/catalog").await;
    c.get(
        "/api/v1/catalog/app-types/m365-all",
        "/api/v1/catalog/app-types/{key}",
    )
    .await;
    let org = c.env.connect_contoso(&["teams", "planner"]).await;
    c.get("/api/v1/organizations", "/api/v1/organizations")
        .await;
    c.get(
        &format!("/api/v1/organizations/{org}"),
        "/api/v1/organizations/{id}",
    )
    .await;
    c.call(
        Method::PATCH,
        &format!("/api/v1/organizations/{org}"),
        "/api/v1/organizations/{id}",
        Some(json!({"modules": ["teams", "planner"]})),
        op,
        S::OK,
    )
    .await;
    c.get("/api/v1/tenants", "/api/v1/tenants").await;
    c.get(
        &format!("/api/v1/tenants/{CONTOSO}"),
        "/api/v1/tenants/{tenant}",
    )
    .await;

    // Profiles: one never authorized (its reason), one authorized through entra-sim.
    let fresh = c.env.profile("insights-m365", None).await;
    let m365 = c.env.profile("m365-all", Some("cloud-backup-m365")).await;
    c.env
        .authorize(&m365, json!({"method": "admin"}), ADMIN, None)
        .await;
    let page = c.get("/api/v1/profiles", "/api/v1/profiles").await;
    assert_eq!(page["items"].as_array().map(Vec::len), Some(2), "{page}");
    for id in [&fresh, &m365] {
        c.get(&format!("/api/v1/profiles/{id}"), "/api/v1/profiles/{id}")
            .await;
        c.get(
            &format!("/api/v1/profiles/{id}/history"),
            "/api/v1/profiles/{id}/history",
        )
        .await;
    }
    let checked = c
        .call(
            Method::POST,
            &format!("/api/v1/profiles/{m365}/check"),
            "/api/v1/profiles/{id}/check",
            None,
            op,
            S::OK,
        )
        .await;
    assert_eq!(checked["status"], "valid", "{checked}");
    let started = c
        .call(
            Method::POST,
            &format!("/api/v1/profiles/{fresh}/reauthorize"),
            "/api/v1/profiles/{id}/reauthorize",
            Some(json!({"method": "admin", "handoff": true})),
            op,
            S::OK,
        )
        .await;
    assert_eq!(started["consent_link"], true, "{started}");
    c.call(
        Method::POST,
        &format!("/api/v1/profiles/{fresh}/reauthorize/cancel"),
        "/api/v1/profiles/{id}/reauthorize/cancel",
        None,
        op,
        S::OK,
    )
    .await;

    // Scan profiles and Planner readiness.
    let tenant_scans = format!("/api/v1/tenants/{CONTOSO}/scan-profiles");
    let scan = c
        .call(
            Method::POST,
            &tenant_scans,
            "/api/v1/tenants/{tenant}/scan-profiles",
            Some(json!({"name": "Planner", "modules": ["planner"], "authentication": {"method": "app_profile", "app_profile": m365}})),
            op,
            S::CREATED,
        )
        .await;
    let scan = scan["id"].as_str().expect("scan id").to_string();
    c.get(&tenant_scans, "/api/v1/tenants/{tenant}/scan-profiles")
        .await;
    c.call(
        Method::PUT,
        &format!("/api/v1/scan-profiles/{scan}"),
        "/api/v1/scan-profiles/{id}",
        Some(json!({"planner_backup_enabled": true})),
        op,
        S::OK,
    )
    .await;
    c.get(
        &format!("/api/v1/scan-profiles/{scan}/planner-readiness"),
        "/api/v1/scan-profiles/{id}/planner-readiness",
    )
    .await;
    c.get(
        &format!("/api/v1/tenants/{CONTOSO}/planner-readiness"),
        "/api/v1/tenants/{tenant}/planner-readiness",
    )
    .await;

    // Webhooks, service keys, the audit log.
    let hooks = format!("/api/v1/organizations/{org}/webhooks");
    c.call(
        Method::POST,
        &hooks,
        "/api/v1/organizations/{id}/webhooks",
        Some(json!({"url": "http://127.0.0.1:9/hook"})),
        op,
        S::CREATED,
    )
    .await;
    c.get(&hooks, "/api/v1/organizations/{id}/webhooks").await;
    let keys = format!("/api/v1/organizations/{org}/keys");
    let created = c
        .call(
            Method::POST,
            &keys,
            "/api/v1/organizations/{id}/keys",
            Some(json!({"name": "backup"})),
            op,
            S::CREATED,
        )
        .await;
    let key = created["key"].as_str().expect("key").to_string();
    c.get(&keys, "/api/v1/organizations/{id}/keys").await;
    c.get(
        &format!("/api/v1/organizations/{org}/audit"),
        "/api/v1/organizations/{id}/audit",
    )
    .await;

    // The token API: a Graph token, and its refusals (a profile that cannot serve carries its reason).
    let tokens = format!("/api/v1/tenants/{CONTOSO}/tokens");
    let t = "/api/v1/tenants/{tenant}/tokens";
    let graph = c
        .call(
            Method::POST,
            &tokens,
            t,
            Some(json!({"app_type": "m365-all"})),
            Some(&key),
            S::OK,
        )
        .await;
    assert_eq!(graph["token_type"], "Bearer", "{graph}");
    let refused = c
        .call(
            Method::POST,
            &tokens,
            t,
            Some(json!({"app_type": "insights-m365"})),
            Some(&key),
            S::CONFLICT,
        )
        .await;
    assert_eq!(refused["error"]["code"], "profile_invalid");
    assert_eq!(
        refused["error"]["reason"]["code"], "not_yet_authorized",
        "{refused}"
    );
    c.call(
        Method::POST,
        &tokens,
        t,
        Some(json!({"app_type": "m365-all"})),
        None,
        S::UNAUTHORIZED,
    )
    .await;
    c.call(
        Method::POST,
        &tokens,
        t,
        Some(json!({"app_type": "no-such-app-type"})),
        Some(&key),
        S::NOT_FOUND,
    )
    .await;

    // Error bodies of the rest of the API.
    c.call(
        Method::GET,
        "/api/v1/profiles",
        "/api/v1/profiles",
        None,
        None,
        S::UNAUTHORIZED,
    )
    .await;
    c.call(
        Method::GET,
        "/api/v1/profiles",
        "/api/v1/profiles",
        None,
        Some(&key),
        S::FORBIDDEN,
    )
    .await;
    let bad = c
        .call(
            Method::GET,
            "/api/v1/profiles/not-a-guid",
            "/api/v1/profiles/{id}",
            None,
            op,
            S::BAD_REQUEST,
        )
        .await;
    assert_eq!(bad["error"]["field"], "id", "{bad}");
    c.call(
        Method::GET,
        &format!("/api/v1/profiles/{}", uuid::Uuid::new_v4()),
        "/api/v1/profiles/{id}",
        None,
        op,
        S::NOT_FOUND,
    )
    .await;
    c.call(
        Method::DELETE,
        &format!("/api/v1/tenants/{CONTOSO}"),
        "/api/v1/tenants/{tenant}",
        None,
        op,
        S::CONFLICT,
    )
    .await;
    c.call(
        Method::POST,
        "/api/v1/organizations",
        "/api/v1/organizations",
        Some(json!({"name": ""})),
        op,
        S::UNPROCESSABLE_ENTITY,
    )
    .await;
    c.call(
        Method::DELETE,
        &format!("/api/v1/scan-profiles/{scan}"),
        "/api/v1/scan-profiles/{id}",
        None,
        op,
        S::NO_CONTENT,
    )
    .await;
    assert!(c.checked.len() >= 37, "{:?}", c.checked);

    // The check can fail: a field the document does not name, a missing or mistyped one.
    let mut extra = refused.clone();
    extra["error"]["surprise"] = json!(1);
    let mut missing = bad.clone();
    missing["error"]
        .as_object_mut()
        .expect("error")
        .remove("message");
    let mut mistyped = page.clone();
    mistyped["items"][0]["status"] = json!("sleeping");
    for (template, status, body) in [
        (t, S::CONFLICT, extra),
        ("/api/v1/profiles/{id}", S::BAD_REQUEST, missing),
        ("/api/v1/profiles", S::OK, mistyped),
    ] {
        let method = if template == t { "POST" } else { "GET" };
        assert!(
            !c.errors(method, template, status, &body).is_empty(),
            "{template} {status} accepts {body}"
        );
    }
}

#[tokio::test]
async fn the_document_and_the_docs_page_are_public_and_the_page_keeps_a_strict_csp() {
    let env = TestEnv::start().await;
    let get = |path: &str| env.http.get(format!("{}{path}", env.base)).send();
    let res = get("/api/v1/openapi.json").await.expect("document");
    assert_eq!(res.status(), StatusCode::OK);
    assert_eq!(res.headers()["content-type"], "application/json");
    assert_eq!(
        res.text().await.expect("text"),
        consentry_server::api::openapi::document_json(),
        "the served document is the generated one"
    );

    let res = get("/api/v1/docs").await.expect("page");
    assert_eq!(res.status(), StatusCode::OK);
    let csp = res.headers()["content-security-policy"]
        .to_str()
        .expect("csp")
        .to_string();
    assert!(
        csp.contains("script-src 'self'")
            && csp.contains("style-src 'self'")
            && csp.contains("connect-src 'self'")
            && !csp.contains("unsafe"),
        "{csp}"
    );
    let page = res.text().await.expect("html");
    assert!(
        !page.contains("<script>") && !page.contains("style="),
        "{page}"
    );
    for (file, kind, needle) in [
        ("swagger-ui-bundle.js", "javascript", "SwaggerUIBundle"),
        ("swagger-ui.css", "text/css", ".swagger-ui"),
        ("consentry-docs.js", "javascript", "openapi.json"),
        ("consentry-docs.css", "text/css", ".swagger-ui"),
    ] {
        assert!(page.contains(&format!("docs/{file}")), "{file}: {page}");
        let res = get(&format!("/api/v1/docs/{file}")).await.expect("file");
        assert_eq!(res.status(), StatusCode::OK, "{file}");
        assert!(
            res.headers()["content-type"]
                .to_str()
                .expect("type")
                .contains(kind),
            "{file}"
        );
        assert!(res.text().await.expect("text").contains(needle), "{file}");
    }
    let res = get("/api/v1/docs/index.html").await.expect("missing");
    assert_eq!(res.status(), StatusCode::NOT_FOUND);
    let body: Value = res.json().await.expect("error body");
    assert_eq!(body["error"]["code"], "route_not_found");
}

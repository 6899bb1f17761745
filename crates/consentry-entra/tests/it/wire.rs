//! The client against a scripted HTTP server on loopback: what goes on the wire (form bodies,
//! headers, assertions, paging) and how every kind of answer is classified.

use std::collections::{HashMap, VecDeque};
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::{Duration, SystemTime};

use axum::body::Bytes;
use axum::extract::State;
use axum::http::{HeaderMap, Method, StatusCode, Uri};
use axum::response::{IntoResponse, Response};
use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use consentry_certs::{ClientCertificate, generate_self_signed};
use consentry_entra::{
    Cause, ClientCredential, EntraClient, EntraConfig, EntraError, GRAPH_DEFAULT_SCOPE,
    RetryPolicy, TransportKind, directory_role_template_ids, with_retry,
};
use secrecy::{ExposeSecret as _, SecretString};
use serde_json::{Value, json};
use time::OffsetDateTime;

const TENANT: &str = "84841066-274d-4ec0-a5c1-276be684bdd3";
const APP: &str = "6731de76-14a6-49ae-97bc-6eba6914391e";
const SP: &str = "263a5b01-03e5-408e-8557-bab681df104c";

#[derive(Debug, Clone)]
struct Seen {
    method: Method,
    path: String,
    query: HashMap<String, String>,
    headers: HeaderMap,
    body: String,
}

impl Seen {
    fn form(&self) -> HashMap<String, String> {
        url::form_urlencoded::parse(self.body.as_bytes())
            .into_owned()
            .collect()
    }
}

struct Reply {
    status: StatusCode,
    headers: Vec<(&'static str, String)>,
    body: String,
    delay: Duration,
}

fn reply(status: u16, body: impl Into<String>) -> Reply {
    Reply {
        status: StatusCode::from_u16(status).unwrap(),
        headers: vec![("content-type", "application/json; charset=utf-8".into())],
        body: body.into(),
        delay: Duration::ZERO,
    }
}

impl Reply {
    fn header(mut self, name: &'static str, value: impl Into<String>) -> Self {
        self.headers.push((name, value.into()));
        self
    }
}

#[derive(Default)]
struct Script {
    replies: Mutex<VecDeque<Reply>>,
    seen: Mutex<Vec<Seen>>,
}

struct Server {
    addr: SocketAddr,
    script: Arc<Script>,
}

impl Server {
    async fn start() -> Self {
        let script = Arc::new(Script::default());
        let app = axum::Router::new()
            .fallback(handle)
            .with_state(script.clone());
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        tokio::spawn(async move {
            axum::serve(listener, app).await.ok();
        });
        Self { addr, script }
    }

    fn base(&self) -> String {
        format!("http://{}", self.addr)
    }

    fn push(&self, r: Reply) {
        self.script.replies.lock().unwrap().push_back(r);
    }

    fn seen(&self) -> Vec<Seen> {
        self.script.seen.lock().unwrap().clone()
    }

    fn client(&self) -> EntraClient {
        self.client_with(|_| {})
    }

    fn client_with(&self, f: impl FnOnce(&mut EntraConfig)) -> EntraClient {
        let mut cfg = EntraConfig {
            authority: self.base(),
            graph: format!("{}/v1.0", self.base()),
            ..EntraConfig::default()
        };
        f(&mut cfg);
        EntraClient::new(cfg).unwrap()
    }
}

async fn handle(
    State(script): State<Arc<Script>>,
    method: Method,
    uri: Uri,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    script.seen.lock().unwrap().push(Seen {
        method,
        path: uri.path().to_owned(),
        query: url::form_urlencoded::parse(uri.query().unwrap_or_default().as_bytes())
            .into_owned()
            .collect(),
        headers,
        body: String::from_utf8_lossy(&body).into_owned(),
    });
    let next = script.replies.lock().unwrap().pop_front();
    let Some(r) = next else {
        return (StatusCode::IM_A_TEAPOT, "unscripted request").into_response();
    };
    tokio::time::sleep(r.delay).await;
    let mut resp = (r.status, r.body).into_response();
    for (k, v) in r.headers {
        resp.headers_mut().insert(k, v.parse().unwrap());
    }
    resp
}

fn token_body() -> String {
    json!({"token_type":"Bearer","expires_in":3599,"ext_expires_in":3599,"access_token":"eyJ0eXAiOiJKV1QifQ.eyJ0aWQiOiJ0In0.c2ln"}).to_string()
}

fn cert() -> ClientCertificate {
    let now = OffsetDateTime::now_utc();
    let pair = generate_self_signed("CN=consentry-entra-test", 1, "pw", now).unwrap();
    ClientCertificate::from_pfx(&pair.pfx, "pw", now).unwrap()
}

fn is_guid(s: &str) -> bool {
    uuid::Uuid::parse_str(s).is_ok()
}

#[tokio::test]
async fn client_credentials_with_a_secret() {
    let server = Server::start().await;
    server.push(reply(200, token_body()));
    let client = server.client();
    let secret = ClientCredential::secret("s3cr3t~value");
    let token = client
        .client_credentials(TENANT, APP, &secret, GRAPH_DEFAULT_SCOPE)
        .await
        .unwrap();
    assert_eq!(token.expires_in, 3599);
    assert_eq!(token.ext_expires_in, Some(3599));
    assert!(token.refresh_token.is_none());
    assert_eq!(
        token.access_token_claims().unwrap().tid.as_deref(),
        Some("t")
    );
    let shown = format!("{token:?} {secret:?}");
    assert!(
        !shown.contains("eyJ0eXAi") && !shown.contains("s3cr3t"),
        "{shown}"
    );

    let seen = server.seen();
    assert_eq!(seen.len(), 1);
    let req = &seen[0];
    assert_eq!(req.method, Method::POST);
    assert_eq!(req.path, format!("/{TENANT}/oauth2/v2.0/token"));
    assert!(
        req.headers["content-type"]
            .to_str()
            .unwrap()
            .starts_with("application/x-www-form-urlencoded")
    );
    assert!(
        req.headers.get("origin").is_none(),
        "Origin must never be sent"
    );
    let crid = req.headers["client-request-id"].to_str().unwrap();
    assert!(is_guid(crid));
    assert_eq!(token.client_request_id, crid);
    let form = req.form();
    assert_eq!(form["grant_type"], "client_credentials");
    assert_eq!(form["client_id"], APP);
    assert_eq!(form["client_secret"], "s3cr3t~value");
    assert_eq!(form["scope"], "https://graph.microsoft.com/.default");
    assert!(!form.contains_key("client_assertion"));
}

#[tokio::test]
async fn client_credentials_with_a_certificate_assertion() {
    let server = Server::start().await;
    server.push(reply(200, token_body()));
    let client = server.client();
    let cert = cert();
    let sha256 = cert.sha256_thumbprint().base64url();
    let cred = ClientCredential::certificate(cert);
    client
        .client_credentials(TENANT, APP, &cred, GRAPH_DEFAULT_SCOPE)
        .await
        .unwrap();
    let form = server.seen()[0].form();
    assert_eq!(
        form["client_assertion_type"],
        "urn:ietf:params:oauth:client-assertion-type:jwt-bearer"
    );
    assert!(!form.contains_key("client_secret"));
    let parts: Vec<&str> = form["client_assertion"].split('.').collect();
    assert_eq!(parts.len(), 3);
    let header: Value = serde_json::from_slice(&URL_SAFE_NO_PAD.decode(parts[0]).unwrap()).unwrap();
    let claims: Value = serde_json::from_slice(&URL_SAFE_NO_PAD.decode(parts[1]).unwrap()).unwrap();
    assert_eq!(header["alg"], "PS256");
    assert_eq!(header["x5t#S256"], sha256.as_str());
    assert_eq!(
        claims["aud"],
        format!("{}/{TENANT}/oauth2/v2.0/token", server.base()).as_str()
    );
    assert_eq!(claims["iss"], APP);
    assert_eq!(claims["sub"], APP);
}

#[tokio::test]
async fn client_credentials_refuses_multi_tenant_aliases() {
    let server = Server::start().await;
    let client = server.client();
    let cred = ClientCredential::secret("x");
    for tenant in ["common", "organizations", "Consumers"] {
        let err = client
            .client_credentials(tenant, APP, &cred, GRAPH_DEFAULT_SCOPE)
            .await
            .unwrap_err();
        assert!(matches!(err, EntraError::InvalidInput(_)), "{tenant}");
    }
    assert!(server.seen().is_empty(), "nothing may be sent");
}

#[tokio::test]
async fn code_redemption_and_refresh_forms() {
    let server = Server::start().await;
    server.push(reply(
        200,
        json!({"token_type":"Bearer","expires_in":"3599","access_token":"a.b.c","refresh_token":"rt-1","id_token":"x.y.z","scope":"https://graph.microsoft.com/User.Read openid profile offline_access"}).to_string(),
    ));
    server.push(reply(
        200,
        json!({"token_type":"Bearer","expires_in":3599,"access_token":"a2.b.c","refresh_token":"rt-2","scope":"https://graph.microsoft.com/User.Read"}).to_string(),
    ));
    let client = server.client();
    let cred = ClientCredential::secret("sec");
    let first = client
        .redeem_code(
            TENANT,
            APP,
            &cred,
            &SecretString::from("the-code".to_owned()),
            "https://consentry.example/cb",
            &SecretString::from("v".repeat(43)),
            &["User.Read"],
        )
        .await
        .unwrap();
    assert_eq!(first.expires_in, 3599, "string lifetimes are accepted");
    assert_eq!(
        first.refresh_token.as_ref().unwrap().expose_secret(),
        "rt-1"
    );
    assert_eq!(first.scopes().len(), 4);
    assert!(!format!("{first:?}").contains("rt-1"));
    let second = client
        .refresh(
            TENANT,
            APP,
            &cred,
            first.refresh_token.as_ref().unwrap(),
            &["User.Read"],
        )
        .await
        .unwrap();
    assert_eq!(second.refresh_token.unwrap().expose_secret(), "rt-2");

    let seen = server.seen();
    let f = seen[0].form();
    assert_eq!(f["grant_type"], "authorization_code");
    assert_eq!(f["code"], "the-code");
    assert_eq!(f["redirect_uri"], "https://consentry.example/cb");
    assert_eq!(f["code_verifier"], "v".repeat(43));
    assert_eq!(
        f["scope"],
        "openid offline_access profile https://graph.microsoft.com/User.Read"
    );
    assert_eq!(f["client_secret"], "sec");
    let f = seen[1].form();
    assert_eq!(f["grant_type"], "refresh_token");
    assert_eq!(f["refresh_token"], "rt-1");
    let (a, b) = (
        seen[0].headers["client-request-id"].clone(),
        seen[1].headers["client-request-id"].clone(),
    );
    assert_ne!(a, b, "a fresh client-request-id per call");
}

#[tokio::test]
async fn identity_errors_keep_the_request_id() {
    let server = Server::start().await;
    server.push(reply(
        401,
        r#"{"error":"invalid_client","error_description":"AADSTS7000215: Invalid client secret provided. Trace ID: t Correlation ID: c Timestamp: 2024-07-10 09:12:45Z","error_codes":[7000215],"trace_id":"t","correlation_id":"c"}"#,
    ));
    let err = server
        .client()
        .client_credentials(
            TENANT,
            APP,
            &ClientCredential::secret("Wr0ngS3cretValue"),
            GRAPH_DEFAULT_SCOPE,
        )
        .await
        .unwrap_err();
    assert_eq!(err.cause(), Cause::VendorSecretInvalid);
    assert!(!err.is_transient());
    let id = err.identity().unwrap();
    assert_eq!(id.status, Some(401));
    let sent = server.seen()[0].headers["client-request-id"]
        .to_str()
        .unwrap()
        .to_owned();
    assert_eq!(err.client_request_id(), Some(sent.as_str()));
    let text = err.to_string();
    assert!(
        text.contains("AADSTS7000215 (invalid_client): Invalid client secret provided."),
        "{text}"
    );
    assert!(
        text.contains("operators must fix the configured secret"),
        "{text}"
    );
    assert!(
        !text.contains("Wr0ngS3cretValue"),
        "the secret never appears: {text}"
    );
}

#[tokio::test]
async fn throttling_and_server_errors() {
    let server = Server::start().await;
    let date = httpdate_in(Duration::from_secs(120));
    server.push(reply(429, "").header("retry-after", "3"));
    server.push(reply(429, "").header("retry-after", "0.25"));
    server.push(reply(429, "").header("retry-after", date));
    server.push(reply(
        429,
        r#"{"error":{"code":"TooManyRequests","message":"Please retry again later."}}"#,
    ));
    server.push(reply(503, "").header("retry-after", "5"));
    server.push(reply(
        500,
        r#"{"error":"server_error","error_description":"AADSTS90033: A transient error has occurred. Please try again.","error_codes":[90033]}"#,
    ));
    let client = server.client();
    let cred = ClientCredential::secret("x");
    let mut errs = Vec::new();
    for _ in 0..6 {
        errs.push(
            client
                .client_credentials(TENANT, APP, &cred, GRAPH_DEFAULT_SCOPE)
                .await
                .unwrap_err(),
        );
    }
    for e in &errs {
        assert!(e.is_transient(), "{e}");
        assert_eq!(e.cause(), Cause::Transient);
        assert!(e.client_request_id().is_some());
    }
    assert_eq!(errs[0].retry_after(), Some(Duration::from_secs(3)));
    assert_eq!(errs[1].retry_after(), Some(Duration::from_millis(250)));
    let from_date = errs[2].retry_after().unwrap();
    assert!(
        from_date > Duration::from_secs(100) && from_date <= Duration::from_secs(120),
        "{from_date:?}"
    );
    assert!(matches!(
        errs[3],
        EntraError::Throttled {
            retry_after: None,
            ..
        }
    ));
    assert!(matches!(errs[4], EntraError::Server { status: 503, .. }));
    assert_eq!(errs[4].retry_after(), Some(Duration::from_secs(5)));
    match &errs[5] {
        EntraError::Server { status, detail, .. } => {
            assert_eq!(*status, 500);
            assert_eq!(detail.as_deref(), Some("AADSTS90033 server_error"));
        }
        other => panic!("expected Server, got {other:?}"),
    }
}

fn httpdate_in(d: Duration) -> String {
    httpdate::fmt_http_date(SystemTime::now() + d)
}

#[tokio::test]
async fn retry_over_the_wire_succeeds_after_transient_failures() {
    let server = Server::start().await;
    server.push(reply(429, "").header("retry-after", "0.05"));
    server.push(reply(503, ""));
    server.push(reply(200, token_body()));
    let client = server.client();
    let cred = ClientCredential::secret("x");
    let policy = RetryPolicy {
        max_attempts: 4,
        base_delay: Duration::from_millis(10),
        max_delay: Duration::from_millis(50),
        max_retry_after: Duration::from_secs(1),
    };
    let token = with_retry(&policy, || {
        client.client_credentials(TENANT, APP, &cred, GRAPH_DEFAULT_SCOPE)
    })
    .await
    .unwrap();
    let seen = server.seen();
    assert_eq!(seen.len(), 3);
    assert_eq!(
        token.client_request_id,
        seen[2].headers["client-request-id"].to_str().unwrap()
    );
}

#[tokio::test]
async fn unreadable_answers_are_protocol_errors() {
    let server = Server::start().await;
    server.push(reply(400, "<html>proxy says no</html>"));
    server.push(reply(200, "not json"));
    server.push(reply(200, r#"{"token_type":"Bearer","expires_in":3599}"#));
    let client = server.client();
    let cred = ClientCredential::secret("x");
    for _ in 0..3 {
        let err = client
            .client_credentials(TENANT, APP, &cred, GRAPH_DEFAULT_SCOPE)
            .await
            .unwrap_err();
        assert!(matches!(err, EntraError::Protocol { .. }), "{err}");
        assert!(!err.is_transient());
        assert_eq!(err.cause(), Cause::Other);
    }
}

#[tokio::test]
async fn transport_failures_are_transient() {
    // A port nobody listens on.
    let port = {
        let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        l.local_addr().unwrap().port()
    };
    let client = EntraClient::new(EntraConfig {
        authority: format!("http://127.0.0.1:{port}"),
        graph: format!("http://127.0.0.1:{port}/v1.0"),
        ..EntraConfig::default()
    })
    .unwrap();
    let err = client
        .client_credentials(
            TENANT,
            APP,
            &ClientCredential::secret("x"),
            GRAPH_DEFAULT_SCOPE,
        )
        .await
        .unwrap_err();
    assert!(
        matches!(
            err,
            EntraError::Transport {
                kind: TransportKind::Connect,
                ..
            }
        ),
        "{err:?}"
    );
    assert!(err.is_transient());

    let server = Server::start().await;
    let mut slow = reply(200, token_body());
    slow.delay = Duration::from_secs(3);
    server.push(slow);
    let client = server.client_with(|c| c.timeout = Duration::from_millis(300));
    let err = client
        .client_credentials(
            TENANT,
            APP,
            &ClientCredential::secret("x"),
            GRAPH_DEFAULT_SCOPE,
        )
        .await
        .unwrap_err();
    assert!(
        matches!(
            err,
            EntraError::Transport {
                kind: TransportKind::Timeout,
                ..
            }
        ),
        "{err:?}"
    );
    assert_eq!(err.cause(), Cause::Transient);
}

fn page(items: Value, next: Option<String>) -> String {
    let mut v = json!({"@odata.context": "https://graph.microsoft.com/v1.0/$metadata#oauth2PermissionGrants", "value": items});
    if let Some(n) = next {
        v["@odata.nextLink"] = json!(n);
    }
    v.to_string()
}

fn grant(id: &str, scope: &str) -> Value {
    json!({"clientId": SP, "consentType": "AllPrincipals", "id": id, "principalId": null,
           "resourceId": "1804a6f8-e623-4520-8f40-ba1b0c11c42d", "scope": scope, "@odata.id": "x"})
}

fn token() -> SecretString {
    SecretString::from("graph-access-token".to_owned())
}

#[tokio::test]
async fn graph_collections_follow_next_links() {
    let server = Server::start().await;
    let next1 = format!(
        "{}/v1.0/oauth2PermissionGrants?$skiptoken=p2",
        server.base()
    );
    let next2 = format!(
        "{}/v1.0/oauth2PermissionGrants?$skiptoken=p3",
        server.base()
    );
    server.push(reply(
        200,
        page(
            json!([
                grant("g1", " User.Read  Mail.Read "),
                grant("g2", "Sites.Read.All")
            ]),
            Some(next1),
        ),
    ));
    server.push(reply(200, page(json!([]), Some(next2))));
    server.push(reply(200, page(json!([grant("g3", "openid")]), None)));
    let grants = server
        .client()
        .oauth2_permission_grants(&token(), SP)
        .await
        .unwrap();
    assert_eq!(
        grants.iter().map(|g| g.id.as_str()).collect::<Vec<_>>(),
        vec!["g1", "g2", "g3"]
    );
    assert_eq!(grants[0].scopes(), vec!["User.Read", "Mail.Read"]);
    assert!(grants[0].is_admin_consent());
    let seen = server.seen();
    assert_eq!(seen.len(), 3);
    assert_eq!(seen[0].path, "/v1.0/oauth2PermissionGrants");
    assert_eq!(seen[0].query["$filter"], format!("clientId eq '{SP}'"));
    assert_eq!(seen[2].query["$skiptoken"], "p3");
    for s in &seen {
        assert_eq!(s.headers["authorization"], "Bearer graph-access-token");
        assert!(is_guid(s.headers["client-request-id"].to_str().unwrap()));
    }
}

#[tokio::test]
async fn next_links_off_the_graph_origin_are_not_followed() {
    let server = Server::start().await;
    let elsewhere = Server::start().await;
    server.push(reply(
        200,
        page(
            json!([grant("g1", "User.Read")]),
            Some(format!(
                "{}/v1.0/oauth2PermissionGrants?$skiptoken=x",
                elsewhere.base()
            )),
        ),
    ));
    let err = server
        .client()
        .oauth2_permission_grants(&token(), SP)
        .await
        .unwrap_err();
    assert!(matches!(err, EntraError::Protocol { .. }), "{err}");
    assert!(
        elsewhere.seen().is_empty(),
        "the token must not leave the Graph origin"
    );
}

#[tokio::test]
async fn page_count_is_bounded() {
    let server = Server::start().await;
    for i in 0..3 {
        let next = format!(
            "{}/v1.0/oauth2PermissionGrants?$skiptoken={i}",
            server.base()
        );
        server.push(reply(200, page(json!([grant("g", "x")]), Some(next))));
    }
    let err = server
        .client_with(|c| c.max_pages = 2)
        .oauth2_permission_grants(&token(), SP)
        .await
        .unwrap_err();
    assert!(err.to_string().contains("longer than 2 pages"), "{err}");
    assert_eq!(server.seen().len(), 2);
}

#[tokio::test]
async fn graph_errors_and_reads() {
    let server = Server::start().await;
    server.push(
        reply(403, r#"{"error":{"code":"Authorization_RequestDenied","message":"Insufficient privileges to complete the operation.","innerError":{"date":"2023-02-20T05:06:48"}}}"#)
            .header("request-id", "rid-1"),
    );
    server.push(reply(200, json!({"value": [
        {"@odata.type": "#microsoft.graph.servicePrincipal", "id": SP, "appId": APP, "displayName": "Contoso Backup",
         "appRoles": null, "keyCredentials": [], "appOwnerOrganizationId": TENANT, "somethingNew": 1}
    ]}).to_string()));
    server.push(reply(200, json!({"value": []}).to_string()));
    server.push(reply(200, json!({"value": [
        {"id": "UxOIjjUXr0WvIe4TRFgqTY4z9Wu5KxpBtlEpoTGjw-A", "createdDateTime": "2021-02-02T04:22:45.4980259Z",
         "appRoleId": "e2a3a72e-5f79-4c64-b1b1-878b674786c9", "principalDisplayName": "Contoso Backup",
         "principalId": SP, "principalType": "ServicePrincipal", "resourceDisplayName": "Microsoft Graph",
         "resourceId": "fea94d6d-b5bf-44d2-a887-4f72a8d74f44"}
    ]}).to_string()));
    let client = server.client();
    let err = client
        .service_principal_by_app_id(&token(), APP)
        .await
        .unwrap_err();
    assert_eq!(err.cause(), Cause::GraphAccessDenied);
    assert_eq!(err.graph().unwrap().request_id.as_deref(), Some("rid-1"));
    assert!(err.to_string().contains("Insufficient privileges"), "{err}");

    let sp = client
        .service_principal_by_app_id(&token(), APP)
        .await
        .unwrap()
        .unwrap();
    assert_eq!(sp.id, SP);
    assert!(sp.app_roles.is_empty());
    assert_eq!(sp.app_owner_organization_id.as_deref(), Some(TENANT));
    assert!(
        client
            .service_principal_by_app_id(&token(), APP)
            .await
            .unwrap()
            .is_none()
    );
    let seen = server.seen();
    assert_eq!(seen[1].path, "/v1.0/servicePrincipals");
    assert_eq!(seen[1].query["$filter"], format!("appId eq '{APP}'"));

    let assignments = client.app_role_assignments(&token(), SP).await.unwrap();
    assert_eq!(
        assignments[0].app_role_id,
        "e2a3a72e-5f79-4c64-b1b1-878b674786c9"
    );
    assert_eq!(
        server.seen()[3].path,
        format!("/v1.0/servicePrincipals/{SP}/appRoleAssignments")
    );
    assert!(matches!(
        client.app_role_assignments(&token(), "../me").await,
        Err(EntraError::InvalidInput(_))
    ));
}

#[tokio::test]
async fn me_reads() {
    let server = Server::start().await;
    server.push(reply(200, json!({"@odata.context":"https://graph.microsoft.com/v1.0/$metadata#users/$entity","businessPhones":[],"displayName":"Adele Vance","userPrincipalName":"AdeleV@contoso.com","id":"87d349ed-44d7-43e1-9a83-5f2406dee5bd"}).to_string()));
    server.push(reply(200, json!({"value": [
        {"@odata.type": "#microsoft.graph.group", "id": "g1", "displayName": "All Users", "mailEnabled": false, "securityEnabled": true},
        {"@odata.type": "#microsoft.graph.directoryRole", "id": "r1", "displayName": "Global Administrator", "roleTemplateId": "62e90394-69f5-4237-9190-012177145e10"},
        {"@odata.type": "#microsoft.graph.directoryRole", "id": "r2", "displayName": null, "roleTemplateId": null}
    ]}).to_string()));
    server.push(reply(200, json!({"value": [{"id": "l1", "skuId": "c7df2760-2c81-4ef7-b578-5b5392b571df", "skuPartNumber": "ENTERPRISEPREMIUM",
        "servicePlans": [{"servicePlanId": "5dbe027f-2339-4123-9542-606e4d348a72", "servicePlanName": "SHAREPOINTENTERPRISE", "provisioningStatus": "Success", "appliesTo": "User"}]}]}).to_string()));
    server.push(reply(
        200,
        json!({"value": [
            {"@odata.type": "#microsoft.graph.group", "id": "g9", "displayName": "Sales"},
            {"@odata.type": "#microsoft.graph.application", "id": "a9", "displayName": "An app"}
        ]})
        .to_string(),
    ));
    let client = server.client();
    let me = client.me(&token()).await.unwrap();
    assert_eq!(
        me.user_principal_name.as_deref(),
        Some("AdeleV@contoso.com")
    );
    let member_of = client.me_member_of(&token()).await.unwrap();
    assert_eq!(
        directory_role_template_ids(&member_of),
        vec!["62e90394-69f5-4237-9190-012177145e10"]
    );
    let licenses = client.me_license_details(&token()).await.unwrap();
    assert_eq!(licenses[0].sku_part_number, "ENTERPRISEPREMIUM");
    assert_eq!(
        licenses[0].service_plans[0].service_plan_name,
        "SHAREPOINTENTERPRISE"
    );
    let owned = client.me_owned_groups(&token()).await.unwrap();
    assert_eq!(owned.len(), 1);
    assert_eq!(owned[0].id, "g9");
    let paths: Vec<String> = server.seen().into_iter().map(|s| s.path).collect();
    assert_eq!(
        paths,
        vec![
            "/v1.0/me",
            "/v1.0/me/memberOf",
            "/v1.0/me/licenseDetails",
            "/v1.0/me/ownedObjects"
        ]
    );
}

#[tokio::test]
async fn application_key_credentials_match_the_certificate() {
    let server = Server::start().await;
    let cert = cert();
    let other = generate_self_signed("CN=other", 1, "pw", OffsetDateTime::now_utc()).unwrap();
    server.push(reply(200, json!({"id": "o1", "appId": APP, "keyCredentials": [
        {"customKeyIdentifier": other.sha1_thumbprint.hex_upper(), "keyId": "k0", "type": "AsymmetricX509Cert", "usage": "Verify", "key": null},
        {"customKeyIdentifier": cert.sha1_thumbprint().hex_upper(), "keyId": "k1", "type": "AsymmetricX509Cert", "usage": "Verify",
         "displayName": "CN=consentry-entra-test", "key": base64::engine::general_purpose::STANDARD.encode(cert.certificate_der())}
    ]}).to_string()));
    server.push(reply(404, r#"{"error":{"code":"Request_ResourceNotFound","message":"Resource 'x' does not exist or one of its queried reference-property objects are not present."}}"#));
    let client = server.client();
    let keys = client
        .application_key_credentials(&token(), APP)
        .await
        .unwrap()
        .unwrap();
    assert_eq!(keys.len(), 2);
    assert!(!keys[0].matches(&cert));
    assert!(keys[1].matches(&cert));
    assert!(
        client
            .application_key_credentials(&token(), APP)
            .await
            .unwrap()
            .is_none()
    );
    let seen = server.seen();
    assert_eq!(seen[0].path, format!("/v1.0/applications(appId='{APP}')"));
    assert_eq!(seen[0].query["$select"], "id,appId,keyCredentials");
}

#[tokio::test]
async fn oversize_answers_are_refused() {
    let server = Server::start().await;
    server.push(reply(200, "x".repeat(consentry_entra::MAX_BODY_BYTES + 1)));
    let err = server.client().me(&token()).await.unwrap_err();
    assert!(matches!(err, EntraError::Protocol { .. }), "{err}");
    assert!(err.to_string().contains("larger than"), "{err}");
}

//! Test support: start a simulator, a browser-like client that parses forms and follows redirects by
//! hand, and helpers for the token endpoint.

use std::collections::HashMap;

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use entra_sim::{RunningSim, Scenario, SimOptions};
use serde_json::Value;
use sha2::Digest;
use uuid::Uuid;

pub const CONTOSO: &str = "contoso.onmicrosoft.com";
pub const CONTOSO_ID: &str = "3f2a9c4e-5b1d-4c7a-9e2f-6d8b0a1c2e3f";
pub const PASSWORD: &str = "Demo-Passw0rd!";
pub const ADMIN: &str = "admin@contoso.onmicrosoft.com";
pub const PRA: &str = "pra@contoso.onmicrosoft.com";
pub const USER: &str = "user@contoso.onmicrosoft.com";
pub const MFA_USER: &str = "mfa.user@contoso.onmicrosoft.com";
pub const GROUP_OWNER: &str = "group.owner@contoso.onmicrosoft.com";
pub const REDIRECT: &str = "https://localhost:8443/oauth/callback";
/// insights-m365 (hybrid: delegated User.Read offline_access + application roles).
pub const INSIGHTS: &str = "c0de0000-0000-4000-8000-000000000001";
pub const INSIGHTS_SECRET: &str = "demo-secret-insights-m365";
/// iaas-delegated (delegated only: openid profile User.Read offline_access, all user-consentable).
pub const IAAS_DELEGATED: &str = "c0de0000-0000-4000-8000-00000000000a";
pub const IAAS_SECRET: &str = "demo-secret-iaas-delegated";
/// Contoso's own custom app (home tenant contoso, certificate registered).
pub const CUSTOM_APP: &str = "c0a70000-0000-4000-8000-0000000c0570";

pub fn uuid(s: &str) -> Uuid {
    Uuid::parse_str(s).expect("test GUID")
}

pub async fn start() -> RunningSim {
    start_with(SimOptions::default()).await
}

pub async fn start_with(opts: SimOptions) -> RunningSim {
    RunningSim::start(Scenario::contoso(), opts)
        .await
        .expect("simulator starts")
}

/// A client trusting the simulator's CA that does not follow redirects (one per simulator: building
/// a client loads the system roots, which is slow in debug builds).
pub fn client(sim: &RunningSim) -> reqwest::Client {
    static CLIENTS: std::sync::Mutex<Vec<(String, reqwest::Client)>> =
        std::sync::Mutex::new(Vec::new());
    let mut clients = CLIENTS
        .lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner);
    if let Some((_, c)) = clients.iter().find(|(pem, _)| pem == sim.ca_pem()) {
        return c.clone();
    }
    let ca = reqwest::Certificate::from_pem(sim.ca_pem().as_bytes()).expect("CA PEM");
    let c = reqwest::Client::builder()
        .tls_certs_merge([ca])
        .redirect(reqwest::redirect::Policy::none())
        .no_proxy()
        .build()
        .expect("client");
    clients.push((sim.ca_pem().to_owned(), c.clone()));
    c
}

/// A fetched page or redirect.
#[derive(Debug)]
pub struct Page {
    pub status: u16,
    pub location: Option<String>,
    pub body: String,
}

impl Page {
    pub fn form(&self) -> Form {
        Form::parse(&self.body).unwrap_or_else(|| panic!("no form in page:\n{}", self.body))
    }
    /// Query (or fragment) parameters of the redirect.
    pub fn redirect_params(&self) -> HashMap<String, String> {
        let loc = self
            .location
            .as_deref()
            .unwrap_or_else(|| panic!("not a redirect ({}):\n{}", self.status, self.body));
        let url = url::Url::parse(loc).expect("redirect URL");
        url.query_pairs().into_owned().collect()
    }
}

/// A form parsed out of the HTML.
#[derive(Debug, Clone)]
pub struct Form {
    pub action: String,
    pub fields: Vec<(String, String)>,
    /// Submit buttons: (name, value).
    pub buttons: Vec<(String, String)>,
    pub checkboxes: Vec<(String, String)>,
}

fn unescape(s: &str) -> String {
    s.replace("&#34;", "\"")
        .replace("&quot;", "\"")
        .replace("&#39;", "'")
        .replace("&#x27;", "'")
        .replace("&lt;", "<")
        .replace("&gt;", ">")
        .replace("&#x2f;", "/")
        .replace("&#47;", "/")
        .replace("&amp;", "&")
}

fn attr(tag: &str, name: &str) -> Option<String> {
    let pat = format!(" {name}=\"");
    let start = tag.find(&pat)? + pat.len();
    let end = tag[start..].find('"')? + start;
    Some(unescape(&tag[start..end]))
}

impl Form {
    pub fn parse(html: &str) -> Option<Form> {
        let start = html.find("<form")?;
        let end = html[start..].find("</form>")? + start;
        let form = &html[start..end];
        let open_end = form.find('>')?;
        let action = attr(&form[..open_end], "action")?;
        let mut fields = Vec::new();
        let mut buttons = Vec::new();
        let mut checkboxes = Vec::new();
        for (tag_name, list) in [("<input", 0), ("<button", 1)] {
            let mut rest = form;
            while let Some(i) = rest.find(tag_name) {
                let tag_end = rest[i..].find('>').map(|e| e + i).unwrap_or(rest.len());
                let tag = &rest[i..tag_end];
                if let Some(name) = attr(tag, "name") {
                    let value = attr(tag, "value").unwrap_or_default();
                    if list == 1 {
                        buttons.push((name, value));
                    } else if attr(tag, "type").as_deref() == Some("checkbox") {
                        checkboxes.push((name, value));
                    } else {
                        fields.push((name, value));
                    }
                }
                rest = &rest[tag_end..];
            }
        }
        Some(Form {
            action,
            fields,
            buttons,
            checkboxes,
        })
    }

    pub fn set(mut self, name: &str, value: &str) -> Self {
        match self.fields.iter_mut().find(|(n, _)| n == name) {
            Some(f) => f.1 = value.to_owned(),
            None => panic!("form has no field {name}: {:?}", self.fields),
        }
        self
    }

    pub fn check(mut self, name: &str) -> Self {
        let (n, v) = self
            .checkboxes
            .iter()
            .find(|(n, _)| n == name)
            .cloned()
            .unwrap_or_else(|| panic!("no checkbox {name}"));
        self.fields.push((n, v));
        self
    }

    /// Submits with the button whose value is `button` (if any).
    pub async fn submit(self, browser: &Browser, button: Option<&str>) -> Page {
        let mut fields = self.fields.clone();
        if let Some(b) = button {
            let pair = self
                .buttons
                .iter()
                .find(|(_, v)| v == b)
                .cloned()
                .unwrap_or_else(|| panic!("no button {b}: {:?}", self.buttons));
            fields.push(pair);
        }
        browser.post_form(&self.action, &fields).await
    }
}

/// A plain HTTP client playing a browser.
pub struct Browser {
    pub http: reqwest::Client,
    pub forwarded_for: Option<String>,
}

impl Browser {
    pub fn new(sim: &RunningSim) -> Self {
        Self {
            http: client(sim),
            forwarded_for: None,
        }
    }

    pub fn from_ip(sim: &RunningSim, ip: &str) -> Self {
        Self {
            http: client(sim),
            forwarded_for: Some(ip.to_owned()),
        }
    }

    async fn finish(resp: reqwest::Response) -> Page {
        let status = resp.status().as_u16();
        let location = resp
            .headers()
            .get("location")
            .and_then(|v| v.to_str().ok())
            .map(str::to_owned);
        let body = resp.text().await.expect("body");
        Page {
            status,
            location,
            body,
        }
    }

    pub async fn get(&self, url: &str) -> Page {
        let mut req = self.http.get(url);
        if let Some(ip) = &self.forwarded_for {
            req = req.header("x-forwarded-for", ip);
        }
        Self::finish(req.send().await.expect("GET")).await
    }

    pub async fn post_form(&self, url: &str, fields: &[(String, String)]) -> Page {
        let mut req = self.http.post(url).form(fields);
        if let Some(ip) = &self.forwarded_for {
            req = req.header("x-forwarded-for", ip);
        }
        Self::finish(req.send().await.expect("POST")).await
    }

    /// Signs in on the page at `url` (sign-in form) and returns the next page.
    pub async fn sign_in(&self, url: &str, username: &str, password: &str) -> Page {
        let page = self.get(url).await;
        assert_eq!(page.status, 200, "sign-in page: {}", page.body);
        page.form()
            .set("username", username)
            .set("password", password)
            .submit(self, None)
            .await
    }
}

/// PKCE pair (verifier, S256 challenge).
pub fn pkce() -> (String, String) {
    let verifier = format!("{}-{}", Uuid::new_v4().simple(), Uuid::new_v4().simple());
    let challenge = URL_SAFE_NO_PAD.encode(sha2::Sha256::digest(verifier.as_bytes()));
    (verifier, challenge)
}

pub fn authorize_url(
    sim: &RunningSim,
    client_id: &str,
    scope: &str,
    challenge: &str,
    extra: &[(&str, &str)],
) -> String {
    let mut url = url::Url::parse(&format!(
        "{}/{CONTOSO}/oauth2/v2.0/authorize",
        sim.base_url()
    ))
    .expect("url");
    url.query_pairs_mut()
        .append_pair("client_id", client_id)
        .append_pair("response_type", "code")
        .append_pair("redirect_uri", REDIRECT)
        .append_pair("scope", scope)
        .append_pair("state", "st-123")
        .append_pair("nonce", "n-456")
        .append_pair("code_challenge", challenge)
        .append_pair("code_challenge_method", "S256");
    for (k, v) in extra {
        url.query_pairs_mut().append_pair(k, v);
    }
    url.to_string()
}

/// POSTs a form to the token endpoint of `tenant`; returns (status, headers, JSON body).
pub async fn token(
    sim: &RunningSim,
    tenant: &str,
    form: &[(&str, &str)],
) -> (u16, reqwest::header::HeaderMap, Value) {
    let resp = client(sim)
        .post(sim.token_endpoint(tenant))
        .form(form)
        .send()
        .await
        .expect("token request");
    let status = resp.status().as_u16();
    let headers = resp.headers().clone();
    let body: Value = resp.json().await.expect("JSON body");
    (status, headers, body)
}

/// Asserts the identity platform's error shape (entra-facts §1.3) and returns the body.
pub fn assert_aad_error(status: u16, body: &Value, want_status: u16, error: &str, code: u64) {
    assert_eq!(status, want_status, "status for {body}");
    assert_eq!(body["error"], error, "error for {body}");
    assert_eq!(
        body["error_codes"],
        serde_json::json!([code]),
        "error_codes for {body}"
    );
    let desc = body["error_description"]
        .as_str()
        .expect("error_description");
    assert!(
        desc.starts_with(&format!("AADSTS{code}: ")),
        "description: {desc}"
    );
    assert!(
        desc.contains("\r\nTrace ID: ")
            && desc.contains("\r\nCorrelation ID: ")
            && desc.contains("\r\nTimestamp: "),
        "{desc}"
    );
    let ts = body["timestamp"].as_str().expect("timestamp");
    assert!(
        ts.len() == 20 && ts.ends_with('Z') && ts.as_bytes()[10] == b' ',
        "timestamp format: {ts}"
    );
    assert!(Uuid::parse_str(body["trace_id"].as_str().unwrap_or_default()).is_ok());
    assert!(Uuid::parse_str(body["correlation_id"].as_str().unwrap_or_default()).is_ok());
    assert!(
        body["error_uri"]
            .as_str()
            .is_some_and(|u| u.ends_with(&format!("/error?code={code}")))
    );
}

/// Decodes a JWT payload without verifying it (verification is tested separately).
pub fn claims(jwt: &str) -> Value {
    let payload = jwt.split('.').nth(1).expect("JWT payload");
    serde_json::from_slice(&URL_SAFE_NO_PAD.decode(payload).expect("base64url"))
        .expect("JSON claims")
}

/// Full interactive sign-in for a delegated app through the pages (consenting if asked, as the
/// user), then code redemption. Returns the token response.
pub async fn sign_in_and_redeem(
    sim: &RunningSim,
    browser: &Browser,
    user: &str,
    client_id: &str,
    secret: &str,
    scope: &str,
) -> Value {
    let (verifier, challenge) = pkce();
    let url = authorize_url(sim, client_id, scope, &challenge, &[]);
    let mut page = browser.sign_in(&url, user, PASSWORD).await;
    if page.status == 200 && page.body.contains("name=\"otc\"") {
        let code = if user == MFA_USER { "246810" } else { "123456" };
        page = page.form().set("otc", code).submit(browser, None).await;
    }
    if page.status == 200 && page.body.contains("Permissions requested") {
        page = page.form().submit(browser, Some("accept")).await;
    }
    let params = page.redirect_params();
    let code = params
        .get("code")
        .unwrap_or_else(|| panic!("no code: {params:?}"));
    let (status, _, body) = token(
        sim,
        CONTOSO,
        &[
            ("grant_type", "authorization_code"),
            ("client_id", client_id),
            ("client_secret", secret),
            ("code", code),
            ("redirect_uri", REDIRECT),
            ("code_verifier", &verifier),
        ],
    )
    .await;
    assert_eq!(status, 200, "code redemption: {body}");
    body
}

pub async fn refresh(sim: &RunningSim, client_id: &str, secret: &str, rt: &str) -> (u16, Value) {
    let (status, _, body) = token(
        sim,
        CONTOSO,
        &[
            ("grant_type", "refresh_token"),
            ("client_id", client_id),
            ("client_secret", secret),
            ("refresh_token", rt),
        ],
    )
    .await;
    (status, body)
}

pub async fn app_token(sim: &RunningSim, client_id: &str, secret: &str) -> (u16, Value) {
    app_token_in(sim, CONTOSO, client_id, secret).await
}

/// Client credentials for Graph in `tenant` with a client secret.
pub async fn app_token_in(
    sim: &RunningSim,
    tenant: &str,
    client_id: &str,
    secret: &str,
) -> (u16, Value) {
    let (status, _, body) = token(
        sim,
        tenant,
        &[
            ("grant_type", "client_credentials"),
            ("client_id", client_id),
            ("client_secret", secret),
            ("scope", "https://graph.microsoft.com/.default"),
        ],
    )
    .await;
    (status, body)
}

/// GET on Graph with a bearer token.
pub async fn graph_get(
    sim: &RunningSim,
    path: &str,
    token: &str,
) -> (u16, reqwest::header::HeaderMap, Value) {
    let url = if path.starts_with("http") {
        path.to_owned()
    } else {
        format!("{}{path}", sim.graph_base())
    };
    let resp = client(sim)
        .get(url)
        .bearer_auth(token)
        .send()
        .await
        .expect("graph request");
    let status = resp.status().as_u16();
    let headers = resp.headers().clone();
    let body: Value = resp.json().await.expect("graph JSON");
    (status, headers, body)
}

/// A self-signed certificate made with rcgen, valid from a day ago for `days`: (certificate PEM,
/// private key PEM, DER).
pub fn make_cert(cn: &str, days: i64) -> (String, String, Vec<u8>) {
    let key = rcgen::KeyPair::generate_rsa_for(&rcgen::PKCS_RSA_SHA256, rcgen::RsaKeySize::_2048)
        .unwrap();
    let mut params = rcgen::CertificateParams::new(Vec::<String>::new()).unwrap();
    params
        .distinguished_name
        .push(rcgen::DnType::CommonName, cn);
    params.not_before = time::OffsetDateTime::now_utc() - time::Duration::days(1);
    params.not_after = time::OffsetDateTime::now_utc() + time::Duration::days(days);
    let cert = params.self_signed(&key).unwrap();
    (cert.pem(), key.serialize_pem(), cert.der().to_vec())
}

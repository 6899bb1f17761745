//! Test kit: starts entra-sim (HTTPS, the contoso scenario) and a Consentry server wired to it, both on
//! loopback ports chosen by the OS, with a fresh SQLite database; plus a browser-like client that drives
//! the simulator's sign-in and consent pages the way an administrator would.

use std::collections::HashMap;

use consentry_server::Config;
use entra_sim::{RunningSim, Scenario, SimOptions};
use reqwest::StatusCode;
use secrecy::ExposeSecret;
use serde_json::{Value, json};

/// The contoso tenant of the default scenario.
pub const CONTOSO: &str = "contoso.onmicrosoft.com";
/// The demo password of every scenario user.
pub const PASSWORD: &str = "Demo-Passw0rd!";
/// The contoso custom app (tenant-owned, certificate registered).
pub const CUSTOM_APP_ID: &str = "c0a70000-0000-4000-8000-0000000c0570";
/// The custom app's demo .pfx (registered on the app) and its password.
pub const CUSTOM_APP_PFX: &[u8] =
    include_bytes!("../../entra-sim/scenarios/contoso-custom-app/cert.pfx");
/// Password of [`CUSTOM_APP_PFX`].
pub const CUSTOM_APP_PFX_PASSWORD: &str = "demo-pfx-password";
/// The one-time code of scenario users who need MFA.
pub const OTC: &str = "123456";

/// A running simulator and Consentry server.
pub struct TestEnv {
    /// The simulator.
    pub sim: RunningSim,
    /// Consentry's base URL.
    pub base: String,
    /// Operator API token.
    pub token: String,
    /// Client for Consentry's API.
    pub http: reqwest::Client,
    /// The contoso tenant ID.
    pub contoso_id: String,
    /// Consentry's clock (move it with `advance`).
    pub clock: std::sync::Arc<consentry_domain::OffsetClock>,
    /// The server's state (domain services, re-authorization), for assertions beyond the API.
    pub state: consentry_server::AppState,
    _dir: tempfile::TempDir,
    shutdown: Option<tokio::sync::oneshot::Sender<()>>,
}

impl std::fmt::Debug for TestEnv {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TestEnv")
            .field("base", &self.base)
            .finish_non_exhaustive()
    }
}

impl Drop for TestEnv {
    fn drop(&mut self) {
        if let Some(tx) = self.shutdown.take() {
            let _ = tx.send(());
        }
    }
}

const TOKEN: &str = "testkit-operator-token-0123456789";

impl TestEnv {
    /// Starts both with the contoso scenario.
    pub async fn start() -> TestEnv {
        Self::start_with(Scenario::contoso()).await
    }

    /// Starts both with a scenario.
    pub async fn start_with(scenario: Scenario) -> TestEnv {
        let dir = tempfile::tempdir().expect("temp dir");
        let sim = RunningSim::start(
            scenario.clone(),
            SimOptions {
                listen: "127.0.0.1:0".parse().expect("addr"),
                trust_forwarded_for: true,
                ..SimOptions::default()
            },
        )
        .await
        .expect("simulator starts");
        let ca = dir.path().join("sim-ca.pem");
        std::fs::write(&ca, sim.ca_pem()).expect("write CA");

        let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
            .await
            .expect("bind");
        let addr = listener.local_addr().expect("addr");
        let base = format!("http://{addr}");
        let callback = format!("{base}/oauth/callback");

        let mut vars: Vec<(String, String)> = vec![
            (
                "CONSENTRY_DATA_DIR".into(),
                dir.path().join("data").display().to_string(),
            ),
            ("CONSENTRY_API_TOKEN".into(), TOKEN.into()),
            ("CONSENTRY_PUBLIC_URL".into(), base.clone()),
            ("CONSENTRY_ENTRA__AUTHORITY".into(), sim.authority()),
            ("CONSENTRY_ENTRA__GRAPH".into(), sim.graph_base()),
            (
                "CONSENTRY_ENTRA__EXTRA_CA_FILE".into(),
                ca.display().to_string(),
            ),
        ];
        let control = sim.control();
        for app in &scenario.apps {
            control
                .add_redirect_uri(app.client_id, &callback)
                .expect("redirect URI");
            if let (Some(key), Some(secret)) = (
                app.catalog_key
                    .as_ref()
                    .filter(|k| !k.starts_with("custom")),
                app.secrets.first(),
            ) {
                let k = key.to_ascii_uppercase();
                vars.push((
                    format!("CONSENTRY_APPS__{k}__CLIENT_ID"),
                    app.client_id.to_string(),
                ));
                vars.push((
                    format!("CONSENTRY_APPS__{k}__CLIENT_SECRET"),
                    secret.value.expose_secret().to_string(),
                ));
            }
        }
        let cfg = Config::load(None, vars).expect("config");
        let clock = std::sync::Arc::new(consentry_domain::OffsetClock::default());
        let state = consentry_server::build_state_with_clock(&cfg, clock.clone()).await.expect("state");
        let (tx, rx) = tokio::sync::oneshot::channel::<()>();
        tokio::spawn(consentry_server::serve(listener, state.clone(), async {
            let _ = rx.await;
        }));
        let contoso_id = scenario
            .tenants
            .iter()
            .find(|t| t.domains.iter().any(|d| d.eq_ignore_ascii_case(CONTOSO)))
            .map(|t| t.id.to_string())
            .expect("contoso tenant in scenario");
        TestEnv {
            sim,
            base,
            token: TOKEN.into(),
            http: reqwest::Client::new(),
            contoso_id,
            clock,
            state,
            _dir: dir,
            shutdown: Some(tx),
        }
    }

    /// Calls Consentry's API; returns the status and the JSON body.
    pub async fn api(
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
        let resp = rb.send().await.expect("API call");
        let status = resp.status();
        let text = resp.text().await.expect("body");
        let v = if text.is_empty() {
            Value::Null
        } else {
            serde_json::from_str(&text).unwrap_or(Value::String(text))
        };
        (status, v)
    }

    /// Creates an organization subscribing to `modules` and connects contoso; returns the org ID.
    pub async fn connect_contoso(&self, modules: &[&str]) -> String {
        let (s, org) = self
            .api(
                reqwest::Method::POST,
                "/api/v1/organizations",
                Some(json!({"name": format!("Contoso {}", uuid::Uuid::new_v4()), "modules": modules})),
            )
            .await;
        assert_eq!(s, StatusCode::CREATED, "{org}");
        let org_id = org["id"].as_str().expect("org id").to_string();
        let (s, t) = self
            .api(
                reqwest::Method::POST,
                "/api/v1/tenants",
                Some(json!({"org_id": org_id, "tenant_id": self.contoso_id, "primary_domain": CONTOSO})),
            )
            .await;
        assert_eq!(s, StatusCode::CREATED, "{t}");
        org_id
    }

    /// Creates a profile for contoso; returns its ID.
    pub async fn profile(&self, app_type: &str, service: Option<&str>) -> String {
        let (s, p) = self
            .api(
                reqwest::Method::POST,
                "/api/v1/profiles",
                Some(json!({"tenant": CONTOSO, "app_type": app_type, "service": service})),
            )
            .await;
        assert_eq!(s, StatusCode::CREATED, "{p}");
        p["id"].as_str().expect("id").to_string()
    }

    /// Reads a profile.
    pub async fn get_profile(&self, id: &str) -> Value {
        let (s, p) = self
            .api(
                reqwest::Method::GET,
                &format!("/api/v1/profiles/{id}"),
                None,
            )
            .await;
        assert_eq!(s, StatusCode::OK, "{p}");
        p
    }

    /// Starts a re-authorization; returns (status, body).
    pub async fn start_reauth(&self, id: &str, body: Value) -> (StatusCode, Value) {
        self.api(
            reqwest::Method::POST,
            &format!("/api/v1/profiles/{id}/reauthorize"),
            Some(body),
        )
        .await
    }

    /// A browser that trusts the simulator, optionally appearing to come from `ip`.
    pub fn browser(&self, ip: Option<&str>) -> Browser {
        let ca = reqwest::Certificate::from_pem(self.sim.ca_pem().as_bytes()).expect("CA");
        Browser {
            http: reqwest::Client::builder()
                .tls_certs_merge([ca])
                .redirect(reqwest::redirect::Policy::none())
                .no_proxy()
                .build()
                .expect("client"),
            forwarded_for: ip.map(str::to_string),
        }
    }
}

/// A page or redirect.
#[derive(Debug)]
pub struct Page {
    /// HTTP status.
    pub status: u16,
    /// `Location` of a redirect.
    pub location: Option<String>,
    /// The body.
    pub body: String,
}

impl Page {
    /// Query parameters of the redirect target.
    pub fn redirect_params(&self) -> HashMap<String, String> {
        let loc = self
            .location
            .as_deref()
            .unwrap_or_else(|| panic!("not a redirect: {self:?}"));
        url::Url::parse(loc)
            .expect("URL")
            .query_pairs()
            .into_owned()
            .collect()
    }
}

/// A plain HTTP client playing the administrator's browser.
#[derive(Debug)]
pub struct Browser {
    http: reqwest::Client,
    forwarded_for: Option<String>,
}

fn attr(tag: &str, name: &str) -> Option<String> {
    let pat = format!(" {name}=\"");
    let start = tag.find(&pat)? + pat.len();
    let end = tag[start..].find('"')? + start;
    Some(
        tag[start..end]
            .replace("&#34;", "\"")
            .replace("&quot;", "\"")
            .replace("&#39;", "'")
            .replace("&lt;", "<")
            .replace("&gt;", ">")
            .replace("&#x2f;", "/")
            .replace("&amp;", "&"),
    )
}

/// The action and hidden/text fields of the first form of a page.
fn form(html: &str) -> (String, Vec<(String, String)>) {
    let start = html
        .find("<form")
        .unwrap_or_else(|| panic!("no form in:\n{html}"));
    let end = html[start..]
        .find("</form>")
        .map(|e| e + start)
        .unwrap_or(html.len());
    let f = &html[start..end];
    let open_end = f.find('>').expect("form tag");
    let action = attr(&f[..open_end], "action").expect("form action");
    let mut fields = vec![];
    let mut rest = f;
    while let Some(i) = rest.find("<input") {
        let tag_end = rest[i..].find('>').map(|e| e + i).unwrap_or(rest.len());
        let tag = &rest[i..tag_end];
        if attr(tag, "type").as_deref() != Some("checkbox")
            && let Some(name) = attr(tag, "name")
        {
            fields.push((name, attr(tag, "value").unwrap_or_default()));
        }
        rest = &rest[tag_end..];
    }
    (action, fields)
}

/// What the administrator does on Microsoft's consent page.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Decision {
    /// Accept (for the organization when the checkbox is offered and `org_wide`).
    Accept {
        /// Tick "Consent on behalf of your organization".
        org_wide: bool,
    },
    /// Cancel.
    Cancel,
}

impl Browser {
    async fn finish(resp: reqwest::Response) -> Page {
        let status = resp.status().as_u16();
        let location = resp
            .headers()
            .get("location")
            .and_then(|v| v.to_str().ok())
            .map(str::to_string);
        let body = resp.text().await.expect("body");
        Page {
            status,
            location,
            body,
        }
    }

    /// GET.
    pub async fn get(&self, url: &str) -> Page {
        let mut req = self.http.get(url);
        if let Some(ip) = &self.forwarded_for {
            req = req.header("x-forwarded-for", ip);
        }
        Self::finish(req.send().await.expect("GET")).await
    }

    /// POST a form.
    pub async fn post(&self, url: &str, fields: &[(String, String)]) -> Page {
        let mut req = self.http.post(url).form(fields);
        if let Some(ip) = &self.forwarded_for {
            req = req.header("x-forwarded-for", ip);
        }
        Self::finish(req.send().await.expect("POST")).await
    }

    /// Goes through Microsoft's pages from `url` as `user`: sign-in, one-time code if asked, consent
    /// page with `decision` if shown. Returns the first page that is not one of the simulator's pages
    /// with a form to fill: normally the redirect back to Consentry's callback.
    pub async fn at_microsoft(
        &self,
        url: &str,
        user: &str,
        password: &str,
        decision: Decision,
    ) -> Page {
        let mut page = self.get(url).await;
        for _ in 0..6 {
            if page.status != 200 {
                return page;
            }
            let body = page.body.clone();
            if body.contains("name=\"password\"") {
                let (action, mut fields) = form(&body);
                for f in &mut fields {
                    match f.0.as_str() {
                        "username" => f.1 = user.to_string(),
                        "password" => f.1 = password.to_string(),
                        _ => {}
                    }
                }
                page = self.post(&action, &fields).await;
            } else if body.contains("name=\"otc\"") {
                let (action, mut fields) = form(&body);
                for f in &mut fields {
                    if f.0 == "otc" {
                        f.1 = OTC.to_string();
                    }
                }
                page = self.post(&action, &fields).await;
            } else if body.contains("name=\"decision\"") {
                let (action, mut fields) = form(&body);
                match decision {
                    Decision::Accept { org_wide } => {
                        if org_wide && body.contains("name=\"on_behalf\"") {
                            fields.push(("on_behalf".into(), "on".into()));
                        }
                        let value = if body.contains("value=\"accept\"") {
                            "accept"
                        } else {
                            "back"
                        };
                        fields.push(("decision".into(), value.into()));
                    }
                    Decision::Cancel => {
                        let value = if body.contains("value=\"cancel\"") {
                            "cancel"
                        } else {
                            "back"
                        };
                        fields.push(("decision".into(), value.into()));
                    }
                }
                page = self.post(&action, &fields).await;
            } else {
                return page;
            }
        }
        page
    }

    /// Follows redirects (by hand) from a page: through Consentry's callback and any further Microsoft
    /// step (signing in again as `user`), until a page that is not a redirect.
    pub async fn complete(
        &self,
        start_url: &str,
        user: &str,
        password: &str,
        decision: Decision,
    ) -> Page {
        let mut page = self.at_microsoft(start_url, user, password, decision).await;
        for _ in 0..6 {
            match (page.status, page.location.clone()) {
                (300..=399, Some(loc)) => {
                    let next = self.get(&loc).await;
                    page = if next.status == 200
                        && (next.body.contains("name=\"password\"")
                            || next.body.contains("name=\"decision\""))
                    {
                        self.at_microsoft(&loc, user, password, decision).await
                    } else {
                        next
                    };
                }
                _ => return page,
            }
        }
        page
    }
}

//! Test kit: starts entra-sim (HTTPS, the contoso scenario) and a Consentry server wired to it, both on
//! loopback ports chosen by the OS, with a fresh SQLite database; plus a browser-like client that drives
//! the simulator's sign-in and consent pages the way an administrator would.

use consentry_server::Config;
pub mod console;
pub mod going_live;

pub use entra_sim::browser::{Browser, Decision, Page};
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
    /// The `CONSENTRY_*` settings the server was started with.
    vars: Vec<(String, String)>,
    /// The scenario's app client IDs (their redirect URIs follow the server's address).
    app_ids: Vec<uuid::Uuid>,
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

/// The `CONSENTRY_*` settings that point Consentry at a running entra-sim: its endpoints, its CA
/// (written to `sim-ca.pem` in `dir`) and the scenario's vendor apps with their secrets. With a
/// `callback` (Consentry's `/oauth/callback` address), registers it on every app of the scenario.
/// Shared by [`TestEnv`] and the tests that run the `consentry` binary against the simulator.
pub fn sim_settings(
    sim: &RunningSim,
    scenario: &Scenario,
    dir: &std::path::Path,
    callback: Option<&str>,
) -> Vec<(String, String)> {
    let ca = dir.join("sim-ca.pem");
    std::fs::write(&ca, sim.ca_pem()).expect("write the simulator's CA");
    let mut vars: Vec<(String, String)> = vec![
        ("CONSENTRY_ENTRA__AUTHORITY".into(), sim.authority()),
        ("CONSENTRY_ENTRA__GRAPH".into(), sim.graph_base()),
        (
            "CONSENTRY_ENTRA__VIVA_ENGAGE".into(),
            sim.viva_engage_base(),
        ),
        (
            "CONSENTRY_ENTRA__EXTRA_CA_FILE".into(),
            ca.display().to_string(),
        ),
        // The simulator's injected faults are retried after milliseconds, not Microsoft's half
        // second: the same retries, without tests sleeping through them.
        ("CONSENTRY_ENTRA__RETRY_BASE_DELAY_MS".into(), "5".into()),
    ];
    if let Some(callback) = callback {
        let control = sim.control();
        for app in &scenario.apps {
            control
                .add_redirect_uri(app.client_id, callback)
                .expect("redirect URI");
        }
        register_consentry_app_callbacks(sim, scenario, callback);
    }
    // The scenario's first tenant is the vendor's: the home of its registrations.
    if let Some(vendor) = scenario.tenants.first() {
        vars.push(("CONSENTRY_VENDOR_TENANT".into(), vendor.id.to_string()));
    }
    for (key, client_id, secret) in scenario.vendor_apps() {
        let k = key.to_ascii_uppercase().replace('-', "_");
        vars.push((
            format!("CONSENTRY_APPS__{k}__CLIENT_ID"),
            client_id.to_string(),
        ));
        vars.push((
            format!("CONSENTRY_APPS__{k}__CLIENT_SECRET"),
            secret.expose_secret().to_string(),
        ));
    }
    if let Some((client_id, secret)) = scenario.consentry_app() {
        vars.push((
            "CONSENTRY_CONSENTRY_APP__CLIENT_ID".into(),
            client_id.to_string(),
        ));
        vars.push((
            "CONSENTRY_CONSENTRY_APP__CLIENT_SECRET".into(),
            secret.expose_secret().to_string(),
        ));
    }
    // Each national cloud a scenario tenant lives in: its endpoints at the simulator and the
    // vendor's registrations there.
    let mut clouds: Vec<&str> = scenario
        .tenants
        .iter()
        .map(|t| t.cloud.as_str())
        .filter(|c| *c != "global")
        .collect();
    clouds.sort_unstable();
    clouds.dedup();
    for cloud in clouds {
        let c = cloud.to_ascii_uppercase().replace('-', "_");
        vars.push((
            format!("CONSENTRY_ENTRA__CLOUDS__{c}__AUTHORITY"),
            sim.cloud_authority(cloud),
        ));
        vars.push((
            format!("CONSENTRY_ENTRA__CLOUDS__{c}__GRAPH"),
            sim.cloud_graph_base(cloud),
        ));
        for (key, client_id, secret) in scenario.vendor_apps_in(cloud) {
            let k = key.to_ascii_uppercase().replace('-', "_");
            vars.push((
                format!("CONSENTRY_CLOUDS__{c}__APPS__{k}__CLIENT_ID"),
                client_id.to_string(),
            ));
            vars.push((
                format!("CONSENTRY_CLOUDS__{c}__APPS__{k}__CLIENT_SECRET"),
                secret.expose_secret().to_string(),
            ));
        }
    }
    vars
}

/// Registers the console's "Sign in with Microsoft" and "Connect a Microsoft tenant" callbacks (beside
/// `callback`, Consentry's
/// `/oauth/callback` address) on the scenario's Consentry app.
pub fn register_consentry_app_callbacks(sim: &RunningSim, scenario: &Scenario, callback: &str) {
    if let Some((client_id, _)) = scenario.consentry_app() {
        let base = callback.trim_end_matches("/oauth/callback");
        sim.control()
            .add_redirect_uri(
                client_id,
                &format!("{base}/console/sign-in/microsoft/callback"),
            )
            .expect("redirect URI");
        sim.control()
            .add_redirect_uri(
                client_id,
                &format!("{base}{}", consentry_domain::connect::CONNECT_CALLBACK_PATH),
            )
            .expect("redirect URI");
    }
}

/// Consentry's `[email]` settings for sending to a loopback SMTP server on `port` (a test mailbox,
/// `consentry_mail::mailbox::Mailbox`), plain SMTP, from a fixed sender.
pub fn smtp_settings(port: u16) -> Vec<(String, String)> {
    vec![
        ("CONSENTRY_EMAIL__SMTP_HOST".into(), "127.0.0.1".into()),
        ("CONSENTRY_EMAIL__SMTP_PORT".into(), port.to_string()),
        ("CONSENTRY_EMAIL__SECURITY".into(), "none".into()),
        (
            "CONSENTRY_EMAIL__FROM".into(),
            "Consentry <consentry@vendor.example>".into(),
        ),
    ]
}

impl TestEnv {
    /// Starts both with the contoso scenario.
    pub async fn start() -> TestEnv {
        Self::start_with(Scenario::contoso()).await
    }

    /// Starts both with a scenario.
    pub async fn start_with(scenario: Scenario) -> TestEnv {
        Self::start_with_settings(scenario, Vec::new()).await
    }

    /// Starts both with a scenario and extra `CONSENTRY_*` settings (for example
    /// `CONSENTRY_CATALOG_FILE`), applied after the kit's own.
    pub async fn start_with_settings(scenario: Scenario, extra: Vec<(String, String)>) -> TestEnv {
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
            // Webhook receivers in tests listen on loopback.
            ("CONSENTRY_WEBHOOKS__ALLOW_PRIVATE".into(), "true".into()),
        ];
        vars.extend(sim_settings(&sim, &scenario, dir.path(), Some(&callback)));
        vars.extend(extra);
        let cfg = Config::load(None, vars.clone()).expect("config");
        let clock = std::sync::Arc::new(consentry_domain::OffsetClock::default());
        let state = consentry_server::build_state_with_clock(&cfg, clock.clone())
            .await
            .expect("state");
        let (tx, rx) = tokio::sync::oneshot::channel::<()>();
        tokio::spawn(consentry_server::serve(listener, state.clone(), async {
            let _ = rx.await;
        }));
        let app_ids = scenario.apps.iter().map(|a| a.client_id).collect();
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
            vars,
            app_ids,
            _dir: dir,
            shutdown: Some(tx),
        }
    }

    /// Stops the Consentry server and starts it again on the same database, data folder and clock
    /// (the simulator keeps running), with `extra` settings applied over the previous ones — for
    /// example a newer catalog (`CONSENTRY_CATALOG_FILE`), as a vendor upgrading Consentry would.
    /// The new server listens on a new port; `base` follows it.
    pub async fn restart_with_settings(&mut self, extra: Vec<(String, String)>) {
        if let Some(tx) = self.shutdown.take() {
            let _ = tx.send(());
        }
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
            .await
            .expect("bind");
        let base = format!("http://{}", listener.local_addr().expect("addr"));
        let control = self.sim.control();
        for app in &self.app_ids {
            control
                .add_redirect_uri(*app, &format!("{base}/oauth/callback"))
                .expect("redirect URI");
        }
        register_consentry_app_callbacks(
            &self.sim,
            &Scenario::contoso(),
            &format!("{base}/oauth/callback"),
        );
        let mut vars: Vec<(String, String)> = self
            .vars
            .iter()
            .filter(|(k, _)| k != "CONSENTRY_PUBLIC_URL" && !extra.iter().any(|(e, _)| e == k))
            .cloned()
            .collect();
        vars.push(("CONSENTRY_PUBLIC_URL".into(), base.clone()));
        vars.extend(extra);
        let cfg = Config::load(None, vars.clone()).expect("config");
        let state = consentry_server::build_state_with_clock(&cfg, self.clock.clone())
            .await
            .expect("state");
        let (tx, rx) = tokio::sync::oneshot::channel::<()>();
        tokio::spawn(consentry_server::serve(listener, state.clone(), async {
            let _ = rx.await;
        }));
        self.base = base;
        self.state = state;
        self.vars = vars;
        self.shutdown = Some(tx);
    }

    /// Plays a release of the vendor's service that needs a new permission: the app registration of
    /// `app_type` asks for `permission` in the simulator (delegated for a scope, application for a
    /// role), and Consentry restarts on the next version of the catalog it runs (the built-in one
    /// first), which adds it (`optional` or required). Returns the new catalog version, which is also
    /// the rollout's ID.
    pub async fn release_permission(
        &mut self,
        app_type: &str,
        permission: &str,
        kind: consentry_catalog::PermissionType,
        optional: bool,
    ) -> u32 {
        let app = entra_sim::Scenario::contoso()
            .client_id_for(app_type)
            .expect("the app type's vendor app is in the scenario");
        let sim_kind = match kind {
            consentry_catalog::PermissionType::Scope => entra_sim::PermissionKind::Delegated,
            consentry_catalog::PermissionType::Role => entra_sim::PermissionKind::Application,
        };
        self.sim
            .control()
            .add_app_permission(app, sim_kind, permission)
            .expect("the app registration asks for the permission");
        let current = self
            .vars
            .iter()
            .find(|(k, _)| k == "CONSENTRY_CATALOG_FILE")
            .map(|(_, v)| std::fs::read_to_string(v).expect("the catalog in use"))
            .unwrap_or_else(|| consentry_catalog::BUILTIN_TOML.to_string());
        let text = consentry_catalog::with_permission_added(
            &current,
            "the catalog in use",
            app_type,
            permission,
            kind,
            optional,
        )
        .expect("the next release of the catalog");
        let version = consentry_catalog::Catalog::from_toml_str(&text, "release")
            .expect("the release loads")
            .version;
        let path = self._dir.path().join(format!("catalog-v{version}.toml"));
        std::fs::write(&path, text).expect("write the release");
        self.restart_with_settings(vec![(
            "CONSENTRY_CATALOG_FILE".into(),
            path.display().to_string(),
        )])
        .await;
        version
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

    /// A profile's history events (`GET /api/v1/profiles/{id}/history`).
    pub async fn history(&self, id: &str) -> Vec<Value> {
        let (s, h) = self
            .api(
                reqwest::Method::GET,
                &format!("/api/v1/profiles/{id}/history"),
                None,
            )
            .await;
        assert_eq!(s, StatusCode::OK, "{h}");
        h["items"].as_array().cloned().unwrap_or_default()
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

    /// Starts a re-authorization (which must be accepted) and completes it at Microsoft as `user`
    /// (from `ip`), following every redirect; returns the last page (normally the result page).
    pub async fn reauthorize_as(
        &self,
        id: &str,
        body: Value,
        user: &str,
        ip: Option<&str>,
        decision: Decision,
    ) -> Page {
        let (s, started) = self.start_reauth(id, body).await;
        assert_eq!(s, StatusCode::OK, "start: {started}");
        let url = started["url"].as_str().expect("url");
        self.browser(ip)
            .complete(url, user, PASSWORD, decision)
            .await
    }

    /// [`reauthorize_as`](Self::reauthorize_as) accepting every consent, asserting that the
    /// re-authorization completed.
    pub async fn authorize(&self, id: &str, body: Value, user: &str, ip: Option<&str>) {
        let page = self
            .reauthorize_as(id, body, user, ip, Decision::Accept { org_wide: true })
            .await;
        assert!(
            page.body.contains("re-authorized"),
            "authorizing {id} as {user}: {}",
            page.body
        );
    }

    /// A browser that trusts the simulator, optionally appearing to come from `ip`.
    pub fn browser(&self, ip: Option<&str>) -> Browser {
        Browser::new(self.sim.ca_pem(), ip).expect("browser")
    }
}

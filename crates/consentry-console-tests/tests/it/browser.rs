//! The console in headless Chromium, end to end with entra-sim: sign in; see an invalid profile and its
//! reason; re-authorize it through the simulator's sign-in and consent pages and see it valid; user
//! consent; a custom app with a bad and a good .pfx; a role rejection; the functions gating; and a
//! narrow screen; the API tokens, scan profile and audit pages, the console's 404 page, and a consent
//! link created in the console, opened, taken to Microsoft and completed. Two stories run side by side,
//! each in its own browser session; each step saves a screenshot under
//! `target/artifacts/console/<story>/`.
//!
//! Every page Consentry serves is audited after it loads and after every form submission:
//! - the browser's console (chromedriver's log, `goog:loggingPrefs`) must hold no CSP violation and no
//!   `SEVERE` entry (a blocked style, script or form, a failed load);
//! - axe-core (`target/node/node_modules/axe-core/axe.min.js`, which `scripts/test.sh` installs from
//!   npm) must find no WCAG 2.0/2.1 A or AA violation;
//! - each distinct form (method and action, IDs normalized) seen on a page must be submitted at least
//!   once by the test, so a new form the test does not submit fails it.
//!
//! Needs Debian's `chromium` and `chromium-driver` and the axe-core npm package (`scripts/test.sh`
//! installs them). Without Chromium the test is skipped, without axe-core its accessibility checks
//! are, each with a printed reason, unless `CI` is set, where the test fails.

use std::collections::BTreeSet;
use std::net::TcpListener;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use consentry_domain::{AccountScope, OrgId};
use consentry_testkit::{
    CUSTOM_APP_ID, CUSTOM_APP_PFX, CUSTOM_APP_PFX_PASSWORD, PASSWORD, TestEnv,
};
use fantoccini::{Client, ClientBuilder, Locator};
use secrecy::SecretString;

const CHROMIUM: &str = "/usr/bin/chromium";
const CHROMEDRIVER: &str = "/usr/bin/chromedriver";
const ADMIN: &str = "admin@contoso.onmicrosoft.com";
const GROUP_OWNER: &str = "group.owner@contoso.onmicrosoft.com";
const FABRIKAM_ADMIN: &str = "admin@fabrikam.onmicrosoft.com";
const FABRIKAM_PASSWORD: &str = "Demo-Fabrikam-Passw0rd!";
const OPERATOR: &str = "operator";
const OPERATOR_PASSWORD: &str = "console-operator-password";

/// chromedriver on a free loopback port, stopped on drop.
struct Driver {
    child: Child,
    port: u16,
}

impl Drop for Driver {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .expect("a free loopback port")
}

/// Whether Chromium is here; without it, skip (or fail under CI) with the reason.
fn chromium_available() -> bool {
    let missing: Vec<&str> = [CHROMIUM, CHROMEDRIVER]
        .into_iter()
        .filter(|p| !Path::new(p).exists())
        .collect();
    if missing.is_empty() {
        return true;
    }
    skip(&format!(
        "browser tests need {} (Debian packages chromium and chromium-driver; scripts/test.sh installs them)",
        missing.join(" and ")
    ));
    false
}

/// Skips with the reason, or fails when `CI` is set.
fn skip(msg: &str) {
    assert!(std::env::var_os("CI").is_none(), "{msg}");
    println!("skipped: {msg}");
}

/// Where `scripts/test.sh` installs axe-core (`npm install --prefix target/node axe-core`);
/// `AXE_CORE_JS` names another file.
fn axe_path() -> PathBuf {
    std::env::var_os("AXE_CORE_JS")
        .map(PathBuf::from)
        .unwrap_or_else(|| {
            Path::new(env!("CARGO_MANIFEST_DIR"))
                .join("../../target/node/node_modules/axe-core/axe.min.js")
        })
}

/// axe-core's source, or `None` (skipped, or failed under CI) when it is not installed.
fn axe_source() -> Option<String> {
    let path = axe_path();
    match std::fs::read_to_string(&path) {
        Ok(js) => Some(js),
        Err(e) => {
            skip(&format!(
                "accessibility checks: they need axe-core at {} ({e}); scripts/test.sh installs it \
                 (npm install --no-save --prefix target/node axe-core@4)",
                path.display()
            ));
            None
        }
    }
}

/// chromedriver's `POST /session/{id}/se/log {"type":"browser"}`: the browser console's entries since
/// the last read (needs the `goog:loggingPrefs` capability).
#[derive(Debug)]
struct BrowserLog;

impl fantoccini::wd::WebDriverCompatibleCommand for BrowserLog {
    fn endpoint(
        &self,
        base_url: &url::Url,
        session_id: Option<&str>,
    ) -> Result<url::Url, url::ParseError> {
        base_url.join(&format!(
            "session/{}/se/log",
            session_id.unwrap_or_default()
        ))
    }

    fn method_and_body(&self, _: &url::Url) -> (http::Method, Option<String>) {
        (http::Method::POST, Some(r#"{"type":"browser"}"#.into()))
    }
}

/// A path with its variable parts named: UUIDs become `{id}`, numbers `{n}`, a consent link's token
/// `{token}`.
fn normalize(path: &str) -> String {
    let is_uuid = |s: &str| {
        s.len() == 36
            && s.chars().enumerate().all(|(i, c)| {
                if matches!(i, 8 | 13 | 18 | 23) {
                    c == '-'
                } else {
                    c.is_ascii_hexdigit()
                }
            })
    };
    let mut parts: Vec<String> = path
        .split('/')
        .map(|p| {
            if is_uuid(p) {
                "{id}".into()
            } else if !p.is_empty() && p.chars().all(|c| c.is_ascii_digit()) {
                // A rollout's catalog version.
                "{n}".into()
            } else {
                p.to_string()
            }
        })
        .collect();
    if path.starts_with("/consent/") && parts.len() == 4 {
        parts[3] = "{token}".into();
    }
    if path.starts_with("/console/invitations/") && parts.len() == 4 {
        parts[3] = "{token}".into();
    }
    if path.starts_with("/campaign/") && parts.len() == 3 {
        parts[2] = "{token}".into();
    }
    parts.join("/")
}

/// A form's `[method, absolute action]`, read from its attributes: a control named `method` (the
/// wizard's consent method) or `action` shadows the form's own properties.
const FORM_OF: &str = "const m = f.getAttribute('method') || 'get'; \
    const a = new URL(f.getAttribute('action') || '', document.baseURI).href;";

/// axe-core rules whose findings on the API docs page (`/api/v1/docs`, the vendored Swagger UI) are
/// printed rather than failed on: Swagger UI's own colours, which `consentry-docs.css` darkens where
/// known (method badges, version stamps, links, parameter notes) but which cannot be listed exhaustively
/// for every state of Swagger UI's markup. Every other rule, and every rule on Consentry's own pages, fails.
const SWAGGER_UI_KNOWN: &[&str] = &["color-contrast"];

const AXE_RUN: &str = r#"
const done = arguments[arguments.length - 1];
axe.run(document, { runOnly: { type: 'tag', values: ['wcag2a', 'wcag2aa', 'wcag21a', 'wcag21aa'] } })
  .then(r => done(r.violations.map(v => v.id + ' (' + v.impact + '): ' + v.help + ' at '
      + v.nodes.slice(0, 5).map(n => n.target.join(' ') + ' [' + (n.failureSummary || '').replace(/\s+/g, ' ') + ']').join('; '))))
  .catch(e => done(['axe-core failed: ' + e]));
"#;

async fn start_driver() -> Driver {
    let port = free_port();
    let child = Command::new(CHROMEDRIVER)
        .arg(format!("--port={port}"))
        .arg("--allowed-ips=127.0.0.1")
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("chromedriver starts");
    for _ in 0..100 {
        if std::net::TcpStream::connect(("127.0.0.1", port)).is_ok() {
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    Driver { child, port }
}

async fn browser(driver: &Driver, profile_dir: &Path) -> Client {
    let args = [
        "--headless=new",
        "--no-sandbox",
        "--disable-gpu",
        "--disable-dev-shm-usage",
        "--disable-background-networking",
        "--disable-component-update",
        "--disable-sync",
        "--no-first-run",
        "--ignore-certificate-errors",
        "--window-size=1280,1100",
    ]
    .into_iter()
    .map(String::from)
    .chain([format!("--user-data-dir={}", profile_dir.display())])
    .collect::<Vec<_>>();
    let mut caps = serde_json::Map::new();
    caps.insert(
        "goog:chromeOptions".into(),
        serde_json::json!({ "binary": CHROMIUM, "args": args }),
    );
    // The browser's console (CSP violations, failed loads) through chromedriver's log endpoint.
    caps.insert(
        "goog:loggingPrefs".into(),
        serde_json::json!({ "browser": "ALL" }),
    );
    ClientBuilder::rustls()
        .expect("TLS for the WebDriver client")
        .capabilities(caps)
        .connect(&format!("http://127.0.0.1:{}", driver.port))
        .await
        .expect("a Chromium session")
}

fn artifacts() -> PathBuf {
    let target = std::env::var_os("CARGO_TARGET_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| Path::new(env!("CARGO_MANIFEST_DIR")).join("../../target"));
    let dir = target.join("artifacts/console");
    std::fs::create_dir_all(&dir).expect("artifacts dir");
    dir
}

struct Story {
    c: Client,
    env: TestEnv,
    shots: PathBuf,
    n: u32,
    /// axe-core's source (`None`: not installed, accessibility checks skipped).
    axe: Option<String>,
    /// Consentry's pages audited (normalized paths).
    pages: BTreeSet<String>,
    /// Consentry's forms seen on audited pages: `METHOD path` (normalized).
    forms_seen: BTreeSet<String>,
    /// Consentry's forms the test submitted.
    forms_sent: BTreeSet<String>,
    /// Pages (normalized paths) the test makes answer with an error status on purpose (a wrong
    /// password, a used link): Chromium reports the status in the console, which is expected there.
    error_pages: BTreeSet<&'static str>,
}

impl Story {
    async fn shot(&mut self, name: &str) {
        self.audit(name).await;
        self.n += 1;
        let png = self.c.screenshot().await.expect("screenshot");
        std::fs::write(self.shots.join(format!("{:02}-{name}.png", self.n)), png)
            .expect("write screenshot");
    }

    /// The next page answers with an error status on purpose (see `error_pages`).
    fn expect_error_status(&mut self, page: &'static str) {
        self.error_pages.insert(page);
    }

    /// Whether a console entry is Chromium's report of a page's own error status that the test
    /// asked for (never a subresource's: those are other paths).
    fn expected_status(&self, message: &str) -> bool {
        let Some((url, rest)) = message.split_once(" - ") else {
            return false;
        };
        let status_4xx =
            rest.starts_with("Failed to load resource: the server responded with a status of 4");
        let path = url::Url::parse(url)
            .ok()
            .filter(|u| u.as_str().starts_with(&self.env.base))
            .map(|u| normalize(u.path()));
        status_4xx && path.is_some_and(|p| self.error_pages.contains(p.as_str()))
    }

    /// Fails on any CSP violation or severe entry in the browser's console since the last read.
    async fn check_console(&self, label: &str) {
        let log = self.c.issue_cmd(BrowserLog).await.expect("browser log");
        let bad: Vec<String> = log
            .as_array()
            .into_iter()
            .flatten()
            .filter(|e| {
                let message = e["message"].as_str().unwrap_or_default();
                message.contains("Content Security Policy")
                    || (e["level"] == "SEVERE" && !self.expected_status(message))
            })
            .map(|e| format!("{} {}", e["level"], e["message"]))
            .collect();
        assert!(
            bad.is_empty(),
            "{label}: the browser's console reports:\n{}",
            bad.join("\n")
        );
    }

    /// After a page loaded or a form was sent: the browser's console; on Consentry's pages, axe-core
    /// and the forms the page holds.
    async fn audit(&mut self, label: &str) {
        for _ in 0..100 {
            let state = self
                .c
                .execute("return document.readyState", vec![])
                .await
                .unwrap_or_default();
            if state == "complete" {
                break;
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        self.check_console(label).await;
        let url = self.c.current_url().await.expect("url");
        if !url.as_str().starts_with(&self.env.base) {
            return;
        }
        self.pages.insert(normalize(url.path()));
        let forms = self
            .c
            .execute(
                &format!(
                    "return Array.from(document.forms).map(f => {{ {FORM_OF} return [m, a]; }});"
                ),
                vec![],
            )
            .await
            .expect("forms");
        for f in forms.as_array().into_iter().flatten() {
            if let Some(key) = self.form_key(&f[0], &f[1]) {
                self.forms_seen.insert(key);
            }
        }
        if self.axe.is_none() {
            return;
        }
        // WebDriver scripts run outside the page's CSP (which allows no inline script): axe-core is
        // injected as is.
        let loaded = self
            .c
            .execute("return typeof axe !== 'undefined'", vec![])
            .await
            .expect("script");
        if loaded != true {
            self.c
                .execute(
                    &format!("{}\nreturn true;", self.axe.as_deref().unwrap_or_default()),
                    vec![],
                )
                .await
                .expect("axe-core injected");
        }
        let violations = self
            .c
            .execute_async(AXE_RUN, vec![])
            .await
            .expect("axe-core runs");
        let (known, violations): (Vec<String>, Vec<String>) = violations
            .as_array()
            .into_iter()
            .flatten()
            .filter_map(|v| v.as_str().map(str::to_string))
            .partition(|v| {
                url.path() == "/api/v1/docs"
                    && SWAGGER_UI_KNOWN
                        .iter()
                        .any(|rule| v.starts_with(&format!("{rule} (")))
            });
        if !known.is_empty() {
            println!(
                "{label}: WCAG findings inside the vendored Swagger UI (not failed on, see SWAGGER_UI_KNOWN):\n{}",
                known.join("\n")
            );
        }
        assert!(
            violations.is_empty(),
            "{label} ({}): WCAG 2.1 AA violations:\n{}",
            url.path(),
            violations.join("\n")
        );
        self.check_console(label).await;
    }

    /// Shows that the checks can fail, on the current (Consentry) page: an inline style is reported
    /// as a CSP violation in the console's log, and an image without a text alternative as an axe
    /// violation (which also shows that axe-core, injected through WebDriver, runs under the page's
    /// CSP).
    async fn self_test(&mut self) {
        self.audit("self-test").await;
        self.c
            .execute(
                "const s = document.createElement('style'); s.textContent = 'body{color:red}'; \
                 document.head.appendChild(s); \
                 const i = document.createElement('img'); i.id = 'axe-self-test'; \
                 i.src = '/console/static/favicon.ico'; document.body.appendChild(i);",
                vec![],
            )
            .await
            .expect("inject");
        tokio::time::sleep(Duration::from_millis(300)).await;
        let log = self.c.issue_cmd(BrowserLog).await.expect("browser log");
        assert!(
            log.to_string().contains("Content Security Policy"),
            "an inline style is reported as a CSP violation: {log}"
        );
        if self.axe.is_none() {
            return;
        }
        let found = self
            .c
            .execute_async(AXE_RUN, vec![])
            .await
            .expect("axe-core runs");
        assert!(
            found.to_string().contains("image-alt"),
            "axe-core finds an image without alt text: {found}"
        );
        self.c
            .execute("document.getElementById('axe-self-test').remove();", vec![])
            .await
            .expect("remove");
    }

    /// `METHOD path` of a form whose action is Consentry's.
    fn form_key(&self, method: &serde_json::Value, action: &serde_json::Value) -> Option<String> {
        let action = action.as_str()?;
        if !action.starts_with(&self.env.base) {
            return None;
        }
        let url = url::Url::parse(action).ok()?;
        Some(format!(
            "{} {}",
            method.as_str().unwrap_or("get").to_ascii_uppercase(),
            normalize(url.path())
        ))
    }

    /// Waits (at most ten seconds) for an element to appear.
    async fn wait(&self, css: &str) -> fantoccini::elements::Element {
        match self
            .c
            .wait()
            .at_most(Duration::from_secs(10))
            .for_element(Locator::Css(css))
            .await
        {
            Ok(e) => e,
            Err(e) => panic!(
                "{css} did not appear ({e}); the browser's console: {}; the page says: {}",
                self.c
                    .issue_cmd(BrowserLog)
                    .await
                    .map(|l| l.to_string())
                    .unwrap_or_default(),
                self.text().await
            ),
        }
    }

    async fn goto(&mut self, path: &str) {
        self.c
            .goto(&format!("{}{path}", self.env.base))
            .await
            .expect("navigate");
        self.audit(path).await;
    }

    /// The page's text, read again if the page changed under the read.
    async fn text(&self) -> String {
        for _ in 0..50 {
            if let Ok(body) = self.c.find(Locator::Css("body")).await
                && let Ok(t) = body.text().await
            {
                return t;
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        panic!("the page's text could not be read");
    }

    async fn fill(&self, css: &str, value: &str) {
        let e = self.c.find(Locator::Css(css)).await.expect(css);
        e.clear().await.expect("clear");
        e.send_keys(value).await.expect("type");
    }

    /// Clicks; a click on a form's button records the form as submitted.
    async fn click(&mut self, css: &str) {
        let e = self.c.find(Locator::Css(css)).await.expect(css);
        let form = self
            .c
            .execute(
                &format!(
                    "const e = arguments[0]; const f = e.form; \
                     if (!f || !(e.type === 'submit' || e.tagName === 'BUTTON')) return null; \
                     {FORM_OF} return [m, a];"
                ),
                vec![serde_json::to_value(&e).expect("element reference")],
            )
            .await
            .expect("the clicked element's form");
        if let Some(key) = self.form_key(&form[0], &form[1]) {
            self.forms_sent.insert(key);
        }
        e.click().await.expect("click");
    }

    /// Plays the administrator at the simulator's pages until the browser is back at Consentry.
    async fn at_microsoft(&mut self, user: &str, org_wide: bool, label: &str) {
        self.at_microsoft_as(user, PASSWORD, org_wide, label).await;
    }

    /// [`Story::at_microsoft`] with the user's own password.
    async fn at_microsoft_as(&mut self, user: &str, password: &str, org_wide: bool, label: &str) {
        // First the redirect to the simulator.
        for _ in 0..100 {
            let url = self.c.current_url().await.expect("url");
            if !url.as_str().starts_with(&self.env.base) {
                break;
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        for _ in 0..8 {
            // Let a navigation started by the previous step finish.
            tokio::time::sleep(Duration::from_millis(300)).await;
            let url = self.c.current_url().await.expect("url");
            if url.as_str().starts_with(&self.env.base) {
                return;
            }
            if self
                .c
                .find(Locator::Css("input[name=password]"))
                .await
                .is_ok()
            {
                self.fill("input[name=username]", user).await;
                self.fill("input[name=password]", password).await;
                self.shot(&format!("{label}-microsoft-sign-in")).await;
                self.click("form button[type=submit], form input[type=submit]")
                    .await;
            } else if self.c.find(Locator::Css("input[name=otc]")).await.is_ok() {
                self.fill("input[name=otc]", entra_sim::browser::DEMO_OTC)
                    .await;
                self.click("form button[type=submit], form input[type=submit]")
                    .await;
            } else if self
                .c
                .find(Locator::Css("button[name=decision][value=accept]"))
                .await
                .is_ok()
            {
                if org_wide && let Ok(b) = self.c.find(Locator::Css("input[name=on_behalf]")).await
                {
                    b.click().await.expect("tick on behalf");
                }
                self.shot(&format!("{label}-microsoft-consent")).await;
                self.click("button[name=decision][value=accept]").await;
            } else {
                tokio::time::sleep(Duration::from_millis(100)).await;
            }
        }
        panic!(
            "the browser did not come back to Consentry: {}",
            self.text().await
        );
    }

    /// Opens a profile's wizard from its detail page.
    async fn open_wizard(&mut self, id: &str) {
        self.goto(&format!("/console/profiles/{id}")).await;
        self.click("#reauthorize").await;
        self.wait("#continue").await;
        self.audit("wizard").await;
    }
}

/// What both stories start from: Contoso connected with the Teams module, six invalid profiles of
/// the kinds the stories re-authorize, a valid modern-mode profile with a scan profile using it, and a
/// console operator account of the organization.
struct Setup {
    env: TestEnv,
    org_name: String,
    hybrid: String,
    delegated: String,
    custom: String,
    express: String,
    functions: String,
    linked: String,
    scan: String,
}

async fn setup() -> Setup {
    setup_with(Vec::new()).await
}

/// [`setup`] with these settings.
async fn setup_with(settings: Vec<(String, String)>) -> Setup {
    let env = TestEnv::start_with_settings(entra_sim::Scenario::contoso(), settings).await;
    let org = env.connect_contoso(&["teams"]).await;
    let hybrid = env.profile("insights-m365", None).await;
    let delegated = env.profile("cloud-governance-delegated", None).await;
    let custom = env
        .profile("custom-azure-app", Some("cloud-backup-m365"))
        .await;
    let express = env.profile("cloud-backup-express", None).await;
    let functions = env.profile("cloud-backup-delegated", None).await;
    // Re-authorized through a consent link made in the console.
    let linked = env.profile("insights-m365", None).await;
    // A valid modern-mode profile and a scan profile using it, for the scan profile pages.
    let modern = env.profile("cloud-backup-m365-all", None).await;
    env.authorize(&modern, serde_json::json!({"method": "admin"}), ADMIN, None)
        .await;
    let (status, scan) = env
        .api(
            reqwest::Method::POST,
            "/api/v1/tenants/contoso.onmicrosoft.com/scan-profiles",
            Some(
                serde_json::json!({"name": "Teams backup", "modules": ["teams"],
                "authentication": {"method": "app_profile", "app_profile": modern}}),
            ),
        )
        .await;
    assert_eq!(status, reqwest::StatusCode::CREATED, "{scan}");
    let scan = scan["id"].as_str().expect("scan profile id").to_string();
    let (_, o) = env
        .api(
            reqwest::Method::GET,
            &format!("/api/v1/organizations/{org}"),
            None,
        )
        .await;
    let org_name = o["name"].as_str().expect("organization name").to_string();
    env.state
        .console
        .accounts
        .create(
            OPERATOR,
            &SecretString::from(OPERATOR_PASSWORD.to_string()),
            AccountScope::Organization(OrgId::parse(&org).expect("org id")),
        )
        .await
        .expect("operator account");

    Setup {
        env,
        org_name,
        hybrid,
        delegated,
        custom,
        express,
        functions,
        linked,
        scan,
    }
}

/// What a story audited and submitted, for the checks over both.
struct Coverage {
    pages: BTreeSet<String>,
    forms_seen: BTreeSet<String>,
    forms_sent: BTreeSet<String>,
}

impl Story {
    /// A Chromium session of its own (profile directory `profile_dir`) on the shared chromedriver;
    /// screenshots go to `target/artifacts/console/<name>/`.
    async fn open(
        driver: &Driver,
        profile_dir: &Path,
        env: TestEnv,
        axe: Option<String>,
        name: &str,
    ) -> Self {
        let shots = artifacts().join(name);
        std::fs::create_dir_all(&shots).expect("screenshots dir");
        Story {
            c: browser(driver, profile_dir).await,
            env,
            shots,
            n: 0,
            axe,
            pages: BTreeSet::new(),
            forms_seen: BTreeSet::new(),
            forms_sent: BTreeSet::new(),
            error_pages: BTreeSet::new(),
        }
    }

    /// Signs in as the organization's operator from the sign-in page the console sends an anonymous
    /// visitor to.
    async fn sign_in(&mut self) {
        self.goto("/console/profiles").await;
        self.wait("#password").await;
        self.fill("#username", OPERATOR).await;
        self.fill("#password", OPERATOR_PASSWORD).await;
        self.click("button[type=submit]").await;
        self.wait("#profiles").await;
    }

    async fn close(self) -> Coverage {
        self.c.close().await.expect("close the browser");
        Coverage {
            pages: self.pages,
            forms_seen: self.forms_seen,
            forms_sent: self.forms_sent,
        }
    }
}

/// The console in Chromium, as four stories run side by side (each its own Consentry, simulator and
/// browser session, so each takes the others' waiting time): re-authorization in the console; rollouts,
/// campaigns and consent links; the other pages with connecting a tenant; Sign in with Microsoft. Every page and form either of them meets counts for the checks
/// at the end.
#[tokio::test(flavor = "multi_thread")]
async fn the_console_story_in_chromium() {
    if !chromium_available() {
        return;
    }
    // Without axe-core the stories run without their accessibility checks (a printed reason; under CI
    // `axe_source` fails instead).
    let axe = axe_source();
    let driver = start_driver().await;
    let (a, b, c, m) = tokio::join!(
        reauthorization_story(&driver, axe.clone()),
        pages_story(&driver, axe.clone()),
        settings_story(&driver, axe.clone()),
        microsoft_story(&driver, axe)
    );
    let mut pages = BTreeSet::new();
    let mut forms_seen = BTreeSet::new();
    let mut forms_sent = BTreeSet::new();
    for story in [a, b, c, m] {
        pages.extend(story.pages);
        forms_seen.extend(story.forms_seen);
        forms_sent.extend(story.forms_sent);
    }
    // Every form seen was submitted at least once, and every kind of page was audited.
    let unsent: Vec<&String> = forms_seen.difference(&forms_sent).collect();
    assert!(
        unsent.is_empty(),
        "forms on Consentry's pages that this test never submits: {unsent:?} (submitted: {:?})",
        forms_sent
    );
    for page in [
        "/console/login",
        "/console",
        "/console/profiles",
        "/console/profiles/{id}",
        "/console/profiles/{id}/reauthorize",
        "/console/tokens",
        "/console/rollouts",
        "/console/rollouts/{n}",
        "/console/tenants/{id}/scan-profiles",
        "/console/scan-profiles/{id}",
        "/console/scan-profiles/{id}/edit",
        "/console/tenants/{id}/email",
        "/console/tenants/connect/callback",
        "/console/invitations/{token}",
        "/console/organizations/{id}/audit",
        "/console/vendor-apps",
        "/console/no-such-page",
        "/consent/{id}/{token}",
        "/console/campaigns",
        "/console/campaigns/{id}",
        "/campaign/{token}",
        "/campaign/pass/next",
        "/oauth/callback",
        "/console/sign-in/microsoft/callback",
        "/api/v1/docs",
    ] {
        assert!(pages.contains(page), "{page} was not audited: {:?}", pages);
    }
    println!(
        "audited pages: {:?}\nsubmitted forms: {:?}",
        pages, forms_sent
    );
}

/// Sign in (a wrong password first), the list and its filters, the tenants, then re-authorizations
/// through the simulator: admin consent for a hybrid profile and a check now, user consent by a group
/// owner, and a custom app with a bad and a good .pfx.
async fn reauthorization_story(driver: &Driver, axe: Option<String>) -> Coverage {
    let Setup {
        env,
        hybrid,
        delegated,
        custom,
        ..
    } = setup().await;
    let profile_dir = tempfile::tempdir().expect("profile dir");
    let mut s = Story::open(driver, profile_dir.path(), env, axe, "reauthorization").await;

    // Sign in: the console sends an anonymous visitor to the sign-in page and back.
    s.goto("/console/profiles").await;
    s.wait("#password").await;
    s.self_test().await;
    s.shot("sign-in").await;
    s.fill("#username", OPERATOR).await;
    s.fill("#password", "wrong-password-123").await;
    s.expect_error_status("/console/login");
    s.click("button[type=submit]").await;
    assert!(
        s.text()
            .await
            .contains("The user name or password is not correct.")
    );
    s.fill("#password", OPERATOR_PASSWORD).await;
    s.click("button[type=submit]").await;
    let list = s.wait("#profiles").await;
    let _ = list;
    assert!(
        s.c.current_url()
            .await
            .expect("url")
            .path()
            .ends_with("/console/profiles")
    );
    let body = s.text().await;
    assert!(body.contains("6 app profiles are invalid"), "{body}");
    assert!(body.contains("Signed in as operator"));
    s.shot("profiles-invalid-banner").await;

    // The list's filters.
    s.fill("#f-q", "Express").await;
    s.click("form[role=search] button[type=submit]").await;
    s.wait("#profiles").await;
    let body = s.text().await;
    assert!(
        body.contains("Cloud Backup Express") && !body.contains("Insights for Microsoft 365"),
        "{body}"
    );
    s.shot("profiles-filtered").await;

    // Tenants with their health summary.
    s.goto("/console").await;
    assert!(s.text().await.contains("6 Invalid"));
    s.shot("tenants").await;

    // An invalid profile and its reason, then re-authorize it through the simulator.
    s.goto(&format!("/console/profiles/{hybrid}")).await;
    let body = s.text().await;
    assert!(body.contains("Invalid"), "{body}");
    let reason =
        s.c.find(Locator::Css("#reason"))
            .await
            .expect("reason")
            .text()
            .await
            .expect("text");
    assert!(!reason.is_empty());
    s.shot("invalid-profile").await;
    s.open_wizard(&hybrid).await;
    s.shot("wizard-admin-consent").await;
    s.click("#continue").await;
    s.at_microsoft(ADMIN, true, "hybrid").await;
    s.wait("#result").await;
    let body = s.text().await;
    assert!(
        body.contains("Success") && body.contains("re-authorized"),
        "{body}"
    );
    s.shot("hybrid-result").await;
    s.click("#back-to-profile").await;
    let status = s.wait("#status").await;
    assert_eq!(status.text().await.expect("text"), "Valid");
    assert!(s.text().await.contains(ADMIN), "the consent user is shown");
    s.shot("hybrid-valid").await;

    // Check now: the monitor's checker confirms it with Microsoft.
    s.click("#check-now").await;
    let notice = s.wait("#notice").await;
    assert_eq!(
        notice.text().await.expect("text"),
        "Checked now: the profile works."
    );
    assert!(
        s.text().await.contains("console:operator"),
        "the check is in the history"
    );
    s.shot("hybrid-checked").await;

    // User consent: the organization granted admin consent in Entra first; a group owner consents.
    let app_id = entra_sim::Scenario::contoso()
        .client_id_for("cloud-governance-delegated")
        .expect("app in the scenario");
    s.env
        .sim
        .control()
        .grant_admin_consent("contoso.onmicrosoft.com", app_id)
        .expect("admin consent in the simulator");
    s.open_wizard(&delegated).await;
    s.click("#method-user").await;
    s.shot("wizard-user-consent").await;
    s.click("#continue").await;
    s.at_microsoft(GROUP_OWNER, false, "user-consent").await;
    s.wait("#result").await;
    assert!(
        s.text().await.contains("re-authorized"),
        "{}",
        s.text().await
    );
    s.shot("user-consent-result").await;

    // Custom app: a bad .pfx is refused on the form; the good one goes through.
    let files = tempfile::tempdir().expect("files");
    let bad = files.path().join("bad.pfx");
    std::fs::write(&bad, b"this is not a PKCS#12 file").expect("write");
    let good = files.path().join("good.pfx");
    std::fs::write(&good, CUSTOM_APP_PFX).expect("write");
    s.open_wizard(&custom).await;
    s.fill("#application_id", CUSTOM_APP_ID).await;
    s.c.find(Locator::Css("#certificate"))
        .await
        .expect("file input")
        .send_keys(&bad.display().to_string())
        .await
        .expect("choose file");
    s.fill("#password", CUSTOM_APP_PFX_PASSWORD).await;
    s.expect_error_status("/console/profiles/{id}/reauthorize");
    s.click("#continue").await;
    let err = s.wait("#wizard-error").await;
    let msg = err.text().await.expect("text");
    assert!(!msg.is_empty());
    s.shot("custom-app-bad-pfx").await;
    s.error_pages.remove("/console/profiles/{id}/reauthorize");
    s.c.find(Locator::Css("#certificate"))
        .await
        .expect("file input")
        .send_keys(&good.display().to_string())
        .await
        .expect("choose file");
    s.fill("#password", CUSTOM_APP_PFX_PASSWORD).await;
    s.click("#continue").await;
    s.at_microsoft(ADMIN, true, "custom-app").await;
    s.wait("#result").await;
    assert!(
        s.text().await.contains("re-authorized"),
        "{}",
        s.text().await
    );
    s.shot("custom-app-result").await;
    s.click("#back-to-profile").await;
    let body = s.text().await;
    assert!(
        body.contains(CUSTOM_APP_ID) && body.contains("Thumbprint"),
        "{body}"
    );
    s.shot("custom-app-valid").await;

    s.close().await
}

/// A role rejection; a consent link handed off and cancelled, then one opened, completed and used
/// again; a tampered callback; personal API tokens; scan profiles; the audit log; the API docs; the
/// 404 page; the functions gating; a narrow screen; sign out.
async fn pages_story(driver: &Driver, axe: Option<String>) -> Coverage {
    let Setup {
        mut env,
        org_name,
        express,
        linked,
        ..
    } = setup_with(vec![(
        // Counts stop at 2 per status here, so the pages with a count past the limit are audited.
        "CONSENTRY_CONSOLE_COUNT_LIMIT".into(),
        "2".into(),
    )])
    .await;
    // A release of the catalog gives the modern-mode app type a new application permission (and the
    // vendor's app registration asks for it): a permission rollout with one profile.
    let rollout = env
        .release_permission(
            "cloud-backup-m365-all",
            "Reports.Read.All",
            consentry_catalog::PermissionType::Role,
            false,
        )
        .await;
    let profile_dir = tempfile::tempdir().expect("profile dir");
    let mut s = Story::open(driver, profile_dir.path(), env, axe, "pages").await;
    s.sign_in().await;

    // Six profiles are invalid, past the count limit of 2: the banner, the list's and the tenants'
    // counts say so, and a sentence says what "2+" means.
    let body = s.text().await;
    assert!(
        body.contains("More than 2 app profiles are invalid") && body.contains("2+ Invalid"),
        "{body}"
    );
    s.goto("/console/profiles?status=invalid").await;
    let note = s.wait("#counts-capped").await;
    assert_eq!(
        note.text().await.expect("text"),
        "Counts stop at 2: \u{201c}2+\u{201d} means more than 2."
    );
    s.shot("counts-capped").await;
    s.goto("/console").await;
    s.wait("#counts-capped").await;
    assert!(
        s.text()
            .await
            .contains("Re-authorize all 2+ invalid profiles")
    );

    // The rollout: who lacks the new permission; re-authorizing the profile brings it to 100 %.
    s.goto("/console/rollouts").await;
    assert!(
        s.text()
            .await
            .contains(&format!("Catalog version {rollout}")),
        "{}",
        s.text().await
    );
    s.shot("rollouts").await;
    s.click(&format!("#rollouts a[href='/console/rollouts/{rollout}']"))
        .await;
    s.wait("#rollout-summary").await;
    let body = s.text().await;
    assert!(
        body.contains("0% done") && body.contains("1 tenant still lacks Reports.Read.All"),
        "{body}"
    );
    s.wait("figure.chart svg").await;
    s.shot("rollout").await;
    // A consent campaign from the rollout page: one link for the tenant, walked in one pass.
    s.click("#start-rollout-campaign button").await;
    s.wait("#campaign-summary").await;
    let body = s.text().await;
    assert!(
        body.contains("0 of 1 app profiles done") && body.contains("Link not sent"),
        "{body}"
    );
    s.shot("campaign").await;
    let link = s
        .wait("input[id^=link-]")
        .await
        .prop("value")
        .await
        .expect("value")
        .expect("the tenant's link");
    let path = link
        .strip_prefix(&s.env.base)
        .unwrap_or_else(|| panic!("{link} is on this server"))
        .to_string();
    s.goto(&path).await;
    s.wait("#campaign-items").await;
    let body = s.text().await;
    assert!(
        body.contains("Consent requested for 1 app")
            && body.contains("Reports.Read.All")
            && body.contains("catalog version"),
        "{body}"
    );
    s.shot("campaign-link").await;
    s.click("#start-pass").await;
    s.at_microsoft(ADMIN, true, "campaign").await;
    s.wait("#result").await;
    assert!(s.text().await.contains("All done"), "{}", s.text().await);
    s.shot("campaign-summary").await;
    s.goto(&format!("/console/rollouts/{rollout}")).await;
    assert!(s.text().await.contains("100% done"), "{}", s.text().await);
    s.shot("rollout-done").await;
    s.goto("/console/campaigns").await;
    s.wait("#campaigns").await;
    assert!(s.text().await.contains("completed"), "{}", s.text().await);
    s.shot("campaigns").await;
    // A campaign of every invalid profile, then cancelled.
    s.click("#start-invalid-campaign button").await;
    s.wait("#campaign-summary").await;
    assert!(
        s.text().await.contains("Every invalid app profile"),
        "{}",
        s.text().await
    );
    s.click("#cancel-campaign button").await;
    let state = s.wait("#campaign-state").await;
    assert_eq!(state.text().await.expect("text"), "cancelled");
    assert!(
        s.text().await.contains("the link no longer works"),
        "{}",
        s.text().await
    );
    // "Re-authorize all N invalid profiles" of a tenant: straight to the tenant's link.
    s.goto("/console").await;
    s.click("button[id^=reauthorize-all-]").await;
    s.wait("#campaign-items").await;
    let body = s.text().await;
    assert!(
        body.contains("Consent requested for") && body.contains("not been authorized"),
        "{body}"
    );
    s.shot("reauthorize-all").await;

    // A role rejection: Cloud Backup Express needs the Microsoft 365 Backup Administrator role.
    s.open_wizard(&express).await;
    assert!(
        s.text()
            .await
            .contains("Microsoft 365 Backup Administrator")
    );
    s.click("#continue").await;
    s.at_microsoft(ADMIN, true, "role-rejection").await;
    s.wait("#result").await;
    let body = s.text().await;
    assert!(
        body.contains("Not completed") && body.contains("Microsoft 365 Backup Administrator"),
        "{body}"
    );
    s.shot("role-rejection").await;
    s.click("#back-to-profile").await;
    let status = s.wait("#status").await;
    assert_eq!(
        status.text().await.expect("text"),
        "Invalid",
        "the previous state is kept"
    );

    // Or hand a consent link to the tenant's administrator, who needs no Consentry account.
    s.open_wizard(&express).await;
    s.click("#handoff").await;
    s.click("#continue").await;
    let link = s.wait("#consent-link").await.text().await.expect("text");
    assert!(
        link.starts_with(&format!("{}/consent/{express}/", s.env.base)),
        "{link}"
    );
    s.shot("consent-link").await;
    s.goto(&format!("/console/profiles/{express}")).await;
    let status = s.wait("#status").await;
    assert_eq!(
        status.text().await.expect("text"),
        "Re-authorization pending"
    );
    s.click("form[action$='/cancel'] button").await;
    let notice = s.wait("#notice").await;
    assert!(notice.text().await.expect("text").contains("cancelled"));
    assert_eq!(
        s.wait("#status").await.text().await.expect("text"),
        "Invalid",
        "back to its previous status"
    );

    // A consent link made in the console, opened by the tenant's administrator (here in the same
    // browser), taken to Microsoft and completed.
    s.open_wizard(&linked).await;
    s.click("#handoff").await;
    s.click("#continue").await;
    let link = s.wait("#consent-link").await.text().await.expect("text");
    s.shot("consent-link-created").await;
    let path = link
        .strip_prefix(&s.env.base)
        .expect("a link to Consentry")
        .to_string();
    s.goto(&path).await;
    let asked = s.wait("#requested-by").await.text().await.expect("text");
    assert!(
        asked.contains(&org_name)
            && asked
                .contains("operator (signed in to the Consentry console) asks an administrator"),
        "{asked}"
    );
    s.shot("consent-link-page").await;
    s.click("#continue-to-microsoft").await;
    s.at_microsoft(ADMIN, true, "consent-link").await;
    s.wait("#result").await;
    let body = s.text().await;
    assert!(
        body.contains("Success") && body.contains("re-authorized"),
        "{body}"
    );
    s.shot("consent-link-result").await;
    // Whoever opened the link may have no Consentry account: the page says they are done
    // instead of linking to the console. Back in the console, the profile is valid.
    s.wait("#done").await;
    assert!(s.text().await.contains("You can close this page"));
    s.goto(&format!("/console/profiles/{linked}")).await;
    let status = s.wait("#status").await;
    assert_eq!(status.text().await.expect("text"), "Valid");
    s.shot("consent-link-valid").await;
    // A used link and a tampered callback: the result pages that say what went wrong.
    s.expect_error_status("/consent/{id}/{token}");
    s.goto(&path).await;
    assert!(s.text().await.contains("cannot be used"));
    s.shot("consent-link-used").await;
    s.expect_error_status("/oauth/callback");
    s.goto("/oauth/callback?state=a&state=b").await;
    assert!(s.text().await.contains("more than once"));
    s.shot("callback-bad-query").await;

    s.close().await
}

/// The account's and the organization's other pages, side by side with [`pages_story`]: personal API
/// tokens, scan profiles, a tenant's email page, the audit log, the API's description, functions
/// gating, the evidence of a conditional access block, a narrow screen, connecting the fabrikam
/// tenant by consent with the offered profiles, sign-out, and an invitation.
async fn settings_story(driver: &Driver, axe: Option<String>) -> Coverage {
    let Setup {
        env,
        hybrid,
        functions,
        scan,
        ..
    } = setup().await;
    let profile_dir = tempfile::tempdir().expect("profile dir");
    let mut s = Story::open(driver, profile_dir.path(), env, axe, "settings").await;
    s.sign_in().await;

    // Personal API tokens: create one (shown once) and revoke it.
    s.goto("/console/tokens").await;
    s.fill("#name", "report").await;
    s.click("form[action$='/console/tokens'] button[type=submit]")
        .await;
    s.wait("#tokens").await;
    assert!(s.text().await.contains("cpt_"), "the new token is shown");
    s.shot("token-created").await;
    s.click("form[action$='/revoke'] button[type=submit]").await;
    s.wait("#tokens").await;
    assert!(s.text().await.contains("Revoked"), "{}", s.text().await);
    s.shot("token-revoked").await;

    // Scan profiles: the tenant's list, a detail, the edit form saved.
    s.goto(&format!(
        "/console/tenants/{}/scan-profiles",
        s.env.contoso_id
    ))
    .await;
    assert!(s.text().await.contains("Teams backup"));
    s.shot("scan-profiles").await;
    s.goto(&format!("/console/scan-profiles/{scan}")).await;
    s.shot("scan-profile").await;
    s.click("#edit").await;
    s.wait("#save").await;
    s.shot("scan-profile-edit").await;
    s.click("#save").await;
    s.wait("h1").await;
    s.shot("scan-profile-saved").await;

    // A tenant's email page: the administrator contacts saved.
    s.goto(&format!("/console/tenants/{}/email", s.env.contoso_id))
        .await;
    s.wait("#contacts-field").await;
    s.fill("#contacts-field", "it-admin@contoso.example").await;
    s.shot("tenant-email").await;
    s.click("#save-contacts").await;
    s.wait("#saved").await;
    assert!(s.text().await.contains("Saved."));

    // The audit log, and a page that does not exist.
    s.goto("/console/audit").await;
    assert!(s.text().await.contains("Audit log"));
    s.shot("audit-log").await;

    // The API's description in Swagger UI (public, vendored, under the page CSP: its initializer is a
    // served file), with one operation opened.
    s.goto("/api/v1/docs").await;
    s.wait("#operations-profiles-listProfiles").await;
    s.shot("api-docs").await;
    s.click("#operations-profiles-listProfiles .opblock-summary-control")
        .await;
    s.wait("#operations-profiles-listProfiles .opblock-body")
        .await;
    s.shot("api-docs-operation").await;
    s.expect_error_status("/console/no-such-page");
    s.goto("/console/no-such-page").await;
    assert!(s.text().await.contains("Page not found"));
    s.shot("console-404").await;

    // Functions gating: the organization has the Teams module only.
    s.open_wizard(&functions).await;
    let teams =
        s.c.find(Locator::Css("#fn-restore-teams-conversations"))
            .await
            .expect("teams");
    assert!(teams.is_enabled().await.expect("enabled?"));
    let power_bi =
        s.c.find(Locator::Css("#fn-protect-power-bi"))
            .await
            .expect("power bi");
    assert!(!power_bi.is_enabled().await.expect("enabled?"));
    assert!(
        s.text()
            .await
            .contains("your subscription does not include the Power BI module")
    );
    s.shot("functions-gating").await;

    // A delegated profile blocked by conditional access: its page shows the evidence from the
    // tenant's sign-in logs under the reason (the policy's name and the refused address).
    let blocked = s.env.profile("cloud-governance-delegated", None).await;
    let cg_app = entra_sim::Scenario::contoso()
        .client_id_for("cloud-governance-delegated")
        .expect("app in the scenario");
    s.env
        .sim
        .control()
        .grant_admin_consent("contoso.onmicrosoft.com", cg_app)
        .expect("admin consent");
    let owner = "group.owner@contoso.onmicrosoft.com";
    s.env
        .authorize(
            &blocked,
            serde_json::json!({"method": "user"}),
            owner,
            Some("203.0.113.7"),
        )
        .await;
    let policy: entra_sim::CaPolicy = serde_json::from_value(serde_json::json!({
        "name": "Head office only", "users": [owner],
        "allowed_ranges": ["198.51.100.0/24"], "action": "block"
    }))
    .expect("policy");
    s.env
        .sim
        .control()
        .set_ca_policies("contoso.onmicrosoft.com", vec![policy])
        .expect("policy set");
    s.goto(&format!("/console/profiles/{blocked}")).await;
    s.click("#check-now").await;
    let evidence = s.wait("#evidence").await.text().await.expect("text");
    assert!(
        evidence.contains("Head office only: failure") && evidence.contains("203.0.113.7"),
        "{evidence}"
    );
    s.audit("evidence").await;
    s.shot("evidence").await;
    s.env
        .sim
        .control()
        .set_ca_policies("contoso.onmicrosoft.com", vec![])
        .expect("policy lifted");

    // A narrow screen: the list stacks its cells and stays usable.
    s.c.set_window_size(390, 900).await.expect("resize");
    s.goto("/console/profiles").await;
    s.shot("narrow-profiles").await;
    s.goto(&format!("/console/profiles/{hybrid}")).await;
    s.shot("narrow-profile").await;

    // Connect the fabrikam tenant by consenting as its administrator, then create two of the
    // offered app profiles.
    s.goto("/console").await;
    s.click("#connect-tenant").await;
    s.at_microsoft_as(FABRIKAM_ADMIN, FABRIKAM_PASSWORD, true, "connect")
        .await;
    s.wait("#offer").await;
    s.audit("connected").await;
    let body = s.text().await;
    assert!(
        body.contains("Tenant connected") && body.contains("fabrikam.onmicrosoft.com"),
        "{body}"
    );
    s.shot("tenant-connected").await;
    for css in ["#offer-1", "#offer-2"] {
        s.c.find(Locator::Css(css))
            .await
            .expect(css)
            .click()
            .await
            .expect("tick");
    }
    s.click("#create-offered").await;
    s.wait("#profiles").await;
    s.audit("offered-profiles").await;
    let body = s.text().await;
    assert!(body.contains("fabrikam.onmicrosoft.com"), "{body}");
    s.shot("offered-profiles").await;

    // Sign out: the session ends.
    s.click("header.top button[type=submit]").await;
    s.wait("#password").await;
    s.shot("signed-out").await;
    s.goto("/console").await;
    s.wait("#password").await;
    s.audit("end").await;

    // An invitation of the organization's first admin: the link's page and its form, which
    // creates the account and signs it in.
    let org = s.env.state.svc.organizations().await.expect("orgs")[0].id;
    let invitation = s
        .env
        .state
        .invitations
        .create(&consentry_domain::Caller::platform("test"), org, None)
        .await
        .expect("invitation");
    let path = invitation
        .url
        .strip_prefix(&s.env.base)
        .expect("a link to this console")
        .to_string();
    s.goto(&path).await;
    s.wait("#invitation").await;
    s.shot("invitation").await;
    s.fill("#username", "invited.admin").await;
    s.fill("#password", "invited-admin-password").await;
    s.fill("#confirm", "invited-admin-password").await;
    s.click("#create-account").await;
    s.wait("header.top").await;
    s.audit("invited").await;
    assert!(s.text().await.contains("invited.admin"));
    s.shot("invited-signed-in").await;

    // The platform operator's Vendor apps page: the vendor's registrations as last read, linked from
    // the operator's navigation (an organization's admin has no such link).
    assert!(!s.text().await.contains("Vendor apps"));
    s.env
        .state
        .console
        .accounts
        .create(
            "platform.operator",
            &SecretString::from("platform-operator-password".to_string()),
            AccountScope::Platform,
        )
        .await
        .expect("platform account");
    let (snapshot, _) = s.env.state.vendor_credentials.refresh().await;
    assert!(!snapshot.apps.is_empty());
    s.click("header.top button[type=submit]").await;
    s.wait("#password").await;
    s.fill("#username", "platform.operator").await;
    s.fill("#password", "platform-operator-password").await;
    s.click("button[type=submit]").await;
    s.wait("header.top").await;
    s.click("header.top nav a[href='/console/vendor-apps']")
        .await;
    s.wait("#vendor-apps-read-at").await;
    s.audit("vendor-apps").await;
    let body = s.text().await;
    assert!(
        body.contains("No credential in use ends within 30 days") && body.contains("insights-m365"),
        "{body}"
    );
    s.shot("vendor-apps").await;

    s.close().await
}

/// "Sign in with Microsoft": an administrator of a tenant connected to no organization gets the page
/// that says so; admin@contoso signs in through the simulator's pages as the organization's admin
/// and signs out.
async fn microsoft_story(driver: &Driver, axe: Option<String>) -> Coverage {
    let env = TestEnv::start().await;
    env.connect_contoso(&[]).await;
    let profile_dir = tempfile::tempdir().expect("profile dir");
    let mut s = Story::open(driver, profile_dir.path(), env, axe, "microsoft").await;

    s.goto("/console/login").await;
    s.wait("#sign-in-microsoft").await;
    s.expect_error_status("/console/sign-in/microsoft/callback");
    s.click("#sign-in-microsoft").await;
    s.at_microsoft_as(
        "admin@fabrikam.onmicrosoft.com",
        "Demo-Fabrikam-Passw0rd!",
        false,
        "unconnected",
    )
    .await;
    s.wait("#refusal").await;
    s.shot("microsoft-unconnected-tenant").await;
    let text = s.text().await;
    assert!(
        text.contains("Your organization is not connected to Consentry"),
        "{text}"
    );

    s.click("a[href='/console/login']").await;
    s.wait("#sign-in-microsoft").await;
    s.audit("login-again").await;
    s.click("#sign-in-microsoft").await;
    s.at_microsoft(ADMIN, false, "microsoft").await;
    s.wait("#main h1").await;
    s.shot("microsoft-signed-in").await;
    let text = s.text().await;
    assert!(
        text.contains("Tenants") && text.contains("contoso.onmicrosoft.com"),
        "{text}"
    );

    s.click("form[action='/console/logout'] button").await;
    s.wait("#password").await;
    s.audit("signed-out").await;
    s.close().await
}

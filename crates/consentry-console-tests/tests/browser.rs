//! The console in headless Chromium, end to end with entra-sim: sign in; see an invalid profile and its
//! reason; re-authorize it through the simulator's sign-in and consent pages and see it valid; user
//! consent; a custom app with a bad and a good .pfx; a role rejection; the functions gating; and a
//! narrow screen. Each step saves a screenshot under `target/artifacts/console/`.
//!
//! Needs Debian's `chromium` and `chromium-driver` (`scripts/test.sh` installs them). Without them the
//! test is skipped with a printed reason, unless `CI` is set, where it fails.

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
    let msg = format!(
        "browser tests need {} (Debian packages chromium and chromium-driver; scripts/test.sh installs them)",
        missing.join(" and ")
    );
    assert!(std::env::var_os("CI").is_none(), "{msg}");
    println!("skipped: {msg}");
    false
}

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
}

impl Story {
    async fn shot(&mut self, name: &str) {
        self.n += 1;
        let png = self.c.screenshot().await.expect("screenshot");
        std::fs::write(self.shots.join(format!("{:02}-{name}.png", self.n)), png)
            .expect("write screenshot");
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
                "{css} did not appear ({e}); the page says: {}",
                self.text().await
            ),
        }
    }

    async fn goto(&self, path: &str) {
        self.c
            .goto(&format!("{}{path}", self.env.base))
            .await
            .expect("navigate");
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

    async fn click(&self, css: &str) {
        self.c
            .find(Locator::Css(css))
            .await
            .expect(css)
            .click()
            .await
            .expect("click");
    }

    /// Plays the administrator at the simulator's pages until the browser is back at Consentry.
    async fn at_microsoft(&mut self, user: &str, org_wide: bool, label: &str) {
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
                self.fill("input[name=password]", PASSWORD).await;
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
    async fn open_wizard(&self, id: &str) {
        self.goto(&format!("/console/profiles/{id}")).await;
        self.click("#reauthorize").await;
        self.wait("#continue").await;
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn the_console_story_in_chromium() {
    if !chromium_available() {
        return;
    }
    let env = TestEnv::start().await;
    let org = env.connect_contoso(&["teams"]).await;
    let hybrid = env.profile("insights-m365", None).await;
    let delegated = env.profile("cloud-governance-delegated", None).await;
    let custom = env
        .profile("custom-azure-app", Some("cloud-backup-m365"))
        .await;
    let express = env.profile("cloud-backup-express", None).await;
    let functions = env.profile("cloud-backup-delegated", None).await;
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

    let driver = start_driver().await;
    let profile_dir = tempfile::tempdir().expect("profile dir");
    let c = browser(&driver, profile_dir.path()).await;
    let mut s = Story {
        c,
        env,
        shots: artifacts(),
        n: 0,
    };

    // Sign in: the console sends an anonymous visitor to the sign-in page and back.
    s.goto("/console/profiles").await;
    s.wait("#password").await;
    s.shot("sign-in").await;
    s.fill("#username", OPERATOR).await;
    s.fill("#password", "wrong-password-123").await;
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
    assert!(body.contains("5 app profiles are invalid"), "{body}");
    assert!(body.contains("Signed in as operator"));
    s.shot("profiles-invalid-banner").await;

    // Tenants with their health summary.
    s.goto("/console").await;
    assert!(s.text().await.contains("5 Invalid"));
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
    s.click("#continue").await;
    let err = s.wait("#wizard-error").await;
    let msg = err.text().await.expect("text");
    assert!(!msg.is_empty());
    s.shot("custom-app-bad-pfx").await;
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

    // A narrow screen: the list stacks its cells and stays usable.
    s.c.set_window_size(390, 900).await.expect("resize");
    s.goto("/console/profiles").await;
    s.shot("narrow-profiles").await;
    s.goto(&format!("/console/profiles/{hybrid}")).await;
    s.shot("narrow-profile").await;

    // Sign out: the session ends.
    s.click("header.top button[type=submit]").await;
    s.wait("#password").await;
    s.goto("/console").await;
    s.wait("#password").await;

    s.c.close().await.expect("close the browser");
}

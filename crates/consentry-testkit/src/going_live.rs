//! Going live against the simulator: the `going-live` scenario (contoso's tenants and users, and a vendor
//! tenant with no registration yet), started on loopback, and the operator's device code sign-in
//! completed the way a person would on the verification page.

use entra_sim::browser::{Browser, Decision, Page};
use entra_sim::{RunningSim, Scenario, SimOptions};

/// The vendor tenant of the `going-live` scenario (its first tenant).
pub const VENDOR_DOMAIN: &str = "consentry-vendor.onmicrosoft.com";
/// The vendor tenant's Global Administrator.
pub const VENDOR_OWNER: &str = "owner@consentry-vendor.onmicrosoft.com";
/// The vendor tenant's Application Administrator.
pub const VENDOR_APP_ADMIN: &str = "appadmin@consentry-vendor.onmicrosoft.com";
/// A member of the vendor tenant without an administrator role.
pub const VENDOR_MEMBER: &str = "user@consentry-vendor.onmicrosoft.com";

/// The `going-live` scenario with a one-second device code polling interval (Microsoft's is five), so
/// a test's sign-in does not wait.
pub fn going_live_scenario() -> Scenario {
    let mut s = Scenario::going_live();
    s.settings.device_code.interval_secs = 1;
    s
}

/// Starts the simulator on a loopback port with `scenario`.
pub async fn start_sim(scenario: Scenario) -> RunningSim {
    RunningSim::start(
        scenario,
        SimOptions {
            listen: "127.0.0.1:0".parse().expect("addr"),
            ..SimOptions::default()
        },
    )
    .await
    .expect("simulator starts")
}

/// The password of the vendor tenant's users in `scenario`.
pub fn vendor_password(scenario: &Scenario) -> String {
    use secrecy::ExposeSecret as _;
    scenario.tenants[0]
        .users
        .iter()
        .find(|u| u.upn.eq_ignore_ascii_case(VENDOR_OWNER))
        .map(|u| u.password.expose_secret().to_owned())
        .expect("the going-live scenario's application administrator")
}

/// The verification URI and user code in Microsoft's device code message ("… open the page URL and
/// enter the code CODE to authenticate.").
pub fn device_code_in(message: &str) -> Option<(String, String)> {
    let uri = message
        .split_whitespace()
        .find(|w| w.starts_with("http://") || w.starts_with("https://"))?;
    let rest = &message[message.find("enter the code ")? + "enter the code ".len()..];
    let code = rest.split_whitespace().next()?;
    Some((uri.to_owned(), code.to_owned()))
}

/// Completes a device code sign-in as `user`: enters `user_code` on `verification_uri`, signs in and
/// accepts the consent page when one is shown (for the whole organization when `org_wide` and the
/// user is an administrator who may). Returns the last page.
pub async fn complete_device_code(
    sim: &RunningSim,
    verification_uri: &str,
    user_code: &str,
    user: &str,
    password: &str,
    org_wide: bool,
) -> Page {
    let browser = Browser::new(sim.ca_pem(), None).expect("browser");
    browser
        .device_login(
            verification_uri,
            user_code,
            user,
            password,
            Decision::Accept { org_wide },
        )
        .await
}

/// The vendor's Global Administrator consents, for the whole vendor tenant, to Microsoft Graph Command
/// Line Tools' `Application.ReadWrite.All` (an admin-only delegated permission): what Microsoft asks
/// before an Application Administrator can use it, as in a real tenant.
pub async fn consent_graph_cli_for_vendor(sim: &RunningSim, password: &str) {
    let http = reqwest::Client::builder()
        .tls_certs_merge([reqwest::Certificate::from_pem(sim.ca_pem().as_bytes()).expect("CA")])
        .build()
        .expect("client");
    let dc: serde_json::Value = http
        .post(format!(
            "{}/{VENDOR_DOMAIN}/oauth2/v2.0/devicecode",
            sim.base_url()
        ))
        .form(&[
            ("client_id", GRAPH_CLI_TOOLS),
            (
                "scope",
                "https://graph.microsoft.com/Application.ReadWrite.All offline_access",
            ),
        ])
        .send()
        .await
        .expect("devicecode")
        .json()
        .await
        .expect("JSON");
    let page = complete_device_code(
        sim,
        dc["verification_uri"].as_str().expect("verification_uri"),
        dc["user_code"].as_str().expect("user_code"),
        VENDOR_OWNER,
        password,
        true,
    )
    .await;
    assert!(
        page.body.contains("You may now close this window"),
        "{}",
        page.body
    );
}

/// Microsoft's first-party public client "Microsoft Graph Command Line Tools".
pub const GRAPH_CLI_TOOLS: &str = "14d82eec-204b-4c2f-b7e8-296a70dab67e";

/// What a `consentry` process run by [`run_signing_in`] did.
#[derive(Debug)]
pub struct Finished {
    /// Whether it exited successfully.
    pub success: bool,
    /// Its standard output.
    pub stdout: String,
    /// Its standard error (where Microsoft's device code message is printed).
    pub stderr: String,
}

/// Runs `command` (a `consentry apps …` command, its output piped here) and, when it prints
/// Microsoft's device code message on standard error, completes the sign-in as `user` on the
/// simulator's verification page (asserting the sign-in succeeds). Returns once the process exits.
pub async fn run_signing_in(
    mut command: tokio::process::Command,
    sim: &RunningSim,
    user: &str,
    password: &str,
) -> Finished {
    use std::process::Stdio;
    use tokio::io::{AsyncBufReadExt as _, AsyncReadExt as _, BufReader};
    command
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    let mut child = command.spawn().expect("run consentry");
    let mut stdout = child.stdout.take().expect("stdout");
    let stderr = child.stderr.take().expect("stderr");
    let out_task = tokio::spawn(async move {
        let mut s = String::new();
        let _ = stdout.read_to_string(&mut s).await;
        s
    });
    let mut lines = BufReader::new(stderr).lines();
    let mut err = String::new();
    let mut signed_in = false;
    while let Ok(Some(line)) = lines.next_line().await {
        err.push_str(&line);
        err.push('\n');
        if !signed_in && let Some((uri, code)) = device_code_in(&line) {
            signed_in = true;
            let page = complete_device_code(sim, &uri, &code, user, password, false).await;
            assert!(
                page.body.contains("You may now close this window"),
                "the device code sign-in of {user}: {}",
                page.body
            );
        }
    }
    let status = child.wait().await.expect("wait for consentry");
    Finished {
        success: status.success(),
        stdout: out_task.await.expect("stdout"),
        stderr: err,
    }
}

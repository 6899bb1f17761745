//! `consentry apps`: manifests from the catalog, registering every registration in an empty vendor
//! tenant of entra-sim (device code sign-in driven like a person on the verification page), a second
//! run and a dry run changing nothing, a plain member refused with the role named, and rotating a
//! secret without downtime.

use std::path::Path;

use consentry_catalog::Catalog;
use consentry_entra::{ClientCredential, EntraClient, EntraError, GRAPH_DEFAULT_SCOPE};
use consentry_server::Config;
use consentry_server::config::VendorAppConfig;
use consentry_server::startup::{entra_client, vendor_app};
use consentry_testkit::going_live::{
    VENDOR_APP_ADMIN, VENDOR_MEMBER, consent_graph_cli_for_vendor, going_live_scenario,
    run_signing_in, start_sim, vendor_password,
};
use entra_sim::RunningSim;

use crate::run::{consentry, succeeded};

const PUBLIC_URL: &str = "https://consentry.vendor.example";

#[test]
fn manifests_carry_the_catalogs_ids_and_name_what_they_cannot_place() {
    let dir = tempfile::tempdir().unwrap();
    let args = ["apps", "manifest", "--all"];
    let out = crate::run::command(dir.path(), &args)
        .env("CONSENTRY_PUBLIC_URL", PUBLIC_URL)
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr).into_owned();
    let all: serde_json::Value = serde_json::from_str(&succeeded(out, &args)).expect("JSON");
    // The Yammer scope's ID is unknown: named in a warning, not in the manifest.
    assert!(
        stderr.contains("warning:") && stderr.contains("https://api.yammer.com/user_impersonation"),
        "{stderr}"
    );
    assert!(!all.to_string().contains("yammer"), "never guessed");
    let catalog = Catalog::builtin();
    for app in catalog.app_types.iter().filter(|a| !a.custom_app) {
        let m = &all[format!("apps.{}", app.key)];
        assert_eq!(m["signInAudience"], "AzureADMultipleOrgs", "{}", app.key);
        assert_eq!(
            m["web"]["redirectUris"],
            serde_json::json!([format!("{PUBLIC_URL}/oauth/callback")])
        );
        let name = app.entra_app_name.as_deref().unwrap_or(&app.display_name);
        assert_eq!(m["displayName"], name);
        let requested = m["requiredResourceAccess"].to_string();
        for p in app.permissions.iter().filter(|p| p.is_graph()) {
            if let Some(id) = p.id {
                assert!(
                    requested.contains(&id.to_string()),
                    "{}: {}",
                    app.key,
                    p.name
                );
            }
        }
    }
    // Custom app types have no vendor registration.
    for app in catalog.app_types.iter().filter(|a| a.custom_app) {
        assert!(all.get(format!("apps.{}", app.key)).is_none());
    }
    assert_eq!(all["consentry_app"]["displayName"], "Consentry");
    // One app type: the manifest itself.
    let args = ["apps", "manifest", "insights-m365"];
    let one: serde_json::Value = serde_json::from_str(&succeeded(
        crate::run::command(dir.path(), &args)
            .env("CONSENTRY_PUBLIC_URL", PUBLIC_URL)
            .output()
            .unwrap(),
        &args,
    ))
    .unwrap();
    assert_eq!(one, all["apps.insights-m365"]);
    // A custom app type is refused with the reason.
    let custom = catalog.app_types.iter().find(|a| a.custom_app).unwrap();
    let out = consentry(dir.path(), &["apps", "manifest", &custom.key]);
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("custom app type"));
}

/// The simulator and the settings that point Consentry at it (endpoints, CA, vendor tenant; no app).
struct Vendor {
    sim: RunningSim,
    password: String,
    vars: Vec<(String, String)>,
    dir: tempfile::TempDir,
}

impl Vendor {
    async fn start() -> Vendor {
        let scenario = going_live_scenario();
        let sim = start_sim(scenario.clone()).await;
        let dir = tempfile::tempdir().unwrap();
        let mut vars = consentry_testkit::sim_settings(&sim, &scenario, dir.path(), None);
        assert!(
            !vars.iter().any(|(k, _)| k.starts_with("CONSENTRY_APPS__")),
            "no registration in the going-live vendor tenant"
        );
        vars.push(("CONSENTRY_PUBLIC_URL".into(), PUBLIC_URL.into()));
        vars.push((
            "CONSENTRY_DATA_DIR".into(),
            dir.path().join("data").display().to_string(),
        ));
        let password = vendor_password(&scenario);
        // As in a real tenant, a Global Administrator first consents to Microsoft Graph Command Line
        // Tools' Application.ReadWrite.All for the organization.
        consent_graph_cli_for_vendor(&sim, &password).await;
        Vendor {
            password,
            sim,
            vars,
            dir,
        }
    }

    fn config_path(&self) -> std::path::PathBuf {
        self.dir.path().join("etc").join("consentry.toml")
    }

    fn config(&self) -> Config {
        Config::load(Some(&self.config_path()), self.vars.clone())
            .expect("the written config loads")
    }

    /// Runs `consentry --config … ARGS`, signing in as `user` when it shows a device code; (success,
    /// stdout, stderr).
    async fn run(&self, args: &[&str], user: &str) -> (bool, String, String) {
        let mut cmd = tokio::process::Command::new(env!("CARGO_BIN_EXE_consentry"));
        cmd.arg("--config")
            .arg(self.config_path())
            .args(args)
            .env_clear()
            .env("PATH", std::env::var("PATH").unwrap_or_default())
            .envs(self.vars.iter().cloned());
        let f = run_signing_in(cmd, &self.sim, user, &self.password).await;
        (f.success, f.stdout, f.stderr)
    }

    fn client(&self) -> EntraClient {
        entra_client(&self.config()).expect("client")
    }

    /// Registers `app_type` as the application administrator; (vendor tenant, its `[apps.*]` entry,
    /// its secret file).
    async fn registered(&self, app_type: &str) -> (String, VendorAppConfig, std::path::PathBuf) {
        let (ok, _, err) = self
            .run(
                &["apps", "register", "--yes", "--only", app_type],
                VENDOR_APP_ADMIN,
            )
            .await;
        assert!(ok, "{err}");
        let cfg = self.config();
        let entry = cfg.apps[app_type].clone();
        let file = entry.client_secret_file.clone().expect("a secret file");
        (
            cfg.vendor_tenant.clone().expect("vendor tenant"),
            entry,
            file,
        )
    }
}

async fn token(
    client: &EntraClient,
    tenant: &str,
    app_id: &str,
    credential: &ClientCredential,
) -> Result<(), EntraError> {
    client
        .client_credentials(tenant, app_id, credential, GRAPH_DEFAULT_SCOPE)
        .await
        .map(|_| ())
}

#[cfg(unix)]
fn mode(path: &Path) -> u32 {
    use std::os::unix::fs::PermissionsExt as _;
    std::fs::metadata(path).unwrap().permissions().mode() & 0o777
}

#[tokio::test]
async fn register_creates_every_registration_then_changes_nothing() {
    let v = Vendor::start().await;
    // A dry run plans every creation and changes nothing.
    let (ok, out, err) = v
        .run(&["apps", "register", "--dry-run"], VENDOR_APP_ADMIN)
        .await;
    assert!(ok, "{err}");
    assert!(out.contains("create the registration"), "{out}");
    assert!(out.contains("Dry run: nothing was changed."), "{out}");
    assert!(!v.config_path().exists(), "a dry run writes nothing");

    let (ok, out, err) = v
        .run(&["apps", "register", "--yes"], VENDOR_APP_ADMIN)
        .await;
    assert!(ok, "{err}\n{out}");
    assert!(
        err.contains("enter the code"),
        "Microsoft's message is shown: {err}"
    );
    let cfg = v.config();
    let vendor = cfg.vendor_tenant.clone().expect("vendor_tenant written");
    let catalog = Catalog::builtin();
    let client = v.client();
    let text = std::fs::read_to_string(v.config_path()).unwrap();
    #[cfg(unix)]
    assert_eq!(mode(&v.config_path()), 0o600);
    for app in catalog.app_types.iter().filter(|a| !a.custom_app) {
        let entry = cfg
            .apps
            .get(&app.key)
            .unwrap_or_else(|| panic!("[apps.{}]: {text}", app.key));
        let file = entry.client_secret_file.as_ref().expect("secret in a file");
        #[cfg(unix)]
        assert_eq!(mode(file), 0o600, "{}", file.display());
        let va = vendor_app(entry, &app.key).unwrap();
        token(&client, &vendor, &entry.client_id, &va.credential())
            .await
            .unwrap_or_else(|e| {
                panic!("{}: client credentials in the vendor tenant: {e}", app.key)
            });
    }
    let consentry_app = cfg.consentry_app.as_ref().expect("[consentry_app]");
    let va = vendor_app(consentry_app, "consentry_app").unwrap();
    token(&client, &vendor, &consentry_app.client_id, &va.credential())
        .await
        .unwrap();

    // Administrator consent in contoso, then client credentials there.
    let entry = &cfg.apps["insights-m365"];
    let url = client
        .admin_consent_url(&consentry_entra::AdminConsentRequest {
            tenant: "contoso.onmicrosoft.com".into(),
            client_id: entry.client_id.clone(),
            redirect_uri: format!("{PUBLIC_URL}/oauth/callback"),
            state: "s".into(),
            scope: None,
        })
        .unwrap();
    let browser = entra_sim::browser::Browser::new(v.sim.ca_pem(), None).unwrap();
    let page = browser
        .at_microsoft(
            url.as_str(),
            "admin@contoso.onmicrosoft.com",
            consentry_testkit::PASSWORD,
            entra_sim::browser::Decision::Accept { org_wide: true },
        )
        .await;
    let params = page.redirect_params();
    assert_eq!(
        params.get("admin_consent").map(String::as_str),
        Some("True"),
        "{page:?}"
    );
    let va = vendor_app(entry, "insights-m365").unwrap();
    token(
        &client,
        "contoso.onmicrosoft.com",
        &entry.client_id,
        &va.credential(),
    )
    .await
    .expect("client credentials in contoso after consent");

    // A second run plans nothing and creates no credential.
    let before: Vec<(String, String)> = cfg
        .apps
        .iter()
        .map(|(k, e)| {
            (
                k.clone(),
                std::fs::read_to_string(e.client_secret_file.as_ref().unwrap()).unwrap(),
            )
        })
        .collect();
    let (ok, out, err) = v
        .run(&["apps", "register", "--yes"], VENDOR_APP_ADMIN)
        .await;
    assert!(ok, "{err}");
    assert!(out.contains("Nothing to do."), "{out}");
    assert!(
        !out.contains("create") && !out.contains("add a credential"),
        "{out}"
    );
    assert_eq!(std::fs::read_to_string(v.config_path()).unwrap(), text);
    for (k, secret) in before {
        let e = &v.config().apps[&k];
        assert_eq!(
            std::fs::read_to_string(e.client_secret_file.as_ref().unwrap()).unwrap(),
            secret
        );
    }
    let own = client
        .client_credentials(
            &vendor,
            &entry.client_id,
            &va.credential(),
            GRAPH_DEFAULT_SCOPE,
        )
        .await
        .unwrap();
    let registration = client
        .application_by_app_id(&own.access_token, &entry.client_id)
        .await
        .unwrap()
        .unwrap();
    assert_eq!(
        registration.password_credentials.len(),
        1,
        "no second secret"
    );
}

#[tokio::test]
async fn a_registration_found_by_name_is_adopted_and_a_plain_member_is_refused() {
    let v = Vendor::start().await;
    // A member without an administrator role: Graph refuses, the message names the role.
    let (ok, _, err) = v
        .run(
            &["apps", "register", "--yes", "--only", "consentry-app"],
            VENDOR_MEMBER,
        )
        .await;
    assert!(!ok);
    assert!(err.contains("Application Administrator"), "{err}");

    // Registered once; then the configuration is lost: the registration is adopted, not duplicated.
    let (ok, _, err) = v
        .run(
            &["apps", "register", "--yes", "--only", "consentry-app"],
            VENDOR_APP_ADMIN,
        )
        .await;
    assert!(ok, "{err}");
    let first = v.config().consentry_app.unwrap().client_id;
    std::fs::remove_file(v.config_path()).unwrap();
    let (ok, out, err) = v
        .run(
            &["apps", "register", "--yes", "--only", "consentry-app"],
            VENDOR_APP_ADMIN,
        )
        .await;
    assert!(ok, "{err}");
    assert!(out.contains("adopted"), "{out}");
    let cfg = v.config();
    let entry = cfg.consentry_app.as_ref().unwrap();
    assert_eq!(entry.client_id, first);
    let va = vendor_app(entry, "consentry_app").unwrap();
    token(
        &v.client(),
        cfg.vendor_tenant.as_deref().unwrap(),
        &first,
        &va.credential(),
    )
    .await
    .expect("the new secret of the adopted registration works");
}

#[tokio::test]
async fn rotate_credential_replaces_the_secret() {
    let v = Vendor::start().await;
    let (vendor, entry, file) = v.registered("insights-m365").await;
    let old = vendor_app(&entry, "x").unwrap().credential();

    let (ok, out, err) = v
        .run(
            &[
                "apps",
                "rotate-credential",
                "insights-m365",
                "--yes",
                "--grace-seconds",
                "0",
            ],
            VENDOR_APP_ADMIN,
        )
        .await;
    assert!(ok, "{err}\n{out}");
    for step in [
        "1. added",
        "2. the new credential gets a token",
        "3. switched",
        "5. removed",
    ] {
        assert!(out.contains(step), "{out}");
    }
    let cfg = v.config();
    assert_eq!(
        cfg.apps["insights-m365"].client_secret_file.as_ref(),
        Some(&file)
    );
    #[cfg(unix)]
    assert_eq!(mode(&file), 0o600);
    let new = vendor_app(&cfg.apps["insights-m365"], "x")
        .unwrap()
        .credential();
    let client = v.client();
    token(&client, &vendor, &entry.client_id, &new)
        .await
        .expect("new secret works");
    match token(&client, &vendor, &entry.client_id, &old).await {
        Err(EntraError::Identity(e)) => {
            assert!(e.error_codes.contains(&7000215), "{e:?}");
        }
        other => panic!("the old secret must be refused: {other:?}"),
    }
}

#[tokio::test]
async fn certificate_credentials_are_registered_and_rotated() {
    let v = Vendor::start().await;
    let (ok, out, err) = v
        .run(
            &[
                "apps",
                "register",
                "--yes",
                "--only",
                "insights-m365",
                "--credential",
                "certificate",
            ],
            VENDOR_APP_ADMIN,
        )
        .await;
    assert!(ok, "{err}\n{out}");
    assert!(out.contains("certificate"), "{out}");
    let cfg = v.config();
    let vendor = cfg.vendor_tenant.clone().unwrap();
    let entry = cfg.apps["insights-m365"].clone();
    let pfx = entry.certificate_file.clone().expect("certificate_file");
    let password = entry
        .certificate_password_file
        .clone()
        .expect("certificate_password_file");
    assert!(entry.client_secret_file.is_none());
    #[cfg(unix)]
    {
        assert_eq!(mode(&pfx), 0o600);
        assert_eq!(mode(&password), 0o600);
    }
    let client = v.client();
    let old = vendor_app(&entry, "x").unwrap().credential();
    token(&client, &vendor, &entry.client_id, &old)
        .await
        .expect("the certificate gets a token");

    let (ok, out, err) = v
        .run(
            &[
                "apps",
                "rotate-credential",
                "insights-m365",
                "--yes",
                "--grace-seconds",
                "0",
            ],
            VENDOR_APP_ADMIN,
        )
        .await;
    assert!(ok, "{err}\n{out}");
    assert!(out.contains("5. removed the old credential"), "{out}");
    let new = vendor_app(&v.config().apps["insights-m365"], "x")
        .unwrap()
        .credential();
    token(&client, &vendor, &entry.client_id, &new)
        .await
        .expect("the new certificate works");
    assert!(
        token(&client, &vendor, &entry.client_id, &old)
            .await
            .is_err(),
        "the old certificate is refused"
    );
}

#[test]
fn rotation_refuses_an_inline_secret_and_says_what_to_do() {
    let dir = tempfile::tempdir().unwrap();
    let config = dir.path().join("consentry.toml");
    std::fs::write(
        &config,
        "vendor_tenant = \"consentry-vendor.onmicrosoft.com\"\n\n[apps.insights-m365]\nclient_id = \"c0de0000-0000-4000-8000-000000000001\"\nclient_secret = \"inline-secret\"\n",
    )
    .unwrap();
    let out = consentry(
        dir.path(),
        &[
            "--config",
            config.to_str().unwrap(),
            "apps",
            "rotate-credential",
            "insights-m365",
            "--yes",
        ],
    );
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("inline") && err.contains("client_secret_file"),
        "{err}"
    );
    // Nothing was touched.
    assert!(
        std::fs::read_to_string(&config)
            .unwrap()
            .contains("inline-secret")
    );
}

#[tokio::test]
async fn a_rotation_that_cannot_prove_the_new_secret_leaves_everything_as_it_was() {
    let v = Vendor::start().await;
    let (vendor, entry, file) = v.registered("insights-m365").await;
    let secret = std::fs::read_to_string(&file).unwrap();
    let config_text = std::fs::read_to_string(v.config_path()).unwrap();
    // Without its service principal in the vendor's tenant, no credential of the app gets a token there.
    v.sim
        .control()
        .delete_service_principal(&vendor, entry.client_id.parse().unwrap())
        .unwrap();
    let (ok, out, err) = v
        .run(
            &[
                "apps",
                "rotate-credential",
                "insights-m365",
                "--yes",
                "--grace-seconds",
                "0",
                "--prove-seconds",
                "2",
            ],
            VENDOR_APP_ADMIN,
        )
        .await;
    assert!(!ok, "{out}");
    assert!(out.contains("1. added"), "{out}");
    assert!(!out.contains("3. switched"), "{out}");
    assert!(
        err.contains("the new credential was removed again and the configuration is unchanged"),
        "{err}"
    );
    assert_eq!(std::fs::read_to_string(&file).unwrap(), secret);
    assert_eq!(
        std::fs::read_to_string(v.config_path()).unwrap(),
        config_text
    );
    // `register` puts the service principal back and keeps the (still valid) secret: one secret only.
    let (ok, out, err) = v
        .run(
            &["apps", "register", "--yes", "--only", "insights-m365"],
            VENDOR_APP_ADMIN,
        )
        .await;
    assert!(ok, "{err}");
    assert!(
        out.contains("service principal") && !out.contains("add a credential"),
        "{out}"
    );
    let client = v.client();
    let old = vendor_app(&entry, "x").unwrap().credential();
    let own = client
        .client_credentials(&vendor, &entry.client_id, &old, GRAPH_DEFAULT_SCOPE)
        .await
        .expect("the old secret still works");
    let registration = client
        .application_by_app_id(&own.access_token, &entry.client_id)
        .await
        .unwrap()
        .unwrap();
    assert_eq!(
        registration.password_credentials.len(),
        1,
        "the new secret is gone"
    );
}

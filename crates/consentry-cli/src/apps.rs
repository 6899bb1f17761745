//! `consentry apps`: the vendor's app registrations in its own tenant, from the catalog: print their
//! manifests, register them through Graph (device code sign-in, plan, confirm, apply, write the
//! configuration), rotate one's credential without downtime.

use std::io::{BufRead as _, IsTerminal as _, Write as _};
use std::path::{Path, PathBuf};
use std::time::Duration;

use anyhow::{Context as _, bail};
use clap::{Args, Subcommand, ValueEnum};
use consentry_certs::ClientCertificate;
use consentry_entra::{ClientCredential, EntraClient, qualify_scopes};
use consentry_registrations::apply::{CredentialChoice, apply_one, find, store_credential};
use consentry_registrations::config_file::{ConfigFile, secrets_dir};
use consentry_registrations::manifest::{self, Manifest, Registration};
use consentry_registrations::plan::{Action, plan};
use consentry_registrations::rotate::{Current, RotateOptions, rotate};
use consentry_server::Config;
use consentry_server::config::VendorAppConfig;
use consentry_server::startup::{entra_client, load_catalog, vendor_app};
use secrecy::{ExposeSecret as _, SecretString};

/// Microsoft's first-party public client "Microsoft Graph Command Line Tools", usable for the device
/// code flow in every tenant.
pub const GRAPH_CLI_TOOLS_APP_ID: &str = "14d82eec-204b-4c2f-b7e8-296a70dab67e";

/// The delegated permission the operator's sign-in asks for.
const SIGN_IN_SCOPE: &str = "Application.ReadWrite.All";

#[derive(Debug, Subcommand)]
pub enum AppsCmd {
    /// Print what a registration must be, as Microsoft's application manifest (JSON, Microsoft Graph
    /// format); warnings (permissions whose ID the catalog does not know) go to stderr.
    Manifest {
        /// An app type key (`consentry catalog list`), or `consentry-app` for Consentry's own.
        #[arg(required_unless_present = "all", conflicts_with = "all")]
        app_type: Option<String>,
        /// Every registration: an object by configuration table (`apps.<key>`, `consentry_app`).
        #[arg(long)]
        all: bool,
    },
    /// Create or update the registrations in the vendor's tenant (`vendor_tenant`) and write their
    /// settings into the configuration file. Signs in with the device code flow; shows the plan first;
    /// never deletes anything; a second run changes nothing. Global cloud only (`[apps.*]`,
    /// `[consentry_app]`): a national cloud's registrations (`[clouds.<key>.apps.*]`) are not written yet.
    Register(RegisterArgs),
    /// Replace a registration's secret (or certificate) without downtime: add a new one, prove it,
    /// switch the file the configuration names, wait, remove the old one.
    RotateCredential(RotateArgs),
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum CredentialKind {
    /// A client secret.
    Secret,
    /// A self-signed certificate (.pfx with a password file).
    Certificate,
}

#[derive(Debug, Args)]
pub struct SignInArgs {
    /// The public client to sign in with (device code flow). Default: Microsoft Graph Command Line Tools.
    #[arg(long, default_value = GRAPH_CLI_TOOLS_APP_ID)]
    client_id: String,
    /// Do not ask for confirmation.
    #[arg(long)]
    yes: bool,
}

#[derive(Debug, Args)]
pub struct RegisterArgs {
    /// Only these registrations (app type keys, or `consentry-app`); repeatable. Default: all.
    #[arg(long = "only", value_name = "APP_TYPE")]
    only: Vec<String>,
    /// Show the plan and stop.
    #[arg(long)]
    dry_run: bool,
    /// The credential given to a registration that has no working one.
    #[arg(long, value_enum, default_value_t = CredentialKind::Secret)]
    credential: CredentialKind,
    /// Validity of a new secret (or certificate, rounded up to years), in days.
    #[arg(long, default_value_t = 180, value_parser = clap::value_parser!(u32).range(1..=730))]
    secret_days: u32,
    /// The vendor's tenant (ID or verified domain); default `vendor_tenant` of the configuration,
    /// written into it when given.
    #[arg(long)]
    vendor_tenant: Option<String>,
    #[command(flatten)]
    sign_in: SignInArgs,
}

#[derive(Debug, Args)]
pub struct RotateArgs {
    /// An app type key, or `consentry-app`.
    target: String,
    /// Seconds between the switch and the removal of the old credential.
    #[arg(long, default_value_t = 60)]
    grace_seconds: u64,
    /// How long to keep trying the new credential before giving up (and removing it again): Microsoft
    /// may take a while to replicate a new credential.
    #[arg(long, default_value_t = 120)]
    prove_seconds: u64,
    /// Validity of the new secret (or certificate, rounded up to years), in days.
    #[arg(long, default_value_t = 180, value_parser = clap::value_parser!(u32).range(1..=730))]
    secret_days: u32,
    #[command(flatten)]
    sign_in: SignInArgs,
}

/// Runs an `apps` command.
pub async fn run(cmd: AppsCmd, config_path: Option<&Path>) -> anyhow::Result<()> {
    match cmd {
        AppsCmd::Manifest { app_type, all } => {
            let cfg = crate::load_config(config_path)?;
            print_manifests(&cfg, app_type.as_deref(), all)
        }
        AppsCmd::Register(args) => register(args, config_path).await,
        AppsCmd::RotateCredential(args) => rotate_credential(args, config_path).await,
    }
}

fn print_manifests(cfg: &Config, app_type: Option<&str>, all: bool) -> anyhow::Result<()> {
    let catalog = load_catalog(cfg)?;
    let manifests = if all {
        manifest::all(&catalog, &cfg.public_url)
    } else {
        let arg = app_type.unwrap_or_default();
        vec![manifest::for_registration(
            &catalog,
            &Registration::from_arg(arg),
            &cfg.public_url,
        )?]
    };
    for w in manifests.iter().flat_map(|m| &m.warnings) {
        eprintln!("warning: {w}");
    }
    let out = if all {
        let mut map = serde_json::Map::new();
        for m in &manifests {
            map.insert(m.registration.config_path().join("."), m.to_json());
        }
        serde_json::Value::Object(map)
    } else {
        manifests[0].to_json()
    };
    println!("{}", serde_json::to_string_pretty(&out)?);
    Ok(())
}

/// The configuration (from the file when it exists) and the file's path, which must be given.
fn config_and_path(config_path: Option<&Path>) -> anyhow::Result<(Config, PathBuf)> {
    let path = config_path.context(
        "give the configuration file with --config (or CONSENTRY_CONFIG): the registrations' settings are written into it (it is created when missing)",
    )?;
    let cfg = if path.exists() {
        crate::load_config(Some(path))?
    } else {
        crate::load_config(None)?
    };
    Ok((cfg, path.to_path_buf()))
}

/// Signs the operator in to `tenant` with the device code flow (Microsoft's message on stderr).
async fn sign_in(
    client: &EntraClient,
    tenant: &str,
    args: &SignInArgs,
) -> anyhow::Result<SecretString> {
    let mut scopes = qualify_scopes(&[SIGN_IN_SCOPE]);
    scopes.push("offline_access".into());
    let flow = client
        .start_device_code(tenant, &args.client_id, &scopes)
        .await
        .with_context(|| format!("cannot start the device code sign-in to {tenant}"))?;
    eprintln!(
        "Sign in to the vendor's tenant {tenant} with an account that may manage app registrations \
         (Application Administrator, Cloud Application Administrator or Global Administrator). If Microsoft \
         asks for an administrator's approval, a Global Administrator must first consent to the sign-in app \
         (client ID {}) for the organization: sign in once as that administrator and tick \
         \"Consent on behalf of your organization\".",
        args.client_id
    );
    eprintln!("{}", flow.message);
    let _ = std::io::stderr().flush();
    let tokens = client.wait_for_device_code(&flow).await?;
    if let Some(Ok(c)) = tokens.id_token_claims()
        && let Some(who) = c.user_principal()
    {
        eprintln!("Signed in as {who}.");
    } else if let Ok(c) = tokens.access_token_claims()
        && let Some(who) = c.user_principal()
    {
        eprintln!("Signed in as {who}.");
    }
    Ok(tokens.access_token)
}

fn confirm(question: &str, yes: bool) -> anyhow::Result<bool> {
    if yes {
        return Ok(true);
    }
    if !std::io::stdin().is_terminal() {
        bail!("{question} needs a confirmation: run it on a terminal, or pass --yes");
    }
    eprint!("{question} [y/N] ");
    let _ = std::io::stderr().flush();
    let mut line = String::new();
    std::io::stdin().lock().read_line(&mut line)?;
    Ok(matches!(line.trim(), "y" | "Y" | "yes" | "YES" | "Yes"))
}

fn configured<'a>(cfg: &'a Config, r: &Registration) -> Option<&'a VendorAppConfig> {
    match r {
        Registration::AppType(key) => cfg.apps.get(key),
        Registration::ConsentryApp => cfg.consentry_app.as_ref(),
    }
}

async fn register(args: RegisterArgs, config_path: Option<&Path>) -> anyhow::Result<()> {
    let (cfg, path) = config_and_path(config_path)?;
    let tenant = args
        .vendor_tenant
        .clone()
        .or_else(|| cfg.vendor_tenant.clone())
        .context("no vendor tenant: set vendor_tenant in the configuration (the vendor's own tenant ID or verified domain), or pass --vendor-tenant")?;
    let catalog = load_catalog(&cfg)?;
    let mut manifests: Vec<Manifest> = manifest::all(&catalog, &cfg.public_url);
    if !args.only.is_empty() {
        let wanted: Vec<Registration> = args
            .only
            .iter()
            .map(|a| Registration::from_arg(a))
            .collect();
        for w in &wanted {
            manifest::for_registration(&catalog, w, &cfg.public_url)?;
        }
        manifests.retain(|m| wanted.contains(&m.registration));
    }
    for w in manifests.iter().flat_map(|m| &m.warnings) {
        eprintln!("warning: {w}");
    }
    let client = entra_client(&cfg)?;
    let token = sign_in(&client, &tenant, &args.sign_in).await?;

    eprintln!("Looking for the registrations in {tenant}…");
    let mut found = Vec::new();
    for m in &manifests {
        let entry = configured(&cfg, &m.registration);
        // A credential the configuration names but that cannot be read counts as none.
        let credential: Option<ClientCredential> = entry.and_then(|e| {
            vendor_app(e, &m.registration.config_path().join("."))
                .map(|v| v.credential())
                .map_err(|e| eprintln!("note: {e}; a new credential will be added"))
                .ok()
        });
        let lookup = entry.map(|e| (e.client_id.as_str(), credential.as_ref()));
        found.push(find(&client, &token, &tenant, m, lookup).await?);
    }
    let plan = plan(&manifests, &found);
    print!("{}", plan.render());
    let tenant_to_write = args.vendor_tenant.is_some() || cfg.vendor_tenant.is_none();
    if args.dry_run {
        println!("Dry run: nothing was changed.");
        return blocked_result(&plan);
    }
    if plan.is_noop() && !tenant_to_write {
        return blocked_result(&plan);
    }
    if !plan.is_noop() && !confirm("Apply this plan?", args.sign_in.yes)? {
        bail!("not applied: nothing was changed");
    }
    let mut file = ConfigFile::open_or_new(&path)?;
    file.set_vendor_tenant(&tenant);
    file.save()?;
    let choice = match args.credential {
        CredentialKind::Secret => CredentialChoice::Secret {
            days: args.secret_days,
        },
        CredentialKind::Certificate => CredentialChoice::Certificate {
            years: args.secret_days.div_ceil(365),
        },
    };
    for (m, p) in manifests.iter().zip(&plan.registrations) {
        if p.actions.is_empty() {
            continue;
        }
        let applied = apply_one(&client, &token, &tenant, m, p, choice).await?;
        // Each registration's settings are written before the next is touched: a failure later
        // loses no secret.
        if p.actions.contains(&Action::WriteConfig) {
            let files = match &applied.credential {
                Some(c) => Some(store_credential(&path, &m.registration, c)?),
                None => None,
            };
            file.set_registration(&m.registration, &applied.app_id, files.as_ref())?;
            file.save()?;
        }
        println!("{}: {}", m.registration, applied.done.join("; "));
    }
    println!(
        "Wrote {} (secrets in {}, mode 0600).",
        path.display(),
        secrets_dir(&path).display()
    );
    blocked_result(&plan)
}

fn blocked_result(plan: &consentry_registrations::Plan) -> anyhow::Result<()> {
    let blocked: Vec<String> = plan.blocked().map(|r| r.registration.to_string()).collect();
    if blocked.is_empty() {
        Ok(())
    } else {
        bail!(
            "{} could not be planned (see above); the others are done",
            blocked.join(", ")
        )
    }
}

fn read_secret(path: &Path, what: &str) -> anyhow::Result<SecretString> {
    Ok(SecretString::from(
        std::fs::read_to_string(path)
            .with_context(|| format!("cannot read {what} {}", path.display()))?
            .trim()
            .to_owned(),
    ))
}

/// The credential rotation switches: it must be in a file.
fn current_credential(entry: &VendorAppConfig, table: &str) -> anyhow::Result<Current> {
    if entry.client_secret.is_some() {
        bail!(
            "{table} holds its secret inline (client_secret in the file, or a CONSENTRY_…__CLIENT_SECRET variable): \
             rotation switches a file. Put the secret in a file of mode 0600, name it in {table} as client_secret_file, \
             remove client_secret, and run again"
        );
    }
    if let Some(file) = &entry.client_secret_file {
        return Ok(Current::Secret {
            file: file.clone(),
            secret: read_secret(file, "client_secret_file")?,
        });
    }
    if let Some(file) = &entry.certificate_file {
        let password = match (
            &entry.certificate_password,
            &entry.certificate_password_file,
        ) {
            (Some(p), _) => p.clone(),
            (None, Some(f)) => read_secret(f, "certificate_password_file")?,
            (None, None) => SecretString::from(String::new()),
        };
        if password.expose_secret().is_empty() {
            bail!(
                "{table}: the certificate has no password file; give certificate_password_file and run again"
            );
        }
        let bytes = std::fs::read(file)
            .with_context(|| format!("cannot read certificate_file {}", file.display()))?;
        let certificate = ClientCertificate::from_pfx(
            &bytes,
            password.expose_secret(),
            time::OffsetDateTime::now_utc(),
        )
        .with_context(|| format!("{table}.certificate_file {}", file.display()))?;
        return Ok(Current::Certificate {
            file: file.clone(),
            password,
            certificate: Box::new(certificate),
        });
    }
    bail!("{table} has no credential to rotate: run `consentry apps register` first")
}

async fn rotate_credential(args: RotateArgs, config_path: Option<&Path>) -> anyhow::Result<()> {
    let (cfg, _path) = config_and_path(config_path)?;
    let tenant = cfg
        .vendor_tenant
        .clone()
        .context("no vendor_tenant in the configuration: set it to the vendor's own tenant (where the registrations are)")?;
    let registration = Registration::from_arg(&args.target);
    let table = registration.config_path().join(".");
    let entry = configured(&cfg, &registration).with_context(|| {
        format!("the configuration has no [{table}]: run `consentry apps register` first")
    })?;
    let current = current_credential(entry, &table)?;
    println!(
        "Rotating the credential of [{table}] (client ID {}) in {tenant}.",
        entry.client_id
    );
    if !confirm(
        "Add a new credential, switch to it and remove the old one?",
        args.sign_in.yes,
    )? {
        bail!("not rotated: nothing was changed");
    }
    let client = entra_client(&cfg)?;
    let token = sign_in(&client, &tenant, &args.sign_in).await?;
    let options = RotateOptions {
        grace: Duration::from_secs(args.grace_seconds),
        prove_for: Duration::from_secs(args.prove_seconds),
        validity_days: args.secret_days,
    };
    let mut say = |line: String| println!("{line}");
    let rotated = rotate(
        &client,
        &token,
        &tenant,
        &entry.client_id,
        &current,
        options,
        &mut say,
    )
    .await?;
    match rotated.left_in_place {
        Some(_) => {
            bail!("rotated, but the old credential is still on the registration (see above)")
        }
        None => {
            println!("Done.");
            Ok(())
        }
    }
}

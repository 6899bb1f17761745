//! `consentry demo`: the server and an embedded entra-sim (HTTPS, the default "contoso" scenario) on
//! SQLite in a data folder, seeded with an organization, its tenant and app profiles in several real
//! states — each produced by the real protocol: profiles are authorized through the simulator's
//! sign-in and consent pages, then something breaks in the simulated tenant (a password reset, MFA
//! switched on, a conditional access policy, a revoked consent, a certificate about to expire) and a
//! check diagnoses it. Email goes to a mailbox (a real SMTP server on loopback) writing each message
//! to `<data dir>/mailbox/`; the tenant's administrator contact is seeded.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};

use anyhow::Context;
use clap::Args;
use consentry_domain::{
    Actor, CheckTrigger, DomainName, NewProfile, ProfileId, TenantId, TenantRef,
};
use consentry_server::startup::load_api_token;
use consentry_server::{AppState, Config};
use entra_sim::browser::{Browser, Decision};
use entra_sim::{RunningSim, Scenario, SimOptions};
use secrecy::ExposeSecret;

use crate::progress::Progress;

/// Options of `consentry demo`.
#[derive(Debug, Args)]
pub struct DemoArgs {
    /// Folder for the demo's database, keys and simulator state.
    #[arg(long, default_value = "consentry-demo")]
    data_dir: PathBuf,
    /// Address of Consentry.
    #[arg(long, default_value = "127.0.0.1:8080")]
    listen: SocketAddr,
    /// Address of the embedded Microsoft simulator (HTTPS).
    #[arg(long, default_value = "127.0.0.1:8443")]
    sim_listen: SocketAddr,
    /// Delete the data folder first and seed afresh.
    #[arg(long)]
    fresh: bool,
}

const DOMAIN: &str = "contoso.onmicrosoft.com";
const PASSWORD: &str = "Demo-Passw0rd!";
const OFFICE_IP: &str = "203.0.113.7";
const CUSTOM_APP_ID: &str = "c0a70000-0000-4000-8000-0000000c0570";
/// The console account the demo creates (a demo value, printed at start).
const CONSOLE_USER: &str = "demo";
const CONSOLE_PASSWORD: &str = "Consentry-Demo-1";
/// The demo tenant's administrator contact.
const DEMO_CONTACT: &str = "it-admin@contoso.onmicrosoft.com";
/// The demo organization's daily digest recipient.
const DEMO_DIGEST: &str = "vendor-ops@vendor.example";

pub async fn run(args: DemoArgs, config_file: Option<&Path>) -> anyhow::Result<()> {
    let started = std::time::Instant::now();
    if args.fresh && args.data_dir.exists() {
        std::fs::remove_dir_all(&args.data_dir)
            .with_context(|| format!("cannot remove {}", args.data_dir.display()))?;
    }
    std::fs::create_dir_all(&args.data_dir)
        .with_context(|| format!("cannot create {}", args.data_dir.display()))?;
    let scenario = Scenario::contoso();
    let sim = RunningSim::start(
        scenario.clone(),
        SimOptions {
            listen: args.sim_listen,
            state_dir: Some(args.data_dir.join("sim")),
            persist: true,
            // The demo plays an administrator signing in from an office IP (conditional access).
            trust_forwarded_for: true,
            ..SimOptions::default()
        },
    )
    .await
    .with_context(|| {
        format!(
            "cannot start the Microsoft simulator on {} (use --sim-listen to pick another address)",
            args.sim_listen
        )
    })?;
    let ca = args.data_dir.join("sim-ca.pem");
    std::fs::write(&ca, sim.ca_pem()).with_context(|| format!("cannot write {}", ca.display()))?;

    let listener = tokio::net::TcpListener::bind(args.listen)
        .await
        .with_context(|| {
            format!(
                "cannot listen on {} (use --listen to pick another address)",
                args.listen
            )
        })?;
    let base = format!("http://{}", listener.local_addr()?);
    let callback = format!("{base}/oauth/callback");
    let mut vars: Vec<(String, String)> = std::env::vars().collect();
    vars.extend([
        ("CONSENTRY_PUBLIC_URL".into(), base.clone()),
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
    ]);
    let control = sim.control();
    for app in &scenario.apps {
        control.add_redirect_uri(app.client_id, &callback)?;
    }
    if let Some((client_id, _)) = scenario.consentry_app() {
        control.add_redirect_uri(
            client_id,
            &format!("{base}/console/sign-in/microsoft/callback"),
        )?;
        // "Connect a Microsoft tenant" returns to the console, on Consentry's own app.
        control.add_redirect_uri(
            client_id,
            &format!("{base}{}", consentry_domain::connect::CONNECT_CALLBACK_PATH),
        )?;
        // The vendor tenant's "Consentry operators" group are the platform operators.
        if let Some(vendor) = scenario.tenants.first() {
            vars.push((
                "CONSENTRY_MICROSOFT_SIGN_IN__OPERATOR_TENANT".into(),
                vendor.id.to_string(),
            ));
        }
        if let Some(group) = scenario
            .tenants
            .iter()
            .flat_map(|t| &t.groups)
            .find(|g| g.display_name == "Consentry operators")
        {
            vars.push((
                "CONSENTRY_MICROSOFT_SIGN_IN__OPERATOR_GROUP".into(),
                group.id.to_string(),
            ));
        }
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
    let mut cfg = Config::load(config_file, vars)?;
    cfg.data_dir = args.data_dir.clone();
    cfg.database_url = None;
    cfg.listen = listener.local_addr()?;
    // The demo's webhook receivers run on this machine.
    cfg.webhooks.allow_private = true;
    // The demo's SMTP server: a mailbox on a loopback port writing each message it receives to
    // <data dir>/mailbox/<n>.eml (unless the operator's configuration names a server of its own).
    let mailbox = if cfg.email.smtp_host.is_none() {
        let mailbox = consentry_mail::mailbox::Mailbox::start(&args.data_dir.join("mailbox"))
            .context("cannot start the demo's mailbox (SMTP on loopback)")?;
        cfg.email.smtp_host = Some("127.0.0.1".into());
        cfg.email.smtp_port = Some(mailbox.addr().port());
        cfg.email.security = "none".into();
        cfg.email.from = Some("Consentry demo <consentry@vendor.example>".into());
        cfg.email.poll_seconds = 5;
        // The organization's daily digest goes out as soon as the demo runs.
        cfg.email.digest_hour_utc = 0;
        Some(mailbox)
    } else {
        None
    };

    // The demo plays a release of the vendor's service that needs a new permission (a permission
    // rollout): the profiles are seeded under the built-in catalog, then the server runs the catalog's
    // next version, kept in the data folder. A catalog file of the operator's own is used as is.
    let release = args.data_dir.join(RELEASE_CATALOG);
    let plays_release = cfg.catalog_file.is_none();
    let mut listener = listener;
    // An installation seeded before runs the release it played then: one server state, built once.
    if plays_release && release.exists() {
        cfg.catalog_file = Some(release.clone());
    }
    let mut state = consentry_server::build_state(&cfg).await?;
    let seeded = if state.svc.organizations().await?.is_empty() {
        if plays_release && cfg.catalog_file.is_some() {
            // A release left from a demo whose database is gone: seed under the built-in catalog again.
            cfg.catalog_file = None;
            state = consentry_server::build_state(&cfg).await?;
        }
        // Seeding needs the server (the simulator redirects to its callback), not the monitor.
        let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
        let seeding = tokio::spawn(consentry_server::serve(
            listener,
            state.clone(),
            async move {
                let _ = stopped.await;
            },
        ));
        let seeded = seed(&state, &sim, &base, &mut Progress::on_stderr())
            .await
            .context("seeding the demo")?;
        let _ = stop.send(());
        seeding.await??;
        if plays_release {
            release_new_permission(&sim, &release)?;
            cfg.catalog_file = Some(release.clone());
            state = consentry_server::build_state(&cfg).await?;
            // The release's first check of the Insights profile: it lacks the new permission.
            state
                .checker
                .check(seeded.insights, CheckTrigger::Manual("demo".into()))
                .await?;
        }
        listener = tokio::net::TcpListener::bind(cfg.listen)
            .await
            .with_context(|| format!("cannot listen on {} again after seeding", cfg.listen))?;
        let mut lines = profile_lines(&state.svc).await?;
        lines.extend(seeded.scan_lines);
        Some(lines)
    } else {
        None
    };
    let server = tokio::spawn({
        let (cfg, state) = (cfg.clone(), state.clone());
        async move { crate::serve::serve_with_monitor(&cfg, state, listener).await }
    });
    let (token, _) = load_api_token(&cfg)?;
    println!("Consentry demo is ready in {:.1?}", started.elapsed());
    println!();
    println!(
        "  Web console:      {base}/console   (sign in as {CONSOLE_USER} / {CONSOLE_PASSWORD})"
    );
    println!(
        "    or Sign in with Microsoft as admin@{DOMAIN} (the organization's admin), another {DOMAIN} user (a viewer),"
    );
    println!(
        "    or owner@consentry-vendor.onmicrosoft.com / Demo-Vendor-Passw0rd! (a platform operator: the vendor's \"Consentry operators\" group)"
    );
    println!(
        "      (its Vendor apps page shows the vendor's own app registrations and when their credentials end; going live against Microsoft: docs/GOING-LIVE.md)"
    );
    println!(
        "  JSON API:         {base}/api/v1   (Authorization: Bearer {})",
        token.expose_secret()
    );
    println!(
        "  Microsoft (simulated): {}   tenant {DOMAIN}",
        sim.base_url()
    );
    println!("    every user's password is {PASSWORD}; one-time code 123456");
    println!(
        "    Tenants > Connect a Microsoft tenant: sign in as admin@fabrikam.onmicrosoft.com / Demo-Fabrikam-Passw0rd!"
    );
    println!(
        "    its TLS certificate comes from a local CA ({}): your browser will warn once",
        ca.display()
    );
    println!("  Data folder:      {}", cfg.data_dir.display());
    if let Some(m) = &mailbox {
        println!(
            "  Email:            an SMTP server on {} writes every message to {}/<n>.eml",
            m.addr(),
            m.dir().display()
        );
        println!(
            "    (the tenant's administrator contact is {DEMO_CONTACT}; its Email page in the console lists them;"
        );
        println!("    the organization's daily digest goes to {DEMO_DIGEST})");
    }
    if let Some(s) = &seeded {
        println!();
        println!("Seeded organization \"Contoso (demo)\" with these app profiles:");
        for line in s {
            println!("  - {line}");
        }
    }
    println!();
    println!(
        "Open the console, pick an invalid profile, read why, and click Re-authorize: you sign in at"
    );
    println!(
        "the simulated Microsoft as admin@{DOMAIN} and come back to a valid profile. Or fix the cause"
    );
    println!("in the simulator and click Check now, e.g. lift the conditional access policy:");
    println!(
        "  curl -k -X POST {}/_sim/ops -H 'content-type: application/json' -d '{{\"op\":\"set_ca_policies\",\"tenant\":\"{DOMAIN}\",\"policies\":[]}}'",
        sim.base_url()
    );
    println!(
        "Viva Engage (Cloud Backup for Microsoft 365): Re-authorize it with User consent as engage.admin@{DOMAIN},"
    );
    println!(
        "a Yammer Administrator with a Viva Engage license and Viva Engage Verified Admin; admin@{DOMAIN} is refused"
    );
    println!("(not a Verified Admin).");
    println!(
        "The JSON API: curl -H 'Authorization: Bearer {}' '{base}/api/v1/profiles?status=invalid'",
        token.expose_secret()
    );
    if plays_release && release.exists() {
        println!(
            "A permission rollout: this release of the catalog ({}) adds the application permission",
            release.display()
        );
        println!(
            "{RELEASE_PERMISSION} to {RELEASE_APP}. See who still lacks it at {base}/console/rollouts, then click"
        );
        println!(
            "\"Start a consent campaign\" there: the invitation to {DEMO_CONTACT} lands in the mailbox folder"
        );
        println!(
            "above within seconds. Open its link, consent as admin@{DOMAIN}, and the rollout reaches 100 %."
        );
    }
    println!("Press Ctrl-C to stop.");
    server.await??;
    sim.shutdown().await;
    Ok(())
}

/// The demo's release of the catalog, in the data folder.
const RELEASE_CATALOG: &str = "catalog-release.toml";
/// The app type the release gives a new permission, and the permission.
const RELEASE_APP: &str = "Insights for Microsoft 365";
const RELEASE_APP_TYPE: &str = "insights-m365";
const RELEASE_PERMISSION: &str = "Files.Read.All";

/// Plays the release: the vendor's app registration for Insights asks for the new application
/// permission (in the simulator, whose state persists in the data folder), and the catalog's next
/// version, written to `path`, adds it.
fn release_new_permission(sim: &RunningSim, path: &Path) -> anyhow::Result<()> {
    let text = consentry_catalog::with_permission_added(
        consentry_catalog::BUILTIN_TOML,
        "built-in catalog",
        RELEASE_APP_TYPE,
        RELEASE_PERMISSION,
        consentry_catalog::PermissionType::Role,
        false,
    )?;
    let app = Scenario::contoso()
        .client_id_for(RELEASE_APP_TYPE)
        .context("the Insights app is missing from the scenario")?;
    sim.control().add_app_permission(
        app,
        entra_sim::PermissionKind::Application,
        RELEASE_PERMISSION,
    )?;
    std::fs::write(path, text).with_context(|| format!("cannot write {}", path.display()))?;
    Ok(())
}

/// Authorizes a profile through the simulator's pages as `user` (from `ip`), as an administrator would.
async fn authorize(
    state: &AppState,
    sim: &RunningSim,
    id: ProfileId,
    req: consentry_domain::StartRequest,
    user: &str,
    ip: Option<&str>,
) -> anyhow::Result<()> {
    let started = state
        .reauth
        .start_unbound(id, req, &Actor::Operator("demo".into()))
        .await?;
    let browser = Browser::new(sim.ca_pem(), ip)?;
    let page = browser
        .complete(
            &started.url,
            user,
            PASSWORD,
            Decision::Accept { org_wide: true },
        )
        .await;
    anyhow::ensure!(
        page.body.contains("re-authorized"),
        "authorizing {id} as {user} did not complete: {}",
        page.body.chars().take(400).collect::<String>()
    );
    Ok(())
}

fn admin(functions: &[&str]) -> consentry_domain::StartRequest {
    consentry_domain::StartRequest {
        method: consentry_catalog::ConsentMethod::Admin,
        custom_app: None,
        functions: functions.iter().map(|f| f.to_string()).collect(),
        scan_targets: Vec::new(),
        login_hint: None,
        handoff: false,
    }
}

/// The app profiles [`seed`] creates.
const SEEDED_PROFILES: u64 = 9;

/// Seeds the demo and returns one line per profile; `progress` counts the profiles seeded, then checked.
async fn seed(
    state: &AppState,
    sim: &RunningSim,
    _base: &str,
    progress: &mut Progress,
) -> anyhow::Result<Seeded> {
    let svc = &state.svc;
    let control = sim.control();
    let org = svc
        .create_organization(
            "Contoso (demo)",
            &["teams".into(), "planner".into(), "power-platform".into()],
        )
        .await?;
    // The services it subscribes to: connecting the fabrikam tenant ("Connect a Microsoft tenant")
    // offers their app types, checked.
    let org = svc
        .set_organization_services(org.id, &["insights".into(), "cloud-backup-m365".into()])
        .await?;
    let contoso = Scenario::contoso();
    let tenant = contoso
        .tenants
        .iter()
        .find(|t| t.domains.iter().any(|d| d.eq_ignore_ascii_case(DOMAIN)))
        .context("the contoso tenant is missing from the scenario")?;
    let tenant_id = TenantId::from_uuid(tenant.id);
    svc.connect_tenant(
        org.id,
        tenant_id,
        DomainName::parse(DOMAIN)?,
        Some("Contoso"),
        consentry_domain::Placement::In(&consentry_domain::CloudKey::global()),
    )
    .await?;
    // The tenant's administrator contact, emailed when a check makes one of its profiles invalid.
    consentry_domain::Mail::new(svc.clone())
        .set_contacts(
            &consentry_domain::Caller::platform("demo"),
            &TenantRef::Id(tenant_id),
            &[DEMO_CONTACT.to_string()],
        )
        .await?;
    // The organization's daily digest, to the vendor's operations team.
    consentry_domain::Mail::new(svc.clone())
        .set_digest_recipients(
            &consentry_domain::Caller::platform("demo"),
            org.id,
            &[DEMO_DIGEST.to_string()],
        )
        .await?;
    let actor = Actor::Operator("demo".into());
    let create = |app_type: &'static str, service: Option<&'static str>| {
        let actor = actor.clone();
        async move {
            svc.create_profile(
                NewProfile {
                    tenant: TenantRef::Id(tenant_id),
                    app_type: app_type.into(),
                    service: service.map(str::to_string),
                },
                &actor,
            )
            .await
            .map(|p| p.id)
        }
    };
    let vendor = |key: &str| contoso.client_id_for(key);
    progress.begin("seeded", "app profiles", SEEDED_PROFILES);

    // Valid: Insights, authorized by the Global Administrator.
    let valid = create("insights-m365", None).await?;
    authorize(
        state,
        sim,
        valid,
        admin(&[]),
        "admin@contoso.onmicrosoft.com",
        Some(OFFICE_IP),
    )
    .await?;
    progress.inc(1);

    // Valid: the Cloud Backup delegated app with two functions (Power BI is not in the subscription).
    let backup = create("cloud-backup-delegated", None).await?;
    authorize(
        state,
        sim,
        backup,
        admin(&["restore-planner-comments", "restore-teams-conversations"]),
        "admin@contoso.onmicrosoft.com",
        Some(OFFICE_IP),
    )
    .await?;
    progress.inc(1);

    // Invalid, password reset: consented by the Privileged Role Administrator, whose password an admin then resets.
    let reset = create("tygraph-suite", None).await?;
    authorize(
        state,
        sim,
        reset,
        admin(&[]),
        "pra@contoso.onmicrosoft.com",
        Some(OFFICE_IP),
    )
    .await?;
    progress.inc(1);
    control.reset_password("pra@contoso.onmicrosoft.com", "Changed-Passw0rd!")?;

    // Invalid, MFA enabled after consent: a user consent, then MFA switched on for that user.
    let mfa = create("iaas-delegated", None).await?;
    if let Some(app) = vendor("iaas-delegated") {
        control.grant_admin_consent(DOMAIN, app)?;
    }
    let mut user_consent = admin(&[]);
    user_consent.method = consentry_catalog::ConsentMethod::User;
    authorize(
        state,
        sim,
        mfa,
        user_consent,
        "user@contoso.onmicrosoft.com",
        Some(OFFICE_IP),
    )
    .await?;
    progress.inc(1);
    control.set_mfa_required("user@contoso.onmicrosoft.com", true)?;

    // Invalid, conditional access: the group owner consented from the office; a policy now allows only another range.
    let ca = create("cloud-governance-delegated", None).await?;
    if let Some(app) = vendor("cloud-governance-delegated") {
        control.grant_admin_consent(DOMAIN, app)?;
    }
    let mut owner_consent = admin(&[]);
    owner_consent.method = consentry_catalog::ConsentMethod::User;
    authorize(
        state,
        sim,
        ca,
        owner_consent,
        "group.owner@contoso.onmicrosoft.com",
        Some(OFFICE_IP),
    )
    .await?;
    progress.inc(1);
    control.apply(serde_json::from_value(serde_json::json!({
        "op": "set_ca_policies",
        "tenant": DOMAIN,
        "policies": [{"name": "Head office only", "users": ["group.owner@contoso.onmicrosoft.com"],
                      "allowed_ranges": ["198.51.100.0/24"], "action": "block"}]
    }))?)?;

    // Invalid, consent revoked: Microsoft 365 (All permissions), consented, then revoked in the tenant.
    let revoked = create("m365-all", Some("cloud-backup-m365")).await?;
    authorize(
        state,
        sim,
        revoked,
        admin(&[]),
        "admin@contoso.onmicrosoft.com",
        None,
    )
    .await?;
    progress.inc(1);
    if let Some(app) = vendor("m365-all") {
        control.revoke_consent(DOMAIN, app)?;
    }

    // Attention: a custom Azure app whose certificate expires in 20 days.
    let custom = create("custom-azure-app", Some("cloud-backup-m365")).await?;
    let now = time::OffsetDateTime::now_utc();
    let pair = consentry_certs::generate_self_signed(
        "Contoso backup app",
        1,
        "demo-pfx-password",
        now - time::Duration::days(365) + time::Duration::days(20),
    )?;
    control.add_app_certificate(uuid::Uuid::parse_str(CUSTOM_APP_ID)?, &pair.cer_pem)?;
    let mut custom_req = admin(&[]);
    custom_req.custom_app = Some(consentry_domain::CustomAppInput {
        application_id: CUSTOM_APP_ID.into(),
        pfx: pair.pfx.clone(),
        password: secrecy::SecretString::from("demo-pfx-password".to_string()),
    });
    authorize(
        state,
        sim,
        custom,
        custom_req,
        "admin@contoso.onmicrosoft.com",
        None,
    )
    .await?;
    progress.inc(1);

    // Not yet authorized.
    create("portal-manager", None).await?;
    progress.inc(1);
    // Viva Engage used by Cloud Backup, for the visitor to re-authorize in the browser with User
    // consent as engage.admin@contoso (Yammer Administrator, Viva Engage license, Viva Engage
    // Verified Admin, read from the simulated Viva Engage API). The organization's admin consent,
    // the documented preparation for User consent, is granted here.
    if let Some(app) = vendor("viva-engage") {
        control.grant_admin_consent(DOMAIN, app)?;
    }
    create("viva-engage", Some("cloud-backup-m365")).await?;
    progress.inc(1);

    // One check of each authorized profile records what Microsoft now says.
    let mut lines = vec![];
    let authorized = [valid, backup, reset, mfa, ca, revoked, custom];
    progress.begin("checked", "app profiles", authorized.len() as u64);
    for id in authorized {
        state
            .checker
            .check(id, CheckTrigger::Manual("demo".into()))
            .await?;
        progress.inc(1);
    }
    progress.end();
    // A scan profile configured in the classic UI, protecting Planner: the visitor converts it in the
    // console (Tenants > Scan profiles > Edit > Save).
    let scan = consentry_domain::ScanProfiles::new(svc.clone())
        .create(consentry_domain::NewScanProfile {
            tenant: TenantRef::Id(tenant_id),
            name: "Contoso backup (classic UI)".into(),
            modules: vec!["planner".into(), "teams".into()],
            authentication: consentry_domain::ScanAuth::Classic {
                service_account: consentry_domain::Upn::parse(
                    "svc.backup@contoso.onmicrosoft.com",
                )?,
                delegated_profile: backup,
            },
            planner_backup_enabled: false,
        })
        .await?;
    // The classic UI's other form: an app profile (the Microsoft 365 one, whose consent was revoked)
    // with the additional delegated app profile. Saving keeps its own app profile only if it can
    // protect Planner, so the visitor sees the tenant's suitable one chosen instead.
    let scan_app = consentry_domain::ScanProfiles::new(svc.clone())
        .create(consentry_domain::NewScanProfile {
            tenant: TenantRef::Id(tenant_id),
            name: "Contoso Planner backup (classic UI, app profile)".into(),
            modules: vec!["planner".into()],
            authentication: consentry_domain::ScanAuth::ClassicAppProfile {
                app_profile: revoked,
                delegated_profile: backup,
            },
            planner_backup_enabled: true,
        })
        .await?;
    state
        .console
        .accounts
        .create(
            CONSOLE_USER,
            &secrecy::SecretString::from(CONSOLE_PASSWORD.to_string()),
            consentry_domain::AccountScope::Organization(org.id),
        )
        .await?;
    for sp in [&scan, &scan_app] {
        lines.push(format!(
            "Scan profile \"{}\" (classic authentication, protects Planner): convert it at /console/scan-profiles/{}/edit",
            sp.name, sp.id
        ));
    }
    Ok(Seeded {
        insights: valid,
        scan_lines: lines,
    })
}

/// What seeding made that the demo names once the server runs.
struct Seeded {
    /// The Insights profile, which the release's new permission concerns.
    insights: ProfileId,
    /// A line per scan profile.
    scan_lines: Vec<String>,
}

/// A line per app profile: its app type, service, status and reason.
async fn profile_lines(svc: &consentry_domain::Consentry) -> anyhow::Result<Vec<String>> {
    let mut lines = vec![];
    for p in svc
        .profiles(
            &Default::default(),
            &consentry_domain::PageRequest {
                after: None,
                limit: 100,
            },
        )
        .await?
        .items
    {
        let v = consentry_domain::ProfileView::new(p, svc.catalog());
        lines.push(format!(
            "{} ({}) — {}{}",
            v.app_type_name,
            v.service_name,
            v.status_label,
            v.reason_view
                .map(|r| format!(": {}", r.summary))
                .unwrap_or_default()
        ));
    }
    Ok(lines)
}

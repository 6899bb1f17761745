//! `consentry profiles`: app profiles — list, show, create, delete, re-authorize and check them.

use std::path::PathBuf;

use anyhow::Context as _;
use clap::Subcommand;
use consentry_domain::audit::AuditAction;
use consentry_domain::{
    Actor, NewProfile, OrgId, PageRequest, ProfileFilter, ProfileId, ProfileStatus, TenantRef,
};
use consentry_server::Config;
use consentry_server::startup::Services;

use crate::progress::Progress;
use crate::{JsonFlag, operator, output, parse, record};

#[derive(Debug, Subcommand)]
pub enum ProfilesCmd {
    /// List app profiles.
    List {
        /// Organization ID.
        #[arg(long)]
        org: Option<String>,
        /// Tenant ID or domain.
        #[arg(long)]
        tenant: Option<String>,
        /// Statuses, comma-separated (valid, attention, invalid, pending).
        #[arg(long, value_delimiter = ',')]
        status: Vec<String>,
        /// Service key.
        #[arg(long)]
        service: Option<String>,
        /// App type key.
        #[arg(long)]
        app_type: Option<String>,
        /// Search text (app type, service, consent user, application ID).
        #[arg(long)]
        search: Option<String>,
        /// Page size.
        #[arg(long, default_value_t = 50)]
        limit: u32,
        /// Cursor printed with the previous page.
        #[arg(long)]
        after: Option<String>,
        #[command(flatten)]
        out: JsonFlag,
    },
    /// Show one app profile with its reason, remediation and history.
    Show {
        /// Profile ID.
        id: String,
        #[command(flatten)]
        out: JsonFlag,
    },
    /// Create an app profile (it starts "not yet authorized").
    Create {
        /// Tenant ID or domain.
        #[arg(long)]
        tenant: String,
        /// App type key (see `catalog list`).
        #[arg(long)]
        app_type: String,
        /// Service key, when the app type serves several.
        #[arg(long)]
        service: Option<String>,
        #[command(flatten)]
        out: JsonFlag,
    },
    /// Delete an app profile with its history and secrets.
    Delete {
        /// Profile ID.
        id: String,
    },
    /// Start re-authorizing an app profile: prints the Microsoft URL to open (or, with --handoff, a consent
    /// link to send to the tenant's administrator).
    Reauthorize {
        /// Profile ID.
        id: String,
        /// Consent method: admin or user (user only where the catalog allows it).
        #[arg(long, default_value = "admin")]
        method: String,
        /// Custom apps: the application (client) ID.
        #[arg(long)]
        application_id: Option<String>,
        /// Custom apps: the certificate file (.pfx).
        #[arg(long)]
        pfx: Option<PathBuf>,
        /// Custom apps: a file holding the .pfx password (or CONSENTRY_PFX_PASSWORD).
        #[arg(long)]
        pfx_password_file: Option<PathBuf>,
        /// Functions to enable, comma-separated (Cloud Backup delegated app).
        #[arg(long, value_delimiter = ',')]
        functions: Vec<String>,
        /// What the profile will scan, comma-separated scan target keys (Power Platform app types; see
        /// `catalog show`).
        #[arg(long, value_delimiter = ',')]
        scan_targets: Vec<String>,
        /// Return a consent link for the tenant's administrator instead of the Microsoft URL.
        #[arg(long)]
        handoff: bool,
        #[command(flatten)]
        out: JsonFlag,
    },
    /// Check app profiles now: exercises each profile's credential at Microsoft and updates its status
    /// (the same check as the monitor's schedule). One profile by ID, a tenant's with --tenant, or --all.
    Check {
        /// Profile ID.
        id: Option<String>,
        /// Check every profile of this tenant (ID or domain).
        #[arg(long, conflicts_with = "id")]
        tenant: Option<String>,
        /// Check every profile.
        #[arg(long, conflicts_with_all = ["id", "tenant"])]
        all: bool,
        #[command(flatten)]
        out: JsonFlag,
    },
    /// Cancel a pending re-authorization (the profile returns to its previous status).
    CancelReauthorization {
        /// Profile ID.
        id: String,
    },
}

/// Runs an app profile command.
pub async fn run(cmd: ProfilesCmd, cfg: &Config, services: &Services) -> anyhow::Result<()> {
    let svc = &services.svc;
    match cmd {
        ProfilesCmd::List {
            org,
            tenant,
            status,
            service,
            app_type,
            search,
            limit,
            after,
            out,
        } => {
            let mut filter = ProfileFilter {
                org_id: org
                    .map(|o| parse("organization ID", &o, OrgId::parse))
                    .transpose()?,
                service,
                app_type,
                search,
                ..Default::default()
            };
            for s in status {
                filter
                    .statuses
                    .push(ProfileStatus::parse(s.trim()).with_context(|| {
                        format!("unknown status {s:?}; use valid, attention, invalid or pending")
                    })?);
            }
            if let Some(t) = tenant {
                let r = parse("tenant", &t, TenantRef::parse)?;
                filter.tenant_id = Some(svc.tenant(&r).await?.id);
            }
            let page = svc.profiles(&filter, &PageRequest { after, limit }).await?;
            output::profiles(svc, page, out.json)
        }
        ProfilesCmd::Show { id, out } => {
            let id = parse("profile ID", &id, ProfileId::parse)?;
            let p = svc.profile(id).await?;
            let history = svc.history(id, 50).await?;
            output::profile_detail(svc, p, &history, out.json)
        }
        ProfilesCmd::Create {
            tenant,
            app_type,
            service,
            out,
        } => {
            let tenant = parse("tenant", &tenant, TenantRef::parse)?;
            let p = svc
                .create_profile(
                    NewProfile {
                        tenant,
                        app_type,
                        service,
                    },
                    &operator(),
                )
                .await?;
            let history = svc.history(p.id, 50).await?;
            output::profile_detail(svc, p, &history, out.json)
        }
        ProfilesCmd::Delete { id } => {
            let id = parse("profile ID", &id, ProfileId::parse)?;
            let p = svc.profile(id).await?;
            svc.delete_profile(id).await?;
            record(
                svc,
                Some(p.org_id),
                AuditAction::ProfileDeleted,
                format!("profile:{id}"),
                serde_json::json!({ "app_type": p.app_type, "tenant": p.tenant_id.to_string() }),
            )
            .await;
            println!("app profile {id} deleted");
            Ok(())
        }
        ProfilesCmd::Reauthorize {
            id,
            method,
            application_id,
            pfx,
            pfx_password_file,
            functions,
            scan_targets,
            handoff,
            out,
        } => {
            let id = parse("profile ID", &id, ProfileId::parse)?;
            let method: consentry_catalog::ConsentMethod = method
                .parse()
                .map_err(|_| anyhow::anyhow!("--method must be admin or user, not {method:?}"))?;
            let custom_app = match (application_id, pfx) {
                (None, None) => None,
                (app, pfx) => {
                    let pfx = pfx.context("a custom app needs --pfx FILE")?;
                    let bytes = std::fs::read(&pfx)
                        .with_context(|| format!("cannot read {}", pfx.display()))?;
                    let password = match pfx_password_file {
                        Some(f) => std::fs::read_to_string(&f)
                            .with_context(|| format!("cannot read {}", f.display()))?
                            .trim_end_matches(['\r', '\n'])
                            .to_string(),
                        None => std::env::var("CONSENTRY_PFX_PASSWORD").unwrap_or_default(),
                    };
                    Some(consentry_domain::CustomAppInput {
                        application_id: app.unwrap_or_default(),
                        pfx: bytes,
                        password: secrecy::SecretString::from(password),
                    })
                }
            };
            let reauth = &services.reauth;
            let started = reauth
                .start_unbound(
                    id,
                    consentry_domain::StartRequest {
                        method,
                        custom_app,
                        functions,
                        scan_targets,
                        login_hint: None,
                        handoff,
                    },
                    &operator(),
                )
                .await?;
            if out.json {
                println!(
                    "{}",
                    serde_json::to_string_pretty(&serde_json::json!({
                        "url": started.url,
                        "consent_link": started.consent_link,
                        "expires_at": started.expires_at.to_string(),
                    }))?
                );
            } else if started.consent_link {
                println!(
                    "Send this consent link to the tenant's administrator (valid until {}):",
                    started.expires_at
                );
                println!("{}", started.url);
            } else {
                println!(
                    "Open this URL to consent at Microsoft (valid until {}):",
                    started.expires_at
                );
                println!("{}", started.url);
                println!(
                    "The result is recorded when Microsoft redirects back to {}.",
                    cfg.callback_url()
                );
            }
            Ok(())
        }
        ProfilesCmd::Check {
            id,
            tenant,
            all,
            out,
        } => {
            let ids = match (id, tenant, all) {
                (Some(id), _, _) => vec![parse("profile ID", &id, ProfileId::parse)?],
                (None, tenant, true) | (None, tenant @ Some(_), false) => {
                    let mut filter = ProfileFilter::default();
                    if let Some(t) = tenant {
                        let r = parse("tenant", &t, TenantRef::parse)?;
                        filter.tenant_id = Some(svc.tenant(&r).await?.id);
                    }
                    let mut ids = Vec::new();
                    let mut after = None;
                    loop {
                        let page = svc
                            .profiles(&filter, &PageRequest { after, limit: 500 })
                            .await?;
                        ids.extend(page.items.iter().map(|p| p.id));
                        match page.next_cursor {
                            Some(c) => after = Some(c),
                            None => break,
                        }
                    }
                    ids
                }
                (None, None, false) => {
                    anyhow::bail!("name a profile ID, or use --tenant TENANT or --all")
                }
            };
            check_profiles(services, ids, out.json).await
        }
        ProfilesCmd::CancelReauthorization { id } => {
            let id = parse("profile ID", &id, ProfileId::parse)?;
            let reauth = &services.reauth;
            let p = reauth.cancel(id, &operator()).await?;
            println!(
                "re-authorization cancelled; app profile {id} is {} again",
                p.status
            );
            Ok(())
        }
    }
}

/// What a run of `consentry profiles check` found, counted the way an operator reads it.
#[derive(Debug, Default, PartialEq, Eq)]
struct CheckTally {
    valid: usize,
    attention: usize,
    invalid: usize,
    transient: usize,
    skipped: usize,
    errors: usize,
}

impl CheckTally {
    fn add(&mut self, label: &str) {
        match label {
            "valid" => self.valid += 1,
            "attention" => self.attention += 1,
            "invalid" => self.invalid += 1,
            "transient_failure" => self.transient += 1,
            "skipped" => self.skipped += 1,
            _ => self.errors += 1,
        }
    }

    fn checked(&self) -> usize {
        self.valid + self.attention + self.invalid
    }

    /// The exit decision: a run that checked nothing although there was something to check
    /// (Microsoft kept failing, or Consentry could not read what it needs) fails, so that a script
    /// or a scheduler notices; skipped profiles (never authorized, an answer being recorded) are
    /// not failures, and a run that checked some profiles succeeds with the others named (their
    /// status is unchanged and the monitor retries them within 15 minutes).
    fn nothing_could_be_checked(&self) -> bool {
        self.checked() == 0 && self.transient + self.errors > 0
    }

    fn summary(&self) -> String {
        format!(
            "{} checked ({} valid, {} attention, {} invalid), {} transient failure(s), {} skipped, {} error(s)",
            self.checked(),
            self.valid,
            self.attention,
            self.invalid,
            self.transient,
            self.skipped,
            self.errors
        )
    }
}

/// Checks profiles one after the other through the same checker as the monitor (composed by
/// `consentry_server::startup`: the configured policy and the webhook notifier), with progress on
/// standard error when there are several (see [`Progress`]).
async fn check_profiles(
    services: &Services,
    ids: Vec<ProfileId>,
    json: bool,
) -> anyhow::Result<()> {
    let checker = &services.checker;
    let total = ids.len();
    let who = match operator() {
        Actor::Operator(n) => n,
        Actor::System => "cli".into(),
    };
    let mut results = Vec::with_capacity(total);
    let mut tally = CheckTally::default();
    // One profile needs no progress; several get a bar on a terminal, plain lines otherwise.
    let mut progress = (total > 1).then(|| {
        let mut p = Progress::on_stderr();
        p.begin("checked", "app profiles", total as u64);
        p
    });
    for id in ids {
        let outcome = checker
            .check(id, consentry_domain::CheckTrigger::Manual(who.clone()))
            .await;
        let (label, reason, message) = match &outcome {
            Ok(o) => (
                o.label().to_string(),
                o.reason_code().unwrap_or_default().to_string(),
                match o {
                    consentry_domain::CheckOutcome::Skipped { message, .. }
                    | consentry_domain::CheckOutcome::TransientFailure { message, .. } => {
                        message.clone()
                    }
                    consentry_domain::CheckOutcome::Checked {
                        credentials: Some(c),
                        ..
                    } => format!(
                        "re-authorization pending; the credentials in use: {}",
                        c.reason
                            .as_ref()
                            .map_or_else(|| "they work".to_string(), |r| r.summary())
                    ),
                    consentry_domain::CheckOutcome::Checked { profile, .. } => profile
                        .reason
                        .as_ref()
                        .map(|r| r.summary())
                        .unwrap_or_default(),
                },
            ),
            Err(e) => ("error".to_string(), String::new(), e.to_string()),
        };
        tally.add(&label);
        let mut row = serde_json::json!({
            "profile_id": id.to_string(),
            "outcome": label,
            "reason": reason,
            "message": message,
        });
        if let Ok(consentry_domain::CheckOutcome::TransientFailure { attempts, .. }) = &outcome {
            row["attempts"] = (*attempts).into();
        }
        results.push(row);
        if let Some(p) = &mut progress {
            p.inc(1);
        }
    }
    if let Some(p) = progress {
        p.finish();
    }
    // Status changes were handed to the webhook notifier, which delivers in the background: wait
    // for it (bounded), as the server would have.
    if !services
        .notifier
        .flush(std::time::Duration::from_secs(120))
        .await
    {
        eprintln!("warning: some webhook deliveries did not finish before the command ended");
    }
    if json {
        println!("{}", serde_json::to_string_pretty(&results)?);
    } else {
        for r in &results {
            println!(
                "{}  {:<17}  {}  {}",
                r["profile_id"].as_str().unwrap_or_default(),
                r["outcome"].as_str().unwrap_or_default(),
                r["reason"].as_str().unwrap_or_default(),
                r["message"].as_str().unwrap_or_default()
            );
        }
        println!("{}", tally.summary());
    }
    if tally.nothing_could_be_checked() {
        anyhow::bail!(
            "no app profile could be checked ({}); their statuses are unchanged. Try again later, or look at the messages above",
            tally.summary()
        );
    }
    if tally.transient + tally.errors > 0 {
        eprintln!(
            "warning: {} app profile(s) could not be checked now; their statuses are unchanged and the monitor tries again",
            tally.transient + tally.errors
        );
    }
    Ok(())
}

//! `consentry scan-profiles`: scan profiles and the Planner migration, on the configured database.

use anyhow::Context as _;
use clap::{Args, Subcommand};
use comfy_table::Table;
use consentry_domain::{
    Consentry, NewScanProfile, PlannerReadiness, ProfileId, ScanAuth, ScanProfile, ScanProfileEdit,
    ScanProfileId, ScanProfiles, TenantRef, Upn,
};

/// `--json`.
#[derive(Debug, Args)]
pub struct Json {
    /// Print JSON instead of text.
    #[arg(long)]
    json: bool,
}

/// Scan profiles (Cloud Backup for Microsoft 365) and the Planner migration.
#[derive(Debug, Subcommand)]
pub enum ScanProfilesCmd {
    /// List a tenant's scan profiles.
    List {
        /// Tenant ID or domain.
        #[arg(long)]
        tenant: String,
        #[command(flatten)]
        out: Json,
    },
    /// Show a scan profile.
    Show {
        /// Scan profile ID.
        id: String,
        #[command(flatten)]
        out: Json,
    },
    /// Create a scan profile: with --app-profile (the new way), or record one configured in the classic
    /// UI with --service-account and --delegated-profile (no password is asked or stored), or with
    /// --app-profile and --delegated-profile (the classic UI's other form).
    Create {
        /// Tenant ID or domain.
        #[arg(long)]
        tenant: String,
        /// Name.
        #[arg(long)]
        name: String,
        /// Protected modules, comma-separated (catalog module keys, e.g. planner,teams).
        #[arg(long, value_delimiter = ',')]
        modules: Vec<String>,
        /// The app profile to authenticate with (with --delegated-profile: the classic method's app
        /// profile).
        #[arg(long, conflicts_with = "service_account")]
        app_profile: Option<String>,
        /// Classic method: the service account's UPN.
        #[arg(long, requires = "delegated_profile")]
        service_account: Option<String>,
        /// Classic method: the additional delegated app profile (with --service-account or
        /// --app-profile).
        #[arg(long)]
        delegated_profile: Option<String>,
        /// Enable "Planner data backup".
        #[arg(long)]
        planner_backup: bool,
        #[command(flatten)]
        out: Json,
    },
    /// Edit and save a scan profile. A classic scan profile is converted to an app profile even with no
    /// other change (--app-profile, or the tenant's suitable one).
    Edit {
        /// Scan profile ID.
        id: String,
        /// New name.
        #[arg(long)]
        name: Option<String>,
        /// New protected modules, comma-separated.
        #[arg(long, value_delimiter = ',')]
        modules: Option<Vec<String>>,
        /// The app profile to authenticate with.
        #[arg(long)]
        app_profile: Option<String>,
        /// "Planner data backup enabled": true or false.
        #[arg(long)]
        planner_backup: Option<bool>,
        #[command(flatten)]
        out: Json,
    },
    /// Delete a scan profile.
    Delete {
        /// Scan profile ID.
        id: String,
    },
    /// What a scan profile (or, with --tenant, a tenant) still lacks for Planner, with the step for each.
    Readiness {
        /// Scan profile ID.
        #[arg(required_unless_present = "tenant", conflicts_with = "tenant")]
        id: Option<String>,
        /// Tenant ID or domain.
        #[arg(long)]
        tenant: Option<String>,
        #[command(flatten)]
        out: Json,
    },
}

fn json<T: serde::Serialize>(v: &T) -> anyhow::Result<()> {
    println!("{}", serde_json::to_string_pretty(v)?);
    Ok(())
}

fn scan_id(raw: &str) -> anyhow::Result<ScanProfileId> {
    ScanProfileId::parse(raw).context("scan profile ID is not valid")
}

fn profile_id(what: &str, raw: &str) -> anyhow::Result<ProfileId> {
    ProfileId::parse(raw).with_context(|| format!("{what} is not valid"))
}

fn tenant(raw: &str) -> anyhow::Result<TenantRef> {
    TenantRef::parse(raw).context("tenant is not valid")
}

fn auth_text(a: &ScanAuth) -> String {
    match a {
        ScanAuth::AppProfile { app_profile } => format!("app profile {app_profile}"),
        ScanAuth::Classic {
            service_account,
            delegated_profile,
        } => format!(
            "classic: service account {} + delegated app profile {delegated_profile}",
            service_account.as_str()
        ),
        ScanAuth::ClassicAppProfile {
            app_profile,
            delegated_profile,
        } => format!(
            "classic: app profile {app_profile} + delegated app profile {delegated_profile}"
        ),
    }
}

fn print_list(items: &[ScanProfile]) {
    let mut t = Table::new();
    t.set_header(vec![
        "ID",
        "Name",
        "Modules",
        "Authentication",
        "Planner backup",
    ]);
    for sp in items {
        t.add_row(vec![
            sp.id.to_string(),
            sp.name.clone(),
            sp.modules.iter().cloned().collect::<Vec<_>>().join(", "),
            auth_text(&sp.authentication),
            if sp.planner_backup_enabled {
                "enabled"
            } else {
                "disabled"
            }
            .to_string(),
        ]);
    }
    println!("{t}");
}

fn print_readiness(r: &PlannerReadiness) {
    println!(
        "Scan profile {} ({}): {}",
        r.scan_profile_name,
        r.scan_profile_id,
        if r.ready {
            "ready to protect Planner"
        } else {
            "not ready for Planner"
        }
    );
    for (i, item) in r.missing.iter().enumerate() {
        println!("{}. {}", i + 1, item.summary);
        println!("   Step: {}", item.step);
    }
}

/// Runs a `scan-profiles` command.
pub async fn run(cmd: ScanProfilesCmd, core: &Consentry) -> anyhow::Result<()> {
    let svc = ScanProfiles::new(core.clone());
    match cmd {
        ScanProfilesCmd::List { tenant: t, out } => {
            let items = svc.list(&tenant(&t)?).await?;
            if out.json {
                json(&items)
            } else {
                print_list(&items);
                Ok(())
            }
        }
        ScanProfilesCmd::Show { id, out } => {
            let sp = svc.get(scan_id(&id)?).await?;
            if out.json {
                json(&sp)
            } else {
                print_list(std::slice::from_ref(&sp));
                Ok(())
            }
        }
        ScanProfilesCmd::Create {
            tenant: t,
            name,
            modules,
            app_profile,
            service_account,
            delegated_profile,
            planner_backup,
            out,
        } => {
            let authentication = match (app_profile, service_account, delegated_profile) {
                (Some(p), None, None) => ScanAuth::AppProfile {
                    app_profile: profile_id("--app-profile", &p)?,
                },
                (None, Some(s), Some(d)) => ScanAuth::Classic {
                    service_account: Upn::parse(&s).context("--service-account is not valid")?,
                    delegated_profile: profile_id("--delegated-profile", &d)?,
                },
                (Some(p), None, Some(d)) => ScanAuth::ClassicAppProfile {
                    app_profile: profile_id("--app-profile", &p)?,
                    delegated_profile: profile_id("--delegated-profile", &d)?,
                },
                _ => anyhow::bail!(
                    "name --app-profile, or --service-account and --delegated-profile (classic), or \
                     --app-profile and --delegated-profile (classic with an app profile)"
                ),
            };
            let sp = svc
                .create(NewScanProfile {
                    tenant: tenant(&t)?,
                    name,
                    modules,
                    authentication,
                    planner_backup_enabled: planner_backup,
                })
                .await?;
            if out.json {
                json(&sp)
            } else {
                print_list(std::slice::from_ref(&sp));
                Ok(())
            }
        }
        ScanProfilesCmd::Edit {
            id,
            name,
            modules,
            app_profile,
            planner_backup,
            out,
        } => {
            let saved = svc
                .save(
                    scan_id(&id)?,
                    ScanProfileEdit {
                        name,
                        modules,
                        app_profile: app_profile
                            .map(|p| profile_id("--app-profile", &p))
                            .transpose()?,
                        planner_backup_enabled: planner_backup,
                    },
                )
                .await?;
            if out.json {
                return json(&saved);
            }
            if let Some(c) = &saved.conversion {
                println!(
                    "Converted from the classic method ({}) to the app profile {}{}.",
                    auth_text(&c.previous),
                    c.app_profile,
                    if c.picked_automatically {
                        " (the tenant's suitable app profile)"
                    } else {
                        ""
                    }
                );
            }
            print_list(std::slice::from_ref(&saved.scan_profile));
            Ok(())
        }
        ScanProfilesCmd::Delete { id } => {
            let id = scan_id(&id)?;
            svc.delete(id).await?;
            println!("scan profile {id} deleted");
            Ok(())
        }
        ScanProfilesCmd::Readiness { id, tenant: t, out } => match (id, t) {
            (Some(id), _) => {
                let r = svc.planner_readiness(scan_id(&id)?).await?;
                if out.json {
                    json(&r)
                } else {
                    print_readiness(&r);
                    Ok(())
                }
            }
            (None, Some(t)) => {
                let r = svc.tenant_readiness(&tenant(&t)?).await?;
                if out.json {
                    return json(&r);
                }
                println!(
                    "Tenant {}: {}",
                    r.tenant_id,
                    if r.ready {
                        "ready to protect Planner"
                    } else {
                        "not ready for Planner"
                    }
                );
                for item in &r.missing {
                    println!("- {}", item.summary);
                    println!("  Step: {}", item.step);
                }
                for sp in &r.scan_profiles {
                    print_readiness(sp);
                }
                Ok(())
            }
            (None, None) => anyhow::bail!("name a scan profile ID, or use --tenant TENANT"),
        },
    }
}

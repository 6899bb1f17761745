//! `consentry rollouts`: permission rollouts (catalog versions that added permissions) and how far the
//! customer tenants are in consenting to them, from the same domain service as the API and the console.

use clap::Subcommand;
use consentry_domain::{Consentry, Rollouts};

use crate::{JsonFlag, operator};

#[derive(Debug, Subcommand)]
pub enum RolloutsCmd {
    /// Every rollout, newest first, with its counts.
    List {
        #[command(flatten)]
        out: JsonFlag,
    },
    /// One rollout: who still lacks which permission, and every profile.
    Show {
        /// The rollout: the catalog version that added the permissions.
        version: u32,
        /// Print the profiles as CSV instead.
        #[arg(long, conflicts_with = "json")]
        csv: bool,
        #[command(flatten)]
        out: JsonFlag,
    },
}

/// Runs a rollout command.
pub async fn run(cmd: RolloutsCmd, svc: &Consentry) -> anyhow::Result<()> {
    let rollouts = Rollouts::new(svc.clone());
    let caller = consentry_domain::Caller {
        actor: operator(),
        ..consentry_domain::Caller::platform("cli")
    };
    match cmd {
        RolloutsCmd::List { out } => {
            let items = rollouts.list(&caller).await?;
            if out.json {
                println!("{}", serde_json::to_string_pretty(&items)?);
                return Ok(());
            }
            if items.is_empty() {
                println!(
                    "The catalog in use has no rollout: no version after the first added a permission."
                );
            }
            for s in &items {
                let added: Vec<String> = s
                    .rollout
                    .permissions
                    .iter()
                    .map(|p| format!("{} ({})", p.permission, p.app_name))
                    .collect();
                println!(
                    "rollout {}: {}% done; {} of {} tenants, {} of {} profiles done ({} in progress, {} failed, {} not started); adds {}",
                    s.rollout.version,
                    s.percent_done,
                    s.tenants_done,
                    s.tenants,
                    s.profiles.done,
                    s.profiles.total(),
                    s.profiles.in_progress,
                    s.profiles.failed,
                    s.profiles.not_started,
                    added.join(", ")
                );
            }
            Ok(())
        }
        RolloutsCmd::Show { version, csv, out } => {
            let report = rollouts.show(&caller, version).await?;
            if csv {
                print!("{}", report.csv());
                return Ok(());
            }
            if out.json {
                println!("{}", serde_json::to_string_pretty(&report)?);
                return Ok(());
            }
            let s = &report.summary;
            println!(
                "Rollout {}: {}% done ({} of {} profiles, {} of {} tenants)",
                s.rollout.version,
                s.percent_done,
                s.profiles.done,
                s.profiles.total(),
                s.tenants_done,
                s.tenants
            );
            for m in &report.missing {
                let kind = m.permission.kind;
                let optional = if m.permission.optional {
                    ", optional"
                } else {
                    ""
                };
                let n = m.tenants_missing.len();
                println!(
                    "  {n} {} {} ({kind}{optional}) for {}",
                    if n == 1 {
                        "tenant still lacks"
                    } else {
                        "tenants still lack"
                    },
                    m.permission.permission,
                    m.permission.app_name
                );
                for t in &m.tenants_missing {
                    println!("    {} ({})", t.name, t.domain);
                }
            }
            for m in &report.members {
                println!(
                    "  {}  {}  {:<28}  {:<12} {}",
                    m.profile_id,
                    m.tenant_domain,
                    m.app_type,
                    m.state.label(),
                    match (&m.failure, m.missing.is_empty()) {
                        (Some(f), _) => f.clone(),
                        (None, false) => format!("lacks {}", m.missing.join(", ")),
                        (None, true) => String::new(),
                    }
                );
            }
            Ok(())
        }
    }
}

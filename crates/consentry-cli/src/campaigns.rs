//! `consentry campaigns`: consent campaigns (one link per tenant for every profile needing consent
//! again), from the same domain service as the API and the console.

use clap::{Args, Subcommand};
use consentry_domain::{
    CampaignId, CampaignRequest, CampaignScope, Campaigns, OrgId, TenantId, TenantRef,
};

use crate::{JsonFlag, operator};

/// What a campaign asks for.
#[derive(Debug, Args)]
#[group(required = true, multiple = false)]
pub struct ScopeArgs {
    /// The profiles of this rollout (catalog version) that lack its permissions.
    #[arg(long)]
    rollout: Option<u32>,
    /// Every invalid profile.
    #[arg(long)]
    invalid: bool,
}

#[derive(Debug, Subcommand)]
pub enum CampaignsCmd {
    /// Starts a campaign: one link per affected tenant, invitations queued to the tenants' contacts.
    Start {
        /// The organization (ID).
        #[arg(long)]
        org: String,
        #[command(flatten)]
        scope: ScopeArgs,
        /// Only this tenant (ID or verified domain).
        #[arg(long)]
        tenant: Option<String>,
        /// Days the links work (1–90).
        #[arg(long)]
        days: Option<u32>,
        /// Hours between reminders (0: none).
        #[arg(long)]
        remind_hours: Option<u32>,
        /// Queue no invitation (hand the printed links over yourself).
        #[arg(long)]
        no_email: bool,
        #[command(flatten)]
        out: JsonFlag,
    },
    /// Every campaign, newest first.
    List {
        #[command(flatten)]
        out: JsonFlag,
    },
    /// One campaign: each tenant and each profile's state.
    Show {
        /// The campaign's ID.
        id: String,
        #[command(flatten)]
        out: JsonFlag,
    },
    /// Cancels a campaign: its links stop working, no reminder goes out.
    Cancel {
        /// The campaign's ID.
        id: String,
    },
    /// Sends a tenant's invitation again, its link working again from now.
    Resend {
        /// The campaign's ID.
        id: String,
        /// The tenant's ID.
        tenant: String,
        /// Days the link works from now.
        #[arg(long)]
        days: Option<u32>,
    },
    /// Queues the reminders that are due now (the server does this on its own every minute).
    Remind,
}

fn campaign_id(raw: &str) -> anyhow::Result<CampaignId> {
    Ok(CampaignId::parse(raw)?)
}

/// Runs a campaign command.
pub async fn run(cmd: CampaignsCmd, campaigns: &Campaigns) -> anyhow::Result<()> {
    let caller = consentry_domain::Caller {
        actor: operator(),
        ..consentry_domain::Caller::platform("cli")
    };
    match cmd {
        CampaignsCmd::Start {
            org,
            scope,
            tenant,
            days,
            remind_hours,
            no_email,
            out,
        } => {
            let scope = match scope.rollout {
                Some(version) => CampaignScope::Rollout { version },
                None => CampaignScope::Invalid,
            };
            let started = campaigns
                .start(
                    &caller,
                    CampaignRequest {
                        org: Some(OrgId::parse(&org)?),
                        scope,
                        tenant: tenant.as_deref().map(TenantRef::parse).transpose()?,
                        lifetime_days: days,
                        remind_every_hours: remind_hours,
                        send_invitations: !no_email,
                    },
                )
                .await?;
            if out.json {
                println!("{}", serde_json::to_string_pretty(&started)?);
                return Ok(());
            }
            let c = &started.campaign;
            println!(
                "campaign {} started: {} profiles in {} tenants",
                c.id, c.counts.profiles, c.counts.tenants
            );
            for l in &started.links {
                let invited: Vec<&str> = l.invited.iter().map(|a| a.as_str()).collect();
                if invited.is_empty() {
                    println!("{}: no contacts, hand over {}", l.tenant_domain, l.url);
                } else {
                    println!(
                        "{}: invitation queued to {} ({})",
                        l.tenant_domain,
                        invited.join(", "),
                        l.url
                    );
                }
            }
            Ok(())
        }
        CampaignsCmd::List { out } => {
            let items = campaigns.list(&caller).await?;
            if out.json {
                println!("{}", serde_json::to_string_pretty(&items)?);
                return Ok(());
            }
            if items.is_empty() {
                println!("No campaign was started yet.");
            }
            for s in &items {
                println!(
                    "{} {} ({}): {} of {} profiles, {} of {} tenants done; started {} by {}",
                    s.id,
                    s.title,
                    s.state,
                    s.counts.done,
                    s.counts.profiles,
                    s.counts.tenants_done,
                    s.counts.tenants,
                    s.created_at.date(),
                    s.started_by
                );
            }
            Ok(())
        }
        CampaignsCmd::Show { id, out } => {
            let report = campaigns.show(&caller, campaign_id(&id)?).await?;
            if out.json {
                println!("{}", serde_json::to_string_pretty(&report)?);
                return Ok(());
            }
            let s = &report.summary;
            println!(
                "{} ({}): {} of {} profiles done",
                s.title, s.state, s.counts.done, s.counts.profiles
            );
            for t in &report.tenants {
                println!(
                    "{} ({}), {} invitation(s){}",
                    t.tenant_name,
                    t.tenant_domain,
                    t.invitations,
                    if t.opened_at.is_some() {
                        ", link opened"
                    } else {
                        ""
                    }
                );
                for i in &t.items {
                    println!(
                        "  {} {}: {}{}",
                        i.profile_id,
                        i.app_name,
                        i.state.label(),
                        i.failure
                            .as_deref()
                            .map(|f| format!(" ({f})"))
                            .unwrap_or_default()
                    );
                }
            }
            Ok(())
        }
        CampaignsCmd::Cancel { id } => {
            let s = campaigns.cancel(&caller, campaign_id(&id)?).await?;
            println!("campaign {} cancelled", s.id);
            Ok(())
        }
        CampaignsCmd::Resend { id, tenant, days } => {
            let t = campaigns
                .resend(&caller, campaign_id(&id)?, TenantId::parse(&tenant)?, days)
                .await?;
            println!(
                "invitation to {} queued again; the link works until {}",
                t.tenant_domain,
                t.expires_at.date()
            );
            Ok(())
        }
        CampaignsCmd::Remind => {
            let n = campaigns.send_due_reminders().await?;
            println!("{n} reminder(s) queued");
            Ok(())
        }
    }
}

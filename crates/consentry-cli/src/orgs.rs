//! `consentry orgs`: the organizations (the vendor's customers).

use clap::Subcommand;
use consentry_domain::audit::AuditAction;
use consentry_domain::{Consentry, OrgId};

use crate::{JsonFlag, output, parse, record};

#[derive(Debug, Subcommand)]
pub enum OrgsCmd {
    /// List organizations.
    List(JsonFlag),
    /// Create an organization.
    Create {
        /// Name.
        #[arg(long)]
        name: String,
        /// Subscription modules, comma-separated (catalog module keys).
        #[arg(long, value_delimiter = ',')]
        modules: Vec<String>,
        /// Subscribed services, comma-separated (catalog service keys): connecting a tenant offers
        /// their app types, checked.
        #[arg(long, value_delimiter = ',')]
        services: Vec<String>,
        #[command(flatten)]
        out: JsonFlag,
    },
    /// Replace the services an organization subscribes to.
    Services {
        /// Organization ID.
        id: String,
        /// Catalog service keys, comma-separated ("" for none).
        #[arg(long, value_delimiter = ',')]
        set: Vec<String>,
        #[command(flatten)]
        out: JsonFlag,
    },
    /// Show one organization.
    Show {
        /// Organization ID.
        id: String,
        #[command(flatten)]
        out: JsonFlag,
    },
    /// Delete an organization with no tenants.
    Delete {
        /// Organization ID.
        id: String,
    },
    /// Show what a member of the organization's tenants without an administrator role gets when
    /// signing in to the console with Microsoft, or change it.
    MicrosoftSignIn {
        /// Organization ID.
        id: String,
        /// `viewer` (they sign in as viewers) or `refused` (only administrators may sign in).
        #[arg(long, value_name = "viewer|refused")]
        members: Option<String>,
        #[command(flatten)]
        out: JsonFlag,
    },
    /// Invite the organization's first admin: prints a single-use link (valid 72 hours) that lets
    /// them choose a user name and password for an organization-admin account. With email
    /// configured and --email given, it is also emailed there; otherwise send it yourself.
    Invite {
        /// Organization ID.
        id: String,
        /// Whom the link is meant for (recorded with the invitation).
        #[arg(long)]
        email: Option<String>,
        #[command(flatten)]
        out: JsonFlag,
    },
    /// Show who receives the organization's daily email digest, or replace them.
    Digest {
        /// Organization ID.
        id: String,
        /// Replace the recipients with these addresses, comma-separated ("" turns the digest off).
        #[arg(long, value_name = "ADDR,ADDR")]
        set: Option<String>,
        #[command(flatten)]
        out: JsonFlag,
    },
}

/// Runs an organization command.
/// `email_on`: email delivery is configured (`[email] smtp_host`), so an invitation is also emailed.
pub async fn run(
    cmd: OrgsCmd,
    svc: &Consentry,
    public_url: &str,
    email_on: bool,
) -> anyhow::Result<()> {
    match cmd {
        OrgsCmd::Invite { id, email, out } => {
            let org = parse("organization ID", &id, OrgId::parse)?;
            let caller = consentry_domain::Caller {
                actor: crate::operator(),
                ..consentry_domain::Caller::platform("cli")
            };
            let created = consentry_domain::Invitations::new(svc.clone(), public_url)
                .with_email(email_on)
                .create(&caller, org, email.as_deref())
                .await?;
            if out.json {
                println!(
                    "{}",
                    serde_json::json!({
                        "org_id": created.org_id.to_string(),
                        "url": created.url,
                        "expires_at": created.expires_at.format(&time::format_description::well_known::Rfc3339)?,
                        "emailed": created.emailed,
                    })
                );
            } else {
                println!("{}", created.url);
                let until = consentry_certs::utc_minutes(created.expires_at);
                match (&email, created.emailed) {
                    (Some(to), true) => println!(
                        "Emailed to {to} (queued; `consentry serve` delivers it). It works once, until {until}."
                    ),
                    _ => println!(
                        "Send this link to the organization's first admin; it works once, until {until}."
                    ),
                }
            }
            Ok(())
        }
        OrgsCmd::Digest { id, set, out } => {
            let org = parse("organization ID", &id, OrgId::parse)?;
            let mail = consentry_domain::Mail::new(svc.clone());
            let caller = consentry_domain::Caller {
                actor: crate::operator(),
                ..consentry_domain::Caller::platform("cli")
            };
            let d = match set {
                Some(list) => mail.set_digest_recipients(&caller, org, &[list]).await?,
                None => mail.digest_recipients(&caller, org).await?,
            };
            output::digest(&d, out.json)
        }
        OrgsCmd::MicrosoftSignIn { id, members, out } => {
            let org = parse("organization ID", &id, OrgId::parse)?;
            if let Some(m) = members {
                let rule = consentry_domain::MemberRule::parse(&m)
                    .map_err(|e| anyhow::anyhow!("--members: {e}"))?;
                svc.set_member_rule(org, rule).await?;
                record(
                    svc,
                    Some(org),
                    AuditAction::OrganizationUpdated,
                    format!("organization:{org}"),
                    serde_json::json!({ "members_without_admin_role": rule }),
                )
                .await;
            }
            let rule = svc.member_rule(org).await?;
            if out.json {
                println!(
                    "{}",
                    serde_json::json!({ "members_without_admin_role": rule })
                );
            } else {
                println!(
                    "Members without an administrator role who sign in with Microsoft: {}",
                    match rule {
                        consentry_domain::MemberRule::Viewer => "viewers",
                        consentry_domain::MemberRule::Refused => "refused",
                    }
                );
            }
            Ok(())
        }
        OrgsCmd::List(o) => output::orgs(&svc.organizations().await?, o.json),
        OrgsCmd::Services { id, set, out } => {
            let id = parse("organization ID", &id, OrgId::parse)?;
            let org = svc.set_organization_services(id, &set).await?;
            record(
                svc,
                Some(id),
                AuditAction::OrganizationUpdated,
                format!("organization:{id}"),
                serde_json::json!({ "services": org.services }),
            )
            .await;
            output::orgs(&[org], out.json)
        }
        OrgsCmd::Create {
            name,
            modules,
            services,
            out,
        } => {
            let mut org = svc.create_organization(&name, &modules).await?;
            if !services.is_empty() {
                org = svc.set_organization_services(org.id, &services).await?;
            }
            record(
                svc,
                Some(org.id),
                AuditAction::OrganizationCreated,
                format!("organization:{}", org.id),
                serde_json::json!({ "name": org.name, "modules": org.modules }),
            )
            .await;
            output::orgs(&[org], out.json)
        }
        OrgsCmd::Show { id, out } => {
            let id = parse("organization ID", &id, OrgId::parse)?;
            output::orgs(&[svc.organization(id).await?], out.json)
        }
        OrgsCmd::Delete { id } => {
            let id = parse("organization ID", &id, OrgId::parse)?;
            svc.delete_organization(id).await?;
            record(
                svc,
                Some(id),
                AuditAction::OrganizationDeleted,
                format!("organization:{id}"),
                serde_json::json!({}),
            )
            .await;
            println!("organization {id} deleted");
            Ok(())
        }
    }
}

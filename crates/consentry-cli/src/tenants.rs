//! `consentry tenants`: the Microsoft tenants connected to organizations.

use clap::Subcommand;
use consentry_domain::audit::AuditAction;
use consentry_domain::{Caller, Consentry, DomainName, Mail, OrgId, TenantId, TenantRef};

use crate::{JsonFlag, operator, output, parse, record};

#[derive(Debug, Subcommand)]
pub enum TenantsCmd {
    /// List tenants.
    List {
        /// Only this organization's.
        #[arg(long)]
        org: Option<String>,
        #[command(flatten)]
        out: JsonFlag,
    },
    /// Connect a tenant to an organization.
    Connect {
        /// Organization ID.
        #[arg(long)]
        org: String,
        /// Tenant ID (GUID).
        #[arg(long)]
        tenant_id: String,
        /// Primary domain, e.g. contoso.onmicrosoft.com.
        #[arg(long)]
        domain: String,
        /// Display name.
        #[arg(long)]
        name: Option<String>,
        /// The Microsoft cloud the tenant lives in (global, usgov, usgov-dod, china). Default: found
        /// from the tenant's OpenID metadata at Microsoft.
        #[arg(long)]
        cloud: Option<String>,
        #[command(flatten)]
        out: JsonFlag,
    },
    /// Show a tenant (GUID or domain).
    Show {
        /// Tenant ID or domain.
        tenant: String,
        #[command(flatten)]
        out: JsonFlag,
    },
    /// Disconnect a tenant with no app profiles.
    Delete {
        /// Tenant ID or domain.
        tenant: String,
    },
    /// Show a tenant's administrator contacts (and the consent users suggested), or replace them.
    Contacts {
        /// Tenant ID or domain.
        tenant: String,
        /// Replace the contacts with these addresses, comma-separated ("" removes them all).
        #[arg(long, value_name = "ADDR,ADDR")]
        set: Option<String>,
        #[command(flatten)]
        out: JsonFlag,
    },
    /// The emails sent (or waiting) about a tenant, newest first: recipient, subject, state, last
    /// error.
    Emails {
        /// Tenant ID or domain.
        tenant: String,
        /// How many.
        #[arg(long, default_value_t = 50)]
        limit: u32,
        #[command(flatten)]
        out: JsonFlag,
    },
}

/// Runs a tenant command.
pub async fn run(
    cmd: TenantsCmd,
    svc: &Consentry,
    platform: &dyn consentry_domain::IdentityPlatform,
) -> anyhow::Result<()> {
    match cmd {
        TenantsCmd::List { org, out } => {
            let org = org
                .map(|o| parse("organization ID", &o, OrgId::parse))
                .transpose()?;
            output::tenants(&svc.tenants(org).await?, out.json)
        }
        TenantsCmd::Connect {
            org,
            tenant_id,
            domain,
            name,
            cloud,
            out,
        } => {
            let org = parse("organization ID", &org, OrgId::parse)?;
            let tid = parse("tenant ID", &tenant_id, TenantId::parse)?;
            let domain = parse("domain", &domain, DomainName::parse)?;
            let cloud = cloud
                .map(|c| {
                    consentry_server::clouds::Clouds::builtin()
                        .parse_key(&c)
                        .map_err(|m| anyhow::anyhow!("cloud is not valid: {m}"))
                })
                .transpose()?;
            let placement = match &cloud {
                Some(c) => consentry_domain::Placement::In(c),
                None => consentry_domain::Placement::Discover(platform),
            };
            let t = svc
                .connect_tenant(org, tid, domain, name.as_deref(), placement)
                .await?;
            record(
                svc,
                Some(t.org_id),
                AuditAction::TenantCreated,
                format!("tenant:{}", t.id),
                serde_json::json!({ "domain": t.primary_domain.to_string(), "cloud": t.cloud.to_string() }),
            )
            .await;
            output::tenants(&[t], out.json)
        }
        TenantsCmd::Show { tenant, out } => {
            let r = parse("tenant", &tenant, TenantRef::parse)?;
            output::tenants(&[svc.tenant(&r).await?], out.json)
        }
        TenantsCmd::Delete { tenant } => {
            let r = parse("tenant", &tenant, TenantRef::parse)?;
            let t = svc.tenant(&r).await?;
            svc.delete_tenant(&r).await?;
            record(
                svc,
                Some(t.org_id),
                AuditAction::TenantDeleted,
                format!("tenant:{}", t.id),
                serde_json::json!({ "domain": t.primary_domain.to_string() }),
            )
            .await;
            println!("tenant {tenant} disconnected");
            Ok(())
        }
        TenantsCmd::Contacts { tenant, set, out } => {
            let r = parse("tenant", &tenant, TenantRef::parse)?;
            let mail = Mail::new(svc.clone());
            let caller = caller();
            let c = match set {
                Some(list) => mail.set_contacts(&caller, &r, &[list]).await?,
                None => mail.contacts(&caller, &r).await?,
            };
            output::contacts(&c, out.json)
        }
        TenantsCmd::Emails { tenant, limit, out } => {
            let r = parse("tenant", &tenant, TenantRef::parse)?;
            let items = Mail::new(svc.clone())
                .tenant_emails(&caller(), &r, limit)
                .await?;
            output::emails(&items, out.json)
        }
    }
}

/// The platform operator, as the audit log names this shell's user.
fn caller() -> Caller {
    Caller {
        actor: operator(),
        ..Caller::platform("cli")
    }
}

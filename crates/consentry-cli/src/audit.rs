//! `consentry audit …`: the hash-chained audit log — verify its chain, list and export entries.

use anyhow::Context as _;
use clap::Subcommand;
use consentry_domain::audit::{AuditEntry, ExportFormat, export};
use consentry_domain::{Consentry, OrgId};

/// `consentry audit`.
#[derive(Debug, Subcommand)]
pub enum AuditCmd {
    /// Verify the whole hash chain: exits 0 with "N entries, chain intact", or non-zero naming the
    /// first broken entry and why.
    Verify,
    /// List entries, newest first.
    List {
        /// Only this organization's.
        #[arg(long)]
        org: Option<String>,
        /// At most this many.
        #[arg(long, default_value_t = 50)]
        limit: u32,
        /// Entries older than this sequence number (the next page).
        #[arg(long)]
        before: Option<u64>,
        /// JSON output.
        #[arg(long)]
        json: bool,
    },
    /// Export an organization's entries, oldest first, to standard output.
    Export {
        /// Organization ID.
        #[arg(long)]
        org: String,
        /// jsonl or csv.
        #[arg(long, default_value = "jsonl")]
        format: String,
    },
}

fn line(e: &AuditEntry) -> String {
    format!(
        "{:>6}  {}  {:<26}  {:<28}  {:<44}  org {}  {}",
        e.seq,
        e.at.format(&time::format_description::well_known::Rfc3339)
            .unwrap_or_default(),
        e.action,
        e.actor.to_string(),
        e.target,
        e.org_id
            .map(|o| o.to_string())
            .unwrap_or_else(|| "-".into()),
        consentry_domain::audit::canonical_json(&e.detail),
    )
}

/// Runs an audit command.
pub async fn run(cmd: AuditCmd, svc: &Consentry) -> anyhow::Result<()> {
    let log = svc.audit();
    match cmd {
        AuditCmd::Verify => match log.verify().await? {
            Ok(n) => {
                println!("{n} entries, chain intact");
                Ok(())
            }
            Err(b) => anyhow::bail!("{b}"),
        },
        AuditCmd::List {
            org,
            limit,
            before,
            json,
        } => {
            let org = org
                .map(|o| OrgId::parse(o.trim()))
                .transpose()
                .context("--org is not a valid organization ID")?;
            let page = log.page(org, before, limit).await?;
            if json {
                println!("{}", serde_json::to_string_pretty(&page)?);
            } else {
                for e in &page.entries {
                    println!("{}", line(e));
                }
                if let Some(b) = page.next_before {
                    println!("(more: --before {b})");
                }
            }
            Ok(())
        }
        AuditCmd::Export { org, format } => {
            let org = OrgId::parse(org.trim()).context("--org is not a valid organization ID")?;
            let format = ExportFormat::parse(&format)?;
            svc.organization(org).await?;
            print!("{}", export(&log.all(Some(org)).await?, format));
            Ok(())
        }
    }
}

//! `consentry keys`: the service API keys of the token API, scoped to an organization.

use clap::Subcommand;
use consentry_domain::{Consentry, OrgId};

use crate::{JsonFlag, operator, parse};

#[derive(Debug, Subcommand)]
pub enum KeysCmd {
    /// Create a key for an organization; it is printed once and only its hash is stored.
    Create {
        /// Organization ID.
        #[arg(long)]
        org: String,
        /// A label (e.g. the service using it).
        #[arg(long, default_value = "service")]
        name: String,
    },
    /// List keys (never their values).
    List {
        /// Only this organization's.
        #[arg(long)]
        org: Option<String>,
        #[command(flatten)]
        out: JsonFlag,
    },
    /// Revoke a key by its ID.
    Revoke {
        /// Key ID.
        id: String,
    },
}

/// Runs a key command.
pub async fn run(cmd: KeysCmd, svc: &Consentry) -> anyhow::Result<()> {
    // The same service as the JSON API: the same name rule, the same audit entries.
    let keys = consentry_domain::ApiKeys::new(svc.clone());
    let caller = consentry_domain::Caller {
        actor: operator(),
        ..consentry_domain::Caller::platform("cli")
    };
    match cmd {
        KeysCmd::Create { org, name } => {
            let org = parse("organization ID", &org, OrgId::parse)?;
            let created = keys.create(&caller, org, &name).await?;
            println!("key id: {}", created.record.id);
            println!(
                "key:    {}",
                secrecy::ExposeSecret::expose_secret(&created.key)
            );
            println!(
                "(shown once; only its hash is stored. Send it as `Authorization: Bearer <key>`.)"
            );
            Ok(())
        }
        KeysCmd::List { org, out } => {
            let org = org
                .map(|o| parse("organization ID", &o, OrgId::parse))
                .transpose()?;
            let keys = keys.list(&caller, org).await?;
            if out.json {
                println!("{}", serde_json::to_string_pretty(&keys)?);
            } else {
                for k in &keys {
                    println!(
                        "{}  org {}  {:<20}  {}  {}",
                        k.id,
                        k.org_id,
                        k.name,
                        match k.revoked_at {
                            Some(at) => format!("revoked {at}"),
                            None => "active".into(),
                        },
                        match k.last_used_at {
                            Some(at) => format!("last used {at}"),
                            None => "never used".into(),
                        }
                    );
                }
            }
            Ok(())
        }
        KeysCmd::Revoke { id } => {
            let id = parse("key ID", &id, consentry_domain::ApiKeyId::parse)?;
            match keys.revoke(&caller, None, id).await {
                Ok(_) => {
                    println!("key {id} revoked");
                    Ok(())
                }
                Err(consentry_domain::DomainError::NotFound { .. }) => {
                    anyhow::bail!("no active key {id}; `consentry keys list` shows the keys")
                }
                Err(e) => Err(e.into()),
            }
        }
    }
}

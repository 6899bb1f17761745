//! `consentry keys`: the service API keys of the token API, scoped to an organization.

use anyhow::Context as _;
use clap::Subcommand;
use consentry_domain::audit::AuditAction;
use consentry_domain::{Consentry, OrgId};

use crate::{JsonFlag, parse, record};

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
    let store = svc.store();
    match cmd {
        KeysCmd::Create { org, name } => {
            let org = parse("organization ID", &org, OrgId::parse)?;
            svc.organization(org).await?;
            let key = consentry_server::api::tokens::new_api_key();
            let record = consentry_domain::ApiKey {
                id: uuid::Uuid::new_v4(),
                org_id: org,
                name: name.trim().to_string(),
                key_hash: consentry_server::api::tokens::key_hash(&key),
                created_at: svc.clock().now(),
                revoked_at: None,
                last_used_at: None,
            };
            store.insert_api_key(&record).await?;
            self::record(
                svc,
                Some(org),
                AuditAction::ApiKeyCreated,
                format!("api_key:{}", record.id),
                serde_json::json!({ "name": record.name }),
            )
            .await;
            println!("key id: {}", record.id);
            println!("key:    {key}");
            println!(
                "(shown once; only its hash is stored. Send it as `Authorization: Bearer <key>`.)"
            );
            Ok(())
        }
        KeysCmd::List { org, out } => {
            let org = org
                .map(|o| parse("organization ID", &o, OrgId::parse))
                .transpose()?;
            let keys = store.list_api_keys(org).await?;
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
            let id = uuid::Uuid::parse_str(id.trim())
                .with_context(|| format!("key ID {id:?} is not a UUID"))?;
            let org = store
                .list_api_keys(None)
                .await?
                .into_iter()
                .find(|k| k.id == id)
                .map(|k| k.org_id);
            if store.revoke_api_key(id, svc.clock().now()).await? {
                record(
                    svc,
                    org,
                    AuditAction::ApiKeyRevoked,
                    format!("api_key:{id}"),
                    serde_json::json!({}),
                )
                .await;
                println!("key {id} revoked");
                Ok(())
            } else {
                anyhow::bail!("no active key {id}; `consentry keys list` shows the keys")
            }
        }
    }
}

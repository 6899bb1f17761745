//! `consentry users`: operator accounts of the web console, on the configured database.

use consentry_domain::audit::AuditAction;
use std::io::Read as _;
use std::path::PathBuf;

use anyhow::Context as _;
use base64::Engine as _;
use clap::Subcommand;
use comfy_table::Table;
use consentry_domain::{AccountScope, Accounts, Consentry, HashCost, OrgId, SessionPolicy};
use secrecy::{ExposeSecret as _, SecretString};

/// Operator accounts of the web console.
#[derive(Debug, Subcommand)]
pub enum UsersCmd {
    /// Create an account. Without --password-file or --password-stdin a strong password is generated and
    /// printed once.
    Create {
        /// Sign-in name (letters, digits, . _ - @; case-insensitive).
        username: String,
        /// Limit the account to this organization (ID). Without it, use --platform.
        #[arg(long, conflicts_with = "platform")]
        org: Option<String>,
        /// A platform operator: sees every organization.
        #[arg(long)]
        platform: bool,
        /// Read the password from this file (first line).
        #[arg(long, conflicts_with = "password_stdin")]
        password_file: Option<PathBuf>,
        /// Read the password from standard input (first line).
        #[arg(long)]
        password_stdin: bool,
    },
    /// List accounts.
    List {
        /// Print JSON instead of a table.
        #[arg(long)]
        json: bool,
    },
    /// Delete an account and end its sessions.
    Delete {
        /// Sign-in name.
        username: String,
    },
}

fn first_line(s: &str) -> SecretString {
    SecretString::from(s.lines().next().unwrap_or_default().to_string())
}

/// Runs a `users` command over the domain services.
pub async fn run(cmd: UsersCmd, svc: &Consentry) -> anyhow::Result<()> {
    let accounts = Accounts::new(
        svc.store().clone(),
        svc.clock().clone(),
        SessionPolicy::default(),
        HashCost::Recommended,
    );
    match cmd {
        UsersCmd::Create {
            username,
            org,
            platform,
            password_file,
            password_stdin,
        } => {
            let scope = match (org, platform) {
                (Some(o), _) => AccountScope::Organization(
                    OrgId::parse(&o).with_context(|| format!("--org {o:?}"))?,
                ),
                (None, true) => AccountScope::Platform,
                (None, false) => anyhow::bail!(
                    "say which organization the account belongs to (--org ID) or make it a platform operator (--platform)"
                ),
            };
            let (password, generated) = if let Some(p) = password_file {
                let s = std::fs::read_to_string(&p)
                    .with_context(|| format!("cannot read the password file {}", p.display()))?;
                (first_line(&s), false)
            } else if password_stdin {
                let mut s = String::new();
                std::io::stdin()
                    .read_to_string(&mut s)
                    .context("cannot read the password from standard input")?;
                (first_line(&s), false)
            } else {
                let mut raw = [0u8; 18];
                rand::fill(&mut raw[..]);
                (
                    SecretString::from(
                        base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(raw),
                    ),
                    true,
                )
            };
            let a = accounts.create(&username, &password, scope).await?;
            svc.audit()
                .record(
                    &crate::operator(),
                    a.scope.org(),
                    AuditAction::AccountCreated,
                    format!("account:{}", a.username),
                    serde_json::json!({ "platform": a.scope.org().is_none() }),
                )
                .await;
            println!(
                "created operator account {} ({})",
                a.username,
                match a.scope {
                    AccountScope::Platform => "platform operator".to_string(),
                    AccountScope::Organization(o) => format!("organization {o}"),
                }
            );
            if generated {
                println!("password: {}", password.expose_secret());
                println!("(shown once; sign in at /console and keep it in a password manager)");
            }
            Ok(())
        }
        UsersCmd::List { json } => {
            let list = accounts.list().await?;
            if json {
                let v: Vec<serde_json::Value> = list
                    .iter()
                    .map(|a| {
                        serde_json::json!({
                            "id": a.id,
                            "username": a.username,
                            "scope": a.scope,
                            "created_at": a
                                .created_at
                                .format(&time::format_description::well_known::Rfc3339)
                                .unwrap_or_default(),
                        })
                    })
                    .collect();
                println!("{}", serde_json::to_string_pretty(&v)?);
            } else if list.is_empty() {
                println!(
                    "no operator accounts; create one with `consentry users create NAME --platform`"
                );
            } else {
                let mut t = Table::new();
                t.set_header(["User name", "Scope", "Created"]);
                for a in &list {
                    t.add_row([
                        a.username.clone(),
                        match a.scope {
                            AccountScope::Platform => "platform".to_string(),
                            AccountScope::Organization(o) => format!("organization {o}"),
                        },
                        a.created_at.date().to_string(),
                    ]);
                }
                println!("{t}");
            }
            Ok(())
        }
        UsersCmd::Delete { username } => {
            let org = svc
                .store()
                .find_account(&username.trim().to_lowercase())
                .await?
                .and_then(|a| a.scope.org());
            accounts.delete(&username).await?;
            svc.audit()
                .record(
                    &crate::operator(),
                    org,
                    AuditAction::AccountDeleted,
                    format!("account:{}", username.trim().to_lowercase()),
                    serde_json::json!({}),
                )
                .await;
            println!(
                "deleted operator account {}",
                username.trim().to_lowercase()
            );
            Ok(())
        }
    }
}

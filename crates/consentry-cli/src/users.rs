//! `consentry users`: operator accounts of the web console, on the configured database.

use consentry_domain::audit::AuditAction;
use std::io::Read as _;
use std::path::PathBuf;

use anyhow::Context as _;
use base64::Engine as _;
use clap::Subcommand;
use comfy_table::Table;
use consentry_domain::account::{DEFAULT_TOKEN_DAYS, MAX_TOKEN_DAYS};
use consentry_domain::{AccountScope, Accounts, Consentry, HashCost, OrgId, Role, SessionPolicy};
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
        /// A platform operator: sees and may do everything, including creating organizations and
        /// accounts.
        #[arg(long)]
        platform: bool,
        /// What an organization's account may do: admin (re-authorize, check, manage profiles,
        /// tenants, webhooks, keys and settings) or viewer (read only).
        #[arg(long, default_value = "admin", conflicts_with = "platform")]
        role: String,
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
    /// Personal access tokens of an account for the JSON API.
    #[command(subcommand)]
    Token(TokenCmd),
}

/// `consentry users token …`.
#[derive(Debug, Subcommand)]
pub enum TokenCmd {
    /// Create a token for an account; it is printed once (only its hash is stored). It acts with the
    /// account's organization and role.
    Create {
        /// The account's sign-in name.
        username: String,
        /// A label: what will use the token.
        #[arg(long)]
        name: String,
        /// Days until it expires (1 to 366).
        #[arg(long, default_value_t = DEFAULT_TOKEN_DAYS)]
        expires_in_days: i64,
    },
    /// List an account's tokens (never their values), with last use and expiry.
    List {
        /// The account's sign-in name.
        username: String,
        /// Print JSON instead of a table.
        #[arg(long)]
        json: bool,
    },
    /// Revoke one of an account's tokens.
    Revoke {
        /// The account's sign-in name.
        username: String,
        /// The token's ID (from `users token list`).
        id: String,
    },
}

fn first_line(s: &str) -> SecretString {
    SecretString::from(s.lines().next().unwrap_or_default().to_string())
}

/// Runs a `users` command over the domain services.
pub async fn run(cmd: UsersCmd, svc: &Consentry) -> anyhow::Result<()> {
    let accounts = svc.accounts(SessionPolicy::default(), HashCost::Recommended);
    match cmd {
        UsersCmd::Create {
            username,
            org,
            platform,
            role,
            password_file,
            password_stdin,
        } => {
            let role = Role::parse(&role)?;
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
            let a = accounts
                .create_with_role(&username, &password, scope, role)
                .await?;
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
                    AccountScope::Organization(o) => format!("{} of organization {o}", a.role),
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
                            "role": role_of(a),
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
                t.set_header(["User name", "Scope", "Role", "Created"]);
                for a in &list {
                    t.add_row([
                        a.username.clone(),
                        match a.scope {
                            AccountScope::Platform => "platform".to_string(),
                            AccountScope::Organization(o) => format!("organization {o}"),
                        },
                        role_of(a).to_string(),
                        a.created_at.date().to_string(),
                    ]);
                }
                println!("{t}");
            }
            Ok(())
        }
        UsersCmd::Token(cmd) => token(cmd, &accounts, svc).await,
        UsersCmd::Delete { username } => {
            let org = accounts.find(&username).await?.and_then(|a| a.scope.org());
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

/// The role as shown: `platform` for the platform operator, else the organization role.
fn role_of(a: &consentry_domain::OperatorAccount) -> &'static str {
    match a.scope {
        AccountScope::Platform => "platform",
        AccountScope::Organization(_) => a.role.as_str(),
    }
}

async fn account(
    svc: &Consentry,
    username: &str,
) -> anyhow::Result<consentry_domain::OperatorAccount> {
    svc.accounts(SessionPolicy::default(), HashCost::Recommended)
        .find(username)
        .await?
        .with_context(|| {
            format!("no operator account {username:?}; `consentry users list` shows the accounts")
        })
}

async fn token(cmd: TokenCmd, accounts: &Accounts, svc: &Consentry) -> anyhow::Result<()> {
    match cmd {
        TokenCmd::Create {
            username,
            name,
            expires_in_days,
        } => {
            let a = account(svc, &username).await?;
            if !(1..=MAX_TOKEN_DAYS).contains(&expires_in_days) {
                anyhow::bail!("--expires-in-days must be between 1 and {MAX_TOKEN_DAYS}");
            }
            let (t, secret) = accounts
                .create_token(&a, &name, time::Duration::days(expires_in_days))
                .await?;
            println!("token id: {}", t.id);
            println!("token:    {}", secret.expose_secret());
            println!(
                "(shown once; only its hash is stored. It acts as {} ({}) until {}. Send it as `Authorization: Bearer <token>`.)",
                a.username,
                role_of(&a),
                t.expires_at
                    .format(&time::format_description::well_known::Rfc3339)
                    .unwrap_or_default()
            );
            Ok(())
        }
        TokenCmd::List { username, json } => {
            let a = account(svc, &username).await?;
            let list = accounts.tokens(a.id).await?;
            if json {
                println!("{}", serde_json::to_string_pretty(&list)?);
            } else if list.is_empty() {
                println!(
                    "{} has no API tokens; create one with `consentry users token create {} --name NAME`",
                    a.username, a.username
                );
            } else {
                let now = svc.clock().now();
                let mut t = Table::new();
                t.set_header(["ID", "Name", "Created", "Expires", "Last used", "State"]);
                for k in &list {
                    t.add_row([
                        k.id.to_string(),
                        k.name.clone(),
                        k.created_at.date().to_string(),
                        k.expires_at.date().to_string(),
                        k.last_used_at
                            .map(|u| u.date().to_string())
                            .unwrap_or_else(|| "never".into()),
                        match k.revoked_at {
                            Some(_) => "revoked".to_string(),
                            None if now >= k.expires_at => "expired".to_string(),
                            None => "active".to_string(),
                        },
                    ]);
                }
                println!("{t}");
            }
            Ok(())
        }
        TokenCmd::Revoke { username, id } => {
            let a = account(svc, &username).await?;
            let id = uuid::Uuid::parse_str(id.trim())
                .with_context(|| format!("token ID {id:?} is not a UUID"))?;
            accounts.revoke_token(a.id, id).await?;
            println!("token {id} of {} revoked", a.username);
            Ok(())
        }
    }
}

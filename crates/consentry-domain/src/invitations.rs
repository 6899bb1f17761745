//! Inviting an organization's first admin: the platform operator creates a single-use link
//! (`{public_url}/console/invitations/{token}`, a random 256-bit token of which only the SHA-256 is
//! stored, valid 72 hours); whoever opens it chooses a user name and password and gets an
//! organization-admin account of that organization. The link is shown once to the operator; with
//! email configured ([`Invitations::with_email`]) and an address given, it is also emailed (queued
//! in the outbox, sealed there, through [`crate::mail::Mail`]).

use time::{Duration, OffsetDateTime};

use crate::access::{Action, Caller, Role};
use crate::account::{AccountScope, Accounts, OperatorAccount};
use crate::audit::AuditAction;
use crate::error::DomainError;
use crate::ids::{EmailAddress, OrgId};
use crate::ports::Invitation;
use crate::reauth::{random_token, state_hash};
use crate::service::Consentry;
use secrecy::SecretString;

/// How long an invitation link stays usable.
pub const INVITATION_LIFETIME: Duration = Duration::hours(72);

/// The console path of an invitation link (under `public_url`), followed by its token.
pub const INVITATION_PATH: &str = "/console/invitations/";

/// A new invitation: its link, shown once.
#[derive(Debug, Clone)]
pub struct CreatedInvitation {
    /// The organization.
    pub org_id: OrgId,
    /// The single-use link.
    pub url: String,
    /// When it expires.
    pub expires_at: OffsetDateTime,
    /// Whether the link was queued for email to the address given.
    pub emailed: bool,
}

/// What an open invitation shows.
#[derive(Debug, Clone)]
pub struct InvitationView {
    /// The organization's name.
    pub organization: String,
    /// When it expires.
    pub expires_at: OffsetDateTime,
}

/// Invitations over the domain services and the operator accounts.
#[derive(Debug, Clone)]
pub struct Invitations {
    core: Consentry,
    base: String,
    email: bool,
}

impl Invitations {
    /// Builds it; links are served under `public_url`.
    pub fn new(core: Consentry, public_url: &str) -> Self {
        Self {
            core,
            base: public_url.trim_end_matches('/').to_string(),
            email: false,
        }
    }

    /// Emails the link when an address is given (email delivery is configured).
    pub fn with_email(mut self, enabled: bool) -> Self {
        self.email = enabled;
        self
    }

    /// Creates an invitation of `org`'s first admin (the platform operator only), optionally
    /// recording the address it is meant for.
    pub async fn create(
        &self,
        caller: &Caller,
        org: OrgId,
        email: Option<&str>,
    ) -> Result<CreatedInvitation, DomainError> {
        caller.may(Action::ManagePlatform, Some(org))?;
        let organization = self.core.organization(org).await?.name;
        let email = email
            .map(str::trim)
            .filter(|e| !e.is_empty())
            .map(|e| {
                EmailAddress::parse(e).map_err(|e| DomainError::invalid("email", e.to_string()))
            })
            .transpose()?;
        let token = random_token(32);
        let now = self.core.clock().now();
        let invitation = Invitation {
            token_hash: state_hash(&token),
            org_id: org,
            email: email.clone(),
            created_by: caller.actor.clone(),
            created_at: now,
            expires_at: now + INVITATION_LIFETIME,
            used_at: None,
            used_by: None,
        };
        self.core.store().insert_invitation(&invitation).await?;
        self.core
            .audit()
            .record(
                &caller.actor,
                Some(org),
                AuditAction::InvitationCreated,
                format!("organization:{org}"),
                serde_json::json!({
                    "email": email.as_ref().map(|e| e.to_string()),
                    "expires_at": invitation.expires_at.unix_timestamp(),
                }),
            )
            .await;
        let url = format!("{}{INVITATION_PATH}{token}", self.base);
        let emailed = match (&email, self.email) {
            (Some(to), true) => {
                crate::mail::Mail::new(self.core.clone())
                    .queue(&[crate::mail::Outgoing {
                        org_id: org,
                        tenant_id: None,
                        to: vec![to.clone()],
                        content: crate::mail::EmailContent::AdminInvitation(
                            crate::mail::AdminInvite {
                                organization,
                                url: url.clone(),
                                expires_at: invitation.expires_at,
                            },
                        ),
                        topic: None,
                    }])
                    .await?;
                true
            }
            _ => false,
        };
        Ok(CreatedInvitation {
            org_id: org,
            url,
            expires_at: invitation.expires_at,
            emailed,
        })
    }

    /// The open invitation of `token`; `Invalid` (saying why) when unknown, used or expired.
    async fn open(&self, token: &str) -> Result<Invitation, DomainError> {
        let unknown = || {
            DomainError::invalid(
                "invitation",
                "this invitation link is not valid: check that it was copied whole, or ask the service operator for a new one",
            )
        };
        if token.len() > 128 {
            return Err(unknown());
        }
        let inv = self
            .core
            .store()
            .get_invitation(&state_hash(token))
            .await?
            .ok_or_else(unknown)?;
        if inv.used_at.is_some() {
            return Err(DomainError::invalid(
                "invitation",
                "this invitation link was used already: sign in with the account it created, or ask the service operator for a new link",
            ));
        }
        if inv.expires_at <= self.core.clock().now() {
            return Err(DomainError::invalid(
                "invitation",
                "this invitation link expired (links are valid for 72 hours): ask the service operator for a new one",
            ));
        }
        Ok(inv)
    }

    /// What the link's page shows.
    pub async fn view(&self, token: &str) -> Result<InvitationView, DomainError> {
        let inv = self.open(token).await?;
        Ok(InvitationView {
            organization: self.core.organization(inv.org_id).await?.name,
            expires_at: inv.expires_at,
        })
    }

    /// Accepts the invitation: creates an organization-admin account `username` with `password`
    /// (the accounts' rules) and uses the link up. A name taken or a password refused leaves the
    /// link usable.
    pub async fn accept(
        &self,
        accounts: &Accounts,
        token: &str,
        username: &str,
        password: &SecretString,
    ) -> Result<OperatorAccount, DomainError> {
        let inv = self.open(token).await?;
        let account = accounts
            .create_with_role(
                username,
                password,
                AccountScope::Organization(inv.org_id),
                Role::Admin,
            )
            .await?;
        let used = self
            .core
            .store()
            .use_invitation(&inv.token_hash, &account.username, self.core.clock().now())
            .await?;
        if !used {
            // Another browser used it in between: this account goes.
            accounts.delete(&account.username).await?;
            return Err(DomainError::invalid(
                "invitation",
                "this invitation link was used already: ask the service operator for a new one",
            ));
        }
        self.core
            .audit()
            .record(
                &crate::model::Actor::Operator(format!("console:{}", account.username)),
                Some(inv.org_id),
                AuditAction::AccountCreated,
                format!("account:{}", account.username),
                serde_json::json!({ "role": "admin", "by": "invitation" }),
            )
            .await;
        Ok(account)
    }
}

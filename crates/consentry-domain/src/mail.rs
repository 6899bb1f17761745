//! Email to tenants' administrators: their contacts, what the messages say (structured, rendered to
//! text and HTML by the sender, `consentry-mail`), and the outbox they wait in until an SMTP server
//! accepts them.
//!
//! The domain queues messages (a campaign's invitations, [`InvalidEmails`] when a check makes a
//! profile invalid) and keeps the outbox's rules: leasing due messages to one sender, a permanent
//! refusal failing a message for good, a transient failure retried by [`RetryPolicy`]. Talking SMTP
//! belongs to the sender, `consentry-mail`, which calls [`Mail::lease_due`], [`Mail::delivered`] and
//! [`Mail::delivery_failed`].

use secrecy::SecretString;
use serde::{Deserialize, Serialize};
use time::OffsetDateTime;

use crate::access::{Action, Caller};
use crate::check::{StatusChange, StatusObserver};
use crate::error::DomainError;
use crate::ids::{EmailAddress, EmailId, OrgId, ProfileId, TenantId, TenantRef};
use crate::ports::{EmailKind, EmailRecord, NewEmail};
use crate::service::Consentry;
use crate::status::{ProfileStatus, StatusReason};

/// The most contacts a tenant may have.
pub const MAX_CONTACTS: usize = 20;

/// One app of a campaign invitation: what it asks for and why.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct InvitationApp {
    /// The app type's display name.
    pub app_name: String,
    /// Its name in Microsoft Entra ID, as the consent page shows it (None for custom apps).
    pub entra_app_name: Option<String>,
    /// The permissions it newly asks for (a rollout), or every permission (re-authorizing an
    /// invalid profile).
    pub permissions: Vec<String>,
    /// Why the consent is needed, in words.
    pub why: String,
    /// What the consenting account needs, in words.
    pub required_roles: String,
}

/// A consent campaign's invitation (or reminder) to one tenant's administrators.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Invitation {
    /// The vendor's customer (Consentry organization) the campaign is for.
    pub organization: String,
    /// The tenant's primary domain.
    pub tenant_domain: String,
    /// The tenant's link: one pass through every app below. A credential.
    pub link: String,
    /// Until when the link works.
    #[serde(with = "time::serde::rfc3339")]
    pub expires_at: OffsetDateTime,
    /// A reminder of an earlier invitation.
    pub reminder: bool,
    /// Who started the campaign, in words.
    pub started_by: String,
    /// The apps to consent to again.
    pub apps: Vec<InvitationApp>,
    /// Consentry's outbound addresses, for conditional access (empty: not configured).
    pub outbound_addresses: Vec<String>,
}

/// A profile of the tenant became invalid.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct InvalidNotice {
    /// The organization.
    pub organization: String,
    /// The tenant's primary domain.
    pub tenant_domain: String,
    /// The app type's display name.
    pub app_name: String,
    /// The profile.
    pub profile_id: String,
    /// What is wrong, in one sentence.
    pub reason: String,
    /// The steps that fix it.
    pub remediation: Vec<String>,
}

/// One line of a digest: a profile that is not valid.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct DigestLine {
    /// The tenant's primary domain.
    pub tenant_domain: String,
    /// The app type's display name.
    pub app_name: String,
    /// Its status.
    pub status: String,
    /// Why, in one sentence.
    pub reason: String,
}

/// An organization's daily digest.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Digest {
    /// The organization.
    pub organization: String,
    /// The day it covers (YYYY-MM-DD, UTC).
    pub day: String,
    /// Profiles by status: valid, attention, invalid, pending.
    pub counts: [u64; 4],
    /// The profiles that are not valid (at most 50).
    pub lines: Vec<DigestLine>,
}

/// What a message says, structured; the sender renders it (text and HTML parts, no remote images).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum EmailContent {
    /// A campaign invitation or reminder.
    Invitation(Invitation),
    /// A profile became invalid.
    ProfileInvalid(InvalidNotice),
    /// An organization's daily digest.
    Digest(Digest),
    /// An invitation to become an organization's first admin.
    AdminInvitation(AdminInvite),
    /// To the platform operator: a vendor app's credential needs rotating (sent directly, not through
    /// an organization's outbox).
    VendorCredential(VendorCredentialNotice),
}

/// A vendor app's secret or certificate ends within 30 days, or ended.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct VendorCredentialNotice {
    /// The app type's key, or `consentry-app`.
    pub app: String,
    /// The cloud.
    pub cloud: String,
    /// The registration's application (client) ID.
    pub client_id: String,
    /// `secret` or `certificate`.
    pub kind: String,
    /// The credential's key ID, when registered.
    pub key_id: Option<String>,
    /// `attention` or `expired`.
    pub stage: String,
    /// When it ends.
    #[serde(with = "time::serde::rfc3339::option")]
    pub ends_at: Option<OffsetDateTime>,
    /// What to run.
    pub rotate_command: String,
}

impl VendorCredentialNotice {
    /// The notice of an alert.
    pub fn of(event: &crate::vendor_watch::VendorCredentialEvent) -> Self {
        let c = &event.credential;
        Self {
            app: c.app.label().to_string(),
            cloud: c.cloud.to_string(),
            client_id: event.client_id.to_string(),
            kind: c.kind.as_str().to_string(),
            key_id: c.key_id.clone(),
            stage: event.stage.as_str().to_string(),
            ends_at: c.ends_at,
            rotate_command: event.rotate_command.clone(),
        }
    }
}

/// An invitation to become an organization's first admin: the single-use link (a credential: the
/// outbox seals it, nothing logs it) and when it expires.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct AdminInvite {
    /// The organization.
    pub organization: String,
    /// The link (`{public_url}/console/invitations/{token}`).
    pub url: String,
    /// When the link stops working.
    #[serde(with = "time::serde::rfc3339")]
    pub expires_at: OffsetDateTime,
}

impl EmailContent {
    /// The kind stored with the message.
    pub fn kind(&self) -> EmailKind {
        match self {
            Self::Invitation(i) if i.reminder => EmailKind::CampaignReminder,
            Self::Invitation(_) => EmailKind::CampaignInvitation,
            Self::ProfileInvalid(_) => EmailKind::ProfileInvalid,
            Self::Digest(_) => EmailKind::Digest,
            Self::AdminInvitation(_) => EmailKind::AdminInvitation,
            Self::VendorCredential(_) => EmailKind::VendorCredential,
        }
    }

    /// The subject line (no secrets).
    pub fn subject(&self) -> String {
        match self {
            Self::Invitation(i) => {
                let n = i.apps.len();
                let apps = if n == 1 {
                    "1 app".to_string()
                } else {
                    format!("{n} apps")
                };
                let prefix = if i.reminder { "Reminder: " } else { "" };
                format!(
                    "{prefix}{} asks you to consent again for {apps} in {}",
                    i.organization, i.tenant_domain
                )
            }
            Self::ProfileInvalid(n) => format!(
                "{} in {} needs to be re-authorized",
                n.app_name, n.tenant_domain
            ),
            Self::Digest(d) => format!("{}: app profiles on {}", d.organization, d.day),
            Self::AdminInvitation(i) => {
                format!(
                    "You are invited to administer {} in Consentry",
                    i.organization
                )
            }
            Self::VendorCredential(n) => {
                let day = n
                    .ends_at
                    .map(|t| t.date().to_string())
                    .unwrap_or_else(|| "?".into());
                if n.stage == "expired" {
                    format!("Consentry: the {} of {} expired on {day}", n.kind, n.app)
                } else {
                    format!("Consentry: the {} of {} expires on {day}", n.kind, n.app)
                }
            }
        }
    }
}

/// A message to queue: to whom, about which tenant, what.
#[derive(Debug, Clone)]
pub struct Outgoing {
    /// The organization it is sent for.
    pub org_id: OrgId,
    /// The tenant it concerns.
    pub tenant_id: Option<TenantId>,
    /// The recipients (one message each).
    pub to: Vec<EmailAddress>,
    /// What it says.
    pub content: EmailContent,
    /// A hold-down key, if any.
    pub topic: Option<String>,
}

/// Parses a list of contacts (comma, semicolon or newline separated, or one per entry), naming the
/// field and the address that is wrong. Duplicates (ignoring case) are dropped, order is kept.
pub fn parse_contacts(entries: &[String]) -> Result<Vec<EmailAddress>, DomainError> {
    parse_addresses("contacts", entries)
}

/// [`parse_contacts`] for the field `field`.
pub fn parse_addresses(
    field: &'static str,
    entries: &[String],
) -> Result<Vec<EmailAddress>, DomainError> {
    let mut out: Vec<EmailAddress> = Vec::new();
    for entry in entries {
        for part in entry.split([',', ';', '\n']) {
            if part.trim().is_empty() {
                continue;
            }
            let a = EmailAddress::parse(part)
                .map_err(|e| DomainError::invalid(field, e.to_string()))?;
            if !out
                .iter()
                .any(|o| o.as_str().eq_ignore_ascii_case(a.as_str()))
            {
                out.push(a);
            }
        }
    }
    if out.len() > MAX_CONTACTS {
        return Err(DomainError::invalid(
            field,
            format!("at most {MAX_CONTACTS} addresses"),
        ));
    }
    Ok(out)
}

/// A tenant's contacts and who could be added.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct TenantContacts {
    /// The tenant.
    pub tenant_id: TenantId,
    /// Its administrator contacts.
    pub contacts: Vec<EmailAddress>,
    /// The accounts that consented to its profiles and are not contacts yet (their UPNs).
    pub suggested: Vec<String>,
}

/// An organization's daily digest recipients (opted in).
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct DigestRecipients {
    /// The organization.
    pub org_id: OrgId,
    /// Who receives its daily digest (none: no digest).
    pub recipients: Vec<EmailAddress>,
}

/// The most profiles a digest lists.
pub const DIGEST_LINES: usize = 50;

/// The day of `t` as a digest names it (`YYYY-MM-DD`, UTC).
pub fn digest_day(t: OffsetDateTime) -> String {
    let t = t.to_offset(time::UtcOffset::UTC);
    format!("{:04}-{:02}-{:02}", t.year(), u8::from(t.month()), t.day())
}

/// Contacts and the outbox, over the domain services' store and clock.
#[derive(Debug, Clone)]
pub struct Mail {
    core: Consentry,
}

impl Mail {
    /// The service over `core`.
    pub fn new(core: Consentry) -> Self {
        Self { core }
    }

    /// A tenant the caller may act on (another organization's answers "not found").
    async fn tenant_for(
        &self,
        caller: &Caller,
        action: Action,
        tenant: &TenantRef,
    ) -> Result<crate::model::Tenant, DomainError> {
        let t = self.core.tenant(tenant).await?;
        caller.may_on(action, "tenant", &tenant.to_string(), t.org_id)?;
        Ok(t)
    }

    /// A tenant's contacts, with the consent users of its profiles suggested.
    pub async fn contacts(
        &self,
        caller: &Caller,
        tenant: &TenantRef,
    ) -> Result<TenantContacts, DomainError> {
        let t = self.tenant_for(caller, Action::Read, tenant).await?;
        let contacts = self.core.store().tenant_contacts(t.id).await?;
        let mut suggested: Vec<String> = Vec::new();
        let mut page = crate::model::PageRequest {
            after: None,
            limit: crate::model::MAX_PAGE_SIZE,
        };
        loop {
            let got = self
                .core
                .profiles(
                    &crate::model::ProfileFilter {
                        tenant_id: Some(t.id),
                        ..Default::default()
                    },
                    &page,
                )
                .await?;
            for p in &got.items {
                if let Some(u) = &p.consent_user {
                    let upn = u.upn.as_str().to_string();
                    if !suggested.contains(&upn)
                        && !contacts
                            .iter()
                            .any(|c| c.as_str().eq_ignore_ascii_case(&upn))
                    {
                        suggested.push(upn);
                    }
                }
            }
            match got.next_cursor {
                Some(next) => page.after = Some(next),
                None => break,
            }
        }
        suggested.sort();
        Ok(TenantContacts {
            tenant_id: t.id,
            contacts,
            suggested,
        })
    }

    /// Replaces a tenant's contacts (administrators of its organization). A malformed address is
    /// refused with the field named and nothing is changed.
    pub async fn set_contacts(
        &self,
        caller: &Caller,
        tenant: &TenantRef,
        entries: &[String],
    ) -> Result<TenantContacts, DomainError> {
        let t = self
            .tenant_for(caller, Action::ManageSettings, tenant)
            .await?;
        let addresses = parse_contacts(entries)?;
        self.core
            .store()
            .set_tenant_contacts(t.id, &addresses, self.core.clock().now())
            .await?;
        self.contacts(caller, &TenantRef::Id(t.id)).await
    }

    /// The messages about a tenant, newest first (no content).
    pub async fn tenant_emails(
        &self,
        caller: &Caller,
        tenant: &TenantRef,
        limit: u32,
    ) -> Result<Vec<EmailRecord>, DomainError> {
        let t = self.tenant_for(caller, Action::Read, tenant).await?;
        Ok(self
            .core
            .store()
            .list_emails(Some(t.org_id), Some(t.id), limit.clamp(1, 500))
            .await?)
    }

    /// Queues messages, one per recipient, in one store call.
    pub async fn queue(&self, outgoing: &[Outgoing]) -> Result<u64, DomainError> {
        let now = self.core.clock().now();
        let mut rows = Vec::new();
        for o in outgoing {
            let json = serde_json::to_string(&o.content).map_err(DomainError::internal)?;
            for to in &o.to {
                rows.push(NewEmail {
                    id: EmailId::new_random(),
                    org_id: o.org_id,
                    tenant_id: o.tenant_id,
                    kind: o.content.kind(),
                    to: to.clone(),
                    subject: o.content.subject(),
                    content: SecretString::from(json.clone()),
                    topic: o.topic.clone(),
                    created_at: now,
                });
            }
        }
        self.core.store().enqueue_emails(&rows).await?;
        Ok(rows.len() as u64)
    }
}

/// A queued message handed to the sender until its lease runs out. Its `Debug` leaves the content
/// out: an invitation carries a consent link, a credential.
#[derive(Clone)]
pub struct OutboxMessage {
    /// Its ID.
    pub id: EmailId,
    /// The recipient.
    pub to: EmailAddress,
    /// The subject line.
    pub subject: String,
    /// What it says.
    pub content: EmailContent,
    /// Delivery attempts made before this one.
    pub attempts: u32,
}

impl std::fmt::Debug for OutboxMessage {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("OutboxMessage")
            .field("id", &self.id)
            .field("kind", &self.content.kind())
            .field("attempts", &self.attempts)
            .finish_non_exhaustive()
    }
}

/// Why one delivery attempt failed, as the sender classified the SMTP answer.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum DeliveryFailure {
    /// The server refused for good (a 5xx answer): the message fails at once, with the answer.
    Permanent(String),
    /// The server could not be reached, timed out or answered 4xx: tried again later.
    Transient(String),
}

impl DeliveryFailure {
    /// The error as recorded and shown on the tenant's page.
    pub fn message(&self) -> &str {
        match self {
            Self::Permanent(m) | Self::Transient(m) => m,
        }
    }
}

/// How a message whose delivery failed transiently is retried: after `first_retry`, doubling each
/// time up to `max_delay`; after `max_attempts` attempts it fails for good.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RetryPolicy {
    /// The wait before the first retry.
    pub first_retry: time::Duration,
    /// The longest wait between two attempts.
    pub max_delay: time::Duration,
    /// Attempts in all, the first included.
    pub max_attempts: u32,
}

impl Default for RetryPolicy {
    fn default() -> Self {
        Self {
            first_retry: time::Duration::minutes(1),
            max_delay: time::Duration::hours(1),
            max_attempts: 10,
        }
    }
}

impl RetryPolicy {
    /// When to try again after attempt number `attempt` (1 = the first) failed transiently at
    /// `now`; `None` when it was the last.
    pub fn retry_at(&self, attempt: u32, now: OffsetDateTime) -> Option<OffsetDateTime> {
        if attempt >= self.max_attempts {
            return None;
        }
        let factor = 2i32.saturating_pow(attempt.saturating_sub(1).min(30));
        let delay = self
            .first_retry
            .checked_mul(factor)
            .unwrap_or(self.max_delay)
            .min(self.max_delay);
        Some(now + delay)
    }
}

impl Mail {
    /// Leases up to `limit` due messages for `lease_for` (one sender at a time; a crashed sender's
    /// lease runs out and another takes the message). A message whose stored content cannot be
    /// read fails for good here instead of being handed out.
    pub async fn lease_due(
        &self,
        limit: u32,
        lease_for: time::Duration,
    ) -> Result<Vec<OutboxMessage>, DomainError> {
        use secrecy::ExposeSecret;
        let now = self.core.clock().now();
        let leased = self
            .core
            .store()
            .lease_due_emails(now, now + lease_for, limit)
            .await?;
        let mut out = Vec::with_capacity(leased.len());
        for l in leased {
            match serde_json::from_str::<EmailContent>(l.content.expose_secret()) {
                Ok(content) => out.push(OutboxMessage {
                    id: l.id,
                    to: l.to,
                    subject: l.subject,
                    content,
                    attempts: l.attempts,
                }),
                Err(e) => {
                    tracing::error!(email = %l.id, error = %e, "a queued email's content could not be read; failed");
                    self.core
                        .store()
                        .email_failed(l.id, "its content could not be read", None)
                        .await?;
                }
            }
        }
        Ok(out)
    }

    /// The SMTP server accepted a leased message.
    pub async fn delivered(&self, id: EmailId) -> Result<(), DomainError> {
        let now = self.core.clock().now();
        Ok(self.core.store().email_sent(id, now).await?)
    }

    /// A delivery attempt failed: a permanent refusal fails the message for good with the server's
    /// answer; a transient failure queues it again by `policy`, until its attempts run out.
    /// Returns when it is tried again (`None`: failed for good).
    pub async fn delivery_failed(
        &self,
        message: &OutboxMessage,
        failure: &DeliveryFailure,
        policy: &RetryPolicy,
    ) -> Result<Option<OffsetDateTime>, DomainError> {
        let retry_at = match failure {
            DeliveryFailure::Permanent(_) => None,
            DeliveryFailure::Transient(_) => {
                policy.retry_at(message.attempts + 1, self.core.clock().now())
            }
        };
        self.core
            .store()
            .email_failed(message.id, failure.message(), retry_at)
            .await?;
        Ok(retry_at)
    }

    /// Queues one "a profile became invalid" message to each of the tenant's contacts when a check
    /// made a profile invalid (from another status, or for another reason), unless a message about
    /// the same profile and reason was queued within `hold_down`. Returns how many were queued.
    pub async fn notify_invalid(
        &self,
        change: &StatusChange,
        hold_down: time::Duration,
    ) -> Result<u64, DomainError> {
        let p = &change.profile;
        if p.status != ProfileStatus::Invalid {
            return Ok(0);
        }
        let Some(reason) = &p.reason else {
            return Ok(0);
        };
        let same = change.from == ProfileStatus::Invalid
            && change.previous_reason.as_ref().map(StatusReason::code) == Some(reason.code());
        if same {
            return Ok(0);
        }
        let topic = invalid_topic(p.id, reason);
        let now = self.core.clock().now();
        if let Some(at) = self.core.store().last_email_with_topic(&topic).await?
            && now - at < hold_down
        {
            tracing::info!(profile = %p.id, reason = reason.code(), "same reason emailed recently; held down");
            return Ok(0);
        }
        let to = self.core.store().tenant_contacts(p.tenant_id).await?;
        if to.is_empty() {
            return Ok(0);
        }
        let org = self.core.organization(p.org_id).await?;
        let tenant = self.core.tenant(&TenantRef::Id(p.tenant_id)).await?;
        let app_name = self
            .core
            .catalog()
            .app_type(&p.app_type)
            .map(|a| a.display_name.clone())
            .unwrap_or_else(|| p.app_type.clone());
        let notice = InvalidNotice {
            organization: org.name,
            tenant_domain: tenant.primary_domain.to_string(),
            app_name,
            profile_id: p.id.to_string(),
            reason: reason.summary(),
            remediation: reason.remediation(),
        };
        self.queue(&[Outgoing {
            org_id: p.org_id,
            tenant_id: Some(p.tenant_id),
            to,
            content: EmailContent::ProfileInvalid(notice),
            topic: Some(topic),
        }])
        .await
    }
}

impl Mail {
    /// The organization `org`, if the caller may do `action` on it.
    async fn org_for(
        &self,
        caller: &Caller,
        action: Action,
        org: OrgId,
    ) -> Result<crate::model::Organization, DomainError> {
        // Another organization's answers "not found", like a missing one.
        caller.may_on(action, "organization", &org.to_string(), org)?;
        self.core.organization(org).await
    }

    /// An organization's daily digest recipients.
    pub async fn digest_recipients(
        &self,
        caller: &Caller,
        org: OrgId,
    ) -> Result<DigestRecipients, DomainError> {
        let o = self.org_for(caller, Action::Read, org).await?;
        Ok(DigestRecipients {
            org_id: o.id,
            recipients: self.core.store().digest_recipients(o.id).await?,
        })
    }

    /// Replaces an organization's digest recipients (administrators of the organization); an empty
    /// list turns its digest off. A malformed address is refused with the field `recipients` named.
    pub async fn set_digest_recipients(
        &self,
        caller: &Caller,
        org: OrgId,
        entries: &[String],
    ) -> Result<DigestRecipients, DomainError> {
        let o = self.org_for(caller, Action::ManageSettings, org).await?;
        let addresses = parse_addresses("recipients", entries)?;
        self.core
            .store()
            .set_digest_recipients(o.id, &addresses, self.core.clock().now())
            .await?;
        self.digest_recipients(caller, o.id).await
    }

    /// An organization's digest of `day`: its profiles by status and the ones that are not valid
    /// (invalid first, at most [`DIGEST_LINES`]).
    pub async fn digest(&self, org: OrgId, day: &str) -> Result<Digest, DomainError> {
        let o = self.core.organization(org).await?;
        let by_status = self
            .core
            .profile_counts(&crate::model::ProfileFilter {
                org_id: Some(org),
                ..Default::default()
            })
            .await?;
        let count = |s: ProfileStatus| by_status.get(&s).copied().unwrap_or(0);
        let domains: std::collections::BTreeMap<TenantId, String> = self
            .core
            .tenants(Some(org))
            .await?
            .into_iter()
            .map(|t| (t.id, t.primary_domain.to_string()))
            .collect();
        let mut lines = Vec::new();
        for status in [
            ProfileStatus::Invalid,
            ProfileStatus::Attention,
            ProfileStatus::Pending,
        ] {
            let left = DIGEST_LINES - lines.len();
            if left == 0 {
                break;
            }
            let page = self
                .core
                .profiles(
                    &crate::model::ProfileFilter {
                        org_id: Some(org),
                        statuses: vec![status],
                        ..Default::default()
                    },
                    &crate::model::PageRequest {
                        after: None,
                        limit: u32::try_from(left).unwrap_or(u32::MAX),
                    },
                )
                .await?;
            for p in page.items {
                lines.push(DigestLine {
                    tenant_domain: domains
                        .get(&p.tenant_id)
                        .cloned()
                        .unwrap_or_else(|| p.tenant_id.to_string()),
                    app_name: self
                        .core
                        .catalog()
                        .app_type(&p.app_type)
                        .map(|a| a.display_name.clone())
                        .unwrap_or_else(|| p.app_type.clone()),
                    status: p.status.label().to_string(),
                    reason: p
                        .reason
                        .as_ref()
                        .map(StatusReason::summary)
                        .unwrap_or_default(),
                });
            }
        }
        Ok(Digest {
            organization: o.name,
            day: day.to_string(),
            counts: [
                count(ProfileStatus::Valid),
                count(ProfileStatus::Attention),
                count(ProfileStatus::Invalid),
                count(ProfileStatus::Pending),
            ],
            lines,
        })
    }

    /// Queues today's digest (UTC) of every organization with recipients whose digest is not queued
    /// yet, once the clock is past `hour` o'clock UTC: one message per recipient, one digest per
    /// organization and day across every process (the store claims the day in the transaction that
    /// queues it). Returns how many messages were queued.
    pub async fn queue_digests(&self, hour: u8) -> Result<u64, DomainError> {
        let now = self.core.clock().now();
        if now.to_offset(time::UtcOffset::UTC).hour() < hour {
            return Ok(0);
        }
        let day = digest_day(now);
        let mut queued = 0;
        for (org, to) in self.core.store().digests_due(&day).await? {
            let content = EmailContent::Digest(self.digest(org, &day).await?);
            let json = serde_json::to_string(&content).map_err(DomainError::internal)?;
            let rows: Vec<NewEmail> = to
                .into_iter()
                .map(|to| NewEmail {
                    id: EmailId::new_random(),
                    org_id: org,
                    tenant_id: None,
                    kind: content.kind(),
                    to,
                    subject: content.subject(),
                    content: SecretString::from(json.clone()),
                    topic: Some(format!("digest:{org}:{day}")),
                    created_at: now,
                })
                .collect();
            if self.core.store().enqueue_digest(org, &day, &rows).await? {
                queued += rows.len() as u64;
            }
        }
        Ok(queued)
    }
}

/// The hold-down key of "a profile became invalid" messages: one per profile and reason.
pub fn invalid_topic(profile: ProfileId, reason: &StatusReason) -> String {
    format!("profile_invalid:{profile}:{}", reason.code())
}

/// Emails a tenant's contacts when a check makes one of its profiles invalid
/// ([`Mail::notify_invalid`]). Register it on the checker ([`crate::Checker::with_observer`]) when
/// email is configured. The message is only queued (one insert): the sender delivers it.
#[derive(Debug, Clone)]
pub struct InvalidEmails {
    mail: Mail,
    hold_down: time::Duration,
}

impl InvalidEmails {
    /// The observer over `mail`, holding down a profile's same reason for `hold_down`.
    pub fn new(mail: Mail, hold_down: time::Duration) -> Self {
        Self { mail, hold_down }
    }
}

#[async_trait::async_trait]
impl StatusObserver for InvalidEmails {
    async fn status_changed(&self, change: StatusChange) {
        if let Err(e) = self.mail.notify_invalid(&change, self.hold_down).await {
            tracing::warn!(profile = %change.profile.id, error = %e, "the profile-invalid email could not be queued");
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn contacts_are_split_deduplicated_and_a_bad_one_is_named() {
        let got = parse_contacts(&[
            "it@contoso.com; Admin@contoso.com".into(),
            "\nadmin@CONTOSO.com\n".into(),
        ])
        .unwrap();
        let got: Vec<&str> = got.iter().map(EmailAddress::as_str).collect();
        assert_eq!(got, vec!["it@contoso.com", "Admin@contoso.com"]);
        let e = parse_contacts(&["it@contoso.com, not-an-address".into()]).unwrap_err();
        match e {
            DomainError::Invalid { field, message } => {
                assert_eq!(field, "contacts");
                assert!(message.contains("not-an-address"), "{message}");
            }
            other => panic!("{other:?}"),
        }
        let many: Vec<String> = (0..=MAX_CONTACTS)
            .map(|i| format!("a{i}@x.example"))
            .collect();
        assert!(parse_contacts(&many).is_err());
    }

    #[test]
    fn retries_double_from_a_minute_up_to_an_hour_and_stop_after_the_last_attempt() {
        let p = RetryPolicy::default();
        let t0 = OffsetDateTime::UNIX_EPOCH;
        let waits: Vec<i64> = (1..p.max_attempts)
            .map(|a| (p.retry_at(a, t0).unwrap() - t0).whole_minutes())
            .collect();
        assert_eq!(waits, vec![1, 2, 4, 8, 16, 32, 60, 60, 60]);
        assert_eq!(p.retry_at(p.max_attempts, t0), None);
        assert_eq!(p.retry_at(u32::MAX, t0), None);
        let long = RetryPolicy {
            max_attempts: 1000,
            ..p
        };
        assert_eq!(long.retry_at(500, t0), Some(t0 + long.max_delay));
    }

    #[test]
    fn a_reminder_says_so_in_its_subject_and_kind() {
        let mut i = Invitation {
            organization: "Northwind".into(),
            tenant_domain: "contoso.example".into(),
            link: "https://consentry.example/campaign/secret".into(),
            expires_at: OffsetDateTime::UNIX_EPOCH,
            reminder: false,
            started_by: "Consentry".into(),
            apps: vec![],
            outbound_addresses: vec![],
        };
        let first = EmailContent::Invitation(i.clone());
        assert_eq!(first.kind(), EmailKind::CampaignInvitation);
        assert!(!first.subject().contains("secret"));
        i.reminder = true;
        let again = EmailContent::Invitation(i);
        assert_eq!(again.kind(), EmailKind::CampaignReminder);
        assert!(again.subject().starts_with("Reminder: "));
    }
}

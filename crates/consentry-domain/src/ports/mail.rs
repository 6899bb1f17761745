//! Email as stored: tenants' administrator contacts and the outbox of messages waiting for, or done
//! with, SMTP delivery; and their port.
//!
//! A message's content is structured ([`EmailContent`], rendered to text and HTML by the sender) and
//! sealed in the store like every secret: an invitation carries a consent campaign's link, which is
//! a credential.

use async_trait::async_trait;
use secrecy::SecretString;
use serde::Serialize;
use time::OffsetDateTime;

use crate::error::StoreError;
use crate::ids::{EmailAddress, EmailId, OrgId, TenantId};

/// What an email is for.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(rename_all = "snake_case")]
pub enum EmailKind {
    /// A consent campaign's invitation to a tenant's administrators.
    CampaignInvitation,
    /// A reminder of a campaign's invitation.
    CampaignReminder,
    /// A profile of the tenant became invalid.
    ProfileInvalid,
    /// An organization's daily digest.
    Digest,
    /// An invitation to become an organization's first admin (a single-use link).
    AdminInvitation,
    /// To the platform operator: a vendor app's credential needs rotating.
    VendorCredential,
}

impl EmailKind {
    /// Stable name (stored, API).
    pub fn as_str(self) -> &'static str {
        match self {
            Self::CampaignInvitation => "campaign_invitation",
            Self::CampaignReminder => "campaign_reminder",
            Self::ProfileInvalid => "profile_invalid",
            Self::Digest => "digest",
            Self::AdminInvitation => "admin_invitation",
            Self::VendorCredential => "vendor_credential",
        }
    }

    /// Parses the stable name.
    pub fn parse(s: &str) -> Option<Self> {
        [
            Self::CampaignInvitation,
            Self::CampaignReminder,
            Self::ProfileInvalid,
            Self::Digest,
            Self::AdminInvitation,
            Self::VendorCredential,
        ]
        .into_iter()
        .find(|k| k.as_str() == s)
    }
}

/// Where a message is.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(rename_all = "snake_case")]
pub enum EmailState {
    /// Waiting for (another) delivery attempt.
    Queued,
    /// The SMTP server accepted it.
    Sent,
    /// Refused for good (a permanent SMTP answer, or every attempt failed).
    Failed,
}

impl EmailState {
    /// Stable name (stored, API).
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Queued => "queued",
            Self::Sent => "sent",
            Self::Failed => "failed",
        }
    }

    /// Parses the stable name.
    pub fn parse(s: &str) -> Option<Self> {
        [Self::Queued, Self::Sent, Self::Failed]
            .into_iter()
            .find(|k| k.as_str() == s)
    }
}

/// A message to queue. `content` is the JSON of an
/// [`EmailContent`](crate::mail::EmailContent), sealed by the store.
#[derive(Debug, Clone)]
pub struct NewEmail {
    /// Its ID.
    pub id: EmailId,
    /// The organization it is sent for.
    pub org_id: OrgId,
    /// The tenant it concerns, if one (its page lists the message).
    pub tenant_id: Option<TenantId>,
    /// What it is for.
    pub kind: EmailKind,
    /// The one recipient.
    pub to: EmailAddress,
    /// The subject line (no secrets: it is stored in the clear and listed).
    pub subject: String,
    /// The structured content, as JSON; sealed at rest.
    pub content: SecretString,
    /// A key for hold-downs ("no second message about this within …"), e.g.
    /// `profile_invalid:<profile>:<reason code>`.
    pub topic: Option<String>,
    /// When it was queued (and is first due).
    pub created_at: OffsetDateTime,
}

/// A queued message handed to one sender until `leased_until`.
#[derive(Debug, Clone)]
pub struct LeasedEmail {
    /// Its ID.
    pub id: EmailId,
    /// The recipient.
    pub to: EmailAddress,
    /// The subject.
    pub subject: String,
    /// The structured content, unsealed.
    pub content: SecretString,
    /// Attempts made before this one.
    pub attempts: u32,
}

/// A message as the delivery log shows it (no content).
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct EmailRecord {
    /// Its ID.
    pub id: EmailId,
    /// The organization.
    pub org_id: OrgId,
    /// The tenant it concerns.
    pub tenant_id: Option<TenantId>,
    /// What it is for.
    pub kind: EmailKind,
    /// The recipient.
    pub to: EmailAddress,
    /// The subject.
    pub subject: String,
    /// Where it is.
    pub state: EmailState,
    /// Attempts made.
    pub attempts: u32,
    /// The last error (the SMTP server's answer, or why it could not be reached).
    pub last_error: Option<String>,
    /// When it was queued.
    #[serde(with = "time::serde::rfc3339")]
    pub created_at: OffsetDateTime,
    /// When the SMTP server accepted it.
    #[serde(with = "time::serde::rfc3339::option")]
    pub sent_at: Option<OffsetDateTime>,
}

/// Tenants' contacts and the outbox. Part of [`Store`](super::Store).
#[async_trait]
pub trait MailStore: Send + Sync {
    /// Replaces a tenant's administrator contacts. `NotFound` if the tenant does not exist.
    async fn set_tenant_contacts(
        &self,
        tenant: TenantId,
        addresses: &[EmailAddress],
        at: OffsetDateTime,
    ) -> Result<(), StoreError>;

    /// A tenant's contacts, in the order they were given.
    async fn tenant_contacts(&self, tenant: TenantId) -> Result<Vec<EmailAddress>, StoreError>;

    /// The contacts of many tenants in one statement, by tenant.
    async fn contacts_of_tenants(
        &self,
        tenants: &[TenantId],
    ) -> Result<Vec<(TenantId, EmailAddress)>, StoreError>;

    /// Queues messages, in batches of multi-row inserts inside one transaction.
    async fn enqueue_emails(&self, emails: &[NewEmail]) -> Result<(), StoreError>;

    /// Leases up to `limit` queued messages due at `now` until `until` (one `UPDATE … RETURNING`,
    /// `SKIP LOCKED` on PostgreSQL): a message is handed to one sender at a time, and a crashed
    /// sender's lease runs out.
    async fn lease_due_emails(
        &self,
        now: OffsetDateTime,
        until: OffsetDateTime,
        limit: u32,
    ) -> Result<Vec<LeasedEmail>, StoreError>;

    /// The SMTP server accepted a leased message.
    async fn email_sent(&self, id: EmailId, at: OffsetDateTime) -> Result<(), StoreError>;

    /// A delivery attempt failed: queued again for `retry_at`, or failed for good when `None`.
    async fn email_failed(
        &self,
        id: EmailId,
        error: &str,
        retry_at: Option<OffsetDateTime>,
    ) -> Result<(), StoreError>;

    /// Messages of a tenant (or of an organization, or all), newest first.
    async fn list_emails(
        &self,
        org: Option<OrgId>,
        tenant: Option<TenantId>,
        limit: u32,
    ) -> Result<Vec<EmailRecord>, StoreError>;

    /// When a message with this topic was last queued (for hold-downs).
    async fn last_email_with_topic(
        &self,
        topic: &str,
    ) -> Result<Option<OffsetDateTime>, StoreError>;

    /// Replaces an organization's daily digest recipients (opted in). `NotFound` if the
    /// organization does not exist.
    async fn set_digest_recipients(
        &self,
        org: OrgId,
        addresses: &[EmailAddress],
        at: OffsetDateTime,
    ) -> Result<(), StoreError>;

    /// An organization's digest recipients, in the order they were given.
    async fn digest_recipients(&self, org: OrgId) -> Result<Vec<EmailAddress>, StoreError>;

    /// The organizations with digest recipients whose digest of `day` (`YYYY-MM-DD`, UTC) is not
    /// queued yet, each with its recipients.
    async fn digests_due(&self, day: &str) -> Result<Vec<(OrgId, Vec<EmailAddress>)>, StoreError>;

    /// Claims `org`'s digest of `day` and queues `emails` in one transaction. `false`, and nothing
    /// queued, when that day (or a later one) was claimed already, by this process or another.
    async fn enqueue_digest(
        &self,
        org: OrgId,
        day: &str,
        emails: &[NewEmail],
    ) -> Result<bool, StoreError>;
}

//! Consent campaigns as stored: the campaign, one link per tenant (its token hashed for lookup and
//! sealed so reminders carry the same link), and its member profiles; and their port.

use async_trait::async_trait;
use secrecy::SecretString;
use serde::Serialize;
use time::OffsetDateTime;

use crate::error::StoreError;
use crate::ids::{CampaignId, OrgId, ProfileId, TenantId};
use crate::model::{Actor, AppProfile, EventKind};

/// What a campaign asks the tenants' administrators to consent to again.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum CampaignScope {
    /// The profiles of a rollout that lack its permissions.
    Rollout {
        /// The rollout (catalog version).
        version: u32,
    },
    /// Every invalid profile.
    Invalid,
}

/// A campaign.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Campaign {
    /// Its ID.
    pub id: CampaignId,
    /// The organization whose tenants it asks.
    pub org_id: OrgId,
    /// What it asks for.
    pub scope: CampaignScope,
    /// Only this tenant (the console's "re-authorize all invalid profiles of this tenant").
    pub only_tenant: Option<TenantId>,
    /// Who started it.
    pub started_by: Actor,
    /// When.
    pub created_at: OffsetDateTime,
    /// When its links stop working (a re-sent link may work longer: [`CampaignTenantRow::expires_at`]).
    pub expires_at: OffsetDateTime,
    /// Hours between reminders (0: none).
    pub remind_every_hours: u32,
    /// When it was cancelled.
    pub cancelled_at: Option<OffsetDateTime>,
}

/// A tenant's link of a new campaign.
#[derive(Debug, Clone)]
pub struct NewCampaignTenant {
    /// The tenant.
    pub tenant_id: TenantId,
    /// SHA-256 of the token, for lookup.
    pub token_hash: String,
    /// The token, sealed by the store.
    pub token: SecretString,
    /// Until when it works.
    pub expires_at: OffsetDateTime,
}

/// A tenant of a campaign, with its link's state.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CampaignTenantRow {
    /// The campaign.
    pub campaign_id: CampaignId,
    /// The tenant.
    pub tenant_id: TenantId,
    /// Its display name.
    pub tenant_name: String,
    /// Its primary domain.
    pub tenant_domain: String,
    /// Until when its link works.
    pub expires_at: OffsetDateTime,
    /// When the link was first opened.
    pub opened_at: Option<OffsetDateTime>,
    /// When the last invitation or reminder was queued.
    pub last_invited_at: Option<OffsetDateTime>,
    /// How many invitations and reminders were queued.
    pub invitations: u32,
    /// When the current pass through its profiles started.
    pub pass_started_at: Option<OffsetDateTime>,
}

/// A member profile as the campaign reads it.
#[derive(Debug, Clone, PartialEq)]
pub struct CampaignMember {
    /// The profile now.
    pub profile: AppProfile,
    /// When the current pass last sent the administrator to Microsoft for it.
    pub attempted_at: Option<OffsetDateTime>,
    /// Why the pass could not start its re-authorization (it was skipped).
    pub last_error: Option<String>,
    /// The last re-authorization event of its history since the campaign started, with when and its
    /// detail.
    pub last_reauthorization: Option<(EventKind, OffsetDateTime, Option<String>)>,
}

/// Persistence of campaigns. Part of [`Store`](super::Store).
#[async_trait]
pub trait CampaignStore: Send + Sync {
    /// Adds a campaign with its tenants' links (multi-row inserts) and, in one `INSERT … SELECT`,
    /// its members: the profiles of the campaign's organization (and only tenant) that its scope
    /// selects — a rollout's members not done (`rollout_members.done_at` unset), or the invalid
    /// profiles — of the tenants given a link. One transaction. How many members it has.
    async fn insert_campaign(
        &self,
        campaign: &Campaign,
        tenants: &[NewCampaignTenant],
    ) -> Result<u64, StoreError>;

    /// One campaign.
    async fn get_campaign(&self, id: CampaignId) -> Result<Option<Campaign>, StoreError>;

    /// Campaigns of an organization (or all), newest first.
    async fn list_campaigns(&self, org: Option<OrgId>) -> Result<Vec<Campaign>, StoreError>;

    /// A campaign's tenants (or one of them), by name.
    async fn campaign_tenants(
        &self,
        campaign: CampaignId,
        tenant: Option<TenantId>,
    ) -> Result<Vec<CampaignTenantRow>, StoreError>;

    /// A tenant link's token, unsealed (reminders, the link shown to an administrator).
    async fn campaign_link_token(
        &self,
        campaign: CampaignId,
        tenant: TenantId,
    ) -> Result<Option<SecretString>, StoreError>;

    /// The campaign and tenant of a link's token hash.
    async fn find_campaign_link(
        &self,
        token_hash: &str,
    ) -> Result<Option<(CampaignId, TenantId)>, StoreError>;

    /// A campaign's members (of one tenant, when given), by tenant then app type.
    async fn campaign_members(
        &self,
        campaign: CampaignId,
        tenant: Option<TenantId>,
    ) -> Result<Vec<CampaignMember>, StoreError>;

    /// Records that a tenant's link was opened (the first time only).
    async fn campaign_link_opened(
        &self,
        campaign: CampaignId,
        tenant: TenantId,
        at: OffsetDateTime,
    ) -> Result<(), StoreError>;

    /// Starts a new pass through a tenant's profiles (every member may be tried again).
    async fn start_campaign_pass(
        &self,
        campaign: CampaignId,
        tenant: TenantId,
        at: OffsetDateTime,
    ) -> Result<(), StoreError>;

    /// Records that the pass sent the administrator to Microsoft for a member, or why it could not
    /// (`error`).
    async fn campaign_member_attempted(
        &self,
        campaign: CampaignId,
        profile: ProfileId,
        at: OffsetDateTime,
        error: Option<&str>,
    ) -> Result<(), StoreError>;

    /// Records an invitation or reminder queued at `at` (`sent`; or only that the tenant was
    /// looked at, when nothing was left to remind of), if the tenant's last one is still `previous`
    /// (so that of two replicas sending reminders only one does); extends the link to `expires_at`
    /// when given. Whether it was recorded.
    async fn campaign_invited(
        &self,
        campaign: CampaignId,
        tenant: TenantId,
        previous: Option<OffsetDateTime>,
        at: OffsetDateTime,
        sent: bool,
        expires_at: Option<OffsetDateTime>,
    ) -> Result<bool, StoreError>;

    /// Cancels a campaign. Whether it was running.
    async fn cancel_campaign(&self, id: CampaignId, at: OffsetDateTime)
    -> Result<bool, StoreError>;

    /// The tenants of running campaigns whose next reminder is due at `now` (link not expired).
    async fn campaign_reminders_due(
        &self,
        now: OffsetDateTime,
        limit: u32,
    ) -> Result<Vec<(CampaignId, TenantId)>, StoreError>;
}

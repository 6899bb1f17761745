//! Permission rollouts as stored: which profiles a catalog version's new permissions concern, and
//! when each was seen holding them all; and their port.

use async_trait::async_trait;
use time::OffsetDateTime;

use crate::error::StoreError;
use crate::ids::{OrgId, ProfileId, TenantId};
use crate::model::{EventKind, GrantedPermission};
use crate::status::ProfileStatus;

/// One profile enrolled in a rollout, with what the rollout reads of it and of its tenant.
#[derive(Debug, Clone, PartialEq)]
pub struct RolloutMember {
    /// The profile.
    pub profile_id: ProfileId,
    /// Its organization.
    pub org_id: OrgId,
    /// Its tenant.
    pub tenant_id: TenantId,
    /// The tenant's display name.
    pub tenant_name: String,
    /// The tenant's primary domain.
    pub tenant_domain: String,
    /// The profile's app type (catalog key).
    pub app_type: String,
    /// When it was enrolled.
    pub added_at: OffsetDateTime,
    /// When it was first seen holding every permission of the rollout (`None`: not yet).
    pub done_at: Option<OffsetDateTime>,
    /// The profile's status now.
    pub status: ProfileStatus,
    /// The permissions its last consent or check saw granted.
    pub granted: Vec<GrantedPermission>,
    /// The catalog version it was last consented at.
    pub consented_catalog_version: Option<u32>,
    /// Its last successful authorization.
    pub authorized_at: Option<OffsetDateTime>,
    /// Its last completed check.
    pub last_checked_at: Option<OffsetDateTime>,
    /// The last re-authorization event of its history (started, completed, failed or expired),
    /// with when it happened and its detail.
    pub last_reauthorization: Option<(EventKind, OffsetDateTime, Option<String>)>,
}

/// Persistence of rollouts' members.
#[async_trait]
pub trait RolloutStore: Send + Sync {
    /// Enrolls, in one statement, every authorized profile of `app_types` consented at a catalog
    /// version older than `version` that is not enrolled yet, at `at`. How many were enrolled.
    async fn enroll_rollout_members(
        &self,
        version: u32,
        app_types: &[String],
        at: OffsetDateTime,
    ) -> Result<u64, StoreError>;

    /// The members of rollout `version` (of organization `org` only, when given), in tenant then
    /// profile order.
    async fn rollout_members(
        &self,
        version: u32,
        org: Option<OrgId>,
    ) -> Result<Vec<RolloutMember>, StoreError>;

    /// Sets (or clears, with `None`) members' `done_at`.
    async fn set_rollout_done(
        &self,
        version: u32,
        changes: &[(ProfileId, Option<OffsetDateTime>)],
    ) -> Result<(), StoreError>;
}

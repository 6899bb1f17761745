//! Scan profiles as stored, and their port.

use std::collections::BTreeSet;

use async_trait::async_trait;
use serde::{Deserialize, Serialize};
use time::OffsetDateTime;

use crate::error::StoreError;
use crate::ids::{OrgId, ProfileId, ScanProfileId, TenantId, Upn};

/// The catalog module key of Planner.
pub const PLANNER_MODULE: &str = "planner";

/// How a scan profile authenticates.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(tag = "method", rename_all = "snake_case")]
pub enum ScanAuth {
    /// An app profile (the new way).
    AppProfile {
        /// The app profile.
        app_profile: ProfileId,
    },
    /// As configured in the classic UI: a service account profile plus an additional delegated app
    /// profile. Consentry stores no password for the service account, only its UPN.
    Classic {
        /// UPN of the service account profile's account.
        service_account: Upn,
        /// The additional delegated app profile.
        delegated_profile: ProfileId,
    },
    /// As configured in the classic UI, the other form: an app profile plus an additional delegated
    /// app profile.
    ClassicAppProfile {
        /// The app profile.
        app_profile: ProfileId,
        /// The additional delegated app profile.
        delegated_profile: ProfileId,
    },
}

impl ScanAuth {
    /// Stable name of the method (`app_profile`, `classic` or `classic_app_profile`), as in JSON.
    pub fn method(&self) -> &'static str {
        match self {
            ScanAuth::AppProfile { .. } => "app_profile",
            ScanAuth::Classic { .. } => "classic",
            ScanAuth::ClassicAppProfile { .. } => "classic_app_profile",
        }
    }

    /// Whether it is one of the classic UI's methods (which a save converts).
    pub fn is_classic(&self) -> bool {
        !matches!(self, ScanAuth::AppProfile { .. })
    }

    /// The additional delegated app profile of a classic method.
    pub fn delegated_profile(&self) -> Option<ProfileId> {
        match self {
            ScanAuth::AppProfile { .. } => None,
            ScanAuth::Classic {
                delegated_profile, ..
            }
            | ScanAuth::ClassicAppProfile {
                delegated_profile, ..
            } => Some(*delegated_profile),
        }
    }
}

/// A scan profile of one tenant.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct ScanProfile {
    /// Consentry's ID.
    pub id: ScanProfileId,
    /// The organization owning the tenant.
    pub org_id: OrgId,
    /// The tenant.
    pub tenant_id: TenantId,
    /// Name, unique in the tenant (case-insensitive).
    pub name: String,
    /// Protected modules (catalog module keys, e.g. `planner`).
    pub modules: BTreeSet<String>,
    /// The authentication method.
    pub authentication: ScanAuth,
    /// The backup setting "Planner data backup enabled".
    pub planner_backup_enabled: bool,
    /// Creation time.
    #[serde(with = "time::serde::rfc3339")]
    pub created_at: OffsetDateTime,
    /// Last change.
    #[serde(with = "time::serde::rfc3339")]
    pub updated_at: OffsetDateTime,
}

impl ScanProfile {
    /// Whether Planner is among the protected modules.
    pub fn protects_planner(&self) -> bool {
        self.modules.contains(PLANNER_MODULE)
    }
}

/// Persistence of scan profiles. Part of [`Store`](super::Store)(crate::Store).
#[async_trait]
pub trait ScanProfileStore: Send + Sync {
    /// Adds a scan profile. `Conflict` if the tenant has one of the same name (case-insensitive),
    /// `NotFound` if the tenant does not exist.
    async fn insert_scan_profile(&self, sp: &ScanProfile) -> Result<(), StoreError>;
    /// Reads one scan profile.
    async fn get_scan_profile(&self, id: ScanProfileId) -> Result<Option<ScanProfile>, StoreError>;
    /// A tenant's scan profiles, by name.
    async fn list_scan_profiles(&self, tenant: TenantId) -> Result<Vec<ScanProfile>, StoreError>;
    /// Replaces a scan profile's name, modules, authentication, setting and `updated_at`.
    /// `NotFound` if absent, `Conflict` if the new name is taken in the tenant.
    async fn update_scan_profile(&self, sp: &ScanProfile) -> Result<(), StoreError>;
    /// Deletes a scan profile. Returns whether it existed.
    async fn delete_scan_profile(&self, id: ScanProfileId) -> Result<bool, StoreError>;
    /// Scan profiles whose authentication uses this app profile (as app profile or delegated profile).
    async fn scan_profiles_using(&self, profile: ProfileId)
    -> Result<Vec<ScanProfile>, StoreError>;
}

//! Scan profiles: what the Cloud Backup for Microsoft 365 service uses to protect a tenant's data, and
//! the Planner migration the product documentation describes.
//!
//! A scan profile belongs to one tenant, protects a set of modules (catalog module keys, `planner` among
//! them) and authenticates either with an app profile (the new way) or, as configured in the classic
//! UI, with a service account profile or an app profile, plus an additional delegated app profile. Consentry stores no password for
//! the service account: it records only the account's UPN, so that the classic configuration can be shown
//! and migrated.
//!
//! Editing and saving a classic scan profile converts its authentication method to an app profile, even
//! with no other change: the caller names the app profile, or (classic with an app profile) its own app
//! profile is kept when it meets the rules, or Consentry picks the tenant's suitable one
//! ([`ScanProfiles::suitable_app_profiles`]: modern mode first, then classic, then custom, the oldest
//! first within a mode). An app profile protecting Planner must be of one of the three modes the
//! documentation names, which the catalog describes as data: an app type with a `mode`, application
//! permissions, the Microsoft Graph application permission `Tasks.ReadWrite.All` in its catalog
//! permissions and the Cloud Backup for Microsoft 365 service among its services — Microsoft 365 (All
//! permissions) (classic mode), Cloud Backup for Microsoft 365 (All permissions) (modern mode) and the
//! Custom Azure app (custom mode). Its *granted* permissions (what the last consent or check read from
//! Graph) must include `Tasks.ReadWrite.All`: a catalog-version-1 consent of the classic app, or a custom
//! app whose registration lacks the permission, is refused with the step that fixes it. The modern app
//! carries the permission from its first version, so a profile of it that was authorized has it; the
//! same check applies all the same. An invalid app profile, one of another tenant or organization, and
//! one that does not exist are refused too. A refused save leaves the stored scan profile untouched.
//!
//! [`ScanProfiles::planner_readiness`] lists what is still missing for Planner, each with its step.

use std::collections::BTreeSet;

use consentry_catalog::{AppMode, AppType, PermissionKind, PermissionType};
use serde::Serialize;

use crate::error::DomainError;
use crate::ids::{OrgId, ProfileId, ScanProfileId, TenantId, TenantRef};
use crate::model::{AppProfile, ProfileFilter};
use crate::ports::StoreError;
pub use crate::ports::scan::{PLANNER_MODULE, ScanAuth, ScanProfile, ScanProfileStore};
use crate::service::Consentry;
use crate::status::ProfileStatus;

/// The Microsoft Graph application permission Planner data protection needs.
pub const PLANNER_PERMISSION: &str = "Tasks.ReadWrite.All";
/// The catalog service key of Cloud Backup for Microsoft 365, which scan profiles belong to.
pub const CLOUD_BACKUP_SERVICE: &str = "cloud-backup-m365";
/// The longest scan profile name accepted.
pub const MAX_SCAN_PROFILE_NAME: usize = 200;

/// Why an app profile cannot protect a scan profile's data (Planner in particular). Each message says
/// what is wrong and the step that fixes it.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error, Serialize)]
#[serde(tag = "code", rename_all = "snake_case")]
pub enum PlannerRefusal {
    /// The app profile does not exist.
    #[error(
        "app profile {profile} was not found: choose an app profile of this tenant (`consentry profiles list --tenant …`)"
    )]
    ProfileNotFound {
        /// The profile as given.
        profile: ProfileId,
    },
    /// The app profile belongs to another organization.
    #[error(
        "app profile {profile} belongs to another organization: choose an app profile of this scan profile's tenant"
    )]
    OtherOrganization {
        /// The profile.
        profile: ProfileId,
    },
    /// The app profile belongs to another tenant of the organization.
    #[error(
        "app profile {profile} belongs to tenant {tenant}, not to this scan profile's tenant: choose an app profile of the same tenant, or create one for it"
    )]
    OtherTenant {
        /// The profile.
        profile: ProfileId,
        /// Its tenant.
        tenant: TenantId,
    },
    /// The app profile's app type is none of the three modes.
    #[error(
        "the {app_type_name} profile {profile} cannot protect Planner data: use an app profile of one of these app types: {suitable}"
    )]
    WrongAppType {
        /// The profile.
        profile: ProfileId,
        /// Its app type's display name.
        app_type_name: String,
        /// The suitable app types, in words.
        suitable: String,
    },
    /// The app profile's granted permissions lack Tasks.ReadWrite.All.
    #[error("the {app_type_name} profile {profile} lacks {PLANNER_PERMISSION}: {step}")]
    PermissionNotGranted {
        /// The profile.
        profile: ProfileId,
        /// Its app type's display name.
        app_type_name: String,
        /// The step that fixes it (depends on the mode).
        step: String,
    },
    /// The app profile is invalid.
    #[error("the {app_type_name} profile {profile} is invalid ({reason}): {step}")]
    ProfileInvalid {
        /// The profile.
        profile: ProfileId,
        /// Its app type's display name.
        app_type_name: String,
        /// Why, in words.
        reason: String,
        /// The step that fixes it.
        step: String,
    },
    /// A classic scan profile is saved without a named app profile and the tenant has no suitable one.
    #[error(
        "tenant {tenant} has no app profile that can protect Planner data{detail}: create or re-authorize one of these app types, then save the scan profile again: {suitable}"
    )]
    NoSuitableProfile {
        /// The tenant.
        tenant: TenantId,
        /// What the tenant's candidates lack (starts with "; " when present).
        detail: String,
        /// The suitable app types, in words.
        suitable: String,
    },
    /// The classic method's delegated profile is not a delegated app profile of the tenant.
    #[error(
        "app profile {profile} cannot be the additional delegated app profile of a classic scan profile: {why}"
    )]
    BadDelegatedProfile {
        /// The profile.
        profile: ProfileId,
        /// Why.
        why: String,
    },
}

impl PlannerRefusal {
    /// Stable code.
    pub fn code(&self) -> &'static str {
        match self {
            Self::ProfileNotFound { .. } => "profile_not_found",
            Self::OtherOrganization { .. } => "other_organization",
            Self::OtherTenant { .. } => "other_tenant",
            Self::WrongAppType { .. } => "wrong_app_type",
            Self::PermissionNotGranted { .. } => "permission_not_granted",
            Self::ProfileInvalid { .. } => "profile_invalid",
            Self::NoSuitableProfile { .. } => "no_suitable_profile",
            Self::BadDelegatedProfile { .. } => "bad_delegated_profile",
        }
    }
}

impl From<PlannerRefusal> for DomainError {
    fn from(r: PlannerRefusal) -> Self {
        let field = match r {
            PlannerRefusal::BadDelegatedProfile { .. } => "delegated_profile",
            _ => "app_profile",
        };
        DomainError::invalid(field, r.to_string())
    }
}

/// What is needed to create a scan profile.
#[derive(Debug, Clone)]
pub struct NewScanProfile {
    /// The tenant, by GUID or verified domain.
    pub tenant: TenantRef,
    /// Name.
    pub name: String,
    /// Protected modules (catalog module keys).
    pub modules: Vec<String>,
    /// The authentication method. `Classic` records a scan profile configured in the classic UI; the
    /// next save converts it.
    pub authentication: ScanAuth,
    /// "Planner data backup enabled".
    pub planner_backup_enabled: bool,
}

/// An edit of a scan profile: unset fields keep their value.
#[derive(Debug, Clone, Default)]
pub struct ScanProfileEdit {
    /// New name.
    pub name: Option<String>,
    /// New protected modules.
    pub modules: Option<Vec<String>>,
    /// The app profile to authenticate with. For a classic scan profile, when unset, Consentry picks
    /// the tenant's suitable app profile.
    pub app_profile: Option<ProfileId>,
    /// New "Planner data backup enabled".
    pub planner_backup_enabled: Option<bool>,
}

/// How a save converted a classic scan profile.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct Conversion {
    /// The classic method it had.
    pub previous: ScanAuth,
    /// The app profile it authenticates with now.
    pub app_profile: ProfileId,
    /// Whether Consentry picked the app profile (none was named).
    pub picked_automatically: bool,
}

/// The result of a save.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct SavedScanProfile {
    /// The scan profile as stored.
    pub scan_profile: ScanProfile,
    /// Set when the save converted the classic method.
    pub conversion: Option<Conversion>,
}

/// What a readiness item is about.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(rename_all = "snake_case")]
pub enum ReadinessCode {
    /// Planner is not among the scan profile's modules.
    PlannerNotProtected,
    /// The organization's subscription does not include the Planner module.
    SubscriptionModule,
    /// No suitable app profile (missing, wrong app type, other tenant).
    SuitableAppProfile,
    /// The app profile's granted permissions lack Tasks.ReadWrite.All.
    Permission,
    /// The app profile is not valid.
    Validity,
    /// The classic authentication method is still in use.
    ClassicMethod,
    /// "Planner data backup enabled" is off.
    BackupSetting,
    /// The tenant has no scan profile protecting Planner (tenant readiness only).
    ScanProfile,
}

impl ReadinessCode {
    /// Stable name (as in JSON).
    pub fn as_str(self) -> &'static str {
        match self {
            Self::PlannerNotProtected => "planner_not_protected",
            Self::SubscriptionModule => "subscription_module",
            Self::SuitableAppProfile => "suitable_app_profile",
            Self::Permission => "permission",
            Self::Validity => "validity",
            Self::ClassicMethod => "classic_method",
            Self::BackupSetting => "backup_setting",
            Self::ScanProfile => "scan_profile",
        }
    }
}

/// One thing missing for Planner, with the step that fixes it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct ReadinessItem {
    /// What it is about.
    pub code: ReadinessCode,
    /// What is missing.
    pub summary: String,
    /// What to do.
    pub step: String,
}

/// The Planner readiness of one scan profile.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct PlannerReadiness {
    /// The scan profile.
    pub scan_profile_id: ScanProfileId,
    /// Its name.
    pub scan_profile_name: String,
    /// Its tenant.
    pub tenant_id: TenantId,
    /// The authentication method in use.
    pub method: &'static str,
    /// The app profile in use, or (classic method) the one a save would convert to.
    pub app_profile: Option<ProfileId>,
    /// True when nothing is missing.
    pub ready: bool,
    /// What is missing, each with its step.
    pub missing: Vec<ReadinessItem>,
}

/// The Planner readiness of a tenant: its scan profiles and what the tenant itself lacks.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct TenantPlannerReadiness {
    /// The tenant.
    pub tenant_id: TenantId,
    /// App profiles of the tenant that can protect Planner now, in the order a save picks them.
    pub suitable_app_profiles: Vec<ProfileId>,
    /// True when the tenant and every scan profile protecting Planner are ready.
    pub ready: bool,
    /// What the tenant lacks (no scan profile protecting Planner, no suitable app profile).
    pub missing: Vec<ReadinessItem>,
    /// Each scan profile's readiness.
    pub scan_profiles: Vec<PlannerReadiness>,
}

/// The scan profile services, shared by the console, the JSON API and the CLI.
#[derive(Debug, Clone)]
pub struct ScanProfiles {
    core: Consentry,
}

fn has_planner_permission(p: &AppProfile) -> bool {
    p.granted_permissions
        .iter()
        .any(|g| g.name == PLANNER_PERMISSION && g.kind == PermissionType::Role)
}

/// Whether the catalog's app type is one of the three Planner modes (data, not code branches).
pub fn planner_capable(app: &AppType) -> bool {
    app.mode.is_some()
        && app.permission_kind == PermissionKind::Application
        && app.serves(CLOUD_BACKUP_SERVICE)
        && app
            .permissions
            .iter()
            .any(|p| p.name == PLANNER_PERMISSION && p.kind == PermissionType::Role)
}

fn mode_rank(m: Option<AppMode>) -> u8 {
    match m {
        Some(AppMode::Modern) => 0,
        Some(AppMode::Classic) => 1,
        Some(AppMode::Custom) => 2,
        None => 3,
    }
}

impl ScanProfiles {
    /// Builds the services over the core services (store, catalog, clock).
    pub fn new(core: Consentry) -> Self {
        Self { core }
    }

    /// The core services.
    pub fn core(&self) -> &Consentry {
        &self.core
    }

    fn app_type_name(&self, key: &str) -> String {
        self.core
            .catalog()
            .app_type(key)
            .map(|a| a.display_name.clone())
            .unwrap_or_else(|| format!("unknown app type {key}"))
    }

    /// The suitable app types, in words ("Microsoft 365 (All permissions) (classic mode) with
    /// Tasks.ReadWrite.All granted, …").
    pub fn suitable_app_types(&self) -> String {
        let mut v: Vec<&AppType> = self
            .core
            .catalog()
            .app_types
            .iter()
            .filter(|a| planner_capable(a))
            .collect();
        // The documentation's order: classic, modern, custom.
        v.sort_by_key(|a| {
            let rank = match a.mode {
                Some(AppMode::Classic) => 0,
                Some(AppMode::Modern) => 1,
                _ => 2,
            };
            (rank, a.key.clone())
        });
        v.iter()
            .map(|a| {
                format!(
                    "{} ({} mode) with {PLANNER_PERMISSION} granted",
                    a.display_name,
                    a.mode.map(|m| m.to_string()).unwrap_or_default()
                )
            })
            .collect::<Vec<_>>()
            .join("; ")
    }

    fn check_name(name: &str) -> Result<String, DomainError> {
        let t = name.trim();
        if t.is_empty() {
            return Err(DomainError::invalid("name", "must not be empty"));
        }
        if t.chars().count() > MAX_SCAN_PROFILE_NAME {
            return Err(DomainError::invalid(
                "name",
                format!("is longer than {MAX_SCAN_PROFILE_NAME} characters"),
            ));
        }
        if t.chars().any(char::is_control) {
            return Err(DomainError::invalid(
                "name",
                "must not contain control characters",
            ));
        }
        Ok(t.to_string())
    }

    fn check_modules(&self, modules: &[String]) -> Result<BTreeSet<String>, DomainError> {
        let catalog = self.core.catalog();
        let mut out = BTreeSet::new();
        for m in modules {
            let m = m.trim();
            if catalog.module(m).is_none() {
                let known: Vec<&str> = catalog.modules.iter().map(|m| m.key.as_str()).collect();
                return Err(DomainError::invalid(
                    "modules",
                    format!("unknown module {m:?}; known modules: {}", known.join(", ")),
                ));
            }
            out.insert(m.to_string());
        }
        Ok(out)
    }

    /// Checks that `profile` may authenticate a scan profile of `tenant`/`org`. With `planner`, its
    /// granted permissions must include Tasks.ReadWrite.All. The first unmet rule is the error
    /// ([`PlannerRefusal`] as [`DomainError::Invalid`] on the field `app_profile`).
    pub async fn check_app_profile(
        &self,
        org: OrgId,
        tenant: TenantId,
        profile: ProfileId,
        planner: bool,
    ) -> Result<AppProfile, DomainError> {
        let Some(p) = self.core.store().get_profile(profile).await? else {
            return Err(PlannerRefusal::ProfileNotFound { profile }.into());
        };
        self.judge(org, tenant, &p, planner)?;
        Ok(p)
    }

    /// The first rule `p` does not meet as the app profile of a scan profile of `tenant`/`org`
    /// (with `planner`: protecting Planner), if any.
    pub fn refusal(
        &self,
        org: OrgId,
        tenant: TenantId,
        p: &AppProfile,
        planner: bool,
    ) -> Option<PlannerRefusal> {
        self.judge(org, tenant, p, planner).err()
    }

    /// The rules, on a loaded profile.
    fn judge(
        &self,
        org: OrgId,
        tenant: TenantId,
        p: &AppProfile,
        planner: bool,
    ) -> Result<(), PlannerRefusal> {
        if p.org_id != org {
            return Err(PlannerRefusal::OtherOrganization { profile: p.id });
        }
        if p.tenant_id != tenant {
            return Err(PlannerRefusal::OtherTenant {
                profile: p.id,
                tenant: p.tenant_id,
            });
        }
        let app_type_name = self.app_type_name(&p.app_type);
        let Some(app) = self
            .core
            .catalog()
            .app_type(&p.app_type)
            .filter(|a| planner_capable(a))
        else {
            return Err(PlannerRefusal::WrongAppType {
                profile: p.id,
                app_type_name,
                suitable: self.suitable_app_types(),
            });
        };
        if planner && !has_planner_permission(p) {
            let step = if app.custom_app {
                format!(
                    "add the Microsoft Graph application permission {PLANNER_PERMISSION} to the custom app in Microsoft Entra ID (App registrations > the app > API permissions) and grant admin consent, then re-authorize the app profile"
                )
            } else if p.authorized_at.is_none() {
                "authorize it (re-authorize in the console, or `consentry profiles reauthorize`) so the permission is consented".to_string()
            } else {
                "re-authorize it so the new permission is consented".to_string()
            };
            return Err(PlannerRefusal::PermissionNotGranted {
                profile: p.id,
                app_type_name,
                step,
            });
        }
        if p.status == ProfileStatus::Invalid {
            let (reason, step) = match &p.reason {
                Some(r) => (
                    r.summary(),
                    r.remediation()
                        .first()
                        .cloned()
                        .unwrap_or_else(|| "re-authorize it".into()),
                ),
                None => ("no reason recorded".into(), "re-authorize it".into()),
            };
            return Err(PlannerRefusal::ProfileInvalid {
                profile: p.id,
                app_type_name,
                reason,
                step,
            });
        }
        Ok(())
    }

    async fn tenant_profiles(&self, tenant: TenantId) -> Result<Vec<AppProfile>, DomainError> {
        let mut out = Vec::new();
        let filter = ProfileFilter {
            tenant_id: Some(tenant),
            ..Default::default()
        };
        let mut page = crate::model::PageRequest {
            after: None,
            limit: crate::model::MAX_PAGE_SIZE,
        };
        loop {
            let got = self.core.profiles(&filter, &page).await?;
            out.extend(got.items);
            match got.next_cursor {
                Some(c) => page.after = Some(c),
                None => break,
            }
        }
        Ok(out)
    }

    /// The tenant's app profiles that can protect Planner now (every rule met), in the order a save
    /// picks them: modern mode, then classic, then custom; the oldest first within a mode.
    pub async fn suitable_app_profiles(
        &self,
        org: OrgId,
        tenant: TenantId,
    ) -> Result<Vec<AppProfile>, DomainError> {
        let mut v: Vec<AppProfile> = self
            .tenant_profiles(tenant)
            .await?
            .into_iter()
            .filter(|p| self.judge(org, tenant, p, true).is_ok())
            .collect();
        v.sort_by_key(|p| {
            (
                mode_rank(
                    self.core
                        .catalog()
                        .app_type(&p.app_type)
                        .and_then(|a| a.mode),
                ),
                p.created_at,
            )
        });
        Ok(v)
    }

    /// Picks the app profile for a classic scan profile being converted, or says why none fits.
    async fn pick(&self, org: OrgId, tenant: TenantId) -> Result<ProfileId, DomainError> {
        if let Some(p) = self.suitable_app_profiles(org, tenant).await?.first() {
            return Ok(p.id);
        }
        let lacks: Vec<String> = self
            .tenant_profiles(tenant)
            .await?
            .iter()
            .filter_map(|p| match self.judge(org, tenant, p, true) {
                Err(PlannerRefusal::WrongAppType { .. } | PlannerRefusal::OtherTenant { .. })
                | Ok(()) => None,
                Err(r) => Some(r.to_string()),
            })
            .collect();
        Err(PlannerRefusal::NoSuitableProfile {
            tenant,
            detail: if lacks.is_empty() {
                String::new()
            } else {
                format!("; {}", lacks.join("; "))
            },
            suitable: self.suitable_app_types(),
        }
        .into())
    }

    async fn check_delegated(
        &self,
        org: OrgId,
        tenant: TenantId,
        profile: ProfileId,
    ) -> Result<(), DomainError> {
        let bad = |why: String| -> DomainError {
            PlannerRefusal::BadDelegatedProfile { profile, why }.into()
        };
        let Some(p) = self.core.store().get_profile(profile).await? else {
            return Err(bad("it was not found".into()));
        };
        if p.org_id != org || p.tenant_id != tenant {
            return Err(bad("it belongs to another tenant".into()));
        }
        let ok = self.core.catalog().app_type(&p.app_type).is_some_and(|a| {
            a.permission_kind != PermissionKind::Application && a.serves(CLOUD_BACKUP_SERVICE)
        });
        if !ok {
            return Err(bad(format!(
                "its app type, {}, is not a delegated app of Cloud Backup for Microsoft 365",
                self.app_type_name(&p.app_type)
            )));
        }
        Ok(())
    }

    /// The app profile of a classic scan profile's second form: it must exist and be of the tenant.
    async fn check_classic_app_profile(
        &self,
        org: OrgId,
        tenant: TenantId,
        profile: ProfileId,
    ) -> Result<(), DomainError> {
        let Some(p) = self.core.store().get_profile(profile).await? else {
            return Err(PlannerRefusal::ProfileNotFound { profile }.into());
        };
        if p.org_id != org {
            return Err(PlannerRefusal::OtherOrganization { profile }.into());
        }
        if p.tenant_id != tenant {
            return Err(PlannerRefusal::OtherTenant {
                profile,
                tenant: p.tenant_id,
            }
            .into());
        }
        Ok(())
    }

    /// Creates a scan profile. With an app profile, the app profile must meet the rules; with a
    /// classic method (recording a scan profile configured in the classic UI), the delegated profile
    /// must be a delegated app profile of the tenant, and the app profile (second form) of the tenant.
    pub async fn create(&self, new: NewScanProfile) -> Result<ScanProfile, DomainError> {
        let tenant = self.core.tenant(&new.tenant).await?;
        let name = Self::check_name(&new.name)?;
        let modules = self.check_modules(&new.modules)?;
        let planner = modules.contains(PLANNER_MODULE);
        match &new.authentication {
            ScanAuth::AppProfile { app_profile } => {
                self.check_app_profile(tenant.org_id, tenant.id, *app_profile, planner)
                    .await?;
            }
            ScanAuth::Classic {
                delegated_profile, ..
            } => {
                self.check_delegated(tenant.org_id, tenant.id, *delegated_profile)
                    .await?
            }
            // Records what the classic UI had: the app profile must be of this tenant (the Planner
            // rules apply when a save converts it).
            ScanAuth::ClassicAppProfile {
                app_profile,
                delegated_profile,
            } => {
                self.check_classic_app_profile(tenant.org_id, tenant.id, *app_profile)
                    .await?;
                self.check_delegated(tenant.org_id, tenant.id, *delegated_profile)
                    .await?
            }
        }
        let now = self.core.clock().now();
        let sp = ScanProfile {
            id: ScanProfileId::new_random(),
            org_id: tenant.org_id,
            tenant_id: tenant.id,
            name,
            modules,
            authentication: new.authentication,
            planner_backup_enabled: new.planner_backup_enabled,
            created_at: now,
            updated_at: now,
        };
        self.core
            .store()
            .insert_scan_profile(&sp)
            .await
            .map_err(|e| name_conflict(e, &sp.name))?;
        Ok(sp)
    }

    /// Reads a scan profile.
    pub async fn get(&self, id: ScanProfileId) -> Result<ScanProfile, DomainError> {
        self.core
            .store()
            .get_scan_profile(id)
            .await?
            .ok_or_else(|| DomainError::NotFound {
                what: "scan profile",
                id: id.to_string(),
            })
    }

    /// A tenant's scan profiles, by name.
    pub async fn list(&self, tenant: &TenantRef) -> Result<Vec<ScanProfile>, DomainError> {
        let t = self.core.tenant(tenant).await?;
        Ok(self.core.store().list_scan_profiles(t.id).await?)
    }

    /// Edits and saves a scan profile. A classic scan profile is converted to an app profile (the
    /// named one, or the tenant's suitable one), even when nothing else changes. A save that would
    /// leave the scan profile with an unsuitable app profile is refused and changes nothing.
    pub async fn save(
        &self,
        id: ScanProfileId,
        edit: ScanProfileEdit,
    ) -> Result<SavedScanProfile, DomainError> {
        let old = self.get(id).await?;
        let mut sp = old.clone();
        if let Some(n) = &edit.name {
            sp.name = Self::check_name(n)?;
        }
        if let Some(m) = &edit.modules {
            sp.modules = self.check_modules(m)?;
        }
        if let Some(b) = edit.planner_backup_enabled {
            sp.planner_backup_enabled = b;
        }
        let planner = sp.protects_planner();
        let (app_profile, picked) = match (edit.app_profile, &old.authentication) {
            (Some(p), _) => (p, false),
            (None, ScanAuth::AppProfile { app_profile }) => (*app_profile, false),
            (None, ScanAuth::Classic { .. }) => (self.pick(sp.org_id, sp.tenant_id).await?, true),
            // Its own app profile, when it can do the job: that is what an administrator who set it
            // up expects to keep. Otherwise the tenant's suitable one; with none, the own profile's
            // shortcoming is the clearer refusal.
            (None, ScanAuth::ClassicAppProfile { app_profile, .. }) => {
                match self
                    .check_app_profile(sp.org_id, sp.tenant_id, *app_profile, planner)
                    .await
                {
                    Ok(_) => (*app_profile, false),
                    Err(own) => match self.pick(sp.org_id, sp.tenant_id).await {
                        Ok(p) => (p, true),
                        Err(_) => return Err(own),
                    },
                }
            }
        };
        self.check_app_profile(sp.org_id, sp.tenant_id, app_profile, planner)
            .await?;
        sp.authentication = ScanAuth::AppProfile { app_profile };
        let conversion = old.authentication.is_classic().then(|| Conversion {
            previous: old.authentication.clone(),
            app_profile,
            picked_automatically: picked,
        });
        sp.updated_at = self.core.clock().now();
        self.core
            .store()
            .update_scan_profile(&sp)
            .await
            .map_err(|e| match e {
                StoreError::NotFound(_) => DomainError::NotFound {
                    what: "scan profile",
                    id: id.to_string(),
                },
                e => name_conflict(e, &sp.name),
            })?;
        Ok(SavedScanProfile {
            scan_profile: sp,
            conversion,
        })
    }

    /// Deletes a scan profile.
    pub async fn delete(&self, id: ScanProfileId) -> Result<(), DomainError> {
        if !self.core.store().delete_scan_profile(id).await? {
            return Err(DomainError::NotFound {
                what: "scan profile",
                id: id.to_string(),
            });
        }
        Ok(())
    }

    /// What is missing for the scan profile to protect Planner with an app profile, each with its step.
    pub async fn planner_readiness(
        &self,
        id: ScanProfileId,
    ) -> Result<PlannerReadiness, DomainError> {
        let sp = self.get(id).await?;
        self.readiness_of(&sp).await
    }

    async fn readiness_of(&self, sp: &ScanProfile) -> Result<PlannerReadiness, DomainError> {
        let mut missing = Vec::new();
        if !sp.protects_planner() {
            missing.push(ReadinessItem {
                code: ReadinessCode::PlannerNotProtected,
                summary: "Planner is not among the modules this scan profile protects.".into(),
                step: "Edit the scan profile, select Planner among its modules and save it.".into(),
            });
        }
        let org = self.core.organization(sp.org_id).await?;
        if !org.modules.contains(PLANNER_MODULE) {
            missing.push(ReadinessItem {
                code: ReadinessCode::SubscriptionModule,
                summary: format!(
                    "The subscription of {} does not include the Planner module.",
                    org.name
                ),
                step: format!(
                    "Add the Planner module to the organization's subscription (`consentry orgs modules {} …`), as the Cloud Backup for Microsoft 365 subscription must include the modules you want to protect.",
                    org.id
                ),
            });
        }
        let app_profile = match &sp.authentication {
            ScanAuth::AppProfile { app_profile } => Some(*app_profile),
            classic => {
                let suitable = self.suitable_app_profiles(sp.org_id, sp.tenant_id).await?;
                // A save keeps the classic method's own app profile when it meets the rules.
                let own = match classic {
                    ScanAuth::ClassicAppProfile { app_profile, .. } => Some(*app_profile),
                    _ => None,
                };
                let own_ok = match own {
                    Some(pid) => match self.core.store().get_profile(pid).await? {
                        Some(p) => self
                            .judge(sp.org_id, sp.tenant_id, &p, sp.protects_planner())
                            .is_ok(),
                        None => false,
                    },
                    None => false,
                };
                let candidate = match (own, suitable.first()) {
                    (Some(pid), _) if own_ok => Some(pid),
                    (_, Some(p)) => Some(p.id),
                    (Some(pid), None) => Some(pid),
                    (None, None) => {
                        // The best of the tenant's app profiles of a suitable app type, if any: its
                        // own shortcomings are listed below.
                        let mut of_type: Vec<AppProfile> = self
                            .tenant_profiles(sp.tenant_id)
                            .await?
                            .into_iter()
                            .filter(|p| {
                                self.core
                                    .catalog()
                                    .app_type(&p.app_type)
                                    .is_some_and(planner_capable)
                            })
                            .collect();
                        of_type.sort_by_key(|p| {
                            (has_planner_permission(p), p.status == ProfileStatus::Valid)
                        });
                        of_type.last().map(|p| p.id)
                    }
                };
                missing.push(ReadinessItem {
                    code: ReadinessCode::ClassicMethod,
                    summary: format!(
                        "The scan profile still uses the classic authentication method ({} with an additional delegated app profile).",
                        if own.is_some() { "an app profile" } else { "a service account profile" }
                    ),
                    step: match candidate {
                        Some(p) => format!("Edit the scan profile and save it, even without changes: its authentication method becomes the app profile {p}."),
                        None => "Prepare an app profile (see above), then edit the scan profile and save it, even without changes: its authentication method becomes the app profile.".into(),
                    },
                });
                candidate
            }
        };
        match app_profile {
            None => missing.push(ReadinessItem {
                code: ReadinessCode::SuitableAppProfile,
                summary:
                    "The tenant has no app profile of an app type that can protect Planner data."
                        .into(),
                step: format!(
                    "Create an app profile of one of these app types and authorize it: {}.",
                    self.suitable_app_types()
                ),
            }),
            Some(pid) => match self.core.store().get_profile(pid).await? {
                None => missing.push(ReadinessItem {
                    code: ReadinessCode::SuitableAppProfile,
                    summary: format!("The app profile {pid} no longer exists."),
                    step: "Edit the scan profile and choose another app profile.".into(),
                }),
                Some(p) => self.profile_items(sp, &p, &mut missing),
            },
        }
        if !sp.planner_backup_enabled {
            missing.push(ReadinessItem {
                code: ReadinessCode::BackupSetting,
                summary: "The option \"Planner data backup enabled\" is off.".into(),
                step: "In Cloud Backup for Microsoft 365, check the backup setting: edit the scan profile and enable Planner data backup.".into(),
            });
        }
        // Order of the procedure: app profile, its permission, its validity, the scan profile, the
        // backup setting.
        missing.sort_by_key(|i| i.code as u8);
        Ok(PlannerReadiness {
            scan_profile_id: sp.id,
            scan_profile_name: sp.name.clone(),
            tenant_id: sp.tenant_id,
            method: sp.authentication.method(),
            app_profile,
            ready: missing.is_empty(),
            missing,
        })
    }

    fn profile_items(&self, sp: &ScanProfile, p: &AppProfile, out: &mut Vec<ReadinessItem>) {
        match self.judge(sp.org_id, sp.tenant_id, p, true) {
            Ok(()) => {}
            Err(
                r @ (PlannerRefusal::OtherOrganization { .. }
                | PlannerRefusal::OtherTenant { .. }
                | PlannerRefusal::WrongAppType { .. }
                | PlannerRefusal::ProfileNotFound { .. }
                | PlannerRefusal::NoSuitableProfile { .. }
                | PlannerRefusal::BadDelegatedProfile { .. }),
            ) => {
                out.push(ReadinessItem {
                    code: ReadinessCode::SuitableAppProfile,
                    summary: r.to_string(),
                    step: format!(
                        "Create an app profile of one of these app types and authorize it, then choose it in the scan profile: {}.",
                        self.suitable_app_types()
                    ),
                });
                return;
            }
            Err(PlannerRefusal::PermissionNotGranted { step, .. }) => out.push(ReadinessItem {
                code: ReadinessCode::Permission,
                summary: format!(
                    "The {} profile {} lacks the Microsoft Graph application permission {PLANNER_PERMISSION}.",
                    self.app_type_name(&p.app_type),
                    p.id
                ),
                step: upper_first(&step),
            }),
            // Invalid: handled with the other statuses below.
            Err(PlannerRefusal::ProfileInvalid { .. }) => {}
        }
        if p.status != ProfileStatus::Valid {
            let reason = p
                .reason
                .as_ref()
                .map(|r| format!(": {}", r.summary()))
                .unwrap_or_default();
            let step = p
                .reason
                .as_ref()
                .and_then(|r| r.remediation().first().cloned())
                .unwrap_or_else(|| "Re-authorize the app profile.".into());
            out.push(ReadinessItem {
                code: ReadinessCode::Validity,
                summary: format!(
                    "The {} profile {} is not valid ({}){reason}.",
                    self.app_type_name(&p.app_type),
                    p.id,
                    p.status.label()
                ),
                step,
            });
        }
    }

    /// The Planner readiness of a tenant and each of its scan profiles.
    pub async fn tenant_readiness(
        &self,
        tenant: &TenantRef,
    ) -> Result<TenantPlannerReadiness, DomainError> {
        let t = self.core.tenant(tenant).await?;
        let suitable: Vec<ProfileId> = self
            .suitable_app_profiles(t.org_id, t.id)
            .await?
            .iter()
            .map(|p| p.id)
            .collect();
        let sps = self.core.store().list_scan_profiles(t.id).await?;
        let mut missing = Vec::new();
        if !sps.iter().any(ScanProfile::protects_planner) {
            missing.push(ReadinessItem {
                code: ReadinessCode::ScanProfile,
                summary: "No scan profile of the tenant protects Planner.".into(),
                step: "Create a scan profile that protects Planner (or edit one and select Planner), authenticated with a suitable app profile.".into(),
            });
        }
        if suitable.is_empty() {
            missing.push(ReadinessItem {
                code: ReadinessCode::SuitableAppProfile,
                summary: "The tenant has no app profile that can protect Planner data now.".into(),
                step: format!(
                    "Create or re-authorize an app profile of one of these app types: {}.",
                    self.suitable_app_types()
                ),
            });
        }
        let mut scan_profiles = Vec::new();
        for sp in &sps {
            scan_profiles.push(self.readiness_of(sp).await?);
        }
        let ready = missing.is_empty()
            && scan_profiles
                .iter()
                .filter(|r| {
                    !r.missing
                        .iter()
                        .any(|i| i.code == ReadinessCode::PlannerNotProtected)
                })
                .all(|r| r.ready);
        Ok(TenantPlannerReadiness {
            tenant_id: t.id,
            suitable_app_profiles: suitable,
            ready,
            missing,
            scan_profiles,
        })
    }
}

fn upper_first(s: &str) -> String {
    let mut c = s.chars();
    match c.next() {
        Some(f) => {
            let mut out: String = f.to_uppercase().collect();
            out.push_str(c.as_str());
            if !out.ends_with('.') {
                out.push('.');
            }
            out
        }
        None => String::new(),
    }
}

fn name_conflict(e: StoreError, name: &str) -> DomainError {
    match e {
        StoreError::Conflict(_) => DomainError::Conflict(format!(
            "the tenant already has a scan profile named {name:?}; choose another name"
        )),
        StoreError::NotFound(what) => DomainError::NotFound {
            what: "tenant",
            id: what,
        },
        e => e.into(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use consentry_catalog::Catalog;

    #[test]
    fn the_three_planner_modes_come_from_the_catalog() {
        let c = Catalog::builtin();
        let mut keys: Vec<&str> = c
            .app_types
            .iter()
            .filter(|a| planner_capable(a))
            .map(|a| a.key.as_str())
            .collect();
        keys.sort_unstable();
        assert_eq!(
            keys,
            ["cloud-backup-m365-all", "custom-azure-app", "m365-all"],
            "classic, modern and custom mode; not the delegated custom app nor the delegated app"
        );
    }

    #[test]
    fn a_catalog_without_the_permission_has_no_planner_app_type() {
        let mut c = Catalog::builtin();
        for a in &mut c.app_types {
            a.permissions.retain(|p| p.name != PLANNER_PERMISSION);
        }
        assert!(!c.app_types.iter().any(planner_capable));
    }

    #[test]
    fn refusals_say_what_to_do() {
        let profile = ProfileId::new_random();
        let r = PlannerRefusal::PermissionNotGranted {
            profile,
            app_type_name: "Microsoft 365 (All permissions)".into(),
            step: "re-authorize it so the new permission is consented".into(),
        };
        assert_eq!(
            r.to_string(),
            format!(
                "the Microsoft 365 (All permissions) profile {profile} lacks Tasks.ReadWrite.All: re-authorize it so the new permission is consented"
            )
        );
        assert_eq!(r.code(), "permission_not_granted");
        let e: DomainError = r.into();
        assert!(matches!(
            e,
            DomainError::Invalid {
                field: "app_profile",
                ..
            }
        ));
    }
}

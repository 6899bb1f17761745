//! The catalog's public data model: services, roles, licenses, modules and app types.

use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Serialize};
use uuid::Uuid;

use crate::requirement::Requirement;

/// A service of the vendor (for example "Cloud Backup for Microsoft 365") that app types serve.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct Service {
    /// Stable slug, e.g. `cloud-backup-m365`.
    pub key: String,
    /// Human name, e.g. "Cloud Backup for Microsoft 365".
    pub name: String,
}

/// A Microsoft Entra built-in role that a consenting user may be required to hold.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct Role {
    /// Stable slug, e.g. `global-administrator`.
    pub key: String,
    /// Current Microsoft name, e.g. "Global Administrator".
    pub name: String,
    /// The role template ID, identical in every tenant (as in `directoryRole.roleTemplateId` and `wids`).
    pub template_id: Uuid,
    /// Former or alternate names of the same role (e.g. "Company Administrator").
    pub aliases: Vec<String>,
}

impl Role {
    /// Whether `name` is this role's name or one of its aliases (ASCII case-insensitive).
    pub fn is_named(&self, name: &str) -> bool {
        let name = name.trim();
        self.name.eq_ignore_ascii_case(name)
            || self.aliases.iter().any(|a| a.eq_ignore_ascii_case(name))
    }
}

/// A Microsoft product license, recognised by service plan names or SKU part numbers in `licenseDetails`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct License {
    /// Stable slug, e.g. `viva-engage`.
    pub key: String,
    /// Product name, e.g. "Viva Engage".
    pub name: String,
    /// Service plan names (`servicePlans[].servicePlanName`) any of which grants the license.
    pub service_plans: Vec<String>,
    /// SKU part numbers (`skuPartNumber`) any of which grants the license.
    pub sku_part_numbers: Vec<String>,
    /// True when the plan and SKU names are plausible choices rather than facts from the reference document.
    pub illustrative: bool,
}

/// A module of a service subscription; selectable functions are gated by modules.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct Module {
    /// Stable slug, e.g. `planner`.
    pub key: String,
    /// Human name, e.g. "Planner".
    pub name: String,
}

/// What kind of Microsoft Graph permissions an app type holds.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(rename_all = "snake_case")]
pub enum PermissionKind {
    /// Application permissions only (app roles, client-credentials tokens).
    Application,
    /// Delegated permissions only (scopes, acting as the consenting user).
    Delegated,
    /// Both application and delegated permissions.
    Hybrid,
}

impl PermissionKind {
    /// The icon the console shows for apps with delegated permissions: hybrid (both kinds) or purebred
    /// (delegated only). Application-only apps carry no marker.
    pub fn marker(&self) -> Option<Marker> {
        match self {
            PermissionKind::Application => None,
            PermissionKind::Delegated => Some(Marker::Purebred),
            PermissionKind::Hybrid => Some(Marker::Hybrid),
        }
    }
}

impl fmt::Display for PermissionKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            PermissionKind::Application => "application",
            PermissionKind::Delegated => "delegated",
            PermissionKind::Hybrid => "hybrid (application and delegated)",
        })
    }
}

/// Marker of an app with delegated permissions.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(rename_all = "snake_case")]
pub enum Marker {
    /// Uses both application and delegated permissions.
    Hybrid,
    /// Uses delegated permissions only.
    Purebred,
}

impl fmt::Display for Marker {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Marker::Hybrid => "hybrid",
            Marker::Purebred => "purebred",
        })
    }
}

/// How a profile is (re-)authorized: by an administrator for the whole tenant, or by a user for themself.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(rename_all = "snake_case")]
pub enum ConsentMethod {
    /// Administrator consent (serialized `"admin"`).
    Admin,
    /// User consent (serialized `"user"`).
    User,
}

impl ConsentMethod {
    /// The serialized form: `admin` or `user`.
    pub fn as_str(&self) -> &'static str {
        match self {
            ConsentMethod::Admin => "admin",
            ConsentMethod::User => "user",
        }
    }
}

impl fmt::Display for ConsentMethod {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            ConsentMethod::Admin => "Administrator consent",
            ConsentMethod::User => "User consent",
        })
    }
}

/// Error for a consent method string that is neither `admin` nor `user`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, thiserror::Error)]
#[error("unknown consent method `{0}`: use `admin` or `user`")]
pub struct UnknownConsentMethod(pub String);

impl FromStr for ConsentMethod {
    type Err = UnknownConsentMethod;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s.trim().to_ascii_lowercase().as_str() {
            "admin" | "administrator" => Ok(ConsentMethod::Admin),
            "user" => Ok(ConsentMethod::User),
            _ => Err(UnknownConsentMethod(s.to_owned())),
        }
    }
}

/// The app mode named for the all-permissions app types: classic, modern or custom.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(rename_all = "snake_case")]
pub enum AppMode {
    /// Classic mode (e.g. "Microsoft 365 (All permissions)").
    Classic,
    /// Modern mode (e.g. "Cloud Backup for Microsoft 365 (All permissions)").
    Modern,
    /// Custom mode: the customer's own app registration.
    Custom,
}

impl fmt::Display for AppMode {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            AppMode::Classic => "classic",
            AppMode::Modern => "modern",
            AppMode::Custom => "custom",
        })
    }
}

/// Whether a Graph permission is a delegated scope or an application role.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(rename_all = "snake_case")]
pub enum PermissionType {
    /// Delegated permission (`oauth2PermissionScope`, `requiredResourceAccess.type = Scope`).
    Scope,
    /// Application permission (`appRole`, `requiredResourceAccess.type = Role`).
    Role,
}

impl fmt::Display for PermissionType {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            PermissionType::Scope => "delegated",
            PermissionType::Role => "application",
        })
    }
}

/// A permission an app type needs: a Microsoft Graph permission (its short value, e.g.
/// `Tasks.ReadWrite.All`), or a delegated scope of another resource API in its full form
/// (`https://api.yammer.com/user_impersonation`, Viva Engage).
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct GraphPermission {
    /// Permission value, e.g. `Tasks.ReadWrite.All`; the full scope for another resource.
    pub name: String,
    /// Delegated scope or application role.
    pub kind: PermissionType,
    /// Graph's permission ID; `None` where it is not known (never guessed).
    pub id: Option<Uuid>,
    /// Catalog version in which the permission was added to the app type.
    pub since: u32,
    /// An optional permission missing from a consent only draws attention; a required one makes the profile
    /// need re-authorization.
    pub optional: bool,
}

impl GraphPermission {
    /// The resource API of a permission that is not Microsoft Graph's (`https://api.yammer.com` for
    /// `https://api.yammer.com/user_impersonation`); `None` for Microsoft Graph.
    pub fn resource(&self) -> Option<&str> {
        if self.name.contains("://") {
            self.name.rsplit_once('/').map(|(r, _)| r)
        } else {
            None
        }
    }

    /// Whether this is a Microsoft Graph permission (what Graph's grants and token scopes name).
    pub fn is_graph(&self) -> bool {
        self.resource().is_none()
    }
}

/// A function the customer selects when consenting (e.g. "Restore Planner task comments"), available only
/// when the organization's subscription includes its module.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct Function {
    /// Stable slug within the app type.
    pub key: String,
    /// Human name.
    pub name: String,
    /// Key of the [`Module`] that gates it.
    pub module: String,
}

/// What an app profile can be set to scan (e.g. "Power BI objects"), chosen when consenting. Unlike a
/// [`Function`] it is not gated by a subscription module: the choice is the consent's own, and consent
/// rules limited to scan targets say what the consenting user needs for it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct ScanTarget {
    /// Stable slug within the app type.
    pub key: String,
    /// Human name.
    pub name: String,
}

/// A condition on the consenting user for one consent method, optionally limited to some services,
/// selected functions or chosen scan targets.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct ConsentRule {
    /// The consent method the rule belongs to. An app type allows a method when it has a rule for it.
    pub method: ConsentMethod,
    /// Services the rule applies to; empty means all services of the app type.
    pub services: Vec<String>,
    /// Functions whose selection triggers the rule; empty means always.
    pub functions: Vec<String>,
    /// Scan targets whose choice triggers the rule; empty means always.
    pub scan_targets: Vec<String>,
    /// What the consenting user must satisfy (`AllOf([])` means nothing beyond the method itself).
    pub requires: Requirement,
    /// Extra guidance for the admin.
    pub note: Option<String>,
}

impl ConsentRule {
    /// Whether this rule applies to a consent for `service` with the selected `functions` and chosen
    /// `scan_targets`.
    ///
    /// A rule limited to services applies only when a service is given and listed; a rule limited to
    /// functions applies when any of its functions is selected; a rule limited to scan targets applies
    /// when any of its scan targets is chosen. Every limit the rule has must be met.
    pub fn applies(
        &self,
        service: Option<&str>,
        functions: &[String],
        scan_targets: &[String],
    ) -> bool {
        let service_ok = self.services.is_empty()
            || service.is_some_and(|s| self.services.iter().any(|x| x == s));
        let function_ok =
            self.functions.is_empty() || self.functions.iter().any(|f| functions.contains(f));
        let target_ok = self.scan_targets.is_empty()
            || self.scan_targets.iter().any(|t| scan_targets.contains(t));
        service_ok && function_ok && target_ok
    }
}

/// An app type: one kind of app profile a customer can create (e.g. "Cloud Backup Express").
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct AppType {
    /// Stable slug, e.g. `cloud-backup-express`.
    pub key: String,
    /// Name shown in the console ("App type" column of the reference tables).
    pub display_name: String,
    /// The app's name in Microsoft Entra ID; `None` for custom apps and where unknown.
    pub entra_app_name: Option<String>,
    /// Keys of the services this app type serves.
    pub services: Vec<String>,
    /// Application, delegated or hybrid.
    pub permission_kind: PermissionKind,
    /// True when the customer supplies the application ID and certificate.
    pub custom_app: bool,
    /// Classic, modern or custom mode, where the reference names one.
    pub mode: Option<AppMode>,
    /// Consent rules; there is always at least one administrator-consent rule.
    pub consent: Vec<ConsentRule>,
    /// Microsoft Graph permissions the app needs.
    pub permissions: Vec<GraphPermission>,
    /// Functions the customer selects when consenting.
    pub functions: Vec<Function>,
    /// What a profile of this app type can scan, chosen when consenting (at least one when any is listed).
    pub scan_targets: Vec<ScanTarget>,
    /// True when part of the entry (typically the permission set) is a plausible choice, not a documented fact.
    pub illustrative: bool,
    /// Extra guidance for whoever chooses how to consent (shown by the console wizard, consent links, the
    /// CLI and the API).
    pub notes: Option<String>,
}

impl AppType {
    /// The consent methods this app type allows, administrator consent first.
    pub fn consent_methods(&self) -> Vec<ConsentMethod> {
        let mut methods: Vec<ConsentMethod> = self.consent.iter().map(|r| r.method).collect();
        methods.sort();
        methods.dedup();
        methods
    }

    /// Whether the app type can be consented to with `m`.
    pub fn allows(&self, m: ConsentMethod) -> bool {
        self.consent.iter().any(|r| r.method == m)
    }

    /// The combined requirement on the consenting user for method `m`, `service`, selected `functions` and
    /// chosen `scan_targets`: all applicable rules must hold (combined with `AllOf` and
    /// [simplified](Requirement::simplified); `AllOf([])` when nothing is required).
    /// `None` when the app type does not allow `m`. Rules limited to services are skipped when `service` is
    /// `None`.
    pub fn requirement_for(
        &self,
        m: ConsentMethod,
        service: Option<&str>,
        functions: &[String],
        scan_targets: &[String],
    ) -> Option<Requirement> {
        if !self.allows(m) {
            return None;
        }
        let parts: Vec<Requirement> = self
            .consent
            .iter()
            .filter(|r| r.method == m && r.applies(service, functions, scan_targets))
            .map(|r| r.requires.clone())
            .collect();
        Some(Requirement::AllOf(parts).simplified())
    }

    /// The delegated Microsoft Graph scopes the app needs (what a Graph token carries; scopes of
    /// other resources are in [`other_resource_scopes`](Self::other_resource_scopes)).
    pub fn delegated_scopes(&self) -> impl Iterator<Item = &GraphPermission> {
        self.permissions
            .iter()
            .filter(|p| p.kind == PermissionType::Scope && p.is_graph())
    }

    /// The delegated scopes of resource APIs other than Microsoft Graph (full form, e.g.
    /// `https://api.yammer.com/user_impersonation`).
    pub fn other_resource_scopes(&self) -> impl Iterator<Item = &GraphPermission> {
        self.permissions
            .iter()
            .filter(|p| p.kind == PermissionType::Scope && !p.is_graph())
    }

    /// Every delegated scope the app asks for at sign-in, so that the consent covers all of them:
    /// the Graph scopes (short names), then the other resources' (full form).
    pub fn sign_in_scopes(&self) -> Vec<String> {
        self.delegated_scopes()
            .chain(self.other_resource_scopes())
            .map(|p| p.name.clone())
            .collect()
    }

    /// The application roles the app needs.
    pub fn application_roles(&self) -> impl Iterator<Item = &GraphPermission> {
        self.permissions
            .iter()
            .filter(|p| p.kind == PermissionType::Role)
    }

    /// Permissions that were part of the app type at catalog `version`.
    pub fn permissions_at(&self, version: u32) -> impl Iterator<Item = &GraphPermission> {
        self.permissions.iter().filter(move |p| p.since <= version)
    }

    /// Permissions added after catalog `version` (what a consent given at that version lacks).
    pub fn permissions_added_after(&self, version: u32) -> impl Iterator<Item = &GraphPermission> {
        self.permissions.iter().filter(move |p| p.since > version)
    }

    /// Hybrid or purebred marker (see [`PermissionKind::marker`]).
    pub fn marker(&self) -> Option<Marker> {
        self.permission_kind.marker()
    }

    /// The selectable function with this key.
    pub fn function(&self, key: &str) -> Option<&Function> {
        self.functions.iter().find(|f| f.key == key)
    }

    /// Checks a choice of functions for a consent: every function must exist, the organization's subscription
    /// must include its module (`subscribed_modules` holds module keys), and an app type with selectable
    /// functions needs at least one chosen ("you also need to choose the functions that will use this app").
    pub fn check_functions(
        &self,
        selected: &[String],
        subscribed_modules: &[String],
    ) -> Result<(), FunctionChoiceError> {
        if !self.functions.is_empty() && selected.is_empty() {
            return Err(FunctionChoiceError::NoneChosen {
                app_type: self.display_name.clone(),
                available: self.functions.iter().map(|f| f.name.clone()).collect(),
            });
        }
        for key in selected {
            let function = self
                .function(key)
                .ok_or_else(|| FunctionChoiceError::Unknown {
                    app_type: self.display_name.clone(),
                    function: key.clone(),
                })?;
            if !subscribed_modules.contains(&function.module) {
                return Err(FunctionChoiceError::ModuleNotSubscribed {
                    function: function.name.clone(),
                    module: function.module.clone(),
                });
            }
        }
        Ok(())
    }

    /// The scan target with this key.
    pub fn scan_target(&self, key: &str) -> Option<&ScanTarget> {
        self.scan_targets.iter().find(|t| t.key == key)
    }

    /// Checks a choice of scan targets for a consent and returns it in catalog order without repeats: every
    /// target must exist, and an app type with scan targets needs at least one chosen (a profile that scans
    /// nothing serves no purpose, and the consenting user's requirements follow from the choice).
    pub fn check_scan_targets(
        &self,
        chosen: &[String],
    ) -> Result<Vec<String>, ScanTargetChoiceError> {
        if self.scan_targets.is_empty() {
            return match chosen.first() {
                None => Ok(Vec::new()),
                Some(t) => Err(ScanTargetChoiceError::NoneAvailable {
                    app_type: self.display_name.clone(),
                    target: t.clone(),
                }),
            };
        }
        if chosen.is_empty() {
            return Err(ScanTargetChoiceError::NoneChosen {
                app_type: self.display_name.clone(),
                available: self
                    .scan_targets
                    .iter()
                    .map(|t| format!("{} ({})", t.key, t.name))
                    .collect(),
            });
        }
        if let Some(unknown) = chosen.iter().find(|k| self.scan_target(k).is_none()) {
            return Err(ScanTargetChoiceError::Unknown {
                app_type: self.display_name.clone(),
                target: unknown.clone(),
                available: self.scan_targets.iter().map(|t| t.key.clone()).collect(),
            });
        }
        Ok(self
            .scan_targets
            .iter()
            .filter(|t| chosen.contains(&t.key))
            .map(|t| t.key.clone())
            .collect())
    }

    /// Whether the app type serves the service with this key.
    pub fn serves(&self, service: &str) -> bool {
        self.services.iter().any(|s| s == service)
    }
}

/// A choice of functions that cannot be used for a consent.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, thiserror::Error)]
pub enum FunctionChoiceError {
    /// The app type has selectable functions and none was chosen.
    #[error("{app_type} needs at least one function to use the app: choose from {}", available.join(", "))]
    NoneChosen {
        /// Display name of the app type.
        app_type: String,
        /// Names of the functions to choose from.
        available: Vec<String>,
    },
    /// A chosen function does not exist for the app type.
    #[error(
        "{app_type} has no function `{function}`: choose one of the functions the catalog lists for it"
    )]
    Unknown {
        /// Display name of the app type.
        app_type: String,
        /// The unknown function key.
        function: String,
    },
    /// The organization's subscription lacks the module a chosen function needs.
    #[error(
        "\"{function}\" needs the `{module}` module in the organization's subscription: add the module to the subscription or leave the function out"
    )]
    ModuleNotSubscribed {
        /// Name of the function.
        function: String,
        /// Key of the missing module.
        module: String,
    },
}

/// A choice of scan targets that cannot be used for a consent.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, thiserror::Error)]
pub enum ScanTargetChoiceError {
    /// The app type has scan targets and none was chosen.
    #[error("choose what the {app_type} profile will scan (at least one of: {})", available.join(", "))]
    NoneChosen {
        /// Display name of the app type.
        app_type: String,
        /// The targets to choose from, as "key (name)".
        available: Vec<String>,
    },
    /// A chosen target does not exist for the app type.
    #[error("{app_type} cannot scan `{target}`: choose from {}", available.join(", "))]
    Unknown {
        /// Display name of the app type.
        app_type: String,
        /// The unknown key.
        target: String,
        /// The keys it can scan.
        available: Vec<String>,
    },
    /// Scan targets were given for an app type that has none.
    #[error("{app_type} has no scan targets to choose (got `{target}`): leave scan targets out")]
    NoneAvailable {
        /// Display name of the app type.
        app_type: String,
        /// The first key given.
        target: String,
    },
}

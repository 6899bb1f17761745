//! Who may do what: roles, the caller of a request and the one authorization rule that the JSON API,
//! the console and the CLI all apply.
//!
//! An organization-scoped account is an [`Role::Admin`] (may change its organization's profiles,
//! tenants, webhooks, service keys and settings, re-authorize, cancel and check) or a [`Role::Viewer`]
//! (reads only). A platform-scoped account and the operator API token are the platform operator: they
//! may do everything, including creating organizations and accounts.
//!
//! Data of another organization is answered "not found" (as if it did not exist), never "forbidden", so
//! that identifiers cannot be probed; a permitted organization with a refused action is "forbidden".

use serde::Serialize;
use uuid::Uuid;

use crate::error::DomainError;
use crate::ids::OrgId;
use crate::model::Actor;

/// What an account may see.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(tag = "kind", content = "org_id", rename_all = "snake_case")]
pub enum AccountScope {
    /// Every organization.
    Platform,
    /// One organization.
    Organization(OrgId),
}

impl AccountScope {
    /// The organization the account is limited to, if any.
    pub fn org(&self) -> Option<OrgId> {
        match self {
            Self::Platform => None,
            Self::Organization(o) => Some(*o),
        }
    }

    /// Whether the account may see data of `org`.
    pub fn sees(&self, org: OrgId) -> bool {
        match self {
            Self::Platform => true,
            Self::Organization(o) => *o == org,
        }
    }
}

/// What an organization-scoped account may do in its organization.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Role {
    /// Reads and changes: re-authorize, cancel, check, profiles, tenants, webhooks, keys, settings.
    Admin,
    /// Reads only: lists, details, history, catalog.
    Viewer,
}

impl Role {
    /// Stable name (`admin`, `viewer`), as stored and shown.
    pub fn as_str(self) -> &'static str {
        match self {
            Role::Admin => "admin",
            Role::Viewer => "viewer",
        }
    }

    /// Parses a stable name.
    pub fn parse(s: &str) -> Result<Role, DomainError> {
        match s.trim().to_ascii_lowercase().as_str() {
            "admin" => Ok(Role::Admin),
            "viewer" => Ok(Role::Viewer),
            _ => Err(DomainError::invalid(
                "role",
                "must be admin (may change its organization's data) or viewer (read only)",
            )),
        }
    }
}

impl std::fmt::Display for Role {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// Something a caller wants to do. Each names who may do it in [`Caller::may`].
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Action {
    /// Read: lists, details, history, catalog, webhooks and keys (never their secrets).
    Read,
    /// Start or cancel a re-authorization.
    Reauthorize,
    /// Check a profile now.
    Check,
    /// Create or delete app profiles and tenants.
    ManageProfiles,
    /// Change the organization's settings (modules), webhooks and service API keys.
    ManageSettings,
    /// Read (and export) the organization's audit log: administrators only, as it names every
    /// account's actions.
    ReadAudit,
    /// Create or delete organizations and operator accounts: the platform operator only.
    ManagePlatform,
    /// Connect a tenant by typing its ID and domain (unverified): the platform operator only. An
    /// organization administrator connects a tenant by consenting ([`Action::ManageProfiles`]),
    /// which proves the tenant is theirs.
    ConnectTypedTenant,
    /// See the vendor's own app registrations and their credentials' expiry: the platform operator
    /// only.
    ReadVendorApps,
}

impl Action {
    fn words(self) -> &'static str {
        match self {
            Action::Read => "read",
            Action::Reauthorize => "start or cancel a re-authorization",
            Action::Check => "check an app profile",
            Action::ManageProfiles => "create or delete app profiles and tenants",
            Action::ManageSettings => {
                "change the organization's settings, webhooks or service API keys"
            }
            Action::ManagePlatform => "create or delete organizations and operator accounts",
            Action::ReadAudit => "read the audit log",
            Action::ConnectTypedTenant => "connect a tenant by typing its ID",
            Action::ReadVendorApps => "see the vendor's app registrations and their credentials",
        }
    }
}

/// Who is calling: what it may see, what it may do, and the name written to history.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Caller {
    /// Which organizations it sees.
    pub scope: AccountScope,
    /// What it may do in its organization (ignored for the platform scope).
    pub role: Role,
    /// The name recorded in history events.
    pub actor: Actor,
    /// The operator account behind it, if any (the operator token has none).
    pub account_id: Option<Uuid>,
}

impl Caller {
    /// The platform operator (the operator API token, the CLI), recorded as `name`.
    pub fn platform(name: impl Into<String>) -> Caller {
        Caller {
            scope: AccountScope::Platform,
            role: Role::Admin,
            actor: Actor::Operator(name.into()),
            account_id: None,
        }
    }

    /// Whether this is the platform operator.
    pub fn is_platform(&self) -> bool {
        self.scope == AccountScope::Platform
    }

    /// The organization lists are limited to (`None`: every organization).
    pub fn org(&self) -> Option<OrgId> {
        self.scope.org()
    }

    /// Whether the caller sees data of `org`.
    pub fn sees(&self, org: OrgId) -> bool {
        self.scope.sees(org)
    }

    /// The one authorization rule. `org` is the organization the action touches (`None` for actions
    /// outside any organization, such as creating one). An organization the caller does not see is
    /// "organization … was not found"; use [`Caller::may_on`] to name the entity asked for instead.
    pub fn may(&self, action: Action, org: Option<OrgId>) -> Result<(), DomainError> {
        match org {
            Some(o) => self.may_on(action, "organization", &o.to_string(), o),
            None => self.role_allows(action),
        }
    }

    /// [`Caller::may`] for an entity (`what` `id`, as the caller named it) of organization `org`: an
    /// entity of another organization is "`what` `id` was not found", exactly as if it did not exist.
    pub fn may_on(
        &self,
        action: Action,
        what: &'static str,
        id: &str,
        org: OrgId,
    ) -> Result<(), DomainError> {
        if !self.sees(org) {
            return Err(DomainError::NotFound {
                what,
                id: id.to_string(),
            });
        }
        self.role_allows(action)
    }

    /// Whether `action` is allowed, as a yes/no (to show or hide buttons).
    pub fn can(&self, action: Action, org: Option<OrgId>) -> bool {
        self.may(action, org).is_ok()
    }

    fn role_allows(&self, action: Action) -> Result<(), DomainError> {
        if self.is_platform() {
            return Ok(());
        }
        match (action, self.role) {
            (Action::Read, _) => Ok(()),
            (Action::ManagePlatform | Action::ReadVendorApps, _) => Err(DomainError::Forbidden(format!(
                "only the platform operator may {}; ask them to do it",
                action.words()
            ))),
            (Action::ConnectTypedTenant, _) => Err(DomainError::Forbidden(
                "a tenant is connected by consenting, which proves it is your organization's: click \"Connect a Microsoft tenant\" on the console's Tenants page and sign in as an administrator of the tenant (only the platform operator connects a tenant by typing its ID)".into(),
            )),
            (_, Role::Admin) => Ok(()),
            // A viewer reads, but not the audit log: "which may only read" would contradict it.
            (Action::ReadAudit, Role::Viewer) => Err(DomainError::Forbidden(format!(
                "your account has the viewer role; only an organization administrator (or the platform operator) may {}",
                action.words()
            ))),
            (_, Role::Viewer) => Err(DomainError::Forbidden(format!(
                "your account has the viewer role, which may only read; an administrator of your organization may {}",
                action.words()
            ))),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn org_caller(org: OrgId, role: Role) -> Caller {
        Caller {
            scope: AccountScope::Organization(org),
            role,
            actor: Actor::Operator("t".into()),
            account_id: None,
        }
    }

    const ACTIONS: [Action; 8] = [
        Action::ConnectTypedTenant,
        Action::Read,
        Action::Reauthorize,
        Action::Check,
        Action::ManageProfiles,
        Action::ManageSettings,
        Action::ManagePlatform,
        Action::ReadAudit,
    ];

    #[test]
    fn the_platform_operator_may_do_everything_everywhere() {
        let p = Caller::platform("ops");
        let o = OrgId::new_random();
        for a in ACTIONS {
            assert!(p.may(a, Some(o)).is_ok(), "{a:?}");
            assert!(p.may(a, None).is_ok(), "{a:?}");
        }
    }

    #[test]
    fn another_organization_is_not_found_whatever_the_role_or_action() {
        let (a, b) = (OrgId::new_random(), OrgId::new_random());
        for role in [Role::Admin, Role::Viewer] {
            let c = org_caller(a, role);
            for act in ACTIONS {
                match c.may_on(act, "app profile", "p1", b) {
                    Err(DomainError::NotFound { what, id }) => {
                        assert_eq!((what, id.as_str()), ("app profile", "p1"))
                    }
                    other => panic!("{role:?} {act:?}: {other:?}"),
                }
            }
        }
    }

    #[test]
    fn viewers_read_admins_change_and_only_the_platform_manages_organizations() {
        let a = OrgId::new_random();
        let admin = org_caller(a, Role::Admin);
        let viewer = org_caller(a, Role::Viewer);
        for act in ACTIONS {
            let admin_ok = !matches!(act, Action::ManagePlatform | Action::ConnectTypedTenant);
            let viewer_ok = act == Action::Read;
            assert_eq!(admin.may(act, Some(a)).is_ok(), admin_ok, "admin {act:?}");
            assert_eq!(
                viewer.may(act, Some(a)).is_ok(),
                viewer_ok,
                "viewer {act:?}"
            );
        }
        match viewer.may(Action::Check, Some(a)) {
            Err(DomainError::Forbidden(m)) => assert!(m.contains("viewer role"), "{m}"),
            other => panic!("{other:?}"),
        }
        assert!(matches!(
            admin.may(Action::ManagePlatform, None),
            Err(DomainError::Forbidden(_))
        ));
    }

    #[test]
    fn a_viewer_is_told_that_the_audit_log_is_for_administrators() {
        let a = OrgId::new_random();
        let viewer = org_caller(a, Role::Viewer);
        match viewer.may(Action::ReadAudit, Some(a)) {
            Err(DomainError::Forbidden(m)) => {
                assert!(
                    m.contains("only an organization administrator (or the platform operator) may read the audit log"),
                    "{m}"
                );
                assert!(!m.contains("settings"), "{m}");
                assert!(!m.contains("may only read"), "{m}");
            }
            other => panic!("{other:?}"),
        }
        assert!(
            org_caller(a, Role::Admin)
                .may(Action::ReadAudit, Some(a))
                .is_ok()
        );
        assert!(
            Caller::platform("ops")
                .may(Action::ReadAudit, Some(a))
                .is_ok()
        );
    }

    #[test]
    fn an_organization_administrator_is_sent_to_connect_by_consenting() {
        let a = OrgId::new_random();
        match org_caller(a, Role::Admin).may(Action::ConnectTypedTenant, Some(a)) {
            Err(DomainError::Forbidden(m)) => {
                assert!(m.contains("Connect a Microsoft tenant"), "{m}")
            }
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn roles_parse_and_print() {
        assert_eq!(Role::parse(" Viewer ").ok(), Some(Role::Viewer));
        assert_eq!(Role::parse("admin").ok(), Some(Role::Admin));
        assert!(Role::parse("owner").is_err());
        assert_eq!(Role::Viewer.to_string(), "viewer");
    }
}

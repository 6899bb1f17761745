//! `[microsoft_sign_in]`: who is what when signing in to the console with Microsoft.

use consentry_domain::{SignInRules, TenantId};
use serde::Deserialize;
use uuid::Uuid;

/// `[microsoft_sign_in]`. "Sign in with Microsoft" itself is on when `[consentry_app]` is set.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct MicrosoftSignInSettings {
    /// Directory roles (role template IDs) that make a member of a connected tenant an organization
    /// admin. Default: Global Administrator and Privileged Role Administrator. A TOML list, or one
    /// comma-separated string in `CONSENTRY_MICROSOFT_SIGN_IN__ADMIN_ROLES`.
    #[serde(deserialize_with = "crate::config::list_or_csv")]
    pub admin_roles: Vec<String>,
    /// The tenant (GUID) whose members may be platform operators (normally the vendor's).
    pub operator_tenant: Option<String>,
    /// The group (object ID) in the operator tenant whose direct members are platform operators.
    pub operator_group: Option<String>,
    /// The app role value of Consentry's app whose holders in the operator tenant are platform
    /// operators (the ID token's `roles` claim).
    pub operator_app_role: Option<String>,
}

impl Default for MicrosoftSignInSettings {
    fn default() -> Self {
        Self {
            admin_roles: SignInRules::default()
                .admin_roles
                .iter()
                .map(Uuid::to_string)
                .collect(),
            operator_tenant: None,
            operator_group: None,
            operator_app_role: None,
        }
    }
}

impl MicrosoftSignInSettings {
    /// The rules, or what is wrong with the settings.
    pub fn rules(&self) -> Result<SignInRules, String> {
        let admin_roles = self
            .admin_roles
            .iter()
            .map(|r| {
                Uuid::parse_str(r.trim()).map_err(|_| {
                    format!(
                        "microsoft_sign_in.admin_roles: {r:?} is not a role template ID (a GUID such as 62e90394-69f5-4237-9190-012177145e10 for Global Administrator)"
                    )
                })
            })
            .collect::<Result<_, _>>()?;
        fn present(v: &Option<String>) -> Option<&str> {
            v.as_deref().map(str::trim).filter(|s| !s.is_empty())
        }
        let operator_tenant = present(&self.operator_tenant)
            .map(|t| {
                TenantId::parse(t).map_err(|_| {
                    format!("microsoft_sign_in.operator_tenant: {t:?} is not a tenant ID (GUID)")
                })
            })
            .transpose()?;
        let operator_group = present(&self.operator_group)
            .map(|g| {
                Uuid::parse_str(g).map_err(|_| {
                    format!(
                        "microsoft_sign_in.operator_group: {g:?} is not a group object ID (GUID)"
                    )
                })
            })
            .transpose()?;
        let operator_app_role = present(&self.operator_app_role).map(str::to_owned);
        match (
            operator_tenant,
            operator_group.is_some() || operator_app_role.is_some(),
        ) {
            (Some(_), false) => {
                return Err("microsoft_sign_in.operator_tenant is set but neither operator_group nor operator_app_role: say which members of the operator tenant are platform operators".into());
            }
            (None, true) => {
                return Err("microsoft_sign_in.operator_group / operator_app_role need microsoft_sign_in.operator_tenant (the tenant they belong to)".into());
            }
            _ => {}
        }
        Ok(SignInRules {
            admin_roles,
            operator_tenant,
            operator_group,
            operator_app_role,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn defaults_are_the_two_admin_roles_and_no_operators() {
        let rules = MicrosoftSignInSettings::default().rules().expect("valid");
        assert_eq!(rules, SignInRules::default());
        assert_eq!(rules.admin_roles.len(), 2);
    }

    #[test]
    fn operators_need_a_tenant_and_a_group_or_role() {
        let t = "0e9d1a7c-0000-4000-8000-000000000001".to_string();
        let only_tenant = MicrosoftSignInSettings {
            operator_tenant: Some(t.clone()),
            ..Default::default()
        };
        assert!(only_tenant.rules().is_err());
        let only_group = MicrosoftSignInSettings {
            operator_group: Some("0e9d1a7c-0000-4000-8000-00000000a0a0".into()),
            ..Default::default()
        };
        assert!(only_group.rules().is_err());
        let both = MicrosoftSignInSettings {
            operator_tenant: Some(t),
            operator_app_role: Some("Consentry.Operator".into()),
            ..Default::default()
        };
        assert_eq!(
            both.rules().expect("valid").operator_app_role.as_deref(),
            Some("Consentry.Operator")
        );
        let bad_role = MicrosoftSignInSettings {
            admin_roles: vec!["Global Administrator".into()],
            ..Default::default()
        };
        assert!(bad_role.rules().unwrap_err().contains("role template ID"));
    }
}

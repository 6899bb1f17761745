//! Scenario files: the tenants, users, apps and policies the simulator starts with.

use serde::{Deserialize, Serialize};
use uuid::Uuid;

use crate::error::ScenarioError;
use crate::model::{App, PermissionDef, ResourceApi, Settings, Tenant};
use crate::wellknown::{
    GRAPH_APP_ID, GRAPH_CLI_APP_ID, GRAPH_CLI_NAME, GRAPH_PERMISSIONS, GRAPH_RESOURCE,
    MICROSOFT_SERVICES_TENANT, ROLE_APPLICATION_ADMIN, YAMMER_APP_ID, YAMMER_RESOURCE,
    YAMMER_SCOPE, graph_scope_needs_admin, resolve_role, synthetic_id,
};

const CONTOSO: &str = include_str!("../scenarios/contoso.toml");
const NATIONAL_CLOUDS: &str = include_str!("../scenarios/national-clouds.toml");

/// A complete simulator scenario (see `scenarios/contoso.toml` for an annotated example).
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Scenario {
    /// Name of the scenario.
    #[serde(default)]
    pub name: String,
    /// Service settings, including the UNVERIFIED behaviours.
    #[serde(default)]
    pub settings: Settings,
    /// Tenants.
    pub tenants: Vec<Tenant>,
    /// App registrations (vendor multi-tenant apps and tenant-owned custom apps).
    #[serde(default)]
    pub apps: Vec<App>,
    /// Resource APIs other than Microsoft Graph (which is built in).
    #[serde(default)]
    pub resources: Vec<ResourceApi>,
    /// Fault rules active from the start.
    #[serde(default)]
    pub faults: Vec<crate::faults::FaultRule>,
}

impl Scenario {
    /// Parses and validates a TOML scenario.
    pub fn from_toml_str(text: &str) -> Result<Self, ScenarioError> {
        let scenario: Scenario =
            toml::from_str(text).map_err(|e| ScenarioError::Parse(e.to_string()))?;
        scenario.normalized()
    }

    /// The default demo scenario "contoso" (embedded copy of `scenarios/contoso.toml`).
    pub fn contoso() -> Scenario {
        // The embedded scenario is checked by a unit test; failing here is a build defect.
        Self::from_toml_str(CONTOSO).expect("the embedded contoso scenario is valid")
    }

    /// The contoso scenario plus a vendor tenant (with its registration of Insights for Microsoft 365)
    /// and a customer tenant in each national cloud (`scenarios/national-clouds.toml`).
    pub fn national_clouds() -> Scenario {
        let parse = |text: &str| -> Scenario {
            // Both files are embedded and checked by a unit test; failing here is a build defect.
            toml::from_str(text).expect("an embedded scenario parses")
        };
        let mut scenario = parse(CONTOSO);
        let national = parse(NATIONAL_CLOUDS);
        scenario.name = national.name;
        scenario.tenants.extend(national.tenants);
        scenario.apps.extend(national.apps);
        scenario
            .normalized()
            .expect("the embedded national-clouds scenario is valid")
    }

    /// The "going-live" scenario: contoso's tenants and users, but a vendor tenant (still the first
    /// tenant) where nothing is registered yet, as a vendor finds its own tenant before
    /// `consentry apps register`: no registration is homed there (no catalog app, no "Consentry"
    /// app), so no customer tenant has a service principal or a consent for one. The vendor tenant
    /// gains an Application Administrator (`appadmin@…`) and a plain member (`user@…`), and
    /// members may not register applications (`Settings::users_can_register_apps` off), so only
    /// administrators and owners write registrations. Derived from contoso in code.
    pub fn going_live() -> Scenario {
        // The file is embedded and checked by a unit test; failing here is a build defect.
        let mut s: Scenario =
            toml::from_str(CONTOSO).expect("the embedded contoso scenario parses");
        s.name = "going-live".into();
        s.settings.users_can_register_apps = false;
        let vendor = &s.tenants[0];
        let vendor_refs: Vec<String> = std::iter::once(vendor.id.to_string())
            .chain(vendor.domains.iter().cloned())
            .collect();
        let domain = vendor.domains[0].clone();
        let homed_in_vendor = |a: &App| {
            vendor_refs
                .iter()
                .any(|r| r.eq_ignore_ascii_case(&a.home_tenant))
        };
        let removed: std::collections::HashSet<Uuid> = s
            .apps
            .iter()
            .filter(|a| homed_in_vendor(a))
            .map(|a| a.client_id)
            .collect();
        s.apps.retain(|a| !removed.contains(&a.client_id));
        for t in &mut s.tenants {
            t.preconsented_apps.retain(|a| !removed.contains(a));
            t.service_principals
                .retain(|sp| !removed.contains(&sp.app_id));
            for u in &mut t.users {
                u.app_roles.retain(|app, _| !removed.contains(app));
            }
        }
        let password = s.tenants[0]
            .users
            .first()
            .map(|u| u.password.clone())
            .unwrap_or_else(|| secrecy::SecretString::from("Demo-Vendor-Passw0rd!"));
        let user = |n: u128, local: &str, name: &str, roles: Vec<String>| crate::model::User {
            id: Uuid::from_u128(0x0e9d1a7c_0000_4000_8000_0000000000a0 + n),
            upn: format!("{local}@{domain}"),
            display_name: name.into(),
            given_name: None,
            surname: None,
            job_title: None,
            password: password.clone(),
            enabled: true,
            deleted: false,
            mfa_required: false,
            mfa_code: None,
            roles,
            licenses: Vec::new(),
            viva_engage_verified_admin: false,
            app_roles: std::collections::BTreeMap::new(),
            tokens_valid_from: None,
        };
        let app_admin = user(
            2,
            "appadmin",
            "Vendor Application Administrator",
            vec![ROLE_APPLICATION_ADMIN.to_owned()],
        );
        let member = user(3, "user", "Vendor User", Vec::new());
        s.tenants[0].users.extend([app_admin, member]);
        s.normalized()
            .expect("the going-live scenario derived from contoso is valid")
    }

    /// A built-in scenario by name: `contoso`, `national-clouds` or `going-live`.
    pub fn builtin(name: &str) -> Option<Scenario> {
        match name {
            "contoso" => Some(Self::contoso()),
            "national-clouds" => Some(Self::national_clouds()),
            "going-live" => Some(Self::going_live()),
            _ => None,
        }
    }

    /// The client ID of the app registration that stands for a catalog app type.
    pub fn client_id_for(&self, catalog_key: &str) -> Option<uuid::Uuid> {
        self.apps
            .iter()
            .find(|a| a.catalog_key.as_deref() == Some(catalog_key))
            .map(|a| a.client_id)
    }

    /// Consentry's own app registration (display name "Consentry": the console's "Sign in with
    /// Microsoft" and connecting a tenant by consent) with its first client secret: what a Consentry
    /// configured against this scenario needs (`[consentry_app]`).
    pub fn consentry_app(&self) -> Option<(uuid::Uuid, secrecy::SecretString)> {
        let app = self
            .apps
            .iter()
            .find(|a| a.display_name == "Consentry" && a.catalog_key.is_none())?;
        Some((app.client_id, app.secrets.first()?.value.clone()))
    }

    /// The vendor's multi-tenant apps that stand for a catalog app type, with their first client
    /// secret: what a Consentry configured against this scenario needs (`[apps.<key>]`).
    /// Tenant-owned custom apps are left out: their owners authenticate with certificates.
    pub fn vendor_apps(&self) -> Vec<(String, uuid::Uuid, secrecy::SecretString)> {
        self.vendor_apps_in(crate::wellknown::GLOBAL_CLOUD)
    }

    /// [`vendor_apps`](Self::vendor_apps) of one cloud: the apps whose home tenant lives in `cloud`
    /// (`[clouds.<cloud>.apps.<key>]` in Consentry's configuration for a national cloud).
    pub fn vendor_apps_in(&self, cloud: &str) -> Vec<(String, uuid::Uuid, secrecy::SecretString)> {
        let home_cloud = |home: &str| {
            self.tenants
                .iter()
                .find(|t| {
                    t.id.to_string().eq_ignore_ascii_case(home)
                        || t.domains.iter().any(|d| d.eq_ignore_ascii_case(home))
                })
                .map(|t| t.cloud.as_str())
        };
        self.apps
            .iter()
            .filter(|a| a.sign_in_audience != crate::model::SignInAudience::AzureADMyOrg)
            .filter(|a| home_cloud(&a.home_tenant) == Some(cloud))
            .filter_map(|a| {
                let key = a.catalog_key.clone()?;
                let secret = a.secrets.first()?.value.clone();
                Some((key, a.client_id, secret))
            })
            .collect()
    }

    /// Resolves names to IDs, adds Microsoft Graph and checks every reference.
    pub(crate) fn normalized(mut self) -> Result<Self, ScenarioError> {
        self.add_graph();
        self.add_yammer();
        self.add_first_party_clients();
        let mut tenant_ids = std::collections::HashSet::new();
        for t in &self.tenants {
            if !tenant_ids.insert(t.id) {
                return Err(dup("tenant", t.id));
            }
        }
        for tenant in &mut self.tenants {
            if crate::wellknown::sim_cloud(&tenant.cloud).is_none() {
                return Err(ScenarioError::Unknown {
                    what: "cloud (global, usgov, usgov-dod or china)",
                    name: tenant.cloud.clone(),
                });
            }
            let mut upns = std::collections::HashSet::new();
            for u in &mut tenant.users {
                if !upns.insert(u.upn.to_ascii_lowercase()) {
                    return Err(dup("user", &u.upn));
                }
                for role in &mut u.roles {
                    *role = resolve_role(role)
                        .map(str::to_owned)
                        .or_else(|| Uuid::parse_str(role).ok().map(|g| g.to_string()))
                        .ok_or_else(|| unknown("directory role", role.as_str()))?;
                }
            }
            let users = tenant.users.clone();
            let resolve_user = |r: &str| -> Result<String, ScenarioError> {
                users
                    .iter()
                    .find(|u| u.upn.eq_ignore_ascii_case(r) || u.id.to_string() == r.to_lowercase())
                    .map(|u| u.id.to_string())
                    .ok_or_else(|| unknown("user", r))
            };
            for g in &mut tenant.groups {
                for o in g.owners.iter_mut().chain(g.members.iter_mut()) {
                    *o = resolve_user(o)?;
                }
            }
            for p in &mut tenant.ca_policies {
                for u in &mut p.users {
                    *u = resolve_user(u)?;
                }
            }
        }
        for f in &self.faults {
            f.validate().map_err(|reason| {
                ScenarioError::Parse(format!("fault rule for `{}`: {reason}", f.endpoint))
            })?;
        }
        self.settings
            .throttling
            .validate()
            .map_err(ScenarioError::Parse)?;
        let mut client_ids = std::collections::HashSet::new();
        for app in &self.apps {
            if !client_ids.insert(app.client_id) {
                return Err(dup("app", app.client_id));
            }
            if self.tenant_by_ref(&app.home_tenant).is_none() && !is_first_party(app) {
                return Err(unknown("tenant", &app.home_tenant));
            }
            for c in &app.certificates {
                crate::crypto::CertInfo::parse(&c.certificate).map_err(|reason| {
                    ScenarioError::Certificate {
                        app: app.client_id.to_string(),
                        reason,
                    }
                })?;
            }
        }
        for t in &self.tenants {
            for a in &t.preconsented_apps {
                if !client_ids.contains(a) {
                    return Err(unknown("app", a));
                }
            }
        }
        // Every permission an app requests must exist on its resource; unknown Graph permissions get
        // synthetic IDs (stable, but not Microsoft's).
        let apps = self.apps.clone();
        for app in &apps {
            for (perm, application) in app
                .delegated
                .iter()
                .map(|p| (p, false))
                .chain(app.application.iter().map(|p| (p, true)))
            {
                ensure_permission(&mut self.resources, perm, application)?;
            }
        }
        Ok(self)
    }

    fn add_graph(&mut self) {
        let graph_id = Uuid::parse_str(GRAPH_APP_ID).unwrap_or_default();
        if self.resources.iter().any(|r| r.app_id == graph_id) {
            return;
        }
        let parse = |s: Option<&str>| s.and_then(|s| Uuid::parse_str(s).ok());
        let permissions = GRAPH_PERMISSIONS
            .iter()
            .map(|(value, role, scope)| PermissionDef {
                value: (*value).to_owned(),
                role_id: parse(*role),
                scope_id: parse(*scope),
                admin_consent_required: graph_scope_needs_admin(value),
            })
            .collect();
        self.resources.insert(
            0,
            ResourceApi {
                app_id: graph_id,
                display_name: "Microsoft Graph".into(),
                identifier_uri: GRAPH_RESOURCE.into(),
                permissions,
            },
        );
    }

    /// Adds the Viva Engage (Yammer) resource with its delegated scope `user_impersonation`
    /// (entra-facts §10), unless the scenario declares it. The scope's real ID is not known here:
    /// it gets a synthetic one. A user may consent to it (it acts as the user only).
    fn add_yammer(&mut self) {
        let yammer_id = Uuid::parse_str(YAMMER_APP_ID).unwrap_or_default();
        if self.resources.iter().any(|r| r.app_id == yammer_id) {
            return;
        }
        self.resources.push(ResourceApi {
            app_id: yammer_id,
            display_name: "Office 365 Yammer".into(),
            identifier_uri: YAMMER_RESOURCE.into(),
            permissions: vec![PermissionDef {
                value: YAMMER_SCOPE.into(),
                role_id: None,
                scope_id: Some(synthetic_id(
                    "scope",
                    &format!("{YAMMER_RESOURCE}/{YAMMER_SCOPE}"),
                )),
                admin_consent_required: false,
            }],
        });
    }

    /// Adds Microsoft's first-party public client "Microsoft Graph Command Line Tools" (the
    /// `Connect-MgGraph` client; device code and loopback sign-ins, Graph scopes asked
    /// dynamically), unless the scenario declares it. It is homed in Microsoft's services tenant
    /// and usable in every tenant; its service principal appears with the first consent.
    fn add_first_party_clients(&mut self) {
        let id = Uuid::parse_str(GRAPH_CLI_APP_ID).unwrap_or_default();
        if self.apps.iter().any(|a| a.client_id == id) {
            return;
        }
        self.apps.push(App {
            client_id: id,
            object_id: None,
            display_name: GRAPH_CLI_NAME.into(),
            home_tenant: MICROSOFT_SERVICES_TENANT.into(),
            catalog_key: None,
            sign_in_audience: crate::model::SignInAudience::AzureADMultipleOrgs,
            redirect_uris: Vec::new(),
            allow_public_client: true,
            public_client_redirect_uris: vec![
                "http://localhost".into(),
                "https://login.microsoftonline.com/common/oauth2/nativeclient".into(),
            ],
            secrets: Vec::new(),
            certificates: Vec::new(),
            delegated: Vec::new(),
            application: Vec::new(),
        });
    }

    /// Finds a tenant by ID or verified domain.
    pub(crate) fn tenant_by_ref(&self, r: &str) -> Option<&Tenant> {
        self.tenants.iter().find(|t| {
            t.id.to_string().eq_ignore_ascii_case(r)
                || t.domains.iter().any(|d| d.eq_ignore_ascii_case(r))
        })
    }
}

/// Whether the app is one of Microsoft's first-party apps (homed in Microsoft's services tenant,
/// which no scenario holds): usable in every tenant.
pub(crate) fn is_first_party(app: &App) -> bool {
    app.home_tenant
        .eq_ignore_ascii_case(MICROSOFT_SERVICES_TENANT)
}

/// Makes sure the resource of `perm` publishes it (as an application role or a delegated scope);
/// permissions whose real ID is unknown get a synthetic, stable ID.
pub(crate) fn ensure_permission(
    resources: &mut [ResourceApi],
    perm: &str,
    application: bool,
) -> Result<(), ScenarioError> {
    let (res_idx, value) =
        split_permission(resources, perm).ok_or_else(|| unknown("resource API", perm))?;
    let resource = &mut resources[res_idx];
    let kind = if application { "role" } else { "scope" };
    let synthetic = synthetic_id(kind, &format!("{}/{value}", resource.identifier_uri));
    match resource.permissions.iter_mut().find(|p| p.value == value) {
        Some(def) => {
            if application && def.role_id.is_none() {
                def.role_id = Some(synthetic);
            } else if !application && def.scope_id.is_none() {
                def.scope_id = Some(synthetic);
            }
        }
        None => resource.permissions.push(PermissionDef {
            admin_consent_required: graph_scope_needs_admin(&value),
            value,
            role_id: application.then_some(synthetic),
            scope_id: (!application).then_some(synthetic),
        }),
    }
    Ok(())
}

/// Splits `User.Read` (Graph) or `https://resource/Name` into (resource index, permission value).
pub(crate) fn split_permission(resources: &[ResourceApi], perm: &str) -> Option<(usize, String)> {
    if let Some((prefix, value)) = perm.rsplit_once('/').filter(|_| perm.contains("://")) {
        let prefix = prefix.trim_end_matches('/');
        let idx = resources.iter().position(|r| {
            r.identifier_uri
                .trim_end_matches('/')
                .eq_ignore_ascii_case(prefix)
                || r.app_id.to_string().eq_ignore_ascii_case(prefix)
        })?;
        Some((idx, value.to_owned()))
    } else if let Some((prefix, value)) = perm.split_once('/') {
        // `{resource app id}/Name`
        let idx = resources
            .iter()
            .position(|r| r.app_id.to_string().eq_ignore_ascii_case(prefix))?;
        Some((idx, value.to_owned()))
    } else {
        let graph = resources
            .iter()
            .position(|r| r.app_id.to_string() == GRAPH_APP_ID)?;
        Some((graph, perm.to_owned()))
    }
}

fn dup(what: &'static str, name: impl ToString) -> ScenarioError {
    ScenarioError::Duplicate {
        what,
        name: name.to_string(),
    }
}

fn unknown(what: &'static str, name: impl ToString) -> ScenarioError {
    ScenarioError::Unknown {
        what,
        name: name.to_string(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_national_clouds_scenario_places_tenants_and_registrations_per_cloud() {
        let s = Scenario::national_clouds();
        for cloud in ["usgov", "usgov-dod", "china"] {
            assert_eq!(
                s.tenants.iter().filter(|t| t.cloud == cloud).count(),
                2,
                "a vendor and a customer tenant in {cloud}"
            );
            let apps = s.vendor_apps_in(cloud);
            assert_eq!(apps.len(), 1, "{cloud}: {apps:?}");
            assert_eq!(apps[0].0, "insights-m365");
        }
        // The global registrations are contoso's, none of a national cloud.
        let global = s.vendor_apps();
        assert_eq!(global.len(), Scenario::contoso().vendor_apps().len());
        assert!(
            global
                .iter()
                .all(|(_, id, _)| !id.to_string().contains("c10"))
        );
        // An unknown cloud is refused with what was wrong.
        let text = CONTOSO.replace(
            "display_name = \"Contoso\"\n",
            "display_name = \"Contoso\"\ncloud = \"germany\"\n",
        );
        let e = Scenario::from_toml_str(&text).unwrap_err().to_string();
        assert!(e.contains("`germany`") && e.contains("usgov-dod"), "{e}");
    }

    #[test]
    fn contoso_parses_and_names_every_special_role() {
        let s = Scenario::contoso();
        let contoso = s
            .tenant_by_ref("contoso.onmicrosoft.com")
            .expect("contoso tenant");
        for role in [
            "Global Administrator",
            "Privileged Role Administrator",
            "Yammer Administrator",
            "Power Platform Administrator",
            "Fabric Administrator",
            "Teams Administrator",
            "Exchange Administrator",
            "Microsoft 365 Backup Administrator",
        ] {
            let id = resolve_role(role).expect("known role");
            assert!(
                contoso
                    .users
                    .iter()
                    .any(|u| u.roles.iter().any(|r| r == id)),
                "no user with {role}"
            );
        }
        assert!(contoso.users.iter().any(|u| u.mfa_required));
        assert!(contoso.users.iter().any(|u| u.viva_engage_verified_admin));
        assert!(contoso.groups.iter().any(|g| !g.owners.is_empty()));
        assert!(s.tenant_by_ref("fabrikam.onmicrosoft.com").is_some());
    }

    /// The contoso scenario mirrors Consentry's default catalog: one vendor app per app type with
    /// the catalog's permissions.
    #[test]
    fn contoso_mirrors_the_default_catalog() {
        let path = concat!(
            env!("CARGO_MANIFEST_DIR"),
            "/../consentry-catalog/catalog/default.toml"
        );
        let Ok(text) = std::fs::read_to_string(path) else {
            panic!("the default catalog is expected at {path}");
        };
        let catalog: toml::Value = toml::from_str(&text).expect("catalog parses");
        let s = Scenario::contoso();
        let types = catalog["app_types"].as_array().expect("app_types");
        for at in types {
            let key = at["key"].as_str().unwrap_or_default();
            let custom = at
                .get("custom_app")
                .and_then(toml::Value::as_bool)
                .unwrap_or(false);
            let app = s
                .apps
                .iter()
                .find(|a| a.catalog_key.as_deref() == Some(key));
            if custom {
                let home = s
                    .tenant_by_ref("contoso.onmicrosoft.com")
                    .map(|t| t.id.to_string());
                let custom_app = s
                    .apps
                    .iter()
                    .find(|a| a.home_tenant == "contoso.onmicrosoft.com");
                assert!(
                    custom_app.is_some_and(|a| !a.certificates.is_empty()),
                    "contoso needs a custom app with a certificate ({home:?})"
                );
                continue;
            }
            let app = app.unwrap_or_else(|| panic!("no vendor app for catalog app type {key}"));
            if let Some(name) = at.get("entra_app_name").and_then(toml::Value::as_str) {
                assert_eq!(app.display_name, name);
            }
            for p in at["permissions"].as_array().into_iter().flatten() {
                let name = p["name"].as_str().unwrap_or_default().to_owned();
                match p["kind"].as_str() {
                    Some("scope") => assert!(
                        app.delegated.contains(&name),
                        "{key}: delegated {name} missing"
                    ),
                    Some("role") => assert!(
                        app.application.contains(&name),
                        "{key}: application {name} missing"
                    ),
                    other => panic!("unexpected permission kind {other:?}"),
                }
            }
        }
    }

    #[test]
    fn dangling_references_are_reported() {
        let text = r#"
            [[tenants]]
            id = "3f2a9c4e-5b1d-4c7a-9e2f-6d8b0a1c2e3f"
            display_name = "T"
            domains = ["t.onmicrosoft.com"]
            [[tenants.groups]]
            id = "3f2a9c4e-5b1d-4c7a-9e2f-6d8b0a1c2e30"
            display_name = "G"
            owners = ["nobody@t.onmicrosoft.com"]
        "#;
        let err = Scenario::from_toml_str(text).unwrap_err();
        assert!(
            matches!(err, ScenarioError::Unknown { what: "user", .. }),
            "{err}"
        );
        let bad_role = r#"
            [[tenants]]
            id = "3f2a9c4e-5b1d-4c7a-9e2f-6d8b0a1c2e3f"
            display_name = "T"
            domains = ["t.onmicrosoft.com"]
            [[tenants.users]]
            id = "3f2a9c4e-5b1d-4c7a-9e2f-6d8b0a1c2e31"
            upn = "a@t.onmicrosoft.com"
            display_name = "A"
            password = "x"
            roles = ["Supreme Leader"]
        "#;
        assert!(matches!(
            Scenario::from_toml_str(bad_role),
            Err(ScenarioError::Unknown {
                what: "directory role",
                ..
            })
        ));
        assert!(matches!(
            Scenario::from_toml_str("tenants = 3"),
            Err(ScenarioError::Parse(_))
        ));
    }

    #[test]
    fn permissions_resolve_to_graph_or_a_named_resource() {
        let s = Scenario::contoso();
        let graph = s
            .resources
            .iter()
            .position(|r| r.app_id.to_string() == GRAPH_APP_ID)
            .expect("graph");
        assert_eq!(
            split_permission(&s.resources, "User.Read"),
            Some((graph, "User.Read".into()))
        );
        assert_eq!(
            split_permission(&s.resources, "https://graph.microsoft.com/.default"),
            Some((graph, ".default".into()))
        );
        assert_eq!(
            split_permission(&s.resources, "https://unknown.example/x"),
            None
        );
    }
}

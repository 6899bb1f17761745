//! What each registration must be, as Microsoft's application manifest in Microsoft Graph's format
//! (the body of `POST /applications`): display name, `signInAudience` `AzureADMultipleOrgs`, the web
//! redirect URIs and `requiredResourceAccess` with the permissions' IDs. A permission whose ID the
//! catalog does not know is named in [`Manifest::warnings`], never guessed.

use std::fmt;

use consentry_catalog::{AppType, Catalog, GRAPH_RESOURCE_APP_ID, PermissionType};
use consentry_entra::applications::{
    ApplicationWrite, RequiredResourceAccess, ResourceAccess, WebApplication,
};

/// Every registration of the vendor is multi-tenant: customers' tenants consent to it.
pub const SIGN_IN_AUDIENCE: &str = "AzureADMultipleOrgs";

/// The display name of Consentry's own registration (as in entra-sim's contoso scenario).
pub const CONSENTRY_APP_NAME: &str = "Consentry";

/// The path of Consentry's OAuth redirect for the vendor's apps (`{public_url}/oauth/callback`).
pub const OAUTH_CALLBACK_PATH: &str = "/oauth/callback";

/// The path of the console's "Sign in with Microsoft" redirect.
pub const CONSOLE_SIGN_IN_CALLBACK_PATH: &str = "/console/sign-in/microsoft/callback";

/// What Consentry's own app requests of Microsoft Graph (IDs are Microsoft Graph's, the same in
/// every tenant): sign-in (`openid`, `profile`, `User.Read`, delegated) and the connected tenant's
/// name and domains (`Organization.Read.All`, application).
pub const CONSENTRY_APP_PERMISSIONS: [(&str, &str, PermissionType); 4] = [
    (
        "openid",
        "37f7f235-527c-4136-accd-4a02d197296e",
        PermissionType::Scope,
    ),
    (
        "profile",
        "14dad69e-099b-42c9-810b-d002981feec1",
        PermissionType::Scope,
    ),
    (
        "User.Read",
        "e1fe6dd8-ba31-4d61-89e7-88639da4683d",
        PermissionType::Scope,
    ),
    (
        "Organization.Read.All",
        "498476ce-e0fe-48b0-b801-37ba7e2685c6",
        PermissionType::Role,
    ),
];

/// Which registration: a catalog app type's (`[apps.<key>]`) or Consentry's own (`[consentry_app]`).
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Registration {
    /// The registration of a catalog app type, by key.
    AppType(String),
    /// Consentry's own app.
    ConsentryApp,
}

impl Registration {
    /// What the command line calls Consentry's own app.
    pub const CONSENTRY_APP_ARG: &'static str = "consentry-app";

    /// From a command-line argument: an app type key or `consentry-app`.
    pub fn from_arg(arg: &str) -> Self {
        if arg == Self::CONSENTRY_APP_ARG {
            Self::ConsentryApp
        } else {
            Self::AppType(arg.to_owned())
        }
    }

    /// The configuration table's path: `["apps", key]` or `["consentry_app"]`.
    pub fn config_path(&self) -> Vec<&str> {
        match self {
            Self::AppType(key) => vec!["apps", key.as_str()],
            Self::ConsentryApp => vec!["consentry_app"],
        }
    }

    /// A file name stem for its secrets (`insights-m365`, `consentry-app`).
    pub fn file_stem(&self) -> &str {
        match self {
            Self::AppType(key) => key,
            Self::ConsentryApp => Self::CONSENTRY_APP_ARG,
        }
    }
}

impl fmt::Display for Registration {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::AppType(key) => write!(f, "[apps.{key}]"),
            Self::ConsentryApp => f.write_str("[consentry_app]"),
        }
    }
}

/// What one registration must be.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Manifest {
    /// Which registration.
    pub registration: Registration,
    /// Microsoft's application manifest (Graph format); every field is set.
    pub application: ApplicationWrite,
    /// What the manifest could not say (a permission whose ID is unknown, a display name taken from
    /// elsewhere), for the operator.
    pub warnings: Vec<String>,
}

/// Why no manifest can be made.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ManifestError {
    /// No such app type.
    #[error("no app type {0:?} in the catalog (`consentry catalog list` shows the keys)")]
    UnknownAppType(String),
    /// A custom app type: the customer registers that app in their own tenant.
    #[error(
        "{0:?} is a custom app type: each customer registers that app in their own tenant, the vendor has no registration for it"
    )]
    CustomApp(String),
}

impl Manifest {
    /// The registration's display name.
    pub fn display_name(&self) -> &str {
        self.application.display_name.as_deref().unwrap_or_default()
    }

    /// The redirect URIs it must have.
    pub fn redirect_uris(&self) -> &[String] {
        self.application
            .web
            .as_ref()
            .map(|w| w.redirect_uris.as_slice())
            .unwrap_or_default()
    }

    /// The permissions it must request.
    pub fn required_resource_access(&self) -> &[RequiredResourceAccess] {
        self.application
            .required_resource_access
            .as_deref()
            .unwrap_or_default()
    }

    /// The manifest as JSON (Graph's field names).
    pub fn to_json(&self) -> serde_json::Value {
        serde_json::to_value(&self.application).unwrap_or_default()
    }
}

/// A warning when Microsoft would refuse redirect URIs under `public_url`: its redirect URI restrictions
/// allow the `http` scheme for loopback addresses only (UNVERIFIED here: entra-facts does not cover redirect
/// URI schemes; `localhost`, `127.0.0.1` and `[::1]` are taken as loopback).
fn public_url_warning(public_url: &str) -> Option<String> {
    let rest = public_url.strip_prefix("http://")?;
    let host = if rest.starts_with('[') {
        rest.split(']')
            .next()
            .map(|h| format!("{h}]"))
            .unwrap_or_default()
    } else {
        rest.split(['/', ':']).next().unwrap_or_default().to_owned()
    };
    let loopback = ["localhost", "127.0.0.1", "[::1]"]
        .iter()
        .any(|l| host.eq_ignore_ascii_case(l));
    (!loopback).then(|| {
        format!(
            "public_url {public_url} is plain http: Microsoft accepts http redirect URIs only for loopback addresses; \
             set public_url to Consentry's https address before registering"
        )
    })
}

fn kind(k: PermissionType) -> String {
    match k {
        PermissionType::Role => "Role",
        PermissionType::Scope => "Scope",
    }
    .to_owned()
}

fn application(
    display_name: String,
    redirect_uris: Vec<String>,
    access: Vec<RequiredResourceAccess>,
) -> ApplicationWrite {
    ApplicationWrite {
        display_name: Some(display_name),
        sign_in_audience: Some(SIGN_IN_AUDIENCE.to_owned()),
        web: Some(WebApplication { redirect_uris }),
        required_resource_access: Some(access),
    }
}

/// The manifest of an app type's registration. Its display name is the catalog's Entra app name; where
/// the catalog has none, the app type's display name (with a warning saying so).
pub fn for_app_type(app: &AppType, public_url: &str) -> Result<Manifest, ManifestError> {
    if app.custom_app {
        return Err(ManifestError::CustomApp(app.key.clone()));
    }
    let mut warnings = Vec::new();
    let display_name = match &app.entra_app_name {
        Some(name) => name.clone(),
        None => {
            warnings.push(format!(
                "{}: the catalog has no Entra app name for this app type; the registration is named after its display name {:?}",
                app.key, app.display_name
            ));
            app.display_name.clone()
        }
    };
    warnings.extend(public_url_warning(public_url));
    let required = app.required_access();
    for u in &required.unplaced {
        warnings.push(format!(
            "{}: the {} permission {} is not in the manifest: {}",
            app.key, u.kind, u.name, u.reason
        ));
    }
    let access = required
        .resources
        .iter()
        .map(|r| RequiredResourceAccess {
            resource_app_id: r.resource_app_id.to_string(),
            resource_access: r
                .access
                .iter()
                .map(|&(id, k)| ResourceAccess {
                    id: id.to_string(),
                    kind: kind(k),
                })
                .collect(),
        })
        .collect();
    Ok(Manifest {
        registration: Registration::AppType(app.key.clone()),
        application: application(
            display_name,
            vec![format!("{public_url}{OAUTH_CALLBACK_PATH}")],
            access,
        ),
        warnings,
    })
}

/// The manifest of Consentry's own registration (`[consentry_app]`): the console's "Sign in with
/// Microsoft" and connecting a tenant by administrator consent.
pub fn for_consentry_app(public_url: &str) -> Manifest {
    let access = vec![RequiredResourceAccess {
        resource_app_id: GRAPH_RESOURCE_APP_ID.to_string(),
        resource_access: CONSENTRY_APP_PERMISSIONS
            .iter()
            .map(|&(_, id, k)| ResourceAccess {
                id: id.to_owned(),
                kind: kind(k),
            })
            .collect(),
    }];
    Manifest {
        registration: Registration::ConsentryApp,
        application: application(
            CONSENTRY_APP_NAME.to_owned(),
            vec![
                format!("{public_url}{CONSOLE_SIGN_IN_CALLBACK_PATH}"),
                format!(
                    "{public_url}{}",
                    consentry_domain::connect::CONNECT_CALLBACK_PATH
                ),
            ],
            access,
        ),
        warnings: public_url_warning(public_url).into_iter().collect(),
    }
}

/// The manifest of `registration`.
pub fn for_registration(
    catalog: &Catalog,
    registration: &Registration,
    public_url: &str,
) -> Result<Manifest, ManifestError> {
    match registration {
        Registration::ConsentryApp => Ok(for_consentry_app(public_url)),
        Registration::AppType(key) => {
            let app = catalog
                .app_type(key)
                .ok_or_else(|| ManifestError::UnknownAppType(key.clone()))?;
            for_app_type(app, public_url)
        }
    }
}

/// Every registration the vendor needs: one per catalog app type that is not a custom app, in catalog
/// order, then Consentry's own.
pub fn all(catalog: &Catalog, public_url: &str) -> Vec<Manifest> {
    let mut out: Vec<Manifest> = catalog
        .app_types
        .iter()
        .filter_map(|a| for_app_type(a, public_url).ok())
        .collect();
    out.push(for_consentry_app(public_url));
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_app_type_manifest_carries_the_catalogs_ids_and_the_callback() {
        let catalog = Catalog::builtin();
        let manifests = all(&catalog, "https://consentry.example.com");
        let vendor_types = catalog.app_types.iter().filter(|a| !a.custom_app).count();
        assert_eq!(manifests.len(), vendor_types + 1);
        for m in &manifests {
            assert_eq!(
                m.application.sign_in_audience.as_deref(),
                Some("AzureADMultipleOrgs")
            );
            assert!(!m.display_name().is_empty());
            let Registration::AppType(key) = &m.registration else {
                continue;
            };
            let app = catalog.app_type(key).unwrap();
            assert_eq!(
                m.redirect_uris(),
                ["https://consentry.example.com/oauth/callback"]
            );
            // Graph permissions with a known ID are requested; the others are named in a warning.
            for p in app.permissions.iter().filter(|p| p.is_graph()) {
                let Some(id) = p.id.map(|i| i.to_string()) else {
                    assert!(
                        m.warnings.iter().any(|w| w.contains(&p.name)),
                        "{key}: {}",
                        p.name
                    );
                    continue;
                };
                assert!(
                    m.required_resource_access()
                        .iter()
                        .any(|r| r.resource_app_id == GRAPH_RESOURCE_APP_ID.to_string()
                            && r.resource_access.iter().any(|a| a.id == id)),
                    "{key}: {}",
                    p.name
                );
            }
        }
        let consentry = manifests.last().unwrap();
        assert_eq!(consentry.registration, Registration::ConsentryApp);
        assert_eq!(
            consentry.redirect_uris(),
            [
                "https://consentry.example.com/console/sign-in/microsoft/callback",
                "https://consentry.example.com/console/tenants/connect/callback"
            ]
        );
    }

    #[test]
    fn a_plain_http_public_url_is_warned_about_except_on_loopback() {
        assert!(for_consentry_app("https://c.example").warnings.is_empty());
        assert!(
            for_consentry_app("http://localhost:8080")
                .warnings
                .is_empty()
        );
        assert!(
            for_consentry_app("http://127.0.0.1:8080")
                .warnings
                .is_empty()
        );
        assert!(for_consentry_app("http://[::1]:8080").warnings.is_empty());
        let w = for_consentry_app("http://consentry.internal").warnings;
        assert!(w[0].contains("only for loopback"), "{w:?}");
    }

    #[test]
    fn custom_and_unknown_app_types_have_no_manifest() {
        let catalog = Catalog::builtin();
        let custom = catalog.app_types.iter().find(|a| a.custom_app).unwrap();
        assert_eq!(
            for_registration(
                &catalog,
                &Registration::AppType(custom.key.clone()),
                "https://x"
            ),
            Err(ManifestError::CustomApp(custom.key.clone()))
        );
        assert!(matches!(
            for_registration(&catalog, &Registration::AppType("nope".into()), "https://x"),
            Err(ManifestError::UnknownAppType(_))
        ));
    }
}

//! The app-type catalog of Consentry: which services a vendor offers, which app types (app registrations in
//! Microsoft Entra ID) serve them, what Microsoft Graph permissions each needs, which consent methods it
//! allows and what roles, licenses and other conditions the consenting user must meet.
//!
//! The catalog is data, not code: a TOML file embedded in the binary ([`Catalog::builtin`], reproducing the
//! reference document the product is built from) that a vendor can replace with its own file
//! ([`Catalog::load_file`]). Requirements on the consenting user are expressed as any-of / all-of
//! [`Requirement`] trees, evaluated against [`UserFacts`] with [`Catalog::evaluate`] and described in words
//! with [`Catalog::describe`]. A malformed catalog is rejected with a [`CatalogError`] that names the file,
//! line, column and what is wrong.
//!
//! ```
//! use consentry_catalog::{Catalog, ConsentMethod, UserFacts};
//!
//! let catalog = Catalog::builtin();
//! let express = catalog.app_type("cloud-backup-express").unwrap();
//! let req = express.requirement_for(ConsentMethod::User, Some("cloud-backup-m365"), &[], &[]).unwrap();
//! assert_eq!(catalog.describe(&req), "Microsoft 365 Backup Administrator");
//!
//! let backup_admin = catalog.role("microsoft-365-backup-administrator").unwrap().template_id;
//! assert!(catalog.evaluate(&req, &UserFacts::default().with_role(backup_admin)).is_ok());
//! let unmet = catalog.evaluate(&req, &UserFacts::default()).unwrap_err();
//! assert_eq!(unmet.to_string(), "needs Microsoft 365 Backup Administrator");
//! ```

mod error;
mod load;
mod model;
mod registration;
mod release;
mod requirement;

use std::path::Path;
use std::sync::OnceLock;

use serde::Serialize;
use uuid::Uuid;

pub use error::CatalogError;
pub use model::{
    AppMode, AppType, ConsentMethod, ConsentRule, Function, FunctionChoiceError, GraphPermission,
    License, Marker, Module, PermissionKind, PermissionType, Role, ScanTarget,
    ScanTargetChoiceError, Service, UnknownConsentMethod,
};
pub use registration::{
    GRAPH_RESOURCE_APP_ID, RequiredAccess, ResourceRequest, UnplacedPermission,
};
pub use release::with_permission_added;
pub use requirement::{Requirement, Unmet, UserFacts};

/// The default catalog's source text, embedded at build time.
pub const BUILTIN_TOML: &str = include_str!("../catalog/default.toml");

/// The origin reported for errors in the embedded catalog.
pub const BUILTIN_ORIGIN: &str = "builtin:catalog/default.toml";

/// A checked app-type catalog.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct Catalog {
    /// Catalog version; consents remember the version they were given at.
    pub version: u32,
    /// The vendor's services.
    pub services: Vec<Service>,
    /// Entra roles that requirements refer to.
    pub roles: Vec<Role>,
    /// Licenses that requirements refer to.
    pub licenses: Vec<License>,
    /// Subscription modules that gate functions.
    pub modules: Vec<Module>,
    /// App types, in file order.
    pub app_types: Vec<AppType>,
}

impl Catalog {
    /// The embedded default catalog (parsed once per process).
    ///
    /// # Panics
    /// Never in a released build: the embedded file is checked by the crate's tests.
    pub fn builtin() -> Catalog {
        Catalog::builtin_ref().clone()
    }

    /// The embedded default catalog, shared without copying.
    ///
    /// # Panics
    /// As [`Catalog::builtin`].
    pub fn builtin_ref() -> &'static Catalog {
        static BUILTIN: OnceLock<Catalog> = OnceLock::new();
        BUILTIN.get_or_init(
            || match Catalog::from_toml_str(BUILTIN_TOML, BUILTIN_ORIGIN) {
                Ok(c) => c,
                Err(e) => panic!("the embedded catalog is invalid: {e}"),
            },
        )
    }

    /// Parses and checks a catalog from TOML text; `origin` (usually the file name) prefixes error messages.
    pub fn from_toml_str(src: &str, origin: &str) -> Result<Catalog, CatalogError> {
        load::parse(src, origin)
    }

    /// Reads, parses and checks a catalog file.
    pub fn load_file(path: &Path) -> Result<Catalog, CatalogError> {
        let origin = path.display().to_string();
        let src = std::fs::read_to_string(path).map_err(|e| CatalogError {
            origin: origin.clone(),
            line: None,
            column: None,
            message: format!(
                "cannot read the catalog file ({e}): check the catalog path in the configuration"
            ),
        })?;
        Catalog::from_toml_str(&src, &origin)
    }

    /// The app type with this key.
    pub fn app_type(&self, key: &str) -> Option<&AppType> {
        self.app_types.iter().find(|a| a.key == key)
    }

    /// The service with this key.
    pub fn service(&self, key: &str) -> Option<&Service> {
        self.services.iter().find(|s| s.key == key)
    }

    /// The role with this key.
    pub fn role(&self, key: &str) -> Option<&Role> {
        self.roles.iter().find(|r| r.key == key)
    }

    /// The role whose name or alias is `name` (ASCII case-insensitive), e.g. "Company Administrator".
    pub fn role_by_name(&self, name: &str) -> Option<&Role> {
        self.roles.iter().find(|r| r.is_named(name))
    }

    /// The role with this Entra role template ID.
    pub fn role_by_template_id(&self, id: Uuid) -> Option<&Role> {
        self.roles.iter().find(|r| r.template_id == id)
    }

    /// The license with this key.
    pub fn license(&self, key: &str) -> Option<&License> {
        self.licenses.iter().find(|l| l.key == key)
    }

    /// The module with this key.
    pub fn module(&self, key: &str) -> Option<&Module> {
        self.modules.iter().find(|m| m.key == key)
    }

    /// The app types serving the service with this key, in file order.
    pub fn app_types_for_service<'a>(
        &'a self,
        service: &'a str,
    ) -> impl Iterator<Item = &'a AppType> + 'a {
        self.app_types.iter().filter(move |a| a.serves(service))
    }

    /// Checks `req` against what is known of the consenting user. A role or license key the catalog does
    /// not know never holds.
    pub fn evaluate(&self, req: &Requirement, facts: &UserFacts) -> Result<(), Unmet> {
        if requirement::holds(self, req, facts) {
            return Ok(());
        }
        let mut missing = Vec::new();
        requirement::missing(self, req, facts, &mut missing);
        Err(Unmet {
            requirement: req.clone(),
            needs: self.describe(req),
            missing,
        })
    }

    /// The requirement in words, e.g. "Global Administrator or Privileged Role Administrator".
    pub fn describe(&self, req: &Requirement) -> String {
        requirement::describe(self, req)
    }
}

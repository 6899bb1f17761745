//! The vendor's app registrations: manifests from the catalog, the plan that reconciles them, and
//! applying it through Graph.
//!
//! - [`manifest`]: what each registration must be, as Microsoft's application manifest (Graph format):
//!   one per catalog app type (`[apps.<key>]`) and Consentry's own app (`[consentry_app]`).
//! - [`plan`]: pure: the desired manifests against the registrations found in the vendor's tenant →
//!   create / update these fields / add a credential / create the service principal / nothing. Never
//!   deletes anything.
//! - [`apply`]: carries a plan out through Graph with the operator's token.
//! - [`config_file`]: writes the settings of the registrations into the configuration file (keeping the
//!   operator's comments) and their secrets into files of mode 0600, atomically.
//! - [`rotate`]: replaces one registration's credential without downtime (add, prove, switch, remove
//!   the old one).

pub mod apply;
pub mod config_file;
pub mod manifest;
pub mod plan;
pub mod rotate;

pub use manifest::{Manifest, Registration};
pub use plan::{Action, Found, Plan, PlannedRegistration};

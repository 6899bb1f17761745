//! entra-sim: a local simulator of the Microsoft identity platform (Entra ID v2 endpoints) and of the
//! Microsoft Graph endpoints Consentry uses, so that Consentry (and any standard OAuth client) can be
//! developed, tested and demonstrated without a real Microsoft tenant.
//!
//! It is a real HTTPS server speaking the same wire protocol — discovery, JWKS, `/authorize` with
//! HTML sign-in/MFA/consent pages, admin consent (v2 and legacy), the token endpoint with client
//! secrets and certificate assertions, and a Graph subset — backed by a directory with real semantics
//! (consent grants, service principals, conditional access, user state) and a clock that can be
//! advanced. Every failure Consentry must handle answers with Microsoft's real error code and shape.
//!
//! ```no_run
//! # async fn demo() -> Result<(), entra_sim::SimError> {
//! use entra_sim::{RunningSim, Scenario, SimOptions};
//! let sim = RunningSim::start(Scenario::contoso(), SimOptions::default()).await?;
//! println!("authority {} (trust the CA: {} bytes of PEM)", sim.authority(), sim.ca_pem().len());
//! sim.control().revoke_sessions("admin@contoso.onmicrosoft.com").expect("user exists");
//! sim.shutdown().await;
//! # Ok(()) }
//! ```
//!
//! Host layout on one port: identity platform at `{base}/{tenant}/…`, Graph at `{base}/v1.0/…` and
//! `{base}/beta/…`, control API at `{base}/_sim/…`. All keys are generated at start and TEST-ONLY.

mod aad;
mod control;
mod crypto;
mod error;
mod faults;
mod graph;
mod model;
mod pages;
mod routes;
mod scenario;
mod server;
mod state;
mod token;
pub mod wellknown;

pub use control::{ControlOp, PermissionKind, SimControl};
pub use error::{ControlError, ScenarioError, SimError};
pub use faults::FaultRule;
pub use model::{
    App, AppRoleAssignment, CaAction, CaPolicy, CaRefreshIp, ClientSecret, Group, KeyCredential,
    License, OAuth2PermissionGrant, PermissionDef, ResourceApi, ServicePlan, ServicePrincipal,
    Settings, SignInAudience, Tenant, User,
};
pub use scenario::Scenario;
pub use server::{RunningSim, SimOptions};

//! entra-sim: a local simulator of the Microsoft identity platform (Entra ID v2 endpoints) and of the
//! Microsoft Graph endpoints Consentry uses, so that Consentry (and any standard OAuth client) can be
//! developed, tested and demonstrated without a real Microsoft tenant.
//!
//! It is a real HTTPS server speaking the same wire protocol — discovery, JWKS, `/authorize` with
//! HTML sign-in/MFA/consent pages, admin consent (v2 and legacy), the device code flow, the token
//! endpoint with client secrets, certificate assertions and public clients, and a Graph subset —
//! backed by a directory with real semantics (consent grants, service principals, conditional
//! access, user state) and a clock that can be advanced. Every failure Consentry must handle answers with Microsoft's real error code and shape.
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
//! `{base}/beta/…` (JSON batching at `{base}/v1.0/$batch`), the Viva Engage (Yammer) REST API at
//! `{base}/yammer/api/v1/…`, control API at `{base}/_sim/…`. All keys are generated at start and TEST-ONLY.
//!
//! # Code map
//!
//! - `model`, `scenario`: the directory types (also the scenario file schema) and their loading and
//!   validation; `wellknown`: role template IDs and the Microsoft Graph permission table.
//! - `state`: the live state and every directory rule (consent, grants, conditional access).
//!   **Architecture invariant:** endpoints never change the directory except through `State`
//!   methods or the control API, so a rule holds the same on every path.
//! - `routes`: every route in one place, discovery and JWKS; `pages`: `/authorize`, admin consent and
//!   the HTML pages (askama templates in `templates/`); `token`: the token endpoint (its child
//!   `token::device_code`: public clients and the device code grant); `device`: device codes and
//!   their states; `devicelogin`: the device authorization endpoint and the verification page,
//!   which signs the user in through `pages`; `graph`: the Graph subset; `batch`: Graph's JSON
//!   batching (`$batch`), answering each inner request through `graph`; `signins`: the sign-in
//!   logs (`auditLogs/signIns`) the pages and the token endpoint record; `control`: the control
//!   API; `faults`: fault rules; `throttle`: Microsoft's throttling limits (token buckets per app
//!   and tenant, off by default), which the token endpoint and `graph` consult; `ctx`: the handlers' shared
//!   context; `server`: TLS, the listener and the per-connection service that applies faults.
//!   Modules refer only downwards (throttle, model, wellknown, error, crypto, aad, faults, scenario, device,
//!   state (which keeps the device codes), ctx; then the endpoints; then routes, persist and
//!   server): no `use crate::` cycle.
//! - `aad`: the identity platform's error body. **Architecture invariant:** every identity error is
//!   an `AadError` whose OAuth `error`, HTTP status and `suberror` follow from its AADSTS code in one
//!   table, so a code always answers the same way.

mod aad;
mod batch;
pub mod browser;
mod control;
mod crypto;
mod ctx;
mod device;
mod devicelogin;
mod error;
mod faults;
mod graph;
mod model;
mod pages;
mod persist;
mod routes;
mod scenario;
mod server;
mod signins;
mod state;
mod throttle;
mod token;
pub mod wellknown;
mod yammer;

pub use control::{ControlOp, PermissionKind, SimControl, TokenRequests};
pub use error::{ControlError, ScenarioError, SimError};
pub use faults::{FaultRule, IdTokenFault};
pub use model::{
    App, AppRoleAssignment, CaAction, CaPolicy, CaRefreshIp, ClientSecret, DeviceCodeSettings,
    EntraIdPlan, Group, KeyCredential, License, OAuth2PermissionGrant, PermissionDef, ResourceApi,
    ServicePlan, ServicePrincipal, Settings, SignInAudience, Tenant, User,
};
pub use scenario::Scenario;
pub use server::{RunningSim, SimOptions};
pub use throttle::{Counts as ThrottleCounts, ThrottleCount, ThrottleSettings};

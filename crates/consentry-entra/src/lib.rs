//! Consentry's client for the Microsoft identity platform (Entra ID) and Microsoft Graph.
//!
//! - **URLs** an administrator is sent to: [`EntraClient::admin_consent_url`] (`/v2.0/adminconsent`)
//!   and [`EntraClient::authorize_url`] (authorization code + PKCE S256, see [`Pkce`]); the
//!   redirect back is parsed by [`RedirectResponse::parse`].
//! - **Token grants** for the vendor's apps and customers' custom apps ([`ClientCredential`]:
//!   secret or certificate assertion): [`EntraClient::client_credentials`],
//!   [`EntraClient::redeem_code`], [`EntraClient::refresh`]. Tokens are [`secrecy::SecretString`]s
//!   and `Debug` never shows them. [`TokenClaims`] reads `tid`, `oid`, `upn`, `scp`, `roles`,
//!   `ipaddr`, `amr` WITHOUT verifying signatures (tokens come straight from the token endpoint
//!   over TLS; JWKS verification of ID tokens is separate work).
//! - **App registrations** in the vendor's home tenant ([`applications`]): what going live reads and writes
//!   (list, create, `PATCH`, `addPassword` / `removePassword`, certificates, the home service principal),
//!   with an operator's token from the **device code flow** ([`EntraClient::start_device_code`],
//!   [`EntraClient::wait_for_device_code`]).
//! - **Graph reads** that verify consents and consent users: service principal, app role
//!   assignments, delegated grants, `/me`, memberships, licenses, owned groups, key credentials.
//! - **Errors parsed once** into [`EntraError`]: AADSTS codes, OAuth class, suberror, trace and
//!   correlation IDs ([`IdentityError`]), Graph errors ([`GraphError`]), throttling with
//!   `Retry-After`, 5xx, transport failures. [`EntraError::cause`] says what the failure means for
//!   an app profile ([`Cause`]), [`EntraError::is_transient`] whether to retry, and
//!   [`with_retry`] retries accordingly. Callers never match on strings.
//! - **Pacing after throttling** ([`EntraConfig::pacing`], see `pacer`): after a 429 with
//!   `Retry-After`, later requests of the same tenant and app wait until it has passed, then go at a
//!   rate learned from the 429s (AIMD); other tenants and apps are not slowed.
//!
//! The authority and Graph URLs are configurable ([`EntraConfig`]) so the same code runs
//! against Microsoft and against entra-sim (whose CA goes in [`EntraConfig::extra_ca_pem`]).
//!
//! ```no_run
//! use consentry_entra::{ClientCredential, EntraClient, EntraConfig, GRAPH_DEFAULT_SCOPE, RetryPolicy, with_retry};
//!
//! # async fn run() -> Result<(), consentry_entra::EntraError> {
//! let client = EntraClient::new(EntraConfig::default())?;
//! let secret = ClientCredential::secret("vendor app secret value");
//! let tenant = "84841066-274d-4ec0-a5c1-276be684bdd3";
//! let app_id = "6731de76-14a6-49ae-97bc-6eba6914391e";
//! let token = with_retry(&RetryPolicy::default(), || {
//!     client.client_credentials(tenant, app_id, &secret, GRAPH_DEFAULT_SCOPE)
//! })
//! .await;
//! match token {
//!     Ok(token) => {
//!         let sp = client.service_principal_by_app_id(&token.access_token, app_id).await?;
//!         println!("consented: {}", sp.is_some());
//!     }
//!     Err(e) => println!("{:?}: {e}", e.cause()),
//! }
//! # Ok(())
//! # }
//! ```

mod application_writes;
pub mod applications;
mod batch;
mod client;
pub mod clouds;
mod console_sign_in;
pub mod credential_files;
mod device_code;
/// Microsoft's errors, parsed: the parsers live in `consentry-protocol` (pure, fuzzed without an HTTP
/// client in the build) and are re-exported here under their usual paths.
mod error {
    pub use consentry_protocol::entra_error::*;
}
mod graph;
mod id_token;
mod pacer;
mod retry;
mod token;
mod urls;
mod viva_engage;

pub mod platform;
pub mod registrations;

pub use batch::{ConsentReads, MAX_BATCH_REQUESTS};
pub use client::{
    DEFAULT_AUTHORITY, DEFAULT_GRAPH, DEFAULT_VIVA_ENGAGE, EntraClient, EntraConfig, MAX_BODY_BYTES,
};
pub use device_code::{DEVICE_CODE_GRANT, DeviceCodeError, DeviceCodeSignIn};
pub use error::{
    Cause, EntraError, GraphError, GraphErrorKind, IdentityError, OAuthError, SubError,
    TRANSIENT_CODES, TransportKind, parse_redirect_error, parse_retry_after,
};
pub use graph::{
    AppRole, AppRoleAssignment, DirectoryObject, GRAPH_APP_ID, KeyCredential, LicenseDetail,
    OAuth2PermissionGrant, PermissionScope, ServicePlanInfo, ServicePrincipal, User,
    directory_role_template_ids,
};
pub use id_token::{
    ID_TOKEN_LEEWAY, IdTokenError, IdTokenExpectations, IdTokenVerifier, JWKS_MAX_AGE,
    JWKS_MIN_REFETCH, parse_jwks,
};
pub use pacer::{FORGET_AFTER as PACING_FORGET_AFTER, Pacing};
pub use retry::{RetryPolicy, with_retry, with_retry_notify};
pub use token::{ClientCredential, TokenClaims, TokenResponse};
pub use urls::{
    AdminConsentRequest, AuthorizeRequest, GRAPH_DEFAULT_SCOPE, GRAPH_RESOURCE, OIDC_SCOPES, Pkce,
    Prompt, RedirectResponse, delegated_scope, delegated_scope_for, pkce_challenge_s256,
    qualify_scopes, qualify_scopes_for, random_url_safe,
};
pub use viva_engage::{VIVA_ENGAGE_RESOURCE, VIVA_ENGAGE_SCOPE, VivaEngageUser};

/// The AADSTS fuzz target's body, re-exported from `consentry-protocol` (where the fuzz target calls it).
#[doc(hidden)]
pub use consentry_protocol::fuzz_errors;

//! Consentry's HTTP server on axum: the versioned JSON API (with the token API), the web console, the OAuth
//! callback and consent links, configuration and start-up. Each surface maps domain errors to its answers in
//! one place.
//!
//! Built from an injected listener (`serve`) so tests bind port 0.

pub mod api;
pub mod auth;
pub mod callback;
pub mod campaign;
pub mod config;
pub mod console;
pub mod error;
pub mod health;
pub mod router;
pub mod security;
pub mod sign_in_settings;
pub mod startup;

use consentry_domain::{Consentry, Reauthorizer};

pub use config::Config;
/// The cloud table (Microsoft's clouds and their hosts), for the CLI's `--cloud`.
pub use consentry_entra::clouds;
pub use consentry_monitor;
pub use router::router;
pub use startup::{StartupError, build_state, build_state_with_clock, serve};

/// Shared state of every handler: one pointer, so that the copy axum makes for each request is cheap
/// (the token API answers tens of thousands of requests a second). Reads go through `Deref`; a
/// change (tests set up accounts before serving) copies the state if it is shared
/// (`Arc::make_mut`).
#[derive(Debug, Clone)]
pub struct AppState(std::sync::Arc<AppStateParts>);

impl AppState {
    /// The state made of `parts`.
    pub fn new(parts: AppStateParts) -> Self {
        Self(std::sync::Arc::new(parts))
    }
}

impl std::ops::Deref for AppState {
    type Target = AppStateParts;
    fn deref(&self) -> &AppStateParts {
        &self.0
    }
}

impl std::ops::DerefMut for AppState {
    fn deref_mut(&mut self) -> &mut AppStateParts {
        std::sync::Arc::make_mut(&mut self.0)
    }
}

/// What [`AppState`] holds.
#[derive(Debug, Clone)]
pub struct AppStateParts {
    /// The domain services.
    pub svc: Consentry,
    /// Re-authorization over the identity platform.
    pub reauth: Reauthorizer,
    /// Connecting tenants by consent ("Connect a Microsoft tenant").
    pub connect: consentry_domain::TenantConnector,
    /// Invitations of organizations' first admins.
    pub invitations: consentry_domain::Invitations,
    /// Digest of the operator API token.
    pub operator_token: auth::OperatorToken,
    /// Request body limit.
    pub max_body_bytes: usize,
    /// Security headers and the request time-out.
    pub security: security::SecurityConfig,
    /// Webhook destinations may be private or plain http (tests and demos only).
    pub webhooks_allow_private: bool,
    /// The web console's accounts, sessions and cookie settings.
    pub console: console::ConsoleState,
    /// Profile checks (the same code path as the monitor's schedule).
    pub checker: consentry_domain::Checker,
    /// Prometheus metrics (`/metrics`).
    pub metrics: std::sync::Arc<consentry_monitor::metrics::Metrics>,
    /// The token API (Microsoft Graph access tokens for the vendor's services): its token cache,
    /// single-flight acquisition, lookup cache and audit windows.
    pub graph_tokens: std::sync::Arc<consentry_domain::GraphTokens>,
    /// Consent campaigns (the API, the console and the campaign link pages).
    pub campaigns: consentry_domain::Campaigns,
    /// Webhook delivery counters (`/metrics`).
    pub webhook_stats: std::sync::Arc<consentry_monitor::webhooks::DeliveryStats>,
    /// The email outbox's delivery worker; `None` while `[email]` is not configured (the console
    /// says so). `consentry serve` runs it beside the server.
    pub email: Option<consentry_mail::DeliveryWorker>,
    /// The vendor's own credentials: the latest reading (`/metrics`, the console's Vendor apps
    /// page) and the expiry alerts.
    pub vendor_credentials: consentry_domain::VendorCredentialWatch,
}

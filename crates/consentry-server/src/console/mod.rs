//! The web console: server-rendered pages (askama, auto-escaped) for operators — sign-in, tenants with
//! their health, app profiles with filters and keyset pagination, a profile's detail and history, the
//! re-authorization wizard and "Check now", the account's personal API tokens, and the platform
//! operator's Vendor apps page (`vendor_apps.rs`).
//!
//! Authorization: every page and form asks [`consentry_domain::Caller::may`] (through
//! `pages::visible_profile` or directly); data of another organization is "not found", a viewer's change
//! is refused with 403, and viewers see no change buttons.
//!
//! Handlers parse the request, call the same domain services as the JSON API (`Consentry`,
//! `Reauthorizer`, `Checker`, `Accounts`) and render a template; they hold no business rules.
//!
//! Security: sessions live in the store (any replica serves them) and the cookie holds only a random
//! token (HttpOnly, SameSite=Lax, Secure when the public URL is https). Every POST carries the session's
//! CSRF token (the sign-in form a per-browser one) and is refused without it. Every console response
//! carries a CSP without inline script or style, `frame-ancestors 'none'`, nosniff and a strict
//! Referrer-Policy. The core flows work without JavaScript.

mod assets;
mod audit;
mod auth;
pub(crate) mod campaigns;
mod connect;
mod email;
mod error;
mod invitations;
mod microsoft;
mod pages;
mod personal_tokens;
mod rollouts;
mod scan;
mod vendor_apps;
mod wizard;

use axum::Router;
use axum::extract::{DefaultBodyLimit, Request, State};
use axum::http::{HeaderMap, HeaderValue, header};
use axum::middleware::Next;
use axum::response::Response;
use axum::routing::{get, post};
use consentry_domain::{Accounts, HashCost, SessionPolicy};

use crate::AppState;

pub use assets::favicon;
pub use auth::{LOGIN_COOKIE, SESSION_COOKIE};
pub use error::ConsoleError;
pub(crate) use error::{Shown, html};

/// The largest re-authorization form accepted (a .pfx file is a few kilobytes).
pub const MAX_WIZARD_BYTES: usize = 256 * 1024;

/// The console's profile counts stop at this many per status by default (`console_count_limit`):
/// past it a page shows `10,000+`. Counting up to it reads at most that many index entries of a
/// status, a few milliseconds on PostgreSQL, however many profiles match.
pub const COUNT_LIMIT: u64 = 10_000;

/// What the console needs beyond the domain services.
#[derive(Debug, Clone)]
pub struct ConsoleState {
    /// Operator accounts and sessions.
    pub accounts: Accounts,
    /// Whether cookies carry `Secure` (the public URL is https).
    pub secure_cookies: bool,
    /// Failed sign-ins per account, client address and device, shared through the store.
    pub throttle: consentry_domain::SignInThrottle,
    /// "Sign in with Microsoft"; `None` until [`ConsoleState::with_microsoft_sign_in`].
    pub microsoft: Option<consentry_domain::MicrosoftSignIn>,
    /// Profile counts stop at this many per status (`console_count_limit`, [`COUNT_LIMIT`]).
    pub count_limit: u64,
}

impl ConsoleState {
    /// Builds it over the domain services' store and clock.
    pub fn new(svc: &consentry_domain::Consentry, public_url: &str) -> Self {
        Self {
            accounts: svc.accounts(SessionPolicy::default(), HashCost::Recommended),
            secure_cookies: public_url.starts_with("https://"),
            throttle: svc.sign_in_throttle(),
            microsoft: None,
            count_limit: COUNT_LIMIT,
        }
    }

    /// Counts profiles up to `limit` per status instead of [`COUNT_LIMIT`].
    pub fn with_count_limit(mut self, limit: u64) -> Self {
        self.count_limit = limit;
        self
    }

    /// Adds "Sign in with Microsoft" over `platform` (offered while Consentry's own app is
    /// configured) with `rules`.
    pub fn with_microsoft_sign_in(
        mut self,
        svc: &consentry_domain::Consentry,
        platform: std::sync::Arc<dyn consentry_domain::IdentityPlatform>,
        rules: consentry_domain::SignInRules,
    ) -> Self {
        self.microsoft = Some(consentry_domain::MicrosoftSignIn::new(
            svc,
            platform,
            self.accounts.clone(),
            rules,
        ));
        self
    }
}

/// The console's routes, to be nested under `/console`.
pub fn routes() -> Router<AppState> {
    Router::new()
        .route("/", get(pages::tenants))
        .route("/login", get(auth::login_page).post(auth::login))
        .route(
            "/invitations/{token}",
            get(invitations::show).post(invitations::accept),
        )
        .route("/logout", post(auth::logout))
        .route("/sign-in/microsoft", get(microsoft::start))
        .route("/sign-in/microsoft/callback", get(microsoft::callback))
        .route("/profiles", get(pages::profiles))
        .route("/profiles/{id}", get(pages::profile))
        .route("/profiles/{id}/check", post(wizard::check_now))
        .route("/profiles/{id}/cancel", post(wizard::cancel))
        .route(
            "/profiles/{id}/reauthorize",
            get(wizard::form)
                .post(wizard::submit)
                .layer(DefaultBodyLimit::max(MAX_WIZARD_BYTES)),
        )
        .route("/tenants/connect", post(connect::start))
        .route("/tenants/connect/callback", get(connect::callback))
        .route("/tenants/{tenant}/profiles", post(connect::create_profiles))
        .route("/tenants/{tenant}/scan-profiles", get(scan::list))
        .route("/tenants/{tenant}/email", get(email::show))
        .route("/tenants/{tenant}/contacts", post(email::save_contacts))
        .route("/scan-profiles/{id}", get(scan::detail))
        .route(
            "/scan-profiles/{id}/edit",
            get(scan::edit_form).post(scan::edit_submit),
        )
        .route(
            "/tokens",
            get(personal_tokens::page).post(personal_tokens::create),
        )
        .route("/tokens/{id}/revoke", post(personal_tokens::revoke))
        .route("/rollouts", get(rollouts::list))
        .route("/rollouts/{version}", get(rollouts::detail))
        .route("/rollouts/{version}/export", get(rollouts::export))
        .route("/campaigns", get(campaigns::list).post(campaigns::start))
        .route("/campaigns/{id}", get(campaigns::detail))
        .route("/campaigns/{id}/cancel", post(campaigns::cancel))
        .route(
            "/campaigns/{id}/tenants/{tenant}/resend",
            post(campaigns::resend),
        )
        .route(
            "/tenants/{tenant}/reauthorize-all",
            post(campaigns::reauthorize_all),
        )
        .route("/audit", get(audit::index))
        .route("/vendor-apps", get(vendor_apps::page))
        .route("/organizations/{id}/audit", get(audit::page))
        .route("/organizations/{id}/audit/export", get(audit::export_log))
        .route("/static/{file}", get(assets::asset))
        .fallback(|| async { ConsoleError::PageNotFound })
    // The security headers are layered on in `router.rs`, which holds the state they need.
}

/// The headers every console response carries, with `csp` (the configured
/// [`crate::security::page_csp`]). Consent pages and the callback's result pages carry them too.
pub fn apply_security_headers(h: &mut HeaderMap, csp: HeaderValue) {
    // Styles and scripts are files of the console ('self'); no inline code. Forms post to the console,
    // whose re-authorization answer redirects to Microsoft's sign-in, which form-action must allow.
    h.insert(header::CONTENT_SECURITY_POLICY, csp);
    crate::security::apply_common(h);
    if !h.contains_key(header::CACHE_CONTROL) {
        crate::security::no_store(h);
    }
}

/// Middleware: [`apply_security_headers`] on every response, with the configured page CSP.
pub async fn security_headers(State(st): State<AppState>, req: Request, next: Next) -> Response {
    let mut res = next.run(req).await;
    apply_security_headers(res.headers_mut(), st.security.page_csp.clone());
    res
}

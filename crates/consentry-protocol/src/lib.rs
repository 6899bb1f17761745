//! Pure parsers of what reaches Consentry from outside, kept apart from the crates that serve or send
//! HTTP so they can be fuzzed cheaply.
//!
//! - [`callback`]: the query of Microsoft's redirect to `GET /oauth/callback`
//!   ([`callback::parse_callback_query`]), which `consentry-server` re-exports and calls.
//! - [`entra_error`]: Microsoft's error answers (token-endpoint and redirect errors with their
//!   AADSTS codes, suberrors and trace IDs, Graph error bodies, `Retry-After`) parsed into
//!   [`entra_error::EntraError`] with the [`entra_error::Cause`] each means for an app profile;
//!   `consentry-entra` re-exports them and builds them from its HTTP answers.
//! - [`diagnosis`]: those errors as the domain's `PlatformError`.
//! - [`forwarded`]: the client's address behind trusted proxies, from `Forwarded` /
//!   `X-Forwarded-For` ([`forwarded::client_address`]), which `consentry-server` calls for every request.
//!
//! Why a crate of its own: the fuzz package (`fuzz/`, its own workspace, built in release mode with
//! coverage instrumentation) depends on what it fuzzes. Depending on `consentry-server` for one
//! function pulled axum, sqlx (with SQLite's C library), askama, the store and the monitor into every
//! fuzz build, and the AADSTS parser inside `consentry-entra` pulled reqwest, hyper, rustls and tokio;
//! this crate depends only on `consentry-domain` (for the parsed types), `consentry-certs` (for the
//! assertion error an `EntraError` carries), `url`, `serde_json`, `httpdate` and `thiserror`. A parser that belongs here is a pure function over bytes or text from outside, with
//! no I/O, no clock and no state; the crates that use it re-export it, so callers keep their paths.

pub mod callback;
pub mod diagnosis;
pub mod entra_error;
pub mod forwarded;

use entra_error::{EntraError, GraphError, IdentityError, parse_redirect_error};

/// The AADSTS fuzz target's body (`fuzz/fuzz_targets/aadsts.rs`), also run over the committed
/// corpus by `consentry-entra`'s tests: reads `bytes` as a token-endpoint error body, a Graph error
/// body and a redirect's error query, and classifies what parses. Never panics on any input.
#[doc(hidden)]
pub fn fuzz_errors(bytes: &[u8]) -> Vec<String> {
    let mut out = Vec::new();
    if let Some(e) = IdentityError::from_json(Some(400), bytes) {
        out.push(format!(
            "{:?} {:?} {}",
            e.cause(),
            e.primary_code(),
            e.is_transient()
        ));
        out.push(EntraError::from(e).to_string());
    }
    if let Some(e) = GraphError::from_json(403, bytes) {
        out.push(format!("{:?} {:?}", e.cause(), e.kind));
    }
    if let Some(e) = parse_redirect_error(&String::from_utf8_lossy(bytes)) {
        out.push(format!("{:?} {} {}", e.cause(), e.is_cancel(), e.summary()));
        out.push(diagnosis::platform_error(&EntraError::from(e)).message);
    }
    out
}

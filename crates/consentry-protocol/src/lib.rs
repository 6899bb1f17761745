//! Pure parsers of what reaches Consentry from outside, kept apart from the crates that serve or send
//! HTTP so they can be fuzzed cheaply.
//!
//! - [`callback`]: the query of Microsoft's redirect to `GET /oauth/callback`
//!   ([`callback::parse_callback_query`]), which `consentry-server` re-exports and calls.
//!
//! Why a crate of its own: the fuzz package (`fuzz/`, its own workspace, built in release mode with
//! coverage instrumentation) depends on what it fuzzes. Depending on `consentry-server` for one
//! function pulled axum, sqlx (with SQLite's C library), askama, the store and the monitor into every
//! fuzz build; this crate depends only on `consentry-domain` (for the parsed types), `url` and
//! `thiserror`. A parser that belongs here is a pure function over bytes or text from outside, with
//! no I/O, no clock and no state; the crates that use it re-export it, so callers keep their paths.

pub mod callback;

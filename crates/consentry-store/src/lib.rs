//! Persistence for Consentry: the SQL implementation of the domain's [`Store`] port, the sealing of
//! secrets at rest, and the behaviour story every store implementation must pass.
//!
//! - [`SqlStore`] keeps organizations, tenants, app profiles, their history, their secrets and their
//!   pending re-authorizations in SQLite or PostgreSQL (each with its own migrations,
//!   `migrations/sqlite` and `migrations/postgres`) through sqlx's `Any` driver, so one set of queries
//!   serves both. Migrations only move forward and are applied when a store is opened.
//! - [`Sealer`] seals every secret (refresh tokens, private keys, a pending re-authorization's PKCE
//!   verifier and custom app credentials) with AES-256-GCM under a master key, bound to its row; the
//!   database never holds a secret in plaintext.
//! - The audit log (`audit_log`, migration 0005) is append-only and hash-chained; appends are serialized
//!   by the single `audit_head` row they update first, so replicas never fork the chain.
//! - Master key rotation: [`rotate_key_files`] keeps the old key as `<key file>.old`,
//!   [`SqlStore::resealer`] re-seals every sealed value in batches while the store is in use, and
//!   [`SqlStore::retire_old_key_file`] removes the old key once nothing is sealed under it.
//! - `story` (behind the `story` feature: test code, not in a normal build) exercises every
//!   [`Store`] method; each implementation's tests run it.
//! - [`copy`] moves a whole installation between databases (SQLite ⇄ PostgreSQL), secrets still sealed.
//!
//! ```no_run
//! # async fn example() -> Result<(), Box<dyn std::error::Error>> {
//! use consentry_store::{Sealer, SqlStore};
//! let sealer = Sealer::load_or_create_key_file("/var/lib/consentry/master.key")?;
//! let store = SqlStore::open("sqlite:///var/lib/consentry/consentry.db", sealer).await?;
//! // or, on PostgreSQL (the database must exist; TLS as `sslmode` asks):
//! // SqlStore::open("postgres://consentry@db.internal/consentry?sslmode=verify-full", sealer).await?;
//! # let _ = store; Ok(()) }
//! ```
//!
//! # Storage conventions (shared by every dialect)
//!
//! - GUIDs as canonical lower-case text; times as BIGINT Unix **nanoseconds** (UTC), so that every
//!   `OffsetDateTime` reads back equal to what was written (microseconds would truncate the clock's
//!   nanoseconds); structured values (modules, reasons, permissions, actors) as JSON text; a reason's
//!   stable code also in `reason_code` for filtering.
//! - Keyset pagination orders profiles by `(created_at, id)`; the cursor is opaque base64url.
//! - Errors: a unique-constraint violation is `Conflict`; a missing referenced row (organization of a
//!   new tenant, tenant of a new profile, profile of a secret or of a pending re-authorization) is
//!   `NotFound`; a secret that does not open is `Sealing`; everything else is `Backend` (its text is for
//!   logs, never for clients).
//! - Pending re-authorizations (`pending_authorizations`) are keyed by the hex SHA-256 of the OAuth
//!   state (anything else is refused, so a state itself is never stored), one per profile (a new one
//!   replaces the old in one upsert), and go with their profile. Their secrets blob is sealed with the
//!   state hash as owner and `pending` as kind. Taking one is a single `DELETE … RETURNING`, so of any
//!   number of concurrent takes, on any replica, exactly one gets it; a take whose secrets do not open
//!   (a replica without the right master key) is rolled back and leaves the record. Expiry is not
//!   checked here: the caller compares `expires_at` with its clock.
//!
//! [`Store`]: consentry_domain::Store

mod codec;
pub mod copy;
pub mod sealer;
mod sql;
#[cfg(feature = "story")]
pub mod story;

pub use sealer::{
    KeyFileRotation, Sealer, SealerError, key_file_id, old_key_path, rotate_key_files,
};
pub use sql::{Dialect, KeyCensus, NewProfileRows, Resealer, SchemaVersion, SealSample, SqlStore};

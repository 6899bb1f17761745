//! Persistence for Consentry: the SQL implementation of the domain's [`Store`] port, the sealing of
//! secrets at rest, and the behaviour story every store implementation must pass.
//!
//! - [`SqlStore`] keeps organizations, tenants, app profiles, their history and their secrets in SQLite
//!   or PostgreSQL (each with its own migrations, `migrations/sqlite` and `migrations/postgres`) through
//!   sqlx's `Any` driver, so one set of queries serves both. Migrations only move forward and are applied
//!   when a store is opened.
//! - [`Sealer`] seals every secret (refresh tokens, private keys) with AES-256-GCM under a master key,
//!   bound to its row; the database never holds a secret in plaintext.
//! - [`story`] exercises every [`Store`] method; each implementation's tests run it.
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
//!   new tenant, tenant of a new profile, profile of a secret) is `NotFound`; a secret that does not
//!   open is `Sealing`; everything else is `Backend` (its text is for logs, never for clients).
//!
//! [`Store`]: consentry_domain::Store

mod codec;
pub mod sealer;
mod sql;
pub mod story;

pub use sealer::{Sealer, SealerError};
pub use sql::{Dialect, SchemaVersion, SqlStore};

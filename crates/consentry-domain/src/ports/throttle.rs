//! The console's sign-in throttle as stored (shared by every replica), and its port.

use async_trait::async_trait;
use time::OffsetDateTime;

use crate::error::StoreError;

/// One throttled key's failed sign-ins.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ThrottleEntry {
    /// Failures counted since the key was last forgotten.
    pub failures: u32,
    /// The last one.
    pub last_failure: OffsetDateTime,
    /// Until when the key is locked out, if it was.
    pub locked_until: Option<OffsetDateTime>,
}

/// Storage of the sign-in throttle. Keys are opaque text (the domain's `throttle` module names them).
#[async_trait]
pub trait ThrottleStore {
    /// The latest lockout end among `keys` that is after `now`, if any.
    async fn throttle_locked_until(
        &self,
        keys: &[String],
        now: OffsetDateTime,
    ) -> Result<Option<OffsetDateTime>, StoreError>;

    /// Counts one failure of `key` at `now` in one atomic statement (replicas counting at once each get
    /// their own count): the count starts again at 1 when the key's last failure is before
    /// `forget_before`. Returns the count after this failure.
    async fn count_throttle_failure(
        &self,
        key: &str,
        now: OffsetDateTime,
        forget_before: OffsetDateTime,
    ) -> Result<u32, StoreError>;

    /// Locks `key` out until `until`, unless it is already locked out longer.
    async fn lock_throttle_key(&self, key: &str, until: OffsetDateTime) -> Result<(), StoreError>;

    /// Forgets the failures of `keys`.
    async fn clear_throttle_keys(&self, keys: &[String]) -> Result<(), StoreError>;

    /// Removes the entries whose last failure is before `before` and whose lockout (if any) ended
    /// before it; returns how many.
    async fn prune_throttle(&self, before: OffsetDateTime) -> Result<u64, StoreError>;

    /// One key's entry (for tests and diagnostics).
    async fn throttle_entry(&self, key: &str) -> Result<Option<ThrottleEntry>, StoreError>;

    /// Remembers that the browser holding the device cookie whose SHA-256 is `token_hash` signed in to
    /// `username` at `now` (or refreshes when it last did).
    async fn remember_sign_in_device(
        &self,
        token_hash: &str,
        username: &str,
        now: OffsetDateTime,
    ) -> Result<(), StoreError>;

    /// Whether that browser signed in to `username` at or after `since`.
    async fn is_known_sign_in_device(
        &self,
        token_hash: &str,
        username: &str,
        since: OffsetDateTime,
    ) -> Result<bool, StoreError>;

    /// Forgets the devices not used since `before`; returns how many.
    async fn prune_sign_in_devices(&self, before: OffsetDateTime) -> Result<u64, StoreError>;
}

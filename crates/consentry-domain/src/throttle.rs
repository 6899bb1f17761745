//! The console's sign-in throttle, shared by every replica through the store ([`ThrottleStore`]).
//!
//! Each failed sign-in counts against keys: the account name typed and the client address (for a
//! Microsoft sign-in refused by Consentry, the client address only). [`FREE_FAILURES`] failures of a
//! key are free; each further one locks the key out for a window that doubles from [`BASE_LOCKOUT`]
//! up to [`MAX_LOCKOUT`]; failures older than [`FORGET_AFTER`] are forgotten. A locked-out attempt is
//! refused without checking the password.
//!
//! **A stranger cannot lock a known account out.** A browser that signed in to an account receives a
//! device cookie (a random token; the store keeps its SHA-256 with the account's name, for
//! [`DEVICE_LIFETIME`] after its last sign-in). An attempt from a browser known for the account counts
//! against that device's own key only, not the account's nor the client address's: someone who keeps
//! failing as `alice` from elsewhere locks out `alice` for unknown browsers, while Alice's own browser
//! still signs in (and a stolen device cookie buys its holder no more than five free guesses and the
//! same doubling lockout). This is OWASP's "device cookies" defence.
//!
//! Counts are single statements on the shared store, so N replicas give an attacker no more attempts
//! than one.

use std::net::IpAddr;
use std::sync::Arc;

use sha2::{Digest, Sha256};
use time::Duration;

use crate::error::DomainError;
use crate::ports::{Clock, Store};

/// Failures allowed before the first lockout.
pub const FREE_FAILURES: u32 = 5;
/// The first lockout window.
pub const BASE_LOCKOUT: Duration = Duration::seconds(30);
/// The longest lockout window.
pub const MAX_LOCKOUT: Duration = Duration::minutes(15);
/// Failures older than this are forgotten.
pub const FORGET_AFTER: Duration = Duration::hours(1);
/// How long a browser stays known for an account after it last signed in to it.
pub const DEVICE_LIFETIME: Duration = Duration::days(90);
/// The longest account name that is kept as a key (longer names are cut).
const MAX_KEY_NAME: usize = 256;

/// Who is trying to sign in.
#[derive(Debug, Clone, Copy)]
pub struct LoginAttempt<'a> {
    /// The account name typed (`None` for a sign-in that names no local account, e.g. one through
    /// Microsoft that Consentry refused).
    pub account: Option<&'a str>,
    /// The client's address (behind trusted proxies, the address they forwarded).
    pub client: IpAddr,
    /// The browser's device cookie, if it sent one.
    pub device: Option<&'a str>,
}

/// A device cookie to give the browser after a successful sign-in.
pub struct DeviceToken(String);

impl DeviceToken {
    /// The cookie's value.
    pub fn value(&self) -> &str {
        &self.0
    }
}

impl std::fmt::Debug for DeviceToken {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("DeviceToken([redacted])")
    }
}

/// The throttle service (cheap to clone).
#[derive(Clone)]
pub struct SignInThrottle {
    store: Arc<dyn Store>,
    clock: Arc<dyn Clock>,
}

impl std::fmt::Debug for SignInThrottle {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SignInThrottle").finish_non_exhaustive()
    }
}

fn account_name(name: &str) -> String {
    name.trim()
        .to_lowercase()
        .chars()
        .take(MAX_KEY_NAME)
        .collect()
}

fn device_hash(token: &str) -> String {
    hex::encode(Sha256::digest(token.as_bytes()))
}

/// The lockout a key's `failures`-th failure starts, if any.
pub fn lockout_after(failures: u32) -> Option<Duration> {
    if failures < FREE_FAILURES {
        return None;
    }
    let doublings = (failures - FREE_FAILURES).min(16);
    Some((BASE_LOCKOUT * 2i32.pow(doublings)).min(MAX_LOCKOUT))
}

impl SignInThrottle {
    /// The throttle over `store`, on `clock`.
    pub fn new(store: Arc<dyn Store>, clock: Arc<dyn Clock>) -> Self {
        Self { store, clock }
    }

    /// The keys an attempt counts against: the known device's alone, or the account's and the
    /// client's.
    async fn keys(&self, attempt: &LoginAttempt<'_>) -> Result<Vec<String>, DomainError> {
        if let (Some(account), Some(device)) = (attempt.account, attempt.device) {
            let hash = device_hash(device);
            let since = self.clock.now() - DEVICE_LIFETIME;
            if self
                .store
                .is_known_sign_in_device(&hash, &account_name(account), since)
                .await?
            {
                return Ok(vec![format!("device:{hash}")]);
            }
        }
        let mut keys = Vec::with_capacity(2);
        if let Some(account) = attempt.account {
            keys.push(format!("account:{}", account_name(account)));
        }
        keys.push(format!("client:{}", attempt.client));
        Ok(keys)
    }

    /// `Ok(Err(wait))` when the attempt is locked out now, for `wait`.
    pub async fn check(
        &self,
        attempt: &LoginAttempt<'_>,
    ) -> Result<Result<(), Duration>, DomainError> {
        let now = self.clock.now();
        let keys = self.keys(attempt).await?;
        Ok(match self.store.throttle_locked_until(&keys, now).await? {
            Some(until) if until > now => Err(until - now),
            _ => Ok(()),
        })
    }

    /// Records a failed attempt; returns the longest lockout it starts, if any.
    pub async fn failure(
        &self,
        attempt: &LoginAttempt<'_>,
    ) -> Result<Option<Duration>, DomainError> {
        let now = self.clock.now();
        let forget_before = now - FORGET_AFTER;
        // Entries nobody touched for an hour are gone (a failure is rare: this is the one place that
        // writes, so the table stays as small as the last hour's failures).
        self.store.prune_throttle(forget_before).await?;
        let mut longest = None;
        for key in self.keys(attempt).await? {
            let failures = self
                .store
                .count_throttle_failure(&key, now, forget_before)
                .await?;
            if let Some(window) = lockout_after(failures) {
                self.store.lock_throttle_key(&key, now + window).await?;
                longest = longest.max(Some(window));
            }
        }
        Ok(longest)
    }

    /// Forgets the attempt's failures (a successful sign-in that sets no device cookie, e.g. through
    /// Microsoft).
    pub async fn forget(&self, attempt: &LoginAttempt<'_>) -> Result<(), DomainError> {
        let keys = self.keys(attempt).await?;
        Ok(self.store.clear_throttle_keys(&keys).await?)
    }

    /// Records a successful sign-in to `account`: the attempt's keys are forgotten and the browser
    /// becomes (or stays) known for the account. Returns the device cookie to set: the browser's own
    /// when it sent one, a new one otherwise.
    pub async fn success(
        &self,
        attempt: &LoginAttempt<'_>,
        account: &str,
    ) -> Result<DeviceToken, DomainError> {
        let keys = self.keys(attempt).await?;
        self.store.clear_throttle_keys(&keys).await?;
        let token = match attempt.device {
            Some(d) if is_device_token(d) => d.to_owned(),
            _ => new_device_token(),
        };
        let now = self.clock.now();
        self.store
            .remember_sign_in_device(&device_hash(&token), &account_name(account), now)
            .await?;
        self.store
            .prune_sign_in_devices(now - DEVICE_LIFETIME)
            .await?;
        Ok(DeviceToken(token))
    }
}

/// A device token is 43 characters of URL-safe base64 (256 random bits); anything else a browser
/// sends is replaced.
fn is_device_token(s: &str) -> bool {
    s.len() == 43
        && s.bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
}

fn new_device_token() -> String {
    use base64::Engine as _;
    let mut bytes = [0u8; 32];
    rand::fill(&mut bytes[..]);
    base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(bytes)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn five_failures_are_free_then_the_window_doubles_up_to_fifteen_minutes() {
        for n in 0..FREE_FAILURES {
            assert_eq!(lockout_after(n), None, "{n}");
        }
        assert_eq!(lockout_after(5), Some(BASE_LOCKOUT));
        assert_eq!(lockout_after(6), Some(BASE_LOCKOUT * 2));
        assert_eq!(lockout_after(9), Some(BASE_LOCKOUT * 16));
        assert_eq!(lockout_after(10), Some(MAX_LOCKOUT));
        assert_eq!(lockout_after(u32::MAX), Some(MAX_LOCKOUT));
    }

    #[test]
    fn device_tokens_are_random_and_shaped_and_redacted() {
        let a = new_device_token();
        let b = new_device_token();
        assert_ne!(a, b);
        assert!(is_device_token(&a), "{a}");
        assert!(!is_device_token("short"));
        assert!(!is_device_token(&format!("{}=", &a[..42])));
        assert_eq!(
            format!("{:?}", DeviceToken(a.clone())),
            "DeviceToken([redacted])"
        );
    }
}

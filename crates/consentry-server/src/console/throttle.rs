//! Sign-in throttling: per account name and per client IP, [`FREE_FAILURES`] failed sign-ins are
//! free; each further failure locks that key out for a window that doubles from
//! [`BASE_LOCKOUT`] up to [`MAX_LOCKOUT`]. A locked-out attempt is refused without checking the
//! password, with the same message as a wrong password and a `Retry-After`.
//!
//! The state is in memory, per process: with several replicas an attacker gets at most the
//! replicas' count times the attempts, each costing an argon2id verification. Sharing it through
//! the database is not built.

use std::collections::HashMap;
use std::net::IpAddr;
use std::sync::{Arc, Mutex};

use consentry_domain::Clock;
use time::{Duration, OffsetDateTime};

/// Failures allowed before the first lockout.
pub const FREE_FAILURES: u32 = 5;
/// The first lockout window.
pub const BASE_LOCKOUT: Duration = Duration::seconds(30);
/// The longest lockout window.
pub const MAX_LOCKOUT: Duration = Duration::minutes(15);
/// Failures older than this are forgotten.
pub const FORGET_AFTER: Duration = Duration::hours(1);
const MAX_ENTRIES: usize = 100_000;

#[derive(Debug, Clone, PartialEq, Eq, Hash)]
enum Key {
    Account(String),
    Ip(IpAddr),
}

#[derive(Debug, Clone, Copy)]
struct Entry {
    failures: u32,
    last_failure: OffsetDateTime,
    locked_until: Option<OffsetDateTime>,
}

/// The throttle (cheap to clone; clones share the state).
#[derive(Debug, Clone)]
pub struct SignInThrottle {
    entries: Arc<Mutex<HashMap<Key, Entry>>>,
    clock: Arc<dyn Clock>,
}

impl SignInThrottle {
    /// An empty throttle on `clock`.
    pub fn new(clock: Arc<dyn Clock>) -> Self {
        Self {
            entries: Arc::default(),
            clock,
        }
    }

    fn keys(account: &str, ip: IpAddr) -> [Key; 2] {
        [
            Key::Account(account.trim().to_lowercase().chars().take(256).collect()),
            Key::Ip(ip),
        ]
    }

    /// `Err(wait)` when the account or the IP is locked out now.
    pub fn check(&self, account: &str, ip: IpAddr) -> Result<(), Duration> {
        let now = self.clock.now();
        let entries = self.entries.lock().unwrap_or_else(|e| e.into_inner());
        let wait = Self::keys(account, ip)
            .iter()
            .filter_map(|k| entries.get(k)?.locked_until)
            .filter(|until| *until > now)
            .map(|until| until - now)
            .max();
        match wait {
            Some(w) => Err(w),
            None => Ok(()),
        }
    }

    /// Records a failed sign-in; returns the lockout it starts, if any.
    pub fn failure(&self, account: &str, ip: IpAddr) -> Option<Duration> {
        let now = self.clock.now();
        let mut entries = self.entries.lock().unwrap_or_else(|e| e.into_inner());
        if entries.len() >= MAX_ENTRIES {
            entries.retain(|_, e| now - e.last_failure < FORGET_AFTER);
        }
        let mut longest = None;
        for key in Self::keys(account, ip) {
            let e = entries.entry(key).or_insert(Entry {
                failures: 0,
                last_failure: now,
                locked_until: None,
            });
            if now - e.last_failure >= FORGET_AFTER {
                e.failures = 0;
            }
            e.failures = e.failures.saturating_add(1);
            e.last_failure = now;
            if e.failures >= FREE_FAILURES {
                let doublings = (e.failures - FREE_FAILURES).min(16);
                let window = (BASE_LOCKOUT * 2i32.pow(doublings)).min(MAX_LOCKOUT);
                e.locked_until = Some(now + window);
                longest = longest.max(Some(window));
            }
        }
        longest
    }

    /// Records a successful sign-in: the account's and the IP's failures are forgotten.
    pub fn success(&self, account: &str, ip: IpAddr) {
        let mut entries = self.entries.lock().unwrap_or_else(|e| e.into_inner());
        for key in Self::keys(account, ip) {
            entries.remove(&key);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use consentry_domain::OffsetClock;

    #[test]
    fn five_failures_then_a_doubling_lockout_that_ends() {
        let clock = Arc::new(OffsetClock::default());
        let t = SignInThrottle::new(clock.clone());
        let ip: IpAddr = "203.0.113.7".parse().unwrap();
        for _ in 0..4 {
            assert_eq!(t.failure("alice", ip), None);
            assert!(t.check("alice", ip).is_ok());
        }
        assert_eq!(t.failure("Alice", ip), Some(BASE_LOCKOUT));
        assert!(t.check("alice", ip).is_err());
        // The IP is locked for other accounts too; the account from other IPs.
        assert!(t.check("bob", ip).is_err());
        assert!(t.check("alice", "198.51.100.1".parse().unwrap()).is_err());
        clock.advance(BASE_LOCKOUT + Duration::seconds(1));
        assert!(t.check("alice", ip).is_ok());
        assert_eq!(t.failure("alice", ip), Some(BASE_LOCKOUT * 2));
        for _ in 0..10 {
            t.failure("alice", ip);
        }
        let wait = t.check("alice", ip).unwrap_err();
        assert!(wait <= MAX_LOCKOUT && wait > MAX_LOCKOUT - Duration::seconds(5));
        t.success("alice", ip);
        assert!(t.check("alice", ip).is_ok());
    }
}

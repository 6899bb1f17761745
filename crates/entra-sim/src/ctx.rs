//! The shared context of every handler: the live state, the signing key and the base URL.

use std::net::{IpAddr, SocketAddr};
use std::sync::{Arc, Mutex, MutexGuard};

use axum::http::HeaderMap;

use crate::crypto::SigningKey;
use crate::state::State;

/// Shared context of all handlers.
#[derive(Clone, Debug)]
pub(crate) struct Ctx {
    pub state: Arc<Mutex<State>>,
    pub key: Arc<SigningKey>,
    pub base: Arc<str>,
    pub trust_forwarded_for: bool,
}

impl Ctx {
    /// Locks the state (a poisoned lock is recovered: the state stays usable after a panic).
    pub fn lock(&self) -> MutexGuard<'_, State> {
        self.state
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    /// The client IP: the TCP peer, or the first `X-Forwarded-For` entry when trusted.
    pub fn client_ip(&self, peer: SocketAddr, headers: &HeaderMap) -> IpAddr {
        if self.trust_forwarded_for
            && let Some(ip) = headers
                .get("x-forwarded-for")
                .and_then(|v| v.to_str().ok())
                .and_then(|v| v.split(',').next())
                .and_then(|v| v.trim().parse().ok())
        {
            return ip;
        }
        peer.ip()
    }
}

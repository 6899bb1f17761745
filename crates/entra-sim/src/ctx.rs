//! The shared context of every handler: the live state, the signing key and the base URL.

use std::net::{IpAddr, SocketAddr};
use std::sync::{Arc, Mutex, MutexGuard};

use axum::http::HeaderMap;

use crate::aad::AadError;
use crate::crypto::SigningKey;
use crate::state::State;
use crate::wellknown::{CLOUDS, GLOBAL_CLOUD, SimCloud};

/// Shared context of all handlers.
#[derive(Clone, Debug)]
pub(crate) struct Ctx {
    pub state: Arc<Mutex<State>>,
    pub key: Arc<SigningKey>,
    /// The base URL of the cloud these handlers serve: the simulator's root for the global cloud,
    /// `{root}/clouds/<key>` for the others.
    pub base: Arc<str>,
    pub trust_forwarded_for: bool,
    /// The cloud these handlers serve.
    pub cloud: &'static SimCloud,
    /// The simulator's root URL (the global cloud's base).
    pub root: Arc<str>,
}

impl Ctx {
    /// The same handlers for another cloud: its base is `{root}/clouds/<key>`.
    pub fn for_cloud(&self, cloud: &'static SimCloud) -> Ctx {
        Ctx {
            base: Self::cloud_base(&self.root, cloud.key).into(),
            cloud,
            ..self.clone()
        }
    }

    /// The base URL of a cloud's endpoints.
    pub fn cloud_base(root: &str, key: &str) -> String {
        if key == GLOBAL_CLOUD {
            root.to_owned()
        } else {
            format!("{root}/clouds/{key}")
        }
    }

    /// The cloud a tenant lives in (an unknown key, refused when the scenario loads, is global).
    pub fn cloud_of(tenant: &crate::model::Tenant) -> &'static SimCloud {
        crate::wellknown::sim_cloud(&tenant.cloud).unwrap_or(&CLOUDS[0])
    }

    /// Finds the tenant a request's path names, in the cloud these handlers serve. A tenant of
    /// another cloud is refused: at the global authority with the cloud's refusal (UNVERIFIED,
    /// [`SimCloud::global_refusal`]), at a national authority as unknown (AADSTS90002: a national
    /// cloud's directory does not hold other clouds' tenants; UNVERIFIED).
    pub fn tenant_here(&self, st: &State, segment: &str) -> Result<usize, AadError> {
        let not_found = || crate::aad::tenant_not_found_with(&st.settings, segment);
        let t = st.tenant_idx(segment).ok_or_else(not_found)?;
        let home = Self::cloud_of(&st.tenants[t]);
        if home.key == self.cloud.key {
            return Ok(t);
        }
        match (self.cloud.key == GLOBAL_CLOUD, home.global_refusal) {
            (true, Some((code, message))) => {
                Err(AadError::new(code, message, &st.settings).with_error("invalid_request"))
            }
            _ => Err(not_found()),
        }
    }

    /// A `scope` parameter as this cloud's directory reads it: Microsoft Graph is named by the
    /// cloud's own host (`https://graph.microsoft.us/.default`), which the simulator's one Graph
    /// resource (`https://graph.microsoft.com`) stands for. The global cloud changes nothing, so a
    /// national Graph scope sent there is unknown, as at Microsoft.
    pub fn scope_here(&self, scope: &str) -> String {
        if self.cloud.key == GLOBAL_CLOUD {
            return scope.to_owned();
        }
        let own = format!("https://{}/", self.cloud.msgraph_host);
        let global = format!("{}/", crate::wellknown::GRAPH_RESOURCE);
        let starts = |s: &str, p: &str| s.get(..p.len()).is_some_and(|x| x.eq_ignore_ascii_case(p));
        scope
            .split(' ')
            .map(|s| {
                if starts(s, &own) {
                    format!("{global}{}", &s[own.len()..])
                } else if starts(s, &global) {
                    // The global cloud's Graph is no resource of a national cloud's directory.
                    format!(
                        "https://{}.global.invalid/{}",
                        self.cloud.key,
                        &s[global.len()..]
                    )
                } else {
                    s.to_owned()
                }
            })
            .collect::<Vec<_>>()
            .join(" ")
    }

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

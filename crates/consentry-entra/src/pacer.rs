//! Pacing after throttling: Consentry waits where Microsoft told it to instead of collecting more
//! 429s.
//!
//! Microsoft throttles per app and tenant (the token endpoint; Graph's identity-and-access limits,
//! entra-facts §6) and says for how long with `Retry-After`. A [`Pacer`] keeps, per key — service
//! (identity platform or Graph), host, tenant and app (client ID) — what the 429s taught it:
//!
//! - **Pause.** After a 429 with `Retry-After`, every later request of that key waits until the
//!   `Retry-After` has passed (capped by [`Pacing::max_pause`]), instead of firing and being refused
//!   again (requests made while throttled still count against the limit, §6.2). Other keys — other
//!   tenants, other apps in the same tenant — are not slowed.
//! - **Rate (AIMD).** From the second throttling episode of a key on, its requests are spaced at a
//!   learned rate: on a new episode, 90 % of the rate Microsoft accepted since the previous one
//!   (answers ÷ time, the pause included), and no more than 90 % of the rate that was still too fast;
//!   while requests queue for the rate it grows by 1 % of that cut per second, until the next 429.
//!   A 429 of a request sent before the last cut belongs to the same episode (it was in flight) and
//!   only extends the pause.
//!
//! A 429 without `Retry-After` (Graph may omit it, §6.2) is left to the retry policy's backoff. A key
//! not throttled for [`FORGET_AFTER`] is forgotten. While no key is throttled a request costs one
//! atomic load here: keys are derived (the tenant from the token endpoint's path, the app from its
//! form; both from a Graph token's `tid` and `appid` claims, read without verification) only for
//! a 429 or while some key is remembered.

use std::collections::HashMap;
use std::sync::Mutex;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use base64::Engine as _;
use tokio::time::Instant;

/// How [`EntraClient`](crate::EntraClient) paces itself after throttling
/// ([`EntraConfig::pacing`](crate::EntraConfig::pacing); off unless set).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Pacing {
    /// The longest pause a `Retry-After` imposes on a key (a longer one is cut to this, as the retry
    /// policy's `max_retry_after` cuts a retry's wait).
    pub max_pause: Duration,
}

impl Default for Pacing {
    fn default() -> Self {
        Self {
            max_pause: crate::RetryPolicy::default().max_retry_after,
        }
    }
}

/// A key not throttled for this long is forgotten (its learned rate too).
pub const FORGET_AFTER: Duration = Duration::from_secs(600);
/// A new episode's rate: this share of the rate accepted since the previous one.
const CUT: f64 = 0.9;
/// Growth per second while requests queue for the rate, as a share of the rate at the last cut.
const GROWTH: f64 = 0.01;
/// The slowest learned rate (requests per second).
const MIN_RATE: f64 = 0.2;

/// Which service a request goes to (the limits of each are separate).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub(crate) enum Side {
    Identity,
    Graph,
}

/// What a pace key is: the service, host (with port), tenant and app.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub(crate) struct PaceKey {
    side: Side,
    host: String,
    tenant: String,
    app: String,
}

/// What a request's key is derived from, taken before it is sent (cheap clones).
pub(crate) struct PaceSource {
    side: Side,
    url: url::Url,
    /// Graph: the `Authorization` header.
    auth: Option<reqwest::header::HeaderValue>,
    /// Identity platform: the form body.
    form: Option<Vec<u8>>,
}

impl PaceSource {
    /// The source of a built request (`None` for a service without limits here: Viva Engage).
    pub(crate) fn of(side: Option<Side>, request: &reqwest::Request) -> Option<Self> {
        let side = side?;
        Some(match side {
            Side::Graph => Self {
                side,
                url: request.url().clone(),
                auth: request
                    .headers()
                    .get(reqwest::header::AUTHORIZATION)
                    .cloned(),
                form: None,
            },
            Side::Identity => Self {
                side,
                url: request.url().clone(),
                auth: None,
                form: request
                    .body()
                    .and_then(reqwest::Body::as_bytes)
                    .map(<[u8]>::to_vec),
            },
        })
    }

    /// The key; `None` when the request names no tenant and app (discovery, JWKS, a malformed
    /// token).
    pub(crate) fn key(&self) -> Option<PaceKey> {
        let host = format!(
            "{}:{}",
            self.url.host_str()?,
            self.url.port_or_known_default().unwrap_or(443)
        );
        let (tenant, app) = match self.side {
            Side::Identity => {
                // `…/{tenant}/oauth2/v2.0/token` (a prefix may come before the tenant).
                let segments: Vec<&str> = self.url.path_segments()?.collect();
                let i = segments.iter().position(|s| *s == "oauth2")?;
                let tenant = (*segments.get(i.checked_sub(1)?)?).to_owned();
                let app = url::form_urlencoded::parse(self.form.as_deref()?)
                    .find(|(k, _)| k == "client_id")
                    .map(|(_, v)| v.into_owned())?;
                (tenant, app)
            }
            Side::Graph => token_tenant_and_app(self.auth.as_ref()?.to_str().ok()?)?,
        };
        Some(PaceKey {
            side: self.side,
            host,
            tenant: tenant.to_ascii_lowercase(),
            app: app.to_ascii_lowercase(),
        })
    }
}

/// `tid` and `appid` (or `azp`) of a bearer token's payload, unverified (it came from the token
/// endpoint; only pacing reads it).
fn token_tenant_and_app(authorization: &str) -> Option<(String, String)> {
    #[derive(serde::Deserialize)]
    struct Claims {
        tid: Option<String>,
        appid: Option<String>,
        azp: Option<String>,
    }
    let token = authorization
        .strip_prefix("Bearer ")
        .or_else(|| authorization.strip_prefix("bearer "))?;
    let payload = token.split('.').nth(1)?;
    let bytes = base64::engine::general_purpose::URL_SAFE_NO_PAD
        .decode(payload.trim_end_matches('='))
        .ok()?;
    let claims: Claims = serde_json::from_slice(&bytes).ok()?;
    Some((claims.tid?, claims.appid.or(claims.azp)?))
}

/// What a throttled key has learned.
#[derive(Debug)]
struct KeyState {
    /// No request before this (the last `Retry-After`).
    paused_until: Instant,
    /// The learned rate (requests per second), from the second episode on.
    rate: Option<f64>,
    /// Growth per second while requests queue for the rate.
    growth: f64,
    /// The next free send slot under the rate.
    next_slot: Instant,
    /// When the rate last grew.
    grown_at: Instant,
    /// The last cut (start of the current episode).
    cut_at: Instant,
    /// Answers other than 429 since the last cut.
    answered: u64,
    /// Episodes seen.
    episodes: u32,
}

impl KeyState {
    fn new(now: Instant) -> Self {
        Self {
            paused_until: now,
            rate: None,
            growth: 0.0,
            next_slot: now,
            grown_at: now,
            cut_at: now,
            answered: 0,
            episodes: 0,
        }
    }
}

/// What a request must do before it is sent.
enum Wait {
    Go,
    /// The key is paused until then.
    Pause(Instant),
    /// A slot under the rate is reserved then.
    Slot(Instant),
}

/// Per-key pauses and rates learned from 429s (see the module documentation). Shared by the
/// clones of an [`EntraClient`](crate::EntraClient).
#[derive(Debug)]
pub(crate) struct Pacer {
    config: Pacing,
    /// How many keys are remembered (read without the lock: zero means nothing to do).
    remembered: AtomicUsize,
    keys: Mutex<HashMap<PaceKey, KeyState>>,
}

impl Pacer {
    pub(crate) fn new(config: Pacing) -> Self {
        Self {
            config,
            remembered: AtomicUsize::new(0),
            keys: Mutex::new(HashMap::new()),
        }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<PaceKey, KeyState>> {
        self.keys
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    /// Whether any key is remembered (otherwise requests need no key).
    pub(crate) fn active(&self) -> bool {
        self.remembered.load(Ordering::Relaxed) > 0
    }

    /// Waits until `key` may send: after its pause, and at its rate.
    pub(crate) async fn wait(&self, key: &PaceKey) {
        loop {
            match self.reserve(key) {
                Wait::Go => return,
                Wait::Pause(until) => tokio::time::sleep_until(until).await,
                Wait::Slot(at) => {
                    tokio::time::sleep_until(at).await;
                    // A 429 that came meanwhile paused the key: wait for that first.
                    let paused = self
                        .lock()
                        .get(key)
                        .is_some_and(|s| s.paused_until > Instant::now());
                    if !paused {
                        return;
                    }
                }
            }
        }
    }

    fn reserve(&self, key: &PaceKey) -> Wait {
        let mut keys = self.lock();
        let Some(st) = keys.get_mut(key) else {
            return Wait::Go;
        };
        let now = Instant::now();
        if st.paused_until > now {
            return Wait::Pause(st.paused_until);
        }
        if now.duration_since(st.cut_at) > FORGET_AFTER {
            keys.remove(key);
            self.remembered.store(keys.len(), Ordering::Relaxed);
            return Wait::Go;
        }
        let Some(rate) = st.rate else {
            return Wait::Go;
        };
        let slot = st.next_slot.max(now);
        // Requests queue for the rate: it may be too slow, so it grows (additive increase).
        let grown = if st.next_slot > now {
            let secs = now.duration_since(st.grown_at).as_secs_f64().min(1.0);
            rate + st.growth * secs
        } else {
            rate
        };
        st.rate = Some(grown);
        st.grown_at = now;
        st.next_slot = slot + Duration::from_secs_f64(1.0 / grown);
        if slot <= now {
            Wait::Go
        } else {
            Wait::Slot(slot)
        }
    }

    /// An answer other than 429 for `key` (counted for the accepted rate).
    pub(crate) fn answered(&self, key: &PaceKey) {
        if let Some(st) = self.lock().get_mut(key) {
            st.answered += 1;
        }
    }

    /// A 429 with `Retry-After` for `key`, whose request was sent at `sent_at`.
    pub(crate) fn throttled(&self, key: PaceKey, retry_after: Duration, sent_at: Instant) {
        let now = Instant::now();
        let pause = retry_after.min(self.config.max_pause);
        let mut keys = self.lock();
        if keys.len() > 4096 {
            keys.retain(|_, s| now.duration_since(s.cut_at) <= FORGET_AFTER);
        }
        let st = keys.entry(key).or_insert_with(|| KeyState::new(now));
        st.paused_until = st.paused_until.max(now + pause);
        st.next_slot = st.next_slot.max(st.paused_until);
        // A request sent before the last cut was in flight: the same episode.
        if st.episodes == 0 || sent_at >= st.cut_at {
            if st.episodes > 0 {
                let secs = now.duration_since(st.cut_at).as_secs_f64().max(0.001);
                let accepted = st.answered as f64 / secs;
                let cut = match st.rate {
                    Some(r) => (accepted * CUT).min(r * CUT),
                    None => accepted * CUT,
                }
                .max(MIN_RATE);
                st.rate = Some(cut);
                st.growth = cut * GROWTH;
            }
            st.episodes += 1;
            st.cut_at = now;
            st.answered = 0;
        }
        tracing::debug!(
            pause_ms = u64::try_from(pause.as_millis()).unwrap_or(u64::MAX),
            rate = ?st.rate,
            "throttled by Microsoft: pausing this tenant and app"
        );
        self.remembered.store(keys.len(), Ordering::Relaxed);
    }

    /// How long requests for `tenant` (ID or domain, any app, any service) are still paused.
    pub(crate) fn paused_for(&self, tenant: &str) -> Option<Duration> {
        if !self.active() {
            return None;
        }
        let now = Instant::now();
        self.lock()
            .iter()
            .filter(|(k, _)| k.tenant.eq_ignore_ascii_case(tenant))
            .map(|(_, s)| s.paused_until.saturating_duration_since(now))
            .filter(|d| !d.is_zero())
            .max()
    }

    /// The learned rate of a key, for tests.
    #[cfg(test)]
    fn rate(&self, key: &PaceKey) -> Option<f64> {
        self.lock().get(key).and_then(|s| s.rate)
    }
}

impl crate::EntraClient {
    /// How long requests for `tenant` (any app) are still paused after Microsoft throttled them;
    /// `None` when none is, or pacing is off. The monitor holds that tenant's checks back meanwhile
    /// (`IdentityPlatform::throttled_for`).
    pub fn paused_for(&self, tenant: &str) -> Option<Duration> {
        self.pacer.as_deref().and_then(|p| p.paused_for(tenant))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn key(tenant: &str) -> PaceKey {
        PaceKey {
            side: Side::Graph,
            host: "graph.microsoft.com:443".into(),
            tenant: tenant.into(),
            app: "app".into(),
        }
    }

    #[test]
    fn keys_come_from_the_token_endpoint_form_and_the_graph_token() {
        let client = reqwest::Client::new();
        let token = client
            .post("https://login.example/clouds/x/contoso.example/oauth2/v2.0/token")
            .form(&[("client_id", "C1"), ("grant_type", "client_credentials")])
            .build()
            .unwrap();
        let k = PaceSource::of(Some(Side::Identity), &token)
            .unwrap()
            .key()
            .unwrap();
        assert_eq!(
            (k.host.as_str(), k.tenant.as_str(), k.app.as_str()),
            ("login.example:443", "contoso.example", "c1")
        );
        let b64 = |v: &str| base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(v);
        let jwt = format!(
            "{}.{}.sig",
            b64(r#"{"alg":"RS256"}"#),
            b64(r#"{"tid":"T1","appid":"A1"}"#)
        );
        let graph = client
            .get("https://graph.example:8443/v1.0/servicePrincipals")
            .bearer_auth(&jwt)
            .build()
            .unwrap();
        let k = PaceSource::of(Some(Side::Graph), &graph)
            .unwrap()
            .key()
            .unwrap();
        assert_eq!(
            (k.host.as_str(), k.tenant.as_str(), k.app.as_str()),
            ("graph.example:8443", "t1", "a1")
        );
        let discovery = client
            .get("https://login.example/contoso/v2.0/.well-known/openid-configuration")
            .build()
            .unwrap();
        assert!(
            PaceSource::of(Some(Side::Identity), &discovery)
                .unwrap()
                .key()
                .is_none()
        );
        assert!(PaceSource::of(None, &discovery).is_none());
    }

    #[tokio::test(start_paused = true)]
    async fn a_throttled_key_pauses_then_learns_a_rate_and_others_go_on() {
        let pacer = Pacer::new(Pacing {
            max_pause: Duration::from_secs(30),
        });
        let (a, b) = (key("a"), key("b"));
        assert!(!pacer.active());
        let t0 = Instant::now();
        pacer.throttled(a.clone(), Duration::from_secs(2), t0);
        assert_eq!(pacer.paused_for("A"), Some(Duration::from_secs(2)));
        assert_eq!(pacer.paused_for("b"), None);
        // Another key goes at once; the throttled one after its Retry-After.
        pacer.wait(&b).await;
        assert_eq!(Instant::now(), t0);
        pacer.wait(&a).await;
        assert_eq!(Instant::now(), t0 + Duration::from_secs(2));
        assert_eq!(pacer.rate(&a), None, "one episode: a pause, no rate yet");
        // 100 answers in the next 3 s, then a second episode: 100 / 5 s since the cut = 20/s.
        for _ in 0..100 {
            pacer.answered(&a);
        }
        tokio::time::advance(Duration::from_secs(3)).await;
        let sent = Instant::now();
        pacer.throttled(a.clone(), Duration::from_secs(1), sent);
        let rate = pacer.rate(&a).unwrap();
        assert!((rate - 18.0).abs() < 0.01, "{rate}");
        // A 429 of a request sent before the cut is the same episode: no second cut.
        pacer.throttled(
            a.clone(),
            Duration::from_secs(1),
            sent - Duration::from_millis(1),
        );
        assert_eq!(pacer.rate(&a), Some(rate));
        // After the pause, requests are spaced at the rate.
        pacer.wait(&a).await;
        let first = Instant::now();
        pacer.wait(&a).await;
        let gap = Instant::now().duration_since(first).as_secs_f64();
        assert!((gap - 1.0 / 18.0).abs() < 0.001, "{gap}");
        // A Retry-After longer than max_pause is cut.
        pacer.throttled(b.clone(), Duration::from_secs(3600), Instant::now());
        assert_eq!(pacer.paused_for("b"), Some(Duration::from_secs(30)));
    }
}

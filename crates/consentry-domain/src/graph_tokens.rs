//! The token API's service: Microsoft Graph access tokens of a tenant's app profile for the vendor's
//! services holding a service API key of the profile's organization.
//!
//! - A presented key is resolved by [`ApiKeys`] and becomes a reader [`Caller`](crate::Caller) of its
//!   organization ([`service_caller`]), which `Caller::may_on` authorizes for the tenant and the profile
//!   named, like every other caller.
//! - Tokens come from a cache while they stay valid for [`SAFETY_MARGIN`]; otherwise they are acquired
//!   by the checker ([`Checker::acquire_token`]: client credentials — a certificate assertion for custom
//!   apps — for app types with application permissions, the consent user's refresh token for
//!   delegated-only ones). Concurrent requests for one profile share one acquisition (single flight).
//! - A definitive refusal from Microsoft runs the profile's check (the same code path as the monitor),
//!   which marks the profile invalid with its reason; the answer is a typed error carrying that reason.
//!   Transient failures answer [`TokenError::Unavailable`] and change nothing.
//! - A resolved request (key, tenant, usable profile) is remembered for the lookup time, so the cached
//!   path asks the database nothing; revoking a key, re-authorizing or deleting a profile forgets it at
//!   once here ([`GraphTokens::forget_key`], [`GraphTokens::forget_profile`]) and within that time on
//!   other replicas.
//! - Issued tokens are audited once per key, profile and audit window: the first at once, the others
//!   summed up in one entry when the window ends ([`GraphTokens::flush_audit`]).
//!
//! The HTTP side (the bearer header, the JSON body, `Cache-Control: no-store`, the error answers) is
//! `consentry-server`'s `api/graph_tokens.rs`.

use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Instant;

use secrecy::SecretString;
use serde::Serialize;
use time::{Duration, OffsetDateTime};

use crate::access::Action;
use crate::check::{CheckTrigger, Checker};
use crate::ids::{ApiKeyId, OrgId, ProfileId, TenantRef};
use crate::keys::{ApiKeys, key_digest, service_caller};
use crate::model::{AppProfile, ProfileFilter, consent_lacks};
use crate::platform::PlatformError;
use crate::service::Consentry;
use crate::status::{ProfileStatus, StatusReason};

/// A cached token is served only while it stays valid at least this much longer.
pub const SAFETY_MARGIN: Duration = Duration::minutes(5);

#[derive(Clone)]
struct Cached {
    /// Shared with every answer served from the cache (no copy of the token per request).
    token: Arc<SecretString>,
    expires_at: OffsetDateTime,
}

/// What a token request names: its key (by hash), the tenant as written in the path, and the profile
/// either by app type or by ID.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
struct LookupKey {
    /// SHA-256 of the key (hex only when the store is asked).
    key_digest: [u8; 32],
    tenant: String,
    app_type: Option<String>,
    profile_id: Option<String>,
}

/// A token request resolved against the store: the key that may ask and the usable profile it gets.
#[derive(Debug)]
struct Resolved {
    key_id: ApiKeyId,
    key_name: String,
    org_id: OrgId,
    profile: AppProfile,
}

/// Tokens issued to one key for one profile since the window's first audit entry.
struct AuditWindow {
    opened: OffsetDateTime,
    repeats: u64,
    key_name: String,
    org_id: OrgId,
    app_type: String,
}

/// Bound on the remembered lookups; past it the stale ones are dropped, then all.
const MAX_LOOKUPS: usize = 10_000;

/// Token cache, single-flight acquisition, the lookup cache, audit windows and counters.
pub struct GraphTokens {
    svc: Consentry,
    keys: ApiKeys,
    checker: Checker,
    cache: Mutex<HashMap<ProfileId, Cached>>,
    flights: Mutex<HashMap<ProfileId, Arc<tokio::sync::Mutex<()>>>>,
    /// Resolved requests, reused for `lookup_ttl` (the hot path asks the database nothing).
    lookups: Mutex<HashMap<LookupKey, (Instant, Arc<Resolved>)>>,
    lookup_ttl: std::time::Duration,
    /// When each key's `last_used_at` was last written (at most once a minute).
    touched: Mutex<HashMap<ApiKeyId, OffsetDateTime>>,
    audit_windows: Mutex<HashMap<(ApiKeyId, ProfileId), AuditWindow>>,
    audit_window: Duration,
    hits: AtomicU64,
    misses: AtomicU64,
    acquisitions: AtomicU64,
}

impl std::fmt::Debug for GraphTokens {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("GraphTokens")
            .field("cache", &"[redacted]")
            .finish_non_exhaustive()
    }
}

/// Counters of the token API.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub struct TokenStats {
    /// Tokens served from the cache.
    pub hits: u64,
    /// Requests that found no usable cached token.
    pub misses: u64,
    /// Tokens acquired from Microsoft.
    pub acquisitions: u64,
}

fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(std::sync::PoisonError::into_inner)
}

impl GraphTokens {
    /// The service over the domain's services and the checker that acquires tokens, with an empty
    /// cache, reusing resolved lookups for `lookup_ttl` (zero: never) and summing up the audit entries
    /// of one key and profile over `audit_window` (zero: one entry per token); the server takes both
    /// from `[token_api]`.
    pub fn new(
        svc: Consentry,
        checker: Checker,
        lookup_ttl: std::time::Duration,
        audit_window: Duration,
    ) -> Self {
        Self {
            keys: ApiKeys::new(svc.clone()),
            svc,
            checker,
            cache: Mutex::default(),
            flights: Mutex::default(),
            lookups: Mutex::default(),
            lookup_ttl,
            touched: Mutex::default(),
            audit_windows: Mutex::default(),
            audit_window,
            hits: AtomicU64::new(0),
            misses: AtomicU64::new(0),
            acquisitions: AtomicU64::new(0),
        }
    }

    /// The counters.
    pub fn stats(&self) -> TokenStats {
        TokenStats {
            hits: self.hits.load(Ordering::Relaxed),
            misses: self.misses.load(Ordering::Relaxed),
            acquisitions: self.acquisitions.load(Ordering::Relaxed),
        }
    }

    fn cached(&self, id: ProfileId, now: OffsetDateTime) -> Option<Cached> {
        lock(&self.cache)
            .get(&id)
            .filter(|c| c.expires_at - now > SAFETY_MARGIN)
            .cloned()
    }

    fn lookup(&self, key: &LookupKey) -> Option<Arc<Resolved>> {
        if self.lookup_ttl.is_zero() {
            return None;
        }
        lock(&self.lookups)
            .get(key)
            .filter(|(at, _)| at.elapsed() < self.lookup_ttl)
            .map(|(_, r)| r.clone())
    }

    fn remember(&self, key: LookupKey, resolved: Arc<Resolved>) {
        if self.lookup_ttl.is_zero() {
            return;
        }
        let mut lookups = lock(&self.lookups);
        if lookups.len() >= MAX_LOOKUPS {
            lookups.retain(|_, (at, _)| at.elapsed() < self.lookup_ttl);
            if lookups.len() >= MAX_LOOKUPS {
                lookups.clear();
            }
        }
        lookups.insert(key, (Instant::now(), resolved));
    }

    /// Forgets what this server remembers of a key: the next request with it asks the database (a
    /// revoked key stops working at once here, and within the lookup time on other replicas).
    pub fn forget_key(&self, key_id: ApiKeyId) {
        lock(&self.lookups).retain(|_, (_, r)| r.key_id != key_id);
    }

    /// Forgets a profile's cached token and lookups (it was re-authorized, or found not to work).
    pub fn forget_profile(&self, id: ProfileId) {
        lock(&self.cache).remove(&id);
        lock(&self.lookups).retain(|_, (_, r)| r.profile.id != id);
    }

    /// Whether the key's last use should be written now (never more than once a minute).
    fn touch_due(
        &self,
        key_id: ApiKeyId,
        stored: Option<OffsetDateTime>,
        now: OffsetDateTime,
    ) -> bool {
        let mut touched = lock(&self.touched);
        let last = touched.get(&key_id).copied().or(stored);
        if last.is_some_and(|at| now - at < Duration::minutes(1)) {
            return false;
        }
        touched.insert(key_id, now);
        true
    }

    /// The audit entry of an issued token. The first token of a key and profile is recorded at once;
    /// the next ones within the audit window are counted and recorded as one entry (`repeats`) when
    /// the window ends ([`flush_audit`](Self::flush_audit)) or the next token after it is issued.
    async fn audit_issued(&self, r: &Resolved, cached: bool, now: OffsetDateTime) {
        let mut ended = None;
        if self.audit_window > Duration::ZERO {
            let mut windows = lock(&self.audit_windows);
            let key = (r.key_id, r.profile.id);
            if let Some(w) = windows.get_mut(&key)
                && now - w.opened < self.audit_window
            {
                w.repeats += 1;
                return;
            }
            ended = windows
                .insert(
                    key,
                    AuditWindow {
                        opened: now,
                        repeats: 0,
                        key_name: r.key_name.clone(),
                        org_id: r.org_id,
                        app_type: r.profile.app_type.clone(),
                    },
                )
                .map(|w| (key, w));
        }
        if let Some((key, w)) = ended {
            self.record_repeats(key, &w).await;
        }
        // Never the token itself: which key got a token of which profile, until when.
        self.svc
            .audit()
            .record(
                &crate::Actor::Operator(format!("service:{}", r.key_name)),
                Some(r.org_id),
                crate::AuditAction::TokenIssued,
                format!("profile:{}", r.profile.id),
                serde_json::json!({
                    "key_id": r.key_id.to_string(),
                    "app_type": r.profile.app_type,
                    "cached": cached,
                }),
            )
            .await;
    }

    /// Records the counted tokens of every audit window that has ended (all of them with
    /// `everything`, at shutdown). The server calls it periodically.
    pub async fn flush_audit(&self, everything: bool) {
        let now = self.svc.clock().now();
        let ended: Vec<_> = {
            let mut windows = lock(&self.audit_windows);
            let keys: Vec<_> = windows
                .iter()
                .filter(|(_, w)| everything || now - w.opened >= self.audit_window)
                .map(|(k, _)| *k)
                .collect();
            keys.into_iter()
                .filter_map(|k| windows.remove(&k).map(|w| (k, w)))
                .collect()
        };
        for (key, w) in ended {
            self.record_repeats(key, &w).await;
        }
    }

    /// How often [`flush_audit`](Self::flush_audit) should run: a quarter of the window (at least a
    /// second), or never when tokens are recorded one by one.
    pub fn audit_flush_every(&self) -> Option<std::time::Duration> {
        (self.audit_window > Duration::ZERO).then(|| {
            std::time::Duration::try_from(self.audit_window / 4)
                .unwrap_or_default()
                .max(std::time::Duration::from_secs(1))
        })
    }

    /// A token for the profile: cached, or acquired once for all concurrent callers.
    async fn token(&self, profile: &AppProfile) -> Result<(Cached, bool), TokenError> {
        // The wall clock, not the domain's `Clock`: a token's `expires_at` is stamped by the platform
        // adapter from the wall-clock time Microsoft answered (`expires_in` after it), so the cache
        // compares it with the same clock. A test that moves the domain clock does not expire tokens.
        let now = OffsetDateTime::now_utc();
        if let Some(c) = self.cached(profile.id, now) {
            self.hits.fetch_add(1, Ordering::Relaxed);
            return Ok((c, true));
        }
        self.misses.fetch_add(1, Ordering::Relaxed);
        let flight = lock(&self.flights).entry(profile.id).or_default().clone();
        let _guard = flight.lock().await;
        // Whoever held the flight before may have filled the cache.
        if let Some(c) = self.cached(profile.id, OffsetDateTime::now_utc()) {
            return Ok((c, true));
        }
        let fresh = self.checker.acquire_token(profile).await.map(|t| Cached {
            token: Arc::new(t.token),
            expires_at: t.expires_at,
        });
        match fresh {
            Ok(c) => {
                self.acquisitions.fetch_add(1, Ordering::Relaxed);
                lock(&self.cache).insert(profile.id, c.clone());
                Ok((c, false))
            }
            Err(e) => Err(self.failure(profile, e).await),
        }
    }

    /// Turns an acquisition failure into the answer; a definitive one is recorded through a check.
    async fn failure(&self, p: &AppProfile, e: PlatformError) -> TokenError {
        if e.is_transient() {
            return TokenError::Unavailable(e.message);
        }
        self.forget_profile(p.id);
        let _ = self
            .checker
            .check(p.id, CheckTrigger::Manual("token-api".into()))
            .await;
        let reason = match self.svc.profile(p.id).await {
            Ok(after) if after.status == ProfileStatus::Invalid => after.reason,
            _ => None,
        }
        .or_else(|| {
            e.reason(
                p.consent_user.as_ref().map(|u| &u.upn),
                p.original_sign_in_ip,
                None,
            )
        });
        match reason {
            Some(r) => TokenError::ProfileInvalid {
                profile_id: p.id,
                reason: r,
            },
            None => TokenError::Unavailable(e.message),
        }
    }
}

/// Why no token was issued.
#[derive(Debug, thiserror::Error)]
pub enum TokenError {
    /// No, a wrong or a revoked API key.
    #[error("{0}")]
    Unauthorized(String),
    /// The request is malformed.
    #[error("{0}")]
    BadRequest(String),
    /// No such tenant or profile for the key's organization.
    #[error("{0}")]
    NotFound(String),
    /// The profile does not work: its reason says why and what to do.
    #[error(
        "the app profile {profile_id} is not valid: re-authorize it or fix the cause its reason names"
    )]
    ProfileInvalid {
        /// The profile.
        profile_id: ProfileId,
        /// Why.
        reason: StatusReason,
    },
    /// Microsoft failed transiently; try again shortly.
    #[error("Microsoft did not answer in time ({0}); try again in a few seconds")]
    Unavailable(String),
    /// Consentry failed (storage). Detail logged, not sent.
    #[error("internal error")]
    Internal(String),
}

/// What a token request names: the profile by app type or by ID (exactly one).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct GraphTokenRequest {
    /// The app type whose profile in the tenant to use.
    pub app_type: Option<String>,
    /// The profile to use.
    pub profile_id: Option<String>,
}

/// An issued token.
pub struct IssuedToken {
    /// The Graph access token (shared with the cache).
    pub access_token: Arc<SecretString>,
    /// When it expires.
    pub expires_at: OffsetDateTime,
    /// The profile it belongs to.
    pub profile_id: ProfileId,
    /// Whether it came from the cache.
    pub cached: bool,
    /// Required permissions of the app type (in the catalog in use) that the profile's consent lacks:
    /// during a permission rollout, what the service must do without until the tenant consents again.
    pub missing_permissions: Vec<String>,
    /// Optional permissions of the app type that the consent lacks.
    pub missing_optional_permissions: Vec<String>,
}

/// The catalog permissions of `app` (required ones, or optional ones with `optional`) that `profile`'s
/// consent lacks: not among the permissions its last consent or check saw granted, or, for a consent
/// recorded before grants were read, added after the catalog version it was given at. A scope of
/// another resource than Graph (Viva Engage's) is not in Graph's grants and counts as held.
pub fn missing_permissions(
    profile: &AppProfile,
    app: &consentry_catalog::AppType,
    optional: bool,
) -> Vec<String> {
    app.permissions
        .iter()
        .filter(|p| p.optional == optional && p.is_graph())
        .filter(|p| {
            consent_lacks(
                &profile.granted_permissions,
                profile.consented_catalog_version,
                &p.name,
                p.kind,
                p.since,
            )
        })
        .map(|p| p.name.clone())
        .collect()
}

impl std::fmt::Debug for IssuedToken {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("IssuedToken")
            .field("expires_at", &self.expires_at)
            .field("profile_id", &self.profile_id)
            .field("cached", &self.cached)
            .finish_non_exhaustive()
    }
}

fn internal(e: impl std::fmt::Display) -> TokenError {
    TokenError::Internal(e.to_string())
}

impl GraphTokens {
    /// Issues a Graph access token of the tenant's profile the request names to the holder of `key`
    /// (a service API key; `None` when none was presented). `tenant` is the tenant as the caller wrote
    /// it (GUID or domain); `request` is the parsed request or why it could not be parsed (the key is
    /// checked first, so a caller without a valid key learns nothing of the request's faults).
    pub async fn issue(
        &self,
        key: Option<&str>,
        tenant: &str,
        request: Result<GraphTokenRequest, String>,
    ) -> Result<IssuedToken, TokenError> {
        let key = key.ok_or_else(|| {
            TokenError::Unauthorized(
                "send a service API key as `Authorization: Bearer csk_…` (consentry keys create --org ORG)"
                    .into(),
            )
        })?;
        let req = request.map_err(TokenError::BadRequest);
        let digest = key_digest(key);
        let lookup_key = req.as_ref().ok().map(|r| LookupKey {
            key_digest: digest,
            tenant: tenant.to_string(),
            app_type: r.app_type.clone(),
            profile_id: r.profile_id.clone(),
        });
        let now = self.svc.clock().now();
        let remembered = lookup_key.as_ref().and_then(|k| self.lookup(k));
        let resolved = match remembered {
            Some(r) => {
                if self.touch_due(r.key_id, None, now) {
                    self.keys.touch(r.key_id, now).await.map_err(internal)?;
                }
                r
            }
            None => {
                let r = Arc::new(self.resolve(&hex::encode(digest), tenant, req, now).await?);
                if let Some(k) = lookup_key {
                    self.remember(k, r.clone());
                }
                r
            }
        };
        let (c, cached) = self.token(&resolved.profile).await?;
        self.audit_issued(&resolved, cached, now).await;
        let missing = |optional| {
            self.svc
                .catalog()
                .app_type(&resolved.profile.app_type)
                .map(|app| missing_permissions(&resolved.profile, app, optional))
                .unwrap_or_default()
        };
        Ok(IssuedToken {
            access_token: c.token,
            expires_at: c.expires_at,
            profile_id: resolved.profile.id,
            cached,
            missing_permissions: missing(false),
            missing_optional_permissions: missing(true),
        })
    }

    /// Resolves a request against the store: the key (not revoked), then the body, the tenant of the
    /// key's organization and a usable profile in it.
    async fn resolve(
        &self,
        hash: &str,
        tenant: &str,
        req: Result<GraphTokenRequest, TokenError>,
        now: OffsetDateTime,
    ) -> Result<Resolved, TokenError> {
        let keys = &self.keys;
        let api_key = keys
            .active_by_hash(hash)
            .await
            .map_err(internal)?
            .ok_or_else(|| {
                TokenError::Unauthorized("the API key is not valid or was revoked".into())
            })?;
        // The key's last use, to the minute (a write per minute at most, not per request).
        if self.touch_due(api_key.id, api_key.last_used_at, now) {
            keys.touch(api_key.id, now).await.map_err(internal)?;
        }
        // The key is a reader of its organization: what it may reach is decided by `Caller::may`, like
        // every other caller's.
        let caller = service_caller(&api_key);
        let req = req?;
        let not_found = || TokenError::NotFound(format!("tenant {tenant} was not found"));
        let tref = TenantRef::parse(tenant).map_err(|_| not_found())?;
        let t = self.svc.tenant(&tref).await.map_err(|_| not_found())?;
        caller
            .may_on(Action::Read, "tenant", tenant, t.org_id)
            .map_err(|_| not_found())?;
        let profile = match (req.profile_id, req.app_type) {
            (Some(id), None) => {
                let id = ProfileId::parse(&id)
                    .map_err(|e| TokenError::BadRequest(format!("profile_id: {e}")))?;
                self.svc
                    .profile(id)
                    .await
                    .ok()
                    .filter(|p| {
                        caller
                            .may_on(Action::Read, "app profile", &id.to_string(), p.org_id)
                            .is_ok()
                            && p.tenant_id == t.id
                    })
                    .ok_or_else(|| {
                        TokenError::NotFound(format!(
                            "app profile {id} was not found in this tenant"
                        ))
                    })?
            }
            (None, Some(app_type)) => {
                let filter = ProfileFilter {
                    tenant_id: Some(t.id),
                    app_type: Some(app_type.clone()),
                    ..ProfileFilter::default()
                };
                let page = self
                    .svc
                    .profiles(&filter, &crate::PageRequest::default())
                    .await
                    .map_err(internal)?;
                // Prefer a working profile when the tenant has several of the app type.
                let mut items = page.items;
                items.sort_by_key(|p| p.status == ProfileStatus::Invalid);
                items.sort_by_key(|p| !usable(p));
                items.into_iter().next().ok_or_else(|| {
                    TokenError::NotFound(format!(
                        "the tenant has no app profile of app type {app_type}"
                    ))
                })?
            }
            _ => {
                return Err(TokenError::BadRequest(
                    "give exactly one of app_type and profile_id".into(),
                ));
            }
        };
        if !usable(&profile) {
            return Err(TokenError::ProfileInvalid {
                profile_id: profile.id,
                reason: profile
                    .reason
                    .clone()
                    .unwrap_or(StatusReason::NotYetAuthorized),
            });
        }
        Ok(Resolved {
            key_id: api_key.id,
            key_name: api_key.name,
            org_id: api_key.org_id,
            profile,
        })
    }

    /// The audit entry summing up the tokens counted in an ended window.
    async fn record_repeats(&self, (key_id, profile_id): (ApiKeyId, ProfileId), w: &AuditWindow) {
        if w.repeats == 0 {
            return;
        }
        self.svc
            .audit()
            .record(
                &crate::Actor::Operator(format!("service:{}", w.key_name)),
                Some(w.org_id),
                crate::AuditAction::TokenIssued,
                format!("profile:{profile_id}"),
                serde_json::json!({
                    "key_id": key_id.to_string(),
                    "app_type": w.app_type,
                    "repeats": w.repeats,
                    "since": w.opened.format(&time::format_description::well_known::Rfc3339).unwrap_or_default(),
                }),
            )
            .await;
    }
}

/// Whether a profile's credential may serve tokens: authorized, and not invalid — except when the
/// reason leaves the credential working (`PermissionsMissing`: a newer catalog version added
/// permissions; the token carries what was granted until the profile is re-authorized).
fn usable(profile: &AppProfile) -> bool {
    profile.authorized_at.is_some()
        && (profile.status != ProfileStatus::Invalid
            || profile
                .reason
                .as_ref()
                .is_none_or(StatusReason::credential_works))
}

//! The token API for the vendor's services: `POST /api/v1/tenants/{tenant}/tokens` with `{"app_type"}`
//! or `{"profile_id"}` returns a Microsoft Graph access token of the tenant's app profile and its expiry.
//!
//! - Callers authenticate with a service API key of the tenant's organization
//!   (`Authorization: Bearer csk_…`; `consentry keys create --org ORG`). Only the key's SHA-256 is stored.
//! - Tokens come from a cache while they stay valid for [`SAFETY_MARGIN`]; otherwise they are acquired
//!   (client credentials — a certificate assertion for custom apps — for app types with application
//!   permissions, the consent user's refresh token for delegated-only ones). Concurrent requests for one
//!   profile share one acquisition (single flight).
//! - A definitive refusal from Microsoft runs the profile's check (the same code path as the monitor),
//!   which marks the profile invalid with its reason; the answer is a typed error carrying that reason.
//!   Transient failures answer 503 and change nothing.
//!
//! Tokens are acquired by the checker ([`Checker::acquire_token`](consentry_domain::Checker::acquire_token)),
//! through the identity-platform port, with the same credentials a check exercises.

use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};

use axum::Json;
use axum::extract::State;
use axum::http::{HeaderMap, header};
use base64::Engine;
use consentry_domain::{
    AppProfile, CheckTrigger, PlatformError, ProfileFilter, ProfileId, ProfileStatus, StatusReason,
    TenantRef,
};
use secrecy::{ExposeSecret, SecretString};
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};
use time::{Duration, OffsetDateTime};

use crate::AppState;
use crate::error::ApiError;

/// A cached token is served only while it stays valid at least this much longer.
pub const SAFETY_MARGIN: Duration = Duration::minutes(5);

#[derive(Clone)]
struct Cached {
    token: SecretString,
    expires_at: OffsetDateTime,
}

/// Token cache, single-flight acquisition and counters.
pub struct TokenService {
    cache: Mutex<HashMap<ProfileId, Cached>>,
    flights: Mutex<HashMap<ProfileId, Arc<tokio::sync::Mutex<()>>>>,
    hits: AtomicU64,
    misses: AtomicU64,
    acquisitions: AtomicU64,
}

impl std::fmt::Debug for TokenService {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TokenService")
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

/// Hex SHA-256 of a service API key, as stored.
pub fn key_hash(key: &str) -> String {
    hex_lower(&Sha256::digest(key.as_bytes()))
}

fn hex_lower(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

/// A new service API key (`csk_` + 256 random bits, base64url).
pub fn new_api_key() -> String {
    let bytes: [u8; 32] = rand::random();
    format!(
        "csk_{}",
        base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(bytes)
    )
}

impl Default for TokenService {
    fn default() -> Self {
        Self::new()
    }
}

impl TokenService {
    /// An empty cache.
    pub fn new() -> Self {
        Self {
            cache: Mutex::default(),
            flights: Mutex::default(),
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

    /// A token for the profile: cached, or acquired once for all concurrent callers.
    async fn token(
        &self,
        st: &AppState,
        profile: &AppProfile,
    ) -> Result<(Cached, bool), TokenError> {
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
        let fresh = st.checker.acquire_token(profile).await.map(|t| Cached {
            token: t.token,
            expires_at: t.expires_at,
        });
        match fresh {
            Ok(c) => {
                self.acquisitions.fetch_add(1, Ordering::Relaxed);
                lock(&self.cache).insert(profile.id, c.clone());
                Ok((c, false))
            }
            Err(e) => Err(self.failure(st, profile, e).await),
        }
    }

    /// Turns an acquisition failure into the answer; a definitive one is recorded through a check.
    async fn failure(&self, st: &AppState, p: &AppProfile, e: PlatformError) -> TokenError {
        if e.is_transient() {
            return TokenError::Unavailable(e.message);
        }
        lock(&self.cache).remove(&p.id);
        let _ = st
            .checker
            .check(p.id, CheckTrigger::Manual("token-api".into()))
            .await;
        let reason = match st.svc.profile(p.id).await {
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

impl From<TokenError> for ApiError {
    fn from(e: TokenError) -> Self {
        match e {
            TokenError::Unauthorized(m) => ApiError::Unauthorized(m),
            TokenError::BadRequest(m) => ApiError::BadRequest {
                field: None,
                message: m,
            },
            TokenError::NotFound(m) => ApiError::NotFound(m),
            TokenError::ProfileInvalid { profile_id, reason } => {
                ApiError::ProfileInvalid { profile_id, reason }
            }
            TokenError::Unavailable(m) => ApiError::Unavailable(m),
            TokenError::Internal(m) => ApiError::Internal(m),
        }
    }
}

/// Body of the token request: one of the two.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TokenRequest {
    /// The app type whose profile in the tenant to use.
    app_type: Option<String>,
    /// The profile to use.
    profile_id: Option<String>,
}

/// The issued token.
#[derive(Serialize)]
pub struct TokenBody {
    /// The Graph access token.
    access_token: String,
    /// `Bearer`.
    token_type: &'static str,
    /// When it expires.
    #[serde(with = "time::serde::rfc3339")]
    expires_at: OffsetDateTime,
    /// The profile it belongs to.
    profile_id: ProfileId,
    /// Whether it came from the cache.
    cached: bool,
}

impl std::fmt::Debug for TokenBody {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TokenBody")
            .field("expires_at", &self.expires_at)
            .field("profile_id", &self.profile_id)
            .finish_non_exhaustive()
    }
}

fn internal(e: impl std::fmt::Display) -> TokenError {
    TokenError::Internal(e.to_string())
}

/// Issues a Graph access token of a tenant's app profile to a service holding an API key.
pub async fn issue(
    State(st): State<AppState>,
    headers: HeaderMap,
    axum::extract::Path(tenant): axum::extract::Path<String>,
    body: Result<Json<TokenRequest>, axum::extract::rejection::JsonRejection>,
) -> Result<Json<TokenBody>, ApiError> {
    Ok(issue_token(st, headers, tenant, body).await?)
}

async fn issue_token(
    st: AppState,
    headers: HeaderMap,
    tenant: String,
    body: Result<Json<TokenRequest>, axum::extract::rejection::JsonRejection>,
) -> Result<Json<TokenBody>, TokenError> {
    let key = headers
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.strip_prefix("Bearer "))
        .map(str::trim)
        .ok_or_else(|| {
            TokenError::Unauthorized(
                "send a service API key as `Authorization: Bearer csk_…` (consentry keys create --org ORG)"
                    .into(),
            )
        })?;
    let api_key = st
        .svc
        .store()
        .find_api_key(&key_hash(key))
        .await
        .map_err(internal)?
        .filter(|k| k.revoked_at.is_none())
        .ok_or_else(|| {
            TokenError::Unauthorized("the API key is not valid or was revoked".into())
        })?;
    // The key's last use, to the minute (a write per minute at most, not per request).
    let now = st.svc.clock().now();
    if api_key
        .last_used_at
        .is_none_or(|at| now - at >= time::Duration::minutes(1))
    {
        st.svc
            .store()
            .touch_api_key(api_key.id, now)
            .await
            .map_err(internal)?;
    }
    let Json(req) = body.map_err(|e| TokenError::BadRequest(e.body_text()))?;
    let not_found = || TokenError::NotFound(format!("tenant {tenant} was not found"));
    let tref = TenantRef::parse(&tenant).map_err(|_| not_found())?;
    let t = st.svc.tenant(&tref).await.map_err(|_| not_found())?;
    if t.org_id != api_key.org_id {
        return Err(not_found());
    }
    let profile = match (req.profile_id, req.app_type) {
        (Some(id), None) => {
            let id = ProfileId::parse(&id)
                .map_err(|e| TokenError::BadRequest(format!("profile_id: {e}")))?;
            st.svc
                .profile(id)
                .await
                .ok()
                .filter(|p| p.tenant_id == t.id)
                .ok_or_else(|| {
                    TokenError::NotFound(format!("app profile {id} was not found in this tenant"))
                })?
        }
        (None, Some(app_type)) => {
            let filter = ProfileFilter {
                tenant_id: Some(t.id),
                app_type: Some(app_type.clone()),
                ..ProfileFilter::default()
            };
            let page = st
                .svc
                .profiles(&filter, &consentry_domain::PageRequest::default())
                .await
                .map_err(internal)?;
            // Prefer a working profile when the tenant has several of the app type.
            let mut items = page.items;
            items.sort_by_key(|p| p.status == ProfileStatus::Invalid);
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
    if profile.authorized_at.is_none()
        || (profile.status == ProfileStatus::Invalid && profile.reason.is_some())
    {
        return Err(TokenError::ProfileInvalid {
            profile_id: profile.id,
            reason: profile
                .reason
                .clone()
                .unwrap_or(StatusReason::NotYetAuthorized),
        });
    }
    let (c, cached) = st.tokens.token(&st, &profile).await?;
    // Never the token itself: which key got a token of which profile, until when.
    st.svc
        .audit()
        .record(
            &consentry_domain::Actor::Operator(format!("service:{}", api_key.name)),
            Some(api_key.org_id),
            consentry_domain::AuditAction::TokenIssued,
            format!("profile:{}", profile.id),
            serde_json::json!({
                "key_id": api_key.id.to_string(),
                "app_type": profile.app_type,
                "cached": cached,
            }),
        )
        .await;
    Ok(Json(TokenBody {
        access_token: c.token.expose_secret().to_string(),
        token_type: "Bearer",
        expires_at: c.expires_at,
        profile_id: profile.id,
        cached,
    }))
}

//! Authentication of the JSON API: who is calling. A bearer token on `/api/v1/*` is either the operator
//! token (the platform operator) or an account's personal access token (its scope and role); the result
//! is a [`Caller`] that every handler receives as [`ApiCaller`] and checks with
//! [`Caller::may`](consentry_domain::Caller::may). Service API keys are accepted only by the token API
//! (`api/graph_tokens.rs`); anywhere else they are refused with 403 and a message saying so.

use axum::extract::{FromRequestParts, Request, State};
use axum::http::HeaderMap;
use axum::http::header::AUTHORIZATION;
use axum::http::request::Parts;
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use consentry_domain::{Caller, DomainError};
use secrecy::{ExposeSecret, SecretString};
use sha2::{Digest, Sha256};

use crate::AppState;
use crate::error::ApiError;

/// The operator token, kept only as its SHA-256 digest.
#[derive(Clone)]
pub struct OperatorToken([u8; 32]);

impl std::fmt::Debug for OperatorToken {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("OperatorToken([redacted])")
    }
}

impl OperatorToken {
    /// Keeps the digest of `token`.
    pub fn new(token: &SecretString) -> Self {
        Self(Sha256::digest(token.expose_secret().trim().as_bytes()).into())
    }

    /// Whether `presented` is the token. Digests are compared, so timing reveals nothing about the token.
    pub fn matches(&self, presented: &str) -> bool {
        let d: [u8; 32] = Sha256::digest(presented.as_bytes()).into();
        d == self.0
    }
}

/// The bearer token of a request, if it sent one. The scheme is matched case-insensitively
/// (`Bearer`, `bearer`, `BEARER`: RFC 7235 §2.1, RFC 6750 §2.1) and separated from the token by
/// one or more spaces.
pub fn bearer(headers: &HeaderMap) -> Option<&str> {
    let value = headers.get(AUTHORIZATION)?.to_str().ok()?;
    let (scheme, token) = value.split_once(' ')?;
    scheme.eq_ignore_ascii_case("bearer").then(|| token.trim())
}

/// Who sent `presented`: the operator token, or a live personal access token. A service API key is
/// refused (403) with a message naming the one route that takes it; anything else is 401.
pub async fn caller_for(st: &AppState, presented: Option<&str>) -> Result<Caller, ApiError> {
    let Some(token) = presented.filter(|t| !t.is_empty()) else {
        return Err(ApiError::Unauthorized(
            "send the operator API token or a personal access token (consentry users token create) as `Authorization: Bearer <token>`".into(),
        ));
    };
    if st.operator_token.matches(token) {
        return Ok(Caller::platform("api"));
    }
    if let Some((account, _)) = st.console.accounts.authenticate_token(token).await? {
        return Ok(account.caller("api"));
    }
    let is_service_key = consentry_domain::ApiKeys::new(st.svc.clone())
        .active(token)
        .await?
        .is_some();
    if is_service_key {
        return Err(ApiError::Domain(DomainError::Forbidden(
            "service API keys are accepted only by the token API (POST /api/v1/tenants/{tenant}/tokens); use a personal access token (consentry users token create) for the rest of the API".into(),
        )));
    }
    Err(ApiError::Unauthorized(
        "the bearer token is not valid, has expired or was revoked".into(),
    ))
}

/// Middleware on every `/api/v1` route but the token API: resolves the [`Caller`] or refuses.
pub async fn require_caller(State(st): State<AppState>, mut req: Request, next: Next) -> Response {
    match caller_for(&st, bearer(req.headers())).await {
        Ok(caller) => {
            req.extensions_mut().insert(caller);
            next.run(req).await
        }
        Err(e) => e.into_response(),
    }
}

/// The caller of an API request, as [`require_caller`] found it.
#[derive(Debug, Clone)]
pub struct ApiCaller(pub Caller);

impl<S: Send + Sync> FromRequestParts<S> for ApiCaller {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, _: &S) -> Result<Self, Self::Rejection> {
        parts
            .extensions
            .get::<Caller>()
            .cloned()
            .map(ApiCaller)
            .ok_or_else(|| ApiError::Unauthorized("this route needs a bearer token".into()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn with(value: &str) -> HeaderMap {
        let mut h = HeaderMap::new();
        h.insert(AUTHORIZATION, value.parse().unwrap());
        h
    }

    #[test]
    fn the_bearer_scheme_is_matched_in_any_case() {
        for v in [
            "Bearer tok-1",
            "bearer tok-1",
            "BEARER tok-1",
            "bEaReR tok-1",
            "bearer   tok-1",
        ] {
            assert_eq!(bearer(&with(v)), Some("tok-1"), "{v:?}");
        }
        for v in ["Basic dG9rLTE=", "Bearertok-1", "tok-1", "Bearer-x tok-1"] {
            assert_eq!(bearer(&with(v)), None, "{v:?}");
        }
        assert_eq!(bearer(&HeaderMap::new()), None);
    }
}

//! Operator authentication for the JSON API: a bearer token compared by digest.

use axum::extract::{Request, State};
use axum::http::header::AUTHORIZATION;
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
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

/// Middleware: requires `Authorization: Bearer <operator token>`.
pub async fn require_operator(State(st): State<AppState>, req: Request, next: Next) -> Response {
    let presented = req
        .headers()
        .get(AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.strip_prefix("Bearer "));
    match presented {
        Some(t) if st.operator_token.matches(t.trim()) => next.run(req).await,
        Some(_) => ApiError::Unauthorized("the bearer token is not valid".into()).into_response(),
        None => ApiError::Unauthorized(
            "send the operator API token as `Authorization: Bearer <token>` (its file is printed by `consentry serve` at start)".into(),
        )
        .into_response(),
    }
}

//! The Viva Engage (Yammer) REST API subset Consentry uses (entra-facts §10):
//! `GET {base}/yammer/api/v1/users/current.json`, the signed-in user with its `verified_admin` flag.
//!
//! It takes an Entra access token issued for the resource `https://api.yammer.com` with the
//! delegated scope `user_impersonation`. Microsoft Graph tokens and app-only tokens are refused
//! with 401. UNVERIFIED: the exact status and body Viva Engage answers for a token of another
//! audience or without the scope (401 is expected; the body here is illustrative).

use axum::extract::State;
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use jsonwebtoken::{Algorithm, Validation};
use serde_json::{Value, json};
use uuid::Uuid;

use crate::ctx::Ctx;
use crate::wellknown::{YAMMER_APP_ID, YAMMER_RESOURCE, YAMMER_SCOPE};

/// Role template ID of Yammer Administrator (Engage Administrator).
const ROLE_YAMMER_ADMIN: &str = "810a2642-a034-447f-a5e8-41beaa378541";

fn unauthorized(message: &str) -> Response {
    (
        StatusCode::UNAUTHORIZED,
        axum::Json(json!({"error": {"code": "Unauthorized", "message": message}})),
    )
        .into_response()
}

/// A stable positive number standing for a Yammer ID (Viva Engage IDs are integers).
fn numeric_id(id: Uuid) -> u64 {
    let b = id.as_bytes();
    u64::from_be_bytes([b[8], b[9], b[10], b[11], b[12], b[13], b[14], b[15]]) >> 12
}

/// `GET /yammer/api/v1/users/current.json`.
pub(crate) async fn current_user(State(ctx): State<Ctx>, headers: HeaderMap) -> Response {
    let Some(token) = headers
        .get("authorization")
        .and_then(|v| v.to_str().ok())
        .and_then(|v| {
            v.strip_prefix("Bearer ")
                .or_else(|| v.strip_prefix("bearer "))
        })
        .map(str::trim)
        .filter(|t| !t.is_empty())
    else {
        return unauthorized("Authentication failure: no bearer token.");
    };
    let mut validation = Validation::new(Algorithm::RS256);
    validation.validate_exp = false;
    validation.validate_nbf = false;
    validation.validate_aud = false;
    validation.required_spec_claims.clear();
    let Ok(data) = jsonwebtoken::decode::<Value>(token, &ctx.key.decoding, &validation) else {
        return unauthorized("Authentication failure: the token is not valid.");
    };
    let claims = data.claims;
    let aud = claims
        .get("aud")
        .and_then(Value::as_str)
        .unwrap_or_default();
    if !(aud.trim_end_matches('/') == YAMMER_RESOURCE || aud == YAMMER_APP_ID) {
        // A Microsoft Graph token, for example.
        return unauthorized("Authentication failure: the token was not issued for Viva Engage.");
    }
    let st = ctx.lock();
    let now = st.now().unix_timestamp();
    let exp = claims.get("exp").and_then(Value::as_i64).unwrap_or(0);
    let nbf = claims.get("nbf").and_then(Value::as_i64).unwrap_or(0);
    if now >= exp || now + 300 < nbf {
        return unauthorized("Authentication failure: the token has expired.");
    }
    let scoped = claims
        .get("scp")
        .and_then(Value::as_str)
        .unwrap_or_default()
        .split_whitespace()
        .any(|s| s == YAMMER_SCOPE);
    if !scoped {
        return unauthorized(
            "Authentication failure: the token carries no user_impersonation scope.",
        );
    }
    let tenant = claims
        .get("tid")
        .and_then(Value::as_str)
        .and_then(|t| st.tenant_idx(t));
    let user = claims
        .get("oid")
        .and_then(Value::as_str)
        .and_then(|s| Uuid::parse_str(s).ok());
    let (Some(t), Some(user)) = (tenant, user) else {
        return unauthorized("Authentication failure: the token names no user.");
    };
    let Some(u) = st.user(t, user).filter(|u| !u.deleted && u.enabled) else {
        return unauthorized("Authentication failure: the user is not active.");
    };
    let tenant = &st.tenants[t];
    let network = tenant
        .domains
        .first()
        .cloned()
        .unwrap_or_else(|| tenant.id.to_string());
    let is_admin = u
        .roles
        .iter()
        .any(|r| r == crate::wellknown::ROLE_GLOBAL_ADMIN || r == ROLE_YAMMER_ADMIN);
    // Viva Engage renders its flags as the strings "true"/"false" (entra-facts §10).
    let flag = |b: bool| if b { "true" } else { "false" };
    let body = json!({
        "type": "user",
        "id": numeric_id(u.id),
        "network_id": numeric_id(tenant.id),
        "network_name": network,
        "state": "active",
        "email": u.upn,
        "name": u.upn.split('@').next().unwrap_or_default(),
        "full_name": u.display_name,
        "job_title": u.job_title.clone().unwrap_or_default(),
        "admin": flag(is_admin),
        "verified_admin": flag(u.viva_engage_verified_admin),
        "supervisor_admin": "false",
        "can_broadcast": flag(u.viva_engage_verified_admin),
    });
    axum::Json(body).into_response()
}

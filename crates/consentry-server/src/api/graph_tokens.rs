//! The token API's HTTP side: `POST /api/v1/tenants/{tenant}/tokens` with `{"app_type"}` or
//! `{"profile_id"}` and a service API key as `Authorization: Bearer csk_…` answers a Microsoft Graph
//! access token of the tenant's app profile and its expiry. What it does — key resolution and
//! authorization, the token cache with single flight, the lookup cache, the audit windows, a
//! definitive refusal recorded through a check — is the domain's [`GraphTokens`]; this handler reads
//! the header and body, answers JSON with `Cache-Control: no-store`, and maps
//! [`TokenError`](consentry_domain::TokenError) in `error.rs`.

use axum::Json;
use axum::extract::State;
use consentry_domain::{GraphTokenRequest, GraphTokens, IssuedToken, ProfileId};
use secrecy::ExposeSecret;
use serde::{Deserialize, Serialize};
use time::OffsetDateTime;

use crate::AppState;
use crate::error::ApiError;

/// Body of the token request: one of the two.
#[derive(Debug, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct TokenRequest {
    /// The app type whose profile in the tenant to use.
    app_type: Option<String>,
    /// The profile to use.
    profile_id: Option<String>,
}

impl From<TokenRequest> for GraphTokenRequest {
    fn from(r: TokenRequest) -> Self {
        Self {
            app_type: r.app_type,
            profile_id: r.profile_id,
        }
    }
}

/// The issued token.
#[derive(Serialize, utoipa::ToSchema)]
pub struct TokenBody<'a> {
    /// The Graph access token.
    access_token: &'a str,
    /// `Bearer`.
    token_type: &'static str,
    /// When it expires.
    #[serde(with = "time::serde::rfc3339")]
    expires_at: OffsetDateTime,
    /// The profile it belongs to.
    profile_id: ProfileId,
    /// Whether it came from the cache.
    cached: bool,
    /// Required permissions of the app type (in the catalog in use) that the profile's consent lacks:
    /// during a permission rollout the token works without them, and Graph answers 403 to what needs
    /// them until the tenant's administrator consents again. Empty when the consent covers the catalog.
    missing_permissions: &'a [String],
    /// Optional permissions of the app type that the consent lacks.
    missing_optional_permissions: &'a [String],
}

impl<'a> From<&'a IssuedToken> for TokenBody<'a> {
    fn from(t: &'a IssuedToken) -> Self {
        Self {
            access_token: t.access_token.expose_secret(),
            token_type: "Bearer",
            expires_at: t.expires_at,
            profile_id: t.profile_id,
            cached: t.cached,
            missing_permissions: &t.missing_permissions,
            missing_optional_permissions: &t.missing_optional_permissions,
        }
    }
}

impl std::fmt::Debug for TokenBody<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TokenBody")
            .field("expires_at", &self.expires_at)
            .field("profile_id", &self.profile_id)
            .finish_non_exhaustive()
    }
}

/// Issues a Graph access token of a tenant's app profile to a service holding an API key.
#[utoipa::path(
    post,
    operation_id = "issueGraphToken",
    path = "/api/v1/tenants/{tenant}/tokens",
    tag = "tokens",
    params(("tenant" = String, Path, description = "The tenant: its Entra tenant ID (GUID) or its primary domain")),
    request_body = TokenRequest,
    security(("service_key" = [])),
    responses(
        (status = OK, description = "A Microsoft Graph access token of the tenant's app profile (`Cache-Control: no-store`, like every answer of this route)", body = TokenBody<'_>),
        (status = BAD_REQUEST, description = "The body names neither `app_type` nor `profile_id`, or is not JSON (`bad_request`)", body = crate::api::openapi::ErrorResponse),
        (status = UNAUTHORIZED, description = "No, a wrong or a revoked service API key (`unauthorized`)", body = crate::api::openapi::ErrorResponse),
        (status = NOT_FOUND, description = "No such tenant or profile for the key's organization (`not_found`)", body = crate::api::openapi::ErrorResponse),
        (status = CONFLICT, description = "The app profile cannot serve: `reason` says why and what to do (`profile_invalid`)", body = crate::api::openapi::ErrorResponse),
        (status = SERVICE_UNAVAILABLE, description = "Microsoft did not answer in time; nothing changed (`identity_platform_unavailable`)", body = crate::api::openapi::ErrorResponse),
    )
)]
pub async fn issue(
    State(st): State<AppState>,
    tenant: Result<axum::extract::Path<String>, axum::extract::rejection::PathRejection>,
    ServiceKey(key): ServiceKey,
    body: Result<Json<TokenRequest>, axum::extract::rejection::JsonRejection>,
) -> TokenAnswer {
    let tenant = match tenant {
        Ok(axum::extract::Path(t)) => t,
        Err(e) => {
            return TokenAnswer {
                tenant: String::new(),
                issued: Err(ApiError::BadRequest {
                    message: format!("the tenant in the path: {}", e.body_text()),
                    field: None,
                }),
            };
        }
    };
    let request = body
        .map(|Json(r)| GraphTokenRequest::from(r))
        .map_err(|e| e.body_text());
    let tokens: &GraphTokens = &st.graph_tokens;
    let issued = tokens
        .issue(key.as_deref(), &tenant, request)
        .await
        .map_err(ApiError::from);
    TokenAnswer { tenant, issued }
}

/// The service API key of a token request: the bearer token of its `Authorization` header, read
/// without copying the request's other headers.
pub struct ServiceKey(Option<String>);

impl std::fmt::Debug for ServiceKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        // The key is a secret: only whether one was sent.
        let shown = if self.0.is_some() {
            "[redacted]"
        } else {
            "none"
        };
        f.debug_tuple("ServiceKey").field(&shown).finish()
    }
}

impl<S: Sync> axum::extract::FromRequestParts<S> for ServiceKey {
    type Rejection = std::convert::Infallible;

    async fn from_request_parts(
        parts: &mut axum::http::request::Parts,
        _: &S,
    ) -> Result<Self, Self::Rejection> {
        Ok(Self(crate::auth::bearer(&parts.headers).map(str::to_owned)))
    }
}

/// The token route's answer, refusals included: JSON. The route's stack adds `no-store` and the
/// headers every answer carries (`router.rs`).
#[derive(Debug)]
pub struct TokenAnswer {
    /// The tenant as the path named it (for the log line of a failure).
    tenant: String,
    issued: Result<IssuedToken, ApiError>,
}

impl axum::response::IntoResponse for TokenAnswer {
    fn into_response(self) -> axum::response::Response {
        match self.issued {
            Ok(t) => match token_json(&t) {
                Ok(buf) => (
                    [(
                        axum::http::header::CONTENT_TYPE,
                        axum::http::HeaderValue::from_static("application/json"),
                    )],
                    buf,
                )
                    .into_response(),
                Err(e) => {
                    ApiError::Internal(format!("encoding the token answer: {e}")).into_response()
                }
            },
            Err(e) => {
                // The route's request span is at DEBUG (`router.rs`): a failure the error logs (a
                // 5xx) is logged inside one at INFO, as on every other route.
                let _span = tracing::info_span!(
                    "request",
                    http.method = "POST",
                    http.path = %format_args!("/api/v1/tenants/{}/tokens", self.tenant)
                )
                .entered();
                e.into_response()
            }
        }
    }
}

/// The JSON of a [`TokenBody`], in one buffer of its size (the token is most of it). A token made only
/// of base64url characters and dots (a compact JWS, which is what Microsoft issues) needs no
/// escaping, so it is copied as it is instead of going through serde's escaping, byte by byte; any
/// other token is written by serde. The other fields are serde's.
fn token_json(t: &IssuedToken) -> serde_json::Result<Vec<u8>> {
    let body = TokenBody::from(t);
    let token = body.access_token;
    let mut buf = Vec::with_capacity(token.len() + 512);
    if !is_compact_jws(token) {
        serde_json::to_writer(&mut buf, &body)?;
        return Ok(buf);
    }
    // `{"access_token":"…",` then the rest of the object as serde writes it without the token.
    buf.extend_from_slice(b"{\"access_token\":\"");
    buf.extend_from_slice(token.as_bytes());
    buf.extend_from_slice(b"\",");
    let start = buf.len();
    serde_json::to_writer(
        &mut buf,
        &TokenBody {
            access_token: "",
            ..body
        },
    )?;
    // serde wrote `{"access_token":"",…}`: keep what follows its first field (should serde ever write
    // the fields otherwise, the whole body is serde's).
    const EMPTY: &[u8] = b"{\"access_token\":\"\",";
    if !buf[start..].starts_with(EMPTY) {
        buf.clear();
        serde_json::to_writer(&mut buf, &body)?;
        return Ok(buf);
    }
    buf.drain(start..start + EMPTY.len());
    Ok(buf)
}

/// Whether `s` is made only of base64url characters and dots: a JSON string needs no escape for it.
/// Branch-free over the bytes, so the compiler checks many at once.
fn is_compact_jws(s: &str) -> bool {
    s.bytes().fold(true, |ok, b| {
        ok & (b.is_ascii_alphanumeric() | (b == b'-') | (b == b'_') | (b == b'.'))
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn issued(token: &str, missing: &[&str]) -> IssuedToken {
        IssuedToken {
            access_token: std::sync::Arc::new(secrecy::SecretString::from(token.to_string())),
            expires_at: time::macros::datetime!(2030-01-02 03:04:05 UTC),
            profile_id: ProfileId::new_random(),
            cached: true,
            missing_permissions: missing.iter().map(|s| (*s).to_string()).collect(),
            missing_optional_permissions: vec!["Sites.Read.All".into()],
        }
    }

    /// The answer is exactly serde's JSON of the documented body, whether the token is copied as it
    /// is (a compact JWS) or escaped by serde (anything else).
    #[test]
    fn the_answer_is_serdes_json_of_the_body_for_any_token() {
        for token in [
            "eyJ0eXAiOiJKV1QifQ.eyJhdWQiOiJodHRwczovL2dyYXBoIn0.c2ln-_Az09",
            "",
            "not \"a\" jws\\ \u{1}",
            "a.b/c+d=",
        ] {
            let t = issued(token, &["Files.Read.All", "Mail \"quoted\""]);
            let want = serde_json::to_vec(&TokenBody::from(&t)).unwrap();
            let got = token_json(&t).unwrap();
            assert_eq!(
                String::from_utf8(got.clone()).unwrap(),
                String::from_utf8(want).unwrap()
            );
            let v: serde_json::Value = serde_json::from_slice(&got).unwrap();
            assert_eq!(v["access_token"], token);
        }
    }

    #[test]
    fn a_service_key_is_not_shown_by_debug() {
        let shown = format!("{:?}", ServiceKey(Some("csk_secret".into())));
        assert!(!shown.contains("csk_secret"), "{shown}");
        assert_eq!(format!("{:?}", ServiceKey(None)), "ServiceKey(\"none\")");
    }

    #[test]
    fn only_base64url_and_dots_skip_escaping() {
        assert!(is_compact_jws("abcXYZ019-_."));
        for c in ['"', '\\', '/', '+', '=', ' ', '\u{7f}', 'é', '\n'] {
            assert!(!is_compact_jws(&format!("ab{c}cd")), "{c:?}");
        }
    }
}

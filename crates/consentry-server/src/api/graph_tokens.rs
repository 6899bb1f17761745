//! The token API's HTTP side: `POST /api/v1/tenants/{tenant}/tokens` with `{"app_type"}` or
//! `{"profile_id"}` and a service API key as `Authorization: Bearer csk_…` answers a Microsoft Graph
//! access token of the tenant's app profile and its expiry. What it does — key resolution and
//! authorization, the token cache with single flight, the lookup cache, the audit windows, a
//! definitive refusal recorded through a check — is the domain's [`GraphTokens`]; this handler reads
//! the header and body, answers JSON with `Cache-Control: no-store`, and maps
//! [`TokenError`](consentry_domain::TokenError) in `error.rs`.

use axum::Json;
use axum::extract::State;
use axum::http::HeaderMap;
use consentry_domain::{GraphTokenRequest, GraphTokens, ProfileId};
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
    /// Required permissions of the app type (in the catalog in use) that the profile's consent lacks:
    /// during a permission rollout the token works without them, and Graph answers 403 to what needs
    /// them until the tenant's administrator consents again. Empty when the consent covers the catalog.
    missing_permissions: Vec<String>,
    /// Optional permissions of the app type that the consent lacks.
    missing_optional_permissions: Vec<String>,
}

impl std::fmt::Debug for TokenBody {
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
        (status = OK, description = "A Microsoft Graph access token of the tenant's app profile (`Cache-Control: no-store`, like every answer of this route)", body = TokenBody),
        (status = BAD_REQUEST, description = "The body names neither `app_type` nor `profile_id`, or is not JSON (`bad_request`)", body = crate::api::openapi::ErrorResponse),
        (status = UNAUTHORIZED, description = "No, a wrong or a revoked service API key (`unauthorized`)", body = crate::api::openapi::ErrorResponse),
        (status = NOT_FOUND, description = "No such tenant or profile for the key's organization (`not_found`)", body = crate::api::openapi::ErrorResponse),
        (status = CONFLICT, description = "The app profile cannot serve: `reason` says why and what to do (`profile_invalid`)", body = crate::api::openapi::ErrorResponse),
        (status = SERVICE_UNAVAILABLE, description = "Microsoft did not answer in time; nothing changed (`identity_platform_unavailable`)", body = crate::api::openapi::ErrorResponse),
    )
)]
pub async fn issue(
    State(st): State<AppState>,
    headers: HeaderMap,
    axum::extract::Path(tenant): axum::extract::Path<String>,
    body: Result<Json<TokenRequest>, axum::extract::rejection::JsonRejection>,
) -> crate::security::NoStore<Result<Json<TokenBody>, ApiError>> {
    let request = body
        .map(|Json(r)| GraphTokenRequest::from(r))
        .map_err(|e| e.body_text());
    let tokens: &GraphTokens = &st.graph_tokens;
    let issued = tokens
        .issue(crate::auth::bearer(&headers), &tenant, request)
        .await
        .map(|t| {
            Json(TokenBody {
                access_token: t.access_token.expose_secret().to_string(),
                token_type: "Bearer",
                expires_at: t.expires_at,
                profile_id: t.profile_id,
                cached: t.cached,
                missing_permissions: t.missing_permissions,
                missing_optional_permissions: t.missing_optional_permissions,
            })
        })
        .map_err(ApiError::from);
    // Every answer of the token endpoint, refusals included, is not to be stored (RFC 6749 §5.1).
    crate::security::NoStore(issued)
}

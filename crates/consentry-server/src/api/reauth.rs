//! `POST /api/v1/profiles/{id}/reauthorize` (start) and `.../reauthorize/cancel`.

use axum::extract::State;
use base64::Engine;
use consentry_catalog::ConsentMethod;
use consentry_domain::{Action, CustomAppInput, ProfileView, StartRequest};
use secrecy::SecretString;
use serde::{Deserialize, Serialize};

use super::{ApiJson, ApiPath, visible_profile};
use crate::AppState;
use crate::auth::ApiCaller;
use crate::error::{ApiError, ApiResult};

/// Body of the start call.
#[derive(Deserialize, utoipa::ToSchema)]
#[schema(as = ReauthorizeRequest)]
#[serde(deny_unknown_fields)]
pub struct StartBody {
    /// `admin` or `user`.
    method: ConsentMethod,
    /// Custom apps: the application (client) ID.
    application_id: Option<String>,
    /// Custom apps: the .pfx file, base64.
    certificate_pfx_base64: Option<String>,
    /// Custom apps: the .pfx password.
    #[schema(value_type = Option<String>)]
    certificate_password: Option<SecretString>,
    /// Functions to enable (Cloud Backup delegated app).
    #[serde(default)]
    functions: Vec<String>,
    /// What the profile will scan (catalog scan target keys; Power Platform app types).
    #[serde(default)]
    scan_targets: Vec<String>,
    /// Pre-fills the sign-in page.
    login_hint: Option<String>,
    /// Return a consent link for the tenant's administrator instead of the Microsoft URL.
    #[serde(default)]
    handoff: bool,
}

impl std::fmt::Debug for StartBody {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("StartBody")
            .field("method", &self.method)
            .field("application_id", &self.application_id)
            .field("functions", &self.functions)
            .field("scan_targets", &self.scan_targets)
            .finish_non_exhaustive()
    }
}

/// Answer of the start call.
#[derive(Debug, Serialize, utoipa::ToSchema)]
#[schema(as = ReauthorizeStarted)]
pub struct StartedBody {
    /// Where to send the administrator.
    url: String,
    /// Until when the link works.
    #[serde(with = "time::serde::rfc3339")]
    expires_at: time::OffsetDateTime,
    /// Whether `url` is a consent link to send to the tenant's administrator.
    consent_link: bool,
    /// The profile, now pending.
    profile: ProfileView,
}

/// Starts a re-authorization.
#[utoipa::path(
    post,
    operation_id = "startReauthorization",
    path = "/api/v1/profiles/{id}/reauthorize",
    tag = "profiles",
    params(("id" = consentry_domain::ProfileId, Path, description = "The app profile's ID")),
    request_body = StartBody,
    responses(
        (status = OK, description = "Where to send the administrator; the profile is pending until the consent completes, is cancelled or expires", body = StartedBody),
        (status = CONFLICT, description = "A re-authorization is pending already, or the method is not allowed for the app type (`conflict`)", body = crate::api::openapi::ErrorResponse),
        (status = UNPROCESSABLE_ENTITY, description = "A function, scan target or certificate is not acceptable (`invalid`)", body = crate::api::openapi::ErrorResponse),
    )
)]
pub async fn start(
    State(st): State<AppState>,
    ApiCaller(c): ApiCaller,
    ApiPath(id): ApiPath<String>,
    ApiJson(b): ApiJson<StartBody>,
) -> ApiResult<ApiJson<StartedBody>> {
    let id = visible_profile(&st, &c, &id, Action::Reauthorize).await?.id;
    let custom_app = match (b.application_id, b.certificate_pfx_base64) {
        (None, None) => None,
        (application_id, pfx) => {
            let pfx = pfx.ok_or_else(|| ApiError::BadRequest {
                field: Some("certificate_pfx_base64".into()),
                message: "a custom app needs its certificate file (.pfx), base64-encoded".into(),
            })?;
            let pfx = base64::engine::general_purpose::STANDARD
                .decode(pfx.trim())
                .map_err(|_| ApiError::BadRequest {
                    field: Some("certificate_pfx_base64".into()),
                    message: "certificate_pfx_base64 is not valid base64".into(),
                })?;
            Some(CustomAppInput {
                application_id: application_id.unwrap_or_default(),
                pfx,
                password: b
                    .certificate_password
                    .unwrap_or_else(|| SecretString::from(String::new())),
            })
        }
    };
    let started = st
        .reauth
        .start_unbound(
            id,
            StartRequest {
                method: b.method,
                custom_app,
                functions: b.functions,
                scan_targets: b.scan_targets,
                login_hint: b.login_hint,
                handoff: b.handoff,
            },
            &c.actor,
        )
        .await?;
    Ok(ApiJson(StartedBody {
        url: started.url,
        expires_at: started.expires_at,
        consent_link: started.consent_link,
        profile: ProfileView::new(started.profile, st.svc.catalog()),
    }))
}

/// Cancels a pending re-authorization; the profile returns to its previous status.
#[utoipa::path(
    post,
    operation_id = "cancelReauthorization",
    path = "/api/v1/profiles/{id}/reauthorize/cancel",
    tag = "profiles",
    params(("id" = consentry_domain::ProfileId, Path, description = "The app profile's ID")),
    responses(
        (status = OK, description = "The profile, back at its previous status", body = ProfileView),
        (status = CONFLICT, description = "No re-authorization is pending (`conflict`)", body = crate::api::openapi::ErrorResponse),
    )
)]
pub async fn cancel(
    State(st): State<AppState>,
    ApiCaller(c): ApiCaller,
    ApiPath(id): ApiPath<String>,
) -> ApiResult<ApiJson<ProfileView>> {
    let id = visible_profile(&st, &c, &id, Action::Reauthorize).await?.id;
    let p = st.reauth.cancel(id, &c.actor).await?;
    Ok(ApiJson(ProfileView::new(p, st.svc.catalog())))
}

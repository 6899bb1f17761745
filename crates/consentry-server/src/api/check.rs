//! `POST /api/v1/profiles/{id}/check`: checks a profile now, through the same [`Checker`] as the
//! monitor's schedule.
//!
//! [`Checker`]: consentry_domain::Checker

use axum::extract::State;
use consentry_domain::{Action, CheckOutcome, CheckTrigger, ProfileStatus, ProfileView};
use serde::Serialize;

use super::{ApiJson, ApiPath, visible_profile};
use crate::AppState;
use crate::auth::ApiCaller;
use crate::error::ApiResult;

/// The answer of a check.
#[derive(Debug, Serialize, utoipa::ToSchema)]
#[schema(as = CheckResult)]
pub struct CheckBody {
    /// `valid`, `attention`, `invalid`, `skipped` or `transient_failure`.
    outcome: &'static str,
    /// The profile's status after the check.
    status: ProfileStatus,
    /// Its status before.
    previous_status: ProfileStatus,
    /// Whether the status (or its reason) changed; a history event was written then.
    changed: bool,
    /// Why the profile was not checked, or the transient error that persisted.
    #[serde(skip_serializing_if = "Option::is_none")]
    message: Option<String>,
    /// Check attempts made (transient failures only).
    #[serde(skip_serializing_if = "Option::is_none")]
    attempts: Option<u32>,
    /// The refresh token had not been used for long; this check used it and so kept it alive.
    refresh_token_kept_alive: bool,
    /// The profile after the check, with its reason and remediation in words.
    profile: ProfileView,
}

/// Checks one profile now.
#[utoipa::path(
    post,
    operation_id = "checkProfile",
    path = "/api/v1/profiles/{id}/check",
    tag = "profiles",
    params(("id" = consentry_domain::ProfileId, Path, description = "The app profile's ID")),
    responses(
        (status = OK, description = "The check's outcome and the profile after it", body = CheckBody),
    )
)]
pub async fn check_profile(
    State(st): State<AppState>,
    ApiCaller(c): ApiCaller,
    ApiPath(id): ApiPath<String>,
) -> ApiResult<ApiJson<CheckBody>> {
    let id = visible_profile(&st, &c, &id, Action::Check).await?.id;
    let outcome = st
        .checker
        .check(id, CheckTrigger::Manual(c.actor.to_string()))
        .await?;
    let label = outcome.label();
    let body = match outcome {
        CheckOutcome::Checked {
            profile,
            previous_status,
            changed,
            refresh_token_kept_alive,
            credentials,
            ..
        } => CheckBody {
            outcome: label,
            status: profile.status,
            previous_status,
            changed,
            // A pending profile: the outcome is its credentials', the status stays pending.
            message: credentials.map(|c| {
                format!(
                    "a re-authorization is in progress; the credentials still in use until it completes are {}{}",
                    c.status.as_str(),
                    c.reason
                        .map(|r| format!(": {}", r.summary()))
                        .unwrap_or_default()
                )
            }),
            attempts: None,
            refresh_token_kept_alive,
            profile: super::profiles::detailed_view(&st, *profile).await?,
        },
        CheckOutcome::Skipped {
            status, message, ..
        } => CheckBody {
            outcome: label,
            status,
            previous_status: status,
            changed: false,
            message: Some(message),
            attempts: None,
            refresh_token_kept_alive: false,
            profile: super::profiles::detailed_view(&st, st.svc.profile(id).await?).await?,
        },
        CheckOutcome::TransientFailure {
            status,
            attempts,
            message,
            ..
        } => CheckBody {
            outcome: label,
            status,
            previous_status: status,
            changed: false,
            message: Some(message),
            attempts: Some(attempts),
            refresh_token_kept_alive: false,
            profile: super::profiles::detailed_view(&st, st.svc.profile(id).await?).await?,
        },
    };
    Ok(ApiJson(body))
}

//! `GET /oauth/callback`: where Microsoft sends the administrator back. Finishes a re-authorization step
//! and shows the result page (success, or the exact error and what to do), or continues to the next step.

use askama::Template;
use axum::extract::Path;
use axum::extract::{RawQuery, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Redirect, Response};
use consentry_domain::{CallbackOutcome, DomainError, HandoffView, ProfileId};

use crate::AppState;
use crate::console::{ConsoleError, Shown, html};

/// The result page.
#[derive(Template)]
#[template(path = "callback.html")]
struct ResultPage {
    ok: bool,
    title: String,
    message: String,
    steps: Vec<String>,
    app_type: String,
    profile_id: String,
    /// The re-authorization was started in the console (not by opening a consent link): the page
    /// links back to the app profile. Someone who opened a consent link may have no account, so
    /// the page tells them they are done instead of sending them to a sign-in page.
    console: bool,
}

fn render(page: ResultPage, status: StatusCode) -> Response {
    html(status, &page)
}

/// A failed callback or consent link on the result page, shown as the console shows errors
/// ([`ConsoleError::shown`]: its status, title and message; an internal failure is logged there
/// once and never shown), with the `steps` to take.
pub(crate) fn failure(e: &ConsoleError, steps: Vec<String>) -> Response {
    let Shown {
        status,
        title,
        message,
    } = e.shown();
    render(
        ResultPage {
            ok: false,
            title: title.into(),
            message,
            steps,
            app_type: String::new(),
            profile_id: String::new(),
            console: false,
        },
        status,
    )
}

/// What to do after a callback that cannot be used.
fn start_again() -> Vec<String> {
    vec!["Open the app profile and click Re-authorize to start again.".into()]
}

// The query parser is pure and fuzzed: it lives in `consentry-protocol` (no server in the fuzz
// build's dependency tree); its paths here stay as they were.
pub use consentry_protocol::callback::{
    CallbackQueryError, MAX_CALLBACK_QUERY, parse_callback_query,
};

/// Handles Microsoft's redirect.
pub async fn oauth_callback(
    State(st): State<AppState>,
    headers: axum::http::HeaderMap,
    RawQuery(query): RawQuery,
) -> Response {
    let params = match parse_callback_query(query.as_deref().unwrap_or_default()) {
        Ok(p) => p,
        Err(e) => {
            return failure(
                &ConsoleError::Link(format!("{e}: start the re-authorization again.")),
                start_again(),
            );
        }
    };
    let catalog = st.svc.catalog();
    let name = |key: &str| {
        catalog
            .app_type(key)
            .map(|a| a.display_name.clone())
            .unwrap_or_else(|| key.to_string())
    };
    let binding = crate::security::binding_of(&headers);
    let console = !crate::security::bound_via_link(&headers);
    let outcome = st.reauth.callback(params, binding).await;
    // A consent of a campaign's pass: the browser goes on to the pass's next app (or its summary).
    if let (
        Some(token),
        Ok(CallbackOutcome::Completed { profile } | CallbackOutcome::Failed { profile, .. }),
    ) = (crate::campaign::pass_of(&headers), &outcome)
        && st.campaigns.step_finished(token, profile.id).await
    {
        st.graph_tokens.forget_profile(profile.id);
        return Redirect::to("/campaign/pass/next").into_response();
    }
    match outcome {
        Ok(CallbackOutcome::Continue { url }) => Redirect::to(&url).into_response(),
        Ok(CallbackOutcome::Completed { profile }) => {
            // New consent, maybe new credentials: tokens of the old ones are not served again.
            st.graph_tokens.forget_profile(profile.id);
            render(
                ResultPage {
                    ok: true,
                    title: "App profile re-authorized".into(),
                    message: match &profile.consent_user {
                        Some(u) => format!(
                            "{} is valid again. Consent was given by {}.",
                            name(&profile.app_type),
                            u.upn
                        ),
                        None => format!("{} is valid again.", name(&profile.app_type)),
                    },
                    steps: vec![],
                    app_type: name(&profile.app_type),
                    profile_id: profile.id.to_string(),
                    console,
                },
                StatusCode::OK,
            )
        }
        Ok(CallbackOutcome::Failed {
            profile,
            message,
            remediation,
        }) => render(
            ResultPage {
                ok: false,
                title: "Re-authorization did not complete".into(),
                message: format!("{message} The app profile keeps its previous authorization."),
                steps: remediation,
                app_type: name(&profile.app_type),
                profile_id: profile.id.to_string(),
                console,
            },
            StatusCode::OK,
        ),
        // A state that is unknown, used or expired, a tenant that is not the profile's: the link
        // cannot be used.
        Err(DomainError::Invalid { message, .. }) => {
            failure(&ConsoleError::Link(message), start_again())
        }
        Err(e) => failure(&e.into(), vec![]),
    }
}

/// The consent-link landing page.
#[derive(Template)]
#[template(path = "consent_link.html")]
struct LinkPage {
    v: HandoffView,
    action: String,
    expires: String,
    /// Conditional access preparation, for apps with delegated permissions.
    network_note: Option<String>,
}

fn link_error(message: String) -> Response {
    failure(&ConsoleError::Link(message), ask_for_a_new_link())
}

fn ask_for_a_new_link() -> Vec<String> {
    vec!["Ask the person who sent it for a new consent link.".into()]
}

fn domain_link_error(e: DomainError) -> Response {
    match e {
        DomainError::Invalid { message, .. } => link_error(message),
        // Whether the profile exists is not told to someone holding a wrong link.
        DomainError::NotFound { .. } => link_error("this consent link is not valid".into()),
        e => failure(&e.into(), ask_for_a_new_link()),
    }
}

/// `GET /consent/{profile}/{token}`: shows the app, its permissions, why, and which roles the
/// consenting account needs. Needs no Consentry account: the token is the authorization.
pub async fn consent_link(
    State(st): State<AppState>,
    Path((profile, token)): Path<(String, String)>,
) -> Response {
    let Ok(id) = ProfileId::parse(&profile) else {
        return link_error("this consent link is not valid".into());
    };
    match st.reauth.handoff_view(id, &token).await {
        Ok(v) => {
            let expires = v.expires_at.date().to_string();
            let network_note = v.permissions.iter().any(|p| p.1 == "delegated").then(|| {
                consentry_domain::conditional_access_preparation(
                    &st.checker.policy().outbound_addresses,
                )
            });
            let page = LinkPage {
                action: format!("/consent/{id}/{token}"),
                v,
                expires,
                network_note,
            };
            html(StatusCode::OK, &page)
        }
        Err(e) => domain_link_error(e),
    }
}

/// `POST /consent/{profile}/{token}`: uses the link (once) and continues to Microsoft.
pub async fn consent_link_continue(
    State(st): State<AppState>,
    Path((profile, token)): Path<(String, String)>,
) -> Response {
    let Ok(id) = ProfileId::parse(&profile) else {
        return link_error("this consent link is not valid".into());
    };
    // The sign-in that follows is bound to the browser that opened the link.
    let (binding, cookie) = crate::security::new_binding(st.security.tls, true);
    match st.reauth.continue_handoff(id, &token, Some(&binding)).await {
        Ok(url) => {
            let mut res = Redirect::to(&url).into_response();
            res.headers_mut()
                .append(axum::http::header::SET_COOKIE, cookie);
            res
        }
        Err(e) => domain_link_error(e),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::error::read as page;

    #[tokio::test]
    async fn a_callback_that_fails_inside_consentry_is_a_bare_500_on_the_result_page() {
        let detail = "key must be a string at line 1 column 2";
        let (status, body) = page(failure(
            &DomainError::internal(detail).into(),
            start_again(),
        ))
        .await;
        assert_eq!(status, StatusCode::INTERNAL_SERVER_ERROR);
        assert!(body.contains("id=\"result\""), "{body}");
        assert!(body.contains("Something went wrong"), "{body}");
        assert!(!body.contains(detail), "{body}");
        // The consent link's page too.
        let (status, body) = page(domain_link_error(DomainError::internal(detail))).await;
        assert_eq!(status, StatusCode::INTERNAL_SERVER_ERROR);
        assert!(!body.contains(detail), "{body}");
    }

    #[tokio::test]
    async fn a_conflict_on_the_callback_or_a_consent_link_is_a_409_with_its_message() {
        let message = "consent links are not enabled on this server (public_url is not set)";
        for res in [
            failure(&DomainError::Conflict(message.into()).into(), vec![]),
            domain_link_error(DomainError::Conflict(message.into())),
        ] {
            let (status, body) = page(res).await;
            assert_eq!(status, StatusCode::CONFLICT);
            assert!(body.contains("Not possible right now"), "{body}");
            assert!(body.contains("consent links are not enabled"), "{body}");
        }
    }
}

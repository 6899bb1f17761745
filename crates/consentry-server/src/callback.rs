//! `GET /oauth/callback`: where Microsoft sends the administrator back. Finishes a re-authorization step
//! and shows the result page (success, or the exact error and what to do), or continues to the next step.

use askama::Template;
use axum::extract::Path;
use axum::extract::{RawQuery, State};
use axum::http::StatusCode;
use axum::response::{Html, IntoResponse, Redirect, Response};
use consentry_domain::{CallbackOutcome, DomainError, HandoffView, ProfileId};

use crate::AppState;

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
    match page.render() {
        Ok(html) => (status, Html(html)).into_response(),
        Err(e) => {
            tracing::error!(error.detail = %e, "callback page could not be rendered");
            (StatusCode::INTERNAL_SERVER_ERROR, "internal error").into_response()
        }
    }
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
            return render(
                ResultPage {
                    ok: false,
                    title: "This link cannot be used".into(),
                    message: format!("{e}: start the re-authorization again."),
                    steps: vec![
                        "Open the app profile and click Re-authorize to start again.".into(),
                    ],
                    app_type: String::new(),
                    profile_id: String::new(),
                    console: false,
                },
                StatusCode::BAD_REQUEST,
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
    match st.reauth.callback_bound(params, binding).await {
        Ok(CallbackOutcome::Continue { url }) => Redirect::to(&url).into_response(),
        Ok(CallbackOutcome::Completed { profile }) => {
            // New consent, maybe new credentials: tokens of the old ones are not served again.
            st.tokens.forget_profile(profile.id);
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
        Err(DomainError::Invalid { message, .. }) => render(
            ResultPage {
                ok: false,
                title: "This link cannot be used".into(),
                message,
                steps: vec!["Open the app profile and click Re-authorize to start again.".into()],
                app_type: String::new(),
                profile_id: String::new(),
                console: false,
            },
            StatusCode::BAD_REQUEST,
        ),
        Err(e @ DomainError::NotFound { .. }) => render(
            ResultPage {
                ok: false,
                title: "App profile not found".into(),
                message: e.to_string(),
                steps: vec![],
                app_type: String::new(),
                profile_id: String::new(),
                console: false,
            },
            StatusCode::NOT_FOUND,
        ),
        Err(e @ (DomainError::Conflict(_) | DomainError::Forbidden(_) | DomainError::Store(_))) => {
            tracing::error!(error.detail = %e, "re-authorization callback failed");
            render(
                ResultPage {
                    ok: false,
                    title: "Something went wrong".into(),
                    message: "The re-authorization could not be recorded. It has been logged; please try again.".into(),
                    steps: vec![],
                    app_type: String::new(),
                    profile_id: String::new(),
            console: false,
                },
                StatusCode::INTERNAL_SERVER_ERROR,
            )
        }
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
    render(
        ResultPage {
            ok: false,
            title: "This consent link cannot be used".into(),
            message,
            steps: vec!["Ask the person who sent it for a new consent link.".into()],
            app_type: String::new(),
            profile_id: String::new(),
            console: false,
        },
        StatusCode::BAD_REQUEST,
    )
}

fn domain_link_error(e: DomainError) -> Response {
    match e {
        DomainError::Invalid { message, .. } => link_error(message),
        DomainError::NotFound { .. } => link_error("this consent link is not valid".into()),
        e @ (DomainError::Conflict(_) | DomainError::Forbidden(_) | DomainError::Store(_)) => {
            tracing::error!(error.detail = %e, "consent link failed");
            link_error("the consent link could not be opened; please try again".into())
        }
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
            match page.render() {
                Ok(html) => Html(html).into_response(),
                Err(e) => {
                    tracing::error!(error.detail = %e, "consent link page could not be rendered");
                    (StatusCode::INTERNAL_SERVER_ERROR, "internal error").into_response()
                }
            }
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

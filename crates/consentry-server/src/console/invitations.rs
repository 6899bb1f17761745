//! `GET|POST /console/invitations/{token}`: an invitation link of an organization's first admin
//! (`consentry orgs invite`). The page needs no account (the token is the authorization); its form
//! chooses a user name and password, creates an organization-admin account and signs it in. Used
//! or expired links answer a clear page. The form carries a per-browser CSRF value (double submit,
//! as the sign-in form).

use askama::Template;
use axum::Form;
use axum::extract::{Path, State};
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::Response;
use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use consentry_domain::DomainError;
use consentry_domain::account::constant_time_eq;
use secrecy::{ExposeSecret as _, SecretString};
use serde::Deserialize;

use super::auth::{set_cookie, signed_in};
use super::error::{ConsoleError, html};
use crate::AppState;

/// The invitation form's double-submit cookie.
const INVITE_COOKIE: &str = "consentry_invite";

#[derive(Template)]
#[template(path = "console/invitation.html")]
struct InvitationPage {
    csrf: String,
    action: String,
    organization: String,
    expires: String,
    username: String,
    error: Option<String>,
}

async fn page(
    st: &AppState,
    token: &str,
    status: StatusCode,
    username: String,
    error: Option<String>,
) -> Result<Response, ConsoleError> {
    let view = st.invitations.view(token).await.map_err(link_error)?;
    let mut raw = [0u8; 24];
    rand::fill(&mut raw[..]);
    let csrf = URL_SAFE_NO_PAD.encode(raw);
    let mut res = html(
        status,
        &InvitationPage {
            csrf: csrf.clone(),
            action: format!("/console/invitations/{token}"),
            organization: view.organization,
            expires: super::pages::when(&view.expires_at),
            username,
            error,
        },
    );
    res.headers_mut().append(
        header::SET_COOKIE,
        set_cookie(st.console.secure_cookies, INVITE_COOKIE, &csrf, Some(3600)),
    );
    Ok(res)
}

/// An unusable link: the domain's reason, on the error page.
fn link_error(e: DomainError) -> ConsoleError {
    match e {
        DomainError::Invalid { message, .. } => ConsoleError::Link(message),
        e => e.into(),
    }
}

/// `GET /console/invitations/{token}`.
pub async fn show(
    State(st): State<AppState>,
    Path(token): Path<String>,
) -> Result<Response, ConsoleError> {
    page(&st, &token, StatusCode::OK, String::new(), None).await
}

/// The invitation form.
#[derive(Deserialize)]
pub struct AcceptForm {
    csrf: String,
    username: String,
    password: SecretString,
    confirm: SecretString,
}

/// `POST /console/invitations/{token}`: creates the account, uses the link up, signs in.
pub async fn accept(
    State(st): State<AppState>,
    Path(token): Path<String>,
    headers: HeaderMap,
    Form(f): Form<AcceptForm>,
) -> Result<Response, ConsoleError> {
    let csrf_ok = crate::security::cookie(&headers, INVITE_COOKIE)
        .is_some_and(|c| constant_time_eq(c, &f.csrf));
    if !csrf_ok {
        return Err(ConsoleError::Csrf);
    }
    let typed: String = f.username.chars().take(64).collect();
    if f.password.expose_secret() != f.confirm.expose_secret() {
        return page(
            &st,
            &token,
            StatusCode::UNPROCESSABLE_ENTITY,
            typed,
            Some("The two passwords differ: type the same password twice.".into()),
        )
        .await;
    }
    let accounts = &st.console.accounts;
    match st
        .invitations
        .accept(accounts, &token, &f.username, &f.password)
        .await
    {
        Ok(account) => {
            let new = accounts
                .sign_in(&account.username, &f.password, None)
                .await?
                .ok_or_else(|| {
                    ConsoleError::from(DomainError::Internal(
                        "the account an invitation created does not sign in".into(),
                    ))
                })?;
            Ok(signed_in(&st, &new.token, "/console", INVITE_COOKIE))
        }
        // A name or password refused (the link stays usable): the form again, saying why.
        Err(DomainError::Invalid { field, message }) if field != "invitation" => {
            page(
                &st,
                &token,
                StatusCode::UNPROCESSABLE_ENTITY,
                typed,
                Some(format!("{field}: {message}")),
            )
            .await
        }
        Err(DomainError::Conflict(message)) => {
            page(&st, &token, StatusCode::CONFLICT, typed, Some(message)).await
        }
        Err(e) => Err(link_error(e)),
    }
}

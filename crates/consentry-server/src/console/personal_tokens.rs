//! The "API tokens" page: the signed-in account's personal access tokens for the JSON API (list,
//! create — shown once —, revoke). Every account may manage its own tokens; a token carries its
//! account's scope and role, so a viewer's token only reads.

use askama::Template;
use axum::Form;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Redirect, Response};
use consentry_domain::account::{DEFAULT_TOKEN_DAYS, MAX_TOKEN_DAYS};
use secrecy::ExposeSecret as _;
use serde::Deserialize;

use super::auth::{CsrfForm, Operator};
use super::error::{ConsoleError, html, sentence};
use super::pages::{Layout, when};
use crate::AppState;

struct TokenRow {
    id: String,
    name: String,
    created: String,
    expires: String,
    last_used: String,
    state: &'static str,
    active: bool,
}

#[derive(Template)]
#[template(path = "console/tokens.html")]
struct TokensPage {
    layout: Layout,
    tokens: Vec<TokenRow>,
    created: Option<String>,
    error: Option<String>,
    max_days: i64,
    default_days: i64,
}

async fn render(
    st: &AppState,
    op: &Operator,
    status: StatusCode,
    created: Option<String>,
    error: Option<String>,
) -> Result<Response, ConsoleError> {
    let layout = Layout::new(st, op).await?;
    let now = st.svc.clock().now();
    let tokens = st
        .console
        .accounts
        .tokens(op.session.account.id)
        .await?
        .into_iter()
        .map(|t| {
            let (state, active) = match t.revoked_at {
                Some(_) => ("Revoked", false),
                None if now >= t.expires_at => ("Expired", false),
                None => ("Active", true),
            };
            TokenRow {
                id: t.id.to_string(),
                name: t.name,
                created: when(&t.created_at),
                expires: when(&t.expires_at),
                last_used: t
                    .last_used_at
                    .as_ref()
                    .map(when)
                    .unwrap_or_else(|| "never".into()),
                state,
                active,
            }
        })
        .collect();
    Ok(html(
        status,
        &TokensPage {
            layout,
            tokens,
            created,
            error,
            max_days: MAX_TOKEN_DAYS,
            default_days: DEFAULT_TOKEN_DAYS,
        },
    ))
}

/// `GET /console/tokens`.
pub async fn page(State(st): State<AppState>, op: Operator) -> Result<Response, ConsoleError> {
    render(&st, &op, StatusCode::OK, None, None).await
}

/// The create form.
#[derive(Debug, Deserialize)]
pub struct CreateForm {
    csrf: Option<String>,
    name: Option<String>,
    days: Option<String>,
}

/// `POST /console/tokens`: creates a token and shows it once.
pub async fn create(
    State(st): State<AppState>,
    op: Operator,
    Form(f): Form<CreateForm>,
) -> Result<Response, ConsoleError> {
    op.check_csrf(f.csrf.as_deref())?;
    let days = match f.days.as_deref().map(str::trim) {
        None | Some("") => DEFAULT_TOKEN_DAYS,
        Some(d) => match d.parse::<i64>() {
            Ok(n) => n,
            Err(_) => {
                let msg = format!("Choose a validity between 1 and {MAX_TOKEN_DAYS} days.");
                return render(&st, &op, StatusCode::UNPROCESSABLE_ENTITY, None, Some(msg)).await;
            }
        },
    };
    let made = st
        .console
        .accounts
        .create_token(
            &op.session.account,
            f.name.as_deref().unwrap_or_default(),
            time::Duration::days(days.clamp(0, MAX_TOKEN_DAYS + 1)),
        )
        .await;
    match made {
        Ok((_, secret)) => {
            let shown = secret.expose_secret().to_string();
            render(&st, &op, StatusCode::CREATED, Some(shown), None).await
        }
        Err(e @ consentry_domain::DomainError::Invalid { .. }) => {
            let msg = sentence(&e.to_string());
            render(&st, &op, StatusCode::UNPROCESSABLE_ENTITY, None, Some(msg)).await
        }
        Err(e) => Err(e.into()),
    }
}

/// `POST /console/tokens/{id}/revoke`: revokes one of the account's own tokens (another account's is
/// "not found").
pub async fn revoke(
    State(st): State<AppState>,
    op: Operator,
    Path(id): Path<String>,
    Form(f): Form<CsrfForm>,
) -> Result<Response, ConsoleError> {
    op.check_csrf(f.csrf.as_deref())?;
    let id = uuid::Uuid::parse_str(&id)
        .map_err(|_| ConsoleError::BadRequest("the token ID is not valid".into()))?;
    st.console
        .accounts
        .revoke_token(op.session.account.id, id)
        .await?;
    let mut res = Redirect::to("/console/tokens").into_response();
    *res.status_mut() = StatusCode::SEE_OTHER;
    Ok(res)
}

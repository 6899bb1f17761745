//! Consent campaign links: `GET /campaign/{token}` (what the tenant's administrator is asked,
//! app by app), `POST /campaign/{token}` (starts the pass: one consent at Microsoft after another,
//! bound to this browser) and `GET /campaign/pass/next` (where the callback sends the browser after
//! each consent: the next app, or the summary of what succeeded and what still needs doing).
//!
//! The link's token is the authorization, as with consent links: no Consentry account is needed.
//! The browser carries the pass in the `consentry_campaign` cookie (the token; HttpOnly,
//! SameSite=Lax so that Microsoft's redirect back carries it, Secure over TLS, one hour).

use askama::Template;
use axum::extract::{Path, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Redirect, Response};
use consentry_domain::{CampaignMemberState, DomainError, LinkView, PassStep};

use crate::AppState;
use crate::console::{ConsoleError, html};

/// The cookie that carries a campaign pass from one consent to the next.
pub const CAMPAIGN_COOKIE: &str = "consentry_campaign";
/// How long a pass's cookie lives.
const CAMPAIGN_MAX_AGE_SECS: i64 = 3600;

/// The `Set-Cookie` header of a pass through the link `token` (base64url, always a valid value).
fn pass_cookie(token: &str, tls: bool) -> HeaderValue {
    let mut c = format!(
        "{CAMPAIGN_COOKIE}={token}; Path=/; HttpOnly; SameSite=Lax; Max-Age={CAMPAIGN_MAX_AGE_SECS}"
    );
    if tls {
        c.push_str("; Secure");
    }
    HeaderValue::from_str(&c).unwrap_or_else(|_| HeaderValue::from_static(""))
}

/// The link token of the pass a browser is in, if any.
pub fn pass_of(headers: &HeaderMap) -> Option<&str> {
    crate::security::cookie(headers, CAMPAIGN_COOKIE).filter(|v| {
        v.len() <= 128
            && v.bytes()
                .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
    })
}

/// The link page, before the pass and as its summary.
#[derive(Template)]
#[template(path = "campaign_link.html")]
struct LinkPage {
    v: LinkView,
    summary: bool,
    action: String,
    expires: String,
    network_note: Option<String>,
}

impl LinkPage {
    fn badge(&self, s: &CampaignMemberState) -> &'static str {
        crate::console::campaigns::class(*s)
    }

    /// A member's state for the person holding the link: whether an invitation went out or the
    /// link was opened is the sender's business; to them it is still to do.
    fn state_label(&self, s: &CampaignMemberState) -> &'static str {
        use CampaignMemberState as S;
        match s {
            S::NotSent | S::Sent | S::Opened => "To do",
            other => other.label(),
        }
    }
}

fn page(st: &AppState, token: &str, v: LinkView, summary: bool) -> Response {
    let network_note = v
        .items
        .iter()
        .any(|i| i.permissions.iter().any(|p| p.1 == "delegated"))
        .then(|| {
            consentry_domain::conditional_access_preparation(
                &st.checker.policy().outbound_addresses,
            )
        });
    html(
        StatusCode::OK,
        &LinkPage {
            expires: v.expires_at.date().to_string(),
            v,
            summary,
            action: format!("/campaign/{token}"),
            network_note,
        },
    )
}

fn link_error(e: DomainError) -> Response {
    let e = match e {
        DomainError::Invalid { message, .. } => ConsoleError::Link(message),
        DomainError::NotFound { .. } => {
            ConsoleError::Link("this campaign link is not valid".into())
        }
        e => e.into(),
    };
    crate::callback::failure(
        &e,
        vec!["Ask the person who sent you the link to send it again.".into()],
    )
}

/// Where a pass goes from a step: to Microsoft (with this browser's binding cookie) or the summary.
fn step(st: &AppState, token: &str, binding_cookie: HeaderValue, s: PassStep) -> Response {
    match s {
        PassStep::Microsoft { url, .. } => {
            let mut res = Redirect::to(&url).into_response();
            res.headers_mut().append(header::SET_COOKIE, binding_cookie);
            res.headers_mut()
                .append(header::SET_COOKIE, pass_cookie(token, st.security.tls));
            res
        }
        PassStep::Summary(v) => page(st, token, v, true),
    }
}

/// `GET /campaign/{token}`.
pub async fn show(State(st): State<AppState>, Path(token): Path<String>) -> Response {
    match st.campaigns.open_link(&token).await {
        Ok(v) => page(&st, &token, v, false),
        Err(e) => link_error(e),
    }
}

/// `POST /campaign/{token}`: starts (or restarts) the pass.
pub async fn start(State(st): State<AppState>, Path(token): Path<String>) -> Response {
    let (binding, cookie) = crate::security::new_binding(st.security.tls, true);
    match st.campaigns.begin_pass(&token, &binding).await {
        Ok(s) => step(&st, &token, cookie, s),
        Err(e) => link_error(e),
    }
}

/// `GET /campaign/pass/next`: the pass's next consent, or its summary.
pub async fn next(State(st): State<AppState>, headers: HeaderMap) -> Response {
    let Some(token) = pass_of(&headers).map(str::to_string) else {
        return link_error(DomainError::invalid(
            "link",
            "this browser is not going through a campaign link (it was started in another browser, or more than an hour ago); open the link from the invitation again",
        ));
    };
    let (binding, cookie) = crate::security::new_binding(st.security.tls, true);
    match st.campaigns.next_step(&token, &binding).await {
        Ok(s) => step(&st, &token, cookie, s),
        Err(e) => link_error(e),
    }
}

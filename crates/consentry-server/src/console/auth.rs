//! Sign-in, sign-out, the signed-in operator extractor, cookies and CSRF checks.

use askama::Template;
use axum::Form;
use axum::extract::{FromRequestParts, OptionalFromRequestParts, Query, State};
use axum::http::request::Parts;
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Redirect, Response};
use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use consentry_domain::account::constant_time_eq;
use consentry_domain::{ActiveSession, ProfileFilter};
use secrecy::{ExposeSecret, SecretString};
use serde::Deserialize;

use super::error::{ConsoleError, html};
use crate::AppState;
use crate::security::cookie;

/// The session cookie: a random token whose hash keys the stored session.
pub const SESSION_COOKIE: &str = "consentry_session";
/// The sign-in form's CSRF cookie (double submit, before any session exists).
pub const LOGIN_COOKIE: &str = "consentry_login";
/// The device cookie: a browser that signed in to an account before is not locked out by a
/// stranger's failures for that account (see `consentry_domain::throttle`).
pub const DEVICE_COOKIE: &str = "consentry_device";

/// The address of the client that sent the request: the connection's peer, or, when the peer is one
/// of the `[network] trusted_proxies`, the client address it forwarded (None when the server was not
/// started with connection info, e.g. in-memory tests). Other peers' forwarding headers are ignored.
#[derive(Debug, Clone, Copy)]
pub struct ClientIp(pub Option<std::net::IpAddr>);

impl FromRequestParts<AppState> for ClientIp {
    type Rejection = std::convert::Infallible;

    async fn from_request_parts(parts: &mut Parts, st: &AppState) -> Result<Self, Self::Rejection> {
        Ok(ClientIp(
            parts
                .extensions
                .get::<axum::extract::ConnectInfo<std::net::SocketAddr>>()
                .map(|c| st.security.client_address(c.0.ip(), &parts.headers)),
        ))
    }
}

/// Records a console sign-in event. A refused entry is logged; the sign-in's outcome stands.
async fn audit_sign_in(
    st: &AppState,
    actor_name: &str,
    org: Option<consentry_domain::OrgId>,
    action: consentry_domain::AuditAction,
    ip: Option<std::net::IpAddr>,
) {
    record_sign_in(
        st,
        actor_name,
        org,
        action,
        serde_json::json!({ "ip": ip.map(|i| i.to_string()) }),
    )
    .await;
}

/// Records a console sign-in event with its `detail`, as `console:{actor_name}` on
/// `account:{actor_name}`.
pub(super) async fn record_sign_in(
    st: &AppState,
    actor_name: &str,
    org: Option<consentry_domain::OrgId>,
    action: consentry_domain::AuditAction,
    detail: serde_json::Value,
) {
    st.svc
        .audit()
        .record(
            &consentry_domain::Actor::Operator(format!("console:{actor_name}")),
            org,
            action,
            format!("account:{actor_name}"),
            detail,
        )
        .await;
}

pub(super) fn set_cookie(
    secure: bool,
    name: &str,
    value: &str,
    max_age: Option<i64>,
) -> HeaderValue {
    let mut c = format!("{name}={value}; Path=/console; HttpOnly; SameSite=Lax");
    if let Some(a) = max_age {
        c.push_str(&format!("; Max-Age={a}"));
    }
    if secure {
        c.push_str("; Secure");
    }
    // Cookie values are base64url or empty: always a valid header value.
    HeaderValue::from_str(&c).unwrap_or_else(|_| HeaderValue::from_static(""))
}

/// The answer to a completed sign-in: to `next`, with the new session's cookie, clearing the
/// form's double-submit cookie `form_cookie`. Also used by an accepted invitation.
pub(super) fn signed_in(
    st: &AppState,
    token: &SecretString,
    next: &str,
    form_cookie: &str,
) -> Response {
    let mut res = Redirect::to(next).into_response();
    *res.status_mut() = StatusCode::SEE_OTHER;
    let max_age = st.console.accounts.policy().absolute.whole_seconds();
    let h = res.headers_mut();
    h.append(
        header::SET_COOKIE,
        set_cookie(
            st.console.secure_cookies,
            SESSION_COOKIE,
            token.expose_secret(),
            Some(max_age),
        ),
    );
    h.append(
        header::SET_COOKIE,
        set_cookie(st.console.secure_cookies, form_cookie, "", Some(0)),
    );
    res
}

/// The signed-in operator of a console request. Rejects with a redirect to the sign-in page.
#[derive(Debug, Clone)]
pub struct Operator {
    /// The session with its account and CSRF token.
    pub session: ActiveSession,
}

impl Operator {
    /// Who this is for authorization ([`consentry_domain::Caller::may`]); history records
    /// `console:username`.
    pub fn caller(&self) -> consentry_domain::Caller {
        self.session.account.caller("console")
    }

    /// The name recorded in history events.
    pub fn actor(&self) -> consentry_domain::Actor {
        self.caller().actor
    }

    /// The profile filter limiting everything to what the account may see.
    pub fn filter(&self) -> ProfileFilter {
        ProfileFilter {
            org_id: self.session.account.scope.org(),
            ..ProfileFilter::default()
        }
    }

    /// Refuses a form whose CSRF token is not this session's.
    pub fn check_csrf(&self, presented: Option<&str>) -> Result<(), ConsoleError> {
        match presented {
            Some(t) if constant_time_eq(t, &self.session.csrf_token) => Ok(()),
            _ => Err(ConsoleError::Csrf),
        }
    }
}

impl FromRequestParts<AppState> for Operator {
    type Rejection = Response;

    async fn from_request_parts(parts: &mut Parts, st: &AppState) -> Result<Self, Self::Rejection> {
        match <Operator as OptionalFromRequestParts<AppState>>::from_request_parts(parts, st).await
        {
            Ok(Some(op)) => Ok(op),
            Ok(None) => {
                // Only GET pages come back after sign-in; a form post starts over from its page.
                let next = if parts.method == axum::http::Method::GET {
                    // Nested under /console: the original URI has the full path.
                    parts
                        .extensions
                        .get::<axum::extract::OriginalUri>()
                        .map(|u| &u.0)
                        .unwrap_or(&parts.uri)
                        .path_and_query()
                        .map(|p| p.as_str().to_string())
                        .unwrap_or_default()
                } else {
                    String::new()
                };
                let to = if next.is_empty() {
                    "/console/login".to_string()
                } else {
                    format!("/console/login?next={}", url_escape(&next))
                };
                Err(Redirect::to(&to).into_response())
            }
            Err(e) => Err(e),
        }
    }
}

impl OptionalFromRequestParts<AppState> for Operator {
    type Rejection = Response;

    async fn from_request_parts(
        parts: &mut Parts,
        st: &AppState,
    ) -> Result<Option<Self>, Self::Rejection> {
        let Some(token) = cookie(&parts.headers, SESSION_COOKIE) else {
            return Ok(None);
        };
        match st.console.accounts.session(token).await {
            Ok(s) => Ok(s.map(|session| Operator { session })),
            Err(e) => Err(ConsoleError::from(e).into_response()),
        }
    }
}

fn url_escape(s: &str) -> String {
    s.bytes()
        .map(|b| match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'_' | b'.' | b'~' | b'/' => {
                (b as char).to_string()
            }
            _ => format!("%{b:02X}"),
        })
        .collect()
}

/// Where to go after sign-in: only console paths, never another site.
pub(super) fn safe_next(next: Option<&str>) -> String {
    match next {
        Some(n)
            if n.starts_with("/console")
                && !n.starts_with("//")
                && !n.contains('\\')
                && !n.chars().any(char::is_control) =>
        {
            n.to_string()
        }
        _ => "/console".to_string(),
    }
}

#[derive(Template)]
#[template(path = "console/login.html")]
struct LoginPage {
    csrf: String,
    next: String,
    error: Option<String>,
    username: String,
    /// "Sign in with Microsoft" is offered.
    microsoft: bool,
}

/// Query of the sign-in page.
#[derive(Debug, Deserialize)]
pub struct LoginQuery {
    pub(super) next: Option<String>,
}

pub(super) fn login_response(
    st: &AppState,
    status: StatusCode,
    next: String,
    error: Option<String>,
    username: String,
) -> Response {
    let mut raw = [0u8; 24];
    rand::fill(&mut raw[..]);
    let csrf = URL_SAFE_NO_PAD.encode(raw);
    let mut res = html(
        status,
        &LoginPage {
            csrf: csrf.clone(),
            next,
            error,
            username,
            microsoft: st
                .console
                .microsoft
                .as_ref()
                .is_some_and(consentry_domain::MicrosoftSignIn::enabled),
        },
    );
    res.headers_mut().append(
        header::SET_COOKIE,
        set_cookie(st.console.secure_cookies, LOGIN_COOKIE, &csrf, Some(3600)),
    );
    res
}

/// `GET /console/login`.
pub async fn login_page(
    State(st): State<AppState>,
    op: Option<Operator>,
    Query(q): Query<LoginQuery>,
) -> Response {
    let next = safe_next(q.next.as_deref());
    if op.is_some() {
        return Redirect::to(&next).into_response();
    }
    login_response(&st, StatusCode::OK, next, None, String::new())
}

/// The sign-in form.
#[derive(Deserialize)]
pub struct LoginForm {
    csrf: String,
    username: String,
    password: SecretString,
    next: Option<String>,
}

impl std::fmt::Debug for LoginForm {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("LoginForm")
            .field("username", &self.username)
            .finish_non_exhaustive()
    }
}

/// The generic answer to a failed sign-in (wrong name, wrong password or locked out alike).
pub const SIGN_IN_FAILED: &str = "The user name or password is not correct.";

/// `POST /console/login`: checks the credentials (throttled per account and client IP, or per
/// device for a browser that signed in to the account before),
/// rotates the session, sets the cookie.
pub async fn login(
    State(st): State<AppState>,
    ClientIp(peer): ClientIp,
    headers: HeaderMap,
    Form(f): Form<LoginForm>,
) -> Response {
    let next = safe_next(f.next.as_deref());
    let csrf_ok = cookie(&headers, LOGIN_COOKIE).is_some_and(|c| constant_time_eq(c, &f.csrf));
    if !csrf_ok {
        return ConsoleError::Csrf.into_response();
    }
    // Without connection info (a router served without it) every client shares one bucket: stricter,
    // never looser.
    let ip = peer.unwrap_or(std::net::IpAddr::from([0, 0, 0, 0]));
    let throttle = &st.console.throttle;
    let attempt = consentry_domain::LoginAttempt {
        account: Some(&f.username),
        client: ip,
        device: cookie(&headers, DEVICE_COOKIE),
    };
    match throttle.check(&attempt).await {
        Ok(Ok(())) => {}
        Ok(Err(wait)) => {
            tracing::warn!(client.ip = %ip, "console sign-in refused: locked out after repeated failures");
            let mut res = login_response(
                &st,
                StatusCode::TOO_MANY_REQUESTS,
                next,
                Some(SIGN_IN_FAILED.into()),
                f.username.chars().take(64).collect(),
            );
            let secs = wait.whole_seconds().max(1);
            if let Ok(v) = HeaderValue::from_str(&secs.to_string()) {
                res.headers_mut().insert(header::RETRY_AFTER, v);
            }
            return res;
        }
        Err(e) => return ConsoleError::from(e).into_response(),
    }
    let previous = cookie(&headers, SESSION_COOKIE);
    match st
        .console
        .accounts
        .sign_in(&f.username, &f.password, previous)
        .await
    {
        Ok(Some(new)) => {
            let device = match throttle
                .success(&attempt, &new.active.account.username)
                .await
            {
                Ok(d) => Some(d),
                Err(e) => {
                    // The sign-in stands; the browser just stays unknown.
                    tracing::error!(error = %e, "the sign-in throttle could not record a success");
                    None
                }
            };
            tracing::info!(operator = %new.active.account.username, "console sign-in");
            let account = &new.active.account;
            audit_sign_in(
                &st,
                &account.username,
                account.scope.org(),
                consentry_domain::AuditAction::SignIn,
                peer,
            )
            .await;
            let mut res = signed_in(&st, &new.token, &next, LOGIN_COOKIE);
            if let Some(d) = device {
                res.headers_mut().append(
                    header::SET_COOKIE,
                    set_cookie(
                        st.console.secure_cookies,
                        DEVICE_COOKIE,
                        d.value(),
                        Some(consentry_domain::throttle::DEVICE_LIFETIME.whole_seconds()),
                    ),
                );
            }
            res
        }
        Ok(None) => {
            match throttle.failure(&attempt).await {
                Ok(Some(_)) => {
                    tracing::warn!(client.ip = %ip, "console sign-in failures: locking out");
                }
                Ok(None) => {}
                Err(e) => return ConsoleError::from(e).into_response(),
            }
            // The name as typed (bounded); the organization when such an account exists.
            let typed: String = f
                .username
                .trim()
                .to_lowercase()
                .chars()
                .filter(|c| !c.is_control())
                .take(64)
                .collect();
            let org = st
                .console
                .accounts
                .find(&typed)
                .await
                .ok()
                .flatten()
                .and_then(|a| a.scope.org());
            audit_sign_in(
                &st,
                &typed,
                org,
                consentry_domain::AuditAction::SignInFailed,
                peer,
            )
            .await;
            login_response(
                &st,
                StatusCode::UNAUTHORIZED,
                next,
                Some(SIGN_IN_FAILED.into()),
                f.username.chars().take(64).collect(),
            )
        }
        Err(e) => ConsoleError::from(e).into_response(),
    }
}

/// A form with only the CSRF token.
#[derive(Debug, Deserialize)]
pub struct CsrfForm {
    /// The session's CSRF token.
    pub csrf: Option<String>,
}

/// `POST /console/logout`: ends the session and clears the cookie.
pub async fn logout(
    State(st): State<AppState>,
    op: Operator,
    headers: HeaderMap,
    Form(f): Form<CsrfForm>,
) -> Result<Response, ConsoleError> {
    op.check_csrf(f.csrf.as_deref())?;
    if let Some(token) = cookie(&headers, SESSION_COOKIE) {
        st.console.accounts.sign_out(token).await?;
        st.svc
            .audit()
            .record(
                &op.actor(),
                op.session.account.scope.org(),
                consentry_domain::AuditAction::SignOut,
                format!("account:{}", op.session.account.username),
                serde_json::json!({}),
            )
            .await;
    }
    let mut res = Redirect::to("/console/login").into_response();
    *res.status_mut() = StatusCode::SEE_OTHER;
    res.headers_mut().append(
        header::SET_COOKIE,
        set_cookie(st.console.secure_cookies, SESSION_COOKIE, "", Some(0)),
    );
    Ok(res)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn next_stays_in_the_console() {
        assert_eq!(
            safe_next(Some("/console/profiles?status=invalid")),
            "/console/profiles?status=invalid"
        );
        assert_eq!(safe_next(Some("https://evil.example/")), "/console");
        assert_eq!(safe_next(Some("//evil.example/console")), "/console");
        assert_eq!(safe_next(Some("/console\\@evil")), "/console");
        assert_eq!(safe_next(None), "/console");
    }

    #[test]
    fn cookies_are_found_by_exact_name() {
        let mut h = HeaderMap::new();
        h.insert(
            header::COOKIE,
            HeaderValue::from_static("a=1; consentry_session_x=2; consentry_session=abc"),
        );
        assert_eq!(cookie(&h, SESSION_COOKIE), Some("abc"));
        assert_eq!(cookie(&h, "b"), None);
    }

    #[test]
    fn cookies_are_http_only_lax_and_secure_on_https() {
        let c = set_cookie(true, SESSION_COOKIE, "t", Some(60));
        let c = c.to_str().unwrap_or_default();
        assert!(c.contains("HttpOnly") && c.contains("SameSite=Lax") && c.contains("Secure"));
        let c = set_cookie(false, SESSION_COOKIE, "t", None);
        assert!(!c.to_str().unwrap_or_default().contains("Secure"));
    }
}

//! "Sign in with Microsoft": `GET /console/sign-in/microsoft` (starts the sign-in, binds it to the
//! browser, redirects to Microsoft) and `GET /console/sign-in/microsoft/callback` (finishes it). The
//! rules are the domain's ([`consentry_domain::MicrosoftSignIn`]); this renders their answers,
//! throttles refused sign-ins per client address and writes the audit entries.

use askama::Template;
use axum::extract::{Query, RawQuery, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Redirect, Response};
use consentry_domain::microsoft_sign_in::{Refusal, SignInRefused, SignInWho};
use consentry_domain::{AuditAction, OrgId, PlatformCause};
use secrecy::ExposeSecret as _;

use super::auth::{
    ClientIp, LoginQuery, SESSION_COOKIE, SIGN_IN_FAILED, login_response, safe_next, set_cookie,
};
use super::error::{ConsoleError, html};
use crate::AppState;
use crate::security::cookie;

/// The cookie binding a Microsoft sign-in to the browser that started it.
pub const BINDING_COOKIE: &str = "consentry_ms_sign_in";
const BINDING_PATH: &str = "/console/sign-in/microsoft";

fn binding_cookie(secure: bool, value: &str, max_age: i64) -> HeaderValue {
    let mut c = format!(
        "{BINDING_COOKIE}={value}; Path={BINDING_PATH}; HttpOnly; SameSite=Lax; Max-Age={max_age}"
    );
    if secure {
        c.push_str("; Secure");
    }
    HeaderValue::from_str(&c).unwrap_or_else(|_| HeaderValue::from_static(""))
}

#[derive(Template)]
#[template(path = "console/microsoft_refused.html")]
struct RefusedPage {
    title: &'static str,
    message: String,
    steps: Vec<String>,
}

/// The throttle's account key of a Microsoft sign-in: the identity when known (the client address
/// always counts too).
fn throttle_key(who: Option<&SignInWho>) -> Option<String> {
    who.map(|w| format!("microsoft:{}:{}", w.tenant, w.object_id))
}

fn attempt(key: Option<&str>, ip: std::net::IpAddr) -> consentry_domain::LoginAttempt<'_> {
    consentry_domain::LoginAttempt {
        account: key,
        client: ip,
        device: None,
    }
}

fn client_ip(peer: Option<std::net::IpAddr>) -> std::net::IpAddr {
    // As for the password form: without connection info every client shares one bucket.
    peer.unwrap_or(std::net::IpAddr::from([0, 0, 0, 0]))
}

/// The 429 answer of a locked-out client: the sign-in page, as for a password.
fn locked_out(st: &AppState, wait: time::Duration, next: String) -> Response {
    let mut res = login_response(
        st,
        StatusCode::TOO_MANY_REQUESTS,
        next,
        Some(SIGN_IN_FAILED.into()),
        String::new(),
    );
    if let Ok(v) = HeaderValue::from_str(&wait.whole_seconds().max(1).to_string()) {
        res.headers_mut().insert(header::RETRY_AFTER, v);
    }
    res
}

/// `GET /console/sign-in/microsoft`.
pub async fn start(
    State(st): State<AppState>,
    ClientIp(peer): ClientIp,
    Query(q): Query<LoginQuery>,
) -> Result<Response, ConsoleError> {
    let next = safe_next(q.next.as_deref());
    let Some(ms) = st.console.microsoft.as_ref().filter(|m| m.enabled()) else {
        return Err(ConsoleError::PageNotFound);
    };
    let ip = client_ip(peer);
    if let Err(wait) = st.console.throttle.check(&attempt(None, ip)).await? {
        return Ok(locked_out(&st, wait, next));
    }
    match ms.start(&next).await? {
        Ok(started) => {
            let mut res = Redirect::to(&started.url).into_response();
            *res.status_mut() = StatusCode::SEE_OTHER;
            res.headers_mut().append(
                header::SET_COOKIE,
                binding_cookie(
                    st.console.secure_cookies,
                    started.browser_binding.expose_secret(),
                    consentry_domain::microsoft_sign_in::ATTEMPT_LIFETIME.whole_seconds(),
                ),
            );
            Ok(res)
        }
        Err(refusal) => Ok(refused_page(&refusal.into())),
    }
}

/// `GET /console/sign-in/microsoft/callback`: Microsoft's redirect.
pub async fn callback(
    State(st): State<AppState>,
    ClientIp(peer): ClientIp,
    headers: HeaderMap,
    RawQuery(query): RawQuery,
) -> Result<Response, ConsoleError> {
    let Some(ms) = st.console.microsoft.as_ref().filter(|m| m.enabled()) else {
        return Err(ConsoleError::PageNotFound);
    };
    let params = crate::callback::parse_callback_query(query.as_deref().unwrap_or_default())
        .map_err(|e| ConsoleError::Link(format!("{e}: sign in again.")))?;
    let ip = client_ip(peer);
    let throttle = &st.console.throttle;
    if let Err(wait) = throttle.check(&attempt(None, ip)).await? {
        return Ok(locked_out(&st, wait, "/console".into()));
    }
    let previous = cookie(&headers, SESSION_COOKIE);
    let outcome = ms
        .finish(&params, cookie(&headers, BINDING_COOKIE), previous)
        .await?;
    let mut res = match outcome {
        Ok(done) => {
            let key = throttle_key(Some(&done.who));
            if let Err(e) = throttle.forget(&attempt(key.as_deref(), ip)).await {
                // The sign-in stands.
                tracing::error!(error = %e, "the sign-in throttle could not record a success");
            }
            let account = &done.session.active.account;
            tracing::info!(operator = %account.username, "console sign-in with Microsoft");
            audit(
                &st,
                &account.username,
                account.scope.org(),
                AuditAction::SignIn,
                Some(&done.who),
                peer,
                None,
            )
            .await;
            let mut res = Redirect::to(&done.next).into_response();
            *res.status_mut() = StatusCode::SEE_OTHER;
            res.headers_mut().append(
                header::SET_COOKIE,
                set_cookie(
                    st.console.secure_cookies,
                    SESSION_COOKIE,
                    done.session.token.expose_secret(),
                    Some(st.console.accounts.policy().absolute.whole_seconds()),
                ),
            );
            res
        }
        Err(refused) => {
            if refused.refusal.counts_as_failure() {
                let key = throttle_key(refused.who.as_ref());
                if throttle
                    .failure(&attempt(key.as_deref(), ip))
                    .await?
                    .is_some()
                {
                    tracing::warn!(client.ip = %ip, "console sign-in failures: locking out");
                }
            }
            let name = refused.who.as_ref().map_or_else(
                || "microsoft".to_string(),
                |w| consentry_domain::microsoft_sign_in::entra_username(&w.upn, w.object_id),
            );
            audit(
                &st,
                &name,
                refused.org,
                AuditAction::SignInFailed,
                refused.who.as_ref(),
                peer,
                Some(reason_code(&refused.refusal)),
            )
            .await;
            refused_page(&refused)
        }
    };
    // The binding is used up either way (a refused attempt was taken, or is put back for the
    // browser that holds the right cookie — which this one does not).
    res.headers_mut().append(
        header::SET_COOKIE,
        binding_cookie(st.console.secure_cookies, "", 0),
    );
    Ok(res)
}

/// Writes a sign-in audit entry naming the Entra object ID and UPN. A refused entry is logged; the
/// sign-in's outcome stands.
async fn audit(
    st: &AppState,
    actor_name: &str,
    org: Option<OrgId>,
    action: AuditAction,
    who: Option<&SignInWho>,
    ip: Option<std::net::IpAddr>,
    reason: Option<&str>,
) {
    super::auth::record_sign_in(
        st,
        actor_name,
        org,
        action,
        serde_json::json!({
            "ip": ip.map(|i| i.to_string()),
            "method": "microsoft",
            "entra_tenant_id": who.map(|w| w.tenant.to_string()),
            "entra_object_id": who.map(|w| w.object_id.to_string()),
            "upn": who.map(|w| w.upn.to_string()),
            "reason": reason,
        }),
    )
    .await;
}

/// The refusal's name in the audit log.
fn reason_code(r: &Refusal) -> &'static str {
    match r {
        Refusal::NotConfigured => "not_configured",
        Refusal::UnknownAttempt => "unknown_attempt",
        Refusal::Expired => "expired",
        Refusal::OtherBrowser => "other_browser",
        Refusal::Microsoft(_) => "microsoft_error",
        Refusal::NonceMismatch => "nonce_mismatch",
        Refusal::TenantNotConnected => "tenant_not_connected",
        Refusal::NoAdminRole { .. } => "no_admin_role",
        Refusal::NotOperator => "not_operator",
    }
}

/// The page of a refused sign-in: what happened and what to do. Nothing internal.
fn refused_page(r: &SignInRefused) -> Response {
    let again =
        || vec!["Go back to the sign-in page and choose Sign in with Microsoft again.".to_string()];
    let upn = r
        .who
        .as_ref()
        .map_or_else(|| "Your account".to_string(), |w| w.upn.to_string());
    let (status, title, message, steps) = match &r.refusal {
        Refusal::NotConfigured => (
            StatusCode::NOT_FOUND,
            "Sign in with Microsoft is not available",
            "This Consentry server does not offer Sign in with Microsoft.".to_string(),
            vec!["Sign in with your Consentry user name and password.".to_string()],
        ),
        Refusal::UnknownAttempt | Refusal::Expired => (
            StatusCode::BAD_REQUEST,
            "This sign-in cannot be finished",
            "The sign-in expired, was already used, or was not started here.".to_string(),
            again(),
        ),
        Refusal::OtherBrowser => (
            StatusCode::BAD_REQUEST,
            "This sign-in was started in another browser",
            "Microsoft's answer came to a browser other than the one that started the sign-in, so it was not used.".to_string(),
            vec!["Start the sign-in again from this browser.".to_string()],
        ),
        Refusal::NonceMismatch => (
            StatusCode::BAD_REQUEST,
            "This sign-in cannot be finished",
            "Microsoft's answer did not match this sign-in (nonce mismatch), so it was not used.".to_string(),
            again(),
        ),
        Refusal::Microsoft(e) => match e.cause {
            PlatformCause::Cancelled => (
                StatusCode::BAD_REQUEST,
                "Sign-in cancelled",
                "The sign-in was cancelled at Microsoft.".to_string(),
                again(),
            ),
            PlatformCause::Transient => (
                StatusCode::SERVICE_UNAVAILABLE,
                "Microsoft did not answer",
                "Microsoft could not be reached or was busy; nothing was changed.".to_string(),
                vec!["Try again in a minute.".to_string()],
            ),
            _ => (
                StatusCode::BAD_REQUEST,
                "Microsoft refused the sign-in",
                match e.aadsts {
                    Some(code) => format!("Microsoft answered AADSTS{code}: {}", e.message),
                    None => format!("Microsoft's answer could not be used: {}", e.message),
                },
                again(),
            ),
        },
        Refusal::TenantNotConnected => (
            StatusCode::FORBIDDEN,
            "Your organization is not connected to Consentry",
            format!(
                "{upn} signed in at Microsoft, but its Microsoft Entra tenant{} is not connected to any organization in Consentry, so there is nothing to show.",
                r.who
                    .as_ref()
                    .map(|w| format!(" ({})", w.tenant))
                    .unwrap_or_default()
            ),
            vec![
                "Ask your administrator or your vendor to connect your tenant to Consentry, then sign in again.".to_string(),
                "If you have a Consentry user name and password, sign in with them instead.".to_string(),
            ],
        ),
        Refusal::NoAdminRole { organization } => (
            StatusCode::FORBIDDEN,
            "Only administrators may sign in",
            format!(
                "{upn} has no administrator role in Microsoft Entra ID, and {organization} lets only administrators sign in to Consentry."
            ),
            vec!["Ask a Global Administrator of your tenant to assign you an administrator role, or your organization's Consentry administrator to let members sign in as viewers.".to_string()],
        ),
        Refusal::NotOperator => (
            StatusCode::FORBIDDEN,
            "You are not a platform operator",
            format!(
                "{upn} belongs to the operator tenant but is not in the operator group and does not hold the operator app role."
            ),
            vec!["Ask an operator to add you to the operator group, then sign in again.".to_string()],
        ),
    };
    html(
        status,
        &RefusedPage {
            title,
            message,
            steps,
        },
    )
}

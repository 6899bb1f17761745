//! The interactive endpoints: `/authorize` with its sign-in, MFA and consent pages, the v2 and legacy
//! admin consent endpoints, and the error pages. Every page works without JavaScript and escapes
//! everything it echoes (askama templates).

use std::collections::HashMap;
use std::net::SocketAddr;

use askama::Template;
use axum::Form;
use axum::extract::{ConnectInfo, Path, Query, State};
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::{Html, IntoResponse, Response};
use secrecy::ExposeSecret;
use uuid::Uuid;

use crate::aad::{AadError, aad_timestamp, error_uri};
use crate::crypto::random_token;
use crate::ctx::Ctx;
use crate::model::{User, redirect_matches};
use crate::state::{AuthCode, Flow, FlowKind, ScopeRef, State as SimState};

#[derive(Template)]
#[template(path = "signin.html")]
struct SigninPage<'a> {
    app_name: &'a str,
    action: String,
    flow: &'a str,
    login_hint: &'a str,
    error: Option<&'a str>,
}

#[derive(Template)]
#[template(path = "mfa.html")]
struct MfaPage<'a> {
    upn: &'a str,
    action: String,
    flow: &'a str,
    error: Option<&'a str>,
}

#[derive(Template)]
#[template(path = "consent.html")]
struct ConsentPage<'a> {
    upn: &'a str,
    app_name: &'a str,
    publisher: String,
    permissions: Vec<String>,
    action: String,
    flow: &'a str,
    show_org_checkbox: bool,
    admin_flow: bool,
}

#[derive(Template)]
#[template(path = "need_admin.html")]
struct NeedAdminPage<'a> {
    upn: &'a str,
    app_name: &'a str,
    action: String,
    flow: &'a str,
}

#[derive(Template)]
#[template(path = "error.html")]
struct ErrorPage<'a> {
    heading: &'a str,
    message: &'a str,
    code: u32,
    trace_id: String,
    correlation_id: String,
    timestamp: String,
}

#[derive(Template)]
#[template(path = "form_post.html")]
struct FormPostPage {
    action: String,
    fields: Vec<(String, String)>,
}

pub(crate) fn html<T: Template>(page: &T, status: StatusCode) -> Response {
    match page.render() {
        Ok(body) => {
            let mut resp = (status, Html(body)).into_response();
            resp.headers_mut().insert(
                header::CACHE_CONTROL,
                header::HeaderValue::from_static("no-store"),
            );
            resp
        }
        Err(e) => {
            tracing::error!(error = %e, "rendering a sign-in page failed");
            StatusCode::INTERNAL_SERVER_ERROR.into_response()
        }
    }
}

/// An error shown on a page instead of a redirect (the redirect URI is not trusted, or the flow has
/// no one to return to).
pub(crate) fn error_page(st: &SimState, code: u32, message: &str) -> Response {
    let heading = match code {
        53003 => "You cannot access this right now",
        50057 => "Your account has been disabled",
        _ => "Sorry, but we're having trouble signing you in.",
    };
    let page = ErrorPage {
        heading,
        message,
        code,
        trace_id: Uuid::new_v4().to_string(),
        correlation_id: Uuid::new_v4().to_string(),
        timestamp: aad_timestamp(st.now()),
    };
    html(&page, StatusCode::BAD_REQUEST)
}

/// `GET /error?code=N`, the error lookup page the `error_uri` points at.
pub(crate) async fn error_lookup(
    State(ctx): State<Ctx>,
    Query(q): Query<HashMap<String, String>>,
) -> Response {
    let code = q.get("code").and_then(|c| c.parse().ok()).unwrap_or(0);
    let st = ctx.lock();
    error_page(
        &st,
        code,
        "See the error code reference of the Microsoft identity platform for this code.",
    )
}

#[derive(Debug, serde::Deserialize)]
pub(crate) struct LogoutQuery {
    post_logout_redirect_uri: Option<String>,
    state: Option<String>,
}

/// `GET /{tenant}/oauth2/v2.0/logout`: the simulator keeps no sessions, so this only returns to a
/// registered `post_logout_redirect_uri` (with `state`) or shows the signed-out page.
pub(crate) async fn logout(State(ctx): State<Ctx>, Query(q): Query<LogoutQuery>) -> Response {
    let st = ctx.lock();
    let registered = q.post_logout_redirect_uri.as_deref().filter(|uri| {
        st.apps.iter().any(|a| {
            a.redirect_uris
                .iter()
                .any(|r| redirect_matches(r, uri, st.settings.loopback_redirect_any_port))
        })
    });
    match registered.and_then(|uri| url::Url::parse(uri).ok()) {
        Some(mut url) => {
            if let Some(state) = &q.state {
                url.query_pairs_mut().append_pair("state", state);
            }
            let mut resp = StatusCode::FOUND.into_response();
            if let Ok(v) = header::HeaderValue::from_str(url.as_str()) {
                resp.headers_mut().insert(header::LOCATION, v);
            }
            resp
        }
        None => {
            let page = ErrorPage {
                heading: "You signed out of your account",
                message: "It's a good idea to close all browser windows.",
                code: 0,
                trace_id: Uuid::new_v4().to_string(),
                correlation_id: Uuid::new_v4().to_string(),
                timestamp: aad_timestamp(st.now()),
            };
            html(&page, StatusCode::OK)
        }
    }
}

#[derive(Debug, serde::Deserialize)]
pub(crate) struct AuthorizeQuery {
    client_id: Option<String>,
    response_type: Option<String>,
    redirect_uri: Option<String>,
    scope: Option<String>,
    response_mode: Option<String>,
    state: Option<String>,
    prompt: Option<String>,
    login_hint: Option<String>,
    code_challenge: Option<String>,
    code_challenge_method: Option<String>,
    nonce: Option<String>,
}

/// `GET /{tenant}/oauth2/v2.0/authorize`
pub(crate) async fn authorize(
    State(ctx): State<Ctx>,
    Path(tenant): Path<String>,
    Query(q): Query<AuthorizeQuery>,
) -> Response {
    start_flow(&ctx, &tenant, q, FlowKind::Authorize)
}

/// `GET /{tenant}/v2.0/adminconsent`
pub(crate) async fn admin_consent_v2(
    State(ctx): State<Ctx>,
    Path(tenant): Path<String>,
    Query(q): Query<AuthorizeQuery>,
) -> Response {
    start_flow(&ctx, &tenant, q, FlowKind::AdminConsent)
}

/// `GET /{tenant}/adminconsent` (legacy: no scope, asks for everything registered).
pub(crate) async fn admin_consent_legacy(
    State(ctx): State<Ctx>,
    Path(tenant): Path<String>,
    Query(q): Query<AuthorizeQuery>,
) -> Response {
    start_flow(&ctx, &tenant, q, FlowKind::LegacyAdminConsent)
}

fn start_flow(ctx: &Ctx, tenant: &str, mut q: AuthorizeQuery, kind: FlowKind) -> Response {
    q.scope = q.scope.map(|s| ctx.scope_here(&s));
    let mut st = ctx.lock();
    st.sweep();
    let path_tenant = if matches!(tenant, "common" | "organizations") {
        if kind == FlowKind::AdminConsent && tenant == "common" {
            let msg = "The tenant 'common' cannot be used for admin consent; use the tenant ID, a verified domain or 'organizations'.";
            return error_page(&st, 90002, msg);
        }
        None
    } else {
        // A tenant of another cloud: the global authority's refusal or "not found" (UNVERIFIED on
        // the sign-in page; see `Ctx::tenant_here`).
        match ctx.tenant_here(&st, tenant) {
            Ok(t) => Some(st.tenants[t].id),
            Err(e) => return error_page(&st, e.code, &e.message),
        }
    };
    let Some(client_text) = q.client_id.clone() else {
        return error_page(
            &st,
            900144,
            "The request body must contain the following parameter: 'client_id'.",
        );
    };
    let app = Uuid::parse_str(&client_text)
        .ok()
        .and_then(|id| st.app(id).cloned());
    let Some(app) = app else {
        let msg = format!(
            "Application with identifier '{client_text}' was not found in the directory '{tenant}'. This can happen if the application has not been installed by the administrator of the tenant or consented to by any user in the tenant. You may have sent your authentication request to the wrong tenant."
        );
        return error_page(&st, 700016, &msg);
    };
    if let Some(tid) = path_tenant
        && !st.app_usable_in(app.client_id, tid)
    {
        let msg = format!(
            "Application with identifier '{client_text}' was not found in the directory '{tenant}'. This can happen if the application has not been installed by the administrator of the tenant or consented to by any user in the tenant. You may have sent your authentication request to the wrong tenant."
        );
        return error_page(&st, 700016, &msg);
    }
    let Some(redirect_uri) = q.redirect_uri.clone() else {
        return error_page(
            &st,
            900144,
            "The request body must contain the following parameter: 'redirect_uri'.",
        );
    };
    let any_port = st.settings.loopback_redirect_any_port;
    if !app
        .redirect_uris
        .iter()
        .any(|r| redirect_matches(r, &redirect_uri, any_port))
        && !app.is_public_redirect(&redirect_uri, any_port)
    {
        let msg = format!(
            "The redirect URI '{redirect_uri}' specified in the request does not match the redirect URIs configured for the application '{}'. Make sure the redirect URI sent in the request matches one added to your application in the Azure portal. Navigate to https://aka.ms/redirectUriMismatchError to learn more about how to fix this.",
            app.client_id
        );
        return error_page(&st, 50011, &msg);
    }
    let mut flow = Flow {
        kind,
        path_tenant,
        client_id: app.client_id,
        redirect_uri,
        scopes: Vec::new(),
        state: q.state.clone(),
        nonce: q.nonce.clone(),
        code_challenge: q.code_challenge.clone(),
        code_challenge_method: q.code_challenge_method.clone(),
        response_mode: q.response_mode.clone().unwrap_or_else(|| "query".into()),
        prompt: q.prompt.clone(),
        login_hint: q.login_hint.clone(),
        pending_user: None,
        user: None,
        mfa_done: false,
        sign_in_ip: None,
        created: st.now(),
        device_user_code: None,
    };
    // From here on the redirect URI is trusted: errors go back to the app.
    match kind {
        FlowKind::Authorize => {
            if !q
                .response_type
                .as_deref()
                .is_some_and(|r| !r.trim().is_empty() && r.split_whitespace().all(|x| x == "code"))
            {
                // Hybrid and implicit flows need the implicit grant enabled on the app, which
                // no simulated app has.
                let e = AadError::new(
                    700054,
                    "response_type 'id_token' is not enabled for the application. Only response_type 'code' is supported.",
                    &st.settings,
                )
                .with_error("unsupported_response_type");
                return redirect_error(&st, &flow, &e, &[]);
            }
            if q.code_challenge_method
                .as_deref()
                .is_some_and(|m| m != "S256" && m != "plain")
            {
                let e = AadError::new(
                    900144,
                    "Invalid code_challenge_method. Use S256 or plain.",
                    &st.settings,
                );
                return redirect_error(&st, &flow, &e, &[]);
            }
            if q.code_challenge.is_some() && q.code_challenge_method.is_none() {
                flow.code_challenge_method = Some("plain".into());
            }
            if q.prompt.as_deref() == Some("none") {
                // The simulator keeps no browser sessions, so a silent request never finds a user.
                let e = AadError::new(
                    50058,
                    "A silent sign-in request was sent but no user is signed in.",
                    &st.settings,
                )
                .with_error("login_required");
                return redirect_error(&st, &flow, &e, &[]);
            }
        }
        FlowKind::AdminConsent | FlowKind::LegacyAdminConsent | FlowKind::DeviceCode => {}
    }
    let scopes: Vec<String> = match (kind, &q.scope) {
        (FlowKind::LegacyAdminConsent, _) => Vec::new(),
        (_, Some(s)) => s.split_whitespace().map(str::to_owned).collect(),
        (_, None) => {
            let e = AadError::new(
                900144,
                "The request body must contain the following parameter: 'scope'.",
                &st.settings,
            );
            return redirect_error(&st, &flow, &e, &[]);
        }
    };
    if let Err(bad) = st.parse_scopes(&scopes) {
        let e = AadError::new(70011, format!("The provided value for the input parameter 'scope' is not valid. The scope '{bad}' does not exist."), &st.settings).with_error("invalid_scope");
        return redirect_error(&st, &flow, &e, &[]);
    }
    flow.scopes = scopes;
    show_sign_in(ctx, &mut st, tenant, flow)
}

/// Starts the sign-in of `flow` (password, then MFA, conditional access and consent as the flow
/// needs): the sign-in page, on the authority `{base}/{tenant}`.
pub(crate) fn show_sign_in(ctx: &Ctx, st: &mut SimState, tenant: &str, flow: Flow) -> Response {
    let app_name = st
        .app(flow.client_id)
        .map(|a| a.display_name.clone())
        .unwrap_or_default();
    let id = random_token(24);
    let page = SigninPage {
        app_name: &app_name,
        action: format!("{}/{tenant}/login", ctx.base),
        flow: &id,
        login_hint: flow.login_hint.as_deref().unwrap_or(""),
        error: None,
    };
    let resp = html(&page, StatusCode::OK);
    st.flows.insert(id, flow);
    resp
}

/// Builds the error redirect (entra-facts §1.2, §1.4).
fn redirect_error(st: &SimState, flow: &Flow, e: &AadError, extra: &[(&str, &str)]) -> Response {
    if flow.kind == FlowKind::DeviceCode {
        // The verification page has no app to return to: the error is shown.
        return error_page(st, e.code, &e.message);
    }
    let trace = Uuid::new_v4().to_string();
    let corr = Uuid::new_v4().to_string();
    let description = e.description(st.now(), &trace, &corr);
    let mut params: Vec<(String, String)> = vec![
        ("error".into(), e.error.clone()),
        ("error_description".into(), description),
        ("error_uri".into(), error_uri(&st.base, e.code)),
    ];
    for (k, v) in extra {
        params.push(((*k).to_owned(), (*v).to_owned()));
    }
    if let Some(s) = &flow.state {
        params.push(("state".into(), s.clone()));
    }
    respond_to_app(flow, params)
}

/// Sends parameters back to the app: 302 to the redirect URI (query or fragment) or a form_post page.
fn respond_to_app(flow: &Flow, params: Vec<(String, String)>) -> Response {
    if flow.response_mode == "form_post" {
        return html(
            &FormPostPage {
                action: flow.redirect_uri.clone(),
                fields: params,
            },
            StatusCode::OK,
        );
    }
    let Ok(mut url) = url::Url::parse(&flow.redirect_uri) else {
        return StatusCode::BAD_REQUEST.into_response();
    };
    if flow.response_mode == "fragment" {
        let encoded: String = url::form_urlencoded::Serializer::new(String::new())
            .extend_pairs(params.iter())
            .finish();
        url.set_fragment(Some(&encoded));
    } else {
        url.query_pairs_mut().extend_pairs(params.iter());
    }
    let mut resp = StatusCode::FOUND.into_response();
    if let Ok(v) = header::HeaderValue::from_str(url.as_str()) {
        resp.headers_mut().insert(header::LOCATION, v);
    }
    resp
}

#[derive(Debug, serde::Deserialize)]
pub(crate) struct LoginForm {
    flow: String,
    username: String,
    password: String,
}

fn expired_flow(st: &SimState) -> Response {
    error_page(
        st,
        50089,
        "Flow token expired or unknown. Start the sign-in again from the application.",
    )
}

/// `POST /{tenant}/login`
pub(crate) async fn login(
    State(ctx): State<Ctx>,
    Path(tenant): Path<String>,
    ConnectInfo(peer): ConnectInfo<SocketAddr>,
    headers: HeaderMap,
    Form(f): Form<LoginForm>,
) -> Response {
    let ip = ctx.client_ip(peer, &headers);
    let mut st = ctx.lock();
    let Some(mut flow) = st.flows.get(&f.flow).cloned() else {
        return expired_flow(&st);
    };
    let app_name = st
        .app(flow.client_id)
        .map(|a| a.display_name.clone())
        .unwrap_or_default();
    let retry = |msg: &str| {
        let page = SigninPage {
            app_name: &app_name,
            action: format!("{}/{tenant}/login", ctx.base),
            flow: &f.flow,
            login_hint: &f.username,
            error: Some(msg),
        };
        html(&page, StatusCode::OK)
    };
    let found = st.find_user(f.username.trim());
    let Some((t, u)) = found.filter(|(t, u)| !st.tenants[*t].users[*u].deleted) else {
        return retry(
            "AADSTS50034: We couldn't find an account with that username. Try another, or get a new account.",
        );
    };
    let user = st.tenants[t].users[u].clone();
    if user.password.expose_secret() != f.password {
        let reason = "Invalid username or password or Invalid on-premise username or password.";
        crate::signins::record_interactive(
            &mut st,
            t,
            &user,
            flow.client_id,
            ip,
            Some((50126, reason)),
            None,
        );
        return retry(
            "AADSTS50126: Your account or password is incorrect. If you don't remember your password, reset it now.",
        );
    }
    let tenant_id = st.tenants[t].id;
    if flow.path_tenant.is_some_and(|p| p != tenant_id) {
        let e = AadError::new(
            50020,
            format!(
                "User account '{{EmailHidden}}' from identity provider 'https://sts.windows.net/{tenant_id}/' does not exist in tenant '{}' and cannot access the application '{}'({app_name}) in that tenant.",
                flow.path_tenant.map(|p| p.to_string()).unwrap_or_default(),
                flow.client_id
            ),
            &st.settings,
        )
        .with_error("access_denied");
        let extra: &[(&str, &str)] = if flow.kind == FlowKind::Authorize {
            &[]
        } else {
            &[("admin_consent", "True")]
        };
        st.flows.remove(&f.flow);
        return redirect_error(&st, &flow, &e, extra);
    }
    if !user.enabled {
        st.flows.remove(&f.flow);
        let reason = "The user account is disabled.";
        crate::signins::record_interactive(
            &mut st,
            t,
            &user,
            flow.client_id,
            ip,
            Some((50057, reason)),
            None,
        );
        return error_page(&st, 50057, reason);
    }
    if !st.app_usable_in(flow.client_id, tenant_id) {
        // A single-tenant app exists only in its home tenant.
        let e = AadError::new(
            700016,
            format!(
                "Application with identifier '{}' was not found in the directory '{tenant_id}'. This can happen if the application has not been installed by the administrator of the tenant or consented to by any user in the tenant. You may have sent your authentication request to the wrong tenant.",
                flow.client_id
            ),
            &st.settings,
        );
        st.flows.remove(&f.flow);
        return redirect_error(&st, &flow, &e, &[]);
    }
    let ca = st.evaluate_ca_detailed(t, &user, flow.client_id, ip, false, true);
    if let Some(e) = ca.error.clone() {
        if e.code == 53003 {
            st.flows.remove(&f.flow);
            crate::signins::record_interactive(
                &mut st,
                t,
                &user,
                flow.client_id,
                ip,
                Some((e.code, &e.message)),
                Some(ca),
            );
            return error_page(&st, 53003, &e.message);
        }
        // Otherwise MFA is required by policy: fall through to the MFA step.
        flow.sign_in_ip = Some(ip);
        flow.pending_user = Some((tenant_id, user.id));
        return show_mfa(&ctx, &mut st, &tenant, &f.flow, flow, &user, None);
    }
    flow.sign_in_ip = Some(ip);
    flow.pending_user = Some((tenant_id, user.id));
    if user.mfa_required {
        return show_mfa(&ctx, &mut st, &tenant, &f.flow, flow, &user, None);
    }
    flow.user = flow.pending_user;
    crate::signins::record_interactive(&mut st, t, &user, flow.client_id, ip, None, Some(ca));
    proceed(&ctx, &mut st, &tenant, &f.flow, flow)
}

fn show_mfa(
    ctx: &Ctx,
    st: &mut SimState,
    tenant: &str,
    id: &str,
    flow: Flow,
    user: &User,
    error: Option<&str>,
) -> Response {
    let page = MfaPage {
        upn: &user.upn,
        action: format!("{}/{tenant}/mfa", ctx.base),
        flow: id,
        error,
    };
    st.flows.insert(id.to_owned(), flow);
    html(&page, StatusCode::OK)
}

#[derive(Debug, serde::Deserialize)]
pub(crate) struct MfaForm {
    flow: String,
    otc: String,
}

/// `POST /{tenant}/mfa`
pub(crate) async fn mfa(
    State(ctx): State<Ctx>,
    Path(tenant): Path<String>,
    Form(f): Form<MfaForm>,
) -> Response {
    let mut st = ctx.lock();
    let Some(mut flow) = st.flows.get(&f.flow).cloned() else {
        return expired_flow(&st);
    };
    let Some((tid, uid)) = flow.pending_user else {
        return expired_flow(&st);
    };
    let Some(t) = st.tenant_by_id(tid) else {
        return expired_flow(&st);
    };
    let Some(user) = st.user(t, uid).cloned() else {
        return expired_flow(&st);
    };
    let expected = user
        .mfa_code
        .as_ref()
        .map(|c| c.expose_secret().to_owned())
        .unwrap_or_else(|| st.settings.default_mfa_code.clone());
    let ip = flow
        .sign_in_ip
        .unwrap_or(std::net::IpAddr::V4(std::net::Ipv4Addr::LOCALHOST));
    if f.otc.trim() != expected {
        let ca = st.evaluate_ca_detailed(t, &user, flow.client_id, ip, false, true);
        let reason = "Authentication failed during strong authentication request.";
        crate::signins::record_interactive(
            &mut st,
            t,
            &user,
            flow.client_id,
            ip,
            Some((500121, reason)),
            Some(ca),
        );
        return show_mfa(
            &ctx,
            &mut st,
            &tenant,
            &f.flow,
            flow,
            &user,
            Some("AADSTS500121: That code didn't work. Check the code and try again."),
        );
    }
    flow.mfa_done = true;
    flow.user = flow.pending_user;
    let ca = st.evaluate_ca_detailed(t, &user, flow.client_id, ip, true, true);
    crate::signins::record_interactive(&mut st, t, &user, flow.client_id, ip, None, Some(ca));
    proceed(&ctx, &mut st, &tenant, &f.flow, flow)
}

/// Requested delegated scopes the user does not have yet, per resource.
fn missing_consent(st: &SimState, t: usize, flow: &Flow, user: Uuid) -> Vec<(usize, String)> {
    let Some(app) = st.app(flow.client_id) else {
        return Vec::new();
    };
    let refs = st.parse_scopes(&flow.scopes).unwrap_or_default();
    let mut missing = Vec::new();
    for s in refs {
        let wanted: Vec<(usize, String)> = match s {
            ScopeRef::Named(r, v) => vec![(r, v)],
            ScopeRef::Default(r) => st
                .registered_delegated(app, r)
                .into_iter()
                .map(|v| (r, v))
                .collect(),
            ScopeRef::Oidc(_) => vec![],
        };
        for (r, v) in wanted {
            if !st.consented_scopes(t, flow.client_id, r, user).contains(&v)
                && !missing.contains(&(r, v.clone()))
            {
                missing.push((r, v));
            }
        }
    }
    missing
}

fn permission_lines(st: &SimState, flow: &Flow, admin_flow: bool) -> Vec<String> {
    let Some(app) = st.app(flow.client_id) else {
        return Vec::new();
    };
    let refs = st.parse_scopes(&flow.scopes).unwrap_or_default();
    let everything = flow.kind == FlowKind::LegacyAdminConsent;
    let mut lines = Vec::new();
    for r in 0..st.resources.len() {
        let name = &st.resources[r].display_name;
        let default = everything || refs.contains(&ScopeRef::Default(r));
        let mut delegated: Vec<String> = if default {
            st.registered_delegated(app, r)
        } else {
            Vec::new()
        };
        for s in &refs {
            if let ScopeRef::Named(x, v) = s
                && *x == r
                && !delegated.contains(v)
            {
                delegated.push(v.clone());
            }
        }
        for v in delegated {
            lines.push(format!(
                "{v} ({name}, delegated): act as the signed-in user"
            ));
        }
        if default && admin_flow {
            for (x, v) in st.registered_application(app) {
                if x == r {
                    lines.push(format!(
                        "{v} ({name}, application): without a signed-in user"
                    ));
                }
            }
        }
    }
    for s in refs {
        if let ScopeRef::Oidc(v) = s {
            lines.push(match v.as_str() {
                "openid" => "Sign you in".to_owned(),
                "profile" => "View your basic profile".to_owned(),
                "email" => "View your email address".to_owned(),
                _ => "Maintain access to data you have given it access to".to_owned(),
            });
        }
    }
    lines
}

/// After sign-in (and MFA): consent page, "need admin approval", or straight back to the app.
fn proceed(ctx: &Ctx, st: &mut SimState, tenant: &str, id: &str, flow: Flow) -> Response {
    let Some((tid, uid)) = flow.user else {
        return expired_flow(st);
    };
    let Some(t) = st.tenant_by_id(tid) else {
        return expired_flow(st);
    };
    let Some(user) = st.user(t, uid).cloned() else {
        return expired_flow(st);
    };
    let Some(app) = st.app(flow.client_id).cloned() else {
        return expired_flow(st);
    };
    let is_admin = SimState::is_consent_admin(&user);
    let publisher = st
        .tenant_idx(&app.home_tenant)
        .map(|h| format!("{} (publisher)", st.tenants[h].display_name))
        .unwrap_or_default();
    let action = format!("{}/{tenant}/consent", ctx.base);
    // "Need admin approval": the page a user who may not consent gets.
    let need_admin = html(
        &NeedAdminPage {
            upn: &user.upn,
            app_name: &app.display_name,
            action: action.clone(),
            flow: id,
        },
        StatusCode::OK,
    );
    match flow.kind {
        FlowKind::AdminConsent | FlowKind::LegacyAdminConsent => {
            let resp = if is_admin {
                let page = ConsentPage {
                    upn: &user.upn,
                    app_name: &app.display_name,
                    publisher,
                    permissions: permission_lines(st, &flow, true),
                    action,
                    flow: id,
                    show_org_checkbox: false,
                    admin_flow: true,
                };
                html(&page, StatusCode::OK)
            } else {
                need_admin
            };
            st.flows.insert(id.to_owned(), flow);
            resp
        }
        FlowKind::Authorize | FlowKind::DeviceCode => {
            let missing = missing_consent(st, t, &flow, uid);
            let sp_missing = st.sp(t, app.client_id).is_none();
            // `prompt=admin_consent` is accepted in practice but UNVERIFIED in Microsoft's
            // documentation: here it shows the admin consent page (tenant-wide) to admins.
            let admin_prompt = flow.prompt.as_deref() == Some("admin_consent");
            let forced = flow.prompt.as_deref() == Some("consent") || admin_prompt;
            if missing.is_empty() && !sp_missing && !forced {
                st.flows.remove(id);
                return issue_code(st, t, &flow);
            }
            let user_may_consent = st.tenants[t].users_can_consent
                && missing.iter().all(|(r, v)| {
                    !st.resources[*r]
                        .permissions
                        .iter()
                        .any(|p| &p.value == v && p.admin_consent_required)
                });
            let resp = if is_admin || (user_may_consent && !admin_prompt) {
                let page = ConsentPage {
                    upn: &user.upn,
                    app_name: &app.display_name,
                    publisher,
                    permissions: permission_lines(st, &flow, admin_prompt),
                    action,
                    flow: id,
                    show_org_checkbox: is_admin && !admin_prompt,
                    admin_flow: admin_prompt,
                };
                html(&page, StatusCode::OK)
            } else {
                need_admin
            };
            st.flows.insert(id.to_owned(), flow);
            resp
        }
    }
}

fn issue_code(st: &mut SimState, t: usize, flow: &Flow) -> Response {
    let Some((_, uid)) = flow.user else {
        return expired_flow(st);
    };
    if flow.kind == FlowKind::DeviceCode {
        return device_signed_in(st, t, flow, uid);
    }
    let code = format!("1.SIM.{}", random_token(48));
    let now = st.now();
    st.codes.insert(
        code.clone(),
        AuthCode {
            client_id: flow.client_id,
            tenant_id: st.tenants[t].id,
            user_id: uid,
            scopes: flow.scopes.clone(),
            redirect_uri: flow.redirect_uri.clone(),
            code_challenge: flow.code_challenge.clone(),
            code_challenge_method: flow.code_challenge_method.clone(),
            nonce: flow.nonce.clone(),
            issued_at: now,
            redeemed: false,
            sign_in_ip: flow
                .sign_in_ip
                .unwrap_or(std::net::IpAddr::from([127, 0, 0, 1])),
            mfa_done: flow.mfa_done,
        },
    );
    let mut params = vec![("code".to_owned(), code)];
    if let Some(s) = &flow.state {
        params.push(("state".into(), s.clone()));
    }
    params.push(("session_state".into(), Uuid::new_v4().to_string()));
    respond_to_app(flow, params)
}

#[derive(Debug, serde::Deserialize)]
pub(crate) struct ConsentForm {
    flow: String,
    decision: String,
    #[serde(default)]
    on_behalf: Option<String>,
}

/// `POST /{tenant}/consent`: Accept, Cancel, or leave the "Need admin approval" page.
pub(crate) async fn consent(
    State(ctx): State<Ctx>,
    Path(_tenant): Path<String>,
    Form(f): Form<ConsentForm>,
) -> Response {
    let mut st = ctx.lock();
    let Some(flow) = st.flows.remove(&f.flow) else {
        return expired_flow(&st);
    };
    let Some((tid, uid)) = flow.user else {
        return expired_flow(&st);
    };
    let Some(t) = st.tenant_by_id(tid) else {
        return expired_flow(&st);
    };
    let Some(user) = st.user(t, uid).cloned() else {
        return expired_flow(&st);
    };
    let admin_flow = !matches!(flow.kind, FlowKind::Authorize | FlowKind::DeviceCode);
    let admin_extra: &[(&str, &str)] = if flow.kind == FlowKind::AdminConsent {
        &[("admin_consent", "True")]
    } else {
        &[]
    };
    match f.decision.as_str() {
        "cancel" if flow.kind == FlowKind::DeviceCode => device_declined(&mut st, &flow),
        "cancel" => {
            let e = AadError::new(
                65004,
                "User declined to consent to access the app.",
                &st.settings,
            )
            .with_error(match flow.kind {
                FlowKind::LegacyAdminConsent => {
                    st.settings.legacy_adminconsent_cancel_error.as_str()
                }
                _ => "access_denied",
            });
            let extra: &[(&str, &str)] = if flow.kind == FlowKind::Authorize {
                &[("error_subcode", "cancel")]
            } else {
                admin_extra
            };
            redirect_error(&st, &flow, &e, extra)
        }
        "accept" => {
            let is_admin = SimState::is_consent_admin(&user);
            let refs = st.parse_scopes(&flow.scopes).unwrap_or_default();
            if admin_flow {
                if !is_admin {
                    return need_admin_redirect(&st, &flow, admin_extra);
                }
                let requested = if flow.kind == FlowKind::LegacyAdminConsent {
                    None
                } else {
                    Some(refs.as_slice())
                };
                let granted = st.admin_consent(t, flow.client_id, requested);
                let tenant_id = st.tenants[t].id.to_string();
                let mut params = vec![
                    ("admin_consent".to_owned(), "True".to_owned()),
                    ("tenant".to_owned(), tenant_id),
                ];
                if flow.kind == FlowKind::AdminConsent {
                    let scope = if granted.is_empty() {
                        flow.scopes.join(" ")
                    } else {
                        granted.join(" ")
                    };
                    params.push(("scope".into(), scope));
                }
                if let Some(s) = &flow.state {
                    params.push(("state".into(), s.clone()));
                }
                return respond_to_app(&flow, params);
            }
            let admin_prompt = flow.prompt.as_deref() == Some("admin_consent");
            if is_admin && (admin_prompt || f.on_behalf.as_deref() == Some("on")) {
                st.admin_consent(t, flow.client_id, Some(&refs));
            } else {
                let missing = missing_consent(&st, t, &flow, uid);
                let allowed = is_admin
                    || (st.tenants[t].users_can_consent
                        && missing.iter().all(|(r, v)| {
                            !st.resources[*r]
                                .permissions
                                .iter()
                                .any(|p| &p.value == v && p.admin_consent_required)
                        }));
                if !allowed {
                    return need_admin_redirect(&st, &flow, &[]);
                }
                let client_sp = st.ensure_sp(t, flow.client_id);
                let mut per_resource: Vec<(usize, Vec<String>)> = Vec::new();
                for (r, v) in missing {
                    match per_resource.iter_mut().find(|(x, _)| *x == r) {
                        Some((_, vs)) => vs.push(v),
                        None => per_resource.push((r, vec![v])),
                    }
                }
                for (r, vs) in per_resource {
                    st.grant_delegated(t, client_sp, r, Some(uid), &vs);
                }
            }
            issue_code(&mut st, t, &flow)
        }
        _ => need_admin_redirect(&st, &flow, admin_extra),
    }
}

fn need_admin_redirect(st: &SimState, flow: &Flow, extra: &[(&str, &str)]) -> Response {
    // The redirect for a user leaving "Need admin approval" is UNVERIFIED; see Settings.
    let e = AadError::new(
        90094,
        "Admin consent is required for the permissions requested by this application. An admin consent request may be sent to the admin.",
        &st.settings,
    )
    .with_error(&st.settings.admin_approval_error);
    redirect_error(st, flow, &e, extra)
}

/// The end of a device code sign-in: the device's next poll gets the tokens.
fn device_signed_in(st: &mut SimState, t: usize, flow: &Flow, uid: Uuid) -> Response {
    let user_code = flow.device_user_code.clone().unwrap_or_default();
    let approved = crate::device::DeviceStatus::Approved {
        tenant_id: st.tenants[t].id,
        user_id: uid,
        sign_in_ip: flow
            .sign_in_ip
            .unwrap_or(std::net::IpAddr::from([127, 0, 0, 1])),
        mfa_done: flow.mfa_done,
        auth_time: st.now(),
    };
    if st.approve_device_code(&user_code, approved).is_err() {
        // It expired (or was used) while the user signed in.
        return error_page(
            st,
            70019,
            "Verification code expired. Go back to the device or application you're signing in to, get a new code and try again.",
        );
    }
    let app_name = st
        .app(flow.client_id)
        .map(|a| a.display_name.clone())
        .unwrap_or_default();
    let message = format!(
        "You have signed in to the {app_name} application on your device. You may now close this window."
    );
    let page = ErrorPage {
        heading: &app_name,
        message: &message,
        code: 0,
        trace_id: Uuid::new_v4().to_string(),
        correlation_id: Uuid::new_v4().to_string(),
        timestamp: aad_timestamp(st.now()),
    };
    html(&page, StatusCode::OK)
}

/// Cancel on the consent page of a device code sign-in: the device's next poll is told.
fn device_declined(st: &mut SimState, flow: &Flow) -> Response {
    if let Some(code) = &flow.device_user_code {
        st.decline_device_code(code);
    }
    error_page(
        st,
        65004,
        "User declined to consent to access the app. The device you are signing in to is told; you may close this window.",
    )
}

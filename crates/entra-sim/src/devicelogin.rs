//! The device authorization endpoint, `POST /{tenant}/oauth2/v2.0/devicecode`, and the verification
//! page the user opens on another device, `{base}/devicelogin` (Microsoft's is
//! `https://microsoft.com/devicelogin`). After a valid user code the page signs the user in with
//! the pages of `/authorize` (`pages`, flow kind `DeviceCode`): password, MFA, conditional access
//! with the browser's IP, consent. The grant is redeemed at the token endpoint
//! (`token::device_code`).

use std::collections::HashMap;

use askama::Template;
use axum::Form;
use axum::body::Bytes;
use axum::extract::{Path, Query, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use serde_json::json;
use uuid::Uuid;

use crate::aad::{AadError, no_store};
use crate::crypto::random_token;
use crate::ctx::Ctx;
use crate::device::{DeviceCode, DeviceStatus, UserCodeProblem, new_user_code};
use crate::pages::{html, show_sign_in};
use crate::state::{Flow, FlowKind};

/// Path of the verification page.
pub(crate) const VERIFICATION_PATH: &str = "/devicelogin";

#[derive(Template)]
#[template(path = "devicelogin.html")]
struct CodePage<'a> {
    action: String,
    user_code: &'a str,
    error: Option<&'a str>,
}

/// `POST /{tenant}/oauth2/v2.0/devicecode` (`client_id`, `scope`): a device code, its user code and
/// where to enter it. Microsoft's devicecode endpoint takes no client authentication; whether the
/// app may redeem the code without a credential is decided at the token endpoint.
pub(crate) async fn devicecode(
    State(ctx): State<Ctx>,
    Path(tenant): Path<String>,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let form = crate::aad::form_fields(&body);
    let correlation = crate::aad::client_request_id(&headers);
    let mut st = ctx.lock();
    st.sweep();
    let now = st.now();
    // Errors answer with the token endpoint's body and status. MSAL.NET notes that this endpoint
    // once answered errors with 200 OK (2019); the status is not relied on by MSAL Python, which
    // reads the body.
    let fail = |e: AadError| e.to_response(now, &ctx.base, correlation.as_deref());
    let path_tenant = if matches!(tenant.as_str(), "common" | "organizations") {
        None
    } else {
        match st.tenant_idx(&tenant) {
            Some(t) => Some(st.tenants[t].id),
            None => {
                let e = crate::aad::tenant_not_found_with(&st.settings, &tenant);
                return fail(e);
            }
        }
    };
    let missing =
        |name: &str| format!("The request body must contain the following parameter: '{name}'.");
    let Some(client_text) = form.get("client_id").cloned() else {
        let e = AadError::new(900144, missing("client_id"), &st.settings);
        return fail(e);
    };
    let app = Uuid::parse_str(&client_text)
        .ok()
        .and_then(|id| st.app(id).cloned())
        .filter(|a| path_tenant.is_none_or(|tid| st.app_usable_in(a.client_id, tid)));
    let Some(app) = app else {
        let e = AadError::new(
            700016,
            format!(
                "Application with identifier '{client_text}' was not found in the directory '{tenant}'. This can happen if the application has not been installed by the administrator of the tenant or consented to by any user in the tenant. You may have sent your authentication request to the wrong tenant."
            ),
            &st.settings,
        );
        return fail(e);
    };
    let Some(scope) = form.get("scope").filter(|s| !s.trim().is_empty()) else {
        let e = AadError::new(900144, missing("scope"), &st.settings);
        return fail(e);
    };
    let scopes: Vec<String> = scope.split_whitespace().map(str::to_owned).collect();
    if let Err(bad) = st.parse_scopes(&scopes) {
        let e = AadError::new(
            70011,
            format!(
                "The provided value for the input parameter 'scope' is not valid. The scope '{bad}' does not exist."
            ),
            &st.settings,
        );
        return fail(e);
    }
    let user_code = loop {
        let candidate = new_user_code();
        if !st.device_codes.values().any(|d| d.user_code == candidate) {
            break candidate;
        }
    };
    let device_code = format!("DAQABIQEAAAA{}", random_token(96));
    let settings = st.settings.device_code.clone();
    st.device_codes.insert(
        device_code.clone(),
        DeviceCode {
            client_id: app.client_id,
            tenant_segment: tenant.clone(),
            path_tenant,
            scopes,
            user_code: user_code.clone(),
            issued_at: now,
            interval_secs: settings.interval_secs,
            last_poll: None,
            status: DeviceStatus::Pending,
        },
    );
    drop(st);
    let verification_uri = format!("{}{VERIFICATION_PATH}", ctx.base);
    // The fields and the message as Microsoft's (the message is English only; `mkt` is ignored).
    let body = json!({
        "user_code": user_code,
        "device_code": device_code,
        "verification_uri": verification_uri,
        "expires_in": settings.lifetime_secs,
        "interval": settings.interval_secs,
        "message": format!("To sign in, use a web browser to open the page {verification_uri} and enter the code {user_code} to authenticate."),
    });
    let mut resp = axum::Json(body).into_response();
    no_store(resp.headers_mut());
    resp
}

fn code_page(ctx: &Ctx, user_code: &str, error: Option<&str>) -> Response {
    let page = CodePage {
        action: format!("{}{VERIFICATION_PATH}", ctx.base),
        user_code,
        error,
    };
    html(&page, StatusCode::OK)
}

/// `GET /devicelogin`: the page where the user enters the code the device shows (`?otc=` fills
/// it in).
pub(crate) async fn page(
    State(ctx): State<Ctx>,
    Query(q): Query<HashMap<String, String>>,
) -> Response {
    let typed = q.get("otc").map(String::as_str).unwrap_or("");
    code_page(&ctx, typed, None)
}

#[derive(Debug, serde::Deserialize)]
pub(crate) struct CodeForm {
    user_code: String,
}

/// `POST /devicelogin`: a valid user code starts the sign-in for the device; a wrong, expired or
/// already used one is answered on the page.
pub(crate) async fn enter_code(State(ctx): State<Ctx>, Form(f): Form<CodeForm>) -> Response {
    let mut st = ctx.lock();
    st.sweep();
    let found = st.pending_device_code(&f.user_code).cloned();
    let device = match found {
        Ok(d) => d,
        Err(problem) => {
            drop(st);
            let msg = match problem {
                UserCodeProblem::Unknown => {
                    "AADSTS70018: That code didn't work. Check the code and try again."
                }
                UserCodeProblem::Expired => {
                    "AADSTS70019: That code has expired. Go back to the app or device you're signing in to, get a new code and try again."
                }
                UserCodeProblem::AlreadyUsed => {
                    "AADSTS90120: That code was already used to sign in, or declined. Go back to the app or device you're signing in to and start again."
                }
            };
            return code_page(&ctx, f.user_code.trim(), Some(msg));
        }
    };
    let flow = Flow {
        kind: FlowKind::DeviceCode,
        path_tenant: device.path_tenant,
        client_id: device.client_id,
        redirect_uri: String::new(),
        scopes: device.scopes.clone(),
        state: None,
        nonce: None,
        code_challenge: None,
        code_challenge_method: None,
        response_mode: "query".into(),
        prompt: None,
        login_hint: None,
        pending_user: None,
        user: None,
        mfa_done: false,
        sign_in_ip: None,
        created: st.now(),
        device_user_code: Some(device.user_code.clone()),
    };
    show_sign_in(&ctx, &mut st, &device.tenant_segment, flow)
}

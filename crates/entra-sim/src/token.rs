//! `POST /{tenant}/oauth2/v2.0/token`: client authentication (secret post/basic, certificate client
//! assertions), the authorization_code, refresh_token and client_credentials grants, and every
//! failure of entra-facts §3 with its exact code, OAuth error, status and body.

use std::cell::RefCell;
use std::collections::HashMap;
use std::net::{IpAddr, SocketAddr};

use axum::body::Bytes;
use axum::extract::{ConnectInfo, Path, State};
use axum::http::HeaderMap;
use axum::response::{IntoResponse, Response};
use base64::Engine;
use base64::engine::general_purpose::{STANDARD, URL_SAFE_NO_PAD};
use jsonwebtoken::{Algorithm, DecodingKey, Validation};
use secrecy::ExposeSecret;
use serde_json::{Value, json};
use time::{Duration, OffsetDateTime};
use uuid::Uuid;

use crate::aad::{AadError, no_store};
use crate::crypto::{CertInfo, random_token};
use crate::ctx::Ctx;
use crate::model::{App, CaRefreshIp};
use crate::state::{RefreshGrant, ScopeRef, SignInEventType, SignInRecord, State as SimState};
use crate::wellknown::{OIDC_SCOPES, synthetic_id};

mod device_code;

const JWT_BEARER: &str = "urn:ietf:params:oauth:client-assertion-type:jwt-bearer";

/// The token endpoint.
pub(crate) async fn token(
    State(ctx): State<Ctx>,
    Path(tenant): Path<String>,
    ConnectInfo(peer): ConnectInfo<SocketAddr>,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let mut form = crate::aad::form_fields(&body);
    if let Some(scope) = form.get("scope").map(|s| ctx.scope_here(s)) {
        form.insert("scope".into(), scope);
    }
    let correlation = crate::aad::client_request_id(&headers);
    let ip = ctx.client_ip(peer, &headers);
    let basic = basic_auth(&headers);
    let mut st = ctx.lock();
    let now = st.now();
    if let Some(retry_after) = throttled(&ctx, &mut st, &tenant, &form, basic.as_ref()) {
        drop(st);
        tracing::debug!(retry_after, "token request throttled");
        // Status and Retry-After in whole seconds [V] (entra-facts §6.1); the body (AADSTS90055,
        // `temporarily_unavailable`) is UNVERIFIED.
        let (status, headers, body) = crate::faults::error_answer(
            Some("token"),
            axum::http::StatusCode::TOO_MANY_REQUESTS,
            Some(retry_after),
            "",
            1,
        );
        let mut resp = (status, axum::Json(body)).into_response();
        resp.headers_mut().extend(headers);
        return resp;
    }
    let log = RefCell::new(SignInDraft::default());
    let to_sign = RefCell::new(Vec::new());
    let mut result = Request {
        ctx: &ctx,
        st: &mut st,
        tenant: &tenant,
        form: &form,
        basic,
        now,
        peer_ip: ip,
        log: &log,
        to_sign: &to_sign,
    }
    .run();
    record_sign_in(
        &mut st,
        log.into_inner(),
        &result,
        now,
        ip,
        correlation.as_deref(),
    );
    drop(st);
    if let Ok(body) = &mut result {
        sign_deferred(body, &to_sign.into_inner(), &ctx.key);
    }
    match result {
        Ok(body) => {
            let mut resp = axum::Json(body).into_response();
            no_store(resp.headers_mut());
            resp
        }
        Err(e) => {
            tracing::debug!(aadsts = e.code, error = %e.error, "token request refused");
            e.to_response(now, &ctx.base, correlation.as_deref())
        }
    }
}

/// With throttling on, whether a token request of a known app in a known tenant is over its
/// (app, tenant) limit: the `Retry-After` seconds if so. A throttled request is counted with the
/// token requests (whatever their outcome) but is not a sign-in.
fn throttled(
    ctx: &Ctx,
    st: &mut SimState,
    tenant: &str,
    form: &HashMap<String, String>,
    basic: Option<&(String, String)>,
) -> Option<u64> {
    if !st.settings.throttling.enabled {
        return None;
    }
    let t = ctx.tenant_here(st, tenant).ok()?;
    let client_id = form
        .get("client_id")
        .or_else(|| basic.map(|(id, _)| id))
        .and_then(|id| Uuid::parse_str(id).ok())?;
    st.app(client_id)?;
    let tenant_id = st.tenants[t].id;
    let settings = st.settings.throttling;
    let retry_after =
        st.throttle
            .token(&settings, client_id, tenant_id, std::time::Instant::now())?;
    let grant_type = form.get("grant_type").cloned().unwrap_or_default();
    *st.token_requests
        .entry((tenant_id, client_id, grant_type))
        .or_default() += 1;
    Some(retry_after)
}

fn basic_auth(headers: &HeaderMap) -> Option<(String, String)> {
    let value = headers.get("authorization")?.to_str().ok()?;
    let encoded = value
        .strip_prefix("Basic ")
        .or_else(|| value.strip_prefix("basic "))?;
    let decoded = String::from_utf8(STANDARD.decode(encoded.trim()).ok()?).ok()?;
    let (id, secret) = decoded.split_once(':')?;
    // RFC 6749 §2.3.1: both parts are form-urlencoded before base64.
    let unescape = |s: &str| {
        url::form_urlencoded::parse(format!("x={s}").as_bytes())
            .next()
            .map(|(_, v)| v.into_owned())
    };
    Some((unescape(id)?, unescape(secret)?))
}

/// What the sign-in logs learn about a token request while it is answered.
#[derive(Default)]
pub(crate) struct SignInDraft {
    /// The tenant the request signs in to.
    pub tenant: Option<Uuid>,
    /// The app (client ID, display name).
    pub app: Option<(Uuid, String)>,
    /// The user whose code or refresh token is redeemed; `None` for client credentials.
    pub user: Option<Uuid>,
    /// A client-credentials request (a service principal sign-in).
    pub service_principal: bool,
    /// The address conditional access evaluated (see `Settings::ca_refresh_ip`).
    pub ip: Option<IpAddr>,
    /// Conditional access as evaluated, when it was.
    pub ca: Option<crate::state::CaEvaluation>,
    /// The resource (index) the token was for.
    pub resource: Option<usize>,
}

/// Appends the token request's entry to the sign-in logs, when it named a known tenant and app.
fn record_sign_in(
    st: &mut SimState,
    draft: SignInDraft,
    result: &Result<Value, AadError>,
    now: OffsetDateTime,
    peer_ip: IpAddr,
    correlation: Option<&str>,
) {
    let (Some(tenant_id), Some((app_id, app_name))) = (draft.tenant, draft.app) else {
        return;
    };
    // A device polling while its user has not finished signing in is not a sign-in.
    if let Err(e) = result
        && matches!(e.error.as_str(), "authorization_pending" | "slow_down")
    {
        return;
    }
    let Some(t) = st.tenant_by_id(tenant_id) else {
        return;
    };
    let user = draft.user.and_then(|id| {
        st.user(t, id)
            .map(|u| (u.id, u.upn.clone(), u.display_name.clone()))
    });
    let r = draft.resource.unwrap_or_else(|| st.graph_idx());
    let (ca_status, policies) = match &draft.ca {
        Some(ca) => (ca.status(), ca.policies.clone()),
        None => ("notApplied", Vec::new()),
    };
    let (error_code, failure_reason) = match result {
        Ok(_) => (0, None),
        Err(e) => (e.code, Some(e.message.clone())),
    };
    let event_type = if draft.service_principal {
        SignInEventType::ServicePrincipal
    } else {
        SignInEventType::NonInteractiveUser
    };
    let record = SignInRecord {
        id: Uuid::new_v4(),
        created: now,
        tenant_id,
        app_id,
        app_display_name: app_name,
        user: if draft.service_principal { None } else { user },
        ip: draft.ip.unwrap_or(peer_ip),
        event_type,
        error_code,
        failure_reason,
        ca_status,
        policies,
        resource_display_name: st.resources[r].display_name.clone(),
        resource_id: st.resources[r].app_id,
        correlation_id: correlation
            .and_then(|c| Uuid::parse_str(c).ok())
            .unwrap_or_else(Uuid::new_v4),
    };
    st.record_sign_in(record);
}

/// What a token answer holds in place of a token signed after the state lock is released
/// ([`Request::sign_later`]), followed by the claims' index.
const UNSIGNED: &str = "\u{0}entra-sim-unsigned:";

/// Replaces the answer's placeholders ([`Request::sign_later`]) by the tokens, signed now, outside
/// the state lock: an RSA signature is most of a token request's CPU, and the lock serializes every
/// request to the simulator.
fn sign_deferred(body: &mut Value, claims: &[Value], key: &crate::crypto::SigningKey) {
    let Some(fields) = body.as_object_mut() else {
        return;
    };
    for value in fields.values_mut() {
        let index = value
            .as_str()
            .and_then(|s| s.strip_prefix(UNSIGNED))
            .and_then(|i| i.parse::<usize>().ok());
        if let Some(claims) = index.and_then(|i| claims.get(i)) {
            *value = Value::String(key.sign(claims));
        }
    }
}

struct Request<'a> {
    ctx: &'a Ctx,
    st: &'a mut SimState,
    tenant: &'a str,
    form: &'a HashMap<String, String>,
    basic: Option<(String, String)>,
    now: OffsetDateTime,
    peer_ip: IpAddr,
    log: &'a RefCell<SignInDraft>,
    /// Claims to sign with the simulator's key once the lock is released ([`sign_deferred`]).
    to_sign: &'a RefCell<Vec<Value>>,
}

impl Request<'_> {
    /// A token of the answer, signed with the simulator's key after the state lock is released: a
    /// placeholder now, a top-level field of the answer only.
    fn sign_later(&self, claims: Value) -> String {
        let mut to_sign = self.to_sign.borrow_mut();
        to_sign.push(claims);
        format!("{UNSIGNED}{}", to_sign.len() - 1)
    }

    fn err(&self, code: u32, msg: impl Into<String>) -> AadError {
        AadError::new(code, msg, &self.st.settings)
    }

    fn missing(&self, param: &str) -> AadError {
        self.err(
            900144,
            format!("The request body must contain the following parameter: '{param}'."),
        )
    }

    fn run(&mut self) -> Result<Value, AadError> {
        let path_tenant = if matches!(self.tenant, "common" | "organizations") {
            None
        } else {
            Some(self.ctx.tenant_here(self.st, self.tenant)?)
        };
        let grant_type = self
            .form
            .get("grant_type")
            .cloned()
            .ok_or_else(|| self.missing("grant_type"))?;
        let client_id_text = self
            .form
            .get("client_id")
            .cloned()
            .or_else(|| self.basic.as_ref().map(|(id, _)| id.clone()))
            .ok_or_else(|| self.missing("client_id"))?;
        let tenant_name = path_tenant.map_or_else(
            || self.tenant.to_owned(),
            |t| self.st.tenants[t].id.to_string(),
        );
        let app = Uuid::parse_str(&client_id_text)
            .ok()
            .and_then(|id| self.st.app(id).cloned())
            .ok_or_else(|| self.app_not_found(&client_id_text, &tenant_name))?;
        // An app registered in another cloud is not in this cloud's directory.
        if let Some(t) = path_tenant
            && app.sign_in_audience != crate::model::SignInAudience::AzureADMyOrg
            && !self.st.app_usable_in(app.client_id, self.st.tenants[t].id)
        {
            return Err(self.app_not_found(&client_id_text, &tenant_name));
        }
        if let Some(t) = path_tenant {
            let key = (self.st.tenants[t].id, app.client_id, grant_type.clone());
            *self.st.token_requests.entry(key).or_default() += 1;
        }
        {
            let mut log = self.log.borrow_mut();
            log.tenant = path_tenant.map(|t| self.st.tenants[t].id);
            log.app = Some((app.client_id, app.display_name.clone()));
            log.service_principal = grant_type == "client_credentials";
        }
        if !matches!(
            grant_type.as_str(),
            "authorization_code"
                | "refresh_token"
                | "client_credentials"
                | crate::device::GRANT_TYPE
        ) {
            return Err(self.err(70003, "The app requested an unsupported grant type."));
        }
        // A public client (see `device_code::public_client`) sends no credential: azpacr "0".
        let azpacr = match self.public_client(&app, &grant_type) {
            Some(public) => public?,
            None => self.authenticate_client(&app, path_tenant)?,
        };
        match grant_type.as_str() {
            "client_credentials" => self.client_credentials(&app, path_tenant, azpacr),
            "authorization_code" => self.authorization_code(&app, path_tenant, azpacr),
            crate::device::GRANT_TYPE => self.device_code(&app, path_tenant, azpacr),
            _ => self.refresh(&app, path_tenant, azpacr),
        }
    }

    fn app_not_found(&self, client_id: &str, tenant: &str) -> AadError {
        self.err(
            700016,
            format!(
                "Application with identifier '{client_id}' was not found in the directory '{tenant}'. This can happen if the application has not been installed by the administrator of the tenant or consented to by any user in the tenant. You may have sent your authentication request to the wrong tenant."
            ),
        )
    }

    /// Returns `azpacr`: "1" for a secret, "2" for a certificate (public clients: `public_client`).
    fn authenticate_client(
        &self,
        app: &App,
        path_tenant: Option<usize>,
    ) -> Result<&'static str, AadError> {
        if let Some(assertion) = self.form.get("client_assertion") {
            if self.form.get("client_assertion_type").map(String::as_str) != Some(JWT_BEARER) {
                return Err(self.missing("client_assertion_type"));
            }
            self.verify_assertion(app, assertion, path_tenant)?;
            return Ok("2");
        }
        let secret = self
            .form
            .get("client_secret")
            .cloned()
            .or_else(|| self.basic.as_ref().map(|(_, s)| s.clone()));
        let Some(secret) = secret else {
            return Err(self.err(
                7000218,
                "The request body must contain the following parameter: 'client_assertion' or 'client_secret'.",
            ));
        };
        match app.secrets.iter().find(|s| s.value.expose_secret() == secret) {
            Some(s) if s.end_date_time <= self.now => Err(self.err(
                7000222,
                format!(
                    "The provided client secret keys for app '{}' are expired. Visit the Azure portal to create new keys for your app: https://aka.ms/NewClientSecret, or consider using certificate credentials for added security: https://aka.ms/certCreds.",
                    app.client_id
                ),
            )),
            Some(_) => Ok("1"),
            None => Err(self.err(
                7000215,
                format!(
                    "Invalid client secret provided. Ensure the secret being sent in the request is the client secret value, not the client secret ID, for a secret added to app '{}'.",
                    app.client_id
                ),
            )),
        }
    }

    fn verify_assertion(
        &self,
        app: &App,
        jwt: &str,
        path_tenant: Option<usize>,
    ) -> Result<(), AadError> {
        // The codes for malformed assertions, wrong audience and iss/sub mismatch are UNVERIFIED
        // (entra-facts §9); 50027 and 50048 are the documented names for these causes.
        let malformed = || self.err(50027, "Invalid JWT token. The token is malformed.");
        let header = jsonwebtoken::decode_header(jwt).map_err(|_| malformed())?;
        if !matches!(header.alg, Algorithm::RS256 | Algorithm::PS256) {
            return Err(self.err(
                50027,
                format!(
                    "Invalid JWT token. Unsupported signing algorithm '{:?}'.",
                    header.alg
                ),
            ));
        }
        // Each certificate ends at its notAfter, or earlier when the control API said so.
        let certs: Vec<CertInfo> = self
            .st
            .certificates_of(app)
            .into_iter()
            .map(|(_, c)| c)
            .collect();
        let found = certs.iter().find(|c| {
            header
                .x5t_s256
                .as_deref()
                .is_some_and(|t| c.matches_x5t_s256(t))
                || header.x5t.as_deref().is_some_and(|t| c.matches_x5t(t))
        });
        let Some(cert) = found else {
            let shown = header
                .x5t
                .as_deref()
                .or(header.x5t_s256.as_deref())
                .and_then(crate::crypto::decode_b64_any)
                .map(|b| b.iter().map(|x| format!("{x:02X}")).collect::<String>())
                .unwrap_or_default();
            return Err(self.err(
                700027,
                format!(
                    "The certificate with identifier used to sign the client assertion is not registered on application. [Reason - The key was not found., Thumbprint of key used by client: '{shown}', Please visit the Azure Portal, Graph Explorer or directly use MS Graph to see configured keys for app Id '{}'.]",
                    app.client_id
                ),
            ));
        };
        if cert.not_after < self.now {
            // The registered key credential has expired (its end date is the certificate's).
            return Err(self.err(
                700027,
                format!(
                    "Client assertion contains an invalid signature. [Reason - The key used is expired., Thumbprint of key used by client: '{}', Found key 'Start=..., End={}']",
                    cert.thumbprint_hex(),
                    crate::aad::aad_timestamp(cert.not_after)
                ),
            ));
        }
        let mut validation = Validation::new(header.alg);
        validation.validate_exp = false;
        validation.validate_nbf = false;
        validation.validate_aud = false;
        validation.required_spec_claims.clear();
        let key = DecodingKey::from_rsa_der(&cert.rsa_public_pkcs1);
        let claims = match jsonwebtoken::decode::<Value>(jwt, &key, &validation) {
            Ok(data) => data.claims,
            Err(e) if matches!(e.kind(), jsonwebtoken::errors::ErrorKind::InvalidSignature) => {
                return Err(self.err(
                    700027,
                    "Client assertion failed signature validation. [Reason - Key was found, but use of the key to verify the signature failed.]",
                ));
            }
            Err(_) => return Err(malformed()),
        };
        let client = app.client_id.to_string();
        let iss = claims
            .get("iss")
            .and_then(Value::as_str)
            .unwrap_or_default();
        let sub = claims
            .get("sub")
            .and_then(Value::as_str)
            .unwrap_or_default();
        if !iss.eq_ignore_ascii_case(&client) || !sub.eq_ignore_ascii_case(&client) {
            return Err(self.err(
                50048,
                "Subject must match Issuer claim in the client assertion.",
            ));
        }
        let aud_ok = {
            let mut tenants = vec![self.tenant.to_owned()];
            if let Some(t) = path_tenant {
                tenants.push(self.st.tenants[t].id.to_string());
                tenants.extend(self.st.tenants[t].domains.iter().cloned());
            }
            let base = &self.ctx.base;
            let auds: Vec<&str> = match claims.get("aud") {
                Some(Value::String(s)) => vec![s.as_str()],
                Some(Value::Array(a)) => a.iter().filter_map(Value::as_str).collect(),
                _ => vec![],
            };
            // Accepted: the token endpoint (current doc, MSAL) and the legacy forms of the 2020 doc.
            auds.iter().any(|aud| {
                tenants.iter().any(|t| {
                    [
                        format!("{base}/{t}/oauth2/v2.0/token"),
                        format!("{base}/{t}/v2.0"),
                        format!("{base}/{t}/oauth2/token"),
                    ]
                    .iter()
                    .any(|a| a.eq_ignore_ascii_case(aud))
                })
            })
        };
        if !aud_ok {
            return Err(self.err(50027, "Invalid JWT token. The audience of the client assertion is not this token endpoint."));
        }
        let skew = Duration::seconds(self.st.settings.assertion_clock_skew_secs);
        // NumericDate may be fractional (MSAL Python sends `time.time() + 600`).
        let ts = |name: &str| {
            claims
                .get(name)
                .and_then(|v| v.as_i64().or_else(|| v.as_f64().map(|f| f as i64)))
                .and_then(|s| OffsetDateTime::from_unix_timestamp(s).ok())
        };
        let exp = ts("exp");
        let nbf = ts("nbf");
        // Clients sign assertions with their own (real) clock, which the control API cannot move:
        // the time range is checked against the real clock, not the simulated one.
        let wall = OffsetDateTime::now_utc();
        let expired = exp.is_none_or(|e| wall > e + skew);
        let early = nbf.is_some_and(|n| wall + skew < n);
        if expired || early {
            let fmt = |t: Option<OffsetDateTime>| {
                t.unwrap_or(OffsetDateTime::UNIX_EPOCH)
                    .format(&time::format_description::well_known::Rfc3339)
                    .unwrap_or_default()
            };
            return Err(self.err(
                700024,
                format!(
                    "Client assertion is not within its valid time range. Current time: {}, assertion valid from {}, expiry time of assertion {}. Review the documentation at https://docs.microsoft.com/azure/active-directory/develop/active-directory-certificate-credentials .",
                    fmt(Some(wall)),
                    fmt(nbf),
                    fmt(exp)
                ),
            ));
        }
        Ok(())
    }

    fn client_credentials(
        &mut self,
        app: &App,
        path_tenant: Option<usize>,
        azpacr: &str,
    ) -> Result<Value, AadError> {
        let Some(t) = path_tenant else {
            // The exact answer for client_credentials on /common is UNVERIFIED (AADSTS9001023 family).
            return Err(self.err(
                9001023,
                "The grant type isn't supported over the /common or /consumers endpoints. Please use the /organizations or tenant-specific endpoint.",
            ));
        };
        let scope = self
            .form
            .get("scope")
            .cloned()
            .ok_or_else(|| self.missing("scope"))?;
        let scopes: Vec<&str> = scope.split_whitespace().collect();
        let invalid_scope = || {
            self.err(
                70011,
                format!(
                    "The provided request must include a 'scope' input parameter. The provided value for the input parameter 'scope' is not valid. The scope {scope} is not valid."
                ),
            )
        };
        let [single] = scopes.as_slice() else {
            return Err(invalid_scope());
        };
        let Some(resource_ref) = single.strip_suffix("/.default") else {
            return Err(invalid_scope());
        };
        let r = self
            .st
            .resources
            .iter()
            .position(|res| {
                res.identifier_uri.trim_end_matches('/').eq_ignore_ascii_case(resource_ref.trim_end_matches('/'))
                    || res.app_id.to_string().eq_ignore_ascii_case(resource_ref)
            })
            .ok_or_else(|| {
                self.err(
                    500011,
                    format!(
                        "The resource principal named {resource_ref} was not found in the tenant named {}. This can happen if the application has not been installed by the administrator of the tenant or consented to by any user in the tenant. You might have sent your authentication request to the wrong tenant.",
                        self.st.tenants[t].display_name
                    ),
                )
            })?;
        self.log.borrow_mut().resource = Some(r);
        let Some(sp) = self.st.sp(t, app.client_id).map(|s| s.id) else {
            return Err(self.err(
                7000229,
                format!(
                    "The client application {} is missing service principal in the tenant {}. See instructions here: https://go.microsoft.com/fwlink/?linkid=2225119",
                    app.client_id, self.st.tenants[t].id
                ),
            ));
        };
        let roles = self.st.granted_roles(t, app.client_id, r);
        let lifetime = self.st.settings.access_token_lifetime_secs;
        let tid = self.st.tenants[t].id;
        let mut claims = self.base_claims(tid, r, lifetime);
        claims["oid"] = json!(sp);
        claims["sub"] = json!(sp);
        claims["idtyp"] = json!("app");
        claims["appid"] = json!(app.client_id);
        claims["azp"] = json!(app.client_id);
        claims["appidacr"] = json!(azpacr);
        claims["azpacr"] = json!(azpacr);
        if !roles.is_empty() {
            claims["roles"] = json!(roles);
        }
        Ok(json!({
            "token_type": "Bearer",
            "expires_in": lifetime,
            "ext_expires_in": lifetime,
            "access_token": self.sign_later(claims),
        }))
    }

    fn base_claims(&self, tid: Uuid, r: usize, lifetime: i64) -> Value {
        let now = self.now.unix_timestamp();
        json!({
            "aud": self.st.resources[r].identifier_uri,
            // Graph's real access tokens are v1-format (UNVERIFIED, entra-facts §2.5); the simulator
            // issues v2-shaped tokens with both appid and azp so either reading works.
            "iss": format!("{}/{tid}/v2.0", self.ctx.base),
            "iat": now,
            "nbf": now,
            "exp": now + lifetime,
            "tid": tid,
            "ver": "2.0",
            "uti": random_token(16),
        })
    }

    fn authorization_code(
        &mut self,
        app: &App,
        path_tenant: Option<usize>,
        azpacr: &str,
    ) -> Result<Value, AadError> {
        let code = self
            .form
            .get("code")
            .cloned()
            .ok_or_else(|| self.missing("code"))?;
        let invalid = |st: &SimState, extra: &str| {
            AadError::new(
                70000,
                format!("The provided value for the 'code' parameter is not valid.{extra}"),
                &st.settings,
            )
        };
        let Some(c) = self.st.codes.get(&code).cloned() else {
            return Err(invalid(self.st, ""));
        };
        self.note_user(c.tenant_id, c.user_id, c.sign_in_ip);
        if c.redeemed {
            return Err(self.err(
                54005,
                "OAuth2 Authorization code was already redeemed, please retry with a new valid code or use an existing refresh token.",
            ));
        }
        if c.issued_at + Duration::seconds(self.st.settings.code_lifetime_secs) < self.now {
            return Err(invalid(self.st, " The code has expired."));
        }
        if path_tenant.is_some_and(|t| self.st.tenants[t].id != c.tenant_id) {
            return Err(self.err(700005, "Provided Authorization Code is intended to use against other tenant, thus rejected."));
        }
        // The codes for a client or redirect_uri mismatch are UNVERIFIED; both are invalid_grant.
        if c.client_id != app.client_id {
            return Err(invalid(
                self.st,
                " The code was issued to a different client.",
            ));
        }
        if self.form.get("redirect_uri") != Some(&c.redirect_uri) {
            return Err(invalid(
                self.st,
                " The redirect_uri does not match the one used to obtain the code.",
            ));
        }
        if let Some(challenge) = &c.code_challenge {
            let verifier = self.form.get("code_verifier");
            let ok = verifier.is_some_and(|v| match c.code_challenge_method.as_deref() {
                Some("plain") => v == challenge,
                _ => &crate::crypto::s256(v) == challenge,
            });
            if !ok {
                return Err(self.err(501481, "The Code_Verifier does not match the code_challenge supplied in the authorization request."));
            }
        }
        if let Some(stored) = self.st.codes.get_mut(&code) {
            stored.redeemed = true;
        }
        let t = self
            .st
            .tenant_by_id(c.tenant_id)
            .ok_or_else(|| invalid(self.st, ""))?;
        let grant = RefreshGrant {
            client_id: app.client_id,
            tenant_id: c.tenant_id,
            user_id: c.user_id,
            scopes: c.scopes.clone(),
            auth_time: c.issued_at,
            issued_at: self.now,
            last_used: self.now,
            sign_in_ip: c.sign_in_ip,
            mfa_done: c.mfa_done,
            public_client: azpacr == "0",
        };
        self.check_user_and_app(t, app, &grant)?;
        self.issue_delegated(t, app, &grant, &c.scopes, c.nonce.as_deref(), azpacr)
    }

    fn refresh(
        &mut self,
        app: &App,
        path_tenant: Option<usize>,
        azpacr: &str,
    ) -> Result<Value, AadError> {
        let rt = self
            .form
            .get("refresh_token")
            .cloned()
            .ok_or_else(|| self.missing("refresh_token"))?;
        let invalid = |st: &SimState, extra: &str| {
            AadError::new(
                70000,
                format!(
                    "The provided value for the 'refresh_token' parameter is not valid.{extra}"
                ),
                &st.settings,
            )
        };
        let Some(grant) = self.st.refresh_tokens.get(&rt).cloned() else {
            return Err(invalid(self.st, ""));
        };
        if grant.client_id == app.client_id {
            self.note_user(grant.tenant_id, grant.user_id, grant.sign_in_ip);
        }
        if grant.client_id != app.client_id {
            return Err(invalid(
                self.st,
                " The refresh token was issued to a different client.",
            ));
        }
        if path_tenant.is_some_and(|t| self.st.tenants[t].id != grant.tenant_id) {
            return Err(invalid(
                self.st,
                " The refresh token was issued in another tenant.",
            ));
        }
        let t = self
            .st
            .tenant_by_id(grant.tenant_id)
            .ok_or_else(|| invalid(self.st, ""))?;
        let inactivity = Duration::days(self.st.settings.refresh_token_inactivity_days);
        if let Some(user) = self.st.user(t, grant.user_id)
            && let Some(valid_from) = user.tokens_valid_from
            && grant.auth_time < valid_from
        {
            let fmt = |d: OffsetDateTime| {
                crate::aad::aad_timestamp(d)
                    .trim_end_matches('Z')
                    .to_owned()
            };
            return Err(self.err(
                50173,
                format!(
                    "The provided grant has expired due to it being revoked, a fresh auth token is needed. The user might have changed or reset their password. The grant was issued on '{}' and the TokensValidFrom date (before which tokens are not valid) for this user is '{}'.",
                    fmt(grant.auth_time),
                    fmt(valid_from)
                ),
            ));
        }
        if grant.last_used + inactivity < self.now {
            return Err(self.err(
                700082,
                format!(
                    "The refresh token has expired due to inactivity. The token was issued on {} and was inactive for {}.00:00:00.",
                    crate::aad::aad_timestamp(grant.issued_at),
                    self.st.settings.refresh_token_inactivity_days
                ),
            ));
        }
        self.check_user_and_app(t, app, &grant)?;
        let scopes: Vec<String> = match self.form.get("scope") {
            Some(s) => s.split_whitespace().map(str::to_owned).collect(),
            None => grant.scopes.clone(),
        };
        let body = self.issue_delegated(t, app, &grant, &scopes, None, azpacr)?;
        if let Some(old) = self.st.refresh_tokens.get_mut(&rt) {
            old.last_used = self.now;
        }
        Ok(body)
    }

    /// User state, service principal and conditional access checks shared by both delegated
    /// grants (entra-facts §2.2, §3.1, §7). Redeeming a code or a refresh token is a
    /// non-interactive sign-in, so conditional access is evaluated for both.
    fn check_user_and_app(
        &self,
        t: usize,
        app: &App,
        grant: &RefreshGrant,
    ) -> Result<(), AadError> {
        let tenant = &self.st.tenants[t];
        let user = self.st.user(t, grant.user_id);
        match user {
            None => return Err(self.deleted_user(t)),
            Some(u) if u.deleted => return Err(self.deleted_user(t)),
            Some(u) if !u.enabled => return Err(self.err(50057, "The user account is disabled.")),
            Some(_) => {}
        }
        let user = user.ok_or_else(|| self.deleted_user(t))?;
        if self.st.sp(t, app.client_id).is_none() {
            return Err(self.app_not_found(&app.client_id.to_string(), &tenant.id.to_string()));
        }
        let ip = match self.st.settings.ca_refresh_ip {
            CaRefreshIp::OriginalSignIn => grant.sign_in_ip,
            CaRefreshIp::RequestPeer => self.peer_ip,
        };
        let ca = self
            .st
            .evaluate_ca_detailed(t, user, app.client_id, ip, grant.mfa_done, false);
        let blocked = ca.error.clone();
        {
            let mut log = self.log.borrow_mut();
            log.tenant = Some(tenant.id);
            log.user = Some(grant.user_id);
            log.ip = Some(ip);
            log.ca = Some(ca);
        }
        if let Some(e) = blocked {
            return Err(e);
        }
        if user.mfa_required && !grant.mfa_done {
            return Err(self.st.mfa_error());
        }
        Ok(())
    }

    /// Tells the sign-in logs whose code or refresh token this request redeems, and from which
    /// address conditional access sees it (see `Settings::ca_refresh_ip`).
    fn note_user(&self, tenant: Uuid, user: Uuid, sign_in_ip: IpAddr) {
        let mut log = self.log.borrow_mut();
        log.tenant = Some(tenant);
        log.user = Some(user);
        log.ip = Some(match self.st.settings.ca_refresh_ip {
            CaRefreshIp::OriginalSignIn => sign_in_ip,
            CaRefreshIp::RequestPeer => self.peer_ip,
        });
    }

    fn deleted_user(&self, t: usize) -> AadError {
        let tid = self.st.tenants[t].id;
        self.err(
            self.st.settings.deleted_user_code,
            format!(
                "The user account {{EmailHidden}} does not exist in the {tid} directory. To sign into this application, the account must be added to the directory."
            ),
        )
    }

    fn no_consent(&self, app: &App) -> AadError {
        self.err(
            65001,
            format!(
                "The user or administrator has not consented to use the application with ID '{}' named '{}'. Send an interactive authorization request for this user and resource.",
                app.client_id, app.display_name
            ),
        )
    }

    /// Issues access token (+ refresh token with offline_access, + ID token with openid).
    fn issue_delegated(
        &mut self,
        t: usize,
        app: &App,
        grant: &RefreshGrant,
        requested: &[String],
        nonce: Option<&str>,
        azpacr: &str,
    ) -> Result<Value, AadError> {
        let refs = self.st.parse_scopes(requested).map_err(|s| {
            self.err(70011, format!("The provided value for the input parameter 'scope' is not valid. The scope {s} is not valid."))
        })?;
        let r = refs
            .iter()
            .find_map(|s| match s {
                ScopeRef::Default(r) | ScopeRef::Named(r, _) => Some(*r),
                ScopeRef::Oidc(_) => None,
            })
            .unwrap_or_else(|| self.st.graph_idx());
        let consented = self.st.consented_scopes(t, app.client_id, r, grant.user_id);
        let mut scp: Vec<String> = Vec::new();
        for s in &refs {
            match s {
                ScopeRef::Default(x) if *x == r => scp.extend(consented.iter().cloned()),
                ScopeRef::Named(x, v) if *x == r => {
                    if !consented.contains(v) {
                        return Err(self.no_consent(app));
                    }
                    scp.push(v.clone());
                }
                _ => {}
            }
        }
        if !self.st.has_any_consent(t, app.client_id, grant.user_id) {
            return Err(self.no_consent(app));
        }
        if scp.is_empty() {
            scp.extend(
                consented
                    .iter()
                    .filter(|s| !OIDC_SCOPES.contains(&s.as_str()))
                    .cloned(),
            );
        }
        let mut seen = std::collections::HashSet::new();
        scp.retain(|s| seen.insert(s.clone()));
        let user = self
            .st
            .user(t, grant.user_id)
            .cloned()
            .ok_or_else(|| self.deleted_user(t))?;
        let tid = self.st.tenants[t].id;
        let lifetime = self.st.settings.access_token_lifetime_secs;
        let amr: Vec<&str> = if grant.mfa_done {
            vec!["pwd", "mfa"]
        } else {
            vec!["pwd"]
        };
        let sub = URL_SAFE_NO_PAD
            .encode(synthetic_id("sub", &format!("{}/{}", user.id, app.client_id)).as_bytes());
        let mut at = self.base_claims(tid, r, lifetime);
        let user_claims = json!({
            "oid": user.id,
            "sub": sub,
            "upn": user.upn,
            "preferred_username": user.upn,
            "unique_name": user.upn,
            "name": user.display_name,
            "amr": amr,
            "ipaddr": grant.sign_in_ip.to_string(),
            "auth_time": grant.auth_time.unix_timestamp(),
        });
        merge(&mut at, &user_claims);
        at["scp"] = json!(scp.join(" "));
        at["appid"] = json!(app.client_id);
        at["azp"] = json!(app.client_id);
        at["appidacr"] = json!(azpacr);
        at["azpacr"] = json!(azpacr);
        at["idtyp"] = json!("user");
        if !user.roles.is_empty() {
            at["wids"] = json!(user.roles);
        }
        let mut granted: Vec<String> = scp.iter().map(|v| self.st.full_scope(r, v)).collect();
        let oidc_requested: Vec<String> = refs
            .iter()
            .filter_map(|s| match s {
                ScopeRef::Oidc(v) => Some(v.clone()),
                _ => None,
            })
            .collect();
        for v in &oidc_requested {
            if v != "offline_access" && !granted.contains(v) {
                granted.push(v.clone());
            }
        }
        let mut body = json!({
            "token_type": "Bearer",
            "scope": granted.join(" "),
            "expires_in": lifetime,
            "ext_expires_in": lifetime,
            "access_token": self.sign_later(at),
        });
        if oidc_requested.iter().any(|s| s == "offline_access")
            || grant.scopes.iter().any(|s| s == "offline_access")
        {
            let token = format!("0.SIM.{}", random_token(48));
            let mut new_grant = grant.clone();
            new_grant.issued_at = self.now;
            new_grant.last_used = self.now;
            // The refresh token keeps the scopes of the sign-in (it can be used for any consented
            // resource), plus what was asked now.
            for s in requested {
                if !new_grant.scopes.contains(s) {
                    new_grant.scopes.push(s.clone());
                }
            }
            self.st.refresh_tokens.insert(token.clone(), new_grant);
            body["refresh_token"] = json!(token);
        }
        if oidc_requested.iter().any(|s| s == "openid")
            || grant.scopes.iter().any(|s| s == "openid")
        {
            let now = self.now.unix_timestamp();
            let mut id = json!({
                "aud": app.client_id,
                "iss": format!("{}/{tid}/v2.0", self.ctx.base),
                "iat": now,
                "nbf": now,
                "exp": now + lifetime,
                "oid": user.id,
                "sub": sub,
                "tid": tid,
                "preferred_username": user.upn,
                "name": user.display_name,
                "ver": "2.0",
                "sid": synthetic_id("sid", &format!("{}/{}", user.id, grant.auth_time)),
                "uti": random_token(16),
            });
            if let Some(n) = nonce {
                id["nonce"] = json!(n);
            }
            // The user's app role assignments of this app (entra-facts §2.5, optional `roles`).
            if let Some(roles) = user.app_roles.get(&app.client_id).filter(|r| !r.is_empty()) {
                id["roles"] = json!(roles);
            }
            body["id_token"] = json!(self.id_token(id, tid)?);
        }
        if self.form.get("client_info").map(String::as_str) == Some("1") {
            // client_info contents are UNVERIFIED (entra-facts §1.3): uid = user object id, utid = tenant.
            let info = json!({"uid": user.id, "utid": tid});
            body["client_info"] = json!(URL_SAFE_NO_PAD.encode(info.to_string()));
        }
        Ok(body)
    }
}

impl Request<'_> {
    /// Signs an ID token's claims, with the defect the control API asked for, if any.
    fn id_token(&self, mut id: Value, tid: Uuid) -> Result<String, AadError> {
        use crate::faults::IdTokenFault as F;
        let Some(fault) = self.st.id_token_fault else {
            return Ok(self.sign_later(id));
        };
        let now = self.now.unix_timestamp();
        match fault {
            F::ForeignKey | F::UnknownKid => {
                let forger = crate::crypto::SigningKey::generate().map_err(|e| {
                    self.err(90033, format!("The forging key could not be made: {e}"))
                })?;
                return Ok(if fault == F::ForeignKey {
                    forger.sign_as(&id, &self.ctx.key.kid)
                } else {
                    forger.sign(&id)
                });
            }
            F::WrongAudience => id["aud"] = json!("00000000-0000-4000-8000-00000000a0d1"),
            F::WrongIssuer => id["iss"] = json!(format!("https://sts.windows.net/{tid}/")),
            F::Expired => {
                id["iat"] = json!(now - 7200);
                id["nbf"] = json!(now - 7200);
                id["exp"] = json!(now - 3600);
            }
            F::NotYetValid => id["nbf"] = json!(now + 3600),
            F::WrongNonce => id["nonce"] = json!("not-the-nonce-that-was-sent"),
            F::NoNonce => {
                if let Some(o) = id.as_object_mut() {
                    o.remove("nonce");
                }
            }
        }
        Ok(self.sign_later(id))
    }
}

fn merge(target: &mut Value, extra: &Value) {
    if let (Some(t), Some(e)) = (target.as_object_mut(), extra.as_object()) {
        for (k, v) in e {
            t.insert(k.clone(), v.clone());
        }
    }
}

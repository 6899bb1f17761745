//! The Microsoft Graph subset Consentry uses (entra-facts §4), with `@odata.context`, `$filter`
//! (`eq`, joined by `and`), `$top` paging with `@odata.nextLink`, token checks and Graph's error body;
//! its child `applications` answers the app registration writes (every method but GET).

use std::collections::HashMap;

use axum::extract::{OriginalUri, State};
use axum::http::{HeaderMap, HeaderValue, Method, StatusCode};
use axum::response::{IntoResponse, Response};
use base64::Engine;
use base64::engine::general_purpose::STANDARD;
use jsonwebtoken::{Algorithm, Validation};
use serde_json::{Value, json};
use time::OffsetDateTime;
use uuid::Uuid;

use crate::crypto::CertInfo;
use crate::ctx::Ctx;
use crate::state::State as SimState;
use crate::wellknown::{GRAPH_APP_ID, GRAPH_RESOURCE, graph_date, role_display_name};

mod applications;

fn iso(t: OffsetDateTime) -> String {
    t.format(&time::format_description::well_known::Rfc3339)
        .unwrap_or_default()
}

/// A Graph error answer.
#[derive(Debug, Clone)]
pub(crate) struct GraphError {
    status: StatusCode,
    code: &'static str,
    message: String,
}

impl GraphError {
    pub(crate) fn new(status: StatusCode, code: &'static str, message: impl Into<String>) -> Self {
        Self {
            status,
            code,
            message: message.into(),
        }
    }
    fn denied() -> Self {
        Self::new(
            StatusCode::FORBIDDEN,
            "Authorization_RequestDenied",
            "Insufficient privileges to complete the operation.",
        )
    }
    fn not_found(id: &str) -> Self {
        Self::new(
            StatusCode::NOT_FOUND,
            "Request_ResourceNotFound",
            format!(
                "Resource '{id}' does not exist or one of its queried reference-property objects are not present."
            ),
        )
    }
    fn unauthenticated(message: &str) -> Self {
        Self::new(
            StatusCode::UNAUTHORIZED,
            "InvalidAuthenticationToken",
            message,
        )
    }
    pub(crate) fn bad_request(message: impl Into<String>) -> Self {
        Self::new(StatusCode::BAD_REQUEST, "BadRequest", message)
    }
    /// What Graph answers for a method a resource does not support [V] GD:concepts/json-batching.md
    /// (the example batch's 405): every method but GET, except the application writes.
    pub(crate) fn method_not_allowed() -> Self {
        Self::new(
            StatusCode::METHOD_NOT_ALLOWED,
            "Request_BadRequest",
            "Specified HTTP method is not allowed for the request target.",
        )
    }
    /// The error's message.
    #[cfg(test)]
    pub(crate) fn message(&self) -> &str {
        &self.message
    }
    /// The answer: Graph's error body (with `innerError`) and, for a 401, the Bearer challenge.
    pub(crate) fn answer(self, base: &str, now: OffsetDateTime, ids: &RequestIds) -> GraphAnswer {
        let body = json!({"error": {
            "code": self.code,
            "message": self.message,
            "innerError": {"date": graph_date(now), "request-id": ids.request_id, "client-request-id": ids.client_request_id}
        }});
        let mut headers = HeaderMap::new();
        headers.insert("content-type", HeaderValue::from_static("application/json"));
        if self.status == StatusCode::UNAUTHORIZED {
            let challenge = format!(
                "Bearer realm=\"\", authorization_uri=\"{base}/common/oauth2/authorize\", client_id=\"{GRAPH_APP_ID}\""
            );
            if let Ok(v) = HeaderValue::from_str(&challenge) {
                headers.insert("www-authenticate", v);
            }
        }
        GraphAnswer {
            status: self.status,
            headers,
            body,
        }
    }
}

/// One Graph answer: what the direct endpoint sends, and what a `$batch` response carries for an
/// inner request.
pub(crate) struct GraphAnswer {
    pub status: StatusCode,
    pub headers: HeaderMap,
    pub body: Value,
}

impl GraphAnswer {
    /// The answer as an HTTP response, stamped with the request's IDs.
    pub(crate) fn into_response(self, ids: &RequestIds) -> Response {
        // A write that answers 204 No Content has no body.
        let mut resp = if self.body.is_null() {
            self.status.into_response()
        } else {
            (self.status, axum::Json(self.body)).into_response()
        };
        let h = resp.headers_mut();
        h.extend(self.headers);
        ids.stamp(h);
        resp
    }
}

/// `request-id` (new for each HTTP request) and `client-request-id` (echoed when the client sent one).
pub(crate) struct RequestIds {
    pub request_id: String,
    pub client_request_id: String,
}

impl RequestIds {
    pub(crate) fn new(headers: &HeaderMap) -> Self {
        let request_id = Uuid::new_v4().to_string();
        let client_request_id = headers
            .get("client-request-id")
            .and_then(|v| v.to_str().ok())
            .map_or_else(|| request_id.clone(), str::to_owned);
        Self {
            request_id,
            client_request_id,
        }
    }

    /// Adds the headers Graph sends on every HTTP answer.
    pub(crate) fn stamp(&self, h: &mut HeaderMap) {
        if let Ok(v) = HeaderValue::from_str(&self.request_id) {
            h.insert("request-id", v);
        }
        if let Ok(v) = HeaderValue::from_str(&self.client_request_id) {
            h.insert("client-request-id", v);
        }
        h.insert("x-ms-ags-diagnostic", HeaderValue::from_static(r#"{"ServerInfo":{"DataCenter":"entra-sim","Slice":"E","Ring":"0","ScaleUnit":"000","RoleInstance":"entra-sim"}}"#));
    }
}

/// The caller, from the access token.
#[derive(Clone)]
struct Caller {
    tenant: usize,
    app_id: Uuid,
    user: Option<Uuid>,
    /// The token's `oid`: the user, or the calling app's service principal for app-only tokens.
    oid: Option<Uuid>,
    scopes: Vec<String>,
    roles: Vec<String>,
}

impl Caller {
    fn delegated_any(&self, scopes: &[&str]) -> bool {
        self.user.is_some() && self.scopes.iter().any(|s| scopes.contains(&s.as_str()))
    }
    fn app_any(&self, roles: &[&str]) -> bool {
        self.user.is_none() && self.roles.iter().any(|r| roles.contains(&r.as_str()))
    }
    fn require(&self, delegated: &[&str], application: &[&str]) -> Result<(), GraphError> {
        if self.delegated_any(delegated) || self.app_any(application) {
            Ok(())
        } else {
            Err(GraphError::denied())
        }
    }
    fn user(&self) -> Result<Uuid, GraphError> {
        self.user.ok_or_else(|| {
            GraphError::bad_request("/me request is only valid with delegated authentication flow.")
        })
    }
}

/// `/v1.0/...`: reads (`GET`) and the application writes of `applications` (any other method
/// Graph refuses).
pub(crate) async fn graph_v1(
    State(ctx): State<Ctx>,
    method: Method,
    OriginalUri(uri): OriginalUri,
    headers: HeaderMap,
    body: axum::body::Bytes,
) -> Response {
    graph(&ctx, "v1.0", &method, &uri, &headers, &body)
}

/// `/beta/...` (as for v1.0).
pub(crate) async fn graph_beta(
    State(ctx): State<Ctx>,
    method: Method,
    OriginalUri(uri): OriginalUri,
    headers: HeaderMap,
    body: axum::body::Bytes,
) -> Response {
    graph(&ctx, "beta", &method, &uri, &headers, &body)
}

fn graph(
    ctx: &Ctx,
    version: &str,
    method: &Method,
    uri: &axum::http::Uri,
    headers: &HeaderMap,
    body: &[u8],
) -> Response {
    let ids = RequestIds::new(headers);
    // A national cloud's Graph is served under its prefix (`/clouds/<key>/v1.0/…`).
    let prefix = format!("/clouds/{}", ctx.cloud.key);
    let full = uri.path();
    let path = full
        .strip_prefix(prefix.as_str())
        .filter(|_| ctx.cloud.key != crate::wellknown::GLOBAL_CLOUD)
        .unwrap_or(full)
        .trim_start_matches('/')
        .split_once('/')
        .map(|x| x.1)
        .unwrap_or_default();
    let call = GraphCall {
        method: method.as_str(),
        version,
        path,
        query: uri.query().unwrap_or_default(),
        headers,
        body,
        direct: true,
        token: &verify_token(ctx, headers),
    };
    let answer = answer(ctx, &mut ctx.lock(), &call, &ids);
    answer.into_response(&ids)
}

/// One Graph request, direct or inside a `$batch`.
pub(crate) struct GraphCall<'a> {
    /// The HTTP method (only `GET` is served).
    pub method: &'a str,
    /// `v1.0` or `beta`.
    pub version: &'a str,
    /// The path after the version, without the leading `/` (`me/memberOf`).
    pub path: &'a str,
    /// The query string without `?` (may be empty).
    pub query: &'a str,
    /// The request's headers (`Authorization`, `ConsistencyLevel`).
    pub headers: &'a HeaderMap,
    /// The request's body (JSON for the writes; empty for reads).
    pub body: &'a [u8],
    /// A request of its own (counted in `graph_exchanges`), not one inside a `$batch`.
    pub direct: bool,
    /// The `Authorization` header's token, verified before the state was locked
    /// ([`verify_token`]; a `$batch`'s inner requests share the batch's).
    pub token: &'a Result<Value, GraphError>,
}

/// Answers one Graph request against the locked state: authentication, then the resource. The
/// direct endpoint and `$batch` both answer through here, so an inner request answers exactly what
/// the same request sent alone would.
pub(crate) fn answer(
    ctx: &Ctx,
    st: &mut SimState,
    call: &GraphCall<'_>,
    ids: &RequestIds,
) -> GraphAnswer {
    let now = st.now();
    let caller = match caller_of_token(ctx, st, call.token) {
        Ok(caller) => caller,
        Err(e) => return e.answer(&ctx.base, now, ids),
    };
    if call.direct {
        count_exchange(st, &caller);
    }
    let throttle_headers = match throttled(st, &caller, call) {
        Ok(headers) => headers,
        Err(answer) => return *answer,
    };
    let result = Ok::<_, GraphError>(caller).and_then(|caller| {
        let query: HashMap<String, String> = url::form_urlencoded::parse(call.query.as_bytes())
            .into_owned()
            .collect();
        if !call.method.eq_ignore_ascii_case("GET") {
            let base = format!("{}/{}", ctx.base, call.version);
            return applications::write(st, &caller, call, &query, &base);
        }
        let g = GraphRequest {
            st,
            eventual: call
                .headers
                .get("consistencylevel")
                .and_then(|v| v.to_str().ok())
                .is_some_and(|v| v.eq_ignore_ascii_case("eventual")),
            caller,
            version: call.version,
            base: format!("{}/{}", ctx.base, call.version),
            path: call.path.to_owned(),
            query,
        };
        g.dispatch().map(|body| (StatusCode::OK, body))
    });
    match result {
        Ok((status, body)) => {
            let mut headers = HeaderMap::new();
            if !body.is_null() {
                headers.insert(
                    "content-type",
                    HeaderValue::from_static("application/json;odata.metadata=minimal;odata.streaming=true;IEEE754Compatible=false;charset=utf-8"),
                );
            }
            headers.extend(throttle_headers);
            GraphAnswer {
                status,
                headers,
                body,
            }
        }
        Err(e) => e.answer(&ctx.base, now, ids),
    }
}

/// With throttling on, counts an authenticated request against its app's limits (entra-facts
/// §6.2): the headers of an allowed answer (`x-ms-resource-unit`, and
/// `x-ms-throttle-limit-percentage` once the (app, tenant) bucket is over 80 % used), or the 429
/// answer (`TooManyRequests`, `Retry-After`, `x-ms-throttle-scope`). A `$batch` answers each inner
/// request through here, so a throttled inner request gets its own 429 inside the batch.
fn throttled(
    st: &mut SimState,
    caller: &Caller,
    call: &GraphCall<'_>,
) -> Result<HeaderMap, Box<GraphAnswer>> {
    let settings = st.settings.throttling;
    let mut headers = HeaderMap::new();
    if !settings.enabled {
        return Ok(headers);
    }
    let tenant = &st.tenants[caller.tenant];
    let (tenant_id, users) = (tenant.id, tenant.users.len());
    let units = crate::throttle::graph_units(call.method, call.path, call.query);
    let decision = st.throttle.graph(
        &settings,
        &crate::throttle::GraphRequest {
            app: caller.app_id,
            tenant: tenant_id,
            users,
            units,
            report: crate::throttle::is_report(call.path),
        },
        std::time::Instant::now(),
    );
    match decision {
        crate::throttle::GraphDecision::Allowed { units, used } => {
            headers.insert("x-ms-resource-unit", HeaderValue::from(units));
            // Sent only above 80 % of the limit, as 0.8–1.8 (entra-facts §6.2).
            if used >= 0.8
                && let Ok(v) = HeaderValue::from_str(&format!("{:.1}", used.min(1.8)))
            {
                headers.insert("x-ms-throttle-limit-percentage", v);
            }
            Ok(headers)
        }
        crate::throttle::GraphDecision::Throttled {
            units,
            retry_after,
            scope,
        } => {
            // What the fourth part names for the Application scope is UNVERIFIED (the tenant here).
            let scope = format!("{scope}/ReadWrite/{}/{tenant_id}", caller.app_id);
            let (status, headers, body) = crate::faults::error_answer(
                Some("graph"),
                StatusCode::TOO_MANY_REQUESTS,
                Some(retry_after),
                &scope,
                units,
            );
            Err(Box::new(GraphAnswer {
                status,
                headers,
                body,
            }))
        }
    }
}

/// Checks the bearer token of a Graph request (a `$batch` is refused as a whole without a valid one).
pub(crate) fn check_token(
    ctx: &Ctx,
    st: &mut SimState,
    token: &Result<Value, GraphError>,
) -> Result<(), GraphError> {
    let caller = caller_of_token(ctx, st, token)?;
    count_exchange(st, &caller);
    Ok(())
}

/// One more HTTP exchange with Graph by the caller's tenant and app (`graph_exchanges`).
fn count_exchange(st: &mut SimState, caller: &Caller) {
    let key = (st.tenants[caller.tenant].id, caller.app_id);
    *st.graph_exchanges.entry(key).or_default() += 1;
}

/// `GET /oidc/userinfo` (advertised by discovery): the signed-in user's OpenID claims.
pub(crate) async fn userinfo(State(ctx): State<Ctx>, headers: HeaderMap) -> Response {
    let request_id = Uuid::new_v4().to_string();
    let ids = RequestIds {
        request_id: request_id.clone(),
        client_request_id: request_id,
    };
    let st = ctx.lock();
    let now = st.now();
    let result = authenticate(&ctx, &st, &headers).and_then(|caller| {
        let user = caller.user.ok_or_else(|| GraphError::unauthenticated("Access token validation failure."))?;
        let u = st.tenants[caller.tenant]
            .users
            .iter()
            .find(|u| u.id == user && !u.deleted)
            .ok_or_else(|| GraphError::not_found(&user.to_string()))?;
        Ok(json!({
            "sub": base64::engine::general_purpose::URL_SAFE_NO_PAD
                .encode(crate::wellknown::synthetic_id("sub", &format!("{}/{}", u.id, caller.app_id)).as_bytes()),
            "name": u.display_name,
            "family_name": u.surname,
            "given_name": u.given_name,
            "email": u.upn,
        }))
    });
    match result {
        Ok(body) => axum::Json(body).into_response(),
        Err(e) => {
            let a = e.answer(&ctx.base, now, &ids);
            let mut resp = (a.status, axum::Json(a.body)).into_response();
            resp.headers_mut().extend(a.headers);
            resp
        }
    }
}

fn authenticate(ctx: &Ctx, st: &SimState, headers: &HeaderMap) -> Result<Caller, GraphError> {
    caller_of(ctx, st, &verify_token(ctx, headers)?)
}

/// The claims of the `Authorization` header's bearer token once its signature is verified: no
/// state needed, so it runs before the state is locked (an RSA verification is a good part of a
/// request's CPU, and the lock serializes every request to the simulator).
pub(crate) fn verify_token(ctx: &Ctx, headers: &HeaderMap) -> Result<Value, GraphError> {
    let token = headers
        .get("authorization")
        .and_then(|v| v.to_str().ok())
        .and_then(|v| {
            v.strip_prefix("Bearer ")
                .or_else(|| v.strip_prefix("bearer "))
        })
        .map(str::trim)
        .filter(|t| !t.is_empty())
        .ok_or_else(|| GraphError::unauthenticated("Access token is empty."))?;
    let mut validation = Validation::new(Algorithm::RS256);
    validation.validate_exp = false;
    validation.validate_nbf = false;
    validation.validate_aud = false;
    validation.required_spec_claims.clear();
    jsonwebtoken::decode::<Value>(token, &ctx.key.decoding, &validation)
        .map_err(|e| match e.kind() {
            jsonwebtoken::errors::ErrorKind::InvalidSignature => {
                GraphError::unauthenticated("Access token validation failure.")
            }
            _ => {
                GraphError::unauthenticated("CompactToken parsing failed with error code: 80049217")
            }
        })
        .map(|data| data.claims)
}

/// The caller of a token verified before the state was locked ([`verify_token`]), or why there is
/// none.
fn caller_of_token(
    ctx: &Ctx,
    st: &SimState,
    token: &Result<Value, GraphError>,
) -> Result<Caller, GraphError> {
    match token {
        Ok(claims) => caller_of(ctx, st, claims),
        Err(e) => Err(e.clone()),
    }
}

/// The caller a verified token names, checked against the state: audience, lifetime, tenant and
/// cloud.
fn caller_of(ctx: &Ctx, st: &SimState, claims: &Value) -> Result<Caller, GraphError> {
    let aud = claims
        .get("aud")
        .and_then(Value::as_str)
        .unwrap_or_default();
    if !(aud.trim_end_matches('/') == GRAPH_RESOURCE || aud == GRAPH_APP_ID) {
        return Err(GraphError::unauthenticated(
            "Access token validation failure. Invalid audience.",
        ));
    }
    let now = st.now().unix_timestamp();
    let exp = claims.get("exp").and_then(Value::as_i64).unwrap_or(0);
    let nbf = claims.get("nbf").and_then(Value::as_i64).unwrap_or(0);
    if now >= exp || now + 300 < nbf {
        return Err(GraphError::unauthenticated(
            "Access token has expired or is not yet valid.",
        ));
    }
    let tid = claims
        .get("tid")
        .and_then(Value::as_str)
        .unwrap_or_default();
    let tenant = st
        .tenant_idx(tid)
        .ok_or_else(|| GraphError::unauthenticated("Access token validation failure."))?;
    // Each cloud's Graph accepts only its own cloud's tokens: issued by its authority, for one of
    // its tenants (the error text for another cloud's token is UNVERIFIED).
    let issuer = claims
        .get("iss")
        .and_then(Value::as_str)
        .unwrap_or_default();
    if Ctx::cloud_of(&st.tenants[tenant]).key != ctx.cloud.key
        || issuer != format!("{}/{tid}/v2.0", ctx.base)
    {
        return Err(GraphError::unauthenticated(
            "Access token validation failure. Invalid issuer.",
        ));
    }
    let app_id = claims
        .get("appid")
        .or_else(|| claims.get("azp"))
        .and_then(Value::as_str)
        .and_then(|s| Uuid::parse_str(s).ok())
        .unwrap_or_default();
    let user = if claims.get("idtyp").and_then(Value::as_str) == Some("app") {
        None
    } else {
        claims
            .get("oid")
            .and_then(Value::as_str)
            .and_then(|s| Uuid::parse_str(s).ok())
    };
    let scopes = claims
        .get("scp")
        .and_then(Value::as_str)
        .unwrap_or_default()
        .split_whitespace()
        .map(str::to_owned)
        .collect();
    let roles = claims
        .get("roles")
        .and_then(Value::as_array)
        .map(|a| {
            a.iter()
                .filter_map(Value::as_str)
                .map(str::to_owned)
                .collect()
        })
        .unwrap_or_default();
    let oid = claims
        .get("oid")
        .and_then(Value::as_str)
        .and_then(|s| Uuid::parse_str(s).ok());
    Ok(Caller {
        tenant,
        app_id,
        user,
        oid,
        scopes,
        roles,
    })
}

const READ_USER: &[&str] = &[
    "User.Read",
    "User.ReadWrite",
    "User.ReadBasic.All",
    "User.Read.All",
    "User.ReadWrite.All",
    "Directory.Read.All",
    "Directory.ReadWrite.All",
    "Directory.AccessAsUser.All",
];
const APP_READ_USERS: &[&str] = &[
    "User.Read.All",
    "User.ReadWrite.All",
    "Directory.Read.All",
    "Directory.ReadWrite.All",
];
const READ_APPS: &[&str] = &[
    "Application.Read.All",
    "Application.ReadWrite.All",
    "Directory.Read.All",
    "Directory.ReadWrite.All",
];
const READ_SP_ASSIGNMENTS: &[&str] = &[
    "Application.Read.All",
    "Application.ReadWrite.All",
    "AppRoleAssignment.ReadWrite.All",
    "Directory.Read.All",
    "Directory.ReadWrite.All",
];
const READ_GRANTS: &[&str] = &[
    "Directory.Read.All",
    "DelegatedPermissionGrant.Read.All",
    "DelegatedPermissionGrant.ReadWrite.All",
    "Directory.ReadWrite.All",
];
const READ_GROUPS: &[&str] = &[
    "GroupMember.Read.All",
    "Group.Read.All",
    "Group.ReadWrite.All",
    "Directory.Read.All",
    "Directory.ReadWrite.All",
];
const READ_ROLES: &[&str] = &[
    "RoleManagement.Read.Directory",
    "RoleManagement.Read.All",
    "RoleManagement.ReadWrite.Directory",
    "Directory.Read.All",
    "Directory.ReadWrite.All",
];
const READ_ORG: &[&str] = &[
    "Organization.Read.All",
    "Directory.Read.All",
    "Directory.ReadWrite.All",
];

struct GraphRequest<'a> {
    st: &'a SimState,
    /// `ConsistencyLevel: eventual` was sent.
    eventual: bool,
    caller: Caller,
    version: &'a str,
    base: String,
    /// The path after the version (`servicePrincipals`).
    path: String,
    query: HashMap<String, String>,
}

/// `name('value')` → value
fn key_arg<'s>(segment: &'s str, name: &str) -> Option<&'s str> {
    let inner = segment
        .strip_prefix(name)?
        .strip_prefix('(')?
        .strip_suffix(')')?;
    let inner = inner.strip_prefix("appId=").unwrap_or(inner);
    Some(inner.trim_matches('\''))
}

impl GraphRequest<'_> {
    fn tenant(&self) -> &crate::model::Tenant {
        &self.st.tenants[self.caller.tenant]
    }

    fn dispatch(&self) -> Result<Value, GraphError> {
        let path = self.path.trim_end_matches('/').to_owned();
        let mut segs: Vec<&str> = path.split('/').collect();
        // A service principal's relationships addressed by its appId, e.g.
        // `servicePrincipals(appId='…')/oauth2PermissionGrants` ([V] Graph docs,
        // serviceprincipal-list-oauth2permissiongrants: "You can address the service principal using
        // either its id or appId"); for `appRoleAssignments` the same form is quoted from the docs in a
        // Microsoft Q&A answer only (UNVERIFIED). Answered as the object-ID form, same permissions.
        let sp_object_id;
        if segs.len() > 1 && segs[0].starts_with("servicePrincipals(") {
            let app_id = key_arg(segs[0], "servicePrincipals").unwrap_or_default();
            sp_object_id = self
                .tenant()
                .service_principals
                .iter()
                .find(|s| s.app_id.to_string().eq_ignore_ascii_case(app_id))
                .ok_or_else(|| GraphError::not_found(app_id))?
                .id
                .to_string();
            segs.splice(0..1, ["servicePrincipals", sp_object_id.as_str()]);
        }
        match segs.as_slice() {
            ["auditLogs", "signIns"] => {
                let reader = crate::signins::Reader {
                    tenant: self.caller.tenant,
                    user: self.caller.user,
                    scopes: &self.caller.scopes,
                    roles: &self.caller.roles,
                };
                let origin = self
                    .base
                    .trim_end_matches(self.version)
                    .trim_end_matches('/');
                crate::signins::list(self.st, &reader, self.version, origin, &self.query)
                    .map_err(|(status, code, message)| GraphError::new(status, code, message))
            }
            ["me"] => {
                let user = self.caller.user()?;
                self.caller.require(READ_USER, &[])?;
                self.user_entity(user)
            }
            ["me", rel] => {
                let user = self.caller.user()?;
                self.caller.require(READ_USER, &[])?;
                self.user_relation(user, rel, "me")
            }
            ["users", id] => {
                let user = self.find_user(id)?;
                self.caller
                    .require(
                        &["User.Read.All", "User.ReadBasic.All", "Directory.Read.All"],
                        APP_READ_USERS,
                    )
                    .or_else(|e| {
                        if self.caller.user == Some(user) {
                            Ok(())
                        } else {
                            Err(e)
                        }
                    })?;
                self.user_entity(user)
            }
            ["users", id, rel] => {
                let user = self.find_user(id)?;
                self.caller
                    .require(&["User.Read.All", "Directory.Read.All"], APP_READ_USERS)
                    .or_else(|e| {
                        if self.caller.user == Some(user) {
                            Ok(())
                        } else {
                            Err(e)
                        }
                    })?;
                self.user_relation(user, rel, &format!("users('{user}')"))
            }
            ["organization"] => self.organization(),
            ["servicePrincipals"] => self.service_principals(),
            [seg] if seg.starts_with("servicePrincipals(") => {
                let app_id = key_arg(seg, "servicePrincipals").unwrap_or_default();
                let sp = self
                    .tenant()
                    .service_principals
                    .iter()
                    .find(|s| s.app_id.to_string().eq_ignore_ascii_case(app_id))
                    .ok_or_else(|| GraphError::not_found(app_id))?;
                self.require_sp_read(sp.app_id)?;
                // The `@odata.context` for this form is UNVERIFIED; the `$entity` form is used.
                Ok(self.with_context(self.sp_json(sp), "servicePrincipals/$entity"))
            }
            ["servicePrincipals", id] => {
                let sp = self.find_sp(id)?;
                self.require_sp_read(sp.app_id)?;
                Ok(self.with_context(self.sp_json(sp), "servicePrincipals/$entity"))
            }
            ["servicePrincipals", id, "appRoleAssignments"] => {
                let sp = self.find_sp(id)?;
                if sp.app_id != self.caller.app_id {
                    self.caller
                        .require(READ_SP_ASSIGNMENTS, READ_SP_ASSIGNMENTS)?;
                }
                let items: Vec<Value> = self
                    .tenant()
                    .app_role_assignments
                    .iter()
                    .filter(|a| a.principal_id == sp.id)
                    .map(assignment_json)
                    .collect();
                self.collection(
                    items,
                    "appRoleAssignments",
                    &["resourceId", "appRoleId", "principalId"],
                )
            }
            ["servicePrincipals", id, "oauth2PermissionGrants"] => {
                // [V] Graph docs (serviceprincipal-list-oauth2permissiongrants; entra-facts §4.7 had it
                // UNVERIFIED): the grants whose client is this service principal.
                let sp = self.find_sp(id)?;
                self.caller.require(READ_GRANTS, READ_GRANTS)?;
                let items = self
                    .tenant()
                    .oauth2_permission_grants
                    .iter()
                    .filter(|g| g.client_id == sp.id)
                    .map(grant_json)
                    .collect();
                self.collection(
                    items,
                    "oauth2PermissionGrants",
                    &["clientId", "consentType", "principalId", "resourceId"],
                )
            }
            ["oauth2PermissionGrants"] => {
                self.caller.require(READ_GRANTS, READ_GRANTS)?;
                let items = self
                    .tenant()
                    .oauth2_permission_grants
                    .iter()
                    .map(grant_json)
                    .collect();
                self.collection(
                    items,
                    "oauth2PermissionGrants",
                    &["clientId", "consentType", "principalId", "resourceId"],
                )
            }
            ["applications"] => {
                let mut items: Vec<Value> = self.home_apps().map(|a| self.app_json(a)).collect();
                if self.caller.require(READ_APPS, READ_APPS).is_err() {
                    // An app may read its own registration without permissions.
                    items.retain(|a| a["appId"] == json!(self.caller.app_id));
                }
                // `$filter` sees the whole object, `$select` shapes what is returned.
                self.selected_page(self.collection(
                    items,
                    "applications",
                    &["appId", "displayName"],
                )?)
            }
            [seg] if seg.starts_with("applications(") => {
                let app_id = key_arg(seg, "applications").unwrap_or_default();
                let app = self
                    .home_apps()
                    .find(|a| a.client_id.to_string().eq_ignore_ascii_case(app_id))
                    .ok_or_else(|| GraphError::not_found(app_id))?;
                if app.client_id != self.caller.app_id {
                    self.caller.require(READ_APPS, READ_APPS)?;
                }
                Ok(self.with_context(self.selected(self.app_json(app)), "applications/$entity"))
            }
            ["applications", id] => {
                let app = self
                    .home_apps()
                    .find(|a| object_id(a).to_string().eq_ignore_ascii_case(id))
                    .ok_or_else(|| GraphError::not_found(id))?;
                if app.client_id != self.caller.app_id {
                    self.caller.require(READ_APPS, READ_APPS)?;
                }
                Ok(self.with_context(self.selected(self.app_json(app)), "applications/$entity"))
            }
            ["roleManagement", "directory", "roleAssignments"] => {
                self.caller.require(READ_ROLES, READ_ROLES)?;
                self.collection(
                    self.role_assignments(),
                    "roleManagement/directory/roleAssignments",
                    &["principalId", "roleDefinitionId", "directoryScopeId"],
                )
            }
            ["roleManagement", "directory", "transitiveRoleAssignments"]
                if self.version == "beta" =>
            {
                // beta only; without ConsistencyLevel: eventual, $count=true and $filter: 404.
                let count = self.query.get("$count").is_some_and(|c| c == "true");
                if !self.eventual || !count || !self.query.contains_key("$filter") {
                    return Err(GraphError::new(
                        StatusCode::NOT_FOUND,
                        "Request_ResourceNotFound",
                        "Resource not found for the segment 'transitiveRoleAssignments'.",
                    ));
                }
                self.caller.require(READ_ROLES, READ_ROLES)?;
                self.collection(
                    self.role_assignments(),
                    "roleManagement/directory/transitiveRoleAssignments",
                    &["principalId", "roleDefinitionId", "directoryScopeId"],
                )
            }
            ["groups", id, "owners"] => {
                self.caller.require(READ_GROUPS, READ_GROUPS)?;
                let group = self
                    .tenant()
                    .groups
                    .iter()
                    .find(|g| g.id.to_string().eq_ignore_ascii_case(id))
                    .ok_or_else(|| GraphError::not_found(id))?;
                let items = group
                    .owners
                    .iter()
                    .filter_map(|o| self.tenant().users.iter().find(|u| u.id.to_string() == *o && !u.deleted))
                    .map(|u| {
                        json!({"@odata.type": "#microsoft.graph.user", "id": u.id, "accountEnabled": u.enabled,
                               "displayName": u.display_name, "userPrincipalName": u.upn})
                    })
                    .collect();
                self.collection(items, "directoryObjects", &[])
            }
            _ => Err(GraphError::bad_request(format!(
                "Resource not found for the segment '{}'.",
                segs.first().copied().unwrap_or_default()
            ))),
        }
    }

    /// Direct, tenant-wide role assignments (`roleDefinitionId` = role template ID for built-in roles).
    fn role_assignments(&self) -> Vec<Value> {
        let tenant = self.tenant();
        tenant
            .users
            .iter()
            .filter(|u| !u.deleted)
            .flat_map(|u| {
                u.roles.iter().map(move |r| {
                    json!({
                        "id": base64::engine::general_purpose::URL_SAFE_NO_PAD
                            .encode(crate::wellknown::synthetic_id("roleAssignment", &format!("{}/{r}", u.id)).as_bytes()),
                        "principalId": u.id,
                        "resourceScope": "/",
                        "directoryScopeId": "/",
                        "roleDefinitionId": r,
                    })
                })
            })
            .collect()
    }

    fn require_sp_read(&self, target_app: Uuid) -> Result<(), GraphError> {
        if target_app == self.caller.app_id {
            // A service principal can read itself without permissions (entra-facts §4.6).
            return Ok(());
        }
        self.caller.require(READ_APPS, READ_APPS)
    }

    fn home_apps(&self) -> impl Iterator<Item = &crate::model::App> {
        let tenant = self.tenant();
        self.st.apps.iter().filter(move |a| homed_in(tenant, a))
    }

    fn find_user(&self, id: &str) -> Result<Uuid, GraphError> {
        self.tenant()
            .users
            .iter()
            .find(|u| {
                !u.deleted
                    && (u.id.to_string().eq_ignore_ascii_case(id) || u.upn.eq_ignore_ascii_case(id))
            })
            .map(|u| u.id)
            .ok_or_else(|| GraphError::not_found(id))
    }

    fn find_sp(&self, id: &str) -> Result<&crate::model::ServicePrincipal, GraphError> {
        self.tenant()
            .service_principals
            .iter()
            .find(|s| s.id.to_string().eq_ignore_ascii_case(id))
            .ok_or_else(|| GraphError::not_found(id))
    }

    fn with_context(&self, mut v: Value, context: &str) -> Value {
        if let Some(o) = v.as_object_mut() {
            let mut out = serde_json::Map::new();
            out.insert(
                "@odata.context".into(),
                json!(format!("{}/$metadata#{context}", self.base)),
            );
            out.extend(std::mem::take(o));
            return Value::Object(out);
        }
        v
    }

    fn user_entity(&self, id: Uuid) -> Result<Value, GraphError> {
        let u = self
            .tenant()
            .users
            .iter()
            .find(|u| u.id == id && !u.deleted)
            .ok_or_else(|| GraphError::not_found(&id.to_string()))?;
        Ok(self.with_context(
            json!({
                "businessPhones": [],
                "displayName": u.display_name,
                "givenName": u.given_name,
                "jobTitle": u.job_title,
                "mail": u.upn,
                "mobilePhone": null,
                "officeLocation": null,
                "preferredLanguage": "en-US",
                "surname": u.surname,
                "userPrincipalName": u.upn,
                "id": u.id,
            }),
            "users/$entity",
        ))
    }

    fn user_relation(&self, id: Uuid, rel: &str, context_owner: &str) -> Result<Value, GraphError> {
        let tenant = self.tenant();
        let u = tenant
            .users
            .iter()
            .find(|u| u.id == id && !u.deleted)
            .ok_or_else(|| GraphError::not_found(&id.to_string()))?;
        match rel {
            "memberOf" | "transitiveMemberOf" => {
                let mut items: Vec<Value> = tenant
                    .groups
                    .iter()
                    .filter(|g| g.members.contains(&id.to_string()))
                    .map(group_json)
                    .collect();
                items.extend(u.roles.iter().map(|r| {
                    json!({
                        "@odata.type": "#microsoft.graph.directoryRole",
                        // The directoryRole object ID is tenant-specific, not the template ID.
                        "id": crate::wellknown::synthetic_id("directoryRole", &format!("{}/{r}", tenant.id)),
                        "deletedDateTime": null,
                        "description": format!("Members of this role have the permissions of {}.", role_display_name(r)),
                        "displayName": role_display_name(r),
                        "roleTemplateId": r,
                    })
                }));
                self.collection(items, "directoryObjects", &[])
            }
            "licenseDetails" => {
                let items = u
                    .licenses
                    .iter()
                    .map(|l| {
                        json!({
                            "id": base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(crate::wellknown::synthetic_id("licenseDetails", &format!("{}/{}", u.id, l.sku_id)).as_bytes()),
                            "skuId": l.sku_id,
                            "skuPartNumber": l.sku_part_number,
                            "servicePlans": l.service_plans.iter().map(|p| json!({
                                "servicePlanId": p.service_plan_id,
                                "servicePlanName": p.service_plan_name,
                                "provisioningStatus": "Success",
                                "appliesTo": "User",
                            })).collect::<Vec<_>>(),
                        })
                    })
                    .collect();
                let owner = if context_owner == "me" {
                    format!("users('{id}')")
                } else {
                    context_owner.to_owned()
                };
                self.collection(items, &format!("{owner}/licenseDetails"), &[])
            }
            "ownedObjects" => {
                let items = tenant
                    .groups
                    .iter()
                    .filter(|g| g.owners.contains(&id.to_string()))
                    .map(group_json)
                    .collect();
                self.collection(items, "directoryObjects", &[])
            }
            other => Err(GraphError::bad_request(format!(
                "Resource not found for the segment '{other}'."
            ))),
        }
    }

    fn organization(&self) -> Result<Value, GraphError> {
        let t = self.tenant();
        let full = self.caller.delegated_any(READ_ORG) || self.caller.app_any(READ_ORG);
        if self.caller.user.is_none() && !full {
            return Err(GraphError::denied());
        }
        if self.caller.user.is_some() && !full && !self.caller.delegated_any(READ_USER) {
            return Err(GraphError::denied());
        }
        let domains: Vec<Value> = t
            .domains
            .iter()
            .enumerate()
            .map(|(i, d)| json!({"capabilities": "Email, OfficeCommunicationsOnline", "isDefault": i == 0, "isInitial": i == 0, "name": d, "type": "Managed"}))
            .collect();
        // With only User.Read, Graph returns id, displayName and verifiedDomains (others null).
        let org = if full {
            json!({"id": t.id, "deletedDateTime": null, "displayName": t.display_name, "countryLetterCode": "US",
                   "createdDateTime": "2021-08-02T10:30:06Z", "tenantType": "AAD",
                   "technicalNotificationMails": [t.users.first().map(|u| u.upn.clone()).unwrap_or_default()],
                   "assignedPlans": [], "verifiedDomains": domains})
        } else {
            json!({"id": t.id, "deletedDateTime": null, "displayName": t.display_name, "countryLetterCode": null,
                   "createdDateTime": null, "tenantType": null, "technicalNotificationMails": [], "assignedPlans": [],
                   "verifiedDomains": domains})
        };
        self.collection(vec![org], "organization", &[])
    }

    fn service_principals(&self) -> Result<Value, GraphError> {
        let all: Vec<Value> = self
            .tenant()
            .service_principals
            .iter()
            .map(|s| self.sp_json(s))
            .collect();
        if self.caller.require(READ_APPS, READ_APPS).is_err() {
            let own: Vec<Value> = all
                .into_iter()
                .filter(|s| s["appId"] == json!(self.caller.app_id))
                .collect();
            let filter = self.query.get("$filter").cloned().unwrap_or_default();
            if own.is_empty() || !filter.contains(&self.caller.app_id.to_string()) {
                return Err(GraphError::denied());
            }
            return self.selected_page(self.collection(
                own,
                "servicePrincipals",
                &["appId", "displayName", "id"],
            )?);
        }
        // `$filter` sees the whole object, `$select` shapes what is returned (Graph docs,
        // serviceprincipal-list: `$select` is supported).
        self.selected_page(self.collection(
            all,
            "servicePrincipals",
            &["appId", "displayName", "id"],
        )?)
    }

    /// A collection page with each item cut to the properties `$select` names.
    fn selected_page(&self, mut body: Value) -> Result<Value, GraphError> {
        if let Some(page) = body.get_mut("value").and_then(Value::as_array_mut) {
            for item in page {
                *item = self.selected(std::mem::take(item));
            }
        }
        Ok(body)
    }

    fn sp_json(&self, sp: &crate::model::ServicePrincipal) -> Value {
        // A resource's roles and scopes (Graph's: hundreds of objects) are left out when `$select`
        // leaves them out anyway ([`Self::selected`]): a check selects only `id,appId`.
        let selects = |field: &str| {
            self.query
                .get("$select")
                .filter(|s| !s.trim().is_empty())
                .is_none_or(|s| s.split(',').any(|f| f.trim().eq_ignore_ascii_case(field)))
        };
        let resource = self.st.resources.iter().find(|r| r.app_id == sp.app_id);
        let app = self.st.app(sp.app_id);
        let app_roles: Vec<Value> = resource
            .filter(|_| selects("appRoles"))
            .map(|r| {
                r.permissions
                    .iter()
                    .filter_map(|p| p.role_id.map(|id| (p, id)))
                    .map(|(p, id)| json!({"allowedMemberTypes": ["Application"], "description": p.value, "displayName": p.value, "id": id, "isEnabled": true, "origin": "Application", "value": p.value}))
                    .collect()
            })
            .unwrap_or_default();
        let scopes: Vec<Value> = resource
            .filter(|_| selects("oauth2PermissionScopes"))
            .map(|r| {
                r.permissions
                    .iter()
                    .filter_map(|p| p.scope_id.map(|id| (p, id)))
                    .map(|(p, id)| json!({"adminConsentDescription": p.value, "adminConsentDisplayName": p.value, "id": id, "isEnabled": true,
                                           "type": if p.admin_consent_required { "Admin" } else { "User" },
                                           "userConsentDescription": p.value, "userConsentDisplayName": p.value, "value": p.value}))
                    .collect()
            })
            .unwrap_or_default();
        let mut names = vec![json!(sp.app_id)];
        if let Some(r) = resource {
            names.push(json!(r.identifier_uri));
        }
        json!({
            "id": sp.id,
            "deletedDateTime": null,
            "accountEnabled": true,
            "appDisplayName": sp.display_name,
            "appId": sp.app_id,
            "appOwnerOrganizationId": sp.app_owner_organization_id,
            "appRoleAssignmentRequired": false,
            "appRoles": app_roles,
            "displayName": sp.display_name,
            "keyCredentials": [],
            "oauth2PermissionScopes": scopes,
            "passwordCredentials": [],
            "replyUrls": app.map(|a| a.redirect_uris.clone()).unwrap_or_default(),
            "servicePrincipalNames": names,
            "servicePrincipalType": "Application",
            "signInAudience": app.map_or("AzureADMultipleOrgs", |a| match a.sign_in_audience {
                crate::model::SignInAudience::AzureADMultipleOrgs => "AzureADMultipleOrgs",
                crate::model::SignInAudience::AzureADMyOrg => "AzureADMyOrg",
            }),
            "tags": [],
        })
    }

    fn app_json(&self, app: &crate::model::App) -> Value {
        let select = self
            .query
            .get("$select")
            .map(|s| {
                s.split(',')
                    .any(|f| f.trim().eq_ignore_ascii_case("keyCredentials"))
            })
            .unwrap_or(false);
        // `key` is returned only with $select including keyCredentials (entra-facts §4.9).
        let keys: Vec<Value> = app
            .certificates
            .iter()
            .filter_map(|c| {
                let end = self.st.certificate_end_dates.get(&c.key_id).copied();
                key_json(c, select, end)
            })
            .collect();
        let passwords: Vec<Value> = app.secrets.iter().map(password_json).collect();
        let mut rra: Vec<Value> = Vec::new();
        for (r, res) in self.st.resources.iter().enumerate() {
            let mut access = Vec::new();
            for v in self.st.registered_delegated(app, r) {
                if let Some(id) = res
                    .permissions
                    .iter()
                    .find(|p| p.value == v)
                    .and_then(|p| p.scope_id)
                {
                    access.push(json!({"id": id, "type": "Scope"}));
                }
            }
            for (x, v) in self.st.registered_application(app) {
                if x == r
                    && let Some(id) = res
                        .permissions
                        .iter()
                        .find(|p| p.value == v)
                        .and_then(|p| p.role_id)
                {
                    access.push(json!({"id": id, "type": "Role"}));
                }
            }
            if !access.is_empty() {
                rra.push(json!({"resourceAppId": res.app_id, "resourceAccess": access}));
            }
        }
        let full: Value = json!({
            "id": object_id(app),
            "appId": app.client_id,
            "displayName": app.display_name,
            "signInAudience": match app.sign_in_audience {
                crate::model::SignInAudience::AzureADMultipleOrgs => "AzureADMultipleOrgs",
                crate::model::SignInAudience::AzureADMyOrg => "AzureADMyOrg",
            },
            "isFallbackPublicClient": app.allow_public_client,
            "keyCredentials": keys,
            "passwordCredentials": passwords,
            "publicClient": {"redirectUris": app.public_client_redirect_uris},
            "requiredResourceAccess": rra,
            "web": {"redirectUris": app.redirect_uris},
        });
        full
    }

    /// The properties `$select` names (all without `$select`); unknown names are left out.
    fn selected(&self, full: Value) -> Value {
        let Some(select) = self.query.get("$select").filter(|s| !s.trim().is_empty()) else {
            return full;
        };
        let Value::Object(all) = full else {
            return full;
        };
        let mut out = serde_json::Map::new();
        for name in select.split(',').map(str::trim) {
            if let Some((k, v)) = all.iter().find(|(k, _)| k.eq_ignore_ascii_case(name)) {
                out.insert(k.clone(), v.clone());
            }
        }
        Value::Object(out)
    }

    /// Applies `$filter`, `$top` and `$skiptoken`, and wraps the page.
    fn collection(
        &self,
        items: Vec<Value>,
        context: &str,
        filterable: &[&str],
    ) -> Result<Value, GraphError> {
        let mut items = items;
        if let Some(filter) = self.query.get("$filter") {
            let clauses = parse_filter(filter).ok_or_else(|| {
                GraphError::new(
                    StatusCode::BAD_REQUEST,
                    "Request_UnsupportedQuery",
                    format!("Unsupported or invalid query filter clause specified: '{filter}'."),
                )
            })?;
            for (prop, _) in &clauses {
                if !filterable.iter().any(|f| f.eq_ignore_ascii_case(prop)) {
                    return Err(GraphError::new(
                        StatusCode::BAD_REQUEST,
                        "Request_UnsupportedQuery",
                        format!(
                            "Unsupported or invalid query filter clause specified for property '{prop}' of resource '{context}'."
                        ),
                    ));
                }
            }
            items.retain(|item| {
                clauses.iter().all(|(prop, value)| {
                    let key = filterable
                        .iter()
                        .find(|f| f.eq_ignore_ascii_case(prop))
                        .copied()
                        .unwrap_or_default();
                    match &item[key] {
                        Value::String(s) => s.eq_ignore_ascii_case(value),
                        Value::Null => value == "null",
                        other => other
                            .to_string()
                            .trim_matches('"')
                            .eq_ignore_ascii_case(value),
                    }
                })
            });
        }
        let top: usize = match self.query.get("$top") {
            Some(t) => t
                .parse()
                .ok()
                .filter(|n| (1..=999).contains(n))
                .ok_or_else(|| {
                    GraphError::bad_request(format!(
                        "Invalid page size specified: '{t}'. Must be between 1 and 999 inclusive."
                    ))
                })?,
            None => 100,
        };
        let skip: usize = match self.query.get("$skiptoken") {
            Some(t) => decode_skiptoken(t).ok_or_else(|| GraphError::bad_request("The specified page token value has expired and can no longer be included in your request."))?,
            None => 0,
        };
        let total = items.len();
        let page: Vec<Value> = items.into_iter().skip(skip).take(top).collect();
        let mut body =
            json!({"@odata.context": format!("{}/$metadata#{context}", self.base), "value": page});
        if skip == 0 && self.eventual && self.query.get("$count").is_some_and(|c| c == "true") {
            body["@odata.count"] = json!(total);
        }
        if skip + top < total {
            let mut pairs: Vec<(String, String)> = self
                .query
                .iter()
                .filter(|(k, _)| k.as_str() != "$skiptoken")
                .map(|(k, v)| (k.clone(), v.clone()))
                .collect();
            pairs.sort();
            pairs.push(("$skiptoken".into(), encode_skiptoken(skip + top)));
            let query = url::form_urlencoded::Serializer::new(String::new())
                .extend_pairs(pairs)
                .finish();
            body["@odata.nextLink"] = json!(format!("{}/{}?{query}", self.base, self.path));
        }
        Ok(body)
    }
}

/// Whether `app` is homed in `tenant`: application objects exist only in their home tenant
/// (entra-facts §4.9).
fn homed_in(tenant: &crate::model::Tenant, app: &crate::model::App) -> bool {
    tenant.id.to_string().eq_ignore_ascii_case(&app.home_tenant)
        || tenant
            .domains
            .iter()
            .any(|d| d.eq_ignore_ascii_case(&app.home_tenant))
}

/// A client secret as Graph's `passwordCredential` on a read: `hint` is the first three characters
/// of the secret, `secretText` is never returned (only `addPassword` shows it, once).
fn password_json(s: &crate::model::ClientSecret) -> Value {
    use secrecy::ExposeSecret;
    let hint: String = s.value.expose_secret().chars().take(3).collect();
    json!({
        "customKeyIdentifier": null,
        "displayName": s.display_name,
        "endDateTime": iso(s.end_date_time),
        "hint": hint,
        "keyId": s.key_id,
        "secretText": null,
        "startDateTime": s.start_date_time.map(iso),
    })
}

/// A certificate as Graph's `keyCredential` (its dates are the certificate's, the end possibly
/// brought forward by the control API: `end`; `key` only when `with_key`); `None` for a
/// certificate that does not parse.
fn key_json(
    c: &crate::model::KeyCredential,
    with_key: bool,
    end: Option<OffsetDateTime>,
) -> Option<Value> {
    let mut info = CertInfo::parse(&c.certificate).ok()?;
    if let Some(end) = end {
        info.not_after = info.not_after.min(end);
    }
    Some(json!({
        // Portal-uploaded certificates show the uppercase hex SHA-1 thumbprint here.
        "customKeyIdentifier": info.thumbprint_hex(),
        "displayName": c.display_name.clone().unwrap_or_else(|| info.subject.clone()),
        "endDateTime": iso(info.not_after),
        "key": if with_key { json!(STANDARD.encode(&info.der)) } else { Value::Null },
        "keyId": c.key_id,
        "startDateTime": iso(info.not_before),
        "type": "AsymmetricX509Cert",
        "usage": "Verify",
    }))
}

fn object_id(app: &crate::model::App) -> Uuid {
    app.object_id.unwrap_or_else(|| {
        crate::wellknown::synthetic_id("application", &app.client_id.to_string())
    })
}

fn group_json(g: &crate::model::Group) -> Value {
    json!({"@odata.type": "#microsoft.graph.group", "id": g.id, "displayName": g.display_name,
           "mailEnabled": g.mail_enabled, "securityEnabled": g.security_enabled})
}

fn grant_json(g: &crate::model::OAuth2PermissionGrant) -> Value {
    json!({"clientId": g.client_id, "consentType": g.consent_type, "id": g.id, "principalId": g.principal_id,
           "resourceId": g.resource_id, "scope": g.scope})
}

fn assignment_json(a: &crate::model::AppRoleAssignment) -> Value {
    json!({"id": a.id, "deletedDateTime": null, "appRoleId": a.app_role_id, "createdDateTime": iso(a.created_date_time),
           "principalDisplayName": a.principal_display_name, "principalId": a.principal_id, "principalType": "ServicePrincipal",
           "resourceDisplayName": a.resource_display_name, "resourceId": a.resource_id})
}

fn encode_skiptoken(offset: usize) -> String {
    format!(
        "RFNwdAIAAQAAA{}",
        base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(format!("skip:{offset}"))
    )
}

fn decode_skiptoken(token: &str) -> Option<usize> {
    let rest = token.strip_prefix("RFNwdAIAAQAAA")?;
    let text = String::from_utf8(
        base64::engine::general_purpose::URL_SAFE_NO_PAD
            .decode(rest)
            .ok()?,
    )
    .ok()?;
    text.strip_prefix("skip:")?.parse().ok()
}

/// Parses `prop eq 'value' [and prop eq 'value' ...]`.
fn parse_filter(filter: &str) -> Option<Vec<(String, String)>> {
    let mut out = Vec::new();
    for clause in filter.split(" and ") {
        let mut parts = clause.trim().splitn(3, ' ');
        let prop = parts.next()?;
        if !parts.next()?.eq_ignore_ascii_case("eq") {
            return None;
        }
        let raw = parts.next()?.trim();
        let value = if raw.len() >= 2 && raw.starts_with('\'') && raw.ends_with('\'') {
            raw[1..raw.len() - 1].replace("''", "'")
        } else {
            raw.to_owned()
        };
        out.push((prop.to_owned(), value));
    }
    Some(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn filter_parses_eq_clauses_and_rejects_other_operators() {
        assert_eq!(
            parse_filter("clientId eq 'abc' and consentType eq 'AllPrincipals'"),
            Some(vec![
                ("clientId".into(), "abc".into()),
                ("consentType".into(), "AllPrincipals".into())
            ])
        );
        assert_eq!(parse_filter("appId ne 'x'"), None);
        assert_eq!(parse_filter("startswith(displayName,'a')"), None);
    }

    #[test]
    fn skiptoken_round_trips_and_rejects_garbage() {
        assert_eq!(decode_skiptoken(&encode_skiptoken(200)), Some(200));
        assert_eq!(decode_skiptoken("nonsense"), None);
    }
}

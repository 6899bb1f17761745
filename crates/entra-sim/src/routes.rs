//! Every route in one place, plus the discovery document and the JWKS.

use axum::Router;
use axum::extract::{Path, Query, State};
use axum::http::{HeaderValue, header};
use axum::response::{IntoResponse, Response};
use axum::routing::{any, get, post};
use base64::Engine;
use base64::engine::general_purpose::STANDARD;
use serde_json::json;

use crate::aad::AadError;
use crate::ctx::Ctx;

/// The router of the simulator: the global cloud at the root, every other cloud of
/// [`crate::wellknown::CLOUDS`] under `/clouds/<key>` (its authority, and its Graph at
/// `/clouds/<key>/v1.0`), each with the same handlers bound to its cloud.
pub(crate) fn router(ctx: Ctx) -> Router {
    let mut router = cloud_router(ctx.clone());
    for cloud in crate::wellknown::CLOUDS.iter().skip(1) {
        router = router.nest(
            &format!("/clouds/{}", cloud.key),
            cloud_router(ctx.for_cloud(cloud)),
        );
    }
    router
}

/// The endpoints of one cloud.
fn cloud_router(ctx: Ctx) -> Router {
    Router::new()
        .route(
            "/{tenant}/v2.0/.well-known/openid-configuration",
            get(discovery),
        )
        .route("/{tenant}/discovery/v2.0/keys", get(jwks))
        .route("/{tenant}/discovery/instance", get(instance_discovery))
        .route(
            "/{tenant}/oauth2/v2.0/authorize",
            get(crate::pages::authorize),
        )
        .route("/{tenant}/oauth2/v2.0/logout", get(crate::pages::logout))
        .route(
            "/{tenant}/v2.0/adminconsent",
            get(crate::pages::admin_consent_v2),
        )
        .route(
            "/{tenant}/adminconsent",
            get(crate::pages::admin_consent_legacy),
        )
        .route("/{tenant}/login", post(crate::pages::login))
        .route("/{tenant}/mfa", post(crate::pages::mfa))
        .route("/{tenant}/consent", post(crate::pages::consent))
        .route("/{tenant}/oauth2/v2.0/token", post(crate::token::token))
        .route(
            "/{tenant}/oauth2/v2.0/devicecode",
            post(crate::devicelogin::devicecode),
        )
        .route(
            crate::devicelogin::VERIFICATION_PATH,
            get(crate::devicelogin::page).post(crate::devicelogin::enter_code),
        )
        .route("/error", get(crate::pages::error_lookup))
        .route("/oidc/userinfo", get(crate::graph::userinfo))
        .route("/v1.0/{*rest}", any(crate::graph::graph_v1))
        .route("/beta/{*rest}", any(crate::graph::graph_beta))
        .route("/v1.0/$batch", any(crate::batch::batch_v1))
        .route("/beta/$batch", any(crate::batch::batch_beta))
        .route(
            "/yammer/api/v1/users/current.json",
            get(crate::yammer::current_user),
        )
        .route("/_sim/state", get(crate::control::http_state))
        .route("/_sim/clock", get(crate::control::http_clock))
        .route("/_sim/throttling", get(crate::control::http_throttling))
        .route("/_sim/counts", get(crate::control::http_counts))
        .route("/_sim/ops", post(crate::control::http_op))
        // Browsers ask every site for an icon; a 404 is an error in their console (the console
        // tests fail on those). The simulator has none.
        .route(
            "/favicon.ico",
            get(|| async { axum::http::StatusCode::NO_CONTENT }),
        )
        .with_state(ctx)
}

fn aad_fail(ctx: &Ctx, err: AadError) -> Response {
    let now = ctx.lock().now();
    err.to_response(now, &ctx.base, None)
}

/// `GET /{tenant}/v2.0/.well-known/openid-configuration` (entra-facts §1.6). A tenant of a national
/// cloud is described at the global authority too, as Microsoft's is (entra-facts §11): the cloud's
/// metadata values and its endpoints at that cloud's authority. At a national authority, a tenant of
/// another cloud is unknown (UNVERIFIED).
async fn discovery(State(ctx): State<Ctx>, Path(tenant): Path<String>) -> Response {
    let mut base = ctx.base.to_string();
    let mut cloud = ctx.cloud;
    let (segment, issuer_tenant, region) = {
        let st = ctx.lock();
        if matches!(tenant.as_str(), "common" | "organizations") {
            (
                tenant.clone(),
                "{tenantid}".to_owned(),
                serde_json::Value::Null,
            )
        } else {
            let found = match ctx.tenant_here(&st, &tenant) {
                Ok(t) => Some(t),
                Err(_) if ctx.cloud.key == crate::wellknown::GLOBAL_CLOUD => st.tenant_idx(&tenant),
                Err(_) => None,
            };
            match found {
                Some(t) => {
                    cloud = Ctx::cloud_of(&st.tenants[t]);
                    base = Ctx::cloud_base(&ctx.root, cloud.key);
                    let id = st.tenants[t].id.to_string();
                    // Whether a domain-name tenant gets GUID URLs is UNVERIFIED; see Settings.
                    let seg = if st.settings.discovery_uses_tenant_guid {
                        id.clone()
                    } else {
                        tenant.clone()
                    };
                    (seg, id, json!(cloud.region_scope))
                }
                None => {
                    drop(st);
                    return aad_fail(&ctx, tenant_not_found(&ctx, &tenant));
                }
            }
        }
    };
    let t = format!("{base}/{segment}");
    // Only endpoints the simulator serves are advertised: Microsoft's document also names a
    // `kerberos_endpoint`, but the simulator implements no Kerberos flow, so a client must not be
    // sent to a 404. The device code flow is served (`devicelogin`).
    let body = json!({
        "token_endpoint": format!("{t}/oauth2/v2.0/token"),
        "token_endpoint_auth_methods_supported": ["client_secret_post", "private_key_jwt", "client_secret_basic"],
        "jwks_uri": format!("{t}/discovery/v2.0/keys"),
        "response_modes_supported": ["query", "fragment", "form_post"],
        "subject_types_supported": ["pairwise"],
        "id_token_signing_alg_values_supported": ["RS256"],
        "response_types_supported": ["code", "id_token", "code id_token", "id_token token"],
        "scopes_supported": ["openid", "profile", "email", "offline_access"],
        "issuer": format!("{base}/{issuer_tenant}/v2.0"),
        "request_uri_parameter_supported": false,
        "userinfo_endpoint": format!("{base}/oidc/userinfo"),
        "authorization_endpoint": format!("{t}/oauth2/v2.0/authorize"),
        "device_authorization_endpoint": format!("{t}/oauth2/v2.0/devicecode"),
        "http_logout_supported": true,
        "frontchannel_logout_supported": true,
        "end_session_endpoint": format!("{t}/oauth2/v2.0/logout"),
        "claims_supported": ["sub","iss","cloud_instance_name","cloud_instance_host_name","cloud_graph_host_name","msgraph_host","aud","exp","iat","auth_time","acr","nonce","preferred_username","name","tid","ver","at_hash","c_hash","email"],
        "tenant_region_scope": region,
        "cloud_instance_name": cloud.cloud_instance_name,
        "cloud_graph_host_name": "graph.windows.net",
        "msgraph_host": cloud.msgraph_host,
        "rbac_url": "https://pas.windows.net"
    });
    let mut body = body;
    if let (Some(sub), false) = (cloud.region_sub_scope, region.is_null()) {
        body["tenant_region_sub_scope"] = json!(sub);
    }
    cacheable(axum::Json(body).into_response())
}

fn cacheable(mut resp: Response) -> Response {
    let h = resp.headers_mut();
    h.insert(
        header::CACHE_CONTROL,
        HeaderValue::from_static("max-age=86400, private"),
    );
    h.insert(
        header::ACCESS_CONTROL_ALLOW_ORIGIN,
        HeaderValue::from_static("*"),
    );
    h.insert(
        header::ACCESS_CONTROL_ALLOW_METHODS,
        HeaderValue::from_static("GET, OPTIONS"),
    );
    resp
}

pub(crate) fn tenant_not_found(ctx: &Ctx, tenant: &str) -> AadError {
    let settings = ctx.lock().settings.clone();
    crate::aad::tenant_not_found_with(&settings, tenant)
}

/// `GET /{tenant}/discovery/v2.0/keys` (entra-facts §1.7). The key is TEST-ONLY.
async fn jwks(State(ctx): State<Ctx>, Path(tenant): Path<String>) -> Response {
    if !matches!(tenant.as_str(), "common" | "organizations") {
        let here = {
            let st = ctx.lock();
            ctx.tenant_here(&st, &tenant).map(|_| ())
        };
        if let Err(e) = here {
            return aad_fail(&ctx, e);
        }
    }
    let k = &ctx.key;
    let body = json!({"keys": [{
        "kty": "RSA",
        "use": "sig",
        "kid": k.kid,
        "x5t": k.kid,
        "n": k.n,
        "e": k.e,
        "x5c": [STANDARD.encode(&k.cert_der)],
        "issuer": format!("{}/{{tenantid}}/v2.0", ctx.base),
    }]});
    cacheable(axum::Json(body).into_response())
}

#[derive(serde::Deserialize)]
struct InstanceQuery {
    authorization_endpoint: Option<String>,
}

/// MSAL's instance discovery for non-well-known hosts (entra-facts §1.1).
async fn instance_discovery(State(ctx): State<Ctx>, Query(q): Query<InstanceQuery>) -> Response {
    let host = ctx
        .base
        .trim_start_matches("https://")
        .trim_start_matches("http://")
        .to_owned();
    let tenant = q
        .authorization_endpoint
        .as_deref()
        .and_then(|u| url::Url::parse(u).ok())
        .and_then(|u| {
            u.path_segments()
                .and_then(|mut s| s.next().map(str::to_owned))
        })
        .unwrap_or_else(|| "common".into());
    axum::Json(json!({
        "tenant_discovery_endpoint": format!("{}/{tenant}/v2.0/.well-known/openid-configuration", ctx.base),
        "api-version": "1.1",
        "metadata": [{"preferred_network": host, "preferred_cache": host, "aliases": [host]}]
    }))
    .into_response()
}

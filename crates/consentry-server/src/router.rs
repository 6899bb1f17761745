//! Every route in one place.

use axum::Router;
use axum::extract::DefaultBodyLimit;
use axum::middleware;
use axum::routing::{get, post};
use tower_http::timeout::TimeoutLayer;
use tower_http::trace::TraceLayer;

use crate::api::{catalog, check, keys, orgs, profiles, reauth, scan_profiles, tenants};
use crate::error::ApiError;
use crate::{AppState, auth, callback, health};

/// Builds the application router over `state`.
pub fn router(state: AppState) -> Router {
    let api = Router::new()
        .route("/", get(api_index))
        .route("/catalog", get(catalog::get_catalog))
        .route("/catalog/app-types/{key}", get(catalog::get_app_type))
        .route("/organizations", get(orgs::list).post(orgs::create))
        .route(
            "/organizations/{id}",
            get(orgs::get).patch(orgs::patch).delete(orgs::delete),
        )
        .route("/organizations/{id}/invitations", post(orgs::invite))
        .route("/tenants", get(tenants::list).post(tenants::create))
        .route(
            "/tenants/{tenant}",
            get(tenants::get).delete(tenants::delete),
        )
        .route("/profiles", get(profiles::list).post(profiles::create))
        .route(
            "/profiles/{id}",
            get(profiles::get).delete(profiles::delete),
        )
        .route("/profiles/{id}/history", get(profiles::history))
        .route("/profiles/{id}/check", post(check::check_profile))
        .route(
            "/organizations/{id}/webhooks",
            get(crate::api::webhooks::list).post(crate::api::webhooks::create),
        )
        .route(
            "/organizations/{id}/webhooks/{webhook_id}",
            axum::routing::delete(crate::api::webhooks::delete),
        )
        .route(
            "/organizations/{id}/keys",
            get(keys::list).post(keys::create),
        )
        .route(
            "/organizations/{id}/keys/{key_id}",
            axum::routing::delete(keys::revoke),
        )
        .route("/organizations/{id}/audit", get(crate::api::audit::list))
        .route(
            "/organizations/{id}/audit/export",
            get(crate::api::audit::export_log),
        )
        .route("/rollouts", get(crate::api::rollouts::list))
        .route("/rollouts/{version}", get(crate::api::rollouts::get))
        .route(
            "/rollouts/{version}/export",
            get(crate::api::rollouts::export),
        )
        .route(
            "/campaigns",
            get(crate::api::campaigns::list).post(crate::api::campaigns::start),
        )
        .route("/campaigns/{id}", get(crate::api::campaigns::get))
        .route(
            "/campaigns/{id}/cancel",
            post(crate::api::campaigns::cancel),
        )
        .route(
            "/campaigns/{id}/tenants/{tenant}/resend",
            post(crate::api::campaigns::resend),
        )
        .route(
            "/campaigns/{id}/tenants/{tenant}/link",
            get(crate::api::campaigns::link),
        )
        .route("/profiles/{id}/reauthorize", post(reauth::start))
        .route("/profiles/{id}/reauthorize/cancel", post(reauth::cancel))
        .route(
            "/tenants/{tenant}/scan-profiles",
            get(scan_profiles::list).post(scan_profiles::create),
        )
        .route(
            "/tenants/{tenant}/planner-readiness",
            get(scan_profiles::tenant_readiness),
        )
        .route(
            "/scan-profiles/{id}",
            get(scan_profiles::get)
                .put(scan_profiles::put)
                .delete(scan_profiles::delete),
        )
        .route(
            "/scan-profiles/{id}/planner-readiness",
            get(scan_profiles::readiness),
        )
        .route(
            "/tenants/{tenant}/contacts",
            get(crate::api::mail::get_contacts).put(crate::api::mail::put_contacts),
        )
        .route(
            "/tenants/{tenant}/emails",
            get(crate::api::mail::list_emails),
        )
        .route(
            "/organizations/{id}/microsoft-sign-in",
            get(orgs::get_microsoft_sign_in).put(orgs::put_microsoft_sign_in),
        )
        .route(
            "/organizations/{id}/digest",
            get(crate::api::mail::get_digest).put(crate::api::mail::put_digest),
        )
        .fallback(|| async { ApiError::RouteNotFound })
        // Every route above: the operator token or a personal access token (the caller's scope and
        // role), never a service API key.
        .route_layer(middleware::from_fn_with_state(
            state.clone(),
            auth::require_caller,
        ))
        // Public: the API's description and its Swagger UI (they reveal no data).
        .route("/openapi.json", get(crate::api::openapi::openapi_json))
        .route("/docs", get(crate::api::openapi::docs_page))
        .route("/docs/{file}", get(crate::api::openapi::docs_asset));

    // The headers of Consentry's HTML pages: the console, the callback's result pages and consent
    // links (their CSP lets forms post to Consentry and to the identity platform's origin).
    let pages = middleware::from_fn_with_state(state.clone(), crate::console::security_headers);

    Router::new()
        .route("/healthz", get(health::healthz))
        .route("/metrics", get(crate::api::metrics::metrics))
        .route(
            "/",
            get(|| async { axum::response::Redirect::to("/console") }),
        )
        .route("/favicon.ico", get(crate::console::favicon))
        .nest("/console", crate::console::routes().layer(pages.clone()))
        // `/console/` is not matched by the nested router: the console's home.
        .route(
            "/console/",
            get(|| async { axum::response::Redirect::permanent("/console") }),
        )
        .route(
            "/oauth/callback",
            // The result page shares the console's stylesheet and headers.
            get(callback::oauth_callback).layer(pages.clone()),
        )
        .route(
            "/campaign/{token}",
            get(crate::campaign::show)
                .post(crate::campaign::start)
                .layer(pages.clone()),
        )
        .route(
            "/campaign/pass/next",
            get(crate::campaign::next).layer(pages.clone()),
        )
        .route(
            "/consent/{profile}/{token}",
            get(callback::consent_link)
                .post(callback::consent_link_continue)
                .layer(pages),
        )
        .nest("/api/v1", api)
        .fallback(|| async { ApiError::RouteNotFound })
        .layer(DefaultBodyLimit::max(state.max_body_bytes))
        .layer(request_timeout(&state))
        .layer(middleware::from_fn_with_state(
            state.security.clone(),
            crate::security::headers,
        ))
        .layer(
            TraceLayer::new_for_http().make_span_with(|req: &axum::http::Request<_>| {
                // Only the method and the path: query strings may carry codes or state, and a consent
                // link's path its token (redacted).
                tracing::info_span!(
                    "request",
                    http.method = %req.method(),
                    http.path = %crate::security::logged_path(req.uri().path())
                )
            }),
        )
        .with_state(state.clone())
        .merge(token_api(state))
}

/// Answers 408 to a request that takes longer than `request_timeout_seconds` (every route).
fn request_timeout(state: &AppState) -> TimeoutLayer {
    TimeoutLayer::with_status_code(
        axum::http::StatusCode::REQUEST_TIMEOUT,
        state.security.request_timeout,
    )
}

/// The token API, `POST /api/v1/tenants/{tenant}/tokens` (service API keys only), on a stack of its
/// own: it is the route other services call before their Graph requests, so it skips what only the
/// other routes need.
/// - It is not nested under `/api/v1` (no second routing and URI rewrite), and its layers are one
///   `ServiceBuilder` (one boxed service, not one per layer).
/// - Its request span is at DEBUG: at the default level (`info`) the span cost the route about a
///   tenth of its rate, so it is built only when asked for (`CONSENTRY_LOG=debug`). A failure of the
///   route is still logged with its path (`graph_tokens::TokenAnswer`).
/// - The headers of every answer (`security::apply`) and `no-store` (RFC 6749 §5.1: refusals
///   included) are set by a `MapResponse` around everything else, so a timeout's 408 carries them too;
///   the body limit and the request timeout are the other routes'.
fn token_api(state: AppState) -> Router {
    let tls = state.security.tls;
    let stack = tower::ServiceBuilder::new()
        .layer(
            TraceLayer::new_for_http().make_span_with(|req: &axum::http::Request<_>| {
                tracing::debug_span!(
                    "request",
                    http.method = %req.method(),
                    http.path = %req.uri().path()
                )
            }),
        )
        .layer(tower::util::MapResponseLayer::new(
            move |mut res: axum::response::Response| {
                crate::security::no_store(res.headers_mut());
                crate::security::apply(res.headers_mut(), tls);
                res
            },
        ))
        .layer(request_timeout(&state))
        .layer(DefaultBodyLimit::max(state.max_body_bytes));
    Router::new()
        .route(
            "/api/v1/tenants/{tenant}/tokens",
            post(crate::api::graph_tokens::issue),
        )
        .layer(stack)
        .with_state(state)
}

/// Every `/api/v1` route as `METHODS /api/v1/path`, listed by `GET /api/v1`. The access test matrix
/// (`tests/access.rs`) must cover each of them.
pub const API_ROUTES: &[&str] = &[
    "GET /api/v1",
    "GET /api/v1/catalog",
    "GET /api/v1/catalog/app-types/{key}",
    "GET|POST /api/v1/organizations",
    "GET|PATCH|DELETE /api/v1/organizations/{id}",
    "POST /api/v1/organizations/{id}/invitations",
    "GET|POST /api/v1/tenants",
    "GET|DELETE /api/v1/tenants/{tenant}",
    "GET|POST /api/v1/profiles",
    "GET|DELETE /api/v1/profiles/{id}",
    "GET /api/v1/profiles/{id}/history",
    "POST /api/v1/profiles/{id}/check",
    "GET|POST /api/v1/organizations/{id}/webhooks",
    "DELETE /api/v1/organizations/{id}/webhooks/{webhook_id}",
    "GET|POST /api/v1/organizations/{id}/keys",
    "DELETE /api/v1/organizations/{id}/keys/{key_id}",
    "POST /api/v1/tenants/{tenant}/tokens",
    "POST /api/v1/profiles/{id}/reauthorize",
    "POST /api/v1/profiles/{id}/reauthorize/cancel",
    "GET|POST /api/v1/tenants/{tenant}/scan-profiles",
    "GET /api/v1/tenants/{tenant}/planner-readiness",
    "GET|PUT|DELETE /api/v1/scan-profiles/{id}",
    "GET /api/v1/scan-profiles/{id}/planner-readiness",
    "GET|PUT /api/v1/tenants/{tenant}/contacts",
    "GET /api/v1/tenants/{tenant}/emails",
    "GET|PUT /api/v1/organizations/{id}/digest",
    "GET|PUT /api/v1/organizations/{id}/microsoft-sign-in",
    "GET /api/v1/organizations/{id}/audit",
    "GET /api/v1/organizations/{id}/audit/export",
    "GET /api/v1/rollouts",
    "GET /api/v1/rollouts/{version}",
    "GET /api/v1/rollouts/{version}/export",
    "GET|POST /api/v1/campaigns",
    "GET /api/v1/campaigns/{id}",
    "POST /api/v1/campaigns/{id}/cancel",
    "POST /api/v1/campaigns/{id}/tenants/{tenant}/resend",
    "GET /api/v1/campaigns/{id}/tenants/{tenant}/link",
    "GET /api/v1/openapi.json",
    "GET /api/v1/docs",
    "GET /api/v1/docs/{file}",
];

/// The API's version, how to authenticate and every route.
#[utoipa::path(
    get,
    operation_id = "getApiIndex",
    path = "/api/v1",
    tag = "meta",
    responses((status = OK, description = "The API's index", body = crate::api::openapi::ApiIndex))
)]
pub async fn api_index() -> axum::Json<serde_json::Value> {
    axum::Json(serde_json::json!({
        "version": "v1",
        "auth": "Authorization: Bearer <operator token or personal access token>; POST /api/v1/tenants/{tenant}/tokens takes a service API key instead; GET /api/v1/openapi.json (this API's OpenAPI document) and /api/v1/docs need none",
        "routes": API_ROUTES,
    }))
}

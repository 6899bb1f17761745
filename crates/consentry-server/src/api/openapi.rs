//! The JSON API's contract: an OpenAPI 3.1 document built from the handlers' `#[utoipa::path]`
//! annotations and the types they take and return, served at `GET /api/v1/openapi.json`, with a
//! vendored Swagger UI at `GET /api/v1/docs` (no CDN; its initializer is a served file, so the page
//! keeps the console's CSP without `'unsafe-inline'`). Both are public: they describe the API and reveal
//! no data. `docs/openapi.json` is the committed copy; a unit test below fails when it and the code
//! disagree.
//!
//! Where the schemas come from: request bodies and query strings are the handlers' own types; answers are
//! the domain's view types (`ProfileView`, `Organization`, `ScanProfile`, …) and the catalog's, which
//! derive `utoipa::ToSchema` behind the `openapi` feature of consentry-domain and consentry-catalog. Only
//! this crate enables that feature. The schema is then derived from the very types serde writes (their
//! renames, tags, flattening and skipped fields), so there are no parallel API DTOs to drift from what
//! is sent; a JSON Schema is a description of data, not HTTP: paths, status codes and authentication
//! stay here. The few answers built with `json!` are described by the small types in this module, and
//! `tests/openapi.rs` validates real answers against the document.

use std::sync::OnceLock;

use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use serde::Serialize;
use utoipa::openapi::security::{HttpAuthScheme, HttpBuilder, SecurityScheme};
use utoipa::openapi::{ContentBuilder, Ref, RefOr, ResponseBuilder};
use utoipa::{Modify, OpenApi, ToSchema};

use super::ApiPath;
use crate::AppState;
use crate::error::ApiError;

/// The name of the security scheme of the operator token and personal access tokens.
pub const BEARER: &str = "bearer";
/// The name of the security scheme of service API keys (the token API only).
pub const SERVICE_KEY: &str = "service_key";

/// The document's source: every operation and the schemas they name.
#[derive(Debug, OpenApi)]
#[openapi(
    info(
        title = "Consentry API",
        description = "The JSON API of Consentry: organizations, their Microsoft Entra tenants, app \
            profiles (re-authorization, checks, history), scan profiles, webhooks, service API keys, the \
            audit log, and the token API that hands a vendor's services Microsoft Graph access tokens.\n\n\
            Every route takes `Authorization: Bearer <token>`: the operator token or a personal access \
            token (`consentry users token create`), except the token API, which takes a service API key \
            (`csk_…`) of the tenant's organization. Errors answer `{\"error\": {\"code\", \"message\", …}}` \
            with a stable `code`.",
        license(name = "Apache-2.0", identifier = "Apache-2.0"),
    ),
    paths(
        crate::router::api_index,
        super::catalog::get_catalog,
        super::catalog::get_app_type,
        super::orgs::list,
        super::orgs::create,
        super::orgs::get,
        super::orgs::patch,
        super::orgs::delete,
        super::orgs::get_microsoft_sign_in,
        super::orgs::put_microsoft_sign_in,
        super::orgs::invite,
        super::tenants::list,
        super::tenants::create,
        super::tenants::get,
        super::tenants::delete,
        super::profiles::list,
        super::profiles::create,
        super::profiles::get,
        super::profiles::delete,
        super::profiles::history,
        super::check::check_profile,
        super::reauth::start,
        super::reauth::cancel,
        super::webhooks::list,
        super::webhooks::create,
        super::webhooks::delete,
        super::keys::list,
        super::keys::create,
        super::keys::revoke,
        super::audit::list,
        super::audit::export_log,
        super::rollouts::list,
        super::rollouts::get,
        super::rollouts::export,
        super::campaigns::list,
        super::campaigns::start,
        super::campaigns::get,
        super::campaigns::cancel,
        super::campaigns::resend,
        super::campaigns::link,
        super::scan_profiles::list,
        super::scan_profiles::create,
        super::scan_profiles::tenant_readiness,
        super::scan_profiles::get,
        super::scan_profiles::put,
        super::scan_profiles::delete,
        super::scan_profiles::readiness,
        super::mail::get_contacts,
        super::mail::put_contacts,
        super::mail::list_emails,
        super::mail::get_digest,
        super::mail::put_digest,
        super::graph_tokens::issue,
        openapi_json,
        docs_page,
        docs_asset,
    ),
    components(schemas(ErrorResponse)),
    modifiers(&Contract),
    security(("bearer" = [])),
    tags(
        (name = "meta", description = "The API's index and this description"),
        (name = "catalog", description = "The app types Consentry knows"),
        (name = "organizations", description = "The vendor's customers"),
        (name = "tenants", description = "Microsoft Entra tenants connected to an organization"),
        (name = "profiles", description = "App profiles: one app type connected to one tenant"),
        (name = "scan profiles", description = "Scan profiles and Planner readiness"),
        (name = "webhooks", description = "Signed notifications of status changes"),
        (name = "keys", description = "Service API keys for the token API"),
        (name = "audit", description = "An organization's audit log"),
        (name = "rollouts", description = "Permission rollouts: catalog versions that added permissions, and which profiles still lack them"),
        (name = "campaigns", description = "Consent campaigns: one link per tenant that walks its administrator through every profile needing consent again"),
        (name = "email", description = "Tenants' administrator contacts, the emails sent to them, and organizations' daily digest recipients"),
        (name = "tokens", description = "Microsoft Graph access tokens for the vendor's services"),
    )
)]
pub struct ApiDoc;

/// The body of every error answer, as a schema.
pub type ErrorResponse = crate::error::Body<'static>;

/// `{"items": [...]}`: the answer of the list routes that are not paged.
#[derive(Debug, Serialize, ToSchema)]
pub struct Items<T> {
    /// The items.
    pub items: Vec<T>,
}

/// The answer of `GET /api/v1`.
#[derive(Debug, Serialize, ToSchema)]
pub struct ApiIndex {
    /// `v1`.
    pub version: String,
    /// How to authenticate.
    pub auth: String,
    /// Every route, as `METHODS /api/v1/path`.
    pub routes: Vec<String>,
}

/// The standard refusals, shared by the operations (`components.responses`).
const REFUSALS: &[(&str, &str, &str)] = &[
    (
        "400",
        "BadRequest",
        "The request is malformed (`bad_request`): a path parameter, the query string or the body; \
         `field` names the culprit when known",
    ),
    (
        "401",
        "Unauthorized",
        "No bearer token, or one that is not valid, has expired or was revoked (`unauthorized`)",
    ),
    (
        "403",
        "Forbidden",
        "The caller's role does not allow it, or a service API key was sent to a route other than the \
         token API (`forbidden`)",
    ),
    (
        "404",
        "NotFound",
        "No such entity, or one of another organization (`not_found`)",
    ),
    (
        "408",
        "RequestTimeout",
        "The request took longer than the server allows",
    ),
    (
        "413",
        "PayloadTooLarge",
        "The body is larger than the server accepts (`payload_too_large`)",
    ),
    (
        "500",
        "Internal",
        "Consentry failed (`internal`); the detail is logged, never sent",
    ),
];

/// Adds the security schemes and the standard refusals to every API operation.
#[derive(Debug)]
struct Contract;

impl Modify for Contract {
    fn modify(&self, doc: &mut utoipa::openapi::OpenApi) {
        let components = doc.components.get_or_insert_with(Default::default);
        components.security_schemes.insert(
            BEARER.into(),
            RefOr::T(SecurityScheme::Http(
                HttpBuilder::new()
                    .scheme(HttpAuthScheme::Bearer)
                    .description(Some(
                        "The operator token (`[api] token` of the server's configuration) or a \
                         personal access token of a console account (`consentry users token create`, \
                         or the console's Tokens page): its organization and role decide what it may do",
                    ))
                    .build(),
            )),
        );
        components.security_schemes.insert(
            SERVICE_KEY.into(),
            RefOr::T(SecurityScheme::Http(
                HttpBuilder::new()
                    .scheme(HttpAuthScheme::Bearer)
                    .bearer_format("csk_…")
                    .description(Some(
                        "A service API key of the tenant's organization (`consentry keys create --org \
                         ORG` or `POST /api/v1/organizations/{id}/keys`); accepted by the token API only",
                    ))
                    .build(),
            )),
        );
        for (_, name, description) in REFUSALS {
            let content = ContentBuilder::new()
                .schema(Some(Ref::from_schema_name("ErrorResponse")))
                .build();
            let response = ResponseBuilder::new()
                .description(*description)
                .content("application/json", content);
            let response = if *name == "RequestTimeout" {
                // Answered by the time-out layer with an empty body.
                ResponseBuilder::new().description(*description)
            } else {
                response
            };
            components
                .responses
                .insert((*name).to_string(), RefOr::T(response.build()));
        }
        for (path, item) in doc.paths.paths.iter_mut() {
            let public = !path.starts_with("/api/v1") || is_public(path);
            for op in [
                &mut item.get,
                &mut item.put,
                &mut item.post,
                &mut item.delete,
                &mut item.patch,
            ]
            .into_iter()
            .flatten()
            {
                if public {
                    continue;
                }
                let takes_input = op.request_body.is_some()
                    || op.parameters.as_ref().is_some_and(|p| !p.is_empty());
                for (status, name, _) in REFUSALS {
                    let applies = match *name {
                        "BadRequest" => takes_input,
                        "NotFound" => path.contains('{'),
                        "PayloadTooLarge" => op.request_body.is_some(),
                        "Forbidden" => !path.ends_with("/tokens"),
                        _ => true,
                    };
                    if applies {
                        op.responses
                            .responses
                            .entry((*status).to_string())
                            .or_insert_with(|| {
                                RefOr::Ref(Ref::new(format!("#/components/responses/{name}")))
                            });
                    }
                }
            }
        }
    }
}

/// The routes anyone may call: the description of the API and its pages.
fn is_public(path: &str) -> bool {
    path == "/api/v1/openapi.json" || path.starts_with("/api/v1/docs")
}

/// The document.
pub fn document() -> utoipa::openapi::OpenApi {
    ApiDoc::openapi()
}

/// The document as served and committed (`docs/openapi.json`): pretty JSON with a final newline.
pub fn document_json() -> &'static str {
    static JSON: OnceLock<String> = OnceLock::new();
    JSON.get_or_init(|| {
        let mut s = document()
            .to_pretty_json()
            .unwrap_or_else(|e| format!("{{\"error\": \"{e}\"}}"));
        s.push('\n');
        s
    })
}

/// The OpenAPI 3.1 document of this API.
#[utoipa::path(
    get,
    operation_id = "getOpenApiDocument",
    path = "/api/v1/openapi.json",
    tag = "meta",
    security(()),
    responses((status = OK, description = "This document", content_type = "application/json", body = Object))
)]
pub async fn openapi_json() -> Response {
    (
        [(
            header::CONTENT_TYPE,
            HeaderValue::from_static("application/json"),
        )],
        document_json(),
    )
        .into_response()
}

/// The page, its initializer and the two Swagger UI files it loads. Relative links: the page is
/// `/api/v1/docs`, its files `/api/v1/docs/<file>` and the document `/api/v1/openapi.json`.
const DOCS_PAGE: &str = include_str!("docs/index.html");
const DOCS_INIT: &str = include_str!("docs/consentry-docs.js");
const DOCS_CSS: &str = include_str!("docs/consentry-docs.css");

/// The CSP of the docs page: the console's page CSP, plus `connect-src 'self'` so that Swagger UI may
/// fetch the document and send "Try it out" requests to this server.
fn docs_csp(st: &AppState) -> HeaderValue {
    let csp = format!(
        "{}; connect-src 'self'",
        st.security.page_csp.to_str().unwrap_or_default()
    );
    HeaderValue::from_str(&csp).unwrap_or_else(|_| st.security.page_csp.clone())
}

/// Swagger UI over this document.
#[utoipa::path(
    get,
    operation_id = "getApiDocsPage",
    path = "/api/v1/docs",
    tag = "meta",
    security(()),
    responses((status = OK, description = "Swagger UI (HTML) showing this document", content_type = "text/html"))
)]
pub async fn docs_page(axum::extract::State(st): axum::extract::State<AppState>) -> Response {
    (
        [
            (
                header::CONTENT_TYPE,
                HeaderValue::from_static("text/html; charset=utf-8"),
            ),
            (header::CONTENT_SECURITY_POLICY, docs_csp(&st)),
        ],
        DOCS_PAGE,
    )
        .into_response()
}

/// The files of the docs page: Swagger UI's stylesheet and script (vendored, from the
/// utoipa-swagger-ui crate), the page's initializer and its contrast fixes.
#[utoipa::path(
    get,
    operation_id = "getApiDocsFile",
    path = "/api/v1/docs/{file}",
    tag = "meta",
    security(()),
    params(("file" = String, Path, description = "`swagger-ui.css`, `swagger-ui-bundle.js`, `consentry-docs.js` or `consentry-docs.css`")),
    responses(
        (status = OK, description = "The file"),
        (status = NOT_FOUND, description = "No such file", body = ErrorResponse),
    )
)]
pub async fn docs_asset(ApiPath(file): ApiPath<String>) -> Result<Response, ApiError> {
    let (bytes, content_type): (std::borrow::Cow<'static, [u8]>, &'static str) = match file.as_str()
    {
        "consentry-docs.js" => (
            DOCS_INIT.as_bytes().into(),
            "text/javascript; charset=utf-8",
        ),
        "consentry-docs.css" => (DOCS_CSS.as_bytes().into(), "text/css; charset=utf-8"),
        "swagger-ui.css" | "swagger-ui-bundle.js" => {
            let config = std::sync::Arc::new(utoipa_swagger_ui::Config::default());
            let found = utoipa_swagger_ui::serve(&file, config)
                .map_err(|e| ApiError::Internal(format!("swagger-ui: {e}")))?
                .ok_or(ApiError::RouteNotFound)?;
            let content_type = if file.ends_with(".css") {
                "text/css; charset=utf-8"
            } else {
                "text/javascript; charset=utf-8"
            };
            (found.bytes.into_owned().into(), content_type)
        }
        _ => return Err(ApiError::RouteNotFound),
    };
    Ok((
        StatusCode::OK,
        [
            (header::CONTENT_TYPE, HeaderValue::from_static(content_type)),
            (
                header::CACHE_CONTROL,
                HeaderValue::from_static("public, max-age=3600"),
            ),
        ],
        bytes,
    )
        .into_response())
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeSet;

    use super::*;

    const COMMITTED: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/../../docs/openapi.json");

    #[test]
    fn the_committed_document_is_the_one_the_code_serves() {
        let served = document_json();
        if std::env::var_os("CONSENTRY_BLESS").is_some() {
            std::fs::write(COMMITTED, served).expect("write docs/openapi.json");
            return;
        }
        let committed = std::fs::read_to_string(COMMITTED).unwrap_or_default();
        assert!(
            committed == served,
            "docs/openapi.json differs from the API's annotations and types: regenerate it with \
             `CONSENTRY_BLESS=1 cargo nextest run -p consentry-server --lib openapi` and commit it"
        );
    }

    #[test]
    fn every_route_of_the_router_is_documented_and_nothing_else() {
        let routes: BTreeSet<(String, String)> = crate::router::API_ROUTES
            .iter()
            .flat_map(|r| {
                let (methods, path) = r.split_once(' ').expect("METHODS path");
                methods
                    .split('|')
                    .map(move |m| (m.to_lowercase(), path.to_string()))
            })
            .collect();
        let doc = document();
        let mut documented = BTreeSet::new();
        for (path, item) in &doc.paths.paths {
            for (m, op) in [
                ("get", &item.get),
                ("put", &item.put),
                ("post", &item.post),
                ("delete", &item.delete),
                ("patch", &item.patch),
            ] {
                if op.is_some() {
                    documented.insert((m.to_string(), path.clone()));
                }
            }
        }
        assert_eq!(routes, documented);
    }

    #[test]
    fn operation_ids_are_unique_for_client_generators() {
        let doc = serde_json::to_value(document()).expect("json");
        let mut seen = BTreeSet::new();
        for (path, item) in doc["paths"].as_object().expect("paths") {
            for (method, op) in item.as_object().expect("item") {
                let id = op["operationId"].as_str().unwrap_or_default().to_string();
                assert!(
                    !id.is_empty() && seen.insert(id.clone()),
                    "{method} {path}: operationId {id:?} missing or taken"
                );
            }
        }
    }

    #[test]
    fn protected_operations_name_their_scheme_and_refusals() {
        let doc = serde_json::to_value(document()).expect("json");
        assert_eq!(doc["openapi"], "3.1.0");
        assert_eq!(doc["security"], serde_json::json!([{ BEARER: [] }]));
        let token = &doc["paths"]["/api/v1/tenants/{tenant}/tokens"]["post"];
        assert_eq!(token["security"], serde_json::json!([{ SERVICE_KEY: [] }]));
        assert!(token["responses"]["403"].is_null(), "{token}");
        let list = &doc["paths"]["/api/v1/profiles"]["get"];
        for status in ["200", "400", "401", "403", "500"] {
            assert!(!list["responses"][status].is_null(), "{status}: {list}");
        }
        assert!(list["responses"]["404"].is_null(), "no path parameter");
        let spec = &doc["paths"]["/api/v1/openapi.json"]["get"];
        assert_eq!(spec["security"], serde_json::json!([{}]), "public: {spec}");
        assert!(spec["responses"]["401"].is_null());
    }
}

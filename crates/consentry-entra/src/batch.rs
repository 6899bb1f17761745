//! Microsoft Graph JSON batching: several GET requests in one round trip (`POST /$batch`, at most
//! 20 requests, each answered with its own status, headers and body: Graph docs, concepts/json-batching,
//! "Combine multiple requests in one HTTP call using JSON batching"). Each inner answer that is not
//! 2xx becomes the same [`EntraError`] a direct request would have given (a 429 with its own
//! `Retry-After` is `Throttled`), so callers treat a batched read exactly like a direct one.

use std::collections::BTreeMap;
use std::time::SystemTime;

use reqwest::Method;
use reqwest::header::{HeaderMap, HeaderName, HeaderValue};
use secrecy::{ExposeSecret as _, SecretString};
use serde::Deserialize;
use serde_json::{Value, json};
use url::Url;

use serde::de::DeserializeOwned;

use crate::client::{EntraClient, Service, classify_failure};
use crate::error::EntraError;
use crate::graph::{AppRoleAssignment, GRAPH_APP_ID, OAuth2PermissionGrant, ServicePrincipal};
use crate::pacer::{PaceSource, Side};
use crate::urls::check_guid;

/// Graph's limit on the requests of one batch.
pub const MAX_BATCH_REQUESTS: usize = 20;

#[derive(Deserialize)]
struct BatchAnswer {
    #[serde(default)]
    responses: Vec<InnerAnswer>,
}

#[derive(Deserialize)]
struct InnerAnswer {
    id: String,
    status: u16,
    #[serde(default)]
    headers: BTreeMap<String, String>,
    #[serde(default)]
    body: Value,
}

impl EntraClient {
    /// Sends the GET requests `gets` (an ID each, and a URL built by `graph_url`, so under this
    /// client's Graph base) as one `$batch`; each ID's answer body, or the error it stands for.
    /// An inner request Graph did not answer is a protocol error for that ID.
    pub async fn graph_batch_get(
        &self,
        token: &SecretString,
        gets: &[(&str, Url)],
    ) -> Result<BTreeMap<String, Result<Value, EntraError>>, EntraError> {
        if gets.is_empty() || gets.len() > MAX_BATCH_REQUESTS {
            return Err(EntraError::InvalidInput(format!(
                "a Graph batch carries 1 to {MAX_BATCH_REQUESTS} requests, not {}",
                gets.len()
            )));
        }
        let base = self.graph.as_str().trim_end_matches('/');
        let mut requests = Vec::with_capacity(gets.len());
        for (id, url) in gets {
            // Inner URLs are relative to the version root (`/servicePrincipals?…`).
            let relative = url.as_str().strip_prefix(base).ok_or_else(|| {
                EntraError::InvalidInput(format!(
                    "batched request {id} is not under the Graph base URL"
                ))
            })?;
            requests.push(json!({"id": id, "method": "GET", "url": relative}));
        }
        let url = self.graph_url(&["$batch"], &[]);
        let request = self
            .request(Method::POST, url.clone())
            .bearer_auth(token.expose_secret())
            .json(&json!({ "requests": requests }));
        let sent_at = tokio::time::Instant::now();
        let answer = self.send(Service::Graph, request).await?;
        let parsed: BatchAnswer =
            serde_json::from_slice(&answer.body).map_err(|e| EntraError::Protocol {
                detail: format!("unexpected Graph batch answer shape: {e}"),
                client_request_id: Some(answer.client_request_id.clone()),
            })?;
        let now = SystemTime::now();
        let mut out = BTreeMap::new();
        for inner in parsed.responses {
            let status = reqwest::StatusCode::from_u16(inner.status).ok();
            let result = match status {
                Some(s) if s.is_success() => Ok(inner.body),
                // Not an HTTP status: that request's answer is unusable, the others stand.
                None => Err(EntraError::Protocol {
                    detail: format!("batched answer with status {}", inner.status),
                    client_request_id: Some(answer.client_request_id.clone()),
                }),
                Some(status) => {
                    let mut headers = HeaderMap::new();
                    for (k, v) in &inner.headers {
                        if let (Ok(k), Ok(v)) = (
                            HeaderName::from_bytes(k.as_bytes()),
                            HeaderValue::from_str(v),
                        ) {
                            headers.insert(k, v);
                        }
                    }
                    let body = serde_json::to_vec(&inner.body).unwrap_or_default();
                    let error = classify_failure(
                        Service::Graph,
                        status,
                        &headers,
                        &body,
                        answer.client_request_id.clone(),
                        now,
                    );
                    // A throttled inner request paces its tenant and app as a direct 429 does
                    // (`send` saw only the batch's own 200).
                    if status == reqwest::StatusCode::TOO_MANY_REQUESTS
                        && let Some(after) = error.retry_after()
                    {
                        self.paced_by_inner_429(&url, token, after, sent_at);
                    }
                    Err(error)
                }
            };
            out.insert(inner.id, result);
        }
        for (id, _) in gets {
            if !out.contains_key(*id) {
                out.insert(
                    (*id).to_owned(),
                    Err(EntraError::Protocol {
                        detail: format!("Graph's batch answer has no response for request {id}"),
                        client_request_id: Some(answer.client_request_id.clone()),
                    }),
                );
            }
        }
        Ok(out)
    }

    /// Tells the pacer (when pacing is on) that a request inside a batch sent at `sent_at` to
    /// `batch_url` with `token` was answered 429 with `retry_after`.
    fn paced_by_inner_429(
        &self,
        batch_url: &Url,
        token: &SecretString,
        retry_after: std::time::Duration,
        sent_at: tokio::time::Instant,
    ) {
        let Some(pacer) = self.pacer.as_deref() else {
            return;
        };
        // The key (host, tenant and app of the token) is the batch request's own.
        let Ok(probe) = self
            .request(Method::POST, batch_url.clone())
            .bearer_auth(token.expose_secret())
            .build()
        else {
            return;
        };
        if let Some(key) = PaceSource::of(Some(Side::Graph), &probe).and_then(|s| s.key()) {
            pacer.throttled(key, retry_after, sent_at);
        }
    }

    /// The four reads that verify a consent, in one round trip: the app's service principal, its
    /// app role assignments, Microsoft Graph's service principal (its ID, without its app roles)
    /// and the app's delegated permission grants. Each is addressed by application ID
    /// (`servicePrincipals(appId='…')/…`), so none waits for the service principal's object ID.
    ///
    /// The `appId` form of `/oauth2PermissionGrants` is documented (Graph docs,
    /// serviceprincipal-list-oauth2permissiongrants); for `/appRoleAssignments` it is UNVERIFIED
    /// (quoted from Microsoft's docs only in a Microsoft Q&A answer): a caller treats a
    /// `BadRequest` there as "not supported" and reads by object ID instead.
    pub async fn consent_reads(
        &self,
        token: &SecretString,
        app_id: &str,
    ) -> Result<ConsentReads, EntraError> {
        check_guid(app_id, "application ID")?;
        let own = format!("appId eq '{app_id}'");
        let graph = format!("appId eq '{GRAPH_APP_ID}'");
        let by_app_id = format!("servicePrincipals(appId='{app_id}')");
        let gets = [
            // Only what the check uses: a service principal also carries its app roles and
            // delegated scopes (Graph's: hundreds).
            (
                "servicePrincipal",
                self.graph_url(
                    &["servicePrincipals"],
                    &[("$filter", &own), ("$select", "id,appId")],
                ),
            ),
            (
                "appRoleAssignments",
                self.graph_url(&[&by_app_id, "appRoleAssignments"], &[]),
            ),
            (
                "graphServicePrincipal",
                // Its ID only: the roles are named from the app roles the caller already read
                // (the same in every tenant).
                self.graph_url(
                    &["servicePrincipals"],
                    &[("$filter", &graph), ("$select", "id,appId")],
                ),
            ),
            (
                "oauth2PermissionGrants",
                self.graph_url(&[&by_app_id, "oauth2PermissionGrants"], &[]),
            ),
        ];
        let gets: Vec<(&str, Url)> = gets.into_iter().collect();
        let mut answers = self.graph_batch_get(token, &gets).await?;
        let mut answer = |id: &str| {
            answers.remove(id).unwrap_or_else(|| {
                Err(EntraError::Protocol {
                    detail: format!("Graph's batch answer has no response for request {id}"),
                    client_request_id: None,
                })
            })
        };
        let (own_sp, roles, graph_sp, grants) = (
            answer("servicePrincipal"),
            answer("appRoleAssignments"),
            answer("graphServicePrincipal"),
            answer("oauth2PermissionGrants"),
        );
        let find = |all: Vec<ServicePrincipal>, app_id: &str| {
            all.into_iter()
                .find(|sp| sp.app_id.eq_ignore_ascii_case(app_id))
        };
        Ok(ConsentReads {
            service_principal: self
                .rest_of(token, own_sp)
                .await
                .map(|all| find(all, app_id)),
            app_role_assignments: self.rest_of(token, roles).await,
            graph_service_principal: self
                .rest_of(token, graph_sp)
                .await
                .map(|all| find(all, GRAPH_APP_ID)),
            oauth2_permission_grants: self.rest_of(token, grants).await,
        })
    }

    /// A batched collection read: its error, or its items with any further pages read directly.
    async fn rest_of<T: DeserializeOwned>(
        &self,
        token: &SecretString,
        first: Result<Value, EntraError>,
    ) -> Result<Vec<T>, EntraError> {
        self.graph_collection_after(token, first?).await
    }
}

/// What [`EntraClient::consent_reads`] read: each read's own answer or error, as a direct request
/// would have given it.
#[derive(Debug)]
pub struct ConsentReads {
    /// The app's service principal in the tenant (`None`: the app has none there).
    pub service_principal: Result<Option<ServicePrincipal>, EntraError>,
    /// The app roles (application permissions) assigned to it.
    pub app_role_assignments: Result<Vec<AppRoleAssignment>, EntraError>,
    /// Microsoft Graph's service principal, its `id` and `appId` only (`None`: not in the tenant).
    pub graph_service_principal: Result<Option<ServicePrincipal>, EntraError>,
    /// The delegated permission grants whose client is the app.
    pub oauth2_permission_grants: Result<Vec<OAuth2PermissionGrant>, EntraError>,
}

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

use crate::client::{EntraClient, Service, classify_failure};
use crate::error::EntraError;

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
            .request(Method::POST, url)
            .bearer_auth(token.expose_secret())
            .json(&json!({ "requests": requests }));
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
                    Err(classify_failure(
                        Service::Graph,
                        status,
                        &headers,
                        &body,
                        answer.client_request_id.clone(),
                        now,
                    ))
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
}

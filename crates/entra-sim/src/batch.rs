//! Microsoft Graph JSON batching: `POST /v1.0/$batch` and `POST /beta/$batch` (GD:concepts/json-batching.md).
//!
//! The body `{"requests": [{"id", "method", "url", "headers"?, "body"?, "dependsOn"?}]}` carries up to
//! 20 requests whose `url` is relative to the version (`/me`, `users/{id}?$select=…`). Each inner
//! request is answered by the same code as a direct Graph request ([`crate::graph::answer`]) with the
//! outer request's `Authorization`, under one lock of the state, and the batch answers 200 with
//! `{"responses": [{"id", "status", "headers", "body"}]}`, in request order (Microsoft may answer in
//! any order; clients match responses by `id`).
//!
//! Facts and their sources, in the marks of entra-facts (§0): [V] verified in Microsoft's docs,
//! [V-obs] seen in real responses quoted publicly, UNVERIFIED a best guess.
//!
//! - Batch status 400 when the batch itself is malformed, 200 when it parses, whatever the inner
//!   statuses [V] GD:concepts/json-batching.md ("Processing the JSON batch response"); the outer 200
//!   with inner 429s [V-obs] microsoftgraph/microsoft-graph-docs-contrib#8883, dotnet/dev-proxy#1358.
//! - At most 20 requests [V] GD:concepts/json-batching.md; a 21st refuses the batch with the message
//!   "Number of requests inside batch exceed the limit." [V-obs]
//!   microsoftgraph/microsoftgraph-postman-collections#9 (and a third-party tool that checked it
//!   live); status 400 per the doc's rule for a malformed batch; the code `BadRequest` is UNVERIFIED.
//! - Ids are unique without regard to case; a repeated one refuses the batch with 400 `BadRequest`
//!   "Request Id {id} has to be unique in a batch." [V] GD:concepts/json-batching.md ("Not
//!   case-sensitive", 400); message [V-obs] microsoftgraph/msgraph-sdk-java#559, a captured response
//!   in bradleymarques/microslop_one_drive `test/fixtures/batch/non_unique_ids.json`; the id quoted
//!   is the repeated (later) one [V-obs] microsoftgraph/microsoft-graph-docs#4449.
//! - 400 `BadRequest` "Invalid batch payload format." [V-obs] bradleymarques/microslop_one_drive
//!   `test/fixtures/batch/invalid_format.json`, for an absolute inner `url`
//!   [V-obs] microsoftgraph/microsoft-graph-docs-contrib#8576 and for an empty `requests` array
//!   [V-obs] (a Graph client's comment: "When the batch is empty the API throws error: Invalid batch
//!   payload format."). The same answer for a body that is not JSON, has no `requests` array, or
//!   has a request without a string `id`, `method` or `url` is UNVERIFIED.
//! - `dependsOn` must name requests that come earlier in the array, or Graph refuses the batch with
//!   "Invalid dependency for request Id …" [V-obs] microsoftgraph/msgraph-sdk-dotnet-core#891,
//!   microsoftgraph/msgraph-sdk-java-core#71. The simulator answers an unknown or later id so, with
//!   400 `BadRequest` and the message "Invalid dependency for request Id {id}." naming the request
//!   that declares it (status, code and the end of the message UNVERIFIED).
//! - A request whose dependency failed answers 424 Failed Dependency [V] GD:concepts/json-batching.md;
//!   its body (`FailedDependency`, "Failed Dependency") is UNVERIFIED: the doc gives only the status.
//! - Mixing parallel and sequential requests was reported refused with 400 "Batch should be either
//!   fully sequential or fully parallel." (microsoftgraph/microsoft-graph-docs-contrib#2339, 2022);
//!   today's doc only advises it. The simulator runs any dependency graph whose dependencies come
//!   earlier (UNVERIFIED whether Microsoft still refuses a mixed batch).
//! - A method the resource does not support answers 405 `Request_BadRequest` "Specified HTTP method
//!   is not allowed for the request target." [V] GD:concepts/json-batching.md (example response 4);
//!   the simulator answers it for every method but GET, except the application writes
//!   (`graph::applications`), which take the inner request's JSON `body`.
//! - Throttling is evaluated per inner request: a throttled one answers 429 while the others succeed
//!   [V] GD:concepts/json-batching.md ("Batch size limitations"). Fault rules therefore apply to each
//!   inner request by its own path (`/v1.0/<url>`): a path-prefix rule and also a `graph`-class rule,
//!   which (in the per-connection service) applies to the outer `$batch` request as well. A path
//!   rule's `latency_ms` delays the whole batch answer (by the largest latency of the path rules that
//!   fired); a `graph`-class rule's latency delays the batch once, as the outer request's (a round
//!   trip waits once, however many requests it carries);
//!   `drop_connection` is a property of the HTTP exchange and applies only to the outer request.
//! - Inner `headers` carry `Content-Type` (and `Retry-After` on a throttled answer) in Graph's
//!   casing [V] GD:concepts/json-batching.md (example response).

use axum::body::Bytes;
use axum::extract::State;
use axum::http::{HeaderMap, HeaderName, HeaderValue, Method, StatusCode};
use axum::response::Response;
use serde_json::{Map, Value, json};

use crate::ctx::Ctx;
use crate::graph::{GraphAnswer, GraphCall, GraphError, RequestIds};
use crate::state::State as SimState;

/// The most requests one batch may carry [V] GD:concepts/json-batching.md.
pub(crate) const MAX_REQUESTS: usize = 20;

/// `POST /v1.0/$batch`
pub(crate) async fn batch_v1(
    State(ctx): State<Ctx>,
    method: Method,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    batch(ctx, "v1.0", method, headers, body).await
}

/// `POST /beta/$batch`
pub(crate) async fn batch_beta(
    State(ctx): State<Ctx>,
    method: Method,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    batch(ctx, "beta", method, headers, body).await
}

async fn batch(
    ctx: Ctx,
    version: &str,
    method: Method,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let ids = RequestIds::new(&headers);
    let (answer, latency_ms) = respond(&ctx, version, &method, &headers, &body, &ids);
    if latency_ms > 0 {
        crate::faults::added_latency(latency_ms).await;
    }
    answer.into_response(&ids)
}

/// The batch's answer and the latency the fault rules that fired add, under one lock of the state.
fn respond(
    ctx: &Ctx,
    version: &str,
    method: &Method,
    headers: &HeaderMap,
    body: &[u8],
    ids: &RequestIds,
) -> (GraphAnswer, u64) {
    // Verified once, before the state is locked; the inner requests run as the batch's caller.
    let token = crate::graph::verify_token(ctx, headers);
    let mut st = ctx.lock();
    let now = st.now();
    // Without a valid token the batch is refused as a whole, as a direct request would be.
    // A valid batch request is one exchange with Graph, however many requests it carries.
    let checked = crate::graph::check_token(ctx, &mut st, &token).and_then(|()| {
        if method == Method::POST {
            parse(body)
        } else {
            Err(GraphError::method_not_allowed())
        }
    });
    match checked {
        Ok(requests) => run(ctx, &mut st, version, &token, ids, &requests),
        Err(e) => (e.answer(&ctx.base, now, ids), 0),
    }
}

/// One inner request, checked.
struct Inner {
    id: String,
    method: String,
    /// The path after the version, without the leading `/`.
    path: String,
    query: String,
    headers: HeaderMap,
    /// The request's JSON `body` (for writes), serialized; empty when absent.
    body: Vec<u8>,
    /// Indexes of the requests it depends on (all earlier in the array).
    depends_on: Vec<usize>,
}

fn invalid_payload() -> GraphError {
    GraphError::bad_request("Invalid batch payload format.")
}

/// Parses and checks the batch body; any fault refuses the whole batch (400).
fn parse(body: &[u8]) -> Result<Vec<Inner>, GraphError> {
    let doc: Value = serde_json::from_slice(body).map_err(|_| invalid_payload())?;
    let requests = doc
        .get("requests")
        .and_then(Value::as_array)
        .ok_or_else(invalid_payload)?;
    if requests.is_empty() {
        return Err(invalid_payload());
    }
    if requests.len() > MAX_REQUESTS {
        // The code is UNVERIFIED; the message [V-obs] (see the module documentation).
        return Err(GraphError::bad_request(
            "Number of requests inside batch exceed the limit.",
        ));
    }
    let text = |o: &Map<String, Value>, key: &str| -> Result<String, GraphError> {
        o.get(key)
            .and_then(Value::as_str)
            .filter(|s| !s.trim().is_empty())
            .map(str::to_owned)
            .ok_or_else(invalid_payload)
    };
    let mut out: Vec<Inner> = Vec::with_capacity(requests.len());
    let mut declared: Vec<Vec<String>> = Vec::with_capacity(requests.len());
    for r in requests {
        let o = r.as_object().ok_or_else(invalid_payload)?;
        let id = text(o, "id")?;
        let method = text(o, "method")?;
        let url = text(o, "url")?;
        let lower = url.to_ascii_lowercase();
        if lower.starts_with("https://") || lower.starts_with("http://") {
            return Err(invalid_payload());
        }
        let (path, query) = url.split_once('?').unwrap_or((url.as_str(), ""));
        let mut headers = HeaderMap::new();
        if let Some(h) = o.get("headers").filter(|h| !h.is_null()) {
            for (name, value) in h.as_object().ok_or_else(invalid_payload)? {
                let value = match value {
                    Value::String(s) => s.clone(),
                    Value::Number(n) => n.to_string(),
                    Value::Bool(b) => b.to_string(),
                    _ => return Err(invalid_payload()),
                };
                let name =
                    HeaderName::from_bytes(name.as_bytes()).map_err(|_| invalid_payload())?;
                let value = HeaderValue::from_str(&value).map_err(|_| invalid_payload())?;
                headers.append(name, value);
            }
        }
        let deps = match o.get("dependsOn").filter(|d| !d.is_null()) {
            None => Vec::new(),
            Some(d) => d
                .as_array()
                .ok_or_else(invalid_payload)?
                .iter()
                .map(|x| x.as_str().map(str::to_owned).ok_or_else(invalid_payload))
                .collect::<Result<Vec<_>, _>>()?,
        };
        let body = match o.get("body").filter(|b| !b.is_null()) {
            Some(b) => serde_json::to_vec(b).map_err(|_| invalid_payload())?,
            None => Vec::new(),
        };
        out.push(Inner {
            id,
            method,
            path: path.trim_start_matches('/').to_owned(),
            query: query.to_owned(),
            headers,
            body,
            depends_on: Vec::new(),
        });
        declared.push(deps);
    }
    for (i, r) in out.iter().enumerate() {
        if out[..i].iter().any(|e| e.id.eq_ignore_ascii_case(&r.id)) {
            return Err(GraphError::bad_request(format!(
                "Request Id {} has to be unique in a batch.",
                r.id
            )));
        }
    }
    for (i, deps) in declared.into_iter().enumerate() {
        let mut resolved = Vec::with_capacity(deps.len());
        for dep in deps {
            // A dependency must come earlier in the array; the message's end is UNVERIFIED.
            let j = out[..i]
                .iter()
                .position(|e| e.id.eq_ignore_ascii_case(&dep))
                .ok_or_else(|| {
                    GraphError::bad_request(format!(
                        "Invalid dependency for request Id {}.",
                        out[i].id
                    ))
                })?;
            resolved.push(j);
        }
        out[i].depends_on = resolved;
    }
    Ok(out)
}

/// Answers the inner requests in array order (every dependency comes earlier, so this is also a
/// dependency order) and wraps them in the batch answer.
fn run(
    ctx: &Ctx,
    st: &mut SimState,
    version: &str,
    token: &Result<Value, GraphError>,
    ids: &RequestIds,
    requests: &[Inner],
) -> (GraphAnswer, u64) {
    let mut statuses: Vec<StatusCode> = Vec::with_capacity(requests.len());
    let mut responses = Vec::with_capacity(requests.len());
    let mut latency_ms = 0;
    for r in requests {
        let answer = if r.depends_on.iter().any(|&j| statuses[j].as_u16() >= 400) {
            // The status [V]; code and message UNVERIFIED (see the module documentation).
            GraphError::new(
                StatusCode::FAILED_DEPENDENCY,
                "FailedDependency",
                "Failed Dependency",
            )
            .answer(&ctx.base, st.now(), ids)
        } else {
            let full_path = format!("/{version}/{}", r.path);
            let fault = crate::faults::pick(&st.faults, &full_path);
            // A class rule (`graph`) already delayed the batch's own exchange, once: a round
            // trip waits once, however many requests it carries. A path rule delays the batch by
            // its latency (the largest of those that fired).
            if let Some(f) = fault.as_ref().filter(|f| f.endpoint.starts_with('/')) {
                latency_ms = latency_ms.max(f.latency_ms);
            }
            match fault.as_ref().and_then(|f| f.status.map(|s| (f, s))) {
                Some((f, status)) => {
                    let (status, headers, body) =
                        f.answer(&full_path, status, st.settings.token_retry_after_secs);
                    GraphAnswer {
                        status,
                        headers,
                        body,
                    }
                }
                None => {
                    // The inner request runs as the batch's caller: the outer token, never one
                    // carried in the inner headers.
                    let call = GraphCall {
                        method: &r.method,
                        version,
                        path: &r.path,
                        query: &r.query,
                        headers: &r.headers,
                        body: &r.body,
                        direct: false,
                        token,
                    };
                    crate::graph::answer(ctx, st, &call, ids)
                }
            }
        };
        statuses.push(answer.status);
        responses.push(json!({
            "id": r.id,
            "status": answer.status.as_u16(),
            "headers": headers_json(&answer.headers),
            "body": answer.body,
        }));
    }
    let mut headers = HeaderMap::new();
    headers.insert("content-type", HeaderValue::from_static("application/json"));
    (
        GraphAnswer {
            status: StatusCode::OK,
            headers,
            body: json!({ "responses": responses }),
        },
        latency_ms,
    )
}

/// An inner answer's headers as the JSON object of a batch response, in Graph's casing
/// (`Content-Type`, `Retry-After`; the `x-ms-…` headers stay lower-case, as in Graph's example).
fn headers_json(headers: &HeaderMap) -> Value {
    let mut out = Map::new();
    for (name, value) in headers {
        let name = match name.as_str() {
            "content-type" => "Content-Type",
            "retry-after" => "Retry-After",
            "cache-control" => "Cache-Control",
            "location" => "Location",
            "www-authenticate" => "WWW-Authenticate",
            other => other,
        };
        if let Ok(v) = value.to_str() {
            out.insert(name.to_owned(), json!(v));
        }
    }
    Value::Object(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn refused(body: &str) -> String {
        match parse(body.as_bytes()) {
            Ok(_) => panic!("accepted: {body}"),
            Err(e) => e.message().to_owned(),
        }
    }

    #[test]
    fn malformed_batches_are_refused_with_graphs_messages() {
        for body in [
            "",
            "not json",
            "{}",
            r#"{"requests": {}}"#,
            r#"{"requests": []}"#,
            r#"{"requests": [{"method": "GET", "url": "/me"}]}"#,
            r#"{"requests": [{"id": "1", "url": "/me"}]}"#,
            r#"{"requests": [{"id": "1", "method": "GET"}]}"#,
            r#"{"requests": [{"id": 1, "method": "GET", "url": "/me"}]}"#,
            r#"{"requests": [{"id": "1", "method": "GET", "url": "https://graph.microsoft.com/v1.0/me"}]}"#,
            r#"{"requests": [{"id": "1", "method": "GET", "url": "/me", "dependsOn": "0"}]}"#,
        ] {
            assert_eq!(refused(body), "Invalid batch payload format.", "{body}");
        }
        let dup = r#"{"requests": [{"id": "a", "method": "GET", "url": "/me"}, {"id": "A", "method": "GET", "url": "/me"}]}"#;
        assert_eq!(refused(dup), "Request Id A has to be unique in a batch.");
        let later = r#"{"requests": [{"id": "1", "method": "GET", "url": "/me", "dependsOn": ["2"]}, {"id": "2", "method": "GET", "url": "/me"}]}"#;
        assert_eq!(refused(later), "Invalid dependency for request Id 1.");
    }

    #[test]
    fn urls_split_into_path_and_query_and_dependencies_resolve_to_earlier_requests() {
        let body = r#"{"requests": [
            {"id": "1", "method": "GET", "url": "/users?$filter=city eq null&$top=2"},
            {"id": "2", "method": "get", "url": "me", "dependsOn": ["1"], "headers": {"ConsistencyLevel": "eventual"}}
        ]}"#;
        let r = parse(body.as_bytes()).expect("valid batch");
        assert_eq!(r[0].path, "users");
        assert_eq!(r[0].query, "$filter=city eq null&$top=2");
        assert_eq!(r[1].path, "me");
        assert_eq!(r[1].depends_on, vec![0]);
        assert_eq!(r[1].headers["consistencylevel"], "eventual");
    }
}

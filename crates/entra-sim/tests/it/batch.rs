//! Graph JSON batching (`POST /v1.0/$batch`, `/beta/$batch`): inner requests answered as the same
//! requests sent alone, `dependsOn` and 424, the batch's own 400s and 401, per-inner throttling.

use entra_sim::FaultRule;
use serde_json::{Value, json};

use crate::support::*;

const ADMIN_ID: &str = "c0a70000-0000-4000-8000-000000000001";
/// insights-power-platform: application permissions User.Read.All and Group.Read.All only.
const INSIGHTS_PP: &str = "c0de0000-0000-4000-8000-000000000002";

/// An app-only Graph token for `client_id` after the tenant's admin consented.
async fn consented_app_token(sim: &entra_sim::RunningSim, client_id: &str, secret: &str) -> String {
    sim.control()
        .grant_admin_consent(CONTOSO, uuid(client_id))
        .unwrap();
    let (status, body) = app_token(sim, client_id, secret).await;
    assert_eq!(status, 200, "{body}");
    body["access_token"].as_str().unwrap().to_owned()
}

/// POSTs `body` (raw text) to `{base}/{version}/$batch`; returns (status, headers, JSON body).
async fn post_batch(
    sim: &entra_sim::RunningSim,
    version: &str,
    token: Option<&str>,
    body: &str,
) -> (u16, reqwest::header::HeaderMap, Value) {
    let mut req = client(sim)
        .post(format!("{}/{version}/$batch", sim.base_url()))
        .header("content-type", "application/json")
        .body(body.to_owned());
    if let Some(t) = token {
        req = req.bearer_auth(t);
    }
    let resp = req.send().await.expect("batch request");
    let status = resp.status().as_u16();
    let headers = resp.headers().clone();
    let body: Value = resp.json().await.expect("batch JSON");
    (status, headers, body)
}

/// A batch that parses: 200, and its responses by id.
async fn batch_ok(
    sim: &entra_sim::RunningSim,
    version: &str,
    token: &str,
    requests: Value,
) -> Vec<Value> {
    let body = json!({ "requests": requests }).to_string();
    let (status, headers, answer) = post_batch(sim, version, Some(token), &body).await;
    assert_eq!(status, 200, "{answer}");
    assert!(headers.contains_key("request-id"));
    answer["responses"].as_array().expect("responses").clone()
}

/// The batch is refused as a whole with Graph's error body.
async fn refused(sim: &entra_sim::RunningSim, token: &str, body: &str, status: u16, message: &str) {
    let (got, _, answer) = post_batch(sim, "v1.0", Some(token), body).await;
    assert_eq!(got, status, "{body} -> {answer}");
    assert_eq!(answer["error"]["code"], "BadRequest", "{answer}");
    assert_eq!(answer["error"]["message"], message, "{body}");
    assert!(answer["error"]["innerError"]["request-id"].is_string());
}

/// A Graph body without the per-request parts (`innerError` date and IDs).
fn comparable(mut body: Value) -> Value {
    if let Some(e) = body.get_mut("error").and_then(Value::as_object_mut) {
        e.remove("innerError");
    }
    body
}

/// Asserts an inner response answers what the same GET sent alone answers.
async fn assert_same_as_direct(sim: &entra_sim::RunningSim, token: &str, inner: &Value, url: &str) {
    let (status, headers, direct) = graph_get(sim, url, token).await;
    assert_eq!(inner["status"], status, "{url}: {inner}");
    assert_eq!(
        comparable(inner["body"].clone()),
        comparable(direct),
        "{url}"
    );
    assert_eq!(
        inner["headers"]["Content-Type"],
        headers["content-type"].to_str().unwrap(),
        "{url}"
    );
}

#[tokio::test]
async fn inner_requests_answer_what_the_same_requests_answer_alone() {
    let sim = start().await;
    let token = consented_app_token(&sim, INSIGHTS, INSIGHTS_SECRET).await;
    let urls = [
        "/organization",
        // Relative without a leading slash, with an unencoded query, as Graph's docs show.
        "servicePrincipals?$filter=appId eq 'c0de0000-0000-4000-8000-000000000001'",
        "/users/admin@contoso.onmicrosoft.com",
        "/servicePrincipals?$top=1",
        "/users/nobody@contoso.onmicrosoft.com",
        "/me",
    ];
    let requests: Vec<Value> = urls
        .iter()
        .enumerate()
        .map(|(i, url)| json!({"id": (i + 1).to_string(), "method": "GET", "url": url}))
        .collect();
    let responses = batch_ok(&sim, "v1.0", &token, Value::Array(requests)).await;
    let ids: Vec<&str> = responses
        .iter()
        .map(|r| r["id"].as_str().unwrap())
        .collect();
    assert_eq!(ids, ["1", "2", "3", "4", "5", "6"], "request order");
    for (inner, url) in responses.iter().zip(urls) {
        let direct_url = url.replace(' ', "%20");
        let direct_url = if direct_url.starts_with('/') {
            direct_url
        } else {
            format!("/{direct_url}")
        };
        assert_same_as_direct(&sim, &token, inner, &direct_url).await;
    }
    assert_eq!(responses[0]["body"]["value"][0]["id"], CONTOSO_ID);
    assert_eq!(responses[1]["body"]["value"][0]["appId"], INSIGHTS);
    assert_eq!(responses[2]["body"]["id"], ADMIN_ID);
    // The next link is the absolute Graph URL of the next page, as for a direct request.
    let next = responses[3]["body"]["@odata.nextLink"].as_str().unwrap();
    assert!(
        next.starts_with(&format!("{}/servicePrincipals?", sim.graph_base())),
        "{next}"
    );
    assert_eq!(responses[4]["status"], 404);
    assert_eq!(
        responses[4]["body"]["error"]["code"],
        "Request_ResourceNotFound"
    );
    // /me with an app-only token: 400, as alone.
    assert_eq!(responses[5]["status"], 400);

    // A method the simulator's Graph does not serve: Graph's 405, in a batch and alone.
    let responses = batch_ok(
        &sim,
        "v1.0",
        &token,
        json!([{"id": "1", "method": "PATCH", "url": "/users/admin@contoso.onmicrosoft.com",
                "headers": {"Content-Type": "application/json"}, "body": {"jobTitle": "CEO"}}]),
    )
    .await;
    assert_eq!(responses[0]["status"], 405, "{}", responses[0]);
    assert_eq!(responses[0]["body"]["error"]["code"], "Request_BadRequest");
    assert_eq!(
        responses[0]["body"]["error"]["message"],
        "Specified HTTP method is not allowed for the request target."
    );
    assert_eq!(responses[0]["headers"]["Content-Type"], "application/json");
    let direct = client(&sim)
        .patch(format!("{}/users/{ADMIN}", sim.graph_base()))
        .bearer_auth(&token)
        .json(&json!({"jobTitle": "CEO"}))
        .send()
        .await
        .unwrap();
    assert_eq!(direct.status().as_u16(), 405);
    let direct: Value = direct.json().await.unwrap();
    assert_eq!(comparable(direct), comparable(responses[0]["body"].clone()));

    // beta: inner headers reach the inner request (ConsistencyLevel: eventual).
    let url = format!(
        "roleManagement/directory/transitiveRoleAssignments?$count=true&$filter=principalId eq '{ADMIN_ID}'"
    );
    let responses = batch_ok(
        &sim,
        "beta",
        &token,
        json!([
            {"id": "plain", "method": "GET", "url": url},
            {"id": "eventual", "method": "GET", "url": url, "headers": {"ConsistencyLevel": "eventual"}},
        ]),
    )
    .await;
    assert_eq!(responses[0]["status"], 404, "{}", responses[0]);
    assert_eq!(responses[1]["status"], 200, "{}", responses[1]);
    assert_eq!(responses[1]["body"]["@odata.count"], 1);
    assert!(
        responses[1]["body"]["@odata.context"]
            .as_str()
            .unwrap()
            .starts_with(&format!("{}/beta/$metadata#", sim.base_url()))
    );
    sim.shutdown().await;
}

#[tokio::test]
async fn delegated_batch_reads_the_signed_in_user() {
    let sim = start().await;
    let browser = Browser::new(&sim);
    let tokens = sign_in_and_redeem(
        &sim,
        &browser,
        GROUP_OWNER,
        IAAS_DELEGATED,
        IAAS_SECRET,
        "openid offline_access User.Read",
    )
    .await;
    let token = tokens["access_token"].as_str().unwrap();
    let urls = ["/me", "/me/memberOf", "/me/ownedObjects"];
    let requests: Vec<Value> = urls
        .iter()
        .map(|url| json!({"id": url, "method": "GET", "url": url}))
        .collect();
    let responses = batch_ok(&sim, "v1.0", token, Value::Array(requests)).await;
    for (inner, url) in responses.iter().zip(urls) {
        assert_eq!(inner["id"], url);
        assert_same_as_direct(&sim, token, inner, url).await;
    }
    assert_eq!(responses[0]["body"]["userPrincipalName"], GROUP_OWNER);
    assert_eq!(
        responses[2]["body"]["value"][0]["displayName"],
        "Sales and Marketing"
    );
    sim.shutdown().await;
}

#[tokio::test]
async fn depends_on_orders_requests_and_a_failed_dependency_answers_424() {
    let sim = start().await;
    let token = consented_app_token(&sim, INSIGHTS, INSIGHTS_SECRET).await;
    let responses = batch_ok(
        &sim,
        "v1.0",
        &token,
        json!([
            {"id": "org", "method": "GET", "url": "/organization"},
            {"id": "missing", "method": "GET", "url": "/users/nobody@contoso.onmicrosoft.com", "dependsOn": ["org"]},
            {"id": "after-missing", "method": "GET", "url": "/organization", "dependsOn": ["MISSING"]},
            {"id": "chain", "method": "GET", "url": "/organization", "dependsOn": ["after-missing"]},
            {"id": "after-org", "method": "GET", "url": "/users/admin@contoso.onmicrosoft.com", "dependsOn": ["org"]},
        ]),
    )
    .await;
    let got: Vec<(&str, u64)> = responses
        .iter()
        .map(|r| (r["id"].as_str().unwrap(), r["status"].as_u64().unwrap()))
        .collect();
    assert_eq!(
        got,
        [
            ("org", 200),
            ("missing", 404),
            // dependsOn ids are matched without regard to case, as request ids are.
            ("after-missing", 424),
            // A 424 is a failure too: the chain fails on.
            ("chain", 424),
            ("after-org", 200),
        ]
    );
    let failed = &responses[2];
    assert_eq!(failed["body"]["error"]["code"], "FailedDependency");
    assert!(failed["body"]["error"]["innerError"]["request-id"].is_string());
    assert_eq!(failed["headers"]["Content-Type"], "application/json");
    sim.shutdown().await;
}

#[tokio::test]
async fn malformed_batches_are_refused_as_a_whole() {
    let sim = start().await;
    let token = consented_app_token(&sim, INSIGHTS, INSIGHTS_SECRET).await;
    let get = |id: &str| json!({"id": id, "method": "GET", "url": "/organization"});

    // 20 requests are fine; 21 are refused.
    let twenty: Vec<Value> = (1..=20).map(|i| get(&i.to_string())).collect();
    let responses = batch_ok(&sim, "v1.0", &token, Value::Array(twenty.clone())).await;
    assert_eq!(responses.len(), 20);
    assert!(responses.iter().all(|r| r["status"] == 200));
    let mut twenty_one = twenty;
    twenty_one.push(get("21"));
    refused(
        &sim,
        &token,
        &json!({ "requests": twenty_one }).to_string(),
        400,
        "Number of requests inside batch exceed the limit.",
    )
    .await;

    for body in [
        String::new(),
        "{\"requests\": [".to_owned(),
        "{}".to_owned(),
        json!({"requests": []}).to_string(),
        json!({"requests": [{"method": "GET", "url": "/me"}]}).to_string(),
        json!({"requests": [{"id": "1", "url": "/me"}]}).to_string(),
        json!({"requests": [{"id": "1", "method": "GET"}]}).to_string(),
        json!({"requests": [{"id": "1", "method": "GET", "url": format!("{}/me", sim.graph_base())}]})
            .to_string(),
    ] {
        refused(&sim, &token, &body, 400, "Invalid batch payload format.").await;
    }
    refused(
        &sim,
        &token,
        &json!({"requests": [get("a"), get("b"), get("A")]}).to_string(),
        400,
        "Request Id A has to be unique in a batch.",
    )
    .await;
    let mut unknown = get("2");
    unknown["dependsOn"] = json!(["7"]);
    refused(
        &sim,
        &token,
        &json!({"requests": [get("1"), unknown]}).to_string(),
        400,
        "Invalid dependency for request Id 2.",
    )
    .await;
    // A dependency must come earlier in the array.
    let mut early = get("1");
    early["dependsOn"] = json!(["2"]);
    refused(
        &sim,
        &token,
        &json!({"requests": [early, get("2")]}).to_string(),
        400,
        "Invalid dependency for request Id 1.",
    )
    .await;

    // $batch takes POST only.
    let resp = client(&sim)
        .get(format!("{}/$batch", sim.graph_base()))
        .bearer_auth(&token)
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status().as_u16(), 405);
    let body: Value = resp.json().await.unwrap();
    assert_eq!(body["error"]["code"], "Request_BadRequest");
    sim.shutdown().await;
}

#[tokio::test]
async fn a_batch_without_a_valid_token_is_refused_as_a_direct_request_is() {
    let sim = start().await;
    let body =
        json!({"requests": [{"id": "1", "method": "GET", "url": "/organization"}]}).to_string();
    let (status, headers, answer) = post_batch(&sim, "v1.0", None, &body).await;
    assert_eq!(status, 401, "{answer}");
    assert!(
        headers["www-authenticate"]
            .to_str()
            .unwrap()
            .starts_with("Bearer realm=\"\"")
    );
    let direct = client(&sim)
        .get(format!("{}/organization", sim.graph_base()))
        .send()
        .await
        .unwrap();
    assert_eq!(direct.status().as_u16(), 401);
    let direct: Value = direct.json().await.unwrap();
    assert_eq!(direct["error"]["code"], "InvalidAuthenticationToken");
    assert_eq!(comparable(answer), comparable(direct));
    // Even a malformed batch answers 401 first.
    let (status, _, _) = post_batch(&sim, "v1.0", None, "not json").await;
    assert_eq!(status, 401);
    let (status, _, answer) = post_batch(&sim, "v1.0", Some("not-a-token"), &body).await;
    assert_eq!(status, 401);
    assert_eq!(answer["error"]["code"], "InvalidAuthenticationToken");
    sim.shutdown().await;
}

#[tokio::test]
async fn a_fault_rule_throttles_one_inner_request_while_the_others_succeed() {
    let sim = start().await;
    let token = consented_app_token(&sim, INSIGHTS, INSIGHTS_SECRET).await;
    let rule = FaultRule {
        endpoint: "/v1.0/servicePrincipals".into(),
        rate: 1.0,
        latency_ms: 0,
        status: Some(429),
        retry_after_secs: Some(7),
        drop_connection: false,
    };
    sim.control().set_faults(vec![rule.clone()]).unwrap();
    let responses = batch_ok(
        &sim,
        "v1.0",
        &token,
        json!([
            {"id": "1", "method": "GET", "url": "/organization"},
            {"id": "2", "method": "GET", "url": "/servicePrincipals?$top=5"},
            {"id": "3", "method": "GET", "url": "/users/admin@contoso.onmicrosoft.com"},
            {"id": "4", "method": "GET", "url": "/organization", "dependsOn": ["2"]},
        ]),
    )
    .await;
    let statuses: Vec<u64> = responses
        .iter()
        .map(|r| r["status"].as_u64().unwrap())
        .collect();
    assert_eq!(statuses, [200, 429, 200, 424]);
    let throttled = &responses[1];
    assert_eq!(throttled["headers"]["Retry-After"], "7");
    assert_eq!(throttled["headers"]["Content-Type"], "application/json");
    // The same body a direct request to that path gets from the rule.
    let (status, headers, direct) = graph_get(&sim, "/servicePrincipals?$top=5", &token).await;
    assert_eq!(status, 429);
    assert_eq!(headers["retry-after"], "7");
    assert_eq!(throttled["body"]["error"]["code"], "TooManyRequests");
    assert_eq!(throttled["body"]["error"]["code"], direct["error"]["code"]);
    assert_eq!(
        throttled["body"]["error"]["message"],
        direct["error"]["message"]
    );
    // The rule's path does not cover the batch endpoint itself.
    assert_eq!(graph_get(&sim, "/organization", &token).await.0, 200);

    // A `graph`-class rule covers the outer $batch request as it covers any Graph request.
    sim.control()
        .set_faults(vec![FaultRule {
            endpoint: "graph".into(),
            status: Some(503),
            retry_after_secs: None,
            ..rule
        }])
        .unwrap();
    let body =
        json!({"requests": [{"id": "1", "method": "GET", "url": "/organization"}]}).to_string();
    let (status, _, answer) = post_batch(&sim, "v1.0", Some(&token), &body).await;
    assert_eq!(status, 503, "{answer}");
    assert_eq!(answer["error"]["code"], "serviceNotAvailable");
    sim.shutdown().await;
}

#[tokio::test]
async fn an_inner_request_needing_a_permission_the_caller_lacks_answers_403() {
    let sim = start().await;
    let token = consented_app_token(&sim, INSIGHTS_PP, "demo-secret-insights-power-platform").await;
    let urls = [
        "/users/admin@contoso.onmicrosoft.com",
        "/oauth2PermissionGrants",
        "/organization",
    ];
    let requests: Vec<Value> = urls
        .iter()
        .enumerate()
        .map(|(i, url)| json!({"id": i.to_string(), "method": "GET", "url": url}))
        .collect();
    let responses = batch_ok(&sim, "v1.0", &token, Value::Array(requests)).await;
    let statuses: Vec<u64> = responses
        .iter()
        .map(|r| r["status"].as_u64().unwrap())
        .collect();
    assert_eq!(statuses, [200, 403, 403]);
    for (inner, url) in responses.iter().zip(urls) {
        assert_same_as_direct(&sim, &token, inner, url).await;
    }
    assert_eq!(
        responses[1]["body"]["error"]["code"],
        "Authorization_RequestDenied"
    );
    assert_eq!(
        responses[1]["body"]["error"]["message"],
        "Insufficient privileges to complete the operation."
    );
    sim.shutdown().await;
}

/// An inner request runs as the batch's caller: a token in its own `headers` (a forged one, or another
/// app's) changes nothing, in either direction. The batch's token is verified once, for all of them.
#[tokio::test]
async fn an_inner_requests_own_authorization_header_is_ignored() {
    let sim = start().await;
    let token = consented_app_token(&sim, INSIGHTS_PP, "demo-secret-insights-power-platform").await;
    let requests = json!([
        // Readable by the batch's caller (User.Read.All): a forged inner token does not make it 401.
        {"id": "1", "method": "GET", "url": "/users/admin@contoso.onmicrosoft.com",
         "headers": {"Authorization": "Bearer not-a-token"}},
        // Not readable by it: the inner header cannot lend it another caller's rights.
        {"id": "2", "method": "GET", "url": "/organization",
         "headers": {"Authorization": format!("Bearer {token}x")}},
    ]);
    let responses = batch_ok(&sim, "v1.0", &token, requests).await;
    let statuses: Vec<u64> = responses
        .iter()
        .map(|r| r["status"].as_u64().unwrap())
        .collect();
    assert_eq!(statuses, [200, 403], "{responses:?}");
    assert_same_as_direct(
        &sim,
        &token,
        &responses[0],
        "/users/admin@contoso.onmicrosoft.com",
    )
    .await;
    assert_same_as_direct(&sim, &token, &responses[1], "/organization").await;
    sim.shutdown().await;
}

//! Microsoft's throttling limits (entra-facts §6): off by default; on, the token endpoint and Graph
//! answer 429 with a whole-seconds `Retry-After` per (app, tenant), also inside a `$batch`, and the
//! counts say how many requests each key made and how many were refused.

use entra_sim::ThrottleSettings;
use serde_json::{Value, json};

use crate::support::*;

/// The insights app's own service principal: a 1-unit Graph read any app may make.
fn own_sp() -> String {
    format!("/servicePrincipals?$filter=appId eq '{INSIGHTS}'")
}

async fn consented_token(sim: &entra_sim::RunningSim) -> String {
    sim.control()
        .grant_admin_consent(CONTOSO, uuid(INSIGHTS))
        .unwrap();
    let (status, body) = app_token(sim, INSIGHTS, INSIGHTS_SECRET).await;
    assert_eq!(status, 200, "{body}");
    body["access_token"].as_str().unwrap().to_owned()
}

fn retry_after(headers: &reqwest::header::HeaderMap) -> u64 {
    headers
        .get("retry-after")
        .expect("Retry-After")
        .to_str()
        .unwrap()
        .parse()
        .expect("whole seconds")
}

#[tokio::test]
async fn nothing_is_throttled_by_default() {
    let sim = start().await;
    let token = consented_token(&sim).await;
    for _ in 0..30 {
        assert_eq!(app_token(&sim, INSIGHTS, INSIGHTS_SECRET).await.0, 200);
        assert_eq!(graph_get(&sim, &own_sp(), &token).await.0, 200);
    }
    assert!(sim.control().throttle_counts().is_empty());
    sim.shutdown().await;
}

#[tokio::test]
async fn the_token_endpoint_answers_429_per_app_and_tenant_once_its_limit_is_spent() {
    let sim = start().await;
    sim.control()
        .grant_admin_consent(CONTOSO, uuid(INSIGHTS))
        .unwrap();
    // 3 requests per minute: the fourth waits 20 s for one to refill, 40 s counting itself.
    sim.control()
        .set_throttling(ThrottleSettings {
            enabled: true,
            token_requests: 3,
            token_window_secs: 60,
            ..ThrottleSettings::default()
        })
        .unwrap();
    for _ in 0..3 {
        assert_eq!(app_token(&sim, INSIGHTS, INSIGHTS_SECRET).await.0, 200);
    }
    let (status, headers, body) = token(
        &sim,
        CONTOSO,
        &[
            ("grant_type", "client_credentials"),
            ("client_id", INSIGHTS),
            ("client_secret", INSIGHTS_SECRET),
            ("scope", "https://graph.microsoft.com/.default"),
        ],
    )
    .await;
    assert_eq!(status, 429, "{body}");
    assert_eq!(retry_after(&headers), 40);
    assert_eq!(body["error"], "temporarily_unavailable", "{body}");
    assert_eq!(body["error_codes"], json!([90055]));
    // Another app in the same tenant has a bucket of its own (answered, here refused for
    // having no application permission consented, but not throttled).
    let (status, body) = app_token(&sim, IAAS_DELEGATED, IAAS_SECRET).await;
    assert_ne!(status, 429, "{body}");
    let counts = sim.control().throttle_counts();
    let insights = counts
        .iter()
        .find(|c| c.client_id == uuid(INSIGHTS))
        .expect("insights counted");
    assert_eq!(insights.service, "token");
    assert_eq!(insights.tenant_id, uuid(CONTOSO_ID));
    assert_eq!(
        (insights.counts.requests, insights.counts.throttled),
        (4, 1)
    );
    sim.shutdown().await;
}

#[tokio::test]
async fn graph_answers_too_many_requests_with_retry_after_also_inside_a_batch() {
    let sim = start().await;
    let token = consented_token(&sim).await;
    // Turned on over the control API: 4 resource units per 100 s per (app, tenant).
    let resp = client(&sim)
        .post(format!("{}/_sim/ops", sim.base_url()))
        .json(&json!({"op": "set_throttling", "throttling": {
            "enabled": true, "graph_units": 4, "graph_window_secs": 100
        }}))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status().as_u16(), 200);
    for _ in 0..3 {
        let (status, headers, body) = graph_get(&sim, &own_sp(), &token).await;
        assert_eq!(status, 200, "{body}");
        assert_eq!(headers["x-ms-resource-unit"], "1");
    }
    // The fourth unit spends the bucket: above 80 % used, Graph says how close it is.
    let (_, headers, _) = graph_get(&sim, &own_sp(), &token).await;
    assert_eq!(headers["x-ms-throttle-limit-percentage"], "1.0");
    let (status, headers, body) = graph_get(&sim, &own_sp(), &token).await;
    assert_eq!(status, 429, "{body}");
    // 1 unit refills in 25 s; the refused request counts too: 50 s.
    assert_eq!(retry_after(&headers), 50);
    assert_eq!(body["error"]["code"], "TooManyRequests");
    assert_eq!(body["error"]["innerError"]["status"], "429");
    assert_eq!(
        headers["x-ms-throttle-scope"],
        format!("Tenant_Application/ReadWrite/{INSIGHTS}/{CONTOSO_ID}").as_str()
    );

    // A batch is limited per inner request: with 1 unit left after a new limit, the first inner
    // read is answered and the second is refused inside the batch, with its own Retry-After.
    sim.control()
        .set_throttling(ThrottleSettings {
            enabled: true,
            graph_units: Some(1),
            graph_window_secs: 30,
            ..ThrottleSettings::default()
        })
        .unwrap();
    let sp_url = format!("/servicePrincipals?$filter=appId eq '{INSIGHTS}'");
    let exchanges_before = graph_exchanges(&sim).await;
    let body = json!({"requests": [
        {"id": "1", "method": "GET", "url": sp_url},
        {"id": "2", "method": "GET", "url": sp_url},
    ]});
    let resp = client(&sim)
        .post(format!("{}/v1.0/$batch", sim.base_url()))
        .bearer_auth(&token)
        .json(&body)
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status().as_u16(), 200);
    let answer: Value = resp.json().await.unwrap();
    let responses = answer["responses"].as_array().unwrap();
    assert_eq!(responses[0]["status"], 200, "{answer}");
    assert_eq!(responses[1]["status"], 429, "{answer}");
    assert_eq!(responses[1]["headers"]["Retry-After"], "60", "{answer}");
    assert_eq!(responses[1]["body"]["error"]["code"], "TooManyRequests");

    let state = control_read(&sim, "/_sim/throttling").await;
    assert_eq!(state["settings"]["graph_units"], 1, "{state}");
    assert_eq!(state["totals"]["graph"]["requests"], 2, "{state}");
    assert_eq!(state["totals"]["graph"]["throttled"], 1, "{state}");
    assert_eq!(state["keys"][0]["client_id"], INSIGHTS, "{state}");
    // Two requests for the limits, one more exchange with Graph: the batch.
    assert_eq!(graph_exchanges(&sim).await, exchanges_before + 1);
    sim.shutdown().await;
}

#[tokio::test]
async fn fault_rules_still_apply_with_throttling_on() {
    let sim = start().await;
    let token = consented_token(&sim).await;
    sim.control()
        .set_throttling(ThrottleSettings {
            enabled: true,
            ..ThrottleSettings::default()
        })
        .unwrap();
    sim.control()
        .set_faults(vec![
            serde_json::from_value(json!({"endpoint": "graph", "status": 503})).unwrap(),
        ])
        .unwrap();
    assert_eq!(graph_get(&sim, &own_sp(), &token).await.0, 503);
    sim.control().set_faults(Vec::new()).unwrap();
    assert_eq!(graph_get(&sim, &own_sp(), &token).await.0, 200);
    sim.shutdown().await;
}

/// Insights' HTTP exchanges with Graph in contoso (`GET /_sim/counts`).
async fn graph_exchanges(sim: &entra_sim::RunningSim) -> u64 {
    let counts = control_read(sim, "/_sim/counts").await;
    let key = counts["keys"]
        .as_array()
        .unwrap()
        .iter()
        .find(|k| k["client_id"] == INSIGHTS && k["tenant_id"] == CONTOSO_ID)
        .cloned()
        .unwrap_or_default();
    key["graph_exchanges"].as_u64().unwrap_or_default()
}

/// A read of the simulator's control API (`GET /_sim/…`).
async fn control_read(sim: &entra_sim::RunningSim, path: &str) -> Value {
    client(sim)
        .get(format!("{}{path}", sim.base_url()))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap()
}

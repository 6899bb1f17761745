//! Webhooks end to end: a receiver on 127.0.0.1 verifies each message's HMAC-SHA256 signature; a check
//! that makes a profile invalid sends one message, recovery sends one recovery message, the same reason
//! is held down, failed attempts are retried and logged.

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};

use axum::body::Bytes;
use axum::http::{HeaderMap, StatusCode as AxStatus};
use consentry_server::consentry_monitor::webhooks::{SIGNATURE_HEADER, verify};
use consentry_testkit::{Decision, PASSWORD, TestEnv};
use reqwest::{Method, StatusCode};
use serde_json::{Value, json};
use tokio::sync::mpsc;

const ADMIN: &str = "admin@contoso.onmicrosoft.com";
const CONTOSO: &str = "contoso.onmicrosoft.com";

/// A receiver that answers 500 to the first `fail_first` requests, then 200; every request is passed on.
pub(super) async fn receiver(
    fail_first: usize,
) -> (String, mpsc::UnboundedReceiver<(HeaderMap, Bytes)>) {
    let (tx, rx) = mpsc::unbounded_channel();
    let seen = Arc::new(AtomicUsize::new(0));
    let app = axum::Router::new().route(
        "/hook",
        axum::routing::post(move |headers: HeaderMap, body: Bytes| {
            let tx = tx.clone();
            let seen = seen.clone();
            async move {
                let n = seen.fetch_add(1, Ordering::SeqCst);
                let _ = tx.send((headers, body));
                if n < fail_first {
                    AxStatus::INTERNAL_SERVER_ERROR
                } else {
                    AxStatus::OK
                }
            }
        }),
    );
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move { axum::serve(listener, app).await });
    (format!("http://{addr}/hook"), rx)
}

pub(super) async fn next(
    rx: &mut mpsc::UnboundedReceiver<(HeaderMap, Bytes)>,
    secret: &str,
) -> Value {
    let (headers, body) = tokio::time::timeout(std::time::Duration::from_secs(60), rx.recv())
        .await
        .expect("a webhook message arrives")
        .unwrap();
    let sig = headers
        .get(SIGNATURE_HEADER)
        .expect("signed")
        .to_str()
        .unwrap();
    assert!(verify(secret.as_bytes(), &body, sig), "signature verifies");
    assert!(!verify(b"another secret", &body, sig));
    serde_json::from_slice(&body).unwrap()
}

async fn check(env: &TestEnv, id: &str) -> Value {
    let (s, v) = env
        .api(Method::POST, &format!("/api/v1/profiles/{id}/check"), None)
        .await;
    assert_eq!(s, StatusCode::OK, "{v}");
    v
}

#[tokio::test]
async fn status_changes_are_signed_sent_once_recovered_held_down_and_logged() {
    let env = TestEnv::start().await;
    let org = env.connect_contoso(&[]).await;
    let id = env.profile("insights-m365", None).await;
    let (_, started) = env.start_reauth(&id, json!({"method": "admin"})).await;
    env.browser(Some("203.0.113.7"))
        .complete(
            started["url"].as_str().unwrap(),
            ADMIN,
            PASSWORD,
            Decision::Accept { org_wide: true },
        )
        .await;

    let (url, mut rx) = receiver(1).await;
    let (s, created) = env
        .api(
            Method::POST,
            &format!("/api/v1/organizations/{org}/webhooks"),
            Some(json!({"url": url})),
        )
        .await;
    assert_eq!(s, StatusCode::CREATED, "{created}");
    let secret = created["secret"].as_str().unwrap().to_string();
    let hook = created["webhook"]["id"].as_str().unwrap().to_string();
    let (s, bad) = env
        .api(
            Method::POST,
            &format!("/api/v1/organizations/{org}/webhooks"),
            Some(json!({"url": "ftp://example.com"})),
        )
        .await;
    assert_eq!(s, StatusCode::BAD_REQUEST, "{bad}");

    // Invalid: one message (the receiver fails the first attempt; the retry succeeds).
    let block: entra_sim::CaPolicy = serde_json::from_value(json!({
        "name": "HQ only", "users": [ADMIN], "allowed_ranges": ["198.51.100.0/24"], "action": "block"
    }))
    .unwrap();
    env.sim
        .control()
        .set_ca_policies(CONTOSO, vec![block.clone()])
        .unwrap();
    assert_eq!(check(&env, &id).await["outcome"], "invalid");
    let first = next(&mut rx, &secret).await; // the failed attempt
    let retry = next(&mut rx, &secret).await;
    assert_eq!(first, retry, "the retry carries the same message");
    assert_eq!(retry["event"], "status_changed");
    assert_eq!(retry["profile_id"], id);
    assert_eq!(retry["from_status"], "valid");
    assert_eq!(retry["to_status"], "invalid");
    assert_eq!(retry["reason"]["code"], "conditional_access_blocked");
    assert!(
        retry["reason"]["remediation"][0]
            .as_str()
            .unwrap()
            .contains("203.0.113.7")
    );

    // No change, no message. Recovery: one recovery message.
    assert_eq!(check(&env, &id).await["changed"], false);
    env.sim.control().set_ca_policies(CONTOSO, vec![]).unwrap();
    assert_eq!(check(&env, &id).await["outcome"], "valid");
    let rec = next(&mut rx, &secret).await;
    assert_eq!(rec["event"], "recovered");
    assert_eq!(rec["to_status"], "valid");
    assert_eq!(rec["previous_reason"], "conditional_access_blocked");

    // The same reason again within the hold-down: no new message.
    env.sim
        .control()
        .set_ca_policies(CONTOSO, vec![block])
        .unwrap();
    assert_eq!(check(&env, &id).await["outcome"], "invalid");
    // Another reason is sent: it is the next message (the held-down one never comes).
    env.sim.control().set_ca_policies(CONTOSO, vec![]).unwrap();
    env.sim.control().revoke_sessions(ADMIN).unwrap();
    assert_eq!(check(&env, &id).await["changed"], true);
    let other = next(&mut rx, &secret).await;
    assert_eq!(
        other["reason"]["code"],
        "password_reset_or_sessions_revoked"
    );
    assert_eq!(other["from_status"], "invalid");
    // The log shows three successful deliveries (the held-down one was never sent).
    let mut log = Value::Null;
    for _ in 0..100 {
        let (_, l) = env
            .api(
                Method::GET,
                &format!("/api/v1/organizations/{org}/webhooks"),
                None,
            )
            .await;
        if l["items"][0]["deliveries"].as_array().unwrap().len() >= 3 {
            log = l;
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    }
    let deliveries = log["items"][0]["deliveries"].as_array().unwrap().clone();
    assert_eq!(deliveries.len(), 3, "{log}");
    assert_eq!(
        deliveries[0]["reason_code"],
        "password_reset_or_sessions_revoked"
    );
    assert_eq!(deliveries[1]["event"], "recovered");
    assert_eq!(deliveries[1]["attempts"], 1);
    assert_eq!(deliveries[2]["event"], "status_changed");
    assert_eq!(deliveries[2]["attempts"], 2);
    assert_eq!(deliveries[2]["ok"], true);
    assert!(
        log.to_string().find(&secret).is_none(),
        "the secret is shown only once"
    );
    assert!(rx.try_recv().is_err(), "nothing else was sent");
    let metrics = reqwest::get(format!("{}/metrics", env.base))
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    for line in [
        "consentry_webhook_deliveries_total{result=\"delivered\"} 3",
        "consentry_webhook_deliveries_total{result=\"failed\"} 0",
        "consentry_webhook_deliveries_total{result=\"held_down\"} 1",
    ] {
        assert!(metrics.contains(line), "{line} in {metrics}");
    }

    let (s, _) = env
        .api(
            Method::DELETE,
            &format!("/api/v1/organizations/{org}/webhooks/{hook}"),
            None,
        )
        .await;
    assert_eq!(s, StatusCode::NO_CONTENT);
    let (_, l) = env
        .api(
            Method::GET,
            &format!("/api/v1/organizations/{org}/webhooks"),
            None,
        )
        .await;
    assert_eq!(l["items"].as_array().unwrap().len(), 0);
}

//! The token API end to end: service API keys, Graph tokens from entra-sim, the cache, single flight
//! and definitive failures that mark the profile invalid.

use consentry_domain::ApiKey;
use consentry_server::api::tokens::{key_hash, new_api_key};
use consentry_testkit::{Decision, TestEnv};
use reqwest::StatusCode;
use serde_json::{Value, json};

const ADMIN: &str = "admin@contoso.onmicrosoft.com";
const CONTOSO: &str = "contoso.onmicrosoft.com";

async fn authorize(env: &TestEnv, app_type: &str, service: Option<&str>) -> String {
    let id = env.profile(app_type, service).await;
    env.authorize(&id, json!({"method": "admin"}), ADMIN, None)
        .await;
    id
}

async fn key_for(env: &TestEnv, org: &str) -> (String, uuid::Uuid) {
    let key = new_api_key();
    let record = ApiKey {
        id: uuid::Uuid::new_v4(),
        org_id: org.parse().unwrap(),
        name: "backup-service".into(),
        key_hash: key_hash(&key),
        created_at: time::OffsetDateTime::now_utc(),
        revoked_at: None,
        last_used_at: None,
    };
    env.state.svc.store().insert_api_key(&record).await.unwrap();
    (key, record.id)
}

async fn token(env: &TestEnv, key: Option<&str>, tenant: &str, body: Value) -> (StatusCode, Value) {
    let mut req = env
        .http
        .post(format!("{}/api/v1/tenants/{tenant}/tokens", env.base))
        .json(&body);
    if let Some(k) = key {
        req = req.bearer_auth(k);
    }
    let res = req.send().await.unwrap();
    let status = res.status();
    (status, res.json().await.unwrap_or(Value::Null))
}

#[tokio::test]
async fn tokens_are_cached_shared_and_scoped_to_the_organization() {
    let env = TestEnv::start().await;
    let org = env.connect_contoso(&["teams"]).await;
    let backup = authorize(&env, "m365-all", Some("cloud-backup-m365")).await;
    let insights = authorize(&env, "insights-m365", None).await;
    let (key, key_id) = key_for(&env, &org).await;

    // Authentication: an API key of the tenant's organization, not the operator token.
    let body = json!({"app_type": "m365-all"});
    assert_eq!(
        token(&env, None, CONTOSO, body.clone()).await.0,
        StatusCode::UNAUTHORIZED
    );
    assert_eq!(
        token(&env, Some(&env.token), CONTOSO, body.clone()).await.0,
        StatusCode::UNAUTHORIZED
    );
    assert_eq!(
        token(&env, Some("csk_wrong"), CONTOSO, body.clone())
            .await
            .0,
        StatusCode::UNAUTHORIZED
    );

    let (s, first) = token(&env, Some(&key), CONTOSO, body.clone()).await;
    assert_eq!(s, StatusCode::OK, "{first}");
    assert_eq!(first["profile_id"], backup);
    assert_eq!(first["cached"], false);
    let jwt = first["access_token"].as_str().unwrap();
    assert_eq!(
        jwt.split('.').count(),
        3,
        "a JWT from the identity platform"
    );
    let (_, second) = token(&env, Some(&key), &env.contoso_id, body.clone()).await;
    assert_eq!(second["cached"], true);
    assert_eq!(second["access_token"], first["access_token"]);
    let stats = env.state.tokens.stats();
    assert_eq!((stats.hits, stats.acquisitions), (1, 1));
    let metrics = reqwest::get(format!("{}/metrics", env.base))
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert!(
        metrics.contains("consentry_token_cache_total{result=\"hit\"} 1"),
        "{metrics}"
    );
    assert!(
        metrics.contains("consentry_token_cache_total{result=\"miss\"} 1"),
        "{metrics}"
    );

    // Single flight: many concurrent requests for one profile, one acquisition.
    let mut tasks = Vec::new();
    for _ in 0..12 {
        let (http, base, key, id) = (
            env.http.clone(),
            env.base.clone(),
            key.clone(),
            insights.clone(),
        );
        tasks.push(tokio::spawn(async move {
            let res = http
                .post(format!("{base}/api/v1/tenants/{CONTOSO}/tokens"))
                .bearer_auth(key)
                .json(&json!({"profile_id": id}))
                .send()
                .await
                .unwrap();
            (res.status(), res.json::<Value>().await.unwrap())
        }));
    }
    let mut answers = Vec::new();
    for t in tasks {
        answers.push(t.await.unwrap());
    }
    let tokens: std::collections::BTreeSet<String> = answers
        .iter()
        .map(|(s, v)| {
            assert_eq!(*s, StatusCode::OK, "{v}");
            v["access_token"].as_str().unwrap().to_string()
        })
        .collect();
    assert_eq!(tokens.len(), 1, "all share one token");
    assert_eq!(env.state.tokens.stats().acquisitions, 2);

    // Another organization's key sees no such tenant; bad requests are told what to send.
    let other: Value = env
        .api(
            reqwest::Method::POST,
            "/api/v1/organizations",
            Some(json!({"name": "Fabrikam"})),
        )
        .await
        .1;
    let (other_key, _) = key_for(&env, other["id"].as_str().unwrap()).await;
    assert_eq!(
        token(&env, Some(&other_key), CONTOSO, body.clone()).await.0,
        StatusCode::NOT_FOUND
    );
    let (s, v) = token(&env, Some(&key), CONTOSO, json!({})).await;
    assert_eq!(s, StatusCode::BAD_REQUEST, "{v}");
    assert_eq!(
        token(&env, Some(&key), CONTOSO, json!({"app_type": "fly-m365"}))
            .await
            .0,
        StatusCode::NOT_FOUND
    );

    // A revoked key stops working.
    env.state
        .svc
        .store()
        .revoke_api_key(key_id, time::OffsetDateTime::now_utc())
        .await
        .unwrap();
    assert_eq!(
        token(&env, Some(&key), CONTOSO, body).await.0,
        StatusCode::UNAUTHORIZED
    );
}

#[tokio::test]
async fn a_definitive_failure_marks_the_profile_invalid_and_returns_its_reason() {
    let env = TestEnv::start().await;
    let org = env.connect_contoso(&["teams"]).await;
    let id = authorize(&env, "m365-all", Some("cloud-backup-m365")).await;
    let (key, _) = key_for(&env, &org).await;
    let app = entra_sim::Scenario::contoso()
        .client_id_for("m365-all")
        .expect("app in the scenario");
    env.sim
        .control()
        .delete_service_principal(CONTOSO, app)
        .unwrap();
    let (s, v) = token(&env, Some(&key), CONTOSO, json!({"profile_id": id})).await;
    assert_eq!(s, StatusCode::CONFLICT, "{v}");
    assert_eq!(v["error"]["code"], "profile_invalid");
    assert_eq!(v["error"]["reason"]["code"], "app_removed_from_tenant");
    assert!(
        !v["error"]["reason"]["remediation"]
            .as_array()
            .unwrap()
            .is_empty()
    );
    let p = env.get_profile(&id).await;
    assert_eq!(p["status"], "invalid");
    assert_eq!(p["reason"]["code"], "app_removed_from_tenant");
    // Asked again, the invalid profile answers at once with the same reason.
    let (s, v) = token(&env, Some(&key), CONTOSO, json!({"app_type": "m365-all"})).await;
    assert_eq!(s, StatusCode::CONFLICT);
    assert_eq!(v["error"]["reason"]["code"], "app_removed_from_tenant");
    assert_eq!(env.state.tokens.stats().acquisitions, 0);
}

#[tokio::test]
async fn delegated_profiles_are_checked_and_served_through_the_consent_users_refresh_token() {
    const GROUP_OWNER: &str = "group.owner@contoso.onmicrosoft.com";
    let env = TestEnv::start().await;
    let org = env.connect_contoso(&[]).await;
    let id = env.profile("cloud-governance-delegated", None).await;
    let app = entra_sim::Scenario::contoso()
        .client_id_for("cloud-governance-delegated")
        .expect("app in the scenario");
    env.sim.control().grant_admin_consent(CONTOSO, app).unwrap();
    let page = env
        .reauthorize_as(
            &id,
            json!({"method": "user"}),
            GROUP_OWNER,
            None,
            Decision::Accept { org_wide: false },
        )
        .await;
    assert!(page.body.contains("re-authorized"), "{}", page.body);
    let check = |env: &TestEnv| {
        let id = id.clone();
        let env_base = env.base.clone();
        let http = env.http.clone();
        let token = env.token.clone();
        async move {
            http.post(format!("{env_base}/api/v1/profiles/{id}/check"))
                .bearer_auth(token)
                .send()
                .await
                .unwrap()
                .json::<Value>()
                .await
                .unwrap()
        }
    };
    assert_eq!(check(&env).await["outcome"], "valid");

    let (key, _) = key_for(&env, &org).await;
    let (s, v) = token(
        &env,
        Some(&key),
        CONTOSO,
        json!({"app_type": "cloud-governance-delegated"}),
    )
    .await;
    assert_eq!(s, StatusCode::OK, "{v}");
    assert_eq!(v["access_token"].as_str().unwrap().split('.').count(), 3);

    env.sim.control().revoke_sessions(GROUP_OWNER).unwrap();
    let v = check(&env).await;
    assert_eq!(v["outcome"], "invalid", "{v}");
    assert_eq!(
        v["profile"]["reason"]["code"],
        "password_reset_or_sessions_revoked"
    );
    assert_eq!(v["profile"]["reason"]["upn"], GROUP_OWNER);
    let (s, v) = token(&env, Some(&key), CONTOSO, json!({"profile_id": id})).await;
    assert_eq!(s, StatusCode::CONFLICT, "{v}");
    assert_eq!(
        v["error"]["reason"]["code"],
        "password_reset_or_sessions_revoked"
    );
}

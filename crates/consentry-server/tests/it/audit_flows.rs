//! The audit log of re-authorizations, tokens and checks, end to end against entra-sim: started,
//! completed (with the consenting user), failed (cancelled at Microsoft), cancelled in Consentry,
//! a token issued to a service (its key ID, never the token) and a check run by hand, each with the
//! organization and the right actor; the chain verifies.

use consentry_domain::ApiKey;
use consentry_domain::keys::{key_hash, new_api_key};
use consentry_testkit::{Decision, TestEnv};
use reqwest::StatusCode;
use serde_json::{Value, json};

const ADMIN: &str = "admin@contoso.onmicrosoft.com";

async fn log(env: &TestEnv, org: &str) -> Vec<Value> {
    let (s, page) = env
        .api(
            reqwest::Method::GET,
            &format!("/api/v1/organizations/{org}/audit?limit=100"),
            None,
        )
        .await;
    assert_eq!(s, StatusCode::OK, "{page}");
    let mut entries = page["entries"].as_array().unwrap().clone();
    entries.reverse();
    entries
}

fn find<'a>(entries: &'a [Value], action: &str) -> Vec<&'a Value> {
    entries.iter().filter(|e| e["action"] == action).collect()
}

#[tokio::test]
async fn reauthorizations_tokens_and_checks_are_audited() {
    let env = TestEnv::start().await;
    let org = env.connect_contoso(&[]).await;
    let id = env.profile("insights-m365", None).await;
    env.authorize(&id, json!({"method": "admin"}), ADMIN, None)
        .await;

    // Cancelled at Microsoft: a failed re-authorization.
    env.reauthorize_as(
        &id,
        json!({"method": "admin"}),
        ADMIN,
        None,
        Decision::Cancel,
    )
    .await;
    // Started, then cancelled in Consentry.
    let (s, _) = env.start_reauth(&id, json!({"method": "admin"})).await;
    assert_eq!(s, StatusCode::OK);
    let (s, body) = env
        .api(
            reqwest::Method::POST,
            &format!("/api/v1/profiles/{id}/reauthorize/cancel"),
            None,
        )
        .await;
    assert_eq!(s, StatusCode::OK, "{body}");

    // A token for a service, and a check by hand.
    let key = new_api_key();
    let record = ApiKey {
        id: consentry_domain::ApiKeyId::new_random(),
        org_id: org.parse().unwrap(),
        name: "backup-service".into(),
        key_hash: key_hash(&key),
        created_at: time::OffsetDateTime::now_utc(),
        revoked_at: None,
        last_used_at: None,
    };
    env.state.svc.store().insert_api_key(&record).await.unwrap();
    let res = env
        .http
        .post(format!(
            "{}/api/v1/tenants/contoso.onmicrosoft.com/tokens",
            env.base
        ))
        .bearer_auth(&key)
        .json(&json!({"app_type": "insights-m365"}))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), StatusCode::OK);
    let issued: Value = res.json().await.unwrap();
    let access_token = issued["access_token"].as_str().unwrap().to_string();
    let (s, _) = env
        .api(
            reqwest::Method::POST,
            &format!("/api/v1/profiles/{id}/check"),
            None,
        )
        .await;
    assert_eq!(s, StatusCode::OK);

    let entries = log(&env, &org).await;
    let actions: Vec<&str> = entries
        .iter()
        .map(|e| e["action"].as_str().unwrap())
        .collect();
    assert_eq!(
        actions,
        [
            "organization_created",
            "tenant_created",
            "profile_created",
            "reauthorization_started",
            // The first completed re-authorization proves the typed tenant is the organization's.
            "tenant_verified",
            "reauthorization_completed",
            "reauthorization_started",
            "reauthorization_failed",
            "reauthorization_started",
            "reauthorization_cancelled",
            "token_issued",
            "check_run",
        ]
    );
    let target = format!("profile:{id}");
    for e in &entries[3..] {
        if e["action"] == "tenant_verified" {
            assert_eq!(
                e["target"],
                format!("tenant:{}", env.contoso_id).as_str(),
                "{e}"
            );
            continue;
        }
        assert_eq!(e["target"], target.as_str(), "{e}");
        assert_eq!(e["org_id"], org.as_str());
    }
    let completed = find(&entries, "reauthorization_completed")[0];
    assert_eq!(completed["detail"]["consent_user"], ADMIN);
    assert_eq!(completed["detail"]["method"], "admin");
    assert_eq!(completed["actor"]["name"], "api");
    let failed = find(&entries, "reauthorization_failed")[0];
    assert!(
        failed["detail"]["message"].as_str().unwrap().len() > 5,
        "{failed}"
    );
    let token = find(&entries, "token_issued")[0];
    assert_eq!(token["detail"]["key_id"], record.id.to_string().as_str());
    assert_eq!(token["actor"]["name"], "service:backup-service");
    let check = find(&entries, "check_run")[0];
    assert_eq!(check["detail"]["outcome"], "valid");
    let everything = serde_json::to_string(&entries).unwrap();
    assert!(!everything.contains(&access_token), "never the token");
    assert!(!everything.contains(&key), "never the key");

    assert_eq!(env.state.svc.audit().verify().await.unwrap(), Ok(12));
}

/// An entry without what differs between two runs (its place, time, actor and the key's ID).
fn shape(e: &Value, key_id: &str) -> Value {
    json!({
        "action": e["action"],
        "org_id": e["org_id"],
        "target": e["target"].as_str().unwrap().replace(key_id, "ID"),
        "detail": e["detail"],
    })
}

#[tokio::test]
async fn key_creation_and_revocation_are_audited_alike_from_the_api_and_the_cli() {
    // The CLI's `keys create|revoke` call `ApiKeys` as the platform operator `cli:<user>`; the API's
    // handlers call the same service with the request's caller.
    let env = TestEnv::start().await;
    let org = env.connect_contoso(&[]).await;
    // The name rule, in the words `consentry keys create` prints too (`cli.rs`).
    let (s, v) = env
        .api(
            reqwest::Method::POST,
            &format!("/api/v1/organizations/{org}/keys"),
            Some(json!({"name": "   "})),
        )
        .await;
    assert_eq!(s, StatusCode::UNPROCESSABLE_ENTITY, "{v}");
    assert!(
        v.to_string().contains("name: must have 1 to 64 characters"),
        "{v}"
    );
    let (s, created) = env
        .api(
            reqwest::Method::POST,
            &format!("/api/v1/organizations/{org}/keys"),
            Some(json!({"name": " backup "})),
        )
        .await;
    assert_eq!(s, StatusCode::CREATED, "{created}");
    let api_id = created["id"].as_str().unwrap().to_string();
    let (s, v) = env
        .api(
            reqwest::Method::DELETE,
            &format!("/api/v1/organizations/{org}/keys/{api_id}"),
            None,
        )
        .await;
    assert_eq!(s, StatusCode::NO_CONTENT, "{v}");
    let api_entries: Vec<Value> = log(&env, &org)
        .await
        .into_iter()
        .filter(|e| e["target"] == format!("api_key:{api_id}"))
        .collect();

    let keys = consentry_domain::ApiKeys::new(env.state.svc.clone());
    let cli = consentry_domain::Caller::platform("cli:ops");
    let org_id = consentry_domain::OrgId::parse(&org).unwrap();
    let made = keys.create(&cli, org_id, " backup ").await.unwrap();
    let cli_id = made.record.id;
    keys.revoke(&cli, None, cli_id).await.unwrap();
    let cli_entries: Vec<Value> = log(&env, &org)
        .await
        .into_iter()
        .filter(|e| e["target"] == format!("api_key:{cli_id}"))
        .collect();

    assert_eq!(api_entries.len(), 2, "{api_entries:?}");
    let shapes = |v: &[Value], id: &str| v.iter().map(|e| shape(e, id)).collect::<Vec<_>>();
    assert_eq!(
        shapes(&api_entries, &api_id),
        shapes(&cli_entries, &cli_id.to_string())
    );
    assert_eq!(api_entries[0]["action"], "api_key_created");
    assert_eq!(api_entries[0]["detail"], json!({"name": "backup"}));
    assert_eq!(api_entries[1]["action"], "api_key_revoked");
    assert_eq!(cli_entries[0]["actor"]["name"], "cli:ops");
}

//! The token API end to end: service API keys, Graph tokens from entra-sim, the cache, single flight
//! and definitive failures that mark the profile invalid.

use consentry_domain::ApiKey;
use consentry_domain::keys::{key_hash, new_api_key};
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

/// A service API key of `org` (written to the store directly).
pub(crate) async fn key_for(env: &TestEnv, org: &str) -> (String, consentry_domain::ApiKeyId) {
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
async fn the_bearer_scheme_is_accepted_in_any_case() {
    // RFC 7235 §2.1: the authentication scheme is case-insensitive.
    let env = TestEnv::start().await;
    let org = env.connect_contoso(&["teams"]).await;
    authorize(&env, "m365-all", Some("cloud-backup-m365")).await;
    let (key, _) = key_for(&env, &org).await;
    for scheme in ["bearer", "BEARER", "Bearer"] {
        let res = env
            .http
            .post(format!("{}/api/v1/tenants/{CONTOSO}/tokens", env.base))
            .header("authorization", format!("{scheme} {key}"))
            .json(&json!({"app_type": "m365-all"}))
            .send()
            .await
            .unwrap();
        assert_eq!(res.status(), StatusCode::OK, "token API with {scheme:?}");
        let res = env
            .http
            .get(format!("{}/api/v1/organizations", env.base))
            .header("authorization", format!("{scheme} {}", env.token))
            .send()
            .await
            .unwrap();
        assert_eq!(res.status(), StatusCode::OK, "JSON API with {scheme:?}");
    }
}

/// The token API is routed on a stack of its own (router.rs): every answer, issued or refused,
/// still carries the headers every answer of Consentry carries, `no-store`, and JSON.
#[tokio::test]
async fn every_answer_of_the_token_api_carries_the_security_headers() {
    let env = TestEnv::start().await;
    let org = env.connect_contoso(&["teams"]).await;
    authorize(&env, "m365-all", Some("cloud-backup-m365")).await;
    let (key, _) = key_for(&env, &org).await;
    let url = format!("{}/api/v1/tenants/{CONTOSO}/tokens", env.base);
    let cases = [
        (
            "issued",
            Some(key.as_str()),
            "{\"app_type\":\"m365-all\"}",
            StatusCode::OK,
        ),
        (
            "cached",
            Some(key.as_str()),
            "{\"app_type\":\"m365-all\"}",
            StatusCode::OK,
        ),
        (
            "no key",
            None,
            "{\"app_type\":\"m365-all\"}",
            StatusCode::UNAUTHORIZED,
        ),
        ("not JSON", Some(key.as_str()), "{", StatusCode::BAD_REQUEST),
        (
            "no such app type",
            Some(key.as_str()),
            "{\"app_type\":\"nope\"}",
            StatusCode::NOT_FOUND,
        ),
    ];
    for (what, key, body, status) in cases {
        let mut req = env
            .http
            .post(&url)
            .header("content-type", "application/json")
            .body(body);
        if let Some(k) = key {
            req = req.bearer_auth(k);
        }
        let res = req.send().await.unwrap();
        assert_eq!(res.status(), status, "{what}");
        let h = res.headers().clone();
        for (name, want) in [
            ("cache-control", "no-store"),
            ("pragma", "no-cache"),
            ("x-content-type-options", "nosniff"),
            ("referrer-policy", "no-referrer"),
            ("x-frame-options", "DENY"),
            ("content-type", "application/json"),
        ] {
            assert_eq!(
                h.get(name).map(|v| v.to_str().unwrap()),
                Some(want),
                "{what}: {name}"
            );
        }
        assert!(
            h["content-security-policy"]
                .to_str()
                .unwrap()
                .starts_with("default-src 'none'"),
            "{what}"
        );
        let v: Value = res.json().await.unwrap();
        if status == StatusCode::OK {
            assert_eq!(v["token_type"], "Bearer", "{what}");
            assert_eq!(v["cached"], what == "cached", "{what}");
        } else {
            assert!(v["error"]["code"].is_string(), "{what}: {v}");
        }
    }
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
    let stats = env.state.graph_tokens.stats();
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
    assert_eq!(env.state.graph_tokens.stats().acquisitions, 2);

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

    // A key revoked through this server stops working at once, though its lookups were remembered.
    assert_eq!(
        token(&env, Some(&key), CONTOSO, body.clone()).await.0,
        StatusCode::OK
    );
    let (s, v) = env
        .api(
            reqwest::Method::DELETE,
            &format!("/api/v1/organizations/{org}/keys/{key_id}"),
            None,
        )
        .await;
    assert_eq!(s, StatusCode::NO_CONTENT, "{v}");
    assert_eq!(
        token(&env, Some(&key), CONTOSO, body).await.0,
        StatusCode::UNAUTHORIZED
    );
}

/// Asks for a token until the answer is not 200; how many 200s came first.
async fn served_until_refused(env: &TestEnv, key: &str, body: &Value) -> (usize, StatusCode) {
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(20);
    let mut served = 0;
    loop {
        let (s, v) = token(env, Some(key), CONTOSO, body.clone()).await;
        if s != StatusCode::OK {
            return (served, s);
        }
        assert_eq!(v["cached"], true, "{v}");
        served += 1;
        assert!(
            std::time::Instant::now() < deadline,
            "the revoked key was still served after 20 s"
        );
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    }
}

#[tokio::test]
async fn a_key_revoked_elsewhere_stops_working_once_its_remembered_lookup_ends() {
    // Revoked with the CLI or on another replica, i.e. straight in the database: this server notices
    // when its remembered lookup (1 s by default) ends, not at once.
    let env = TestEnv::start().await;
    let org = env.connect_contoso(&["teams"]).await;
    authorize(&env, "m365-all", Some("cloud-backup-m365")).await;
    let (key, key_id) = key_for(&env, &org).await;
    let body = json!({"app_type": "m365-all"});
    assert_eq!(
        token(&env, Some(&key), CONTOSO, body.clone()).await.0,
        StatusCode::OK
    );
    env.state
        .svc
        .store()
        .revoke_api_key(key_id, time::OffsetDateTime::now_utc())
        .await
        .unwrap();
    let (_, status) = served_until_refused(&env, &key, &body).await;
    assert_eq!(status, StatusCode::UNAUTHORIZED);

    // With the lookup cache off, every request asks the database: refused at once.
    let env = TestEnv::start_with_settings(
        entra_sim::Scenario::contoso(),
        vec![("CONSENTRY_TOKEN_API__LOOKUP_CACHE_MS".into(), "0".into())],
    )
    .await;
    let org = env.connect_contoso(&["teams"]).await;
    authorize(&env, "m365-all", Some("cloud-backup-m365")).await;
    let (key, key_id) = key_for(&env, &org).await;
    assert_eq!(
        token(&env, Some(&key), CONTOSO, body.clone()).await.0,
        StatusCode::OK
    );
    env.state
        .svc
        .store()
        .revoke_api_key(key_id, time::OffsetDateTime::now_utc())
        .await
        .unwrap();
    assert_eq!(
        served_until_refused(&env, &key, &body).await,
        (0, StatusCode::UNAUTHORIZED)
    );
}

/// The organization's `token_issued` audit entries, oldest first.
async fn issued_entries(env: &TestEnv, org: &str) -> Vec<Value> {
    let (s, page) = env
        .api(
            reqwest::Method::GET,
            &format!("/api/v1/organizations/{org}/audit?limit=100"),
            None,
        )
        .await;
    assert_eq!(s, StatusCode::OK, "{page}");
    let mut entries: Vec<Value> = page["entries"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|e| e["action"] == "token_issued")
        .cloned()
        .collect();
    entries.reverse();
    entries
}

#[tokio::test]
async fn tokens_of_one_key_and_profile_share_an_audit_entry_per_window() {
    let env = TestEnv::start().await;
    let org = env.connect_contoso(&["teams"]).await;
    let id = authorize(&env, "m365-all", Some("cloud-backup-m365")).await;
    let (key, key_id) = key_for(&env, &org).await;
    let body = json!({"app_type": "m365-all"});
    for _ in 0..5 {
        assert_eq!(
            token(&env, Some(&key), CONTOSO, body.clone()).await.0,
            StatusCode::OK
        );
    }
    // The first token is recorded at once; the other four are counted.
    let entries = issued_entries(&env, &org).await;
    assert_eq!(entries.len(), 1, "{entries:?}");
    assert_eq!(entries[0]["detail"]["cached"], false);
    assert_eq!(entries[0]["detail"]["key_id"], key_id.to_string().as_str());
    assert_eq!(entries[0]["target"], format!("profile:{id}").as_str());

    // Before the window ends nothing more is written; after it, one entry sums up the four.
    env.state.graph_tokens.flush_audit(false).await;
    assert_eq!(issued_entries(&env, &org).await.len(), 1);
    env.clock.advance(time::Duration::seconds(61));
    env.state.graph_tokens.flush_audit(false).await;
    let entries = issued_entries(&env, &org).await;
    assert_eq!(entries.len(), 2, "{entries:?}");
    assert_eq!(entries[1]["detail"]["repeats"], 4);
    assert_eq!(entries[1]["detail"]["key_id"], key_id.to_string().as_str());
    assert_eq!(entries[1]["actor"]["name"], "service:backup-service");
    assert!(entries[1]["detail"]["since"].is_string());

    // A new window opens with its own first entry; a token issued after the window ended closes it.
    assert_eq!(
        token(&env, Some(&key), CONTOSO, body.clone()).await.0,
        StatusCode::OK
    );
    assert_eq!(
        token(&env, Some(&key), CONTOSO, body.clone()).await.0,
        StatusCode::OK
    );
    let entries = issued_entries(&env, &org).await;
    assert_eq!(entries.len(), 3);
    assert_eq!(entries[2]["detail"]["cached"], true);
    env.clock.advance(time::Duration::seconds(61));
    assert_eq!(
        token(&env, Some(&key), CONTOSO, body.clone()).await.0,
        StatusCode::OK
    );
    let entries = issued_entries(&env, &org).await;
    assert_eq!(entries.len(), 5, "{entries:?}");
    assert_eq!(entries[3]["detail"]["repeats"], 1);
    assert!(entries[4]["detail"]["repeats"].is_null());

    // At shutdown every open window is written, ended or not.
    assert_eq!(
        token(&env, Some(&key), CONTOSO, body.clone()).await.0,
        StatusCode::OK
    );
    env.state.graph_tokens.flush_audit(true).await;
    let entries = issued_entries(&env, &org).await;
    assert_eq!(entries.len(), 6);
    assert_eq!(entries[5]["detail"]["repeats"], 1);
    assert!(env.state.svc.audit().verify().await.unwrap().is_ok());
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
    assert_eq!(env.state.graph_tokens.stats().acquisitions, 0);
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

#[tokio::test]
async fn a_token_of_another_organizations_profile_is_not_found_whatever_the_tenant_named() {
    // The key becomes a reader of its own organization (`keys::service_caller`) and `Caller::may_on`
    // decides what it reaches: another organization's profile answers exactly like a missing one.
    let env = TestEnv::start().await;
    let org = env.connect_contoso(&["teams"]).await;
    let contoso_profile = authorize(&env, "m365-all", Some("cloud-backup-m365")).await;
    let (contoso_key, _) = key_for(&env, &org).await;
    let (s, fabrikam) = env
        .api(
            reqwest::Method::POST,
            "/api/v1/organizations",
            Some(json!({"name": "Fabrikam"})),
        )
        .await;
    assert_eq!(s, StatusCode::CREATED, "{fabrikam}");
    let fabrikam_org = fabrikam["id"].as_str().unwrap().to_string();
    let fabrikam_domain = "fabrikam.onmicrosoft.com";
    let (s, t) = env
        .api(
            reqwest::Method::POST,
            "/api/v1/tenants",
            Some(json!({
                "org_id": fabrikam_org,
                "tenant_id": "aaaaaaaa-bbbb-4ccc-8ddd-eeeeeeeeeeee",
                "primary_domain": fabrikam_domain,
                "cloud": "global",
            })),
        )
        .await;
    assert_eq!(s, StatusCode::CREATED, "{t}");
    let (fabrikam_key, _) = key_for(&env, &fabrikam_org).await;

    // Through its own tenant, Fabrikam's key names Contoso's profile: not found, as an unknown ID.
    let stolen = token(
        &env,
        Some(&fabrikam_key),
        fabrikam_domain,
        json!({"profile_id": contoso_profile}),
    )
    .await;
    let unknown_id = "00000000-0000-4000-8000-000000000000";
    let unknown = token(
        &env,
        Some(&fabrikam_key),
        fabrikam_domain,
        json!({"profile_id": unknown_id}),
    )
    .await;
    assert_eq!(stolen.0, StatusCode::NOT_FOUND, "{}", stolen.1);
    assert_eq!(unknown.0, StatusCode::NOT_FOUND, "{}", unknown.1);
    assert_eq!(
        stolen.1.to_string().replace(&contoso_profile, unknown_id),
        unknown.1.to_string(),
        "the same answer as for a profile that does not exist"
    );
    // Naming Contoso's tenant instead: the tenant is not found, as an unknown tenant.
    let (s, v) = token(
        &env,
        Some(&fabrikam_key),
        CONTOSO,
        json!({"profile_id": contoso_profile}),
    )
    .await;
    assert_eq!(s, StatusCode::NOT_FOUND, "{v}");
    assert!(
        v.to_string()
            .contains(&format!("tenant {CONTOSO} was not found")),
        "{v}"
    );
    // Contoso's own key gets the token.
    let (s, v) = token(
        &env,
        Some(&contoso_key),
        CONTOSO,
        json!({"profile_id": contoso_profile}),
    )
    .await;
    assert_eq!(s, StatusCode::OK, "{v}");
}

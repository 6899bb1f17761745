//! National clouds end to end: a tenant in each cloud is connected (its cloud found from its
//! metadata), a profile is authorized through that cloud's consent and sign-in pages, checked and used
//! for a Graph token through the token API; a cloud without a registration for the app type is a
//! clear error naming the configuration key.

use consentry_testkit::{Decision, PASSWORD, TestEnv};
use entra_sim::Scenario;
use reqwest::{Method, StatusCode};
use serde_json::{Value, json};

/// (cloud, tenant ID, domain) of the national-clouds scenario's customer tenants, the global one first.
const TENANTS: [(&str, &str, &str); 4] = [
    (
        "global",
        "3f2a9c4e-5b1d-4c7a-9e2f-6d8b0a1c2e3f",
        "contoso.onmicrosoft.com",
    ),
    (
        "usgov",
        "c1000000-0000-4000-8000-000000000001",
        "contoso-gcch.onmicrosoft.us",
    ),
    (
        "usgov-dod",
        "c1000000-0000-4000-8000-000000000002",
        "contoso-dod.onmicrosoft.us",
    ),
    (
        "china",
        "c1000000-0000-4000-8000-000000000003",
        "contoso-cn.partner.onmschina.cn",
    ),
];

async fn org(env: &TestEnv) -> String {
    let (s, org) = env
        .api(
            Method::POST,
            "/api/v1/organizations",
            Some(json!({"name": format!("Clouds {}", uuid::Uuid::new_v4()), "modules": []})),
        )
        .await;
    assert_eq!(s, StatusCode::CREATED, "{org}");
    org["id"].as_str().unwrap().to_owned()
}

#[tokio::test]
async fn a_tenant_in_each_cloud_is_connected_authorized_checked_and_issues_graph_tokens() {
    let env = TestEnv::start_with(Scenario::national_clouds()).await;
    let org = org(&env).await;
    let (key, _) = crate::tokens::key_for(&env, &org).await;
    for (cloud, tid, domain) in TENANTS {
        // Connected without naming the cloud: Consentry reads it from the tenant's metadata.
        let (s, t) = env
            .api(
                Method::POST,
                "/api/v1/tenants",
                Some(json!({"org_id": org, "tenant_id": tid, "primary_domain": domain})),
            )
            .await;
        assert_eq!(s, StatusCode::CREATED, "{t}");
        assert_eq!(t["cloud"], cloud, "{t}");
        let (_, listed) = env
            .api(Method::GET, &format!("/api/v1/tenants/{domain}"), None)
            .await;
        assert_eq!(listed["cloud"], cloud);

        let (s, p) = env
            .api(
                Method::POST,
                "/api/v1/profiles",
                Some(json!({"tenant": domain, "app_type": "insights-m365"})),
            )
            .await;
        assert_eq!(s, StatusCode::CREATED, "{p}");
        let id = p["id"].as_str().unwrap().to_owned();
        // The consent and sign-in pages are the tenant's cloud's.
        let (s, started) = env.start_reauth(&id, json!({"method": "admin"})).await;
        assert_eq!(s, StatusCode::OK, "{started}");
        let url = started["url"].as_str().unwrap();
        assert!(
            url.starts_with(&format!("{}/{tid}/", env.sim.cloud_authority(cloud))),
            "{cloud}: {url}"
        );
        let page = env
            .browser(None)
            .complete(
                url,
                &format!("admin@{domain}"),
                PASSWORD,
                Decision::Accept { org_wide: true },
            )
            .await;
        assert!(
            page.body.contains("re-authorized"),
            "{cloud}: {}",
            page.body
        );
        let profile = env.get_profile(&id).await;
        assert_eq!(profile["status"], "valid", "{cloud}: {profile}");

        // A check through the cloud's token endpoint and Graph.
        let (s, checked) = env
            .api(Method::POST, &format!("/api/v1/profiles/{id}/check"), None)
            .await;
        assert_eq!(s, StatusCode::OK, "{checked}");
        let profile = env.get_profile(&id).await;
        assert_eq!(profile["status"], "valid", "{cloud}: {profile}");

        // A Graph token through the token API, issued by the tenant's cloud for its Graph.
        let res = env
            .http
            .post(format!("{}/api/v1/tenants/{domain}/tokens", env.base))
            .bearer_auth(&key)
            .json(&json!({"app_type": "insights-m365"}))
            .send()
            .await
            .unwrap();
        assert_eq!(res.status(), StatusCode::OK, "{cloud}");
        let body: Value = res.json().await.unwrap();
        let token = body["access_token"].as_str().expect("token");
        let claims = jwt_claims(token);
        assert_eq!(
            claims["iss"],
            format!("{}/{tid}/v2.0", env.sim.cloud_authority(cloud)),
            "{cloud}"
        );
        assert_eq!(claims["tid"], tid);
    }
}

fn jwt_claims(jwt: &str) -> Value {
    use base64::Engine as _;
    let payload = jwt.split('.').nth(1).expect("a JWT");
    let bytes = base64::engine::general_purpose::URL_SAFE_NO_PAD
        .decode(payload)
        .expect("base64url");
    serde_json::from_slice(&bytes).expect("JSON claims")
}

#[tokio::test]
async fn connecting_refuses_unknown_tenants_and_names_a_missing_registration() {
    let env = TestEnv::start_with(Scenario::national_clouds()).await;
    let org = org(&env).await;
    // Unknown to Microsoft: a typo, refused with what to check.
    let (s, v) = env
        .api(
            Method::POST,
            "/api/v1/tenants",
            Some(json!({"org_id": org, "tenant_id": "0badc0de-0000-4000-8000-000000000000", "primary_domain": "typo.onmicrosoft.com"})),
        )
        .await;
    assert_eq!(s, StatusCode::UNPROCESSABLE_ENTITY, "{v}");
    assert!(
        v["error"]["message"]
            .as_str()
            .unwrap()
            .contains("Microsoft knows no tenant 0badc0de-0000-4000-8000-000000000000"),
        "{v}"
    );
    // Microsoft not answering: refused with "try again", nothing connected, never a guess.
    env.sim
        .control()
        .set_faults(vec![entra_sim::FaultRule {
            endpoint: "discovery".into(),
            rate: 1.0,
            latency_ms: 0,
            status: Some(503),
            retry_after_secs: None,
            drop_connection: false,
        }])
        .unwrap();
    let (s, v) = env
        .api(
            Method::POST,
            "/api/v1/tenants",
            Some(json!({"org_id": org, "tenant_id": TENANTS[3].1, "primary_domain": TENANTS[3].2})),
        )
        .await;
    assert_eq!(s, StatusCode::SERVICE_UNAVAILABLE, "{v}");
    assert!(
        v["error"]["message"]
            .as_str()
            .unwrap()
            .contains("try again"),
        "{v}"
    );
    env.sim.control().set_faults(Vec::new()).unwrap();
    let (s, _) = env
        .api(
            Method::GET,
            &format!("/api/v1/tenants/{}", TENANTS[3].2),
            None,
        )
        .await;
    assert_eq!(s, StatusCode::NOT_FOUND, "nothing was connected");
    // A cloud that is not in the table.
    let (s, v) = env
        .api(
            Method::POST,
            "/api/v1/tenants",
            Some(json!({"org_id": org, "tenant_id": TENANTS[1].1, "primary_domain": TENANTS[1].2, "cloud": "germany"})),
        )
        .await;
    assert_eq!(s, StatusCode::UNPROCESSABLE_ENTITY, "{v}");
    assert_eq!(v["error"]["field"], "cloud");

    // The scenario registers only Insights for Microsoft 365 in the national clouds: another app
    // type of a US government tenant names the configuration key to set.
    let (s, t) = env
        .api(
            Method::POST,
            "/api/v1/tenants",
            Some(json!({"org_id": org, "tenant_id": TENANTS[1].1, "primary_domain": TENANTS[1].2})),
        )
        .await;
    assert_eq!(s, StatusCode::CREATED, "{t}");
    let (s, p) = env
        .api(
            Method::POST,
            "/api/v1/profiles",
            Some(json!({"tenant": TENANTS[1].2, "app_type": "m365-all", "service": "cloud-backup-m365"})),
        )
        .await;
    assert_eq!(s, StatusCode::CREATED, "{p}");
    let (s, v) = env
        .start_reauth(p["id"].as_str().unwrap(), json!({"method": "admin"}))
        .await;
    assert_eq!(s, StatusCode::CONFLICT, "{v}");
    let message = v["error"]["message"].as_str().unwrap();
    assert!(
        message.contains("usgov cloud") && message.contains("[clouds.usgov.apps.m365-all]"),
        "{message}"
    );
}

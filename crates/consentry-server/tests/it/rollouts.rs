//! Permission rollouts over the JSON API, with entra-sim: a release of the catalog adds a delegated
//! scope to two app types (two catalog versions); each rollout enrolls the profiles consented before it
//! and follows each one: not started, in progress while a re-authorization is pending, failed when it
//! is cancelled, done when the administrator granted the scope in Entra (seen at the next check) or
//! after a re-authorization; with the tenants still lacking it, completion over time and a CSV export.

use consentry_testkit::TestEnv;
use reqwest::{Method, StatusCode};
use serde_json::{Value, json};

use super::check::{authorize, check, vendor_app};

const ADMIN: &str = "admin@contoso.onmicrosoft.com";
const NEW_SCOPE: &str = "Files.Read.All";

async fn rollout(env: &TestEnv, version: u64) -> Value {
    let (s, r) = env
        .api(Method::GET, &format!("/api/v1/rollouts/{version}"), None)
        .await;
    assert_eq!(s, StatusCode::OK, "{r}");
    r
}

fn member<'a>(r: &'a Value, profile: &str) -> &'a Value {
    r["members"]
        .as_array()
        .and_then(|m| m.iter().find(|m| m["profile_id"] == profile))
        .unwrap_or_else(|| panic!("{profile} is not a member: {r}"))
}

#[tokio::test]
async fn a_rollout_follows_each_profile_until_it_holds_the_new_permission() {
    let mut env = TestEnv::start().await;
    env.connect_contoso(&[]).await;
    let hybrid = env.profile("insights-m365", None).await;
    let delegated = env.profile("iaas-delegated", None).await;
    // Created but never authorized: a rollout does not concern it.
    let never = env.profile("insights-m365", None).await;
    authorize(&env, &hybrid, ADMIN, json!({})).await;
    authorize(&env, &delegated, ADMIN, json!({})).await;
    let base = consentry_catalog::Catalog::builtin().version;

    // The release: the vendor's app registrations ask for the new scope, and the catalog's next two
    // versions add it (required for Insights, optional for IaaS).
    let scope = consentry_catalog::PermissionType::Scope;
    let v3 = env
        .release_permission("insights-m365", NEW_SCOPE, scope, false)
        .await;
    let v4 = env
        .release_permission("iaas-delegated", NEW_SCOPE, scope, true)
        .await;
    assert_eq!((v3, v4), (base + 1, base + 2));
    let (v3, v4) = (u64::from(v3), u64::from(v4));

    // Both rollouts are listed, newest first, each with its one profile not started.
    let (s, list) = env.api(Method::GET, "/api/v1/rollouts", None).await;
    assert_eq!(s, StatusCode::OK, "{list}");
    let versions: Vec<u64> = list["items"]
        .as_array()
        .unwrap()
        .iter()
        .filter_map(|r| r["version"].as_u64())
        .collect();
    assert_eq!(&versions[..2], &[v4, v3], "{list}");
    let first_listed = &list["items"][0];
    assert_eq!(first_listed["profiles"]["not_started"], 1, "{list}");
    assert_eq!(first_listed["percent_done"], 0);
    assert_eq!(first_listed["permissions"][0]["permission"], NEW_SCOPE);
    assert_eq!(first_listed["permissions"][0]["optional"], true);

    let r = rollout(&env, v3).await;
    assert_eq!(r["tenants"], 1, "{r}");
    assert_eq!(r["tenants_done"], 0, "{r}");
    assert_eq!(r["members"].as_array().unwrap().len(), 1, "{r}");
    assert_eq!(member(&r, &hybrid)["state"], "not_started");
    assert_eq!(member(&r, &hybrid)["missing"], json!([NEW_SCOPE]));
    assert!(
        !r["members"].to_string().contains(&never),
        "a profile never authorized is not enrolled"
    );
    let lacking = &r["missing"][0];
    assert_eq!(lacking["permission"], NEW_SCOPE, "{r}");
    assert_eq!(lacking["profiles_missing"], 1);
    assert_eq!(
        lacking["tenants_missing"][0]["domain"],
        "contoso.onmicrosoft.com"
    );

    // Re-authorizing the hybrid profile: in progress while pending, done once consented.
    let (s, started) = env
        .api(
            Method::POST,
            &format!("/api/v1/profiles/{hybrid}/reauthorize"),
            Some(json!({"method": "admin"})),
        )
        .await;
    assert_eq!(s, StatusCode::OK, "{started}");
    assert_eq!(
        member(&rollout(&env, v3).await, &hybrid)["state"],
        "in_progress"
    );
    let (s, cancelled) = env
        .api(
            Method::POST,
            &format!("/api/v1/profiles/{hybrid}/reauthorize/cancel"),
            None,
        )
        .await;
    assert_eq!(s, StatusCode::OK, "{cancelled}");
    let r = rollout(&env, v3).await;
    assert_eq!(member(&r, &hybrid)["state"], "failed", "{r}");
    assert!(
        member(&r, &hybrid)["failure"]
            .as_str()
            .is_some_and(|f| !f.is_empty()),
        "{r}"
    );
    assert_eq!(r["profiles"]["failed"], 1);

    // The administrator grants the scope in Entra on their own (tenant-wide admin consent, which
    // Consentry reads from Graph for a hybrid app): the next check sees it, the profile is done.
    env.sim
        .control()
        .grant_admin_consent("contoso.onmicrosoft.com", vendor_app("insights-m365"))
        .unwrap();
    check(&env, &hybrid).await;
    let r = rollout(&env, v3).await;
    assert_eq!(member(&r, &hybrid)["state"], "done", "{r}");
    assert!(member(&r, &hybrid)["done_at"].is_string(), "{r}");
    assert_eq!(r["percent_done"], 100);
    assert_eq!(r["tenants_done"], 1);
    assert_eq!(r["missing"][0]["profiles_missing"], 0);
    assert_eq!(r["missing"][0]["tenants_missing"], json!([]));
    let history = r["history"].as_array().unwrap();
    assert!(
        history.len() >= 2
            && history.first().unwrap()["done"] == 0
            && history.last().unwrap()["done"] == 1,
        "completion over time: {r}"
    );

    // The IaaS profile: re-authorizing it grants the new (optional) scope.
    let r = rollout(&env, v4).await;
    assert_eq!(member(&r, &delegated)["state"], "not_started", "{r}");
    authorize(&env, &delegated, ADMIN, json!({})).await;
    let r = rollout(&env, v4).await;
    assert_eq!(member(&r, &delegated)["state"], "done", "{r}");
    assert_eq!(r["percent_done"], 100);

    // The CSV export: a header and one line per profile.
    let res = env
        .http
        .get(format!("{}/api/v1/rollouts/{v3}/export", env.base))
        .bearer_auth(&env.token)
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), StatusCode::OK);
    assert!(
        res.headers()[reqwest::header::CONTENT_TYPE]
            .to_str()
            .unwrap()
            .starts_with("text/csv")
    );
    let csv = res.text().await.unwrap();
    let lines: Vec<&str> = csv.lines().collect();
    assert_eq!(lines.len(), 2, "{csv}");
    assert!(lines[0].starts_with("tenant,domain,tenant_id,app_type,profile_id,state"));
    assert!(
        lines[1].contains(&hybrid) && lines[1].contains(",done,"),
        "{csv}"
    );

    // A rollout the catalog does not have, and one that is not a number.
    let (s, e) = env.api(Method::GET, "/api/v1/rollouts/999", None).await;
    assert_eq!(s, StatusCode::NOT_FOUND, "{e}");
    let (s, e) = env.api(Method::GET, "/api/v1/rollouts/latest", None).await;
    assert_eq!(s, StatusCode::BAD_REQUEST, "{e}");
    assert!(
        e["error"]["message"]
            .as_str()
            .unwrap()
            .contains("catalog version"),
        "{e}"
    );
}

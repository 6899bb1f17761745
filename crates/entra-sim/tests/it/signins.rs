//! The sign-in logs: every sign-in, redemption and client-credentials request is logged, failures
//! included, and `GET /auditLogs/signIns` answers them with Microsoft's permission and license rules.

use entra_sim::{CaAction, CaPolicy, EntraIdPlan, SimOptions};
use serde_json::Value;

use crate::support::*;

/// The Cloud Governance Delegated App: its registration asks for `AuditLog.Read.All`.
const READER: &str = "c0de0000-0000-4000-8000-00000000000d";
const READER_SECRET: &str = "demo-secret-cloud-governance-delegated";
const SCOPE: &str = "openid offline_access User.Read";

async fn reader_token(sim: &entra_sim::RunningSim) -> String {
    sim.control()
        .grant_admin_consent(CONTOSO, uuid(READER))
        .expect("admin consent");
    let (status, body) = app_token(sim, READER, READER_SECRET).await;
    assert_eq!(status, 200, "{body}");
    body["access_token"].as_str().expect("token").to_owned()
}

fn beta(sim: &entra_sim::RunningSim, query: &str) -> String {
    let base = sim.graph_base().trim_end_matches("/v1.0").to_owned();
    let mut url = url::Url::parse(&format!("{base}/beta/auditLogs/signIns")).unwrap();
    url.query_pairs_mut().append_pair("$filter", query);
    url.to_string()
}

fn entries(body: &Value) -> Vec<Value> {
    body["value"].as_array().cloned().unwrap_or_default()
}

#[tokio::test]
async fn a_conditional_access_block_at_refresh_is_logged_with_its_policy_and_ip() {
    let sim = start_with(SimOptions {
        trust_forwarded_for: true,
        ..SimOptions::default()
    })
    .await;
    let office = Browser::from_ip(&sim, "203.0.113.7");
    // A wrong password first: an interactive failure.
    let url = authorize_url(&sim, IAAS_DELEGATED, SCOPE, &pkce().1, &[]);
    let page = office.sign_in(&url, USER, "not-the-password").await;
    assert!(page.body.contains("AADSTS50126"), "{}", page.body);
    let body = sign_in_and_redeem(&sim, &office, USER, IAAS_DELEGATED, IAAS_SECRET, SCOPE).await;
    let rt = body["refresh_token"].as_str().unwrap().to_owned();
    sim.control()
        .set_ca_policies(
            CONTOSO,
            vec![
                CaPolicy {
                    name: "Head office only".into(),
                    enabled: true,
                    users: vec![USER.into()],
                    apps: vec![],
                    allowed_ranges: vec!["198.51.100.0/24".parse().unwrap()],
                    action: CaAction::Block,
                },
                CaPolicy {
                    name: "Admins need MFA".into(),
                    enabled: true,
                    users: vec![ADMIN.into()],
                    apps: vec![],
                    allowed_ranges: vec![],
                    action: CaAction::RequireMfa,
                },
            ],
        )
        .unwrap();
    let (status, refused) = refresh(&sim, IAAS_DELEGATED, IAAS_SECRET, &rt).await;
    assert_eq!(status, 400, "{refused}");
    let token = reader_token(&sim).await;

    // v1.0 and beta's default: interactive sign-ins only, newest first.
    let filter = format!("appId eq '{IAAS_DELEGATED}' and userPrincipalName eq '{USER}'");
    let v1 = format!(
        "{}/auditLogs/signIns?$filter={}",
        sim.graph_base(),
        url::form_urlencoded::byte_serialize(filter.as_bytes()).collect::<String>()
    );
    let (status, _, body) = graph_get(&sim, &v1, &token).await;
    assert_eq!(status, 200, "{body}");
    let interactive = entries(&body);
    assert_eq!(interactive.len(), 2, "{body}");
    assert_eq!(interactive[0]["status"]["errorCode"], 0);
    assert_eq!(interactive[1]["status"]["errorCode"], 50126);
    assert_eq!(interactive[1]["isInteractive"], true);
    assert_eq!(interactive[1]["ipAddress"], "203.0.113.7");

    // beta with the non-interactive events: the refused refresh, with the policy that refused it.
    let (status, _, body) = graph_get(
        &sim,
        &beta(
            &sim,
            &format!("{filter} and signInEventTypes/any(t: t eq 'nonInteractiveUser')"),
        ),
        &token,
    )
    .await;
    assert_eq!(status, 200, "{body}");
    let non_interactive = entries(&body);
    // The code redemption (success) and the refused refresh.
    assert_eq!(non_interactive.len(), 2, "{body}");
    let blocked = &non_interactive[0];
    assert_eq!(blocked["status"]["errorCode"], 53003, "{blocked}");
    assert!(
        blocked["status"]["failureReason"]
            .as_str()
            .unwrap()
            .contains("Conditional Access")
    );
    assert_eq!(blocked["isInteractive"], false);
    assert_eq!(blocked["signInEventTypes"][0], "nonInteractiveUser");
    assert_eq!(blocked["ipAddress"], "203.0.113.7");
    assert_eq!(blocked["conditionalAccessStatus"], "failure");
    let policies = blocked["appliedConditionalAccessPolicies"]
        .as_array()
        .unwrap();
    assert_eq!(policies.len(), 2);
    assert_eq!(policies[0]["displayName"], "Head office only");
    assert_eq!(policies[0]["result"], "failure");
    assert_eq!(policies[0]["enforcedGrantControls"][0], "Block");
    assert_eq!(policies[1]["displayName"], "Admins need MFA");
    assert_eq!(policies[1]["result"], "notApplied");
    assert_eq!(non_interactive[1]["status"]["errorCode"], 0);
    assert_eq!(non_interactive[1]["conditionalAccessStatus"], "notApplied");

    // The reader's own client-credentials request is a service principal sign-in.
    let (status, _, body) = graph_get(
        &sim,
        &beta(
            &sim,
            &format!("appId eq '{READER}' and signInEventTypes/any(t: t eq 'servicePrincipal')"),
        ),
        &token,
    )
    .await;
    assert_eq!(status, 200, "{body}");
    let sp = entries(&body);
    assert_eq!(sp.len(), 1, "{body}");
    assert_eq!(sp[0]["userPrincipalName"], Value::Null);
    assert_eq!(sp[0]["signInEventTypes"][0], "servicePrincipal");

    // `signInEventTypes` is beta's; v1.0 refuses it.
    let (status, _, body) = graph_get(
        &sim,
        &format!(
            "{}/auditLogs/signIns?$filter=signInEventTypes/any(t:%20t%20eq%20'servicePrincipal')",
            sim.graph_base()
        ),
        &token,
    )
    .await;
    assert_eq!(status, 400, "{body}");
    assert_eq!(body["error"]["code"], "BadRequest");
}

#[tokio::test]
async fn pages_follow_next_links_and_filters_by_time_and_error() {
    let sim = start().await;
    for _ in 0..3 {
        let (status, body) = refresh(&sim, IAAS_DELEGATED, IAAS_SECRET, "not-a-token").await;
        assert_eq!(status, 400, "{body}");
    }
    // An unknown refresh token names no user: the entries have no UPN but are logged.
    let token = reader_token(&sim).await;
    let all = format!(
        "appId eq '{IAAS_DELEGATED}' and signInEventTypes/any(t: t eq 'nonInteractiveUser') and status/errorCode eq 70000"
    );
    let mut url = beta(&sim, &all);
    url.push_str("&$top=2");
    let (status, _, first) = graph_get(&sim, &url, &token).await;
    assert_eq!(status, 200, "{first}");
    assert_eq!(entries(&first).len(), 2);
    let next = first["@odata.nextLink"].as_str().expect("next link");
    let (status, _, second) = graph_get(&sim, next, &token).await;
    assert_eq!(status, 200, "{second}");
    assert_eq!(entries(&second).len(), 1);
    assert!(second.get("@odata.nextLink").is_none());
    let ids: std::collections::HashSet<String> = entries(&first)
        .iter()
        .chain(entries(&second).iter())
        .map(|e| e["id"].as_str().unwrap().to_owned())
        .collect();
    assert_eq!(ids.len(), 3, "pages overlap");

    // A time window after everything: nothing.
    let later = (time::OffsetDateTime::now_utc() + time::Duration::hours(1))
        .format(&time::format_description::well_known::Rfc3339)
        .unwrap();
    let (status, _, none) = graph_get(
        &sim,
        &beta(&sim, &format!("{all} and createdDateTime ge {later}")),
        &token,
    )
    .await;
    assert_eq!(status, 200, "{none}");
    assert!(entries(&none).is_empty());
    let (status, _, bad) = graph_get(&sim, &beta(&sim, "displayName eq 'x'"), &token).await;
    assert_eq!(status, 400, "{bad}");
}

#[tokio::test]
async fn reading_needs_the_permission_and_a_premium_tenant() {
    let sim = start().await;
    // insights-m365 holds directory roles but not AuditLog.Read.All.
    sim.control()
        .grant_admin_consent(CONTOSO, uuid(INSIGHTS))
        .unwrap();
    let (status, body) = app_token(&sim, INSIGHTS, INSIGHTS_SECRET).await;
    assert_eq!(status, 200, "{body}");
    let without = body["access_token"].as_str().unwrap().to_owned();
    let url = format!("{}/auditLogs/signIns", sim.graph_base());
    let (status, _, denied) = graph_get(&sim, &url, &without).await;
    assert_eq!(status, 403, "{denied}");
    assert_eq!(denied["error"]["code"], "Authorization_RequestDenied");

    let token = reader_token(&sim).await;
    let (status, _, ok) = graph_get(&sim, &url, &token).await;
    assert_eq!(status, 200, "{ok}");
    sim.control()
        .set_entra_id_plan(CONTOSO, EntraIdPlan::Free)
        .unwrap();
    let (status, _, free) = graph_get(&sim, &url, &token).await;
    assert_eq!(status, 403, "{free}");
    assert_eq!(
        free["error"]["code"],
        "Authentication_RequestFromNonPremiumTenantOrB2CTenant"
    );
    assert_eq!(
        free["error"]["message"],
        "Neither tenant is B2C or tenant doesn't have premium license"
    );
}

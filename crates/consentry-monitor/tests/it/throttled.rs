//! The monitor and Microsoft's throttling: after a 429 with `Retry-After` the identity-platform
//! adapter pauses that tenant's requests, and the monitor holds the tenant's checks back before they
//! take a global permit, so another tenant's checks run meanwhile instead of waiting behind them.

use std::sync::Arc;
use std::time::Duration as StdDuration;

use consentry_domain::{
    CheckPolicy, Checker, ClientRef, CloudKey, IdentityPlatform, TenantAt, TenantId,
};
use consentry_entra::platform::EntraPlatform;
use consentry_entra::{Pacing, RetryPolicy};
use consentry_monitor::{Monitor, MonitorConfig};
use consentry_testkit::{Decision, TestEnv};
use entra_sim::ThrottleSettings;
use reqwest::StatusCode;
use serde_json::json;
use time::Duration;
use tokio::sync::watch;

const ADMIN: &str = "admin@contoso.onmicrosoft.com";
const CONTOSO_ID: &str = "3f2a9c4e-5b1d-4c7a-9e2f-6d8b0a1c2e3f";
const FABRIKAM: &str = "fabrikam.onmicrosoft.com";
const FABRIKAM_ID: &str = "8a7b6c5d-4e3f-4a2b-9c1d-0e1f2a3b4c5d";
const FABRIKAM_ADMIN: &str = "admin@fabrikam.onmicrosoft.com";
const FABRIKAM_PASSWORD: &str = "Demo-Fabrikam-Passw0rd!";
const INSIGHTS: &str = "c0de0000-0000-4000-8000-000000000001";

/// The adapter over the simulator with pacing on, as `consentry serve` runs it, without retries
/// (each call is one request).
fn paced_platform(env: &TestEnv) -> Arc<EntraPlatform> {
    Arc::new(crate::entra_platform(
        env,
        RetryPolicy {
            max_attempts: 1,
            ..RetryPolicy::default()
        },
        Some(Pacing {
            max_pause: StdDuration::from_secs(30),
        }),
    ))
}

/// An insights profile of fabrikam authorized by its administrator's consent (the testkit's
/// `TestEnv::authorize` signs in with contoso's password).
async fn fabrikam_authorized(env: &TestEnv) -> String {
    let (s, p) = env
        .api(
            reqwest::Method::POST,
            "/api/v1/profiles",
            Some(json!({"tenant": FABRIKAM, "app_type": "insights-m365"})),
        )
        .await;
    assert_eq!(s, StatusCode::CREATED, "{p}");
    let id = p["id"].as_str().unwrap().to_string();
    let (_, started) = env.start_reauth(&id, json!({"method": "admin"})).await;
    let page = env
        .browser(None)
        .complete(
            started["url"].as_str().unwrap(),
            FABRIKAM_ADMIN,
            FABRIKAM_PASSWORD,
            Decision::Accept { org_wide: true },
        )
        .await;
    assert!(page.body.contains("re-authorized"), "{}", page.body);
    id
}

/// Insights' token requests in contoso so far, whatever their outcome.
fn contoso_token_requests(env: &TestEnv) -> u64 {
    env.sim
        .control()
        .token_requests()
        .iter()
        .filter(|t| t.tenant_id.to_string() == CONTOSO_ID && t.client_id.to_string() == INSIGHTS)
        .map(|t| t.count)
        .sum()
}

#[tokio::test]
async fn a_throttled_tenant_waits_without_holding_up_another_tenants_checks() {
    let env = TestEnv::start().await;
    let org = env.connect_contoso(&[]).await;
    let (s, t) = env
        .api(
            reqwest::Method::POST,
            "/api/v1/tenants",
            Some(json!({"org_id": org, "tenant_id": FABRIKAM_ID, "primary_domain": FABRIKAM})),
        )
        .await;
    assert_eq!(s, StatusCode::CREATED, "{t}");
    // Contoso's profiles first: they are leased first.
    let mut contoso = Vec::new();
    for _ in 0..2 {
        let id = env.profile("insights-m365", None).await;
        env.authorize(&id, json!({"method": "admin"}), ADMIN, None)
            .await;
        contoso.push(id);
    }
    // Consentry's clock stands still unless moved: fabrikam's profile is due a minute later.
    env.clock.advance(Duration::minutes(1));
    let fabrikam = fabrikam_authorized(&env).await;
    env.clock.advance(Duration::minutes(61));

    // Two token requests per 4 s per app and tenant: contoso's are spent until Microsoft answers
    // 429 with a Retry-After of seconds, and the adapter pauses contoso.
    env.sim
        .control()
        .set_throttling(ThrottleSettings {
            enabled: true,
            token_requests: 2,
            token_window_secs: 4,
            ..ThrottleSettings::default()
        })
        .unwrap();
    let platform = paced_platform(&env);
    let contoso_at = TenantAt::new(TenantId::parse(CONTOSO_ID).unwrap(), CloudKey::global());
    let insights = ClientRef::Vendor {
        app_type: "insights-m365".into(),
    };
    while platform.app_token(&contoso_at, &insights).await.is_ok() {}
    assert!(platform.throttled_for(contoso_at.id).is_some());
    let sent_before = contoso_token_requests(&env);

    // One check at a time in all, and one per tenant.
    let checker = Checker::new(
        env.state.svc.clone(),
        platform.clone() as Arc<dyn IdentityPlatform>,
        CheckPolicy {
            transient_attempts: 1,
            ..CheckPolicy::default()
        },
    );
    let monitor = Monitor::new(
        checker,
        MonitorConfig {
            worker_id: "throttled".into(),
            max_concurrent: 1,
            max_per_tenant: 1,
            ..MonitorConfig::default()
        },
    );
    let (_tx, stop) = watch::channel(false);
    let sweep = tokio::spawn(async move { monitor.sweep_once(&stop).await.unwrap() });

    // Fabrikam's check ends while contoso is paused: contoso's checks, leased before it, wait
    // without the only global permit, and have sent nothing meanwhile.
    let checked_before = env.get_profile(&fabrikam).await["last_checked_at"].clone();
    loop {
        let p = env.get_profile(&fabrikam).await;
        if p["last_checked_at"] != checked_before {
            assert_eq!(p["status"], "valid", "{p}");
            break;
        }
        assert!(
            !sweep.is_finished(),
            "the sweep ended before fabrikam was checked"
        );
        tokio::time::sleep(StdDuration::from_millis(10)).await;
    }
    assert_eq!(
        contoso_token_requests(&env),
        sent_before,
        "contoso sent nothing while paused"
    );
    assert!(platform.throttled_for(contoso_at.id).is_some());

    // Contoso's checks run once the pause is over; a 429 never makes a profile invalid.
    let report = sweep.await.unwrap();
    assert_eq!(report.leased, 3, "{report:?}");
    for id in &contoso {
        assert_ne!(env.get_profile(id).await["status"], "invalid");
    }
}

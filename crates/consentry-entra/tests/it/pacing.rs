//! Pacing against entra-sim's throttling limits: after a 429 with `Retry-After`, the requests of that
//! tenant and app wait for it instead of collecting more 429s (counted by the simulator), while another
//! tenant goes on; without pacing the same requests are refused.

use std::collections::BTreeMap;
use std::time::Duration;

use consentry_domain::{
    AppId, ClientRef, CloudKey, IdentityPlatform, PlatformCause, TenantAt, TenantId,
};
use consentry_entra::platform::{EntraPlatform, VendorApp};
use consentry_entra::{EntraClient, EntraConfig, Pacing, RetryPolicy};
use entra_sim::{RunningSim, Scenario, SimOptions, ThrottleSettings};
use secrecy::SecretString;
use uuid::Uuid;

const INSIGHTS: &str = "c0de0000-0000-4000-8000-000000000001";
const CONTOSO_ID: &str = "3f2a9c4e-5b1d-4c7a-9e2f-6d8b0a1c2e3f";
const FABRIKAM_ID: &str = "8a7b6c5d-4e3f-4a2b-9c1d-0e1f2a3b4c5d";
const REDIRECT: &str = "https://localhost:8443/oauth/callback";

fn at(id: &str) -> TenantAt {
    TenantAt::new(TenantId::parse(id).unwrap(), CloudKey::global())
}

fn insights() -> ClientRef {
    ClientRef::Vendor {
        app_type: "insights-m365".into(),
    }
}

/// The adapter over `client`, not retrying: each call is one request, so the simulator's counts
/// are the calls'.
fn platform(client: &EntraClient) -> EntraPlatform {
    let mut apps = BTreeMap::new();
    apps.insert(
        "insights-m365".to_owned(),
        VendorApp::with_secret(
            AppId::parse(INSIGHTS).unwrap(),
            SecretString::from("demo-secret-insights-m365"),
        ),
    );
    EntraPlatform::new(client.clone(), REDIRECT.into(), apps)
        .unwrap()
        .with_retry_policy(RetryPolicy {
            max_attempts: 1,
            ..RetryPolicy::default()
        })
}

fn client(sim: &RunningSim, pacing: Option<Pacing>) -> EntraClient {
    EntraClient::new(EntraConfig {
        authority: sim.authority(),
        graph: sim.graph_base(),
        extra_ca_pem: Some(sim.ca_pem().to_owned()),
        pacing,
        ..EntraConfig::default()
    })
    .unwrap()
}

/// The token requests of insights in `tenant` the simulator counted, and how many it refused.
fn counted(sim: &RunningSim, tenant: &str) -> (u64, u64) {
    sim.control()
        .throttle_counts()
        .iter()
        .find(|c| {
            c.service == "token"
                && c.client_id == Uuid::parse_str(INSIGHTS).unwrap()
                && c.tenant_id == Uuid::parse_str(tenant).unwrap()
        })
        .map_or((0, 0), |c| (c.counts.requests, c.counts.throttled))
}

/// 10 token requests per second per (app, tenant): the 11th at once is refused, Retry-After 1.
fn limits() -> ThrottleSettings {
    ThrottleSettings {
        enabled: true,
        token_requests: 10,
        token_window_secs: 1,
        ..ThrottleSettings::default()
    }
}

async fn spend_the_limit(sim: &RunningSim, platform: &EntraPlatform) {
    for _ in 0..10 {
        platform
            .app_token(&at(CONTOSO_ID), &insights())
            .await
            .unwrap();
    }
    let err = platform
        .app_token(&at(CONTOSO_ID), &insights())
        .await
        .unwrap_err();
    // A 429 is transient: never a reason to change a profile's status.
    assert_eq!(err.cause, PlatformCause::Transient, "{err}");
    assert!(err.reason(None, None, None).is_none());
    assert_eq!(counted(sim, CONTOSO_ID), (11, 1));
}

/// Five token requests for contoso at once: which were answered.
async fn five_at_once(platform: &EntraPlatform) -> Vec<bool> {
    let (tenant, client) = (at(CONTOSO_ID), insights());
    let call = || platform.app_token(&tenant, &client);
    let (a, b, c, d, e) = tokio::join!(call(), call(), call(), call(), call());
    [a, b, c, d, e].iter().map(Result::is_ok).collect()
}

#[tokio::test]
async fn after_a_429_the_tenant_and_app_wait_for_retry_after_while_other_tenants_go_on() {
    let sim = RunningSim::start(Scenario::contoso(), SimOptions::default())
        .await
        .unwrap();
    for t in [CONTOSO_ID, FABRIKAM_ID] {
        sim.control()
            .grant_admin_consent(t, Uuid::parse_str(INSIGHTS).unwrap())
            .unwrap();
    }
    sim.control().set_throttling(limits()).unwrap();
    let paced = platform(&client(
        &sim,
        Some(Pacing {
            max_pause: Duration::from_secs(10),
        }),
    ));
    spend_the_limit(&sim, &paced).await;
    let contoso = TenantId::parse(CONTOSO_ID).unwrap();
    let fabrikam = TenantId::parse(FABRIKAM_ID).unwrap();
    assert!(paced.throttled_for(contoso).is_some());
    assert_eq!(paced.throttled_for(fabrikam), None);

    // Another tenant of the same app is not held back: its request is answered while contoso's
    // Retry-After (1 s) still runs, and contoso sent nothing meanwhile.
    paced
        .app_token(&at(FABRIKAM_ID), &insights())
        .await
        .unwrap();
    assert!(
        paced.throttled_for(contoso).is_some(),
        "answered within the pause"
    );
    assert_eq!(counted(&sim, CONTOSO_ID), (11, 1));
    assert_eq!(counted(&sim, FABRIKAM_ID), (1, 0));

    // Five more for contoso wait for the Retry-After, then are all answered: no further 429.
    assert_eq!(five_at_once(&paced).await, vec![true; 5]);
    assert_eq!(counted(&sim, CONTOSO_ID), (16, 1));
    assert_eq!(paced.throttled_for(contoso), None);

    // The same without pacing: the five fire at once into the spent limit and are refused.
    sim.control().set_throttling(limits()).unwrap();
    let blind = platform(&client(&sim, None));
    spend_the_limit(&sim, &blind).await;
    assert_eq!(five_at_once(&blind).await, vec![false; 5]);
    assert_eq!(counted(&sim, CONTOSO_ID), (16, 6));
    sim.shutdown().await;
}

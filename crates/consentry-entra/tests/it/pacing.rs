//! Pacing against entra-sim's throttling limits: after a 429 with `Retry-After`, the requests of that
//! tenant and app wait for it instead of collecting more 429s (counted by the simulator), while another
//! tenant goes on; without pacing the same requests are refused.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration;

use consentry_domain::{
    AppId, ClientRef, CloudKey, IdentityPlatform, PlatformCause, TenantAt, TenantId,
};
use consentry_entra::platform::{EntraPlatform, VendorApp};
use consentry_entra::{
    ClientCredential, EntraClient, EntraConfig, GRAPH_DEFAULT_SCOPE, Pacing, RetryPolicy,
};
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

/// Token requests for contoso until the first 429 (the limit is spent, whatever the machine's
/// speed): how many were sent.
async fn spend_the_limit(sim: &RunningSim, platform: &EntraPlatform) -> u64 {
    for sent in 1..=200 {
        if let Err(err) = platform.app_token(&at(CONTOSO_ID), &insights()).await {
            // A 429 is transient: never a reason to change a profile's status.
            assert_eq!(err.cause, PlatformCause::Transient, "{err}");
            assert!(err.reason(None, None, None).is_none());
            assert_eq!(counted(sim, CONTOSO_ID).1, 1);
            return sent;
        }
    }
    panic!("200 token requests were never throttled");
}

/// Five token requests for contoso at once, each on its own task: which were answered.
fn five_at_once(platform: &Arc<EntraPlatform>) -> Vec<tokio::task::JoinHandle<bool>> {
    (0..5)
        .map(|_| {
            let p = platform.clone();
            tokio::spawn(async move { p.app_token(&at(CONTOSO_ID), &insights()).await.is_ok() })
        })
        .collect()
}

async fn answered(calls: Vec<tokio::task::JoinHandle<bool>>) -> usize {
    let mut n = 0;
    for c in calls {
        n += usize::from(c.await.unwrap());
    }
    n
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
    let paced = Arc::new(platform(&client(
        &sim,
        Some(Pacing {
            max_pause: Duration::from_secs(10),
        }),
    )));
    let sent = spend_the_limit(&sim, &paced).await;
    let contoso = TenantId::parse(CONTOSO_ID).unwrap();
    let fabrikam = TenantId::parse(FABRIKAM_ID).unwrap();
    assert!(paced.throttled_for(contoso).is_some());
    assert_eq!(paced.throttled_for(fabrikam), None);

    // Five more for contoso wait for the Retry-After (1 s) instead of firing; meanwhile another
    // tenant of the same app is answered at once, before any of them is sent.
    let waiting = five_at_once(&paced);
    paced
        .app_token(&at(FABRIKAM_ID), &insights())
        .await
        .unwrap();
    assert_eq!(counted(&sim, FABRIKAM_ID), (1, 0));
    assert_eq!(
        counted(&sim, CONTOSO_ID),
        (sent, 1),
        "contoso sent nothing meanwhile"
    );
    assert!(waiting.iter().all(|w| !w.is_finished()));
    // Once it has passed they are all answered: no further 429.
    assert_eq!(answered(waiting).await, 5);
    assert_eq!(counted(&sim, CONTOSO_ID), (sent + 5, 1));
    assert_eq!(paced.throttled_for(contoso), None);

    // The same without pacing: the five fire at once into the spent limit and are refused.
    sim.control().set_throttling(limits()).unwrap();
    let blind = Arc::new(platform(&client(&sim, None)));
    let sent = spend_the_limit(&sim, &blind).await;
    let ok = answered(five_at_once(&blind)).await;
    let (requests, throttled) = counted(&sim, CONTOSO_ID);
    assert_eq!(requests, sent + 5);
    // All five, unless this machine took a fifth of a second to send them (a token refills).
    assert!(
        ok <= 2 && throttled >= 4,
        "{ok} answered, {throttled} throttled"
    );
    sim.shutdown().await;
}

#[tokio::test]
async fn a_read_throttled_inside_a_graph_batch_pauses_its_tenant_and_app() {
    let sim = RunningSim::start(Scenario::contoso(), SimOptions::default())
        .await
        .unwrap();
    let insights_id = Uuid::parse_str(INSIGHTS).unwrap();
    sim.control()
        .grant_admin_consent(CONTOSO_ID, insights_id)
        .unwrap();
    // Two Graph resource units per minute: of the four reads of a consent check, the later ones
    // are refused inside the batch, which itself answers 200.
    sim.control()
        .set_throttling(ThrottleSettings {
            enabled: true,
            graph_units: Some(2),
            graph_window_secs: 60,
            ..ThrottleSettings::default()
        })
        .unwrap();
    let paced = client(
        &sim,
        Some(Pacing {
            max_pause: Duration::from_secs(10),
        }),
    );
    let token = paced
        .client_credentials(
            CONTOSO_ID,
            INSIGHTS,
            &ClientCredential::secret("demo-secret-insights-m365"),
            GRAPH_DEFAULT_SCOPE,
        )
        .await
        .unwrap()
        .access_token;
    assert_eq!(paced.paused_for(CONTOSO_ID), None);
    let reads = paced.consent_reads(&token, INSIGHTS).await.unwrap();
    let throttled = [
        reads.service_principal.as_ref().err(),
        reads.app_role_assignments.as_ref().err(),
        reads.graph_service_principal.as_ref().err(),
        reads.oauth2_permission_grants.as_ref().err(),
    ]
    .into_iter()
    .flatten()
    .filter(|e| e.is_transient() && e.retry_after().is_some())
    .count();
    assert!(throttled >= 1, "{reads:?}");
    // The pacer heard of it although the batch answered 200: contoso's requests wait.
    let pause = paced.paused_for(CONTOSO_ID).expect("contoso is paused");
    assert!(pause <= Duration::from_secs(10), "{pause:?}");
    assert_eq!(paced.paused_for(FABRIKAM_ID), None);
    sim.shutdown().await;
}

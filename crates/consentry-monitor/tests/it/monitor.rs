//! The monitor end to end: Consentry and entra-sim on loopback, profiles authorized through the sign-in
//! pages, sweeps driven directly (no timed assertions), the schedule moved with Consentry's clock.

use std::collections::BTreeMap;

use consentry_monitor::metrics::Metrics;
use consentry_monitor::{Monitor, MonitorConfig};
use consentry_testkit::{Decision, PASSWORD, TestEnv};
use serde_json::json;
use time::Duration;
use tokio::sync::watch;

const ADMIN: &str = "admin@contoso.onmicrosoft.com";
const PRA: &str = "pra@contoso.onmicrosoft.com";

async fn authorized(env: &TestEnv, upn: &str) -> String {
    let id = env.profile("insights-m365", None).await;
    let (_, started) = env.start_reauth(&id, json!({"method": "admin"})).await;
    let page = env
        .browser(Some("203.0.113.7"))
        .complete(
            started["url"].as_str().unwrap(),
            upn,
            PASSWORD,
            Decision::Accept { org_wide: true },
        )
        .await;
    assert!(page.body.contains("re-authorized"), "{}", page.body);
    id
}

fn monitor(env: &TestEnv, worker: &str) -> Monitor {
    Monitor::new(
        env.state.checker.clone(),
        MonitorConfig {
            worker_id: worker.into(),
            max_per_tenant: 2,
            ..MonitorConfig::default()
        },
    )
}

fn counts(pairs: &[(&str, usize)]) -> BTreeMap<String, usize> {
    pairs.iter().map(|(k, v)| (k.to_string(), *v)).collect()
}

#[tokio::test]
async fn sweeps_follow_the_schedule_and_check_invalid_profiles_more_often() {
    let env = TestEnv::start().await;
    env.connect_contoso(&[]).await;
    let healthy = authorized(&env, ADMIN).await;
    let breaking = authorized(&env, PRA).await;
    let _never = env.profile("m365-all", Some("cloud-backup-m365")).await;
    let (_tx, stop) = watch::channel(false);
    let m = monitor(&env, "monitor-a");

    // First sweep: every profile joins the schedule and is checked once.
    let r = m.sweep_once(&stop).await.unwrap();
    assert_eq!(r.leased, 3);
    assert_eq!(r.outcomes, counts(&[("valid", 2), ("skipped", 1)]));
    // Nothing is due again before the interval.
    assert_eq!(m.sweep_once(&stop).await.unwrap().leased, 0);

    env.sim.control().revoke_sessions(PRA).unwrap();
    env.clock.advance(Duration::minutes(61));
    let r = m.sweep_once(&stop).await.unwrap();
    assert_eq!(
        r.outcomes,
        counts(&[("valid", 1), ("invalid", 1), ("skipped", 1)])
    );
    assert_eq!(
        env.get_profile(&breaking).await["reason"]["code"],
        "password_reset_or_sessions_revoked"
    );
    assert_eq!(env.get_profile(&healthy).await["status"], "valid");

    // 16 minutes later only the invalid profile is due again.
    env.clock.advance(Duration::minutes(16));
    let r = m.sweep_once(&stop).await.unwrap();
    assert_eq!(r.leased, 1);
    assert_eq!(r.outcomes, counts(&[("invalid", 1)]));

    // The metrics count what happened.
    let text = Metrics::new().render(m.checker()).await.unwrap();
    assert!(
        text.contains("consentry_checks_total{outcome=\"invalid\",reason=\"password_reset_or_sessions_revoked\"} 2"),
        "{text}"
    );
    assert!(
        text.contains("consentry_checks_total{outcome=\"valid\",reason=\"\"} 3"),
        "{text}"
    );
    assert!(
        text.contains("consentry_profiles{status=\"invalid\"} 2"),
        "{text}"
    );
    assert!(
        text.contains("consentry_check_duration_seconds_count 7"),
        "{text}"
    );
    assert!(
        text.contains("consentry_identity_platform_errors_total{aadsts=\"50173\"} 2"),
        "{text}"
    );
}

#[tokio::test]
async fn two_monitors_check_each_profile_once_and_a_stopping_monitor_hands_its_leases_back() {
    let env = TestEnv::start().await;
    env.connect_contoso(&[]).await;
    for _ in 0..3 {
        authorized(&env, ADMIN).await;
    }
    for _ in 0..5 {
        env.profile("m365-all", Some("cloud-backup-m365")).await;
    }
    let (_tx, stop) = watch::channel(false);
    let a = Monitor::new(
        env.state.checker.clone(),
        MonitorConfig {
            worker_id: "a".into(),
            batch: 3,
            ..MonitorConfig::default()
        },
    );
    let b = Monitor::new(
        env.state.checker.clone(),
        MonitorConfig {
            worker_id: "b".into(),
            batch: 3,
            ..MonitorConfig::default()
        },
    );
    let mut total = 0;
    loop {
        let (ra, rb) = tokio::join!(a.sweep_once(&stop), b.sweep_once(&stop));
        let (ra, rb) = (ra.unwrap(), rb.unwrap());
        if ra.leased + rb.leased == 0 {
            break;
        }
        total += ra.leased + rb.leased;
    }
    assert_eq!(
        total, 8,
        "each profile checked exactly once across both monitors"
    );
    let snap = env.state.checker.stats().snapshot();
    let checks: u64 = snap.outcomes.values().sum();
    assert_eq!(checks, 8);

    // A monitor asked to stop before its checks start gives the leases back at once.
    env.clock.advance(Duration::minutes(61));
    let (tx, stopping) = watch::channel(false);
    tx.send(true).unwrap();
    let r = a.sweep_once(&stopping).await.unwrap();
    assert_eq!(r.leased, 3);
    assert_eq!(r.released_unchecked, 3);
    assert!(r.outcomes.is_empty());
    // ... so that another monitor takes them without waiting for the lease to run out.
    let mut again = 0;
    loop {
        let r = b.sweep_once(&stop).await.unwrap();
        if r.leased == 0 {
            break;
        }
        again += r.leased;
    }
    assert_eq!(again, 8);
}

#[tokio::test]
async fn run_stops_gracefully() {
    let env = TestEnv::start().await;
    env.connect_contoso(&[]).await;
    let id = authorized(&env, ADMIN).await;
    let before = env.get_profile(&id).await["last_checked_at"].clone();
    let m = monitor(&env, "runner");
    let (tx, rx) = tokio::sync::oneshot::channel::<()>();
    let task = tokio::spawn(m.clone().run(async {
        let _ = rx.await;
    }));
    // Wait until the first sweep has checked the profile (polling the state, not the clock).
    for _ in 0..200 {
        if env.get_profile(&id).await["last_checked_at"] != before {
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    }
    assert_ne!(env.get_profile(&id).await["last_checked_at"], before);
    tx.send(()).unwrap();
    task.await.unwrap();
    let s = env
        .state
        .svc
        .store()
        .check_schedule(id.parse().unwrap())
        .await
        .unwrap()
        .unwrap();
    assert_eq!(s.lease_owner, None, "no lease left behind");
}

/// A sweep reads its whole lease at once (the profiles, and custom apps' certificates) and checks
/// from that read. A profile changed after the read keeps its new state: here a re-authorization
/// starts after the read, and the app's certificate is removed at Microsoft, so the check from the
/// older read finds the credentials broken, yet ends skipped and records nothing.
#[tokio::test]
async fn checks_run_from_the_lease_read_and_a_profile_changed_after_it_keeps_its_new_state() {
    use base64::Engine as _;
    use consentry_domain::{CheckTrigger, ProfileId};
    use consentry_testkit::{CUSTOM_APP_ID, CUSTOM_APP_PFX, CUSTOM_APP_PFX_PASSWORD};

    let env = TestEnv::start().await;
    env.connect_contoso(&[]).await;
    let id = env
        .profile("custom-azure-app", Some("cloud-backup-m365"))
        .await;
    let custom = json!({"method": "admin", "application_id": CUSTOM_APP_ID,
        "certificate_pfx_base64": base64::engine::general_purpose::STANDARD.encode(CUSTOM_APP_PFX),
        "certificate_password": CUSTOM_APP_PFX_PASSWORD});
    env.authorize(&id, custom.clone(), ADMIN, Some("203.0.113.7"))
        .await;
    let (_tx, stop) = watch::channel(false);
    let m = monitor(&env, "monitor-a");
    let r = m.sweep_once(&stop).await.unwrap();
    assert_eq!(
        r.outcomes,
        counts(&[("valid", 1)]),
        "checked from the lease's read"
    );

    let pid: ProfileId = id.parse().unwrap();
    let store = env.state.checker.core().check_schedule();
    let read = store
        .check_inputs(&[pid, ProfileId::new_random()])
        .await
        .unwrap();
    assert_eq!(read.len(), 1, "a profile that does not exist is left out");
    let input = read.into_iter().next().unwrap();
    assert_eq!(input.profile.id, pid);
    assert!(
        input.certificate.is_some(),
        "the certificate is read with it"
    );
    let thumb = env.get_profile(&id).await["certificate"]["thumbprint"]
        .as_str()
        .unwrap()
        .to_string();
    env.sim
        .control()
        .remove_app_certificate(CUSTOM_APP_ID.parse().unwrap(), &thumb)
        .unwrap();
    let (s, v) = env.start_reauth(&id, custom).await;
    assert_eq!(s, reqwest::StatusCode::OK, "{v}");
    let before = env.history(&id).await.len();

    let outcome = env
        .state
        .checker
        .check_read(input, CheckTrigger::Schedule)
        .await
        .unwrap();
    assert_eq!(outcome.label(), "skipped");
    assert_eq!(env.get_profile(&id).await["status"], "pending");
    assert_eq!(
        env.history(&id).await.len(),
        before,
        "the stale check recorded nothing"
    );
}

//! Fault injection: hundreds of scheduled checks while entra-sim answers 429, 5xx, drops connections
//! and adds latency at random. Not one check may make a profile invalid (transient failures never
//! change a status); every check ends valid or as a counted transient failure.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration as StdDuration;

use consentry_domain::{CheckPolicy, Checker, IdentityPlatform};
use consentry_entra::RetryPolicy;
use consentry_monitor::{Monitor, MonitorConfig};
use consentry_testkit::{Decision, PASSWORD, TestEnv};
use serde_json::json;
use time::Duration;
use tokio::sync::watch;

const ADMIN: &str = "admin@contoso.onmicrosoft.com";

/// The identity-platform adapter over the simulator, retrying fast (the sim's faults are random).
fn fast_platform(env: &TestEnv) -> Arc<dyn IdentityPlatform> {
    Arc::new(crate::entra_platform(
        env,
        RetryPolicy {
            max_attempts: 3,
            base_delay: StdDuration::from_millis(2),
            max_delay: StdDuration::from_millis(10),
            max_retry_after: StdDuration::from_millis(10),
        },
        None,
    ))
}

#[tokio::test]
async fn hundreds_of_checks_under_faults_never_invalidate_a_working_profile() {
    let env = TestEnv::start().await;
    env.connect_contoso(&["teams"]).await;
    let mut ids = Vec::new();
    for (app_type, service) in [
        ("insights-m365", None),
        ("m365-all", Some("cloud-backup-m365")),
    ] {
        let id = env.profile(app_type, service).await;
        let (_, started) = env.start_reauth(&id, json!({"method": "admin"})).await;
        let page = env
            .browser(Some("203.0.113.7"))
            .complete(
                started["url"].as_str().unwrap(),
                ADMIN,
                PASSWORD,
                Decision::Accept { org_wide: true },
            )
            .await;
        assert!(page.body.contains("re-authorized"), "{}", page.body);
        ids.push(id);
    }
    let checker = Checker::new(
        env.state.svc.clone(),
        fast_platform(&env),
        CheckPolicy {
            transient_attempts: 2,
            retry_base_delay: StdDuration::from_millis(2),
            retry_max_delay: StdDuration::from_millis(10),
            ..CheckPolicy::default()
        },
    );
    let rule = |endpoint: &str, extra: serde_json::Value| {
        let mut v = json!({"endpoint": endpoint, "rate": 0.2});
        v.as_object_mut()
            .unwrap()
            .extend(extra.as_object().unwrap().clone());
        serde_json::from_value::<entra_sim::FaultRule>(v).unwrap()
    };
    env.sim
        .control()
        .set_faults(vec![
            rule("token", json!({"status": 503})),
            rule("token", json!({"status": 429, "retry_after_secs": 1})),
            rule("graph", json!({"status": 500})),
            rule("graph", json!({"status": 429})),
            rule("graph", json!({"drop_connection": true})),
            rule("token", json!({"latency_ms": 3})),
        ])
        .unwrap();

    let monitor = Monitor::new(
        checker.clone(),
        MonitorConfig {
            worker_id: "faults".into(),
            interval: Duration::minutes(1),
            invalid_interval: Duration::minutes(1),
            ..MonitorConfig::default()
        },
    );
    let (_tx, stop) = watch::channel(false);
    // 300 sweeps of both profiles (600 checks): each check makes several token and Graph requests, so
    // each fault rule (20% of its endpoint's requests) fires on the order of a hundred times; more
    // rounds repeat the same cases.
    let rounds = 300;
    let mut outcomes: BTreeMap<String, usize> = BTreeMap::new();
    for _ in 0..rounds {
        let r = monitor.sweep_once(&stop).await.unwrap();
        assert_eq!(r.leased, ids.len());
        for (k, v) in r.outcomes {
            *outcomes.entry(k).or_default() += v;
        }
        env.clock.advance(Duration::minutes(2));
    }
    let total: usize = outcomes.values().sum();
    assert_eq!(total, rounds * ids.len());
    assert_eq!(
        outcomes
            .keys()
            .filter(|k| *k != "valid" && *k != "transient_failure")
            .count(),
        0,
        "only valid or transient outcomes: {outcomes:?}"
    );
    assert!(
        outcomes.get("valid").copied().unwrap_or(0) > 0,
        "{outcomes:?}"
    );
    let stats = checker.stats().snapshot();
    assert_eq!(
        stats.failed_transiently as usize,
        outcomes.get("transient_failure").copied().unwrap_or(0)
    );
    for id in &ids {
        let p = env.get_profile(id).await;
        assert_eq!(p["status"], "valid", "{p}");
        let h = env.history(id).await;
        assert!(
            h.iter().all(|e| e["kind"] != "status_changed"),
            "no status change was ever recorded: {h:?}"
        );
    }
    eprintln!(
        "outcomes under faults: {outcomes:?}, retries {}",
        stats.transient_retries
    );
}
